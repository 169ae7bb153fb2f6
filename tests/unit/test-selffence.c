/* test-selffence: when a primary stops itself: its pod deleted, the Lease naming another primary, or isolated from the API server and every standby for the isolation timeout; never a standby, never a primary still reached. */
#include "autoconfig.h"

#include <string.h>

#include "selffence.h"
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

int main(void)
{
	test_cases();
	test_sweep();
	return done_testing();
}
