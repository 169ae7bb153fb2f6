/* failover-writer: commits one row per transaction to whichever member is primary and logs every outcome, for bench/failover and the failover tests. */
/*
 * Usage:
 *   failover-writer --connect CONNINFO [--connect CONNINFO]... --out FILE [--table NAME]
 *                   [--attempt-timeout-ms N] [--interval-ms N] [--duration-s N]
 *
 * Each --connect names one member with a libpq connection string, e.g.
 * "host=/srv/pgha/c/c-0 port=5433 dbname=postgres"; members are numbered from 0 in the
 * order given (CONNECT_INDEX below). The writer connects to every member at once and
 * writes through the first that answers false to SELECT pg_is_in_recovery(). On that
 * member it runs CREATE TABLE IF NOT EXISTS NAME (id bigint PRIMARY KEY, at timestamptz
 * default now()), then commits one INSERT of the next id per transaction (autocommit),
 * every --interval-ms (default 2; 0: back to back). Ids increase strictly and are never
 * reused, even after an outcome the writer could not learn; after each connection the next
 * id is also raised above the table's largest, so a table kept from an earlier run is fine.
 *
 * Nothing waits on a member without a deadline: every connection attempt and every
 * statement is bounded by --attempt-timeout-ms (default 300; libpq's connect_timeout
 * cannot go below 2 s and blocks), through PQconnectPoll, PQsendQuery and poll(). A hung
 * (SIGSTOPped) member costs at most that long, then its connection is dropped. After an
 * error the writer looks for the primary again at once: members that answered "in
 * recovery" keep their connection and are asked again every few milliseconds, so a
 * promotion is seen without a new connection per question; a failed connection attempt
 * is retried after 2 ms, doubling up to 20 ms.
 *
 * It runs until SIGTERM or SIGINT (or --duration-s seconds, 0: no limit), lets a
 * statement in flight finish within its deadline, and exits 0. Exit 64 on a usage error,
 * 1 when FILE cannot be written.
 *
 * FILE gets one line per event, flushed as it happens. Fields are separated by one
 * space; MONOTONIC_NS is clock_gettime(CLOCK_MONOTONIC) in nanoseconds when the event was
 * seen (Python's time.monotonic_ns() on Linux reads the same clock); REASON is the rest
 * of the line, one line of text. Readers should skip lines whose first word they do not
 * know.
 *
 *   connected CONNECT_INDEX MONOTONIC_NS
 *       the member answered that it is not in recovery; writes now go to it
 *   ack ID CONNECT_INDEX MONOTONIC_NS
 *       the INSERT of ID returned success: a commit the client saw acknowledged
 *   unknown ID CONNECT_INDEX MONOTONIC_NS REASON
 *       the INSERT of ID was sent, then failed or timed out: it may or may not have committed
 *   disconnected CONNECT_INDEX MONOTONIC_NS REASON
 *       the writer dropped its connection to that member (after an error, a timeout, or
 *       because it is stopping)
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 64
#define REASON_SIZE 512
#define NS_PER_MS 1000000LL
/* a standby is asked again this often while the writer has no primary */
#define ASK_AGAIN_MS 3
#define FIRST_RETRY_MS 2
#define LONGEST_RETRY_MS 20

enum member_phase {
	MEMBER_IDLE,       /* no connection; a new attempt starts at retry_at */
	MEMBER_CONNECTING, /* PQconnectPoll in progress, until deadline */
	MEMBER_ASKING,     /* SELECT pg_is_in_recovery() sent, until deadline */
	MEMBER_STANDBY,    /* connected, answered "in recovery"; asked again at retry_at */
};

struct member {
	const char *conninfo;
	PGconn *connection;
	enum member_phase phase;
	PostgresPollingStatusType polling;
	short events;
	long long deadline;
	long long retry_at;
	int retry_ms;
	PGresult *result;
	/* the last state reported on stderr, so a member failing every few ms is reported once */
	char reported[REASON_SIZE];
};

struct writer {
	struct member *members;
	int member_count;
	const char *out_path;
	FILE *out;
	char table[64];
	int attempt_timeout_ms;
	int interval_ms;
	long long end; /* 0: no --duration-s */
	int signals;   /* signalfd of SIGTERM and SIGINT */
	bool stopping;
	long long next_id;
	long long acknowledged, unknown, primaries, attempts;
};

