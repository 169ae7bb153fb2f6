/* platform_sim: a simulated platform for tests: members are records in memory that a test moves (dies, hangs, lags, blips), and every statement pghad sends is answered from them; no PostgreSQL, no process. */
#include "autoconfig.h"

#include "platform_sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "exitcode.h"
#include "memory.h"
#include "names.h"
#include "syncnames.h"

static struct sim_world *next_world;

void sim_attach(struct sim_world *world)
{
	next_world = world;
}

static struct sim_world *world_of(const struct platform *platform)
{
	return platform->state;
}

static unsigned int name_hash(const char *name)
{
	unsigned int hash = 2166136261u; /* FNV-1a */
	for (; *name; name++)
		hash = (hash ^ (unsigned char)*name) * 16777619u;
	return hash;
}

/* The slot of the index where name is, or the free one where it would go. */
static unsigned int slot_of(const struct sim_world *world, const char *name)
{
	unsigned int slot = name_hash(name) & (SIM_INDEX_SIZE - 1);
	while (world->index[slot] && strcmp(world->clusters[world->index[slot] - 1].name, name) != 0)
		slot = (slot + 1) & (SIM_INDEX_SIZE - 1);
	return slot;
}

static const struct sim_cluster *find_cluster(const struct sim_world *world, const char *name)
{
	int found = world->index[slot_of(world, name)];
	return found ? &world->clusters[found - 1] : NULL;
}

struct sim_cluster *sim_cluster(struct sim_world *world, const char *name)
{
	int *slot = &world->index[slot_of(world, name)];
	if (*slot)
		return &world->clusters[*slot - 1];
	if (world->cluster_count == SIM_MAX_CLUSTERS)
		abort();
	struct sim_cluster *cluster = &world->clusters[world->cluster_count++];
	memset(cluster, 0, sizeof *cluster);
	snprintf(cluster->name, sizeof cluster->name, "%s", name);
	for (int i = 0; i < SIM_MAX_MEMBERS; i++)
		cluster->members[i].upstream = -1;
	state_init(&cluster->state);
	*slot = world->cluster_count;
	return cluster;
}

static struct sim_member *member_of(struct sim_world *world, const char *cluster, int index)
{
	return index >= 0 && index < SIM_MAX_MEMBERS ? &sim_cluster(world, cluster)->members[index] : NULL;
}

/* A standby streams when it runs, follows a primary that runs and answers. */
static bool streaming(const struct sim_cluster *cluster, const struct sim_member *member)
{
	if (!member->running || member->hung || !member->standby || member->upstream < 0)
		return false;
	const struct sim_member *upstream = &cluster->members[member->upstream];
	return upstream->running && !upstream->hung && !upstream->standby;
}

void sim_advance(struct sim_world *world, uint64_t bytes)
{
	for (int c = 0; c < world->cluster_count; c++) {
		struct sim_cluster *cluster = &world->clusters[c];
		for (int i = 0; i < SIM_MAX_MEMBERS; i++) {
			struct sim_member *member = &cluster->members[i];
			if (member->running && !member->hung && !member->standby)
				member->lsn += bytes;
		}
		for (int i = 0; i < SIM_MAX_MEMBERS; i++) {
			struct sim_member *member = &cluster->members[i];
			if (!streaming(cluster, member))
				continue;
			uint64_t upstream = cluster->members[member->upstream].lsn;
			if (upstream > member->lsn + member->lag)
				member->lsn = upstream - member->lag;
		}
	}
}

void sim_kill(struct sim_world *world, const char *cluster, int index)
{
	struct sim_member *member = member_of(world, cluster, index);
	member->running = false;
	member->clean = false;
}

void sim_hang(struct sim_world *world, const char *cluster, int index, bool hung)
{
	member_of(world, cluster, index)->hung = hung;
}

void sim_lag(struct sim_world *world, const char *cluster, int index, uint64_t bytes)
{
	member_of(world, cluster, index)->lag = bytes;
}

void sim_blip(struct sim_world *world, const char *cluster, int index, int probes)
{
	member_of(world, cluster, index)->blips = probes;
}

int sim_primary(const struct sim_world *world, const char *name)
{
	const struct sim_cluster *cluster = find_cluster(world, name);
	int primary = -1;
	for (int i = 0; cluster && i < SIM_MAX_MEMBERS; i++) {
		const struct sim_member *member = &cluster->members[i];
		if (member->running && !member->standby)
			primary = primary == -1 ? i : -2;
	}
	return primary;
}

/* ---- the platform interface ---- */

