/* scale-sim: pghad's loop alone with many clusters on the simulated platform (no PostgreSQL, no process): iterations to all healthy, iteration wall and CPU time at rest, RSS, and one cluster's failover with another cluster's member hung; key=value lines for bench/scale-sim. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "daemon.h"
#include "exitcode.h"
#include "platform_sim.h"

#define MEMBERS 3
/* Iterations a phase may take before it counts as failed: each iteration is one
 * observation and its actions per cluster, so a phase that needs more is a fault. */
#define MAX_ITERATIONS 200
/* Bytes each primary writes between iterations. */
#define WRITTEN 4096

static struct sim_world world;

struct options {
	int clusters;
	int rest;          /* iterations measured at rest */
	int interval_ms;   /* a pause before each iteration at rest (0: none; -1: loop_interval_ms, as the loop) */
	bool failover;     /* measure one cluster's failover, plain and with another's member hung */
	bool metrics;      /* daemon.metrics_file set: each iteration writes it */
};

static double monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
	return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

/* VmRSS of this process, KiB (-1: unknown). */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *status = fopen("/proc/self/status", "r");
	if (!status)
		return -1;
	while (fgets(line, sizeof line, status))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(status);
	return kib;
}

static long max_rss_kib(void)
{
	struct rusage usage;
	return getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss : -1;
}

static void cluster_name(char *buffer, size_t size, int index)
{
	snprintf(buffer, size, "c%04d", index);
}

/* A cluster is whole: one primary, every other member a running standby streaming from
 * it and listed in its synchronous_standby_names. */
static bool whole(const struct sim_cluster *cluster)
{
	int primary = -1;
	for (int i = 0; i < MEMBERS; i++)
		if (cluster->members[i].running && !cluster->members[i].standby)
			primary = primary == -1 ? i : -2;
	if (primary < 0 || !cluster->members[primary].synchronous[0])
		return false;
	for (int i = 0; i < MEMBERS; i++) {
		const struct sim_member *member = &cluster->members[i];
		char standby[80];
		snprintf(standby, sizeof standby, "\"%s-%d\"", cluster->name, i);
		if (i != primary && (!member->running || !member->standby || member->upstream != primary ||
				     !strstr(cluster->members[primary].synchronous, standby)))
			return false;
	}
	return true;
}

static int whole_count(void)
{
	int count = 0;
	for (int i = 0; i < world.cluster_count; i++)
		count += whole(&world.clusters[i]);
	return count;
}

/* One iteration as the loop runs it: every cluster's turn, then the status line it
 * reports; its wall and CPU time, ms. */
static void iterate(struct daemon *daemon, double *wall, double *cpu)
{
	char status[1024];
	double wall_start = monotonic_ms(), cpu_start = cpu_ms();
	daemon_iterate(daemon);
	daemon_status_line(daemon, status, sizeof status);
	*wall = monotonic_ms() - wall_start;
	*cpu = cpu_ms() - cpu_start;
	sim_advance(&world, WRITTEN);
}

/* Iterates until done; the iterations it took (-1: not within MAX_ITERATIONS) and their
 * wall time in *loop_ms. */
static int iterate_until(struct daemon *daemon, bool (*done)(void *), void *context, double *loop_ms)
{
	*loop_ms = 0;
	for (int i = 1; i <= MAX_ITERATIONS; i++) {
		double wall, cpu;
		iterate(daemon, &wall, &cpu);
		*loop_ms += wall;
		if (done(context))
			return i;
	}
	return -1;
}

static bool all_whole(void *context)
{
	return whole_count() == *(const int *)context;
}

struct promotion {
	const char *cluster;
	unsigned long before; /* world.promotions before the fault */
};

/* A standby of the cluster is its primary now. */
static bool promoted(void *context)
{
	const struct promotion *promotion = context;
	return world.promotions > promotion->before && sim_primary(&world, promotion->cluster) >= 0;
}

