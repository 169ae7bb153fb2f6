/* pgha-entrypoint: a member container's entrypoint on Kubernetes: prepares the data directory (initdb, pg_basebackup or pg_rewind), writes pgha's settings, then runs postgres as the child it supervises. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "bindir.h"
#include "datadir.h"
#include "entrypoint.h"
#include "exitcode.h"
#include "fencewatch.h"
#include "file.h"
#include "log.h"
#include "memory.h"
#include "names.h"
#include "pg.h"
#include "proc.h"
#include "supervise.h"

/* initdb takes seconds; pg_basebackup and pg_rewind of a big database take hours, but a stuck one must end. */
#define INITIALIZE_TIMEOUT_MS (10 * 60 * 1000)
#define COPY_TIMEOUT_MS (6 * 60 * 60 * 1000)
/* One round of asking every host of PGHA_PRIMARY_HOST whether it is the primary. */
#define PROBE_TIMEOUT_MS 5000
/* pg_controldata, after PostgreSQL exited */
#define CONTROLDATA_TIMEOUT_MS 10000
/* Where unix_socket_directories points when PGHA_SOCKET_DIR is unset, if it can. */
#define DEFAULT_SOCKET_DIR "/var/run/postgresql"
/* How much of a failed program's output is logged: its last lines, where the error is. */
#define FAILED_OUTPUT_LINES 30
/* The longest password accepted from a secret file. */
#define PASSWORD_MAX 1024
/* How long an ended postmaster of an earlier start may stay unreaped before it counts as running. */
#define ZOMBIE_WAIT_MS 10000

/* The signals that ask pgha-entrypoint to stop before postgres runs (then postgres handles them). */
static const int stop_signals[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP};
#define STOP_SIGNAL_COUNT (sizeof stop_signals / sizeof stop_signals[0])

/* Everything the steps share. */
struct entrypoint {
	struct entrypoint_environment environment;
	char bindir[512];
	char *passfile;                       /* PGDATA.pgpass */
	char *passfile_variable;              /* "PGPASSFILE=..." for the programs */
	char *superuser_password_file;        /* read by initdb itself (--pwfile) */
	char superuser_password[PASSWORD_MAX + 1];   /* until written into the password file */
	char replication_password[PASSWORD_MAX + 1];
	sd_event *event;
	int stop_signal;                      /* the stop signal received, 0 until then */
	char failure[512];                    /* how the last program that failed ended, and its last line */
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: pgha-entrypoint [OPTION]\n"
		     "Prepare a pgha member's data directory from the environment, then run postgres.\n"
		     "\n"
		     "Options:\n"
		     "  -h, --help     print this help and exit\n"
		     "  -V, --version  print the version and exit\n"
		     "\n"
		     "Environment:\n");
	for (size_t i = 0; i < entrypoint_variable_count; i++) {
		const struct entrypoint_variable *variable = &entrypoint_variables[i];
		fprintf(out, "  %-24s %s", variable->name, variable->doc);
		if (variable->required)
			fprintf(out, " (required)");
		else if (variable->fallback)
			fprintf(out, " (default %s)", variable->fallback);
		fprintf(out, "\n");
	}
	fprintf(out, "See pgha-entrypoint(1).\n");
}

static const char *lookup_environment(const char *name, void *context)
{
	(void)context;
	return getenv(name);
}

/* Logs each line of text (a program's output) at level, prefixed with the program's name. */
static void log_lines(enum log_level level, const char *program, const char *text, int last_lines)
{
	const char *start = text;

	if (last_lines > 0) {
		int lines = 0;
		for (const char *c = text + strlen(text); c > text; c--)
			if (c[-1] == '\n' && c[0] && ++lines >= last_lines) {
				start = c;
				break;
			}
	}
	size_t program_length = strlen(program);
	for (const char *line = start; *line;) {
		size_t length = strcspn(line, "\n");
		/* PostgreSQL's programs name themselves on most lines, not on all */
		bool named = strncmp(line, program, program_length) == 0 && line[program_length] == ':';
		if (length)
			log_message(level, NULL, NULL, "%s%s%.*s", named ? "" : program, named ? "" : ": ", (int)length,
				    line);
		line += length + (line[length] == '\n');
	}
}

static long long now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- stop signals, and the loop that waits for programs and timers ---- */

static int on_stop_signal(sd_event_source *source, const struct signalfd_siginfo *info, void *userdata)
{
	struct entrypoint *entrypoint = userdata;
	(void)source;

	if (!entrypoint->stop_signal)
		log_notice("received SIG%s before PostgreSQL started: stopping", sigabbrev_np((int)info->ssi_signo));
	entrypoint->stop_signal = (int)info->ssi_signo;
	return 0;
}

