/* pg-probe: runs one query on several servers through pg_execute_all and prints each outcome, for the integration tests of src/pg.c. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "pg.h"

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: pg-probe TIMEOUT_MS USER SQL HOST:PORT...\n"
				"prints per target: HOST:PORT<TAB>ok|error|timeout<TAB>first value or reason\n");
		return 2;
	}
	int timeout_ms = atoi(argv[1]);
	size_t count = (size_t)argc - 4;
	struct pg_request *requests = xcalloc(count, sizeof *requests);
	char **hosts = xcalloc(count, sizeof *hosts);

	for (size_t i = 0; i < count; i++) {
		hosts[i] = xstrdup(argv[4 + i]);
		char *colon = strrchr(hosts[i], ':');
		if (!colon) {
			fprintf(stderr, "pg-probe: %s is not HOST:PORT\n", argv[4 + i]);
			return 2;
		}
		*colon = '\0';
		requests[i].target = (struct pg_target){.host = hosts[i], .port = atoi(colon + 1), .user = argv[2]};
		requests[i].sql = argv[3];
	}
	pg_execute_all(requests, count, timeout_ms);
	for (size_t i = 0; i < count; i++) {
		const struct pg_request *request = &requests[i];
		if (request->succeeded)
			printf("%s\tok\t%s\n", argv[4 + i],
			       PQntuples(request->result) > 0 ? PQgetvalue(request->result, 0, 0) : "");
		else
			printf("%s\t%s\t%s\n", argv[4 + i], request->timed_out ? "timeout" : "error", request->error);
		pg_request_clear(&requests[i]);
		free(hosts[i]);
	}
	free(requests);
	free(hosts);
	return 0;
}
