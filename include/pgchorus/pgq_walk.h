/*
 * pgq_walk.h - one step of a walk over libpg_query's parse tree.
 *
 * The tree unpacked by protobuf-c is walked generically, driven by the
 * message descriptors: every message field of every node is followed, so
 * no node type can be forgotten.  classify.c and rewrite.c each build
 * their recursive walk on this step.
 */
#ifndef PGCHORUS_PGQ_WALK_H
#define PGCHORUS_PGQ_WALK_H

#include <protobuf-c/protobuf-c.h>

typedef void pgq_child_fn(void *arg, const ProtobufCMessage *child);

/*
 * Calls fn(arg, child) for each message directly below m, in field order:
 * for a PgQuery__Node only its chosen member, otherwise every non-NULL
 * message field (each element of a repeated one; of a oneof, only the
 * chosen member).  It does not recurse by itself: fn does, and the caller
 * bounds the depth (classify_sql() refuses trees too deep).
 */
void pgq_for_each_child(const ProtobufCMessage *m, pgq_child_fn *fn, void *arg);

#endif
