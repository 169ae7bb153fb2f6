/* syncset: the synchronous standby set a primary should run (synchronous_standby_names), from the configuration and one observation; shared by decide and failover. No I/O. */
#ifndef PGHA_SYNCSET_H
#define PGHA_SYNCSET_H

#include "config.h"
#include "observation.h"

/* The synchronous_standby_names the primary should run, from the observation: see
 * the rules in syncset.c. Returns a new string ("" for none). */
char *syncset_names(const struct cluster_config *cluster, const struct cluster_observation *observation, int primary);

#endif
