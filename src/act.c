/* act: carries out decide's actions through the platform, logs each, and tracks long operations (initdb, clone, start, stop, promote, rewind) so the loop never waits for them. */
#include "autoconfig.h"

#include "act.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datadir.h"
#include "history.h"
#include "jsonpack.h"
#include "log.h"
#include "memory.h"
#include "names.h"
#include "pg.h"
#include "testhook.h"

/* A started postmaster must answer, a stopped one exit, within this. */
#define SETTLE_TIMEOUT_MS (120 * 1000)
/* Short statements pgha sends (create a role or a slot, reload). */
#define STATEMENT_TIMEOUT_MS 5000

const char *const operation_names[] = {"initialize", "clone", "start", "stop", "restart", "promote", "rejoin"};
_Static_assert(sizeof operation_names / sizeof operation_names[0] == OPERATION_KIND_COUNT, "a name for every kind");

/* The last event of a member, for status. */
struct member_event {
	char cluster[NAMES_BUFFER_SIZE];
	int index;
	char *text;      /* owned; of its own length: one is kept per member of every cluster */
	long long at_ms; /* wall clock */
	bool failed;     /* an error or a warning */
};

/* A data job (initdb, clone, rejoin with its rewind) waiting for one of
 * daemon.max_data_jobs, in the order they were first asked for. */
struct queued_job {
	char cluster[NAMES_BUFFER_SIZE];
	int index;
	enum action_type type;
	long long queued_ms; /* wall clock, for status */
	long long asked_ms;  /* monotonic: when its cluster's turn last asked for it */
};

struct actor {
	struct queued_job *queue;
	size_t queue_count;
	sd_event *event;
	struct platform *platform;
	struct pgha_config *const *config;
	const struct cluster_observation *observation; /* the one being acted on */
	struct operation **operations;
	size_t operation_count;
	/* operations[0..scanned) holds every active operation (and may hold ended ones);
	 * beyond it all have ended: lookups scan no further. actor_tidy moves the active ones
	 * first, so that a lookup costs the operations under way, not every one there ever was
	 * at once (3,000 after creating 1,000 clusters) */
	size_t scanned;
	struct member_event *events;
	size_t event_count;
	actor_record_fn record; /* NULL: no history kept */
	void *record_context;
};

long long actor_now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static long long wall_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void remember(struct actor *actor, const char *cluster, int index, const char *text, bool failed)
{
	struct member_event *event = NULL;

	for (size_t i = 0; i < actor->event_count && !event; i++)
		if (actor->events[i].index == index && strcmp(actor->events[i].cluster, cluster) == 0)
			event = &actor->events[i];
	if (!event) {
		actor->events = xreallocarray(actor->events, actor->event_count + 1, sizeof *actor->events);
		event = &actor->events[actor->event_count++];
		snprintf(event->cluster, sizeof event->cluster, "%s", cluster);
		event->index = index;
		event->text = NULL;
	}
	free(event->text);
	event->text = xstrdup(text);
	event->at_ms = wall_ms();
	event->failed = failed;
}

/* Logs about a member with the journal's fields, and keeps it for status. */
void actor_report(struct actor *actor, enum log_level level, const char *cluster, int index, const char *format, ...)
{
	char member[NAMES_BUFFER_SIZE], text[1024];
	va_list args;

	va_start(args, format);
	vsnprintf(text, sizeof text, format, args);
	va_end(args);
	names_member(member, sizeof member, cluster, index);
	log_message(level, cluster, member, "%s", text);
	remember(actor, cluster, index, text, level <= LOG_LEVEL_WARNING);
}

struct actor *actor_new(sd_event *event, struct platform *platform, struct pgha_config *const *config)
{
	struct actor *actor = xcalloc(1, sizeof *actor);
	*actor = (struct actor){.event = sd_event_ref(event), .platform = platform, .config = config};
	return actor;
}

