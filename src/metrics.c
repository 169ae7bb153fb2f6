/* metrics: pghad's metrics in Prometheus's text exposition format, made from the status document pghactl status --json shows, and the counters and histogram pghad keeps for them. */
#include "autoconfig.h"

#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "jsonpack.h"
#include "memory.h"

/* An iteration takes milliseconds when all answer; a probe or a statement that runs
 * into its deadline takes seconds. */
const double metrics_iteration_bounds[METRICS_ITERATION_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1,
								    0.25,  0.5,  1,     2.5,  5};
const char *const metrics_outcome_names[METRICS_OUTCOMES] = {"completed", "abandoned"};

/* The failover kinds a cluster's counts are kept under (state.h's names but "none"). */
static const char *const failover_kinds[] = {"automatic", "switchover", "manual", NULL};
static const char *const member_roles[] = {"primary", "replica", "unknown", NULL};

void metrics_observe(struct metrics_histogram *histogram, double seconds)
{
	for (size_t i = 0; i < METRICS_ITERATION_BUCKETS; i++)
		if (seconds <= metrics_iteration_bounds[i]) {
			histogram->counts[i]++;
			break;
		}
	histogram->count++;
	histogram->sum += seconds;
}

json_t *metrics_histogram_json(const struct metrics_histogram *histogram)
{
	json_t *bounds = json_array(), *counts = json_array();
	for (size_t i = 0; i < METRICS_ITERATION_BUCKETS; i++) {
		json_array_append_new(bounds, json_real(metrics_iteration_bounds[i]));
		json_array_append_new(counts, json_integer((json_int_t)histogram->counts[i]));
	}
	return jsonpack("{s:o, s:o, s:I, s:f}", "bounds", bounds, "counts", counts, "count",
			(json_int_t)histogram->count, "sum", histogram->sum);
}

/* ---- the text format ---- */

/* A label value as the text format quotes it: backslash, double quote and newline escaped. */
static void put_label_value(FILE *out, const char *value)
{
	for (const char *c = value ? value : ""; *c; c++) {
		if (*c == '\\' || *c == '"')
			fprintf(out, "\\%c", *c);
		else if (*c == '\n')
			fputs("\\n", out);
		else
			fputc(*c, out);
	}
}

/* labels: name, value, name, value, ..., NULL. */
static void put_sample(FILE *out, const char *name, const char *suffix, const char *const *labels, double value)
{
	fprintf(out, "%s%s", name, suffix ? suffix : "");
	if (labels && labels[0]) {
		fputc('{', out);
		for (size_t i = 0; labels[i]; i += 2) {
			fprintf(out, "%s%s=\"", i ? "," : "", labels[i]);
			put_label_value(out, labels[i + 1]);
			fputc('"', out);
		}
		fputc('}', out);
	}
	if (isinf(value))
		fputs(value > 0 ? " +Inf\n" : " -Inf\n", out);
	else if (isnan(value))
		fputs(" NaN\n", out);
	else if (value == floor(value) && fabs(value) < 1e15)
		fprintf(out, " %.0f\n", value);
	else
		fprintf(out, " %.9g\n", value);
}

