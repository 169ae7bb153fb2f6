/* daemon: pghad's running state (the configuration in force, the last reload error) and what a reload and a loop iteration do. */
#ifndef PGHA_DAEMON_H
#define PGHA_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "failover.h"
#include "history.h"
#include "metrics.h"
#include "observation.h"
#include "platform.h"
#include "state.h"

struct actor;
struct daemon;
struct observer;
struct observe_round;

/* A cluster's own turn of observe, decide and act: a hung member of another cluster
 * never delays it, and while a failover is under way its turns follow each other as fast
 * as its own members answer. One per cluster of the configuration in force. */
struct cluster_turn {
	struct daemon *daemon;
	size_t index;                       /* of the cluster in daemon->config */
	struct observe_round *round;        /* its members being probed; NULL between turns */
	struct cluster_observation next;    /* what that round fills */
	long long started_ms;               /* monotonic: when the round began */
	sd_event_source *hurry;             /* the next turn soon: a failover is under way */
	bool hurried;                       /* the last turn asked for that */
	uint64_t stamp;                     /* daemon->iterations when the round under way began */
	uint64_t observed;                  /* the same of the last round completed (0: none yet) */
	pid_t watched;                      /* its primary's postmaster (0: none) */
	/* its last decision took no action, waited for nothing, asked for no hurry, and no
	 * failover, request or operation of pgha's is under way: its standbys may rest */
	bool at_rest;
};

/* Members a cluster can have: indexes 0..98 (replicas <= 99). */
#define DAEMON_MAX_MEMBERS 100

/* What pghad keeps about a cluster between iterations, by name, across reloads. */
struct cluster_runtime {
	char name[64];
	struct failover_request request; /* the operator's, until begun or refused */
	char request_error[1024];        /* why the last request was refused ("" when none) */
	long long unreachable_since[DAEMON_MAX_MEMBERS]; /* wall clock ms; 0: it answers */
	struct kept_state state;         /* as last read or written */
	bool state_loaded;
	char state_error[512];           /* the state file cannot be read: the cluster is not acted on */
	char last_waiting[1024];         /* logged when it changes */
	/* failovers ended since pghad started, by kind (enum failover_kind) and outcome, and the
	 * last one, for metrics */
	unsigned long failovers[FAILOVER_MANUAL + 1][METRICS_OUTCOMES];
	enum failover_kind last_kind;    /* FAILOVER_NONE: none ended yet */
	enum metrics_outcome last_outcome;
	long long last_duration_ms;
};

struct daemon {
	char *config_path;
	struct pgha_config *config;      /* never NULL once started; replaced only by a valid one */
	struct diag_list reload_errors;  /* why the last reload was rejected; empty after a good one */
	uint64_t iterations;      /* begun: the loop's ticks */
	/* complete: every cluster's view is of a round begun at this tick or later (status's
	 * "iterations"; "iterations_begun" is the other) */
	uint64_t observed_through;
	struct platform platform; /* chosen from platform.type once, at start */
	struct actor *actor; /* NULL until attached to a loop */
	struct observer *observer; /* the members' probe connections; NULL until attached */
	/* each cluster's last complete view, for status: one per cluster of config */
	struct cluster_observation *observations;
	char (*waiting)[1024];
	struct cluster_turn *turns;
	size_t observed_clusters;
	sd_event *event;          /* NULL until attached */
	bool scheduling;          /* the loop runs: a cluster that hurries arms its own next turn */
	long long refreshed_ms;   /* monotonic: the platform's last refresh */
	struct cluster_runtime *runtimes;
	size_t runtime_count;
	/* the postmasters of the primaries: the loop wakes up as soon as one exits */
	pid_t *watched;
	size_t watched_count;
	/* set by the loop: makes the next iteration start now (an operator's request) */
	void (*wake)(void *wake_data);
	void *wake_data;
	/* set by the loop: called after each cluster's turn (the primaries to watch changed) */
	void (*turned)(void *wake_data);
	/* for metrics and history */
	struct metrics_histogram iteration_seconds;
	unsigned long reloads_accepted, reloads_refused;
	char metrics_error[512];  /* the last failure to write daemon.metrics_file, logged once */
	struct history history;   /* STATE_DIR/history.jsonl */
};

/* Loads the configuration for the first time and finds what the platform needs.
 * Returns PGHA_EXIT_OK, or the exit status to stop with (errors logged). */
int daemon_start(struct daemon *daemon, const char *config_path);
/* The same on the platform ops rather than the one platform.type names (a test's
 * simulated platform). */
int daemon_start_on(struct daemon *daemon, const char *config_path, const struct platform_ops *ops);
/* Gives the daemon the loop on which its long operations run. */
void daemon_attach(struct daemon *daemon, sd_event *event);
/* Re-reads the configuration and swaps it in only when it is valid and may change now;
 * otherwise logs every error and keeps the current one. Returns whether it swapped. */
bool daemon_reload(struct daemon *daemon);
/* One iteration of the reconcile loop, waiting for every cluster's turn (simulations).
 * Returns true when the next one should come soon (a failover is under way, or a
 * primary is suspect). */
bool daemon_iterate(struct daemon *daemon);
/* The loop's tick, every loop_interval_ms: refreshes the platform's view and starts the
 * turn of every cluster not in one, without waiting for any; each turn then decides and
 * acts as soon as its own members answered, and a cluster that must hurry starts its
 * next turn by itself (daemon->scheduling). */
void daemon_tick(struct daemon *daemon);
void daemon_stop(struct daemon *daemon);

/* Answers a control socket request ({"command": "status"|"reload"}); see pghactl(1). */
json_t *daemon_control(const json_t *request, void *daemon);

/* A one-line summary for STATUS= and logs. */
void daemon_status_line(const struct daemon *daemon, char *buffer, size_t size);

#endif