void actor_free(struct actor *actor)
{
	if (!actor)
		return;
	for (size_t i = 0; i < actor->operation_count; i++) {
		/* a program still running is left to finish; its outcome is no longer awaited */
		if (actor->operations[i]->job)
			proc_cancel(actor->operations[i]->job);
		free(actor->operations[i]);
	}
	free(actor->operations);
	for (size_t i = 0; i < actor->event_count; i++)
		free(actor->events[i].text);
	free(actor->events);
	free(actor->queue);
	sd_event_unref(actor->event);
	free(actor);
}

static struct operation *find_operation(const struct actor *actor, const char *cluster, int index)
{
	for (size_t i = 0; i < actor->scanned; i++)
		if (actor->operations[i]->active && actor->operations[i]->index == index &&
		    strcmp(actor->operations[i]->cluster, cluster) == 0)
			return actor->operations[i];
	return NULL;
}

void actor_tidy(struct actor *actor)
{
	size_t active = 0;
	/* the active ones keep their order (status lists them); the pointers stay valid */
	for (size_t i = 0; i < actor->scanned; i++)
		if (actor->operations[i]->active) {
			struct operation *operation = actor->operations[i];
			actor->operations[i] = actor->operations[active];
			actor->operations[active++] = operation;
		}
	actor->scanned = active;
}

size_t actor_scanned(const struct actor *actor)
{
	return actor->scanned;
}

bool actor_busy(const char *cluster, int index, void *context)
{
	return find_operation(context, cluster, index) != NULL;
}

const char *actor_last_event(const struct actor *actor, const char *cluster, int index)
{
	long long at_ms;
	bool failed;
	return actor_member_event(actor, cluster, index, &at_ms, &failed);
}

const char *actor_member_event(const struct actor *actor, const char *cluster, int index, long long *at_ms,
			       bool *failed)
{
	*at_ms = 0;
	*failed = false;
	for (size_t i = 0; i < actor->event_count; i++)
		if (actor->events[i].index == index && strcmp(actor->events[i].cluster, cluster) == 0) {
			*at_ms = actor->events[i].at_ms;
			*failed = actor->events[i].failed;
			return actor->events[i].text;
		}
	return "";
}

void actor_set_recorder(struct actor *actor, actor_record_fn record, void *context)
{
	actor->record = record;
	actor->record_context = context;
}

/* An operation ended: one entry of pghad's history. */
static void record_end(struct actor *actor, const struct operation *operation, bool succeeded, const char *text)
{
	if (!actor->record)
		return;
	struct history_entry entry = {.at_ms = wall_ms(), .duration_ms = wall_ms() - operation->started_ms};
	snprintf(entry.cluster, sizeof entry.cluster, "%s", operation->cluster);
	names_member(entry.member, sizeof entry.member, operation->cluster, operation->index);
	snprintf(entry.kind, sizeof entry.kind, "%s",
		 operation->restarting ? "restart" : operation->kind == OPERATION_REJOIN ? "rewind"
										 : operation_names[operation->kind]);
	snprintf(entry.outcome, sizeof entry.outcome, "%s", succeeded ? "completed" : "failed");
	snprintf(entry.reason, sizeof entry.reason, "%s", text);
	actor->record(&entry, actor->record_context);
}

void actor_finish(struct actor *actor, const struct operation *operation, enum log_level level, bool succeeded,
		  const char *format, ...)
{
	char text[1024];
	va_list args;

	va_start(args, format);
	vsnprintf(text, sizeof text, format, args);
	va_end(args);
	actor_report(actor, level, operation->cluster, operation->index, "%s", text);
	record_end(actor, operation, succeeded, text);
}

/* The operation that a stopped member's start or rewind continues keeps its start time. */
static void continued(struct actor *actor, const char *cluster, int index, long long started_ms, bool restarting)
{
	struct operation *next = find_operation(actor, cluster, index);
	if (!next)
		return;
	next->started_ms = started_ms;
	next->restarting = restarting;
}

