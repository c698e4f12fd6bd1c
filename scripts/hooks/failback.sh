#!/usr/bin/env bash
# failback.sh - sample failback_command for pgchorus.
#
# pgchorus runs it after a node came back (online recovery or attach):
#
#   failback_command = "/path/to/failback.sh %d '%h' %p '%D' %m '%H' %P '%R'";
#
# Arguments: the node id, its host, port, data dir; the primary's id, host,
# port, data dir.  It appends "<time> failback node=.. host=.. port=..
# data_dir=.. primary=.. primary_host=.. primary_port=.." to
# $PGCHORUS_HOOK_LOG (default: ${TMPDIR:-/tmp}/pgchorus-hooks.log) and prints
# it (pgchorus logs the output of hooks).
set -u

node=${1:-} host=${2:-} port=${3:-} data_dir=${4:-}
primary=${5:--1} p_host=${6:-} p_port=${7:-} p_data_dir=${8:-}
log=${PGCHORUS_HOOK_LOG:-${TMPDIR:-/tmp}/pgchorus-hooks.log}

line="$(date '+%F %T') failback node=$node host=$host port=$port data_dir=$data_dir"
line+=" primary=$primary primary_host=$p_host primary_port=$p_port primary_data_dir=$p_data_dir"
echo "$line"
echo "$line" >>"$log"
