/* supervise: pgha-entrypoint as the container's main process (PID 1): it runs postgres as its child, turns the container's stop signals into an immediate shutdown, reaps every child and ends with postgres's status. */
#ifndef PGHA_SUPERVISE_H
#define PGHA_SUPERVISE_H

#include <stdbool.h>
#include <sys/types.h>

/* After an immediate shutdown was asked, how long the postmaster has to exit before it
 * gets SIGKILL (its own backends get SIGKILL from it after 5 s in PostgreSQL 15): below
 * the pod's termination grace period, so that the container ends by itself. */
#define SUPERVISE_KILL_AFTER_MS 4000

/* What a signal received by the supervisor becomes. */
enum supervise_action {
	SUPERVISE_STOP,    /* an immediate shutdown: SIGQUIT to the postmaster (SIGKILL after SUPERVISE_KILL_AFTER_MS) */
	SUPERVISE_FORWARD, /* sent on to the postmaster as it is */
	SUPERVISE_REAP,    /* SIGCHLD: reap whatever child ended */
	SUPERVISE_IGNORE,
};

/* The signals the supervisor takes, 0-terminated: all of them are blocked and waited for. */
extern const int supervise_signals[];

/* Pure: what signal signo becomes, and which signal the postmaster then gets (0: none).
 * SIGTERM (what kubelet sends at a pod's deletion) and SIGINT become SIGQUIT: a smart
 * shutdown would let open sessions go on committing on a member that pghad fenced.
 * SIGQUIT stays SIGQUIT; SIGHUP, SIGUSR1 and SIGUSR2 are forwarded as they are. */
enum supervise_action supervise_action_for(int signo, int *postmaster_signal);
/* Pure: the container's exit status from the postmaster's wait status: its exit code, or
 * 128 + the signal that ended it (as shells and kubelet report it). */
int supervise_exit_status(int wait_status);

/* Starts argv (an absolute path in argv[0]) as the supervisor's child, in the supervisor's
 * process group, with its standard input, output and error, descriptors 3 and above
 * closed, an empty signal mask and default dispositions, and the environment of
 * proc_environment(extra_env). -1 (logged) when it cannot be run. The caller must have
 * blocked supervise_signals already, so that none is lost between the start and
 * supervise_run. */
pid_t supervise_start(const char *const *argv, const char *const *extra_env);

/* A process watching whether postgres must stop at once (fencewatch.h), started with
 * postgres: when it exits with stop_status the supervisor makes an immediate shutdown, as
 * on SIGTERM; with demote_status (0: none), a clean one (SIGINT: a fast shutdown, which
 * sends the standbys all WAL up to its shutdown checkpoint; a SIGTERM still makes it
 * immediate); when it ends otherwise it is started again. It is killed once the postmaster is gone. Being a
 * process of its own, its requests never hold the reaping. */
struct supervise_watch {
	pid_t (*start)(void *context); /* -1 when it cannot be started */
	void *context;
	int stop_status;
	int demote_status;
};

/* Pure: whether a watch that ended with wait_status asks for an immediate shutdown. */
bool supervise_watch_stops(const struct supervise_watch *watch, int wait_status);
/* Pure: whether it asks for a clean shutdown. */
bool supervise_watch_demotes(const struct supervise_watch *watch, int wait_status);

/* Runs until the postmaster exits: takes the signals as supervise_action_for says,
 * reaps every child (it is made a child subreaper, so orphans of the postmaster come to
 * it too, as they would to PID 1), and once the postmaster is gone kills and reaps what
 * is left of its children, so that nothing it started outlives it. Returns
 * supervise_exit_status of the postmaster. watch may be NULL (none). */
int supervise_run(pid_t postmaster, const struct supervise_watch *watch);

#endif
