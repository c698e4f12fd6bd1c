/*
 * log.c - leveled logging.  One fprintf per line under the stdio lock, so
 * lines from different worker threads never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "pgchorus/log.h"

static _Atomic int cur_level = LOG_LVL_INFO;
static FILE *log_fp;
static char *log_path;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "ERROR",
	[LOG_LVL_WARNING] = "WARNING",
	[LOG_LVL_INFO] = "LOG",
	[LOG_LVL_DEBUG] = "DEBUG",
};

int log_open(const char *file)
{
	FILE *fp;

	if (!file || !*file) {
		log_fp = NULL;
		return 0;
	}
	fp = fopen(file, "a");
	if (!fp)
		return -errno;
	setvbuf(fp, NULL, _IOLBF, 0);
	free(log_path);
	log_path = strdup(file);
	log_fp = fp;
	return 0;
}

void log_reopen(void)
{
	FILE *fp;

	if (!log_path)
		return;
	fp = fopen(log_path, "a");
	if (!fp)
		return;
	setvbuf(fp, NULL, _IOLBF, 0);
	/* The old stream is leaked on purpose: another thread may be writing to it. */
	log_fp = fp;
}

void log_set_level(enum log_level lvl)
{
	atomic_store(&cur_level, (int)lvl);
}

bool log_enabled(enum log_level lvl)
{
	return (int)lvl <= atomic_load(&cur_level);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[2048];
	char stamp[64];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	FILE *fp = log_fp ? log_fp : stderr;

	if (!log_enabled(lvl))
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(fp, "%s.%03d [%d] %s %s\n", stamp, (int)(tv.tv_usec / 1000), (int)getpid(),
		level_names[lvl], line);
}
