/* daemon: pghad's running state (the configuration in force, the last reload error) and what a reload and a loop iteration do. */
#include "autoconfig.h"

#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "act.h"
#include "decide.h"
#include "exitcode.h"
#include "failover.h"
#include "history.h"
#include "jsonpack.h"
#include "log.h"
#include "memory.h"
#include "metrics.h"
#include "names.h"
#include "notify.h"
#include "pg.h"
#include "plan.h"
#include "observe.h"
#include "platform_table.h"
#include "state.h"
#include "testhook.h"

static json_t *status_reply(const struct daemon *daemon);

static long long monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* An entry of pghad's history: kept in STATE_DIR/history.jsonl. */
static void record(const struct history_entry *entry, void *context)
{
	struct daemon *daemon = context;
	char before[sizeof daemon->history.error];

	snprintf(before, sizeof before, "%s", daemon->history.error);
	if (!history_add(&daemon->history, entry) && strcmp(before, daemon->history.error) != 0)
		log_error("history: %s", daemon->history.error);
	/* and what the platform shows of it (an Event on a pod); rare, and bounded as every
	 * request is */
	char why[512];
	if (!daemon->platform.ops->record(&daemon->platform, entry, why, sizeof why))
		log_message(LOG_LEVEL_WARNING, entry->cluster, entry->member[0] ? entry->member : NULL, "%s: %s",
			    daemon->platform.ops->name, why);
}

/* What pghad does to a cluster (a failover's end) or to itself (a reload), for history. */
static void record_event(struct daemon *daemon, const char *cluster, const char *member, const char *kind,
			 const char *outcome, long long duration_ms, const char *reason)
{
	struct history_entry entry = {.at_ms = observation_clock_ms(), .duration_ms = duration_ms};
	snprintf(entry.cluster, sizeof entry.cluster, "%s", cluster ? cluster : "");
	snprintf(entry.member, sizeof entry.member, "%s", member ? member : "");
	snprintf(entry.kind, sizeof entry.kind, "%s", kind);
	snprintf(entry.outcome, sizeof entry.outcome, "%s", outcome);
	snprintf(entry.reason, sizeof entry.reason, "%s", reason);
	record(&entry, daemon);
}

/* STATE_DIR/history.jsonl, read now and appended to from now on; a state directory
 * that cannot be made or a file that cannot be read leaves a history in memory. */
static void open_history(struct daemon *daemon)
{
	char why[512];
	const char *directory = daemon->config->daemon.state_dir;
	char *path = xasprintf("%s/history.jsonl", directory);

	if (mkdir(directory, 0755) < 0 && errno != EEXIST)
		log_error("history: cannot create %s: %m; keeping it in memory only", directory);
	if (!history_open(&daemon->history, path, why, sizeof why))
		log_error("history: %s; starting it afresh", why);
	free(path);
}

static void log_errors(const struct diag_list *errors)
{
	for (size_t i = 0; i < errors->count; i++)
		log_error("%s", errors->messages[i]);
}

int daemon_start(struct daemon *daemon, const char *config_path)
{
	return daemon_start_on(daemon, config_path, NULL);
}

int daemon_start_on(struct daemon *daemon, const char *config_path, const struct platform_ops *ops)
{
	struct diag_list errors = {0};

	*daemon = (struct daemon){.config_path = xstrdup(config_path)};
	daemon->config = config_load_file(config_path, &errors);
	if (!daemon->config) {
		log_errors(&errors);
		log_error("%s: %zu error%s, not starting", config_path, errors.count, errors.count == 1 ? "" : "s");
		diag_free(&errors);
		return PGHA_EXIT_CONFIG;
	}
	log_set_level((enum log_level)daemon->config->daemon.log_level);
	open_history(daemon);
	log_info("configuration loaded from %s: %zu cluster%s on the %s platform", config_path,
		 daemon->config->cluster_count, daemon->config->cluster_count == 1 ? "" : "s",
		 platform_type_names[daemon->config->platform.type]);
	daemon->platform.ops = ops ? ops : platform_table_find(daemon->config->platform.type);
	return daemon->platform.ops->open(&daemon->platform, daemon->config);
}

void daemon_attach(struct daemon *daemon, sd_event *event)
{
	daemon->actor = actor_new(event, &daemon->platform, &daemon->config);
	daemon->platform.ops->attach(&daemon->platform, event);
	actor_set_recorder(daemon->actor, record, daemon);
	daemon->observer = observer_new(event);
	daemon->event = event;
}

/* Every cluster's view and turn go (a reload replaces what they describe): rounds under
 * way are abandoned. */
static void forget_observations(struct daemon *daemon)
{
	for (size_t i = 0; i < daemon->observed_clusters; i++) {
		struct cluster_turn *turn = daemon->turns ? &daemon->turns[i] : NULL;
		if (turn) {
			observe_round_cancel(turn->round);
			cluster_observation_free(&turn->next);
			sd_event_source_disable_unref(turn->hurry);
		}
		cluster_observation_free(&daemon->observations[i]);
	}
	free(daemon->observations);
	free(daemon->waiting);
	free(daemon->turns);
	daemon->observations = NULL;
	daemon->waiting = NULL;
	daemon->turns = NULL;
	daemon->observed_clusters = 0;
	daemon->watched_count = 0;
}

/* A view and a turn per cluster of the configuration in force. */
static void prepare_turns(struct daemon *daemon)
{
	size_t count = daemon->config->cluster_count;

	if (daemon->turns && daemon->observed_clusters == count)
		return;
	forget_observations(daemon);
	daemon->observed_clusters = count;
	daemon->observations = xcalloc(count + 1, sizeof *daemon->observations);
	daemon->waiting = xcalloc(count + 1, sizeof *daemon->waiting);
	daemon->turns = xcalloc(count + 1, sizeof *daemon->turns);
	for (size_t i = 0; i < count; i++)
		daemon->turns[i] = (struct cluster_turn){.daemon = daemon, .index = i};
}

/* What each cluster's primary knows of the parameters next changes (their context:
 * reload or restart), asked of all primaries at once. */
static void gather_settings(struct daemon *daemon, const struct pgha_config *next,
			    struct plan_setting **settings, size_t *counts)
{
	size_t n = next->cluster_count;
	struct pg_request *requests = xcalloc(n, sizeof *requests);
	char **arrays = xcalloc(n, sizeof *arrays);
	size_t asked = 0;
	size_t *owner = xcalloc(n, sizeof *owner);

