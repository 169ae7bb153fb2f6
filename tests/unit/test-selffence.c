/* test-selffence: when a primary stops itself: its pod deleted, the Lease naming another primary, or isolated from the API server and every standby for the isolation timeout, whatever the standbys' clocks say; never a standby, never a primary still reached. */
#include "autoconfig.h"

#include <string.h>

#include "selffence.h"
#include "standbyreach.h"
#include "tap.h"

#define P SELFFENCE_ROLE_PRIMARY
#define S SELFFENCE_ROLE_STANDBY
#define U SELFFENCE_ROLE_UNKNOWN
#define RUN SELFFENCE_POD_RUNNING
#define DEL SELFFENCE_POD_DELETING
#define GONE SELFFENCE_POD_GONE
#define NOPOD SELFFENCE_POD_UNKNOWN
/* a Lease naming member n as the primary, no failover */
#define NAMES(n) {true, n, false, false, -1, -1}
#define NOLEASE {false, -1, false, false, -1, -1}
/* a failover from f to t (demoting: a switchover's clean demote) */
#define FAILOVER(f, t, demoting) {true, f, true, demoting, f, t}

/* This member is 0; isolation after 10 s. Each case starts from memory (primary, reached_ms). */
static const struct {
	const char *name;
	bool was_primary;
	long long reached;
	struct selffence_observation seen;
	enum selffence_verdict verdict;
	const char *why;
	long long reached_after;
} cases[] = {
	{"a reached primary named by the Lease keeps running", true, 0,
	 {20000, P, 1, 20000, 20000, RUN, NAMES(0)}, SELFFENCE_KEEP, "", 20000},
	{"a standby never stops, its pod deleted or not", false, 0,
	 {20000, S, 0, 0, 0, DEL, NAMES(1)}, SELFFENCE_KEEP, "", 0},
	{"an unknown role with no primary seen before never stops", false, 0,
	 {20000, U, -1, 0, 0, GONE, NAMES(1)}, SELFFENCE_KEEP, "", 0},
	{"its pod being deleted stops it", true, 19000,
	 {20000, P, 1, 20000, 20000, DEL, NAMES(0)}, SELFFENCE_STOP, "pod is being deleted", 20000},
	{"its pod gone or replaced stops it", true, 19000,
	 {20000, P, 1, 20000, 20000, GONE, NAMES(0)}, SELFFENCE_STOP, "pod is gone", 20000},
	{"its pod deleted stops it while its PostgreSQL does not answer", true, 19000,
	 {20000, U, -1, 0, 20000, DEL, NAMES(0)}, SELFFENCE_STOP, "pod is being deleted", 20000},
	{"the Lease naming another primary stops it", true, 19000,
	 {20000, P, 1, 20000, 20000, RUN, NAMES(1)}, SELFFENCE_STOP, "names member 1 as the primary", 20000},
	{"a failover away from it stops it", true, 19000,
	 {20000, P, 1, 20000, 20000, RUN, FAILOVER(0, 2, false)}, SELFFENCE_STOP, "failover away from it", 20000},
	{"a failover away from it not chosen yet stops it", true, 19000,
	 {20000, P, 0, 0, 20000, RUN, FAILOVER(0, -1, false)}, SELFFENCE_STOP, "candidate -1", 20000},
	{"a switchover's demote phase shuts it down cleanly, sending its last WAL", true, 19000,
	 {20000, P, 1, 20000, 20000, RUN, FAILOVER(0, 1, true)}, SELFFENCE_DEMOTE, "switchover to member 1", 20000},
	{"a switchover's demote phase shuts it down cleanly while its PostgreSQL does not answer", true, 19000,
	 {20000, U, -1, 0, 20000, RUN, FAILOVER(0, 1, true)}, SELFFENCE_DEMOTE, "demote phase", 20000},
	{"its pod deleted during a switchover's demote stops it at once", true, 19000,
	 {20000, P, 1, 20000, 20000, DEL, FAILOVER(0, 1, true)}, SELFFENCE_STOP, "pod is being deleted", 20000},
	{"a switchover to it in its demote phase keeps it running", true, 19000,
	 {20000, P, 1, 20000, 20000, RUN, FAILOVER(1, 0, true)}, SELFFENCE_KEEP, "", 20000},
	{"a standby whose switchover demotes it is not stopped", false, 0,
	 {20000, S, 0, 0, 0, RUN, FAILOVER(0, 1, true)}, SELFFENCE_KEEP, "", 0},
	{"the candidate of a failover keeps running though the state still names the old primary", true, 19000,
	 {20000, P, 0, 0, 20000, RUN, {true, 2, true, false, 2, 0}}, SELFFENCE_KEEP, "", 20000},
	{"a Lease that names no primary yet (a new cluster) lets it run", true, 19000,
	 {20000, P, 0, 0, 20000, RUN, NAMES(-1)}, SELFFENCE_KEEP, "", 20000},
	{"the API server alone reached is enough", true, 0,
	 {20000, P, 0, 0, 19500, RUN, NOLEASE}, SELFFENCE_KEEP, "", 19500},
	{"a streaming standby alone is enough", true, 0,
	 {20000, P, 1, 19800, 0, NOPOD, NOLEASE}, SELFFENCE_KEEP, "", 19800},
	{"neither reached, within the timeout", true, 10001,
	 {20000, P, 0, 0, 0, NOPOD, NOLEASE}, SELFFENCE_KEEP, "", 10001},
	{"neither reached for the timeout stops it", true, 10000,
	 {20000, P, 0, 0, 0, NOPOD, NOLEASE}, SELFFENCE_STOP, "neither the API server nor any streaming standby for 10000 ms", 10000},
	{"neither reached, its PostgreSQL silent, stops it", true, 5000,
	 {20000, U, -1, 0, 0, NOPOD, NOLEASE}, SELFFENCE_STOP, "for 15000 ms", 5000},
	{"a standby that answered without streaming does not count", true, 5000,
	 {20000, P, 0, 19000, 0, NOPOD, NOLEASE}, SELFFENCE_STOP, "for 15000 ms", 5000},
	{"a member just promoted starts its clock now, whatever came before", false, 0,
	 {20000, P, 0, 0, 0, NOPOD, NOLEASE}, SELFFENCE_KEEP, "", 20000},
	{"a primary that became a standby is no longer watched", true, 0,
	 {20000, S, 0, 0, 0, NOPOD, NAMES(1)}, SELFFENCE_KEEP, "", 0},
	{"an old answer never moves the clock back", true, 15000,
	 {20000, P, 1, 12000, 11000, RUN, NAMES(0)}, SELFFENCE_KEEP, "", 15000},
};