struct operation *actor_begin(struct actor *actor, const char *cluster, int index, enum operation_kind kind,
			       int source)
{
	struct operation *operation = NULL;

	/* reuse a finished slot: operations are few and short-lived; one beyond the scanned
	 * ones is brought into them */
	for (size_t i = 0; i < actor->scanned && !operation; i++)
		if (!actor->operations[i]->active)
			operation = actor->operations[i];
	if (!operation && actor->scanned == actor->operation_count) {
		actor->operations = xreallocarray(actor->operations, actor->operation_count + 1, sizeof *actor->operations);
		actor->operations[actor->operation_count++] = xcalloc(1, sizeof *operation);
	}
	if (!operation)
		operation = actor->operations[actor->scanned++];
	*operation = (struct operation){.actor = actor, .index = index, .kind = kind, .source = source, .active = true,
					.deadline_ms = actor_now_ms() + SETTLE_TIMEOUT_MS, .started_ms = wall_ms()};
	snprintf(operation->cluster, sizeof operation->cluster, "%s", cluster);
	return operation;
}

sd_event *actor_event(const struct actor *actor)
{
	return actor->event;
}

struct platform *actor_platform(const struct actor *actor)
{
	return actor->platform;
}

const struct cluster_observation *actor_observation(const struct actor *actor)
{
	return actor->observation;
}

const struct cluster_config *actor_cluster(const struct actor *actor, const char *name)
{
	const struct pgha_config *config = *actor->config;
	for (size_t i = 0; i < config->cluster_count; i++)
		if (strcmp(config->clusters[i].name, name) == 0)
			return &config->clusters[i];
	return NULL;
}

/* initdb or pg_basebackup ended. */

/* One statement on a member, bounded, over a connection with the server options
 * options (NULL: none); false (reported) when it fails, unless it fails with the SQLSTATE
 * quiet_state (NULL: none), which is left to the caller. With value, the first value it
 * returns (a new string; NULL when none or null). */
bool actor_statement_with(struct actor *actor, const struct cluster_config *cluster, int index, const char *what,
			       const char *options, const char *quiet_state, const char *sql, int parameter_count,
			       const char *const *parameters, char *(*build_sql)(PGconn *, void *), void *build_context,
			       char **value)
{
	if (value)
		*value = NULL;
	const struct member_observation *member = actor->observation ? observation_member(actor->observation, index) : NULL;
	char why[512];
	struct pg_request request = {
		.sql = sql,
		.parameter_count = parameter_count,
		.parameters = parameters,
		.build_sql = build_sql,
		.build_context = build_context,
	};
	if (!actor->platform->ops->admin_target(actor->platform, cluster, index, member, &request.target, why,
						sizeof why)) {
		actor_report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", what, why);
		return false;
	}
	request.target.options = options;
	actor->platform->ops->execute(actor->platform, &request, 1, STATEMENT_TIMEOUT_MS);
	bool succeeded = request.succeeded;
	const char *state = request.result ? PQresultErrorField(request.result, PG_DIAG_SQLSTATE) : NULL;
	if (succeeded && value && request.result && PQntuples(request.result) > 0 && PQnfields(request.result) > 0 &&
	    !PQgetisnull(request.result, 0, 0))
		*value = xstrdup(PQgetvalue(request.result, 0, 0));
	if (!succeeded && !(quiet_state && state && strcmp(state, quiet_state) == 0))
		actor_report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", what, request.error);
	pg_request_clear(&request);
	free((char *)request.target.host);
	return succeeded;
}

/* One statement on a member, bounded; false (reported) when it fails. */
bool actor_statement(struct actor *actor, const struct cluster_config *cluster, int index, const char *what,
			  const char *sql, int parameter_count, const char *const *parameters,
			  char *(*build_sql)(PGconn *, void *), void *build_context)
{
	return actor_statement_with(actor, cluster, index, what, NULL, NULL, sql, parameter_count, parameters, build_sql,
				  build_context, NULL);
}

/* Settings files were written: the member reads them now. */
void actor_reload(struct actor *actor, const struct cluster_config *cluster, int index)
{
	actor_statement(actor, cluster, index, "reloading", "SELECT pg_catalog.pg_reload_conf()", 0, NULL, NULL, NULL);
}

