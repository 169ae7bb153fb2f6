/* pghactl: the operator's command line: checks configurations and asks the running pghad over its control socket. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "control.h"
#include "exitcode.h"
#include "jsonpack.h"
#include "log.h"
#include "routes.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

/* pghad answers from its loop; this bounds a stuck or overloaded daemon. */
#define REQUEST_TIMEOUT_MS 10000

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pghactl [OPTION]... COMMAND [ARGUMENT]...\n"
		"Operate the PostgreSQL clusters that pghad keeps.\n"
		"\n"
		"Commands:\n"
		"  status [--json]  the running pghad's clusters and the errors of a rejected reload\n"
		"  reload           make pghad re-read its configuration; prints every error if it is refused\n"
		"  check [FILE]     check a configuration file (default: the one given by -c, else the running pghad's)\n"
		"  uri CLUSTER      the libpq URIs of a cluster: read-write, then read-only\n"
		"  plan [FILE]      what reloading FILE (default: the running pghad's) would do; changes nothing\n"
		"  purge CLUSTER --confirm CLUSTER\n"
		"                   delete all data of a cluster removed from the configuration\n"
		"  switchover CLUSTER [--to MEMBER]\n"
		"                   move the primary role to a synchronous standby without losing a commit\n"
		"  failover CLUSTER --to MEMBER [--force]\n"
		"                   fence the primary and promote MEMBER; --force even if it may lack commits\n"
		"  metrics          the running pghad's metrics in Prometheus's text format\n"
		"  history [CLUSTER] [--json]\n"
		"                   what pghad did: failovers, switchovers, promotions, clones, rewinds, reloads\n"
		"  pause [CLUSTER]  suspend automatic failover (of every cluster without CLUSTER)\n"
		"  resume [CLUSTER] let automatic failover act again\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE  pghad's configuration (default " SYSCONFDIR "/pgha.conf)\n"
		"  -s, --socket=PATH  pghad's control socket (default: daemon.control_socket of the configuration)\n"
		"  -h, --help         print this help and exit\n"
		"  -V, --version      print the version and exit\n"
		"See pghactl(1).\n");
}

/* The control socket: given, or named by the configuration (even one with mistakes,
 * which the operator may be about to reload), or the default. */
static void socket_path(const char *given, const char *config_path, char *path, size_t size)
{
	char *named;

	if (given) {
		snprintf(path, size, "%s", given);
		return;
	}
	named = config_peek_string(config_path, "daemon.control_socket");
	if (named) {
		snprintf(path, size, "%s", named);
		free(named);
		return;
	}
	snprintf(path, size, "%s", config_default("daemon.control_socket"));
	fprintf(stderr, "pghactl: %s does not name a control socket that can be read; trying the default %s\n",
		config_path, path);
}

/* Prints pghad's refusal of command as pghad worded it: its "error" unchanged, or the
 * whole reply when it has none, so that nothing the operator needs is lost on the way. */
static void print_refusal(const char *command, const json_t *reply)
{
	const char *error = json_string_value(json_object_get(reply, "error"));
	char *whole = error ? NULL : json_dumps(reply, JSON_COMPACT);

	fprintf(stderr, "pghactl: %s refused: %s\n", command, error ? error : whole ? whole : "(no reason given)");
	free(whole);
}

/* JSON carries only UTF-8: an argument that pghad must receive is checked before it is
 * sent, or a name pghad cannot read would be dropped from the request on the way. */
static bool sendable(const char *argument)
{
	json_t *string = json_string(argument);
	json_decref(string);
	if (!string)
		fprintf(stderr, "pghactl: \"%s\" is not valid UTF-8, which the control socket cannot carry\n", argument);
	return string != NULL;
}

/* Sends request (taken) and returns pghad's reply when it says ok; NULL when it cannot be
 * asked or refuses, with the reason printed. */
static json_t *request_ok(const char *path, json_t *request, const char *command)
{
	char why[512];
	json_t *reply = control_request(path, request, REQUEST_TIMEOUT_MS, why, sizeof why);

	json_decref(request);
	if (!reply) {
		fprintf(stderr, "pghactl: %s\n", why);
		return NULL;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		print_refusal(command, reply);
		json_decref(reply);
		return NULL;
	}
	return reply;
}

