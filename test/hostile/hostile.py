#!/usr/bin/python3
"""hostile.py HOST PORT USER DBNAME [options] - hostile clients against pgchorus.

Sends malformed, truncated, oversized and out-of-place protocol traffic to a
running pgchorus from many sockets at once, category by category.  For every
hostile socket the outcome must be a FATAL ErrorResponse with the SQLSTATE
PostgreSQL would use (08P01 protocol violation, 28000 no user name, 0A000
unsupported protocol version or SCRAM feature, 28P01 wrong password, 53300
too many connections) followed by a close, or a plain close; never a hang
(every read has a deadline, --timeout seconds) and never a FATAL with the
connection left open.  After each category a normal psycopg client must
still connect and run "select 1".  Finally 10,000 connections (--churn) are
opened and dropped in batches of --batch while a normal client keeps
querying; the number of its queries that succeeded is reported.

Options:
  --sockets N     hostile sockets per case (default 20)
  --timeout S     seconds to wait for an answer before calling it a hang (5)
  --churn N       connections opened and dropped at the end (10000; 0: skip)
  --batch N       of those, how many are open at once (200)
  --pool-size N   pgchorus' pool_size, for the server pinning case (4)
  --max-client-conn N  pgchorus' max_client_conn: that many idle sockets
                  plus 50 are opened at once, the 50 must get 53300 (0: skip)
  --pid PID       pgchorus' process id: check it stays alive, report its
                  memory and open file descriptors, and check that neither
                  grows without bound
  --only WORD     run only the cases whose name contains WORD
  --password PW   pgchorus authenticates clients with SCRAM-SHA-256 and PW
                  is USER's password: raw logins do the SCRAM exchange, the
                  normal client gives the password, and the authentication
                  cases are added (malformed SASL messages, wrong mechanism,
                  nonce or proof, messages of another type, stalls)
  --tls           pgchorus has TLS for clients: every hostile socket first
                  does SSLRequest and a TLS handshake (so all cases run
                  inside TLS), the normal client uses sslmode=require, and
                  hostile TLS cases are added (plaintext or garbage where a
                  handshake is due, a handshake cut short, bytes that are no
                  TLS records after it, handshakes dropped at every stage)
  --tls-churn N   with --tls, how many handshakes are dropped (1000)

Output: one "ok - ..." / "not ok - ..." line per check and "# ..."
diagnostics; exit status 1 if any check failed.  Requires psycopg 3
(/usr/bin/python3 on Debian has it).
"""
import argparse
import base64
import hashlib
import hmac
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

PROTOCOL_3_0 = 0x00030000
SSL_REQUEST_CODE = 80877103
FRONTEND_TYPES = set(b"QPBDECSFHdcfX")  # what pgchorus relays (and Terminate)
MAX_MESSAGE_SIZE = 1 << 30             # pgchorus' default max_message_size
MAX_STARTUP_SIZE = 10000               # and max_startup_size

failures = 0
opts = None
tls_context = None
cases_run = 0   # cases run since the last after_category()


def ok(cond, desc, details=()):
    global failures
    if cond:
        print(f"ok - {desc}", flush=True)
    else:
        failures += 1
        print(f"not ok - {desc}", flush=True)
    for line in details:
        print(f"#   {line}", flush=True)
    return cond


def diag(text):
    for line in str(text).splitlines():
        print(f"# {line}", flush=True)


# ---- protocol helpers ------------------------------------------------------------


def cstr(s):
    return (s if isinstance(s, bytes) else s.encode()) + b"\0"


def startup_packet(params, version=PROTOCOL_3_0, terminator=True):
    body = struct.pack("!I", version)
    for k, v in params:
        body += cstr(k) + cstr(v)
    if terminator:
        body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def message(mtype, body=b""):
    return mtype + struct.pack("!I", len(body) + 4) + body


def header(mtype, length):
    """A message header declaring LENGTH (the length word's value)."""
    return mtype + struct.pack("!I", length & 0xffffffff)


def login_params():
    return [("user", opts.user), ("database", opts.dbname), ("application_name", "hostile.py")]


class Outcome:
    """What a hostile socket got back: the backend messages (type, body),
    the 'N'/'S' answer to an SSLRequest, and how it ended: 'close' (EOF or
    reset) or 'hang' (nothing conclusive before the deadline)."""

    def __init__(self):
        self.messages = []
        self.ssl_answer = None
        self.rest = b""      # bytes received that form no complete message
        self.end = None
        self.elapsed = 0.0

    def first_error(self):
        for t, body in self.messages:
            if t == b"E":
                return error_fields(body)
        return None

    def summary(self):
        err = self.first_error()
        if err is not None:
            sev = err.get("V", err.get("S", "?"))
            s = f"{sev} {err.get('C', '?')}"
            if self.end == "ready":
                s += ", then answered"
            elif self.end != "close":
                s += " without close"
            return s
        if self.end == "close":
            return "close"
        if self.end == "ready":
            return "answered"
        kinds = "".join(t.decode("latin1") for t, _ in self.messages)
        if any(t == b"Z" for t, _ in self.messages):
            return f"logged in ('{kinds}'), no error"
        if self.rest:
            return f"hang after {self.rest[:8]!r}"
        return "hang" + (f" after '{kinds}'" if kinds else "")

    def detail(self):
        err = self.first_error()
        if err is None:
            return self.summary()
        return f"{self.summary()}: {err.get('M', '')}"


def error_fields(body):
    fields = {}
    pos = 0
    while pos < len(body) and body[pos] != 0:
        code = chr(body[pos])
        end = body.find(b"\0", pos + 1)
        if end < 0:
            break
        fields.setdefault(code, body[pos + 1:end].decode("utf-8", "replace"))
        pos = end + 1
    return fields


def ssl_request():
    return struct.pack("!II", 8, SSL_REQUEST_CODE)


