/* pg-probe: runs one query on several servers through pg_execute_all and prints each outcome, for the integration tests of src/pg.c. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory.h"
#include "pg.h"

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: pg-probe TIMEOUT_MS USER SQL HOST:PORT...\n"
				"prints per target: HOST:PORT<TAB>ok|error|timeout<TAB>first value or reason\n"
				"PG_PROBE_STATEMENT=NAME: SQL runs PG_PROBE_RUNS times (default 1) on a kept\n"
				"connection per target, as the statement NAME; a line per run\n"
				"PG_PROBE_SYNC=1: with PG_PROBE_STATEMENT, the odd runs (the first, the third...)\n"
				"send a Sync alone instead (sync_only), printed with the value \"sync\"\n"
				"PG_PROBE_PAUSE_MS=MS: a pause after each run's lines (flushed)\n");
		return 2;
	}
	int timeout_ms = atoi(argv[1]);
	size_t count = (size_t)argc - 4;
	const char *statement = getenv("PG_PROBE_STATEMENT");
	int runs = statement && getenv("PG_PROBE_RUNS") ? atoi(getenv("PG_PROBE_RUNS")) : 1;
	bool sync = statement && getenv("PG_PROBE_SYNC") && strcmp(getenv("PG_PROBE_SYNC"), "1") == 0;
	int pause_ms = getenv("PG_PROBE_PAUSE_MS") ? atoi(getenv("PG_PROBE_PAUSE_MS")) : 0;
	struct pg_request *requests = xcalloc(count, sizeof *requests);
	struct pg_session *sessions = xcalloc(count, sizeof *sessions);
	char **hosts = xcalloc(count, sizeof *hosts);

	for (size_t i = 0; i < count; i++) {
		hosts[i] = xstrdup(argv[4 + i]);
		char *colon = strrchr(hosts[i], ':');
		if (!colon) {
			fprintf(stderr, "pg-probe: %s is not HOST:PORT\n", argv[4 + i]);
			return 2;
		}
		*colon = '\0';
	}
	for (int run = 0; run < runs; run++) {
		for (size_t i = 0; i < count; i++) {
			char *colon = strrchr(argv[4 + i], ':');
			requests[i] = (struct pg_request){
				.target = {.host = hosts[i], .port = atoi(colon + 1), .user = argv[2]},
				.sql = argv[3],
				.statement = statement,
				.session = statement ? &sessions[i] : NULL,
				.sync_only = sync && run % 2 == 0,
			};
		}
		pg_execute_all(requests, count, timeout_ms);
		for (size_t i = 0; i < count; i++) {
			const struct pg_request *request = &requests[i];
			if (request->succeeded && request->sync_only)
				printf("%s\tok\tsync\n", argv[4 + i]);
			else if (request->succeeded)
				printf("%s\tok\t%s\n", argv[4 + i],
				       PQntuples(request->result) > 0 ? PQgetvalue(request->result, 0, 0) : "");
			else
				printf("%s\t%s\t%s\n", argv[4 + i], request->timed_out ? "timeout" : "error", request->error);
			pg_request_clear(&requests[i]);
		}
		fflush(stdout);
		if (pause_ms > 0)
			nanosleep(&(struct timespec){.tv_sec = pause_ms / 1000, .tv_nsec = pause_ms % 1000 * 1000000L}, NULL);
	}
	for (size_t i = 0; i < count; i++) {
		pg_session_close(&sessions[i]);
		free(hosts[i]);
	}
	free(sessions);
	free(requests);
	free(hosts);
	return 0;
}