static json_t *ask(const char *path, const char *command)
{
	char why[512];
	json_t *request = jsonpack("{s:s}", "command", command);
	json_t *reply = control_request(path, request, REQUEST_TIMEOUT_MS, why, sizeof why);

	json_decref(request);
	if (!reply)
		fprintf(stderr, "pghactl: %s\n", why);
	else if (!json_is_true(json_object_get(reply, "ok")) && json_object_get(reply, "error"))
		print_refusal(command, reply);
	return reply;
}

static const char *cluster_or_dash(const json_t *object, const char *key)
{
	const char *text = json_string_value(json_object_get(object, key));
	return text && text[0] ? text : "-";
}

static void print_errors(const json_t *errors, const char *indent)
{
	size_t index;
	const json_t *error;

	json_array_foreach(errors, index, error)
		printf("%s%s\n", indent, json_string_value(error));
}

/* "512 B", "1.5 MB": a size for people (powers of 1000, as pg_size_pretty's are not). */
static void format_size(char *buffer, size_t size, double bytes)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	size_t unit = 0;
	while (bytes >= 1000 && unit + 1 < sizeof units / sizeof units[0]) {
		bytes /= 1000;
		unit++;
	}
	snprintf(buffer, size, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
}

/* "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
static void format_age(char *buffer, size_t size, long long ms)
{
	long long seconds = ms < 0 ? 0 : ms / 1000;
	if (seconds < 120)
		snprintf(buffer, size, "%lld s ago", seconds);
	else if (seconds < 7200)
		snprintf(buffer, size, "%lld min ago", seconds / 60);
	else if (seconds < 172800)
		snprintf(buffer, size, "%lld h ago", seconds / 3600);
	else
		snprintf(buffer, size, "%lld d ago", seconds / 86400);
}

/* The last column of a member: what is wrong now (an error), or what is under way (a
 * clone's progress), or else the last thing done, with its age: an old event never
 * reads as a current problem. */
static void member_note(const json_t *member, long long now_ms, char *buffer, size_t size)
{
	const char *error = json_string_value(json_object_get(member, "error"));
	const char *event = json_string_value(json_object_get(member, "last_event"));
	const json_t *clone = json_object_get(member, "clone");
	long long event_ms = (long long)json_integer_value(json_object_get(member, "last_event_ms"));
	const char *state = json_string_value(json_object_get(member, "state"));
	bool stopped = state && (strcmp(state, "stopped") == 0 || strcmp(state, "no data") == 0);

	if (json_is_object(clone)) {
		char streamed[32], total[32];
		const json_t *percent = json_object_get(clone, "percent");
		format_size(streamed, sizeof streamed, json_number_value(json_object_get(clone, "streamed_bytes")));
		if (json_is_number(percent)) {
			format_size(total, sizeof total, json_number_value(json_object_get(clone, "total_bytes")));
			snprintf(buffer, size, "cloning: %.0f%% of %s (%s copied, %s)", json_number_value(percent), total,
				 streamed, json_string_value(json_object_get(clone, "phase")));
		} else {
			snprintf(buffer, size, "cloning: %s copied (%s)", streamed,
				 json_string_value(json_object_get(clone, "phase")));
		}
		return;
	}
	if (error && error[0] && !stopped) {
		snprintf(buffer, size, "ERROR now: %s", error);
		return;
	}
	if (event && event[0] && event_ms > 0) {
		char age[32];
		format_age(age, sizeof age, now_ms - event_ms);
		snprintf(buffer, size, "%s: %s%s", age, json_is_true(json_object_get(member, "last_event_failed")) ? "failed: " : "",
			 event);
		return;
	}
	snprintf(buffer, size, "%s", error && error[0] ? error : "");
}

