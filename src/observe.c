/* observe: one observation of a cluster: each member's data directory and process (from the platform) and its PostgreSQL state (from a libpq probe). */
#include "autoconfig.h"

#include "observe.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "memory.h"
#include "names.h"
#include "pg.h"
#include "platform_k8s.h"
#include "platform_local.h"

/* One round trip tells everything decide needs about a member. Lists come as JSON so
 * that one row carries them. */
static const char probe_sql[] =
	"SELECT pg_is_in_recovery(),"
	" (SELECT timeline_id FROM pg_control_checkpoint()),"
	" CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,"
	" pg_last_wal_receive_lsn(),"
	" EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),"
	" EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart),"
	" EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" REPLICATION_ROLE "' AND rolreplication AND rolcanlogin),"
	" current_setting('synchronous_standby_names'),"
	" current_setting('primary_conninfo'),"
	" current_setting('primary_slot_name'),"
	" (SELECT coalesce(json_agg(json_build_array(application_name, state, sync_state,"
	"                                            flush_lsn::text, replay_lsn::text)), '[]')"
	"  FROM pg_stat_replication),"
	" (SELECT coalesce(json_agg(slot_name), '[]') FROM pg_replication_slots WHERE slot_type = 'physical'),"
	/* a hot-standby-sensitive setting waiting for a restart with a lower value than runs */
	" EXISTS (SELECT 1 FROM pg_settings s"
	"         JOIN (SELECT DISTINCT ON (name) name, setting FROM pg_file_settings"
	"               WHERE error IS NULL ORDER BY name, seqno DESC) f USING (name)"
	"         WHERE s.pending_restart AND s.name IN ('max_connections', 'max_prepared_transactions',"
	"               'max_locks_per_transaction', 'max_wal_senders', 'max_worker_processes')"
	"           AND f.setting ~ '^[0-9]+$' AND f.setting::bigint < s.setting::bigint),"
	/* started with a recorded value (-c) while its files give another: a restart is due */
	" EXISTS (SELECT 1 FROM pg_settings WHERE source = 'command line' AND name IN ('max_connections',"
	"         'max_prepared_transactions', 'max_locks_per_transaction', 'max_wal_senders', 'max_worker_processes')),"
	/* ALTER SYSTEM over a setting pgha owns or configures ($1: their names) */
	" (SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM pg_file_settings"
	"  WHERE sourcefile LIKE '%/postgresql.auto.conf' AND name = ANY ($1::text[])),"
	/* the WAL receiver, in any state: what a replication cut must confirm gone */
	" (SELECT pid FROM pg_stat_wal_receiver),"
	/* the timeline of its WAL: a primary's current one, a standby's latest segment's */
	" CASE WHEN pg_is_in_recovery()"
	"  THEN (SELECT max(('x' || substr(name, 1, 8))::bit(32)::bigint) FROM pg_ls_waldir()"
	"        WHERE name ~ '^[0-9A-F]{24}$')"
	"  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END,"
	/* a primary's timeline history (none on timeline 1) */
	" CASE WHEN NOT pg_is_in_recovery()"
	"  THEN pg_read_file('pg_wal/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) || '.history', 0, 1048576, true) END,"
	/* the replication role exists, usable or not (without LOGIN or REPLICATION) */
	" EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" REPLICATION_ROLE "')";

/* The settings pgha writes itself, whatever the configuration says. */
static const char *const owned_settings[] = {
	"port", "listen_addresses", "unix_socket_directories", "cluster_name", "hot_standby", "wal_log_hints",
	"max_wal_senders", "max_replication_slots", "synchronous_standby_names", "primary_conninfo",
	"primary_slot_name", NULL,
};

/* The names of the settings pgha owns or configures, as a text[] parameter. PostgreSQL
 * reports names in lower case; configured ones may be written in any case. */
