#!/usr/bin/env bash
# 71_admin_console: the SQL admin console (database "pgchorus", doc/admin.md)
# checked the way an operator uses it.  Replication mode with three nodes:
# SHOW NODES lists them up with node 0 primary; SHOW POOL_NODES and SHOW
# RECOVERY answer; DETACH NODE 2 shows "detached" and a write through a new
# connection no longer reaches node 2; an unknown node id is 22023, a node
# not up or the last one up is 55000; ATTACH / RECOVER NODE relay what the
# HA thread says; several commands in one query, any case; a user not in
# admin_users is refused (42501); psycopg with autocommit (simple protocol,
# prepare=True, binary results, parameters refused) and a raw protocol
# client (pipelined extended protocol, errors up to Sync, malformed
# messages close with 08P01).  Then a pool-mode instance answers SHOW NODES.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_tls.sh
. "$(dirname "$0")/lib_tls.sh"

# admin [psql args]: psql on the admin console, errors with their SQLSTATE
admin() {
	chorus_psql -d pgchorus -v VERBOSITY=verbose "$@"
}

# admin_rows SQL: unaligned rows, fields separated by '|'
admin_rows() {
	admin -qAt -F '|' -c "$1"
}

# node_has K ID: 1 when node K's table t71 holds ID, else 0
node_has() {
	node_sql "$1" "select count(*) from t71 where id = $2"
}

cluster_up 3
for ((k = 0; k < NODE_COUNT; k++)); do
	node_sql "$k" "create role bob login" >/dev/null || bail "create role bob on node $k"
done
chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'instance_name = "t71";' \
	'resolver_period = 1;' "state_file = \"$TEST_TMP/repl.state\";" 'admin_users = "ops, postgres";'
chorus_start

# ---- SHOW NODES --------------------------------------------------------------
out=$(admin_rows 'SHOW NODES' 2>&1)
check_eq "SHOW NODES: one row per node" 3 "$(grep -c . <<<"$out")"
check_match "SHOW NODES: node 0 is up and primary, weight 1, no error" \
	"^0\|127\.0\.0\.1\|$NODE0_PORT\|up\|primary\|1\|\|" "$out"
check_match "SHOW NODES: node 1 is up and standby" "^1\|127\.0\.0\.1\|$NODE1_PORT\|up\|standby\|" "$out"
check_match "SHOW NODES: node 2 is up and standby" "^2\|127\.0\.0\.1\|$NODE2_PORT\|up\|standby\|" "$out"
out=$(admin -c 'show nodes' 2>&1)
check_match "SHOW NODES: psql shows the column names (lower case command)" \
	'id \| +host +\| +port +\| status \| +role +\| weight \| last_error \| last_status_change \| health_check_ms' "$out"
check_match "SHOW NODES: psql shows (3 rows)" '\(3 rows\)' "$out"

# ---- SHOW POOL_NODES, SHOW RECOVERY, several commands ------------------------------
out=$(admin -c 'SHOW POOL_NODES' 2>&1)
check_match "SHOW POOL_NODES: pgpool-II's columns" \
	'node_id \| hostname +\| +port +\| status \| lb_weight \| +role' "$out"
check_match "SHOW POOL_NODES: node 0 up primary" "^ +0 \| 127\.0\.0\.1 +\| +$NODE0_PORT \| up +\| +1 \| primary" "$out"
out=$(admin_rows 'SHOW RECOVERY' 2>&1)
check_eq "SHOW RECOVERY: one row (no recovery ran: node empty, not running)" 1 "$(grep -c . <<<"$out")"
check_match "SHOW RECOVERY: running is false" '^\|[^|]*\|f\|' "$out"
out=$(admin -c 'SHOW RECOVERY' 2>&1)
check_match "SHOW RECOVERY: its columns" \
	'node \| phase \| running \| bytes_copied \| bytes_total \| lag_bytes \| pause_ms \| started \| ended \| error' "$out"
out=$(admin_rows 'sHoW pOoL_nOdEs ; /* a comment; with a semicolon */ Show Recovery;;' 2>&1)
check_eq "two commands in one query, mixed case, comments, trailing ';': 3 + 1 rows" 4 "$(grep -c . <<<"$out")"

