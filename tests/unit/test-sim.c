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
	snprintf(path, sizeof path, "%s/pgha.conf", directory);
	unlink(path);
	rmdir(directory);
	return done_testing();
}
