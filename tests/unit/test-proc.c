/* test-proc: real programs run through proc: status, output, deadlines, groups, environment, fds, sd-event, setsid. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "log.h"
#include "memory.h"
#include "proc.h"
#include "tap.h"

/* /bin/sh appears here only to build odd children; product code never runs a shell. */
#define SHELL "/bin/sh", "-c"

static char directory[] = "/tmp/test-proc-XXXXXX";

static char *temporary_path(const char *name)
{
	return xasprintf("%s/%s", directory, name);
}

static void sleep_ms(int milliseconds)
{
	struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};

	nanosleep(&pause, NULL);
}

/* The state letter of /proc/pid/stat, or 0 when there is no such process. */
static char process_state(pid_t pid, pid_t *parent)
{
	char path[64], text[1024];
	char state = 0;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *file = fopen(path, "r");
	if (!file)
		return 0;
	if (fgets(text, sizeof text, file)) {
		char *after_name = strrchr(text, ')');
		int parent_pid = 0;
		if (after_name && sscanf(after_name + 1, " %c %d", &state, &parent_pid) == 2 && parent)
			*parent = parent_pid;
	}
	fclose(file);
	return state;
}

/* true once pid has ended and was reaped. may_reap: pid is ours to reap (an orphan handed to this
 * subreaper), not a child that sd-event watches and reaps. */
static bool gone(pid_t pid, bool may_reap)
{
	if (may_reap && waitpid(pid, NULL, WNOHANG) == pid)
		return true;
	return process_state(pid, NULL) == 0;
}

static bool gone_within(pid_t pid, bool may_reap, int milliseconds)
{
	for (int waited = 0; waited < milliseconds; waited += 10) {
		if (gone(pid, may_reap))
			return true;
		sleep_ms(10);
	}
	return gone(pid, may_reap);
}

static bool has_line(const char *text, const char *line)
{
	size_t length = strlen(line);

	for (const char *at = text; at && *at; at = strchr(at, '\n'), at = at ? at + 1 : NULL)
		if (strncmp(at, line, length) == 0 && (at[length] == '\n' || at[length] == '\0'))
			return true;
	return false;
}

/* ---- synchronous runs ---- */

static const struct {
	const char *name;
	const char *argv[8];
	int timeout_ms;
	bool succeeded, timed_out;
	int exit_status, signal;
	const char *output; /* NULL: not checked */
} run_cases[] = {
	{"true", {"/bin/true"}, 5000, true, false, 0, 0, ""},
	{"false", {"/bin/false"}, 5000, false, false, 1, 0, ""},
	{"an exit status", {SHELL, "exit 7"}, 5000, false, false, 7, 0, ""},
	{"death by a signal", {SHELL, "kill -KILL $$"}, 5000, false, false, -1, SIGKILL, ""},
	{"stdout captured", {"/bin/echo", "hello", "world"}, 5000, true, false, 0, 0, "hello world\n"},
	{"stdout and stderr interleaved", {SHELL, "echo out; echo err >&2; echo out2"}, 5000, true, false, 0, 0,
	 "out\nerr\nout2\n"},
	{"stdin is /dev/null, so cat ends at once", {"/bin/cat"}, 5000, true, false, 0, 0, ""},
	{"stdin is /dev/null", {"/usr/bin/readlink", "/proc/self/fd/0"}, 5000, true, false, 0, 0, "/dev/null\n"},
	{"arguments reach the program unchanged, no shell in between", {"/bin/echo", "$HOME", "a;b", "*"}, 5000,
	 true, false, 0, 0, "$HOME a;b *\n"},
	{"a deadline ends a program with SIGTERM", {"/bin/sleep", "30"}, 200, false, true, -1, SIGTERM, ""},
	{"a program ignoring SIGTERM gets SIGKILL after the grace", {SHELL, "trap '' TERM; /bin/sleep 30"}, 200,
	 false, true, -1, SIGKILL, ""},
	{"a program that exits on SIGTERM still counts as timed out",
	 {SHELL, "trap 'exit 3' TERM; /bin/sleep 30 & wait"}, 200, false, true, 3, 0, ""},
};

static void test_run_cases(void)
{
	for (size_t i = 0; i < sizeof run_cases / sizeof run_cases[0]; i++) {
		struct proc_result result;
		char description[256];
		bool succeeded = proc_run(run_cases[i].argv, NULL, NULL, run_cases[i].timeout_ms, &result);
		proc_result_describe(&result, description, sizeof description);
		is_int(succeeded, run_cases[i].succeeded, "%s: success (%s)", run_cases[i].name, description);
		ok(result.started, "%s: started", run_cases[i].name);
		is_int(result.timed_out, run_cases[i].timed_out, "%s: timed out", run_cases[i].name);
		is_int(result.exit_status, run_cases[i].exit_status, "%s: exit status", run_cases[i].name);
		is_int(result.signal, run_cases[i].signal, "%s: signal", run_cases[i].name);
		if (run_cases[i].output)
			is_str(result.output, run_cases[i].output, "%s: output", run_cases[i].name);
		proc_result_free(&result);
	}
}