# ---- errors ------------------------------------------------------------------------
out=$(admin -c 'SHOW NODEZ' 2>&1)
check_eq "unknown command: psql exits non-zero" 1 "$?"
check_match "unknown command: 42601 and the list of commands" \
	'ERROR: +42601: syntax error: unknown admin command "SHOW NODEZ"' "$out"
check_match "unknown command: the hint lists the commands" 'HINT: +Commands: SHOW NODES, .*DETACH NODE n' "$out"
out=$(admin -c 'DETACH NODE two' 2>&1)
check_match "DETACH NODE without a number: 42601 with its usage" 'ERROR: +42601: .*HINT: +Usage: DETACH NODE n' \
	"$(tr '\n' ' ' <<<"$out")"
out=$(admin -c 'DETACH NODE 3' 2>&1)
check_eq "DETACH NODE 3 (out of range): psql exits non-zero" 1 "$?"
check_match "DETACH NODE 3: 22023 with a message" 'ERROR: +22023: node 3 does not exist \(node ids are 0 to 2\)' "$out"
out=$(admin -c 'DETACH NODE -1' 2>&1)
check_match "DETACH NODE -1: 22023" 'ERROR: +22023: node -1 does not exist' "$out"
out=$(admin -c 'DETACH NODE 99999999999999999999999' 2>&1)
check_match "DETACH NODE with a huge id: 22023" 'ERROR: +22023: node id out of range' "$out"
out=$(admin -c "SHOW NODES; DETACH NODE 'x'" 2>&1)
check_match "a syntax error anywhere: nothing runs (no rows before the error)" '^ERROR: +42601' "$out"

# ---- DETACH NODE 2 --------------------------------------------------------------------
check "CREATE TABLE t71 through pgchorus" chorus_sql 'create table t71 (id int primary key)'
check "INSERT 1 through pgchorus" chorus_sql 'insert into t71 values (1)'
check_eq "row 1 is on every node" "1 1 1" "$(node_has 0 1) $(node_has 1 1) $(node_has 2 1)"
out=$(admin -c 'DETACH NODE 2' 2>&1)
check_eq "DETACH NODE 2: command tag" "DETACH NODE" "$out"
out=$(admin_rows 'SHOW NODES' 2>&1)
check_match "SHOW NODES: node 2 is detached, with the reason and the time of the change" \
	"^2\|127\.0\.0\.1\|$NODE2_PORT\|detached\|standby\|1\|detached by an administrator\|20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:.]+\+00\|" "$out"
check_match "SHOW NODES: node 0 is still up and primary" '^0\|[^|]*\|[0-9]+\|up\|primary\|' "$out"
check_match "SHOW POOL_NODES: node 2 detached" '^2\|[^|]*\|[0-9]+\|detached\|' "$(admin_rows 'SHOW POOL_NODES' 2>&1)"
check "INSERT 2 through a new connection" chorus_sql 'insert into t71 values (2)'
check_eq "row 2 is on nodes 0 and 1, not on node 2" "1 1 0" "$(node_has 0 2) $(node_has 1 2) $(node_has 2 2)"
check_match "the log names the administrator and the command" \
	'admin postgres@127\.0\.0\.1:[0-9]+: DETACH NODE 2' "$(cat "$CHORUS_LOG")"
out=$(admin -c 'detach node 2' 2>&1)
check_match "DETACH NODE 2 again: 55000, not up" 'ERROR: +55000: node 2 is not up \(it is detached\)' "$out"

# ---- ATTACH / RECOVER: whatever the HA thread answers is relayed ------------------------
out=$(admin -c 'ATTACH NODE 2' 2>&1)
check_match "ATTACH NODE 2: started (NOTICE and tag) or refused with 55000 and the reason" \
	'(NOTICE: +00000: attach of node 2 started.*ATTACH NODE|ERROR: +55000: cannot attach node 2: .+)' \
	"$(tr '\n' ' ' <<<"$out")"
out=$(admin -c 'ATTACH NODE 5' 2>&1)
check_match "ATTACH NODE 5: 22023" 'ERROR: +22023: node 5 does not exist' "$out"
out=$(admin -c 'RECOVER NODE 0' 2>&1)
check_match "RECOVER NODE 0 (up): refused with 55000 and the reason" 'ERROR: +55000: cannot recover node 0: .+' "$out"

