/* proc: run programs with an argv (never a shell), a clean environment and a deadline, never blocking the loop. */
#include "autoconfig.h"

#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "memory.h"

extern char **environ;

/* Without a pidfd to poll, proc_run looks for the program's exit this often. */
#define EXIT_CHECK_INTERVAL_MS 50
/* Reads of the output pipe per wake-up, so that a chatty program cannot starve the loop's other sources. */
#define READS_PER_WAKEUP 16
/* Reads after the program exited: what is still in the pipe, but not a helper's endless stream. */
#define READS_AFTER_EXIT 64
/* Deadlines need no precision finer than this; a coarse accuracy lets sd-event batch wake-ups. */
#define DEADLINE_ACCURACY_USEC (10 * 1000ULL)

/* ---- environment ---- */

/* Variables a child must not see; see proc.h for why. Every "PG..." variable is withheld too. */
static const char *const withheld_variables[] = {
	"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "MAINPID",
	"SYSTEMD_EXEC_PID", "MEMORY_PRESSURE_WATCH", "MEMORY_PRESSURE_WRITE", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY",
	NULL,
};

static size_t variable_name_length(const char *entry)
{
	const char *equals = strchr(entry, '=');

	return equals ? (size_t)(equals - entry) : strlen(entry);
}

static bool same_variable(const char *entry, const char *other)
{
	size_t length = variable_name_length(entry);

	return length == variable_name_length(other) && strncmp(entry, other, length) == 0;
}

static bool is_withheld(const char *entry)
{
	if (strncmp(entry, "PG", 2) == 0)
		return true;
	for (size_t i = 0; withheld_variables[i]; i++)
		if (same_variable(entry, withheld_variables[i]))
			return true;
	return false;
}

char **proc_environment(const char *const *extra)
{
	size_t inherited = 0, added = 0, count = 0;

	while (environ && environ[inherited])
		inherited++;
	while (extra && extra[added])
		added++;
	char **environment = xcalloc(inherited + added + 1, sizeof *environment);
	for (size_t i = 0; i < inherited; i++)
		if (!is_withheld(environ[i]))
			environment[count++] = xstrdup(environ[i]);
	for (size_t i = 0; i < added; i++) {
		size_t kept = 0;
		for (size_t j = 0; j < count; j++) {
			if (same_variable(environment[j], extra[i]))
				free(environment[j]);
			else
				environment[kept++] = environment[j];
		}
		count = kept;
		if (strchr(extra[i], '='))
			environment[count++] = xstrdup(extra[i]);
	}
	environment[count] = NULL;
	return environment;
}

void proc_environment_free(char **environment)
{
	if (!environment)
		return;
	for (size_t i = 0; environment[i]; i++)
		free(environment[i]);
	free(environment);
}

/* ---- output: the last PROC_OUTPUT_LIMIT bytes, kept in a ring so that a chatty program costs no copying ---- */

struct output {
	char *ring;
	unsigned long long total; /* bytes read so far; the next one goes to ring[total % PROC_OUTPUT_LIMIT] */
};

static void output_init(struct output *output)
{
	output->ring = xmalloc(PROC_OUTPUT_LIMIT);
	output->total = 0;
}

/* Reads what fd has, at most max_reads times. Returns false at end of file (or on an error, which
 * ends the output as surely), true when the pipe may have more later. */
static bool output_read(struct output *output, int fd, int max_reads)
{
	for (int reads = 0; reads < max_reads; reads++) {
		size_t at = (size_t)(output->total % PROC_OUTPUT_LIMIT);
		ssize_t length = read(fd, output->ring + at, PROC_OUTPUT_LIMIT - at);
		if (length > 0)
			output->total += (unsigned long long)length;
		else if (length == 0)
			return false;
		else if (errno == EAGAIN)
			return true;
		else if (errno != EINTR) {
			log_warning("cannot read a program's output: %m");
			return false;
		}
	}
	return true;
}

