/*
 * config.c - read a libconfig file into a validated, immutable,
 * reference-counted configuration snapshot (struct config).
 *
 * The loader starts from a snapshot filled with defaults, then walks the
 * top-level settings of the file once: each name is looked up in a table of
 * known settings (unknown names are errors, to catch typos), its type and
 * range are checked, and the value replaces the default.  Checks that involve
 * several settings run last.  The first problem stops the load; the message
 * always names the file, the line and the setting.
 *
 * A snapshot owns all of its strings and arrays; the last config_unref()
 * frees them.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <libconfig.h>
#include <openssl/ssl.h> /* TLS1_2_VERSION etc.: macros only, no library calls */

#include "pgchorus/config.h"
#include "pgchorus/twopc.h" /* twopc_instance_valid */

#define MAX_WORKERS 64
#define MAX_SECONDS 31536000.0         /* one year: any longer is a typo */
#define MIN_SECONDS 0.001              /* timers have millisecond resolution */
#define MAX_MESSAGE_SIZE 0x7fffffffLL  /* the protocol's length field is an int32 */
#define MAX_STARTUP_SIZE 1048576LL
#define DEFAULT_TLS_CIPHERS "HIGH:!aNULL:!MD5"

/* Where an error message goes, and what it prefixes. */
struct loader {
	const char *path;
	const char *incdir; /* where @include files are looked up; may be NULL */
	char *err;
	size_t errlen;
};

/* ------------------------------------------------------------------------ */
/* Error messages                                                            */
/* ------------------------------------------------------------------------ */

/*
 * Write the name of FILE, as libconfig reports it, followed by SUFFIX into
 * the error buffer: the main file keeps the name it was given, an included
 * file is shown with the directory libconfig found it in.  Returns the length
 * written (possibly truncated).
 */
static size_t put_file_name(const struct loader *ld, const char *file, const char *suffix)
{
	int w;

	if (!ld->errlen)
		return 0;
	if (file && strcmp(file, ld->path) != 0 && file[0] != '/' && ld->incdir)
		w = snprintf(ld->err, ld->errlen, "%s/%s%s", ld->incdir, file, suffix);
	else
		w = snprintf(ld->err, ld->errlen, "%s%s", file ? file : ld->path, suffix);
	if (w < 0)
		return 0;
	return (size_t)w < ld->errlen ? (size_t)w : ld->errlen - 1;
}

/*
 * Write "FILE:LINE: NAME: problem" for setting S.  The file is the one the
 * setting came from (it differs from the main file inside an @include).
 * Always returns false so that callers can `return fail(...)`.
 */
static bool fail(const struct loader *ld, const config_setting_t *s, const char *name,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool fail(const struct loader *ld, const config_setting_t *s, const char *name,
		 const char *fmt, ...)
{
	char where[160];
	size_t n;
	va_list ap;

	if (!ld->errlen)
		return false;
	if (s)
		snprintf(where, sizeof(where), ":%u: %s: ", config_setting_source_line(s), name);
	else
		snprintf(where, sizeof(where), ": %s: ", name);
	n = put_file_name(ld, s ? config_setting_source_file(s) : NULL, where);
	if (n + 1 >= ld->errlen)
		return false;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - n, fmt, ap);
	va_end(ap);
	return false;
}

static const char *type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:  return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:  return "an integer";
	case CONFIG_TYPE_FLOAT:  return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL:   return "a boolean";
	case CONFIG_TYPE_ARRAY:  return "an array";
	case CONFIG_TYPE_LIST:   return "a list";
	default:                 return "an unknown type";
	}
}

/* ------------------------------------------------------------------------ */
/* Typed readers: each checks the type and range, then stores the value.     */
/* ------------------------------------------------------------------------ */

static bool read_int64(const struct loader *ld, const config_setting_t *s, const char *name,
		       long long min, long long max, long long *out)
{
	long long v = 0;

	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return fail(ld, s, name, "expected an integer, got %s", type_name(s));
	v = config_setting_get_int64(s);
	/* libconfig 1.5 wraps a plain integer above 2147483647 around to a negative one */
	if (v < min && v < 0 && min >= 0 && config_setting_type(s) == CONFIG_TYPE_INT)
		return fail(ld, s, name, "%lld is out of range (%lld .. %lld); write integers above "
			    "2147483647 with an L suffix, e.g. 3000000000L", v, min, max);
	if (v < min || v > max)
		return fail(ld, s, name, "%lld is out of range (%lld .. %lld)", v, min, max);
	*out = v;
	return true;
}

static bool read_int(const struct loader *ld, const config_setting_t *s, const char *name,
		     long long min, long long max, int *out)
{
	long long v = 0;

	if (!read_int64(ld, s, name, min, max, &v))
		return false;
	*out = (int)v;
	return true;
}

/* A number where an int or a float may be written (`5`, `5L` and `0.5`). */
static bool read_number(const struct loader *ld, const config_setting_t *s, const char *name,
			double *out)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		*out = (double)config_setting_get_int64(s);
		return true;
	case CONFIG_TYPE_FLOAT:
		*out = config_setting_get_float(s);
		if (!isfinite(*out))
			return fail(ld, s, name, "expected a finite number");
		return true;
	default:
		return fail(ld, s, name, "expected a number, got %s", type_name(s));
	}
}

/* A duration in seconds: 0 (disabled) or between MIN_SECONDS and MAX_SECONDS. */
static bool read_seconds(const struct loader *ld, const config_setting_t *s, const char *name,
			 double *out)
{
	double v = 0;

	if (!read_number(ld, s, name, &v))
		return false;
	if (v < 0)
		return fail(ld, s, name, "must not be negative");
	if (v != 0 && v < MIN_SECONDS)
		return fail(ld, s, name, "must be 0 (disabled) or at least %g seconds", MIN_SECONDS);
	if (v > MAX_SECONDS)
		return fail(ld, s, name, "%g seconds is more than the maximum %g", v, MAX_SECONDS);
	*out = v;
	return true;
}

/* Replace *OUT (which the snapshot owns) by a copy of the string in S. */
static bool read_string(const struct loader *ld, const config_setting_t *s, const char *name,
			char **out)
{
	const char *v;
	char *copy;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(ld, s, name, "expected a string, got %s", type_name(s));
	v = config_setting_get_string(s);
	copy = strdup(v ? v : "");
	if (!copy)
		return fail(ld, s, name, "out of memory");
	free(*out);
	*out = copy;
	return true;
}

/* As read_string(), and "" is refused. */
static bool read_nonempty_string(const struct loader *ld, const config_setting_t *s,
				 const char *name, char **out)
{
	if (!read_string(ld, s, name, out))
		return false;
	if (!**out)
		return fail(ld, s, name, "must not be empty");
	return true;
}

struct keyword {
	const char *word;
	int value;
};