# ---- non-admin users --------------------------------------------------------------------
check_match "bob (not in admin_users): FATAL 42501 at login" \
	'^error FATAL 42501 permission denied for the admin console' "$(pgwire -U bob -d pgchorus q:'SHOW NODES')"
out=$(chorus_psql -U bob -d pgchorus -c 'SHOW NODES' 2>&1)
check_eq "bob: psql exits non-zero" 2 "$?"
check_match "bob: psql shows the message" 'permission denied for the admin console' "$out"
check_match "ops (listed after a comma and a blank) may, even without a role on the nodes" \
	'^ok 0 ' "$(pgwire -U ops -d pgchorus q:'SHOW NODES')"
check_eq "bob may still use the normal database" "bob" "$(chorus_psql -U bob -qAt -c 'select current_user' 2>&1)"

# ---- psycopg (autocommit) ------------------------------------------------------------------
out=$(with_timeout 30 "$PY" - "$(chorus_dsn pgchorus)" <<'EOF' 2>&1
import sys
import psycopg

conn = psycopg.connect(sys.argv[1], autocommit=True)
cur = conn.cursor()
cur.execute("SHOW NODES")
rows = cur.fetchall()
print("simple", len(rows), [r[0] for r in rows], type(rows[0][0]).__name__, rows[0][3], rows[0][4],
      [d.name for d in cur.description][:3])
cur.execute("SHOW NODES", prepare=True)
print("prepared", len(cur.fetchall()))
cur.execute("SHOW NODES", prepare=True)
print("prepared again", len(cur.fetchall()))
cur.execute("SHOW POOL_NODES", binary=True)
rows = cur.fetchall()
print("binary", len(rows), rows[0][0], rows[0][4], rows[2][3])
cur.execute("SHOW RECOVERY", binary=True)
r = cur.fetchone()
print("recovery", r[0], r[2], r[3])
try:
    cur.execute("DETACH NODE %s", (2,))
    print("parameters accepted?")
except psycopg.Error as e:
    print("parameters", e.sqlstate)
cur.execute("SHOW RECOVERY")
print("after error", len(cur.fetchall()))
try:
    cur.execute("DETACH NODE 42", binary=True)
except psycopg.Error as e:
    print("extended error", e.sqlstate)
print("version", conn.info.server_version >= 100000)
conn.close()
EOF
)
check_match "psycopg: SHOW NODES (simple protocol): 3 rows, int ids, node 0 up primary" \
	"^simple 3 \[0, 1, 2\] int up primary \['id', 'host', 'port'\]" "$out"
check_match "psycopg: prepare=True (named statement) returns the rows" '^prepared 3$' "$out"
check_match "psycopg: prepare=True a second time (the prepared statement reused)" '^prepared again 3$' "$out"
check_match "psycopg: binary results (extended protocol, unnamed statement)" '^binary 3 0 1.0 detached$' "$out"
check_match "psycopg: SHOW RECOVERY in binary" '^recovery None False 0$' "$out"
check_match "psycopg: server-side parameters refused with 0A000" '^parameters 0A000$' "$out"
check_match "psycopg: the connection works after the error" '^after error 1$' "$out"
check_match "psycopg: an error in the extended protocol carries its SQLSTATE" '^extended error 22023$' "$out"
check_match "psycopg: a server_version it understands" '^version True$' "$out"

