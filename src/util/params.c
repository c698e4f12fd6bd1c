/*
 * params.c - name/value lists (see params.h).
 */
#include <stdlib.h>
#include <string.h>

#include "pgchorus/params.h"

const char *param_list_set(struct param_list *pl, const char *name, const char *value)
{
	char *v = strdup(value);
	int i;

	if (!v)
		return NULL;
	for (i = 0; i < pl->n; i++)
		if (strcmp(pl->names[i], name) == 0)
			break;
	if (i == pl->n) {
		char **names = realloc(pl->names, sizeof(char *) * (size_t)(pl->n + 1));
		char **values;
		char *n;

		if (!names) {
			free(v);
			return NULL;
		}
		pl->names = names;
		values = realloc(pl->values, sizeof(char *) * (size_t)(pl->n + 1));
		if (!values) {
			free(v);
			return NULL;
		}
		pl->values = values;
		n = strdup(name);
		if (!n) {
			free(v);
			return NULL;
		}
		pl->names[i] = n;
		pl->values[i] = NULL;
		pl->n++;
	}
	free(pl->values[i]);
	pl->values[i] = v;
	return v;
}

const char *param_list_get(const struct param_list *pl, const char *name)
{
	for (int i = 0; i < pl->n; i++)
		if (strcmp(pl->names[i], name) == 0)
			return pl->values[i];
	return NULL;
}

bool param_list_copy(struct param_list *dst, const struct param_list *src)
{
	for (int i = 0; i < src->n; i++)
		if (!param_list_set(dst, src->names[i], src->values[i]))
			return false;
	return true;
}

void param_list_free(struct param_list *pl)
{
	for (int i = 0; i < pl->n; i++) {
		free(pl->names[i]);
		free(pl->values[i]);
	}
	free(pl->names);
	free(pl->values);
	pl->n = 0;
	pl->names = pl->values = NULL;
}