/* A standby that a failover cuts reloads its settings, and its client sessions end: a
 * query in conflict with replay would hold it back (up to max_standby_streaming_delay,
 * for ever at -1), and with it the reading of the new settings and a promotion. */
struct actor_step actor_reload_ending_sessions_step(void)
{
	return (struct actor_step){
		.what = "reloading and ending the sessions that may hold replay",
		.sql = "SELECT pg_catalog.pg_reload_conf(), (SELECT count(*) FROM (SELECT "
		       "pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE "
		       "backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()) AS ended)",
	};
}

bool actor_reload_ending_sessions(struct actor *actor, const struct cluster_config *cluster, int index)
{
	struct actor_step step = actor_reload_ending_sessions_step();
	return actor_statement(actor, cluster, index, step.what, step.sql, 0, NULL, NULL, NULL);
}

/* CREATE ROLE, or ALTER ROLE of one that exists without LOGIN or REPLICATION. */
struct replication_role {
	const char *command; /* "CREATE" or "ALTER" */
	const char *password;
};

static char *build_replication_role(PGconn *connection, void *context)
{
	const struct replication_role *role = context;
	/* its verifier, never the password: PostgreSQL logs the statement when it fails
	 * (the role exists already, a lock wait cut by statement_timeout) or when
	 * log_statement asks */
	char *literal = pg_password_literal(connection, REPLICATION_ROLE, role->password);
	if (!literal)
		return NULL;
	char *sql = xasprintf("%s ROLE " REPLICATION_ROLE " WITH LOGIN REPLICATION PASSWORD %s", role->command, literal);
	PQfreemem(literal);
	return sql;
}

/* Carries out ACTION_CREATE_REPLICATION_ROLE or ACTION_ALTER_REPLICATION_ROLE with the
 * role's password, which the platform keeps. */
static void set_replication_role(struct actor *actor, const struct cluster_config *cluster,
				 const struct action *action, const char *password)
{
	bool create = action->type == ACTION_CREATE_REPLICATION_ROLE;
	struct replication_role role = {.command = create ? "CREATE" : "ALTER", .password = password};
	actor_statement(actor, cluster, action->member,
		      create ? "creating the replication role" : "giving the replication role LOGIN and REPLICATION",
		      NULL, 0, NULL, build_replication_role, &role);
}

static char *build_alter_system_reset(PGconn *connection, void *context)
{
	char *identifier = PQescapeIdentifier(connection, context, strlen(context));
	if (!identifier)
		return NULL;
	char *sql = xasprintf("ALTER SYSTEM RESET %s", identifier);
	PQfreemem(identifier);
	return sql;
}


/* ALTER SYSTEM takes no parameters: the name and value are quoted for the server. */
static char *build_alter_system(PGconn *connection, void *context)
{
	const struct actor_setting *change = context;
	char *identifier = PQescapeIdentifier(connection, change->name, strlen(change->name));
	char *literal = change->value ? PQescapeLiteral(connection, change->value, strlen(change->value)) : NULL;
	char *sql = NULL;
	if (identifier && (literal || !change->value))
		sql = change->value ? xasprintf("ALTER SYSTEM SET %s = %s", identifier, literal)
				    : xasprintf("ALTER SYSTEM RESET %s", identifier);
	PQfreemem(identifier);
	PQfreemem(literal);
	return sql;
}

