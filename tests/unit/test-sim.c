/* test-sim: the whole loop (observe -> decide -> act, the daemon's own iteration) on the simulated platform: a 3-member cluster is created, its primary killed, and a standby promoted in its place, with no PostgreSQL. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "act.h"
#include "daemon.h"
#include "exitcode.h"
#include "log.h"
#include "memory.h"
#include "observe.h"
#include "platform_sim.h"
#include "tap.h"

/* Iterations a step may take before the test gives up: each iteration is one
 * observation and its actions, so a step that needs more is a fault, not slowness. */
#define MAX_ITERATIONS 50

static struct sim_world world;

/* A cluster is whole: one primary, every standby streaming from it and listed in its
 * synchronous_standby_names. */
static bool whole(const char *name, int replicas)
{
	struct sim_cluster *cluster = sim_cluster(&world, name);
	int primary = sim_primary(&world, name);
	if (primary < 0 || !cluster->members[primary].synchronous[0])
		return false;
	for (int i = 0; i < replicas; i++) {
		const struct sim_member *member = &cluster->members[i];
		char standby[64];
		snprintf(standby, sizeof standby, "\"%s-%d\"", name, i);
		if (i != primary && (!member->running || !member->standby || member->upstream != primary ||
				     !strstr(cluster->members[primary].synchronous, standby)))
			return false;
	}
	return true;
}

/* Iterates the daemon until done says so; the iterations it took, or -1. */
static int iterate_until(struct daemon *daemon, bool (*done)(void *), void *context)
{
	for (int i = 1; i <= MAX_ITERATIONS; i++) {
		daemon_iterate(daemon);
		sim_advance(&world, 4096);
		if (done(context))
			return i;
	}
	return -1;
}

/* Three iterations at rest, then what each member was asked so far: its probes, and the
 * primary's pings. */
static void rest_then_count(struct daemon *daemon, const struct sim_cluster *cluster, int primary,
			    unsigned long probes[3], unsigned long *pings)
{
	for (int i = 0; i < 3; i++) {
		daemon_iterate(daemon);
		sim_advance(&world, 4096);
	}
	for (int i = 0; i < 3; i++)
		probes[i] = cluster->members[i].probes;
	*pings = cluster->members[primary].pings;
}

static bool cluster_whole(void *context)
{
	return whole(context, 3);
}

static bool promoted(void *context)
{
	(void)context;
	return world.promotions > 0 && sim_primary(&world, "sim") >= 0;
}

static bool promoted_again(void *context)
{
	const unsigned long *before = context;
	return world.promotions > *before && sim_primary(&world, "sim") >= 0;
}

static bool write_config(const char *path, const char *directory)
{
	FILE *file = fopen(path, "w");
	if (!file)
		return false;
	fprintf(file, "daemon: { log_level = \"warning\"; state_dir = \"%s\"; };\n"
		      "clusters = ( { name = \"sim\"; replicas = 3; port = 7000;\n"
		      "  failover = { timeout_ms = 1000; }; } );\n",
		directory);
	return fclose(file) == 0;
}

/* How often a probe also asks the postmaster for a new connection (each forks a child of
 * it): from its process state and, asleep, where it sleeps. */