/* The stop signals are taken from the loop, so that a pod deleted while it waits or copies
 * stops at once, and the program it runs (in a process group of its own) with it. */
static bool watch_stop_signals(struct entrypoint *entrypoint)
{
	sigset_t signals;
	int result = sd_event_new(&entrypoint->event);

	sigemptyset(&signals);
	for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++)
		sigaddset(&signals, stop_signals[i]);
	if (result >= 0 && sigprocmask(SIG_BLOCK, &signals, NULL) < 0)
		result = -errno;
	for (size_t i = 0; i < STOP_SIGNAL_COUNT && result >= 0; i++)
		result = sd_event_add_signal(entrypoint->event, NULL, stop_signals[i], on_stop_signal, entrypoint);
	if (result < 0) {
		log_error("cannot set up the event loop: %s", strerror(-result));
		return false;
	}
	return true;
}

/* Runs the loop until *done or a stop signal; false when stopped (or the loop failed). */
static bool run_until(struct entrypoint *entrypoint, const bool *done)
{
	while (!*done && !entrypoint->stop_signal) {
		int result = sd_event_run(entrypoint->event, UINT64_MAX);
		if (result < 0) {
			log_error("the event loop failed: %s", strerror(-result));
			return false;
		}
	}
	return !entrypoint->stop_signal;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	(void)source;
	(void)usec;
	*(bool *)userdata = true;
	return 0;
}

/* Sleeps delay_ms unless a stop signal comes first (false then). */
static bool sleep_ms(struct entrypoint *entrypoint, int delay_ms)
{
	sd_event_source *timer = NULL;
	bool done = false;
	int result = sd_event_add_time_relative(entrypoint->event, &timer, CLOCK_MONOTONIC, (uint64_t)delay_ms * 1000,
						0, on_timer, &done);
	if (result < 0) {
		log_error("cannot arm a timer: %s", strerror(-result));
		return false;
	}
	bool slept = run_until(entrypoint, &done);
	sd_event_source_disable_unref(timer);
	return slept;
}

struct program_run {
	bool done;
	bool succeeded;
	char *output;
	char description[128];
};

static void on_program_done(const struct proc_result *result, void *userdata)
{
	struct program_run *run = userdata;

	run->done = true;
	run->succeeded = proc_result_succeeded(result);
	run->output = xstrdup(result->output);
	proc_result_describe(result, run->description, sizeof run->description);
}

/* Runs one of PostgreSQL's programs with PGPASSFILE set and logs how it went; on a stop
 * signal kills its process group. name names it in log lines. */
static bool run_program(struct entrypoint *entrypoint, const char *name, const char *const *argv, int timeout_ms)
{
	const char *const extra_env[] = {entrypoint->passfile_variable, "LC_MESSAGES=C", NULL};
	struct program_run run = {0};
	long long started = now_ms();

	log_info("running %s", name);
	struct proc_job *job = proc_start(entrypoint->event, argv, extra_env, NULL, timeout_ms, on_program_done, &run);
	if (!job) {
		snprintf(entrypoint->failure, sizeof entrypoint->failure, "%s could not be run", name);
		return false;
	}
	if (!run_until(entrypoint, &run.done)) {
		if (!run.done)
			proc_cancel(job);
		log_error("%s was stopped before it finished", name);
		free(run.output);
		return false;
	}
	if (run.succeeded) {
		log_lines(LOG_LEVEL_INFO, name, run.output, 0);
		log_info("%s finished in %.1f s", name, (double)(now_ms() - started) / 1000);
	} else {
		char last[256];
		log_lines(LOG_LEVEL_ERROR, name, run.output, FAILED_OUTPUT_LINES);
		log_error("%s %s", name, run.description);
		entrypoint_last_line(run.output, last, sizeof last);
		snprintf(entrypoint->failure, sizeof entrypoint->failure, "%s %s%s%s", name, run.description,
			 last[0] ? ": " : "", last);
	}
	free(run.output);
	return run.succeeded;
}

/* ---- secrets ---- */

/* Reads PGHA_SECRETS_DIR/name into password; false (logged) when it cannot be used. */
static bool read_secret(const struct entrypoint *entrypoint, const char *name, char *password, size_t size)
{
	char why[512], problem[128];
	size_t length;
	char *path = xasprintf("%s/%s", entrypoint->environment.secrets_dir, name);
	char *content = file_read(path, PASSWORD_MAX + 2, &length, why, sizeof why);
	bool read = content && entrypoint_password(content, length, password, size, problem, sizeof problem);

	/* phrased so that no "password:" reaches the log, which would be scrubbed as a secret */
	if (!content)
		log_error("cannot read the secret %s in %s (%s)", name, entrypoint->environment.secrets_dir,
			  strerror(errno));
	else if (!read)
		log_error("the secret %s in %s is not usable (%s)", name, entrypoint->environment.secrets_dir, problem);
	if (content)
		explicit_bzero(content, length);
	free(content);
	free(path);
	return read;
}

