/* timeline: a primary's timeline history (its .history file) and whether a standby's WAL is part of it or diverged from it. Pure. */
#ifndef PGHA_TIMELINE_H
#define PGHA_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Timeline `timeline` ended at end_lsn, where its successor forked off. */
struct timeline_switch {
	uint32_t timeline;
	uint64_t end_lsn;
};

/* Reads a timeline history file as PostgreSQL writes it ("1\t0/3000060\treason" per
 * line, '#' comments, blank lines): a new array (NULL when empty) and its length.
 * False for text that is not such a file. */
bool timeline_parse_history(const char *text, struct timeline_switch **switches, size_t *count);

/* Whether WAL up to position on timeline is part of the history of current (the
 * primary's timeline, whose history is switches): the same timeline, or an ancestor
 * left at or after position. A later timeline, or one the history does not name, is
 * another branch. */
bool timeline_contains(const struct timeline_switch *switches, size_t count, uint32_t current, uint32_t timeline,
		       uint64_t position);

#endif
