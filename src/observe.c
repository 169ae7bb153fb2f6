/* observe: one observation of every cluster: each member's data and process (from the platform) and its PostgreSQL state (from one probe each, on a connection kept per member), cluster by cluster, each on its own deadline. */
#include "autoconfig.h"

#include "observe.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sys/epoll.h>

#include "datadir.h"
#include "log.h"
#include "memory.h"
#include "names.h"
#include "pg.h"
#include "proc.h"
#include "replyage.h"
#include "testhook.h"

/* A primary's standbys, as one JSON array of [application_name, state, sync_state,
 * flush_lsn, replay_lsn, replay lag in s, reply age in ms, reply stamp]. */
#define PROBE_PEERS_COLUMN \
	" (SELECT coalesce(json_agg(json_build_array(a.application_name, w.state, w.sync_state," \
	"                                            w.flush_lsn::text, w.replay_lsn::text," \
	"                                            extract(epoch FROM w.replay_lag)," \
	/* how long ago the standby last answered, by the primary's clock less the standby's \
	 * stamp (negative with the standby's clock ahead; replyage.h corrects it), and the \
	 * stamp: one cut off stays "streaming" until wal_sender_timeout */ \
	"                                            floor(extract(epoch FROM clock_timestamp() - w.reply_time) * 1000)," \
	"                                            w.reply_time::text))," \
	"                   '[]')" \
	"  FROM pg_stat_get_wal_senders() w, pg_stat_get_activity(w.pid) a)"

/* What the settings (PROBE_SETTINGS_COLUMNS) depend on, the last columns of every probe:
 * the backend that read them (a new one after a restart or a reconnect), when it last
 * read its files (a reload), and what ALTER SYSTEM changes without a reload: its file's
 * digest, not a parse (as cheap as its stat, which two edits within a second may leave
 * the same). */
#define PROBE_SETTINGS_DEPEND_COLUMNS \
	" pg_backend_pid(), pg_conf_load_time()::text," \
	" md5(pg_read_binary_file('postgresql.auto.conf', 0, 1048576, true))"

/* One round trip per iteration tells everything decide needs about a member. Lists come
 * as JSON so that one row carries them. The facts that fail-over and replication need
 * are read at every probe; they cost little. The views over pg_stat_get_activity are
 * read through its one-backend form: the views join every backend's entry with the
 * catalogs, which costs more to plan than to run. */
#define PROBE_FAST_COLUMNS \
	"pg_is_in_recovery()," \
	" (SELECT timeline_id FROM pg_control_checkpoint())," \
	" CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END," \
	" pg_last_wal_receive_lsn()," \
	" EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')," \
	" EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" REPLICATION_ROLE "' AND rolreplication AND rolcanlogin)," \
	" current_setting('synchronous_standby_names')," \
	" current_setting('primary_conninfo')," \
	" current_setting('primary_slot_name')," \
	PROBE_PEERS_COLUMN "," \
	" (SELECT coalesce(json_agg(slot_name), '[]') FROM pg_replication_slots WHERE slot_type = 'physical')," \
	/* the WAL receiver, in any state: what a replication cut must confirm gone */ \
	" (SELECT pid FROM pg_stat_wal_receiver)," \
	/* the timeline of its WAL: a primary's current one, a standby's latest segment's */ \
	" CASE WHEN pg_is_in_recovery()" \
	"  THEN (SELECT max(('x' || substr(name, 1, 8))::bit(32)::bigint) FROM pg_ls_waldir()" \
	"        WHERE name ~ '^[0-9A-F]{24}$')" \
	"  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END," \
	/* a primary's timeline history (none on timeline 1) */ \
	" CASE WHEN NOT pg_is_in_recovery()" \
	"  THEN pg_read_file('pg_wal/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) || '.history', 0, 1048576, true) END," \
	/* the replication role exists, usable or not (without LOGIN or REPLICATION) */ \
	" EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" REPLICATION_ROLE "')," \
	/* for status: the timeline a standby receives, and the clones a primary sends */ \
	" (SELECT received_tli FROM pg_stat_wal_receiver)," \
	" (SELECT coalesce(json_agg(json_build_array(a.application_name, p.phase, p.backup_total, p.backup_streamed))," \
	"                  '[]')" \
	"  FROM pg_stat_progress_basebackup p, pg_stat_get_activity(p.pid) a)," \
	PROBE_SETTINGS_DEPEND_COLUMNS

/* The settings: each read builds every setting (pg_settings) or parses the files
 * (pg_file_settings), ten times the cost of all the rest; they change only when someone
 * edits the files or reloads, restarts or promotes. Read with the rest when a member is
 * first probed, every PROBE_SETTINGS_PERIOD_MS, and whenever the columns above show a
 * reload, a restart, a new backend, a promotion, a new timeline or a new
 * postgresql.auto.conf (see probe_slot). Each view is built once (PROBE_SETTINGS_VIEWS),
 * not once per column that reads it: 0.87 ms against 1.81 (pgbench, prepared, on an
 * idle primary here). */
#define PROBE_SETTINGS_VIEWS \
	"WITH pgha_settings AS MATERIALIZED" \
	"  (SELECT name, setting, pending_restart, source FROM pg_settings" \
	"   WHERE pending_restart OR source = 'command line')," \
	" pgha_file_settings AS MATERIALIZED" \
	"  (SELECT name, setting, seqno, error, sourcefile FROM pg_file_settings) "
#define PROBE_SETTINGS_COLUMNS \
	" EXISTS (SELECT 1 FROM pgha_settings WHERE pending_restart)," \
	/* a hot-standby-sensitive setting waiting for a restart with a lower value than runs */ \
	" EXISTS (SELECT 1 FROM pgha_settings s" \
	"         JOIN (SELECT DISTINCT ON (name) name, setting FROM pgha_file_settings" \
	"               WHERE error IS NULL ORDER BY name, seqno DESC) f USING (name)" \
	"         WHERE s.pending_restart AND s.name IN ('max_connections', 'max_prepared_transactions'," \
	"               'max_locks_per_transaction', 'max_wal_senders', 'max_worker_processes')" \
	"           AND f.setting ~ '^[0-9]+$' AND f.setting::bigint < s.setting::bigint)," \
	/* started with a recorded value (-c) while its files give another: a restart is due */ \
	" EXISTS (SELECT 1 FROM pgha_settings WHERE source = 'command line' AND name IN ('max_connections'," \
	"         'max_prepared_transactions', 'max_locks_per_transaction', 'max_wal_senders', 'max_worker_processes'))," \
	/* ALTER SYSTEM over a setting pgha owns or configures ($1: their names) */ \
	" (SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM pgha_file_settings" \
	"  WHERE sourcefile LIKE '%/postgresql.auto.conf' AND name = ANY ($1::text[]))"

