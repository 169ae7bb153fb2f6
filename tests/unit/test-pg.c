/* test-pg: conninfo strings that pgha builds are read back by libpq exactly as meant; batches of requests on one loop end each on its own. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pg.h"
#include "tap.h"

static const char *const values[] = {
	"plain", "two words", "it's", "back\\slash", "\\'", "", "'; host=evil", "application_name='x'", "é ü",
};

/* The value libpq parses for key out of conninfo, or NULL. */
static char *parsed_value(const char *conninfo, const char *key)
{
	char *error = NULL;
	PQconninfoOption *options = PQconninfoParse(conninfo, &error);
	char *found = NULL;

	if (!options) {
		diag("libpq refused %s: %s", conninfo, error ? error : "?");
		PQfreemem(error);
		return NULL;
	}
	for (PQconninfoOption *option = options; option->keyword; option++)
		if (strcmp(option->keyword, key) == 0 && option->val)
			found = strdup(option->val);
	PQconninfoFree(options);
	return found;
}

/* What a batch's done heard: the order batches ended in. */
struct heard {
	int order[4];
	int count;
	bool hung_pending_when_refused_ended;
};

static struct heard heard;
static struct pg_request hung_request;

static void on_done(struct pg_request *requests, size_t count, void *context)
{
	(void)requests;
	(void)count;
	int which = (int)(intptr_t)context;
	if (which == 1)
		heard.hung_pending_when_refused_ended = !hung_request.timed_out && !hung_request.error[0];
	heard.order[heard.count++] = which;
}

/* A server that takes connections but never answers: a hung PostgreSQL. */
static int hung_listener(int *port)
{
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t length = sizeof address;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&address, &length) < 0)
		return -1;
	*port = ntohs(address.sin_port);
	return fd;
}

/* Batches on one loop end each on its own: a refused server's as soon as it refuses,
 * whatever a hung one's, still running, does; the hung one's at its deadline. */
static void batches_end_independently(void)
{
	sd_event *event = NULL;
	int port = 0;
	int listener = hung_listener(&port);
	if (!ok(listener >= 0 && sd_event_new(&event) >= 0, "a hung server and a loop"))
		return;
	hung_request = (struct pg_request){.target = {.host = "127.0.0.1", .port = port, .user = "nobody"}, .sql = "SELECT 1"};
	struct pg_request refused = {.target = {.host = "127.0.0.1", .port = 1, .user = "nobody"}, .sql = "SELECT 1"};
	pg_execute_start(event, &hung_request, 1, 1500, on_done, (void *)(intptr_t)2);
	pg_execute_start(event, &refused, 1, 1500, on_done, (void *)(intptr_t)1);
	pg_execute_start(event, NULL, 0, 1500, on_done, (void *)(intptr_t)3);
	is_int(heard.count, 0, "no batch ends within the call that starts it");
	/* a cancelled batch is never heard of, and leaves nothing open */
	struct pg_request cancelled = {.target = {.host = "127.0.0.1", .port = port, .user = "nobody"}, .sql = "SELECT 1"};
	pg_batch_cancel(pg_execute_start(event, &cancelled, 1, 1500, on_done, (void *)(intptr_t)4));
	ok(cancelled.connection == NULL, "a cancelled batch closes its connections");
	while (heard.count < 3 && sd_event_run(event, UINT64_MAX) >= 0)
		;
	ok(heard.count == 3 && heard.order[2] == 2, "the hung server's batch ends last (order %d %d %d)", heard.order[0],
	   heard.order[1], heard.order[2]);
	ok(heard.hung_pending_when_refused_ended, "the refused server's batch ended while the hung one's still waited");
	ok(!refused.succeeded && !refused.timed_out && strstr(refused.error, "cannot connect: "),
	   "the refused request is an error: %s", refused.error);
	ok(!hung_request.succeeded && hung_request.timed_out && strstr(hung_request.error, "no answer within 1500 ms"),
	   "the hung one timed out: %s", hung_request.error);
	ok(hung_request.connection == NULL, "and its connection is closed");
	pg_request_clear(&refused);
	pg_request_clear(&hung_request);
	pg_request_clear(&cancelled);
	sd_event_unref(event);
	close(listener);
}

