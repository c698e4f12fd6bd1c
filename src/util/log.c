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
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "pgchorus/log.h"

static _Atomic int cur_level = LOG_LVL_INFO;
static FILE *log_fp;
static char *log_path;
static bool use_syslog;

static const int syslog_levels[] = {
	[LOG_LVL_ERROR] = LOG_ERR,
	[LOG_LVL_WARNING] = LOG_WARNING,
	[LOG_LVL_INFO] = LOG_INFO,
	[LOG_LVL_DEBUG] = LOG_DEBUG,
};

/* "syslog" or "syslog:FACILITY" (daemon, local0..local7, user). */
static int syslog_facility(const char *spec)
{
	static const struct {
		const char *name;
		int facility;
	} f[] = {
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};

	if (spec[6] != ':')
		return LOG_DAEMON;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (strcmp(spec + 7, f[i].name) == 0)
			return f[i].facility;
	return -1;
}

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
	if (strncmp(file, "syslog", 6) == 0 && (file[6] == '\0' || file[6] == ':')) {
		int facility = syslog_facility(file);

		if (facility < 0)
			return -EINVAL;
		openlog("pgchorus", LOG_PID | LOG_NDELAY, facility);
		use_syslog = true;
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
	if (use_syslog) {
		syslog(syslog_levels[lvl], "%s", line);
		return;
	}
	fprintf(fp, "%s.%03d [%d] %s %s\n", stamp, (int)(tv.tv_usec / 1000), (int)getpid(),
		level_names[lvl], line);
}
