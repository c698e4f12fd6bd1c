# shellcheck shell=bash
# lib_tls.sh - helpers for the TLS, authentication and limit tests (51..54),
# sourced after lib.sh.
#
# Certificates are made at test time in $TEST_TMP/tls (nothing secret is kept
# in the repository; data/tls/openssl.cnf only holds the extension sections).
#
# Functions:
#   tls_make_ca NAME CN               $TLS_DIR/NAME.crt, NAME.key: a self-signed CA
#   tls_make_cert NAME CA CN SAN      $TLS_DIR/NAME.crt, NAME.key signed by CA
#                                     (SAN as for openssl, "DNS:localhost,IP:127.0.0.1")
#   tls_fingerprint FILE              SHA-256 fingerprint of a PEM certificate
#   tls_served_fingerprint PORT       fingerprint of the certificate served on
#                                     127.0.0.1:PORT after a PostgreSQL SSLRequest
#   node_ssl_on K NAME                node K serves $TLS_DIR/NAME.crt/.key (ssl = on, reload)
#   node_ssl_off K                    node K: ssl = off (reload)
#   node_hba_prepend K LINE...        put LINEs before node K's pg_hba.conf, reload
#   scram_verifier PASSWORD           a SCRAM-SHA-256 verifier as in pg_authid
#   md5_secret USER PASSWORD          "md5" || md5(PASSWORD || USER)
#   pgwire [OPTIONS] [ACTION...]      a raw protocol client that reports SQLSTATEs
#                                     (see the comment above it)
#   now                               current time in seconds (decimal)
#   secs_since START                  seconds (decimal) since START=$(now)
#   secs_le A B                       true when the decimal A <= B

TLS_DIR=$TEST_TMP/tls
TLS_CNF=$TOP/test/integration/data/tls/openssl.cnf

tls_make_ca() {
	local name=$1 cn=$2
	mkdir -p "$TLS_DIR"
	TLS_CN=$cn TLS_SAN="DNS:unused" openssl req -x509 -new -newkey rsa:2048 -nodes \
		-config "$TLS_CNF" -extensions ca_ext -days 2 \
		-keyout "$TLS_DIR/$name.key" -out "$TLS_DIR/$name.crt" >"$TLS_DIR/$name.log" 2>&1 ||
		{
			diag_file "$TLS_DIR/$name.log"
			bail "openssl makes the CA $name"
		}
}

tls_make_cert() {
	local name=$1 ca=$2 cn=$3 san=$4
	mkdir -p "$TLS_DIR"
	{
		TLS_CN=$cn TLS_SAN=$san openssl req -new -newkey rsa:2048 -nodes -config "$TLS_CNF" \
			-keyout "$TLS_DIR/$name.key" -out "$TLS_DIR/$name.csr" &&
			TLS_CN=$cn TLS_SAN=$san openssl x509 -req -in "$TLS_DIR/$name.csr" -days 2 \
				-CA "$TLS_DIR/$ca.crt" -CAkey "$TLS_DIR/$ca.key" -set_serial "0x$(openssl rand -hex 8)" \
				-extfile "$TLS_CNF" -extensions server_ext -out "$TLS_DIR/$name.crt"
	} >"$TLS_DIR/$name.log" 2>&1 ||
		{
			diag_file "$TLS_DIR/$name.log"
			bail "openssl makes the certificate $name"
		}
	chmod 600 "$TLS_DIR/$name.key"
}

tls_fingerprint() {
	openssl x509 -noout -fingerprint -sha256 -in "$1" 2>/dev/null | sed 's/^.*=//'
}

tls_served_fingerprint() {
	with_timeout 10 openssl s_client -starttls postgres -connect "127.0.0.1:$1" \
		-servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/^.*=//'
}

_node_dir() {
	local var=NODE${1}_DIR
	# cluster.env sets NODEk_DIR; lib.sh does not export it, so read it again
	# shellcheck source=/dev/null
	(. "$CLUSTER_DIR/cluster.env" && printf '%s\n' "${!var}")
}

# _pg_install SRC DST: a copy owned by the nodes' user, mode 0600
_pg_install() {
	if [ "$(id -u)" -eq 0 ]; then
		install -o postgres -g postgres -m 600 "$1" "$2"
	else
		install -m 600 "$1" "$2"
	fi
}

node_ssl_on() {
	local k=$1 name=$2 dir
	dir=$(_node_dir "$k")
	_pg_install "$TLS_DIR/$name.crt" "$dir/server.crt" &&
		_pg_install "$TLS_DIR/$name.key" "$dir/server.key" &&
		node_sql "$k" "alter system set ssl_cert_file = 'server.crt'" >/dev/null &&
		node_sql "$k" "alter system set ssl_key_file = 'server.key'" >/dev/null &&
		node_sql "$k" "alter system set ssl = on" >/dev/null &&
		node_sql "$k" "select pg_reload_conf()" >/dev/null || return 1
	wait_until 5 _node_ssl_is "$k" on
}