/* A string that must be one of KW (compared without case). */
static bool read_keyword(const struct loader *ld, const config_setting_t *s, const char *name,
			 const struct keyword *kw, int *out)
{
	const char *v;
	char choices[160];
	size_t n = 0;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(ld, s, name, "expected a string, got %s", type_name(s));
	v = config_setting_get_string(s);
	for (const struct keyword *k = kw; k->word; k++) {
		if (strcasecmp(v, k->word) == 0) {
			*out = k->value;
			return true;
		}
	}
	choices[0] = '\0';
	for (const struct keyword *k = kw; k->word && n < sizeof(choices); k++) {
		int w = snprintf(choices + n, sizeof(choices) - n, "%s\"%s\"",
				 k == kw ? "" : (k[1].word ? ", " : " or "), k->word);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	return fail(ld, s, name, "invalid value \"%s\" (expected %s)", v, choices);
}

static const struct keyword run_modes[] = {
	{ "pool", RUN_MODE_POOL },
	{ "replication", RUN_MODE_REPLICATION },
	{ NULL, 0 },
};

static const struct keyword pool_modes[] = {
	{ "session", POOL_MODE_SESSION },
	{ "transaction", POOL_MODE_TRANSACTION },
	{ NULL, 0 },
};

static const struct keyword load_balances[] = {
	{ "statement", LB_STATEMENT },
	{ "session", LB_SESSION },
	{ "off", LB_OFF },
	{ NULL, 0 },
};

static const struct keyword on_mismatches[] = {
	{ "detach_minority", MISMATCH_DETACH_MINORITY },
	{ "abort", MISMATCH_ABORT },
	{ NULL, 0 },
};

static const struct keyword auth_methods[] = {
	{ "trust", AUTH_TRUST },
	{ "md5", AUTH_MD5 },
	{ "scram-sha-256", AUTH_SCRAM },
	{ NULL, 0 },
};

static const struct keyword log_levels[] = {
	{ "error", LOG_LVL_ERROR },
	{ "warning", LOG_LVL_WARNING },
	{ "info", LOG_LVL_INFO },
	{ "debug", LOG_LVL_DEBUG },
	{ NULL, 0 },
};

static const struct keyword client_tls_modes[] = {
	{ "disable", CLIENT_TLS_DISABLE },
	{ "allow", CLIENT_TLS_ALLOW },
	{ "require", CLIENT_TLS_REQUIRE },
	{ NULL, 0 },
};

static const struct keyword server_tls_modes[] = {
	{ "disable", SERVER_TLS_DISABLE },
	{ "prefer", SERVER_TLS_PREFER },
	{ "require", SERVER_TLS_REQUIRE },
	{ "verify-ca", SERVER_TLS_VERIFY_CA },
	{ "verify-full", SERVER_TLS_VERIFY_FULL },
	{ NULL, 0 },
};

/* The spelling of OpenSSL's MinProtocol setting (SSL_CONF_cmd). */
static const struct keyword tls_protocols[] = {
	{ "TLSv1", TLS1_VERSION },
	{ "TLSv1.1", TLS1_1_VERSION },
	{ "TLSv1.2", TLS1_2_VERSION },
	{ "TLSv1.3", TLS1_3_VERSION },
	{ NULL, 0 },
};

static const char *keyword_name(const struct keyword *kw, int value)
{
	for (const struct keyword *k = kw; k->word; k++)
		if (k->value == value)
			return k->word;
	return "unknown";
}

/* ------------------------------------------------------------------------ */
/* Settings that need more than a typed read                                 */
/* ------------------------------------------------------------------------ */

/*
 * unix_socket_mode is written the way chmod takes it.  libconfig reads 0777
 * as the decimal 777 (it has no octal literals), so the decimal digits of a
 * plain integer are taken as octal digits; a hex integer (0x1ff) is taken as
 * is, and a string ("0777") is parsed as octal.
 */
static bool read_socket_mode(const struct loader *ld, const config_setting_t *s, const char *name,
			     int *out)
{
	long long v = 0;
	char digits[32];
	char *end;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING: {
		const char *str = config_setting_get_string(s);

		errno = 0;
		v = strtoll(str, &end, 8);
		if (!*str || *end || errno)
			return fail(ld, s, name, "\"%s\" is not an octal number", str);
		break;
	}
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		if (config_setting_get_format(s) == CONFIG_FORMAT_HEX || v < 0)
			break;
		snprintf(digits, sizeof(digits), "%lld", v);
		if (digits[strspn(digits, "01234567")] != '\0')
			return fail(ld, s, name, "%lld is not an octal mode (digits 0-7, e.g. 0777)", v);
		v = strtoll(digits, NULL, 8);
		break;
	default:
		return fail(ld, s, name, "expected an octal mode such as 0777, got %s", type_name(s));
	}
	if (v < 0 || v > 0777)
		return fail(ld, s, name, "mode %llo is out of range (0 .. 0777)", (unsigned long long)v);
	*out = (int)v;
	return true;
}

static void free_string_array(char **a)
{
	if (!a)
		return;
	for (char **p = a; *p; p++)
		free(*p);
	free(a);
}

/* An array or list of non-empty strings into *OUT (NULL terminated); *N its length. */
static bool read_string_list(const struct loader *ld, const config_setting_t *s, const char *name, char ***out,
			     int *count)
{
	int n;
	char **a;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail(ld, s, name, "expected an array of strings such as [\"name\"], got %s",
			    type_name(s));
	n = config_setting_length(s);
	a = calloc((size_t)n + 1, sizeof(*a));
	if (!a)
		return fail(ld, s, name, "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING || !*config_setting_get_string(e)) {
			free_string_array(a);
			return fail(ld, e, name, "element %d: expected a non-empty string", i + 1);
		}
		a[i] = strdup(config_setting_get_string(e));
		if (!a[i]) {
			free_string_array(a);
			return fail(ld, e, name, "out of memory");
		}
	}
	free_string_array(*out);
	*out = a;
	if (count)
		*count = n;
	return true;
}

/* listen_addresses: "" or a comma separated list without empty items. */
static bool read_listen(const struct loader *ld, const config_setting_t *s, const char *name,
			char **out)
{
	const char *p;

	if (!read_string(ld, s, name, out))
		return false;
	p = *out;
	if (!*p)
		return true;
	for (;;) {
		size_t len = strcspn(p, ",");
		size_t blank = strspn(p, " \t");

		if (blank >= len)
			return fail(ld, s, name, "empty address in list \"%s\"", *out);
		if (!p[len])
			return true;
		p += len + 1;
	}
}

/* A node's unix socket path is DIR/.s.PGSQL.PORT, which must fit in sun_path. */
static bool socket_path_fits(const char *dir, int port)
{
	struct sockaddr_un sun;
	char path[sizeof(sun.sun_path) + 32];
	int n = snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", dir, port);

	return n >= 0 && (size_t)n < sizeof(sun.sun_path);
}

static const char *node_keys[] = { "host", "port", "weight", "data_dir", "ssh_host", NULL };

static bool read_node(const struct loader *ld, const config_setting_t *g, int idx,
		      struct cfg_node *node)
{
	char name[48];
	int n = config_setting_length(g);

	node->id = idx;
	node->port = 5432;
	node->weight = 1.0;

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(m);
		bool known = false;

		snprintf(name, sizeof(name), "nodes[%d].%s", idx, key);
		for (const char **k = node_keys; *k; k++)
			known |= strcmp(*k, key) == 0;
		if (!known)
			return fail(ld, m, name, "unknown node setting (expected host, port, weight, data_dir or ssh_host)");
		if (strcmp(key, "host") == 0) {
			if (!read_string(ld, m, name, &node->host))
				return false;
			if (!*node->host)
				return fail(ld, m, name, "must not be empty");
		} else if (strcmp(key, "port") == 0) {
			if (!read_int(ld, m, name, 1, 65535, &node->port))
				return false;
		} else if (strcmp(key, "weight") == 0) {
			if (!read_number(ld, m, name, &node->weight))
				return false;
			if (node->weight < 0)
				return fail(ld, m, name, "must not be negative");
		} else if (strcmp(key, "data_dir") == 0) {
			if (!read_string(ld, m, name, &node->data_dir))
				return false;
		} else {
			if (!read_string(ld, m, name, &node->ssh_host))
				return false;
		}
	}
	snprintf(name, sizeof(name), "nodes[%d]", idx);
	if (!node->host)
		return fail(ld, g, name, "host is required");
	if (node->host[0] == '/' && !socket_path_fits(node->host, node->port))
		return fail(ld, g, name, "unix socket directory \"%s\" is too long", node->host);
	return true;
}