	for (size_t i = 0; i < n; i++) {
		const struct cluster_config *running = next->clusters[i].name
							       ? plan_find_cluster(daemon->config, next->clusters[i].name)
							       : NULL;
		const struct cluster_observation *observation = NULL;
		for (size_t o = 0; running && o < daemon->observed_clusters; o++)
			if (&daemon->config->clusters[o] == running)
				observation = &daemon->observations[o];
		const struct member_observation *primary = observation_primary(observation);
		size_t count;
		const char **names = running ? plan_changed_parameters(running, &next->clusters[i], &count) : NULL;
		char why[512];
		if (!primary || !names || count == 0 ||
		    !daemon->platform.ops->admin_target(&daemon->platform, running, primary->index, primary,
							&requests[asked].target, why, sizeof why)) {
			free(names);
			continue;
		}
		arrays[asked] = pg_text_array(names, count);
		free(names);
		requests[asked].sql = plan_settings_sql;
		requests[asked].parameter_count = 1;
		requests[asked].parameters = (const char *const *)&arrays[asked];
		owner[asked++] = i;
	}
	daemon->platform.ops->execute(&daemon->platform, requests, asked, 2000);
	for (size_t a = 0; a < asked; a++) {
		const PGresult *result = requests[a].result;
		size_t i = owner[a];
		if (requests[a].succeeded) {
			counts[i] = (size_t)PQntuples(result);
			settings[i] = xcalloc(counts[i], sizeof *settings[i]);
			for (size_t row = 0; row < counts[i]; row++) {
				snprintf(settings[i][row].name, sizeof settings[i][row].name, "%s", PQgetvalue(result, (int)row, 0));
				snprintf(settings[i][row].context, sizeof settings[i][row].context, "%s",
					 PQgetvalue(result, (int)row, 1));
				snprintf(settings[i][row].running, sizeof settings[i][row].running, "%s",
					 PQgetvalue(result, (int)row, 2));
				settings[i][row].module_prefix = PQgetvalue(result, (int)row, 3)[0] == 't';
			}
		}
		pg_request_clear(&requests[a]);
		free((char *)requests[a].target.host);
		free(arrays[a]);
	}
	free(requests);
	free(arrays);
	free(owner);
}

/* The plan of a reload to next, one line each, into lines. */
static void plan_reload(struct daemon *daemon, const struct pgha_config *next, struct diag_list *lines)
{
	struct plan_setting **settings = xcalloc(next->cluster_count ? next->cluster_count : 1, sizeof *settings);
	size_t *counts = xcalloc(next->cluster_count ? next->cluster_count : 1, sizeof *counts);
	bool *has_data = xcalloc(next->cluster_count ? next->cluster_count : 1, sizeof *has_data);

	gather_settings(daemon, next, settings, counts);
	for (size_t i = 0; i < next->cluster_count; i++)
		has_data[i] = next->clusters[i].name && daemon->platform.ops->has_data(&daemon->platform, &next->clusters[i]);
	struct plan_input input = {
		.running = daemon->config,
		.next = next,
		.observations = daemon->observations,
		.observed = daemon->observed_clusters,
		.settings = (const struct plan_setting *const *)settings,
		.setting_counts = counts,
		.has_data = has_data,
	};
	plan_describe(&input, lines);
	for (size_t i = 0; i < next->cluster_count; i++)
		free(settings[i]);
	free(settings);
	free(counts);
	free(has_data);
}

bool daemon_reload(struct daemon *daemon)
{
	struct diag_list errors = {0};
	struct pgha_config *candidate;
	char status[512];

	long long started_ms = monotonic_ms();

	notify_reloading();
	log_info("reloading the configuration from %s", daemon->config_path);
	candidate = config_load_file(daemon->config_path, &errors);
	if (candidate && !config_check_reload(daemon->config, candidate, &errors)) {
		config_free(candidate);
		candidate = NULL;
	}
	testhook_stall("reload");
	diag_free(&daemon->reload_errors);
	if (!candidate) {
		log_errors(&errors);
		log_error("%zu error%s in %s: keeping the current configuration", errors.count,
			  errors.count == 1 ? "" : "s", daemon->config_path);
		daemon->reloads_refused++;
		char *reason = xasprintf("%zu error%s in %s, the first: %s", errors.count, errors.count == 1 ? "" : "s",
					 daemon->config_path, errors.count ? errors.messages[0] : "");
		record_event(daemon, NULL, NULL, "reload", "refused", monotonic_ms() - started_ms, reason);
		free(reason);
		daemon->reload_errors = errors;
		errors = (struct diag_list){0};
	} else {
		struct diag_list plan = {0};
		plan_reload(daemon, candidate, &plan);
		for (size_t i = 0; i < plan.count; i++)
			log_notice("plan: %s", plan.messages[i]);
		diag_free(&plan);
		forget_observations(daemon); /* they describe the configuration being replaced */
		/* and every member is probed again under the new one */
		observer_forget_probes(daemon->observer);
		config_free(daemon->config);
		daemon->config = candidate;
		daemon->platform.ops->set_config(&daemon->platform, candidate);
		log_set_level((enum log_level)candidate->daemon.log_level);
		log_notice("configuration reloaded from %s: %zu cluster%s", daemon->config_path, candidate->cluster_count,
			   candidate->cluster_count == 1 ? "" : "s");
		daemon->reloads_accepted++;
		char *reason = xasprintf("%s: %zu cluster%s", daemon->config_path, candidate->cluster_count,
					 candidate->cluster_count == 1 ? "" : "s");
		record_event(daemon, NULL, NULL, "reload", "accepted", monotonic_ms() - started_ms, reason);
		free(reason);
	}
	diag_free(&errors);
	daemon_status_line(daemon, status, sizeof status);
	notify_status("%s", status);
	notify_ready();
	return candidate != NULL;
}

/* A cluster's probes answer within half its failover timeout, and never wait more than
 * 5 s: a hung member must be noticed in time; its cluster alone waits for it. */
static int probe_timeout_ms(const struct cluster_config *cluster)
{
	int timeout = cluster->failover.timeout_ms / 2;
	return timeout < 250 ? 250 : timeout > 5000 ? 5000 : timeout;
}

/* The runtime of a cluster, made on first use; runtimes outlive reloads. */
static struct cluster_runtime *runtime_for(struct daemon *daemon, const char *name)
{
	for (size_t i = 0; i < daemon->runtime_count; i++)
		if (strcmp(daemon->runtimes[i].name, name) == 0)
			return &daemon->runtimes[i];
	daemon->runtimes = xreallocarray(daemon->runtimes, daemon->runtime_count + 1, sizeof *daemon->runtimes);
	struct cluster_runtime *runtime = &daemon->runtimes[daemon->runtime_count++];
	*runtime = (struct cluster_runtime){0};
	snprintf(runtime->name, sizeof runtime->name, "%s", name);
	return runtime;
}

/* The remembered state, read every iteration (it is small), so that what pghactl pause
 * wrote, or what a previous pghad left, is what decides; and whether this pghad acts.
 * state: what it is now (the one kept when the platform could not read it). */
static enum platform_hold load_state(struct daemon *daemon, const struct cluster_config *cluster,
				     struct cluster_runtime *runtime, struct cluster_state *state)
{
	char why[512] = "";
	state_restore(state, &runtime->state);
	enum platform_hold hold = daemon->platform.ops->load_state(&daemon->platform, cluster, state, why, sizeof why);
	state_keep(&runtime->state, state);

	if (hold == PLATFORM_HOLD_UNREADABLE && strcmp(why, runtime->state_error) != 0)
		log_message(LOG_LEVEL_ERROR, cluster->name, NULL, "%s: not acting on this cluster until it is fixed", why);
	snprintf(runtime->state_error, sizeof runtime->state_error, "%s", hold == PLATFORM_HOLD_ACTS ? "" : why);
	if (hold != PLATFORM_HOLD_ELSEWHERE)
		runtime->state_loaded = hold == PLATFORM_HOLD_ACTS;
	return hold;
}

