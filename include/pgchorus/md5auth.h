/*
 * md5auth.h - PostgreSQL "md5" password authentication, both sides.
 *
 * PostgreSQL stores an md5 secret as "md5" followed by the 32 lowercase hex
 * digits of md5(password || user).  On AuthenticationMD5Password (which
 * carries a 4-byte salt) the client answers with
 *     "md5" + hex(md5(hex digits of the stored hash || salt))
 * so the server can check the answer knowing only the stored hash, and
 * pgchorus can log in to a node knowing only the hash too.
 *
 * Pure functions without I/O or global state; thread safe.  They use MD5
 * through OpenSSL EVP, which fails when OpenSSL runs in FIPS mode: that is
 * the only reason the functions returning bool can fail on valid input.
 */
#ifndef PGCHORUS_MD5AUTH_H
#define PGCHORUS_MD5AUTH_H

#include <stdbool.h>
#include <stdint.h>

/* "md5" + 32 hex digits + NUL: the size of every out buffer below. */
#define MD5_PASSWD_LEN 35
#define MD5_SALT_LEN 4

/*
 * The pg_authid form of PASSWORD for USER: "md5" + hex(md5(password ||
 * user)), NUL-terminated in OUT.  False (OUT set to "") only if the MD5
 * digest is unavailable.
 */
bool md5_password_hash(const char *user, const char *password, char out[MD5_PASSWD_LEN + 1])
	__attribute__((warn_unused_result));

/*
 * True if SECRET is exactly "md5" followed by 32 lowercase hex digits (the
 * rule PostgreSQL uses to tell a hash from a plain text password).
 */
bool md5_is_hash(const char *secret);

/*
 * What a client sends in reply to AuthenticationMD5Password with SALT:
 * "md5" + hex(md5(hash[3..] || salt)), NUL-terminated in OUT.
 * SECRET_OR_PASSWORD is either an md5 hash (md5_is_hash) or a plain text
 * password, which is first hashed with USER.  False (OUT set to "") only
 * if the MD5 digest is unavailable.
 */
bool md5_salted_response(const char *secret_or_password, const char *user,
			 const uint8_t salt[MD5_SALT_LEN], char out[MD5_PASSWD_LEN + 1])
	__attribute__((warn_unused_result));

/*
 * Server side: true if CLIENT_RESPONSE (the NUL-terminated string of the
 * PasswordMessage) is the right answer for USER, STORED_SECRET and SALT.
 * STORED_SECRET is an md5 hash or a plain text password; a SCRAM verifier
 * ("SCRAM-SHA-256$...") cannot answer an md5 challenge and always gives
 * false, as does any failure.  The comparison runs in constant time.
 */
bool md5_verify(const char *stored_secret, const char *user, const uint8_t salt[MD5_SALT_LEN],
		const char *client_response)
	__attribute__((warn_unused_result));

#endif
