#!/usr/bin/python3
"""bench/idle_clients.py - open N PostgreSQL client connections and keep them idle.

Used by bench/idle.sh.  Only the Python 3 standard library: one thread,
non-blocking sockets and a selector.  Each connection sends a protocol 3.0
StartupMessage (user, database), expects trust authentication
(AuthenticationOk) and waits for ReadyForQuery.  At most --batch
connections are being set up at any moment; a new one starts as soon as one
of them is logged in or has failed.

When every connection has either logged in or failed, it prints
    ready N
on stdout (N = connections logged in), and, when some failed,
    failed K
followed by one line per reason ("  COUNT x REASON") on stderr.  Then it
keeps the connections open, reading (and discarding) whatever the server
sends, until stdin reaches end of file or SIGTERM / SIGINT / SIGHUP
arrives; then it closes them all, prints "closed N (lost L while idle)" on
stderr and exits 0 (1 when no connection could be made at all).

Usage: idle_clients.py --port PORT [--host 127.0.0.1] [--user postgres]
                       [--database postgres] [--batch 200] [--timeout 120] N
"""

import argparse
import collections
import errno
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time

PROTOCOL_3_0 = 196608


def startup_message(user, database):
    body = struct.pack("!i", PROTOCOL_3_0)
    for key, value in (("user", user), ("database", database)):
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def error_text(payload):
    """The severity and message fields of an ErrorResponse body."""
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode("utf-8", "replace")
    sev = fields.get(b"V") or fields.get(b"S") or "ERROR"
    code = fields.get(b"C", "")
    return "%s %s: %s" % (sev, code, fields.get(b"M", "?"))


class Conn:
    __slots__ = ("sock", "state", "out", "inbuf", "started")

    def __init__(self, sock):
        self.sock = sock
        self.state = "connecting"  # -> "login" -> "ready"
        self.out = b""
        self.inbuf = b""
        self.started = time.monotonic()


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    new = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ValueError, OSError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        sys.stderr.write("idle_clients: open file limit %d is below the %d needed; "
                         "raise it with ulimit -n\n" % (soft, need))


def main():
    ap = argparse.ArgumentParser(description="hold N idle PostgreSQL connections")
    ap.add_argument("count", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--database", default="postgres")
    ap.add_argument("--batch", type=int, default=200,
                    help="connections being set up at the same time")
    ap.add_argument("--timeout", type=float, default=120,
                    help="seconds for all connections to log in")
    args = ap.parse_args()

    raise_fd_limit(args.count + 64)

    stop = []

    def on_signal(signum, _frame):
        stop.append(signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    sel = selectors.DefaultSelector()
    startup = startup_message(args.user, args.database)
    failures = collections.Counter()
    ready = []
    pending = 0
    started = 0
    deadline = time.monotonic() + args.timeout

    def fail(c, reason):
        nonlocal pending
        failures[reason] += 1
        pending -= 1
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def start_one():
        nonlocal pending, started
        started += 1
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            failures["socket(): %s" % os.strerror(e.errno)] += 1
            return
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn(s)
        c.out = startup
        rc = s.connect_ex((args.host, args.port))
        if rc not in (0, errno.EINPROGRESS):
            failures["connect: %s" % os.strerror(rc)] += 1
            s.close()
            return
        pending += 1
        sel.register(s, selectors.EVENT_WRITE, c)

    def on_readable(c):
        """Read and parse what the server sent; False when the connection is gone."""
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return True
        except OSError as e:
            return "recv: %s" % os.strerror(e.errno)
        if not data:
            return "server closed the connection" + (" while idle" if c.state == "ready" else "")
        c.inbuf += data
        while len(c.inbuf) >= 5:
            kind = c.inbuf[:1]
            (length,) = struct.unpack("!i", c.inbuf[1:5])
            if len(c.inbuf) < 1 + length:
                break
            payload = c.inbuf[5:1 + length]
            c.inbuf = c.inbuf[1 + length:]
            if kind == b"E":
                return error_text(payload)
            if c.state != "login":
                continue
            if kind == b"R":
                (code,) = struct.unpack("!i", payload[:4])
                if code != 0:
                    return "authentication request %d (only trust is supported)" % code
            elif kind == b"Z":
                c.state = "ready"
                c.inbuf = b""
        return True

    # Phase 1: log in, at most --batch at a time.
    while (started < args.count or pending > 0) and not stop:
        while started < args.count and pending < args.batch:
            start_one()
        if time.monotonic() > deadline:
            break
        for key, _mask in sel.select(timeout=0.5):
            c = key.data
            if c.state == "connecting":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(c, "connect: %s" % os.strerror(err))
                    continue
                c.state = "login"
                sel.modify(c.sock, selectors.EVENT_READ, c)
                try:
                    c.sock.send(c.out)  # 40-odd bytes into an empty socket buffer
                except OSError as e:
                    fail(c, "send: %s" % os.strerror(e.errno))
                continue
            was_ready = c.state == "ready"
            r = on_readable(c)
            if r is not True:
                if was_ready:  # logged in, then lost before the others were
                    ready.remove(c)
                    pending += 1  # fail() counts it down again
                fail(c, r)
            elif c.state == "ready" and not was_ready:
                pending -= 1
                ready.append(c)
    if pending > 0:
        for key in list(sel.get_map().values()):
            c = key.data
            if c.state != "ready":
                fail(c, "no ReadyForQuery within %g s" % args.timeout)
    not_started = args.count - started
    if not_started > 0:
        failures["not started (stopped by a signal)" if stop else "not started"] += not_started

    sys.stdout.write("ready %d\n" % len(ready))
    sys.stdout.flush()
    nfail = sum(failures.values())
    if nfail:
        sys.stderr.write("failed %d\n" % nfail)
        for reason, n in failures.most_common():
            sys.stderr.write("  %d x %s\n" % (n, reason))
        sys.stderr.flush()

    # Phase 2: hold them until stdin closes or a signal arrives.
    lost = collections.Counter()
    stdin_fd = sys.stdin.fileno()
    stdin_key = None
    try:
        os.set_blocking(stdin_fd, False)
        stdin_key = sel.register(stdin_fd, selectors.EVENT_READ, None)
    except (OSError, ValueError):
        pass  # not selectable (e.g. /dev/null is; a closed fd is not): signals only
    alive = len(ready)
    while not stop:
        try:
            events = sel.select(timeout=1.0)
        except InterruptedError:
            continue
        eof = False
        for key, _mask in events:
            if key.data is None:
                try:
                    if not os.read(stdin_fd, 4096):
                        eof = True
                except BlockingIOError:
                    pass
                except OSError:
                    eof = True
                continue
            r = on_readable(key.data)
            if r is not True:
                lost[r] += 1
                alive -= 1
                sel.unregister(key.data.sock)
                key.data.sock.close()
        if eof:
            break
    if stdin_key is not None:
        sel.unregister(stdin_fd)
    for key in list(sel.get_map().values()):
        key.data.sock.close()
    sel.close()
    sys.stderr.write("closed %d (lost %d while idle)\n" % (alive, sum(lost.values())))
    for reason, n in lost.most_common():
        sys.stderr.write("  %d x %s\n" % (n, reason))
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
