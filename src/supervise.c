/* supervise: pgha-entrypoint as the container's main process (PID 1): it runs postgres as its child, turns the container's stop signals into an immediate shutdown, reaps every child and ends with postgres's status. */
#include "autoconfig.h"

#include "supervise.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"

const int supervise_signals[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD, 0};

enum supervise_action supervise_action_for(int signo, int *postmaster_signal)
{
	*postmaster_signal = 0;
	switch (signo) {
	case SIGTERM:
	case SIGINT:
	case SIGQUIT:
		*postmaster_signal = SIGQUIT;
		return SUPERVISE_STOP;
	case SIGHUP:
	case SIGUSR1:
	case SIGUSR2:
		*postmaster_signal = signo;
		return SUPERVISE_FORWARD;
	case SIGCHLD:
		return SUPERVISE_REAP;
	default:
		return SUPERVISE_IGNORE;
	}
}

int supervise_exit_status(int wait_status)
{
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return 128;
}

static long long monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

pid_t supervise_start(const char *const *argv, const char *const *extra_env)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attributes;
	char **environment = proc_environment(extra_env);
	sigset_t signals;
	pid_t pid = -1;

	posix_spawn_file_actions_init(&actions);
	posix_spawnattr_init(&attributes);
	/* a descriptor left open by a library must not live in a postmaster for months */
	int error = posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
	sigemptyset(&signals);
	if (!error)
		error = posix_spawnattr_setsigmask(&attributes, &signals);
	sigfillset(&signals);
	if (!error)
		error = posix_spawnattr_setsigdefault(&attributes, &signals);
	if (!error)
		error = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	/* the same process group: a test agent (or an operator) ending the group ends postgres
	 * with it, as the end of PID 1 ends a container's every process */
	if (!error)
		error = posix_spawn(&pid, argv[0], &actions, &attributes, (char *const *)argv, environment);
	if (error) {
		log_error("cannot run %s: %s", argv[0], strerror(error));
		pid = -1;
	}
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attributes);
	proc_environment_free(environment);
	return pid;
}

/* Sends signo to every process whose parent is this one; returns how many. */
static int signal_children(int signo)
{
	DIR *directory = opendir("/proc");
	pid_t self = getpid();
	int count = 0;
	struct dirent *entry;

	if (!directory)
		return 0;
	while ((entry = readdir(directory))) {
		char path[64], text[512];
		char *end;
		long pid = strtol(entry->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		FILE *file = fopen(path, "r");
		if (!file)
			continue;
		bool read = fgets(text, sizeof text, file) != NULL;
		fclose(file);
		char *after_name = read ? strrchr(text, ')') : NULL;
		char state;
		int parent;
		/* a zombie is only waiting to be reaped */
		if (after_name && sscanf(after_name + 1, " %c %d", &state, &parent) == 2 && parent == self && state != 'Z' &&
		    kill((pid_t)pid, signo) == 0)
			count++;
	}
	closedir(directory);
	return count;
}

/* The postmaster is gone: what it left running (its backends when it was killed itself,
 * a program of archive_command...) could still write into the data directory or answer
 * clients, so it is killed; then every child is reaped. */
static void end_leftovers(void)
{
	bool told = false;

	for (;;) {
		int killed = signal_children(SIGKILL);
		if (killed && !told) {
			log_warning("the postmaster left %d process%s running: killed", killed, killed == 1 ? "" : "es");
			told = true;
		}
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == ECHILD)
			return;
		if (pid < 0 && errno != EINTR) {
			log_error("cannot wait for the processes left: %m");
			return;
		}
	}
}

bool supervise_watch_stops(const struct supervise_watch *watch, int wait_status)
{
	return watch && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == watch->stop_status;
}

bool supervise_watch_demotes(const struct supervise_watch *watch, int wait_status)
{
	return watch && watch->demote_status && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == watch->demote_status;
}

static pid_t start_watch(const struct supervise_watch *watch)
{
	return watch && watch->start ? watch->start(watch->context) : -1;
}