static const struct {
	const char *name;
	const char *argv[4];
	const char *directory;
	int timeout_ms;
	const char *reason; /* in the log, not checked: what the refusal is about */
} refused_cases[] = {
	{"a relative program name", {"true"}, NULL, 5000, "absolute path"},
	{"a program name relative to the directory", {"./true"}, "/bin", 5000, "absolute path"},
	{"an empty program name", {""}, NULL, 5000, "without a name"},
	{"no program", {NULL}, NULL, 5000, "without a name"},
	{"a missing program", {"/nonexistent/program"}, NULL, 5000, "No such file"},
	{"a directory as the program", {"/tmp"}, NULL, 5000, "Permission denied"},
	{"a missing directory", {"/bin/true"}, "/nonexistent/directory", 5000, "No such file"},
	{"no deadline", {"/bin/true"}, NULL, 0, "deadline"},
};

static void test_refused(void)
{
	for (size_t i = 0; i < sizeof refused_cases / sizeof refused_cases[0]; i++) {
		struct proc_result result;
		bool succeeded = proc_run(refused_cases[i].argv, NULL, refused_cases[i].directory,
					  refused_cases[i].timeout_ms, &result);
		ok(!succeeded && !result.started && result.output && result.exit_status == -1,
		   "%s is refused, not run (%s)", refused_cases[i].name, refused_cases[i].reason);
		proc_result_free(&result);
		proc_result_free(&result); /* twice is harmless */
	}
	char description[128];
	struct proc_result never = {.exit_status = -1};
	proc_result_describe(&never, description, sizeof description);
	is_str(description, "could not be started", "a result that never started says so");
}

static void test_directory(void)
{
	struct proc_result result;

	ok(proc_run((const char *[]){"/bin/pwd", NULL}, NULL, directory, 5000, &result), "runs in a directory");
	char *expected = xasprintf("%s\n", directory);
	is_str(result.output, expected, "the program's working directory is the one asked for");
	free(expected);
	proc_result_free(&result);
}

/* Byte i of the generated output: a pattern that does not repeat every 64 KiB, so a wrong tail shows. */
static char pattern_byte(size_t i)
{
	return (char)('a' + i % 23);
}

static void test_output_limit(void)
{
	static const size_t sizes[] = {0, 1, PROC_OUTPUT_LIMIT - 1, PROC_OUTPUT_LIMIT, PROC_OUTPUT_LIMIT + 1,
				       3 * PROC_OUTPUT_LIMIT + 12345, 1000000};
	char *path = temporary_path("output");

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i], kept = size < PROC_OUTPUT_LIMIT ? size : PROC_OUTPUT_LIMIT;
		char *content = xmalloc(size + 1);
		for (size_t j = 0; j < size; j++)
			content[j] = pattern_byte(j);
		FILE *file = fopen(path, "w");
		fwrite(content, 1, size, file);
		fclose(file);

		struct proc_result result;
		ok(proc_run((const char *[]){"/bin/cat", path, NULL}, NULL, NULL, 10000, &result), "cat %zu bytes",
		   size);
		is_int(result.output_length, kept, "%zu bytes written: %zu kept", size, kept);
		is_int(result.output_truncated, size > PROC_OUTPUT_LIMIT, "%zu bytes written: truncated flag", size);
		ok(memcmp(result.output, content + size - kept, kept) == 0 && result.output[kept] == '\0',
		   "%zu bytes written: the output is exactly the last %zu, NUL-terminated", size, kept);
		proc_result_free(&result);
		free(content);
	}
	unlink(path);
	free(path);
}

