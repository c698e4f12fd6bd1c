#!/usr/bin/python3
"""pipeline_checks.py PROXY_DSN NODE_DSN METRICS_URL - run by 31_pipeline.sh.

pgchorus runs with pool_size 2 and pipeline_depth 8: clients' autocommit
statements are queued behind each other on the two server connections.
Checked, as a user would:
  - every client gets its own answers (no answer goes to another client);
  - a statement that fails does not disturb the ones queued behind it;
  - autocommit INSERTs never land inside another client's transaction
    block (those blocks are rolled back: no row of an autocommit client may
    disappear, no row of a block may stay);
  - clients that leave with their statement in flight cost the others
    nothing;
  - a short statement is not queued behind a long one (pg_sleep);
  - server connections killed on the node while statements are queued on
    them: their clients get an error or a right answer, never another
    client's, and pgchorus goes on;
  - pgchorus_pipelined_total shows that statements were queued.
"""
import socket
import struct
import sys
import threading
import time
import urllib.request

import psycopg

import tap
from tap import ok

lock = threading.Lock()


def metric(url, name):
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
    return None


def echo_worker(dsn, wid, n, errors):
    """Autocommit statements whose answer names the sender; every 7th fails."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(n):
                if i % 7 == 3:
                    try:
                        conn.execute("select 1/0")
                        errors.append(f"worker {wid}: 1/0 did not fail")
                    except psycopg.errors.DivisionByZero:
                        pass
                    continue
                tag = f"w{wid}-{i}"
                row = conn.execute("select %s::text, %s::int * 2", (tag, i)).fetchone()
                if row != (tag, i * 2):
                    errors.append(f"worker {wid}: sent {tag!r}, got {row!r}")
                    return
    except Exception as e:  # noqa: BLE001 - any failure is reported
        errors.append(f"worker {wid}: {e!r}")


def autocommit_inserter(dsn, wid, n, errors):
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(n):
                conn.execute("insert into pipe_t values (%s, 'auto')", (wid * 100000 + i,))
    except Exception as e:  # noqa: BLE001
        errors.append(f"inserter {wid}: {e!r}")


def block_writer(dsn, wid, n, errors):
    """Transaction blocks that insert and roll back."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(n):
                conn.execute("begin")
                conn.execute("insert into pipe_t values (%s, 'block')", (-(wid * 100000 + i + 1),))
                conn.execute("select count(*) from pipe_t")
                conn.execute("rollback")
    except Exception as e:  # noqa: BLE001
        errors.append(f"block writer {wid}: {e!r}")


def startup_packet(user, db):
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", db)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def read_until_ready(s):
    buf = b""
    while True:
        data = s.recv(65536)
        if not data:
            raise ConnectionError("closed before ReadyForQuery")
        buf += data
        pos = 0
        while len(buf) - pos >= 5:
            t = buf[pos:pos + 1]
            ln = struct.unpack("!I", buf[pos + 1:pos + 5])[0]
            if len(buf) - pos - 1 < ln:
                break
            if t == b"Z":
                return
            pos += 1 + ln
        buf = buf[pos:]


def leaver(host, port, user, db, n, errors):
    """Log in, send a statement and close at once, N times."""
    try:
        for _ in range(n):
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(startup_packet(user, db))
            read_until_ready(s)
            q = b"select pg_sleep(0.001), 1\0"
            s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
            s.close()
    except Exception as e:  # noqa: BLE001
        errors.append(f"leaver: {e!r}")


