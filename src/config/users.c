/*
 * users.c - load the users file (see include/pgchorus/users.h for the
 * format) into a sorted array searched with bsearch.
 *
 * The file is read once per load; the result is immutable and owns every
 * string in it.  Validation happens entirely at load time so that a reload
 * with a broken file is refused instead of locking users out later.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/users.h"

#define SCRAM_PREFIX "SCRAM-SHA-256$"
#define SCRAM_KEY_LEN 32 /* SHA-256 digest */
#define MD5_HEX_LEN 32

struct user_entry {
	char *name;
	char *secret;
	unsigned line; /* for the duplicate message */
};

struct users {
	struct user_entry *v;
	size_t n;
};

/* Always returns NULL, for `return load_error(...)` style. */
static void *load_error(char *err, size_t errlen, const char *path, unsigned line,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void *load_error(char *err, size_t errlen, const char *path, unsigned line,
			const char *fmt, ...)
{
	int w;
	va_list ap;

	if (!errlen)
		return NULL;
	w = snprintf(err, errlen, "%s:%u: ", path, line);
	if (w < 0 || (size_t)w >= errlen)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(err + w, errlen - (size_t)w, fmt, ap);
	va_end(ap);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Secret validation                                                         */
/* ------------------------------------------------------------------------ */

static bool is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Decoded size of the base64 text S[0..n), or -1 if it is not valid base64. */
static long b64_decoded_len(const char *s, size_t n)
{
	size_t pad = 0;

	if (n == 0 || n % 4 != 0)
		return -1;
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++)
		if (!is_b64_char(s[i]))
			return -1;
	return (long)(n / 4 * 3 - pad);
}

static bool is_md5_hash(const char *s)
{
	return strncmp(s, "md5", 3) == 0 && strlen(s) == 3 + MD5_HEX_LEN &&
	       strspn(s + 3, "0123456789abcdef") == MD5_HEX_LEN;
}

enum user_secret_kind users_secret_kind(const char *secret)
{
	if (is_md5_hash(secret))
		return USER_SECRET_MD5;
	if (strncmp(secret, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) == 0)
		return USER_SECRET_SCRAM;
	return USER_SECRET_PLAIN;
}

/*
 * Check a SCRAM verifier after its prefix: "<iter>:<salt>$<StoredKey>:<ServerKey>".
 * Returns NULL if valid, else what is wrong.
 */
static const char *check_scram(const char *s)
{
	const char *colon1, *dollar, *colon2;
	char *end;
	long iter;

	colon1 = strchr(s, ':');
	dollar = colon1 ? strchr(colon1 + 1, '$') : NULL;
	colon2 = dollar ? strchr(dollar + 1, ':') : NULL;
	if (!colon2)
		return "malformed SCRAM verifier (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)";
	if (s[0] < '0' || s[0] > '9')
		return "SCRAM verifier: iteration count is not a number";
	errno = 0;
	iter = strtol(s, &end, 10);
	if (end != colon1 || errno || iter < 1 || iter > 0x7fffffffL)
		return "SCRAM verifier: invalid iteration count";
	if (b64_decoded_len(colon1 + 1, (size_t)(dollar - colon1 - 1)) < 1)
		return "SCRAM verifier: salt is not valid base64";
	if (b64_decoded_len(dollar + 1, (size_t)(colon2 - dollar - 1)) != SCRAM_KEY_LEN)
		return "SCRAM verifier: StoredKey is not 32 bytes of base64";
	if (b64_decoded_len(colon2 + 1, strlen(colon2 + 1)) != SCRAM_KEY_LEN)
		return "SCRAM verifier: ServerKey is not 32 bytes of base64";
	return NULL;
}

/* NULL if SECRET is acceptable, else what is wrong with it. */
static const char *check_secret(const char *secret)
{
	size_t hexlen;

	if (!*secret)
		return "empty password";
	if (strncmp(secret, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) == 0)
		return check_scram(secret + strlen(SCRAM_PREFIX));
	if (strncmp(secret, "md5", 3) != 0 || is_md5_hash(secret))
		return NULL;
	/*
	 * "md5" and then about 32 hex digits, but not a valid hash: most likely
	 * a damaged hash, which would otherwise silently become a plain text
	 * password nobody can type.
	 */
	hexlen = strlen(secret + 3);
	if (hexlen >= MD5_HEX_LEN - 2 && hexlen <= MD5_HEX_LEN + 2 &&
	    strspn(secret + 3, "0123456789abcdefABCDEF") == hexlen)
		return "malformed md5 hash (expected \"md5\" followed by 32 lowercase hex digits)";
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Split LINE (already trimmed, not blank, not a comment) into a user name
 * (malloc'ed into *name) and a pointer to the secret inside LINE.  Returns
 * NULL on success, else what is wrong.
 */
static const char *parse_line(const char *line, char **name, const char **secret)
{
	const char *p = line;
	char *out;
	size_t len;

	*name = NULL;
	if (*p == '"') {
		out = malloc(strlen(line));
		if (!out)
			return "out of memory";
		len = 0;
		for (p++;; p++) {
			if (!*p) {
				free(out);
				return "unterminated quoted user name";
			}
			if (*p == '"') {
				if (p[1] != '"')
					break;
				p++;
			}
			out[len++] = *p;
		}
		out[len] = '\0';
		p++; /* closing quote */
		if (*p != ':') {
			free(out);
			return "expected ':' after the quoted user name";
		}
	} else {
		len = strcspn(p, ":\"");
		if (p[len] == '"')
			return "'\"' in an unquoted user name (quote the whole name)";
		if (p[len] != ':')
			return "missing ':' between user name and password";
		out = strndup(p, len);
		if (!out)
			return "out of memory";
		p += len;
	}
	if (!*out) {
		free(out);
		return "empty user name";
	}
	*name = out;
	*secret = p + 1;
	return NULL;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct user_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	/* equal names: keep file order, so the duplicate reported is the later line */
	return (x->line > y->line) - (x->line < y->line);
}

static int key_cmp(const void *key, const void *elem)
{
	const struct user_entry *e = elem;

	return strcmp(key, e->name);
}

static bool add_entry(struct users *u, size_t *cap, char *name, const char *secret, unsigned line)
{
	char *s;

	if (u->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct user_entry *nv = realloc(u->v, ncap * sizeof(*nv));

		if (!nv)
			return false;
		u->v = nv;
		*cap = ncap;
	}
	s = strdup(secret);
	if (!s)
		return false;
	u->v[u->n].name = name;
	u->v[u->n].secret = s;
	u->v[u->n].line = line;
	u->n++;
	return true;
}

struct users *users_load(const char *path, char *err, size_t errlen)
{
	struct users *u;
	FILE *f;
	char *buf = NULL;
	size_t bufcap = 0, cap = 0;
	ssize_t got;
	unsigned lineno = 0;

	if (errlen)
		err[0] = '\0';
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "%s: out of memory", path);
		fclose(f);
		return NULL;
	}

	for (;;) {
		char *line, *name;
		const char *secret, *problem;
		size_t len;

		errno = 0;
		got = getline(&buf, &bufcap, f);
		if (got < 0)
			break;
		len = (size_t)got;
		lineno++;
		if (strlen(buf) != len) {
			load_error(err, errlen, path, lineno, "NUL byte in line");
			goto fail;
		}
		line = buf;
		while (len && strchr(" \t\r\n", line[len - 1]))
			line[--len] = '\0';
		line += strspn(line, " \t");
		if (!*line || *line == '#')
			continue;
		problem = parse_line(line, &name, &secret);
		if (problem) {
			load_error(err, errlen, path, lineno, "%s", problem);
			goto fail;
		}
		problem = check_secret(secret);
		if (problem) {
			load_error(err, errlen, path, lineno, "user \"%s\": %s", name, problem);
			free(name);
			goto fail;
		}
		if (!add_entry(u, &cap, name, secret, lineno)) {
			free(name);
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
	}
	if (ferror(f) || errno == ENOMEM) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno ? errno : EIO));
		goto fail;
	}

	if (u->n)
		qsort(u->v, u->n, sizeof(*u->v), entry_cmp);
	for (size_t i = 1; i < u->n; i++) {
		if (strcmp(u->v[i - 1].name, u->v[i].name) == 0) {
			load_error(err, errlen, path, u->v[i].line, "user \"%s\": duplicate (first on line %u)",
				   u->v[i].name, u->v[i - 1].line);
			goto fail;
		}
	}
	free(buf);
	fclose(f);
	return u;

fail:
	free(buf);
	fclose(f);
	users_free(u);
	return NULL;
}

const char *users_lookup(const struct users *u, const char *user)
{
	const struct user_entry *e;

	if (!u || !u->n)
		return NULL;
	e = bsearch(user, u->v, u->n, sizeof(*u->v), key_cmp);
	return e ? e->secret : NULL;
}

size_t users_count(const struct users *u)
{
	return u ? u->n : 0;
}

void users_free(struct users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++) {
		free(u->v[i].name);
		free(u->v[i].secret);
	}
	free(u->v);
	free(u);
}
