/*
 * runner.c - runs every unit test listed in tests[], or those whose name
 * contains argv[1].  Exit status 0 only when all selected tests passed.
 */
#include <stdio.h>
#include <string.h>

#include "runner.h"

int test_failures;

#define X(name) void name(void);
#include "tests.def"
#undef X

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
#define X(name) { #name, name },
#include "tests.def"
#undef X
};

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (argc > 1 && !strstr(tests[i].name, argv[1]))
			continue;
		test_failures = 0;
		tests[i].fn();
		if (test_failures) {
			failed++;
			printf("FAIL %s\n", tests[i].name);
		} else {
			passed++;
			printf("ok   %s\n", tests[i].name);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