static int sim_open(struct platform *platform, const struct pgha_config *config)
{
	(void)config;
	platform->state = next_world;
	return next_world ? PGHA_EXIT_OK : PGHA_EXIT_INTERNAL;
}

static void sim_close(struct platform *platform)
{
	platform->state = NULL;
}

static void sim_set_config(struct platform *platform, const struct pgha_config *config)
{
	(void)platform;
	(void)config;
}

static bool sim_refresh(struct platform *platform)
{
	(void)platform;
	return true;
}

static void sim_observe(struct platform *platform, const struct cluster_config *config,
			struct cluster_observation *observation)
{
	struct sim_cluster *cluster = sim_cluster(world_of(platform), config->name);
	int count = config->replicas;

	for (int i = count; i < SIM_MAX_MEMBERS; i++)
		if (cluster->members[i].data)
			count = i + 1;
	observation->count = (size_t)count;
	observation->now_ms = observation_clock_ms();
	observation->members = xcalloc(observation->count, sizeof *observation->members);
	for (int i = 0; i < count; i++) {
		struct member_observation *member = &observation->members[i];
		const struct sim_member *sim = &cluster->members[i];
		member->index = i;
		member->upstream = -1;
		names_member(member->name, sizeof member->name, config->name, i);
		member->data_exists = sim->data;
		member->standby_signal = sim->data && sim->standby;
		member->postmaster = sim->running ? 1000 + i : 0;
		/* asleep at rest; a hung one as frozen (D), which only its probe's deadline finds */
		member->postmaster_state = !sim->running ? 0 : sim->hung ? 'D' : 'S';
		member->live_processes = sim->running;
		member->settings_current = true;
		if (sim->data && !sim->standby && !sim->running) {
			member->checkpoint_lsn = sim->lsn;
			member->timeline = sim->timeline;
			member->shut_down = sim->clean;
		}
	}
}

static bool sim_target(struct platform *platform, const struct cluster_config *cluster, int index,
		       const struct member_observation *member, struct pg_target *target, char *why, size_t why_size)
{
	(void)platform;
	(void)member;
	(void)why;
	(void)why_size;
	*target = (struct pg_target){.host = xasprintf("sim/%s/%d", cluster->name, index), .port = 1};
	return true;
}

static char *conninfo(const char *cluster, int index, int upstream)
{
	return xasprintf("host=sim/%s/%d application_name=%s-%d", cluster, upstream, cluster, index);
}

static void lsn_text(char *buffer, size_t size, uint64_t lsn)
{
	pg_lsn_format(buffer, size, lsn);
}

/* What a standby's name is to a primary's synchronous_standby_names. */
static const char *sync_state(const struct sim_member *primary, const char *name)
{
	struct sync_spec spec;
	char why[256];
	const char *state = "async";

	if (!syncnames_parse(primary->synchronous, &spec, why, sizeof why))
		return state;
	for (size_t i = 0; i < spec.count; i++)
		if (syncnames_name_matches(spec.names[i], name))
			state = spec.method == SYNC_METHOD_FIRST ? "sync" : "quorum";
	sync_spec_free(&spec);
	return state;
}

/* The one row of observe.c's probe, from the records; with_settings: with its settings
 * columns (none pending, none overridden). */