static bool read_nodes(const struct loader *ld, const config_setting_t *s, const char *name,
		       struct config *cfg)
{
	int n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail(ld, s, name, "expected a list of groups: nodes = ( { host = \"...\"; port = 5432; } )"
			    ", got %s", type_name(s));
	n = config_setting_length(s);
	if (n < 1)
		return fail(ld, s, name, "at least one node is required");
	if (n > PGC_MAX_NODES)
		return fail(ld, s, name, "%d nodes given, at most %d are supported", n, PGC_MAX_NODES);
	cfg->nodes = calloc((size_t)n, sizeof(*cfg->nodes));
	if (!cfg->nodes)
		return fail(ld, s, name, "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		char ename[32];

		cfg->n_nodes = i + 1; /* so that config_unref frees what was read */
		snprintf(ename, sizeof(ename), "nodes[%d]", i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return fail(ld, g, ename, "expected a group { host = \"...\"; }, got %s", type_name(g));
		if (!read_node(ld, g, i, &cfg->nodes[i]))
			return false;
		for (int j = 0; j < i; j++) {
			if (strcmp(cfg->nodes[j].host, cfg->nodes[i].host) == 0 &&
			    cfg->nodes[j].port == cfg->nodes[i].port)
				return fail(ld, g, ename, "same host and port as nodes[%d] (%s:%d)",
					    j, cfg->nodes[i].host, cfg->nodes[i].port);
		}
	}
	return true;
}

static const char *peer_keys[] = { "host", "port", "virtual_ip", NULL };

/* peers = ( { host = "10.0.0.2"; port = 7000; virtual_ip = "10.0.0.12/24"; } ... ) */
static bool read_peers(const struct loader *ld, const config_setting_t *s, const char *name,
		       struct config *cfg)
{
	int n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail(ld, s, name, "expected a list of groups: peers = ( { host = \"...\"; port = 7000; } )"
			    ", got %s", type_name(s));
	n = config_setting_length(s);
	if (n > PGC_MAX_PEERS)
		return fail(ld, s, name, "%d peers given, at most %d are supported", n, PGC_MAX_PEERS);
	if (n == 0)
		return true;
	cfg->peers = calloc((size_t)n, sizeof(*cfg->peers));
	if (!cfg->peers)
		return fail(ld, s, name, "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		struct cfg_peer *p = &cfg->peers[i];
		char ename[48];

		cfg->n_peers = i + 1; /* so that config_unref frees what was read */
		snprintf(ename, sizeof(ename), "peers[%d]", i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return fail(ld, g, ename, "expected a group { host = \"...\"; port = 7000; }, got %s",
				    type_name(g));
		for (int k = 0; k < config_setting_length(g); k++) {
			const config_setting_t *m = config_setting_get_elem(g, (unsigned)k);
			const char *key = config_setting_name(m);
			bool known = false;

			snprintf(ename, sizeof(ename), "peers[%d].%s", i, key);
			for (const char **pk = peer_keys; *pk; pk++)
				known |= strcmp(*pk, key) == 0;
			if (!known)
				return fail(ld, m, ename, "unknown peer setting (expected host, port or virtual_ip)");
			if (strcmp(key, "host") == 0) {
				if (!read_nonempty_string(ld, m, ename, &p->host))
					return false;
			} else if (strcmp(key, "port") == 0) {
				if (!read_int(ld, m, ename, 1, 65535, &p->port))
					return false;
			} else if (!read_string(ld, m, ename, &p->virtual_ip)) {
				return false;
			}
		}
		snprintf(ename, sizeof(ename), "peers[%d]", i);
		if (!p->host || !p->port)
			return fail(ld, g, ename, "host and port are required");
		if (!p->virtual_ip && !(p->virtual_ip = strdup("")))
			return fail(ld, g, ename, "out of memory");
	}
	return true;
}

static bool read_bool(const struct loader *ld, const config_setting_t *s, const char *name, bool *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail(ld, s, name, "expected true or false, got %s", type_name(s));
	*out = config_setting_get_bool(s) != 0;
	return true;
}

static const char *health_keys[] = { "period", "timeout", "retries", "retry_delay", "user", "password",
				     "database", NULL };

/* health_check = { period = 5; timeout = 5; retries = 1; retry_delay = 1; user = ""; ... } */
static bool read_health(const struct loader *ld, const config_setting_t *g, struct cfg_health *h)
{
	char name[48];
	int n;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return fail(ld, g, "health_check", "expected a group { period = 5; ... }, got %s", type_name(g));
	n = config_setting_length(g);
	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(m);
		bool known = false;

		snprintf(name, sizeof(name), "health_check.%s", key);
		for (const char **k = health_keys; *k; k++)
			known |= strcmp(*k, key) == 0;
		if (!known)
			return fail(ld, m, name, "unknown setting (expected period, timeout, retries, retry_delay, "
				    "user, password or database)");
		if (strcmp(key, "period") == 0) {
			if (!read_seconds(ld, m, name, &h->period))
				return false;
		} else if (strcmp(key, "timeout") == 0) {
			if (!read_seconds(ld, m, name, &h->timeout))
				return false;
			if (h->timeout == 0)
				return fail(ld, m, name, "must be greater than 0");
		} else if (strcmp(key, "retries") == 0) {
			if (!read_int(ld, m, name, 0, 100, &h->retries))
				return false;
		} else if (strcmp(key, "retry_delay") == 0) {
			if (!read_seconds(ld, m, name, &h->retry_delay))
				return false;
		} else if (strcmp(key, "user") == 0) {
			if (!read_string(ld, m, name, &h->user))
				return false;
		} else if (strcmp(key, "password") == 0) {
			if (!read_string(ld, m, name, &h->password))
				return false;
		} else if (!read_string(ld, m, name, &h->database)) {
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* The table of top-level settings                                           */
/* ------------------------------------------------------------------------ */

enum setting_id {
	S_LISTEN_ADDRESSES, S_PORT, S_UNIX_SOCKET_DIR, S_UNIX_SOCKET_MODE, S_WORKERS,
	S_MODE, S_POOL_MODE, S_POOL_SIZE, S_PIPELINE_DEPTH, S_MAX_CLIENT_CONN, S_SERVER_RESET_QUERY,
	S_MAX_PREPARED_STATEMENTS, S_IGNORE_STARTUP_PARAMETERS, S_VOLATILE_FUNCTIONS, S_IMMUTABLE_FUNCTIONS,
	S_WRITING_FUNCTIONS,
	S_LOAD_BALANCE, S_ON_MISMATCH, S_INSTANCE_NAME, S_RESOLVER_USER, S_RESOLVER_PASSWORD,
	S_RESOLVER_DATABASE, S_RESOLVER_PERIOD, S_RESOLVER_GRACE,
	S_AUTH_TIMEOUT, S_CLIENT_IDLE_TIMEOUT, S_IDLE_IN_TRANSACTION_TIMEOUT,
	S_QUERY_WAIT_TIMEOUT, S_SERVER_CONNECT_TIMEOUT, S_SERVER_IDLE_TIMEOUT,
	S_SERVER_LIFETIME, S_SHUTDOWN_TIMEOUT,
	S_MAX_MESSAGE_SIZE, S_MAX_STARTUP_SIZE,
	S_AUTH_METHOD, S_USERS_FILE, S_HBA_FILE, S_AUTH_QUERY, S_AUTH_USER,
	S_CLIENT_TLS, S_TLS_CERT_FILE, S_TLS_KEY_FILE, S_TLS_CA_FILE, S_TLS_CIPHERS,
	S_TLS_MIN_PROTOCOL,
	S_SERVER_TLS, S_SERVER_TLS_CA_FILE, S_SERVER_TLS_CERT_FILE, S_SERVER_TLS_KEY_FILE,
	S_HEALTH_CHECK, S_STATE_FILE, S_MIN_NODES, S_FAILOVER_ON_BACKEND_ERROR, S_FAILOVER_COMMAND,
	S_FAILBACK_COMMAND, S_RECOVERY_1ST_STAGE_COMMAND, S_RECOVERY_2ND_STAGE_COMMAND, S_HOOK_TIMEOUT,
	S_RECOVERY_TIMEOUT, S_RECOVERY_PAUSE_TIMEOUT, S_RECOVERY_USER, S_PG_BINDIR, S_ADMIN_USERS,
	S_METRICS_PORT, S_CONTROL_SOCKET, S_LOGFILE, S_PIDFILE, S_LOG_LEVEL,
	S_HEARTBEAT_PORT, S_HEARTBEAT_ADDRESS, S_HEARTBEAT_INTERVAL, S_HEARTBEAT_DEADTIME,
	S_HEARTBEAT_SECRET, S_ESCALATION_COMMAND, S_DE_ESCALATION_COMMAND, S_PEERS,
	S_NODES,
	S_COUNT
};

static const char *const setting_names[S_COUNT] = {
	[S_LISTEN_ADDRESSES] = "listen_addresses",
	[S_PORT] = "port",
	[S_UNIX_SOCKET_DIR] = "unix_socket_dir",
	[S_UNIX_SOCKET_MODE] = "unix_socket_mode",
	[S_WORKERS] = "workers",
	[S_MODE] = "mode",
	[S_POOL_MODE] = "pool_mode",
	[S_POOL_SIZE] = "pool_size",
	[S_PIPELINE_DEPTH] = "pipeline_depth",
	[S_MAX_CLIENT_CONN] = "max_client_conn",
	[S_SERVER_RESET_QUERY] = "server_reset_query",
	[S_MAX_PREPARED_STATEMENTS] = "max_prepared_statements",
	[S_IGNORE_STARTUP_PARAMETERS] = "ignore_startup_parameters",
	[S_VOLATILE_FUNCTIONS] = "volatile_functions",
	[S_IMMUTABLE_FUNCTIONS] = "immutable_functions",
	[S_WRITING_FUNCTIONS] = "writing_functions",
	[S_LOAD_BALANCE] = "load_balance",
	[S_ON_MISMATCH] = "on_mismatch",
	[S_INSTANCE_NAME] = "instance_name",
	[S_RESOLVER_USER] = "resolver_user",
	[S_RESOLVER_PASSWORD] = "resolver_password",
	[S_RESOLVER_DATABASE] = "resolver_database",
	[S_RESOLVER_PERIOD] = "resolver_period",
	[S_RESOLVER_GRACE] = "resolver_grace",
	[S_AUTH_TIMEOUT] = "auth_timeout",
	[S_CLIENT_IDLE_TIMEOUT] = "client_idle_timeout",
	[S_IDLE_IN_TRANSACTION_TIMEOUT] = "idle_in_transaction_timeout",
	[S_QUERY_WAIT_TIMEOUT] = "query_wait_timeout",
	[S_SERVER_CONNECT_TIMEOUT] = "server_connect_timeout",
	[S_SERVER_IDLE_TIMEOUT] = "server_idle_timeout",
	[S_SERVER_LIFETIME] = "server_lifetime",
	[S_SHUTDOWN_TIMEOUT] = "shutdown_timeout",
	[S_MAX_MESSAGE_SIZE] = "max_message_size",
	[S_MAX_STARTUP_SIZE] = "max_startup_size",
	[S_AUTH_METHOD] = "auth_method",
	[S_USERS_FILE] = "users_file",
	[S_HBA_FILE] = "hba_file",
	[S_AUTH_QUERY] = "auth_query",
	[S_AUTH_USER] = "auth_user",
	[S_CLIENT_TLS] = "client_tls",
	[S_TLS_CERT_FILE] = "tls_cert_file",
	[S_TLS_KEY_FILE] = "tls_key_file",
	[S_TLS_CA_FILE] = "tls_ca_file",
	[S_TLS_CIPHERS] = "tls_ciphers",
	[S_TLS_MIN_PROTOCOL] = "tls_min_protocol",
	[S_SERVER_TLS] = "server_tls",
	[S_SERVER_TLS_CA_FILE] = "server_tls_ca_file",
	[S_SERVER_TLS_CERT_FILE] = "server_tls_cert_file",
	[S_SERVER_TLS_KEY_FILE] = "server_tls_key_file",
	[S_HEALTH_CHECK] = "health_check",
	[S_STATE_FILE] = "state_file",
	[S_MIN_NODES] = "min_nodes",
	[S_FAILOVER_ON_BACKEND_ERROR] = "failover_on_backend_error",
	[S_FAILOVER_COMMAND] = "failover_command",
	[S_FAILBACK_COMMAND] = "failback_command",
	[S_RECOVERY_1ST_STAGE_COMMAND] = "recovery_1st_stage_command",
	[S_RECOVERY_2ND_STAGE_COMMAND] = "recovery_2nd_stage_command",
	[S_HOOK_TIMEOUT] = "hook_timeout",
	[S_RECOVERY_TIMEOUT] = "recovery_timeout",
	[S_RECOVERY_PAUSE_TIMEOUT] = "recovery_pause_timeout",
	[S_RECOVERY_USER] = "recovery_user",
	[S_PG_BINDIR] = "pg_bindir",
	[S_ADMIN_USERS] = "admin_users",
	[S_METRICS_PORT] = "metrics_port",
	[S_CONTROL_SOCKET] = "control_socket",
	[S_LOGFILE] = "logfile",
	[S_PIDFILE] = "pidfile",
	[S_LOG_LEVEL] = "log_level",
	[S_HEARTBEAT_PORT] = "heartbeat_port",
	[S_HEARTBEAT_ADDRESS] = "heartbeat_address",
	[S_HEARTBEAT_INTERVAL] = "heartbeat_interval",
	[S_HEARTBEAT_DEADTIME] = "heartbeat_deadtime",
	[S_HEARTBEAT_SECRET] = "heartbeat_secret",
	[S_ESCALATION_COMMAND] = "escalation_command",
	[S_DE_ESCALATION_COMMAND] = "de_escalation_command",
	[S_PEERS] = "peers",
	[S_NODES] = "nodes",
};

static bool read_setting(const struct loader *ld, enum setting_id id, const config_setting_t *s,
			 struct config *cfg)
{
	const char *name = setting_names[id];
	long long v64 = 0;
	int v = 0;

	switch (id) {
	case S_LISTEN_ADDRESSES:
		return read_listen(ld, s, name, &cfg->listen_addresses);
	case S_PORT:
		return read_int(ld, s, name, 1, 65535, &cfg->port);
	case S_UNIX_SOCKET_DIR:
		return read_string(ld, s, name, &cfg->unix_socket_dir);
	case S_UNIX_SOCKET_MODE:
		return read_socket_mode(ld, s, name, &cfg->unix_socket_mode);
	case S_WORKERS:
		return read_int(ld, s, name, 0, MAX_WORKERS, &cfg->workers);
	case S_MODE:
		if (!read_keyword(ld, s, name, run_modes, &v))
			return false;
		cfg->mode = (enum run_mode)v;
		return true;
	case S_POOL_MODE:
		if (!read_keyword(ld, s, name, pool_modes, &v))
			return false;
		cfg->pool_mode = (enum pool_mode)v;
		return true;
	case S_POOL_SIZE:
		return read_int(ld, s, name, 1, 100000, &cfg->pool_size);
	case S_PIPELINE_DEPTH:
		return read_int(ld, s, name, 1, PIPELINE_DEPTH_MAX, &cfg->pipeline_depth);
	case S_MAX_CLIENT_CONN:
		return read_int(ld, s, name, 1, 10000000, &cfg->max_client_conn);
	case S_SERVER_RESET_QUERY:
		return read_string(ld, s, name, &cfg->server_reset_query);
	case S_MAX_PREPARED_STATEMENTS:
		return read_int(ld, s, name, 1, 10000000, &cfg->max_prepared_statements);
	case S_IGNORE_STARTUP_PARAMETERS:
		return read_string_list(ld, s, name, &cfg->ignore_startup_parameters, &cfg->n_ignore_startup_parameters);
	case S_VOLATILE_FUNCTIONS:
		return read_string_list(ld, s, name, &cfg->volatile_functions, NULL);
	case S_IMMUTABLE_FUNCTIONS:
		return read_string_list(ld, s, name, &cfg->immutable_functions, NULL);
	case S_WRITING_FUNCTIONS:
		return read_string_list(ld, s, name, &cfg->writing_functions, NULL);
	case S_LOAD_BALANCE:
		if (!read_keyword(ld, s, name, load_balances, &v))
			return false;
		cfg->load_balance = (enum load_balance)v;
		return true;
	case S_ON_MISMATCH:
		if (!read_keyword(ld, s, name, on_mismatches, &v))
			return false;
		cfg->on_mismatch = (enum on_mismatch)v;
		return true;
	case S_INSTANCE_NAME:
		/* "" = derived from the port, in finish() */
		if (!read_string(ld, s, name, &cfg->instance_name))
			return false;
		if (*cfg->instance_name && !twopc_instance_valid(cfg->instance_name))
			return fail(ld, s, name, "invalid name \"%s\" (1 to %d characters of a-z, 0-9 and _)",
				    cfg->instance_name, TWOPC_INSTANCE_MAX);
		return true;
	case S_RESOLVER_USER:
		return read_nonempty_string(ld, s, name, &cfg->resolver_user);
	case S_RESOLVER_PASSWORD:
		return read_string(ld, s, name, &cfg->resolver_password);
	case S_RESOLVER_DATABASE:
		return read_nonempty_string(ld, s, name, &cfg->resolver_database);
	case S_RESOLVER_PERIOD:
		if (!read_seconds(ld, s, name, &cfg->resolver_period))
			return false;
		if (cfg->resolver_period == 0)
			return fail(ld, s, name, "must be greater than 0");
		return true;
	case S_RESOLVER_GRACE:
		return read_seconds(ld, s, name, &cfg->resolver_grace);
	case S_AUTH_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->auth_timeout);
	case S_CLIENT_IDLE_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->client_idle_timeout);
	case S_IDLE_IN_TRANSACTION_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->idle_in_transaction_timeout);
	case S_QUERY_WAIT_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->query_wait_timeout);
	case S_SERVER_CONNECT_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->server_connect_timeout);
	case S_SERVER_IDLE_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->server_idle_timeout);
	case S_SERVER_LIFETIME:
		return read_seconds(ld, s, name, &cfg->server_lifetime);
	case S_SHUTDOWN_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->shutdown_timeout);
	case S_MAX_MESSAGE_SIZE:
		if (!read_int64(ld, s, name, 1024, MAX_MESSAGE_SIZE, &v64))
			return false;
		cfg->max_message_size = (uint32_t)v64;
		return true;
	case S_MAX_STARTUP_SIZE:
		if (!read_int64(ld, s, name, 512, MAX_STARTUP_SIZE, &v64))
			return false;
		cfg->max_startup_size = (uint32_t)v64;
		return true;
	case S_AUTH_METHOD:
		if (!read_keyword(ld, s, name, auth_methods, &v))
			return false;
		cfg->auth_method = (enum auth_method)v;
		return true;
	case S_USERS_FILE:
		return read_string(ld, s, name, &cfg->users_file);
	case S_HBA_FILE:
		return read_string(ld, s, name, &cfg->hba_file);
	case S_AUTH_QUERY:
		return read_string(ld, s, name, &cfg->auth_query);
	case S_AUTH_USER:
		return read_string(ld, s, name, &cfg->auth_user);
	case S_CLIENT_TLS:
		if (!read_keyword(ld, s, name, client_tls_modes, &v))
			return false;
		cfg->client_tls = (enum client_tls_mode)v;
		return true;
	case S_TLS_CERT_FILE:
		return read_string(ld, s, name, &cfg->tls_cert_file);
	case S_TLS_KEY_FILE:
		return read_string(ld, s, name, &cfg->tls_key_file);
	case S_TLS_CA_FILE:
		return read_string(ld, s, name, &cfg->tls_ca_file);
	case S_TLS_CIPHERS:
		if (!read_string(ld, s, name, &cfg->tls_ciphers))
			return false;
		if (!*cfg->tls_ciphers)
			return fail(ld, s, name, "must not be empty (the default is \"%s\")",
				    DEFAULT_TLS_CIPHERS);
		return true;
	case S_TLS_MIN_PROTOCOL:
		return read_keyword(ld, s, name, tls_protocols, &cfg->tls_min_protocol);
	case S_SERVER_TLS:
		if (!read_keyword(ld, s, name, server_tls_modes, &v))
			return false;
		cfg->server_tls = (enum server_tls_mode)v;
		return true;
	case S_SERVER_TLS_CA_FILE:
		return read_string(ld, s, name, &cfg->server_tls_ca_file);
	case S_SERVER_TLS_CERT_FILE:
		return read_string(ld, s, name, &cfg->server_tls_cert_file);
	case S_SERVER_TLS_KEY_FILE:
		return read_string(ld, s, name, &cfg->server_tls_key_file);
	case S_HEALTH_CHECK:
		return read_health(ld, s, &cfg->health);
	case S_STATE_FILE:
		return read_string(ld, s, name, &cfg->state_file);
	case S_MIN_NODES:
		return read_int(ld, s, name, 1, PGC_MAX_NODES, &cfg->min_nodes);
	case S_FAILOVER_ON_BACKEND_ERROR:
		return read_bool(ld, s, name, &cfg->failover_on_backend_error);
	case S_FAILOVER_COMMAND:
		return read_string(ld, s, name, &cfg->failover_command);
	case S_FAILBACK_COMMAND:
		return read_string(ld, s, name, &cfg->failback_command);
	case S_RECOVERY_1ST_STAGE_COMMAND:
		return read_string(ld, s, name, &cfg->recovery_1st_stage_command);
	case S_RECOVERY_2ND_STAGE_COMMAND:
		return read_string(ld, s, name, &cfg->recovery_2nd_stage_command);
	case S_HOOK_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->hook_timeout);
	case S_RECOVERY_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->recovery_timeout);
	case S_RECOVERY_PAUSE_TIMEOUT:
		return read_seconds(ld, s, name, &cfg->recovery_pause_timeout);
	case S_RECOVERY_USER:
		return read_string(ld, s, name, &cfg->recovery_user);
	case S_PG_BINDIR:
		return read_string(ld, s, name, &cfg->pg_bindir);
	case S_ADMIN_USERS:
		if (config_setting_type(s) == CONFIG_TYPE_ARRAY || config_setting_type(s) == CONFIG_TYPE_LIST) {
			/* ["postgres", "ops"]: kept comma separated */
			char **list = NULL;
			size_t len = 1;
			char *joined;

			if (!read_string_list(ld, s, name, &list, NULL))
				return false;
			for (char **p = list; *p; p++)
				len += strlen(*p) + 1;
			joined = calloc(1, len);
			if (!joined) {
				free_string_array(list);
				return fail(ld, s, name, "out of memory");
			}
			for (char **p = list; *p; p++) {
				if (p != list)
					strcat(joined, ",");
				strcat(joined, *p);
			}
			free_string_array(list);
			free(cfg->admin_users);
			cfg->admin_users = joined;
			return true;
		}
		return read_string(ld, s, name, &cfg->admin_users);
	case S_METRICS_PORT:
		return read_int(ld, s, name, 0, 65535, &cfg->metrics_port);
	case S_CONTROL_SOCKET:
		return read_string(ld, s, name, &cfg->control_socket);
	case S_LOGFILE:
		if (!read_string(ld, s, name, &cfg->logfile))
			return false;
		if (strncmp(cfg->logfile, "syslog:", 7) == 0) {
			static const char *const facilities[] = { "daemon", "user", "local0", "local1", "local2", "local3",
								  "local4", "local5", "local6", "local7", NULL };
			bool ok = false;

			for (const char *const *f = facilities; *f; f++)
				ok |= strcmp(cfg->logfile + 7, *f) == 0;
			if (!ok)
				return fail(ld, s, name, "unknown syslog facility \"%s\" (daemon, user, local0..local7)",
					    cfg->logfile + 7);
		}
		return true;
	case S_PIDFILE:
		return read_string(ld, s, name, &cfg->pidfile);
	case S_LOG_LEVEL:
		if (!read_keyword(ld, s, name, log_levels, &v))
			return false;
		cfg->log_level = (enum log_level)v;
		return true;
	case S_HEARTBEAT_PORT:
		return read_int(ld, s, name, 0, 65535, &cfg->heartbeat_port);
	case S_HEARTBEAT_ADDRESS:
		return read_string(ld, s, name, &cfg->heartbeat_address);
	case S_HEARTBEAT_INTERVAL:
		if (!read_seconds(ld, s, name, &cfg->heartbeat_interval))
			return false;
		if (cfg->heartbeat_interval < 0.01)
			return fail(ld, s, name, "must be at least 0.01 seconds");
		return true;
	case S_HEARTBEAT_DEADTIME:
		return read_seconds(ld, s, name, &cfg->heartbeat_deadtime);
	case S_HEARTBEAT_SECRET:
		return read_string(ld, s, name, &cfg->heartbeat_secret);
	case S_ESCALATION_COMMAND:
		return read_string(ld, s, name, &cfg->escalation_command);
	case S_DE_ESCALATION_COMMAND:
		return read_string(ld, s, name, &cfg->de_escalation_command);
	case S_PEERS:
		return read_peers(ld, s, name, cfg);
	case S_NODES:
		return read_nodes(ld, s, name, cfg);
	case S_COUNT:
		break;
	}
	return fail(ld, s, name, "internal error: no reader");
}