def tls_client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a throw-away self-signed test certificate
    return ctx


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def connect(tls=None):
    """A TCP connection to pgchorus; with TLS (default: --tls), after an
    SSLRequest and a complete handshake."""
    s = socket.create_connection((opts.host, opts.port), timeout=opts.timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if opts.tls if tls is None else tls:
        s.sendall(ssl_request())
        answer = recv_exact(s, 1)
        if answer != b"S":
            s.close()
            raise RuntimeError(f"SSLRequest answered {answer!r}")
        s = tls_context.wrap_socket(s)
    return s


def read_outcome(s, timeout=None, ssl_answer=False, stop_at_ready=False):
    """Read backend messages until the connection closes or the deadline.
    After a FATAL error, keep reading: the connection must then close.
    With stop_at_ready (True or a count), return as soon as that many
    ReadyForQuery messages arrived (end 'ready')."""
    out = Outcome()
    start = time.monotonic()
    deadline = start + (timeout if timeout is not None else opts.timeout)
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            out.end = "hang"
            break
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except socket.timeout:
            out.end = "hang"
            break
        except (ConnectionError, ssl.SSLError):
            out.end = "close"
            break
        if not data:
            out.end = "close"
            break
        buf += data
        if ssl_answer and out.ssl_answer is None and buf[:1] in (b"N", b"S"):
            out.ssl_answer = buf[:1]
            buf = buf[1:]
        while len(buf) >= 5:
            (length,) = struct.unpack("!I", buf[1:5])
            if len(buf) < 1 + length:
                break
            out.messages.append((buf[:1], buf[5:1 + length]))
            buf = buf[1 + length:]
        if stop_at_ready and sum(1 for t, _ in out.messages if t == b"Z") >= int(stop_at_ready):
            out.end = "ready"
            break
    out.rest = buf
    out.elapsed = time.monotonic() - start
    return out


def send_all(s, data):
    try:
        s.sendall(data)
        return True
    except (ConnectionError, socket.timeout, ssl.SSLError):
        return False  # the proxy already gave up on us: read what it said


def read_messages(s, count, timeout=None):
    """Read exactly COUNT backend messages (or fewer if the connection ends)."""
    out = Outcome()
    deadline = time.monotonic() + (timeout if timeout is not None else opts.timeout)
    buf = b""
    while len(out.messages) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            out.end = "hang"
            break
        s.settimeout(left)
        try:
            data = s.recv(1 if len(buf) < 5 else max(1, 1 + struct.unpack("!I", buf[1:5])[0] - len(buf)))
        except socket.timeout:
            out.end = "hang"
            break
        except (ConnectionError, ssl.SSLError):
            out.end = "close"
            break
        if not data:
            out.end = "close"
            break
        buf += data
        if len(buf) >= 5 and len(buf) == 1 + struct.unpack("!I", buf[1:5])[0]:
            out.messages.append((buf[:1], buf[5:]))
            buf = b""
    out.rest = buf
    return out


def auth_request(msg):
    """(code, data) of an Authentication message, or None."""
    t, body = msg
    if t != b"R" or len(body) < 4:
        return None
    return struct.unpack("!I", body[:4])[0], body[4:]


def sasl_initial(mechanism, data):
    if data is None:
        return message(b"p", cstr(mechanism) + struct.pack("!i", -1))
    return message(b"p", cstr(mechanism) + struct.pack("!I", len(data)) + data)


class ScramClient:
    """The client side of SCRAM-SHA-256 without channel binding."""

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def first(self):
        return ("n,," + self.first_bare).encode()

    def final(self, server_first, tamper=None):
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        nonce = attrs["r"] if tamper != "nonce" else attrs["r"] + "x"
        wo_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.first_bare},{server_first},{wo_proof}".encode()
        sig = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        if tamper == "proof":
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        return (wo_proof + ",p=" + base64.b64encode(proof).decode()).encode()


def scram_until_continue(s, user=None):
    """Startup, SASLInitialResponse; returns (client, server-first)."""
    s.sendall(startup_packet([("user", user or opts.user), ("database", opts.dbname)]))
    first = read_messages(s, 1)
    req = auth_request(first.messages[0]) if first.messages else None
    if not req or req[0] != 10:
        raise RuntimeError(f"expected AuthenticationSASL, got {first.detail()}")
    client = ScramClient(opts.password)
    s.sendall(sasl_initial("SCRAM-SHA-256", client.first()))
    cont = read_messages(s, 1)
    req = auth_request(cont.messages[0]) if cont.messages else None
    if not req or req[0] != 11:
        raise RuntimeError(f"expected AuthenticationSASLContinue, got {cont.detail()}")
    return client, req[1].decode()


def login(s):
    """A normal login over raw socket S (SCRAM with --password); returns
    once ReadyForQuery arrived."""
    if opts.password:
        client, server_first = scram_until_continue(s)
        s.sendall(message(b"p", client.final(server_first)))
    else:
        s.sendall(startup_packet(login_params()))
    out = read_outcome(s, stop_at_ready=True)
    if out.end != "ready" or out.first_error() is not None:
        raise RuntimeError(f"raw login failed: {out.detail()}")
    return out


def close_quietly(s, reset=False):
    try:
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass


# ---- the normal client -----------------------------------------------------------


def normal_query(timeout=15.0):
    """psycopg connect + select 1, in a thread with a deadline.
    Returns (True, None) or (False, reason)."""
    result = {}

    def run():
        try:
            with psycopg.connect(host=opts.host, port=opts.port, user=opts.user, dbname=opts.dbname,
                                 connect_timeout=int(timeout), autocommit=True, password=opts.password,
                                 sslmode="require" if opts.tls else "disable") as conn:
                result["conn"] = conn
                v = conn.execute("select 1").fetchone()[0]
                result["ok"] = v == 1
                if v != 1:
                    result["err"] = f"select 1 returned {v!r}"
        except Exception as e:  # noqa: BLE001 - any failure is reported
            result["ok"] = False
            result["err"] = f"{type(e).__name__}: {e}"

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        conn = result.get("conn")
        if conn is not None:
            try:
                conn.cancel()
            except Exception:  # noqa: BLE001
                pass
        t.join(5)
        return False, f"no answer within {timeout:.0f} s"
    return result.get("ok", False), result.get("err")