/* Moves the output into result as one NUL-terminated string and releases the ring. */
static void output_take(struct output *output, struct proc_result *result)
{
	size_t length = output->total < PROC_OUTPUT_LIMIT ? (size_t)output->total : PROC_OUTPUT_LIMIT;
	size_t oldest = (size_t)(output->total % PROC_OUTPUT_LIMIT);

	result->output = xmalloc(length + 1);
	if (output->total <= PROC_OUTPUT_LIMIT)
		memcpy(result->output, output->ring, length);
	else {
		memcpy(result->output, output->ring + oldest, PROC_OUTPUT_LIMIT - oldest);
		memcpy(result->output + PROC_OUTPUT_LIMIT - oldest, output->ring, oldest);
	}
	result->output[length] = '\0';
	result->output_length = length;
	result->output_truncated = output->total > PROC_OUTPUT_LIMIT;
	free(output->ring);
	output->ring = NULL;
}

/* ---- results ---- */

bool proc_result_succeeded(const struct proc_result *result)
{
	return result->started && !result->timed_out && result->signal == 0 && result->exit_status == 0;
}

static const char *signal_name(int signal_number)
{
	const char *name = sigabbrev_np(signal_number);

	return name ? name : "an unknown signal";
}

void proc_result_describe(const struct proc_result *result, char *buffer, size_t size)
{
	const char *prefix = result->signal && sigabbrev_np(result->signal) ? "SIG" : "";

	if (!result->started)
		snprintf(buffer, size, "could not be started");
	else if (result->timed_out && result->signal)
		snprintf(buffer, size, "timed out after %lld ms (killed by %s%s)", result->elapsed_ms, prefix,
			 signal_name(result->signal));
	else if (result->timed_out && result->exit_status >= 0)
		snprintf(buffer, size, "timed out after %lld ms (then exited with status %d)", result->elapsed_ms,
			 result->exit_status);
	else if (result->timed_out)
		snprintf(buffer, size, "timed out after %lld ms and did not end even after SIGKILL",
			 result->elapsed_ms);
	else if (result->signal)
		snprintf(buffer, size, "was killed by %s%s", prefix, signal_name(result->signal));
	else
		snprintf(buffer, size, "exited with status %d", result->exit_status);
}

void proc_result_free(struct proc_result *result)
{
	free(result->output);
	result->output = NULL;
	result->output_length = 0;
}

static void result_set_status(struct proc_result *result, const siginfo_t *info)
{
	if (info->si_code == CLD_EXITED)
		result->exit_status = info->si_status;
	else if (info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED)
		result->signal = info->si_status;
}

/* ---- spawning ---- */

static long long now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool argv_usable(const char *const *argv, char *why, size_t why_size)
{
	if (!argv || !argv[0] || !argv[0][0]) {
		snprintf(why, why_size, "cannot run a program without a name");
		return false;
	}
	/* no PATH search: which binary runs must not depend on the environment */
	if (argv[0][0] != '/') {
		snprintf(why, why_size, "cannot run \"%s\": a program must be named by an absolute path", argv[0]);
		return false;
	}
	return true;
}

/* The command line for a debug log line; log_message scrubs it. */
static void log_command(const char *const *argv, const char *directory)
{
	if (log_get_level() < LOG_LEVEL_DEBUG)
		return;
	size_t size = 1;
	for (size_t i = 0; argv[i]; i++)
		size += strlen(argv[i]) + 3;
	char *line = xmalloc(size), *end = line;
	for (size_t i = 0; argv[i]; i++) {
		bool quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t\n'\"\\");
		end += sprintf(end, "%s%s%s%s", i ? " " : "", quote ? "'" : "", argv[i], quote ? "'" : "");
	}
	log_debug("running %s%s%s", line, directory ? " in " : "", directory ? directory : "");
	free(line);
}

/* The file actions would clobber a descriptor that is itself 0, 1 or 2 (a daemon started with stdio
 * closed gets its pipes there), so those are moved out of the way first. */
static int above_stdio(int fd)
{
	if (fd < 0 || fd > STDERR_FILENO)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	int saved_errno = errno;
	close(fd);
	errno = saved_errno;
	return moved;
}

/* What posix_spawn needs for one of our programs: stdin from /dev/null, stdout and stderr to output_fd,
 * no other descriptor, a clean signal state and environment, and a new process group or session. */
struct spawn_plan {
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attributes;
	char **environment;
};

