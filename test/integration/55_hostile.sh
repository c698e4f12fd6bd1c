#!/usr/bin/env bash
# 55_hostile: malformed, truncated, oversized, misplaced and pipelined input
# from many sockets (plain, SCRAM and TLS); pgchorus must answer each with the
# right SQLSTATE or a close, keep serving normal clients, and leave no
# sanitizer report.  The work is done by test/hostile/run.sh.
exec bash "$(dirname "$0")/../hostile/run.sh"