static bool save_state(struct daemon *daemon, const struct cluster_config *cluster, const struct cluster_state *state)
{
	char why[512] = "";
	bool saved = daemon->platform.ops->save_state(&daemon->platform, cluster, state, why, sizeof why);

	if (!saved)
		log_message(LOG_LEVEL_ERROR, cluster->name, NULL, "cannot record intent: %s; not acting", why);
	return saved;
}

/* How long each running member has not answered, from the first probe that failed. */
static void track_unreachable(struct cluster_runtime *runtime, struct cluster_observation *observation, long long now)
{
	for (size_t m = 0; m < observation->count; m++) {
		struct member_observation *member = &observation->members[m];
		if (member->index < 0 || member->index >= DAEMON_MAX_MEMBERS)
			continue;
		long long *since = &runtime->unreachable_since[member->index];
		if (member->reachable || !member->postmaster || member->postmaster_exited) {
			*since = 0;
			continue;
		}
		if (*since == 0)
			*since = observation->now_ms;
		member->unreachable_ms = now - *since;
	}
}

/* Test only: PGHA_TEST_CRASH_AFTER_INTENT=PHASE makes pghad kill itself right after
 * recording a failover's entry into PHASE, to prove a restarted pghad finishes it. */
static void crash_after_intent_if_asked(const struct cluster_config *cluster, const struct cluster_state *state)
{
	const char *phase = getenv("PGHA_TEST_CRASH_AFTER_INTENT");

	if (!phase || state->failover.kind == FAILOVER_NONE ||
	    strcmp(phase, failover_phase_names[state->failover.phase]) != 0)
		return;
	log_message(LOG_LEVEL_WARNING, cluster->name, NULL,
		    "PGHA_TEST_CRASH_AFTER_INTENT=%s: killing pghad right after recording the intent", phase);
	raise(SIGKILL);
}

static void watch_primary(struct daemon *daemon, size_t index, const struct cluster_observation *observation)
{
	const struct member_observation *primary = observation_primary(observation);
	pid_t pid = primary ? daemon->platform.ops->watch(&daemon->platform, primary) : 0;

	daemon->turns[index].watched = pid > 0 ? pid : 0;
}

/* The primaries' postmasters the loop watches: one per cluster, from its last turn. */
static void collect_watched(struct daemon *daemon)
{
	daemon->watched = xreallocarray(daemon->watched, daemon->observed_clusters + 1, sizeof *daemon->watched);
	daemon->watched_count = 0;
	for (size_t i = 0; i < daemon->observed_clusters; i++)
		if (daemon->turns[i].watched)
			daemon->watched[daemon->watched_count++] = daemon->turns[i].watched;
}

/* A failover ended between before and after: counted for metrics and kept in history. It
 * completed when the member it chose is the primary now. */
static void count_failover_end(struct daemon *daemon, const struct cluster_config *cluster,
			       struct cluster_runtime *runtime, const struct cluster_state *before,
			       const struct cluster_state *after, long long now_ms)
{
	const struct failover_intent *ended = &before->failover;
	if (ended->kind == FAILOVER_NONE || after->failover.kind != FAILOVER_NONE || ended->kind > FAILOVER_MANUAL)
		return;
	bool completed = ended->to >= 0 && after->primary == ended->to;
	enum metrics_outcome outcome = completed ? METRICS_COMPLETED : METRICS_ABANDONED;
	char member[NAMES_BUFFER_SIZE];
	names_member(member, sizeof member, cluster->name, completed ? ended->to : ended->from);
	runtime->failovers[ended->kind][outcome]++;
	runtime->last_kind = ended->kind;
	runtime->last_outcome = outcome;
	runtime->last_duration_ms = ended->started_ms > 0 ? now_ms - ended->started_ms : 0;
	record_event(daemon, cluster->name, member,
		     ended->kind == FAILOVER_AUTOMATIC ? "failover"
		     : ended->kind == FAILOVER_SWITCHOVER ? "switchover"
							 : "manual failover",
		     metrics_outcome_names[outcome], runtime->last_duration_ms, after->last);
}

/* Whether pgha does something long to a member of the observation. */
static bool any_busy(const struct cluster_observation *observation)
{
	for (size_t m = 0; m < observation->count; m++)
		if (observation->members[m].busy)
			return true;
	return false;
}

/* One cluster: decide, record the intent, act. Returns whether to hurry; at_rest tells
 * whether nothing was done, waited for or under way (struct cluster_turn). */
static bool reconcile(struct daemon *daemon, size_t index, bool *at_rest)
{
	const struct cluster_config *cluster = &daemon->config->clusters[index];
	struct cluster_observation *observation = &daemon->observations[index];
	struct cluster_runtime *runtime = runtime_for(daemon, cluster->name);
	struct action_list actions = {0};
	struct failover_request *request = runtime->request.kind != FAILOVER_NONE ? &runtime->request : NULL;
	struct cluster_state state;

	actor_settle(daemon->actor, cluster, observation);
	track_unreachable(runtime, observation, observation_clock_ms());
	enum platform_hold hold = load_state(daemon, cluster, runtime, &state);
	if (hold != PLATFORM_HOLD_ACTS) {
		snprintf(daemon->waiting[index], sizeof daemon->waiting[index], "%s%.1000s",
			 hold == PLATFORM_HOLD_ELSEWHERE ? "not acting: " : "", runtime->state_error);
		/* when another pghad acts on the cluster, this one only watches */
		if (hold == PLATFORM_HOLD_UNREADABLE)
			actor_run(daemon->actor, cluster, observation, &actions);
		return false;
	}
	decide(cluster, observation, &state, request, &actions);
	if (request) {
		if (actions.request_error[0]) {
			snprintf(runtime->request_error, sizeof runtime->request_error, "%s", actions.request_error);
			log_message(LOG_LEVEL_WARNING, cluster->name, NULL, "%s refused: %s",
				    failover_kind_names[request->kind], actions.request_error);
		} else if (!actions.request_taken) {
			snprintf(runtime->request_error, sizeof runtime->request_error,
				 "not begun: another failover is under way");
		}
		runtime->request.kind = FAILOVER_NONE;
	}
	if (!state_equal(&state, &actions.next_state)) {
		if (actions.next_state.failover.kind != FAILOVER_NONE || state.failover.kind != FAILOVER_NONE)
			log_message(LOG_LEVEL_NOTICE, cluster->name, NULL, "failover: %s", actions.transition);
		if (!save_state(daemon, cluster, &actions.next_state)) {
			action_list_free(&actions);
			actions = (struct action_list){0};
		} else {
			if (strcmp(state.last, actions.next_state.last) != 0)
				log_message(LOG_LEVEL_NOTICE, cluster->name, NULL, "%s", actions.next_state.last);
			count_failover_end(daemon, cluster, runtime, &state, &actions.next_state, observation->now_ms);
			state_keep(&runtime->state, &actions.next_state);
			crash_after_intent_if_asked(cluster, &actions.next_state);
		}
	}
	if (strcmp(actions.waiting, runtime->last_waiting) != 0) {
		if (actions.waiting[0])
			log_message(LOG_LEVEL_INFO, cluster->name, NULL, "waiting: %s", actions.waiting);
		snprintf(runtime->last_waiting, sizeof runtime->last_waiting, "%s", actions.waiting);
	}
	snprintf(daemon->waiting[index], sizeof daemon->waiting[index], "%s", actions.waiting);
	*at_rest = actions.count == 0 && !actions.waiting[0] && !actions.hurry && !request &&
		   runtime->request.kind == FAILOVER_NONE && runtime->state.failover.kind == FAILOVER_NONE &&
		   !any_busy(observation);
	actor_run(daemon->actor, cluster, observation, &actions);
	bool hurry = actions.hurry;
	action_list_free(&actions);
	daemon->platform.ops->publish(&daemon->platform, cluster, observation);
	watch_primary(daemon, index, observation);
	return hurry;
}

