/* metrics: pghad's metrics in Prometheus's text exposition format, made from the status document pghactl status --json shows, and the counters and histogram pghad keeps for them. */
#ifndef PGHA_METRICS_H
#define PGHA_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The upper bounds of the loop iteration histogram, in seconds (+Inf is implied). */
#define METRICS_ITERATION_BUCKETS 10
extern const double metrics_iteration_bounds[METRICS_ITERATION_BUCKETS];

/* A histogram of durations: counts[i] is the number of observations at most bounds[i]
 * and above bounds[i - 1] (not cumulative; the text format's are). */
struct metrics_histogram {
	uint64_t counts[METRICS_ITERATION_BUCKETS];
	uint64_t count;
	double sum;
};

void metrics_observe(struct metrics_histogram *histogram, double seconds);
/* {"bounds": [...], "counts": [...], "count": N, "sum": S} for the status document. */
json_t *metrics_histogram_json(const struct metrics_histogram *histogram);

/* The failovers of a cluster since pghad started, by kind and outcome. */
enum metrics_outcome { METRICS_COMPLETED, METRICS_ABANDONED, METRICS_OUTCOMES };
extern const char *const metrics_outcome_names[METRICS_OUTCOMES];

/* The Prometheus text format (version 0.0.4) of what status (the reply to the control
 * socket's "status") holds: the daemon, each cluster and each member. A new string;
 * NULL only when status is not a status document. Pure: same document, same text. */
char *metrics_format(const json_t *status);

/* Writes text to path atomically (node_exporter's textfile collector must never read
 * half a file). False, why written, when it cannot. */
bool metrics_write_file(const char *path, const char *text, char *why, size_t why_size);

#endif