/* One line per member, as patronictl list shows them. */
static void print_members(const json_t *cluster, long long now_ms)
{
	const json_t *members = json_object_get(cluster, "members");
	const char *waiting = json_string_value(json_object_get(cluster, "waiting"));
	size_t index;
	const json_t *member;

	if (!json_array_size(members))
		return;
	printf("\n%s: synchronous_standby_names = '%s'\n", json_string_value(json_object_get(cluster, "name")),
	       json_string_value(json_object_get(cluster, "synchronous_standby_names")));
	const json_t *failover = json_object_get(cluster, "failover");
	if (json_is_true(json_object_get(failover, "paused")))
		printf("automatic failover is paused (pghactl resume %s)\n", json_string_value(json_object_get(cluster, "name")));
	const json_t *under_way = json_object_get(failover, "under_way");
	if (json_is_object(under_way))
		printf("%s under way (%s): %s -> %s: %s\n", json_string_value(json_object_get(under_way, "kind")),
		       json_string_value(json_object_get(under_way, "phase")),
		       json_string_value(json_object_get(under_way, "from")), json_string_value(json_object_get(under_way, "to")),
		       json_string_value(json_object_get(under_way, "reason")));
	const char *last = json_string_value(json_object_get(failover, "last"));
	if (last && last[0])
		printf("last failover: %s\n", last);
	if (waiting && waiting[0])
		printf("waiting: %s\n", waiting);
	printf("%-20s %6s  %-8s %-12s %4s %18s  %-9s %s\n", "MEMBER", "PORT", "ROLE", "STATE", "TL", "LAG (REPLAY)", "SYNC",
	       "ERROR NOW, OR LAST EVENT");
	json_array_foreach(members, index, member) {
		const json_t *lag = json_object_get(member, "lag_bytes");
		const json_t *replay = json_object_get(member, "replay_lag_seconds");
		char lag_text[64] = "", note[1400];
		if (json_is_integer(lag)) {
			char bytes[32];
			format_size(bytes, sizeof bytes, (double)json_integer_value(lag));
			if (json_is_number(replay))
				snprintf(lag_text, sizeof lag_text, "%s (%.3f s)", bytes, json_number_value(replay));
			else
				snprintf(lag_text, sizeof lag_text, "%s", bytes);
		}
		member_note(member, now_ms, note, sizeof note);
		printf("%-20s %6lld  %-8s %-12s %4lld %18s  %-9s %s%s\n", json_string_value(json_object_get(member, "name")),
		       (long long)json_integer_value(json_object_get(member, "port")),
		       json_string_value(json_object_get(member, "role")),
		       json_string_value(json_object_get(member, "state")),
		       (long long)json_integer_value(json_object_get(member, "timeline")), lag_text,
		       json_string_value(json_object_get(member, "sync_state")),
		       json_is_true(json_object_get(member, "configured")) ? "" : "(beyond replicas) ", note);
	}
}

/* "data jobs: 1 running (at most 1): c1-1 clone; queued: c2-1 clone, c3-0 initialize",
 * when any runs or waits. */
static void print_data_jobs(const json_t *jobs)
{
	const json_t *running = json_object_get(jobs, "running"), *queued = json_object_get(jobs, "queued");
	size_t index;
	const json_t *job;

	if (!json_array_size(running) && !json_array_size(queued))
		return;
	printf("data jobs: %zu running (at most %lld)", json_array_size(running),
	       (long long)json_integer_value(json_object_get(jobs, "limit")));
	json_array_foreach(running, index, job)
		printf("%s%s %s", index == 0 ? ": " : ", ", json_string_value(json_object_get(job, "member")),
		       json_string_value(json_object_get(job, "operation")));
	json_array_foreach(queued, index, job)
		printf("%s%s %s", index == 0 ? "; queued: " : ", ", json_string_value(json_object_get(job, "member")),
		       json_string_value(json_object_get(job, "action")));
	printf("\n");
}

