/*
 * hmap.h - small hash maps used per worker (no locking).
 *
 * strmap: NUL-terminated string keys (copied) -> void *.
 * u64map: uint64_t keys -> uintptr_t values, open addressing (key 0 is
 *         reserved, callers never use it).
 */
#ifndef PGCHORUS_HMAP_H
#define PGCHORUS_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap_entry {
	struct strmap_entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

struct strmap {
	struct strmap_entry **slots;
	size_t n_slots;
	size_t count;
};

void strmap_init(struct strmap *m);
/* Frees the entries; values are the caller's (free them first with strmap_foreach). */
void strmap_destroy(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Insert or replace; returns the previous value (or NULL) in *old.  false on OOM. */
bool strmap_put(struct strmap *m, const char *key, void *value, void **old) __attribute__((warn_unused_result));
void *strmap_remove(struct strmap *m, const char *key);
/* The entry of KEY (its key[] lives as long as the entry), or NULL. */
struct strmap_entry *strmap_entry_of(const struct strmap *m, const char *key);
void strmap_foreach(struct strmap *m, void (*fn)(const char *key, void *value, void *arg), void *arg);

struct u64map {
	uint64_t *keys;
	uintptr_t *values;
	size_t cap;     /* power of two */
	size_t count;
};

void u64map_init(struct u64map *m);
void u64map_destroy(struct u64map *m);
bool u64map_get(const struct u64map *m, uint64_t key, uintptr_t *value);
bool u64map_put(struct u64map *m, uint64_t key, uintptr_t value) __attribute__((warn_unused_result));
bool u64map_remove(struct u64map *m, uint64_t key);
void u64map_clear(struct u64map *m);

uint64_t hash_bytes(const void *p, size_t n);

#endif
