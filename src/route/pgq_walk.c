/*
 * pgq_walk.c - one step of a generic walk over libpg_query's parse tree
 * (protobuf-c messages), see include/pgchorus/pgq_walk.h.
 *
 * Owns: nothing.
 */
#include <stddef.h>
#include <stdint.h>

#include <pg_query/pg_query.pb-c.h>

#include "pgchorus/pgq_walk.h"

void pgq_for_each_child(const ProtobufCMessage *m, pgq_child_fn *fn, void *arg)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	if (d == &pg_query__node__descriptor) {
		/* a oneof of 238 members: go straight to the chosen one */
		const PgQuery__Node *n = (const PgQuery__Node *)m;
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, n->node_case);
		const ProtobufCMessage *sub;

		if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    (sub = *(const ProtobufCMessage *const *)(base + f->offset)))
			fn(arg, sub);
		return;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const ProtobufCMessage *const *v = *(const ProtobufCMessage *const *const *)(base + f->offset);

			for (size_t k = 0; k < n; k++) {
				if (v[k])
					fn(arg, v[k]);
			}
		} else {
			const ProtobufCMessage *sub;

			/* members of a oneof share storage: only the chosen one is valid */
			if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
			sub = *(const ProtobufCMessage *const *)(base + f->offset);
			if (sub)
				fn(arg, sub);
		}
	}
}
