/*
 * hba.c - load an hba file (syntax in include/pgchorus/hba.h, user guide in
 * doc/hba.md) into an array of records, and find the first record that
 * matches a client.
 *
 * Loading goes record by record in three steps: join the physical lines
 * continued with a backslash, split the record into fields of
 * comma-separated tokens (quotes resolved, each token remembering whether it
 * was quoted, since a quoted keyword is a plain name), then interpret the
 * fields by position.  Every check happens at load time, so matching cannot
 * fail and a broken file is refused as a whole.  The result owns all of its
 * strings and is never modified after hba_load() returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "pgchorus/hba.h"

#define IP_MAX_BYTES 16 /* IPv6 */

enum name_kind {
	NAME_LITERAL,
	NAME_ALL,
	NAME_SAMEUSER,    /* database field: the database named like the user */
	NAME_REPLICATION, /* database field: replication connections, which pgchorus never has */
};

struct hba_name {
	enum name_kind kind;
	char *s; /* NAME_LITERAL only */
};

struct hba_names {
	struct hba_name *v;
	size_t n;
};

enum rule_type {
	RULE_LOCAL,
	RULE_HOST,
	RULE_HOSTSSL,
	RULE_HOSTNOSSL,
};

struct hba_rule {
	int line;
	enum rule_type type;
	enum hba_method method;
	struct hba_names databases;
	struct hba_names users;
	/* address, for the host types only */
	bool any_addr;                 /* "all" */
	int family;                    /* AF_INET or AF_INET6 when !any_addr */
	uint8_t addr[IP_MAX_BYTES];    /* network byte order, already ANDed with mask */
	uint8_t mask[IP_MAX_BYTES];
};

struct hba {
	struct hba_rule *v;
	size_t n;
};

static const char *const method_names[] = {
	[HBA_TRUST] = "trust",
	[HBA_REJECT] = "reject",
	[HBA_MD5] = "md5",
	[HBA_SCRAM] = "scram-sha-256",
	[HBA_PASSWORD] = "password",
};

#define N_METHODS (sizeof(method_names) / sizeof(method_names[0]))

/* PostgreSQL methods that pgchorus recognises but cannot perform. */
static const char *const unsupported_methods[] = {
	"gss", "sspi", "ident", "peer", "pam", "ldap", "radius", "cert", "bsd", "oauth",
};

#define METHOD_CHOICES "trust, reject, md5, scram-sha-256 or password"

const char *hba_method_name(enum hba_method m)
{
	if ((unsigned)m >= N_METHODS)
		return "unknown";
	return method_names[m];
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

struct loader {
	const char *path;
	char *err;
	size_t errlen;
	int lineno; /* physical lines read so far */
	int line;   /* first line of the current record; 0 for a file-level message */
};

/* Write "FILE:LINE: message" (or "FILE: message" when ld->line is 0) into the
 * caller's buffer.  Always returns false, for `return fail(...)` style. */
static bool fail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct loader *ld, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (!ld->errlen)
		return false;
	if (ld->line > 0)
		w = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->path, ld->line);
	else
		w = snprintf(ld->err, ld->errlen, "%s: ", ld->path);
	if (w < 0 || (size_t)w >= ld->errlen)
		return false;
	va_start(ap, fmt);
	vsnprintf(ld->err + w, ld->errlen - (size_t)w, fmt, ap);
	va_end(ap);
	return false;
}

/* ------------------------------------------------------------------------ */
/* Reading records                                                           */
/* ------------------------------------------------------------------------ */

/* A growable NUL-terminated string. */
struct text {
	char *s;
	size_t len, cap;
};

static bool text_append(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t ncap = t->cap ? t->cap : 256;
		char *ns;

		while (ncap < t->len + n + 1)
			ncap *= 2;
		ns = realloc(t->s, ncap);
		if (!ns)
			return false;
		t->s = ns;
		t->cap = ncap;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
	return true;
}

/*
 * Read the next record into rec: physical lines joined where one ends with a
 * backslash, each newline (with a CR before it) and each such backslash
 * removed.  Like PostgreSQL, the joining happens before quotes and comments
 * are looked at.  Sets ld->line to the record's first line.  Returns 1 with
 * a record, 0 at end of file, -1 after an error (message written).
 */
