/* memory: allocation helpers that abort on exhaustion, so callers never carry half-built state. */
#include "autoconfig.h"

#include "memory.h"

#ifdef HAVE_MALLOC_TRIM
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(void)
{
	fputs("pgha: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t size)
{
	void *pointer = malloc(size ? size : 1);
	if (!pointer)
		out_of_memory();
	return pointer;
}

void *xcalloc(size_t count, size_t size)
{
	void *pointer = calloc(count ? count : 1, size ? size : 1);
	if (!pointer)
		out_of_memory();
	return pointer;
}

void *xreallocarray(void *pointer, size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		out_of_memory();
	size_t bytes = count * size;
	pointer = realloc(pointer, bytes ? bytes : 1);
	if (!pointer)
		out_of_memory();
	return pointer;
}

char *xstrdup(const char *text)
{
	char *copy = strdup(text);
	if (!copy)
		out_of_memory();
	return copy;
}

char *xstrndup(const char *text, size_t length)
{
	char *copy = strndup(text, length);
	if (!copy)
		out_of_memory();
	return copy;
}

void memory_release_free(void)
{
#ifdef HAVE_MALLOC_TRIM
	malloc_trim(0);
#endif
}

char *xvasprintf(const char *format, va_list args)
{
	va_list copy;
	char *text;

	va_copy(copy, args);
	int length = vsnprintf(NULL, 0, format, copy);
	va_end(copy);
	if (length < 0)
		out_of_memory();
	text = xmalloc((size_t)length + 1);
	vsnprintf(text, (size_t)length + 1, format, args);
	return text;
}

char *xasprintf(const char *format, ...)
{
	va_list args;

	va_start(args, format);
	char *text = xvasprintf(format, args);
	va_end(args);
	return text;
}