/* ------------------------------------------------------------------------ */
/* Snapshot construction                                                     */
/* ------------------------------------------------------------------------ */

static void config_free(struct config *cfg)
{
	free(cfg->path);
	free(cfg->listen_addresses);
	free(cfg->unix_socket_dir);
	free(cfg->server_reset_query);
	free_string_array(cfg->ignore_startup_parameters);
	free_string_array(cfg->volatile_functions);
	free_string_array(cfg->immutable_functions);
	free_string_array(cfg->writing_functions);
	free(cfg->instance_name);
	free(cfg->resolver_user);
	free(cfg->resolver_password);
	free(cfg->resolver_database);
	free(cfg->users_file);
	free(cfg->hba_file);
	free(cfg->auth_query);
	free(cfg->auth_user);
	free(cfg->tls_cert_file);
	free(cfg->tls_key_file);
	free(cfg->tls_ca_file);
	free(cfg->tls_ciphers);
	free(cfg->server_tls_ca_file);
	free(cfg->server_tls_cert_file);
	free(cfg->server_tls_key_file);
	free(cfg->health.user);
	free(cfg->health.password);
	free(cfg->health.database);
	free(cfg->state_file);
	free(cfg->failover_command);
	free(cfg->failback_command);
	free(cfg->recovery_1st_stage_command);
	free(cfg->recovery_2nd_stage_command);
	free(cfg->recovery_user);
	free(cfg->pg_bindir);
	free(cfg->admin_users);
	free(cfg->control_socket);
	free(cfg->logfile);
	free(cfg->pidfile);
	free(cfg->heartbeat_address);
	free(cfg->heartbeat_secret);
	free(cfg->escalation_command);
	free(cfg->de_escalation_command);
	for (int i = 0; i < cfg->n_peers; i++) {
		free(cfg->peers[i].host);
		free(cfg->peers[i].virtual_ip);
	}
	free(cfg->peers);
	for (int i = 0; i < cfg->n_nodes; i++) {
		free(cfg->nodes[i].host);
		free(cfg->nodes[i].data_dir);
		free(cfg->nodes[i].ssh_host);
	}
	free(cfg->nodes);
	free(cfg);
}