static void put_header(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *text_of(const json_t *object, const char *key)
{
	const char *text = json_string_value(json_object_get(object, key));
	return text ? text : "";
}

static double number_of(const json_t *object, const char *key)
{
	return json_number_value(json_object_get(object, key));
}

/* One value per cluster, from a function of the cluster object. */
typedef bool (*cluster_value_fn)(const json_t *cluster, double *value);

static void cluster_family(FILE *out, const json_t *clusters, const char *name, const char *type, const char *help,
			   cluster_value_fn value_of)
{
	size_t index;
	const json_t *cluster;
	bool headed = false;
	json_array_foreach(clusters, index, cluster) {
		double value;
		if (!value_of(cluster, &value))
			continue;
		if (!headed)
			put_header(out, name, type, help);
		headed = true;
		const char *labels[] = {"cluster", text_of(cluster, "name"), NULL};
		put_sample(out, name, NULL, labels, value);
	}
}

/* One value per member, from a function of the member object. */
typedef bool (*member_value_fn)(const json_t *member, double *value);

static void member_family(FILE *out, const json_t *clusters, const char *name, const char *type, const char *help,
			  member_value_fn value_of)
{
	size_t index, member_index;
	const json_t *cluster, *member;
	bool headed = false;
	json_array_foreach(clusters, index, cluster) {
		json_array_foreach(json_object_get(cluster, "members"), member_index, member) {
			double value;
			if (!value_of(member, &value))
				continue;
			if (!headed)
				put_header(out, name, type, help);
			headed = true;
			const char *labels[] = {"cluster", text_of(cluster, "name"), "member", text_of(member, "name"), NULL};
			put_sample(out, name, NULL, labels, value);
		}
	}
}

static bool replicas_of(const json_t *cluster, double *value)
{
	*value = number_of(cluster, "replicas");
	return true;
}

static bool members_up_of(const json_t *cluster, double *value)
{
	size_t index;
	const json_t *member;
	*value = 0;
	json_array_foreach(json_object_get(cluster, "members"), index, member)
		*value += json_is_true(json_object_get(member, "reachable"));
	return true;
}

static bool primaries_of(const json_t *cluster, double *value)
{
	size_t index;
	const json_t *member;
	*value = 0;
	json_array_foreach(json_object_get(cluster, "members"), index, member)
		*value += strcmp(text_of(member, "role"), "primary") == 0;
	return true;
}

static bool paused_of(const json_t *cluster, double *value)
{
	*value = json_is_true(json_object_get(json_object_get(cluster, "failover"), "paused"));
	return true;
}

static bool under_way_of(const json_t *cluster, double *value)
{
	*value = json_is_object(json_object_get(json_object_get(cluster, "failover"), "under_way"));
	return true;
}

static bool lease_held_of(const json_t *cluster, double *value)
{
	const json_t *lease = json_object_get(cluster, "lease");
	*value = json_is_true(json_object_get(lease, "held"));
	return json_is_object(lease);
}

static bool up_of(const json_t *member, double *value)
{
	*value = json_is_true(json_object_get(member, "reachable"));
	return true;
}

static bool timeline_of(const json_t *member, double *value)
{
	*value = number_of(member, "timeline");
	return json_is_true(json_object_get(member, "reachable")) && *value > 0;
}

static bool lag_bytes_of(const json_t *member, double *value)
{
	const json_t *lag = json_object_get(member, "lag_bytes");
	*value = json_number_value(lag);
	return json_is_number(lag);
}

static bool replay_lag_of(const json_t *member, double *value)
{
	const json_t *lag = json_object_get(member, "replay_lag_seconds");
	*value = json_number_value(lag);
	return json_is_number(lag);
}

static bool synchronous_of(const json_t *member, double *value)
{
	const char *sync_state = text_of(member, "sync_state");
	*value = strcmp(sync_state, "sync") == 0 || strcmp(sync_state, "quorum") == 0;
	return strcmp(text_of(member, "role"), "replica") == 0;
}

static bool clone_total_of(const json_t *member, double *value)
{
	const json_t *clone = json_object_get(member, "clone");
	*value = number_of(clone, "total_bytes");
	return json_is_object(clone) && json_is_integer(json_object_get(clone, "total_bytes"));
}

static bool clone_streamed_of(const json_t *member, double *value)
{
	const json_t *clone = json_object_get(member, "clone");
	*value = number_of(clone, "streamed_bytes");
	return json_is_object(clone);
}

static void put_loop(FILE *out, const json_t *status)
{
	const json_t *histogram = json_object_get(json_object_get(status, "loop"), "iteration_seconds");
	const json_t *bounds = json_object_get(histogram, "bounds"), *counts = json_object_get(histogram, "counts");
	const char *name = "pgha_loop_iteration_duration_seconds";

	put_header(out, "pgha_loop_iterations_total", "counter", "Reconcile loop iterations since pghad started.");
	put_sample(out, "pgha_loop_iterations_total", NULL, NULL, number_of(status, "iterations"));
	if (!json_is_object(histogram))
		return;
	put_header(out, name, "histogram", "Duration of each cluster's turn of the reconcile loop (observe, decide, act).");
	double cumulative = 0;
	for (size_t i = 0; i < json_array_size(bounds) && i < json_array_size(counts); i++) {
		char bound[32];
		snprintf(bound, sizeof bound, "%g", json_number_value(json_array_get(bounds, i)));
		cumulative += json_number_value(json_array_get(counts, i));
		const char *labels[] = {"le", bound, NULL};
		put_sample(out, name, "_bucket", labels, cumulative);
	}
	const char *labels[] = {"le", "+Inf", NULL};
	put_sample(out, name, "_bucket", labels, number_of(histogram, "count"));
	put_sample(out, name, "_sum", NULL, number_of(histogram, "sum"));
	put_sample(out, name, "_count", NULL, number_of(histogram, "count"));
}

static void put_reloads(FILE *out, const json_t *status)
{
	const json_t *reloads = json_object_get(status, "reloads");
	static const char *const results[] = {"accepted", "refused", NULL};

	put_header(out, "pgha_reloads_total", "counter", "Configuration reloads since pghad started, by result.");
	for (size_t i = 0; results[i]; i++) {
		const char *labels[] = {"result", results[i], NULL};
		put_sample(out, "pgha_reloads_total", NULL, labels, number_of(reloads, results[i]));
	}
	put_header(out, "pgha_config_last_reload_refused", "gauge",
		   "1 when the last reload was refused and pghad runs the configuration before it.");
	put_sample(out, "pgha_config_last_reload_refused", NULL, NULL,
		   json_array_size(json_object_get(status, "reload_errors")) > 0);
}

static void put_primary(FILE *out, const json_t *clusters)
{
	size_t index, member_index;
	const json_t *cluster, *member;

	put_header(out, "pgha_cluster_primary", "gauge", "1 for each member that runs as its cluster's primary.");
	json_array_foreach(clusters, index, cluster)
		json_array_foreach(json_object_get(cluster, "members"), member_index, member)
			if (strcmp(text_of(member, "role"), "primary") == 0) {
				const char *labels[] = {"cluster", text_of(cluster, "name"), "member", text_of(member, "name"),
							NULL};
				put_sample(out, "pgha_cluster_primary", NULL, labels, 1);
			}
}

static void put_failovers(FILE *out, const json_t *clusters)
{
	size_t index;
	const json_t *cluster;
	bool headed = false;

	put_header(out, "pgha_failovers_total", "counter",
		   "Failovers ended since pghad started, by kind (automatic, switchover, manual) and outcome.");
	json_array_foreach(clusters, index, cluster) {
		const json_t *counts = json_object_get(json_object_get(cluster, "failover"), "counts");
		for (size_t k = 0; failover_kinds[k]; k++)
			for (size_t o = 0; o < METRICS_OUTCOMES; o++) {
				const char *labels[] = {"cluster", text_of(cluster, "name"), "kind", failover_kinds[k],
							"outcome", metrics_outcome_names[o], NULL};
				put_sample(out, "pgha_failovers_total", NULL, labels,
					   number_of(json_object_get(counts, failover_kinds[k]), metrics_outcome_names[o]));
			}
	}
	json_array_foreach(clusters, index, cluster) {
		const json_t *last = json_object_get(json_object_get(cluster, "failover"), "last_ended");
		if (!json_is_object(last))
			continue;
		if (!headed)
			put_header(out, "pgha_last_failover_duration_seconds", "gauge",
				   "Duration of the last failover that ended, from its start to its outcome.");
		headed = true;
		const char *labels[] = {"cluster", text_of(cluster, "name"), "kind", text_of(last, "kind"), "outcome",
					text_of(last, "outcome"), NULL};
		put_sample(out, "pgha_last_failover_duration_seconds", NULL, labels, number_of(last, "duration_ms") / 1000.0);
	}
}

static void put_roles(FILE *out, const json_t *clusters)
{
	size_t index, member_index;
	const json_t *cluster, *member;

	put_header(out, "pgha_member_role", "gauge",
		   "1 for the role a member runs as (primary, replica, or unknown when it does not answer), 0 for the others.");
	json_array_foreach(clusters, index, cluster)
		json_array_foreach(json_object_get(cluster, "members"), member_index, member)
			for (size_t r = 0; member_roles[r]; r++) {
				const char *labels[] = {"cluster", text_of(cluster, "name"), "member", text_of(member, "name"),
							"role", member_roles[r], NULL};
				put_sample(out, "pgha_member_role", NULL, labels, strcmp(text_of(member, "role"), member_roles[r]) == 0);
			}
}

static void put_api_requests(FILE *out, const json_t *status)
{
	const json_t *requests = json_object_get(json_object_get(status, "kubernetes"), "api_requests");
	size_t index;
	const json_t *request;

	if (!json_is_array(requests))
		return;
	put_header(out, "pgha_kubernetes_api_requests_total", "counter",
		   "Requests pghad made to the Kubernetes API server, by verb and HTTP status code (0: no answer).");
	json_array_foreach(requests, index, request) {
		char code[16];
		snprintf(code, sizeof code, "%lld", (long long)json_integer_value(json_object_get(request, "code")));
		const char *labels[] = {"verb", text_of(request, "verb"), "code", code, NULL};
		put_sample(out, "pgha_kubernetes_api_requests_total", NULL, labels, number_of(request, "count"));
	}
}

char *metrics_format(const json_t *status)
{
	const json_t *clusters = json_object_get(status, "clusters");
	char *text = NULL;
	size_t length = 0;

	if (!json_is_object(status) || !json_is_array(clusters))
		return NULL;
	FILE *out = open_memstream(&text, &length);
	if (!out)
		return NULL;
	put_header(out, "pgha_info", "gauge", "pghad's version and platform; always 1.");
	const char *labels[] = {"version", text_of(status, "version"), "platform", text_of(status, "platform"), NULL};
	put_sample(out, "pgha_info", NULL, labels, 1);
	put_loop(out, status);
	put_reloads(out, status);
	cluster_family(out, clusters, "pgha_cluster_replicas", "gauge", "Members the configuration asks for.",
		       replicas_of);
	cluster_family(out, clusters, "pgha_cluster_members_up", "gauge", "Members that answer pghad's probe.",
		       members_up_of);
	cluster_family(out, clusters, "pgha_cluster_primaries", "gauge",
		       "Members that run as a primary: 1 when all is well, 0 without one.", primaries_of);
	put_primary(out, clusters);
	cluster_family(out, clusters, "pgha_cluster_paused", "gauge", "1 while automatic failover is paused.", paused_of);
	cluster_family(out, clusters, "pgha_cluster_failover_in_progress", "gauge", "1 while a failover is under way.",
		       under_way_of);
	put_failovers(out, clusters);
	cluster_family(out, clusters, "pgha_cluster_lease_held", "gauge",
		       "Kubernetes: 1 when this pghad holds the cluster's Lease and acts on it.", lease_held_of);
	member_family(out, clusters, "pgha_member_up", "gauge", "1 when the member answers pghad's probe.", up_of);
	put_roles(out, clusters);
	member_family(out, clusters, "pgha_member_timeline", "gauge",
		      "The timeline a member is on: a primary's own, the one a standby receives.", timeline_of);
	member_family(out, clusters, "pgha_member_lag_bytes", "gauge",
		      "Bytes of WAL a standby has still to replay to reach its primary's position.", lag_bytes_of);
	member_family(out, clusters, "pgha_member_replay_lag_seconds", "gauge",
		      "Time between a commit on the primary and its replay on the standby, as the primary measures it.",
		      replay_lag_of);
	member_family(out, clusters, "pgha_member_synchronous", "gauge",
		      "1 when the primary counts the standby as synchronous (sync or quorum), 0 when not.", synchronous_of);
	member_family(out, clusters, "pgha_member_clone_total_bytes", "gauge",
		      "A clone in progress: the size of the copy, as the primary estimates it.", clone_total_of);
	member_family(out, clusters, "pgha_member_clone_streamed_bytes", "gauge",
		      "A clone in progress: the bytes copied so far.", clone_streamed_of);
	put_api_requests(out, status);
	fclose(out);
	return text;
}

bool metrics_write_file(const char *path, const char *text, char *why, size_t why_size)
{
	/* a temporary name the textfile collector ignores (it reads *.prom only), renamed over
	 * the file: a reader sees the old file or the new one, never half. Not flushed to disk:
	 * it is rewritten every iteration, and after a crash a stale file says nothing false
	 * for long. Readable by node_exporter, which runs as another user. */
	return file_replace_volatile(path, text, strlen(text), 0644, why, why_size);
}