/* daemon.metrics_file, rewritten after each iteration; a failure is logged when it changes. */
static void write_metrics_file(struct daemon *daemon)
{
	const char *path = daemon->config->daemon.metrics_file;
	char why[512] = "";

	if (!path || !path[0])
		return;
	json_t *status = status_reply(daemon);
	char *text = metrics_format(status);
	json_decref(status);
	if (!text)
		snprintf(why, sizeof why, "cannot format the metrics");
	else
		metrics_write_file(path, text, why, sizeof why);
	free(text);
	if (strcmp(why, daemon->metrics_error) != 0) {
		if (why[0])
			log_error("metrics: %s", why);
		else
			log_info("metrics: %s written again", path);
	}
	snprintf(daemon->metrics_error, sizeof daemon->metrics_error, "%s", why);
}

/* While a failover is under way or a primary is suspect, a cluster's turns follow each
 * other this closely rather than loop_interval_ms apart. */
#define HURRY_MS 20

static void start_turn(struct daemon *daemon, size_t index);

static int on_hurry(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct cluster_turn *turn = userdata;
	struct daemon *daemon = turn->daemon;

	(void)source;
	(void)usec;
	turn->hurry = sd_event_source_disable_unref(turn->hurry);
	/* the platform's view as fresh as the turn is soon (a Kubernetes list; nothing locally) */
	if (monotonic_ms() - daemon->refreshed_ms >= HURRY_MS) {
		if (!daemon->platform.ops->refresh(&daemon->platform))
			return 0; /* the next tick tries again */
		daemon->refreshed_ms = monotonic_ms();
	}
	start_turn(daemon, turn->index);
	return 0;
}

/* Never backwards (it is a counter): after a reload, it waits for every new view. */
static void update_observed_through(struct daemon *daemon)
{
	uint64_t through = daemon->iterations;
	for (size_t i = 0; i < daemon->observed_clusters; i++)
		if (daemon->turns[i].observed < through)
			through = daemon->turns[i].observed;
	if (through > daemon->observed_through)
		daemon->observed_through = through;
}

/* Whether an operation on a member ended while its cluster was being observed (a clone
 * done during the probes): the observation then predates the operation's outcome, and
 * deciding on it would begin the operation again. */
static bool outdated(const struct daemon *daemon, const struct cluster_config *cluster,
		     const struct cluster_observation *observation)
{
	for (size_t m = 0; m < observation->count; m++)
		if (observation->members[m].busy && !actor_busy(cluster->name, observation->members[m].index, daemon->actor))
			return true;
	return false;
}

/* A cluster's members answered (or timed out): decide and act on it now. */
static void on_observed(struct cluster_observation *observation, void *context)
{
	struct cluster_turn *turn = context;
	struct daemon *daemon = turn->daemon;
	size_t index = turn->index;

	turn->round = NULL;
	if (outdated(daemon, &daemon->config->clusters[index], observation)) {
		log_message(LOG_LEVEL_DEBUG, daemon->config->clusters[index].name, NULL,
			    "an operation ended while the cluster was observed: observing it again");
		start_turn(daemon, index);
		return;
	}
	cluster_observation_free(&daemon->observations[index]);
	daemon->observations[index] = *observation;
	*observation = (struct cluster_observation){0};
	turn->watched = 0;
	turn->observed = turn->stamp;
	if (daemon->platform.ops->turn)
		daemon->platform.ops->turn(&daemon->platform, true);
	bool at_rest = false;
	bool hurry = reconcile(daemon, index, &at_rest);
	turn->at_rest = at_rest && !hurry;
	if (daemon->platform.ops->turn)
		daemon->platform.ops->turn(&daemon->platform, false);
	turn->hurried = hurry;
	collect_watched(daemon);
	update_observed_through(daemon);
	metrics_observe(&daemon->iteration_seconds, (double)(monotonic_ms() - turn->started_ms) / 1000.0);
	if (hurry && daemon->scheduling && !turn->hurry &&
	    sd_event_add_time_relative(daemon->event, &turn->hurry, CLOCK_MONOTONIC, HURRY_MS * 1000ULL, 1000, on_hurry,
				       turn) < 0) {
		turn->hurry = NULL; /* the next tick comes anyway */
		log_message(LOG_LEVEL_WARNING, daemon->config->clusters[index].name, NULL,
			    "cannot arm the cluster's next turn: it waits for the loop's next iteration");
	}
	if (daemon->turned)
		daemon->turned(daemon->wake_data);
}

/* A cluster's turn begins, unless one is under way: it observes its cluster alone. */
static void start_turn(struct daemon *daemon, size_t index)
{
	struct cluster_turn *turn = &daemon->turns[index];
	const struct cluster_config *cluster = &daemon->config->clusters[index];

	if (turn->round)
		return;
	turn->hurry = sd_event_source_disable_unref(turn->hurry);
	turn->started_ms = monotonic_ms();
	turn->stamp = daemon->iterations;
	cluster_observation_free(&turn->next);
	turn->next = (struct cluster_observation){0};
	observer_set_wake(daemon->observer, daemon->wake, daemon->wake_data);
	turn->round = observe_cluster_start(daemon->observer, &daemon->platform, cluster, actor_busy, daemon->actor,
					    turn->at_rest, probe_timeout_ms(cluster), &turn->next, on_observed, turn);
}

/* Refreshes the platform's view and begins every cluster's turn; false when the platform
 * cannot be seen now. */
static bool begin_turns(struct daemon *daemon)
{
	daemon->iterations++;
	log_debug("loop iteration %llu", (unsigned long long)daemon->iterations);
	/* what the last turns freed goes back to the system first: a new probe connection's
	 * libpq buffers (32 KiB, of which a probe writes a few hundred bytes) then land on
	 * pages resident only where they are written, not on pages earlier turns dirtied
	 * (bench/scale: -1 MiB of RSS at 20 clusters, for ~0.06 ms per iteration) */
	memory_release_free();
	if (!daemon->actor)
		return false;
	actor_tidy(daemon->actor);
	prepare_turns(daemon);
	if (!daemon->platform.ops->refresh(&daemon->platform)) {
		/* nothing can be seen now: nothing is shown as if it were */
		forget_observations(daemon);
		daemon->observed_through = daemon->iterations;
		return false;
	}
	if (daemon->config->cluster_count == 0)
		daemon->observed_through = daemon->iterations;
	daemon->refreshed_ms = monotonic_ms();
	observer_prune(daemon->observer, daemon->config);
	for (size_t i = 0; i < daemon->config->cluster_count; i++)
		start_turn(daemon, i);
	return true;
}

