/* fuzz-control: a libFuzzer target over the control protocol: request lines to the handler of a daemon started on a configuration, with no member running; every line must be answered with one JSON object that says ok or why not. */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../daemon-fixture.h"
#include "control.h"
#include "jsonpack.h"
#include "memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct daemon_fixture fixture;
static bool prepared;

static void remove_fixture(void)
{
	daemon_fixture_remove(&fixture);
}

/* Once per process: the configuration in a temporary directory, removed at exit. */
static void prepare(void)
{
	if (prepared)
		return;
	prepared = true;
	unsetenv("NOTIFY_SOCKET"); /* a reload notifies the service manager: there is none */
	jsonpack_set_strict(true);  /* a reply whose format does not fit its arguments aborts */
	if (!daemon_fixture_create(&fixture, FIXTURE_LOCAL))
		abort();
	atexit(remove_fixture);
}

/* plan reads the file a request names: kept to files of the fixture, so that the fuzzer
 * reads nothing else of the machine (a missing file there stands for any other). */
static char *confine(const char *line, size_t *length)
{
	json_t *request = json_loadb(line, *length, 0, NULL);
	const char *file = json_string_value(json_object_get(request, "file"));
	size_t prefix = strlen(fixture.directory);
	char *confined = NULL;

	if (file && (strncmp(file, fixture.directory, prefix) != 0 || file[prefix] != '/' || strstr(file, "/.."))) {
		char *inside = xasprintf("%s/outside.conf", fixture.directory);
		json_object_set_new(request, "file", json_string(inside));
		free(inside);
		confined = json_dumps(request, JSON_COMPACT);
		*length = strlen(confined);
	}
	json_decref(request);
	return confined;
}

/* One line of JSON, an object with "ok" a boolean, and "error" a reason when it is false. */
static void check_answer(const char *answer)
{
	size_t length = strlen(answer);
	if (length == 0 || answer[length - 1] != '\n' || memchr(answer, '\n', length - 1))
		abort();
	json_t *reply = json_loadb(answer, length - 1, 0, NULL);
	const json_t *ok = json_object_get(reply, "ok");
	const char *error = json_string_value(json_object_get(reply, "error"));
	if (!json_is_object(reply) || !json_is_boolean(ok))
		abort();
	if (json_is_false(ok) && (!error || !error[0]))
		abort();
	if (error && strcmp(error, "pghad could not encode its reply (a bug: see its log)") == 0)
		abort(); /* control_answer's last resort: a reply builder failed */
	json_decref(reply);
}

static void answer_lines(const char *text, size_t size)
{
	const char *line = text, *end = text + size;

	while (line < end) {
		const char *newline = memchr(line, '\n', (size_t)(end - line));
		size_t length = newline ? (size_t)(newline - line) : (size_t)(end - line);
		size_t asked_length = length;
		char *confined = confine(line, &asked_length);
		char *answer = control_answer(confined ? confined : line, asked_length, daemon_control, &fixture.daemon);
		check_answer(answer);
		free(answer);
		free(confined);
		line += length + 1;
		if (!newline)
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* each input from a fresh daemon, so that a crash replays from its input alone: once
	 * with members that have no data yet, once with alpha observed running (which the
	 * failover checks need to get further) */
	static const enum fixture_observation observations[] = {FIXTURE_NO_DATA, FIXTURE_ALPHA_RUNNING};

	prepare();
	for (size_t i = 0; i < sizeof observations / sizeof observations[0]; i++) {
		if (!daemon_fixture_start(&fixture, observations[i]))
			abort();
		answer_lines((const char *)data, size);
		daemon_fixture_stop(&fixture);
	}
	return 0;
}
