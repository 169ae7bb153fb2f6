/* test-file: crash-safe replacement and whole-file reads. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "memory.h"
#include "tap.h"

static int entries(const char *directory)
{
	DIR *listing = opendir(directory);
	int count = 0;

	for (struct dirent *entry; listing && (entry = readdir(listing));)
		count += entry->d_name[0] != '.';
	if (listing)
		closedir(listing);
	return count;
}

int main(void)
{
	char directory[] = "/tmp/pgha-test-file-XXXXXX";
	char why[512];
	size_t length = 0;
	struct stat status;

	if (!mkdtemp(directory))
		return 1;
	char *path = xasprintf("%s/state.json", directory);

	ok(file_replace(path, "first", 5, 0600, why, sizeof why), "creates a file");
	char *content = file_read(path, 1024, &length, why, sizeof why);
	is_str(content, "first", "and it reads back");
	is_int(length, 5, "with its length");
	free(content);
	ok(stat(path, &status) == 0 && (status.st_mode & 07777) == 0600, "with the mode asked for");

	mode_t previous = umask(0077);
	ok(file_replace(path, "second, longer", 14, 0644, why, sizeof why), "replaces it");
	umask(previous);
	ok(stat(path, &status) == 0 && (status.st_mode & 07777) == 0644, "the umask does not change the mode asked for");
	content = file_read(path, 1024, NULL, why, sizeof why);
	is_str(content, "second, longer", "the new content, whole");
	free(content);
	is_int(entries(directory), 1, "no temporary file is left beside it");

	ok(file_replace(path, "", 0, 0600, why, sizeof why), "an empty file is a content too");
	content = file_read(path, 1024, &length, why, sizeof why);
	ok(content && length == 0 && content[0] == '\0', "and reads back empty");
	free(content);
	content = file_read(path, 0, NULL, why, sizeof why);
	ok(content && content[0] == '\0', "an empty file is within a maximum of 0 bytes");
	free(content);

	char *missing_directory = xasprintf("%s/missing/state.json", directory);
	ok(!file_replace(missing_directory, "x", 1, 0600, why, sizeof why) && errno == ENOENT &&
		   strstr(why, "cannot create"),
	   "a missing directory fails with the reason: %s", why);
	free(missing_directory);

	/* a target that is a directory cannot be replaced: the old one stays, nothing is left over */
	char *subdirectory = xasprintf("%s/sub", directory);
	mkdir(subdirectory, 0700);
	ok(!file_replace(subdirectory, "x", 1, 0600, why, sizeof why) && strstr(why, "cannot rename"),
	   "replacing a directory fails: %s", why);
	is_int(entries(directory), 2, "and leaves no temporary file");
	ok(!file_read(subdirectory, 1024, NULL, why, sizeof why) && errno == EISDIR, "a directory is not read: %s", why);
	rmdir(subdirectory);
	free(subdirectory);

	file_replace(path, "0123456789", 10, 0600, why, sizeof why);
	ok(!file_read(path, 9, NULL, why, sizeof why) && errno == EFBIG, "a file over the maximum is refused: %s", why);
	unlink(path);
	ok(!file_read(path, 1024, NULL, why, sizeof why) && errno == ENOENT, "a missing file is ENOENT: %s", why);

	rmdir(directory);
	free(path);
	return done_testing();
}
