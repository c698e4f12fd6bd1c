/*
 * intern.h - shared copies of the strings many client sessions hold alike
 * (user, database, tracked parameter values, login signature), one per
 * worker (src/util/intern.c): an idle client then costs pointers, not
 * copies.  Worker thread only; no locking.
 */
#ifndef PGCHORUS_INTERN_H
#define PGCHORUS_INTERN_H

#include "pgchorus/hmap.h"

/* A shared copy of S in TAB (one more holder); NULL when out of memory. */
const char *intern_get(struct strmap *tab, const char *s);
/* One holder less of S (a pointer intern_get gave, or NULL). */
void intern_put(struct strmap *tab, const char *s);

#endif
