#!/usr/bin/python3
"""make_corpus.py - write the seed corpora of the fuzz targets.

    /usr/bin/python3 test/fuzz/make_corpus.py

Writes test/fuzz/corpus/<target>/<name> (replacing files of the same name,
leaving others alone): a handful of real protocol messages per target, in
the input layout each target documents in its header comment.  The files are
kept in git; rerun this script after changing a layout.
"""
import base64
import hashlib
import hmac
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# ---- protocol helpers ---------------------------------------------------------


def cstr(s):
    return s.encode() + b"\0"


def msg(t, body=b""):
    return t.encode() + struct.pack("!I", len(body) + 4) + body


def startup(params, version=0x00030000):
    body = struct.pack("!I", version)
    for k, v in params:
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


SSL_REQUEST = struct.pack("!II", 8, 80877103)
GSSENC_REQUEST = struct.pack("!II", 8, 80877104)


def cancel_request(pid, key):
    return struct.pack("!IIII", 16, 80877102, pid, key)


def parse(name, query, types=()):
    return msg("P", cstr(name) + cstr(query) + struct.pack("!H", len(types))
               + b"".join(struct.pack("!I", t) for t in types))


def bind(portal, stmt, values, fmts=(), rfmts=()):
    body = cstr(portal) + cstr(stmt) + struct.pack("!H", len(fmts))
    body += b"".join(struct.pack("!H", f) for f in fmts)
    body += struct.pack("!H", len(values))
    for v in values:
        body += struct.pack("!i", -1) if v is None else struct.pack("!I", len(v)) + v
    body += struct.pack("!H", len(rfmts)) + b"".join(struct.pack("!H", f) for f in rfmts)
    return msg("B", body)


def describe(kind, name):
    return msg("D", kind.encode() + cstr(name))


def execute(portal, maxrows=0):
    return msg("E", cstr(portal) + struct.pack("!I", maxrows))


def close(kind, name):
    return msg("C", kind.encode() + cstr(name))


SYNC = msg("S")
FLUSH = msg("H")
TERMINATE = msg("X")


def query(sql):
    return msg("Q", cstr(sql))


def error_response(fields):
    return msg("E", b"".join(k.encode() + cstr(v) for k, v in fields) + b"\0")


def notice_response(fields):
    return msg("N", b"".join(k.encode() + cstr(v) for k, v in fields) + b"\0")


def row_description(cols):
    body = struct.pack("!H", len(cols))
    for name, typ in cols:
        body += cstr(name) + struct.pack("!IHIhiH", 0, 0, typ, 4, -1, 0)
    return msg("T", body)


def data_row(values):
    body = struct.pack("!H", len(values))
    for v in values:
        body += struct.pack("!i", -1) if v is None else struct.pack("!I", len(v)) + v
    return msg("D", body)


def command_complete(tag):
    return msg("C", cstr(tag))


def ready(status="I"):
    return msg("Z", status.encode())


def param_status(k, v):
    return msg("S", cstr(k) + cstr(v))


def auth(code, rest=b""):
    return msg("R", struct.pack("!I", code) + rest)


# fuzz_codec header: flags, 64 direction bits (bit i: message i is a server
# message), chunk seed
ALL_SERVER = 4
ALL_CLIENT = 8


def codec_input(stream, flags, directions=0, seed=1):
    return bytes([flags]) + struct.pack("<Q", directions) + bytes([seed]) + stream


def mixed(messages, flags=2, seed=7):
    """messages: list of (is_server, bytes)."""
    bits = 0
    for i, (server, _) in enumerate(messages):
        if server:
            bits |= 1 << (i % 64)
    return codec_input(b"".join(m for _, m in messages), flags, bits, seed)


# ---- SCRAM ------------------------------------------------------------------

# must match fuzz_scram.c
PASSWORD = b"pencil"
SALT = b"pgchorus-fuzzing"
ITERATIONS = 4096
SERVER_NONCE = "fuzzServerNonce0123456789"
CLIENT_NONCE = "fuzzClientNonce0123456789"


def scram_keys():
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD, SALT, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return client_key, hashlib.sha256(client_key).digest(), server_key


def scram_input(mode, flags, first, second):
    return bytes([mode, flags]) + struct.pack("<H", len(first)) + first + second


