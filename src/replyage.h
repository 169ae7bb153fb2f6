/* replyage: how long ago each standby last answered its primary, by the primary's clock corrected for the standby's, whose offset pghad's own successive probes of the primary bound: the members' clocks need not agree. Pure. */
#ifndef PGHA_REPLYAGE_H
#define PGHA_REPLYAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "observation.h"

/* What a primary's probes read of one standby's replies. */
struct reply_seen {
	char name[MEMBER_NAME_SIZE];
	char reply_time[REPLY_TIME_SIZE]; /* its last stamp, as read */
	long long read_ms;                /* the last probe that read it */
	/* how far the standby's clock may be behind the primary's (ms; negative: ahead), as
	 * far as the probes prove it: from low to high */
	bool bounded_below;
	long long low, high;
};

/* Per primary: the standbys its last probe listed. Zero it before the first use. */
struct reply_memory {
	struct reply_seen *seen;
	size_t count;
};

/* Makes the reply_age_ms of each of peers, read by a probe of their primary at now_ms,
 * an age by the primary's clock whatever the standby's. On the way in it is
 * clock_timestamp() - reply_time, which mixes the clocks: with the standby's ahead, one
 * cut off would look answering for as long; behind, one answering would look silent.
 * Whatever the clocks, a probe reading a stamp that differs from the last one read
 * proves the reply came between that earlier probe and now: the offset between the
 * clocks lies between that age less the time since and that age itself. The offsets so
 * proved are intersected over the probes, and the age is corrected by the offset of
 * the bounds nearest to none (so it is the primary's clock's own when the clocks agree),
 * then floored at 0. A standby read for the first time has its offset bounded above
 * only. A peer without a stamp is left as it is (its age -1). With next, next receives
 * what this probe read (the standbys no longer listed forgotten), to replace last. */
void replyage_hold(const struct reply_memory *last, struct replication_peer *peers, size_t count, long long now_ms,
		   struct reply_memory *next);

void replyage_forget(struct reply_memory *memory);

#endif