static bool cluster_whole(void *context)
{
	return whole(sim_cluster(&world, context));
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest rank, of sorted values. */
static double percentile(const double *sorted, int count, double fraction)
{
	int rank = (int)(fraction * count + 0.999999);
	if (rank < 1)
		rank = 1;
	return sorted[(rank > count ? count : rank) - 1];
}

static bool write_config(const char *path, const char *directory, const struct options *options)
{
	FILE *file = fopen(path, "w");
	if (!file)
		return false;
	fprintf(file, "daemon: { log_level = \"warning\"; state_dir = \"%s\";", directory);
	if (options->metrics)
		fprintf(file, " metrics_file = \"%s/metrics.prom\";", directory);
	fprintf(file, " };\nclusters = (\n");
	for (int i = 0; i < options->clusters; i++) {
		char name[16];
		cluster_name(name, sizeof name, i);
		fprintf(file, "  { name = \"%s\"; replicas = %d; port = %d; }%s\n", name, MEMBERS, 10000 + 4 * i,
			i + 1 < options->clusters ? "," : "");
	}
	fprintf(file, ");\n");
	return fclose(file) == 0;
}

/* One cluster's primary killed: iterations and loop time until a standby is promoted, and
 * until the cluster is whole again; false when either does not come. */
static bool fail_over(struct daemon *daemon, const char *prefix, const char *cluster)
{
	struct promotion promotion = {.cluster = cluster, .before = world.promotions};
	int primary = sim_primary(&world, cluster);
	double promoted_ms, whole_ms;

	if (primary < 0) {
		fprintf(stderr, "scale-sim: %s has no primary before the fault\n", cluster);
		return false;
	}
	sim_kill(&world, cluster, primary);
	int to_promoted = iterate_until(daemon, promoted, &promotion, &promoted_ms);
	int to_whole = to_promoted > 0 ? iterate_until(daemon, cluster_whole, (void *)cluster, &whole_ms) : -1;
	printf("%s_cluster=%s\n%s_old_primary=%d\n%s_new_primary=%d\n", prefix, cluster, prefix, primary, prefix,
	       sim_primary(&world, cluster));
	printf("%s_promoted_iterations=%d\n%s_promoted_ms=%.3f\n", prefix, to_promoted, prefix, promoted_ms);
	if (to_whole > 0)
		printf("%s_whole_iterations=%d\n%s_whole_ms=%.3f\n", prefix, to_promoted + to_whole, prefix,
		       promoted_ms + whole_ms);
	if (to_promoted < 0 || to_whole < 0) {
		fprintf(stderr, "scale-sim: %s: %s not %s within %d iterations\n", prefix, cluster,
			to_promoted < 0 ? "promoted" : "whole again", MAX_ITERATIONS);
		return false;
	}
	return true;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: scale-sim [--clusters N] [--rest K] [--interval-ms MS] [--failover] [--metrics]\n"
		     "pghad's loop with N clusters (default 1000, at most %d) of %d members on the simulated\n"
		     "platform: to all healthy, then K iterations at rest (default 50), each after a pause of MS\n"
		     "ms (default: loop_interval_ms, as pghad's loop; 0: none),\n"
		     "and with --failover one cluster's failover, plain and with another cluster's member hung.\n"
		     "Prints key=value lines (bench/scale-sim reads them).\n",
		SIM_MAX_CLUSTERS, MEMBERS);
}

