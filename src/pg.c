/* pg: libpq with deadlines: requests to many servers run concurrently under one deadline, so a hung member never delays the others, optionally on a connection kept between requests; conninfo strings built with libpq's quoting rules. */
#include "autoconfig.h"

#include "pg.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "memory.h"

enum phase {
	PHASE_CONNECTING,
	PHASE_SENDING,
	PHASE_READING,
	PHASE_DONE,
};

/* The connection to a postmaster beside a kept one (see pg.h). */
enum listener_phase {
	LISTENER_CONNECTING,
	LISTENER_READING,
};

static long long now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* libpq's messages span lines ("could not connect...\n\tIs the server running...");
 * a reason here is one line of a log, so line breaks and tabs become spaces. */
static void set_error(struct pg_request *request, const char *what, const char *detail)
{
	snprintf(request->error, sizeof request->error, "%s: %s", what, detail ? detail : "");
	for (char *c = request->error; *c; c++)
		if (*c == '\n' || *c == '\t')
			*c = ' ';
	size_t length = strlen(request->error);
	while (length > 0 && request->error[length - 1] == ' ')
		request->error[--length] = '\0';
}

/* The key of a session: what its connection was made for. A new string. */
static char *session_key(const struct pg_request *request)
{
	const struct pg_target *target = &request->target;
	return xasprintf("%s\n%d\n%s\n%s\n%s\n%s\n%d", target->host ? target->host : "", target->port,
			 target->user ? target->user : "", target->dbname ? target->dbname : "",
			 target->passfile ? target->passfile : "", target->options ? target->options : "",
			 request->timeout_ms);
}

void pg_session_close(struct pg_session *session)
{
	if (session->connection)
		PQfinish(session->connection);
	session->connection = NULL;
	free(session->key);
	session->key = NULL;
	memset(session->prepared, 0, sizeof session->prepared);
}

static bool prepared(const struct pg_session *session, const char *statement)
{
	for (int i = 0; i < PG_SESSION_STATEMENTS; i++)
		if (strcmp(session->prepared[i], statement) == 0)
			return true;
	return false;
}

/* Records statement as prepared on the connection session is about to keep (when a
 * place is left and the name fits: else it is prepared again next time, and fails). */
static void add_prepared(struct pg_session *session, const char *statement)
{
	for (int i = 0; i < PG_SESSION_STATEMENTS; i++)
		if (!session->prepared[i][0]) {
			if (strlen(statement) < sizeof session->prepared[i])
				memcpy(session->prepared[i], statement, strlen(statement) + 1);
			return;
		}
}

/* Ends a request: its connection goes back to its session when kept (the request
 * completed on a healthy, idle connection), and is closed otherwise. */
static void finish(struct pg_request *request, bool keep)
{
	if (request->connection && keep && request->session &&
	    PQstatus(request->connection) == CONNECTION_OK &&
	    PQtransactionStatus(request->connection) == PQTRANS_IDLE) {
		/* what was prepared on it stays with it */
		char statements[PG_SESSION_STATEMENTS][32];
		memcpy(statements, request->session->prepared, sizeof statements);
		pg_session_close(request->session);
		memcpy(request->session->prepared, statements, sizeof statements);
		request->session->connection = request->connection;
		request->session->key = session_key(request);
	} else if (request->connection) {
		PQfinish(request->connection);
	}
	request->connection = NULL;
	request->phase = PHASE_DONE;
}

static void start(struct pg_request *request, int timeout_ms);

static void close_listener(struct pg_request *request)
{
	if (request->listener >= 0)
		close(request->listener);
	request->listener = -1;
}

/* The postmaster did not serve the connection beside the kept one: the request fails
 * whatever its backend answered, and the session's connection goes. */
static void postmaster_failed(struct pg_request *request, bool timed_out, const char *why)
{
	close_listener(request);
	if (request->result)
		PQclear(request->result);
	request->result = NULL;
	request->succeeded = false;
	request->timed_out = timed_out;
	snprintf(request->error, sizeof request->error, "%s", why);
	if (request->connection)
		PQfinish(request->connection);
	request->connection = NULL;
	request->phase = PHASE_DONE;
	if (request->session)
		pg_session_close(request->session);
}