# ---- the protocol, message by message ----------------------------------------------------------
# Each step prints the types of the messages received up to ReadyForQuery
# (E:SQLSTATE, C:tag), or "closed" after a FATAL error.
wire() {
	with_timeout 30 "$PY" - "$CHORUS_PORT" "$@" <<'EOF' 2>&1
import socket, struct, sys

port = int(sys.argv[1])


def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    body = struct.pack("!i", 196608) + b"user\0postgres\0database\0pgchorus\0\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    read_to_ready(s)
    return s


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def fields(body):
    return {p[:1]: p[1:].decode() for p in body.split(b"\0") if p}


def read_to_ready(s, upto=b"Z"):
    got = []
    while True:
        try:
            h = recv_exact(s, 5)
        except ConnectionResetError:
            h = None
        if h is None:
            got.append("closed")
            return got
        t = h[:1]
        (n,) = struct.unpack("!i", h[1:])
        body = recv_exact(s, n - 4)
        if t == b"E":
            f = fields(body)
            got.append(f"{f[b'V']}:{f[b'C']}" if f[b"V"] == "FATAL" else f"E:{f[b'C']}")
        elif t == b"C":
            got.append("C:" + body[:-1].decode())
        elif t == b"N":
            got.append("N")
        else:
            got.append(t.decode())
        if t == upto:
            return got


def msg(t, body=b""):
    return t + struct.pack("!i", len(body) + 4) + body


def parse(name, sql, types=()):
    return msg(b"P", name + b"\0" + sql + b"\0" + struct.pack("!h", len(types)) +
               b"".join(struct.pack("!i", t) for t in types))


def bind(portal=b"", stmt=b"", params=(), res=()):
    b = portal + b"\0" + stmt + b"\0" + struct.pack("!h", 0) + struct.pack("!h", len(params))
    for p in params:
        b += struct.pack("!i", len(p)) + p
    b += struct.pack("!h", len(res)) + b"".join(struct.pack("!h", f) for f in res)
    return msg(b"B", b)


def describe(kind, name=b""):
    return msg(b"D", kind + name + b"\0")


def execute(portal=b"", max_rows=0):
    return msg(b"E", portal + b"\0" + struct.pack("!i", max_rows))


def close(kind, name=b""):
    return msg(b"C", kind + name + b"\0")


SYNC = msg(b"S")


def step(name, data, s=None, upto=b"Z"):
    s = s or conn()
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed early: what it said before is still to be read
    print(name, " ".join(read_to_ready(s, upto)))
    return s


s = conn()
step("pipeline", parse(b"", b"show nodes") + bind() + describe(b"P") + execute() + SYNC, s)
step("describe-stmt", parse(b"s1", b"SHOW RECOVERY") + describe(b"S", b"s1") + bind(stmt=b"s1") +
     execute() + close(b"S", b"s1") + SYNC, s)
step("empty", msg(b"Q", b" ;; -- nothing\0"), s)
step("multi", msg(b"Q", b"SHOW RECOVERY; SHOW RECOVERY\0"), s)
step("error-stops", msg(b"Q", b"DETACH NODE 9; SHOW RECOVERY\0"), s)
step("named-portal", bind(portal=b"p1", stmt=b"s-none") + execute(b"p1") + SYNC, s)
step("no-statement", bind(stmt=b"nope") + execute() + SYNC, s)
step("two-commands", parse(b"", b"SHOW NODES; SHOW NODES") + bind() + execute() + SYNC, s)
step("param-types", parse(b"", b"SHOW NODES", (23,)) + SYNC, s)
step("params", parse(b"", b"SHOW NODES") + bind(params=(b"1",)) + execute() + SYNC, s)
step("max-rows", parse(b"", b"SHOW NODES") + bind() + execute(max_rows=1) + SYNC, s)
step("bad-formats", parse(b"", b"SHOW NODES") + bind(res=(0, 1)) + SYNC, s)
step("exists", parse(b"x", b"SHOW NODES") + parse(b"x", b"SHOW NODES") + SYNC, s)
step("function-call", msg(b"F", struct.pack("!ihhh", 1234, 0, 0, 0)), s)
step("flush", parse(b"", b"SHOW NODES") + msg(b"H"), s, upto=b"1")
step("after-flush", bind() + execute() + SYNC, s)
s.sendall(msg(b"X"))
print("terminate", "closed" if s.recv(1) == b"" else "open")
step("bad-describe", describe(b"Z"))
step("bad-length", b"Q" + struct.pack("!i", 2))
step("bad-type", msg(b"z", b"junk"))
step("bad-query", msg(b"Q", b"SHOW NODES\0junk"))
step("huge-query", msg(b"Q", b"SHOW NODES /*" + b"x" * 70000 + b"*/\0"))
step("still-up", msg(b"Q", b"SHOW RECOVERY\0"))
EOF
}
out=$(wire)
check_match "wire: Parse/Bind/Describe/Execute/Sync pipelined" '^pipeline 1 2 T D D D C:SHOW Z$' "$out"
check_match "wire: a named statement: Describe S, Bind, Execute, Close" \
	'^describe-stmt 1 t T 2 D C:SHOW 3 Z$' "$out"
