/*
 * test_hba.c - unit tests of the hba file loader and matcher
 * (src/config/hba.c).  Every test writes its input to a temporary file made
 * with mkstemp and removes it right after loading.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "pgchorus/hba.h"

/* Prototypes for the TEST functions (the build uses -Wmissing-prototypes). */
#define X(name) void name(void);
#include "tests_hba.def"
#undef X

/* Write TEXT to a new file in /tmp; returns its malloc'ed path. */
static char *write_file(const char *text, size_t len)
{
	char *path = strdup("/tmp/pgc_hba_XXXXXX");
	int fd;

	if (!path)
		return NULL;
	fd = mkstemp(path);
	if (fd < 0) {
		free(path);
		return NULL;
	}
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

static void remove_file(char *path)
{
	if (path) {
		unlink(path);
		free(path);
	}
}

/* Load TEXT as an hba file; on failure print the message and return NULL. */
static struct hba *load(const char *text)
{
	char err[512];
	char *path = write_file(text, strlen(text));
	struct hba *h;

	if (!path)
		return NULL;
	h = hba_load(path, err, sizeof(err));
	if (!h)
		fprintf(stderr, "    unexpected load error: %s\n", err);
	remove_file(path);
	return h;
}

/*
 * Load LEN bytes of TEXT, which must fail with "PATH:LINE: ...NEEDLE..."
 * (or "PATH: ...NEEDLE..." for LINE 0).
 */
static bool fails_n(const char *text, size_t len, int line, const char *needle)
{
	char err[512], prefix[256];
	char *path = write_file(text, len);
	struct hba *h;
	bool ok;

	if (!path)
		return false;
	h = hba_load(path, err, sizeof(err));
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	ok = !h && strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err + strlen(prefix), needle);
	if (!ok)
		fprintf(stderr, "    expected \"%s...%s...\", got \"%s\"\n", prefix, needle, h ? "(loaded)" : err);
	hba_free(h);
	remove_file(path);
	return ok;
}

static bool fails(const char *text, int line, const char *needle)
{
	return fails_n(text, strlen(text), line, needle);
}

/* A socket address for the numeric IPv4 or IPv6 address S. */
static struct sockaddr_storage sa(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, s, &in6->sin6_addr) != 1)
			fprintf(stderr, "    bad test address %s\n", s);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		if (inet_pton(AF_INET, s, &in->sin_addr) != 1)
			fprintf(stderr, "    bad test address %s\n", s);
	}
	return ss;
}

/*
 * The line of the record matching a TCP client from IP (NULL: no address),
 * or 0 if none matches.  *m (if M) gets the method.
 */
static int host_m(const struct hba *h, bool ssl, const char *ip, const char *db, const char *user,
		  enum hba_method *m)
{
	struct sockaddr_storage ss;
	enum hba_method method = (enum hba_method)-1;
	int line = 0;

	memset(&ss, 0, sizeof(ss));
	if (ip)
		ss = sa(ip);
	if (!hba_match(h, HBA_HOST, ssl, ip ? (const struct sockaddr *)&ss : NULL, db, user, &method, &line))
		return 0;
	if (m)
		*m = method;
	return line;
}

static int host(const struct hba *h, const char *ip, const char *db, const char *user)
{
	return host_m(h, false, ip, db, user, NULL);
}

static int local_m(const struct hba *h, const char *db, const char *user, enum hba_method *m)
{
	enum hba_method method;
	int line = 0;

	if (!hba_match(h, HBA_LOCAL, false, NULL, db, user, &method, &line))
		return 0;
	if (m)
		*m = method;
	return line;
}

static int local(const struct hba *h, const char *db, const char *user)
{
	return local_m(h, db, user, NULL);
}

/* ------------------------------------------------------------------------ */

