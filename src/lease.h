/* lease: the arithmetic of a Kubernetes Lease on this pghad's monotonic clock, pure: until when its holder may act, and when another may take it over. */
#ifndef PGHA_LEASE_H
#define PGHA_LEASE_H

#include <stdbool.h>
#include <stddef.h>

/* A holder renews every duration / LEASE_RENEW_FRACTION. */
#define LEASE_RENEW_FRACTION 5
/* The smallest margin kept before the end of a Lease for an action to land. */
#define LEASE_MIN_MARGIN_MS 500

/* Who sees what, with no comparison of clocks across machines:
 * - the holder's write lands on the API server at some moment between the request's
 *   start and its response; the holder counts its Lease from the START of the request
 *   (the earliest the write can have landed), and only once the response said it was
 *   written: it may act until renew_sent_ms + duration_ms;
 * - another pghad counts from when it first SAW that write, a clock read AFTER the
 *   response that showed it (the latest it can have landed), plus the duration the Lease
 *   itself says (spec.leaseDurationSeconds), not its own configuration's.
 * Since renew_sent <= landed <= seen, the holder's end comes before anyone's takeover,
 * by the time the GET took and more. The margin absorbs the drift of the two monotonic
 * clocks and the time between the check and the moment an action reaches its target. */

/* The margin an action keeps before the end of a Lease of duration_ms: a quarter of it,
 * at least LEASE_MIN_MARGIN_MS. */
int lease_action_margin_ms(int duration_ms);

/* How long the holder may still act (<= 0: not at all): its last write, whose request
 * started at renew_sent_ms and whose response said it was written, was for duration_ms;
 * now_ms is read at the moment of the action. */
long long lease_remaining_ms(long long renew_sent_ms, int duration_ms, long long now_ms);

/* Whether the holder may take a destructive action now: held, and more than the margin
 * left. why gets the reason when not ("expired 1200 ms ago", "expires in 300 ms, within
 * the 1000 ms margin"). */
bool lease_may_act(bool held, long long renew_sent_ms, int duration_ms, long long now_ms, char *why,
		   size_t why_size);

/* The duration to wait for before taking over a Lease of another holder: the Lease's
 * own spec.leaseDurationSeconds when it is a sane number (1 s .. 1 h), else
 * fallback_seconds (this pghad's setting), in milliseconds. */
int lease_takeover_duration_ms(long long lease_duration_seconds, int fallback_seconds);

/* Whether another holder's Lease may be taken over: its current version was first seen
 * at seen_ms (read after the response that showed it), and it says duration_ms. */
bool lease_expired_for_others(long long seen_ms, int duration_ms, long long now_ms);

#endif