check_match "wire: an empty query: EmptyQueryResponse" '^empty I Z$' "$out"
check_match "wire: two commands, two results" '^multi T D C:SHOW T D C:SHOW Z$' "$out"
check_match "wire: an error stops the rest of the query" '^error-stops E:22023 Z$' "$out"
check_match "wire: a named portal: 0A000, then nothing up to Sync" '^named-portal E:0A000 Z$' "$out"
check_match "wire: Bind of an unknown statement: 26000" '^no-statement E:26000 Z$' "$out"
check_match "wire: two commands in a prepared statement: 42601" '^two-commands E:42601 Z$' "$out"
check_match "wire: Parse with parameter types: 0A000" '^param-types E:0A000 Z$' "$out"
check_match "wire: Bind with parameters: 0A000" '^params 1 E:0A000 Z$' "$out"
check_match "wire: Execute with a row limit below the rows: 0A000" '^max-rows 1 2 E:0A000 Z$' "$out"
check_match "wire: two result formats for nine columns: 08P01 error, session goes on" \
	'^bad-formats 1 E:08P01 Z$' "$out"
check_match "wire: a named statement twice: 42P05" '^exists 1 E:42P05 Z$' "$out"
check_match "wire: FunctionCall: 0A000" '^function-call E:0A000 Z$' "$out"
check_match "wire: Flush sends ParseComplete at once" '^flush 1$' "$out"
check_match "wire: ... and the statement is used afterwards" '^after-flush 2 D D D C:SHOW Z$' "$out"
check_match "wire: Terminate closes" '^terminate closed$' "$out"
check_match "wire: a malformed Describe: FATAL 08P01 and closed" '^bad-describe FATAL:08P01 closed$' "$out"
check_match "wire: a bad length: FATAL 08P01 and closed" '^bad-length FATAL:08P01 closed$' "$out"
check_match "wire: an unknown message type: FATAL 08P01 and closed" '^bad-type FATAL:08P01 closed$' "$out"
check_match "wire: a Query with bytes after its string: FATAL 08P01" '^bad-query FATAL:08P01 closed$' "$out"
check_match "wire: a message too long for the console: FATAL 08P01" '^huge-query FATAL:08P01 closed$' "$out"
check_match "wire: pgchorus still answers" '^still-up T D C:SHOW Z$' "$out"

# ---- the last node up cannot be detached -------------------------------------------------------
check_eq "DETACH NODE 1" "DETACH NODE" "$(admin -c 'DETACH NODE 1' 2>&1)"
out=$(admin -c 'DETACH NODE 0' 2>&1)
check_match "DETACH NODE 0 (the only node up): 55000" \
	'ERROR: +55000: node 0 is the only node that is up: it cannot be detached' "$out"
check_eq "node 0 is still up" "up" "$(admin_rows 'SHOW NODES' | sed -n 's/^0|[^|]*|[^|]*|\([^|]*\)|.*/\1/p')"
chorus_stop

# ---- pool mode ------------------------------------------------------------------------------
chorus_conf 'mode = "pool";' "state_file = \"$TEST_TMP/pool.state\";"
chorus_start
out=$(admin_rows 'SHOW NODES' 2>&1)
check_eq "pool mode: SHOW NODES lists 3 nodes" 3 "$(grep -c . <<<"$out")"
check_match "pool mode: node 0 up and primary" '^0\|127\.0\.0\.1\|[0-9]+\|up\|primary\|' "$out"
check "pool mode: a normal client still works" chorus_sql 'select 1'
check "pool mode: psycopg prepare=True on the console" with_timeout 30 "$PY" -c "
import sys, psycopg
with psycopg.connect('$(chorus_dsn pgchorus)', autocommit=True) as c:
    assert len(c.execute('SHOW POOL_NODES', prepare=True).fetchall()) == 3
"
chorus_stop