TEST(test_hba_realistic_file)
{
	const char *text =
		"# pgchorus client authentication\n"                                    /* 1 */
		"#\n"                                                                    /* 2 */
		"# TYPE     DATABASE        USER            ADDRESS          METHOD\n"   /* 3 */
		"\n"                                                                     /* 4 */
		"# nobody gets in as the superuser over the network\n"                   /* 5 */
		"host       all             postgres        0.0.0.0/0        reject\n"   /* 6 */
		"\n"                                                                     /* 7 */
		"local      all             all                              trust\n"    /* 8 */
		"host       all             all             127.0.0.1/32     trust   # loopback\n" /* 9 */
		"host       all             all             ::1/128          trust\n"    /* 10 */
		"\t\n"                                                                   /* 11 */
		"hostssl    app,app_test    app_user        10.0.0.0/8       scram-sha-256\n" /* 12 */
		"hostnossl  reports         analyst         192.168.10.0 255.255.255.0  md5\n" /* 13 */
		"host       legacy          all             192.168.0.0/16   password\n" /* 14 */
		"host       all             all             all              reject\n";  /* 15 */
	struct hba *h = load(text);
	enum hba_method m;

	REQUIRE(h);
	CHECK(local_m(h, "app", "app_user", &m) == 8 && m == HBA_TRUST);
	CHECK(local(h, "postgres", "postgres") == 8);
	CHECK(host_m(h, false, "127.0.0.1", "postgres", "postgres", &m) == 6 && m == HBA_REJECT);
	CHECK(host_m(h, false, "127.0.0.1", "app", "app_user", &m) == 9 && m == HBA_TRUST);
	CHECK(host_m(h, false, "::1", "app", "app_user", &m) == 10 && m == HBA_TRUST);
	CHECK(host_m(h, true, "10.20.30.40", "app", "app_user", &m) == 12 && m == HBA_SCRAM);
	CHECK(host_m(h, true, "10.20.30.40", "app_test", "app_user", &m) == 12);
	CHECK(host_m(h, false, "10.20.30.40", "app", "app_user", &m) == 15 && m == HBA_REJECT);
	CHECK(host_m(h, true, "10.20.30.40", "other", "app_user", &m) == 15);
	CHECK(host_m(h, false, "192.168.10.7", "reports", "analyst", &m) == 13 && m == HBA_MD5);
	CHECK(host_m(h, true, "192.168.10.7", "reports", "analyst", &m) == 15);
	CHECK(host_m(h, false, "192.168.11.7", "reports", "analyst", &m) == 15);
	CHECK(host_m(h, true, "192.168.200.1", "legacy", "anyone", &m) == 14 && m == HBA_PASSWORD);
	CHECK(host_m(h, false, "2001:db8::1", "legacy", "anyone", &m) == 15 && m == HBA_REJECT);
	hba_free(h);
}

TEST(test_hba_connection_types)
{
	struct hba *h = load("local all all trust\n"
			     "hostssl all all all scram-sha-256\n"
			     "hostnossl all all all md5\n");
	struct hba *h2 = load("host all all all password\n");
	enum hba_method m;

	REQUIRE(h && h2);
	/* a Unix socket client never matches host lines, whatever ssl says */
	CHECK(local_m(h, "d", "u", &m) == 1 && m == HBA_TRUST);
	CHECK(local(h2, "d", "u") == 0);
	CHECK(!hba_match(h2, HBA_LOCAL, true, NULL, "d", "u", &m, &(int){ 0 }));
	/* hostssl only with ssl, hostnossl only without */
	CHECK(host_m(h, true, "10.0.0.1", "d", "u", &m) == 2 && m == HBA_SCRAM);
	CHECK(host_m(h, false, "10.0.0.1", "d", "u", &m) == 3 && m == HBA_MD5);
	CHECK(host_m(h, true, "::1", "d", "u", NULL) == 2);
	CHECK(host_m(h, false, "::1", "d", "u", NULL) == 3);
	/* host matches both */
	CHECK(host_m(h2, true, "10.0.0.1", "d", "u", &m) == 1 && m == HBA_PASSWORD);
	CHECK(host_m(h2, false, "10.0.0.1", "d", "u", NULL) == 1);
	/* a local line does not match TCP clients */
	hba_free(h2);
	h2 = load("local all all trust\n");
	REQUIRE(h2);
	CHECK(host(h2, "127.0.0.1", "d", "u") == 0);
	hba_free(h2);
	hba_free(h);
}