def proxy_alive():
    if not opts.pid:
        return True
    try:
        with open(f"/proc/{opts.pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def proxy_rss_kb():
    try:
        with open(f"/proc/{opts.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return None


def proxy_fds():
    try:
        return len(os.listdir(f"/proc/{opts.pid}/fd"))
    except (OSError, TypeError):
        return None


def after_category(name):
    global cases_run
    if not cases_run:
        return  # every case of the category was left out (--only)
    cases_run = 0
    alive = proxy_alive()
    ok(alive, f"pgchorus is still running after: {name}")
    if not alive:
        print("Bail out! pgchorus died", flush=True)
        sys.exit(1)
    good, err = normal_query()
    ok(good, f"a normal client connects and runs select 1 after: {name}", [err] if err else ())


# ---- running a case from many sockets --------------------------------------------


def wanted(name):
    return not opts.only or opts.only in name


def run_case(name, action, expect, n=None, allow_hang=None, lenient=None):
    """Run ACTION(sock_index) -> Outcome on N sockets at once and check each
    outcome.  EXPECT is the set of SQLSTATEs a FATAL may carry (a plain
    close is accepted too); ALLOW_HANG(i), if given, says that socket i may
    legitimately get no answer (the proxy is waiting for bytes that a
    declared length promised); LENIENT(i) that whatever error socket i got
    is acceptable (its bytes went to the node, which decides)."""
    global cases_run
    if not wanted(name):
        return
    cases_run += 1
    n = n or opts.sockets
    outcomes = [None] * n

    def one(i):
        try:
            outcomes[i] = action(i)
        except Exception as e:  # noqa: BLE001 - reported as a failure
            o = Outcome()
            o.end = f"exception {type(e).__name__}: {e}"
            outcomes[i] = o

    with ThreadPoolExecutor(max_workers=min(n, 64)) as ex:
        list(ex.map(one, range(n)))

    counts = {}
    bad = []
    for i, o in enumerate(outcomes):
        counts[o.summary()] = counts.get(o.summary(), 0) + 1
        err = o.first_error()
        if o.end not in ("close", "hang", "ready"):
            bad.append(f"socket {i}: {o.end}")
        elif lenient and lenient(i) and (o.end != "hang" or (allow_hang and allow_hang(i))):
            pass
        elif err is not None:
            sev = err.get("V", err.get("S"))
            if sev != "FATAL":
                bad.append(f"socket {i}: {sev} instead of FATAL: {o.detail()}")
            elif err.get("C") not in expect:
                bad.append(f"socket {i}: SQLSTATE {err.get('C')}, expected {'/'.join(sorted(expect))}: "
                           f"{o.detail()}")
            elif o.end != "close":
                bad.append(f"socket {i}: FATAL sent but the connection stayed open: {o.detail()}")
        elif o.end == "hang" and not (allow_hang and allow_hang(i)):
            bad.append(f"socket {i}: no error and no close within {opts.timeout:.0f} s "
                       f"(SSL answer {o.ssl_answer!r}, messages "
                       f"'{''.join(t.decode('latin1') for t, _ in o.messages)}', other bytes {o.rest[:16]!r})")
    summary = ", ".join(f"{c}x {k}" for k, c in sorted(counts.items(), key=lambda kv: -kv[1]))
    examples = sorted({o.detail() for o in outcomes if o.first_error() is not None})[:3]
    ok(not bad, f"{name} ({n} sockets: {summary})", bad[:8] + [f"answer: {e}" for e in examples if bad])
    return outcomes


def pre_login(payload, then_close=False, ssl=False, ready=0):
    """An action: send PAYLOAD on a fresh socket, then read the outcome
    (until READY ReadyForQuery messages arrived, if given)."""

    def action(i):
        s = connect()
        try:
            data = payload(i) if callable(payload) else payload
            send_all(s, data)
            if then_close:
                o = Outcome()
                o.end = "close"
                return o
            return read_outcome(s, ssl_answer=ssl, stop_at_ready=ready)
        finally:
            close_quietly(s)

    return action


def post_login(payload, wait=None, then=None, ready=1):
    """An action: log in, send PAYLOAD, optionally sleep WAIT seconds, send
    THEN, and read the outcome (with THEN: until READY ReadyForQuery)."""

    def action(i):
        s = connect()
        try:
            login(s)
            data = payload(i) if callable(payload) else payload
            send_all(s, data)
            if wait:
                time.sleep(wait)
            if then is not None:
                send_all(s, then)
            return read_outcome(s, stop_at_ready=ready if then is not None else 0)
        finally:
            close_quietly(s)

    return action


# ---- what the proxy must do with a byte stream (for random input) -----------------


def startup_stream_verdict(data):
    """'fatal' if pgchorus must refuse the first startup packet of DATA at
    once (bad length word), 'wait' if it may be waiting for more bytes."""
    if len(data) < 4:
        return "wait"
    (length,) = struct.unpack("!I", data[:4])
    if length < 8 or length > MAX_STARTUP_SIZE:
        return "fatal"
    return "wait" if length > len(data) else "parsed"


def message_stream_verdict(data):
    """For a byte stream sent after login: 'fatal' if the first message has
    an invalid type or length, 'wait' if its declared length is not reached
    (the proxy forwards it and waits), 'other' if it is complete (the node
    decides what happens)."""
    if len(data) < 5:
        return "wait"
    (length,) = struct.unpack("!I", data[1:5])
    if length < 4 or length > MAX_MESSAGE_SIZE or data[0] not in FRONTEND_TYPES:
        return "fatal"
    return "wait" if 1 + length > len(data) else "other"


# ---- the categories ---------------------------------------------------------------


def startup_cases():
    psql = startup_packet(login_params())

    run_case("startup: truncated packet, then close",
             pre_login(lambda i: psql[:1 + i % (len(psql) - 1)], then_close=True), {"08P01"})
    after_category("truncated startup packets")

    run_case("startup: truncated packet, then wait",
             pre_login(lambda i: psql[:4 + i % (len(psql) - 5)]), {"08P01"}, allow_hang=lambda i: True)

    for length in (0, 4, 7):
        run_case(f"startup: length word {length} (< 8)",
                 pre_login(struct.pack("!II", length, PROTOCOL_3_0)), {"08P01"})
    run_case("startup: length word 0x7fffffff",
             pre_login(struct.pack("!II", 0x7fffffff, PROTOCOL_3_0) + cstr("user") + cstr(opts.user)),
             {"08P01"})
    run_case("startup: length word 0xffffffff",
             pre_login(struct.pack("!II", 0xffffffff, PROTOCOL_3_0)), {"08P01"})
    run_case("startup: length word max_startup_size + 1, packet sent whole",
             pre_login(lambda i: struct.pack("!II", MAX_STARTUP_SIZE + 1, PROTOCOL_3_0)
                       + b"x" * (MAX_STARTUP_SIZE - 7)), {"08P01"})
    after_category("startup length words")

    body = struct.pack("!I", PROTOCOL_3_0) + cstr("user") + cstr(opts.user) + cstr("database") + cstr(opts.dbname)
    run_case("startup: packet without its final terminator",
             pre_login(struct.pack("!I", len(body) + 4) + body), {"08P01"})
    body2 = struct.pack("!I", PROTOCOL_3_0) + cstr("user") + cstr(opts.user) + b"database\0post"
    run_case("startup: packet ending inside a value",
             pre_login(struct.pack("!I", len(body2) + 4) + body2), {"08P01"})
    run_case("startup: no user parameter",
             pre_login(startup_packet([("database", opts.dbname)])), {"28000"})
    run_case("startup: empty user name",
             pre_login(startup_packet([("user", ""), ("database", opts.dbname)])), {"28000"})
    run_case("startup: no parameters at all", pre_login(startup_packet([])), {"28000"})
    after_category("startup packet layout")

    run_case("startup: protocol version 2.0",
             pre_login(startup_packet(login_params(), version=0x00020000)), {"0A000"})
    run_case("startup: protocol version 4.0",
             pre_login(startup_packet(login_params(), version=0x00040000)), {"0A000"})
    run_case("startup: protocol version 1234.5677 (next to the request codes)",
             pre_login(startup_packet(login_params(), version=0x04d2162d)), {"0A000"})
    after_category("protocol versions")

    many_small = [("user", opts.user)] + [(f"p{k}", "v") for k in range(999)]
    run_case("startup: 1000 short parameters (fits max_startup_size)",
             pre_login(startup_packet(many_small)), {"08P01"})
    many_big = [("user", opts.user)] + [(f"parameter_{k:04d}", "value_" * 3) for k in range(999)]
    run_case("startup: 1000 parameters (packet above max_startup_size)",
             pre_login(startup_packet(many_big)), {"08P01"})
    after_category("1000 parameters")

    ssl = struct.pack("!II", 8, SSL_REQUEST_CODE)
    # PostgreSQL answers 'N' and then "received unencrypted data after SSL
    # request" (08P01) even without TLS: bytes sent with the SSLRequest were
    # written before the answer was read.
    # Under TLS (ssl=True negotiates it first) the SSLRequest is a second one:
    # PostgreSQL then answers 0A000 (no protocol 1234.5679), as pgchorus does.
    run_case("startup: SSLRequest and a plaintext startup packet in the same write",
             pre_login(ssl + psql, ssl=True), {"08P01", "0A000"})
    run_case("startup: SSLRequest and garbage in the same write",
             pre_login(ssl + b"\x16\x03\x01garbage garbage", ssl=True), {"08P01", "0A000"})
    # PostgreSQL: 08P01 (data after the SSLRequest), or 0A000 for a second
    # SSLRequest read on its own (1234.5679 is no protocol version it speaks).
    run_case("startup: two SSLRequests in one write", pre_login(ssl + ssl, ssl=True), {"08P01", "0A000"})
    after_category("SSLRequest followed by plaintext")

    # Pipelining: what follows the startup packet in the same write must
    # wait for the login, not be lost or taken for part of it.
    q = message(b"Q", cstr("select 1"))
    outs = run_case("startup: startup packet and a query in the same write",
                    pre_login(psql + q, ready=2), set())
    if outs:
        answered = sum(1 for o in outs if sum(1 for t, _ in o.messages if t == b"Z") >= 2
                       and any(t == b"D" for t, _ in o.messages))
        ok(answered == len(outs), f"startup: the pipelined query is answered ({answered} of {len(outs)})")
    run_case("startup: startup packet and Terminate in the same write",
             pre_login(psql + message(b"X")), set())
    run_case("startup: CancelRequest for a backend that does not exist",
             pre_login(struct.pack("!IIII", 16, 80877102, 12345, 67890)), set())
    run_case("startup: CancelRequest 4 bytes short",
             pre_login(struct.pack("!III", 12, 80877102, 12345)), {"08P01"})
    after_category("pipelined and cancel requests")

    garbage = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),  # a TLS ClientHello
        b"\xff" * 64,
        b"\x00" * 64,
        b"SSH-2.0-OpenSSH_9.0\r\n",
    ]
    run_case("startup: garbage bytes (HTTP, TLS hello, 0xff, NULs, SSH banner)",
             pre_login(lambda i: garbage[i % len(garbage)]), {"08P01"})
    rnd = [random.Random(1000 + i).randbytes(4096) for i in range(opts.sockets)]
    run_case("startup: 4 KB of random bytes",
             pre_login(lambda i: rnd[i]), {"08P01", "28000", "0A000"},
             allow_hang=lambda i: startup_stream_verdict(rnd[i]) != "fatal")
    after_category("garbage before the startup packet")


