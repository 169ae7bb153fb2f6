/* replyage: how long ago each standby last answered its primary, by the primary's clock corrected for the standby's, whose offset pghad's own successive probes of the primary bound: the members' clocks need not agree. Pure. */
#include "autoconfig.h"

#include "replyage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"

static const struct reply_seen *find(const struct reply_memory *memory, const char *name)
{
	for (size_t i = 0; memory && i < memory->count; i++)
		if (strcmp(memory->seen[i].name, name) == 0)
			return &memory->seen[i];
	return NULL;
}

/* Intersects seen's offsets with those a new stamp allows: aged age by the primary's
 * clock at now_ms, made after since_ms (the probe that read the stamp before it), its
 * true age lies between 0 and now_ms - since_ms. Made again from these alone when they
 * contradict seen's: a clock was set. */
static void bound(struct reply_seen *seen, long long age, long long since_ms, long long now_ms)
{
	long long low = age - (now_ms - since_ms), high = age;

	if (low > seen->high || (seen->bounded_below && high < seen->low)) {
		seen->low = low;
		seen->high = high;
	} else {
		if (!seen->bounded_below || low > seen->low)
			seen->low = low;
		if (high < seen->high)
			seen->high = high;
	}
	seen->bounded_below = true;
}

void replyage_hold(const struct reply_memory *last_read, struct replication_peer *peers, size_t count, long long now_ms,
		   struct reply_memory *next)
{
	struct reply_seen *read = xcalloc(count + 1, sizeof *read);
	size_t kept = 0;

	for (size_t i = 0; i < count; i++) {
		struct replication_peer *peer = &peers[i];
		if (!peer->reply_time[0])
			continue;
		const struct reply_seen *last = find(last_read, peer->application_name);
		struct reply_seen *seen = &read[kept++];
		long long age = peer->reply_age_ms;
		if (last)
			*seen = *last;
		else
			*seen = (struct reply_seen){.high = age};
		snprintf(seen->name, sizeof seen->name, "%s", peer->application_name);
		if (last && strcmp(last->reply_time, peer->reply_time) != 0 && now_ms >= last->read_ms)
			bound(seen, age, last->read_ms, now_ms);
		snprintf(seen->reply_time, sizeof seen->reply_time, "%s", peer->reply_time);
		seen->read_ms = now_ms;
		/* no offset if it may be none, else the nearest that may be */
		long long offset = 0 > seen->high ? seen->high : seen->bounded_below && 0 < seen->low ? seen->low : 0;
		peer->reply_age_ms = age > offset ? age - offset : 0;
	}
	if (next)
		*next = (struct reply_memory){.seen = read, .count = kept};
	else
		free(read);
}

void replyage_forget(struct reply_memory *memory)
{
	free(memory->seen);
	*memory = (struct reply_memory){0};
}