/* Opens, without waiting, a connection to the postmaster whose backend serves
 * connection, and closes it for writing. False when that cannot even begin (the
 * postmaster's socket refuses it or is gone): nothing is left open then. */
static bool listen_postmaster(struct pg_request *request, PGconn *connection)
{
	struct sockaddr_storage address;
	socklen_t length = sizeof address;

	request->listener = -1;
	if (getpeername(PQsocket(connection), (struct sockaddr *)&address, &length) < 0)
		return false;
	int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	request->listener = fd;
	if (connect(fd, (struct sockaddr *)&address, length) == 0) {
		/* the end of the stream: all the postmaster's child will read */
		if (shutdown(fd, SHUT_WR) < 0) {
			close_listener(request);
			return false;
		}
		request->listener_phase = LISTENER_READING;
		return true;
	}
	if (errno == EINPROGRESS) {
		request->listener_phase = LISTENER_CONNECTING;
		return true;
	}
	close_listener(request);
	return false;
}

/* Moves the connection to the postmaster on after its socket reported events. */
static void advance_listener(struct pg_request *request, short events)
{
	char buffer[512];

	(void)events;
	if (request->listener_phase == LISTENER_CONNECTING) {
		int error = 0;
		socklen_t size = sizeof error;
		if (getsockopt(request->listener, SOL_SOCKET, SO_ERROR, &error, &size) < 0)
			error = errno;
		if (error == 0 && shutdown(request->listener, SHUT_WR) < 0)
			error = errno;
		if (error != 0) {
			char why[256];
			snprintf(why, sizeof why, "the postmaster refuses connections: %s", strerror(error));
			postmaster_failed(request, false, why);
			return;
		}
		request->listener_phase = LISTENER_READING;
		return;
	}
	ssize_t got = read(request->listener, buffer, sizeof buffer);
	if (got >= 0) {
		/* its end, or what a child had to say first (too many clients...): the
		 * postmaster accepted and forked */
		close_listener(request);
		if (request->session)
			request->session->postmaster_served_ms = now_ms();
		return;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return;
	char why[256];
	snprintf(why, sizeof why, "the postmaster dropped a connection: %s", strerror(errno));
	postmaster_failed(request, false, why);
}

static void fail(struct pg_request *request, const char *what)
{
	if (request->reused) {
		/* a new connection tells whether the postmaster serves */
		close_listener(request);
		/* a kept connection the server closed meanwhile (its backend terminated, the
		 * server restarted): once more on a new one, which tells whether it runs */
		PQfinish(request->connection);
		request->connection = NULL;
		request->reused = false;
		if (request->result)
			PQclear(request->result);
		request->result = NULL;
		request->succeeded = false;
		request->error[0] = '\0';
		start(request, request->timeout_ms);
		return;
	}
	set_error(request, what, request->connection ? PQerrorMessage(request->connection) : "out of memory");
	finish(request, false);
}

static void send_query(struct pg_request *request);

/* Takes the session's connection when it was made for this request's target and is
 * still open as far as can be told without waiting. */
static bool reuse(struct pg_request *request)
{
	struct pg_session *session = request->session;
	if (!session || !session->connection)
		return false;
	char *key = session_key(request);
	bool same = session->key && strcmp(key, session->key) == 0;
	free(key);
	/* whatever the server sent while idle (an error before it closed, EOF) is read now */
	if (!same || PQstatus(session->connection) != CONNECTION_OK || !PQconsumeInput(session->connection) ||
	    PQstatus(session->connection) != CONNECTION_OK || PQisBusy(session->connection) ||
	    PQtransactionStatus(session->connection) != PQTRANS_IDLE) {
		pg_session_close(session);
		return false;
	}
	/* its backend may answer while its postmaster hangs: that is checked alongside (when
	 * due), and a postmaster that cannot be reached so is left to a new connection to find */
	bool due = !session->without_postmaster_check &&
		   (session->postmaster_check_ms <= 0 ||
		    now_ms() - session->postmaster_served_ms >= session->postmaster_check_ms);
	if (due && !listen_postmaster(request, session->connection)) {
		pg_session_close(session);
		return false;
	}
	request->connection = session->connection;
	session->connection = NULL;
	request->reused = true;
	send_query(request);
	return true;
}

static void start(struct pg_request *request, int timeout_ms)
{
	char port[16], connect_timeout[16], user_timeout[16], timeout_option[64];
	/* The deadline is enforced here, but the kernel and libpq are told too, so that a
	 * connection that outlives this call (a session's) still cannot hang: keepalives
	 * notice a silent peer, tcp_user_timeout bounds unacknowledged data. connect_timeout
	 * is in whole seconds and libpq treats less than 2 as 2. */
	request->timeout_ms = timeout_ms;
	if (reuse(request))
		return;
	/* a new connection has nothing prepared */
	if (request->session)
		memset(request->session->prepared, 0, sizeof request->session->prepared);
	snprintf(port, sizeof port, "%d", request->target.port);
	snprintf(connect_timeout, sizeof connect_timeout, "%d", timeout_ms / 1000 > 2 ? timeout_ms / 1000 : 2);
	snprintf(user_timeout, sizeof user_timeout, "%d", timeout_ms);
	/* and the server abandons, soon after the deadline, a statement nobody waits for */
	snprintf(timeout_option, sizeof timeout_option, "%d", timeout_ms + 1000);
	char *options = NULL;
	pg_server_option(&options, "statement_timeout", timeout_option);
	if (request->target.options) {
		char *longer = xasprintf("%s %s", options, request->target.options);
		free(options);
		options = longer;
	}
	const char *keywords[] = {"host", "port", "user", "dbname", "passfile", "application_name", "connect_timeout",
				  "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
				  "tcp_user_timeout", "options", NULL};
	const char *values[] = {request->target.host, port, request->target.user,
				request->target.dbname ? request->target.dbname : "postgres",
				request->target.passfile, request->session ? "pghad" : "pgha", connect_timeout, "1", "1", "1", "3", user_timeout,
				options, NULL};

	/* keywords with a NULL value are ignored by libpq */
	request->connection = PQconnectStartParams(keywords, values, 0);
	free(options);
	if (!request->connection || PQstatus(request->connection) == CONNECTION_BAD) {
		fail(request, "cannot connect");
		return;
	}
	/* after PQconnectStart the socket is first waited on for writing */
	request->phase = PHASE_CONNECTING;
	request->wanted_events = POLLOUT;
}

static void send_query(struct pg_request *request)
{
	char *built = NULL;

	if (request->build_sql && !request->sync_only) {
		built = request->build_sql(request->connection, request->build_context);
		if (!built) {
			fail(request, "cannot build the query");
			return;
		}
	}
	bool sent = PQsetnonblocking(request->connection, 1) == 0;
	request->preparing = false;
	if (sent && request->sync_only)
		sent = PQenterPipelineMode(request->connection) && PQpipelineSync(request->connection);
	else if (sent && !built && request->statement && request->session &&
	    !prepared(request->session, request->statement)) {
		request->preparing = true;
		sent = PQsendPrepare(request->connection, request->statement, request->sql, request->parameter_count, NULL);
	} else if (sent && !built && request->statement && request->session)
		sent = PQsendQueryPrepared(request->connection, request->statement, request->parameter_count,
					   request->parameters, NULL, NULL, 0);
	else if (sent)
		sent = PQsendQueryParams(request->connection, built ? built : request->sql, request->parameter_count, NULL,
					 request->parameters, NULL, NULL, 0);
	free(built);
	if (!sent) {
		fail(request, "cannot send the query");
		return;
	}
	request->phase = PHASE_SENDING;
	request->wanted_events = POLLOUT;
}

/* A Sync alone (sync_only): libpq reports the backend's ReadyForQuery as a
 * PGRES_PIPELINE_SYNC result. Whatever else comes first (a FATAL before the backend
 * closes) is kept as the request's result and fails it, as read_results does. */
static void read_sync(struct pg_request *request)
{
	bool separated = false;
	while (!PQisBusy(request->connection)) {
		PGresult *result = PQgetResult(request->connection);
		if (!result) {
			if (PQstatus(request->connection) != CONNECTION_OK) {
				fail(request, "connection lost");
				return;
			}
			/* in pipeline mode a NULL ends one query's results, and what follows (the
			 * Sync's) may be read already; a second one in a row: more to wait for */
			if (separated)
				break;
			separated = true;
			continue;
		}
		separated = false;
		if (PQresultStatus(result) != PGRES_PIPELINE_SYNC) {
			if (!request->result) {
				request->result = result;
				set_error(request, "query failed", PQresultErrorMessage(result));
			} else {
				PQclear(result);
			}
			continue;
		}
		PQclear(result);
		/* out of pipeline mode: the session's next request is an ordinary one */
		if (!PQexitPipelineMode(request->connection)) {
			fail(request, "cannot leave pipeline mode");
			return;
		}
		request->succeeded = !request->result;
		finish(request, true);
		return;
	}
	request->wanted_events = POLLIN;
}

static void read_results(struct pg_request *request)
{
	if (!PQconsumeInput(request->connection)) {
		fail(request, "connection lost");
		return;
	}
	if (request->sync_only) {
		read_sync(request);
		return;
	}
	while (!PQisBusy(request->connection)) {
		PGresult *result = PQgetResult(request->connection);
		if (!result) {
			if (PQstatus(request->connection) != CONNECTION_OK) {
				/* the server ended the connection with its answer (a terminated backend) */
				fail(request, "connection lost");
				return;
			}
			if (request->preparing && request->succeeded) {
				/* prepared: now the query itself */
				add_prepared(request->session, request->statement);
				PQclear(request->result);
				request->result = NULL;
				request->succeeded = false;
				send_query(request);
				return;
			}
			finish(request, true);
			return;
		}
		/* keep the first result: pgha sends one statement per request */
		if (request->result) {
			PQclear(result);
			continue;
		}
		request->result = result;
		ExecStatusType status = PQresultStatus(result);
		/* an empty statement answers as completed */
		request->succeeded = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY;
		if (!request->succeeded)
			set_error(request, "query failed", PQresultErrorMessage(result));
	}
	request->wanted_events = POLLIN;
}

/* Moves a request on after its socket reported events. */
static void advance(struct pg_request *request, short events)
{
	switch (request->phase) {
	case PHASE_CONNECTING:
		switch (PQconnectPoll(request->connection)) {
		case PGRES_POLLING_OK:
			/* a new connection: its postmaster served it just now */
			if (request->session)
				request->session->postmaster_served_ms = now_ms();
			send_query(request);
			break;
		case PGRES_POLLING_READING:
			request->wanted_events = POLLIN;
			break;
		case PGRES_POLLING_WRITING:
			request->wanted_events = POLLOUT;
			break;
		default:
			fail(request, "cannot connect");
			break;
		}
		break;
	case PHASE_SENDING: {
		if ((events & POLLIN) && !PQconsumeInput(request->connection)) {
			fail(request, "connection lost");
			break;
		}
		int flushed = PQflush(request->connection);
		if (flushed < 0) {
			fail(request, "cannot send the query");
		} else if (flushed == 0) {
			request->phase = PHASE_READING;
			read_results(request);
		} else {
			request->wanted_events = POLLIN | POLLOUT;
		}
		break;
	}
	case PHASE_READING:
		read_results(request);
		break;
	case PHASE_DONE:
		break;
	}
}

/* Readies requests for a run and starts each one. */
static void begin_all(struct pg_request *requests, size_t count, int timeout_ms)
{
	for (size_t i = 0; i < count; i++) {
		struct pg_request *request = &requests[i];
		request->result = NULL;
		request->succeeded = request->timed_out = false;
		request->error[0] = '\0';
		request->connection = NULL;
		request->reused = false;
		request->listener = -1;
		start(request, timeout_ms);
	}
}

static bool all_done(const struct pg_request *requests, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (requests[i].phase != PHASE_DONE || requests[i].listener >= 0)
			return false;
	return true;
}

/* Ends a run at its deadline (or once every request is over): what has not answered
 * by then has timed out. */
static void conclude_all(struct pg_request *requests, size_t count, int timeout_ms)
{
	for (size_t i = 0; i < count; i++) {
		struct pg_request *request = &requests[i];
		if (request->phase == PHASE_DONE && request->listener >= 0) {
			/* its backend answered, but its postmaster did not serve a new connection:
			 * as hung as when a new connection was made for each request */
			char why[256];
			snprintf(why, sizeof why, "no answer within %d ms (connecting: the postmaster accepts no connection)",
				 timeout_ms);
			postmaster_failed(request, true, why);
			continue;
		}
		close_listener(request);
		if (request->phase == PHASE_DONE)
			continue;
		request->timed_out = true;
		snprintf(request->error, sizeof request->error, "no answer within %d ms (%s)", timeout_ms,
			 request->phase == PHASE_CONNECTING ? "connecting" : "waiting for the query");
		/* libpq 15's PQcancel waits on the server, as long as a hung one likes: the
		 * statement is left to the statement_timeout the connection was made with (the
		 * deadline and a second), and the connection is closed; a session makes a new one */
		finish(request, false);
	}
}

void pg_execute_all(struct pg_request *requests, size_t count, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	/* per request, its connection and the one to its postmaster beside a kept one */
	struct pollfd *sockets = xcalloc(2 * count + 1, sizeof *sockets);
	size_t *owner = xcalloc(2 * count + 1, sizeof *owner);
	bool *listening = xcalloc(2 * count + 1, sizeof *listening);

	begin_all(requests, count, timeout_ms);
	for (;;) {
		size_t waiting = 0;
		for (size_t i = 0; i < count; i++) {
			if (requests[i].listener >= 0) {
				short events = requests[i].listener_phase == LISTENER_CONNECTING ? POLLOUT : POLLIN;
				sockets[waiting] = (struct pollfd){.fd = requests[i].listener, .events = events};
				listening[waiting] = true;
				owner[waiting++] = i;
			}
			if (requests[i].phase == PHASE_DONE)
				continue;
			/* the socket can change while connecting (another address of the host) */
			sockets[waiting] = (struct pollfd){.fd = PQsocket(requests[i].connection),
							   .events = requests[i].wanted_events};
			listening[waiting] = false;
			owner[waiting++] = i;
		}
		long long left = deadline - now_ms();
		if (waiting == 0 || left <= 0)
			break;
		int ready = poll(sockets, (nfds_t)waiting, (int)left);
		if (ready < 0)
			continue; /* EINTR: the deadline still bounds the loop */
		for (size_t j = 0; j < waiting; j++) {
			struct pg_request *request = &requests[owner[j]];
			if (!sockets[j].revents)
				continue;
			/* an earlier socket's events may have ended this one's request */
			if (listening[j] && request->listener == sockets[j].fd)
				advance_listener(request, sockets[j].revents);
			else if (!listening[j] && request->phase != PHASE_DONE)
				advance(request, sockets[j].revents);
		}
	}
	conclude_all(requests, count, timeout_ms);
	free(sockets);
	free(owner);
	free(listening);
}

/* Which socket of which request an event source watches. */
struct batch_socket {
	struct pg_batch *batch;
	size_t index;
	bool listener;
	sd_event_source *source;
};

struct pg_batch {
	sd_event *event;
	struct pg_request *requests;
	size_t count;
	int timeout_ms;
	bool answered; /* the requests came answered (pg_batch_answered): nothing to run */
	bool extended; /* its deadline fired late once and was given again */
	struct batch_socket *sockets; /* two per request: its connection, its postmaster's */
	sd_event_source *deadline;
	pg_batch_done_fn done;
	void *context;
};

static uint32_t epoll_of(short events)
{
	return (events & POLLIN ? EPOLLIN : 0) | (events & POLLOUT ? EPOLLOUT : 0);
}

static short poll_of(uint32_t events)
{
	return (short)((events & EPOLLIN ? POLLIN : 0) | (events & EPOLLOUT ? POLLOUT : 0) |
		       (events & EPOLLERR ? POLLERR : 0) | (events & EPOLLHUP ? POLLHUP : 0));
}

/* A request's sockets are unwatched before it moves on: libpq may close one and open
 * another under the same number, which a stale registration would then shadow. */
static void unwatch_request(struct pg_batch *batch, size_t index)
{
	for (size_t k = 0; k < 2; k++) {
		struct batch_socket *socket = &batch->sockets[2 * index + k];
		socket->source = sd_event_source_disable_unref(socket->source);
	}
}

static int on_batch_socket(sd_event_source *source, int fd, uint32_t revents, void *userdata);

static void watch_socket(struct pg_batch *batch, size_t index, bool listener, int fd, short events)
{
	struct batch_socket *socket = &batch->sockets[2 * index + (listener ? 1 : 0)];
	if (fd < 0 || sd_event_add_io(batch->event, &socket->source, fd, epoll_of(events), on_batch_socket, socket) < 0)
		socket->source = NULL; /* the deadline ends it */
}

static void watch_request(struct pg_batch *batch, size_t index)
{
	struct pg_request *request = &batch->requests[index];
	if (request->listener >= 0)
		watch_socket(batch, index, true, request->listener,
			     request->listener_phase == LISTENER_CONNECTING ? POLLOUT : POLLIN);
	if (request->phase != PHASE_DONE)
		watch_socket(batch, index, false, PQsocket(request->connection), request->wanted_events);
}

static void batch_release(struct pg_batch *batch)
{
	for (size_t i = 0; i < batch->count; i++)
		unwatch_request(batch, i);
	sd_event_source_disable_unref(batch->deadline);
	sd_event_unref(batch->event);
	free(batch->sockets);
	free(batch);
}

/* Every request has an answer, or the deadline passed: the caller hears of it. */
static void batch_complete(struct pg_batch *batch)
{
	pg_batch_done_fn done = batch->done;
	void *context = batch->context;
	struct pg_request *requests = batch->requests;
	size_t count = batch->count;

	if (!batch->answered)
		conclude_all(requests, count, batch->timeout_ms);
	batch_release(batch);
	done(requests, count, context);
}

static int on_batch_socket(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct batch_socket *socket = userdata;
	struct pg_batch *batch = socket->batch;
	struct pg_request *request = &batch->requests[socket->index];

	(void)source;
	unwatch_request(batch, socket->index);
	if (socket->listener && request->listener == fd)
		advance_listener(request, poll_of(revents));
	else if (!socket->listener && request->phase != PHASE_DONE)
		advance(request, poll_of(revents));
	watch_request(batch, socket->index);
	if (all_done(batch->requests, batch->count))
		batch_complete(batch);
	return 0;
}

/* A deadline that fires this long after its time was passed by pghad, not by the servers. */
#define DEADLINE_LATE_MS 250

/* A batch's deadline is at most this much later than its timeout (see arm_deadline). */
#define DEADLINE_GRID_MS 5

/* The deadline. When pghad itself could not look in time (stopped, its machine paused or
 * starved of CPU), the answers may have come and wait unread: a primary would count as
 * not answering for as long as pghad was away, and be failed over. Once per batch, a
 * deadline that fires late gives the requests their time again from now, and what waits
 * on their sockets is read first. */
static int on_batch_deadline(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct pg_batch *batch = userdata;
	uint64_t now = 0;

	if (!batch->extended && sd_event_now(batch->event, CLOCK_MONOTONIC, &now) >= 0 &&
	    now > usec + DEADLINE_LATE_MS * 1000ULL &&
	    sd_event_source_set_time(source, now + (uint64_t)batch->timeout_ms * 1000ULL) >= 0 &&
	    sd_event_source_set_enabled(source, SD_EVENT_ONESHOT) >= 0) {
		batch->extended = true;
		log_info("a query deadline passed %llu ms before pghad could look (stopped, or starved of CPU): "
			 "the servers get %d ms more before they count as not answering",
			 (unsigned long long)((now - usec) / 1000), batch->timeout_ms);
		return 0;
	}
	batch_complete(batch);
	return 0;
}

static struct pg_batch *batch_new(sd_event *event, struct pg_request *requests, size_t count, int timeout_ms,
				  pg_batch_done_fn done, void *context)
{
	struct pg_batch *batch = xcalloc(1, sizeof *batch);
	*batch = (struct pg_batch){.event = sd_event_ref(event), .requests = requests, .count = count,
				   .timeout_ms = timeout_ms, .done = done, .context = context};
	batch->sockets = xcalloc(2 * count + 1, sizeof *batch->sockets);
	for (size_t i = 0; i < 2 * count; i++)
		batch->sockets[i] = (struct batch_socket){.batch = batch, .index = i / 2, .listener = i % 2 == 1};
	return batch;
}

static int on_batch_defer(sd_event_source *source, void *userdata)
{
	(void)source;
	batch_complete(userdata);
	return 0;
}

/* The deadline, or at once (but never within the call that starts the batch). */
static void arm_deadline(struct pg_batch *batch, uint64_t usec)
{
	/* at once: a deferred source, not a timer that sd-event would arm, the timerfd's
	 * syscall costing more than the rest of a simulated cluster's turn */
	if (usec == 0 && sd_event_add_defer(batch->event, &batch->deadline, on_batch_defer, batch) >= 0)
		return;
	/* From now, not from the loop's last wake-up (sd_event_now, which
	 * sd_event_add_time_relative counts from): a batch started late in a long tick (the
	 * hundredth cluster's turn) would get less than its timeout, and a member count as
	 * not answering early. Rounded up to DEADLINE_GRID_MS, so that the batches a tick
	 * starts within it share a deadline and sd-event arms its timerfd only when the
	 * earliest one moves (measured with deadlines from sd_event_now, all the same: about
	 * one timerfd_settime per iteration whatever the number of batches). Accuracy 1 ms:
	 * sd-event's default slack (250 ms) would stretch a short deadline. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t grid = DEADLINE_GRID_MS * 1000ULL;
	uint64_t due = (uint64_t)now.tv_sec * 1000000ULL + (uint64_t)now.tv_nsec / 1000ULL + usec;
	due = (due + grid - 1) / grid * grid;
	if (sd_event_add_time(batch->event, &batch->deadline, CLOCK_MONOTONIC, due, 1000, on_batch_deadline, batch) <
	    0) {
		log_error("cannot arm a query deadline on the event loop: answering at once");
		batch->deadline = NULL;
		if (!batch->answered) {
			conclude_all(batch->requests, batch->count, batch->timeout_ms);
			batch->answered = true;
		}
		/* the caller still hears of it from the loop */
		if (sd_event_add_defer(batch->event, &batch->deadline, on_batch_defer, batch) < 0)
			abort();
		return;
	}
	(void)sd_event_source_set_description(batch->deadline, "query deadline");
}