static void test_environment(void)
{
	static const char *const parent[] = {
		"NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=30000000", "WATCHDOG_PID=1", "LISTEN_FDS=2",
		"LISTEN_PID=1", "LISTEN_FDNAMES=a:b", "JOURNAL_STREAM=8:1234",
		"CREDENTIALS_DIRECTORY=/run/credentials/x",
		"PGPASSWORD=secret", "PGHOST=elsewhere", "PGPORT=1", "PGSERVICEFILE=/x", "PGDATA=/wrong",
		"INVOCATION_ID=0123abcd", "KEEP_ME=yes", "REPLACE_ME=old", "REMOVE_ME=there",
	};
	static const struct {
		const char *line;
		bool present;
	} expected[] = {
		{"NOTIFY_SOCKET=/run/systemd/notify", false}, {"WATCHDOG_USEC=30000000", false},
		{"WATCHDOG_PID=1", false},		      {"LISTEN_FDS=2", false},
		{"LISTEN_PID=1", false},		      {"LISTEN_FDNAMES=a:b", false},
		{"JOURNAL_STREAM=8:1234", false},	      {"CREDENTIALS_DIRECTORY=/run/credentials/x", false},
		{"PGPASSWORD=secret", false},		      {"PGHOST=elsewhere", false},
		{"PGPORT=1", false},			      {"PGSERVICEFILE=/x", false},
		{"PGDATA=/wrong", false},		      {"INVOCATION_ID=0123abcd", true},
		{"KEEP_ME=yes", true},			      {"REPLACE_ME=old", false},
		{"REPLACE_ME=new", true},		      {"REMOVE_ME=there", false},
		{"PGAPPNAME=pgha-test", true},		      {"PGPASSFILE=/run/pgha/passfile", true},
	};
	const char *const extra[] = {"PGAPPNAME=pgha-test", "REPLACE_ME=new", "REMOVE_ME",
				     "PGPASSFILE=/run/pgha/passfile", NULL};

	for (size_t i = 0; i < sizeof parent / sizeof parent[0]; i++)
		putenv((char *)parent[i]);

	char **environment = proc_environment(extra);
	size_t replaced = 0;
	for (size_t i = 0; environment[i]; i++)
		replaced += strncmp(environment[i], "REPLACE_ME=", 11) == 0;
	is_int(replaced, 1, "proc_environment: a replaced variable appears once");
	proc_environment_free(environment);

	struct proc_result result;
	ok(proc_run((const char *[]){"/usr/bin/env", NULL}, extra, NULL, 5000, &result), "env runs");
	for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
		ok(has_line(result.output, expected[i].line) == expected[i].present, "the child %s %s",
		   expected[i].present ? "sees" : "does not see", expected[i].line);
	ok(has_line(result.output, "KEEP_ME=yes") && strstr(result.output, "PATH="),
	   "ordinary variables pass through");
	proc_result_free(&result);
}

/* The child must start with no signal blocked or ignored, whatever pghad's loop did to its own. */
static void test_signal_state(void)
{
	sigset_t blocked;
	struct proc_result result;

	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGHUP);
	sigprocmask(SIG_BLOCK, &blocked, NULL);
	signal(SIGPIPE, SIG_IGN);
	ok(proc_run((const char *[]){"/bin/cat", "/proc/self/status", NULL}, NULL, NULL, 5000, &result), "cat status");
	ok(has_line(result.output, "SigBlk:\t0000000000000000"), "no signal blocked in the child");
	/* glibc's posix_spawn leaves its two internal signals (32 and 33, below SIGRTMIN) ignored; no
	 * program uses them, so only the others are checked */
	const char *ignored = strstr(result.output, "SigIgn:\t");
	unsigned long long ignored_mask = ignored ? strtoull(ignored + 8, NULL, 16) : ~0ULL;
	ok((ignored_mask & ~0x180000000ULL) == 0, "no signal ignored in the child (%llx)", ignored_mask);
	proc_result_free(&result);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, &blocked, NULL);
}

/* What a sleeping process waits in: a table of /proc/PID/wchan texts, then real children
 * asleep in select (a postmaster of PostgreSQL 15 waiting for connections), in poll, in
 * epoll, and elsewhere (a pipe's read, a sleep). */
static void test_wait(void)
{
	static const struct {
		const char *wchan;
		enum proc_wait wait;
	} cases[] = {
		{"poll_schedule_timeout.constprop.0", PROC_WAIT_DESCRIPTORS},
		{"poll_schedule_timeout", PROC_WAIT_DESCRIPTORS},
		{"do_select", PROC_WAIT_DESCRIPTORS},
		{"do_sys_poll", PROC_WAIT_DESCRIPTORS},
		{"ep_poll", PROC_WAIT_DESCRIPTORS},
		{"do_epoll_wait.part.0", PROC_WAIT_DESCRIPTORS},
		{"futex_wait_queue", PROC_WAIT_OTHER},
		{"futex_wait_queue_me", PROC_WAIT_OTHER},
		{"pipe_read", PROC_WAIT_OTHER},
		{"hrtimer_nanosleep", PROC_WAIT_OTHER},
		{"do_select_later", PROC_WAIT_OTHER}, /* a prefix is not the name */
		{"ep_", PROC_WAIT_OTHER},
		{"0", PROC_WAIT_UNKNOWN},
		{"", PROC_WAIT_UNKNOWN},
		{NULL, PROC_WAIT_UNKNOWN},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		is_int(proc_wait_of(cases[i].wchan), cases[i].wait, "wchan \"%s\"", cases[i].wchan ? cases[i].wchan : "(none)");

	static const char *const programs[][4] = {
		{"/usr/bin/python3", "-c", "import select; select.select([], [], [], 60)", NULL},
		{"/usr/bin/python3", "-c", "import select; select.poll().poll(60000)", NULL},
		{"/usr/bin/python3", "-c", "import select; select.epoll().poll(60)", NULL},
		{"/usr/bin/python3", "-c", "import os; os.read(os.pipe()[0], 1)", NULL},
		{"/bin/sleep", "60", NULL, NULL},
	};
	static const enum proc_wait expected[] = {PROC_WAIT_DESCRIPTORS, PROC_WAIT_DESCRIPTORS, PROC_WAIT_DESCRIPTORS,
						  PROC_WAIT_OTHER, PROC_WAIT_OTHER};
	for (size_t i = 0; i < sizeof programs / sizeof *programs; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			execv(programs[i][0], (char *const *)programs[i]);
			_exit(127);
		}
		/* asleep where it will stay: until the wait it was started for, at most 10 s */
		enum proc_wait wait = PROC_WAIT_UNKNOWN;
		for (int tries = 0; tries < 1000; tries++) {
			wait = proc_state(pid) == 'S' ? proc_wait(pid) : PROC_WAIT_UNKNOWN;
			if (wait == expected[i])
				break;
			nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
		}
		is_int(wait, expected[i], "%s %s asleep: %s", programs[i][0], programs[i][2] ? programs[i][2] : programs[i][1],
		       wait == PROC_WAIT_DESCRIPTORS ? "in select, poll or epoll" : wait == PROC_WAIT_OTHER ? "elsewhere" : "not named");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		is_int(proc_wait(pid), PROC_WAIT_UNKNOWN, "a process gone waits in nothing");
	}
}