static int spawn_plan_init(struct spawn_plan *plan, const char *const *extra_env, const char *directory, int output_fd,
			   bool new_session)
{
	sigset_t signals;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (new_session ? POSIX_SPAWN_SETSID
										    : POSIX_SPAWN_SETPGROUP);
	int error;

	plan->environment = proc_environment(extra_env);
	posix_spawn_file_actions_init(&plan->actions);
	posix_spawnattr_init(&plan->attributes);
	error = posix_spawn_file_actions_addopen(&plan->actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	if (!error)
		error = posix_spawn_file_actions_adddup2(&plan->actions, output_fd, STDOUT_FILENO);
	if (!error)
		error = posix_spawn_file_actions_adddup2(&plan->actions, output_fd, STDERR_FILENO);
	if (!error && directory)
		error = posix_spawn_file_actions_addchdir_np(&plan->actions, directory);
	/* pghad's descriptors are close-on-exec, but one opened by a library without it must not leak
	 * into a postmaster that lives for months */
	if (!error)
		error = posix_spawn_file_actions_addclosefrom_np(&plan->actions, STDERR_FILENO + 1);
	sigemptyset(&signals);
	if (!error)
		error = posix_spawnattr_setsigmask(&plan->attributes, &signals);
	sigfillset(&signals);
	if (!error)
		error = posix_spawnattr_setsigdefault(&plan->attributes, &signals);
	if (!error)
		error = posix_spawnattr_setpgroup(&plan->attributes, 0);
	if (!error)
		error = posix_spawnattr_setflags(&plan->attributes, flags);
	return error;
}

static void spawn_plan_destroy(struct spawn_plan *plan)
{
	posix_spawn_file_actions_destroy(&plan->actions);
	posix_spawnattr_destroy(&plan->attributes);
	proc_environment_free(plan->environment);
}

static void describe_spawn_error(const char *const *argv, const char *directory, int error, char *why, size_t why_size)
{
	if (directory)
		snprintf(why, why_size, "cannot run %s in %s: %s", argv[0], directory, strerror(error));
	else
		snprintf(why, why_size, "cannot run %s: %s", argv[0], strerror(error));
}

/* Starts argv as the leader of a new process group with its output into output_fd. */
static bool spawn_in_group(const char *const *argv, const char *const *extra_env, const char *directory, int output_fd,
			   pid_t *pid, char *why, size_t why_size)
{
	struct spawn_plan plan;
	int error = spawn_plan_init(&plan, extra_env, directory, output_fd, false);

	log_command(argv, directory);
	if (!error)
		/* glibc's posix_spawn returns only after the exec, so a missing program is reported here */
		error = posix_spawn(pid, argv[0], &plan.actions, &plan.attributes, (char *const *)argv,
				    plan.environment);
	spawn_plan_destroy(&plan);
	if (error) {
		describe_spawn_error(argv, directory, error, why, why_size);
		return false;
	}
	return true;
}

/* A pipe whose read end does not block and whose write end, handed to the child, does. */
static bool output_pipe(int fds[2], const char *program)
{
	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_error("cannot run %s: cannot create a pipe: %m", program);
		return false;
	}
	fds[0] = above_stdio(fds[0]);
	fds[1] = above_stdio(fds[1]);
	if (fds[0] < 0 || fds[1] < 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		log_error("cannot run %s: cannot set up its output pipe: %m", program);
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		return false;
	}
	return true;
}

/* Signals the whole process group led by pid. Called only while pid is unreaped (running or a zombie):
 * until then no other process can be given its number as a group id. */
static void signal_group(pid_t pid, int signal_number, const char *program)
{
	if (kill(-pid, signal_number) < 0 && errno != ESRCH)
		log_warning("cannot send SIG%s to %s (process group %d): %m", signal_name(signal_number), program,
			    (int)pid);
}

/* ---- asynchronous run on sd-event ---- */

struct proc_job {
	sd_event_source *child_source, *output_source, *deadline_source;
	pid_t pid;
	int output_fd;
	struct output output;
	int timeout_ms;
	bool timed_out, cancelled;
	long long started_ms;
	char *program;
	proc_done_fn done;
	void *userdata;
};

static void job_close_output(struct proc_job *job)
{
	job->output_source = sd_event_source_disable_unref(job->output_source);
	if (job->output_fd >= 0)
		close(job->output_fd);
	job->output_fd = -1;
}