static void test_cases(void)
{
	const struct selffence_config config = {.member = 0, .isolation_ms = 10000};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct selffence_memory memory = {.primary = cases[i].was_primary, .reached_ms = cases[i].reached};
		char why[256];
		enum selffence_verdict verdict = selffence_decide(&config, &cases[i].seen, &memory, why, sizeof why);
		ok(verdict == cases[i].verdict, "%s: %s", cases[i].name, verdict == SELFFENCE_STOP     ? "stop"
									 : verdict == SELFFENCE_DEMOTE ? "demote"
												       : "keep");
		ok(strstr(why, cases[i].why) != NULL && (cases[i].why[0] || !why[0]), "%s: why \"%s\" says \"%s\"",
		   cases[i].name, why, cases[i].why);
		is_int((int)memory.reached_ms, (int)cases[i].reached_after, "%s: last reached", cases[i].name);
	}
}

/* A primary cut off from everything, checked every second from t = 0: it stops at the
 * first round at or past the timeout after the last contact, never before. */
static void test_sweep(void)
{
	const struct selffence_config config = {.member = 0, .isolation_ms = 3000};
	struct selffence_memory memory = {0};
	char why[256];
	long long stopped = -1;

	for (long long now = 0; now <= 20000 && stopped < 0; now += 1000) {
		bool cut = now >= 5000;
		struct selffence_observation seen = {
			.now_ms = now, .role = cut ? SELFFENCE_ROLE_UNKNOWN : SELFFENCE_ROLE_PRIMARY, .streaming = cut ? -1 : 1,
			.standby_reached_ms = cut ? 0 : now, .api_reached_ms = cut ? 0 : now,
			.pod = cut ? SELFFENCE_POD_UNKNOWN : SELFFENCE_POD_RUNNING, .lease = NAMES(0)};
		if (cut)
			seen.lease.known = false;
		if (selffence_decide(&config, &seen, &memory, why, sizeof why) == SELFFENCE_STOP)
			stopped = now;
	}
	is_int((int)stopped, 7000, "last reached at 4000, timeout 3000: stops at the round at 7000");
}

