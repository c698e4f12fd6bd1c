/*
 * runtime.h - turns a configuration snapshot into what the workers use:
 * the users file, the hba file and the TLS contexts are loaded into the
 * snapshot (struct config's derived fields) before it is published, so a
 * reload either switches all of them at once or none.
 */
#ifndef PGCHORUS_RUNTIME_H
#define PGCHORUS_RUNTIME_H

#include <stddef.h>

#include "pgchorus/config.h"

/* Load the derived parts of CFG.  0, or -1 with ERR set (CFG unchanged). */
int runtime_prepare(struct config *cfg, char *err, size_t errlen);

#endif