static const char probe_sql[] = "SELECT " PROBE_FAST_COLUMNS;
static const char probe_settings_sql[] = PROBE_SETTINGS_VIEWS "SELECT " PROBE_FAST_COLUMNS "," PROBE_SETTINGS_COLUMNS;

/* The primary of a cluster at rest, probed in between its full probes (at most
 * PROBE_PRIMARY_FULL_PERIOD_MS apart): what can change at rest without a reload, a
 * restart or a promotion, which the last three columns (as in the full probe) or its
 * recovery state show: its position and its standbys' replies. The other columns are
 * placeholders, the last full probe's values taken instead (read_light). 0.08 ms against
 * 0.23 for the full probe, 0.05 for an empty one (pgbench, prepared, on an idle primary
 * here): reading its replication role too (pg_roles), twice as much. What the light probe
 * does not read matters when a standby is to connect again, which takes the cluster out
 * of rest (its primary no longer lists it streaming) and so has the primary probed in
 * full. */
static const char probe_light_sql[] =
	"SELECT pg_is_in_recovery(), NULL,"
	" CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,"
	" NULL, false, false, NULL, NULL, NULL," PROBE_PEERS_COLUMN ","
	" '[]', NULL, NULL, NULL, false, NULL, '[]'," PROBE_SETTINGS_DEPEND_COLUMNS;

/* How long the primary of a cluster at rest goes on light probes: what only the full probe
 * reads (its replication role and slots, its timeline's history) is at most this old
 * while nothing is done to the cluster; anything pgha acts on is read again then, the
 * cluster no longer at rest. */
#define PROBE_PRIMARY_FULL_PERIOD_MS 30000

enum {
	COLUMN_BACKEND_PID = 17,
	COLUMN_CONF_LOAD_TIME,
	COLUMN_AUTO_CONF,
	COLUMN_PENDING_RESTART,
	COLUMN_LOWERS_STANDBY_SENSITIVE,
	COLUMN_STARTED_WITH_RECORDED,
	COLUMN_OVERRIDDEN,
};

/* How often a member's settings are read when nothing shows they changed (every probe
 * reads what they depend on: a reload, a restart, a new backend, a promotion, a new
 * timeline, postgresql.auto.conf's content): an edit of another file without a reload,
 * which changes nothing that runs, is seen within it. Each read cost the member 2.7 ms
 * (0.9 since it builds each view once, by pgbench): at 60 s and 100 clusters, five reads
 * a second, more than the primaries' light probes (22 a second at 0.08 ms). */
#define PROBE_SETTINGS_PERIOD_MS 300000

/* How often a member's postmaster is asked to serve a new connection beside the kept one
 * when the platform shows its process (postmaster_state) asleep (S), as it is at rest:
 * each check forks a child, which cost the member more than the probe itself (1.5 to 4 ms
 * against 0.04 to 0.4 ms): at 100 clusters, every 30 s, they were the largest share of
 * what pghad cost the members at rest. A postmaster stopped by a signal or a debugger (T)
 * is unreachable from the iteration that sees it, without a probe; one in any other state
 * (D: frozen, or stuck in the kernel; R: busy) is checked at every probe. Asleep, where it
 * sleeps tells more (postmaster_wait): in select, poll or epoll it waits for connections
 * in its loop, and a check now and then (POSTMASTER_LISTENING_CHECK_PERIOD_MS) finds what
 * that cannot show (a postmaster that can no longer fork); asleep elsewhere, as one
 * deadlocked in a signal handler would be (on a lock), it is checked at every probe;
 * where the platform cannot tell, every POSTMASTER_CHECK_PERIOD_MS, so that one hung
 * while it shows asleep is found within it. Where the process cannot be seen at all,
 * every probe checks. */
#define POSTMASTER_CHECK_PERIOD_MS 30000
#define POSTMASTER_LISTENING_CHECK_PERIOD_MS 300000

int observe_postmaster_check_ms(const struct member_observation *member)
{
	if (member->postmaster_state != 'S')
		return 0;
	switch (member->postmaster_wait) {
	case POSTMASTER_WAIT_CONNECTIONS:
		return POSTMASTER_LISTENING_CHECK_PERIOD_MS;
	case POSTMASTER_WAIT_ELSEWHERE:
		return 0;
	case POSTMASTER_WAIT_UNKNOWN:
		break;
	}
	return POSTMASTER_CHECK_PERIOD_MS;
}

/* Whether a running member's postmaster, by its process state, cannot answer: it is
 * then not probed (its connection goes), and member->error says why. */
static bool unreachable_by_its_state(struct member_observation *member)
{
	long pid = (long)member->postmaster;
	char state = member->postmaster_state;

	if (state == 'T' || state == 't')
		/* its backends may answer, but nothing new is served */
		snprintf(member->error, sizeof member->error,
			 "its postmaster (pid %ld) is stopped (state %c: a signal or a debugger): it serves no new connection",
			 pid, state);
	else if (member->fenced && state)
		/* none of its processes runs its own code again, and a probe would only wait
		 * for its deadline, at every step of the failover from it */
		snprintf(member->error, sizeof member->error,
			 "its postmaster (pid %ld) is killed but cannot end yet (state %c: frozen or stuck in the kernel)",
			 pid, state);
	else
		return false;
	return true;
}

/* What a member's settings columns said when last read, and what they depended on: the
 * probes in between read the rest and take these; a probe showing that what they depend
 * on changed is made again with the settings before the observation is complete. */
struct probe_settings {
	bool known;
	long long read_ms; /* the time of the observation that read them (its now_ms) */
	long backend_pid;
	char conf_load_time[64];
	char auto_conf[96]; /* postgresql.auto.conf's digest */
	bool in_recovery;
	char timeline[16];
	bool pending_restart;
	bool lowers_standby_sensitive;
	char overridden[sizeof ((struct member_observation *)0)->overridden];
};

/* How long a standby of a cluster at rest may go without a probe of its own. Each probe
 * costs a member 0.4 to 0.8 ms of CPU (0.04 ms of it the wake-up of an idle backend):
 * standbys were two thirds of what pghad cost the members at rest. Between its probes,
 * what decides a standby's fate is what its primary says of it: that it streams and
 * answered within config_standby_reply_bound_ms, five status intervals (5 s by default),
 * read at the primary's probe, which every cluster at rest has at least as often as that
 * bound requires (cluster_may_rest), and its positions come from that list. What only the
 * standby knows (its settings, its follow settings after an edit and a reload, the
 * timeline of its latest WAL segment) matters to pgha when it acts on the standby, and
 * then the cluster is not at rest and the standby is probed; at rest it is at most this
 * old. It was 5 s, the bound: at 100 clusters the standbys' probes were then a quarter of
 * the load pghad put on the members. Anything else brings the probe back at once (see
 * may_rest and wake_resting). */