TEST(test_hba_cidr_ipv4)
{
	struct hba *h = load("host all a 10.1.2.0/24 trust\n"      /* 1 */
			     "host all b 10.1.2.3/32 trust\n"      /* 2 */
			     "host all c 0.0.0.0/0 trust\n"        /* 3 */
			     "host all d 10.1.2.77/24 trust\n"     /* 4: host bits ignored */
			     "host all e 172.16.0.0/12 trust\n"    /* 5 */
			     "host all f 10.0.0.0/31 trust\n"      /* 6 */
			     "host all g 1.2.3.4/0 trust\n");      /* 7 */

	REQUIRE(h);
	/* /24: both ends in, one past each end out */
	CHECK(host(h, "10.1.2.0", "db", "a") == 1);
	CHECK(host(h, "10.1.2.255", "db", "a") == 1);
	CHECK(host(h, "10.1.1.255", "db", "a") == 0);
	CHECK(host(h, "10.1.3.0", "db", "a") == 0);
	/* /32: exactly one address */
	CHECK(host(h, "10.1.2.3", "db", "b") == 2);
	CHECK(host(h, "10.1.2.2", "db", "b") == 0);
	CHECK(host(h, "10.1.2.4", "db", "b") == 0);
	/* /0: every IPv4 address, but no IPv6 one */
	CHECK(host(h, "0.0.0.0", "db", "c") == 3);
	CHECK(host(h, "255.255.255.255", "db", "c") == 3);
	CHECK(host(h, "::1", "db", "c") == 0);
	CHECK(host(h, "8.8.8.8", "db", "g") == 7);
	/* an address with bits beyond the prefix means its network */
	CHECK(host(h, "10.1.2.200", "db", "d") == 4);
	CHECK(host(h, "10.1.3.77", "db", "d") == 0);
	/* a prefix that is not a whole number of bytes */
	CHECK(host(h, "172.16.0.1", "db", "e") == 5);
	CHECK(host(h, "172.31.255.255", "db", "e") == 5);
	CHECK(host(h, "172.32.0.0", "db", "e") == 0);
	CHECK(host(h, "172.15.255.255", "db", "e") == 0);
	CHECK(host(h, "10.0.0.1", "db", "f") == 6);
	CHECK(host(h, "10.0.0.2", "db", "f") == 0);
	/* no address at all: only "all" could match */
	CHECK(host(h, NULL, "db", "c") == 0);
	hba_free(h);
}

TEST(test_hba_cidr_ipv6)
{
	struct hba *h = load("host all a ::1/128 trust\n"                 /* 1 */
			     "host all b 2001:db8:1:2::/64 trust\n"      /* 2 */
			     "host all c ::/0 trust\n"                   /* 3 */
			     "host all d 2001:DB8::/33 trust\n"          /* 4 */
			     "host all e fe80::/10 trust\n");            /* 5 */

	REQUIRE(h);
	CHECK(host(h, "::1", "db", "a") == 1);
	CHECK(host(h, "::2", "db", "a") == 0);
	CHECK(host(h, "::", "db", "a") == 0);
	CHECK(host(h, "127.0.0.1", "db", "a") == 0);
	/* /64 boundaries */
	CHECK(host(h, "2001:db8:1:2::", "db", "b") == 2);
	CHECK(host(h, "2001:db8:1:2:ffff:ffff:ffff:ffff", "db", "b") == 2);
	CHECK(host(h, "2001:db8:1:1:ffff:ffff:ffff:ffff", "db", "b") == 0);
	CHECK(host(h, "2001:db8:1:3::", "db", "b") == 0);
	/* ::/0: every IPv6 address, no IPv4 one */
	CHECK(host(h, "2a00::1", "db", "c") == 3);
	CHECK(host(h, "10.0.0.1", "db", "c") == 0);
	/* /33 and upper-case hex */
	CHECK(host(h, "2001:db8:7fff::1", "db", "d") == 4);
	CHECK(host(h, "2001:db8:8000::1", "db", "d") == 0);
	CHECK(host(h, "febf::1", "db", "e") == 5);
	CHECK(host(h, "fec0::1", "db", "e") == 0);
	hba_free(h);
}

