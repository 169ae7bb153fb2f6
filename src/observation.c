/* observation: what one look at a cluster saw of each member (from the platform and from PostgreSQL), and the questions decide, failover and the platforms ask of it. No I/O. */
#include "autoconfig.h"

#include "observation.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void cluster_observation_free(struct cluster_observation *observation)
{
	for (size_t i = 0; i < observation->count; i++) {
		free(observation->members[i].peers);
		free(observation->members[i].slots);
		free(observation->members[i].history);
		free(observation->members[i].clones);
	}
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

long long observation_clock_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}
