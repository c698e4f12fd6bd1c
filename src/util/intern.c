/*
 * intern.c - per-worker shared strings with holder counts (intern.h).  The
 * string is the key of a strmap entry; the value counts the holders.
 */
#include <stdint.h>

#include "pgchorus/intern.h"

const char *intern_get(struct strmap *tab, const char *s)
{
	struct strmap_entry *e = strmap_entry_of(tab, s);
	void *old;

	if (!e) {
		if (!strmap_put(tab, s, (void *)(uintptr_t)0, &old))
			return NULL;
		e = strmap_entry_of(tab, s);
	}
	e->value = (void *)((uintptr_t)e->value + 1);
	return e->key;
}

void intern_put(struct strmap *tab, const char *s)
{
	struct strmap_entry *e;

	if (!s)
		return;
	e = strmap_entry_of(tab, s);
	if (!e)
		return;
	e->value = (void *)((uintptr_t)e->value - 1);
	if (!e->value)
		strmap_remove(tab, s);
}