TEST(test_hba_mask_form)
{
	struct hba *h = load("host all a 127.0.0.1 255.255.255.255 trust\n"       /* 1 */
			     "host all b 10.0.0.0    255.0.0.0  md5\n"             /* 2 */
			     "host all c 192.168.1.0 255.255.254.0 trust\n"        /* 3 */
			     "host all d 2001:db8:: ffff:ffff:ffff:ffff:: trust\n" /* 4 */
			     "host all e 0.0.0.0 0.0.0.0 trust\n");                /* 5 */
	enum hba_method m;

	REQUIRE(h);
	CHECK(host(h, "127.0.0.1", "db", "a") == 1);
	CHECK(host(h, "127.0.0.2", "db", "a") == 0);
	CHECK(host_m(h, false, "10.255.0.1", "db", "b", &m) == 2 && m == HBA_MD5);
	CHECK(host(h, "11.0.0.0", "db", "b") == 0);
	CHECK(host(h, "192.168.0.255", "db", "c") == 3);
	CHECK(host(h, "192.168.1.1", "db", "c") == 3);
	CHECK(host(h, "192.168.2.0", "db", "c") == 0);
	CHECK(host(h, "2001:db8::99", "db", "d") == 4);
	CHECK(host(h, "2001:db8:0:1::", "db", "d") == 0);
	CHECK(host(h, "1.2.3.4", "db", "e") == 5);
	hba_free(h);

	CHECK(fails("host all all 127.0.0.1 ffff:: trust\n", 1, "not of the same IP version"));
	CHECK(fails("host all all ::1 255.255.255.255 trust\n", 1, "not of the same IP version"));
	CHECK(fails("host all all 127.0.0.1 trust\n", 1, "invalid MASK \"trust\""));
	CHECK(fails("host all all 127.0.0.1 255.255.255.256 trust\n", 1, "invalid MASK"));
	CHECK(fails("host all all 127.0.0.1\n", 1, "missing MASK"));
}

TEST(test_hba_ipv4_mapped)
{
	struct hba *h = load("host all a 10.0.0.0/8 trust\n"  /* 1 */
			     "host all b ::/0 trust\n"        /* 2 */
			     "host all c 127.0.0.1 255.255.255.255 trust\n"); /* 3 */

	REQUIRE(h);
	/* an IPv4 client seen on a dual-stack socket matches IPv4 records... */
	CHECK(host(h, "::ffff:10.1.2.3", "db", "a") == 1);
	CHECK(host(h, "::ffff:11.1.2.3", "db", "a") == 0);
	CHECK(host(h, "::ffff:127.0.0.1", "db", "c") == 3);
	/* ...and is not an IPv6 client, as it would not be on an IPv4 socket */
	CHECK(host(h, "::ffff:10.1.2.3", "db", "b") == 0);
	CHECK(host(h, "10.1.2.3", "db", "b") == 0);
	CHECK(host(h, "2001:db8::1", "db", "b") == 2);
	/* IPv4-compatible or NAT64 addresses are not IPv4-mapped */
	CHECK(host(h, "64:ff9b::a01:203", "db", "a") == 0);
	hba_free(h);

	/* an IPv6 record that could only ever match mapped clients */
	CHECK(fails("host all all ::ffff:10.0.0.0/104 trust\n", 1, "IPv4-mapped"));
	CHECK(fails("host all all ::ffff:127.0.0.1/128 trust\n", 1, "IPv4-mapped"));
	/* wider records that merely include the mapped range are fine */
	h = load("host all all ::/64 trust\n");
	CHECK(h != NULL);
	hba_free(h);
}