static void job_free(struct proc_job *job)
{
	job_close_output(job);
	job->deadline_source = sd_event_source_disable_unref(job->deadline_source);
	/* also from the child source's own callback: sd-event frees it, and reaps the child, after the call */
	job->child_source = sd_event_source_unref(job->child_source);
	free(job->output.ring);
	free(job->program);
	free(job);
}

static int on_output(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct proc_job *job = userdata;

	if (!output_read(&job->output, fd, READS_PER_WAKEUP))
		job_close_output(job);
	return 0;
}

static int on_deadline(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct proc_job *job = userdata;

	if (job->timed_out) {
		log_notice("%s (pid %d) is still running %d ms after SIGTERM: sending SIGKILL to its process group",
			   job->program, (int)job->pid, PROC_KILL_GRACE_MS);
		signal_group(job->pid, SIGKILL, job->program);
		return 0;
	}
	log_notice("%s (pid %d) did not finish within %d ms: sending SIGTERM to its process group", job->program,
		   (int)job->pid, job->timeout_ms);
	job->timed_out = true;
	signal_group(job->pid, SIGTERM, job->program);
	int result = sd_event_source_set_time_relative(source, PROC_KILL_GRACE_MS * 1000ULL);
	if (result >= 0)
		result = sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
	if (result < 0) {
		/* without the grace timer, SIGKILL now rather than never */
		log_warning("cannot arm the SIGKILL timer for %s: %s", job->program, strerror(-result));
		signal_group(job->pid, SIGKILL, job->program);
	}
	return 0;
}

static int on_child_exit(sd_event_source *source, const siginfo_t *info, void *userdata)
{
	struct proc_job *job = userdata;
	struct proc_result result = {.started = true, .exit_status = -1, .timed_out = job->timed_out};

	/* the leader is a zombie until this callback returns, so its group id is still ours: whatever
	 * a timed-out or cancelled program left in its group goes with it */
	if (job->timed_out || job->cancelled)
		signal_group(job->pid, SIGKILL, job->program);
	if (!job->cancelled && job->done) {
		if (job->output_fd >= 0)
			output_read(&job->output, job->output_fd, READS_AFTER_EXIT);
		result_set_status(&result, info);
		result.elapsed_ms = now_ms() - job->started_ms;
		output_take(&job->output, &result);
		job->done(&result, job->userdata);
		proc_result_free(&result);
	}
	job_free(job);
	return 0;
}

struct proc_job *proc_start(sd_event *event, const char *const *argv, const char *const *extra_env,
			    const char *directory, int timeout_ms, proc_done_fn done, void *userdata)
{
	char why[1024];
	int fds[2], result;
	sigset_t child_signal;

	if (!argv_usable(argv, why, sizeof why)) {
		log_error("%s", why);
		return NULL;
	}
	if (timeout_ms <= 0) {
		log_error("cannot run %s without a deadline (timeout %d ms)", argv[0], timeout_ms);
		return NULL;
	}
	/* sd_event_add_child refuses to work unless SIGCHLD is blocked */
	sigemptyset(&child_signal);
	sigaddset(&child_signal, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &child_signal, NULL) < 0) {
		log_error("cannot run %s: cannot block SIGCHLD: %m", argv[0]);
		return NULL;
	}
	if (!output_pipe(fds, argv[0]))
		return NULL;

	struct proc_job *job = xcalloc(1, sizeof *job);
	job->output_fd = fds[0];
	job->timeout_ms = timeout_ms;
	job->program = xstrdup(argv[0]);
	job->done = done;
	job->userdata = userdata;
	output_init(&job->output);
	job->started_ms = now_ms();
	bool spawned = spawn_in_group(argv, extra_env, directory, fds[1], &job->pid, why, sizeof why);
	close(fds[1]);
	if (!spawned) {
		log_error("%s", why);
		job_free(job);
		return NULL;
	}
	result = sd_event_add_child(event, &job->child_source, job->pid, WEXITED, on_child_exit, job);
	if (result >= 0)
		result = sd_event_add_io(event, &job->output_source, job->output_fd, EPOLLIN, on_output, job);
	if (result >= 0)
		result = sd_event_add_time_relative(event, &job->deadline_source, CLOCK_MONOTONIC,
						    (uint64_t)timeout_ms * 1000ULL, DEADLINE_ACCURACY_USEC, on_deadline,
						    job);
	if (result < 0) {
		log_error("cannot watch %s (pid %d) on the event loop: %s", argv[0], (int)job->pid, strerror(-result));
		/* a program nobody watches must not run on: kill it and reap it here, which SIGKILL makes prompt */
		signal_group(job->pid, SIGKILL, argv[0]);
		job->child_source = sd_event_source_unref(job->child_source);
		while (waitpid(job->pid, NULL, 0) < 0 && errno == EINTR)
			;
		job_free(job);
		return NULL;
	}
	return job;
}

