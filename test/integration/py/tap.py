"""tap.py - the "ok - ..." / "not ok - ..." lines of the psycopg checkers
(pipeline_checks.py, cancel_checks.py, psycopg_checks.py); the calling test
script counts them.  tap.failures is how many checks failed so far."""

failures = 0


def ok(cond, desc, detail=None):
    """Print one check; DETAIL (up to 20 lines) goes under a failed one."""
    global failures
    if cond:
        print(f"ok - {desc}", flush=True)
    else:
        failures += 1
        print(f"not ok - {desc}", flush=True)
        if detail is not None:
            for line in str(detail).splitlines()[:20]:
                print(f"#   {line}", flush=True)
