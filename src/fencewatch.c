/* fencewatch: a member's watch on its own primary, as a process of its own beside the postmaster: each second it asks the local PostgreSQL its role and standbys, and the API server its pod and the cluster's Lease, and exits asking for an immediate shutdown when selffence says so. */
#include "autoconfig.h"

#include "fencewatch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "k8s.h"
#include "log.h"
#include "memory.h"
#include "selffence.h"
#include "standbyreach.h"
#include "state.h"

#define ANNOTATION_STATE "pgha.io/state"
/* The shortest pause between two rounds, however late the last one ended. */
#define FENCEWATCH_MIN_PAUSE_MS 100
/* The local query's bound. */
#define LOCAL_TIMEOUT_MS 2000

struct watch {
	const struct fencewatch_config *config;
	struct k8s_client *client;
	char *pod_path, *lease_path;
	bool client_failing, api_failing, lease_failing, isolation_told;
	long long api_reached_ms; /* the last answer of the API server */
	struct standbyreach_memory standbys; /* the streaming standbys' last reply_time read */
};

static long long now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void pause_ms(long long milliseconds)
{
	struct timespec pause = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
	while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
		;
}

/* The client, made once the service account can be read (it may come after the start). */
static bool have_client(struct watch *watch)
{
	char why[512];

	if (watch->client)
		return true;
	int request_ms = watch->config->isolation_ms / 4;
	struct k8s_limits limits = {.connect_timeout_ms = 1000, .timeout_ms = request_ms < 2000 ? request_ms : 2000};
	if (limits.timeout_ms < 500)
		limits.timeout_ms = 500;
	watch->client = k8s_client_new(NULL, &limits, why, sizeof why);
	if (!watch->client) {
		if (!watch->client_failing)
			log_message(LOG_LEVEL_WARNING, watch->config->cluster, watch->config->member,
				    "self-fence: cannot reach the API server as the pod's service account: %s", why);
		watch->client_failing = true;
		return false;
	}
	const char *namespace = k8s_client_namespace(watch->client);
	char *pod = k8s_escape(watch->config->pod_name), *lease = k8s_escape(watch->config->lease);
	watch->pod_path = xasprintf("/api/v1/namespaces/%s/pods/%s", namespace, pod);
	watch->lease_path = xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", namespace, lease);
	free(pod);
	free(lease);
	watch->client_failing = false;
	return true;
}

/* The role, the standbys streaming, and when one of them was last reached: a standby cut
 * off (its node isolated) stays "streaming" in pg_stat_replication until
 * wal_sender_timeout, but answers no more; a standby answers at least every
 * wal_receiver_status_interval (1 s, pgha-entrypoint sets it), so one whose reply_time
 * changed since the last round was reached after that round's query (standbyreach).
 * reply_time is stamped by the standby's clock: it is compared with its own earlier
 * value only, never with this member's clock, so no clock's error delays the fence. */
static void check_local(struct watch *watch, struct selffence_observation *seen)
{
	/* one row even with no standby streaming: its pid is then null */
	const char *sql = "SELECT pg_is_in_recovery(), r.pid, r.application_name,"
			  " floor(extract(epoch FROM r.reply_time) * 1000000)::bigint"
			  " FROM (SELECT 1) AS one LEFT JOIN pg_stat_replication AS r ON r.state = 'streaming'";
	struct pg_request request = {.target = watch->config->local, .sql = sql};
	long long sent = now_ms();

	pg_execute_all(&request, 1, LOCAL_TIMEOUT_MS);
	seen->role = SELFFENCE_ROLE_UNKNOWN;
	seen->streaming = -1;
	int rows = request.succeeded && PQresultStatus(request.result) == PGRES_TUPLES_OK ? PQntuples(request.result) : 0;
	if (rows > 0) {
		struct standbyreach_row *standbys = xcalloc((size_t)rows, sizeof *standbys);
		int count = 0;
		for (int i = 0; i < rows; i++) {
			if (PQgetisnull(request.result, i, 1))
				continue;
			struct standbyreach_row *standby = &standbys[count++];
			standby->walsender_pid = atoi(PQgetvalue(request.result, i, 1));
			snprintf(standby->application_name, sizeof standby->application_name, "%s",
				 PQgetvalue(request.result, i, 2));
			standby->replied = !PQgetisnull(request.result, i, 3);
			standby->reply_time_us = atoll(PQgetvalue(request.result, i, 3));
		}
		seen->role = strcmp(PQgetvalue(request.result, 0, 0), "t") == 0 ? SELFFENCE_ROLE_STANDBY
										 : SELFFENCE_ROLE_PRIMARY;
		seen->streaming = count;
		seen->standby_reached_ms = standbyreach_update(&watch->standbys, standbys, (size_t)count, sent);
		free(standbys);
	}
	pg_request_clear(&request);
}

static void check_pod(struct watch *watch, struct selffence_observation *seen)
{
	char why[512];
	json_t *pod = NULL;
	long long sent = now_ms();
	int status = k8s_get(watch->client, watch->pod_path, &pod, why, sizeof why);

	seen->pod = SELFFENCE_POD_UNKNOWN;
	if (status == 200 || status == 404) {
		seen->api_reached_ms = sent;
		watch->api_reached_ms = sent;
		if (watch->api_failing)
			log_message(LOG_LEVEL_NOTICE, watch->config->cluster, watch->config->member,
				    "self-fence: the API server answers again");
		watch->api_failing = false;
	} else {
		if (!watch->api_failing)
			log_message(LOG_LEVEL_WARNING, watch->config->cluster, watch->config->member,
				    "self-fence: cannot read this pod: %s", why);
		watch->api_failing = true;
	}
	if (status == 404)
		seen->pod = SELFFENCE_POD_GONE;
	else if (status == 200) {
		json_t *metadata = json_object_get(pod, "metadata");
		const char *uid = json_string_value(json_object_get(metadata, "uid"));
		if (watch->config->pod_uid && (!uid || strcmp(uid, watch->config->pod_uid) != 0))
			seen->pod = SELFFENCE_POD_GONE;
		else if (json_object_get(metadata, "deletionTimestamp") &&
			 !json_is_null(json_object_get(metadata, "deletionTimestamp")))
			seen->pod = SELFFENCE_POD_DELETING;
		else
			seen->pod = SELFFENCE_POD_RUNNING;
	}
	json_decref(pod);
}