/* Both roles' passwords, checked before anything is done. */
static bool read_secrets(struct entrypoint *entrypoint)
{
	entrypoint->superuser_password_file =
		xasprintf("%s/%s", entrypoint->environment.secrets_dir, ENTRYPOINT_SUPERUSER_SECRET);
	return read_secret(entrypoint, ENTRYPOINT_SUPERUSER_SECRET, entrypoint->superuser_password,
			   sizeof entrypoint->superuser_password) &&
	       read_secret(entrypoint, ENTRYPOINT_REPLICATION_SECRET, entrypoint->replication_password,
			   sizeof entrypoint->replication_password);
}

static void forget_secrets(struct entrypoint *entrypoint)
{
	explicit_bzero(entrypoint->superuser_password, sizeof entrypoint->superuser_password);
	explicit_bzero(entrypoint->replication_password, sizeof entrypoint->replication_password);
}

/* PGDATA.pgpass, mode 0600, outside the data directory (pg_basebackup and pg_rewind would
 * copy it around), with both roles' passwords: libpq finds them there through PGPASSFILE,
 * in pg_basebackup, pg_rewind, the walreceiver and the waits here. */
static bool write_passfile(struct entrypoint *entrypoint)
{
	char why[512];
	char *content = NULL;

	entrypoint->passfile = xasprintf("%s.pgpass", entrypoint->environment.data);
	entrypoint->passfile_variable = xasprintf("PGPASSFILE=%s", entrypoint->passfile);
	pg_passfile_append(&content, REPLICATION_ROLE, entrypoint->replication_password);
	pg_passfile_append(&content, ENTRYPOINT_SUPERUSER, entrypoint->superuser_password);
	bool written = file_replace(entrypoint->passfile, content, strlen(content), 0600, why, sizeof why);
	if (!written)
		log_error("cannot write the password file: %s", why);
	explicit_bzero(content, strlen(content));
	free(content);
	forget_secrets(entrypoint);
	return written;
}

/* ---- waiting for the primary ---- */

/* Asks every host of PGHA_PRIMARY_HOST, as user, whether it is a primary ready for this
 * member (its slot exists); until one is, retries with a growing delay, logging why, for at
 * most PGHA_WAIT_TIMEOUT seconds. Returns the host's index, -1 when none came (logged). */
static int wait_for_primary(struct entrypoint *entrypoint, const char *user)
{
	const struct entrypoint_environment *environment = &entrypoint->environment;
	const char *parameters[] = {environment->slot};
	const char *sql = "SELECT pg_is_in_recovery(),"
			  " $1::text IS NULL OR EXISTS (SELECT FROM pg_replication_slots WHERE slot_name::text = $1)";
	size_t count = environment->primary_host_count;
	struct pg_request *requests = xcalloc(count, sizeof *requests);
	long long started = now_ms(), timeout_ms = (long long)environment->wait_timeout_s * 1000;
	int delay_ms = ENTRYPOINT_FIRST_DELAY_MS, found = -1;

	for (int attempt = 1; found < 0; attempt++) {
		char reasons[2048] = "";
		size_t used = 0;
		for (size_t i = 0; i < count; i++)
			requests[i] = (struct pg_request){
				.target = {.host = environment->primary_hosts[i], .port = environment->primary_port,
					   .user = user, .dbname = "postgres", .passfile = entrypoint->passfile},
				.sql = sql, .parameter_count = 1, .parameters = parameters};
		pg_execute_all(requests, count, PROBE_TIMEOUT_MS);
		for (size_t i = 0; i < count; i++) {
			struct pg_request *request = &requests[i];
			const char *problem = NULL;
			char no_slot[128];
			if (!request->succeeded || PQresultStatus(request->result) != PGRES_TUPLES_OK)
				problem = request->error[0] ? request->error : PQresultErrorMessage(request->result);
			else if (strcmp(PQgetvalue(request->result, 0, 0), "f") != 0)
				problem = "a standby, not the primary";
			else if (strcmp(PQgetvalue(request->result, 0, 1), "t") != 0) {
				snprintf(no_slot, sizeof no_slot, "the primary, but without replication slot %s yet",
					 environment->slot);
				problem = no_slot;
			}
			else if (found < 0)
				found = (int)i;
			if (problem && used < sizeof reasons)
				used += (size_t)snprintf(reasons + used, sizeof reasons - used, "%s%s:%d: %s",
							 used ? "; " : "", environment->primary_hosts[i],
							 environment->primary_port, problem);
			pg_request_clear(request);
		}
		if (found >= 0)
			break;
		/* libpq's messages end with a line break */
		for (char *c = reasons; *c; c++)
			if (*c == '\n')
				*c = ' ';
		long long waited = now_ms() - started;
		if (waited >= timeout_ms) {
			log_error("no primary ready after %d s (PGHA_WAIT_TIMEOUT), %d attempts: %s",
				  environment->wait_timeout_s, attempt, reasons);
			break;
		}
		int pause_ms = delay_ms < timeout_ms - waited ? delay_ms : (int)(timeout_ms - waited);
		log_info("waiting for the primary (attempt %d, %.0f s of %d s): %s; next attempt in %.1f s", attempt,
			 (double)waited / 1000, environment->wait_timeout_s, reasons, (double)pause_ms / 1000);
		if (!sleep_ms(entrypoint, pause_ms))
			break;
		delay_ms = entrypoint_next_delay_ms(delay_ms);
	}
	if (found >= 0)
		log_info("the primary is %s:%d", environment->primary_hosts[found], environment->primary_port);
	free(requests);
	return found;
}