node_ssl_off() {
	node_sql "$1" "alter system set ssl = off" >/dev/null &&
		node_sql "$1" "select pg_reload_conf()" >/dev/null || return 1
	wait_until 5 _node_ssl_is "$1" off
}

_node_ssl_is() {
	[ "$(node_sql "$1" 'show ssl')" = "$2" ]
}

node_hba_prepend() {
	local k=$1 dir
	shift
	dir=$(_node_dir "$k")
	{ printf '%s\n' "$@" && cat "$dir/pg_hba.conf"; } >"$TEST_TMP/pg_hba.new" || return 1
	_pg_install "$TEST_TMP/pg_hba.new" "$dir/pg_hba.conf" &&
		node_sql "$k" "select pg_reload_conf()" >/dev/null
}

scram_verifier() {
	"$PY" - "$1" <<'EOF'
import base64, hashlib, hmac, os, sys
pw = sys.argv[1].encode()
salt = os.urandom(16)
it = 4096
salted = hashlib.pbkdf2_hmac("sha256", pw, salt, it)
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
stored_key = hashlib.sha256(client_key).digest()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print(f"SCRAM-SHA-256${it}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}")
EOF
}

md5_secret() {
	printf 'md5%s\n' "$(printf '%s%s' "$2" "$1" | md5sum | cut -d' ' -f1)"
}

now() {
	date +%s.%N
}

secs_since() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f\n", b - a }'
}

# secs_le A B: true when the decimal A <= B
secs_le() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'
}