struct pg_batch *pg_execute_start(sd_event *event, struct pg_request *requests, size_t count, int timeout_ms,
				  pg_batch_done_fn done, void *context)
{
	struct pg_batch *batch = batch_new(event, requests, count, timeout_ms, done, context);

	begin_all(requests, count, timeout_ms);
	for (size_t i = 0; i < count; i++)
		watch_request(batch, i);
	arm_deadline(batch, all_done(requests, count) ? 0 : (uint64_t)timeout_ms * 1000ULL);
	return batch;
}

struct pg_batch *pg_batch_answered(sd_event *event, struct pg_request *requests, size_t count, pg_batch_done_fn done,
				   void *context)
{
	struct pg_batch *batch = batch_new(event, requests, count, 0, done, context);
	batch->answered = true;
	arm_deadline(batch, 0);
	return batch;
}

void pg_batch_cancel(struct pg_batch *batch)
{
	if (!batch)
		return;
	for (size_t i = 0; i < batch->count; i++) {
		struct pg_request *request = &batch->requests[i];
		unwatch_request(batch, i);
		if (batch->answered)
			continue;
		close_listener(request);
		if (request->phase != PHASE_DONE)
			finish(request, false);
	}
	batch_release(batch);
}

void pg_request_clear(struct pg_request *request)
{
	if (request->result)
		PQclear(request->result);
	request->result = NULL;
	if (request->connection)
		PQfinish(request->connection);
	request->connection = NULL;
}