static void print_status(const json_t *status)
{
	const json_t *errors = json_object_get(status, "reload_errors");
	size_t index;
	const json_t *cluster;

	printf("pghad %s (pid %lld), %s platform, configuration %s, %lld loop iterations\n",
	       json_string_value(json_object_get(status, "version")),
	       (long long)json_integer_value(json_object_get(status, "pid")),
	       json_string_value(json_object_get(status, "platform")),
	       json_string_value(json_object_get(status, "config")),
	       (long long)json_integer_value(json_object_get(status, "iterations")));
	if (json_array_size(errors)) {
		printf("the last reload was rejected; pghad runs the previous configuration:\n");
		print_errors(errors, "  ");
	}
	print_data_jobs(json_object_get(status, "data_jobs"));
	printf("\n%-20s %8s %12s  %-22s %s\n", "CLUSTER", "MEMBERS", "PORT", "SYNCHRONOUS", "FAILOVER");
	json_array_foreach(json_object_get(status, "clusters"), index, cluster) {
		const json_t *synchronous = json_object_get(cluster, "synchronous");
		const json_t *failover = json_object_get(cluster, "failover");
		const char *method = json_string_value(json_object_get(synchronous, "method"));
		char sync_text[64], failover_text[64];

		if (strcmp(method, "off") == 0)
			snprintf(sync_text, sizeof sync_text, "off");
		else
			snprintf(sync_text, sizeof sync_text, "%s %lld%s", strcmp(method, "any") == 0 ? "ANY" : "FIRST",
				 (long long)json_integer_value(json_object_get(synchronous, "number")),
				 json_is_true(json_object_get(synchronous, "required")) ? " required" : "");
		if (json_is_true(json_object_get(failover, "automatic")))
			snprintf(failover_text, sizeof failover_text, "automatic after %lld ms",
				 (long long)json_integer_value(json_object_get(failover, "timeout_ms")));
		else
			snprintf(failover_text, sizeof failover_text, "manual");
		printf("%-20s %8lld %12lld  %-22s %s\n", json_string_value(json_object_get(cluster, "name")),
		       (long long)json_integer_value(json_object_get(cluster, "replicas")),
		       (long long)json_integer_value(json_object_get(cluster, "port")), sync_text, failover_text);
	}
	/* ages are reckoned on pghad's clock, which stamped the events */
	long long now_ms = (long long)json_integer_value(json_object_get(status, "now_ms"));
	json_array_foreach(json_object_get(status, "clusters"), index, cluster)
		print_members(cluster, now_ms);
}

static int status_command(const char *path, bool as_json)
{
	json_t *reply = ask(path, "status");

	if (!reply)
		return PGHA_EXIT_FAILURE;
	if (as_json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("\n");
	} else {
		print_status(reply);
	}
	json_decref(reply);
	return PGHA_EXIT_OK;
}

static int reload_command(const char *path)
{
	json_t *reply = ask(path, "reload");
	int status;

	if (!reply)
		return PGHA_EXIT_FAILURE;
	if (json_is_true(json_object_get(reply, "ok"))) {
		printf("configuration reloaded\n");
		status = PGHA_EXIT_OK;
	} else {
		fprintf(stderr, "pghad refused the configuration and keeps the previous one:\n");
		const json_t *errors = json_object_get(reply, "errors");
		size_t index;
		const json_t *error;
		json_array_foreach(errors, index, error)
			fprintf(stderr, "%s\n", json_string_value(error));
		status = PGHA_EXIT_CONFIG;
	}
	json_decref(reply);
	return status;
}

/* pghad reads the file itself: the plan is made against what it runs and observes.
 * Without file, pghad plans a reload of the file it runs. */
static int plan_command(const char *path, const char *file)
{
	char absolute[4096];
	json_t *request, *reply;
	int status = PGHA_EXIT_FAILURE;

	request = jsonpack("{s:s}", "command", "plan");
	if (file) {
		if (!realpath(file, absolute)) {
			fprintf(stderr, "pghactl: %s: %s\n", file, strerror(errno));
			json_decref(request);
			return PGHA_EXIT_CONFIG;
		}
		if (!sendable(absolute)) {
			json_decref(request);
			return PGHA_EXIT_USAGE;
		}
		json_object_set_new(request, "file", json_string(absolute));
	}
	reply = request_ok(path, request, "plan");
	if (!reply)
		return status;
	printf("what reloading %s would do (nothing is changed):\n", json_string_value(json_object_get(reply, "file")));
	print_errors(json_object_get(reply, "plan"), "");
	if (json_is_true(json_object_get(reply, "valid"))) {
		status = PGHA_EXIT_OK;
	} else {
		printf("\nbut the file has errors, so a reload would keep the running configuration:\n");
		print_errors(json_object_get(reply, "errors"), "  ");
		status = PGHA_EXIT_CONFIG;
	}
	json_decref(reply);
	return status;
}

