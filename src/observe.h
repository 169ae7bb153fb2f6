/* observe: one observation of every cluster: each member's data and process (from the platform) and its PostgreSQL state (from one probe each, all under one deadline, on a connection kept per member). */
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

/* Observes every cluster of config, probing every running member concurrently under
 * one deadline of timeout_ms. observations has one entry per cluster, filled here: the
 * members and their process state from the platform, the rest from the probes, each on
 * its member's kept connection. Connections of members not probed now (stopped,
 * removed, of a cluster no longer configured) are closed. */
void observe_clusters(struct observer *observer, struct platform *platform, const struct pgha_config *config,
		      observe_busy_fn busy, void *busy_context, int timeout_ms,
		      struct cluster_observation *observations);

#endif