bool actor_statements(struct actor *actor, const struct cluster_config *cluster, int index, struct actor_step *steps,
		      size_t count)
{
	const struct member_observation *member = actor->observation ? observation_member(actor->observation, index) : NULL;
	struct pg_target target;
	char why[512];
	bool all = true;

	for (size_t i = 0; i < count; i++)
		steps[i].succeeded = false;
	if (!actor->platform->ops->admin_target(actor->platform, cluster, index, member, &target, why, sizeof why)) {
		for (size_t i = 0; i < count; i++)
			actor_report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", steps[i].what, why);
		return false;
	}
	target.options = NULL;
	/* the steps' connection: kept from one step to the next, made again only after a
	 * step that lost it (timed out, the server went away) */
	struct pg_session session = {.without_postmaster_check = true};
	const char *hung = NULL; /* a step that timed out: the server may be hung */
	for (size_t i = 0; i < count; i++) {
		struct actor_step *step = &steps[i];
		if (step->after_all && !all)
			continue;
		if (hung) {
			/* one wait on a hung server, not one per statement */
			actor_report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: not tried after %s timed out",
				     step->what, hung);
			all = false;
			continue;
		}
		struct pg_request request = {
			.target = target,
			.sql = step->sql,
			.build_sql = step->build_sql,
			.build_context = step->build_context,
			.session = &session,
		};
		actor->platform->ops->execute(actor->platform, &request, 1, STATEMENT_TIMEOUT_MS);
		const char *state = request.result ? PQresultErrorField(request.result, PG_DIAG_SQLSTATE) : NULL;
		if (!request.succeeded && step->retry_state && state && strcmp(state, step->retry_state) == 0) {
			/* this statement alone, on a connection of its own started with its options */
			pg_request_clear(&request);
			request = (struct pg_request){
				.target = target,
				.sql = step->sql,
				.build_sql = step->build_sql,
				.build_context = step->build_context,
			};
			request.target.options = step->retry_options;
			actor->platform->ops->execute(actor->platform, &request, 1, STATEMENT_TIMEOUT_MS);
		}
		step->succeeded = request.succeeded;
		if (!request.succeeded)
			actor_report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", step->what, request.error);
		all &= request.succeeded;
		if (request.timed_out)
			hung = step->what;
		pg_request_clear(&request);
	}
	pg_session_close(&session);
	free((char *)target.host);
	return all;
}

/* PostgreSQL 15's ALTER SYSTEM refuses a name its session does not know
 * (undefined_object), and a custom prefix.name is unknown until its module is loaded;
 * the server keeps one set in its files as a placeholder all the same. A second session
 * that sets the name itself at its start (-c) knows it as such a placeholder, and writes
 * it. A module that is loaded still refuses, at that start, a name it does not define. */
#define SQLSTATE_UNDEFINED_OBJECT "42704"

void actor_setting_init(struct actor_setting *setting, const char *name, const char *value)
{
	*setting = (struct actor_setting){.name = name, .value = value};
	snprintf(setting->what, sizeof setting->what, "ALTER SYSTEM %s %s", value ? "SET" : "RESET", name);
	setting->step = (struct actor_step){
		.what = setting->what,
		.build_sql = build_alter_system,
		.build_context = setting,
	};
	if (value && strchr(name, '.')) {
		pg_server_option(&setting->options, name, value);
		setting->step.retry_state = SQLSTATE_UNDEFINED_OBJECT;
		setting->step.retry_options = setting->options;
	}
}

void actor_setting_clear(struct actor_setting *setting)
{
	free(setting->options);
	setting->options = NULL;
}

bool actor_alter_system(struct actor *actor, const struct cluster_config *cluster, int index, const char *name,
			 const char *value)
{
	struct actor_setting setting;
	actor_setting_init(&setting, name, value);
	bool done = actor_statements(actor, cluster, index, &setting.step, 1);
	actor_setting_clear(&setting);
	return done;
}