pid_t proc_job_pid(const struct proc_job *job)
{
	return job->pid;
}

void proc_cancel(struct proc_job *job)
{
	if (!job || job->cancelled)
		return;
	log_debug("cancelling %s (pid %d): sending SIGKILL to its process group", job->program, (int)job->pid);
	job->cancelled = true;
	job->done = NULL;
	job->userdata = NULL;
	signal_group(job->pid, SIGKILL, job->program);
	job->deadline_source = sd_event_source_disable_unref(job->deadline_source);
	job_close_output(job);
}

/* ---- synchronous run ---- */

static int pidfd_open_or_not(pid_t pid)
{
#ifdef SYS_pidfd_open
	/* poll() then wakes at the exit itself; kernels before 5.3 fall back to checking periodically */
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	return -1;
#endif
}

static int milliseconds_until(long long moment, long long now)
{
	long long left = moment - now;

	return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

bool proc_run(const char *const *argv, const char *const *extra_env, const char *directory, int timeout_ms,
	      struct proc_result *result)
{
	char why[1024];
	int fds[2];
	pid_t pid;

	*result = (struct proc_result){.exit_status = -1};
	if (!argv_usable(argv, why, sizeof why)) {
		log_error("%s", why);
		result->output = xstrdup("");
		return false;
	}
	if (timeout_ms <= 0) {
		log_error("cannot run %s without a deadline (timeout %d ms)", argv[0], timeout_ms);
		result->output = xstrdup("");
		return false;
	}
	if (!output_pipe(fds, argv[0])) {
		result->output = xstrdup("");
		return false;
	}
	long long started = now_ms();
	bool spawned = spawn_in_group(argv, extra_env, directory, fds[1], &pid, why, sizeof why);
	close(fds[1]);
	if (!spawned) {
		log_error("%s", why);
		close(fds[0]);
		result->output = xstrdup("");
		return false;
	}
	result->started = true;

	struct output output;
	int output_fd = fds[0], pidfd = pidfd_open_or_not(pid);
	long long deadline = started + timeout_ms, kill_at = 0, give_up_at = 0;
	bool exited = false;
	siginfo_t info;

	output_init(&output);
	for (;;) {
		/* WNOWAIT: the leader stays a zombie, keeping its group id ours until the group was signalled */
		memset(&info, 0, sizeof info);
		if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR) {
			log_error("cannot wait for %s (pid %d): %m", argv[0], (int)pid);
			break;
		}
		if (info.si_pid == pid) {
			exited = true;
			break;
		}
		long long now = now_ms();
		int wait_ms;
		if (!result->timed_out && now >= deadline) {
			signal_group(pid, SIGTERM, argv[0]);
			result->timed_out = true;
			kill_at = now + PROC_KILL_GRACE_MS;
		} else if (result->timed_out && !give_up_at && now >= kill_at) {
			signal_group(pid, SIGKILL, argv[0]);
			give_up_at = now + PROC_KILL_GRACE_MS;
		} else if (give_up_at && now >= give_up_at) {
			/* stuck in the kernel (a hung file system): returning late is better than never */
			log_error("%s (pid %d) did not end after SIGKILL; leaving it behind", argv[0], (int)pid);
			break;
		}
		wait_ms = milliseconds_until(give_up_at ? give_up_at : result->timed_out ? kill_at : deadline, now);
		if (pidfd < 0 && wait_ms > EXIT_CHECK_INTERVAL_MS)
			wait_ms = EXIT_CHECK_INTERVAL_MS;

		struct pollfd polled[2];
		nfds_t count = 0;
		if (output_fd >= 0)
			polled[count++] = (struct pollfd){.fd = output_fd, .events = POLLIN};
		if (pidfd >= 0)
			polled[count++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		if (poll(polled, count, wait_ms) < 0 && errno != EINTR) {
			log_error("cannot wait for %s (pid %d): %m", argv[0], (int)pid);
			break;
		}
		if (output_fd >= 0 && polled[0].revents && !output_read(&output, output_fd, READS_PER_WAKEUP)) {
			close(output_fd);
			output_fd = -1;
		}
	}
	if (output_fd >= 0) {
		output_read(&output, output_fd, READS_AFTER_EXIT);
		close(output_fd);
	}
	if (pidfd >= 0)
		close(pidfd);
	result->elapsed_ms = now_ms() - started;
	if (exited) {
		if (result->timed_out)
			signal_group(pid, SIGKILL, argv[0]);
		result_set_status(result, &info);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	output_take(&output, result);
	return proc_result_succeeded(result);
}

/* ---- detached start ---- */

struct spawn_report {
	pid_t pid;
	int error;
};

pid_t proc_spawn_detached(const char *const *argv, const char *const *extra_env, const char *directory,
			  const char *log_path, char *why, size_t why_size)
{
	struct spawn_plan plan;
	struct spawn_report report = {.pid = -1};
	int report_pipe[2], log_fd, error;

	if (!argv_usable(argv, why, why_size))
		return -1;
	log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (log_fd < 0) {
		snprintf(why, why_size, "cannot run %s: cannot open its log file %s: %m", argv[0], log_path);
		return -1;
	}
	log_fd = above_stdio(log_fd);
	if (log_fd < 0 || pipe2(report_pipe, O_CLOEXEC) < 0) {
		snprintf(why, why_size, "cannot run %s: %m", argv[0]);
		if (log_fd >= 0)
			close(log_fd);
		return -1;
	}
	error = spawn_plan_init(&plan, extra_env, directory, log_fd, true);
	if (error) {
		describe_spawn_error(argv, directory, error, why, why_size);
		spawn_plan_destroy(&plan);
		close(log_fd);
		close(report_pipe[0]);
		close(report_pipe[1]);
		return -1;
	}
	log_command(argv, directory);
	pid_t intermediate = fork();
	if (intermediate == 0) {
		/* the intermediate process: start the program, say how it went, and leave it to init */
		report.error = posix_spawn(&report.pid, argv[0], &plan.actions, &plan.attributes, (char *const *)argv,
					   plan.environment);
		ssize_t written = write(report_pipe[1], &report, sizeof report);
		_exit(written == (ssize_t)sizeof report ? 0 : 1);
	}
	error = intermediate < 0 ? errno : 0;
	close(report_pipe[1]);
	close(log_fd);
	spawn_plan_destroy(&plan);
	if (intermediate < 0) {
		snprintf(why, why_size, "cannot run %s: cannot fork: %s", argv[0], strerror(error));
		close(report_pipe[0]);
		return -1;
	}
	ssize_t length;
	do
		length = read(report_pipe[0], &report, sizeof report);
	while (length < 0 && errno == EINTR);
	close(report_pipe[0]);
	while (waitpid(intermediate, NULL, 0) < 0 && errno == EINTR)
		;
	if (length != (ssize_t)sizeof report) {
		snprintf(why, why_size, "cannot run %s: the intermediate process ended without a report", argv[0]);
		return -1;
	}
	if (report.error) {
		describe_spawn_error(argv, directory, report.error, why, why_size);
		return -1;
	}
	return report.pid;
}

/* ---- other processes ---- */

bool proc_kill_pending(pid_t pid)
{
	char path[64], why[256];
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	char *status = file_read(path, 16 * 1024, NULL, why, sizeof why);
	bool pending = false;
	/* "SigPnd:" (the thread's) and "ShdPnd:" (the process's): masks in hex, signal N at
	 * bit N - 1 */
	for (const char *line = status; line && *line && !pending;) {
		if (strncmp(line, "SigPnd:", 7) == 0 || strncmp(line, "ShdPnd:", 7) == 0) {
			unsigned long long mask = strtoull(line + 7, NULL, 16);
			pending = (mask >> (SIGKILL - 1)) & 1;
		}
		const char *end = strchr(line, '\n');
		line = end ? end + 1 : NULL;
	}
	free(status);
	return pending;
}

bool proc_parse_stat(const char *stat, char *state, unsigned long long *start_time)
{
	/* "PID (COMMAND) STATE PPID ...": the command may hold spaces and parentheses, so the
	 * fields are counted from the last ')'; the state is field 3, the start time 22 */
	const char *close = stat ? strrchr(stat, ')') : NULL;
	const char *field = close && close[1] == ' ' ? close + 2 : NULL;

	*state = 0;
	*start_time = 0;
	if (!field || !*field || *field == ' ')
		return false;
	*state = *field;
	for (int number = 3; number < 22; number++) {
		field = strchr(field, ' ');
		if (!field)
			return false;
		field++;
	}
	char *end;
	errno = 0;
	unsigned long long value = strtoull(field, &end, 10);
	if (end == field || errno || (*end != ' ' && *end != '\n' && *end != '\0'))
		return false;
	*start_time = value;
	return true;
}

bool proc_stat(pid_t pid, char *state, unsigned long long *start_time)
{
	char path[64], why[256];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	char *stat = file_read(path, 4096, NULL, why, sizeof why);
	bool parsed = proc_parse_stat(stat, state, start_time);
	free(stat);
	return parsed;
}

char proc_state(pid_t pid)
{
	char state;
	unsigned long long start_time;
	proc_stat(pid, &state, &start_time);
	return state;
}

enum proc_wait proc_wait_of(const char *wchan)
{
	/* the functions a process sleeps in inside select, pselect, poll, ppoll and the epoll
	 * waits, on the kernels of the last decade (a suffix such as ".constprop.0" may follow:
	 * the compiler's) */
	static const char *const descriptors[] = {"poll_schedule_timeout", "do_select", "core_sys_select",
						  "do_sys_poll", "do_poll", "ep_poll", "do_epoll_wait"};

	if (!wchan)
		return PROC_WAIT_UNKNOWN;
	size_t length = strcspn(wchan, ".\n");
	/* "0": not sleeping, or the kernel keeps its symbols to itself */
	if (length == 0 || strncmp(wchan, "0", length) == 0)
		return PROC_WAIT_UNKNOWN;
	for (size_t i = 0; i < sizeof descriptors / sizeof *descriptors; i++)
		if (strlen(descriptors[i]) == length && strncmp(wchan, descriptors[i], length) == 0)
			return PROC_WAIT_DESCRIPTORS;
	return PROC_WAIT_OTHER;
}

enum proc_wait proc_wait(pid_t pid)
{
	char path[64], why[256];
	snprintf(path, sizeof path, "/proc/%ld/wchan", (long)pid);
	char *wchan = file_read(path, 256, NULL, why, sizeof why);
	enum proc_wait wait = proc_wait_of(wchan);
	free(wchan);
	return wait;
}

bool proc_watch_open(struct proc_watch *watch, pid_t pid)
{
	char path[64];

	proc_watch_close(watch);
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	int stat_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof path, "/proc/%ld/wchan", (long)pid);
	int wchan_fd = stat_fd >= 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (wchan_fd < 0) {
		if (stat_fd >= 0)
			close(stat_fd);
		return false;
	}
	*watch = (struct proc_watch){.open = true, .pid = pid, .stat_fd = stat_fd, .wchan_fd = wchan_fd};
	return true;
}

/* The text of a watched file now, NUL-terminated in buffer; false when it cannot be read. */
static bool reread(int fd, char *buffer, size_t size)
{
	ssize_t length = pread(fd, buffer, size - 1, 0);
	if (length < 0)
		return false;
	buffer[length] = '\0';
	return true;
}

bool proc_watch_stat(struct proc_watch *watch, char *state, unsigned long long *start_time)
{
	char text[1024];

	*state = 0;
	/* the line is a few hundred bytes (the command in it at most 15); one cut short is
	 * refused by proc_parse_stat */
	return watch->open && reread(watch->stat_fd, text, sizeof text) && proc_parse_stat(text, state, start_time);
}

enum proc_wait proc_watch_wait(struct proc_watch *watch)
{
	char text[256];
	return watch->open && reread(watch->wchan_fd, text, sizeof text) ? proc_wait_of(text) : PROC_WAIT_UNKNOWN;
}

void proc_watch_close(struct proc_watch *watch)
{
	if (watch->open) {
		close(watch->stat_fd);
		close(watch->wchan_fd);
	}
	*watch = (struct proc_watch){0};
}
