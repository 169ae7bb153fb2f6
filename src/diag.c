/* diag: a list of "file:line: message" errors collected before deciding, so every mistake is reported at once. */
#include "autoconfig.h"

#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"

void diag_add(struct diag_list *list, const struct origin *where, const char *format, ...)
{
	char text[1024];
	va_list args;

	va_start(args, format);
	vsnprintf(text, sizeof text, format, args);
	va_end(args);

	if (list->count == list->capacity) {
		list->capacity = list->capacity ? list->capacity * 2 : 8;
		list->messages = xreallocarray(list->messages, list->capacity, sizeof *list->messages);
	}
	if (where && where->file && where->line > 0)
		list->messages[list->count++] = xasprintf("%s:%d: %s", where->file, where->line, text);
	else if (where && where->file)
		list->messages[list->count++] = xasprintf("%s: %s", where->file, text);
	else
		list->messages[list->count++] = xstrdup(text);
}

void diag_free(struct diag_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->messages[i]);
	free(list->messages);
	*list = (struct diag_list){0};
}