static int read_record(struct loader *ld, FILE *f, char **buf, size_t *bufcap, struct text *rec)
{
	bool more = true;

	rec->len = 0;
	ld->line = 0;
	if (!text_append(rec, "", 0)) {
		fail(ld, "out of memory");
		return -1;
	}
	while (more) {
		ssize_t got;
		size_t len;

		errno = 0;
		got = getline(buf, bufcap, f);
		if (got < 0) {
			if (ferror(f) || errno == ENOMEM) {
				ld->line = 0;
				fail(ld, "read error: %s", strerror(errno ? errno : EIO));
				return -1;
			}
			/* a backslash on the last line continues into nothing */
			return ld->line ? 1 : 0;
		}
		if (ld->lineno == INT_MAX) {
			ld->line = 0;
			fail(ld, "too many lines");
			return -1;
		}
		ld->lineno++;
		if (!ld->line)
			ld->line = ld->lineno;
		len = (size_t)got;
		if (strlen(*buf) != len) {
			ld->line = ld->lineno;
			fail(ld, "NUL byte in line");
			return -1;
		}
		if (len && (*buf)[len - 1] == '\n')
			len--;
		if (len && (*buf)[len - 1] == '\r')
			len--;
		more = len && (*buf)[len - 1] == '\\';
		if (more)
			len--;
		if (!text_append(rec, *buf, len)) {
			fail(ld, "out of memory");
			return -1;
		}
	}
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Splitting a record into fields and tokens                                 */
/* ------------------------------------------------------------------------ */

struct token {
	const char *s; /* inside record.text */
	bool quoted;   /* some part of it was in double quotes */
};

/* A blank-separated field: one token, or a comma-separated list of them. */
struct field {
	struct token *tok;
	size_t n, cap;
};

struct record {
	char *text; /* the NUL-terminated text of every token */
	struct field *f;
	size_t n, cap;
};

static void record_free(struct record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->f[i].tok);
	free(r->f);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/*
 * Read one token at *pp, writing its text (quotes resolved) at *outp.
 * Stops at a blank, a comma or a '#' outside quotes, or at the end.
 * Advances both pointers.  Returns NULL, or what is wrong.
 */
static const char *read_token(const char **pp, char **outp, struct token *t)
{
	const char *p = *pp;
	char *o = *outp;
	bool in_quote = false;

	t->s = o;
	t->quoted = false;
	for (; *p; p++) {
		if (in_quote) {
			if (*p == '"') {
				if (p[1] != '"') {
					in_quote = false;
					continue;
				}
				p++; /* "" inside quotes: one literal quote */
			}
			*o++ = *p;
			continue;
		}
		if (*p == '"') {
			in_quote = t->quoted = true;
			continue;
		}
		if (is_blank(*p) || *p == ',' || *p == '#')
			break;
		*o++ = *p;
	}
	if (in_quote)
		return "unterminated quoted string";
	if (o == t->s)
		return t->quoted ? "empty quoted string" : "empty element in a comma-separated list";
	*o++ = '\0';
	*pp = p;
	*outp = o;
	return NULL;
}

static bool field_add(struct field *f, const struct token *t)
{
	if (f->n == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 4;
		struct token *nt = realloc(f->tok, ncap * sizeof(*nt));

		if (!nt)
			return false;
		f->tok = nt;
		f->cap = ncap;
	}
	f->tok[f->n++] = *t;
	return true;
}

static struct field *record_add_field(struct record *r)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 8;
		struct field *nf = realloc(r->f, ncap * sizeof(*nf));

		if (!nf)
			return NULL;
		r->f = nf;
		r->cap = ncap;
	}
	memset(&r->f[r->n], 0, sizeof(r->f[r->n]));
	return &r->f[r->n++];
}

/*
 * Split the record text P into fields.  A record without fields (blank or
 * comment only) gives r->n == 0.  "a, b" is one field: blanks after a comma
 * continue the list.  On failure the message is written and r must still be
 * freed by the caller.
 */
