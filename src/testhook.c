/* testhook: hooks that only tests use, to make pghad misbehave on purpose and watch the consequences from outside. */
#include "autoconfig.h"

#include "testhook.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* How often a stall looks whether its file is gone: short, so that a test's stall ends promptly. */
#define STALL_CHECK_INTERVAL_NSEC (20 * 1000 * 1000L)

void testhook_stall(const char *where)
{
	const char *path = getenv("PGHA_TEST_STALL_FILE");

	if (!path || !*path || access(path, F_OK) != 0)
		return;
	log_warning("test hook: %s exists, the loop stalls in the %s until it is removed", path, where);
	/* a plain sleep, on purpose: nothing else of the loop may run, exactly as under a hung call */
	while (access(path, F_OK) == 0)
		nanosleep(&(struct timespec){.tv_nsec = STALL_CHECK_INTERVAL_NSEC}, NULL);
	log_warning("test hook: %s removed, the %s goes on", path, where);
}

void testhook_stop_before(const char *what)
{
	static bool stopped;
	const char *wanted = getenv("PGHA_TEST_STOP_BEFORE");

	if (stopped || !wanted || strcmp(wanted, what) != 0)
		return;
	stopped = true;
	log_warning("test hook: PGHA_TEST_STOP_BEFORE=%s: stopping with SIGSTOP before it", what);
	raise(SIGSTOP);
	log_warning("test hook: resumed before %s", what);
}

bool testhook_expire_watch(const char *kind)
{
	const char *path = getenv("PGHA_TEST_EXPIRE_WATCH_FILE");
	char said[64] = "";

	FILE *file = path && *path ? fopen(path, "r") : NULL;
	if (!file)
		return false;
	bool read = fgets(said, sizeof said, file) != NULL;
	fclose(file);
	said[strcspn(said, "\n")] = '\0';
	if (!read || strcmp(said, kind) != 0 || unlink(path) != 0)
		return false;
	log_warning("test hook: PGHA_TEST_EXPIRE_WATCH_FILE says %s: the watch of %s is taken as told 410 Gone", kind,
		    kind);
	return true;
}