static struct config *config_defaults(const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	atomic_init(&cfg->refcnt, 1);
	cfg->path = strdup(path);
	cfg->listen_addresses = strdup("127.0.0.1");
	cfg->port = 6432;
	cfg->unix_socket_dir = strdup("/tmp");
	cfg->unix_socket_mode = 0777;
	cfg->workers = 0;
	cfg->mode = RUN_MODE_POOL;
	cfg->pool_mode = POOL_MODE_TRANSACTION;
	cfg->pool_size = 20;
	cfg->pipeline_depth = 1;
	cfg->max_client_conn = 10000;
	cfg->server_reset_query = strdup("DISCARD ALL");
	cfg->max_prepared_statements = 1000;
	cfg->ignore_startup_parameters = calloc(2, sizeof(char *));
	if (cfg->ignore_startup_parameters) {
		cfg->ignore_startup_parameters[0] = strdup("extra_float_digits");
		cfg->n_ignore_startup_parameters = 1;
	}
	cfg->load_balance = LB_STATEMENT;
	cfg->on_mismatch = MISMATCH_DETACH_MINORITY;
	cfg->instance_name = strdup("");
	cfg->resolver_user = strdup("postgres");
	cfg->resolver_password = strdup("");
	cfg->resolver_database = strdup("postgres");
	cfg->resolver_period = 10;
	cfg->resolver_grace = 30;
	cfg->auth_timeout = 60;
	cfg->client_idle_timeout = 0;
	cfg->idle_in_transaction_timeout = 0;
	cfg->query_wait_timeout = 120;
	cfg->server_connect_timeout = 15;
	cfg->server_idle_timeout = 600;
	cfg->server_lifetime = 3600;
	cfg->shutdown_timeout = 60;
	cfg->max_message_size = 1073741824u;
	cfg->max_startup_size = 10000;
	cfg->auth_method = AUTH_TRUST;
	cfg->users_file = strdup("");
	cfg->hba_file = strdup("");
	cfg->auth_query = strdup("");
	cfg->auth_user = strdup("");
	cfg->client_tls = CLIENT_TLS_ALLOW;
	cfg->tls_cert_file = strdup("");
	cfg->tls_key_file = strdup("");
	cfg->tls_ca_file = strdup("");
	cfg->tls_ciphers = strdup(DEFAULT_TLS_CIPHERS);
	cfg->tls_min_protocol = TLS1_2_VERSION;
	cfg->server_tls = SERVER_TLS_PREFER;
	cfg->server_tls_ca_file = strdup("");
	cfg->server_tls_cert_file = strdup("");
	cfg->server_tls_key_file = strdup("");
	cfg->health.period = 5;
	cfg->health.timeout = 5;
	cfg->health.retries = 1;
	cfg->health.retry_delay = 1;
	cfg->health.user = strdup("");
	cfg->health.password = strdup("");
	cfg->health.database = strdup("");
	cfg->state_file = strdup("pgchorus.state");
	cfg->min_nodes = 1;
	cfg->failover_on_backend_error = true;
	cfg->failover_command = strdup("");
	cfg->failback_command = strdup("");
	cfg->recovery_1st_stage_command = strdup("");
	cfg->recovery_2nd_stage_command = strdup("");
	cfg->hook_timeout = 60;
	cfg->recovery_timeout = 3600;
	cfg->recovery_pause_timeout = 10;
	cfg->recovery_user = strdup("");
	cfg->pg_bindir = strdup("");
	cfg->admin_users = strdup("postgres");
	cfg->control_socket = strdup("/tmp/pgchorus.ctl");
	cfg->logfile = strdup("");
	cfg->pidfile = strdup("");
	cfg->log_level = LOG_LVL_INFO;
	cfg->heartbeat_address = strdup("");
	cfg->heartbeat_interval = 1;
	cfg->heartbeat_deadtime = 5;
	cfg->heartbeat_secret = strdup("");
	cfg->escalation_command = strdup("");
	cfg->de_escalation_command = strdup("");

	if (!cfg->heartbeat_address || !cfg->heartbeat_secret || !cfg->escalation_command ||
	    !cfg->de_escalation_command || !cfg->path || !cfg->listen_addresses || !cfg->unix_socket_dir ||
	    !cfg->server_reset_query || !cfg->ignore_startup_parameters ||
	    !cfg->ignore_startup_parameters[0] || !cfg->instance_name || !cfg->resolver_user ||
	    !cfg->resolver_password || !cfg->resolver_database || !cfg->users_file || !cfg->hba_file ||
	    !cfg->auth_query || !cfg->auth_user || !cfg->tls_cert_file || !cfg->tls_key_file ||
	    !cfg->tls_ca_file || !cfg->tls_ciphers || !cfg->server_tls_ca_file ||
	    !cfg->server_tls_cert_file || !cfg->server_tls_key_file || !cfg->control_socket ||
	    !cfg->logfile || !cfg->pidfile || !cfg->health.user || !cfg->health.password ||
	    !cfg->health.database || !cfg->state_file || !cfg->failover_command || !cfg->failback_command ||
	    !cfg->recovery_1st_stage_command || !cfg->recovery_2nd_stage_command || !cfg->recovery_user ||
	    !cfg->pg_bindir || !cfg->admin_users) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/*
 * The directory holding PATH, as an absolute path (so that a file named
 * relative to it stays valid if the process changes directory).  Malloc'ed.
 */
static char *config_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) : 0;
	char cwd[4096];
	char *dir;

	if (slash == path)
		return strdup("/");
	if (path[0] == '/')
		return strndup(path, dirlen);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (!slash)
		return strdup(cwd);
	dir = malloc(strlen(cwd) + 1 + dirlen + 1);
	if (dir)
		sprintf(dir, "%s/%.*s", cwd, (int)dirlen, path);
	return dir;
}