static bool split_record(struct loader *ld, const char *p, struct record *r)
{
	char *out;

	/* each token's text plus its NUL fits in the source it came from plus
	 * the separator after it (or the final NUL) */
	r->text = out = malloc(strlen(p) + 1);
	if (!out)
		return fail(ld, "out of memory");
	for (;;) {
		struct field *f;

		while (is_blank(*p))
			p++;
		if (!*p || *p == '#')
			return true;
		f = record_add_field(r);
		if (!f)
			return fail(ld, "out of memory");
		for (;;) {
			struct token t;
			const char *problem = read_token(&p, &out, &t);

			if (problem)
				return fail(ld, "%s", problem);
			if (!field_add(f, &t))
				return fail(ld, "out of memory");
			if (*p != ',')
				break;
			p++;
			while (is_blank(*p))
				p++;
			if (!*p || *p == '#')
				return fail(ld, "list ends with a comma");
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Interpreting the fields                                                   */
/* ------------------------------------------------------------------------ */

static void names_free(struct hba_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].s);
	free(ns->v);
	ns->v = NULL;
	ns->n = 0;
}

static void rule_free(struct hba_rule *rule)
{
	names_free(&rule->databases);
	names_free(&rule->users);
}

/* The field at *i, which WHAT names, must exist and hold exactly one token. */
static const struct token *single(struct loader *ld, const struct record *r, size_t *i, const char *what)
{
	const struct field *f;

	if (*i >= r->n) {
		fail(ld, "missing %s field", what);
		return NULL;
	}
	f = &r->f[(*i)++];
	if (f->n != 1) {
		fail(ld, "%s: one value expected, found a comma-separated list", what);
		return NULL;
	}
	return &f->tok[0];
}

static bool parse_type(struct loader *ld, const struct token *t, enum rule_type *type)
{
	static const struct {
		const char *word;
		enum rule_type type;
	} types[] = {
		{ "local", RULE_LOCAL },
		{ "host", RULE_HOST },
		{ "hostssl", RULE_HOSTSSL },
		{ "hostnossl", RULE_HOSTNOSSL },
	};

	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		if (strcmp(t->s, types[k].word) == 0) {
			*type = types[k].type;
			return true;
		}
	}
	if (strcmp(t->s, "hostgssenc") == 0 || strcmp(t->s, "hostnogssenc") == 0)
		return fail(ld, "connection type \"%s\" is not supported by pgchorus (no GSSAPI encryption)", t->s);
	if (strcmp(t->s, "include") == 0 || strcmp(t->s, "include_if_exists") == 0 ||
	    strcmp(t->s, "include_dir") == 0)
		return fail(ld, "\"%s\" is not supported by pgchorus (write all records in this file)", t->s);
	return fail(ld, "invalid connection type \"%s\" (expected local, host, hostssl or hostnossl)", t->s);
}

/*
 * The DATABASE (is_db) or USER field at *i.  Keywords and the special
 * prefixes count only when unquoted, so that "all" or "+x" can be names.
 */
static bool parse_names(struct loader *ld, const struct record *r, size_t *i, bool is_db,
			struct hba_names *out)
{
	const char *what = is_db ? "DATABASE" : "USER";
	const struct field *f;

	if (*i >= r->n)
		return fail(ld, "missing %s field", what);
	f = &r->f[(*i)++];
	out->v = calloc(f->n, sizeof(*out->v));
	if (!out->v)
		return fail(ld, "out of memory");
	for (size_t k = 0; k < f->n; k++) {
		const struct token *t = &f->tok[k];
		struct hba_name *nm = &out->v[out->n];

		if (!t->quoted) {
			const char *s = t->s;

			if (strcmp(s, "all") == 0) {
				nm->kind = NAME_ALL;
				out->n++;
				continue;
			}
			if (is_db && strcmp(s, "sameuser") == 0) {
				nm->kind = NAME_SAMEUSER;
				out->n++;
				continue;
			}
			if (is_db && strcmp(s, "replication") == 0) {
				nm->kind = NAME_REPLICATION;
				out->n++;
				continue;
			}
			if (is_db && (strcmp(s, "samerole") == 0 || strcmp(s, "samegroup") == 0))
				return fail(ld, "DATABASE \"%s\" is not supported by pgchorus "
					    "(it needs role membership, which a proxy does not know)", s);
			if (s[0] == '@')
				return fail(ld, "%s \"%s\": @file inclusion is not supported by pgchorus "
					    "(list the names here, or quote the name)", what, s);
			if (s[0] == '/')
				return fail(ld, "%s \"%s\": regular expressions are not supported by pgchorus "
					    "(quote the name if it really starts with \"/\")", what, s);
			if (!is_db && s[0] == '+')
				return fail(ld, "USER \"%s\": +group is not supported by pgchorus "
					    "(a proxy does not know role membership; list the user names)", s);
		}
		nm->kind = NAME_LITERAL;
		nm->s = strdup(t->s);
		if (!nm->s)
			return fail(ld, "out of memory");
		out->n++;
	}
	return true;
}