/* A process watched through its /proc entries kept open: what they show as it sleeps,
 * exits and is reaped, and nothing of another process once it is gone. */
static void test_watch(void)
{
	struct proc_watch watch = {0};
	unsigned long long start_time = 0, started = 0;
	char state = 0, letter = 0;

	ok(!proc_watch_stat(&watch, &state, &start_time) && proc_watch_wait(&watch) == PROC_WAIT_UNKNOWN,
	   "a closed watch shows nothing");
	pid_t pid = fork();
	if (pid == 0) {
		execl("/usr/bin/python3", "python3", "-c", "import select; select.select([], [], [], 60)", (char *)NULL);
		_exit(127);
	}
	ok(proc_watch_open(&watch, pid), "a child watched");
	for (int tries = 0; tries < 1000 && proc_watch_wait(&watch) != PROC_WAIT_DESCRIPTORS; tries++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	bool read = proc_watch_stat(&watch, &state, &start_time) && proc_stat(pid, &letter, &started);
	ok(read && state == 'S' && start_time == started, "its watch shows it asleep (%c), with its start time", state);
	is_int(proc_watch_wait(&watch), PROC_WAIT_DESCRIPTORS, "in select");
	kill(pid, SIGKILL);
	for (int tries = 0; tries < 1000 && proc_watch_stat(&watch, &state, &start_time) && state != 'Z'; tries++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	read = proc_watch_stat(&watch, &state, &start_time);
	ok(read && state == 'Z', "killed, not reaped: a zombie (%c)", state);
	waitpid(pid, NULL, 0);
	ok(!proc_watch_stat(&watch, &state, &start_time) && proc_watch_wait(&watch) == PROC_WAIT_UNKNOWN,
	   "reaped: its watch shows nothing, whatever process gets its pid");
	proc_watch_close(&watch);
	ok(!watch.open, "closed");
	proc_watch_close(&watch);
	ok(!proc_watch_open(&watch, pid) && !watch.open, "a process gone cannot be watched");
}

static void test_descriptors(void)
{
	struct proc_result result;
	char fd_path[64];
	int fd = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
	int high = dup2(fd, 40);

	snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", fd);
	ok(!proc_run((const char *[]){"/usr/bin/readlink", fd_path, NULL}, NULL, NULL, 5000, &result) &&
		   result.exit_status == 1 && result.output_length == 0,
	   "a descriptor opened without O_CLOEXEC (%d) is not inherited", fd);
	proc_result_free(&result);
	ok(!proc_run((const char *[]){"/usr/bin/readlink", "/proc/self/fd/40", NULL}, NULL, NULL, 5000, &result) &&
		   result.exit_status == 1,
	   "nor a high one (%d)", high);
	proc_result_free(&result);
	/* ls has its own directory open as 3 */
	ok(proc_run((const char *[]){"/bin/ls", "/proc/self/fd", NULL}, NULL, NULL, 5000, &result), "ls its fds");
	is_str(result.output, "0\n1\n2\n3\n", "the child has stdin, stdout, stderr and nothing else of ours");
	proc_result_free(&result);
	close(high);
	close(fd);
}

/* The whole process group ends at the deadline, not only the program pgha started. */
static void test_group_killed(void)
{
	static const struct {
		const char *name;
		const char *script;
	} cases[] = {
		{"a grandchild", "/bin/sleep 30 & echo $!; wait"},
		{"a grandchild ignoring SIGTERM, once its parent died",
		 "(trap '' TERM; exec /bin/sleep 30) & echo $!; wait"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proc_result result;
		proc_run((const char *[]){SHELL, cases[i].script, NULL}, NULL, NULL, 300, &result);
		pid_t grandchild = (pid_t)atoi(result.output);
		ok(result.timed_out && grandchild > 0, "%s: the program timed out (grandchild %d)", cases[i].name,
		   (int)grandchild);
		ok(grandchild > 0 && gone_within(grandchild, true, 1000), "%s: is killed with its group",
		   cases[i].name);
		proc_result_free(&result);
	}
}

/* Like pg_ctl start without -l: the program exits, a daemon it started keeps the output pipe. */
static void test_pipe_held_by_a_daemon(void)
{
	struct proc_result result;

	ok(proc_run((const char *[]){SHELL, "/bin/sleep 5 & echo $!", NULL}, NULL, NULL, 20000, &result),
	   "a program that leaves a daemon holding its output succeeds");
	pid_t daemon = (pid_t)atoi(result.output);
	ok(result.elapsed_ms < 4000, "and returns when the program exits, not when the pipe closes (%lld ms)",
	   result.elapsed_ms);
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		ok(gone_within(daemon, true, 5000), "the daemon it left is cleaned up by the test");
	}
	proc_result_free(&result);
}

/* ---- asynchronous jobs on sd-event ---- */

struct completion {
	const char *name;
	int order;
	bool called;
	struct proc_result result; /* a copy: the job's result dies with the callback */
};

struct async_test {
	sd_event *event;
	int completed, expected;
};

static struct async_test *current_async_test;

static void on_done(const struct proc_result *result, void *userdata)
{
	struct completion *completion = userdata;

	completion->called = true;
	completion->order = ++current_async_test->completed;
	completion->result = *result;
	completion->result.output = xstrdup(result->output);
	if (current_async_test->completed == current_async_test->expected)
		sd_event_exit(current_async_test->event, 0);
}

static int on_safety_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
	return sd_event_exit(userdata, 99);
}

static void test_async_jobs(void)
{
	sd_event *event = NULL;
	struct async_test test;
	enum { SLOW, ECHO, FALSE, DEADLINE, STUBBORN, DAEMON, COUNT };
	struct completion completions[COUNT] = {
		[SLOW] = {.name = "slow"},
		[ECHO] = {.name = "echo"},
		[FALSE] = {.name = "false"},
		[DEADLINE] = {.name = "deadline"},
		[STUBBORN] = {.name = "ignores SIGTERM"},
		[DAEMON] = {.name = "leaves a daemon"},
	};
	static const struct {
		const char *argv[5];
		int timeout_ms;
	} jobs[COUNT] = {
		[SLOW] = {{"/bin/sleep", "3"}, 20000},
		[ECHO] = {{"/bin/echo", "fast"}, 20000},
		[FALSE] = {{"/bin/false"}, 20000},
		[DEADLINE] = {{"/bin/sleep", "30"}, 200},
		[STUBBORN] = {{SHELL, "trap '' TERM; /bin/sleep 30"}, 200},
		[DAEMON] = {{SHELL, "/bin/sleep 10 & echo $!"}, 20000},
	};
	sd_event_source *safety = NULL;

	if (sd_event_new(&event) < 0) {
		ok(false, "async: cannot create an event loop");
		return;
	}
	test = (struct async_test){.event = event, .expected = COUNT};
	current_async_test = &test;
	pid_t leaders[COUNT] = {0};
	for (int i = 0; i < COUNT; i++) {
		struct proc_job *job = proc_start(event, jobs[i].argv, NULL, NULL, jobs[i].timeout_ms, on_done,
						  &completions[i]);
		ok(job != NULL, "async: %s started", completions[i].name);
		leaders[i] = job ? proc_job_pid(job) : 0;
	}
	sd_event_add_time_relative(event, &safety, CLOCK_MONOTONIC, 30 * 1000000ULL, 0, on_safety_timeout, event);
	is_int(sd_event_loop(event), 0, "async: every job completed");
	sd_event_source_disable_unref(safety);

	for (int i = 0; i < COUNT; i++) {
		ok(completions[i].called, "async: %s called back once the program ended", completions[i].name);
		ok(leaders[i] > 0 && process_state(leaders[i], NULL) == 0, "async: %s reaped, not left a zombie",
		   completions[i].name);
	}
	ok(completions[ECHO].order < completions[SLOW].order && completions[FALSE].order < completions[SLOW].order,
	   "async: fast jobs completed before the slow one (%d, %d before %d)", completions[ECHO].order,
	   completions[FALSE].order, completions[SLOW].order);
	ok(completions[DEADLINE].order < completions[SLOW].order, "async: the deadline did not wait for the slow job");
	ok(completions[DAEMON].order < completions[SLOW].order,
	   "async: a job whose daemon holds the pipe completes when the program exits");
	is_int(completions[SLOW].result.exit_status, 0, "async: slow job exit status");
	is_str(completions[ECHO].result.output, "fast\n", "async: output captured");
	is_int(completions[FALSE].result.exit_status, 1, "async: false exit status");
	ok(completions[DEADLINE].result.timed_out && completions[DEADLINE].result.signal == SIGTERM,
	   "async: deadline: SIGTERM");
	ok(completions[STUBBORN].result.timed_out && completions[STUBBORN].result.signal == SIGKILL,
	   "async: ignoring SIGTERM: SIGKILL after the grace");
	pid_t daemon = (pid_t)atoi(completions[DAEMON].result.output);
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		ok(gone_within(daemon, true, 5000), "async: the daemon left behind is cleaned up by the test");
	}
	for (int i = 0; i < COUNT; i++)
		proc_result_free(&completions[i].result);

	ok(proc_start(event, (const char *[]){"sleep", "1", NULL}, NULL, NULL, 1000, on_done, NULL) == NULL,
	   "async: a relative program name is refused");
	ok(proc_start(event, (const char *[]){"/nonexistent/program", NULL}, NULL, NULL, 1000, on_done, NULL) == NULL,
	   "async: a missing program is reported at once");
	ok(proc_start(event, (const char *[]){"/bin/true", NULL}, NULL, NULL, 0, on_done, NULL) == NULL,
	   "async: a job without a deadline is refused");
	sd_event_unref(event);
}