/*
 * Make *FIELD (the value of setting NAME, owned by the snapshot) absolute:
 * a relative path is taken relative to the directory of the configuration
 * file CONF, so that it does not depend on the working directory pgchorus
 * was started from.  "" and absolute paths are left alone.
 */
static bool resolve_path(const struct loader *ld, config_t *lc, const char *conf,
			 const char *name, char **field)
{
	config_setting_t *s;
	char *dir, *full;

	if (!**field || (*field)[0] == '/')
		return true;
	s = config_lookup(lc, name);
	dir = config_dir(conf);
	if (!dir)
		return fail(ld, s, name, "cannot resolve relative path: %s", strerror(errno));
	full = malloc(strlen(dir) + 1 + strlen(*field) + 1);
	if (!full) {
		free(dir);
		return fail(ld, s, name, "out of memory");
	}
	sprintf(full, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", *field);
	free(dir);
	free(*field);
	*field = full;
	return true;
}

/*
 * Can PATH (the value of setting NAME; "" = unset, nothing to check) be
 * opened for reading?  Only opened, not read: O_NONBLOCK so that a FIFO does
 * not block the load.  The contents are checked by the module that uses the
 * file; this check gives `pgchorus -t` and a reload a precise message for
 * the common mistakes (wrong path, wrong owner or mode).
 */
static bool file_readable(const struct loader *ld, config_t *lc, const char *name,
			  const char *path)
{
	struct stat st;
	int fd, e;

	if (!*path)
		return true;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		goto error;
	if (fstat(fd, &st) != 0) {
		e = errno;
		close(fd);
		errno = e;
		goto error;
	}
	close(fd);
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto error;
	}
	return true;

error:
	return fail(ld, config_lookup(lc, name), name, "cannot read %s: %s", path, strerror(errno));
}