/* Parse a numeric IPv4 or IPv6 address into OUT (4 or 16 bytes used, the rest zeroed). */
static bool parse_ip(const char *s, int *family, uint8_t out[IP_MAX_BYTES])
{
	struct in_addr a4;
	struct in6_addr a6;

	memset(out, 0, IP_MAX_BYTES);
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memcpy(out, &a4, sizeof(a4));
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out, &a6, sizeof(a6));
		*family = AF_INET6;
		return true;
	}
	return false;
}

static size_t family_bytes(int family)
{
	return family == AF_INET ? 4 : 16;
}

static bool is_method_word(const char *s)
{
	for (size_t k = 0; k < N_METHODS; k++)
		if (strcmp(s, method_names[k]) == 0)
			return true;
	for (size_t k = 0; k < sizeof(unsupported_methods) / sizeof(unsupported_methods[0]); k++)
		if (strcmp(s, unsupported_methods[k]) == 0)
			return true;
	return false;
}

/* ADDR/BITS: the address part is already parsed, BITS is the text after '/'. */
static bool parse_prefix(struct loader *ld, const char *whole, const char *bits, struct hba_rule *rule)
{
	int max = rule->family == AF_INET ? 32 : 128;
	size_t nd = strspn(bits, "0123456789");
	int n;

	if (nd == 0 || nd > 3 || bits[nd] != '\0' || (n = atoi(bits)) > max)
		return fail(ld, "invalid mask length in address \"%s\" (0 to %d for IPv%d)", whole, max,
			    rule->family == AF_INET ? 4 : 6);
	memset(rule->mask, 0, sizeof(rule->mask));
	for (int b = 0; b < n / 8; b++)
		rule->mask[b] = 0xff;
	if (n % 8)
		rule->mask[n / 8] = (uint8_t)(0xff << (8 - n % 8));
	return true;
}

/* The ADDRESS field (and the MASK field after it, in the two-field form). */
static bool parse_address(struct loader *ld, const struct record *r, size_t *i, struct hba_rule *rule)
{
	const struct token *t = single(ld, r, i, "ADDRESS");
	const char *s, *slash;

	if (!t)
		return false;
	s = t->s;
	if (!t->quoted && strcmp(s, "all") == 0) {
		rule->any_addr = true;
		return true;
	}
	if (!t->quoted && (strcmp(s, "samehost") == 0 || strcmp(s, "samenet") == 0))
		return fail(ld, "ADDRESS \"%s\" is not supported by pgchorus (write the addresses as ADDR/BITS)", s);

	slash = strchr(s, '/');
	if (slash) {
		char ip[INET6_ADDRSTRLEN];
		size_t alen = (size_t)(slash - s);

		if (alen >= sizeof(ip))
			return fail(ld, "invalid IP address in \"%s\"", s);
		memcpy(ip, s, alen);
		ip[alen] = '\0';
		if (!parse_ip(ip, &rule->family, rule->addr))
			return fail(ld, "invalid IP address in \"%s\"", s);
		if (!parse_prefix(ld, s, slash + 1, rule))
			return false;
	} else if (parse_ip(s, &rule->family, rule->addr)) {
		const char *what = "MASK (after an address without /BITS)";
		const struct token *m = single(ld, r, i, what);
		int mfamily;

		if (!m)
			return false;
		if (!parse_ip(m->s, &mfamily, rule->mask))
			return fail(ld, "invalid MASK \"%s\" after address \"%s\" (or write the address as ADDR/BITS)",
				    m->s, s);
		if (mfamily != rule->family)
			return fail(ld, "MASK \"%s\" is not of the same IP version as address \"%s\"", m->s, s);
	} else if (is_method_word(s)) {
		return fail(ld, "missing ADDRESS field (found \"%s\" in its place)", s);
	} else {
		return fail(ld, "invalid IP address \"%s\" (host names are not supported by pgchorus)", s);
	}

	for (size_t b = 0; b < IP_MAX_BYTES; b++)
		rule->addr[b] &= rule->mask[b];
	/*
	 * Clients with IPv4-mapped addresses are matched as IPv4 (see
	 * hba_match), so an IPv6 record inside ::ffff:0:0/96 could never match:
	 * better say so now than find out when a client is refused.
	 */
	if (rule->family == AF_INET6) {
		static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		static const uint8_t ones[12] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
						  0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

		if (memcmp(rule->addr, v4mapped, 12) == 0 && memcmp(rule->mask, ones, 12) == 0)
			return fail(ld, "ADDRESS \"%s\" is an IPv4-mapped IPv6 range, which never matches: "
				    "pgchorus matches such clients as IPv4, write the IPv4 form", s);
	}
	return true;
}