char *pg_text_array(const char *const *items, size_t count)
{
	size_t size = 3;
	for (size_t i = 0; i < count; i++)
		size += 2 * strlen(items[i]) + 3;
	char *array = xmalloc(size), *out = array;

	*out++ = '{';
	for (size_t i = 0; i < count; i++) {
		if (i)
			*out++ = ',';
		*out++ = '"';
		for (const char *c = items[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*out++ = '\\';
			*out++ = *c;
		}
		*out++ = '"';
	}
	*out++ = '}';
	*out = '\0';
	return array;
}

/* The server splits its options at white space, and a backslash keeps the next
 * character in the word (pg_split_opts). */
char *pg_server_option(char **options, const char *name, const char *value)
{
	size_t before = *options ? strlen(*options) : 0;
	char *text = xmalloc(before + 4 + 2 * (strlen(name) + 1 + strlen(value)) + 1);
	size_t length = (size_t)sprintf(text, "%s%s-c ", *options ? *options : "", *options ? " " : "");
	const char *const parts[] = {name, "=", value};

	for (size_t part = 0; part < 3; part++)
		for (const char *c = parts[part]; *c; c++) {
			if (*c == '\\' || isspace((unsigned char)*c))
				text[length++] = '\\';
			text[length++] = *c;
		}
	text[length] = '\0';
	free(*options);
	*options = text;
	return text;
}

char *pg_conf_quote(const char *value)
{
	char *quoted = xmalloc(2 * strlen(value) + 3), *out = quoted;

	*out++ = '\'';
	for (const char *c = value; *c; c++) {
		if (*c == '\'' || *c == '\\')
			*out++ = *c;
		*out++ = *c;
	}
	*out++ = '\'';
	*out = '\0';
	return quoted;
}

void pg_conninfo_append(char **conninfo, const char *key, const char *value)
{
	size_t length = *conninfo ? strlen(*conninfo) : 0;
	/* worst case every character escaped, plus key, quotes, separator and '=' */
	char *text = xreallocarray(*conninfo, length + strlen(key) + 2 * strlen(value) + 5, 1);
	char *out = text + length;

	if (length)
		*out++ = ' ';
	out += sprintf(out, "%s='", key);
	for (const char *c = value; *c; c++) {
		if (*c == '\'' || *c == '\\')
			*out++ = '\\';
		*out++ = *c;
	}
	*out++ = '\'';
	*out = '\0';
	*conninfo = text;
}

void pg_conninfo_append_receiver_timeouts(char **conninfo)
{
	pg_conninfo_append(conninfo, "keepalives_idle", "5");
	pg_conninfo_append(conninfo, "keepalives_interval", "2");
	pg_conninfo_append(conninfo, "keepalives_count", "3");
	pg_conninfo_append(conninfo, "tcp_user_timeout", "10000");
}

/* Appends text to out with ':' and '\\' escaped, as a password file field. */
static char *passfile_field(char *out, const char *text)
{
	for (const char *c = text; *c; c++) {
		if (*c == ':' || *c == '\\')
			*out++ = '\\';
		*out++ = *c;
	}
	return out;
}

bool pg_make_password(char *buffer, size_t size, char *why, size_t why_size)
{
	unsigned char random[24];

	if (size < 2 * sizeof random + 1) {
		snprintf(why, why_size, "no room for a password");
		return false;
	}
	if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) {
		snprintf(why, why_size, "cannot make a password: %s", strerror(errno));
		return false;
	}
	for (size_t i = 0; i < sizeof random; i++)
		snprintf(buffer + 2 * i, 3, "%02x", random[i]);
	explicit_bzero(random, sizeof random);
	return true;
}