static char *owned_names(const struct cluster_config *cluster)
{
	size_t owned = 0, count;
	while (owned_settings[owned])
		owned++;
	count = owned + cluster->postgresql.parameters.count;
	char **names = xcalloc(count, sizeof *names);
	for (size_t i = 0; i < count; i++) {
		names[i] = xstrdup(i < owned ? owned_settings[i] : cluster->postgresql.parameters.items[i - owned].name);
		for (char *c = names[i]; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	char *array = pg_text_array((const char *const *)names, count);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return array;
}

void cluster_observation_free(struct cluster_observation *observation)
{
	for (size_t i = 0; i < observation->count; i++) {
		free(observation->members[i].peers);
		free(observation->members[i].slots);
		free(observation->members[i].history);
	}
	free(observation->members);
	*observation = (struct cluster_observation){0};
}

uint64_t observation_position(const struct member_observation *member)
{
	return member->receive_lsn > member->lsn ? member->receive_lsn : member->lsn;
}

bool observation_diverged(const struct member_observation *standby, const struct member_observation *primary)
{
	if (!standby->reachable || !standby->in_recovery || !standby->wal_timeline || !primary || !primary->reachable ||
	    !primary->wal_timeline || standby == primary)
		return false;
	if (primary->in_recovery) {
		/* a candidate about to be promoted: its timeline forks off where its WAL ends */
		return standby->wal_timeline > primary->wal_timeline ||
		       (standby->wal_timeline == primary->wal_timeline &&
			observation_position(standby) > observation_position(primary));
	}
	return !timeline_contains(primary->history, primary->history_count, primary->wal_timeline, standby->wal_timeline,
				  observation_position(standby));
}

const struct member_observation *observation_member(const struct cluster_observation *observation, int index)
{
	for (size_t i = 0; i < observation->count; i++)
		if (observation->members[i].index == index)
			return &observation->members[i];
	return NULL;
}

const struct member_observation *observation_primary(const struct cluster_observation *observation)
{
	for (size_t i = 0; observation && i < observation->count; i++)
		if (observation->members[i].reachable && !observation->members[i].in_recovery)
			return &observation->members[i];
	return NULL;
}

long long observation_clock_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool is_true(const PGresult *result, int column)
{
	return !PQgetisnull(result, 0, column) && PQgetvalue(result, 0, column)[0] == 't';
}

static void copy_text(char *target, size_t size, const PGresult *result, int column)
{
	snprintf(target, size, "%s", PQgetisnull(result, 0, column) ? "" : PQgetvalue(result, 0, column));
}

static void read_peers(struct member_observation *member, const char *text)
{
	json_t *peers = json_loads(text, 0, NULL);
	size_t index;
	json_t *peer;

	member->peer_count = json_array_size(peers);
	member->peers = xcalloc(member->peer_count, sizeof *member->peers);
	json_array_foreach(peers, index, peer) {
		struct replication_peer *into = &member->peers[index];
		const char *name = json_string_value(json_array_get(peer, 0));
		const char *state = json_string_value(json_array_get(peer, 1));
		const char *sync_state = json_string_value(json_array_get(peer, 2));
		snprintf(into->application_name, sizeof into->application_name, "%s", name ? name : "");
		snprintf(into->state, sizeof into->state, "%s", state ? state : "");
		snprintf(into->sync_state, sizeof into->sync_state, "%s", sync_state ? sync_state : "");
		into->flush_lsn = pg_lsn_parse(json_string_value(json_array_get(peer, 3)));
		into->replay_lsn = pg_lsn_parse(json_string_value(json_array_get(peer, 4)));
	}
	json_decref(peers);
}

static void read_slots(struct member_observation *member, const char *text)
{
	json_t *slots = json_loads(text, 0, NULL);
	size_t index;
	json_t *slot;

	member->slot_count = json_array_size(slots);
	member->slots = xcalloc(member->slot_count, sizeof *member->slots);
	json_array_foreach(slots, index, slot)
		snprintf(member->slots[index], sizeof member->slots[index], "%s",
			 json_string_value(slot) ? json_string_value(slot) : "");
	json_decref(slots);
}

static void read_probe(const struct local_platform *platform, const struct cluster_config *cluster,
		       const struct cluster_observation *observation, struct member_observation *member,
		       const struct pg_request *request, bool kube)
{
	const PGresult *result = request->result;

	if (!request->succeeded || PQntuples(result) != 1) {
		snprintf(member->error, sizeof member->error, "%s", request->error[0] ? request->error : "no answer");
		return;
	}
	member->reachable = true;
	member->in_recovery = is_true(result, 0);
	member->timeline = (uint32_t)strtoul(PQgetvalue(result, 0, 1), NULL, 10);
	member->lsn = pg_lsn_parse(PQgetisnull(result, 0, 2) ? NULL : PQgetvalue(result, 0, 2));
	member->receive_lsn = pg_lsn_parse(PQgetisnull(result, 0, 3) ? NULL : PQgetvalue(result, 0, 3));
	member->streaming = is_true(result, 4);
	member->pending_restart = is_true(result, 5);
	member->replication_role = is_true(result, 6);
	copy_text(member->synchronous_standby_names, sizeof member->synchronous_standby_names, result, 7);
	copy_text(member->primary_conninfo, sizeof member->primary_conninfo, result, 8);
	copy_text(member->primary_slot_name, sizeof member->primary_slot_name, result, 9);
	read_peers(member, PQgetvalue(result, 0, 10));
	read_slots(member, PQgetvalue(result, 0, 11));
	member->lowers_standby_sensitive = is_true(result, 12);
	/* a standby started with its primary's recorded values runs them until restarted */
	member->pending_restart |= is_true(result, 13);
	copy_text(member->overridden, sizeof member->overridden, result, 14);
	member->receiver_pid = PQgetisnull(result, 0, 15) ? 0 : (pid_t)strtol(PQgetvalue(result, 0, 15), NULL, 10);
	member->receiving = member->receiver_pid != 0;
	member->wal_timeline = PQgetisnull(result, 0, 16) ? 0 : (uint32_t)strtoul(PQgetvalue(result, 0, 16), NULL, 10);
	if (!PQgetisnull(result, 0, 17) &&
	    !timeline_parse_history(PQgetvalue(result, 0, 17), &member->history, &member->history_count))
		member->wal_timeline = 0; /* an unreadable history tells nothing about divergence */
	member->replication_role_exists = is_true(result, 18);
	if (member->in_recovery && member->primary_conninfo[0]) {
		char slot[NAMES_BUFFER_SIZE];
		member->upstream = kube ? kube_upstream_of(observation, member->primary_conninfo)
					: local_upstream_of(cluster, member->primary_conninfo);
		names_slot(slot, sizeof slot, cluster->name, member->index);
		const struct member_observation *upstream = observation_member(observation, member->upstream);
		char *expected = member->upstream < 0 ? NULL
				 : kube		      ? kube_primary_conninfo(cluster, member->index, upstream)
						      : local_primary_conninfo(platform, cluster, member->index, member->upstream);
		member->follow_settings_current = expected && strcmp(expected, member->primary_conninfo) == 0 &&
						  strcmp(slot, member->primary_slot_name) == 0;
		free(expected);
	}
}

void observe_clusters(const struct local_platform *platform, struct kube_platform *kube,
		      const struct pgha_config *config, observe_busy_fn busy, void *busy_context, int timeout_ms,
		      struct cluster_observation *observations)
{
	size_t probes = 0;

	for (size_t c = 0; c < config->cluster_count; c++) {
		const struct cluster_config *cluster = &config->clusters[c];
		if (kube) {
			kube_observe_cluster(kube, cluster, &observations[c]);
			for (size_t i = 0; i < observations[c].count; i++) {
				struct member_observation *member = &observations[c].members[i];
				member->busy = busy && busy(cluster->name, member->index, busy_context);
				probes += member->postmaster != 0 && !member->postmaster_exited;
			}
			continue;
		}
		int highest = local_highest_member(platform, cluster);
		int count = highest + 1 > cluster->replicas ? highest + 1 : cluster->replicas;
		struct cluster_observation *observation = &observations[c];

		observation->count = (size_t)count;
		observation->now_ms = observation_clock_ms();
		observation->members = xcalloc(observation->count, sizeof *observation->members);
		for (int i = 0; i < count; i++) {
			struct member_observation *member = &observation->members[i];
			struct local_member_state state;
			member->index = i;
			member->upstream = -1;
			names_member(member->name, sizeof member->name, cluster->name, i);
			local_member_state(platform, cluster, i, &state);
			member->data_exists = state.data_exists;
			member->data_unusable = state.data_unusable;
			member->standby_signal = state.standby_signal;
			member->postmaster = state.postmaster;
			member->postmaster_exited = state.postmaster_exited;
			member->busy = busy && busy(cluster->name, i, busy_context);
			member->settings_current = !member->data_exists || local_settings_current(platform, cluster, i);
			/* counted before the probes: when none is left, nothing the probes see can
			 * change because of this member any more (a failover relies on it) */
			member->live_processes = member->postmaster && !member->postmaster_exited
							 ? 1
							 : local_count_processes(platform, cluster, i);
			if (member->data_exists && !member->standby_signal && !member->live_processes)
				local_control_checkpoint(platform, cluster, i, &member->checkpoint_lsn, &member->timeline,
							 &member->shut_down);
			probes += member->postmaster != 0 && !member->postmaster_exited;
		}
	}

	/* every running member of every cluster at once: one hung member costs the
	 * deadline once, not once per member */
	struct pg_request *requests = xcalloc(probes, sizeof *requests);
	char **names = xcalloc(probes, sizeof *names);
	struct member_observation **owners = xcalloc(probes, sizeof *owners);
	const struct cluster_config **clusters = xcalloc(probes, sizeof *clusters);
	const struct cluster_observation **observed = xcalloc(probes, sizeof *observed);
	size_t next = 0;
	for (size_t c = 0; c < config->cluster_count; c++)
		for (size_t i = 0; i < observations[c].count; i++) {
			struct member_observation *member = &observations[c].members[i];
			if (!member->postmaster || member->postmaster_exited) {
				snprintf(member->error, sizeof member->error, "%s",
					 member->postmaster ? "its postmaster exited" : "not running");
				continue;
			}
			requests[next].target = kube ? kube_admin_target(kube, &config->clusters[c], member)
						     : local_admin_target(platform, &config->clusters[c], member->index);
			requests[next].sql = probe_sql;
			/* on kubernetes pgha's own settings are ALTER SYSTEM's: none is an override */
			names[next] = kube ? xstrdup("{}") : owned_names(&config->clusters[c]);
			requests[next].parameter_count = 1;
			requests[next].parameters = (const char *const *)&names[next];
			owners[next] = member;
			observed[next] = &observations[c];
			clusters[next++] = &config->clusters[c];
		}
	pg_execute_all(requests, probes, timeout_ms);
	for (size_t i = 0; i < probes; i++) {
		read_probe(platform, clusters[i], observed[i], owners[i], &requests[i], kube != NULL);
		pg_request_clear(&requests[i]);
		free((char *)requests[i].target.host);
		free(names[i]);
	}
	free(requests);
	free(names);
	free(owners);
	free(clusters);
	free(observed);
}
