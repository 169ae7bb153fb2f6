/* observe: one observation of every cluster: each member's data and process (from the platform) and its PostgreSQL state (from one probe each, all under one deadline). */
#ifndef PGHA_OBSERVE_H
#define PGHA_OBSERVE_H

#include "config.h"
#include "observation.h"
#include "platform.h"

/* Whether pgha is doing something long to a member (initdb, clone, start). */
typedef bool (*observe_busy_fn)(const char *cluster, int index, void *context);

/* Observes every cluster of config, probing every running member concurrently under
 * one deadline of timeout_ms. observations has one entry per cluster, filled here: the
 * members and their process state from the platform, the rest from the probes. */
void observe_clusters(struct platform *platform, const struct pgha_config *config, observe_busy_fn busy,
		      void *busy_context, int timeout_ms, struct cluster_observation *observations);

#endif