static bool parse_options(int argc, char **argv, struct options *options)
{
	static const struct option long_options[] = {
		{"clusters", required_argument, NULL, 'n'}, {"rest", required_argument, NULL, 'k'},
		{"interval-ms", required_argument, NULL, 'i'}, {"failover", no_argument, NULL, 'f'},
		{"metrics", no_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	int option;

	*options = (struct options){.clusters = 1000, .rest = 50, .interval_ms = -1};
	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		char *end = NULL;
		long value = optarg ? strtol(optarg, &end, 10) : 0;
		if (optarg && (*end || end == optarg || value < 0 || value > 1000000)) {
			fprintf(stderr, "scale-sim: %s is not a number\n", optarg);
			return false;
		}
		switch (option) {
		case 'n':
			options->clusters = (int)value;
			break;
		case 'k':
			options->rest = (int)value;
			break;
		case 'i':
			options->interval_ms = (int)value;
			break;
		case 'f':
			options->failover = true;
			break;
		case 'm':
			options->metrics = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return false;
		}
	}
	if (optind < argc || options->clusters < 2 || options->clusters > SIM_MAX_CLUSTERS || options->rest < 1) {
		fprintf(stderr, "scale-sim: --clusters from 2 to %d, --rest at least 1\n", SIM_MAX_CLUSTERS);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct options options;
	char directory[] = "/tmp/pgha-scale-sim-XXXXXX", path[128];
	struct daemon daemon;
	sd_event *event = NULL;
	bool good = true;
	static const char *const made[] = {"metrics.prom", "history.jsonl"}; /* what pghad writes in state_dir */

	if (!parse_options(argc, argv, &options))
		return 2;
	if (!mkdtemp(directory) || sd_event_new(&event) < 0) {
		fprintf(stderr, "scale-sim: cannot make a directory or an event loop: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof path, "%s/pgha.conf", directory);
	if (!write_config(path, directory, &options)) {
		fprintf(stderr, "scale-sim: cannot write %s\n", path);
		return 1;
	}
	/* the simulation's records first, so that what pghad adds to the RSS shows apart */
	for (int i = 0; i < options.clusters; i++) {
		char name[16];
		cluster_name(name, sizeof name, i);
		sim_cluster(&world, name);
	}
	long rss_simulation = rss_kib();
	sim_attach(&world);
	double start = monotonic_ms();
	if (daemon_start_on(&daemon, path, &sim_platform_ops) != PGHA_EXIT_OK) {
		fprintf(stderr, "scale-sim: pghad does not start on the simulation\n");
		return 1;
	}
	daemon_attach(&daemon, event);
	printf("clusters=%d\nmembers=%d\nloop_interval_ms=%d\nrss_simulation_kib=%ld\nstart_ms=%.3f\n",
	       options.clusters, MEMBERS, daemon.config->daemon.loop_interval_ms, rss_simulation,
	       monotonic_ms() - start);

	/* from empty data directories to every cluster whole */
	double healthy_ms;
	int healthy = iterate_until(&daemon, all_whole, &options.clusters, &healthy_ms);
	printf("healthy_iterations=%d\nhealthy_ms=%.3f\nhealthy_clusters=%d\n", healthy, healthy_ms, whole_count());
	fflush(stdout);
	if (healthy < 0) {
		fprintf(stderr, "scale-sim: %d of %d clusters whole after %d iterations\n", whole_count(),
			options.clusters, MAX_ITERATIONS);
		return 1;
	}

	/* at rest */
	double *walls = calloc((size_t)options.rest, sizeof *walls), *cpus = calloc((size_t)options.rest, sizeof *cpus);
	double cpu_total = 0;
	unsigned long statements = world.statements, promotions = world.promotions;
	if (!walls || !cpus)
		return 1;
	if (options.interval_ms < 0)
		options.interval_ms = daemon.config->daemon.loop_interval_ms;
	for (int i = 0; i < options.rest; i++) {
		if (options.interval_ms)
			usleep((useconds_t)options.interval_ms * 1000);
		iterate(&daemon, &walls[i], &cpus[i]);
		cpu_total += cpus[i];
	}
	int still_whole = whole_count();
	qsort(walls, (size_t)options.rest, sizeof *walls, compare_doubles);
	qsort(cpus, (size_t)options.rest, sizeof *cpus, compare_doubles);
	printf("rest_iterations=%d\nrest_interval_ms=%d\n", options.rest, options.interval_ms);
	printf("iteration_ms_median=%.3f\niteration_ms_p99=%.3f\niteration_ms_max=%.3f\n",
	       percentile(walls, options.rest, 0.5), percentile(walls, options.rest, 0.99), walls[options.rest - 1]);
	printf("cpu_ms_per_iteration=%.3f\ncpu_ms_p99=%.3f\n", cpu_total / options.rest,
	       percentile(cpus, options.rest, 0.99));
	printf("statements_per_iteration=%.1f\n", (double)(world.statements - statements) / options.rest);
	printf("rest_whole_clusters=%d\nrest_promotions=%lu\n", still_whole, world.promotions - promotions);
	printf("rss_kib=%ld\n", rss_kib());
	free(walls);
	free(cpus);
	fflush(stdout);
	if (still_whole != options.clusters || world.promotions != promotions) {
		fprintf(stderr, "scale-sim: at rest, %d of %d clusters whole and %lu promotions\n", still_whole,
			options.clusters, world.promotions - promotions);
		good = false;
	}

	if (good && options.failover) {
		/* the first cluster's primary killed with nothing else wrong; then the second's,
		 * while a standby of the last cluster hangs (it answers nothing) */
		char last[16];
		cluster_name(last, sizeof last, options.clusters - 1);
		good = fail_over(&daemon, "plain", "c0000");
		sim_hang(&world, last, 1, true);
		for (int i = 0; good && i < 3; i++) {
			double wall, cpu;
			iterate(&daemon, &wall, &cpu);
		}
		good = good && fail_over(&daemon, "hung", "c0001");
		int hung_primary = sim_primary(&world, last);
		printf("hung_member_cluster=%s\nhung_member=1\nhung_member_cluster_primary=%d\n", last, hung_primary);
		sim_hang(&world, last, 1, false);
		double whole_ms;
		int again = good ? iterate_until(&daemon, all_whole, &options.clusters, &whole_ms) : -1;
		printf("after_failover_whole_iterations=%d\n", again);
		if (good && (hung_primary != 0 || again < 0)) {
			fprintf(stderr, "scale-sim: the hung cluster %s: primary %d, whole again: %s\n", last, hung_primary,
				again < 0 ? "no" : "yes");
			good = false;
		}
	}
	long peak = max_rss_kib(), now = rss_kib();
	printf("max_rss_kib=%ld\n", peak > now ? peak : now);
	printf("result=%s\n", good ? "ok" : "failed");

	daemon_stop(&daemon);
	sd_event_unref(event);
	unlink(path);
	for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", directory, made[i]);
		unlink(path);
	}
	rmdir(directory);
	return good ? 0 : 1;
}
