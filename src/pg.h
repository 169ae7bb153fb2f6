/* pg: libpq with deadlines: requests to many servers run concurrently under one deadline, so a hung member never delays the others, optionally on a connection kept between requests; conninfo strings built with libpq's quoting rules. */
#ifndef PGHA_PG_H
#define PGHA_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <systemd/sd-event.h>

/* Where and as whom to connect. host is a host name, an address or a socket directory. */
struct pg_target {
	const char *host;
	int port;
	const char *user;
	const char *dbname;   /* NULL: "postgres" */
	const char *passfile; /* NULL: none; passwords never travel in strings pgha builds */
	/* server options for this connection only, as PGOPTIONS spells them (pg_server_option
	 * builds them); NULL: none */
	const char *options;
};

/* A connection kept from one request to the next to the same server (a member's probes):
 * one backend serves them all instead of one forked and authenticated per request. It is
 * dropped after any error or a request that passed its deadline, and made again by the
 * next request. Its backend's application_name is "pghad". Start it zeroed. */
#define PG_SESSION_STATEMENTS 4

struct pg_session {
	PGconn *connection; /* NULL: none now */
	char *key;          /* the target and timeout it was made for: another one reconnects */
	/* true: no connection to the postmaster beside a kept one (pg_request). For statements
	 * run one after another at once, where the connection was just made: a check would
	 * fork a child per statement, what the session is there to save. */
	bool without_postmaster_check;
	/* 0: the postmaster is checked alongside every request on the kept connection.
	 * Otherwise only when it last served a new connection (one made for a request, or
	 * a check's) this many milliseconds ago or more: for a caller that sees the
	 * postmaster's process otherwise (a stopped one at once, by its state in /proc) and
	 * would not have it fork a child at every request. */
	int postmaster_check_ms;
	/* when its postmaster last served a new connection, CLOCK_MONOTONIC ms (private) */
	long long postmaster_served_ms;
	/* the statements prepared on its connection (private: pg keeps them) */
	char prepared[PG_SESSION_STATEMENTS][32];
};

/* Closes a session's connection (if any); the session may be used again. */
void pg_session_close(struct pg_session *session);

/* One query to one server. Fill target, sql and the parameters; pg_execute_all fills
 * the rest. Values reach the server as parameters ($1, $2, ...), never spliced into sql. */
struct pg_request {
	struct pg_target target;
	const char *sql;
	int parameter_count;
	const char *const *parameters;
	/* For statements that take no parameters (CREATE ROLE ... PASSWORD): builds the SQL
	 * once connected, so values can be quoted with PQescapeLiteral/PQescapeIdentifier
	 * for that server; returns a malloc()ed string or NULL on failure. Used instead of sql. */
	char *(*build_sql)(PGconn *connection, void *context);
	void *build_context;
	/* With a session, and without build_sql: the name of sql prepared on the session's
	 * connection, the first time it runs there (an extra round trip, once), and only
	 * executed after: it is then neither parsed nor planned again. A name stands for one
	 * sql and its parameters' count for the life of the process. NULL: sent whole. */
	const char *statement;
	/* NULL: a connection for this request only. Otherwise the request runs on the
	 * session's connection (made when it has none) and leaves it there when it succeeds.
	 * Each request is one statement in its own transaction: nothing it reads (statistics
	 * snapshots included) outlives it, and no session setting is ever changed. A kept
	 * connection found closed (its backend terminated, the server restarted) is made
	 * again once, within the same deadline, before the request counts as failed.
	 * A kept connection's backend answers even when its postmaster hangs, which a new
	 * connection would show: so alongside a request on a kept connection, a connection is
	 * opened to the postmaster's own socket (the kept one's peer address) and closed for
	 * writing at once. The postmaster accepts it and forks a child, which reads the end
	 * and closes it silently (PostgreSQL logs it only under log_connections, as
	 * "connection received"). Only once that end is read, within the same deadline,
	 * does the request succeed: otherwise it fails as if connecting had timed out, and
	 * the session's connection is dropped.
	 * (How often: the session's postmaster_check_ms.) */
	struct pg_session *session;
	/* true: no statement (sql, statement and build_sql unused), only a Sync message, in
	 * libpq's pipeline mode, which the backend answers with ReadyForQuery: it proves the
	 * backend answers (a hung one does not) at about half the backend CPU of an empty
	 * prepared statement (PostgreSQL 15, an idle connection, one every 20 ms: 0.040 ms
	 * against 0.077 ms per round trip).
	 * succeeded with result NULL; fails as any request would (an error, EOF, the deadline)
	 * and leaves the connection out of pipeline mode for the next request. */
	bool sync_only;

