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

/* A file remembered at second 100 of the clock, seen again. */
#define IDENTITY(changed_s, changed_ns, length) \
	{.known = true, .device = 1, .inode = 2, .size = (length), .modified = {90, 0}, \
	 .changed = {(changed_s), (changed_ns)}, .seen = {100, 500}}
static const struct {
	const char *name;
	struct file_identity remembered, now;
	bool unchanged;
} identity_cases[] = {
	{"the same, changed long before", IDENTITY(50, 0, 10), IDENTITY(50, 0, 10), true},
	{"the same, changed exactly a second before", IDENTITY(99, 500, 10), IDENTITY(99, 500, 10), true},
	/* a write within the same clock tick may keep the times: not trusted */
	{"changed less than a second before it was seen", IDENTITY(99, 501, 10), IDENTITY(99, 501, 10), false},
	{"changed after it was seen (a clock set back)", IDENTITY(101, 0, 10), IDENTITY(101, 0, 10), false},
	{"changed since (a hand edit of the same size)", IDENTITY(50, 0, 10), IDENTITY(120, 0, 10), false},
	{"a change time a nanosecond apart", IDENTITY(50, 0, 10), IDENTITY(50, 1, 10), false},
	{"another size", IDENTITY(50, 0, 10), IDENTITY(50, 0, 11), false},
	{"another inode (replaced)", IDENTITY(50, 0, 10),
	 {.known = true, .device = 1, .inode = 3, .size = 10, .modified = {90, 0}, .changed = {50, 0}}, false},
	{"another device", IDENTITY(50, 0, 10),
	 {.known = true, .device = 4, .inode = 2, .size = 10, .modified = {90, 0}, .changed = {50, 0}}, false},
	{"another modification time (set back by hand: the change time moves)", IDENTITY(50, 0, 10),
	 {.known = true, .device = 1, .inode = 2, .size = 10, .modified = {91, 0}, .changed = {50, 0}}, false},
	{"gone", IDENTITY(50, 0, 10), {0}, false},
	{"never seen", {0}, {0}, false},
};

static void test_identity(const char *directory)
{
	char why[256];

	for (size_t i = 0; i < sizeof identity_cases / sizeof identity_cases[0]; i++)
		ok(file_identity_unchanged(&identity_cases[i].remembered, &identity_cases[i].now) ==
			   identity_cases[i].unchanged,
		   "identity: %s", identity_cases[i].name);

	/* a real file: just written, it is not trusted; its replacement is another file */
	char *path = xasprintf("%s/identity", directory);
	struct file_identity first, again, replaced;
	file_replace(path, "one", 3, 0600, why, sizeof why);
	ok(file_identity_read(path, &first) && file_identity_read(path, &again) && first.size == 3,
	   "the identity of a file is read");
	ok(!file_identity_unchanged(&first, &again), "a file changed less than a second ago is not trusted");
	first.seen.tv_sec += 2; /* as if looked at two seconds later */
	ok(file_identity_unchanged(&first, &again), "later, the same file is unchanged");
	file_replace(path, "two", 3, 0600, why, sizeof why);
	ok(file_identity_read(path, &replaced) && !file_identity_unchanged(&first, &replaced),
	   "a file replaced with the same size is not");
	unlink(path);
	ok(!file_identity_read(path, &replaced) && errno == ENOENT && !file_identity_unchanged(&first, &replaced),
	   "nor is a missing one");

	/* the path itself: a symbolic link is another file than the one it leads to */
	char *link = xasprintf("%s/identity-link", directory);
	struct file_identity target, followed, itself;
	mode_t mode;
	file_replace(path, "three", 5, 0640, why, sizeof why);
	ok(symlink(path, link) == 0 && file_identity_read(path, &target) && file_identity_read(link, &followed) &&
		   file_identity_read_link(link, &itself, &mode),
	   "a symbolic link is looked at, itself or followed");
	ok(followed.inode == target.inode && itself.inode != target.inode && S_ISLNK(mode),
	   "followed, it is its target; itself, a link");
	ok(file_identity_read_link(path, &itself, &mode) && itself.inode == target.inode && itself.size == 5 &&
		   S_ISREG(mode) && (mode & 07777) == 0640,
	   "a file itself is what a stat gives, with its mode");
	unlink(path);
	unlink(link);
	ok(!file_identity_read_link(link, &itself, &mode) && errno == ENOENT && !itself.known && mode == 0,
	   "a missing path has no identity, nor mode");
	free(link);
	free(path);
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

	test_identity(directory);
	rmdir(directory);
	free(path);
	return done_testing();
}
