/* platform: the one interface between the loop and where members run: a table of operations and an opaque state, chosen once from platform.type (platform_table.c), in the manner of PostgreSQL's table access methods. */
#ifndef PGHA_PLATFORM_H
#define PGHA_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "decide.h"
#include "observation.h"
#include "pg.h"
#include "state.h"

struct actor;
struct history_entry;
struct operation;
struct platform_ops;
struct proc_watch;

/* A platform in use: its operations and what they keep between calls. */
struct platform {
	const struct platform_ops *ops;
	void *state;
};

/* Whether this pghad may act on a cluster, as load_state finds. */
enum platform_hold {
	PLATFORM_HOLD_ACTS,       /* its state is loaded: decide and act */
	PLATFORM_HOLD_UNREADABLE, /* its state cannot be read: an error, nothing is decided until it is fixed */
	PLATFORM_HOLD_ELSEWHERE,  /* another pghad acts on it (it holds the Lease): only watch */
};

/* Every operation is filled in by every implementation; config and cluster are the
 * configuration in force, which a reload replaces (set_config). Calls returning false
 * write why. */
struct platform_ops {
	const char *name;

	/* ---- lifecycle ---- */
	/* Finds what the platform needs besides the configuration (programs, credentials),
	 * logging what it found or why it cannot run. Returns PGHA_EXIT_OK or the exit
	 * status to stop with. */
	int (*open)(struct platform *platform, const struct pgha_config *config);
	void (*close)(struct platform *platform);
	/* Once the daemon's event loop exists: the platform may add sources of its own to it
	 * (a Lease renewed on its own timer, between iterations however far apart). */
	void (*attach)(struct platform *platform, sd_event *event);
	/* After a reload: the configuration in force (the platform's own options stay). */
	void (*set_config)(struct platform *platform, const struct pgha_config *config);

	/* ---- each iteration: refresh, then observe and probe, then per cluster decide and act ---- */
	/* Once per iteration, before anything else. False (logged) when the platform cannot
	 * be seen now: the iteration then observes and acts on nothing. */
	bool (*refresh)(struct platform *platform);
	/* The platform's half of an observation: its members (every index below replicas, and
	 * above it those that still have data), each one's data and process state; now_ms. */
	void (*observe)(struct platform *platform, const struct cluster_config *cluster,
			struct cluster_observation *observation);
	/* How pghad connects to member index (member: its observation, NULL when unknown). host
	 * is a new string the caller frees. False when it cannot be reached at all. */
	bool (*admin_target)(struct platform *platform, const struct cluster_config *cluster, int index,
			     const struct member_observation *member, struct pg_target *target, char *why,
			     size_t why_size);
	/* Runs requests on members' servers, as pg_execute_all does (what a simulation
	 * answers itself). */
	void (*execute)(struct platform *platform, struct pg_request *requests, size_t count, int timeout_ms);
	/* The same without waiting, as pg_execute_start does: done is called from event's loop. */
	struct pg_batch *(*execute_start)(struct platform *platform, sd_event *event, struct pg_request *requests,
					  size_t count, int timeout_ms, pg_batch_done_fn done, void *context);
	/* The settings ALTER SYSTEM must not override, as a text[] literal (a new string):
	 * those pgha writes in files the server reads before postgresql.auto.conf. */
	char *(*owned_settings)(struct platform *platform, const struct cluster_config *cluster);
	/* The member a running primary_conninfo points to (-1: none), and the primary_conninfo
	 * pgha sets for member index following upstream (a new string). */
	int (*upstream_of)(struct platform *platform, const struct cluster_config *cluster,
			   const struct cluster_observation *observation, const char *primary_conninfo);
	char *(*primary_conninfo)(struct platform *platform, const struct cluster_config *cluster,
				  const struct cluster_observation *observation, int index, int upstream);

