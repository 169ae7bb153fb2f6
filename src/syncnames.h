/* syncnames: render, parse and compare synchronous_standby_names exactly as PostgreSQL 15 reads it. */
#ifndef PGHA_SYNCNAMES_H
#define PGHA_SYNCNAMES_H

#include <stdbool.h>
#include <stddef.h>

/* What a synchronous_standby_names value means to PostgreSQL. */
struct sync_spec {
	int method;   /* enum sync_method; SYNC_METHOD_OFF: the value is empty */
	int number;   /* standbys that must confirm; 0 when off */
	char **names; /* as PostgreSQL keeps them: case as written, quotes removed; owned */
	size_t count;
};

/* Frees the names and leaves spec off, so it can be freed again or reused. */
void sync_spec_free(struct sync_spec *spec);

/* The value that asks PostgreSQL for method over names: "ANY 2 ("a", "b")" or
 * "FIRST 1 ("a")". Every name is double-quoted, so any name is kept as it is (case,
 * spaces, '-', quotes). The empty string when method is neither ANY nor FIRST or there
 * are no names. The number is clamped to 1..count: PostgreSQL refuses 0, and a number
 * above the names listed would make every commit wait forever, so deciding whether
 * fewer standbys are acceptable (synchronous.required) is the caller's job, not this
 * function's. free() the result. The result is the value itself: written into
 * postgresql.conf or an ALTER SYSTEM statement it still needs that syntax's quoting. */
char *syncnames_render(int method, int number, const char *const *names, size_t count);

/* Reads text as PostgreSQL 15's check_synchronous_standby_names does: "" is off;
 * "a, b" and "2 (a, b)" are FIRST; "FIRST n (...)" and "ANY n (...)" with the keywords
 * in any case. Unquoted names keep their case (the scanner does not fold it; matching
 * ignores case instead), "..." keeps everything inside and reads "" as one quote, and
 * "*" is a name. Refuses what PostgreSQL refuses, with PostgreSQL's reason in why: a
 * value of only whitespace (only the empty string means off), syntax errors (unbalanced
 * parentheses, a missing or non-integer number, an empty list, trailing text, an
 * unquoted name with characters other than letters, digits, '_' and '$', an unquoted
 * ANY or FIRST used as a name), an unterminated quote, and a number below 1. A number
 * too large for an int is wrapped as PostgreSQL's atoi() wraps it on 64-bit Linux, so
 * it means here what it means to the server. On failure out is left off. */
bool syncnames_parse(const char *text, struct sync_spec *out, char *why, size_t why_size);

/* Whether a walsender whose application_name is application_name counts as the listed
 * name, by PostgreSQL's rule (syncrep.c): "*" matches every standby, any other name
 * matches ignoring the case of ASCII letters (pg_strcasecmp; other bytes compare as
 * they are, as on a server running in a UTF-8 or C locale). */
bool syncnames_name_matches(const char *listed, const char *application_name);

/* Whether a and b mean the same to PostgreSQL: both off, or the same method and number
 * with the same names, ignoring the case of ASCII letters as matching does, in the same
 * order for FIRST (the order is the priority) and in any order for ANY. "*" equals only
 * "*". A repeated name counts as often as it appears, so a list with a duplicate differs
 * from one without. FIRST 1 (a) and ANY 1 (a) differ: commits wait the same way, but
 * pg_stat_replication reports the standby as sync in one and quorum in the other. */
bool syncnames_equal(const struct sync_spec *a, const struct sync_spec *b);

#endif