TEST(test_hba_address_all)
{
	struct hba *h = load("host all all all md5\n");
	enum hba_method m;

	REQUIRE(h);
	CHECK(host_m(h, false, "203.0.113.9", "db", "u", &m) == 1 && m == HBA_MD5);
	CHECK(host(h, "2001:db8::1", "db", "u") == 1);
	CHECK(host(h, NULL, "db", "u") == 1);
	CHECK(local(h, "db", "u") == 0);
	hba_free(h);
	/* a quoted "all" would be a host name */
	CHECK(fails("host all all \"all\" md5\n", 1, "host names are not supported"));
}

TEST(test_hba_lists_and_quoting)
{
	struct hba *h = load(
		"local db1,db2,\"db 3\" alice,bob trust\n"               /* 1 */
		"local db4, db5,\t db6 carol, dave md5\n"                /* 2 */
		"local \"all\" \"all\" password\n"                       /* 3 */
		"local \"x,y\" \"+admins\" md5\n"                        /* 4 */
		"local \"say \"\"hi\"\"\" \"#u\" trust # comment\n"      /* 5 */
		"local \"sameuser\",\"replication\" \"@u\" trust\n"      /* 6 */
		"local app\"_\"db Erin trust\n"                          /* 7 */
		"local \"/re\" u8 trust\n");                             /* 8 */
	enum hba_method m;

	REQUIRE(h);
	CHECK(local(h, "db1", "alice") == 1);
	CHECK(local(h, "db2", "bob") == 1);
	CHECK(local(h, "db 3", "bob") == 1);
	CHECK(local(h, "db3", "bob") == 0);
	CHECK(local(h, "db1", "carol") == 0);
	/* blanks after commas continue the list */
	CHECK(local_m(h, "db4", "carol", &m) == 2 && m == HBA_MD5);
	CHECK(local(h, "db5", "dave") == 2);
	CHECK(local(h, "db6", "dave") == 2);
	/* quoted keywords are names */
	CHECK(local_m(h, "all", "all", &m) == 3 && m == HBA_PASSWORD);
	CHECK(local(h, "all", "someone") == 0);
	CHECK(local(h, "x,y", "+admins") == 4);
	CHECK(local(h, "x", "+admins") == 0);
	CHECK(local(h, "say \"hi\"", "#u") == 5);
	CHECK(local(h, "sameuser", "@u") == 6);
	CHECK(local(h, "replication", "@u") == 6);
	CHECK(local(h, "u", "@u") == 0);
	/* a token may be partly quoted; names are case-sensitive */
	CHECK(local(h, "app_db", "Erin") == 7);
	CHECK(local(h, "app_db", "erin") == 0);
	CHECK(local(h, "/re", "u8") == 8);
	hba_free(h);
}

TEST(test_hba_sameuser_replication)
{
	struct hba *h = load("local sameuser all md5\n"                  /* 1 */
			     "host replication all all trust\n"         /* 2 */
			     "host replication,sameuser all all md5\n"  /* 3 */
			     "host all all all reject\n");              /* 4 */

	REQUIRE(h);
	CHECK(local(h, "alice", "alice") == 1);
	CHECK(local(h, "alice", "bob") == 0);
	CHECK(local(h, "Alice", "alice") == 0);
	/* replication never matches: pgchorus takes no replication connections */
	CHECK(host(h, "10.0.0.1", "replication", "bob") == 4);
	CHECK(host(h, "10.0.0.1", "bob", "bob") == 3);
	hba_free(h);
}

