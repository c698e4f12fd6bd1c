/*
 * log.h - leveled logging to stderr or a log file, safe from any thread.
 * Each line: timestamp, pid, level, message.  Callers add their own
 * context (client or node) to the message.
 */
#ifndef PGCHORUS_LOG_H
#define PGCHORUS_LOG_H

#include <stdbool.h>

#include "pgchorus/config.h"

/* Open FILE for appending (NULL or "" = stderr).  Returns 0 or -errno. */
int log_open(const char *file);
void log_set_level(enum log_level lvl);
bool log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reopen the log file (after rotation); no-op for stderr. */
void log_reopen(void);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...) do { if (log_enabled(LOG_LVL_INFO)) log_msg(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
