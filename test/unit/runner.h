/*
 * runner.h - a minimal unit test runner: each test is a function registered
 * in the table of runner.c; CHECK records a failure and continues, REQUIRE
 * stops the current test.  The runner prints one line per test and a final
 * "N passed, N failed" line.
 */
#ifndef PGC_TEST_RUNNER_H
#define PGC_TEST_RUNNER_H

#include <stdio.h>
#include <string.h>

extern int test_failures; /* failures within the running test */

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		test_failures++; \
	} \
} while (0)

#define REQUIRE(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "    %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
		test_failures++; \
		return; \
	} \
} while (0)

#define CHECK_STREQ(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (!a_ || !b_ || strcmp(a_, b_) != 0) { \
		fprintf(stderr, "    %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
			a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
		test_failures++; \
	} \
} while (0)

#define TEST(name) void name(void); void name(void)

#endif