TEST(test_hba_first_match_wins)
{
	struct hba *h = load("host all mallory all reject\n"               /* 1 */
			     "host all all 10.0.0.0/8 scram-sha-256\n"     /* 2 */
			     "host all all 10.1.0.0/16 trust\n"            /* 3: shadowed by 2 */
			     "host all all 0.0.0.0/0 md5\n");              /* 4 */
	enum hba_method m;

	REQUIRE(h);
	CHECK(host_m(h, false, "10.1.0.1", "db", "mallory", &m) == 1 && m == HBA_REJECT);
	CHECK(host_m(h, false, "10.1.0.1", "db", "alice", &m) == 2 && m == HBA_SCRAM);
	CHECK(host_m(h, false, "192.0.2.1", "db", "alice", &m) == 4 && m == HBA_MD5);
	hba_free(h);
}

TEST(test_hba_no_match)
{
	struct hba *h = load("host app app 10.0.0.0/8 md5\n");
	enum hba_method m = HBA_TRUST;
	int line = 42;

	REQUIRE(h);
	/* outputs stay untouched when nothing matches */
	CHECK(!hba_match(h, HBA_LOCAL, false, NULL, "app", "app", &m, &line));
	CHECK(m == HBA_TRUST && line == 42);
	CHECK(host(h, "11.0.0.1", "app", "app") == 0);
	CHECK(host(h, "10.0.0.1", "other", "app") == 0);
	CHECK(host(h, "10.0.0.1", "app", "other") == 0);
	CHECK(host(h, "10.0.0.1", "app", "app") == 1);
	CHECK(!hba_match(NULL, HBA_LOCAL, false, NULL, "app", "app", &m, &line));
	hba_free(h);
}

TEST(test_hba_line_continuation)
{
	struct hba *h = load("# long record \\\n"                     /* 1-2: the comment continues */
			     "local all all reject\n"                  /* 2: part of the comment */
			     "host app,\\\n"                           /* 3 */
			     "     report all \\\n"                    /* 4 */
			     "     10.0.0.0/8 \\\n"                    /* 5 */
			     "     md5\n"                              /* 6 */
			     "ho\\\n"                                  /* 7: joined without a blank */
			     "st all all all trust\r\n"                /* 8 */
			     "local all all password\\\n");            /* 9: ends at end of file */
	enum hba_method m;

	REQUIRE(h);
	CHECK(host_m(h, false, "10.0.0.1", "report", "u", &m) == 3 && m == HBA_MD5);
	CHECK(host_m(h, false, "10.0.0.1", "other", "u", &m) == 7 && m == HBA_TRUST);
	CHECK(local_m(h, "db", "u", &m) == 9 && m == HBA_PASSWORD);
	hba_free(h);

	/* an error in a continued record names its first line; later lines keep their numbers */
	CHECK(fails("local all all trust\n"
		    "host all \\\n"
		    "  all 10.0.0.0/8 \\\n"
		    "  peer\n", 2, "authentication method \"peer\" is not supported by pgchorus"));
	CHECK(fails("local all \\\n"
		    " all trust\n"
		    "\n"
		    "local all all bogus\n", 4, "invalid authentication method \"bogus\""));
	/* a backslash inside a quoted name continues it too */
	h = load("local \"long\\\nname\" all trust\n");
	REQUIRE(h);
	CHECK(local(h, "longname", "u") == 1);
	hba_free(h);
}