void daemon_tick(struct daemon *daemon)
{
	daemon->scheduling = true;
	if (begin_turns(daemon))
		daemon->platform.ops->finish(&daemon->platform, daemon->config);
	write_metrics_file(daemon);
}

bool daemon_iterate(struct daemon *daemon)
{
	bool hurry = false;

	daemon->scheduling = false;
	if (!begin_turns(daemon))
		return false;
	for (;;) {
		bool under_way = false;
		for (size_t i = 0; i < daemon->observed_clusters; i++)
			under_way |= daemon->turns[i].round != NULL;
		if (!under_way || sd_event_run(daemon->event, UINT64_MAX) < 0)
			break;
	}
	for (size_t i = 0; i < daemon->observed_clusters; i++)
		hurry |= daemon->turns[i].hurried;
	daemon->platform.ops->finish(&daemon->platform, daemon->config);
	write_metrics_file(daemon);
	return hurry;
}

void daemon_stop(struct daemon *daemon)
{
	forget_observations(daemon);
	observer_free(daemon->observer);
	actor_free(daemon->actor);
	if (daemon->platform.ops)
		daemon->platform.ops->close(&daemon->platform);
	config_free(daemon->config);
	free(daemon->config_path);
	diag_free(&daemon->reload_errors);
	history_close(&daemon->history);
	for (size_t i = 0; i < daemon->runtime_count; i++)
		kept_state_free(&daemon->runtimes[i].state);
	free(daemon->runtimes);
	free(daemon->watched);
	*daemon = (struct daemon){0};
}

/* How the primary lists member in pg_stat_replication; NULL: it does not. */
static const struct replication_peer *peer_of(const struct member_observation *primary,
					      const struct member_observation *member)
{
	for (size_t i = 0; primary && i < primary->peer_count; i++)
		if (strcmp(primary->peers[i].application_name, member->name) == 0)
			return &primary->peers[i];
	return NULL;
}

/* A standby that says it streams, but that its primary lists as not answering for
 * longer than the cluster allows (cut off, or its walreceiver stuck): not streaming. */
static bool stalled(const struct cluster_config *cluster, const struct member_observation *primary,
		    const struct member_observation *member)
{
	const struct replication_peer *peer = peer_of(primary, member);
	return peer && strcmp(peer->state, "streaming") == 0 &&
	       !observation_peer_streaming(peer, config_standby_reply_bound_ms(cluster));
}

void daemon_status_line(const struct daemon *daemon, char *buffer, size_t size)
{
	/* the first error of a rejected reload, first so that no truncation hides it; then per
	 * cluster: its primary, its standbys streaming and synchronous, what pgha works on, a
	 * member that runs but does not answer, and what the cluster waits for */
	const struct pgha_config *config = daemon->config;
	char *text = NULL;
	size_t text_length = 0;
	FILE *line = open_memstream(&text, &text_length);

	if (!line) {
		snprintf(buffer, size, "%zu cluster%s", config->cluster_count, config->cluster_count == 1 ? "" : "s");
		return;
	}
	if (daemon->reload_errors.count)
		fprintf(line, "config rejected: %s; ", daemon->reload_errors.messages[0]);
	if (config->cluster_count == 0)
		fputs("no clusters", line);
	for (size_t i = 0; i < config->cluster_count; i++) {
		const struct cluster_config *cluster = &config->clusters[i];
		const struct cluster_observation *observation =
			i < daemon->observed_clusters && daemon->observations[i].count ? &daemon->observations[i] : NULL;
		char expected[NAMES_BUFFER_SIZE];

		fprintf(line, "%s%s: ", i == 0 ? "" : "; ", cluster->name);
		/* the observation is of the configuration that was in force when it was made */
		if (observation) {
			names_member(expected, sizeof expected, cluster->name, observation->members[0].index);
			if (strcmp(expected, observation->members[0].name) != 0)
				observation = NULL;
		}
		if (!observation) {
			fputs("not observed yet", line);
			continue;
		}
		const struct member_observation *primary = observation_primary(observation);
		const struct member_observation *failing = NULL;
		int streaming = 0, synchronous = 0, busy = 0;
		for (size_t m = 0; m < observation->count; m++) {
			const struct member_observation *member = &observation->members[m];
			if (member->index >= cluster->replicas)
				continue;
			streaming += member->reachable && member->in_recovery && member->streaming &&
				     !stalled(cluster, primary, member);
			if (!failing && member->postmaster && !member->reachable && !member->busy)
				failing = member;
		}
		for (size_t p = 0; primary && p < primary->peer_count; p++)
			synchronous += strcmp(primary->peers[p].sync_state, "sync") == 0 ||
				       strcmp(primary->peers[p].sync_state, "quorum") == 0;
		if (primary)
			fprintf(line, "primary %s", primary->name);
		else
			fputs("no primary", line);
		if (cluster->replicas > 1)
			fprintf(line, ", %d/%d standbys streaming", streaming, cluster->replicas - 1);
		if (primary && cluster->replicas > 1) {
			if (cluster->synchronous.method == SYNC_METHOD_OFF)
				fputs(", asynchronous", line);
			else
				fprintf(line, ", %d synchronous (%s %d)", synchronous,
					sync_method_names[cluster->synchronous.method], cluster->synchronous.number);
		}
		for (size_t m = 0; m < observation->count; m++)
			if (observation->members[m].busy)
				fprintf(line, "%s%s", busy++ == 0 ? ", working on " : " ", observation->members[m].name);
		if (failing)
			fprintf(line, ", %s: %s", failing->name, failing->error);
		if (daemon->waiting && daemon->waiting[i][0])
			fprintf(line, ", %s", daemon->waiting[i]);
	}
	fclose(line);
	snprintf(buffer, size, "%s", text ? text : "");
	free(text);
}

static json_t *error_array(const struct diag_list *errors)
{
	json_t *array = json_array();
	for (size_t i = 0; i < errors->count; i++)
		json_array_append_new(array, jsonpack_text(errors->messages[i]));
	return array;
}

/* The reply to a request that is refused, with why: printf's format, checked by the
 * compiler; the text is whole (never cut) and always encodes, whatever it quotes. */
static json_t *refuse(const char *format, ...) __attribute__((format(printf, 1, 2)));
static json_t *refuse(const char *format, ...)
{
	va_list arguments;
	va_start(arguments, format);
	char *text = xvasprintf(format, arguments);
	va_end(arguments);
	json_t *reply = jsonpack("{s:b, s:o}", "ok", false, "error", jsonpack_text(text));
	free(text);
	return reply;
}