static void test_postmaster_check_period(void)
{
	static const struct {
		char state;
		enum postmaster_wait wait;
		int check_ms;
		const char *what;
	} cases[] = {
		{'S', POSTMASTER_WAIT_CONNECTIONS, 300000, "asleep in its loop: every 5 minutes"},
		{'S', POSTMASTER_WAIT_UNKNOWN, 30000, "asleep, where unknown: every 30 s"},
		{'S', POSTMASTER_WAIT_ELSEWHERE, 0, "asleep elsewhere (a lock, as deadlocked in a handler): every probe"},
		{'R', POSTMASTER_WAIT_UNKNOWN, 0, "running: every probe"},
		{'D', POSTMASTER_WAIT_UNKNOWN, 0, "frozen or stuck in the kernel: every probe"},
		{'D', POSTMASTER_WAIT_CONNECTIONS, 0, "frozen, whatever it waited in before: every probe"},
		{0, POSTMASTER_WAIT_UNKNOWN, 0, "its process unseen (kubernetes): every probe"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct member_observation member = {.postmaster = 42, .postmaster_state = cases[i].state,
						    .postmaster_wait = cases[i].wait};
		is_int(observe_postmaster_check_ms(&member), cases[i].check_ms, "postmaster check: %s", cases[i].what);
	}
}

int main(void)
{
	char directory[] = "/tmp/pgha-test-sim-XXXXXX", path[128];
	struct daemon daemon;
	sd_event *event = NULL;

	if (!mkdtemp(directory) || sd_event_new(&event) < 0) {
		printf("Bail out! cannot make a directory or an event loop\n");
		return 1;
	}
	snprintf(path, sizeof path, "%s/pgha.conf", directory);
	test_postmaster_check_period();
	ok(write_config(path, directory), "configuration written");
	sim_attach(&world);
	if (!ok(daemon_start_on(&daemon, path, &sim_platform_ops) == PGHA_EXIT_OK, "pghad starts on the simulation"))
		return 1;
	daemon_attach(&daemon, event);

	int iterations = iterate_until(&daemon, cluster_whole, "sim");
	ok(iterations > 0, "a 3-member cluster is created through the loop (%d iterations)", iterations);
	int old = sim_primary(&world, "sim");
	is_int(old, 0, "sim-0 is its first primary");
	const struct sim_cluster *cluster = sim_cluster(&world, "sim");
	ok(strstr(cluster->members[old].synchronous, "sim-1") && strstr(cluster->members[old].synchronous, "sim-2"),
	   "both standbys are in its synchronous list: %s", cluster->members[old].synchronous);
	ok(cluster->state_saved && cluster->state.primary == old, "the state remembers the primary");

	/* the operations of the creation have ended: once tidied between iterations, a lookup
	 * (each member's busy flag, each turn's settling) scans none of them; one begun then
	 * is scanned again, and tidying keeps an operation under way while dropping one ended */
	daemon_iterate(&daemon);
	sim_advance(&world, 4096);
	daemon_iterate(&daemon);
	sim_advance(&world, 4096);
	is_int((int)actor_scanned(daemon.actor), 0, "at rest no operation slot is scanned");
	struct operation *ended = actor_begin(daemon.actor, "other", 0, OPERATION_START, -1);
	struct operation *going = actor_begin(daemon.actor, "other", 1, OPERATION_START, -1);
	ok(ended != going && actor_busy("other", 0, daemon.actor) && actor_busy("other", 1, daemon.actor),
	   "operations begun at rest are seen under way");
	ended->active = false;
	actor_tidy(daemon.actor);
	ok(actor_scanned(daemon.actor) == 1 && actor_busy("other", 1, daemon.actor) && !actor_busy("other", 0, daemon.actor),
	   "tidied: the one under way is still seen, the one ended is no longer scanned");
	ok(actor_begin(daemon.actor, "other", 2, OPERATION_START, -1) == ended && actor_scanned(daemon.actor) == 2 &&
	   actor_busy("other", 2, daemon.actor), "an ended slot beyond the scanned ones is reused and scanned again");
	going->active = false;
	ended->active = false;
	actor_tidy(daemon.actor);

	uint64_t acknowledged = cluster->members[old].lsn;
	/* the right to act is asked of the platform right before each action: refused (a Lease
	 * run out between the decision and the action), nothing is carried out, whatever was
	 * decided; allowed again, the failover decided meanwhile goes on */
	sim_cluster(&world, "sim")->refuse_actions = true;
	sim_kill(&world, "sim", old);
	for (int i = 0; i < 5; i++) {
		daemon_iterate(&daemon);
		sim_advance(&world, 4096);
	}
	ok(cluster->refusals > 0, "refused: the platform was asked before acting (%lu refusals)", cluster->refusals);
	ok(world.promotions == 0 && sim_primary(&world, "sim") == -1 && !cluster->members[old].running,
	   "refused: no promotion, and the killed primary is not started again");
	ok(cluster->members[1].upstream == old && cluster->members[2].upstream == old,
	   "refused: no standby is cut from the old primary (no ALTER SYSTEM reached them)");
	sim_cluster(&world, "sim")->refuse_actions = false;
	iterations = iterate_until(&daemon, promoted, NULL);
	ok(iterations > 0, "after the primary is killed a standby is promoted (%d iterations)", iterations);
	int new = sim_primary(&world, "sim");
	ok(new == 1 || new == 2, "the new primary is a standby of the old one: sim-%d", new);
	ok(new >= 0 && cluster->members[new].lsn >= acknowledged,
	   "it has everything the old primary acknowledged");
	ok(new >= 0 && cluster->members[new].timeline == 2, "it is on a new timeline");
	is_int((int)world.promotions, 1, "one promotion");

	iterations = iterate_until(&daemon, cluster_whole, "sim");
	ok(iterations > 0, "then the cluster is whole again: the old primary rejoins (%d iterations)", iterations);
	is_int(sim_primary(&world, "sim"), new, "with the promoted member its primary");
	is_int(cluster->state.failover.kind, FAILOVER_NONE, "and the failover is over: %s", cluster->state.last);

	/* a probe that fails once is no failover: the primary counts as failed only after
	 * failover.timeout_ms without an answer */
	sim_blip(&world, "sim", new, 1);
	unsigned long promotions = world.promotions;
	for (int i = 0; i < 5; i++) {
		daemon_iterate(&daemon);
		sim_advance(&world, 4096);
	}
	ok(world.promotions == promotions && sim_primary(&world, "sim") == new && whole("sim", 3),
	   "a primary that misses one probe stays the primary");

	/* at rest the primary answers at every iteration, pinged, and is probed with its
	 * standbys every few seconds (observe.c's PROBE_REST_PERIOD_MS; these iterations take
	 * milliseconds): what it listed of them at its last probe stands in meanwhile */
	int standby = new == 1 ? 2 : 1;
	unsigned long probes[3], pings = cluster->members[new].pings;
	for (int i = 0; i < 3; i++)
		probes[i] = cluster->members[i].probes;
	for (int i = 0; i < 10; i++) {
		sim_advance(&world, 4096);
		daemon_iterate(&daemon);
	}
	unsigned long primary_probes = cluster->members[new].probes - probes[new];
	is_int((long long)(primary_probes + cluster->members[new].pings - pings), 10,
	       "at rest the primary answers at every iteration");
	ok(primary_probes <= 1, "pinged: probed %lu times in 10 iterations", primary_probes);
	ok(cluster->members[0].probes - probes[0] <= 1 && cluster->members[standby].probes - probes[standby] <= 1,
	   "its standbys at most once in 10 iterations (%lu and %lu)", cluster->members[0].probes - probes[0],
	   cluster->members[standby].probes - probes[standby]);
	ok(whole("sim", 3) && world.promotions == promotions, "and the cluster stays whole");
	const struct member_observation *seen = observation_member(&daemon.observations[0], standby);
	const struct member_observation *primary_seen = observation_member(&daemon.observations[0], new);
	const struct replication_peer *listed = NULL;
	for (size_t p = 0; primary_seen && p < primary_seen->peer_count; p++)
		if (seen && strcmp(primary_seen->peers[p].application_name, seen->name) == 0)
			listed = &primary_seen->peers[p];
	ok(seen && seen->reachable && seen->in_recovery && seen->streaming && seen->probed_ms > 0 && listed &&
	   seen->lsn == listed->replay_lsn && seen->lsn < cluster->members[standby].lsn,
	   "a standby at rest shows its last probe, with the position its primary listed at its own");

	/* the primary's rest period over (its standbys' reply ages, grown since its probe,
	 * out of the bound), it is probed, and its answer lets its standbys rest on: five
	 * times, each 5 s apart, it alone is probed (observe.c's PROBE_STANDBY_REST_PERIOD_MS,
	 * 30 s, less the time these iterations took) */
	for (int i = 0; i < 3; i++)
		probes[i] = cluster->members[i].probes;
	for (int i = 0; i < 5; i++) {
		observation_clock_advance(5000);
		daemon_iterate(&daemon);
	}
	ok(cluster->members[new].probes - probes[new] == 5 && cluster->members[0].probes == probes[0] &&
	   cluster->members[standby].probes == probes[standby],
	   "after its rest period the primary is probed alone, its list letting its standbys rest (%lu, %lu, %lu)",
	   cluster->members[new].probes - probes[new], cluster->members[0].probes - probes[0],
	   cluster->members[standby].probes - probes[standby]);
	ok(whole("sim", 3) && world.promotions == promotions, "and the cluster stays whole");
	/* the standbys' rest period over, every member is probed again, in one iteration */
	for (int i = 0; i < 3; i++)
		probes[i] = cluster->members[i].probes;
	observation_clock_advance(5000);
	daemon_iterate(&daemon);
	ok(cluster->members[new].probes - probes[new] == 1 && cluster->members[0].probes - probes[0] == 1 &&
	   cluster->members[standby].probes - probes[standby] == 1,
	   "after the standbys' rest period the primary and its standbys are probed again, together");
	seen = observation_member(&daemon.observations[0], standby);
	ok(seen && seen->lsn == cluster->members[standby].lsn, "the standby's position is its own again");

	/* a standby whose WAL receiver stops at rest, asleep and answering all the same,
	 * leaves its primary's list: seen at the primary's next probe (within the rest
	 * period), which is doubt: it is probed in the same iteration */
	sim_cluster(&world, "sim")->members[standby].upstream = -1;
	probes[standby] = cluster->members[standby].probes;
	daemon_iterate(&daemon);
	is_int((long long)(cluster->members[standby].probes - probes[standby]), 0,
	       "while the cluster rests, its primary only pinged, it is not probed");
	observation_clock_advance(5000);
	daemon_iterate(&daemon);
	seen = observation_member(&daemon.observations[0], standby);
	is_int((long long)(cluster->members[standby].probes - probes[standby]), 1,
	       "a standby its primary no longer lists streaming is probed in the iteration of the primary's probe");
	ok(seen && seen->reachable && !seen->streaming, "and seen not streaming");
	iterations = iterate_until(&daemon, cluster_whole, "sim");
	ok(iterations > 0, "pointed at its primary again, the cluster is whole (%d iterations)", iterations);

	/* a primary that hangs at rest, its process frozen (D), is probed, not pinged: it is
	 * seen not answering at the next iteration, and its standbys are probed in it */
	rest_then_count(&daemon, cluster, new, probes, &pings);
	sim_hang(&world, "sim", new, true);
	daemon_iterate(&daemon);
	seen = observation_member(&daemon.observations[0], new);
	ok(cluster->members[new].pings == pings && cluster->members[new].probes - probes[new] == 1,
	   "a primary whose process shows frozen is probed, not pinged");
	ok(seen && !seen->reachable, "a primary hung at rest is seen not answering at the next iteration: %s",
	   seen ? seen->error : "not observed");
	ok(cluster->members[0].probes - probes[0] == 1 && cluster->members[standby].probes - probes[standby] == 1,
	   "and its standbys are probed in that iteration");
	sim_hang(&world, "sim", new, false);
	iterations = iterate_until(&daemon, cluster_whole, "sim");
	ok(iterations > 0 && world.promotions == promotions, "answering again at once, it stays the primary (%d iterations)",
	   iterations);

	/* any probe that fails is doubt: the primary at rest missing its ping (as one hung
	 * while its process shows asleep would) has every member probed */
	rest_then_count(&daemon, cluster, new, probes, &pings);
	sim_blip(&world, "sim", new, 1);
	daemon_iterate(&daemon);
	seen = observation_member(&daemon.observations[0], new);
	ok(cluster->members[new].pings - pings == 1 && seen && !seen->reachable,
	   "a primary at rest that does not answer its ping is seen not answering: %s",
	   seen ? seen->error : "not observed");
	ok(cluster->members[0].probes - probes[0] == 1 && cluster->members[standby].probes - probes[standby] == 1,
	   "when the primary's ping fails, its standbys are probed in the same iteration");
	for (int i = 0; i < 3; i++) {
		daemon_iterate(&daemon);
		sim_advance(&world, 4096);
	}

	/* a standby that hangs at rest leaves its primary's list: it is probed in the same
	 * iteration, and is seen not answering */
	sim_hang(&world, "sim", standby, true);
	probes[standby] = cluster->members[standby].probes;
	daemon_iterate(&daemon);
	seen = observation_member(&daemon.observations[0], standby);
	is_int((long long)(cluster->members[standby].probes - probes[standby]), 1,
	       "a standby hung at rest is probed at the next iteration");
	ok(seen && !seen->reachable, "and seen not answering: %s", seen ? seen->error : "not observed");
	sim_hang(&world, "sim", standby, false);
	iterations = iterate_until(&daemon, cluster_whole, "sim");
	ok(iterations > 0, "answering again, the cluster is whole (%d iterations)", iterations);

	/* one killed at rest: its postmaster is gone, seen from the platform, and started again */
	for (int i = 0; i < 3; i++) {
		daemon_iterate(&daemon);
		sim_advance(&world, 4096);
	}
	sim_kill(&world, "sim", standby);
	daemon_iterate(&daemon);
	seen = observation_member(&daemon.observations[0], standby);
	ok(seen && !seen->reachable && !seen->postmaster, "a standby killed at rest is seen gone at the next iteration");
	iterations = iterate_until(&daemon, cluster_whole, "sim");
	ok(iterations > 0 && world.promotions == promotions, "started again, the cluster is whole (%d iterations)",
	   iterations);

	/* a lagging standby is not the one promoted: the other has more of the WAL. sim-0
	 * lags: the lowest index, it would win were both as far */
	int lagging = 0, ahead = new == 1 ? 2 : 1;
	sim_lag(&world, "sim", lagging, 3 * 4096);
	for (int i = 0; i < 3; i++)
		sim_advance(&world, 4096);
	sim_kill(&world, "sim", new);
	iterations = iterate_until(&daemon, promoted_again, &promotions);
	ok(iterations > 0, "a second failover (%d iterations)", iterations);
	is_int(sim_primary(&world, "sim"), ahead, "the standby ahead is promoted, not sim-%d that lags", lagging);

	daemon_stop(&daemon);
	sd_event_unref(event);
	/* the configuration, and what pghad wrote beside it (its history) */
	for (const char *const *name = (const char *const[]){"pgha.conf", "history.jsonl", NULL}; *name; name++) {
		snprintf(path, sizeof path, "%s/%s", directory, *name);
		unlink(path);
	}
	ok(rmdir(directory) == 0, "nothing is left in %s", directory);
	return done_testing();
}
