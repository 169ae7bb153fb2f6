/* observation: what one look at a cluster saw of each member (from the platform and from PostgreSQL), and the questions decide, failover and the platforms ask of it. No I/O. */
#include "autoconfig.h"

#include "observation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory.h"

void member_observation_clear_lists(struct member_observation *member)
{
	free(member->peers);
	free(member->slots);
	free(member->history);
	free(member->clones);
	member->peers = NULL;
	member->peer_count = 0;
	member->slots = NULL;
	member->slot_count = 0;
	member->history = NULL;
	member->history_count = 0;
	member->clones = NULL;
	member->clone_count = 0;
	free(member->synchronous_standby_names);
	free(member->primary_conninfo);
	member->synchronous_standby_names = member->primary_conninfo = NULL;
}

void observation_set_text(char **text, const char *value, size_t size)
{
	free(*text);
	*text = xstrndup(value ? value : "", size - 1);
}

static void *copy_list(const void *list, size_t count, size_t size)
{
	if (!list || count == 0)
		return NULL;
	void *copy = xcalloc(count, size);
	memcpy(copy, list, count * size);
	return copy;
}

void observation_copy_probe(struct member_observation *to, const struct member_observation *from)
{
	member_observation_clear_lists(to);
	to->reachable = from->reachable;
	snprintf(to->error, sizeof to->error, "%s", from->error);
	to->in_recovery = from->in_recovery;
	to->timeline = from->timeline;
	to->lsn = from->lsn;
	to->receive_lsn = from->receive_lsn;
	to->streaming = from->streaming;
	to->receiving = from->receiving;
	to->receiver_pid = from->receiver_pid;
	to->wal_timeline = from->wal_timeline;
	to->history = copy_list(from->history, from->history_count, sizeof *from->history);
	to->history_count = to->history ? from->history_count : 0;
	to->pending_restart = from->pending_restart;
	to->lowers_standby_sensitive = from->lowers_standby_sensitive;
	snprintf(to->overridden, sizeof to->overridden, "%s", from->overridden);
	to->replication_role = from->replication_role;
	to->replication_role_exists = from->replication_role_exists;
	observation_set_text(&to->synchronous_standby_names, from->synchronous_standby_names, OBSERVATION_NAMES_SIZE);
	observation_set_text(&to->primary_conninfo, from->primary_conninfo, OBSERVATION_CONNINFO_SIZE);
	snprintf(to->primary_slot_name, sizeof to->primary_slot_name, "%s", from->primary_slot_name);
	to->upstream = from->upstream;
	to->follow_settings_current = from->follow_settings_current;
	to->peers = copy_list(from->peers, from->peer_count, sizeof *from->peers);
	to->peer_count = to->peers ? from->peer_count : 0;
	to->clones = copy_list(from->clones, from->clone_count, sizeof *from->clones);
	to->clone_count = to->clones ? from->clone_count : 0;
	to->received_timeline = from->received_timeline;
	to->slots = copy_list(from->slots, from->slot_count, sizeof *from->slots);
	to->slot_count = to->slots ? from->slot_count : 0;
	to->probed_ms = from->probed_ms;
}

void cluster_observation_free(struct cluster_observation *observation)
{
	for (size_t i = 0; i < observation->count; i++)
		member_observation_clear_lists(&observation->members[i]);
	free(observation->members);
	*observation = (struct cluster_observation){0};
}

uint64_t observation_position(const struct member_observation *member)
{
	return member->receive_lsn > member->lsn ? member->receive_lsn : member->lsn;
}

bool observation_diverged(const struct member_observation *standby, const struct member_observation *primary)
{
	if (!standby->reachable || !standby->in_recovery || !standby->wal_timeline || !primary || !primary->reachable ||
	    !primary->wal_timeline || standby == primary)
		return false;
	if (primary->in_recovery) {
		/* a candidate about to be promoted: its timeline forks off where its WAL ends */
		return standby->wal_timeline > primary->wal_timeline ||
		       (standby->wal_timeline == primary->wal_timeline &&
			observation_position(standby) > observation_position(primary));
	}
	return !timeline_contains(primary->history, primary->history_count, primary->wal_timeline, standby->wal_timeline,
				  observation_position(standby));
}

const struct member_observation *observation_member(const struct cluster_observation *observation, int index)
{
	for (size_t i = 0; i < observation->count; i++)
		if (observation->members[i].index == index)
			return &observation->members[i];
	return NULL;
}

const struct member_observation *observation_primary(const struct cluster_observation *observation)
{
	for (size_t i = 0; observation && i < observation->count; i++)
		if (observation->members[i].reachable && !observation->members[i].in_recovery)
			return &observation->members[i];
	return NULL;
}

bool observation_peer_streaming(const struct replication_peer *peer, long long bound_ms)
{
	if (strcmp(peer->state, "streaming") != 0)
		return false;
	return bound_ms <= 0 || (peer->reply_age_ms >= 0 && peer->reply_age_ms <= bound_ms);
}

static long long clock_advanced_ms;

long long observation_clock_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + clock_advanced_ms;
}

void observation_clock_advance(long long ms)
{
	clock_advanced_ms += ms;
}