static long long now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* poll()'s timeout for a wait until deadline: rounded up, so a wake-up is never early */
static int wait_ms(long long deadline, long long now)
{
	if (deadline <= now)
		return 0;
	long long ms = (deadline - now + NS_PER_MS - 1) / NS_PER_MS;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* A reason is the end of one line of FILE: libpq's line breaks and tabs become spaces. */
static void set_reason(char *reason, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(char *reason, const char *format, ...)
{
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(reason, REASON_SIZE, format, arguments);
	va_end(arguments);
	for (char *c = reason; *c; c++)
		if (*c == '\n' || *c == '\t' || *c == '\r')
			*c = ' ';
	size_t length = strlen(reason);
	while (length > 0 && reason[length - 1] == ' ')
		reason[--length] = '\0';
	if (length == 0)
		snprintf(reason, REASON_SIZE, "no reason given");
}

static void emit(struct writer *writer, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct writer *writer, const char *format, ...)
{
	va_list arguments;
	va_start(arguments, format);
	int written = vfprintf(writer->out, format, arguments);
	va_end(arguments);
	if (written < 0 || fputc('\n', writer->out) == EOF || fflush(writer->out) == EOF) {
		fprintf(stderr, "failover-writer: cannot write %s: %s\n", writer->out_path, strerror(errno));
		exit(1);
	}
}

/* stderr, for whoever watches the writer; FILE is the record */
static void report(struct writer *writer, int index, const char *what)
{
	struct member *member = &writer->members[index];
	if (strcmp(member->reported, what) == 0)
		return;
	snprintf(member->reported, sizeof member->reported, "%s", what);
	fprintf(stderr, "failover-writer: %.3f s: member %d: %s\n", (double)now_ns() / 1e9, index, what);
}

/* True once SIGTERM, SIGINT or the end of --duration-s came; reads the signal so it counts once. */
static bool stop_requested(struct writer *writer)
{
	struct pollfd signals = {.fd = writer->signals, .events = POLLIN};
	if (!writer->stopping && poll(&signals, 1, 0) > 0 && (signals.revents & POLLIN)) {
		struct signalfd_siginfo received;
		if (read(writer->signals, &received, sizeof received) == (ssize_t)sizeof received)
			fprintf(stderr, "failover-writer: %s received: stopping\n", strsignal((int)received.ssi_signo));
		writer->stopping = true;
	}
	if (!writer->stopping && writer->end && now_ns() >= writer->end)
		writer->stopping = true;
	return writer->stopping;
}

/* Sleeps until deadline unless a stop is requested first. */
static void pause_until(struct writer *writer, long long deadline)
{
	struct pollfd signals = {.fd = writer->signals, .events = POLLIN};
	long long now;
	while (!stop_requested(writer) && (now = now_ns()) < deadline)
		poll(&signals, 1, wait_ms(writer->end && writer->end < deadline ? writer->end : deadline, now));
}

/* ---- one statement, without blocking ---- */

enum step {
	STEP_WAITING,
	STEP_DONE,
	STEP_FAILED,
};

/* Moves a statement sent with PQsendQuery on as far as it goes without blocking. On
 * STEP_WAITING *events is what to poll() for; on STEP_DONE *result holds the statement's
 * result (the first error if there were several), which may itself be an error. */
static enum step statement_step(PGconn *connection, PGresult **result, short *events, char *reason)
{
	int flushed = PQflush(connection);
	if (flushed < 0 || !PQconsumeInput(connection)) {
		set_reason(reason, "connection lost: %s", PQerrorMessage(connection));
		return STEP_FAILED;
	}
	while (!PQisBusy(connection)) {
		PGresult *next = PQgetResult(connection);
		if (!next) {
			if (!*result) {
				set_reason(reason, "no result: %s", PQerrorMessage(connection));
				return STEP_FAILED;
			}
			return STEP_DONE;
		}
		if (*result && PQresultStatus(*result) == PGRES_FATAL_ERROR) {
			PQclear(next);
		} else {
			PQclear(*result);
			*result = next;
		}
	}
	*events = flushed == 1 ? POLLIN | POLLOUT : POLLIN;
	return STEP_WAITING;
}

/* The result of a statement that failed, as a reason: SQLSTATE and message. */
static bool result_succeeded(const PGresult *result, char *reason)
{
	ExecStatusType status = PQresultStatus(result);
	if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
		return true;
	const char *sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
	set_reason(reason, "%s%s%s", sqlstate ? sqlstate : "", sqlstate ? " " : "", PQresultErrorMessage(result));
	return false;
}

/* Runs one statement on a connection established in non-blocking mode, giving up after
 * the attempt timeout. Returns the successful result, or NULL with the reason. */
static PGresult *run(struct writer *writer, PGconn *connection, const char *sql, char *reason)
{
	long long deadline = now_ns() + writer->attempt_timeout_ms * NS_PER_MS;
	PGresult *result = NULL;

	if (!PQsendQuery(connection, sql)) {
		set_reason(reason, "cannot send: %s", PQerrorMessage(connection));
		return NULL;
	}
	for (;;) {
		short events = POLLIN;
		switch (statement_step(connection, &result, &events, reason)) {
		case STEP_DONE:
			if (result_succeeded(result, reason))
				return result;
			PQclear(result);
			return NULL;
		case STEP_FAILED:
			PQclear(result);
			return NULL;
		case STEP_WAITING:
			break;
		}
		long long now = now_ns();
		if (now >= deadline) {
			set_reason(reason, "no answer within %d ms", writer->attempt_timeout_ms);
			PQclear(result);
			return NULL;
		}
		struct pollfd socket = {.fd = PQsocket(connection), .events = events};
		/* signals are taken by the signalfd, so this is not interrupted by SIGTERM: the
		 * statement in flight ends (within its deadline) before the writer stops */
		poll(&socket, 1, wait_ms(deadline, now));
	}
}

/* ---- finding the primary ---- */

static void ignore_notice(void *context, const char *message)
{
}

static void member_drop(struct writer *writer, int index, const char *why, long long now)
{
	struct member *member = &writer->members[index];
	report(writer, index, why);
	PQclear(member->result);
	member->result = NULL;
	PQfinish(member->connection);
	member->connection = NULL;
	member->phase = MEMBER_IDLE;
	member->retry_at = now + member->retry_ms * NS_PER_MS;
	member->retry_ms = member->retry_ms * 2 > LONGEST_RETRY_MS ? LONGEST_RETRY_MS : member->retry_ms * 2;
}

static void member_connect(struct writer *writer, int index, long long now)
{
	struct member *member = &writer->members[index];
	/* the connection string comes last, so it can override the application name */
	const char *keywords[] = {"application_name", "dbname", NULL};
	const char *values[] = {"failover-writer", member->conninfo, NULL};
	char reason[REASON_SIZE];

	writer->attempts++;
	member->connection = PQconnectStartParams(keywords, values, 1);
	if (!member->connection || PQstatus(member->connection) == CONNECTION_BAD) {
		set_reason(reason, "cannot connect: %s",
			   member->connection ? PQerrorMessage(member->connection) : "out of memory");
		member_drop(writer, index, reason, now);
		return;
	}
	PQsetNoticeProcessor(member->connection, ignore_notice, NULL);
	member->phase = MEMBER_CONNECTING;
	/* after PQconnectStart the socket is first waited on for writing */
	member->polling = PGRES_POLLING_WRITING;
	member->events = POLLOUT;
	member->deadline = now + writer->attempt_timeout_ms * NS_PER_MS;
}

static void member_ask(struct writer *writer, int index, long long now)
{
	struct member *member = &writer->members[index];
	char reason[REASON_SIZE];

	if (!PQsendQuery(member->connection, "SELECT pg_is_in_recovery()")) {
		set_reason(reason, "cannot send: %s", PQerrorMessage(member->connection));
		member_drop(writer, index, reason, now);
		return;
	}
	member->phase = MEMBER_ASKING;
	member->events = POLLIN | POLLOUT;
	member->deadline = now + writer->attempt_timeout_ms * NS_PER_MS;
}

/* Moves a member on after its socket reported events; true when it is the primary. */
static bool member_advance(struct writer *writer, int index, long long now)
{
	struct member *member = &writer->members[index];
	char reason[REASON_SIZE];

	if (member->phase == MEMBER_CONNECTING) {
		member->polling = PQconnectPoll(member->connection);
		switch (member->polling) {
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(member->connection, 1) != 0) {
				set_reason(reason, "cannot make the connection non-blocking: %s",
					   PQerrorMessage(member->connection));
				member_drop(writer, index, reason, now);
				return false;
			}
			member->retry_ms = FIRST_RETRY_MS;
			member_ask(writer, index, now);
			return false;
		case PGRES_POLLING_READING:
			member->events = POLLIN;
			return false;
		case PGRES_POLLING_WRITING:
			member->events = POLLOUT;
			return false;
		default:
			set_reason(reason, "cannot connect: %s", PQerrorMessage(member->connection));
			member_drop(writer, index, reason, now);
			return false;
		}
	}
	if (member->phase != MEMBER_ASKING)
		return false;
	switch (statement_step(member->connection, &member->result, &member->events, reason)) {
	case STEP_WAITING:
		return false;
	case STEP_FAILED:
		member_drop(writer, index, reason, now);
		return false;
	case STEP_DONE:
		break;
	}
	PGresult *result = member->result;
	member->result = NULL;
	if (!result_succeeded(result, reason) || PQntuples(result) != 1 || PQnfields(result) != 1) {
		if (PQresultStatus(result) == PGRES_TUPLES_OK)
			set_reason(reason, "unexpected answer to SELECT pg_is_in_recovery()");
		PQclear(result);
		member_drop(writer, index, reason, now);
		return false;
	}
	bool in_recovery = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
	PQclear(result);
	if (!in_recovery)
		return true;
	report(writer, index, "in recovery");
	member->phase = MEMBER_STANDBY;
	member->retry_at = now + ASK_AGAIN_MS * NS_PER_MS;
	return false;
}

/* Closes every member's connection but the one kept (-1: none). */
static void members_reset(struct writer *writer, int kept)
{
	for (int i = 0; i < writer->member_count; i++) {
		struct member *member = &writer->members[i];
		PQclear(member->result);
		member->result = NULL;
		if (i != kept)
			PQfinish(member->connection);
		member->connection = NULL;
		member->phase = MEMBER_IDLE;
		member->retry_at = 0;
	}
}

/* Connects to every member at once; returns the index of the first that is not in
 * recovery with its connection in *connection, or -1 when the writer is to stop. Each
 * member has its own deadline and retry time, so a hung one only ever costs its slot. */
static int find_primary(struct writer *writer, PGconn **connection)
{
	int count = writer->member_count;
	struct pollfd *polled = calloc((size_t)count + 1, sizeof *polled);
	int *owner = calloc((size_t)count, sizeof *owner);
	int primary = -1;

	if (!polled || !owner) {
		fprintf(stderr, "failover-writer: out of memory\n");
		exit(1);
	}
	while (primary < 0 && !stop_requested(writer)) {
		long long now = now_ns();
		long long wake = now + 1000 * NS_PER_MS;
		nfds_t waiting = 0;

		if (writer->end && writer->end < wake)
			wake = writer->end;
		for (int i = 0; i < count; i++) {
			struct member *member = &writer->members[i];
			if (member->phase == MEMBER_IDLE && now >= member->retry_at)
				member_connect(writer, i, now);
			else if (member->phase == MEMBER_STANDBY && now >= member->retry_at)
				member_ask(writer, i, now);
			if ((member->phase == MEMBER_CONNECTING || member->phase == MEMBER_ASKING) &&
			    now >= member->deadline) {
				char reason[REASON_SIZE];
				set_reason(reason, "no answer within %d ms (%s)", writer->attempt_timeout_ms,
					   member->phase == MEMBER_CONNECTING ? "connecting" : "asking");
				member_drop(writer, i, reason, now);
			}
			if (member->phase == MEMBER_CONNECTING || member->phase == MEMBER_ASKING) {
				/* the socket can change while connecting (another address of the host) */
				polled[waiting] = (struct pollfd){.fd = PQsocket(member->connection),
								  .events = member->events};
				owner[waiting++] = i;
				if (member->deadline < wake)
					wake = member->deadline;
			} else if (member->retry_at < wake) {
				wake = member->retry_at;
			}
		}
		polled[waiting] = (struct pollfd){.fd = writer->signals, .events = POLLIN};
		if (poll(polled, waiting + 1, wait_ms(wake, now)) <= 0)
			continue;
		now = now_ns();
		/* the lowest index wins when several answer in the same round */
		for (nfds_t j = 0; j < waiting && primary < 0; j++)
			if (polled[j].revents && member_advance(writer, owner[j], now))
				primary = owner[j];
	}
	if (primary >= 0) {
		*connection = writer->members[primary].connection;
		report(writer, primary, "primary");
	}
	members_reset(writer, primary);
	free(polled);
	free(owner);
	return primary;
}

/* ---- writing ---- */

/* Creates the table if needed and moves the next id above its largest; false with the reason. */
static bool prepare(struct writer *writer, PGconn *connection, char *reason)
{
	char sql[256];
	snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, at timestamptz DEFAULT now())",
		 writer->table);
	PGresult *result = run(writer, connection, sql, reason);
	if (!result)
		return false;
	PQclear(result);
	snprintf(sql, sizeof sql, "SELECT coalesce(max(id), 0) FROM %s", writer->table);
	if (!(result = run(writer, connection, sql, reason)))
		return false;
	long long largest = PQntuples(result) == 1 ? strtoll(PQgetvalue(result, 0, 0), NULL, 10) : 0;
	PQclear(result);
	if (largest >= writer->next_id)
		writer->next_id = largest + 1;
	return true;
}