struct cancel_watch {
	sd_event *event;
	const char *pid_file;
	pid_t leader, grandchild;
	bool cancelled;
	struct proc_job *job;
};

/* Polls: first for the grandchild's pid, then cancels, then waits for both to be gone. */
static int on_cancel_watch(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct cancel_watch *watch = userdata;

	if (!watch->cancelled) {
		FILE *file = fopen(watch->pid_file, "r");
		int pid = 0;
		if (file) {
			if (fscanf(file, "%d", &pid) != 1)
				pid = 0;
			fclose(file);
		}
		if (pid > 0) {
			watch->grandchild = (pid_t)pid;
			proc_cancel(watch->job);
			watch->cancelled = true;
		}
	} else if (gone(watch->leader, false) && gone(watch->grandchild, true))
		return sd_event_exit(watch->event, 0);
	sd_event_source_set_time_relative(source, 10000);
	return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

static void test_cancel(void)
{
	struct completion never = {.name = "cancelled"};
	struct async_test test = {.expected = 1};
	char *pid_file = temporary_path("grandchild.pid");
	struct cancel_watch watch = {.pid_file = pid_file};
	sd_event_source *poller = NULL, *safety = NULL;
	sd_event *event = NULL;

	/* a loop that sd_event_exit ended is finished for good, so each part has its own */
	if (sd_event_new(&event) < 0) {
		ok(false, "cancel: cannot create an event loop");
		return;
	}
	test.event = watch.event = event;
	current_async_test = &test;
	/* the grandchild writes its pid into the file named by $0 */
	const char *script = "/bin/sleep 30 & echo $! > \"$0.new\"; mv \"$0.new\" \"$0\"; wait";
	const char *const argv[] = {SHELL, script, pid_file, NULL};
	watch.job = proc_start(event, argv, NULL, NULL, 20000, on_done, &never);
	if (!ok(watch.job, "cancel: job started"))
		return;
	watch.leader = proc_job_pid(watch.job);
	sd_event_add_time_relative(event, &poller, CLOCK_MONOTONIC, 10000, 0, on_cancel_watch, &watch);
	sd_event_add_time_relative(event, &safety, CLOCK_MONOTONIC, 10 * 1000000ULL, 0, on_safety_timeout, event);
	is_int(sd_event_loop(event), 0, "cancel: the program and its grandchild are gone");
	ok(watch.cancelled && !never.called, "cancel: the callback is not called");
	sd_event_source_disable_unref(poller);
	sd_event_source_disable_unref(safety);
	sd_event_unref(event);

	/* cancelling before the loop ever ran */
	event = NULL;
	if (sd_event_new(&event) < 0) {
		ok(false, "cancel: cannot create an event loop");
		return;
	}
	test.event = event;
	struct proc_job *job = proc_start(event, (const char *[]){"/bin/sleep", "30", NULL}, NULL, NULL, 20000, on_done,
					  &never);
	pid_t leader = job ? proc_job_pid(job) : 0;
	proc_cancel(job);
	proc_cancel(NULL);
	for (int turns = 0; turns < 500 && !gone(leader, false); turns++)
		sd_event_run(event, 10000);
	ok(leader > 0 && gone(leader, false) && !never.called, "cancel: at once, before the loop ran");
	sd_event_unref(event);
	proc_result_free(&never.result);
	unlink(pid_file);
	free(pid_file);
}

/* ---- detached start ---- */

static bool only_stdio_open_now(pid_t pid, bool report)
{
	char path[64];
	struct dirent *entry;
	bool clean = true;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *fds = opendir(path);
	if (!fds)
		return false;
	while ((entry = readdir(fds)))
		if (entry->d_name[0] != '.' && atoi(entry->d_name) > 2) {
			/* name what leaked, so a failure says where to look */
			char link_path[320], target[256] = "";
			snprintf(link_path, sizeof link_path, "%s/%s", path, entry->d_name);
			ssize_t length = readlink(link_path, target, sizeof target - 1);
			target[length > 0 ? length : 0] = '\0';
			if (report)
				diag("process %d has descriptor %s open: %s", (int)pid, entry->d_name, target);
			clean = false;
		}
	closedir(fds);
	return clean;
}

/* A program opens files of its own while it starts (sleep reads /etc/locale.alias):
 * an inherited descriptor stays open forever, so wait for a moment with none. */
static bool only_stdio_open(pid_t pid)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		if (only_stdio_open_now(pid, false))
			return true;
		usleep(20 * 1000);
	}
	return only_stdio_open_now(pid, true);
}