def main():
    dsn, node_dsn, metrics_url = sys.argv[1:4]
    params = psycopg.conninfo.conninfo_to_dict(dsn)

    with psycopg.connect(node_dsn, autocommit=True) as node:
        node.execute("drop table if exists pipe_t")
        node.execute("create table pipe_t (id int primary key, kind text)")

    # 1-3: answers, errors, transaction blocks and leavers at once.
    errors = []
    threads = [threading.Thread(target=echo_worker, args=(dsn, w, 300, errors)) for w in range(8)]
    threads += [threading.Thread(target=autocommit_inserter, args=(dsn, w, 200, errors)) for w in range(4)]
    threads += [threading.Thread(target=block_writer, args=(dsn, w, 40, errors)) for w in range(2)]
    threads.append(threading.Thread(target=leaver, args=(params.get("host", "127.0.0.1"),
                                                          int(params["port"]), params.get("user", "postgres"),
                                                          params.get("dbname", "postgres"), 100, errors)))
    before = metric(metrics_url, "pgchorus_pipelined_total") or 0
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    hung = [t for t in threads if t.is_alive()]
    ok(not hung, "15 concurrent clients on 2 server connections finished", f"{len(hung)} still running")
    echo_errors = [e for e in errors if e.startswith("worker")]
    ok(not echo_errors, "8 clients x 300 statements: each got its own answers; every 1/0 failed alone",
       "\n".join(echo_errors))
    other = [e for e in errors if not e.startswith("worker")]
    ok(not other, "inserters, transaction blocks and leaving clients ran without error", "\n".join(other))

    with psycopg.connect(node_dsn, autocommit=True) as node:
        auto = node.execute("select count(*) from pipe_t where kind = 'auto'").fetchone()[0]
        block = node.execute("select count(*) from pipe_t where kind = 'block'").fetchone()[0]
    ok(auto == 800, f"all 800 autocommit INSERTs are there (found {auto}): none ran inside a rolled-back block")
    ok(block == 0, f"no row of the rolled-back blocks is there (found {block})")

    after = metric(metrics_url, "pgchorus_pipelined_total")
    ok(after is not None and after > before,
       f"pgchorus_pipelined_total grew ({before:.0f} -> {after}): statements were queued on busy servers")

    # 4: a short statement is not queued behind a long one.
    long_done = {}

    def long_query():
        with psycopg.connect(dsn, autocommit=True) as conn:
            t0 = time.monotonic()
            conn.execute("select pg_sleep(3)")
            long_done["secs"] = time.monotonic() - t0

    lt = threading.Thread(target=long_query)
    lt.start()
    time.sleep(0.3)
    lat = []
    errors = []

    def short_queries(n):
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for _ in range(n):
                    t0 = time.monotonic()
                    conn.execute("select 1")
                    with lock:
                        lat.append(time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    st = [threading.Thread(target=short_queries, args=(150,)) for _ in range(6)]
    for t in st:
        t.start()
    for t in st:
        t.join(60)
    lt.join(30)
    worst = max(lat) if lat else None
    ok(not errors and len(lat) == 900, f"900 short statements ran while pg_sleep(3) held a server ({len(lat)})",
       "\n".join(errors))
    ok(worst is not None and worst < 1.5,
       f"none of them waited behind pg_sleep(3): slowest {worst if worst is None else round(worst, 3)} s")
    ok(long_done.get("secs", 0) >= 2.9, "pg_sleep(3) itself ran to its end")

    # 5: the node kills pgchorus's server connections while statements are queued on them.
    stop = threading.Event()
    wrong, lost, answered = [], [0], [0]

    def tolerant_worker(wid):
        i = 0
        while not stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    while not stop.is_set():
                        i += 1
                        tag = f"k{wid}-{i}"
                        row = conn.execute("select %s::text", (tag,)).fetchone()
                        if row != (tag,):
                            wrong.append(f"sent {tag!r}, got {row!r}")
                        with lock:
                            answered[0] += 1
            except psycopg.OperationalError:
                with lock:
                    lost[0] += 1
            except Exception as e:  # noqa: BLE001
                wrong.append(repr(e))
                return

    kt = [threading.Thread(target=tolerant_worker, args=(w,)) for w in range(8)]
    for t in kt:
        t.start()
    time.sleep(0.5)
    killed = 0
    with psycopg.connect(node_dsn, autocommit=True) as node:
        for _ in range(5):
            killed += node.execute(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity"
                " where backend_type = 'client backend' and pid <> pg_backend_pid()"
                " and application_name not like 'pgchorus%%' and datname = current_database()) k"
            ).fetchone()[0]
            time.sleep(0.3)
    time.sleep(0.5)
    stop.set()
    for t in kt:
        t.join(30)
    ok(killed > 0 and not wrong,
       f"{killed} server connections killed under load: {answered[0]} right answers, "
       f"{lost[0]} sessions lost their connection, none got another client's answer", "\n".join(wrong[:10]))
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            alive = conn.execute("select 42").fetchone() == (42,)
    except Exception as e:  # noqa: BLE001
        alive = repr(e)
    ok(alive is True, "pgchorus serves new sessions after the kills", alive)

    print(f"# failures: {tap.failures}", flush=True)
    return 1 if tap.failures else 0


if __name__ == "__main__":
    sys.exit(main())
