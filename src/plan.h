/* plan: what a reload to another configuration would do, in words, from the running configuration and the last observation. No I/O. */
#ifndef PGHA_PLAN_H
#define PGHA_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "diag.h"
#include "observation.h"

/* A PostgreSQL setting as a cluster's primary knows it (pg_settings), or, with
 * module_prefix, the prefix of custom parameters that a module loaded there defines. */
struct plan_setting {
	char name[128];   /* lower case, as pg_settings has it; a prefix alone ("auto_explain") */
	char context[32]; /* "postmaster" needs a restart; "internal" cannot be set */
	char running[256];
	bool module_prefix;
};

/* The query that answers with plan_setting rows (name, context, setting, module_prefix)
 * for the names of $1 (a text[] of plan_changed_parameters' names): those the primary
 * knows, and the prefixes among them that a loaded module defines parameters under. A
 * custom name it knows neither way is only a placeholder there: pg_settings omits those. */
extern const char plan_settings_sql[];

struct plan_input {
	const struct pgha_config *running, *next;
	/* the last observation, one per cluster of running, in its order (may be fewer) */
	const struct cluster_observation *observations;
	size_t observed;
	/* per cluster of next: what its primary knows of the settings that change (the rows
	 * of plan_settings_sql); NULL: no primary answered */
	const struct plan_setting *const *settings;
	const size_t *setting_counts;
	/* per cluster of next: whether data of it is already there (a cluster added back) */
	const bool *has_data;
};

/* Appends one line per change to lines, in the order a reload would carry them out. */
void plan_describe(const struct plan_input *input, struct diag_list *lines);

/* The names of the PostgreSQL parameters that differ between two clusters (set,
 * changed or removed), for asking the primary about them. A new array of names that
 * point into the clusters; *count is set. */
const char **plan_changed_parameters(const struct cluster_config *running, const struct cluster_config *next,
				     size_t *count);

/* The cluster of config named name, or NULL. */
const struct cluster_config *plan_find_cluster(const struct pgha_config *config, const char *name);

#endif
