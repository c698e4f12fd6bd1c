/*
 * users.h - the users file: who may log in through pgchorus, and with which
 * secret.
 *
 * Format, one entry per line:
 *
 *     user:secret
 *     "user name with : or ""quotes""":secret
 *
 * Blank lines and lines whose first non-blank character is '#' are ignored.
 * Leading blanks and trailing blanks (spaces, tabs, a CR) of a line are
 * dropped; everything else after the first ':' that ends the user name is the
 * secret.  A user name may be double-quoted, and then may contain ':'; a
 * doubled quote ("") inside the quotes stands for one quote.
 *
 * The secret is one of (the same rules as PostgreSQL's pg_authid):
 *   - "md5" followed by 32 lowercase hex digits: md5(password || user);
 *   - "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (base64);
 *   - anything else: the password in plain text.
 * A secret that starts like a hash but is malformed is an error, so that a
 * damaged hash is not silently taken as a plain text password.
 *
 * A loaded file is immutable; lookups are thread safe.
 */
#ifndef PGCHORUS_USERS_H
#define PGCHORUS_USERS_H

#include <stddef.h>

struct users;

enum user_secret_kind {
	USER_SECRET_PLAIN,
	USER_SECRET_MD5,
	USER_SECRET_SCRAM,
};

/*
 * Read and validate PATH.  Returns the users, to be released with
 * users_free(); or NULL with a message "FILE:LINE: problem" (or
 * "FILE: cannot open: reason") in err (size errlen).  Duplicate user names
 * are an error.
 */
struct users *users_load(const char *path, char *err, size_t errlen);

/* The secret of USER (exact, case-sensitive match), or NULL if absent.
 * The string belongs to U. */
const char *users_lookup(const struct users *u, const char *user);

/* Number of users loaded. */
size_t users_count(const struct users *u);

/* Which kind of secret SECRET (as returned by users_lookup) is. */
enum user_secret_kind users_secret_kind(const char *secret);

/* Free U and all of its strings (NULL is allowed). */
void users_free(struct users *u);

#endif
