/* diag: a list of "file:line: message" errors collected before deciding, so every mistake is reported at once. */
#ifndef PGHA_DIAG_H
#define PGHA_DIAG_H

#include <stdbool.h>
#include <stddef.h>

/* Where a value came from: a file name (owned by whoever built the origin) and a
 * 1-based line, or line 0 when only the file is known. */
struct origin {
	const char *file;
	int line;
};

struct diag_list {
	char **messages;
	size_t count;
	size_t capacity;
};

/* Adds "file:line: message"; the origin may be NULL for errors that belong to no line. */
void diag_add(struct diag_list *list, const struct origin *where, const char *format, ...)
	__attribute__((format(printf, 3, 4)));
void diag_free(struct diag_list *list);

#endif
