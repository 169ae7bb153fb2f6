/* selffence: whether a primary must stop itself, pure: its pod deleted, the cluster's state on its Lease naming another primary, or neither the API server nor any standby reached for the isolation timeout. */
#include "autoconfig.h"

#include "selffence.h"

#include <stdio.h>

bool selffence_lease_allows(const struct selffence_lease *lease, int member, int *who)
{
	*who = -1;
	if (!lease->known)
		return true;
	if (lease->failover) {
		if (lease->to == member || (lease->from == member && lease->demoting))
			return true;
		*who = lease->to;
		return false;
	}
	if (lease->primary < 0 || lease->primary == member)
		return true;
	*who = lease->primary;
	return false;
}

enum selffence_verdict selffence_decide(const struct selffence_config *config,
					const struct selffence_observation *observation,
					struct selffence_memory *memory, char *why, size_t why_size)
{
	long long now = observation->now_ms;

	why[0] = '\0';
	if (observation->role == SELFFENCE_ROLE_PRIMARY && !memory->primary) {
		/* the clock starts now: a member just promoted has had no time to be reached */
		memory->primary = true;
		memory->reached_ms = now;
		memory->isolated_told = false;
	} else if (observation->role == SELFFENCE_ROLE_STANDBY)
		memory->primary = false;
	if (!memory->primary)
		return SELFFENCE_KEEP;

	if (observation->api_reached_ms > memory->reached_ms)
		memory->reached_ms = observation->api_reached_ms;
	if (observation->streaming > 0 && observation->standby_reached_ms > memory->reached_ms)
		memory->reached_ms = observation->standby_reached_ms;

	if (observation->pod == SELFFENCE_POD_DELETING) {
		snprintf(why, why_size, "its pod is being deleted (deletionTimestamp set)");
		return SELFFENCE_STOP;
	}
	if (observation->pod == SELFFENCE_POD_GONE) {
		snprintf(why, why_size, "its pod is gone (deleted, or replaced by another pod of its name)");
		return SELFFENCE_STOP;
	}
	int who;
	if (!selffence_lease_allows(&observation->lease, config->member, &who)) {
		if (observation->lease.failover)
			snprintf(why, why_size,
				 "the cluster's state on the Lease has a failover away from it under way (candidate %d)", who);
		else
			snprintf(why, why_size, "the cluster's state on the Lease names member %d as the primary", who);
		return SELFFENCE_STOP;
	}
	if (observation->lease.known && observation->lease.failover && observation->lease.demoting &&
	    observation->lease.from == config->member) {
		snprintf(why, why_size,
			 "the cluster's state on the Lease has a switchover to member %d in its demote phase: a clean "
			 "shutdown sends the standbys everything this primary wrote",
			 observation->lease.to);
		return SELFFENCE_DEMOTE;
	}
	long long alone = now - memory->reached_ms;
	if (alone >= config->isolation_ms) {
		snprintf(why, why_size,
			 "it has reached neither the API server nor any streaming standby for %lld ms (isolation timeout "
			 "%d ms)",
			 alone, config->isolation_ms);
		return SELFFENCE_STOP;
	}
	return SELFFENCE_KEEP;
}
