#!/usr/bin/python3
"""cancel_checks.py PROXY_DSN NODE_DSN - run by 50_cancel.sh.

A cancel request sent to pgchorus (psycopg's conn.cancel(), i.e. libpq's
PQcancel with the key pgchorus gave the client) stops the statement of that
client, and only that one; the connection stays usable.
"""
import os
import sys
import threading
import time
import traceback

import psycopg

import tap
from tap import ok


def run_async(conn, sql):
    """Run sql in a thread; returns (thread, result dict)."""
    res = {}

    def go():
        t0 = time.monotonic()
        try:
            conn.execute(sql)
            res["outcome"] = "finished"
        except psycopg.Error as e:
            res["outcome"] = e.sqlstate
            res["message"] = str(e)
        except Exception as e:  # connection broken etc.
            res["outcome"] = repr(e)
        res["secs"] = time.monotonic() - t0

    t = threading.Thread(target=go)
    t.start()
    return t, res


NODE_DSN = None


def wait_running(dsn, pattern, timeout=5.0):
    """Wait until a statement matching pattern runs on the node (asked
    directly, so that the check needs no pooled server connection)."""
    with psycopg.connect(NODE_DSN, autocommit=True) as mon:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            n = mon.execute("select count(*) from pg_stat_activity where state = 'active' and query like %s",
                            (pattern,)).fetchone()[0]
            if n:
                return True
            time.sleep(0.05)
    return False


def main():
    global NODE_DSN
    dsn, NODE_DSN = sys.argv[1], sys.argv[2]

    # 1. cancel a long statement
    with psycopg.connect(dsn, autocommit=True) as a:
        t, res = run_async(a, "select pg_sleep(30) /* victim1 */")
        ok(wait_running(dsn, "%victim1%"), "the long statement runs on the node")
        t0 = time.monotonic()
        a.cancel()
        t.join(10)
        took = time.monotonic() - t0
        ok(res.get("outcome") == "57014", "pg_sleep(30) canceled with SQLSTATE 57014", res)
        ok(took < 3.0, f"cancel took effect within 3 s ({took:.2f} s)")
        ok(a.execute("select 'still usable'").fetchone()[0] == "still usable",
           "the canceled connection is still usable")

    # 2. inside an explicit transaction: the transaction is aborted, then rolled back
    with psycopg.connect(dsn) as b:
        b.execute("select 1")
        t, res = run_async(b, "select pg_sleep(30) /* victim2 */")
        ok(wait_running(dsn, "%victim2%"), "the statement in a transaction runs on the node")
        b.cancel()
        t.join(10)
        ok(res.get("outcome") == "57014", "statement in a transaction canceled with 57014", res)
        b.rollback()
        ok(b.execute("select 2").fetchone()[0] == 2, "after ROLLBACK the connection works")
        b.rollback()

    # 3. cancel reaches only its own client, with several clients on few server connections
    with psycopg.connect(dsn, autocommit=True) as victim, \
            psycopg.connect(dsn, autocommit=True) as bystander, \
            psycopg.connect(dsn, autocommit=True) as idle:
        idle.execute("select 1")
        tv, rv = run_async(victim, "select pg_sleep(30) /* victim3 */")
        tb, rb = run_async(bystander, "select pg_sleep(2) /* bystander */")
        ok(wait_running(dsn, "%victim3%") and wait_running(dsn, "%bystander%"),
           "two statements run at once")
        idle.cancel()  # an idle client's cancel must not hit anybody
        time.sleep(0.3)
        victim.cancel()
        tv.join(10)
        tb.join(10)
        ok(rv.get("outcome") == "57014", "the victim was canceled", rv)
        ok(rb.get("outcome") == "finished", "the other client's statement was not canceled", rb)
        ok(idle.execute("select 3").fetchone()[0] == 3, "the idle client still works")


def guarded():
    try:
        main()
    except SystemExit:
        pass
    except Exception:
        ok(False, "cancel checks ran without exception", traceback.format_exc())


if __name__ == "__main__":
    # A hang (a cancel that never takes effect, a reply that never comes)
    # costs one failed check instead of the whole test's time.
    t = threading.Thread(target=guarded, daemon=True)
    t.start()
    t.join(60)
    if t.is_alive():
        ok(False, "cancel checks finished within 60 s")
    sys.stdout.flush()
    os._exit(1 if tap.failures or t.is_alive() else 0)