int supervise_run(pid_t postmaster, const struct supervise_watch *watch)
{
	sigset_t signals;
	long long stop_ms = 0, killed_ms = 0;
	const char *received_stop = NULL; /* what asked for the immediate shutdown */
	bool demoting = false;            /* a clean shutdown was asked (a switchover) */
	pid_t watcher;

	sigemptyset(&signals);
	for (const int *signo = supervise_signals; *signo; signo++)
		sigaddset(&signals, *signo);
	/* orphans of the postmaster's children come here, as they would to PID 1, to be reaped */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warning("cannot become a child subreaper: %m");
	watcher = start_watch(watch);
	for (;;) {
		/* a signal may have come before this wait, or several SIGCHLD merged into one:
		 * every turn reaps what has ended */
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == watcher) {
				watcher = -1;
				if (supervise_watch_stops(watch, status)) {
					if (!received_stop) {
						received_stop = "the self-fence";
						stop_ms = monotonic_ms();
						log_notice("self-fence: immediate shutdown of PostgreSQL (SIGQUIT to pid %d)",
							   (int)postmaster);
					}
					kill(postmaster, SIGQUIT);
				} else if (supervise_watch_demotes(watch, status) && !received_stop) {
					demoting = true;
					log_notice("switchover: clean shutdown of PostgreSQL (SIGINT, a fast shutdown, to pid %d)",
						   (int)postmaster);
					kill(postmaster, SIGINT);
				} else if (!received_stop) {
					log_warning("the self-fence watch (pid %d) ended with status %d: started again",
						    (int)pid, supervise_exit_status(status));
					watcher = start_watch(watch);
				}
				continue;
			}
			if (pid != postmaster)
				continue;
			int exit_status = supervise_exit_status(status);
			if (received_stop)
				log_notice("PostgreSQL stopped %.3f s after %s%s (status %d)",
					   (double)(monotonic_ms() - stop_ms) / 1000, received_stop,
					   killed_ms ? ", killed" : "", exit_status);
			else if (demoting)
				log_notice("PostgreSQL (pid %d) shut down cleanly for a switchover, status %d", (int)postmaster,
					   exit_status);
			else
				log_notice("PostgreSQL (pid %d) ended with status %d", (int)postmaster, exit_status);
			if (watcher > 0) {
				kill(watcher, SIGKILL);
				while (waitpid(watcher, &status, 0) < 0 && errno == EINTR)
					;
			}
			end_leftovers();
			return exit_status;
		}

		siginfo_t info;
		int signo;
		if (received_stop && !killed_ms) {
			long long left = stop_ms + SUPERVISE_KILL_AFTER_MS - monotonic_ms();
			struct timespec timeout = {left > 0 ? left / 1000 : 0, left > 0 ? (left % 1000) * 1000000 : 0};
			signo = sigtimedwait(&signals, &info, &timeout);
			if (signo < 0 && errno == EAGAIN) {
				log_warning("PostgreSQL (pid %d) still runs %d ms after the immediate shutdown was asked: "
					    "SIGKILL",
					    (int)postmaster, SUPERVISE_KILL_AFTER_MS);
				kill(postmaster, SIGKILL);
				killed_ms = monotonic_ms();
				continue;
			}
		} else {
			signo = sigwaitinfo(&signals, &info);
		}
		if (signo < 0) {
			if (errno != EINTR)
				log_error("cannot wait for signals: %m");
			continue;
		}

		int postmaster_signal;
		switch (supervise_action_for(signo, &postmaster_signal)) {
		case SUPERVISE_STOP:
			if (!received_stop) {
				received_stop = signo == SIGTERM ? "SIGTERM" : signo == SIGINT ? "SIGINT" : "SIGQUIT";
				stop_ms = monotonic_ms();
				log_notice("received SIG%s: immediate shutdown of PostgreSQL (SIGQUIT to pid %d)",
					   sigabbrev_np(signo), (int)postmaster);
			}
			kill(postmaster, postmaster_signal);
			break;
		case SUPERVISE_FORWARD:
			log_info("SIG%s forwarded to PostgreSQL (pid %d)", sigabbrev_np(signo), (int)postmaster);
			kill(postmaster, postmaster_signal);
			break;
		case SUPERVISE_REAP:
		case SUPERVISE_IGNORE:
			break;
		}
	}
}