/* A string field of a request: true with *value, NULL when the field is absent or null;
 * false (the reply in *refusal) when it holds something else. */
static bool request_string(const json_t *request, const char *key, const char **value, json_t **refusal)
{
	const json_t *field = json_object_get(request, key);
	*value = json_string_value(field);
	if (!field || json_is_null(field) || *value)
		return true;
	*refusal = refuse("\"%s\" must be a string", key);
	return false;
}

/* A boolean field of a request: false when absent or null. */
static bool request_boolean(const json_t *request, const char *key, bool *value, json_t **refusal)
{
	const json_t *field = json_object_get(request, key);
	*value = json_is_true(field);
	if (!field || json_is_null(field) || json_is_boolean(field))
		return true;
	*refusal = refuse("\"%s\" must be true or false", key);
	return false;
}

/* The timeline a member is on, as an operator means it: a standby's, the one it receives
 * (pg_control's is its last restartpoint's, which lags behind a promotion upstream); a
 * primary's, that of the WAL it writes (pg_control's waits for the first checkpoint). */
static uint32_t shown_timeline(const struct member_observation *member)
{
	if (member->reachable && member->in_recovery && member->received_timeline)
		return member->received_timeline;
	if (member->reachable && member->wal_timeline)
		return member->wal_timeline;
	return member->timeline;
}

/* The clone of member that primary sends, or NULL. */
static const struct clone_progress *clone_of(const struct member_observation *primary,
					     const struct member_observation *member)
{
	char application[NAMES_BUFFER_SIZE + 16];
	names_clone_application(application, sizeof application, member->name);
	for (size_t i = 0; primary && i < primary->clone_count; i++)
		if (strcmp(primary->clones[i].application_name, application) == 0)
			return &primary->clones[i];
	return NULL;
}

static json_t *member_status(const struct daemon *daemon, const struct cluster_config *cluster,
			     const struct cluster_observation *observation, const struct member_observation *member)
{
	const struct member_observation *primary = observation_primary(observation);
	const char *role = !member->reachable ? "unknown" : member->in_recovery ? "replica" : "primary";
	const char *state = member->busy ? "busy"
			    : member->reachable ? (!member->in_recovery ? "running"
						   : !member->streaming ? "recovering"
						   : stalled(cluster, primary, member) ? "not answering its primary"
										     : "streaming")
			    : member->postmaster ? "unreachable"
			    : member->data_exists ? "stopped" : "no data";
	const char *sync_state = "";
	json_t *lag = json_null(), *replay_lag = json_null(), *clone = json_null(), *reply_age = json_null();
	/* a standby of a cluster at rest shows its last probe, from up to a few seconds before */
	json_t *probe_age = member->reachable && member->probed_ms > 0
				    ? json_integer((json_int_t)(observation->now_ms > member->probed_ms
									? observation->now_ms - member->probed_ms
									: 0))
				    : json_null();
	const struct replication_peer *peer = peer_of(primary, member);

	if (peer) {
		sync_state = peer->sync_state;
		if (peer->replay_lag_seconds >= 0)
			replay_lag = json_real(peer->replay_lag_seconds);
		/* how long before the probe it last answered its primary */
		if (peer->reply_age_ms >= 0)
			reply_age = json_integer((json_int_t)peer->reply_age_ms);
	}
	if (primary && member->reachable && member->in_recovery)
		lag = json_integer(primary->lsn > member->lsn ? (json_int_t)(primary->lsn - member->lsn) : 0);
	const struct clone_progress *progress = clone_of(primary, member);
	if (progress)
		clone = jsonpack("{s:s, s:o, s:I, s:o}", "phase", progress->phase, "total_bytes",
				 progress->total_bytes >= 0 ? json_integer((json_int_t)progress->total_bytes) : json_null(),
				 "streamed_bytes", (json_int_t)progress->streamed_bytes, "percent",
				 progress->total_bytes > 0
					 ? json_real(100.0 * (double)progress->streamed_bytes / (double)progress->total_bytes)
					 : json_null());
	long long event_ms = 0;
	bool event_failed = false;
	const char *event =
		daemon->actor ? actor_member_event(daemon->actor, cluster->name, member->index, &event_ms, &event_failed) : "";
	/* errors and events quote programs and servers: whatever their bytes, they encode */
	/* how often its probe also has its postmaster serve a new connection (0: each time) */
	json_t *postmaster_check = member->postmaster && !member->postmaster_exited
					   ? json_integer(observe_postmaster_check_ms(member))
					   : json_null();
	return jsonpack("{s:s, s:i, s:s, s:s, s:b, s:o, s:o, s:I, s:o, s:o, s:o, s:s, s:b, s:o, s:o, s:I, s:b, s:o}",
			"name", member->name, "port",
			daemon->platform.ops->member_port(&daemon->platform, cluster, member->index), "role", role, "state",
			state, "reachable", member->reachable, "probe_age_ms", probe_age, "postmaster_check_ms",
			postmaster_check, "timeline",
			(json_int_t)shown_timeline(member), "lag_bytes", lag, "replay_lag_seconds", replay_lag, "reply_age_ms",
			reply_age, "sync_state", sync_state, "configured", member->index < cluster->replicas, "error",
			jsonpack_text(member->reachable ? "" : member->error),
			"last_event", jsonpack_text(event), "last_event_ms", (json_int_t)event_ms, "last_event_failed",
			event_failed, "clone", clone);
}

