/* proc: run programs with an argv (never a shell), a clean environment and a deadline, never blocking the loop. */
#ifndef PGHA_PROC_H
#define PGHA_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

/* How much of a program's output a result keeps: the end, where the error usually is. */
#define PROC_OUTPUT_LIMIT (64 * 1024)
/* How long a program has between SIGTERM and SIGKILL once its deadline has passed. */
#define PROC_KILL_GRACE_MS 2000

/* Every program pgha runs:
 * - is named by an absolute path in argv[0] and executed with posix_spawn (no shell, no PATH search);
 * - starts with stdin on /dev/null, no file descriptor other than 0-2, an empty signal mask and
 *   default signal dispositions (pghad blocks SIGTERM, SIGHUP, SIGCHLD for its loop; a postmaster
 *   inheriting that mask could not be stopped);
 * - gets the environment of proc_environment() below. */

/* A copy of environ for a child, then the entries of extra (NULL or NULL-terminated) applied in order.
 * Removed from environ:
 * - systemd's service protocol (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*, MAINPID, SYSTEMD_EXEC_PID,
 *   MEMORY_PRESSURE_*): a child speaking to pghad's notify socket can get pghad's unit killed or
 *   declared ready; it happened to Patroni when postgres used NOTIFY_SOCKET;
 * - JOURNAL_STREAM: a child's stderr is a pipe or a log file, never the journal stream, so it would lie;
 * - CREDENTIALS_DIRECTORY: pghad's secrets; children get what they need through files pgha writes;
 * - every variable starting with "PG": libpq and the PostgreSQL programs read dozens (PGHOST,
 *   PGPASSWORD, PGPASSFILE, PGSERVICE, PGDATA, PGOPTIONS...), and one left over from the operator's
 *   shell would silently redirect a pg_basebackup or change a password.
 * INVOCATION_ID stays: it only names the unit's run, and helps relate a child's logs to it.
 * An extra entry "NAME=VALUE" sets NAME (replacing any value); an entry "NAME" without '=' removes it.
 * Free the result with proc_environment_free. */
char **proc_environment(const char *const *extra);
void proc_environment_free(char **environment);

/* What happened to a program. */
struct proc_result {
	bool started;       /* false: it could not be run at all (the reason was logged) */
	int exit_status;    /* its exit code when it exited, -1 when a signal ended it or it never ran */
	int signal;         /* the signal that ended it, 0 when it exited */
	bool timed_out;     /* pgha ended it at its deadline (signal then says whether SIGTERM was enough) */
	char *output;       /* stdout and stderr interleaved as written, NUL-terminated, never NULL once set */
	size_t output_length; /* bytes in output (it may contain NULs of its own) */
	bool output_truncated; /* the program wrote more than PROC_OUTPUT_LIMIT: output is the last bytes */
	long long elapsed_ms;
};

/* true when the program ran, exited with status 0 and was not killed at its deadline. */
bool proc_result_succeeded(const struct proc_result *result);
/* One phrase for a log line or a why buffer: "exited with status 1", "was killed by SIGKILL",
 * "timed out after 5000 ms (killed by SIGTERM)", "could not be started". */
void proc_result_describe(const struct proc_result *result, char *buffer, size_t size);
/* Frees what proc_run put in a result (its output). Safe on a zeroed result and twice. */
void proc_result_free(struct proc_result *result);

/* Asynchronous run on an sd-event loop. */
struct proc_job;

/* Called once when the program has exited (or was killed at its deadline). result and its output
 * belong to the job and are valid only during the call; the job is freed when the call returns. */
typedef void (*proc_done_fn)(const struct proc_result *result, void *userdata);

/* Starts argv in directory (NULL: pghad's own) with the environment of proc_environment(extra_env)
 * and returns at once. The program is the leader of a new process group; at timeout_ms (which must
 * be positive: every program pgha runs has a deadline) the whole group gets SIGTERM, and SIGKILL
 * PROC_KILL_GRACE_MS later; a group whose leader was ended at its deadline gets SIGKILL when the
 * leader dies, so no helper of a timed-out program outlives it.
 * The job completes when the program exits, not when its output pipe closes: a daemon it started
 * (pg_ctl start without -l) may hold the pipe for ever; what it writes after that is not kept.
 * Blocks SIGCHLD in the calling thread if it is not already blocked, as sd_event_add_child requires;
 * pghad is single-threaded and takes SIGCHLD only through sd-event. SIGCHLD must not be ignored.
 * Returns NULL, having logged why, when the program cannot be run (relative path, missing program,
 * unusable directory): posix_spawn reports exec failures synchronously. */
struct proc_job *proc_start(sd_event *event, const char *const *argv, const char *const *extra_env,
			    const char *directory, int timeout_ms, proc_done_fn done, void *userdata);

