/*
 * strmap.c - the hash maps of hmap.h.
 */
#include <stdlib.h>
#include <string.h>

#include "pgchorus/hmap.h"

/* FNV-1a, 64 bit: keys are short and not attacker-controlled in bulk. */
uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 1469598103934665603ULL;

	while (n--) {
		h ^= *s++;
		h *= 1099511628211ULL;
	}
	return h;
}

void strmap_init(struct strmap *m)
{
	m->slots = NULL;
	m->n_slots = 0;
	m->count = 0;
}

void strmap_destroy(struct strmap *m)
{
	for (size_t i = 0; i < m->n_slots; i++) {
		struct strmap_entry *e = m->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->slots);
	strmap_init(m);
}

static struct strmap_entry **strmap_find(const struct strmap *m, const char *key, uint64_t h)
{
	struct strmap_entry **pe;

	if (!m->n_slots)
		return NULL;
	for (pe = &m->slots[h & (m->n_slots - 1)]; *pe; pe = &(*pe)->next)
		if ((*pe)->hash == h && strcmp((*pe)->key, key) == 0)
			return pe;
	return NULL;
}

struct strmap_entry *strmap_entry_of(const struct strmap *m, const char *key)
{
	struct strmap_entry **pe = strmap_find(m, key, hash_bytes(key, strlen(key)));

	return pe ? *pe : NULL;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_entry **pe = strmap_find(m, key, hash_bytes(key, strlen(key)));

	return pe ? (*pe)->value : NULL;
}

static bool strmap_grow(struct strmap *m)
{
	size_t n = m->n_slots ? m->n_slots * 2 : 8;
	struct strmap_entry **slots = calloc(n, sizeof(*slots));

	if (!slots)
		return false;
	for (size_t i = 0; i < m->n_slots; i++) {
		struct strmap_entry *e = m->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = slots[e->hash & (n - 1)];
			slots[e->hash & (n - 1)] = e;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->n_slots = n;
	return true;
}

bool strmap_put(struct strmap *m, const char *key, void *value, void **old)
{
	size_t klen = strlen(key);
	uint64_t h = hash_bytes(key, klen);
	struct strmap_entry **pe = strmap_find(m, key, h), *e;

	if (old)
		*old = NULL;
	if (pe) {
		if (old)
			*old = (*pe)->value;
		(*pe)->value = value;
		return true;
	}
	if (m->count >= m->n_slots && !strmap_grow(m))
		return false;
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return false;
	e->hash = h;
	e->value = value;
	memcpy(e->key, key, klen + 1);
	e->next = m->slots[h & (m->n_slots - 1)];
	m->slots[h & (m->n_slots - 1)] = e;
	m->count++;
	return true;
}

void *strmap_remove(struct strmap *m, const char *key)
{
	struct strmap_entry **pe = strmap_find(m, key, hash_bytes(key, strlen(key))), *e;
	void *v;

	if (!pe)
		return NULL;
	e = *pe;
	*pe = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

void strmap_foreach(struct strmap *m, void (*fn)(const char *key, void *value, void *arg), void *arg)
{
	for (size_t i = 0; i < m->n_slots; i++) {
		struct strmap_entry *e = m->slots[i], *next;

		for (; e; e = next) {
			next = e->next; /* fn may remove e */
			fn(e->key, e->value, arg);
		}
	}
}

void u64map_init(struct u64map *m)
{
	m->keys = NULL;
	m->values = NULL;
	m->cap = 0;
	m->count = 0;
}

void u64map_destroy(struct u64map *m)
{
	free(m->keys);
	free(m->values);
	u64map_init(m);
}

static inline size_t u64_slot(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

bool u64map_get(const struct u64map *m, uint64_t key, uintptr_t *value)
{
	if (!m->cap)
		return false;
	for (size_t i = u64_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			if (value)
				*value = m->values[i];
			return true;
		}
		if (m->keys[i] == 0)
			return false;
	}
}

static bool u64map_grow(struct u64map *m)
{
	struct u64map n = { 0 };

	n.cap = m->cap ? m->cap * 2 : 16;
	n.keys = calloc(n.cap, sizeof(uint64_t));
	n.values = calloc(n.cap, sizeof(uintptr_t));
	if (!n.keys || !n.values) {
		free(n.keys);
		free(n.values);
		return false;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] && !u64map_put(&n, m->keys[i], m->values[i]))
			return false; /* cannot happen: n has room */
	free(m->keys);
	free(m->values);
	*m = n;
	return true;
}

bool u64map_put(struct u64map *m, uint64_t key, uintptr_t value)
{
	size_t i;

	if ((m->count + 1) * 2 > m->cap && !u64map_grow(m))
		return false;
	for (i = u64_slot(key, m->cap); m->keys[i] && m->keys[i] != key; i = (i + 1) & (m->cap - 1))
		;
	if (!m->keys[i])
		m->count++;
	m->keys[i] = key;
	m->values[i] = value;
	return true;
}

bool u64map_remove(struct u64map *m, uint64_t key)
{
	size_t i, j;

	if (!m->cap)
		return false;
	for (i = u64_slot(key, m->cap); m->keys[i] != key; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == 0)
			return false;
	m->keys[i] = 0;
	m->count--;
	/* Re-insert the rest of the cluster (backward-shift would also do). */
	for (j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		uint64_t k = m->keys[j];
		uintptr_t v = m->values[j];

		m->keys[j] = 0;
		m->count--;
		if (!u64map_put(m, k, v)) /* cannot fail: no growth needed */
			abort();
	}
	return true;
}

void u64map_clear(struct u64map *m)
{
	if (m->cap) {
		memset(m->keys, 0, m->cap * sizeof(uint64_t));
		m->count = 0;
	}
}
