/* file: whole-file reads, and replacement that a crash cannot leave half done (temp file, fsync, rename, fsync of the directory). */
#ifndef PGHA_FILE_H
#define PGHA_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

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

/* What tells a file changed without reading it: its inode, size, modification and
 * change times (any write, rename or chmod sets the change time, which no one can set
 * back), and when that was looked at. */
struct file_identity {
	bool known;
	dev_t device;
	ino_t inode;
	off_t size;
	struct timespec modified, changed;
	struct timespec seen; /* the clock (CLOCK_REALTIME, as file times) just before the stat */
};

/* The identity of path now (following symbolic links); false (errno set, identity
 * unknown) when it cannot be looked at. */
bool file_identity_read(const char *path, struct file_identity *identity);
/* The same of path itself (a symbolic link is not followed), with its type and
 * permissions (st_mode) in *mode, 0 when unknown: one look at a path whose type decides
 * whether its identity is wanted at all (a data directory). */
bool file_identity_read_link(const char *path, struct file_identity *identity, mode_t *mode);
/* Whether a file seen as now is the one remembered, not changed since. A change within
 * the same tick of the kernel's clock as the last one may keep its times: a file seen
 * less than a second after its last change (racily clean, as git calls it) is never
 * trusted, and is read again. */
bool file_identity_unchanged(const struct file_identity *remembered, const struct file_identity *now);

#endif