static bool parse_method(struct loader *ld, const struct record *r, size_t *i, enum hba_method *method)
{
	const struct token *t = single(ld, r, i, "METHOD");

	if (!t)
		return false;
	for (size_t k = 0; k < N_METHODS; k++) {
		if (strcmp(t->s, method_names[k]) == 0) {
			*method = (enum hba_method)k;
			return true;
		}
	}
	for (size_t k = 0; k < sizeof(unsupported_methods) / sizeof(unsupported_methods[0]); k++)
		if (strcmp(t->s, unsupported_methods[k]) == 0)
			return fail(ld, "authentication method \"%s\" is not supported by pgchorus (use "
				    METHOD_CHOICES ")", t->s);
	return fail(ld, "invalid authentication method \"%s\" (expected " METHOD_CHOICES ")", t->s);
}

/*
 * Authentication options (name=value after the method).  None applies to the
 * methods pgchorus has, and ignoring one could loosen what the file's author
 * asked for (clientcert=verify-full), so each one is an error.
 */
static bool check_options(struct loader *ld, const struct record *r, size_t i)
{
	const char *s, *eq;

	if (i >= r->n)
		return true;
	s = r->f[i].tok[0].s;
	eq = strchr(s, '=');
	if (!eq || eq == s)
		return fail(ld, "unexpected \"%s\" after the authentication method "
			    "(options are written name=value)", s);
	if ((size_t)(eq - s) == strlen("clientcert") && strncmp(s, "clientcert", (size_t)(eq - s)) == 0)
		return fail(ld, "authentication option \"clientcert\" is not supported by pgchorus "
			    "(it does not check client certificates)");
	return fail(ld, "authentication option \"%.*s\" is not supported by pgchorus", (int)(eq - s), s);
}

/* Interpret the fields of R (at least one) into RULE (zeroed by the caller). */
static bool parse_record(struct loader *ld, const struct record *r, struct hba_rule *rule)
{
	const struct token *t;
	size_t i = 0;

	rule->line = ld->line;
	t = single(ld, r, &i, "connection type");
	if (!t || !parse_type(ld, t, &rule->type))
		return false;
	if (!parse_names(ld, r, &i, true, &rule->databases) || !parse_names(ld, r, &i, false, &rule->users))
		return false;
	if (rule->type != RULE_LOCAL && !parse_address(ld, r, &i, rule))
		return false;
	if (!parse_method(ld, r, &i, &rule->method))
		return false;
	return check_options(ld, r, i);
}

static bool grow(struct hba *h, size_t *cap)
{
	if (h->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct hba_rule *nv = realloc(h->v, ncap * sizeof(*nv));

		if (!nv)
			return false;
		h->v = nv;
		*cap = ncap;
	}
	memset(&h->v[h->n], 0, sizeof(h->v[h->n]));
	return true;
}

struct hba *hba_load(const char *path, char *err, size_t errlen)
{
	struct loader ld = { .path = path, .err = err, .errlen = errlen };
	struct text rec = { 0 };
	char *buf = NULL;
	size_t bufcap = 0, cap = 0;
	struct hba *h;
	FILE *f;
	int rc;

