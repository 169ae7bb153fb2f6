/* test-datadir: the postmaster of a data directory, found by pid and command, and remembered by pid and start time. */
#include "autoconfig.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "datadir.h"
#include "file.h"
#include "log.h"
#include "memory.h"
#include "proc.h"
#include "tap.h"

static char directory[] = "/tmp/test-datadir-XXXXXX";

static void write_pid_file(pid_t pid)
{
	char why[256], text[64];
	int length = snprintf(text, sizeof text, "%ld\n%s\n", (long)pid, directory);
	char *path = xasprintf("%s/postmaster.pid", directory);
	ok(file_replace(path, text, (size_t)length, 0600, why, sizeof why), "postmaster.pid names %ld", (long)pid);
	free(path);
}

/* A program named postgres (a copy of sleep), as a postmaster looks in /proc. */
static pid_t start_postgres(void)
{
	char *program = xasprintf("%s/postgres", directory);
	pid_t pid = fork();
	if (pid == 0) {
		execl(program, program, "30", (char *)NULL);
		_exit(127);
	}
	free(program);
	/* until the exec is done, /proc shows this program's command */
	for (int i = 0; i < 200; i++) {
		char path[64], why[256];
		snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
		char *command = file_read(path, 4096, NULL, why, sizeof why);
		bool execed = command && strstr(command, "/postgres");
		free(command);
		if (execed)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	return pid;
}

static void test_postmaster(void)
{
	struct datadir_verified verified = {0};
	unsigned long long started;
	bool exited;
	char state, letter;

	ok(datadir_postmaster_remembering(directory, &exited, &state, &verified) == 0 && verified.pid == 0,
	   "no postmaster.pid: no postmaster");

	/* this test program runs no postgres: not taken for one, even when remembered with
	 * another start time (its pid reused since) */
	write_pid_file(getpid());
	ok(datadir_postmaster_remembering(directory, &exited, &state, &verified) == 0 && verified.pid == 0,
	   "a pid running another program is no postmaster");
	proc_stat(getpid(), &letter, &started);
	verified = (struct datadir_verified){.pid = getpid(), .start_time = started - 1};
	ok(datadir_postmaster_remembering(directory, &exited, &state, &verified) == 0 && verified.pid == 0,
	   "nor when a postmaster of that pid that started earlier is remembered: it is forgotten");
	verified = (struct datadir_verified){.pid = getpid(), .start_time = started};
	ok(datadir_postmaster_remembering(directory, &exited, &state, &verified) == getpid() && state == 'R',
	   "the very process remembered is not read again (which only the memory can tell here)");
	ok(!datadir_same_process(&(struct datadir_verified){0}, getpid(), 0), "a start time unread matches nothing");
	ok(!datadir_same_process(NULL, getpid(), started), "nothing remembered matches nothing");

	/* a program named postgres is verified once, then remembered */
	char *copy = xasprintf("cp /bin/sleep %s/postgres", directory);
	ok(system(copy) == 0, "a program named postgres");
	free(copy);
	pid_t postgres = start_postgres();
	write_pid_file(postgres);
	verified = (struct datadir_verified){0};
	ok(datadir_postmaster(directory, &exited, &state) == postgres && !exited, "postgres is the postmaster");
	pid_t found = datadir_postmaster_remembering(directory, &exited, &state, &verified);
	ok(found == postgres && verified.pid == postgres && verified.start_time > 0,
	   "and is remembered with its start time %llu", verified.start_time);
	struct datadir_verified before = verified;
	ok(datadir_postmaster_remembering(directory, &exited, &state, &verified) == postgres &&
		   before.pid == verified.pid && before.start_time == verified.start_time && verified.process.open,
	   "then found again the same, its /proc entries kept open");

	/* postmaster.pid unchanged for over a second (a file changed within the second before
	 * it was looked at is read again): the process is looked at through its watch alone */
	char *pid_path = xasprintf("%s/postmaster.pid", directory);
	struct stat status;
	for (int i = 0; i < 300 && stat(pid_path, &status) == 0 && time(NULL) - status.st_ctime < 2; i++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	free(pid_path);
	for (int i = 0; i < 2; i++)
		ok(datadir_postmaster_remembering(directory, &exited, &state, &verified) == postgres && !exited &&
			   state == 'S' && verified.process.open,
		   "postmaster.pid unchanged, found through its watch: asleep (%c)", state);

	/* exited, not reaped: still holds the directory */
	kill(postgres, SIGKILL);
	for (int i = 0; i < 200 && proc_state(postgres) != 'Z'; i++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	ok(datadir_postmaster_remembering(directory, &exited, &state, &verified) == postgres && exited && state == 'Z',
	   "a postmaster exited but not reaped is returned as exited");
	waitpid(postgres, NULL, 0);
	ok(datadir_postmaster_remembering(directory, &exited, &state, &verified) == 0 && !exited && state == 0 &&
		   !verified.process.open && verified.pid == 0,
	   "once reaped, there is none, though postmaster.pid still names it: forgotten, its watch closed");

	char *path = xasprintf("%s/postgres", directory);
	unlink(path);
	free(path);
	path = xasprintf("%s/postmaster.pid", directory);
	unlink(path);
	free(path);
}

int main(void)
{
	log_init("test-datadir");
	if (!mkdtemp(directory)) {
		ok(false, "cannot create a temporary directory");
		return done_testing();
	}
	test_postmaster();
	rmdir(directory);
	return done_testing();
}