#define PROBE_STANDBY_REST_PERIOD_MS 30000

/* How long the primary of a cluster at rest may go without a probe (pinged in between,
 * below): its standbys' reply ages, grown by the time since, usually take it out of the
 * bound first (at 4 s, with a reply every second). */
#define PROBE_REST_PERIOD_MS 5000

/* A cluster at rest whose standbys all rest has its primary pinged in between its own
 * probes (at least every PROBE_REST_PERIOD_MS): a Sync alone (pg_request.sync_only, no
 * statement), which its backend answers at once without a transaction: half the CPU of an
 * empty prepared statement (pg.h), which cost the member 0.04 ms against 0.37 ms for the
 * probe (measured on an idle connection, one every 20 ms): the primaries' probes, at every
 * iteration, were most of what pghad cost the members at rest. The ping proves what a
 * hang would stop, as the probe did: the backend answers within the deadline (and, now
 * and then, the postmaster serves a new connection: pg.c). What else the probe read is
 * taken from the last one, its standbys' reply ages grown by the time since (so that
 * one falls out of the bound as it would have), and the cluster rests only while that
 * leaves no doubt (cluster_may_rest); decide sees the same cluster it saw at that probe,
 * and it took no action then. */

/* A member's kept probe connection. */
struct probe_slot {
	struct observer *observer;
	char cluster[64];
	int index;
	struct pg_session session;
	sd_event_source *watch; /* while idle: readable when the server closes it */
	bool used;              /* probed in the current observation */
	/* its member rests in the observation under way (kept is its observation): its idle
	 * watch is kept through the round, and a close it hears then waits for conclude */
	bool resting_in_round;
	struct probe_settings settings; /* forgotten with the connection */
	long long full_ms; /* when its last full (not light) probe answered; 0: none kept */
	/* what its last probe found when it answered (kept.probed_ms: when; 0: none, or
	 * its last probe failed), and the process that answered it */
	struct member_observation kept;
	pid_t kept_postmaster;
	char kept_address[sizeof ((struct member_observation *)0)->address];
	bool kept_standby_signal;
	struct reply_memory replies; /* what its probes read of its standbys' replies */
	struct proc_watch backend;   /* its connection's backend, where the platform sees it */
};

struct observer {
	sd_event *event;
	void (*wake)(void *wake_data);
	void *wake_data;
	struct probe_slot **slots;
	size_t slot_count;
};

struct observer *observer_new(sd_event *event)
{
	struct observer *observer = xcalloc(1, sizeof *observer);
	observer->event = event ? sd_event_ref(event) : NULL;
	return observer;
}

void observer_set_wake(struct observer *observer, void (*wake)(void *wake_data), void *wake_data)
{
	observer->wake = wake;
	observer->wake_data = wake_data;
}

static void unwatch(struct probe_slot *slot)
{
	slot->watch = sd_event_source_disable_unref(slot->watch);
}

static void forget_kept(struct probe_slot *slot)
{
	member_observation_clear_lists(&slot->kept);
	slot->kept = (struct member_observation){0};
	slot->full_ms = 0;
}

static void slot_free(struct probe_slot *slot)
{
	unwatch(slot);
	proc_watch_close(&slot->backend);
	pg_session_close(&slot->session);
	forget_kept(slot);
	replyage_forget(&slot->replies);
	free(slot);
}

void observer_forget_probes(struct observer *observer)
{
	for (size_t i = 0; observer && i < observer->slot_count; i++)
		forget_kept(observer->slots[i]);
}

void observer_free(struct observer *observer)
{
	if (!observer)
		return;
	for (size_t i = 0; i < observer->slot_count; i++)
		slot_free(observer->slots[i]);
	free(observer->slots);
	sd_event_unref(observer->event);
	free(observer);
}

/* Where the slot of cluster's member index is or would go: the slots are kept sorted by
 * cluster, then member, so that a cluster's turn finds its own without going through
 * every cluster's (which, at every turn, grew with the square of the clusters). */
static size_t slot_position(const struct observer *observer, const char *cluster, int index)
{
	size_t low = 0, high = observer->slot_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		const struct probe_slot *slot = observer->slots[middle];
		int order = strcmp(slot->cluster, cluster);
		if (order < 0 || (order == 0 && slot->index < index))
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

/* The first of cluster's slots, or where they would go. */
static size_t first_slot(const struct observer *observer, const char *cluster)
{
	return slot_position(observer, cluster, INT_MIN);
}

static struct probe_slot *slot_for(struct observer *observer, const char *cluster, int index)
{
	size_t at = slot_position(observer, cluster, index);
	if (at < observer->slot_count && observer->slots[at]->index == index &&
	    strcmp(observer->slots[at]->cluster, cluster) == 0)
		return observer->slots[at];
	struct probe_slot *slot = xcalloc(1, sizeof *slot);
	snprintf(slot->cluster, sizeof slot->cluster, "%s", cluster);
	slot->index = index;
	slot->observer = observer;
	observer->slots = xreallocarray(observer->slots, observer->slot_count + 1, sizeof *observer->slots);
	memmove(&observer->slots[at + 1], &observer->slots[at], (observer->slot_count - at) * sizeof *observer->slots);
	observer->slots[at] = slot;
	observer->slot_count++;
	return slot;
}

static int on_idle_readable(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct probe_slot *slot = userdata;
	struct observer *observer = slot->observer;
	PGconn *connection = slot->session.connection;

	(void)source;
	(void)fd;
	(void)revents;
	/* an idle connection hears nothing but a notice or its end */
	if (connection && PQconsumeInput(connection) && PQstatus(connection) == CONNECTION_OK)
		return 0;
	log_debug("%s-%d: the server closed pghad's probe connection: iterating now", slot->cluster, slot->index);
	unwatch(slot);
	pg_session_close(&slot->session);
	/* a member resting in the round under way is observed as kept, as if the close came
	 * just after it; conclude then drops the slot, and the next round probes it anew */
	if (!slot->resting_in_round)
		forget_kept(slot);
	if (observer->wake)
		observer->wake(observer->wake_data);
	return 0;
}

/* Watches a slot's idle connection; without a loop (or when it cannot), the next probe
 * finds out. */
static void watch(struct observer *observer, struct probe_slot *slot)
{
	if (!observer->event || !slot->session.connection || PQsocket(slot->session.connection) < 0)
		return;
	if (sd_event_add_io(observer->event, &slot->watch, PQsocket(slot->session.connection), EPOLLIN, on_idle_readable,
			    slot) < 0) {
		slot->watch = NULL;
		return;
	}
	(void)sd_event_source_set_description(slot->watch, "probe connection");
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
		const json_t *lag = json_array_get(peer, 5);
		into->replay_lag_seconds = json_is_number(lag) ? json_number_value(lag) : -1;
		/* with a stamp, the age by both clocks until replyage_hold makes it the primary's */
		const json_t *age = json_array_get(peer, 6);
		const char *stamp = json_string_value(json_array_get(peer, 7));
		snprintf(into->reply_time, sizeof into->reply_time, "%s", stamp && json_is_number(age) ? stamp : "");
		into->reply_age_ms = json_is_number(age) ? (long long)json_number_value(age) : -1;
	}
	json_decref(peers);
}