static bool environment_has(pid_t pid, const char *prefix)
{
	char path[64], buffer[65536];
	bool found = false;

	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t length = read(fd, buffer, sizeof buffer - 1);
	close(fd);
	for (ssize_t at = 0; at < length; at += (ssize_t)strlen(buffer + at) + 1)
		if (strncmp(buffer + at, prefix, strlen(prefix)) == 0)
			found = true;
	return found;
}

/* Whether the process has an environment yet (its exec has set up its stack). */
static bool has_environment(pid_t pid)
{
	char path[64], buffer[16];
	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t length = read(fd, buffer, sizeof buffer);
	close(fd);
	return length > 0;
}

static char *read_file(const char *path)
{
	static char text[4096];
	FILE *file = fopen(path, "r");
	size_t length = file ? fread(text, 1, sizeof text - 1, file) : 0;

	if (file)
		fclose(file);
	text[length] = '\0';
	return text;
}

static void test_detached(void)
{
	char *log_path = temporary_path("postmaster.log");
	char why[512], link[256], fd_path[64];
	int report[2];

	/* the stand-in for pghad: starts the program and dies */
	if (pipe(report) < 0)
		return;
	pid_t pghad = fork();
	if (pghad == 0) {
		const char *const argv[] = {"/bin/sleep", "30", NULL};
		pid_t pid = proc_spawn_detached(argv, NULL, directory, log_path, why, sizeof why);
		if (pid < 0)
			fprintf(stderr, "%s\n", why);
		_exit(write(report[1], &pid, sizeof pid) == sizeof pid ? 0 : 1);
	}
	close(report[1]);
	pid_t sleeper = -1;
	if (read(report[0], &sleeper, sizeof sleeper) != sizeof sleeper)
		sleeper = -1;
	close(report[0]);
	waitpid(pghad, NULL, 0);

	/* its exec may still be under way (a loaded machine): until it is done, /proc shows
	 * the environment of the process it was forked from, and between the switch of its
	 * executable and the set-up of its new stack, an empty one */
	for (int tries = 0; sleeper > 0 && tries < 3000; tries++) {
		char exe_path[64], exe[256] = "";
		snprintf(exe_path, sizeof exe_path, "/proc/%d/exe", (int)sleeper);
		ssize_t exe_length = readlink(exe_path, exe, sizeof exe - 1);
		exe[exe_length > 0 ? exe_length : 0] = '\0';
		if (strstr(exe, "sleep") && has_environment(sleeper))
			break;
		usleep(10000);
	}
	pid_t parent = 0;
	char state = sleeper > 0 ? process_state(sleeper, &parent) : 0;
	ok(sleeper > 0 && state != 0 && state != 'Z', "detached: the program outlives the process that started it");
	ok(parent != pghad && parent != 0, "detached: its parent is not the one that started it (%d)", (int)parent);
	ok(sleeper > 0 && getsid(sleeper) == sleeper && getsid(sleeper) != getsid(0), "detached: in its own session");
	ok(sleeper > 0 && getpgid(sleeper) == sleeper, "detached: in its own process group");
	ok(sleeper > 0 && only_stdio_open(sleeper), "detached: no descriptor but 0-2");
	snprintf(fd_path, sizeof fd_path, "/proc/%d/fd/1", (int)sleeper);
	ssize_t length = readlink(fd_path, link, sizeof link - 1);
	link[length > 0 ? length : 0] = '\0';
	is_str(link, log_path, "detached: stdout is the log file");
	snprintf(fd_path, sizeof fd_path, "/proc/%d/fd/0", (int)sleeper);
	length = readlink(fd_path, link, sizeof link - 1);
	link[length > 0 ? length : 0] = '\0';
	is_str(link, "/dev/null", "detached: stdin is /dev/null");
	snprintf(fd_path, sizeof fd_path, "/proc/%d/cwd", (int)sleeper);
	length = readlink(fd_path, link, sizeof link - 1);
	link[length > 0 ? length : 0] = '\0';
	is_str(link, directory, "detached: runs in its directory");
	ok(!environment_has(sleeper, "NOTIFY_SOCKET=") && !environment_has(sleeper, "PGHOST=") &&
		   environment_has(sleeper, "KEEP_ME="),
	   "detached: the environment is cleaned");
	if (sleeper > 0) {
		kill(sleeper, SIGKILL);
		ok(gone_within(sleeper, true, 5000), "detached: the test kills it");
	}

	/* output goes to the log, appended, the file private to its owner */
	unlink(log_path);
	for (int i = 0; i < 2; i++) {
		const char *const argv[] = {"/bin/echo", "detached", "hello", NULL};
		pid_t echo = proc_spawn_detached(argv, NULL, NULL, log_path, why, sizeof why);
		ok(echo > 0 && gone_within(echo, true, 5000), "detached: echo %d ran and ended", i + 1);
	}
	is_str(read_file(log_path), "detached hello\ndetached hello\n", "detached: output appended to the log");
	struct stat status;
	ok(stat(log_path, &status) == 0 && (status.st_mode & 0777) == 0600,
	   "detached: the log is created with mode 0600");
	unlink(log_path);

	static const struct {
		const char *name;
		const char *program;
		const char *log_path;
		const char *reason;
	} refused[] = {
		{"a relative program name", "sleep", "/dev/null", "absolute path"},
		{"a missing program", "/nonexistent/program", "/dev/null", "No such file"},
		{"an unusable log file", "/bin/true", "/nonexistent/directory/log", "log file"},
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		why[0] = '\0';
		const char *const argv[] = {refused[i].program, NULL};
		pid_t pid = proc_spawn_detached(argv, NULL, NULL, refused[i].log_path, why, sizeof why);
		ok(pid == -1 && strstr(why, refused[i].reason), "detached: %s is refused: %s", refused[i].name, why);
	}
	free(log_path);
}

