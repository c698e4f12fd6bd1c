#!/usr/bin/python3
"""psycopg_checks.py DIRECT_DSN PROXY_DSN - run by 40_psycopg.sh.

Runs the same client scenario against PostgreSQL directly and through
pgchorus (each on its own, empty database) and compares the results; then
checks what only matters through a transaction pooler: named prepared
statements and SET of reported parameters surviving across transactions while
many clients share few server connections.  Prints "ok - ..." or
"not ok - ..." per check.
"""
import datetime
import decimal
import io
import os
import sys
import threading
import traceback
import uuid

import psycopg
from psycopg.types.json import Jsonb

import tap
from tap import ok


def scenario(dsn):
    """Everything a typical application does; returns a list of results."""
    out = []
    notices = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
        cur = conn.cursor()
        cur.execute("create table items (id int primary key, name text, price numeric(10,2), "
                    "born date, data jsonb, tags text[], blob bytea, u uuid, flag bool)")

        # server-side binding (extended protocol), typed parameters
        params = [
            (1, "one", decimal.Decimal("1.50"), datetime.date(2024, 2, 29), Jsonb({"a": [1, 2]}),
             ["x", "y"], b"\x00\x01\xff", uuid.UUID(int=1), True),
            (2, "ünïcödé 日本", decimal.Decimal("-0.01"), None, Jsonb(None), [], b"", None, False),
            (3, None, None, datetime.date(1, 1, 1), Jsonb([]), None, None, uuid.UUID(int=3), None),
        ]
        for p in params:
            cur.execute("insert into items values (%s, %s, %s, %s, %s, %s, %s, %s, %s)", p)
        cur.execute("select * from items where id >= %s order by id", (1,))
        out.append(("server-side select", cur.fetchall()))
        cur.execute("select * from items where id = %(id)s", {"id": 2}, binary=True)
        out.append(("binary select", cur.fetchall()))

        # client-side binding (simple protocol)
        ccur = psycopg.ClientCursor(conn)
        ccur.execute("select %s::text || %s, %s::int + 1, %s is null", ("it's", " quoted", 41, None))
        out.append(("client-side select", ccur.fetchall()))
        ccur.execute("select name from items where name like %s order by id", ("%n%",))
        out.append(("client-side like", ccur.fetchall()))

        # executemany (psycopg pipelines it)
        cur.executemany("insert into items (id, name, price) values (%s, %s, %s)",
                        [(i, f"bulk {i}", decimal.Decimal(i) / 4) for i in range(100, 1100)])
        cur.execute("select count(*), sum(price), min(name), max(name) from items where id >= 100")
        out.append(("executemany", cur.fetchall()))

        # transactions
        conn.autocommit = False
        with conn.transaction():
            cur.execute("insert into items (id, name) values (2000, 'committed')")
        try:
            with conn.transaction():
                cur.execute("insert into items (id, name) values (2001, 'rolled back')")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        try:
            with conn.transaction():
                cur.execute("insert into items (id, name) values (2002, 'bad')")
                cur.execute("select 1/0")
        except psycopg.errors.DivisionByZero as e:
            out.append(("error sqlstate", e.sqlstate))
        with conn.transaction():
            cur.execute("insert into items (id, name) values (2003, 'outer')")
            try:
                with conn.transaction():  # savepoint
                    cur.execute("insert into items (id, name) values (2004, 'inner')")
                    cur.execute("select 'x'::int")
            except psycopg.errors.InvalidTextRepresentation as e:
                out.append(("savepoint error", e.sqlstate))
        conn.commit()
        conn.autocommit = True
        cur.execute("select id, name from items where id >= 2000 order by id")
        out.append(("transactions", cur.fetchall()))

        # prepared statements, explicit and by threshold
        res = []
        for i in range(10):
            cur.execute("select name, price from items where id = %s", (100 + i,), prepare=True)
            res.append(cur.fetchall())
        out.append(("prepare=True, 10 executions", res))
        res = []
        for i in range(10):
            cur.execute("select count(*) from items where id < %s", (100 + i * 50,))
            res.append(cur.fetchall())
        out.append(("prepared after prepare_threshold, 10 executions", res))

        # notices
        cur.execute("do $$ begin raise notice 'notice %', 7; raise warning 'careful'; end $$")
        out.append(("notices", list(notices)))

        # COPY in and out
        with cur.copy("copy items (id, name, price, born) from stdin") as copy:
            for i in range(5000, 7000):
                copy.write_row((i, f"copied\t{i}", decimal.Decimal(i) / 100, datetime.date(2020, 1, 1 + i % 28)))
        buf = io.BytesIO()
        with cur.copy("copy (select * from items order by id) to stdout") as copy:
            for data in copy:
                buf.write(data)
        out.append(("copy out", buf.getvalue()))
        rows = []
        with cur.copy("copy (select id, name, price from items where id between 5000 and 5010 order by id) to stdout") as copy:
            copy.set_types(["int4", "text", "numeric"])
            rows.extend(copy.rows())
        out.append(("copy rows", rows))

        # parameter errors look the same
        try:
            cur.execute("select %s::int", ("not a number",))
        except psycopg.Error as e:
            out.append(("param error", e.sqlstate, e.diag.message_primary))
        cur.execute("select 'usable after error'")
        out.append(("after error", cur.fetchall()))
    return out