	PGresult *result; /* the query's result, also on an SQL error; PQclear() it */
	bool succeeded;   /* connected, and the query returned rows or completed */
	bool timed_out;   /* no answer before the deadline: the server may be hung */
	char error[512];  /* why it did not succeed */

	/* private: the state of the request while pg_execute_all runs */
	PGconn *connection;
	int phase;
	short wanted_events;
	bool reused;     /* runs on a session's kept connection, not retried yet */
	bool preparing;  /* its statement is being prepared; the query follows */
	int timeout_ms;
	int listener;    /* -1: none. A connection to the postmaster beside a kept one */
	int listener_phase;
};

/* Runs every request concurrently and returns once each has an answer or timeout_ms
 * has passed, whatever the servers do. A request not answered by then is abandoned:
 * its connection is closed without PQcancel, which would itself wait on a hung server. */
void pg_execute_all(struct pg_request *requests, size_t count, int timeout_ms);
/* The same without waiting, on event: done(requests, count, context) is called from the
 * loop (never from within this call) once each request has an answer or timeout_ms has
 * passed. The requests stay the caller's, untouched until then. */
struct pg_batch;
typedef void (*pg_batch_done_fn)(struct pg_request *requests, size_t count, void *context);
struct pg_batch *pg_execute_start(sd_event *event, struct pg_request *requests, size_t count, int timeout_ms,
				  pg_batch_done_fn done, void *context);
/* A batch whose requests are answered already (a simulation's): done is called from the loop. */
struct pg_batch *pg_batch_answered(sd_event *event, struct pg_request *requests, size_t count, pg_batch_done_fn done,
				   void *context);
/* Abandons a batch not done yet: its connections are closed, done is never called; the
 * requests keep what they had (pg_request_clear them). NULL: nothing. */
void pg_batch_cancel(struct pg_batch *batch);
/* Releases what pg_execute_all left in a request (its result). */
void pg_request_clear(struct pg_request *request);

/* A text[] literal of items, for passing a list as one query parameter ($1::text[]):
 * each element double-quoted, with '"' and '\\' escaped. Returns a new string. */
char *pg_text_array(const char *const *items, size_t count);

/* Appends "-c name=value" to a connection's server options in *options (NULL to start),
 * with spaces and backslashes escaped as the server splits them. Returns *options. */
char *pg_server_option(char **options, const char *name, const char *value);

/* value quoted for postgresql.conf: '...' with quotes doubled and backslashes escaped,
 * as PostgreSQL's configuration file parser reads it. Returns a new string. */
char *pg_conf_quote(const char *value);

/* Appends " key='value'" to a conninfo string being built in *conninfo (NULL to start),
 * quoting value as libpq's conninfo parser reads it. */
void pg_conninfo_append(char **conninfo, const char *key, const char *value);

/* Appends the timeouts of a standby's primary_conninfo (but connect_timeout, the
 * caller's): a primary whose host is cut off must not keep the WAL receiver waiting for
 * wal_receiver_timeout (60 s by default) or the kernel's retransmissions (minutes).
 * Keepalives find a silent peer while nothing is unacknowledged, tcp_user_timeout while
 * something is (the receiver's replies always are, soon). */
void pg_conninfo_append_receiver_timeouts(char **conninfo);

/* The SCRAM-SHA-256 verifier of user's password, as an SQL literal quoted for the server
 * of connection, for CREATE or ALTER ROLE ... PASSWORD: the server stores a verifier as
 * given, and a statement it logs (any under log_statement, or one that fails) then holds
 * no password. Returns a string to PQfreemem(), or NULL with the reason in
 * PQerrorMessage(connection). */
char *pg_password_literal(PGconn *connection, const char *user, const char *password);

/* A new random password (hex digits: nothing to quote anywhere) into buffer; false (why
 * written) when the kernel gives no randomness or it does not fit. */
bool pg_make_password(char *buffer, size_t size, char *why, size_t why_size);

/* Appends a password file line for user on any host, port and database,
 * "*:*:*:USER:PASSWORD\n", to *passfile (NULL to start), with ':' and '\\' escaped as
 * libpq reads the file. The caller has refused passwords holding a line break. */
void pg_passfile_append(char **passfile, const char *user, const char *password);

/* An LSN as PostgreSQL prints it ("16/B374D848"): read (0 for NULL or nonsense), and
 * written into buffer. */
uint64_t pg_lsn_parse(const char *text);
void pg_lsn_format(char *buffer, size_t size, uint64_t lsn);

#endif