static void read_clones(struct member_observation *member, const char *text)
{
	json_t *clones = json_loads(text, 0, NULL);
	size_t index;
	json_t *clone;

	member->clone_count = json_array_size(clones);
	member->clones = xcalloc(member->clone_count, sizeof *member->clones);
	json_array_foreach(clones, index, clone) {
		struct clone_progress *into = &member->clones[index];
		const char *name = json_string_value(json_array_get(clone, 0));
		const char *phase = json_string_value(json_array_get(clone, 1));
		const json_t *total = json_array_get(clone, 2);
		snprintf(into->application_name, sizeof into->application_name, "%s", name ? name : "");
		snprintf(into->phase, sizeof into->phase, "%s", phase ? phase : "");
		into->total_bytes = json_is_integer(total) ? (long long)json_integer_value(total) : -1;
		into->streamed_bytes = (long long)json_integer_value(json_array_get(clone, 3));
	}
	json_decref(clones);
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

/* Keeps the reply stamps member's list shows (replyage.h), its ages made the primary's. */
static void hold_replies(struct probe_slot *probed, struct member_observation *member, long long now_ms)
{
	struct reply_memory replies = {0};
	replyage_hold(&probed->replies, member->peers, member->peer_count, now_ms, &replies);
	replyage_forget(&probed->replies);
	probed->replies = replies;
}

/* A light probe's answer (probe_light_sql): the last full probe's fields, with what it
 * read now. */
static void read_light(const struct cluster_observation *observation, struct member_observation *member,
		       const PGresult *result, struct probe_slot *probed)
{
	observation_copy_probe(member, &probed->kept);
	member->reachable = true;
	member->error[0] = '\0';
	member->probed_ms = observation->now_ms;
	member->in_recovery = is_true(result, 0);
	member->lsn = pg_lsn_parse(PQgetisnull(result, 0, 2) ? NULL : PQgetvalue(result, 0, 2));
	free(member->peers);
	member->peers = NULL;
	read_peers(member, PQgetvalue(result, 0, 9));
	hold_replies(probed, member, observation->now_ms);
}

static void read_probe(struct platform *platform, const struct cluster_config *cluster,
		       const struct cluster_observation *observation, struct member_observation *member,
		       const struct pg_request *request, struct probe_slot *probed)
{
	const PGresult *result = request->result;

	if (!request->succeeded || PQntuples(result) != 1) {
		snprintf(member->error, sizeof member->error, "%.*s", (int)sizeof member->error - 1,
			 request->error[0] ? request->error : "no answer");
		log_message(LOG_LEVEL_DEBUG, cluster->name, member->name, "probe failed: %s", member->error);
		return;
	}
	if (request->sql == probe_light_sql) {
		read_light(observation, member, result, probed);
		return;
	}
	member->reachable = true;
	member->probed_ms = observation->now_ms;
	member->in_recovery = is_true(result, 0);
	member->timeline = (uint32_t)strtoul(PQgetvalue(result, 0, 1), NULL, 10);
	member->lsn = pg_lsn_parse(PQgetisnull(result, 0, 2) ? NULL : PQgetvalue(result, 0, 2));
	member->receive_lsn = pg_lsn_parse(PQgetisnull(result, 0, 3) ? NULL : PQgetvalue(result, 0, 3));
	member->streaming = is_true(result, 4);
	member->replication_role = is_true(result, 5);
	observation_set_text(&member->synchronous_standby_names,
			     PQgetisnull(result, 0, 6) ? "" : PQgetvalue(result, 0, 6), OBSERVATION_NAMES_SIZE);
	observation_set_text(&member->primary_conninfo, PQgetisnull(result, 0, 7) ? "" : PQgetvalue(result, 0, 7),
			     OBSERVATION_CONNINFO_SIZE);
	copy_text(member->primary_slot_name, sizeof member->primary_slot_name, result, 8);
	read_peers(member, PQgetvalue(result, 0, 9));
	hold_replies(probed, member, observation->now_ms);
	read_slots(member, PQgetvalue(result, 0, 10));
	member->receiver_pid = PQgetisnull(result, 0, 11) ? 0 : (pid_t)strtol(PQgetvalue(result, 0, 11), NULL, 10);
	member->receiving = member->receiver_pid != 0;
	member->wal_timeline = PQgetisnull(result, 0, 12) ? 0 : (uint32_t)strtoul(PQgetvalue(result, 0, 12), NULL, 10);
	if (!PQgetisnull(result, 0, 13) &&
	    !timeline_parse_history(PQgetvalue(result, 0, 13), &member->history, &member->history_count))
		member->wal_timeline = 0; /* an unreadable history tells nothing about divergence */
	member->replication_role_exists = is_true(result, 14);
	member->received_timeline = PQgetisnull(result, 0, 15) ? 0 : (uint32_t)strtoul(PQgetvalue(result, 0, 15), NULL, 10);
	read_clones(member, PQgetvalue(result, 0, 16));
	/* the settings: read now, or taken from when they were (settle made sure they hold) */
	member->pending_restart = probed->settings.pending_restart;
	member->lowers_standby_sensitive = probed->settings.lowers_standby_sensitive;
	snprintf(member->overridden, sizeof member->overridden, "%s", probed->settings.overridden);
	if (member->in_recovery && member->primary_conninfo[0]) {
		char slot[NAMES_BUFFER_SIZE];
		member->upstream = platform->ops->upstream_of(platform, cluster, observation, member->primary_conninfo);
		names_slot(slot, sizeof slot, cluster->name, member->index);
		char *expected = member->upstream < 0 ? NULL
				 : platform->ops->primary_conninfo(platform, cluster, observation, member->index,
								   member->upstream);
		member->follow_settings_current = expected && strcmp(expected, member->primary_conninfo) == 0 &&
						  strcmp(slot, member->primary_slot_name) == 0;
		free(expected);
	}
}

/* One cluster's observation under way: the platform's half is done, its probes run. */
struct observe_round {
	struct observer *observer;
	struct platform *platform;
	const struct cluster_config *cluster;
	struct cluster_observation *observation;
	struct pg_request *requests;
	char **names;
	struct member_observation **owners;
	struct probe_slot **slots;
	size_t count;
	/* the probes that run first: requests[0..active); those after are of standbys at
	 * rest, made only when what those answered leaves a doubt (wake_resting) */
	size_t active;
	bool *resting; /* per request: its member keeps its last probe's fields */
	bool pinged;   /* requests[0] pings the primary, the others rest (cluster_may_rest) */
	bool looked;   /* pinged, its ping not sent: its backend seen waiting (backend_waits) */
	long long reply_bound_ms;
	int timeout_ms;
	/* the probes made again with the settings, in the same observation: their indexes
	 * in requests; NULL: none (yet) */
	struct pg_request *again;
	size_t *again_of;
	size_t again_count;
	bool settled; /* made again already: never twice */
	struct pg_batch *batch; /* NULL: not started on a loop, or over */
	observe_done_fn done;
	void *context;
};

static bool slot_of_cluster(const struct probe_slot *slot, const struct cluster_config *cluster)
{
	return strcmp(slot->cluster, cluster->name) == 0;
}

static void with_settings(struct pg_request *request, char **names)
{
	request->sql = probe_settings_sql;
	request->statement = "pgha_probe_settings";
	request->parameter_count = 1;
	request->parameters = (const char *const *)names;
}

/* What, of what a member's settings depend on, changed since slot's were read (NULL:
 * nothing), by a probe without them. */
static const char *settings_changed(const struct probe_slot *slot, const PGresult *result, bool light)
{
	if (strtol(PQgetvalue(result, 0, COLUMN_BACKEND_PID), NULL, 10) != slot->settings.backend_pid)
		return "its probe connection has a new backend";
	if (strcmp(PQgetvalue(result, 0, COLUMN_CONF_LOAD_TIME), slot->settings.conf_load_time) != 0)
		return "it reloaded its configuration";
	if (strcmp(PQgetisnull(result, 0, COLUMN_AUTO_CONF) ? "" : PQgetvalue(result, 0, COLUMN_AUTO_CONF),
		   slot->settings.auto_conf) != 0)
		return "its postgresql.auto.conf changed";
	/* a light probe reads no timeline: a primary's changes only with a promotion (out of
	 * recovery) or a restart (a new backend) */
	if (is_true(result, 0) != slot->settings.in_recovery ||
	    (!light && strcmp(PQgetvalue(result, 0, 1), slot->settings.timeline) != 0))
		return "its recovery state or timeline changed";
	return NULL;
}

/* Keeps what a probe with the settings read, at now_ms, for the probes after it. */
static void keep_settings(struct probe_slot *slot, const PGresult *result, long long now_ms)
{
	struct probe_settings *settings = &slot->settings;

	settings->known = true;
	settings->read_ms = now_ms;
	settings->backend_pid = strtol(PQgetvalue(result, 0, COLUMN_BACKEND_PID), NULL, 10);
	snprintf(settings->conf_load_time, sizeof settings->conf_load_time, "%s",
		 PQgetvalue(result, 0, COLUMN_CONF_LOAD_TIME));
	snprintf(settings->auto_conf, sizeof settings->auto_conf, "%s",
		 PQgetisnull(result, 0, COLUMN_AUTO_CONF) ? "" : PQgetvalue(result, 0, COLUMN_AUTO_CONF));
	settings->in_recovery = is_true(result, 0);
	snprintf(settings->timeline, sizeof settings->timeline, "%s", PQgetvalue(result, 0, 1));
	/* a standby started with its primary's recorded values runs them until restarted */
	settings->pending_restart = is_true(result, COLUMN_PENDING_RESTART) || is_true(result, COLUMN_STARTED_WITH_RECORDED);
	settings->lowers_standby_sensitive = is_true(result, COLUMN_LOWERS_STANDBY_SENSITIVE);
	snprintf(settings->overridden, sizeof settings->overridden, "%s",
		 PQgetisnull(result, 0, COLUMN_OVERRIDDEN) ? "" : PQgetvalue(result, 0, COLUMN_OVERRIDDEN));
}

/* Whether the primary's probe, result, on slot at now_ms, lists name streaming and
 * answering within bound_ms. */
static bool lists_streaming(const PGresult *result, const struct probe_slot *slot, const char *name,
			    long long bound_ms, long long now_ms)
{
	struct member_observation primary = {0};
	bool listed = false;

	read_peers(&primary, PQgetvalue(result, 0, 9));
	replyage_hold(&slot->replies, primary.peers, primary.peer_count, now_ms, NULL);
	for (size_t i = 0; i < primary.peer_count && !listed; i++)
		listed = strcmp(primary.peers[i].application_name, name) == 0 &&
			 observation_peer_streaming(&primary.peers[i], bound_ms);
	member_observation_clear_lists(&primary);
	return listed;
}

/* Why the standbys left at rest must be probed after all, from what the others
 * answered (NULL: no doubt): every probe made answered, exactly one member is the
 * primary, and it lists each of them streaming and answering. */
static const char *doubt(const struct observe_round *round)
{
	const PGresult *primary = NULL;
	const struct probe_slot *primary_slot = NULL;

	/* cluster_may_rest found no doubt in the primary's last probe, aged */
	if (round->pinged)
		return round->looked || round->requests[0].succeeded ? NULL : "the primary did not answer its ping";
	for (size_t i = 0; i < round->active; i++) {
		const struct pg_request *request = &round->requests[i];
		if (!request->succeeded || PQntuples(request->result) != 1 || PQnfields(request->result) <= COLUMN_AUTO_CONF)
			return "a probe failed";
		if (is_true(request->result, 0))
			continue;
		if (primary)
			return "two members answer as primaries";
		primary = request->result;
		primary_slot = round->slots[i];
	}
	if (!primary)
		return "no member answers as the primary";
	for (size_t i = round->active; i < round->count; i++)
		if (round->resting[i] && !lists_streaming(primary, primary_slot, round->owners[i]->name, round->reply_bound_ms,
							  round->observation->now_ms))
			return "the primary does not list it streaming and answering";
	return NULL;
}

/* Readies request i of round to run again in the same round, with the settings. */
static void probe_again(struct observe_round *round, size_t i)
{
	if (!round->again) {
		round->again = xcalloc(round->count, sizeof *round->again);
		round->again_of = xcalloc(round->count, sizeof *round->again_of);
	}
	struct pg_request *again = &round->again[round->again_count];
	*again = (struct pg_request){.target = round->requests[i].target, .session = round->requests[i].session};
	/* a standby woken from rest: its probe reads the connection now */
	round->slots[i]->resting_in_round = false;
	unwatch(round->slots[i]);
	with_settings(again, &round->names[i]);
	round->again_of[round->again_count++] = i;
}

/* The standbys left at rest are probed in the second run (with their settings) when
 * what the others answered leaves a doubt. */
static void wake_resting(struct observe_round *round)
{
	if (round->active == round->count)
		return;
	const char *why = doubt(round);
	if (!why)
		return;
	for (size_t i = round->active; i < round->count; i++) {
		if (!round->resting[i])
			continue;
		log_message(LOG_LEVEL_DEBUG, round->cluster->name, round->owners[i]->name, "probing it after all: %s", why);
		round->resting[i] = false;
		probe_again(round, i);
	}
}

/* After round's probes answered: keeps the settings read, and readies again the probes
 * whose member's settings may have changed since read (none the second time). Returns
 * how many are to run again. */
static size_t settle(struct observe_round *round)
{
	for (size_t i = 0; i < round->count; i++) {
		const struct pg_request *request = &round->requests[i];
		if (round->resting[i] || (round->pinged && i == 0) || !request->succeeded ||
		    PQntuples(request->result) != 1 ||
		    PQnfields(request->result) <= COLUMN_AUTO_CONF ||
		    (request->sql == probe_settings_sql && PQnfields(request->result) <= COLUMN_OVERRIDDEN))
			continue;
		if (request->sql == probe_settings_sql) {
			keep_settings(round->slots[i], request->result, round->observation->now_ms);
			continue;
		}
		const char *why = round->settled ? NULL
						 : settings_changed(round->slots[i], request->result,
								    request->sql == probe_light_sql);
		if (!why)
			continue;
		log_message(LOG_LEVEL_DEBUG, round->cluster->name, round->owners[i]->name,
			    "reading its settings: %s", why);
		probe_again(round, i);
	}
	if (!round->settled)
		wake_resting(round);
	round->settled = true;
	return round->again_count;
}

/* The probes made again replace the first ones; their settings are kept. */
static void take_again(struct observe_round *round)
{
	for (size_t j = 0; j < round->again_count; j++) {
		size_t i = round->again_of[j];
		pg_request_clear(&round->requests[i]);
		round->requests[i] = round->again[j];
	}
	free(round->again);
	free(round->again_of);
	round->again = NULL;
	round->again_of = NULL;
	round->again_count = 0;
	settle(round);
}

/* Puts the probes of the members at rest after the others, which run first. */
static void rest_last(struct observe_round *round)
{
	size_t active = 0;

	for (size_t i = 0; i < round->count; i++) {
		if (round->resting[i])
			continue;
		if (i != active) {
			struct pg_request request = round->requests[active];
			char *names = round->names[active];
			struct member_observation *owner = round->owners[active];
			struct probe_slot *slot = round->slots[active];
			round->requests[active] = round->requests[i];
			if (round->requests[active].parameters)
				round->requests[active].parameters = (const char *const *)&round->names[active];
			round->names[active] = round->names[i];
			round->owners[active] = round->owners[i];
			round->slots[active] = round->slots[i];
			round->resting[active] = false;
			round->requests[i] = request;
			round->names[i] = names;
			round->owners[i] = owner;
			round->slots[i] = slot;
			round->resting[i] = true;
		}
		active++;
	}
	round->active = active;
}

/* Whether member runs the process that answered slot's last probe, seen as the platform
 * sees a process at rest: asleep waiting for connections (S) where it sees processes,
 * else (where it sees none) at the same address. */
static bool same_process(const struct member_observation *member, const struct probe_slot *slot)
{
	if (!slot->kept.probed_ms || !member->postmaster || member->postmaster != slot->kept_postmaster ||
	    member->postmaster_exited || member->fenced || member->standby_signal != slot->kept_standby_signal)
		return false;
	if (member->postmaster_state)
		return member->postmaster_state == 'S';
	return member->address[0] && strcmp(member->address, slot->kept_address) == 0;
}

/* The cluster's primary as its last probe found it, when it is certain: one member only
 * answered as a primary when last probed, and runs the same process now. NULL otherwise. */
static const struct probe_slot *kept_primary(const struct observer *observer, const struct cluster_config *cluster,
					     const struct cluster_observation *observation)
{
	const struct probe_slot *found = NULL;

	for (size_t i = first_slot(observer, cluster->name);
	     i < observer->slot_count && slot_of_cluster(observer->slots[i], cluster); i++) {
		const struct probe_slot *slot = observer->slots[i];
		if (!slot->kept.probed_ms || slot->kept.in_recovery)
			continue;
		if (found)
			return NULL;
		found = slot;
	}
	const struct member_observation *member = found ? observation_member(observation, found->index) : NULL;
	return member && same_process(member, found) && found->session.connection ? found : NULL;
}

/* peer as its primary's last probe (at probed_ms) listed it, its reply age grown by the
 * time since: an upper bound of its age now. */
static struct replication_peer aged_peer(const struct replication_peer *peer, long long probed_ms, long long now)
{
	struct replication_peer aged = *peer;
	if (aged.reply_age_ms >= 0 && now > probed_ms)
		aged.reply_age_ms += now - probed_ms;
	return aged;
}

/* Whether primary's last probe lists the standby name streaming and answering, its reply
 * age grown to what it may be at now (its own probe's time: as it was read). */
static bool primary_lists_streaming(const struct probe_slot *primary, const char *name, long long bound_ms,
				    long long now)
{
	for (size_t i = 0; i < primary->kept.peer_count; i++) {
		struct replication_peer peer = aged_peer(&primary->kept.peers[i], primary->kept.probed_ms, now);
		if (strcmp(peer.application_name, name) == 0 && observation_peer_streaming(&peer, bound_ms))
			return true;
	}
	return false;
}

/* Whether a standby of a cluster at rest may keep its last probe's fields rather than
 * be probed now (PROBE_STANDBY_REST_PERIOD_MS says why): it was probed lately, streaming,
 * on the connection still open; the same process runs, at rest, and pgha does nothing to
 * it; its settings are not due; and the primary, at its last probe, listed it streaming
 * and answering. This iteration's probe of the primary must say so too (wake_resting),
 * or, when the primary is only pinged, its last probe with the ages grown since
 * (cluster_may_rest). */
static bool may_rest(const struct member_observation *member, const struct probe_slot *slot,
		     const struct probe_slot *primary, long long bound_ms, long long now)
{
	if (!primary || primary == slot || !slot->session.connection || member->busy || !same_process(member, slot) ||
	    !slot->kept.reachable || !slot->kept.in_recovery || !slot->kept.streaming ||
	    now < slot->kept.probed_ms || now - slot->kept.probed_ms >= PROBE_STANDBY_REST_PERIOD_MS ||
	    !slot->settings.known || now - slot->settings.read_ms >= PROBE_SETTINGS_PERIOD_MS)
		return false;
	return primary_lists_streaming(primary, member->name, bound_ms, primary->kept.probed_ms);
}

/* Whether round's primary may be pinged rather than probed (see the ping, above): every member
 * runs and is probed but for it, and the others rest (may_rest); it is the primary
 * kept_primary found, probed within PROBE_REST_PERIOD_MS, its settings not due, and pgha
 * does nothing to it; and its last probe, the ages grown by the time since, still lists
 * each of them streaming and answering now (else it is probed, and its answer decides
 * whether they rest: wake_resting). */
static bool cluster_may_rest(const struct observe_round *round, const struct probe_slot *primary, long long now)
{
	if (!primary || round->active != 1 || round->count != round->observation->count || round->slots[0] != primary ||
	    round->owners[0]->busy || (round->requests[0].sql != probe_sql && round->requests[0].sql != probe_light_sql) ||
	    now < primary->kept.probed_ms ||
	    now - primary->kept.probed_ms >= PROBE_REST_PERIOD_MS)
		return false;
	for (size_t i = 1; i < round->count; i++)
		if (!primary_lists_streaming(primary, round->owners[i]->name, round->reply_bound_ms, now))
			return false;
	return true;
}

/* Whether round's primary, to be pinged, need not be (see the ping, above): where the
 * platform sees its processes, its postmaster asleep in its loop waiting for connections
 * and the backend of its kept connection asleep waiting for pghad's next message, the
 * ping's answer is certain, and its wake-up of the backend (two a second) is spared. With
 * the light probe and the settings' longer period, pghad's backends at 20 clusters went
 * from 0.79 % of a core to 0.25 (their CPU from /proc, 45 s at rest). A backend
 * stopped, frozen, stuck in the kernel, waiting for a lock or running is pinged, and one
 * that does not answer counts as it always did. pghad's connection is idle between its
 * requests, and the backend then waits only for its client (or its postmaster's death,
 * or a signal). */
static bool backend_waits(struct observe_round *round, struct platform *platform)
{
	struct probe_slot *slot = round->slots[0];
	const struct member_observation *member = round->owners[0];

	return platform->ops->backend_waits && member->postmaster_state == 'S' &&
	       member->postmaster_wait == POSTMASTER_WAIT_CONNECTIONS && slot->session.connection &&
	       platform->ops->backend_waits(platform, &slot->backend, PQbackendPID(slot->session.connection));
}

/* The platform's half of cluster's observation, and its probes made ready; at_rest:
 * the cluster's last decision took no action, waited for nothing and nothing of pgha's
 * is under way on it, so that standbys may rest (may_rest). */
static struct observe_round *prepare(struct observer *observer, struct platform *platform,
				     const struct cluster_config *cluster, observe_busy_fn busy, void *busy_context,
				     bool at_rest, struct cluster_observation *observation)
{
	struct observe_round *round = xcalloc(1, sizeof *round);
	*round = (struct observe_round){.observer = observer, .platform = platform, .cluster = cluster,
					.observation = observation,
					.reply_bound_ms = config_standby_reply_bound_ms(cluster)};

	for (size_t i = first_slot(observer, cluster->name);
	     i < observer->slot_count && slot_of_cluster(observer->slots[i], cluster); i++)
		observer->slots[i]->used = false;
	platform->ops->observe(platform, cluster, observation);
	size_t probes = 0;
	for (size_t i = 0; i < observation->count; i++) {
		struct member_observation *member = &observation->members[i];
		member->busy = busy && busy(cluster->name, member->index, busy_context);
		probes += member->postmaster != 0 && !member->postmaster_exited;
	}
	round->requests = xcalloc(probes + 1, sizeof *round->requests);
	round->names = xcalloc(probes + 1, sizeof *round->names);
	round->owners = xcalloc(probes + 1, sizeof *round->owners);
	round->slots = xcalloc(probes + 1, sizeof *round->slots);
	round->resting = xcalloc(probes + 1, sizeof *round->resting);
	/* the observation's time (the platform's): what rests is judged by it */
	long long now = observation->now_ms;
	/* with no primary known for certain, or bound, every member is probed */
	const struct probe_slot *primary =
		at_rest && round->reply_bound_ms > 0 ? kept_primary(observer, cluster, observation) : NULL;
	for (size_t i = 0; i < observation->count; i++) {
		struct member_observation *member = &observation->members[i];
		struct pg_request *request = &round->requests[round->count];
		if (!member->postmaster || member->postmaster_exited) {
			/* what the platform said of it (a pod being deleted, one that may still run
			 * on its node) says more */
			if (!member->error[0])
				snprintf(member->error, sizeof member->error, "%s",
					 member->postmaster ? "its postmaster exited" : "not running");
			continue;
		}
		if (unreachable_by_its_state(member)) {
			log_message(LOG_LEVEL_DEBUG, cluster->name, member->name, "probe failed: %s", member->error);
			continue;
		}
		if (!platform->ops->admin_target(platform, cluster, member->index, member, &request->target,
						 member->error, sizeof member->error))
			continue;
		struct probe_slot *slot = slot_for(observer, cluster->name, member->index);
		slot->used = true;
		slot->session.postmaster_check_ms = observe_postmaster_check_ms(member);
		round->names[round->count] = platform->ops->owned_settings(platform, cluster);
		/* prepared once per connection: planning it cost nine times running it */
		request->sql = probe_sql;
		request->statement = "pgha_probe";
		if (!slot->settings.known || now - slot->settings.read_ms >= PROBE_SETTINGS_PERIOD_MS) {
			log_message(LOG_LEVEL_DEBUG, cluster->name, member->name, "reading its settings: %s",
				    slot->settings.known ? "their period passed" : "first probe on this connection");
			with_settings(request, &round->names[round->count]);
		} else if (slot == primary && !member->busy && now >= slot->full_ms &&
			 now - slot->full_ms < PROBE_PRIMARY_FULL_PERIOD_MS) {
			request->sql = probe_light_sql;
			request->statement = "pgha_probe_light";
		}
		request->session = &slot->session;
		round->resting[round->count] = may_rest(member, slot, primary, round->reply_bound_ms, now);
		round->slots[round->count] = slot;
		round->owners[round->count++] = member;
	}
	rest_last(round);
	if (cluster_may_rest(round, primary, now)) {
		/* not logged: it would be a line for every cluster at rest at every iteration
		 * (the status' probe_age_ms shows it) */
		struct pg_request *ping = &round->requests[0];
		ping->sql = NULL;
		ping->statement = NULL;
		ping->sync_only = true; /* no statement: a Sync alone (pg.h), half the CPU of "" prepared */
		ping->parameter_count = 0;
		ping->parameters = NULL;
		round->pinged = true;
		round->looked = backend_waits(round, platform);
		if (round->looked)
			round->active = 0;
	}
	/* the probes read their connections themselves now; those at rest stay watched (each
	 * unwatch and watch again is an epoll_ctl and an sd-event source, for every resting
	 * standby at every iteration: all of pghad's epoll_ctl were a tenth of its CPU at rest
	 * at 100 clusters, by perf) */
	for (size_t i = 0; i < round->count; i++) {
		round->slots[i]->resting_in_round = round->resting[i] || (round->looked && i == 0);
		if (!round->slots[i]->resting_in_round)
			unwatch(round->slots[i]);
	}
	return round;
}

/* What a member's probe found, kept for when it rests, or forgotten when it failed. */
static void keep_probe(struct probe_slot *slot, const struct member_observation *member)
{
	if (!member->reachable) {
		forget_kept(slot);
		return;
	}
	observation_copy_probe(&slot->kept, member);
	slot->kept_postmaster = member->postmaster;
	snprintf(slot->kept_address, sizeof slot->kept_address, "%s", member->address);
	slot->kept_standby_signal = member->standby_signal;
}

/* A member at rest: its last probe's fields, with the positions its primary's list
 * gives now (its last reply), not those of its last probe. */
static void rest(struct observe_round *round, size_t i)
{
	struct member_observation *member = round->owners[i];
	const struct member_observation *primary = observation_primary(round->observation);

	observation_copy_probe(member, &round->slots[i]->kept);
	for (size_t p = 0; primary && p < primary->peer_count; p++) {
		const struct replication_peer *peer = &primary->peers[p];
		if (strcmp(peer->application_name, member->name) != 0)
			continue;
		if (peer->replay_lsn)
			member->lsn = peer->replay_lsn;
		if (peer->flush_lsn)
			member->receive_lsn = peer->flush_lsn;
	}
}

/* The primary answered its ping: its last probe's fields, its standbys' reply ages grown
 * by the time since. */
static void rest_pinged(struct observe_round *round)
{
	struct member_observation *member = round->owners[0];
	const struct probe_slot *slot = round->slots[0];
	long long now = round->observation->now_ms;

	observation_copy_probe(member, &slot->kept);
	for (size_t p = 0; p < member->peer_count; p++)
		member->peers[p] = aged_peer(&member->peers[p], slot->kept.probed_ms, now);
}

/* Frees a round's requests; with read, what they found goes into the observation. */
static void release(struct observe_round *round, bool read)
{
	for (size_t i = 0; read && i < round->count; i++) {
		if (round->resting[i])
			continue;
		if (round->pinged && i == 0 && (round->looked || round->requests[0].succeeded)) {
			rest_pinged(round);
			continue;
		}
		read_probe(round->platform, round->cluster, round->observation, round->owners[i], &round->requests[i],
			   round->slots[i]);
		keep_probe(round->slots[i], round->owners[i]);
		if (round->owners[i]->reachable && round->requests[i].sql != probe_light_sql)
			round->slots[i]->full_ms = round->observation->now_ms;
	}
	for (size_t i = 0; read && i < round->count; i++)
		if (round->resting[i])
			rest(round, i);
	for (size_t i = 0; i < round->count; i++) {
		round->slots[i]->resting_in_round = false;
		pg_request_clear(&round->requests[i]);
		free((char *)round->requests[i].target.host);
		free(round->names[i]);
	}
	for (size_t j = 0; j < round->again_count; j++)
		pg_request_clear(&round->again[j]);
	free(round->again);
	free(round->again_of);
	free(round->requests);
	free(round->names);
	free(round->owners);
	free(round->slots);
	free(round->resting);
	free(round);
}

/* The probes answered: the observation is complete. A member of the cluster not probed
 * now is stopped or removed: its connection goes; the others are watched until the next
 * probe. */
static void conclude(struct observe_round *round)
{
	struct observer *observer = round->observer;
	const struct cluster_config *cluster = round->cluster;

	release(round, true);
	size_t first = first_slot(observer, cluster->name), end = first, kept = first;
	for (; end < observer->slot_count && slot_of_cluster(observer->slots[end], cluster); end++) {
		struct probe_slot *slot = observer->slots[end];
		if (!slot->used || !slot->session.connection) {
			slot_free(slot);
			continue;
		}
		if (!slot->watch)
			watch(observer, slot);
		observer->slots[kept++] = slot;
	}
	/* the other clusters' after them, in order */
	if (end > kept) {
		memmove(&observer->slots[kept], &observer->slots[end],
			(observer->slot_count - end) * sizeof *observer->slots);
		observer->slot_count -= end - kept;
	}
}

void observe_clusters(struct observer *observer, struct platform *platform, const struct pgha_config *config,
		      observe_busy_fn busy, void *busy_context, int timeout_ms,
		      struct cluster_observation *observations)
{
	for (size_t c = 0; c < config->cluster_count; c++) {
		struct observe_round *round =
			prepare(observer, platform, &config->clusters[c], busy, busy_context, false, &observations[c]);
		platform->ops->execute(platform, round->requests, round->active, timeout_ms);
		if (settle(round)) {
			platform->ops->execute(platform, round->again, round->again_count, timeout_ms);
			take_again(round);
		}
		conclude(round);
	}
	observer_prune(observer, config);
}

static void on_probes_done(struct pg_request *requests, size_t count, void *context)
{
	struct observe_round *round = context;
	observe_done_fn done = round->done;
	void *done_context = round->context;
	struct cluster_observation *observation = round->observation;

	(void)requests;
	(void)count;
	round->batch = NULL;
	if (round->again)
		take_again(round);
	else if (settle(round)) {
		/* those answered at once before: their own deadline again, not what is left of it */
		round->batch = round->platform->ops->execute_start(round->platform, round->observer->event, round->again,
								   round->again_count, round->timeout_ms, on_probes_done,
								   round);
		return;
	}
	conclude(round);
	done(observation, done_context);
}

struct observe_round *observe_cluster_start(struct observer *observer, struct platform *platform,
					    const struct cluster_config *cluster, observe_busy_fn busy,
					    void *busy_context, bool at_rest, int timeout_ms,
					    struct cluster_observation *observation, observe_done_fn done, void *context)
{
	struct observe_round *round = prepare(observer, platform, cluster, busy, busy_context, at_rest, observation);
	round->done = done;
	round->context = context;
	round->timeout_ms = timeout_ms;
	round->batch = platform->ops->execute_start(platform, observer->event, round->requests, round->active, timeout_ms,
						    on_probes_done, round);
	/* a test freezes pghad while its probes are out, as a paused machine would */
	testhook_stop_before("probe-answers");
	return round;
}

void observe_round_cancel(struct observe_round *round)
{
	if (!round)
		return;
	pg_batch_cancel(round->batch);
	release(round, false);
}

void observer_prune(struct observer *observer, const struct pgha_config *config)
{
	size_t kept = 0;

	for (size_t i = 0; i < observer->slot_count; i++) {
		struct probe_slot *slot = observer->slots[i];
		bool configured = false;
		for (size_t c = 0; c < config->cluster_count && !configured; c++)
			configured = slot_of_cluster(slot, &config->clusters[c]);
		if (!configured) {
			slot_free(slot);
			continue;
		}
		observer->slots[kept++] = slot;
	}
	observer->slot_count = kept;
}