/* A standby's reply_time on its own clock, in microseconds: 1 s after T, and so on. */
#define T 1700000000000000LL
#define SECONDS(n) ((long long)(n) * 1000000)
#define REPLY(pid, name, time) {pid, name, true, time}
#define NO_REPLY(pid, name) {pid, name, false, 0}

/* The previous round read before[] at 19000 (or at before_ms when set: the rounds since
 * read nothing), this one reads now[] at 20000. */
static const struct {
	const char *name;
	size_t before_count;
	struct standbyreach_row before[2];
	long long before_ms;
	size_t now_count;
	struct standbyreach_row now[2];
	long long reached;
} reach_cases[] = {
	{"a reply_time that advanced: reached at the previous round's start", 1, {REPLY(100, "test-1", T)}, 0,
	 1, {REPLY(100, "test-1", T + SECONDS(1))}, 19000},
	{"a reply_time that did not advance: not reached again", 1, {REPLY(100, "test-1", T)}, 0,
	 1, {REPLY(100, "test-1", T)}, 0},
	{"a reply_time 60 s in the primary's future that advanced counts as any other", 1,
	 {REPLY(100, "test-1", T + SECONDS(60))}, 0, 1, {REPLY(100, "test-1", T + SECONDS(61))}, 19000},
	{"a reply_time 60 s in the primary's future that did not advance is not a reach", 1,
	 {REPLY(100, "test-1", T + SECONDS(60))}, 0, 1, {REPLY(100, "test-1", T + SECONDS(60))}, 0},
	{"a reply_time 60 s in the primary's past that advanced is a reach", 1,
	 {REPLY(100, "test-1", T - SECONDS(60))}, 0, 1, {REPLY(100, "test-1", T - SECONDS(59))}, 19000},
	{"a reply_time that went back (the standby's clock stepped) is an answer too", 1,
	 {REPLY(100, "test-1", T)}, 0, 1, {REPLY(100, "test-1", T - SECONDS(3600))}, 19000},
	{"a standby seen for the first time proves nothing yet", 0, {{0}}, 0,
	 1, {REPLY(100, "test-1", T + SECONDS(60))}, 0},
	{"a standby that left proves nothing, the one that stays frozen neither", 2,
	 {REPLY(100, "test-1", T), REPLY(101, "test-2", T)}, 0, 1, {REPLY(101, "test-2", T)}, 0},
	{"a standby that left does not hide the one that advances", 2,
	 {REPLY(100, "test-1", T), REPLY(101, "test-2", T)}, 0, 1, {REPLY(101, "test-2", T + SECONDS(1))}, 19000},
	{"one frozen standby and one that advances: the one that advances counts", 2,
	 {REPLY(100, "test-1", T + SECONDS(60)), REPLY(101, "test-2", T)}, 0,
	 2, {REPLY(100, "test-1", T + SECONDS(60)), REPLY(101, "test-2", T + SECONDS(1))}, 19000},
	{"two frozen standbys, one with a clock 60 s ahead, prove nothing", 2,
	 {REPLY(100, "test-1", T + SECONDS(60)), REPLY(101, "test-2", T)}, 0,
	 2, {REPLY(100, "test-1", T + SECONDS(60)), REPLY(101, "test-2", T)}, 0},
	{"a walsender of another pid under the same name (a reconnection) is a new standby", 1,
	 {REPLY(100, "test-1", T)}, 0, 1, {REPLY(102, "test-1", T + SECONDS(1))}, 0},
	{"another application_name on the same walsender pid is a new standby", 1,
	 {REPLY(100, "test-1", T)}, 0, 1, {REPLY(100, "test-2", T + SECONDS(1))}, 0},
	{"a first reply after none is an answer", 1, {NO_REPLY(100, "test-1")}, 0,
	 1, {REPLY(100, "test-1", T)}, 19000},
	{"still no reply is no answer", 1, {NO_REPLY(100, "test-1")}, 0, 1, {NO_REPLY(100, "test-1")}, 0},
	{"after rounds that read nothing, reached at the start of the last round that read it", 1,
	 {REPLY(100, "test-1", T)}, 16000, 1, {REPLY(100, "test-1", T + SECONDS(4))}, 16000},
	{"no standby streaming any more proves nothing", 1, {REPLY(100, "test-1", T)}, 0, 0, {{0}}, 0},
};