	if (errlen)
		err[0] = '\0';
	f = fopen(path, "r");
	if (!f) {
		fail(&ld, "cannot open: %s", strerror(errno));
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		fail(&ld, "out of memory");
		fclose(f);
		return NULL;
	}
	while ((rc = read_record(&ld, f, &buf, &bufcap, &rec)) > 0) {
		struct record r = { 0 };
		bool ok = split_record(&ld, rec.s, &r);

		if (ok && r.n == 0) {
			record_free(&r);
			continue;
		}
		if (ok && !grow(h, &cap))
			ok = fail(&ld, "out of memory");
		if (ok && !parse_record(&ld, &r, &h->v[h->n])) {
			rule_free(&h->v[h->n]);
			ok = false;
		}
		record_free(&r);
		if (!ok)
			goto fail;
		h->n++;
	}
	if (rc < 0)
		goto fail;
	if (h->n == 0) {
		ld.line = 0;
		fail(&ld, "contains no entries (every client would be refused)");
		goto fail;
	}
	free(rec.s);
	free(buf);
	fclose(f);
	return h;

fail:
	free(rec.s);
	free(buf);
	fclose(f);
	hba_free(h);
	return NULL;
}

void hba_free(struct hba *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		rule_free(&h->v[i]);
	free(h->v);
	free(h);
}

/* ------------------------------------------------------------------------ */
/* Matching                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The client's address as bytes, an IPv4-mapped IPv6 address turned into
 * IPv4: PostgreSQL's own IPv6 sockets are IPv6-only, so an IPv4 client always
 * reaches it as IPv4 and matches IPv4 records; a dual-stack socket in
 * pgchorus must not change which record that client gets.  Returns the
 * family, or AF_UNSPEC for no usable address.
 */
static int client_address(const struct sockaddr *sa, uint8_t out[IP_MAX_BYTES])
{
	if (!sa)
		return AF_UNSPEC;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		memcpy(out, &in.sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
			memcpy(out, &in6.sin6_addr.s6_addr[12], 4);
			return AF_INET;
		}
		memcpy(out, &in6.sin6_addr, 16);
		return AF_INET6;
	}
	return AF_UNSPEC;
}

static bool addr_match(const struct hba_rule *rule, int family, const uint8_t *addr)
{
	if (rule->any_addr)
		return true;
	if (family != rule->family)
		return false;
	for (size_t b = 0; b < family_bytes(family); b++)
		if ((addr[b] & rule->mask[b]) != rule->addr[b])
			return false;
	return true;
}

/* Does NAME match one of NS?  USER is for sameuser (database field). */
static bool names_match(const struct hba_names *ns, const char *name, const char *user)
{
	for (size_t i = 0; i < ns->n; i++) {
		switch (ns->v[i].kind) {
		case NAME_ALL:
			return true;
		case NAME_SAMEUSER:
			if (strcmp(name, user) == 0)
				return true;
			break;
		case NAME_REPLICATION:
			break;
		case NAME_LITERAL:
			if (strcmp(name, ns->v[i].s) == 0)
				return true;
			break;
		}
	}
	return false;
}

static bool type_match(enum rule_type type, enum hba_conn conn, bool ssl)
{
	switch (type) {
	case RULE_LOCAL:
		return conn == HBA_LOCAL;
	case RULE_HOST:
		return conn == HBA_HOST;
	case RULE_HOSTSSL:
		return conn == HBA_HOST && ssl;
	case RULE_HOSTNOSSL:
		return conn == HBA_HOST && !ssl;
	}
	return false;
}

bool hba_match(const struct hba *h, enum hba_conn conn, bool ssl, const struct sockaddr *addr,
	       const char *database, const char *user, enum hba_method *method, int *line)
{
	uint8_t caddr[IP_MAX_BYTES] = { 0 };
	int family = AF_UNSPEC;

	if (!h)
		return false;
	if (conn == HBA_HOST)
		family = client_address(addr, caddr);
	for (size_t i = 0; i < h->n; i++) {
		const struct hba_rule *rule = &h->v[i];

		if (!type_match(rule->type, conn, ssl))
			continue;
		if (rule->type != RULE_LOCAL && !addr_match(rule, family, caddr))
			continue;
		if (!names_match(&rule->databases, database, user) || !names_match(&rule->users, user, user))
			continue;
		*method = rule->method;
		*line = rule->line;
		return true;
	}
	return false;
}
