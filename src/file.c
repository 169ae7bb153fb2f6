/* file: whole-file reads, and replacement that a crash cannot leave half done (temp file, fsync, rename, fsync of the directory). */
#include "autoconfig.h"

#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory.h"

static bool write_all(int fd, const char *content, size_t length)
{
	while (length > 0) {
		ssize_t written = write(fd, content, length);
		if (written < 0 && errno == EINTR)
			continue;
		if (written < 0)
			return false;
		content += written;
		length -= (size_t)written;
	}
	return true;
}

/* The rename is durable only once the directory that holds the name is on disk. */
static bool sync_directory(const char *path)
{
	char *directory = xstrdup(path);
	char *slash = strrchr(directory, '/');
	int fd;

	if (slash == directory)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(directory, 2, ".");
	fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(directory);
	if (fd < 0)
		return false;
	bool synced = fsync(fd) == 0;
	int saved = errno;
	close(fd);
	errno = saved;
	return synced;
}

static bool replace(const char *path, const void *content, size_t length, mode_t mode, bool durable, char *why,
		    size_t why_size)
{
	/* the temporary name is unique to this process, beside the target so that rename
	 * stays within one file system */
	char *temporary = xasprintf("%s.new.%ld", path, (long)getpid());
	const char *failed = NULL;
	int saved = 0;
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		failed = "cannot create";
	else if (fchmod(fd, mode) < 0) /* the umask must neither loosen nor tighten the mode */
		failed = "cannot set the mode of";
	else if (!write_all(fd, content, length))
		failed = "cannot write";
	else if (durable && fsync(fd) < 0)
		failed = "cannot flush";
	saved = errno;
	if (fd >= 0 && close(fd) < 0 && !failed) {
		failed = "cannot close";
		saved = errno;
	}
	if (!failed && rename(temporary, path) < 0) {
		failed = "cannot rename";
		saved = errno;
	}
	if (failed) {
		snprintf(why, why_size, "%s %s: %s", failed, temporary, strerror(saved));
		unlink(temporary);
		free(temporary);
		errno = saved;
		return false;
	}
	free(temporary);
	if (durable && !sync_directory(path)) {
		/* replaced, but a crash could still bring the old content back */
		snprintf(why, why_size, "cannot flush the directory of %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

bool file_replace(const char *path, const void *content, size_t length, mode_t mode, char *why, size_t why_size)
{
	return replace(path, content, length, mode, true, why, why_size);
}

bool file_replace_volatile(const char *path, const void *content, size_t length, mode_t mode, char *why,
			   size_t why_size)
{
	return replace(path, content, length, mode, false, why, why_size);
}

bool file_sync_parent(const char *path, char *why, size_t why_size)
{
	if (sync_directory(path))
		return true;
	snprintf(why, why_size, "cannot flush the directory of %s: %s", path, strerror(errno));
	return false;
}

char *file_read(const char *path, size_t maximum, size_t *length, char *why, size_t why_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat status;
	char *content = NULL;
	size_t size = 0;

	if (fd < 0) {
		snprintf(why, why_size, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &status) < 0 || !S_ISREG(status.st_mode)) {
		int saved = S_ISDIR(status.st_mode) ? EISDIR : errno;
		snprintf(why, why_size, "cannot read %s: %s", path, strerror(saved));
		close(fd);
		errno = saved;
		return NULL;
	}
	for (;;) {
		content = xreallocarray(content, size + 4096 + 1, 1);
		ssize_t got = read(fd, content + size, 4096);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int saved = errno;
			snprintf(why, why_size, "cannot read %s: %s", path, strerror(saved));
			free(content);
			close(fd);
			errno = saved;
			return NULL;
		}
		if (got == 0)
			break;
		size += (size_t)got;
		if (size > maximum) {
			snprintf(why, why_size, "%s is larger than %zu bytes", path, maximum);
			free(content);
			close(fd);
			errno = EFBIG;
			return NULL;
		}
	}
	close(fd);
	content[size] = '\0';
	if (length)
		*length = size;
	return content;
}

/* stat or lstat (follow false) of path into *identity, its mode in *mode (0 when unknown). */
static bool identity_read(const char *path, bool follow, struct file_identity *identity, mode_t *mode)
{
	struct stat status;

	*identity = (struct file_identity){0};
	if (mode)
		*mode = 0;
	clock_gettime(CLOCK_REALTIME, &identity->seen);
	if ((follow ? stat(path, &status) : lstat(path, &status)) < 0)
		return false;
	if (mode)
		*mode = status.st_mode;
	identity->known = true;
	identity->device = status.st_dev;
	identity->inode = status.st_ino;
	identity->size = status.st_size;
	identity->modified = status.st_mtim;
	identity->changed = status.st_ctim;
	return true;
}

bool file_identity_read(const char *path, struct file_identity *identity)
{
	return identity_read(path, true, identity, NULL);
}

bool file_identity_read_link(const char *path, struct file_identity *identity, mode_t *mode)
{
	return identity_read(path, false, identity, mode);
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool file_identity_unchanged(const struct file_identity *remembered, const struct file_identity *now)
{
	/* remembered.changed is at least a second before remembered.seen: any later change
	 * sets a change time after remembered.seen, so different from it */
	bool settled = remembered->seen.tv_sec - remembered->changed.tv_sec > 1 ||
		       (remembered->seen.tv_sec - remembered->changed.tv_sec == 1 &&
			remembered->seen.tv_nsec >= remembered->changed.tv_nsec);
	return remembered->known && now->known && settled && remembered->device == now->device &&
	       remembered->inode == now->inode && remembered->size == now->size &&
	       same_time(remembered->modified, now->modified) && same_time(remembered->changed, now->changed);
}