static int metrics_command(const char *path)
{
	json_t *reply = ask(path, "metrics");
	const char *text = json_string_value(json_object_get(reply, "text"));
	int status = text ? PGHA_EXIT_OK : PGHA_EXIT_FAILURE;

	if (text)
		fputs(text, stdout);
	json_decref(reply);
	return status;
}

/* "1.234 s", "250 ms", "2 min 5 s": a duration for people. */
static void format_duration(char *buffer, size_t size, long long ms)
{
	if (ms < 0)
		snprintf(buffer, size, "-");
	else if (ms < 1000)
		snprintf(buffer, size, "%lld ms", ms);
	else if (ms < 60000)
		snprintf(buffer, size, "%.1f s", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buffer, size, "%lld min %lld s", ms / 60000, ms / 1000 % 60);
	else
		snprintf(buffer, size, "%lld h %lld min", ms / 3600000, ms / 60000 % 60);
}

static void format_time(char *buffer, size_t size, long long ms)
{
	time_t seconds = (time_t)(ms / 1000);
	struct tm local;
	if (!localtime_r(&seconds, &local) || !strftime(buffer, size, "%Y-%m-%d %H:%M:%S", &local))
		snprintf(buffer, size, "%lld", ms);
}

static int history_command(const char *path, const char *cluster, bool as_json)
{
	json_t *request = jsonpack("{s:s}", "command", "history");
	if (cluster)
		json_object_set_new(request, "cluster", json_string(cluster));
	json_t *reply = request_ok(path, request, "history");
	if (!reply)
		return PGHA_EXIT_FAILURE;
	const json_t *entries = json_object_get(reply, "entries");
	if (as_json) {
		json_dumpf(entries, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("\n");
	} else {
		size_t index;
		const json_t *entry;
		printf("%-19s  %-16s %-20s %-16s %-10s %10s  %s\n", "TIME", "CLUSTER", "MEMBER", "KIND", "OUTCOME",
		       "DURATION", "REASON");
		json_array_foreach(entries, index, entry) {
			char when[64], duration[32];
			format_time(when, sizeof when, (long long)json_integer_value(json_object_get(entry, "at_ms")));
			format_duration(duration, sizeof duration,
					(long long)json_integer_value(json_object_get(entry, "duration_ms")));
			printf("%-19s  %-16s %-20s %-16s %-10s %10s  %s\n", when, cluster_or_dash(entry, "cluster"),
			       cluster_or_dash(entry, "member"), json_string_value(json_object_get(entry, "kind")),
			       json_string_value(json_object_get(entry, "outcome")), duration,
			       json_string_value(json_object_get(entry, "reason")));
		}
	}
	const char *error = json_string_value(json_object_get(reply, "error"));
	if (error && error[0])
		fprintf(stderr, "pghactl: pghad cannot keep its history on disk: %s\n", error);
	json_decref(reply);
	return PGHA_EXIT_OK;
}

/* check without a file: the file the running pghad runs, asked over its socket; the
 * default when no pghad answers. A new string. */
static char *daemon_config_path(const char *socket, const char *fallback)
{
	char why[512];
	json_t *request = jsonpack("{s:s}", "command", "status");
	json_t *reply = control_request(socket, request, REQUEST_TIMEOUT_MS, why, sizeof why);
	json_decref(request);
	const char *running = json_string_value(json_object_get(reply, "config"));
	char *path = strdup(running ? running : fallback);
	if (!running)
		fprintf(stderr, "pghactl: no pghad answers (%s); checking %s\n", reply ? "no file named" : why, fallback);
	json_decref(reply);
	if (!path) {
		fprintf(stderr, "pghactl: out of memory\n");
		exit(PGHA_EXIT_FAILURE);
	}
	return path;
}

/* Read from the configuration, so that it answers even while pghad is down. */
static int uri_command(const char *config_path, const char *name)
{
	struct diag_list errors = {0};
	struct pgha_config *config = config_load_file(config_path, &errors);
	int status = PGHA_EXIT_FAILURE;

	if (!config) {
		for (size_t i = 0; i < errors.count; i++)
			fprintf(stderr, "%s\n", errors.messages[i]);
		diag_free(&errors);
		return PGHA_EXIT_CONFIG;
	}
	for (size_t i = 0; i < config->cluster_count; i++) {
		if (strcmp(config->clusters[i].name, name) != 0)
			continue;
		char *read_write = routes_uri(&config->clusters[i], NULL, false);
		char *read_only = routes_uri(&config->clusters[i], NULL, true);
		printf("%s\n%s\n", read_write, read_only);
		free(read_write);
		free(read_only);
		status = PGHA_EXIT_OK;
	}
	if (status != PGHA_EXIT_OK)
		fprintf(stderr, "pghactl: no cluster \"%s\" in %s\n", name, config_path);
	config_free(config);
	return status;
}

static int purge_command(const char *path, const char *cluster, const char *confirm)
{
	char why[512];
	json_t *request = jsonpack("{s:s, s:s, s:s}", "command", "purge", "cluster", cluster, "confirm", confirm);
	json_t *reply = control_request(path, request, REQUEST_TIMEOUT_MS, why, sizeof why);
	int status = PGHA_EXIT_FAILURE;

	json_decref(request);
	if (!reply) {
		fprintf(stderr, "pghactl: %s\n", why);
	} else if (json_is_true(json_object_get(reply, "ok"))) {
		printf("cluster %s purged: its data directories and state are deleted\n", cluster);
		status = PGHA_EXIT_OK;
	} else {
		print_refusal("purge", reply);
	}
	json_decref(reply);
	return status;
}

/* How long pghactl follows a switchover or failover before it stops waiting. */
#define FAILOVER_WAIT_MS 120000

static const json_t *find_cluster(const json_t *status, const char *name)
{
	size_t index;
	const json_t *cluster;
	json_array_foreach(json_object_get(status, "clusters"), index, cluster)
		if (strcmp(json_string_value(json_object_get(cluster, "name")), name) == 0)
			return cluster;
	return NULL;
}

static const char *cluster_text(const json_t *cluster, const char *key)
{
	const char *text = json_string_value(json_object_get(cluster, key));
	return text ? text : "";
}

/* Follows the request in pghad's status until it is done or refused, showing each phase. */
static int follow_failover(const char *path, const char *name, const char *last_before)
{
	char why[512], shown[512] = "";
	json_t *ask_status = jsonpack("{s:s}", "command", "status");
	int status = PGHA_EXIT_FAILURE;
	bool ended = false; /* refused, completed, failed or gone: the outcome was shown */

	for (int waited = 0; waited < FAILOVER_WAIT_MS && !ended; waited += 100) {
		json_t *reply = control_request(path, ask_status, REQUEST_TIMEOUT_MS, why, sizeof why);
		const json_t *cluster = reply ? find_cluster(reply, name) : NULL;
		if (!cluster) {
			fprintf(stderr, "pghactl: %s\n", reply ? "the cluster left the configuration" : why);
			json_decref(reply);
			ended = true;
			break;
		}
		const json_t *failover = json_object_get(cluster, "failover");
		const json_t *under_way = json_object_get(failover, "under_way");
		bool pending = json_is_true(json_object_get(failover, "request_pending"));
		if (!pending && cluster_text(failover, "request_error")[0]) {
			fprintf(stderr, "pghactl: refused: %s\n", cluster_text(failover, "request_error"));
			json_decref(reply);
			ended = true;
			break;
		}
		if (json_is_object(under_way)) {
			char now[512];
			const char *waiting = cluster_text(cluster, "waiting");
			/* a phase waits for nothing while it acts: then it says what it acts on */
			if (waiting[0])
				snprintf(now, sizeof now, "%s: %s", cluster_text(under_way, "phase"), waiting);
			else
				snprintf(now, sizeof now, "%s: %s -> %s", cluster_text(under_way, "phase"),
					 cluster_text(under_way, "from"), cluster_text(under_way, "to")[0] ? cluster_text(under_way, "to") : "(not chosen yet)");
			if (strcmp(now, shown) != 0)
				printf("%s\n", now);
			snprintf(shown, sizeof shown, "%s", now);
		} else if (!pending && strcmp(cluster_text(failover, "last"), last_before) != 0) {
			const char *last = cluster_text(failover, "last");
			printf("%s\n", last);
			status = strstr(last, "completed") ? PGHA_EXIT_OK : PGHA_EXIT_FAILURE;
			json_decref(reply);
			ended = true;
			break;
		}
		json_decref(reply);
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
	}
	if (!ended)
		fprintf(stderr, "pghactl: no outcome within %d s; see pghactl status\n", FAILOVER_WAIT_MS / 1000);
	json_decref(ask_status);
	return status;
}

static int failover_command(const char *path, const char *kind, const char *cluster, const char *to, bool force)
{
	char why[512], last_before[512] = "";
	json_t *status_request = jsonpack("{s:s}", "command", "status");
	json_t *status = control_request(path, status_request, REQUEST_TIMEOUT_MS, why, sizeof why);
	json_decref(status_request);
	if (!status) {
		fprintf(stderr, "pghactl: %s\n", why);
		return PGHA_EXIT_FAILURE;
	}
	const json_t *found = find_cluster(status, cluster);
	if (found)
		snprintf(last_before, sizeof last_before, "%s", cluster_text(json_object_get(found, "failover"), "last"));
	json_decref(status);

	json_t *request = jsonpack("{s:s, s:s, s:b}", "command", kind, "cluster", cluster, "force", force);
	if (to)
		json_object_set_new(request, "to", json_string(to));
	json_t *reply = request_ok(path, request, kind);
	if (!reply)
		return PGHA_EXIT_FAILURE;
	json_decref(reply);
	printf("%s of %s%s%s requested\n", kind, cluster, to ? " to " : "", to ? to : "");
	return follow_failover(path, cluster, last_before);
}

static int pause_command(const char *path, const char *command, const char *cluster)
{
	char why[512];
	json_t *request = jsonpack("{s:s}", "command", command);
	if (cluster)
		json_object_set_new(request, "cluster", json_string(cluster));
	json_t *reply = control_request(path, request, REQUEST_TIMEOUT_MS, why, sizeof why);
	int status = PGHA_EXIT_FAILURE;

	json_decref(request);
	if (!reply) {
		fprintf(stderr, "pghactl: %s\n", why);
	} else if (!json_is_true(json_object_get(reply, "ok"))) {
		print_refusal(command, reply);
	} else {
		size_t index;
		const json_t *name;
		json_array_foreach(json_object_get(reply, "clusters"), index, name)
			printf("%s: automatic failover %s\n", json_string_value(name),
			       strcmp(command, "pause") == 0 ? "paused" : "resumed");
		status = PGHA_EXIT_OK;
	}
	json_decref(reply);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"config", required_argument, NULL, 'c'},
		{"socket", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = SYSCONFDIR "/pgha.conf", *socket_given = NULL;
	bool config_given = false;
	char path[512];
	int option;

	log_init("pghactl");
	while ((option = getopt_long(argc, argv, "+c:s:hV", long_options, NULL)) != -1) {
		switch (option) {
		case 'c':
			config_path = optarg;
			config_given = true;
			break;
		case 's':
			socket_given = optarg;
			break;
		case 'h':
			usage(stdout);
			return PGHA_EXIT_OK;
		case 'V':
			printf("pghactl (pgha) %s\n", PACKAGE_VERSION);
			return PGHA_EXIT_OK;
		default:
			usage(stderr);
			return PGHA_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return PGHA_EXIT_USAGE;
	}
	const char *command = argv[optind];
	int arguments = argc - optind - 1;
	char **argument = argv + optind + 1;

	if (strcmp(command, "check") == 0 && arguments <= 1) {
		if (arguments || config_given)
			return config_check_file(arguments ? argument[0] : config_path, stdout, stderr) ? PGHA_EXIT_OK
													  : PGHA_EXIT_CONFIG;
		socket_path(socket_given, config_path, path, sizeof path);
		char *running = daemon_config_path(path, config_path);
		bool valid = config_check_file(running, stdout, stderr);
		free(running);
		return valid ? PGHA_EXIT_OK : PGHA_EXIT_CONFIG;
	}
	if (strcmp(command, "status") == 0 && (arguments == 0 || (arguments == 1 && strcmp(argument[0], "--json") == 0))) {
		socket_path(socket_given, config_path, path, sizeof path);
		return status_command(path, arguments == 1);
	}
	if (strcmp(command, "reload") == 0 && arguments == 0) {
		socket_path(socket_given, config_path, path, sizeof path);
		return reload_command(path);
	}
	if (strcmp(command, "plan") == 0 && arguments <= 1) {
		socket_path(socket_given, config_path, path, sizeof path);
		return plan_command(path, arguments ? argument[0] : NULL);
	}
	if (strcmp(command, "metrics") == 0 && arguments == 0) {
		socket_path(socket_given, config_path, path, sizeof path);
		return metrics_command(path);
	}
	if (strcmp(command, "history") == 0 && arguments <= 2) {
		const char *cluster = NULL;
		bool as_json = false, valid = true;
		for (int i = 0; i < arguments; i++) {
			if (strcmp(argument[i], "--json") == 0 && !as_json)
				as_json = true;
			else if (argument[i][0] != '-' && !cluster)
				cluster = argument[i];
			else
				valid = false;
		}
		if (valid) {
			if (cluster && !sendable(cluster))
				return PGHA_EXIT_USAGE;
			socket_path(socket_given, config_path, path, sizeof path);
			return history_command(path, cluster, as_json);
		}
	}
	if (strcmp(command, "uri") == 0 && arguments == 1)
		return uri_command(config_path, argument[0]);
	if (strcmp(command, "purge") == 0) {
		/* deleting data needs the cluster's name twice: once to name it, once to confirm */
		if (arguments != 3 || strcmp(argument[1], "--confirm") != 0) {
			fprintf(stderr, "pghactl: purge deletes every data directory of a cluster; to do it, name the "
					"cluster twice: pghactl purge CLUSTER --confirm CLUSTER\n");
			return PGHA_EXIT_USAGE;
		}
		if (strcmp(argument[0], argument[2]) != 0) {
			fprintf(stderr, "pghactl: --confirm %s does not repeat the cluster's name %s: nothing deleted\n",
				argument[2], argument[0]);
			return PGHA_EXIT_USAGE;
		}
		if (!sendable(argument[0]))
			return PGHA_EXIT_USAGE;
		socket_path(socket_given, config_path, path, sizeof path);
		return purge_command(path, argument[0], argument[2]);
	}
	if ((strcmp(command, "switchover") == 0 || strcmp(command, "failover") == 0) && arguments >= 1) {
		const char *to = NULL;
		bool force = false, valid = true;
		for (int i = 1; i < arguments; i++) {
			if (strcmp(argument[i], "--to") == 0 && i + 1 < arguments)
				to = argument[++i];
			else if (strcmp(argument[i], "--force") == 0 && strcmp(command, "failover") == 0)
				force = true;
			else
				valid = false;
		}
		if (strcmp(command, "failover") == 0 && !to) {
			fprintf(stderr, "pghactl: failover needs the member to promote: pghactl failover CLUSTER --to MEMBER\n");
			return PGHA_EXIT_USAGE;
		}
		if (valid) {
			if (!sendable(argument[0]) || (to && !sendable(to)))
				return PGHA_EXIT_USAGE;
			socket_path(socket_given, config_path, path, sizeof path);
			return failover_command(path, command, argument[0], to, force);
		}
	}
	if ((strcmp(command, "pause") == 0 || strcmp(command, "resume") == 0) && arguments <= 1) {
		if (arguments && !sendable(argument[0]))
			return PGHA_EXIT_USAGE;
		socket_path(socket_given, config_path, path, sizeof path);
		return pause_command(path, command, arguments ? argument[0] : NULL);
	}
	fprintf(stderr, "pghactl: unknown command or arguments: %s\n", command);
	usage(stderr);
	return PGHA_EXIT_USAGE;
}
