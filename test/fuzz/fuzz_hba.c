/*
 * fuzz_hba.c - libFuzzer target for the hba file loader and matcher
 * (hba.h).  The input is the content of an hba file; it is handed to
 * hba_load() through an anonymous memory file (memfd), so no disk is
 * touched.  A loaded file is then matched against a fixed set of clients
 * (local and TCP, IPv4, IPv6 and IPv4-mapped IPv6, with and without TLS).
 * Checked: on failure the message is NUL-terminated inside the buffer and
 * not empty; on a match the method is one of the enum and the line number
 * lies within the input.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pgchorus/hba.h"

#define FUZZ_MAX_INPUT 65536

#define FUZZ_REQUIRE(cond)                                                              \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                 \
			abort();                                                        \
		}                                                                       \
	} while (0)

struct probe {
	enum hba_conn conn;
	bool ssl;
	const char *addr;   /* NULL: no address */
	const char *database;
	const char *user;
};

static const struct probe probes[] = {
	{ HBA_LOCAL, false, NULL, "postgres", "postgres" },
	{ HBA_HOST, false, "127.0.0.1", "postgres", "postgres" },
	{ HBA_HOST, true, "10.1.2.3", "app", "alice" },
	{ HBA_HOST, false, "192.168.100.200", "bob", "bob" },
	{ HBA_HOST, true, "::1", "all", "all" },
	{ HBA_HOST, false, "fe80::1:2:3:4", "replication", "x" },
	{ HBA_HOST, false, "::ffff:10.0.0.1", "db", "u" },
	{ HBA_HOST, true, NULL, "", "" },
};

static bool make_addr(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!text)
		return false;
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[256];
	struct hba *h;
	size_t lines = 1;
	int fd;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	fd = memfd_create("fuzz_hba", 0);
	FUZZ_REQUIRE(fd >= 0);
	FUZZ_REQUIRE(size == 0 || write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';

	memset(err, 'x', sizeof(err));
	h = hba_load(path, err, sizeof(err));
	if (!h) {
		FUZZ_REQUIRE(memchr(err, 0, sizeof(err)) != NULL);
		FUZZ_REQUIRE(err[0] != '\0');
		close(fd);
		return 0;
	}
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		const struct probe *p = &probes[i];
		struct sockaddr_storage ss;
		bool have = make_addr(p->addr, &ss);
		enum hba_method method = (enum hba_method)-1;
		int line = -1;

		if (hba_match(h, p->conn, p->ssl, have ? (struct sockaddr *)&ss : NULL, p->database,
			      p->user, &method, &line)) {
			FUZZ_REQUIRE(method >= HBA_TRUST && method <= HBA_PASSWORD);
			FUZZ_REQUIRE(strcmp(hba_method_name(method), "unknown") != 0);
			FUZZ_REQUIRE(line >= 1 && (size_t)line <= lines);
		} else {
			FUZZ_REQUIRE(line == -1);
		}
	}
	hba_free(h);
	close(fd);
	return 0;
}