static void check_lease(struct watch *watch, struct selffence_observation *seen)
{
	char why[512];
	json_t *lease = NULL;
	int status = k8s_get(watch->client, watch->lease_path, &lease, why, sizeof why);
	struct cluster_state state;

	seen->lease = (struct selffence_lease){.known = false, .primary = -1, .from = -1, .to = -1};
	if (status == 200) {
		const char *text = json_string_value(
			json_object_get(json_object_get(json_object_get(lease, "metadata"), "annotations"), ANNOTATION_STATE));
		if (!text)
			state_init(&state);
		if (!text || state_parse(text, "the Lease's " ANNOTATION_STATE, &state, why, sizeof why)) {
			seen->lease = (struct selffence_lease){
				.known = true, .primary = state.primary,
				.failover = state.failover.kind != FAILOVER_NONE,
				.demoting = state.failover.phase == PHASE_DEMOTE,
				.from = state.failover.from, .to = state.failover.to};
			watch->lease_failing = false;
			json_decref(lease);
			return;
		}
	}
	if (!watch->lease_failing)
		log_message(LOG_LEVEL_WARNING, watch->config->cluster, watch->config->member,
			    "self-fence: cannot read the Lease %s: %s", watch->config->lease, why);
	watch->lease_failing = true;
	json_decref(lease);
}

static _Noreturn void run(const struct fencewatch_config *config, pid_t parent)
{
	struct watch watch = {.config = config};
	struct selffence_config decision = {.member = config->member_index, .isolation_ms = config->isolation_ms};
	struct selffence_memory memory = {0};

	log_message(LOG_LEVEL_INFO, config->cluster, config->member,
		    "self-fence: watching pod %s and Lease %s while this member runs as the primary "
		    "(isolation timeout %d ms)",
		    config->pod_name, config->lease, config->isolation_ms);
	/* rounds start every FENCEWATCH_INTERVAL_MS, the first one interval after the start
	 * (a watch that ends at once every time cannot spin), however long the last took */
	long long next_round = now_ms() + FENCEWATCH_INTERVAL_MS;
	for (;;) {
		long long wait = next_round - now_ms();
		pause_ms(wait > FENCEWATCH_MIN_PAUSE_MS ? wait : FENCEWATCH_MIN_PAUSE_MS);
		next_round = now_ms() + FENCEWATCH_INTERVAL_MS;
		if (getppid() != parent)
			_exit(0);
		struct selffence_observation seen = {0};
		check_local(&watch, &seen);
		if (seen.role == SELFFENCE_ROLE_PRIMARY || (seen.role == SELFFENCE_ROLE_UNKNOWN && memory.primary)) {
			/* an API server that did not answer for the pod is not asked again this round */
			if (have_client(&watch)) {
				check_pod(&watch, &seen);
				if (seen.api_reached_ms)
					check_lease(&watch, &seen);
			}
		} else
			watch.isolation_told = false;
		seen.now_ms = now_ms();
		char why[512];
		bool was_primary = memory.primary;
		enum selffence_verdict verdict = selffence_decide(&decision, &seen, &memory, why, sizeof why);
		if (memory.primary != was_primary)
			log_message(LOG_LEVEL_INFO, config->cluster, config->member,
				    memory.primary ? "self-fence: this member runs as the primary (%s)"
						   : "self-fence: this member runs as a standby (%s): not checked",
				    seen.api_reached_ms ? "the API server answers" : "no answer from the API server yet");
		if (verdict == SELFFENCE_STOP) {
			log_message(LOG_LEVEL_WARNING, config->cluster, config->member,
				    "self-fence: PostgreSQL must stop now: %s", why);
			_exit(FENCEWATCH_EXIT_STOP);
		}
		if (verdict == SELFFENCE_DEMOTE) {
			log_message(LOG_LEVEL_NOTICE, config->cluster, config->member,
				    "self-fence: PostgreSQL shuts down cleanly now: %s", why);
			_exit(FENCEWATCH_EXIT_DEMOTE);
		}
		long long unheard = seen.now_ms - (watch.api_reached_ms > 0 ? watch.api_reached_ms : seen.now_ms);
		if (memory.primary && seen.streaming > 0 && unheard >= config->isolation_ms && !watch.isolation_told) {
			log_message(LOG_LEVEL_NOTICE, config->cluster, config->member,
				    "self-fence: no answer from the API server for %lld ms, but %d standby%s stream%s from "
				    "this primary: it keeps running",
				    unheard, seen.streaming, seen.streaming == 1 ? "" : "s", seen.streaming == 1 ? "s" : "");
			watch.isolation_told = true;
		} else if (unheard < config->isolation_ms)
			watch.isolation_told = false;
	}
}

pid_t fencewatch_start(const struct fencewatch_config *config)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0) {
		log_error("cannot start the self-fence watch: %m");
		return -1;
	}
	if (pid > 0)
		return pid;
	/* dies with the supervisor, which is the container */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	run(config, parent);
}
