/* plan: what a reload to another configuration would do, in words, from the running configuration and the last observation. No I/O. */
#include "autoconfig.h"

#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decide.h"
#include "syncset.h"
#include "memory.h"
#include "names.h"

/* The settings a standby may not run lower than its primary: lowering one restarts the
 * primary first (see decide.c). */
static const char *const standby_sensitive[] = {"max_connections", "max_worker_processes", "max_wal_senders",
						 "max_prepared_transactions", "max_locks_per_transaction", NULL};

const struct cluster_config *plan_find_cluster(const struct pgha_config *config, const char *name)
{
	for (size_t i = 0; i < config->cluster_count; i++)
		if (config->clusters[i].name && strcmp(config->clusters[i].name, name) == 0)
			return &config->clusters[i];
	return NULL;
}

static const char *parameter(const struct cluster_config *cluster, const char *name)
{
	for (size_t i = 0; i < cluster->postgresql.parameters.count; i++)
		if (strcasecmp(cluster->postgresql.parameters.items[i].name, name) == 0)
			return cluster->postgresql.parameters.items[i].value;
	return NULL;
}

static bool listed(const char **names, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcasecmp(names[i], name) == 0)
			return true;
	return false;
}

const char **plan_changed_parameters(const struct cluster_config *running, const struct cluster_config *next,
				     size_t *count)
{
	const struct pg_parameter_list *lists[] = {&running->postgresql.parameters, &next->postgresql.parameters};
	const char **names = xcalloc(lists[0]->count + lists[1]->count, sizeof *names);

	*count = 0;
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < lists[l]->count; i++) {
			const char *name = lists[l]->items[i].name;
			const char *was = parameter(running, name), *now = parameter(next, name);
			bool same = was && now && strcmp(was, now) == 0;
			if (!same && !listed(names, *count, name))
				names[(*count)++] = name;
		}
	return names;
}

static const struct cluster_observation *observation_of(const struct plan_input *input, const char *name)
{
	for (size_t i = 0; i < input->observed && i < input->running->cluster_count; i++)
		if (strcmp(input->running->clusters[i].name, name) == 0)
			return &input->observations[i];
	return NULL;
}

/* "test-1, test-2, then test-0" or "test-0 first, then test-1, test-2". */
static void restart_order(const struct cluster_config *cluster, const struct cluster_observation *observation,
			  bool primary_first, char *out, size_t size)
{
	const struct member_observation *primary = observation_primary(observation);
	char standbys[512] = "";

	if (!primary) {
		snprintf(out, size, "every member, once a primary is known to order them against");
		return;
	}
	/* members that exist and stay; new ones are created with the new settings */
	for (size_t i = 0; i < observation->count; i++) {
		const struct member_observation *member = &observation->members[i];
		if (member == primary || member->index >= cluster->replicas || !member->data_exists)
			continue;
		snprintf(standbys + strlen(standbys), sizeof standbys - strlen(standbys), "%s%s", standbys[0] ? ", " : "",
			 member->name);
	}
	if (!standbys[0])
		snprintf(out, size, "%s", primary->name);
	else if (primary_first)
		snprintf(out, size, "%s first (a lowered setting its standbys may not run lower), then %s", primary->name,
			 standbys);
	else
		snprintf(out, size, "%s one at a time, then %s", standbys, primary->name);
}

const char plan_settings_sql[] =
	"SELECT name, context, setting, false FROM pg_catalog.pg_settings"
	" WHERE name = ANY (SELECT lower(n) FROM unnest($1::text[]) n)"
	" UNION ALL"
	" SELECT DISTINCT split_part(name, '.', 1), '', '', true FROM pg_catalog.pg_settings"
	" WHERE name LIKE '%.%' AND split_part(name, '.', 1) ="
	"  ANY (SELECT lower(split_part(n, '.', 1)) FROM unnest($1::text[]) n WHERE n LIKE '%.%')";

static const struct plan_setting *setting_of(const struct plan_input *input, size_t cluster, const char *name,
					     bool module_prefix)
{
	if (!input->settings || !input->settings[cluster])
		return NULL;
	for (size_t i = 0; i < input->setting_counts[cluster]; i++)
		if (input->settings[cluster][i].module_prefix == module_prefix &&
		    strcasecmp(input->settings[cluster][i].name, name) == 0)
			return &input->settings[cluster][i];
	return NULL;
}

/* A parameter the primary does not know. PostgreSQL keeps a custom one (prefix.name) as
 * a placeholder, a string it does not check, until a module defining it is loaded; a
 * module that is loaded refuses the names it does not define under its prefix (with a
 * warning, the rest applies). An unknown plain name makes PostgreSQL apply none of the
 * file's changes on a reload, and refuse to start. On kubernetes ALTER SYSTEM refuses
 * both of those at once, and the member's parameters wait for the name to go. */
static void describe_unknown(const struct plan_input *input, size_t index, const char *name, const char *change,
			     const char *primary, struct diag_list *lines)
{
	static const char refused_by_alter_system[] =
		"ALTER SYSTEM refuses it, and the members' parameters stay unapplied until it is removed";
	bool kubernetes = input->running->platform.type == PLATFORM_KUBERNETES;
	const char *dot = strchr(name, '.');
	char prefix[128];

	if (!dot) {
		diag_add(lines, NULL, "  parameter %s: %s knows no such parameter: %s", change, primary,
			 kubernetes ? refused_by_alter_system
				    : "a member reloading it applies none of the changes of its file, and cannot start with it");
		return;
	}
	snprintf(prefix, sizeof prefix, "%.*s", (int)(dot - name), name);
	if (setting_of(input, index, prefix, true))
		diag_add(lines, NULL, "  parameter %s: the module loaded on %s under %s defines no such parameter: %s",
			 change, primary, prefix,
			 kubernetes ? refused_by_alter_system : "PostgreSQL ignores it, with a warning in its log");
	else
		diag_add(lines, NULL, "  parameter %s: applied by reload as a placeholder: no module loaded on %s defines "
			 "%s.*; the one that does checks the value when it is loaded (shared_preload_libraries, "
			 "session_preload_libraries or LOAD)", change, primary, prefix);
}