static PGresult *probe_result(struct sim_cluster *cluster, int index, bool with_settings)
{
	enum { COLUMNS = 24 };
	int columns = with_settings ? COLUMNS : COLUMNS - 4;
	struct sim_member *member = &cluster->members[index];
	char timeline[16], lsn[32], peers[4096] = "[", slots[1024] = "[", slot[64] = "", receiver[16], backend[16];
	char *follow = member->standby && member->upstream >= 0 ? conninfo(cluster->name, index, member->upstream)
								   : xstrdup("");
	const char *values[COLUMNS] = {NULL};

	snprintf(timeline, sizeof timeline, "%" PRIu32, member->timeline);
	lsn_text(lsn, sizeof lsn, member->lsn);
	snprintf(receiver, sizeof receiver, "%d", 2000 + index);
	snprintf(backend, sizeof backend, "%d", 3000 + index);
	if (member->standby && member->upstream >= 0)
		names_slot(slot, sizeof slot, cluster->name, index);
	for (int i = 0; !member->standby && i < SIM_MAX_MEMBERS; i++) {
		const struct sim_member *standby = &cluster->members[i];
		char name[NAMES_BUFFER_SIZE], position[32];
		if (i == index || !streaming(cluster, standby) || standby->upstream != index)
			continue;
		names_member(name, sizeof name, cluster->name, i);
		lsn_text(position, sizeof position, standby->lsn);
		/* no replay lag known; answered just now */
		snprintf(peers + strlen(peers), sizeof peers - strlen(peers),
			 "%s[\"%s\", \"streaming\", \"%s\", \"%s\", \"%s\", null, 0]",
			 peers[1] ? ", " : "", name, sync_state(member, name), position, position);
	}
	strcat(peers, "]");
	for (int i = 0; i < member->slot_count; i++)
		snprintf(slots + strlen(slots), sizeof slots - strlen(slots), "%s\"%s\"", i ? ", " : "", member->slots[i]);
	strcat(slots, "]");

	values[0] = member->standby ? "t" : "f";
	values[1] = timeline;
	values[2] = lsn;
	values[3] = member->standby ? lsn : NULL;
	values[4] = streaming(cluster, member) ? "t" : "f";
	values[5] = member->role ? "t" : "f";
	values[6] = member->synchronous;
	values[7] = follow;
	values[8] = slot;
	values[9] = peers;
	values[10] = slots;
	values[11] = member->standby && member->upstream >= 0 ? receiver : NULL;
	values[12] = NULL; /* the WAL's timeline unknown: divergence is not simulated */
	values[13] = NULL;
	values[14] = member->role ? "t" : "f";
	values[15] = streaming(cluster, member) ? timeline : NULL; /* the timeline received: the member's own */
	values[16] = "[]"; /* no clone's progress: copies are not simulated */
	values[17] = backend;
	values[18] = "2026-01-01 00:00:00+00"; /* never reloaded */
	values[19] = NULL; /* no postgresql.auto.conf */
	values[20] = "f";
	values[21] = "f";
	values[22] = "f";
	values[23] = "";

	PGresult *result = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attributes[COLUMNS];
	for (int i = 0; i < COLUMNS; i++)
		attributes[i] = (PGresAttDesc){.name = (char *)"column", .typid = 25, .typlen = -1, .atttypmod = -1};
	PQsetResultAttrs(result, columns, attributes);
	for (int i = 0; i < columns; i++)
		PQsetvalue(result, 0, i, (char *)values[i], values[i] ? (int)strlen(values[i]) : -1);
	free(follow);
	return result;
}

static void answer(struct sim_world *world, struct pg_request *request)
{
	char cluster_name[NAMES_BUFFER_SIZE];
	const char *host = request->target.host;
	const char *slash = host ? strrchr(host, '/') : NULL;
	int index = slash ? atoi(slash + 1) : -1;

	snprintf(cluster_name, sizeof cluster_name, "%.*s", slash ? (int)(slash - host - 4) : 0, host ? host + 4 : "");
	struct sim_cluster *cluster = sim_cluster(world, cluster_name);
	struct sim_member *member = index >= 0 && index < SIM_MAX_MEMBERS ? &cluster->members[index] : NULL;
	const char *sql = request->sql ? request->sql : "";
	/* observe.c's probes: with its settings, after the views they read (WITH ...) */
	bool probe = strstr(sql, "SELECT pg_is_in_recovery(),") != NULL;

	world->statements++;
	if (member && probe)
		member->probes++;
	else if (member && request->sync_only)
		member->pings++;
	if (!member || !member->running || member->hung || member->blips > 0) {
		if (member && member->blips > 0)
			member->blips--;
		/* a probe that fails loses its connection, as pg.c's do */
		if (request->session)
			pg_session_close(request->session);
		request->timed_out = member && member->hung;
		snprintf(request->error, sizeof request->error, "%s",
			 member && member->hung ? "timed out" : "connection refused (simulated)");
		return;
	}
	request->succeeded = true;
	/* a connection kept for the member, as pg.c keeps one: a PGconn that never connects
	 * (an unknown option), which observe.c keeps, closes and frees as any other */
	if (request->session && !request->session->connection)
		request->session->connection =
			PQconnectStartParams((const char *const[]){"pgha_simulated", NULL}, (const char *const[]){"1", NULL}, 0);
	if (probe) {
		request->result = probe_result(cluster, index, strstr(sql, "pg_file_settings") != NULL);
		return;
	}
	if (request->build_sql)
		member->role = true; /* the replication role: the only statement built here */
	else if (strstr(sql, "pg_promote")) {
		member->standby = false;
		member->upstream = -1;
		member->timeline++;
		world->promotions++;
	} else if (strstr(sql, "pg_create_physical_replication_slot") && member->slot_count < SIM_MAX_MEMBERS)
		snprintf(member->slots[member->slot_count++], sizeof member->slots[0], "%s", request->parameters[0]);
	else if (strstr(sql, "pg_drop_replication_slot")) {
		for (int i = 0; i < member->slot_count; i++)
			if (strcmp(member->slots[i], request->parameters[0]) == 0)
				memmove(member->slots[i], member->slots[--member->slot_count], sizeof member->slots[0]);
	}
	request->result = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
}

