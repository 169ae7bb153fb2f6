/* bindir: where PostgreSQL's server programs are, and which major version they are. */
#include "autoconfig.h"

#include "bindir.h"

#include <ctype.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory.h"
#include "proc.h"

/* pg_config and postgres --version answer at once; a hung one must still end. */
#define PROGRAM_TIMEOUT_MS (30 * 1000)

static bool has_postgres(const char *directory)
{
	char *path = bindir_program(directory, "postgres");
	bool found = access(path, X_OK) == 0;
	free(path);
	return found;
}

/* The numbers in a path, for ordering /usr/lib/postgresql/9.6 before /usr/lib/postgresql/15. */
static int compare_versions(const void *a, const void *b)
{
	const char *left = *(const char *const *)a, *right = *(const char *const *)b;
	while (*left && *right) {
		if (isdigit((unsigned char)*left) && isdigit((unsigned char)*right)) {
			long x = strtol(left, (char **)&left, 10), y = strtol(right, (char **)&right, 10);
			if (x != y)
				return x < y ? -1 : 1;
		} else if (*left != *right) {
			return (unsigned char)*left - (unsigned char)*right;
		} else {
			left++, right++;
		}
	}
	return (unsigned char)*left - (unsigned char)*right;
}

bool bindir_find(const char *configured, const char *setting, char *bindir, size_t bindir_size, char *why,
		 size_t why_size)
{
	if (configured && configured[0]) {
		snprintf(bindir, bindir_size, "%s", configured);
		if (has_postgres(bindir))
			return true;
		snprintf(why, why_size, "%s %s holds no postgres program", setting, configured);
		return false;
	}
	static const char *const pg_config_paths[] = {"/usr/bin/pg_config", "/usr/local/bin/pg_config", NULL};
	for (size_t i = 0; pg_config_paths[i]; i++) {
		const char *const argv[] = {pg_config_paths[i], "--bindir", NULL};
		struct proc_result result;
		if (access(pg_config_paths[i], X_OK) != 0)
			continue;
		bool ran = proc_run(argv, NULL, NULL, PROGRAM_TIMEOUT_MS, &result);
		if (ran) {
			snprintf(bindir, bindir_size, "%s", result.output);
			bindir[strcspn(bindir, "\n")] = '\0';
		}
		proc_result_free(&result);
		if (ran && has_postgres(bindir))
			return true;
	}
	/* Debian's pg_config (libpq-dev) names a bindir without the server: take the newest installed */
	glob_t found;
	bool any = glob("/usr/lib/postgresql/*/bin", 0, NULL, &found) == 0;
	if (any) {
		qsort(found.gl_pathv, found.gl_pathc, sizeof *found.gl_pathv, compare_versions);
		any = false;
		for (size_t i = found.gl_pathc; i-- > 0 && !any;)
			if (has_postgres(found.gl_pathv[i])) {
				snprintf(bindir, bindir_size, "%s", found.gl_pathv[i]);
				any = true;
			}
		globfree(&found);
	}
	if (!any)
		snprintf(why, why_size,
			 "no PostgreSQL server programs found (pg_config --bindir, /usr/lib/postgresql/*/bin); "
			 "install them or set %s",
			 setting);
	return any;
}

char *bindir_program(const char *bindir, const char *name)
{
	return xasprintf("%s/%s", bindir, name);
}

int bindir_parse_major_version(const char *version_output)
{
	const char *version = strstr(version_output, "PostgreSQL) ");
	char *end;

	version = version ? version + strlen("PostgreSQL) ") : version_output;
	if (!isdigit((unsigned char)*version))
		return 0;
	long major = strtol(version, &end, 10);
	/* before 10 the major version had two parts (9.6), of which the first is kept */
	return major > 0 && major < 1000 ? (int)major : 0;
}

int bindir_major_version(const char *bindir)
{
	char *postgres = bindir_program(bindir, "postgres");
	const char *const argv[] = {postgres, "--version", NULL};
	struct proc_result result;
	int major = 0;

	if (proc_run(argv, NULL, NULL, PROGRAM_TIMEOUT_MS, &result))
		major = bindir_parse_major_version(result.output);
	proc_result_free(&result);
	free(postgres);
	return major;
}