static void carry_out(struct actor *actor, const struct cluster_config *cluster,
		      const struct cluster_observation *observation, const struct action *action)
{
	const char *name = cluster->name;
	char why[512] = "", source[NAMES_BUFFER_SIZE] = "";

	if (action->source >= 0)
		names_member(source, sizeof source, name, action->source);
	actor_report(actor, LOG_LEVEL_NOTICE, name, action->member, "%s%s%s: %s", action_type_names[action->type],
		     source[0] ? " " : "", source, action->reason);
	if (actor->platform->ops->act(actor->platform, actor, cluster, observation, action))
		return;
	/* what is plain SQL on every platform */
	switch (action->type) {
	case ACTION_RESET_OVERRIDES: {
		char names[sizeof action->text];
		snprintf(names, sizeof names, "%s", action->text);
		char *rest = NULL;
		/* the resets and the reload on one connection, the reload whatever they did */
		size_t count = 0, commas = 0;
		for (const char *c = names; *c; c++)
			commas += *c == ',';
		struct actor_step *steps = xcalloc(commas + 2, sizeof *steps);
		for (char *setting = strtok_r(names, ",", &rest); setting; setting = strtok_r(NULL, ",", &rest))
			steps[count++] = (struct actor_step){.what = "resetting an ALTER SYSTEM override",
							     .build_sql = build_alter_system_reset,
							     .build_context = setting};
		steps[count++] = (struct actor_step){.what = "reloading", .sql = "SELECT pg_catalog.pg_reload_conf()"};
		actor_statements(actor, cluster, action->member, steps, count);
		free(steps);
		break;
	}
	case ACTION_CREATE_REPLICATION_ROLE:
	case ACTION_ALTER_REPLICATION_ROLE: {
		char password[128];
		if (!actor->platform->ops->replication_password(actor->platform, cluster, password, sizeof password, why,
								 sizeof why))
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		else
			set_replication_role(actor, cluster, action, password);
		explicit_bzero(password, sizeof password);
		break;
	}
	case ACTION_CREATE_SLOT:
	case ACTION_DROP_SLOT: {
		char slot[NAMES_BUFFER_SIZE];
		if (action->type == ACTION_CREATE_SLOT)
			names_slot(slot, sizeof slot, name, action->source);
		else
			snprintf(slot, sizeof slot, "%.*s", (int)sizeof slot - 1, action->text);
		const char *const parameters[] = {slot};
		actor_statement(actor, cluster, action->member, action_type_names[action->type],
				action->type == ACTION_CREATE_SLOT
					? "SELECT pg_catalog.pg_create_physical_replication_slot($1, true)"
					: "SELECT pg_catalog.pg_drop_replication_slot($1)",
				1, parameters, NULL, NULL);
		break;
	}
	case ACTION_PROMOTE:
		if (actor_statement(actor, cluster, action->member, "promoting", "SELECT pg_catalog.pg_promote(false)", 0,
				    NULL, NULL, NULL))
			actor_begin(actor, name, action->member, OPERATION_PROMOTE, -1);
		break;
	default:
		actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "the %s platform cannot %s",
			     actor->platform->ops->name, action_type_names[action->type]);
		break;
	}
}

/* The second half of an operation that stopped its member first: the platform carries
 * it out as the action it stands for, now that nothing of the member runs. */
static void resume(struct actor *actor, const struct cluster_config *cluster,
		   const struct cluster_observation *observation, const struct operation *operation,
		   enum action_type type)
{
	struct action action = {.type = type, .member = operation->index, .source = operation->source};
	actor->platform->ops->act(actor->platform, actor, cluster, observation, &action);
}