def post_login_cases():
    run_case("after login: message length 3 (< 4)",
             post_login(header(b"Q", 3) + b"abc"), {"08P01"})
    run_case("after login: message length 0",
             post_login(header(b"S", 0)), {"08P01"})
    after_category("message length < 4")

    rss0 = proxy_rss_kb()
    outs = run_case("after login: message length 0x7ffffff0 (above max_message_size)",
                    post_login(header(b"Q", 0x7ffffff0) + b"select 1"), {"08P01"})
    if outs:
        texts = [o.first_error().get("M", "") for o in outs if o.first_error()]
        ok(texts and all("max_message_size" in t for t in texts),
           "after login: the error names max_message_size", sorted(set(texts))[:3])
    rss1 = proxy_rss_kb()
    if outs and rss0 is not None and rss1 is not None:
        ok(rss1 - rss0 < 100 * 1024,
           f"no big allocation for a huge declared length (RSS {rss0 // 1024} -> {rss1 // 1024} MB)")
    # Below max_message_size: PostgreSQL itself refuses a Sync longer than
    # 10000 bytes; through pgchorus the node or the proxy must say so.
    outs = run_case("after login: Sync declaring 256 MB (below max_message_size), 64 KB sent",
             post_login(header(b"S", 0x10000000) + b"\0" * 65536), {"08P01", "08006"})
    rss2 = proxy_rss_kb()
    if outs and rss0 is not None and rss2 is not None:
        ok(rss2 - rss0 < 100 * 1024,
           f"no big allocation for a 256 MB message in progress (RSS {rss0 // 1024} -> {rss2 // 1024} MB)")
    after_category("huge message lengths")

    run_case("after login: unknown message type 'z'", post_login(message(b"z", b"hello")), {"08P01"})
    run_case("after login: message type 0x00", post_login(message(b"\0")), {"08P01"})
    after_category("unknown message types")

    run_case("after login: 'p' (password message) after authentication",
             post_login(message(b"p", cstr("secret"))), {"08P01"})
    # PostgreSQL ignores CopyDone/CopyData/CopyFail outside COPY: the next
    # query must still be answered (or the proxy may refuse them with 08P01).
    q = message(b"Q", cstr("select 1"))
    for t, body, what in ((b"c", b"", "CopyDone"), (b"d", b"data", "CopyData"), (b"f", cstr("x"), "CopyFail")):
        outs = run_case(f"after login: '{t.decode()}' ({what}) outside COPY, then a query",
                        post_login(message(t, body), then=q), {"08P01"})
        if outs:
            answered = sum(1 for o in outs if o.end == "ready" and any(m[0] == b"D" for m in o.messages))
            refused = sum(1 for o in outs if o.end == "close")
            ok(answered + refused == len(outs),
               f"after login: the query after {what} is answered ({answered}) or the client refused "
               f"({refused})")
    # Extended-query messages pgchorus parses itself in transaction pooling
    # (prepared statements): malformed ones must end in an error from the
    # node or pgchorus, never in a hang, and the session must go on (or be
    # closed with 08P01).
    sync_then_query = message(b"S") + message(b"Q", cstr("select 1"))
    malformed = [
        ("Parse with only a statement name", message(b"P", cstr("s_trunc"))),
        ("Parse without the parameter count", message(b"P", cstr("s_nocount") + cstr("select 1"))),
        ("Parse declaring 65535 parameter types, none sent",
         message(b"P", cstr("s_types") + cstr("select 1") + b"\xff\xff")),
        ("Parse with an unterminated query", message(b"P", cstr("s_unterm") + b"select 1")),
        ("Bind of an unknown statement", message(b"B", cstr("") + cstr("no_such") + b"\0\0\0\0\0\0")),
        ("Bind with only a portal name", message(b"B", cstr(""))),
        ("Bind declaring 65535 parameters, none sent", message(b"B", cstr("") + cstr("") + b"\0\0\xff\xff")),
        ("Bind with a parameter length past the message",
         message(b"B", cstr("") + cstr("") + b"\0\0\0\1" + struct.pack("!I", 0x7fffffff) + b"ab")),
        ("Describe with an unterminated name", message(b"D", b"Sabc")),
        ("Describe of kind 'X'", message(b"D", b"Xabc\0")),
        ("Close with an unterminated name", message(b"C", b"Sabc")),
        ("Close with an empty body", message(b"C")),
        ("Execute with an empty body", message(b"E")),
        ("named Parse, then Bind and Execute of it with a truncated Bind",
         message(b"P", cstr("s_ok") + cstr("select 1") + b"\0\0") + message(b"B", cstr("") + cstr("s_ok"))
         + message(b"E", cstr("") + b"\0\0\0\0")),
    ]
    for what, payload in malformed:
        outs = run_case(f"after login: {what}, then Sync and a query",
                        post_login(payload, then=sync_then_query, ready=2), {"08P01"},
                        lenient=lambda i: True)
        if outs:
            answered = sum(1 for o in outs if o.end == "ready" and any(t == b"D" for t, _ in o.messages))
            refused = sum(1 for o in outs if o.end == "close")
            ok(answered + refused == len(outs),
               f"after login: after {what}, the session goes on ({answered}) or is closed ({refused})",
               sorted({o.detail() for o in outs if o.end not in ("ready", "close")})[:3])
    after_category("malformed extended-query messages")

    run_case("after login: 'X' Terminate with a body, then nothing",
             post_login(message(b"X", b"unexpected")), {"08P01"}, allow_hang=lambda i: False)
    after_category("messages out of their phase")

    def half_then_close(i):
        s = connect()
        try:
            login(s)
            msg = message(b"Q", cstr("select 'half a message' " + "x" * 100))
            send_all(s, msg[:1 + i % (len(msg) - 1)])
            time.sleep(2)
            o = Outcome()
            o.end = "close"
            return o
        finally:
            close_quietly(s, reset=bool(i % 2))

    run_case("after login: half a message, a 2 s stall, then close", half_then_close, {"08P01"})
    after_category("half a message then close")

    name = "after login: 5 MB of random bytes"
    if not wanted(name):
        return
    rnd = [random.Random(2000 + i).randbytes(5 << 20) for i in range(opts.sockets)]

    def random_stream(i):
        s = connect()
        try:
            login(s)
            send_all(s, rnd[i])
            return read_outcome(s)
        finally:
            close_quietly(s)

    verdicts = [message_stream_verdict(r) for r in rnd]
    diag(f"5 MB random streams: proxy must refuse {verdicts.count('fatal')}, may wait on "
         f"{verdicts.count('wait')}, node decides {verdicts.count('other')}")
    run_case(name, random_stream, {"08P01"},
             allow_hang=lambda i: verdicts[i] != "fatal", lenient=lambda i: verdicts[i] != "fatal")
    after_category("5 MB of random bytes")