/* ---- the steps ---- */

/* PGDATA's sibling for a copy in progress; one left by an earlier attempt that was killed is
 * incomplete, and is moved aside rather than deleted (pgha deletes no data). */
static char *work_directory(const struct entrypoint *entrypoint, const char *kind)
{
	char *path = xasprintf("%s.%s", entrypoint->environment.data, kind);

	if (access(path, F_OK) == 0) {
		char *aside = datadir_aside_name(path, "failed");
		if (rename(path, aside) == 0)
			log_warning("moved %s, left by an earlier attempt that did not finish, to %s: remove it once "
				    "you have no use for it",
				    path, aside);
		else
			log_warning("cannot move %s, left by an earlier attempt, aside: %m", path);
		free(aside);
	}
	return path;
}

/* Renames the finished copy to PGDATA (an empty PGDATA is replaced) and makes that durable. */
static bool move_into_place(const struct entrypoint *entrypoint, const char *copy)
{
	const char *data = entrypoint->environment.data;
	char why[512];

	if (rename(copy, data) < 0) {
		log_error("cannot rename %s to %s: %m%s", copy, data,
			  errno == EBUSY || errno == EXDEV ? " (PGDATA must be a subdirectory of the volume, not its "
							     "mount point)"
							   : "");
		return false;
	}
	if (!file_sync_parent(data, why, sizeof why))
		log_warning("%s", why);
	return true;
}

static bool initialize(struct entrypoint *entrypoint)
{
	char why[512];
	char *initdb = bindir_program(entrypoint->bindir, "initdb");
	char *copy = work_directory(entrypoint, "initializing");
	char *pwfile = xasprintf("--pwfile=%s", entrypoint->superuser_password_file);
	const char *const argv[] = {initdb, "--pgdata", copy, "--username", ENTRYPOINT_SUPERUSER, pwfile,
				    "--auth-local=peer", "--auth-host=scram-sha-256", "--data-checksums",
				    "--encoding=UTF8", entrypoint->environment.initdb_nosync ? "--nosync" : NULL, NULL};
	bool done = run_program(entrypoint, "initdb", argv, INITIALIZE_TIMEOUT_MS);

	if (done && !datadir_include_settings(copy, "pgha-entrypoint", why, sizeof why)) {
		log_error("%s", why);
		done = false;
	}
	done = done && move_into_place(entrypoint, copy);
	free(initdb);
	free(copy);
	free(pwfile);
	return done;
}

static bool clone(struct entrypoint *entrypoint, const char *host)
{
	const struct entrypoint_environment *environment = &entrypoint->environment;
	char port[16], why[512];
	char *conninfo = NULL;
	char *basebackup = bindir_program(entrypoint->bindir, "pg_basebackup");
	char *copy = work_directory(entrypoint, "cloning");

	snprintf(port, sizeof port, "%d", environment->primary_port);
	pg_conninfo_append(&conninfo, "host", host);
	pg_conninfo_append(&conninfo, "port", port);
	pg_conninfo_append(&conninfo, "user", REPLICATION_ROLE);
	pg_conninfo_append(&conninfo, "passfile", entrypoint->passfile);
	/* not the member's own name, which synchronous_standby_names lists (see names.h) */
	char application[NAMES_BUFFER_SIZE + 16];
	names_clone_application(application, sizeof application, environment->member);
	pg_conninfo_append(&conninfo, "application_name", application);
	pg_conninfo_append(&conninfo, "connect_timeout", "10");
	const char *argv[] = {basebackup, "--pgdata", copy, "--dbname", conninfo, "--wal-method=stream",
			      "--checkpoint=fast", "--no-password", NULL, NULL, NULL};
	if (environment->slot) {
		argv[8] = "--slot";
		argv[9] = environment->slot;
	}
	bool done = run_program(entrypoint, "pg_basebackup", argv, COPY_TIMEOUT_MS);
	/* before the copy is PGDATA: a copy of the primary must never start as a second primary */
	if (done && !datadir_write_file(copy, "standby.signal", "", why, sizeof why)) {
		log_error("%s", why);
		done = false;
	}
	done = done && move_into_place(entrypoint, copy);
	free(conninfo);
	free(basebackup);
	free(copy);
	return done;
}

