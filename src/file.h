/* file: whole-file reads, and replacement that a crash cannot leave half done (temp file, fsync, rename, fsync of the directory). */
#ifndef PGHA_FILE_H
#define PGHA_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Replaces path with content, created with mode: afterwards path holds either its old
 * content or all of the new one, even across a crash or power loss. */
bool file_replace(const char *path, const void *content, size_t length, mode_t mode, char *why, size_t why_size);

/* The same without flushing to disk: readers see the old content or all of the new, but a
 * crash may leave either (or an empty file). For files rewritten often whose loss says
 * nothing false for long (the metrics file). */
bool file_replace_volatile(const char *path, const void *content, size_t length, mode_t mode, char *why,
			   size_t why_size);

/* Makes a rename or creation of path durable: flushes the directory that holds it. */
bool file_sync_parent(const char *path, char *why, size_t why_size);

/* The whole file, NUL-terminated, and its length (without the NUL) in *length when
 * length is not NULL. NULL with errno set and why written when it cannot be read; a
 * missing file is errno ENOENT. Files larger than maximum are refused (EFBIG). */
char *file_read(const char *path, size_t maximum, size_t *length, char *why, size_t why_size);

#endif