TEST(test_hba_method_names)
{
	CHECK_STREQ(hba_method_name(HBA_TRUST), "trust");
	CHECK_STREQ(hba_method_name(HBA_REJECT), "reject");
	CHECK_STREQ(hba_method_name(HBA_MD5), "md5");
	CHECK_STREQ(hba_method_name(HBA_SCRAM), "scram-sha-256");
	CHECK_STREQ(hba_method_name(HBA_PASSWORD), "password");
	CHECK_STREQ(hba_method_name((enum hba_method)99), "unknown");
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

TEST(test_hba_error_method)
{
	CHECK(fails("local all all trust\n"
		    "# comment\n"
		    "host all all 127.0.0.1/32 trsut\n", 3, "invalid authentication method \"trsut\""));
	CHECK(fails("local all all peer\n", 1, "authentication method \"peer\" is not supported by pgchorus"));
	CHECK(fails("\nhostssl all all all cert\n", 2, "\"cert\" is not supported by pgchorus"));
	CHECK(fails("local all all ident\n", 1, "\"ident\" is not supported"));
	CHECK(fails("local all all ldap\n", 1, "\"ldap\" is not supported"));
	CHECK(fails("local all all gss\n", 1, "\"gss\" is not supported"));
	/* methods are lower case, like PostgreSQL */
	CHECK(fails("local all all MD5\n", 1, "invalid authentication method \"MD5\""));
	CHECK(fails("local all all md5,trust\n", 1, "METHOD: one value expected"));
}

TEST(test_hba_error_address)
{
	CHECK(fails("host all all 10.0.0.0/33 trust\n", 1, "invalid mask length in address \"10.0.0.0/33\" (0 to 32 for IPv4)"));
	CHECK(fails("host all all ::1/129 trust\n", 1, "(0 to 128 for IPv6)"));
	CHECK(fails("host all all 10.0.0.0/ trust\n", 1, "invalid mask length"));
	CHECK(fails("host all all 10.0.0.0/-1 trust\n", 1, "invalid mask length"));
	CHECK(fails("host all all 10.0.0.0/8x trust\n", 1, "invalid mask length"));
	CHECK(fails("host all all 10.0.0.0/0008 trust\n", 1, "invalid mask length"));
	CHECK(fails("local all all trust\n"
		    "host all all 10.0.0.256/8 trust\n", 2, "invalid IP address in \"10.0.0.256/8\""));
	CHECK(fails("host all all 10.0/16 trust\n", 1, "invalid IP address in \"10.0/16\""));
	CHECK(fails("host all all /8 trust\n", 1, "invalid IP address"));
	CHECK(fails("host all all fe80::1%eth0/64 trust\n", 1, "invalid IP address"));
	CHECK(fails("host all all db.example.com md5\n", 1,
		    "invalid IP address \"db.example.com\" (host names are not supported by pgchorus)"));
	CHECK(fails("host all all .example.com md5\n", 1, "host names are not supported"));
	CHECK(fails("host all all samehost md5\n", 1, "ADDRESS \"samehost\" is not supported by pgchorus"));
	CHECK(fails("host all all samenet md5\n", 1, "ADDRESS \"samenet\" is not supported by pgchorus"));
	CHECK(fails("host all all 10.0.0.0/8,::1/128 md5\n", 1, "ADDRESS: one value expected"));
}

TEST(test_hba_error_missing_fields)
{
	CHECK(fails("local\n", 1, "missing DATABASE field"));
	CHECK(fails("local all\n", 1, "missing USER field"));
	CHECK(fails("local all all\n", 1, "missing METHOD field"));
	CHECK(fails("local all all   # trust\n", 1, "missing METHOD field"));
	CHECK(fails("\n\nhost all all\n", 3, "missing ADDRESS field"));
	CHECK(fails("host all all trust\n", 1, "missing ADDRESS field (found \"trust\" in its place)"));
	CHECK(fails("host all all 10.0.0.0/8\n", 1, "missing METHOD field"));
	CHECK(fails("host all all all\n", 1, "missing METHOD field"));
}

TEST(test_hba_error_names)
{
	CHECK(fails("local all all trust\n"
		    "local all +admins md5\n", 2, "USER \"+admins\": +group is not supported by pgchorus"));
	CHECK(fails("local all alice,+admins md5\n", 1, "+group is not supported"));
	CHECK(fails("local @dbs.txt all md5\n", 1, "DATABASE \"@dbs.txt\": @file inclusion is not supported by pgchorus"));
	CHECK(fails("local all @users md5\n", 1, "USER \"@users\": @file inclusion is not supported"));
	CHECK(fails("local /^app all md5\n", 1, "regular expressions are not supported"));
	CHECK(fails("local all /^a md5\n", 1, "regular expressions are not supported"));
	CHECK(fails("local samerole all md5\n", 1, "DATABASE \"samerole\" is not supported"));
	CHECK(fails("local samegroup all md5\n", 1, "DATABASE \"samegroup\" is not supported"));
}

TEST(test_hba_error_options)
{
	CHECK(fails("local all all trust\n"
		    "hostssl all all all scram-sha-256 clientcert=verify-full\n", 2,
		    "authentication option \"clientcert\" is not supported by pgchorus"));
	CHECK(fails("local all all md5 map=foo\n", 1, "authentication option \"map\" is not supported"));
	CHECK(fails("host all all 10.0.0.0/8 trust bogus\n", 1,
		    "unexpected \"bogus\" after the authentication method (options are written name=value)"));
	CHECK(fails("host all all 10.0.0.0 255.0.0.0 md5 =x\n", 1, "unexpected \"=x\""));
	/* a CIDR address followed by a mask: the mask lands in the METHOD field */
	CHECK(fails("host all all 10.0.0.0/8 255.0.0.0 md5\n", 1, "invalid authentication method \"255.0.0.0\""));
}

TEST(test_hba_error_connection_type)
{
	CHECK(fails("hostgssenc all all all md5\n", 1, "connection type \"hostgssenc\" is not supported by pgchorus"));
	CHECK(fails("hostnogssenc all all all md5\n", 1, "\"hostnogssenc\" is not supported by pgchorus"));
	CHECK(fails("hots all all all md5\n", 1, "invalid connection type \"hots\""));
	CHECK(fails("include other.conf\n", 1, "\"include\" is not supported by pgchorus"));
	CHECK(fails("include_dir conf.d\n", 1, "\"include_dir\" is not supported"));
	CHECK(fails("host,local all all all md5\n", 1, "connection type: one value expected"));
	CHECK(fails("  , all all md5\n", 1, "empty element"));
}

TEST(test_hba_error_syntax)
{
	CHECK(fails("local \"unterminated all trust\n", 1, "unterminated quoted string"));
	CHECK(fails("local all,\n", 1, "list ends with a comma"));
	CHECK(fails("local all, # comment\n", 1, "list ends with a comma"));
	CHECK(fails("local a,,b all trust\n", 1, "empty element in a comma-separated list"));
	CHECK(fails("local \"\" all trust\n", 1, "empty quoted string"));
	CHECK(fails_n("local all all trust\nlocal a\0b all trust\n", 40, 2, "NUL byte"));
}

TEST(test_hba_error_file)
{
	char err[256];
	struct hba *h;

	/* a file without records would refuse every client */
	CHECK(fails("", 0, "contains no entries"));
	CHECK(fails("# only comments\n\n   \n", 0, "contains no entries"));
	h = hba_load("/nonexistent/pg_hba.conf", err, sizeof(err));
	CHECK(h == NULL);
	CHECK(strncmp(err, "/nonexistent/pg_hba.conf: cannot open: ", 39) == 0);
	/* a small buffer is truncated, still terminated; none at all is fine */
	h = hba_load("/nonexistent/pg_hba.conf", err, 8);
	CHECK(h == NULL && strlen(err) == 7);
	h = hba_load("/nonexistent/pg_hba.conf", NULL, 0);
	CHECK(h == NULL);
	hba_free(NULL);
}