static bool rewind_from(struct entrypoint *entrypoint, const char *host)
{
	const struct entrypoint_environment *environment = &entrypoint->environment;
	char port[16];
	char *conninfo = NULL;
	char *rewind = bindir_program(entrypoint->bindir, "pg_rewind");

	snprintf(port, sizeof port, "%d", environment->primary_port);
	pg_conninfo_append(&conninfo, "host", host);
	pg_conninfo_append(&conninfo, "port", port);
	pg_conninfo_append(&conninfo, "user", ENTRYPOINT_SUPERUSER);
	pg_conninfo_append(&conninfo, "dbname", "postgres");
	pg_conninfo_append(&conninfo, "passfile", entrypoint->passfile);
	pg_conninfo_append(&conninfo, "connect_timeout", "10");
	/* a data directory not shut down cleanly (a pod's deletion is an immediate shutdown)
	 * is first recovered by pg_rewind itself, in single-user mode, which refuses standby
	 * mode: standby.signal goes now and is written again once rewound (write_settings) */
	char *signal_file = xasprintf("%s/standby.signal", environment->data);
	bool removed = unlink(signal_file) == 0;
	if (removed)
		log_info("standby.signal removed for pg_rewind, which may have to recover the data directory first; "
			 "written again once rewound");
	else if (errno != ENOENT)
		log_warning("cannot remove %s: %m", signal_file);
	free(signal_file);
	const char *const argv[] = {rewind, "--target-pgdata", environment->data, "--source-server", conninfo, NULL};
	bool done = run_program(entrypoint, "pg_rewind", argv, COPY_TIMEOUT_MS);
	char why[512];
	/* a directory pg_rewind did not take is kept as it was, a standby's */
	if (!done && removed && !datadir_write_file(environment->data, "standby.signal", "", why, sizeof why))
		log_warning("%s", why);
	free(conninfo);
	free(rewind);
	return done;
}

/* pg_rewind failed, its target may be half rewound: PGDATA is moved aside within the
 * volume (kept, never deleted) and the primary copied again. aside gets where it went. */
static bool move_aside_and_clone(struct entrypoint *entrypoint, const char *host, char *aside, size_t aside_size)
{
	const char *data = entrypoint->environment.data;
	char why[512];
	char *moved = datadir_aside_name(data, "unusable");
	bool done = rename(data, moved) == 0;

	if (!done)
		log_error("pg_rewind failed and PGDATA %s cannot be moved aside to %s: %m; leaving it as it is", data,
			  moved);
	else {
		snprintf(aside, aside_size, "%s", moved);
		log_warning("pg_rewind failed: PGDATA %s is kept as %s (never deleted: remove it once you have no use "
			    "for it); copying the primary (%s) again",
			    data, moved, host);
		if (!file_sync_parent(data, why, sizeof why))
			log_warning("%s", why);
		done = clone(entrypoint, host);
	}
	free(moved);
	return done;
}

/* PGDATA.rejoin, what pghad reads after a rewind it asked for (PGHA_REWIND=1). */
static char *rejoin_path(const struct entrypoint *entrypoint)
{
	return xasprintf("%s" ENTRYPOINT_REJOIN_SUFFIX, entrypoint->environment.data);
}

/* An account of an earlier rejoin must not pass for this one's. */
static void forget_rejoin(const struct entrypoint *entrypoint)
{
	char *path = rejoin_path(entrypoint);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warning("cannot remove %s, left by an earlier rejoin: %m", path);
	free(path);
}