/*
 * A certificate file and its key file: both set or both "".  Not checked
 * when that side does not use TLS (OFF): the files are not used then.
 */
static bool check_pair(const struct loader *ld, config_t *lc, bool off, const char *cert_name,
		       const char *cert, const char *key_name, const char *key)
{
	if (off || !*cert == !*key)
		return true;
	if (*cert)
		return fail(ld, config_lookup(lc, cert_name), cert_name,
			    "is set but %s is not (both are needed)", key_name);
	return fail(ld, config_lookup(lc, key_name), key_name,
		    "is set but %s is not (both are needed)", cert_name);
}

/* Settings of authentication that depend on each other. */
static bool check_auth(const struct loader *ld, config_t *lc, const struct config *cfg)
{
	/*
	 * Passwords come from users_file or auth_query.  With an hba file,
	 * auth_method is not what decides, and the methods named in the hba
	 * file are that module's to check.
	 */
	if (!*cfg->hba_file && cfg->auth_method != AUTH_TRUST && !*cfg->users_file &&
	    !*cfg->auth_query)
		return fail(ld, config_lookup(lc, "auth_method"), "auth_method",
			    "\"%s\" needs a users_file or an auth_query",
			    config_auth_method_name(cfg->auth_method));
	if (*cfg->auth_query) {
		config_setting_t *s = config_lookup(lc, "auth_query");

		if (!strstr(cfg->auth_query, "$1"))
			return fail(ld, s, "auth_query",
				    "must contain $1, the parameter that receives the user name");
		if (!*cfg->auth_user)
			return fail(ld, s, "auth_query",
				    "needs auth_user, the user that runs the query");
	}
	return true;
}

/* Settings of TLS that depend on each other. */
static bool check_tls(const struct loader *ld, config_t *lc, const struct config *cfg)
{
	bool client_off = cfg->client_tls == CLIENT_TLS_DISABLE;
	bool server_off = cfg->server_tls == SERVER_TLS_DISABLE;

	if (cfg->client_tls == CLIENT_TLS_REQUIRE && (!*cfg->tls_cert_file || !*cfg->tls_key_file))
		return fail(ld, config_lookup(lc, "client_tls"), "client_tls",
			    "\"require\" needs %s",
			    !*cfg->tls_cert_file && !*cfg->tls_key_file ? "tls_cert_file and tls_key_file" :
			    !*cfg->tls_cert_file ? "tls_cert_file" : "tls_key_file");
	if (!check_pair(ld, lc, client_off, "tls_cert_file", cfg->tls_cert_file,
			"tls_key_file", cfg->tls_key_file))
		return false;
	/* a CA to check client certificates, but no TLS to present them over */
	if (!client_off && *cfg->tls_ca_file && !*cfg->tls_cert_file)
		return fail(ld, config_lookup(lc, "tls_ca_file"), "tls_ca_file",
			    "is set but tls_cert_file and tls_key_file are not: clients cannot use TLS");

	if ((cfg->server_tls == SERVER_TLS_VERIFY_CA || cfg->server_tls == SERVER_TLS_VERIFY_FULL) &&
	    !*cfg->server_tls_ca_file)
		return fail(ld, config_lookup(lc, "server_tls"), "server_tls",
			    "\"%s\" needs server_tls_ca_file", config_server_tls_name(cfg->server_tls));
	return check_pair(ld, lc, server_off, "server_tls_cert_file", cfg->server_tls_cert_file,
			  "server_tls_key_file", cfg->server_tls_key_file);
}

/* Checks that involve several settings, and resolving derived values. */
static bool finish(const struct loader *ld, config_t *lc, struct config *cfg)
{
	config_setting_t *s;
	struct sockaddr_un sun;

	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->workers = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
	}

	if (cfg->n_nodes == 0)
		return fail(ld, NULL, "nodes", "at least one node is required: nodes = ( { host = \"...\"; port = 5432; } );");

	if (cfg->min_nodes > cfg->n_nodes)
		return fail(ld, config_lookup(lc, "min_nodes"), "min_nodes", "%d is more than the %d nodes configured",
			    cfg->min_nodes, cfg->n_nodes);
	/* health checks and recovery connect as the resolver unless told otherwise */
	{
		struct {
			char **field;
			const char *from;
		} dflt[] = {
			{ &cfg->health.user, cfg->resolver_user },
			{ &cfg->health.password, cfg->resolver_password },
			{ &cfg->health.database, cfg->resolver_database },
			{ &cfg->recovery_user, cfg->resolver_user },
		};

		for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++) {
			char *v;

			if (**dflt[i].field || !*dflt[i].from)
				continue;
			v = strdup(dflt[i].from);
			if (!v)
				return fail(ld, NULL, "health_check", "out of memory");
			free(*dflt[i].field);
			*dflt[i].field = v;
		}
	}

	/* so that a snapshot's instance_name is never "" */
	if (!*cfg->instance_name) {
		char derived[16];

		snprintf(derived, sizeof(derived), "p%d", cfg->port);
		free(cfg->instance_name);
		cfg->instance_name = strdup(derived);
		if (!cfg->instance_name)
			return fail(ld, config_lookup(lc, "instance_name"), "instance_name", "out of memory");
	}

	if (!*cfg->listen_addresses && !*cfg->unix_socket_dir) {
		s = config_lookup(lc, "listen_addresses");
		if (!s)
			s = config_lookup(lc, "unix_socket_dir");
		return fail(ld, s, s ? config_setting_name(s) : "listen_addresses",
			    "listen_addresses and unix_socket_dir are both empty: nothing to listen on");
	}
	if (*cfg->unix_socket_dir && !socket_path_fits(cfg->unix_socket_dir, cfg->port))
		return fail(ld, config_lookup(lc, "unix_socket_dir"), "unix_socket_dir",
			    "\"%s\" is too long for a unix socket path", cfg->unix_socket_dir);
	if (strlen(cfg->control_socket) >= sizeof(sun.sun_path))
		return fail(ld, config_lookup(lc, "control_socket"), "control_socket",
			    "\"%s\" is too long for a unix socket path (max %zu bytes)",
			    cfg->control_socket, sizeof(sun.sun_path) - 1);

	if (cfg->n_peers > 0 && cfg->heartbeat_port == 0)
		return fail(ld, config_lookup(lc, "peers"), "peers", "heartbeat_port must be set with peers");
	if (cfg->heartbeat_deadtime < 2 * cfg->heartbeat_interval)
		return fail(ld, config_lookup(lc, "heartbeat_deadtime"), "heartbeat_deadtime",
			    "must be at least twice heartbeat_interval (%g s)", cfg->heartbeat_interval);

	if (!check_auth(ld, lc, cfg) || !check_tls(ld, lc, cfg))
		return false;

	/*
	 * File names: made absolute, and the TLS files checked for
	 * readability.  users_file and hba_file are read (and checked) by
	 * their own modules.
	 */
	const struct {
		const char *name;
		char **field;
		bool must_be_readable;
	} paths[] = {
		{ "users_file", &cfg->users_file, false },
		{ "hba_file", &cfg->hba_file, false },
		{ "tls_cert_file", &cfg->tls_cert_file, true },
		{ "tls_key_file", &cfg->tls_key_file, true },
		{ "tls_ca_file", &cfg->tls_ca_file, true },
		{ "server_tls_ca_file", &cfg->server_tls_ca_file, true },
		{ "server_tls_cert_file", &cfg->server_tls_cert_file, true },
		{ "server_tls_key_file", &cfg->server_tls_key_file, true },
		{ "state_file", &cfg->state_file, false },
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!resolve_path(ld, lc, cfg->path, paths[i].name, paths[i].field))
			return false;
		if (paths[i].must_be_readable && !file_readable(ld, lc, paths[i].name, *paths[i].field))
			return false;
	}
	return true;
}