char *pg_password_literal(PGconn *connection, const char *user, const char *password)
{
	/* with the algorithm named, libpq asks the server nothing (password_encryption) */
	char *verifier = PQencryptPasswordConn(connection, password, user, "scram-sha-256");
	if (!verifier)
		return NULL;
	char *literal = PQescapeLiteral(connection, verifier, strlen(verifier));
	PQfreemem(verifier);
	return literal;
}

void pg_passfile_append(char **passfile, const char *user, const char *password)
{
	size_t length = *passfile ? strlen(*passfile) : 0;
	char *text = xreallocarray(*passfile, length + 2 * strlen(user) + 2 * strlen(password) + sizeof "*:*:*::\n", 1);
	char *out = text + length;

	out += sprintf(out, "*:*:*:");
	out = passfile_field(out, user);
	*out++ = ':';
	out = passfile_field(out, password);
	*out++ = '\n';
	*out = '\0';
	*passfile = text;
}

uint64_t pg_lsn_parse(const char *text)
{
	unsigned int high, low;
	if (!text || sscanf(text, " %X/%X", &high, &low) != 2)
		return 0;
	return (uint64_t)high << 32 | low;
}

void pg_lsn_format(char *buffer, size_t size, uint64_t lsn)
{
	snprintf(buffer, size, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}
