#!/usr/bin/env bash
# 81_manpages: the man pages in doc/man render without groff warnings, and
# they keep up with the code: every setting that src/config/config.c accepts
# has an entry in pgchorus.conf.5, every command and option of pgchorusctl's
# usage text one in pgchorusctl.1, and every option of pgchorus' usage text
# one in pgchorus.8.  The names are taken from the C sources, so adding a
# setting, a command or an option without documenting it fails here.
# Needs no PostgreSQL and no build.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

MAN=$TOP/doc/man
CONFIG_C=$TOP/src/config/config.c
CTL_C=$TOP/src/ctl/pgchorusctl.c
MAIN_C=$TOP/src/main.c
PAGES=(pgchorus.8 pgchorus.conf.5 pgchorusctl.1)

# The tags of a page's .TP / .TQ entries (the line after the macro), with
# \- turned into - and the font escapes, quotes and the macro name removed:
# ".BR node\-info " [\fIn\fR]"" gives "node-info [n]".
entry_tags() {
	awk 'tag { print; tag = 0; next } /^\.(TP|TQ)([ \t]|$)/ { tag = 1 }' "$1" |
		sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/"//g' \
			-e 's/^\.[A-Z][A-Z]* //' -e 's/^[[:space:]]*//'
}

# ---- (1) rendering ----------------------------------------------------------

if ! command -v groff >/dev/null 2>&1; then
	bail "groff is installed (scripts/deps.sh installs groff-base)"
fi
for page in "${PAGES[@]}"; do
	f=$MAN/$page
	if [ ! -f "$f" ]; then
		not_ok "$page exists"
		continue
	fi
	out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$f" 2>&1)
	rc=$?
	check_eq "$page: groff -man -ww renders it without warnings (status $rc)" "0:" "$rc:$out"
	# .TH NAME SECTION: the title and the section match the file name
	th=$(sed -n 's/^\.TH \([^ ]*\) \([0-9]\).*/\1.\2/p' "$f" | tr '[:upper:]' '[:lower:]')
	check_eq "$page: its .TH names it" "$page" "$th"
	if command -v man >/dev/null 2>&1; then
		text=$(MANWIDTH=80 man -l "$f" 2>"$TEST_TMP/man.err")
		check_eq "$page: man -l shows it without messages" "" "$(cat "$TEST_TMP/man.err")"
		check_match "$page: man -l output has a NAME section" '^NAME' "$text"
	else
		diag "man is not installed: $page not shown with man -l"
	fi
done

# ---- (2) every setting of config.c in pgchorus.conf.5 -----------------------

# Top-level settings: the table setting_names[] = { [S_X] = "name", ... }.
mapfile -t settings < <(sed -n 's/^[[:space:]]*\[S_[A-Z0-9_]*\] = "\([a-z0-9_]*\)",.*/\1/p' "$CONFIG_C")
# The ids of enum setting_id, to be sure the table above was read entirely.
n_ids=$(awk '/^enum setting_id *\{/ { on = 1; next } on && /S_COUNT/ { exit } on' "$CONFIG_C" |
	grep -o 'S_[A-Z0-9_]*' | sort -u | wc -l)
check "config.c: setting names found (${#settings[@]})" test "${#settings[@]}" -ge 60
check_eq "config.c: one name per id of enum setting_id" "$n_ids" "${#settings[@]}"

tags=$(entry_tags "$MAN/pgchorus.conf.5" | sed -n 's/^\([a-z0-9_.]*\)[[:space:]].*/\1/p; s/^\([a-z0-9_.]*\)$/\1/p')
missing=()
for s in "${settings[@]}"; do
	grep -qxF -- "$s" <<<"$tags" || missing+=("$s")
done
check_eq "pgchorus.conf.5 has an entry for every setting of config.c" "" "${missing[*]}"

# The fields of the groups (nodes, health_check, peers...): the arrays
# static const char *xxx_keys[] = { "a", "b", ..., NULL };
mapfile -t fields < <(awk '/^static const char \*[a-z_]*_keys\[\] *=/ { on = 1 } on { print } on && /\};/ { on = 0 }' \
	"$CONFIG_C" | grep -o '"[a-z0-9_]*"' | tr -d '"' | sort -u)
check "config.c: group field names found (${#fields[@]})" test "${#fields[@]}" -ge 10
missing=()
for s in "${fields[@]}"; do
	grep -qE -- "^([a-z0-9_]+\\.)?$s\$" <<<"$tags" || missing+=("$s")
done
check_eq "pgchorus.conf.5 has an entry for every group field of config.c" "" "${missing[*]}"

# ---- (3) every command and option of pgchorusctl in pgchorusctl.1 ----------

# The usage text: "  COMMAND ARGS  what it does\n" lines between "Commands:" and "Options:".
usage=$(awk '/^static void usage\(/ { on = 1 } on { print } on && /^\}/ { exit }' "$CTL_C")
mapfile -t commands < <(awk '/"Commands:/ { on = 1; next } /"Options:/ { on = 0 } on' <<<"$usage" |
	sed -n 's/^[[:space:]]*"  \([a-z][a-z-]*\).*/\1/p')
check "pgchorusctl.c: commands found in the usage text (${#commands[@]})" test "${#commands[@]}" -ge 10
ctl_tags=$(entry_tags "$MAN/pgchorusctl.1")
missing=()
for c in "${commands[@]}"; do
	grep -qE -- "^$c( |\$)" <<<"$ctl_tags" || missing+=("$c")
done
check_eq "pgchorusctl.1 has an entry for every command of the usage text" "" "${missing[*]}"

# Options: the long options of the usage text, and the --options of commands
# ("repair TABLE --from n"), each in the tag of an entry.
mapfile -t options < <(grep -o -- '--[a-z][a-z-]*' <<<"$usage" | sort -u)
check "pgchorusctl.c: options found in the usage text (${#options[@]})" test "${#options[@]}" -ge 5
missing=()
for o in "${options[@]}"; do
	grep -qE -- "(^|[ ,[])$o( |,|]|\$)" <<<"$ctl_tags" || missing+=("$o")
done
check_eq "pgchorusctl.1 has an entry naming every option of the usage text" "" "${missing[*]}"

# ---- and pgchorus' own options in pgchorus.8 ---------------------------------

usage=$(awk '/^static void usage\(/ { on = 1 } on { print } on && /^\}/ { exit }' "$MAIN_C")
mapfile -t options < <(grep -o -- '--[a-z][a-z-]*' <<<"$usage" | sort -u)
check "main.c: options found in the usage text (${#options[@]})" test "${#options[@]}" -ge 5
d_tags=$(entry_tags "$MAN/pgchorus.8")
missing=()
for o in "${options[@]}"; do
	grep -qE -- "(^|[ ,[])$o( |,|]|\$)" <<<"$d_tags" || missing+=("$o")
done
check_eq "pgchorus.8 has an entry for every option of pgchorus' usage text" "" "${missing[*]}"