# pgwire [OPTIONS] [ACTION...]: speak the protocol to pgchorus (or a node)
# directly, so that the SQLSTATE of an error during startup or authentication
# is visible (libpq and psycopg keep only the message of a failed login).
#
# OPTIONS: -h HOST (default 127.0.0.1, a directory = unix socket)
#   -p PORT (default $CHORUS_PORT)  -U USER (postgres)  -d DB (postgres)
#   -W PASSWORD  --ssl disable|prefer|require (default disable)
#   -t SECS  (default 10: no answer for that long is "timeout")
#   --param NAME=VALUE  an extra startup parameter (repeatable)
# ACTIONS, run after a successful login, in order:
#   q:SQL       simple query
#   partial     send the start of a Query message and not the rest
#   sleep:SECS  sleep
#   wait:SECS   wait until the server sends something or closes
#   waitfile:F  wait until file F exists (at most 60 s)
#   cert        the SHA-256 fingerprint of the server's certificate (TLS)
# Output, one line per step (login first), each ending in " t=SECONDS" (since
# the start):
#   login ok METHOD (trust, password, md5 or scram)
#   ssl N (the server refused TLS with --ssl require)
#   ok VALUE (first column of the first row, "" if none)
#   error SEVERITY SQLSTATE MESSAGE | closed | timeout | silent | cert HEX
# The program stops after the first error, closed or timeout line.
pgwire() {
	"$PY" - "$@" <<'EOF'
import base64, getopt, hashlib, hmac, os, socket, ssl, struct, sys, time

T0 = time.monotonic()
opts, actions = getopt.getopt(sys.argv[1:], "h:p:U:d:W:t:", ["ssl=", "param="])
o = dict(opts)
extra = [v.split("=", 1) for k, v in opts if k == "--param"]
host = o.get("-h", "127.0.0.1")
port = int(o.get("-p", os.environ.get("CHORUS_PORT", "5432")))
user = o.get("-U", "postgres")
db = o.get("-d", "postgres")
password = o.get("-W")
sslmode = o.get("--ssl", "disable")
timeout = float(o.get("-t", "10"))


def out(text):
    print(f"{text} t={time.monotonic() - T0:.2f}", flush=True)


class Stop(Exception):
    pass


class Timeout(Exception):
    pass


if host.startswith("/"):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(f"{host}/.s.PGSQL.{port}")
else:
    sock = socket.create_connection((host, port), timeout=timeout)


def recv_exact(n):
    b = b""
    while len(b) < n:
        try:
            c = sock.recv(n - len(b))
        except socket.timeout:
            raise Timeout
        except (ConnectionError, ssl.SSLError):
            c = b""
        if not c:
            out("closed")
            raise Stop
        b += c
    return b


def read_msg():
    hdr = recv_exact(5)
    typ = hdr[:1]
    (n,) = struct.unpack("!i", hdr[1:])
    return typ, recv_exact(n - 4)


def send_raw(data):
    # Like libpq, carry on after a failed write: the server may have sent an
    # error before it closed, and reading shows it.
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def send(typ, body):
    send_raw(typ + struct.pack("!i", len(body) + 4) + body)


def error_line(body):
    f = {}
    for part in body.split(b"\0"):
        if part:
            f[part[:1].decode()] = part[1:].decode(errors="replace")
    return f"error {f.get('V', f.get('S', '?'))} {f.get('C', '?')} {f.get('M', '')}"


def hm(key, msg):
    return hmac.new(key, msg, "sha256").digest()


def scram(mechs):
    if "SCRAM-SHA-256" not in mechs:
        out(f"no SCRAM-SHA-256 in {mechs}")
        raise Stop
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=,r={cnonce}"
    data = ("n,," + first_bare).encode()
    send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(data)) + data)
    typ, body = read_msg()
    if typ == b"E":
        out(error_line(body))
        raise Stop
    server_first = body[4:].decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", (password or "").encode(),
                                 base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hm(salted, b"Client Key")
    without_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
    sig = hm(hashlib.sha256(client_key).digest(), auth_msg)
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    send(b"p", f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    typ, body = read_msg()
    if typ == b"E":
        out(error_line(body))
        raise Stop
    want = base64.b64encode(hm(hm(salted, b"Server Key"), auth_msg)).decode()
    if body[4:].decode() != f"v={want}":
        out("bad server signature")
        raise Stop


def login():
    global sock
    if sslmode != "disable":
        send_raw(struct.pack("!ii", 8, 80877103))
        answer = recv_exact(1)
        if answer == b"S":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock)
        elif sslmode == "require":
            out("ssl " + answer.decode(errors="replace"))
            raise Stop
    params = b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0"
    for k, v in extra:
        params += k.encode() + b"\0" + v.encode() + b"\0"
    params += b"\0"
    body = struct.pack("!i", 196608) + params
    send_raw(struct.pack("!i", len(body) + 4) + body)
    method = "trust"
    while True:
        typ, body = read_msg()
        if typ == b"E":
            out(error_line(body))
            raise Stop
        if typ == b"Z":
            out("login ok " + method)
            return
        if typ != b"R":
            continue
        (code,) = struct.unpack("!i", body[:4])
        if code == 3:
            method = "password"
            send(b"p", (password or "").encode() + b"\0")
        elif code == 5:
            method = "md5"
            inner = hashlib.md5((password or "").encode() + user.encode()).hexdigest()
            outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
            send(b"p", b"md5" + outer.encode() + b"\0")
        elif code == 10:
            method = "scram"
            scram([m.decode() for m in body[4:].split(b"\0") if m])
        elif code != 0:
            out(f"unsupported authentication request {code}")
            raise Stop


def query(sql):
    send(b"Q", sql.encode() + b"\0")
    value, err = None, None
    while True:
        typ, body = read_msg()
        if typ == b"E":
            err = error_line(body)
            if " FATAL " in f" {err} ":
                out(err)
                raise Stop
        elif typ == b"D" and value is None:
            (n,) = struct.unpack("!h", body[:2])
            if n > 0:
                (ln,) = struct.unpack("!i", body[2:6])
                value = "NULL" if ln < 0 else body[6:6 + ln].decode(errors="replace")
        elif typ == b"Z":
            out(err if err else f"ok {value if value is not None else ''}")
            return


def wait(secs):
    sock.settimeout(float(secs))
    try:
        typ, body = read_msg()
    except Timeout:
        out("silent")
        return
    finally:
        sock.settimeout(timeout)
    out(error_line(body) if typ == b"E" else f"message {typ.decode()}")


try:
    login()
    for a in actions:
        verb, _, arg = a.partition(":")
        if verb == "q":
            query(arg)
        elif verb == "partial":
            # a Query message that declares more bytes than are sent
            send_raw(b"Q" + struct.pack("!i", 100) + b"select 1")
        elif verb == "sleep":
            time.sleep(float(arg))
        elif verb == "wait":
            wait(arg)
        elif verb == "waitfile":
            end = time.monotonic() + 60
            while not os.path.exists(arg) and time.monotonic() < end:
                time.sleep(0.05)
        elif verb == "cert":
            der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
            out("cert " + (":".join(f"{b:02X}" for b in hashlib.sha256(der).digest()) if der else "none"))
        else:
            out(f"unknown action {a}")
            raise Stop
except Stop:
    pass
except Timeout:
    out("timeout")
except OSError as e:
    out(f"oserror {e}")
EOF
}