def compare_scenarios(direct_dsn, proxy_dsn):
    direct = scenario(direct_dsn)
    try:
        proxied = scenario(proxy_dsn)
    except Exception:
        ok(False, "scenario through pgchorus runs without exception", traceback.format_exc())
        return
    ok(True, "scenario through pgchorus runs without exception")
    ok(len(direct) == len(proxied), f"scenario has the same number of results ({len(direct)})")
    for d, p in zip(direct, proxied):
        ok(d == p, f"same result: {d[0]}", f"direct:  {d!r:.500}\nproxied: {p!r:.500}")


def prepared_concurrency(proxy_dsn, threads=8, per_thread=200):
    """Named prepared statements, re-used over many transactions, by more
    clients than the pool has server connections."""
    errors = []
    wrong = []

    def worker(n):
        try:
            with psycopg.connect(proxy_dsn, autocommit=True) as conn:
                cur = conn.cursor()
                for i in range(per_thread):
                    v = n * 1000 + i
                    if i % 3 == 0:
                        cur.execute("select %s::int * 2, %s::text", (v, f"t{n}"), prepare=True)
                    elif i % 3 == 1:
                        cur.execute("select %s::int + 1, %s::text", (v, f"t{n}"))  # threshold
                    else:
                        with conn.transaction():
                            cur.execute("select %s::int - 1, %s::text", (v, f"t{n}"), prepare=True)
                            r2 = cur.fetchone()
                            cur.execute("select %s::int * 2, %s::text", (v, f"t{n}"), prepare=True)
                            if r2 != (v - 1, f"t{n}"):
                                wrong.append((n, i, r2))
                        continue
                    r = cur.fetchone()
                    want = (v * 2, f"t{n}") if i % 3 == 0 else (v + 1, f"t{n}")
                    if r != want:
                        wrong.append((n, i, r, want))
        except Exception:
            errors.append(traceback.format_exc())

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    ok(not errors, f"{threads} threads x {per_thread} prepared queries: no errors",
       errors[0] if errors else None)
    ok(not wrong, f"{threads} threads x {per_thread} prepared queries: every result right",
       wrong[:5])


def tracked_settings(proxy_dsn, clients=6, rounds=30):
    """SET of reported parameters outside a transaction must hold for the
    client's later transactions, whichever server connection runs them."""
    zones = ["Asia/Tokyo", "America/Los_Angeles", "Europe/Paris", "UTC", "Australia/Sydney",
             "America/Sao_Paulo"]
    # No automatic prepared statements here: this checks settings only.
    conns = [psycopg.connect(proxy_dsn, autocommit=True, prepare_threshold=None) for _ in range(clients)]
    try:
        for i, c in enumerate(conns):
            c.execute(f"set timezone = '{zones[i % len(zones)]}'")
            c.execute(f"set application_name = 'client{i}'")
            c.execute("set datestyle = 'SQL, DMY'" if i % 2 else "set datestyle = 'ISO, MDY'")
        bad = []
        for r in range(rounds):
            for i, c in enumerate(conns):
                tz = c.execute("show timezone").fetchone()[0]
                app = c.execute("select current_setting('application_name')").fetchone()[0]
                ds = c.execute("show datestyle").fetchone()[0]
                with c.transaction():
                    tz2 = c.execute("select current_setting('TimeZone')").fetchone()[0]
                want_ds = "SQL, DMY" if i % 2 else "ISO, MDY"
                if (tz, tz2, app, ds) != (zones[i % len(zones)],) * 2 + (f"client{i}", want_ds):
                    bad.append((r, i, tz, tz2, app, ds))
        ok(not bad, f"SET timezone/application_name/datestyle hold across {rounds} transactions "
           f"of {clients} clients", bad[:5])
        c = conns[0]
        ok(c.info.parameter_status("TimeZone") == "Asia/Tokyo",
           "the client saw ParameterStatus TimeZone = Asia/Tokyo",
           c.info.parameter_status("TimeZone"))
        got = c.execute("select '2024-01-01 00:00:00+00'::timestamptz::text").fetchone()[0]
        ok(got == "2024-01-01 09:00:00+09", "timestamptz rendered in the client's TimeZone", got)
        c.execute("reset timezone")
        got = c.execute("show timezone").fetchone()[0]
        want = conns[0].execute("select reset_val from pg_settings where name = 'TimeZone'").fetchone()[0]
        ok(got == want, "RESET timezone gives the server default back", (got, want))
    finally:
        for c in conns:
            c.close()


def run_phase(name, fn, limit):
    """Run one group of checks in a thread so that a hang (e.g. a reply that
    never comes) costs one failed check and the next groups still run."""
    def body():
        try:
            fn()
        except Exception:
            ok(False, f"{name} checks ran without exception", traceback.format_exc())

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        ok(False, f"{name} checks finished within {limit} s")
        return False
    return True


def main():
    direct_dsn, proxy_dsn = sys.argv[1], sys.argv[2]
    done = True
    for name, fn in [("scenario", lambda: compare_scenarios(direct_dsn, proxy_dsn)),
                     ("prepared", lambda: prepared_concurrency(proxy_dsn)),
                     ("settings", lambda: tracked_settings(proxy_dsn))]:
        done = run_phase(name, fn, 45) and done
    sys.stdout.flush()
    # os._exit: a hung phase's thread may still sit in libpq.
    os._exit(1 if tap.failures or not done else 0)


if __name__ == "__main__":
    main()