static void describe_parameters(const struct plan_input *input, size_t index, const struct cluster_config *running,
				const struct cluster_config *next, const struct cluster_observation *observation,
				struct diag_list *lines)
{
	size_t count;
	const char **names = plan_changed_parameters(running, next, &count);

	for (size_t i = 0; i < count; i++) {
		const char *was = parameter(running, names[i]), *now = parameter(next, names[i]);
		const struct plan_setting *setting = setting_of(input, index, names[i], false);
		const struct member_observation *primary = observation_primary(observation);
		char order[600], change[600];

		if (now)
			snprintf(change, sizeof change, "%s = '%s'%s%s%s", names[i], now, was ? " (was '" : " (new",
				 was ? was : "", was ? "')" : ")");
		else
			snprintf(change, sizeof change, "%s back to PostgreSQL's default (was '%s')", names[i], was);
		if (!setting && (!input->settings || !input->settings[index] || !primary)) {
			diag_add(lines, NULL, "  parameter %s: applied by reload when PostgreSQL knows it, by restarts "
				 "if it needs one (no primary answered to tell)", change);
		} else if (!setting && !now) {
			diag_add(lines, NULL, "  parameter %s: removed by reload (%s knows no such parameter)", change,
				 primary->name);
		} else if (!setting) {
			describe_unknown(input, index, names[i], change, primary->name, lines);
		} else if (strcmp(setting->context, "postmaster") == 0) {
			bool lowered = false;
			for (size_t s = 0; standby_sensitive[s]; s++)
				if (strcasecmp(standby_sensitive[s], names[i]) == 0 && now)
					lowered = strtoll(now, NULL, 10) < strtoll(setting->running, NULL, 10);
			restart_order(next, observation, lowered, order, sizeof order);
			diag_add(lines, NULL, "  parameter %s: needs a restart: %s", change, order);
		} else if (strcmp(setting->context, "internal") == 0) {
			diag_add(lines, NULL, "  parameter %s: cannot be changed on a running cluster (fixed when it was "
				 "created); PostgreSQL ignores it", change);
		} else {
			diag_add(lines, NULL, "  parameter %s: applied by reload", change);
		}
	}
	free(names);
}

struct difference_context {
	struct diag_list *lines;
};

static void describe_difference(const char *path, const char *was, const char *now, void *context)
{
	struct difference_context *difference = context;
	if (strcmp(path, "replicas") != 0 && strncmp(path, "synchronous.", 12) != 0)
		diag_add(difference->lines, NULL, "  %s: %s -> %s", path, was, now);
}

static void describe_cluster(const struct plan_input *input, size_t index, struct diag_list *lines)
{
	const struct cluster_config *next = &input->next->clusters[index];
	const struct cluster_config *running = plan_find_cluster(input->running, next->name);
	const struct cluster_observation *observation = running ? observation_of(input, next->name) : NULL;
	const struct member_observation *primary = observation_primary(observation);
	struct difference_context difference = {lines};
	size_t before = lines->count;

	diag_add(lines, NULL, "cluster %s:", next->name);
	if (!running && input->has_data && input->has_data[index]) {
		diag_add(lines, NULL, "  added back: its members start from the data kept for them");
		return;
	}
	if (!running) {
		diag_add(lines, NULL, "  new: %s-0 initialized as its primary, then %d standby%s cloned from it", next->name,
			 next->replicas - 1, next->replicas == 2 ? "" : "s");
		return;
	}
	for (int i = running->replicas; i < next->replicas; i++)
		diag_add(lines, NULL, "  add member %s-%d: cloned from the primary, listed as synchronous once it streams",
			 next->name, i);
	for (int i = next->replicas; i < running->replicas; i++)
		diag_add(lines, NULL, "  remove member %s-%d: it leaves the synchronous list, then stops; its data is kept",
			 next->name, i);
	if (primary && observation) {
		char *names = syncset_names(next, observation, primary->index);
		const char *runs = observation_text(primary->synchronous_standby_names);
		if (strcmp(names, runs) != 0)
			diag_add(lines, NULL, "  synchronous_standby_names: '%s' -> '%s'%s", runs,
				 names, next->replicas > running->replicas ? " (and the new members once they stream)" : "");
		free(names);
	}
	config_cluster_differences(running, next, describe_difference, &difference);
	describe_parameters(input, index, running, next, observation, lines);
	if (lines->count == before + 1) {
		free(lines->messages[--lines->count]);
		lines->messages[lines->count] = NULL;
	}
}

void plan_describe(const struct plan_input *input, struct diag_list *lines)
{
	for (size_t i = 0; i < input->running->cluster_count; i++)
		if (!plan_find_cluster(input->next, input->running->clusters[i].name))
			diag_add(lines, NULL, "cluster %s: removed: its members are stopped, the primary first; its data is "
				 "kept", input->running->clusters[i].name);
	for (size_t i = 0; i < input->next->cluster_count; i++)
		if (input->next->clusters[i].name)
			describe_cluster(input, i, lines);
	if (lines->count == 0)
		diag_add(lines, NULL, "nothing changes");
}
