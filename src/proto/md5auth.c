/*
 * md5auth.c - PostgreSQL md5 password hashing and challenge answers (see
 * md5auth.h).  Owns nothing: every function works on its arguments only.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "pgchorus/md5auth.h"

#define MD5_DIGEST_BYTES 16
#define MD5_HEX_LEN 32
#define SCRAM_SECRET_PREFIX "SCRAM-SHA-256$"

/* md5 over the concatenation A || B, written as "md5" + hex into OUT. */
static bool md5_hex2(const void *a, size_t alen, const void *b, size_t blen,
		     char out[MD5_PASSWD_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t digest[MD5_DIGEST_BYTES];
	unsigned int dlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1 &&
	     EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 && dlen == MD5_DIGEST_BYTES;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		out[0] = '\0';
		return false;
	}
	memcpy(out, "md5", 3);
	for (int i = 0; i < MD5_DIGEST_BYTES; i++) {
		out[3 + 2 * i] = hex[digest[i] >> 4];
		out[3 + 2 * i + 1] = hex[digest[i] & 0x0f];
	}
	out[MD5_PASSWD_LEN] = '\0';
	return true;
}

bool md5_password_hash(const char *user, const char *password, char out[MD5_PASSWD_LEN + 1])
{
	return md5_hex2(password, strlen(password), user, strlen(user), out);
}

bool md5_is_hash(const char *secret)
{
	return strncmp(secret, "md5", 3) == 0 && strlen(secret) == MD5_PASSWD_LEN &&
	       strspn(secret + 3, "0123456789abcdef") == MD5_HEX_LEN;
}

bool md5_salted_response(const char *secret_or_password, const char *user,
			 const uint8_t salt[MD5_SALT_LEN], char out[MD5_PASSWD_LEN + 1])
{
	char hash[MD5_PASSWD_LEN + 1];
	const char *h = secret_or_password;
	bool ok;

	if (!md5_is_hash(h)) {
		if (!md5_password_hash(user, secret_or_password, hash)) {
			out[0] = '\0';
			return false;
		}
		h = hash;
	}
	/* Only the hex digits are hashed with the salt, not the "md5" prefix. */
	ok = md5_hex2(h + 3, MD5_HEX_LEN, salt, MD5_SALT_LEN, out);
	OPENSSL_cleanse(hash, sizeof(hash));
	return ok;
}

bool md5_verify(const char *stored_secret, const char *user, const uint8_t salt[MD5_SALT_LEN],
		const char *client_response)
{
	char expected[MD5_PASSWD_LEN + 1];
	bool ok;

	if (!stored_secret || !user || !client_response)
		return false;
	if (strncmp(stored_secret, SCRAM_SECRET_PREFIX, strlen(SCRAM_SECRET_PREFIX)) == 0)
		return false;
	/* The length of a well-formed answer is public; only the digits are secret. */
	if (strnlen(client_response, MD5_PASSWD_LEN + 1) != MD5_PASSWD_LEN)
		return false;
	if (!md5_salted_response(stored_secret, user, salt, expected))
		return false;
	ok = CRYPTO_memcmp(expected, client_response, MD5_PASSWD_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}