static json_t *cluster_status(const struct daemon *daemon, size_t index)
{
	const struct cluster_config *cluster = &daemon->config->clusters[index];
	json_t *members = json_array();
	const char *synchronous = "", *waiting = "";

	/* the observation is of the configuration that was in force when it was made */
	for (size_t i = 0; i < daemon->observed_clusters; i++) {
		const struct cluster_observation *observation = &daemon->observations[i];
		if (i != index || !observation->count)
			continue;
		char expected[NAMES_BUFFER_SIZE];
		names_member(expected, sizeof expected, cluster->name, observation->members[0].index);
		if (strcmp(expected, observation->members[0].name) != 0)
			continue;
		const struct member_observation *primary = observation_primary(observation);
		synchronous = primary ? observation_text(primary->synchronous_standby_names) : "";
		waiting = daemon->waiting[i];
		for (size_t m = 0; m < observation->count; m++)
			json_array_append_new(members, member_status(daemon, cluster, observation, &observation->members[m]));
	}
	const struct cluster_runtime *runtime = NULL;
	for (size_t i = 0; i < daemon->runtime_count; i++)
		if (strcmp(daemon->runtimes[i].name, cluster->name) == 0)
			runtime = &daemon->runtimes[i];
	const struct kept_state *state = runtime ? &runtime->state : NULL;
	json_t *under_way = json_null();
	if (state && state->failover.kind != FAILOVER_NONE) {
		char from[NAMES_BUFFER_SIZE], to[NAMES_BUFFER_SIZE] = "";
		names_member(from, sizeof from, cluster->name, state->failover.from);
		if (state->failover.to >= 0)
			names_member(to, sizeof to, cluster->name, state->failover.to);
		under_way = jsonpack("{s:s, s:s, s:s, s:s, s:o, s:I}", "kind", failover_kind_names[state->failover.kind],
				     "phase", failover_phase_names[state->failover.phase], "from", from, "to", to, "reason",
				     jsonpack_text(state->failover.reason), "started_ms", (json_int_t)state->failover.started_ms);
	}
	json_t *counts = json_object(), *last_ended = json_null();
	for (enum failover_kind kind = FAILOVER_AUTOMATIC; kind <= FAILOVER_MANUAL; kind++) {
		json_t *by_outcome = json_object();
		for (int outcome = 0; outcome < METRICS_OUTCOMES; outcome++)
			json_object_set_new(by_outcome, metrics_outcome_names[outcome],
					    json_integer(runtime ? (json_int_t)runtime->failovers[kind][outcome] : 0));
		json_object_set_new(counts, failover_kind_names[kind], by_outcome);
	}
	if (runtime && runtime->last_kind != FAILOVER_NONE)
		last_ended = jsonpack("{s:s, s:s, s:I}", "kind", failover_kind_names[runtime->last_kind], "outcome",
				      metrics_outcome_names[runtime->last_outcome], "duration_ms",
				      (json_int_t)runtime->last_duration_ms);
	char primary_name[NAMES_BUFFER_SIZE] = "";
	if (state && state->primary >= 0)
		names_member(primary_name, sizeof primary_name, cluster->name, state->primary);
	json_t *reply = jsonpack("{s:s, s:i, s:i, s:{s:s, s:i, s:b}, s:{s:b, s:i, s:b, s:o, s:o, s:o, s:b}, s:o, s:o, s:s, "
				 "s:o, s:o}",
				 "name", cluster->name, "replicas", cluster->replicas, "port", cluster->port, "synchronous",
				 "method", sync_method_names[cluster->synchronous.method], "number", cluster->synchronous.number,
				 "required", cluster->synchronous.required, "failover", "automatic", cluster->failover.automatic,
				 "timeout_ms", cluster->failover.timeout_ms, "paused", state && state->paused, "under_way",
				 under_way, "last", jsonpack_text(state ? state->last : ""), "request_error",
				 jsonpack_text(runtime ? runtime->request_error : ""), "request_pending",
				 runtime && runtime->request.kind != FAILOVER_NONE, "synchronous_standby_names",
				 jsonpack_text(synchronous), "published_synchronous_standby_names",
				 jsonpack_text(state && state->synchronous ? state->synchronous : ""), "known_primary",
				 primary_name, "waiting",
				 jsonpack_text(waiting), "members", members);
	json_t *failover = json_object_get(reply, "failover");
	json_object_set_new(failover, "counts", counts);
	json_object_set_new(failover, "last_ended", last_ended);
	daemon->platform.ops->cluster_status(&daemon->platform, cluster, reply);
	return reply;
}

static json_t *status_reply(const struct daemon *daemon)
{
	json_t *clusters = json_array();

	for (size_t i = 0; i < daemon->config->cluster_count; i++)
		json_array_append_new(clusters, cluster_status(daemon, i));
	json_t *reply = jsonpack("{s:b, s:s, s:I, s:o, s:s, s:I, s:o, s:o}", "ok", true, "version", PACKAGE_VERSION, "pid",
				 (json_int_t)getpid(), "config", jsonpack_text(daemon->config_path), "platform",
				 platform_type_names[daemon->config->platform.type], "iterations",
				 (json_int_t)daemon->observed_through, "reload_errors", error_array(&daemon->reload_errors),
				 "clusters", clusters);
	json_object_set_new(reply, "loop",
			    jsonpack("{s:o}", "iteration_seconds", metrics_histogram_json(&daemon->iteration_seconds)));
	json_object_set_new(reply, "reloads",
			    jsonpack("{s:I, s:I}", "accepted", (json_int_t)daemon->reloads_accepted, "refused",
				     (json_int_t)daemon->reloads_refused));
	json_object_set_new(reply, "now_ms", json_integer((json_int_t)observation_clock_ms()));
	json_object_set_new(reply, "iterations_begun", json_integer((json_int_t)daemon->iterations));
	if (daemon->actor)
		json_object_set_new(reply, "data_jobs", actor_data_jobs(daemon->actor));
	json_object_set_new(reply, "history_error", jsonpack_text(daemon->history.error));
	daemon->platform.ops->status(&daemon->platform, reply);
	return reply;
}

/* Deleting data is the one thing pgha never does by itself: only this, asked for with
 * the cluster's name repeated as confirmation. */
static json_t *purge(struct daemon *daemon, const json_t *request)
{
	const char *cluster, *confirm;
	json_t *refusal;
	char why[512];

	if (!request_string(request, "cluster", &cluster, &refusal) || !request_string(request, "confirm", &confirm, &refusal))
		return refusal;
	if (!cluster || !confirm || strcmp(cluster, confirm) != 0)
		return refuse("purge deletes a cluster's data: it needs the cluster's name repeated as confirmation");
	if (!names_is_dns_label(cluster))
		return refuse("no cluster can be named \"%s\"", cluster);
	if (!daemon->platform.ops->purge(&daemon->platform, cluster, why, sizeof why)) {
		log_message(LOG_LEVEL_WARNING, cluster, NULL, "purge refused: %s", why);
		return refuse("%s", why);
	}
	log_message(LOG_LEVEL_WARNING, cluster, NULL, "purged cluster %s at the operator's request: its data and "
		    "state are deleted", cluster);
	return jsonpack("{s:b}", "ok", true);
}

/* What a reload to a file would do, without doing any of it. The file must be a
 * regular file: a FIFO or a device would stall the loop, which also fails members over. */
static json_t *plan(struct daemon *daemon, const json_t *request)
{
	const char *path;
	json_t *refusal;
	struct diag_list errors = {0}, lines = {0};
	struct stat status;

	if (!request_string(request, "file", &path, &refusal))
		return refusal;
	if (!path)
		path = daemon->config_path;
	if (path[0] != '/')
		return refuse("plan needs the file's absolute path, not %s", path);
	if (stat(path, &status) == 0 && !S_ISREG(status.st_mode))
		return refuse("%s is not a regular file", path);
	struct pgha_config *next = config_load_file_partial(path, &errors);
	if (next) {
		config_check_reload(daemon->config, next, &errors);
		plan_reload(daemon, next, &lines);
	}
	json_t *reply = jsonpack("{s:b, s:o, s:b, s:o, s:o}", "ok", true, "file", jsonpack_text(path), "valid",
				 errors.count == 0, "errors", error_array(&errors), "plan", error_array(&lines));
	config_free(next);
	diag_free(&errors);
	diag_free(&lines);
	return reply;
}

static const struct cluster_config *configured_cluster(const struct daemon *daemon, const char *name)
{
	for (size_t i = 0; name && i < daemon->config->cluster_count; i++)
		if (strcmp(daemon->config->clusters[i].name, name) == 0)
			return &daemon->config->clusters[i];
	return NULL;
}