/* Without it pghad says only that the member answers again: a warning, not a failure. */
static void tell_rejoin(const struct entrypoint *entrypoint, enum entrypoint_rejoin outcome, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static void tell_rejoin(const struct entrypoint *entrypoint, enum entrypoint_rejoin outcome, const char *format, ...)
{
	char sentence[1024], why[512];
	va_list arguments;

	va_start(arguments, format);
	vsnprintf(sentence, sizeof sentence, format, arguments);
	va_end(arguments);
	char *path = rejoin_path(entrypoint);
	char *text = entrypoint_render_rejoin(outcome, sentence);
	if (!file_replace(path, text, strlen(text), 0600, why, sizeof why))
		log_warning("cannot tell pghad what this rejoin did: %s", why);
	free(text);
	free(path);
}

/* unix_socket_directories: PGHA_SOCKET_DIR, else the usual directory if this user may make
 * sockets there, else none (TCP only). */
static const char *socket_directory(const struct entrypoint *entrypoint)
{
	if (entrypoint->environment.socket_dir)
		return entrypoint->environment.socket_dir;
	if (access(DEFAULT_SOCKET_DIR, W_OK | X_OK) == 0)
		return DEFAULT_SOCKET_DIR;
	log_notice("%s is not writable and PGHA_SOCKET_DIR is not set: no Unix socket, TCP only", DEFAULT_SOCKET_DIR);
	return "";
}

/* The files pgha-entrypoint owns, rewritten at every start; and for a standby, whom it
 * follows: the primary it reached, or every host pghad named. */
static bool write_settings(struct entrypoint *entrypoint, const struct entrypoint_decision *decision,
			   const char *host)
{
	const struct entrypoint_environment *environment = &entrypoint->environment;
	const char *data = environment->data;
	char why[512];
	char *settings = entrypoint_render_settings(environment, socket_directory(entrypoint));
	bool written = datadir_include_settings(data, "pgha-entrypoint", why, sizeof why) &&
		       datadir_write_file(data, "pgha.conf", settings, why, sizeof why) &&
		       datadir_write_file(data, "pg_hba.conf", entrypoint_hba(), why, sizeof why);

	if (written && decision->follow) {
		char *conninfo = entrypoint_primary_conninfo(environment, host, entrypoint->passfile);
		char *standby = entrypoint_render_standby(environment, conninfo);
		written = datadir_write_file(data, "standby.signal", "", why, sizeof why) &&
			  datadir_write_file(data, "pgha-standby.conf", standby, why, sizeof why);
		free(conninfo);
		free(standby);
	} else if (written) {
		/* a primary keeps what it followed as a standby (pghad promotes it); a new one gets an
		 * empty file, so that PostgreSQL does not report a missing include at each start */
		char *path = xasprintf("%s/pgha-standby.conf", data);
		if (access(path, F_OK) != 0)
			written = datadir_write_file(data, "pgha-standby.conf",
						     "# Written by pgha-entrypoint: this member follows no primary.\n", why,
						     sizeof why);
		free(path);
	}
	if (!written)
		log_error("%s", why);
	free(settings);
	return written;
}

/* PostgreSQL has exited: what pg_control says of it goes into the container's
 * termination message (entrypoint.h), so that pghad, which cannot read the volume, knows
 * whether it shut down cleanly and at which checkpoint (a switchover waits for its target
 * to have that checkpoint). Bounded; nothing is written when pg_control cannot be read. */
static void tell_control(const struct entrypoint *entrypoint)
{
	const char *path = entrypoint->environment.termination_path;
	char *controldata = bindir_program(entrypoint->bindir, "pg_controldata");
	const char *const argv[] = {controldata, "-D", entrypoint->environment.data, NULL};
	const char *const c_locale[] = {"LC_ALL=C", NULL};
	struct proc_result result = {0};
	struct entrypoint_control control;

	bool explicit = path && path[0];
	path = explicit ? path : ENTRYPOINT_TERMINATION_PATH;
	bool read = proc_run(argv, c_locale, NULL, CONTROLDATA_TIMEOUT_MS, &result) && proc_result_succeeded(&result) &&
		    entrypoint_parse_controldata(result.output, &control);
	proc_result_free(&result);
	free(controldata);
	if (!read) {
		log_warning("cannot read pg_control of %s after PostgreSQL ended: no termination message",
			    entrypoint->environment.data);
		return;
	}
	char *message = entrypoint_render_control(&control);
	/* kubelet makes the default path (a file it mounts); outside a container it is absent
	 * and nothing is created in /dev */
	int descriptor = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | (explicit ? O_CREAT : 0), 0644);
	size_t length = strlen(message);
	if (descriptor < 0 && errno == ENOENT && !explicit)
		log_info("no %s (not in a container): no termination message", path);
	else if (descriptor < 0 || write(descriptor, message, length) != (ssize_t)length) {
		log_warning("cannot write the termination message to %s: %m", path);
	} else {
		message[strcspn(message, "\n")] = '\0';
		log_info("termination message: %s", message);
	}
	if (descriptor >= 0)
		close(descriptor);
	free(message);
}

static pid_t start_fencewatch(void *context)
{
	return fencewatch_start(context);
}

/* Runs postgres as a child and supervises it (supervise.h): the container's main process
 * stays pgha-entrypoint, which turns the container's SIGTERM into an immediate shutdown
 * (a fenced member must stop at once, not after its sessions end) and ends with
 * postgres's status. PGPASSFILE is for its walreceiver. */