def client_hello():
    """The first flight of a TLS handshake, as Python's ssl would send it."""
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_context.wrap_bio(inc, outg)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


def tls_cases():
    """Where pgchorus expects a TLS handshake, or right after one."""
    global cases_run
    psql = startup_packet(login_params())
    hello = client_hello()

    def after_s(payload, then_close=False, wait=0):
        def action(i):
            s = connect(tls=False)
            try:
                s.sendall(ssl_request())
                answer = recv_exact(s, 1)
                if answer != b"S":
                    raise RuntimeError(f"SSLRequest answered {answer!r}")
                send_all(s, payload(i) if callable(payload) else payload)
                if wait:
                    time.sleep(wait)
                if then_close:
                    o = Outcome()
                    o.end = "close"
                    return o
                return read_outcome(s)
            finally:
                close_quietly(s, reset=bool(i % 2))

        return action

    # With TLS, pgchorus must refuse bytes sent along with the SSLRequest
    # (CVE-2021-23214): they were not encrypted.
    run_case("handshake: SSLRequest and a plaintext startup packet in the same write",
             pre_login(ssl_request() + psql, ssl=True), {"08P01", "0A000"})
    run_case("handshake: SSLRequest and a ClientHello in the same write",
             pre_login(ssl_request() + hello, ssl=True), {"08P01", "0A000"})
    run_case("handshake: plaintext startup packet where the handshake is due", after_s(psql), {"08P01"})
    rnd = [random.Random(3000 + i).randbytes(4096) for i in range(opts.sockets)]
    run_case("handshake: 4 KB of random bytes where the handshake is due", after_s(lambda i: rnd[i]), {"08P01"})
    run_case("handshake: half a ClientHello, then close",
             after_s(lambda i: hello[:1 + i % (len(hello) - 1)], then_close=True), {"08P01"})
    run_case("handshake: half a ClientHello, a 2 s stall, then close",
             after_s(lambda i: hello[:1 + i % (len(hello) - 1)], then_close=True, wait=2), {"08P01"})
    run_case("handshake: half a ClientHello, then wait",
             after_s(lambda i: hello[:5 + i % (len(hello) - 5)]), {"08P01"}, allow_hang=lambda i: True)
    after_category("TLS handshake garbage")

    def raw_after_handshake(payload):
        def action(i):
            s = connect()
            raw = socket.socket(fileno=os.dup(s.fileno()))
            try:
                # bytes that are no TLS records, on the socket under TLS
                try:
                    raw.sendall(payload(i))
                except OSError:
                    pass
                return read_outcome(s)
            finally:
                close_quietly(raw)
                close_quietly(s)

        return action

    run_case("handshake: plaintext startup packet after the handshake (no TLS record)",
             raw_after_handshake(lambda i: psql), {"08P01"})
    run_case("handshake: random bytes after the handshake (no TLS record)",
             raw_after_handshake(lambda i: rnd[i][:1 + 97 * i]), {"08P01"},
             allow_hang=lambda i: True)
    # A TLS record header announcing 16 KB + more than the maximum
    run_case("handshake: a record header with an oversized length after the handshake",
             raw_after_handshake(lambda i: b"\x17\x03\x03\xff\xff" + b"\0" * 1024), {"08P01"})
    after_category("bytes that are no TLS records")

    name = f"handshake: {opts.tls_churn} TLS connections dropped at every stage of the handshake"
    if wanted(name):
        cases_run += 1
        failed = 0
        for b in range(0, opts.tls_churn, 50):
            socks = []
            for i in range(b, min(b + 50, opts.tls_churn)):
                mode = i % 5
                try:
                    if mode == 4:
                        s = connect(tls=True)          # complete handshake, then drop
                    else:
                        s = connect(tls=False)
                        s.sendall(ssl_request())
                        if mode >= 1:
                            recv_exact(s, 1)
                        if mode >= 2:
                            s.sendall(hello[:len(hello) // (mode - 1)])
                    socks.append((s, mode))
                except (OSError, RuntimeError):
                    failed += 1
            for s, mode in socks:
                close_quietly(s, reset=mode % 2 == 1)
        ok(failed == 0, f"{name} ({failed} could not get as far as planned)")
        after_category("TLS handshakes dropped")


def auth_cases():
    """Hostile traffic during a SCRAM-SHA-256 authentication."""
    psql = startup_packet(login_params())

    def at_sasl(payload, wait=0, then_close=False):
        """Startup, wait for AuthenticationSASL, send PAYLOAD."""

        def action(i):
            s = connect()
            try:
                s.sendall(psql)
                first = read_messages(s, 1)
                req = auth_request(first.messages[0]) if first.messages else None
                if not req or req[0] != 10:
                    raise RuntimeError(f"expected AuthenticationSASL, got {first.detail()}")
                send_all(s, payload(i) if callable(payload) else payload)
                if wait:
                    time.sleep(wait)
                if then_close:
                    o = Outcome()
                    o.end = "close"
                    return o
                return read_outcome(s)
            finally:
                close_quietly(s, reset=bool(i % 2))

        return action

    def at_final(make_final, then=b""):
        """Up to SASLContinue, then send make_final(client, server_first)."""

        def action(i):
            s = connect()
            try:
                client, server_first = scram_until_continue(s)
                send_all(s, make_final(client, server_first) + then)
                return read_outcome(s, stop_at_ready=2 if then else 1)
            finally:
                close_quietly(s)

        return action

    good_first = ScramClient("x").first()
    run_case("auth: a Query where the SASL response is due",
             at_sasl(message(b"Q", cstr("select 1"))), {"08P01"})
    run_case("auth: SASL message with length word 3", at_sasl(header(b"p", 3)), {"08P01"})
    run_case("auth: SASL message declaring 0x7ffffff0 bytes", at_sasl(header(b"p", 0x7ffffff0) + b"x" * 100),
             {"08P01"})
    run_case("auth: SASL message above max_startup_size, sent whole",
             at_sasl(message(b"p", b"x" * (MAX_STARTUP_SIZE + 100))), {"08P01"})
    run_case("auth: SASLInitialResponse without data (length -1)",
             at_sasl(sasl_initial("SCRAM-SHA-256", None)), {"08P01"})
    run_case("auth: SASLInitialResponse whose data length exceeds the message",
             at_sasl(message(b"p", cstr("SCRAM-SHA-256") + struct.pack("!I", 1000) + good_first)), {"08P01"})
    run_case("auth: SASLInitialResponse with an unterminated mechanism name",
             at_sasl(message(b"p", b"SCRAM-SHA-256")), {"08P01"})
    run_case("auth: SASLInitialResponse with bytes after its data",
             at_sasl(message(b"p", cstr("SCRAM-SHA-256") + struct.pack("!I", len(good_first)) + good_first
                             + b"trailing")), {"08P01"})
    run_case("auth: mechanism SCRAM-SHA-1 (not offered)",
             at_sasl(sasl_initial("SCRAM-SHA-1", good_first)), {"08P01"})
    run_case("auth: mechanism SCRAM-SHA-256-PLUS without TLS",
             at_sasl(sasl_initial("SCRAM-SHA-256-PLUS", b"p=tls-server-end-point,,n=,r=abc")), {"08P01"})
    run_case("auth: client-first-message that is not SCRAM",
             at_sasl(sasl_initial("SCRAM-SHA-256", b"hello world")), {"08P01"})
    run_case("auth: client-first-message with a NUL byte",
             at_sasl(sasl_initial("SCRAM-SHA-256", b"n,,n=,r=ab\0cd")), {"08P01"})
    # PostgreSQL: 0A000 "client uses authorization identity, but it is not
    # supported", 0A000 "client requires an unsupported SCRAM extension"
    run_case("auth: client-first-message with an authorization identity (a=)",
             at_sasl(sasl_initial("SCRAM-SHA-256", b"n,a=admin,n=,r=abcdef")), {"0A000"})
    run_case("auth: client-first-message with a mandatory extension (m=)",
             at_sasl(sasl_initial("SCRAM-SHA-256", b"n,,m=ext,n=,r=abcdef")), {"0A000"})
    run_case("auth: client-first-message with a 2000-byte nonce",
             at_sasl(sasl_initial("SCRAM-SHA-256", b"n,,n=,r=" + b"A" * 2000)), {"08P01"})
    after_category("malformed SASLInitialResponse")

    run_case("auth: client-final-message with another nonce",
             at_final(lambda c, sf: message(b"p", c.final(sf, tamper="nonce"))), {"08P01"})
    run_case("auth: client-final-message with a wrong proof",
             at_final(lambda c, sf: message(b"p", c.final(sf, tamper="proof"))), {"28P01"})
    run_case("auth: client-final-message that is garbage",
             at_final(lambda c, sf: message(b"p", b"\xff" * 64)), {"08P01"})
    run_case("auth: empty client-final-message",
             at_final(lambda c, sf: message(b"p")), {"08P01"})
    run_case("auth: a Query where client-final-message is due",
             at_final(lambda c, sf: message(b"Q", cstr("select 1"))), {"08P01"})
    after_category("malformed client-final-message")

    def wrong_password(i):
        s = connect()
        try:
            s.sendall(startup_packet([("user", opts.user if i % 2 else "no_such_user"),
                                      ("database", opts.dbname)]))
            first = read_messages(s, 1)
            req = auth_request(first.messages[0]) if first.messages else None
            if not req or req[0] != 10:
                return first
            client = ScramClient(opts.password + "-wrong")
            s.sendall(sasl_initial("SCRAM-SHA-256", client.first()))
            cont = read_messages(s, 1)
            req = auth_request(cont.messages[0]) if cont.messages else None
            if not req or req[0] != 11:
                return cont
            s.sendall(message(b"p", client.final(req[1].decode())))
            return read_outcome(s)
        finally:
            close_quietly(s)

    run_case("auth: wrong password, existing and unknown users", wrong_password, {"28P01"})
    after_category("wrong passwords")

    run_case("auth: half a SASLInitialResponse, a 2 s stall, then close",
             at_sasl(lambda i: sasl_initial("SCRAM-SHA-256", good_first)[:1 + i % 30], wait=2, then_close=True),
             {"08P01"})
    after_category("stalled authentication")

    # Pipelining: the SASLInitialResponse sent with the startup packet, the
    # query sent with the client-final-message.
    def startup_and_sasl(i):
        s = connect()
        try:
            client = ScramClient(opts.password)
            s.sendall(psql + sasl_initial("SCRAM-SHA-256", client.first()))
            o = read_messages(s, 2)
            if o.end is None:
                o.end = "hang"  # both answers came; the proxy now waits for client-final
            return o
        finally:
            close_quietly(s)

    outs = run_case("auth: startup packet and SASLInitialResponse in the same write", startup_and_sasl, set(),
                    allow_hang=lambda i: True)
    if outs:
        got = sum(1 for o in outs if len(o.messages) == 2 and auth_request(o.messages[1])
                  and auth_request(o.messages[1])[0] == 11)
        ok(got == len(outs), f"auth: the pipelined SASLInitialResponse is answered ({got} of {len(outs)})")
    outs = run_case("auth: client-final-message and a query in the same write",
                    at_final(lambda c, sf: message(b"p", c.final(sf)), then=message(b"Q", cstr("select 1"))),
                    set(), allow_hang=lambda i: True)
    if outs:
        got = sum(1 for o in outs if o.end == "ready")
        ok(got == len(outs), f"auth: the query sent with client-final-message is answered ({got} of {len(outs)})")
    after_category("pipelined authentication")


def pinning_case():
    """Clients that sent only messages PostgreSQL ignores outside COPY
    (CopyDone, CopyData, CopyFail: no answer at all) and then idle must not
    keep every server connection of the pool: a normal client must still
    get through."""
    name = "pool: clients idle after a lone CopyDone/CopyData/CopyFail do not starve others"
    if not wanted(name):
        return
    global cases_run
    cases_run += 1
    holders = []
    try:
        for i in range(2 * opts.pool_size):
            s = connect()
            login(s)
            t = (b"c", b"d", b"f")[i % 3]
            s.sendall(message(t, {b"c": b"", b"d": b"x", b"f": cstr("x")}[t]))
            holders.append(s)
        time.sleep(0.5)
        good, err = normal_query(timeout=10)
        ok(good, f"{name} ({len(holders)} idle holders, pool_size {opts.pool_size})", [err] if err else ())
    finally:
        for s in holders:
            close_quietly(s)
    after_category("idle clients after CopyDone/CopyData/CopyFail")


def flood_case():
    """max_client_conn idle connections plus 50 that send a startup packet:
    the 50 are refused with 53300 (too many connections), and once the
    flood is gone a normal client gets in again."""
    name = f"flood: {opts.max_client_conn} + 50 idle connections (max_client_conn {opts.max_client_conn})"
    if not opts.max_client_conn or not wanted(name):
        return
    global cases_run
    cases_run += 1
    held = []
    extra = []
    try:
        for _ in range(opts.max_client_conn):
            held.append(connect(tls=False))
        time.sleep(0.5)  # let pgchorus accept them all
        # PostgreSQL, too, refuses only once it has read the startup packet.
        psql = startup_packet(login_params())
        for _ in range(50):
            s = connect(tls=False)
            extra.append(s)
            send_all(s, psql)
        with ThreadPoolExecutor(max_workers=50) as ex:
            outs = list(ex.map(read_outcome, extra))
        refused = sum(1 for o in outs if (o.first_error() or {}).get("C") == "53300" and o.end == "close")
        ok(refused == len(outs), f"{name}: the excess ones get FATAL 53300 ({refused} of {len(outs)})",
           sorted({o.detail() for o in outs})[:3])
    finally:
        for s in held + extra:
            close_quietly(s, reset=True)
    time.sleep(1)
    after_category("connection flood")


def churn_case():
    """--churn connections opened and dropped, --batch at a time, in five
    ways: closed at once, closed after a startup packet, reset in the middle
    of a startup packet, reset after a startup packet, and (one in ten)
    closed after a complete login; meanwhile a normal client queries in a
    loop."""
    name = f"churn: {opts.churn} connections opened and dropped ({opts.batch} at a time)"
    if not wanted(name):
        return
    global cases_run
    cases_run += 1
    fds0 = proxy_fds()
    stop = threading.Event()
    stats = {"ok": 0, "fail": 0, "errors": []}

    def querier():
        while not stop.is_set():
            good, err = normal_query(timeout=15)
            if good:
                stats["ok"] += 1
            else:
                stats["fail"] += 1
                if len(stats["errors"]) < 5:
                    stats["errors"].append(err)

    qt = threading.Thread(target=querier, daemon=True)
    qt.start()
    psql = startup_packet(login_params())
    opened = refused = logins_failed = 0
    login_errors = []
    start = time.monotonic()
    for b in range(0, opts.churn, opts.batch):
        socks = []
        for i in range(b, min(b + opts.batch, opts.churn)):
            try:
                s = socket.create_connection((opts.host, opts.port), timeout=opts.timeout)
                opened += 1
            except OSError:
                refused += 1
                continue
            mode = 4 if i % 10 == 9 else i % 4
            try:
                if mode in (1, 3, 4):
                    s.sendall(psql)
                elif mode == 2:
                    s.sendall(psql[:len(psql) // 2])
            except OSError:
                pass
            socks.append((s, mode))
        for s, mode in socks:
            if mode == 4:
                o = read_outcome(s, stop_at_ready=True)
                if o.end != "ready":
                    logins_failed += 1
                    if len(login_errors) < 5:
                        login_errors.append(o.detail())
            close_quietly(s, reset=mode in (2, 3))
    elapsed = time.monotonic() - start
    stop.set()
    qt.join(30)
    ok(refused == 0, f"{name}: all connections accepted ({opened} in {elapsed:.1f} s, {refused} refused)")
    ok(logins_failed == 0, f"churn: the complete logins among them succeeded ({logins_failed} failed)",
       login_errors)
    ok(stats["fail"] == 0 and stats["ok"] > 0,
       f"churn: normal queries during the churn: {stats['ok']} succeeded, {stats['fail']} failed",
       stats["errors"])
    after_category("connection churn")
    if fds0 is not None:
        # let the proxy finish closing what was reset
        fds1 = proxy_fds()
        for _ in range(50):
            fds1 = proxy_fds()
            if fds1 is not None and fds1 <= fds0 + opts.pool_size + 8:
                break
            time.sleep(0.2)
        ok(fds1 is not None and fds1 <= fds0 + opts.pool_size + 8,
           f"churn: pgchorus' open file descriptors back to normal ({fds0} before, {fds1} after)")


def main():
    global opts, tls_context
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 usage="%(prog)s HOST PORT USER DBNAME [options]")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("user")
    ap.add_argument("dbname")
    ap.add_argument("--sockets", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--churn", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--pool-size", type=int, default=4)
    ap.add_argument("--max-client-conn", type=int, default=0)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--only", default="")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--password", default=None)
    ap.add_argument("--tls-churn", type=int, default=1000)
    opts = ap.parse_args()
    tls_context = tls_client_context()

    good, err = normal_query()
    if not ok(good, "a normal client connects and runs select 1 before anything hostile",
              [err] if err else ()):
        print("Bail out! pgchorus does not serve normal clients", flush=True)
        return 1
    rss0 = proxy_rss_kb()
    if opts.password:
        auth_cases()
    if opts.tls:
        tls_cases()
    startup_cases()
    post_login_cases()
    pinning_case()
    flood_case()
    if opts.churn > 0:
        churn_case()
    rss1 = proxy_rss_kb()
    if rss0 is not None and rss1 is not None:
        diag(f"pgchorus RSS: {rss0 // 1024} MB at the start, {rss1 // 1024} MB at the end")
    print(f"# hostile.py: {failures} failed check(s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