static bool check_readable(const struct loader *ld)
{
	struct stat st;
	FILE *f = fopen(ld->path, "r");
	int e;

	if (!f)
		goto io_error;
	if (fstat(fileno(f), &st) != 0) {
		e = errno;
		fclose(f);
		errno = e;
		goto io_error;
	}
	fclose(f);
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto io_error;
	}
	return true;

io_error:
	snprintf(ld->err, ld->errlen, "%s: cannot open: %s", ld->path, strerror(errno));
	return false;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct loader ld = { path ? path : "(null)", NULL, err, errlen };
	struct config *cfg = NULL;
	config_setting_t *root;
	config_t lc;
	char *dir;
	int n;

	if (errlen)
		err[0] = '\0';
	if (!path || !*path) {
		snprintf(err, errlen, "%s: cannot open: no file name given", ld.path);
		return NULL;
	}
	if (!check_readable(&ld))
		return NULL;

	config_init(&lc);
	/*
	 * @include "file" is relative to the directory of the main file, like
	 * users_file.  (libconfig 1.5 then prefixes every include path with
	 * this directory, absolute ones too.)
	 */
	dir = config_dir(path);
	if (dir)
		config_set_include_dir(&lc, dir);
	ld.incdir = dir;
	if (!config_read_file(&lc, path)) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO) {
			snprintf(err, errlen, "%s: cannot read: %s", path, config_error_text(&lc));
		} else {
			char where[32];
			size_t len;

			snprintf(where, sizeof(where), ":%d: ", config_error_line(&lc));
			len = put_file_name(&ld, config_error_file(&lc), where);
			if (len + 1 < errlen)
				snprintf(err + len, errlen - len, "%s", config_error_text(&lc));
		}
		goto out;
	}

	cfg = config_defaults(path);
	if (!cfg) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}

	root = config_root_setting(&lc);
	n = config_setting_length(root);
	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		int id;

		for (id = 0; id < S_COUNT; id++)
			if (strcmp(setting_names[id], name) == 0)
				break;
		if (id == S_COUNT) {
			fail(&ld, s, name, "unknown setting");
			goto fail;
		}
		if (!read_setting(&ld, (enum setting_id)id, s, cfg))
			goto fail;
	}
	if (!finish(&ld, &lc, cfg))
		goto fail;
	goto out;

fail:
	config_free(cfg);
	cfg = NULL;
out:
	config_destroy(&lc);
	free(dir);
	return cfg;
}

struct config *config_ref(struct config *cfg)
{
	if (cfg)
		atomic_fetch_add_explicit(&cfg->refcnt, 1, memory_order_relaxed);
	return cfg;
}

void config_unref(struct config *cfg)
{
	/* acq_rel: every use of the snapshot by other threads happens before the free */
	if (cfg && atomic_fetch_sub_explicit(&cfg->refcnt, 1, memory_order_acq_rel) == 1) {
		if (cfg->release_derived)
			cfg->release_derived(cfg);
		config_free(cfg);
	}
}

/* ------------------------------------------------------------------------ */
/* Queries on a snapshot                                                     */
/* ------------------------------------------------------------------------ */

static bool differ_str(const char *name, const char *a, const char *b, char *err, size_t errlen)
{
	if (strcmp(a, b) == 0)
		return false;
	snprintf(err, errlen, "%s: cannot change on reload (\"%s\" -> \"%s\"); restart needed",
		 name, a, b);
	return true;
}

static bool differ_int(const char *name, int a, int b, char *err, size_t errlen)
{
	if (a == b)
		return false;
	snprintf(err, errlen, "%s: cannot change on reload (%d -> %d); restart needed", name, a, b);
	return true;
}

bool config_reload_compatible(const struct config *old, const struct config *new_cfg,
			      char *err, size_t errlen)
{
	if (differ_str("listen_addresses", old->listen_addresses, new_cfg->listen_addresses, err, errlen) ||
	    differ_int("port", old->port, new_cfg->port, err, errlen) ||
	    differ_str("unix_socket_dir", old->unix_socket_dir, new_cfg->unix_socket_dir, err, errlen))
		return false;
	if (old->unix_socket_mode != new_cfg->unix_socket_mode) {
		snprintf(err, errlen, "unix_socket_mode: cannot change on reload (0%o -> 0%o); restart needed",
			 (unsigned)old->unix_socket_mode, (unsigned)new_cfg->unix_socket_mode);
		return false;
	}
	if (differ_int("workers", old->workers, new_cfg->workers, err, errlen))
		return false;
	if (old->mode != new_cfg->mode) {
		snprintf(err, errlen, "mode: cannot change on reload (\"%s\" -> \"%s\"); restart needed",
			 config_run_mode_name(old->mode), config_run_mode_name(new_cfg->mode));
		return false;
	}
	if (differ_str("instance_name", old->instance_name, new_cfg->instance_name, err, errlen))
		return false;
	if (old->n_nodes != new_cfg->n_nodes) {
		snprintf(err, errlen, "nodes: cannot add or remove nodes on reload (%d -> %d); restart needed",
			 old->n_nodes, new_cfg->n_nodes);
		return false;
	}
	for (int i = 0; i < old->n_nodes; i++) {
		char name[32];

		snprintf(name, sizeof(name), "nodes[%d].host", i);
		if (differ_str(name, old->nodes[i].host, new_cfg->nodes[i].host, err, errlen))
			return false;
		snprintf(name, sizeof(name), "nodes[%d].port", i);
		if (differ_int(name, old->nodes[i].port, new_cfg->nodes[i].port, err, errlen))
			return false;
	}
	if (differ_int("metrics_port", old->metrics_port, new_cfg->metrics_port, err, errlen) ||
	    differ_str("control_socket", old->control_socket, new_cfg->control_socket, err, errlen) ||
	    differ_str("pidfile", old->pidfile, new_cfg->pidfile, err, errlen) ||
	    differ_str("logfile", old->logfile, new_cfg->logfile, err, errlen) ||
	    differ_int("heartbeat_port", old->heartbeat_port, new_cfg->heartbeat_port, err, errlen) ||
	    differ_str("heartbeat_address", old->heartbeat_address, new_cfg->heartbeat_address, err, errlen))
		return false;
	if (old->n_peers != new_cfg->n_peers) {
		snprintf(err, errlen, "peers: cannot add or remove peers on reload (%d -> %d); restart needed",
			 old->n_peers, new_cfg->n_peers);
		return false;
	}
	for (int i = 0; i < old->n_peers; i++) {
		char name[32];

		snprintf(name, sizeof(name), "peers[%d].host", i);
		if (differ_str(name, old->peers[i].host, new_cfg->peers[i].host, err, errlen))
			return false;
		snprintf(name, sizeof(name), "peers[%d].port", i);
		if (differ_int(name, old->peers[i].port, new_cfg->peers[i].port, err, errlen))
			return false;
	}
	if (errlen)
		err[0] = '\0';
	return true;
}

bool config_ignores_startup_param(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_ignore_startup_parameters; i++)
		if (strcasecmp(cfg->ignore_startup_parameters[i], name) == 0)
			return true;
	return false;
}

const char *config_pool_mode_name(enum pool_mode m)
{
	return keyword_name(pool_modes, (int)m);
}

const char *config_auth_method_name(enum auth_method m)
{
	return keyword_name(auth_methods, (int)m);
}

const char *config_run_mode_name(enum run_mode m)
{
	return keyword_name(run_modes, (int)m);
}

const char *config_log_level_name(enum log_level l)
{
	return keyword_name(log_levels, (int)l);
}

const char *config_load_balance_name(enum load_balance m)
{
	return keyword_name(load_balances, (int)m);
}

const char *config_on_mismatch_name(enum on_mismatch m)
{
	return keyword_name(on_mismatches, (int)m);
}

const char *config_client_tls_name(enum client_tls_mode m)
{
	return keyword_name(client_tls_modes, (int)m);
}

const char *config_server_tls_name(enum server_tls_mode m)
{
	return keyword_name(server_tls_modes, (int)m);
}

const char *config_tls_protocol_name(int version)
{
	return keyword_name(tls_protocols, version);
}
