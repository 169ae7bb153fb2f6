/* test-pg: conninfo strings that pgha builds are read back by libpq exactly as meant. */
#include "autoconfig.h"

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

int main(void)
{
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