/* The index of the configured member named "CLUSTER-N" (N < replicas), or -1. */
static int member_index(const struct cluster_config *cluster, const char *name)
{
	char expected[NAMES_BUFFER_SIZE];
	for (int i = 0; name && i < cluster->replicas; i++) {
		names_member(expected, sizeof expected, cluster->name, i);
		if (strcmp(expected, name) == 0)
			return i;
	}
	return -1;
}

/* "test-0, test-1 and test-2": the members of a cluster, for messages; a new string. */
static char *member_list(const struct cluster_config *cluster)
{
	char *text = NULL;
	size_t length = 0;
	FILE *list = open_memstream(&text, &length);
	char name[NAMES_BUFFER_SIZE];

	if (!list)
		return xstrdup(cluster->name);
	for (int i = 0; i < cluster->replicas; i++) {
		names_member(name, sizeof name, cluster->name, i);
		fprintf(list, "%s%s", i == 0 ? "" : i == cluster->replicas - 1 ? " and " : ", ", name);
	}
	fclose(list);
	return text;
}

/* pghactl switchover / failover: checked now against the last observation, so that the
 * operator hears a refusal at once; begun by the next iteration, which checks again. */
static json_t *request_failover(struct daemon *daemon, const json_t *request, enum failover_kind kind)
{
	const char *name, *to;
	json_t *refusal;
	struct failover_request wanted = {.kind = kind, .to = -1};

	if (!request_string(request, "cluster", &name, &refusal) || !request_string(request, "to", &to, &refusal) ||
	    !request_boolean(request, "force", &wanted.force, &refusal))
		return refusal;
	if (!name)
		return refuse("%s needs the cluster's name", kind == FAILOVER_SWITCHOVER ? "switchover" : "failover");
	const struct cluster_config *cluster = configured_cluster(daemon, name);
	if (!cluster)
		return refuse("no cluster named %s", name);
	if (to && (wanted.to = member_index(cluster, to)) < 0) {
		char *members = member_list(cluster);
		refusal = refuse("%s is not a member of %s (its members are %s)", to, cluster->name, members);
		free(members);
		return refusal;
	}
	if (kind == FAILOVER_MANUAL && wanted.to < 0)
		return refuse("failover needs the member to promote (--to MEMBER)");

	struct cluster_runtime *runtime = runtime_for(daemon, cluster->name);
	struct cluster_state state;
	if (load_state(daemon, cluster, runtime, &state) != PLATFORM_HOLD_ACTS)
		return refuse("%s", runtime->state_error);
	if (state.failover.kind != FAILOVER_NONE)
		return refuse("a failover is under way: %s", state.failover.reason);
	if (runtime->request.kind != FAILOVER_NONE)
		return refuse("another request is pending");
	for (size_t i = 0; i < daemon->observed_clusters; i++) {
		if (&daemon->config->clusters[i] != cluster)
			continue;
		struct failover_step step;
		failover_step(cluster, &daemon->observations[i], &state, &wanted, &step);
		if (step.request_error[0])
			return refuse("%s", step.request_error);
	}
	runtime->request = wanted;
	runtime->request_error[0] = '\0';
	if (daemon->wake)
		daemon->wake(daemon->wake_data);
	log_message(LOG_LEVEL_NOTICE, cluster->name, NULL, "%s%s%s%s requested on the control socket",
		    failover_kind_names[kind], to ? " to " : "", to ? to : "", wanted.force ? " (forced)" : "");
	return jsonpack("{s:b}", "ok", true);
}

/* pghactl pause / resume [CLUSTER]: recorded in the state file, so it survives restarts. */
static json_t *set_paused(struct daemon *daemon, const json_t *request, bool paused)
{
	const char *name;
	json_t *refusal;

	if (!request_string(request, "cluster", &name, &refusal))
		return refusal;
	if (name && !configured_cluster(daemon, name))
		return refuse("no cluster named %s", name);
	json_t *done = json_array();
	for (size_t i = 0; i < daemon->config->cluster_count; i++) {
		const struct cluster_config *cluster = &daemon->config->clusters[i];
		struct cluster_runtime *runtime = runtime_for(daemon, cluster->name);
		if (name && strcmp(name, cluster->name) != 0)
			continue;
		struct cluster_state next;
		if (load_state(daemon, cluster, runtime, &next) != PLATFORM_HOLD_ACTS) {
			json_decref(done);
			return refuse("%s", runtime->state_error);
		}
		next.paused = paused;
		if (!save_state(daemon, cluster, &next)) {
			json_decref(done);
			return refuse("cannot record the pause of %s", cluster->name);
		}
		state_keep(&runtime->state, &next);
		json_array_append_new(done, json_string(cluster->name));
		log_message(LOG_LEVEL_NOTICE, cluster->name, NULL, "automatic failover %s by the operator",
			    paused ? "paused" : "resumed");
	}
	return jsonpack("{s:b, s:o}", "ok", true, "clusters", done);
}

/* pghactl metrics: the text node_exporter's textfile collector would read. */
static json_t *metrics_reply(const struct daemon *daemon)
{
	json_t *status = status_reply(daemon);
	char *text = metrics_format(status);
	json_decref(status);
	if (!text)
		return refuse("cannot format the metrics");
	json_t *reply = jsonpack("{s:b, s:o}", "ok", true, "text", jsonpack_text(text));
	free(text);
	return reply;
}

/* pghactl history [CLUSTER]: a cluster removed from the configuration still has one. */
static json_t *history_reply(const struct daemon *daemon, const json_t *request)
{
	const char *cluster;
	json_t *refusal;

	if (!request_string(request, "cluster", &cluster, &refusal))
		return refusal;
	return jsonpack("{s:b, s:o, s:I, s:o}", "ok", true, "entries", history_json(&daemon->history, cluster), "now_ms",
			(json_int_t)observation_clock_ms(), "error", jsonpack_text(daemon->history.error));
}

json_t *daemon_control(const json_t *request, void *userdata)
{
	struct daemon *daemon = userdata;
	const char *command;
	json_t *refusal;

	if (!request_string(request, "command", &command, &refusal))
		return refusal;
	if (!command)
		return refuse("the request has no \"command\"");
	if (strcmp(command, "status") == 0)
		return status_reply(daemon);
	if (strcmp(command, "metrics") == 0)
		return metrics_reply(daemon);
	if (strcmp(command, "history") == 0)
		return history_reply(daemon, request);
	if (strcmp(command, "reload") == 0) {
		log_info("reload requested on the control socket");
		bool applied = daemon_reload(daemon);
		return jsonpack("{s:b, s:o}", "ok", applied, "errors", error_array(&daemon->reload_errors));
	}
	if (strcmp(command, "purge") == 0)
		return purge(daemon, request);
	if (strcmp(command, "plan") == 0)
		return plan(daemon, request);
	if (strcmp(command, "switchover") == 0)
		return request_failover(daemon, request, FAILOVER_SWITCHOVER);
	if (strcmp(command, "failover") == 0)
		return request_failover(daemon, request, FAILOVER_MANUAL);
	if (strcmp(command, "pause") == 0 || strcmp(command, "resume") == 0)
		return set_paused(daemon, request, strcmp(command, "pause") == 0);
	return refuse("unknown command: %s", command);
}
