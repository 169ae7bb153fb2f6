/* test-log: secrets never reach a log line. */
#include "autoconfig.h"

#include <string.h>

#include "log.h"
#include "tap.h"

static const struct {
	const char *input, *expected;
} scrub_cases[] = {
	{"host=a user=replicator password=s3cret dbname=x", "host=a user=replicator password=*** dbname=x"},
	{"password='two words' port=1", "password=*** port=1"},
	{"password='it\\'s' port=1", "password=*** port=1"},
	{"PASSWORD = abcdef", "PASSWORD = ***"},
	{"password=ab", "password=**"},
	{"postgresql://replicator:s3cret@db:5432/x", "postgresql://replicator:***@db:5432/x"},
	{"postgresql://replicator@db:5432/x", "postgresql://replicator@db:5432/x"},
	{"Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer ***"},
	{"no secret here", "no secret here"},
	{"password", "password"},
	{"password=", "password="},
};

int main(void)
{
	for (size_t i = 0; i < sizeof scrub_cases / sizeof scrub_cases[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, "%s", scrub_cases[i].input);
		log_scrub(text);
		is_str(text, scrub_cases[i].expected, "scrub: %s", scrub_cases[i].input);
	}
	ok(strcmp(log_level_names[LOG_LEVEL_DEBUG], "debug") == 0 && log_level_names[LOG_LEVEL_DEBUG + 1] == NULL,
	   "log level names follow the enum");
	return done_testing();
}
