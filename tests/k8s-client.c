/* k8s-client: runs src/k8s.c's calls read from stdin, one JSON answer per line on stdout, for the integration tests of the API client. */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "k8s.h"
#include "log.h"
#include "memory.h"

static const char usage[] =
	"usage: k8s-client [--kubeconfig FILE] [--connect-timeout-ms N] [--timeout-ms N]\n"
	"Without --kubeconfig, the pod's service account (KUBERNETES_SERVICE_HOST/PORT,\n"
	"PGHA_K8S_SERVICEACCOUNT_DIR). Reads one JSON array per line from stdin:\n"
	"  [\"info\"]\n"
	"  [\"request\", METHOD, PATH, BODY|null, CONTENT_TYPE|null]\n"
	"  [\"get\", PATH]    [\"list\", PATH, SELECTOR|null, RESOURCE_VERSION|null]\n"
	"  [\"create\", PATH, OBJECT]    [\"replace\", PATH, OBJECT]\n"
	"  [\"patch\", PATH, PATCH, RESOURCE_VERSION|null]    [\"delete\", PATH, GRACE, UID|null]\n"
	"  [\"update\", PATH, CHANGES|null, ATTEMPTS]  (CHANGES merged into the object; null gives up)\n"
	"  [\"stream\", PATH]  (a watch: {\"status\", \"why\", \"lines\": [each line's object]})\n"
	"and prints {\"status\", \"why\", \"object\", \"items\", \"list_version\", \"requests\", \"elapsed_ms\"}.\n"
	"Without a client: {\"error\": why}, exit status 1.\n";

static long long now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool merge_changes(json_t *object, void *context, char *why, size_t why_size)
{
	json_t *changes = context;

	if (json_is_null(changes)) {
		snprintf(why, why_size, "nothing to change");
		return false;
	}
	json_object_update_recursive(object, changes);
	return true;
}

struct stream {
	json_t *lines;
	bool over;
	int status;
	char why[1024];
};

static void stream_line(json_t *line, void *context)
{
	struct stream *stream = context;
	json_array_append(stream->lines, line);
}

static void stream_done(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct stream *stream = context;
	(void)reply;
	(void)sent_ms;
	stream->over = true;
	stream->status = status;
	snprintf(stream->why, sizeof stream->why, "%s", why ? why : "");
}

static const char *string_or_null(json_t *value)
{
	return json_string_value(value);
}

static json_t *run(struct k8s_client *client, json_t *command)
{
	const char *name = json_string_value(json_array_get(command, 0));
	const char *path = json_string_value(json_array_get(command, 1));
	json_t *argument = json_array_get(command, 2), *third = json_array_get(command, 3);
	json_t *answer = json_object(), *object = NULL, *items = NULL;
	char why[2048] = "", list_version[128] = "";
	int status;
	long long started = now_ms();

	if (!name || (strcmp(name, "info") != 0 && !path)) {
		json_object_set_new(answer, "error", json_string("a command is [NAME, PATH, ...]"));
		return answer;
	}
	if (strcmp(name, "info") == 0) {
		json_object_set_new(answer, "server", json_string(k8s_client_server(client)));
		json_object_set_new(answer, "namespace", json_string(k8s_client_namespace(client)));
		json_object_set_new(answer, "requests", json_integer((json_int_t)k8s_client_requests(client)));
		return answer;
	} else if (strcmp(name, "request") == 0) {
		/* path is the method here: ["request", METHOD, PATH, BODY, CONTENT_TYPE] */
		const char *request_path = string_or_null(argument);
		status = request_path ? k8s_request(client, path, request_path, json_is_null(third) ? NULL : third,
						    string_or_null(json_array_get(command, 4)), &object, why, sizeof why)
				      : -2;
	} else if (strcmp(name, "get") == 0) {
		status = k8s_get(client, path, &object, why, sizeof why);
	} else if (strcmp(name, "list") == 0) {
		status = k8s_list(client, path, string_or_null(argument), string_or_null(third), &items, list_version,
				  sizeof list_version, why, sizeof why);
	} else if (strcmp(name, "create") == 0) {
		status = k8s_create(client, path, argument, &object, why, sizeof why);
	} else if (strcmp(name, "replace") == 0) {
		status = k8s_replace(client, path, argument, &object, why, sizeof why);
	} else if (strcmp(name, "patch") == 0) {
		status = k8s_merge_patch(client, path, argument, string_or_null(third), &object, why, sizeof why);
	} else if (strcmp(name, "delete") == 0) {
		status = k8s_delete(client, path, (int)json_integer_value(argument), string_or_null(third), why,
				    sizeof why);
	} else if (strcmp(name, "update") == 0) {
		status = k8s_update(client, path, merge_changes, argument, (int)json_integer_value(third), &object, why,
				    sizeof why);
	} else if (strcmp(name, "stream") == 0) {
		struct stream stream = {.lines = json_array(), .status = -1};
		if (k8s_stream(client, path, now_ms() + 10000, stream_line, stream_done, &stream, why, sizeof why))
			k8s_run(client, &stream.over, now_ms() + 15000);
		else
			snprintf(stream.why, sizeof stream.why, "%s", why);
		status = stream.status;
		snprintf(why, sizeof why, "%s", stream.why);
		json_object_set_new(answer, "lines", stream.lines);
	} else {
		json_object_set_new(answer, "error", json_string("unknown command"));
		return answer;
	}
	json_object_set_new(answer, "status", json_integer(status));
	json_object_set_new(answer, "elapsed_ms", json_integer(now_ms() - started));
	json_object_set_new(answer, "requests", json_integer((json_int_t)k8s_client_requests(client)));
	if (status < 200 || status > 299)
		json_object_set_new(answer, "why", json_string(why));
	if (object)
		json_object_set_new(answer, "object", object);
	if (items) {
		json_object_set_new(answer, "items", items);
		json_object_set_new(answer, "list_version", json_string(list_version));
	}
	return answer;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"kubeconfig", required_argument, NULL, 'k'},
		{"connect-timeout-ms", required_argument, NULL, 'c'},
		{"timeout-ms", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct k8s_limits limits = {0};
	const char *kubeconfig = NULL;
	char why[1024], *line = NULL;
	size_t capacity = 0;
	int option;

	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (option) {
		case 'k':
			kubeconfig = optarg;
			break;
		case 'c':
			limits.connect_timeout_ms = atoi(optarg);
			break;
		case 't':
			limits.timeout_ms = atoi(optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	log_init("k8s-client");
	log_set_level(LOG_LEVEL_DEBUG);
	struct k8s_client *client = k8s_client_new(kubeconfig, &limits, why, sizeof why);
	if (!client) {
		json_t *answer = json_pack("{s:s}", "error", why);
		json_dumpf(answer, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(answer);
		return 1;
	}
	while (getline(&line, &capacity, stdin) > 0) {
		json_error_t error;
		json_t *command = json_loads(line, 0, &error);
		json_t *answer = json_is_array(command) ? run(client, command)
							: json_pack("{s:s}", "error", "a command is a JSON array");
		json_dumpf(answer, stdout, JSON_COMPACT);
		putchar('\n');
		fflush(stdout);
		json_decref(answer);
		json_decref(command);
	}
	free(line);
	k8s_client_free(client);
	return 0;
}