	/* The remembered state of a cluster (a file, a Lease), read each iteration, and
	 * whether this pghad may act on the cluster. */
	enum platform_hold (*load_state)(struct platform *platform, const struct cluster_config *cluster,
					 struct cluster_state *state, char *why, size_t why_size);
	/* Records state before the actions decided with it: false when it could not be. */
	bool (*save_state)(struct platform *platform, const struct cluster_config *cluster,
			   const struct cluster_state *state, char *why, size_t why_size);
	/* Whether this pghad may still act on cluster now, asked right before each action (a
	 * pghad stopped or slowed after its decision may have lost the right meanwhile): false
	 * with why, logged by the platform (once per cause), and the actor stops acting on the
	 * cluster this iteration. Cheap: no request. A platform with no lease always allows. */
	bool (*may_act)(struct platform *platform, const struct cluster_config *cluster, char *why, size_t why_size);

	/* Carries out action (after the actor logged it), with the actor's help (act.h):
	 * operations that last, statements on members, reports. Returns false for the
	 * actions that are plain SQL on every platform (slots, promote, overrides, the
	 * replication role): the actor runs those itself. */
	bool (*act)(struct platform *platform, struct actor *actor, const struct cluster_config *cluster,
		    const struct cluster_observation *observation, const struct action *action);
	/* The replication role's password, kept by the platform. */
	bool (*replication_password)(struct platform *platform, const struct cluster_config *cluster,
				     char *password, size_t password_size, char *why, size_t why_size);
	/* Whether nothing of member runs any more: a stop is over. */
	bool (*gone)(const struct member_observation *member);
	/* Whether an operation not over yet can no longer get there (its postmaster exited,
	 * its pod's container ended): true with why. */
	bool (*failed)(struct platform *platform, const struct operation *operation,
		       const struct member_observation *member, char *why, size_t why_size);
	/* The platform's part once an operation is over (a promoted member follows no one).
	 * True when it reported the outcome itself. */
	bool (*over)(struct platform *platform, struct actor *actor, const struct cluster_config *cluster,
		     const struct operation *operation);

	/* After a cluster's actions: its routes and labels follow what was observed. */
	void (*publish)(struct platform *platform, const struct cluster_config *cluster,
			const struct cluster_observation *observation);
	/* A cluster's turn decides and acts (begins true) or is over (false): whatever it
	 * waits for from the platform (Kubernetes: the API server) is bounded by a small budget
	 * from the turn's start, not from the iteration's refresh, which may be long before.
	 * NULL when nothing the platform does waits on anyone. */
	void (*turn)(struct platform *platform, bool begins);
	/* Whether backend, the pid of the backend serving one of pghad's kept connections (libpq's
	 * PQbackendPID), is seen asleep waiting for its client, as an idle backend is in its
	 * loop, so that it would answer a ping at once: *watch, {0} at first and closed with the
	 * connection, keeps the process open to look at it again cheaply (proc.h). NULL where
	 * the platform does not see the members' processes: they are pinged. */
	bool (*backend_waits)(struct platform *platform, struct proc_watch *watch, pid_t backend);
	/* A process of primary whose exit the loop watches to iterate at once (0: none). */
	pid_t (*watch)(struct platform *platform, const struct member_observation *primary);
	/* After every cluster: what clusters no longer configured leave is stopped or
	 * removed (their data kept), and routes for the configuration written. */
	void (*finish)(struct platform *platform, const struct pgha_config *config);
	/* An entry of pghad's history (history.h), already kept in STATE_DIR/history.jsonl:
	 * what the platform shows of it besides (Kubernetes: an Event on its member's pod).
	 * Bounded as every request is; false (why written) when it could not. */
	bool (*record)(struct platform *platform, const struct history_entry *entry, char *why, size_t why_size);

	/* ---- the operator's requests and status ---- */
	/* Whether a cluster has data on this platform (for a reload's plan). */
	bool (*has_data)(struct platform *platform, const struct cluster_config *cluster);
	/* Deletes everything of a cluster that is not configured and has nothing running. */
	bool (*purge)(struct platform *platform, const char *name, char *why, size_t why_size);
	/* The port member index serves on. */
	int (*member_port)(const struct platform *platform, const struct cluster_config *cluster, int index);
	/* What the platform adds to status: to the whole reply, and to a cluster's. */
	void (*status)(const struct platform *platform, json_t *reply);
	void (*cluster_status)(const struct platform *platform, const struct cluster_config *cluster, json_t *reply);
};

#endif