/* A start is over once the member answers, a stop once nothing of it runs. */
static void settle(struct actor *actor, const struct cluster_config *cluster,
		   const struct cluster_observation *observation)
{
	const struct platform_ops *ops = actor->platform->ops;

	for (size_t i = 0; i < actor->scanned; i++) {
		struct operation *operation = actor->operations[i];
		if (!operation->active || operation->job || strcmp(operation->cluster, cluster->name) != 0)
			continue;
		const struct member_observation *member = observation_member(observation, operation->index);
		bool gone = member && ops->gone(member);
		if (operation->kind == OPERATION_REJOIN && operation->stopping && gone) {
			/* the diverged standby has stopped: now its rewind */
			operation->active = false;
			long long started_ms = operation->started_ms; /* resume may reuse operation's slot */
			resume(actor, cluster, observation, operation, ACTION_REJOIN);
			continued(actor, cluster->name, operation->index, started_ms, false);
			continue;
		}
		if (operation->kind == OPERATION_RESTART && gone) {
			/* stopped: the second half of a restart is a start */
			operation->active = false;
			long long started_ms = operation->started_ms; /* resume may reuse operation's slot */
			resume(actor, cluster, observation, operation, ACTION_START);
			continued(actor, cluster->name, operation->index, started_ms, true);
			continue;
		}
		/* operations that run no program here wait for their member to answer */
		bool starting = operation->kind == OPERATION_START ||
				(!operation->stopping &&
				 (operation->kind == OPERATION_INITIALIZE || operation->kind == OPERATION_CLONE ||
				  operation->kind == OPERATION_REJOIN));
		bool over = !member || (starting				? member->reachable
					: operation->kind == OPERATION_PROMOTE ? member->reachable && !member->in_recovery
									       : gone);
		char why[512];
		if (!over && ops->failed(actor->platform, operation, member, why, sizeof why)) {
			/* say so now rather than wait for the deadline */
			operation->active = false;
			actor_finish(actor, operation, LOG_LEVEL_ERROR, false, "%s failed: %s",
				     operation_names[operation->kind], why);
		} else if (over) {
			operation->active = false;
			bool reported = ops->over(actor->platform, actor, cluster, operation);
			if (operation->kind == OPERATION_PROMOTE) {
				/* the new timeline reaches pg_control at the first checkpoint, which a
				 * promotion only requests; pg_rewind of the old primary needs it now */
				actor_statement(actor, cluster, operation->index, "the checkpoint after promotion", "CHECKPOINT",
						0, NULL, NULL, NULL);
			}
			if (reported) {
				/* the platform said how it ended (a rewind in a new pod): that goes into the history */
				long long at_ms;
				bool failed;
				const char *said = actor_member_event(actor, cluster->name, operation->index, &at_ms, &failed);
				record_end(actor, operation, !failed, said);
			} else
				actor_finish(actor, operation, LOG_LEVEL_NOTICE, true, "%s",
					     operation->restarting		    ? "restarted"
					     : starting				    ? "started"
					     : operation->kind == OPERATION_PROMOTE ? "promoted: it is the primary"
										    : "stopped");
		} else if (actor_now_ms() > operation->deadline_ms) {
			operation->active = false;
			actor_finish(actor, operation, LOG_LEVEL_WARNING, false, "%s not over after %d s: %s",
				     operation_names[operation->kind], SETTLE_TIMEOUT_MS / 1000,
				     member->error[0] ? member->error : "deciding again");
		}
	}
}

void actor_settle(struct actor *actor, const struct cluster_config *cluster, struct cluster_observation *observation)
{
	actor->observation = observation;
	settle(actor, cluster, observation);
	for (size_t i = 0; i < observation->count; i++)
		observation->members[i].busy = actor_busy(cluster->name, observation->members[i].index, actor);
}

/* What writes a whole data directory, costly in CPU and I/O: bounded across clusters. */
static bool is_data_job(enum action_type type)
{
	return type == ACTION_INITIALIZE || type == ACTION_CLONE || type == ACTION_REJOIN;
}

static bool is_data_operation(const struct operation *operation)
{
	return operation->active && (operation->kind == OPERATION_INITIALIZE || operation->kind == OPERATION_CLONE ||
				     operation->kind == OPERATION_REJOIN);
}

static size_t data_jobs_running(const struct actor *actor)
{
	size_t running = 0;
	for (size_t i = 0; i < actor->scanned; i++)
		running += is_data_operation(actor->operations[i]);
	return running;
}

/* A queued job its cluster no longer asks for (the cluster removed, or its decision
 * changed) gives its place up: turns come every loop_interval_ms, or a hung member's
 * probe deadline (at most 5 s) apart. */
static void prune_queue(struct actor *actor, long long now_ms)
{
	const struct pgha_config *config = *actor->config;
	long long stale_ms = 2LL * config->daemon.loop_interval_ms + 10000;
	size_t kept = 0;

	for (size_t i = 0; i < actor->queue_count; i++) {
		const struct queued_job *job = &actor->queue[i];
		if (!actor_cluster(actor, job->cluster) || now_ms - job->asked_ms > stale_ms)
			continue;
		actor->queue[kept++] = *job;
	}
	actor->queue_count = kept;
}

