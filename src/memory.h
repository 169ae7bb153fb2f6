/* memory: allocation helpers that abort on exhaustion, so callers never carry half-built state. */
#ifndef PGHA_MEMORY_H
#define PGHA_MEMORY_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xreallocarray(void *pointer, size_t count, size_t size);
char *xstrdup(const char *text);
/* The first length bytes of text at most, as a new string. */
char *xstrndup(const char *text, size_t length);
char *xasprintf(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Gives memory freed inside the heap back to the system (glibc's free returns only its
 * top): freed pages stop counting in the RSS, and what is allocated on them later is
 * resident only where it is written. Nothing where the C library cannot. */
void memory_release_free(void);
char *xvasprintf(const char *format, va_list args) __attribute__((format(printf, 1, 0)));

#endif