static int run_postgres(struct entrypoint *entrypoint)
{
	const char *const extra_env[] = {entrypoint->passfile_variable, NULL};
	char *postgres = bindir_program(entrypoint->bindir, "postgres");
	const struct entrypoint_environment *environment = &entrypoint->environment;
	const char *const argv[] = {postgres, "-D", environment->data, NULL};
	sigset_t signals;
	/* the member's own PostgreSQL over TCP with the superuser's password (peer
	 * authentication on the socket wants an operating system user of that name) */
	char local_host[256];
	snprintf(local_host, sizeof local_host, "%.*s", (int)strcspn(environment->listen, ", "), environment->listen);
	if (strcmp(local_host, "*") == 0 || !local_host[0])
		snprintf(local_host, sizeof local_host, "127.0.0.1");
	struct fencewatch_config fence = {
		.cluster = environment->cluster, .member = environment->member, .lease = environment->lease,
		.pod_name = environment->pod_name, .pod_uid = environment->pod_uid,
		.member_index = environment->member_index, .isolation_ms = environment->isolation_timeout_s * 1000,
		.local = {.host = local_host, .port = environment->port, .user = ENTRYPOINT_SUPERUSER,
			  .dbname = "postgres", .passfile = entrypoint->passfile}};
	struct supervise_watch watch = {.start = start_fencewatch, .context = &fence,
					.stop_status = FENCEWATCH_EXIT_STOP, .demote_status = FENCEWATCH_EXIT_DEMOTE};

	/* PostgreSQL refuses a data directory open to more than u=rwx,g=rx; a kubelet that
	 * applies the pod's fsGroup to the volume at each mount makes it g+rwx (setgid) */
	struct stat data;
	if (stat(entrypoint->environment.data, &data) == 0 && (data.st_mode & 07777 & ~(mode_t)0750)) {
		log_notice("%s has mode %04o (the volume's fsGroup applied by the kubelet): setting 0700",
			   entrypoint->environment.data, (unsigned)(data.st_mode & 07777));
		if (chmod(entrypoint->environment.data, 0700) != 0)
			log_warning("cannot chmod %s: %m", entrypoint->environment.data);
	}

	/* blocked before the start, so that none is lost before the wait: a stop signal
	 * taken by the loop before this point was already acted on, one that comes now
	 * stays pending until supervise_run takes it */
	sigemptyset(&signals);
	for (const int *signo = supervise_signals; *signo; signo++)
		sigaddset(&signals, *signo);
	sigprocmask(SIG_BLOCK, &signals, NULL);
	entrypoint->event = sd_event_unref(entrypoint->event);
	pid_t pid = supervise_start(argv, extra_env);
	if (pid >= 0)
		log_info("PostgreSQL started (pid %d): %s -D %s", (int)pid, postgres, entrypoint->environment.data);
	free(postgres);
	if (pid < 0)
		return PGHA_EXIT_POSTGRESQL;
	int status = supervise_run(pid, environment->lease ? &watch : NULL);
	tell_control(entrypoint);
	return status;
}

static int stopped_status(const struct entrypoint *entrypoint)
{
	return entrypoint->stop_signal ? 128 + entrypoint->stop_signal : PGHA_EXIT_POSTGRESQL;
}

/* The postmaster running on data, 0 when none. One that was killed with the container
 * before it (its parent gone, it is reparented to the nearest subreaper or init) may
 * still be a zombie: postgres would refuse to start while its pid exists, so its
 * reaping is awaited for a while. */
static pid_t postmaster_on(const char *data)
{
	bool exited;
	pid_t pid = datadir_postmaster(data, &exited, NULL);

	for (long long deadline = now_ms() + ZOMBIE_WAIT_MS; pid && exited && now_ms() < deadline;) {
		struct timespec pause = {0, 20 * 1000000L};
		nanosleep(&pause, NULL);
		pid = datadir_postmaster(data, &exited, NULL);
	}
	if (pid && exited)
		log_warning("the postmaster (pid %d) of an earlier start has ended but is not reaped yet", (int)pid);
	return pid;
}