static void sim_execute(struct platform *platform, struct pg_request *requests, size_t count, int timeout_ms)
{
	(void)timeout_ms;
	for (size_t i = 0; i < count; i++)
		answer(world_of(platform), &requests[i]);
}

static struct pg_batch *sim_execute_start(struct platform *platform, sd_event *event, struct pg_request *requests,
					 size_t count, int timeout_ms, pg_batch_done_fn done, void *context)
{
	sim_execute(platform, requests, count, timeout_ms);
	return pg_batch_answered(event, requests, count, done, context);
}

static char *sim_owned_settings(struct platform *platform, const struct cluster_config *cluster)
{
	(void)platform;
	(void)cluster;
	return xstrdup("{}");
}

static int sim_upstream(struct platform *platform, const struct cluster_config *cluster,
			const struct cluster_observation *observation, const char *primary_conninfo)
{
	char prefix[NAMES_BUFFER_SIZE + 16];
	(void)platform;
	(void)observation;
	snprintf(prefix, sizeof prefix, "host=sim/%s/", cluster->name);
	return strncmp(primary_conninfo, prefix, strlen(prefix)) == 0 ? atoi(primary_conninfo + strlen(prefix)) : -1;
}

static char *sim_conninfo(struct platform *platform, const struct cluster_config *cluster,
			  const struct cluster_observation *observation, int index, int upstream)
{
	(void)platform;
	(void)observation;
	return conninfo(cluster->name, index, upstream);
}

static enum platform_hold sim_load_state(struct platform *platform, const struct cluster_config *config,
					 struct cluster_state *state, char *why, size_t why_size)
{
	(void)why;
	(void)why_size;
	*state = sim_cluster(world_of(platform), config->name)->state;
	return PLATFORM_HOLD_ACTS;
}

static bool sim_save_state(struct platform *platform, const struct cluster_config *config,
			   const struct cluster_state *state, char *why, size_t why_size)
{
	struct sim_cluster *cluster = sim_cluster(world_of(platform), config->name);
	(void)why;
	(void)why_size;
	cluster->state = *state;
	cluster->state_saved = true;
	return true;
}

static bool sim_may_act(struct platform *platform, const struct cluster_config *config, char *why,
			size_t why_size)
{
	struct sim_cluster *cluster = sim_cluster(world_of(platform), config->name);
	if (!cluster->refuse_actions)
		return true;
	cluster->refusals++;
	snprintf(why, why_size, "the simulation refuses actions on cluster %s", config->name);
	return false;
}

static bool sim_act(struct platform *platform, struct actor *actor, const struct cluster_config *config,
		    const struct cluster_observation *observation, const struct action *action)
{
	struct sim_cluster *cluster = sim_cluster(world_of(platform), config->name);
	struct sim_member *member = &cluster->members[action->member];
	const struct sim_member *source = action->source >= 0 ? &cluster->members[action->source] : NULL;
	(void)observation;

	switch (action->type) {
	case ACTION_INITIALIZE:
		*member = (struct sim_member){.data = true, .timeline = 1, .lsn = 0x1000000, .upstream = -1};
		break;
	case ACTION_CLONE:
	case ACTION_REJOIN:
		if (action->type == ACTION_REJOIN && member->running) {
			/* a running diverged standby stops first; the rejoin comes once it is down */
			member->running = false;
			member->clean = true;
			actor_begin(actor, config->name, action->member, OPERATION_REJOIN, action->source)->stopping = true;
			break;
		}
		member->data = member->standby = true;
		member->upstream = action->source;
		member->timeline = source->timeline;
		member->lsn = source->lsn;
		member->synchronous[0] = '\0';
		break;
	case ACTION_START:
		member->running = true;
		member->clean = false;
		actor_begin(actor, config->name, action->member, OPERATION_START, -1);
		break;
	case ACTION_STOP:
	case ACTION_RESTART:
		member->running = false;
		member->clean = true;
		actor_begin(actor, config->name, action->member,
			    action->type == ACTION_STOP ? OPERATION_STOP : OPERATION_RESTART, -1);
		break;
	case ACTION_FENCE:
		member->running = false;
		member->clean = false;
		break;
	case ACTION_FOLLOW:
		member->upstream = action->source;
		break;
	case ACTION_CUT:
		member->upstream = -1;
		break;
	case ACTION_SET_SYNCHRONOUS:
		snprintf(member->synchronous, sizeof member->synchronous, "%s", action->text);
		break;
	case ACTION_MOVE_ASIDE:
		member->data = false;
		break;
	case ACTION_CONFIGURE:
		break;
	case ACTION_RESET_OVERRIDES:
	case ACTION_CREATE_REPLICATION_ROLE:
	case ACTION_ALTER_REPLICATION_ROLE:
	case ACTION_CREATE_SLOT:
	case ACTION_DROP_SLOT:
	case ACTION_PROMOTE:
		return false;
	}
	return true;
}

