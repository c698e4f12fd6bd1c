/*
 * hba.h - the hba file: which client may log in through pgchorus to which
 * database as which user, and with which authentication method.  The syntax
 * is a subset of PostgreSQL's pg_hba.conf; doc/hba.md describes it for users.
 *
 * One record per line:
 *
 *     local      DATABASE USER METHOD
 *     host       DATABASE USER ADDRESS METHOD
 *     hostssl    DATABASE USER ADDRESS METHOD
 *     hostnossl  DATABASE USER ADDRESS METHOD
 *
 * - DATABASE: comma-separated names, or the keywords all, sameuser (the
 *   database named like the user) and replication (never matches: pgchorus
 *   takes no replication connections).
 * - USER: comma-separated names, or the keyword all.
 * - ADDRESS: ADDR/BITS (IPv4 or IPv6), ADDR MASK (two fields), or all.
 * - METHOD: trust, reject, md5, scram-sha-256 or password.
 *
 * Fields are separated by blanks; "#" starts a comment; a line ending with a
 * backslash continues on the next one (the backslash and the newline are
 * removed, nothing is put in their place).  A double-quoted token is a
 * literal name: it may hold blanks, commas and "#", "" inside the quotes
 * stands for one quote, and a quoted keyword ("all") is just a name.
 *
 * Everything pgchorus cannot honour is an error at load time rather than a
 * silently different behaviour: other connection types (hostgssenc, ...),
 * samehost/samenet/host names, +group, @file, /regex, samerole, include
 * directives, other methods (peer, cert, ldap, ...) and every
 * authentication option (clientcert=..., ...).
 *
 * A loaded file is immutable; hba_match() is thread safe.
 */
#ifndef PGCHORUS_HBA_H
#define PGCHORUS_HBA_H

#include <stdbool.h>
#include <stddef.h>

struct hba;
struct sockaddr;

/* How the client reached pgchorus. */
enum hba_conn {
	HBA_LOCAL, /* Unix domain socket */
	HBA_HOST,  /* TCP (IPv4 or IPv6) */
};

/* What to do with a client whose connection matched a record. */
enum hba_method {
	HBA_TRUST,    /* let in without a password */
	HBA_REJECT,   /* refuse (SQLSTATE 28000) */
	HBA_MD5,      /* MD5 password challenge */
	HBA_SCRAM,    /* SCRAM-SHA-256 */
	HBA_PASSWORD, /* password sent in clear text */
};

/*
 * Read and check the hba file PATH.  Returns the records, to be released
 * with hba_free(); or NULL with a message in err (size errlen, always
 * NUL-terminated when errlen > 0):
 *   "FILE:LINE: problem"         for a bad record (LINE is the first line of
 *                                a record continued with backslashes);
 *   "FILE: cannot open: reason", "FILE: read error: reason",
 *   "FILE: contains no entries"  (a file that would reject everybody).
 * Any bad record fails the whole load, so that a reload with a broken file
 * can be refused and the previous records kept.
 */
struct hba *hba_load(const char *path, char *err, size_t errlen);

/* Free H (NULL is allowed). */
void hba_free(struct hba *h);

/*
 * Find the first record of H that matches a client, in file order.
 *
 * conn and ssl say how the client is connected (ssl is ignored for
 * HBA_LOCAL).  addr is the client's address for HBA_HOST (AF_INET or
 * AF_INET6, the caller's own memory) and NULL for HBA_LOCAL; an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d, from a dual-stack socket) is matched as the
 * IPv4 address a.b.c.d, against IPv4 records only.  With HBA_HOST and a NULL
 * or non-IP addr, only records whose address is "all" can match.  database
 * and user are the names from the startup packet (not NULL), compared
 * exactly (case-sensitive).
 *
 * Returns true and sets *method and *line (the record's first line in the
 * file) if a record matched; returns false, leaving them unchanged, if none
 * did: the caller must then refuse the client.  A NULL H matches nothing.
 */
bool hba_match(const struct hba *h, enum hba_conn conn, bool ssl, const struct sockaddr *addr,
	       const char *database, const char *user, enum hba_method *method, int *line)
	__attribute__((warn_unused_result));

/* The hba file keyword of M ("trust", "scram-sha-256", ...); "unknown" for
 * a value outside the enum.  A static string. */
const char *hba_method_name(enum hba_method m);

#endif
