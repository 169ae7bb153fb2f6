/* lease: the arithmetic of a Kubernetes Lease on this pghad's monotonic clock, pure: until when its holder may act, and when another may take it over. */
#include "autoconfig.h"

#include "lease.h"

#include <stdio.h>

int lease_action_margin_ms(int duration_ms)
{
	int margin = duration_ms / 4;
	return margin > LEASE_MIN_MARGIN_MS ? margin : LEASE_MIN_MARGIN_MS;
}

long long lease_remaining_ms(long long renew_sent_ms, int duration_ms, long long now_ms)
{
	return renew_sent_ms + duration_ms - now_ms;
}

bool lease_may_act(bool held, long long renew_sent_ms, int duration_ms, long long now_ms, char *why,
		   size_t why_size)
{
	long long remaining = lease_remaining_ms(renew_sent_ms, duration_ms, now_ms);
	int margin = lease_action_margin_ms(duration_ms);

	if (!held)
		snprintf(why, why_size, "this pghad does not hold the lease");
	else if (remaining <= 0)
		snprintf(why, why_size, "the lease expired %lld ms ago (last renewal sent %lld ms ago, for %d ms)", -remaining,
			 now_ms - renew_sent_ms, duration_ms);
	else if (remaining <= margin)
		snprintf(why, why_size, "the lease expires in %lld ms, within the %d ms margin kept for an action to land",
			 remaining, margin);
	else
		return true;
	return false;
}

int lease_takeover_duration_ms(long long lease_duration_seconds, int fallback_seconds)
{
	long long seconds = lease_duration_seconds >= 1 && lease_duration_seconds <= 3600 ? lease_duration_seconds
											     : fallback_seconds;
	return (int)(seconds * 1000);
}

bool lease_expired_for_others(long long seen_ms, int duration_ms, long long now_ms)
{
	return now_ms - seen_ms >= duration_ms;
}
