/* syncset: the synchronous standby set a primary should run (synchronous_standby_names), from the configuration and one observation; shared by decide and failover. No I/O. */
#include "autoconfig.h"

#include "syncset.h"

#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "names.h"
#include "syncnames.h"

/* A name by value. */
struct name {
	char text[MEMBER_NAME_SIZE];
};

struct candidate {
	int index;
	int priority;
};

/* FIRST lists by priority, highest first, and then by index. */
static int compare_by_priority(const void *left, const void *right)
{
	const struct candidate *a = left, *b = right;

	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

/* Streaming, and answering: one that has not answered for bound_ms is cut off, and is
 * dropped as one whose walsender ended would be */
static bool is_streaming_to(const struct member_observation *primary, const char *member, long long bound_ms)
{
	for (size_t i = 0; primary && i < primary->peer_count; i++)
		if (observation_peer_streaming(&primary->peers[i], bound_ms) &&
		    syncnames_name_matches(member, primary->peers[i].application_name))
			return true;
	return false;
}

/* The standbys that stream now are listed. With synchronous.required, the list is
 * padded with members that do not stream (yet) up to synchronous.number, those it
 * names now first, so that commits wait rather than silently go asynchronous; without it, fewer standbys
 * streaming lower the number, and none turns synchronous replication off. Priority
 * orders a FIRST list and does not exclude anyone: priority 0 is about failover. */
char *syncset_names(const struct cluster_config *cluster, const struct cluster_observation *observation,
			       int primary)
{
	if (cluster->synchronous.method != SYNC_METHOD_ANY && cluster->synchronous.method != SYNC_METHOD_FIRST)
		return xstrdup("");

	const struct member_observation *primary_member = observation_member(observation, primary);
	size_t capacity = cluster->replicas > 0 ? (size_t)cluster->replicas : 1;
	struct candidate *candidates = xcalloc(capacity, sizeof *candidates);
	bool *chosen = xcalloc(capacity, sizeof *chosen);
	struct name *names = xcalloc(capacity, sizeof *names);
	const char **listed = xcalloc(capacity, sizeof *listed);
	size_t candidate_count = 0, chosen_count = 0, listed_count = 0;
	char *text;

	for (int index = 0; index < cluster->replicas; index++)
		if (index != primary)
			candidates[candidate_count++] =
				(struct candidate){.index = index, .priority = config_member_priority(cluster, index)};
	if (cluster->synchronous.method == SYNC_METHOD_FIRST)
		qsort(candidates, candidate_count, sizeof *candidates, compare_by_priority);

	for (size_t i = 0; i < candidate_count; i++) {
		names_member(names[i].text, sizeof names[i].text, cluster->name, candidates[i].index);
		const struct member_observation *member = observation_member(observation, candidates[i].index);
		/* a diverged standby may stream for a moment all the same (from the start of
		 * its last segment, up to where the primary's timeline forked off): it can
		 * confirm nothing written after, and is never counted on */
		if (member && observation_diverged(member, primary_member))
			continue;
		if (is_streaming_to(primary_member, names[i].text, config_standby_reply_bound_ms(cluster))) {
			chosen[i] = true;
			chosen_count++;
		}
	}
	/* padding keeps first the members the primary's list names now: they may hold
	 * commits that were acknowledged through them, and keeping them changes nothing.
	 * Then standbys that answer (about to stream, as after a failover), then any member.
	 * A padded member is counted on only once it confirms: the list it replaces stays
	 * in the failover pool until then (plan_primary) */
	struct sync_spec running = {0};
	char why[256];
	if (!primary_member ||
	    !syncnames_parse(observation_text(primary_member->synchronous_standby_names), &running, why, sizeof why))
		running = (struct sync_spec){0};
	for (int pass = 0; cluster->synchronous.required && pass < 3; pass++)
		for (size_t i = 0; i < candidate_count && chosen_count < (size_t)cluster->synchronous.number; i++) {
			bool named = false;
			for (size_t s = 0; s < running.count && !named; s++)
				named = syncnames_name_matches(running.names[s], names[i].text);
			const struct member_observation *member = observation_member(observation, candidates[i].index);
			if (member && observation_diverged(member, primary_member))
				continue; /* never counted on: it lacks the primary's history */
			bool answers = member && member->reachable && member->in_recovery;
			if (!chosen[i] && (pass == 2 || (pass == 0 && named) || (pass == 1 && answers))) {
				chosen[i] = true;
				chosen_count++;
			}
		}
	sync_spec_free(&running);
	for (size_t i = 0; i < candidate_count; i++)
		if (chosen[i])
			listed[listed_count++] = names[i].text;

	/* syncnames_render lowers the number to the names listed, and lists none as "" */
	text = syncnames_render(cluster->synchronous.method, cluster->synchronous.number, listed, listed_count);
	free(listed);
	free(names);
	free(chosen);
	free(candidates);
	return text;
}