def scram_final(first, gs2, cnonce):
    """A complete, correct client-final-message for client-first FIRST."""
    client_key, stored_key, _ = scram_keys()
    bare = first[len(gs2):]
    server_first = "r=%s%s,s=%s,i=%d" % (cnonce, SERVER_NONCE,
                                         base64.b64encode(SALT).decode(), ITERATIONS)
    wo_proof = "c=%s,r=%s%s" % (base64.b64encode(gs2.encode()).decode(), cnonce, SERVER_NONCE)
    am = "%s,%s,%s" % (bare, server_first, wo_proof)
    sig = hmac.new(stored_key, am.encode(), "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    return wo_proof + ",p=" + base64.b64encode(proof).decode()


def verifier():
    _, stored_key, server_key = scram_keys()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (
        ITERATIONS, base64.b64encode(SALT).decode(),
        base64.b64encode(stored_key).decode(), base64.b64encode(server_key).decode())


# ---- the corpora ---------------------------------------------------------------


def seeds():
    psql = startup([("user", "postgres"), ("database", "postgres"),
                    ("application_name", "psql"), ("client_encoding", "UTF8")])
    yield "fuzz_startup", "startup_psql", psql
    yield "fuzz_startup", "startup_user_only", startup([("user", "alice")])
    yield "fuzz_startup", "startup_options", startup(
        [("user", "bob"), ("database", "app"), ("options", "-c search_path=s1"),
         ("DateStyle", "ISO, MDY"), ("TimeZone", "UTC"), ("extra_float_digits", "3")])
    yield "fuzz_startup", "startup_3_1_pq_option", startup(
        [("user", "u"), ("_pq_.compression", "on")], version=0x00030001)
    yield "fuzz_startup", "startup_no_user", startup([("database", "postgres")])
    yield "fuzz_startup", "startup_protocol_2", startup([("user", "u")], version=0x00020000)
    yield "fuzz_startup", "ssl_request", SSL_REQUEST
    yield "fuzz_startup", "ssl_then_startup", SSL_REQUEST + psql
    yield "fuzz_startup", "gssenc_then_ssl_then_startup", GSSENC_REQUEST + SSL_REQUEST + psql
    yield "fuzz_startup", "cancel_request", cancel_request(0x01000005, 0xdeadbeef)

    ext = (parse("s1", "select $1::int + $2", (23, 23)) + bind("", "s1", [b"1", None], (0,), (0,))
           + describe("P", "") + execute("", 0) + SYNC)
    yield "fuzz_codec", "client_extended_query", codec_input(ext, ALL_CLIENT | 1)
    yield "fuzz_codec", "client_unnamed_pipeline", codec_input(
        parse("", "select 1") + bind("", "", []) + execute("") + parse("", "select 2")
        + bind("", "", []) + execute("", 10) + close("S", "s1") + FLUSH + SYNC + TERMINATE,
        ALL_CLIENT, seed=3)
    yield "fuzz_codec", "client_simple_query", codec_input(
        query("select 1; discard all") + query("deallocate all") + TERMINATE, ALL_CLIENT, seed=9)
    yield "fuzz_codec", "client_function_call", codec_input(
        msg("F", struct.pack("!IHHH", 1598, 1, 0, 1) + struct.pack("!I", 4) + b"\0\0\0\1"
            + struct.pack("!H", 0)) + SYNC, ALL_CLIENT)
    yield "fuzz_codec", "client_sasl", codec_input(
        msg("p", cstr("SCRAM-SHA-256") + struct.pack("!I", 28) + b"n,,n=,r=rOprNGfwEbeRWgbNEkqO")
        + msg("p", b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA")
        + msg("p", cstr("secret")), ALL_CLIENT)
    yield "fuzz_codec", "server_login", codec_input(
        auth(10, cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0")
        + auth(11, b"r=abc,s=QSXCR+Q6sek8bf92,i=4096") + auth(12, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        + auth(5, b"\x01\x02\x03\x04") + auth(0)
        + param_status("server_version", "15.5") + param_status("client_encoding", "UTF8")
        + msg("K", struct.pack("!II", 4242, 0x12345678)) + ready("I"), ALL_SERVER | 1)
    yield "fuzz_codec", "server_results", codec_input(
        msg("1") + msg("2") + row_description([("a", 23), ("b", 25)])
        + data_row([b"1", None]) + data_row([b"22", b"text"]) + command_complete("SELECT 2")
        + msg("n") + msg("I") + msg("s") + msg("t", struct.pack("!HII", 2, 23, 25))
        + msg("A", struct.pack("!I", 77) + cstr("chan") + cstr("payload"))
        + msg("v", struct.pack("!II", 0, 1) + cstr("_pq_.compression")) + ready("T"),
        ALL_SERVER | 2, seed=5)
    yield "fuzz_codec", "server_error", codec_input(
        notice_response([("S", "NOTICE"), ("V", "NOTICE"), ("C", "00000"), ("M", "hello")])
        + error_response([("S", "ERROR"), ("V", "ERROR"), ("C", "42P01"),
                          ("M", 'relation "t" does not exist'), ("P", "15"),
                          ("F", "parse_relation.c"), ("L", "1384"), ("R", "parserOpenTable")])
        + ready("E"), ALL_SERVER)
    yield "fuzz_codec", "mixed_extended_with_error", mixed(
        [(False, parse("s", "select 1/0")), (False, bind("", "s", [])), (False, execute("")),
         (False, SYNC), (True, msg("1")), (True, msg("2")),
         (True, error_response([("S", "ERROR"), ("C", "22012"), ("M", "division by zero")])),
         (True, ready("I")), (False, query("select 1")), (True, row_description([("x", 23)])),
         (True, data_row([b"1"])), (True, command_complete("SELECT 1")), (True, ready("I"))])
    yield "fuzz_codec", "mixed_copy_in", mixed(
        [(False, query("copy t from stdin")), (True, msg("G", b"\0" + struct.pack("!HH", 1, 0))),
         (False, msg("d", b"1\tone\n")), (False, msg("d", b"2\ttwo\n")), (False, msg("c")),
         (True, command_complete("COPY 2")), (True, ready("I")),
         (False, parse("", "copy t from stdin")), (False, bind("", "", [])), (False, execute("")),
         (False, SYNC), (True, msg("1")), (True, msg("2")), (True, msg("G", b"\0\0\0")),
         (False, msg("f", cstr("client gave up"))), (False, SYNC),
         (True, error_response([("S", "ERROR"), ("C", "57014"), ("M", "COPY from stdin failed")])),
         (True, ready("I"))], flags=3, seed=11)

    for name, flags, gs2, mech_bits in (("server_plain", 0, "n,,", 0),
                                        ("server_y_without_tls", 0, "y,,", 0),
                                        ("server_tls_downgrade", 1, "y,,", 0),
                                        ("server_tls_plus", 1, "p=tls-server-end-point,,", 2)):
        first = gs2 + "n=,r=rOprNGfwEbeRWgbNEkqO"
        # the harness adds "c=...,r=..." and the proof: the exchange succeeds
        yield "fuzz_scram", name + "_auto", scram_input(0, flags | mech_bits | 0x18, first.encode(), b"")
    first = "n,,n=,r=rOprNGfwEbeRWgbNEkqO"
    yield "fuzz_scram", "server_plain_literal", scram_input(
        0, 0, first.encode(), scram_final(first, "n,,", "rOprNGfwEbeRWgbNEkqO").encode())
    yield "fuzz_scram", "server_extensions", scram_input(
        0, 0x18, b"n,,n=user,r=abcdef,x=ext", b",y=other")
    yield "fuzz_scram", "server_authzid", scram_input(0, 0, b"n,a=admin,n=,r=x", b"")
    yield "fuzz_scram", "server_mock", scram_input(0, 0x38, first.encode(), b"")
    yield "fuzz_scram", "client_auto", scram_input(1, 0x18, b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", b"")
    yield "fuzz_scram", "client_plus_auto", scram_input(1, 0x1b, b"XYZ", b"")
    sf = ("r=%s%%hvYDpW,s=%s,i=4096" % (CLIENT_NONCE, base64.b64encode(SALT).decode())).encode()
    yield "fuzz_scram", "client_literal", scram_input(
        1, 0, sf, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    yield "fuzz_scram", "client_server_error", scram_input(1, 0x08, b"abc", b"e=invalid-proof")
    yield "fuzz_scram", "verifier", scram_input(2, 0, b"", verifier().encode())

    yield "fuzz_hba", "typical", (
        b"# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
        b"local   all       all             trust\n"
        b"host    all       all   127.0.0.1/32   trust\n"
        b"host    all       all   ::1/128        scram-sha-256\n"
        b"hostssl app,\"my db\" alice,bob 10.0.0.0 255.0.0.0 md5\n"
        b"hostnossl sameuser all all password\n"
        b"host    replication all all reject\n"
        b"host    all all 0.0.0.0/0 \\\n  reject\n")


def main():
    for target, name, data in seeds():
        d = os.path.join(CORPUS, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
