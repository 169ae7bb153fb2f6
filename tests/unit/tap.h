/* tap: a few macros that make a C program speak the Test Anything Protocol for automake's TAP driver. */
#ifndef PGHA_TAP_H
#define PGHA_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "jsonpack.h"

static int tap_count, tap_failed;

/* Unit tests run the library strictly: a json_pack format that does not fit its
 * arguments aborts the test at once, and the log names the call (see jsonpack.h). */
__attribute__((constructor)) static void tap_strict(void)
{
	jsonpack_set_strict(true);
}

static inline bool tap_ok(bool passed, const char *file, int line, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

static inline bool tap_ok(bool passed, const char *file, int line, const char *format, ...)
{
	va_list args;

	printf("%s %d - ", passed ? "ok" : "not ok", ++tap_count);
	va_start(args, format);
	vprintf(format, args);
	va_end(args);
	printf("\n");
	if (!passed) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return passed;
}

#define ok(condition, ...) tap_ok((condition), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, expected, ...)                                                              \
	do {                                                                                    \
		long long got_ = (got), expected_ = (expected);                                 \
		if (!ok(got_ == expected_, __VA_ARGS__))                                       \
			printf("#   got %lld, expected %lld\n", got_, expected_);                  \
	} while (0)

#define is_str(got, expected, ...)                                                              \
	do {                                                                                    \
		const char *got_ = (got), *expected_ = (expected);                              \
		if (!ok(got_ && expected_ && strcmp(got_, expected_) == 0, __VA_ARGS__))       \
			printf("#   got \"%s\", expected \"%s\"\n", got_ ? got_ : "(null)",       \
			       expected_ ? expected_ : "(null)");                                \
	} while (0)

#define diag(...)                                                                               \
	do {                                                                                    \
		printf("# ");                                                                   \
		printf(__VA_ARGS__);                                                            \
		printf("\n");                                                                   \
	} while (0)

/* Prints the plan after the tests and returns the exit status. */
static inline int done_testing(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