static long long monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* A batch started late in a tick of the loop (after 300 ms of other clusters' turns). */
struct late_start {
	struct pg_request request;
	long long started_ms, ended_ms;
};

static void on_late_done(struct pg_request *requests, size_t count, void *context)
{
	(void)requests;
	(void)count;
	((struct late_start *)context)->ended_ms = monotonic_ms();
}

static int start_late(sd_event_source *source, void *userdata)
{
	struct late_start *late = userdata;
	(void)source;
	/* the rest of the tick: sd_event_now stays at its start */
	long long until = monotonic_ms() + 300;
	while (monotonic_ms() < until)
		;
	late->started_ms = monotonic_ms();
	pg_execute_start(sd_event_source_get_event(source), &late->request, 1, 500, on_late_done, late);
	return 0;
}

/* A batch's deadline counts from when it starts, not from the start of the loop's tick:
 * a member probed late in a long tick still gets its whole timeout before it counts as
 * not answering. */
static void deadline_counts_from_the_start(void)
{
	sd_event *event = NULL;
	sd_event_source *defer = NULL;
	int port = 0;
	int listener = hung_listener(&port);
	struct late_start late = {.request = {.target = {.host = "127.0.0.1", .port = 0, .user = "nobody"}, .sql = "SELECT 1"}};
	if (!ok(listener >= 0 && sd_event_new(&event) >= 0 &&
		sd_event_add_defer(event, &defer, start_late, &late) >= 0,
		"a hung server and a loop"))
		return;
	late.request.target.port = port;
	sd_event_source_set_enabled(defer, SD_EVENT_ONESHOT);
	while (!late.ended_ms && sd_event_run(event, UINT64_MAX) >= 0)
		;
	ok(late.request.timed_out && late.ended_ms - late.started_ms >= 500,
	   "a batch started 300 ms into a tick times out 500 ms after its start, not before (after %lld ms)",
	   late.ended_ms - late.started_ms);
	pg_request_clear(&late.request);
	sd_event_source_unref(defer);
	sd_event_unref(event);
	close(listener);
}

int main(void)
{
	batches_end_independently();
	deadline_counts_from_the_start();

	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char *conninfo = NULL;
		pg_conninfo_append(&conninfo, "host", "127.0.0.1");
		pg_conninfo_append(&conninfo, "application_name", values[i]);
		pg_conninfo_append(&conninfo, "port", "5432");
		char *application_name = parsed_value(conninfo, "application_name");
		char *host = parsed_value(conninfo, "host");
		char *port = parsed_value(conninfo, "port");
		ok(application_name && strcmp(application_name, values[i]) == 0, "value [%s] survives libpq's parser: %s",
		   values[i], conninfo);
		ok(host && strcmp(host, "127.0.0.1") == 0 && port && strcmp(port, "5432") == 0,
		   "and does not change its neighbours");
		free(application_name);
		free(host);
		free(port);
		free(conninfo);
	}

	/* nothing listens on port 1 of loopback: refused at once, with libpq's reason */
	struct pg_request request = {.target = {.host = "127.0.0.1", .port = 1, .user = "nobody"}, .sql = "SELECT 1"};
	pg_execute_all(&request, 1, 5000);
	ok(!request.succeeded && !request.timed_out && strstr(request.error, "cannot connect: "),
	   "a refused connection is an error, not a timeout: %s", request.error);
	ok(request.result == NULL && request.connection == NULL, "nothing is left open");
	pg_request_clear(&request);

	const char *const items[] = {"plain", "with \"quote\"", "back\\slash", "a,b", "{}", ""};
	char *array = pg_text_array(items, 6);
	is_str(array, "{\"plain\",\"with \\\"quote\\\"\",\"back\\\\slash\",\"a,b\",\"{}\",\"\"}",
	       "a text[] literal quotes every element");
	free(array);
	array = pg_text_array(NULL, 0);
	is_str(array, "{}", "an empty text[]");
	free(array);

	char *passfile = NULL;
	pg_passfile_append(&passfile, "pgha_replicator", "plain");
	pg_passfile_append(&passfile, "postgres", "a:b\\c 'd'");
	is_str(passfile, "*:*:*:pgha_replicator:plain\n*:*:*:postgres:a\\:b\\\\c 'd'\n",
	       "password file lines: ':' and '\\' escaped, one entry per line");
	free(passfile);

	/* a connection object is all libpq needs to make a verifier: the algorithm is named */
	PGconn *unconnected = PQconnectStart("host=127.0.0.1 port=1");
	char *literal = pg_password_literal(unconnected, "pgha_replicator", "0123456789abcdef");
	char *again = pg_password_literal(unconnected, "pgha_replicator", "0123456789abcdef");
	ok(literal && strncmp(literal, "'SCRAM-SHA-256$4096:", 20) == 0 && literal[strlen(literal) - 1] == '\'',
	   "a password becomes a quoted SCRAM-SHA-256 verifier: %s", literal ? literal : "(null)");
	ok(literal && !strstr(literal, "0123456789abcdef"), "which does not hold the password");
	ok(literal && again && strcmp(literal, again) != 0, "and is salted afresh each time");
	PQfreemem(literal);
	PQfreemem(again);
	PQfinish(unconnected);

	char *options = NULL;
	pg_server_option(&options, "statement_timeout", "2000");
	is_str(options, "-c statement_timeout=2000", "one server option");
	pg_server_option(&options, "auto_explain.log_min_duration", "a b\\c\td");
	is_str(options, "-c statement_timeout=2000 -c auto_explain.log_min_duration=a\\ b\\\\c\\\td",
	       "the next one after a space; white space and backslashes escaped as the server splits options");
	free(options);

	pg_execute_all(NULL, 0, 1000);
	ok(true, "no requests: returns at once");
	return done_testing();
}