/* Whether a data job may begin now: fewer than daemon.max_data_jobs run, counting the
 * jobs queued before it. Otherwise it keeps (or takes) its place in the queue, and its
 * cluster's next turn asks again. */
static bool admit(struct actor *actor, const struct cluster_config *cluster, const struct action *action)
{
	long long now = actor_now_ms();
	size_t limit = (size_t)(*actor->config)->daemon.max_data_jobs;
	size_t position = 0;

	prune_queue(actor, now);
	while (position < actor->queue_count && !(actor->queue[position].index == action->member &&
						   strcmp(actor->queue[position].cluster, cluster->name) == 0))
		position++;
	bool queued_before = position < actor->queue_count;
	if (!queued_before) {
		actor->queue = xreallocarray(actor->queue, actor->queue_count + 1, sizeof *actor->queue);
		struct queued_job *job = &actor->queue[actor->queue_count++];
		*job = (struct queued_job){.index = action->member, .queued_ms = wall_ms()};
		snprintf(job->cluster, sizeof job->cluster, "%s", cluster->name);
	}
	actor->queue[position].type = action->type;
	actor->queue[position].asked_ms = now;
	size_t running = data_jobs_running(actor);
	if (running + position < limit) {
		memmove(&actor->queue[position], &actor->queue[position + 1],
			(actor->queue_count - position - 1) * sizeof *actor->queue);
		actor->queue_count--;
		return true;
	}
	if (!queued_before)
		actor_report(actor, LOG_LEVEL_INFO, cluster->name, action->member,
			     "%s queued: %zu data job%s running (daemon.max_data_jobs = %zu), %zu queued before it",
			     action_type_names[action->type], running, running == 1 ? "" : "s", limit, position);
	return false;
}

json_t *actor_data_jobs(const struct actor *actor)
{
	json_t *running = json_array(), *queued = json_array();
	char member[NAMES_BUFFER_SIZE];

	for (size_t i = 0; i < actor->scanned; i++) {
		const struct operation *operation = actor->operations[i];
		if (!is_data_operation(operation))
			continue;
		names_member(member, sizeof member, operation->cluster, operation->index);
		json_array_append_new(running, jsonpack("{s:s, s:s, s:s, s:I}", "cluster", operation->cluster, "member",
							member, "operation", operation_names[operation->kind], "started_ms",
							(json_int_t)operation->started_ms));
	}
	for (size_t i = 0; i < actor->queue_count; i++) {
		const struct queued_job *job = &actor->queue[i];
		names_member(member, sizeof member, job->cluster, job->index);
		json_array_append_new(queued, jsonpack("{s:s, s:s, s:s, s:I}", "cluster", job->cluster, "member", member,
						       "action", action_type_names[job->type], "queued_ms",
						       (json_int_t)job->queued_ms));
	}
	return jsonpack("{s:i, s:o, s:o}", "limit", (*actor->config)->daemon.max_data_jobs, "running", running, "queued",
			queued);
}

void actor_run(struct actor *actor, const struct cluster_config *cluster, const struct cluster_observation *observation,
	       const struct action_list *actions)
{
	actor->observation = observation;
	settle(actor, cluster, observation);
	for (size_t i = 0; i < actions->count; i++) {
		char why[512];
		testhook_stop_before(action_type_names[actions->items[i].type]);
		/* the Lease checked at the moment of each action (a pghad stopped or slowed after
		 * its decision may have lost it meanwhile): the iteration stops at the first refused */
		if (!actor->platform->ops->may_act(actor->platform, cluster, why, sizeof why))
			break;
		if (is_data_job(actions->items[i].type) && !admit(actor, cluster, &actions->items[i]))
			continue;
		carry_out(actor, cluster, observation, &actions->items[i]);
	}
}
