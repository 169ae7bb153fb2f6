/* observe: one observation of every cluster: each member's data and process (from the platform) and its PostgreSQL state (from one probe each, on a connection kept per member), cluster by cluster, each on its own deadline. */
#ifndef PGHA_OBSERVE_H
#define PGHA_OBSERVE_H

#include "config.h"
#include "observation.h"
#include "platform.h"

#include <systemd/sd-event.h>

/* What observing keeps between iterations: one connection per running member, over
 * which its probes run, watched while idle so that a server closing it (a primary
 * killed, a backend ended) wakes the loop at once. */
struct observer;

/* An observer on event; wake(wake_data) is called when a kept connection is closed by
 * its server between probes (wake may be NULL: nothing is called). */
struct observer *observer_new(sd_event *event);
void observer_set_wake(struct observer *observer, void (*wake)(void *wake_data), void *wake_data);
/* Closes every kept connection. */
void observer_free(struct observer *observer);

/* Whether pgha is doing something long to a member (initdb, clone, start). */
typedef bool (*observe_busy_fn)(const char *cluster, int index, void *context);

/* Observes every cluster of config, waiting, cluster after cluster, each member's
 * probe under a deadline of timeout_ms (for simulations: the loop uses
 * observe_cluster_start). observations has one entry per cluster, filled here: the
 * members and their process state from the platform, the rest from the probes, each on
 * its member's kept connection. Connections of members not probed now (stopped,
 * removed, of a cluster no longer configured) are closed. */
void observe_clusters(struct observer *observer, struct platform *platform, const struct pgha_config *config,
		      observe_busy_fn busy, void *busy_context, int timeout_ms,
		      struct cluster_observation *observations);

/* One cluster observed on the loop, on its own: the platform's half now, its members'
 * probes under timeout_ms of its own; done(observation, context) is called from the
 * loop once each has answered or timed out, whatever other clusters' members do. */
struct observe_round;
typedef void (*observe_done_fn)(struct cluster_observation *observation, void *context);
/* at_rest: the cluster's last decision took no action, waited for nothing, and nothing
 * of pgha's is under way on it: its healthy standbys are then probed only every few
 * seconds (observe.c says when), their observation the last probe's meanwhile. */
struct observe_round *observe_cluster_start(struct observer *observer, struct platform *platform,
					    const struct cluster_config *cluster, observe_busy_fn busy,
					    void *busy_context, bool at_rest, int timeout_ms,
					    struct cluster_observation *observation, observe_done_fn done, void *context);
/* Abandons a round not done yet (a reload replaces its configuration): done is never
 * called, its probes' connections are closed; the observation keeps the platform's half. */
void observe_round_cancel(struct observe_round *round);

/* How often, in ms, a probe of member also asks its postmaster to serve a new connection
 * (0: at every probe), from what the platform shows of its process (see observe.c). */
int observe_postmaster_check_ms(const struct member_observation *member);
/* Forgets what every member's last probe found: each is probed at its next observation
 * (after a reload of the configuration). */
void observer_forget_probes(struct observer *observer);
/* Closes the connections kept to members of clusters config no longer has. */
void observer_prune(struct observer *observer, const struct pgha_config *config);

#endif