static int run(struct entrypoint *entrypoint)
{
	struct entrypoint_environment *environment = &entrypoint->environment;
	char errors[4096], why[512];
	struct entrypoint_found found = {0};
	struct entrypoint_decision decision;

	if (!entrypoint_read_environment(lookup_environment, NULL, environment, errors, sizeof errors)) {
		log_lines(LOG_LEVEL_ERROR, "environment", errors, 0);
		return PGHA_EXIT_CONFIG;
	}
	log_set_level(environment->log_level);
	if (!read_secrets(entrypoint))
		return PGHA_EXIT_CONFIG;
	if (!bindir_find(environment->bindir, "PGHA_BINDIR", entrypoint->bindir, sizeof entrypoint->bindir, why,
			 sizeof why)) {
		log_error("%s", why);
		return PGHA_EXIT_POSTGRESQL;
	}
	found.server_major_version = bindir_major_version(entrypoint->bindir);
	datadir_inspect(environment->data, &found.data);
	if (found.data.kind == DATADIR_CLUSTER)
		found.postmaster = postmaster_on(environment->data);
	entrypoint_decide(environment, &found, &decision);
	log_message(decision.action == ENTRYPOINT_REFUSE ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO, environment->cluster,
		    environment->member, "member %s (PGHA_ROLE=%s, PostgreSQL %d in %s): %s", environment->member,
		    environment->role == ENTRYPOINT_PRIMARY ? "primary" : "standby", found.server_major_version,
		    entrypoint->bindir, decision.reason);
	if (decision.action == ENTRYPOINT_REFUSE)
		return decision.exit_status;
	if (!write_passfile(entrypoint))
		return PGHA_EXIT_FAILURE;
	if (!watch_stop_signals(entrypoint))
		return PGHA_EXIT_INTERNAL;
	if (environment->rewind)
		forget_rejoin(entrypoint);

	int primary = -1;
	char aside[PATH_MAX] = "";
	switch (decision.action) {
	case ENTRYPOINT_INITIALIZE:
		if (!initialize(entrypoint))
			return stopped_status(entrypoint);
		break;
	case ENTRYPOINT_CLONE:
		primary = wait_for_primary(entrypoint, REPLICATION_ROLE);
		if (primary < 0 || !clone(entrypoint, environment->primary_hosts[primary]))
			return stopped_status(entrypoint);
		if (environment->rewind)
			tell_rejoin(entrypoint, ENTRYPOINT_REJOIN_CLONED,
				    "its volume held no data directory to rewind: it was copied from the primary at %s:%d",
				    environment->primary_hosts[primary], environment->primary_port);
		break;
	case ENTRYPOINT_REWIND:
		primary = wait_for_primary(entrypoint, ENTRYPOINT_SUPERUSER);
		if (primary < 0)
			return stopped_status(entrypoint);
		if (rewind_from(entrypoint, environment->primary_hosts[primary])) {
			if (environment->rewind)
				tell_rejoin(entrypoint, ENTRYPOINT_REJOIN_REWOUND, "rewound with pg_rewind from the primary at %s:%d",
					    environment->primary_hosts[primary], environment->primary_port);
			break;
		}
		/* stopped (the pod deleted meanwhile): the next pod rewinds it again */
		if (entrypoint->stop_signal ||
		    !move_aside_and_clone(entrypoint, environment->primary_hosts[primary], aside, sizeof aside))
			return stopped_status(entrypoint);
		if (environment->rewind)
			tell_rejoin(entrypoint, ENTRYPOINT_REJOIN_MOVED_ASIDE,
				    "its data directory is kept as %s in its volume and it was copied again from the primary "
				    "at %s:%d, since %s",
				    aside, environment->primary_hosts[primary], environment->primary_port, entrypoint->failure);
		break;
	case ENTRYPOINT_START:
	case ENTRYPOINT_REFUSE:
		break;
	}
	if (!write_settings(entrypoint, &decision, primary >= 0 ? environment->primary_hosts[primary] : NULL))
		return PGHA_EXIT_FAILURE;
	if (entrypoint->stop_signal)
		return stopped_status(entrypoint);
	return run_postgres(entrypoint);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct entrypoint entrypoint = {0};
	int option;

	log_init("pgha-entrypoint");
	while ((option = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		switch (option) {
		case 'h':
			usage(stdout);
			return PGHA_EXIT_OK;
		case 'V':
			printf("pgha-entrypoint (pgha) %s\n", PACKAGE_VERSION);
			return PGHA_EXIT_OK;
		default:
			usage(stderr);
			return PGHA_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pgha-entrypoint: unexpected argument \"%s\": everything comes from the environment\n",
			argv[optind]);
		usage(stderr);
		return PGHA_EXIT_USAGE;
	}
	if (geteuid() == 0) {
		log_error("pgha-entrypoint must not run as root: PostgreSQL refuses to; run the container as the "
			  "postgres user (securityContext.runAsUser)");
		return PGHA_EXIT_PERMISSION;
	}
	int status = run(&entrypoint);
	forget_secrets(&entrypoint);
	sd_event_unref(entrypoint.event);
	entrypoint_environment_free(&entrypoint.environment);
	free(entrypoint.passfile);
	free(entrypoint.passfile_variable);
	free(entrypoint.superuser_password_file);
	return status;
}