/* This process is the subreaper of everything the tests started: none may be left running. The
 * dead ones it collects here are grandchildren that the scripts left to it, not programs proc ran
 * (their reaping is checked where they ran). */
static void test_nothing_left_behind(void)
{
	int orphans = 0;
	pid_t pid;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
		orphans++;
	ok(pid < 0 && errno == ECHILD, "no process left running (%d dead orphans collected)", orphans);
}

/* Runs first, while this process has no other child: what proc_run started, it also reaped. */
static void test_run_reaps(void)
{
	struct proc_result result;

	proc_run((const char *[]){"/bin/true", NULL}, NULL, NULL, 5000, &result);
	proc_result_free(&result);
	proc_run((const char *[]){"/bin/sleep", "30", NULL}, NULL, NULL, 100, &result);
	proc_result_free(&result);
	ok(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "proc_run reaps what it ran, also at a deadline");
}

/* The stat line's fields, counted from the command's last ')'. */
static const struct {
	const char *name, *line;
	bool parsed;
	char state;
	unsigned long long start_time;
} stat_cases[] = {
	{"a postmaster", "4242 (postgres) S 1 4242 4242 0 -1 4194560 1073 0 0 0 3 5 0 0 20 0 1 0 98765 "
			 "223711232 7040 18446744073709551615 1 1 0 0 0 0 0 4096 16902 0 0 0 17 1 0 0 0 0 0\n",
	 true, 'S', 98765},
	{"a command with spaces and parentheses", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123 0 0\n", true,
	 'R', 123},
	{"a zombie", "9 (postgres) Z 1 9 9 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0 18446744073709551615 0\n", true,
	 'Z', 555},
	{"a start time at the end of the line", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77", true, 'S', 77},
	{"cut short before the start time", "9 (x) D 1 9 9 0 -1 0 0 0", false, 'D', 0},
	{"a start time that is no number", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 x 0\n", false, 'S', 0},
	{"no state", "9 (x)", false, 0, 0},
	{"no command", "9 x S 1", false, 0, 0},
	{"nothing (gone)", NULL, false, 0, 0},
};

static void test_parse_stat(void)
{
	for (size_t i = 0; i < sizeof stat_cases / sizeof stat_cases[0]; i++) {
		char state;
		unsigned long long start_time;
		bool parsed = proc_parse_stat(stat_cases[i].line, &state, &start_time);
		ok(parsed == stat_cases[i].parsed && state == stat_cases[i].state &&
			   start_time == stat_cases[i].start_time,
		   "stat of %s: parsed %d, state %c, start time %llu", stat_cases[i].name, parsed, state ? state : '-',
		   start_time);
	}
	/* this process, read twice: the same start time, which a pid reused later cannot have */
	char state, again;
	unsigned long long started, restarted;
	bool read = proc_stat(getpid(), &state, &started) && proc_stat(getpid(), &again, &restarted);
	ok(read && state == 'R' && started > 0 && started == restarted, "this process: state %c, start time %llu",
	   state, started);
}

int main(void)
{
	log_init("test-proc");
	log_set_level(LOG_LEVEL_DEBUG);
	/* orphans of the programs run here come back to this process, so the test can see them end */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (!mkdtemp(directory)) {
		ok(false, "cannot create a temporary directory: %s", strerror(errno));
		return done_testing();
	}
	test_parse_stat();
	test_run_reaps();
	test_run_cases();
	test_refused();
	test_directory();
	test_output_limit();
	test_environment();
	test_signal_state();
	test_wait();
	test_watch();
	test_descriptors();
	test_group_killed();
	test_pipe_held_by_a_daemon();
	test_async_jobs();
	test_cancel();

	test_detached();
	test_nothing_left_behind();
	rmdir(directory);
	return done_testing();
}