/* The program's pid, which is also its process group's id (for log lines). */
pid_t proc_job_pid(const struct proc_job *job);

/* Sends SIGKILL to the job's whole process group now: a program pgha gave up on must not keep writing
 * into a data directory while pgha moves on. The callback is never called after proc_cancel, so
 * userdata may be freed right away; the job itself is released when the loop reaps the program.
 * NULL is ignored. The job must not have completed yet: its callback ending means the handle is gone. */
void proc_cancel(struct proc_job *job);

/* Synchronous run with the same rules and deadline, for command-line programs and tests: waits
 * with poll(), never sleeps past an event. Fills *result (free it with proc_result_free) and returns
 * proc_result_succeeded(result). Only "could not be started" is logged here: a non-zero exit is
 * sometimes an answer (pg_ctl status exits 3 when the server is stopped), so the caller, who knows
 * what the program was for, decides what to log; proc_result_describe helps. */
bool proc_run(const char *const *argv, const char *const *extra_env, const char *directory, int timeout_ms,
	      struct proc_result *result);

/* Starts a program that must outlive pghad (the postmaster): it runs in a new session (setsid), with
 * stdin on /dev/null and stdout and stderr appended to log_path (created with mode 0600), and is
 * started through an intermediate process that exits at once (a double fork), so that its parent is
 * init (or the nearest subreaper) and it never becomes a zombie of pghad: pghad follows it by pid
 * and by PostgreSQL's postmaster.pid, not by waiting for it. Returns its pid, or -1 with the reason in
 * why and nothing logged (the caller knows what the program was for). Waits only for the intermediate
 * process, which exits as soon as the exec is done.
 * Under systemd, a new session does not leave pghad's cgroup: the unit needs KillMode=process (mixed
 * and control-group end with SIGKILL to the whole cgroup) so that stopping pghad spares the postmaster. */
pid_t proc_spawn_detached(const char *const *argv, const char *const *extra_env, const char *directory,
			  const char *log_path, char *why, size_t why_size);

/* A process's state letter from /proc/PID/stat ('R', 'S', 'Z' for a zombie...), 0 when it is gone. */
char proc_state(pid_t pid);
/* The same and, from the same read, its start time (clock ticks after boot, field 22):
 * a pid and its start time name one process, as a pid reused later starts later. False
 * when it is gone; state is then 0 (or the letter alone when the line is cut short). */
bool proc_stat(pid_t pid, char *state, unsigned long long *start_time);
/* The parse of a /proc/PID/stat line (NULL: none) for proc_stat. */
bool proc_parse_stat(const char *stat, char *state, unsigned long long *start_time);

/* What a sleeping process waits in, from the kernel function /proc/PID/wchan names. */
enum proc_wait {
	PROC_WAIT_UNKNOWN,     /* running, gone, unreadable, or the kernel does not name it ("0") */
	PROC_WAIT_DESCRIPTORS, /* select, poll or epoll: waiting for its files or sockets */
	PROC_WAIT_OTHER,       /* elsewhere: a lock (futex), a read, a sleep, a signal... */
};
/* What wchan, the text of /proc/PID/wchan, names (pure). */
enum proc_wait proc_wait_of(const char *wchan);
/* What pid sleeps in now (proc_wait_of its wchan). */
enum proc_wait proc_wait(pid_t pid);

/* A process looked at again and again: its /proc/PID/stat and /proc/PID/wchan kept open.
 * They name that very process (reads fail with ESRCH once it is reaped, even when its
 * pid is reused since) and are read again from their start, one pread each, rather than
 * opened, read and closed each time: the path walk through /proc and its checks were
 * most of what looking at a process cost. {0} is a closed watch. */
struct proc_watch {
	bool open;
	pid_t pid;
	int stat_fd, wchan_fd;
};
/* Opens the watch of pid (closing whatever it watched); false (closed) when pid is gone or
 * its files cannot be opened (out of descriptors: the caller looks the usual way). */
bool proc_watch_open(struct proc_watch *watch, pid_t pid);
/* proc_stat of the watched process; false when it is gone (reaped) or cannot be read. */
bool proc_watch_stat(struct proc_watch *watch, char *state, unsigned long long *start_time);
/* proc_wait of the watched process. */
enum proc_wait proc_watch_wait(struct proc_watch *watch);
/* Closes it (a closed one too). */
void proc_watch_close(struct proc_watch *watch);

/* Whether SIGKILL waits on pid: it never runs its own code again, and ends as soon as it
 * is scheduled, which a process frozen (cgroup freezer) or stuck in the kernel may not be
 * for long. False when it is gone or cannot be read. */
bool proc_kill_pending(pid_t pid);

#endif