static bool sim_password(struct platform *platform, const struct cluster_config *cluster, char *password,
			 size_t password_size, char *why, size_t why_size)
{
	(void)platform;
	(void)cluster;
	(void)why;
	(void)why_size;
	snprintf(password, password_size, "simulated");
	return true;
}

static bool sim_gone(const struct member_observation *member)
{
	return member->postmaster == 0;
}

static bool sim_failed(struct platform *platform, const struct operation *operation,
		       const struct member_observation *member, char *why, size_t why_size)
{
	(void)platform;
	(void)operation;
	(void)member;
	(void)why;
	(void)why_size;
	return false;
}

static bool sim_over(struct platform *platform, struct actor *actor, const struct cluster_config *cluster,
		     const struct operation *operation)
{
	(void)platform;
	(void)actor;
	(void)cluster;
	(void)operation;
	return false;
}

static void sim_publish(struct platform *platform, const struct cluster_config *cluster,
			const struct cluster_observation *observation)
{
	(void)platform;
	(void)cluster;
	(void)observation;
}

static pid_t sim_watch(struct platform *platform, const struct member_observation *primary)
{
	(void)platform;
	(void)primary;
	return 0; /* no process to watch */
}

static void sim_finish(struct platform *platform, const struct pgha_config *config)
{
	(void)platform;
	(void)config;
}

static bool sim_has_data(struct platform *platform, const struct cluster_config *config)
{
	const struct sim_cluster *cluster = sim_cluster(world_of(platform), config->name);
	for (int i = 0; i < SIM_MAX_MEMBERS; i++)
		if (cluster->members[i].data)
			return true;
	return false;
}

static bool sim_purge(struct platform *platform, const char *name, char *why, size_t why_size)
{
	(void)platform;
	snprintf(why, why_size, "the simulation keeps cluster %s", name);
	return false;
}

static int sim_port(const struct platform *platform, const struct cluster_config *cluster, int index)
{
	(void)platform;
	return config_member_port(cluster, index);
}

/* A simulation keeps no more of the history than the daemon's file. */
static bool sim_record(struct platform *platform, const struct history_entry *entry, char *why, size_t why_size)
{
	(void)platform;
	(void)entry;
	(void)why;
	(void)why_size;
	return true;
}

static void sim_status(const struct platform *platform, json_t *reply)
{
	json_object_set_new(reply, "simulated_statements", json_integer((json_int_t)world_of(platform)->statements));
}

static void sim_cluster_status(const struct platform *platform, const struct cluster_config *cluster, json_t *reply)
{
	(void)platform;
	(void)cluster;
	(void)reply;
}

/* Nothing of its own to run between iterations. */
static void sim_attach_loop(struct platform *platform, sd_event *event)
{
	(void)platform;
	(void)event;
}

const struct platform_ops sim_platform_ops = {
	.name = "simulated",
	.open = sim_open,
	.attach = sim_attach_loop,
	.close = sim_close,
	.set_config = sim_set_config,
	.refresh = sim_refresh,
	.observe = sim_observe,
	.admin_target = sim_target,
	.execute = sim_execute,
	.execute_start = sim_execute_start,
	.owned_settings = sim_owned_settings,
	.upstream_of = sim_upstream,
	.primary_conninfo = sim_conninfo,
	.load_state = sim_load_state,
	.save_state = sim_save_state,
	.may_act = sim_may_act,
	.act = sim_act,
	.replication_password = sim_password,
	.gone = sim_gone,
	.failed = sim_failed,
	.over = sim_over,
	.publish = sim_publish,
	.watch = sim_watch,
	.finish = sim_finish,
	.record = sim_record,
	.has_data = sim_has_data,
	.purge = sim_purge,
	.member_port = sim_port,
	.status = sim_status,
	.cluster_status = sim_cluster_status,
};