static void test_reach_cases(void)
{
	for (size_t i = 0; i < sizeof reach_cases / sizeof reach_cases[0]; i++) {
		struct standbyreach_memory memory = {0};
		standbyreach_update(&memory, reach_cases[i].before, reach_cases[i].before_count,
				    reach_cases[i].before_ms ? reach_cases[i].before_ms : 19000);
		long long reached = standbyreach_update(&memory, reach_cases[i].now, reach_cases[i].now_count, 20000);
		is_int((int)reached, (int)reach_cases[i].reached, "%s: reached", reach_cases[i].name);
		ok(memory.count == reach_cases[i].now_count && memory.read_ms == 20000 &&
			   (memory.count == 0 ||
			    memcmp(memory.rows, reach_cases[i].now, memory.count * sizeof *memory.rows) == 0),
		   "%s: remembers this round's standbys, read at 20000", reach_cases[i].name);
		standbyreach_clear(&memory);
	}
}

/* The watch's rounds every second from t = 0, as fencewatch runs them: a primary whose
 * standbys' clocks run clock_ahead_ms[i] ahead of its own (behind when negative), the API
 * server never answering, and the standbys answering every second (at 500, 1500, ...,
 * before the rounds) until cut_ms; their walsenders stay "streaming" all along, as until
 * wal_sender_timeout. Returns when the primary stops, -1 when it does not by 60 s. */
static long long isolated_stop(const long long *clock_ahead_ms, size_t count, long long cut_ms)
{
	const struct selffence_config config = {.member = 0, .isolation_ms = 10000};
	struct selffence_memory memory = {0};
	struct standbyreach_memory standbys = {0};
	struct standbyreach_row rows[2] = {REPLY(100, "test-1", 0), REPLY(101, "test-2", 0)};
	char why[256];
	long long stopped = -1;

	for (long long now = 0; now <= 60000 && stopped < 0; now += 1000) {
		long long last_reply = (now < cut_ms ? now : cut_ms) - 500;
		for (size_t i = 0; i < count; i++)
			rows[i].reply_time_us = T + (last_reply + clock_ahead_ms[i]) * 1000;
		struct selffence_observation seen = {
			.now_ms = now, .role = SELFFENCE_ROLE_PRIMARY, .streaming = (int)count,
			.standby_reached_ms = standbyreach_update(&standbys, rows, count, now),
			.pod = SELFFENCE_POD_UNKNOWN, .lease = NOLEASE};
		if (selffence_decide(&config, &seen, &memory, why, sizeof why) == SELFFENCE_STOP)
			stopped = now;
	}
	standbyreach_clear(&standbys);
	return stopped;
}

#define NEVER 1000000
/* The isolation verdict whatever the standbys' clocks: a standby cut at 5000 last answered
 * at 4500, which the round at 5000 sees as a change since the round at 4000: reached at
 * 4000, so the primary stops at 14000, 10 s later, as with clocks that agree. */
static const struct {
	const char *name;
	size_t count;
	long long clock_ahead_ms[2];
	long long cut_ms, stopped;
} skew_cases[] = {
	{"clocks that agree, the standby cut at 5000: stops at 14000", 1, {0}, 5000, 14000},
	{"the standby's clock 60 s ahead, cut at 5000: stops at 14000 all the same, not late", 1, {60000}, 5000, 14000},
	{"the standby's clock 5 s ahead (less than the timeout), cut at 5000: stops at 14000, not 5 s late", 1, {5000},
	 5000, 14000},
	{"the standby's clock 60 s behind, cut at 5000: stops at 14000 all the same", 1, {-60000}, 5000, 14000},
	{"the standby's clock 60 s behind, still answering: keeps running", 1, {-60000}, NEVER, -1},
	{"the standby's clock an hour ahead, still answering: keeps running", 1, {3600000}, NEVER, -1},
	{"a standby 60 s ahead hides no other: both answering, keeps running", 2, {60000, 0}, NEVER, -1},
	{"a standby 5 s ahead hides no other: both cut at 5000, stops at 14000", 2, {5000, 0}, 5000, 14000},
};

static void test_skewed_clocks(void)
{
	for (size_t i = 0; i < sizeof skew_cases / sizeof skew_cases[0]; i++)
		is_int((int)isolated_stop(skew_cases[i].clock_ahead_ms, skew_cases[i].count, skew_cases[i].cut_ms),
		       (int)skew_cases[i].stopped, "%s", skew_cases[i].name);
}

int main(void)
{
	test_cases();
	test_sweep();
	test_reach_cases();
	test_skewed_clocks();
	return done_testing();
}
