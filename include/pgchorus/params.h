/*
 * params.h - an ordered list of name/value pairs (the ParameterStatus
 * values a server reported).
 */
#ifndef PGCHORUS_PARAMS_H
#define PGCHORUS_PARAMS_H

#include <stdbool.h>

struct param_list {
	int n;
	char **names;
	char **values;
};

/* Set NAME to VALUE (copied).  Returns the stored value, or NULL on OOM. */
const char *param_list_set(struct param_list *pl, const char *name, const char *value);
const char *param_list_get(const struct param_list *pl, const char *name);
bool param_list_copy(struct param_list *dst, const struct param_list *src) __attribute__((warn_unused_result));
void param_list_free(struct param_list *pl);

#endif