/* Commits rows through the primary until an error or a stop. */
static void write_through(struct writer *writer, int index, PGconn *connection)
{
	char reason[REASON_SIZE], sql[128];

	writer->primaries++;
	emit(writer, "connected %d %lld", index, now_ns());
	if (!prepare(writer, connection, reason)) {
		emit(writer, "disconnected %d %lld %s", index, now_ns(), reason);
		report(writer, index, reason);
		PQfinish(connection);
		return;
	}
	for (;;) {
		long long started = now_ns();
		if (stop_requested(writer)) {
			emit(writer, "disconnected %d %lld writer stopping", index, started);
			break;
		}
		long long id = writer->next_id++;
		snprintf(sql, sizeof sql, "INSERT INTO %s (id) VALUES (%lld)", writer->table, id);
		PGresult *result = run(writer, connection, sql, reason);
		long long now = now_ns();
		if (result) {
			PQclear(result);
			writer->acknowledged++;
			emit(writer, "ack %lld %d %lld", id, index, now);
		} else {
			writer->unknown++;
			emit(writer, "unknown %lld %d %lld %s", id, index, now, reason);
			emit(writer, "disconnected %d %lld %s", index, now, reason);
			report(writer, index, reason);
			break;
		}
		if (writer->interval_ms > 0)
			pause_until(writer, started + writer->interval_ms * NS_PER_MS);
	}
	PQfinish(connection);
}

/* ---- the command line ---- */

static void usage(FILE *to)
{
	fprintf(to, "Usage: failover-writer --connect CONNINFO [--connect CONNINFO]... --out FILE [--table NAME]\n"
		    "                       [--attempt-timeout-ms N] [--interval-ms N] [--duration-s N]\n"
		    "Commits one row per transaction to whichever member is primary; logs each outcome to FILE.\n"
		    "  --connect CONNINFO       a member (libpq connection string); repeat for each, numbered from 0\n"
		    "  --out FILE               the event log (see the header of bench/failover-writer.c)\n"
		    "  --table NAME             the table written (default failover_writer; [a-z_][a-z0-9_]*)\n"
		    "  --attempt-timeout-ms N   deadline of each connection attempt and statement (default 300)\n"
		    "  --interval-ms N          pause between commits (default 2; 0: none)\n"
		    "  --duration-s N           stop after N seconds (default 0: at SIGTERM or SIGINT)\n");
}

static bool parse_number(const char *text, long minimum, long maximum, long *value)
{
	char *end;
	errno = 0;
	*value = strtol(text, &end, 10);
	return errno == 0 && end != text && *end == '\0' && *value >= minimum && *value <= maximum;
}

static bool valid_table(const char *name)
{
	size_t length = strlen(name);
	if (length == 0 || length > 63 || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return false;
	return true;
}

static int parse_arguments(int argc, char **argv, struct writer *writer)
{
	static const struct option options[] = {
		{"connect", required_argument, NULL, 'c'},
		{"out", required_argument, NULL, 'o'},
		{"table", required_argument, NULL, 't'},
		{"attempt-timeout-ms", required_argument, NULL, 'a'},
		{"interval-ms", required_argument, NULL, 'i'},
		{"duration-s", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	long number, duration = 0;
	int option;

	snprintf(writer->table, sizeof writer->table, "failover_writer");
	writer->attempt_timeout_ms = 300;
	writer->interval_ms = 2;
	writer->members = calloc((size_t)argc, sizeof *writer->members);
	if (!writer->members) {
		fprintf(stderr, "failover-writer: out of memory\n");
		return 1;
	}
	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (option) {
		case 'c': {
			/* a mistyped connection string is the caller's error, not a member that is down */
			char *error = NULL;
			PQconninfoOption *parsed = PQconninfoParse(optarg, &error);
			if (!parsed) {
				fprintf(stderr, "failover-writer: --connect %s: %s", optarg,
					error ? error : "out of memory\n");
				PQfreemem(error);
				return EXIT_USAGE;
			}
			PQconninfoFree(parsed);
			writer->members[writer->member_count++] =
				(struct member){.conninfo = optarg, .retry_ms = FIRST_RETRY_MS};
			break;
		}
		case 'o':
			writer->out_path = optarg;
			break;
		case 't':
			if (!valid_table(optarg)) {
				fprintf(stderr, "failover-writer: --table %s: use 1 to 63 of a-z, 0-9 and _, "
						"not starting with a digit\n", optarg);
				return EXIT_USAGE;
			}
			snprintf(writer->table, sizeof writer->table, "%s", optarg);
			break;
		case 'a':
		case 'i':
		case 'd':
			if (!parse_number(optarg, option == 'a' ? 1 : 0, option == 'd' ? 1000000 : 600000, &number)) {
				fprintf(stderr, "failover-writer: --%s %s: not a number in range\n",
					option == 'a' ? "attempt-timeout-ms" : option == 'i' ? "interval-ms" : "duration-s",
					optarg);
				return EXIT_USAGE;
			}
			if (option == 'a')
				writer->attempt_timeout_ms = (int)number;
			else if (option == 'i')
				writer->interval_ms = (int)number;
			else
				duration = number;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || writer->member_count == 0 || !writer->out_path) {
		fprintf(stderr, "failover-writer: %s\n",
			optind != argc ? "unexpected argument" : "--connect and --out are required");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (duration)
		writer->end = now_ns() + duration * 1000000000LL;
	return 0;
}

int main(int argc, char **argv)
{
	struct writer writer = {.next_id = 1};
	sigset_t stopping;

	int status = parse_arguments(argc, argv, &writer);
	if (status != 0)
		return status;
	/* SIGTERM and SIGINT are read from a descriptor in the loops, never handled in signal context */
	sigemptyset(&stopping);
	sigaddset(&stopping, SIGTERM);
	sigaddset(&stopping, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stopping, NULL) != 0 ||
	    (writer.signals = signalfd(-1, &stopping, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		fprintf(stderr, "failover-writer: cannot take SIGTERM and SIGINT: %s\n", strerror(errno));
		return 1;
	}
	if (!(writer.out = fopen(writer.out_path, "w"))) {
		fprintf(stderr, "failover-writer: cannot open %s: %s\n", writer.out_path, strerror(errno));
		return 1;
	}
	fprintf(stderr, "failover-writer: %d member%s, table %s, attempts time out after %d ms, a commit every %d ms\n",
		writer.member_count, writer.member_count == 1 ? "" : "s", writer.table, writer.attempt_timeout_ms,
		writer.interval_ms);
	while (!stop_requested(&writer)) {
		PGconn *connection = NULL;
		int primary = find_primary(&writer, &connection);
		if (primary >= 0)
			write_through(&writer, primary, connection);
	}
	if (fclose(writer.out) != 0) {
		fprintf(stderr, "failover-writer: cannot write %s: %s\n", writer.out_path, strerror(errno));
		return 1;
	}
	fprintf(stderr, "failover-writer: %lld acknowledged, %lld unknown, %lld connections to a primary, "
			"%lld connection attempts in all\n",
		writer.acknowledged, writer.unknown, writer.primaries, writer.attempts);
	free(writer.members);
	return 0;
}
