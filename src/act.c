/* act: carries out decide's actions on the local or the kubernetes platform, logs each, and tracks long operations (initdb, clone, start, stop, promote, rewind) so the loop never waits for them. */
#include "autoconfig.h"

#include "act.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "entrypoint.h"
#include "log.h"
#include "memory.h"
#include "platform_k8s.h"
#include "names.h"
#include "pg.h"

/* A started postmaster must answer, a stopped one exit, within this. */
#define SETTLE_TIMEOUT_MS (120 * 1000)
/* A pod cloning or rewinding its data (pg_basebackup, pg_rewind) may take long. */
#define COPY_TIMEOUT_MS (3600 * 1000)
/* Short statements pgha sends (create a role or a slot, reload). */
#define STATEMENT_TIMEOUT_MS 5000

enum operation_kind {
	OPERATION_INITIALIZE,
	OPERATION_CLONE,
	OPERATION_START,
	OPERATION_STOP,
	OPERATION_RESTART,
	OPERATION_PROMOTE,
	OPERATION_REJOIN,
};
static const char *const operation_names[] = {"initialize", "clone", "start", "stop", "restart", "promote", "rejoin"};

struct operation {
	struct actor *actor;
	char cluster[NAMES_BUFFER_SIZE];
	int index;
	int source;
	enum operation_kind kind;
	struct proc_job *job; /* initialize, clone */
	pid_t postmaster;     /* start: the postmaster started */
	long long deadline_ms; /* start, stop */
	bool stopping;        /* rejoin: the member is stopping first; its rewind comes once it is down */
	bool active;
};

/* The last event of a member, for status. */
struct member_event {
	char cluster[NAMES_BUFFER_SIZE];
	int index;
	char text[1024];
};

struct actor {
	sd_event *event;
	const struct local_platform *platform;
	struct kube_platform *kube; /* the kubernetes platform, or NULL for the local one */
	struct pgha_config *const *config;
	const struct cluster_observation *observation; /* the one being acted on */
	struct operation **operations;
	size_t operation_count;
	struct member_event *events;
	size_t event_count;
};

static long long now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void remember(struct actor *actor, const char *cluster, int index, const char *text)
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
	}
	snprintf(event->text, sizeof event->text, "%s", text);
}

/* Logs about a member with the journal's fields, and keeps it for status. */
static void report(struct actor *actor, enum log_level level, const char *cluster, int index, const char *format, ...)
	__attribute__((format(printf, 5, 6)));
static void report(struct actor *actor, enum log_level level, const char *cluster, int index, const char *format, ...)
{
	char member[NAMES_BUFFER_SIZE], text[1024];
	va_list args;

	va_start(args, format);
	vsnprintf(text, sizeof text, format, args);
	va_end(args);
	names_member(member, sizeof member, cluster, index);
	log_message(level, cluster, member, "%s", text);
	remember(actor, cluster, index, text);
}

struct actor *actor_new(sd_event *event, const struct local_platform *platform, struct kube_platform *kube,
			struct pgha_config *const *config)
{
	struct actor *actor = xcalloc(1, sizeof *actor);
	*actor = (struct actor){.event = sd_event_ref(event), .platform = platform, .kube = kube, .config = config};
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
	free(actor->events);
	sd_event_unref(actor->event);
	free(actor);
}

static struct operation *find_operation(const struct actor *actor, const char *cluster, int index)
{
	for (size_t i = 0; i < actor->operation_count; i++)
		if (actor->operations[i]->active && actor->operations[i]->index == index &&
		    strcmp(actor->operations[i]->cluster, cluster) == 0)
			return actor->operations[i];
	return NULL;
}

bool actor_busy(const char *cluster, int index, void *context)
{
	return find_operation(context, cluster, index) != NULL;
}

const char *actor_last_event(const struct actor *actor, const char *cluster, int index)
{
	for (size_t i = 0; i < actor->event_count; i++)
		if (actor->events[i].index == index && strcmp(actor->events[i].cluster, cluster) == 0)
			return actor->events[i].text;
	return "";
}

static struct operation *begin(struct actor *actor, const char *cluster, int index, enum operation_kind kind,
			       int source)
{
	struct operation *operation = NULL;

	/* reuse a finished slot: operations are few and short-lived */
	for (size_t i = 0; i < actor->operation_count && !operation; i++)
		if (!actor->operations[i]->active)
			operation = actor->operations[i];
	if (!operation) {
		actor->operations = xreallocarray(actor->operations, actor->operation_count + 1, sizeof *actor->operations);
		operation = actor->operations[actor->operation_count++] = xcalloc(1, sizeof *operation);
	}
	*operation = (struct operation){.actor = actor, .index = index, .kind = kind, .source = source, .active = true,
					.deadline_ms = now_ms() + SETTLE_TIMEOUT_MS};
	snprintf(operation->cluster, sizeof operation->cluster, "%s", cluster);
	return operation;
}

static const struct cluster_config *current_cluster(const struct actor *actor, const char *name)
{
	const struct pgha_config *config = *actor->config;
	for (size_t i = 0; i < config->cluster_count; i++)
		if (strcmp(config->clusters[i].name, name) == 0)
			return &config->clusters[i];
	return NULL;
}

/* initdb or pg_basebackup ended. */
static void on_program_done(const struct proc_result *result, void *userdata)
{
	struct operation *operation = userdata;
	struct actor *actor = operation->actor;
	const struct cluster_config *cluster = current_cluster(actor, operation->cluster);
	char outcome[256], why[1024] = "";

	operation->active = false;
	operation->job = NULL;
	proc_result_describe(result, outcome, sizeof outcome);
	if (!cluster) {
		log_message(LOG_LEVEL_WARNING, operation->cluster, NULL, "%s of member %d ended (%s) after its cluster "
			    "left the configuration", operation_names[operation->kind], operation->index, outcome);
		return;
	}
	bool succeeded = proc_result_succeeded(result);
	if (succeeded && operation->kind == OPERATION_INITIALIZE)
		succeeded = local_finish_initialize(actor->platform, cluster, operation->index, why, sizeof why);
	else if (succeeded && operation->kind == OPERATION_CLONE)
		succeeded = local_finish_clone(actor->platform, cluster, operation->index, operation->source, why,
					       sizeof why);
	else if (succeeded && operation->kind == OPERATION_REJOIN)
		succeeded = local_finish_rejoin(actor->platform, cluster, operation->index, operation->source, why,
						sizeof why);
	else
		snprintf(why, sizeof why, "%s; its output ends with: %.300s", outcome,
			 result->output_length > 300 ? result->output + result->output_length - 300 : result->output);
	if (!succeeded && operation->kind == OPERATION_CLONE)
		local_abandon_clone(actor->platform, cluster, operation->index);
	if (!succeeded && operation->kind == OPERATION_REJOIN) {
		/* its directory is kept aside, never deleted; the member is cloned afresh */
		char moved[1024], aside_why[512];
		if (local_move_aside(actor->platform, cluster, operation->index, moved, sizeof moved, aside_why,
				     sizeof aside_why))
			report(actor, LOG_LEVEL_WARNING, cluster->name, operation->index,
			       "rejoin failed (%s); its data directory is kept as %s and it will be cloned again", why, moved);
		else
			report(actor, LOG_LEVEL_ERROR, cluster->name, operation->index, "rejoin failed (%s), and %s", why,
			       aside_why);
		return;
	}
	if (succeeded)
		report(actor, LOG_LEVEL_NOTICE, cluster->name, operation->index, "%s finished in %lld ms",
		       operation_names[operation->kind], result->elapsed_ms);
	else
		report(actor, LOG_LEVEL_ERROR, cluster->name, operation->index, "%s failed: %s",
		       operation_names[operation->kind], why);
}

/* One statement on a member, bounded, over a connection with the server options
 * options (NULL: none); false (reported) when it fails, unless it fails with the SQLSTATE
 * quiet_state (NULL: none), which is left to the caller. With value, the first value it
 * returns (a new string; NULL when none or null). */
static bool run_statement_with(struct actor *actor, const struct cluster_config *cluster, int index, const char *what,
			       const char *options, const char *quiet_state, const char *sql, int parameter_count,
			       const char *const *parameters, char *(*build_sql)(PGconn *, void *), void *build_context,
			       char **value)
{
	if (value)
		*value = NULL;
	const struct member_observation *member = actor->observation ? observation_member(actor->observation, index) : NULL;
	if (actor->kube && (!member || !member->address[0])) {
		report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: its pod has no address", what);
		return false;
	}
	struct pg_request request = {
		.target = actor->kube ? kube_admin_target(actor->kube, cluster, member)
				      : local_admin_target(actor->platform, cluster, index),
		.sql = sql,
		.parameter_count = parameter_count,
		.parameters = parameters,
		.build_sql = build_sql,
		.build_context = build_context,
	};
	request.target.options = options;
	pg_execute_all(&request, 1, STATEMENT_TIMEOUT_MS);
	bool succeeded = request.succeeded;
	const char *state = request.result ? PQresultErrorField(request.result, PG_DIAG_SQLSTATE) : NULL;
	if (succeeded && value && request.result && PQntuples(request.result) > 0 && PQnfields(request.result) > 0 &&
	    !PQgetisnull(request.result, 0, 0))
		*value = xstrdup(PQgetvalue(request.result, 0, 0));
	if (!succeeded && !(quiet_state && state && strcmp(state, quiet_state) == 0))
		report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", what, request.error);
	pg_request_clear(&request);
	free((char *)request.target.host);
	return succeeded;
}

/* One statement on a member, bounded; false (reported) when it fails. */
static bool run_statement(struct actor *actor, const struct cluster_config *cluster, int index, const char *what,
			  const char *sql, int parameter_count, const char *const *parameters,
			  char *(*build_sql)(PGconn *, void *), void *build_context)
{
	return run_statement_with(actor, cluster, index, what, NULL, NULL, sql, parameter_count, parameters, build_sql,
				  build_context, NULL);
}

/* Settings files were written: the member reads them now. */
static void reload_member(struct actor *actor, const struct cluster_config *cluster, int index)
{
	run_statement(actor, cluster, index, "reloading", "SELECT pg_catalog.pg_reload_conf()", 0, NULL, NULL, NULL);
}

/* A standby that a failover cuts reloads its settings, and its client sessions end: a
 * query in conflict with replay would hold it back (up to max_standby_streaming_delay,
 * for ever at -1), and with it the reading of the new settings and a promotion. */
static bool reload_ending_sessions(struct actor *actor, const struct cluster_config *cluster, int index)
{
	return run_statement(actor, cluster, index, "reloading and ending the sessions that may hold replay",
			     "SELECT pg_catalog.pg_reload_conf(), (SELECT count(*) FROM (SELECT "
			     "pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE "
			     "backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()) AS ended)",
			     0, NULL, NULL, NULL);
}

/* A fast shutdown, followed by nothing (stop) or by a start (restart, see settle). */
static void stop_member(struct actor *actor, const struct cluster_config *cluster,
			const struct cluster_observation *observation, int index, enum operation_kind kind)
{
	const struct member_observation *member = observation_member(observation, index);
	char why[512] = "";

	if (member && member->postmaster && local_stop(member->postmaster, why, sizeof why))
		begin(actor, cluster->name, index, kind, -1);
	else if (why[0])
		report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", operation_names[kind], why);
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
	run_statement(actor, cluster, action->member,
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

/* A member starts from the settings the configuration asks for now. */
static void start(struct actor *actor, const struct cluster_config *cluster, int index)
{
	char why[512];
	pid_t pid = -1;

	if (local_write_settings(actor->platform, cluster, index, why, sizeof why))
		pid = local_start(actor->platform, cluster, index, why, sizeof why);
	if (pid > 0)
		begin(actor, cluster->name, index, OPERATION_START, -1)->postmaster = pid;
	else
		report(actor, LOG_LEVEL_ERROR, cluster->name, index, "start failed: %s", why);
}


/* ALTER SYSTEM takes no parameters: the name and value are quoted for the server. */
struct alter_system {
	const char *name;
	const char *value; /* NULL: RESET */
};

static char *build_alter_system(PGconn *connection, void *context)
{
	const struct alter_system *change = context;
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

/* PostgreSQL 15's ALTER SYSTEM refuses a name its session does not know
 * (undefined_object), and a custom prefix.name is unknown until its module is loaded;
 * the server keeps one set in its files as a placeholder all the same. A second session
 * that sets the name itself at its start (-c) knows it as such a placeholder, and writes
 * it. A module that is loaded still refuses, at that start, a name it does not define. */
#define SQLSTATE_UNDEFINED_OBJECT "42704"

static bool alter_system(struct actor *actor, const struct cluster_config *cluster, int index, const char *name,
			 const char *value)
{
	struct alter_system change = {.name = name, .value = value};
	bool custom = value && strchr(name, '.');
	char what[192];
	snprintf(what, sizeof what, "ALTER SYSTEM %s %s", value ? "SET" : "RESET", name);
	if (run_statement_with(actor, cluster, index, what, NULL, custom ? SQLSTATE_UNDEFINED_OBJECT : NULL, NULL, 0,
			       NULL, build_alter_system, &change, NULL))
		return true;
	if (!custom)
		return false;
	char *options = NULL;
	pg_server_option(&options, name, value);
	bool done = run_statement_with(actor, cluster, index, what, options, NULL, NULL, 0, NULL, build_alter_system,
				       &change, NULL);
	free(options);
	return done;
}

static void free_strings(char **list)
{
	for (size_t i = 0; list && list[i]; i++)
		free(list[i]);
	free(list);
}

/* On kubernetes the configured parameters live in postgresql.auto.conf, which the member's
 * volume keeps: those the configuration no longer names are reset. */
static void kube_configure(struct actor *actor, const struct cluster_config *cluster, int index)
{
	char **names, **values, **resets, why[1024];
	bool applied = true;

	kube_parameter_changes(actor->kube, cluster, index, &names, &values, &resets);
	for (size_t i = 0; resets && resets[i]; i++)
		applied &= alter_system(actor, cluster, index, resets[i], NULL);
	for (size_t i = 0; names && names[i]; i++)
		applied &= alter_system(actor, cluster, index, names[i], values[i]);
	free_strings(names);
	free_strings(values);
	free_strings(resets);
	if (!applied)
		return;
	reload_member(actor, cluster, index);
	if (!kube_mark_configured(actor->kube, cluster, index, why, sizeof why))
		report(actor, LOG_LEVEL_WARNING, cluster->name, index, "cannot record the parameters applied: %s", why);
}

/* Creates the member's pod; its start (initdb, clone, rewind inside the pod) is over
 * once it answers. A rejoin's pod rewinds its data first, whatever standby.signal says. */
static void kube_start(struct actor *actor, const struct cluster_config *cluster, int index, enum operation_kind kind,
		       bool primary, int source)
{
	const struct member_observation *upstream =
		source >= 0 ? observation_member(actor->observation, source) : observation_primary(actor->observation);
	enum kube_pod_start start = kind == OPERATION_INITIALIZE ? KUBE_POD_BOOTSTRAP
				    : kind == OPERATION_REJOIN   ? KUBE_POD_REWIND
				    : primary			 ? KUBE_POD_PRIMARY
								 : KUBE_POD_STANDBY;
	char why[1024] = "";

	if (!kube_create_member(actor->kube, cluster, index, start, upstream, why, sizeof why)) {
		report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", operation_names[kind], why);
		return;
	}
	struct operation *operation = begin(actor, cluster->name, index, kind, source);
	if (kind != OPERATION_START)
		operation->deadline_ms = now_ms() + COPY_TIMEOUT_MS;
}

/* pgha-entrypoint wrote beside the data directory what the rejoin of member index came
 * to (rewound, or moved aside and copied again); the member answers now, and pghad reads
 * it through it, since a pod's log is out of its reach. */
static void kube_report_rejoin(struct actor *actor, const struct cluster_config *cluster, int index)
{
	char *account = NULL, sentence[768];

	run_statement_with(actor, cluster, index, "reading what pgha-entrypoint did to rejoin", NULL, NULL,
			   "SELECT pg_catalog.pg_read_file(pg_catalog.current_setting('data_directory') || '"
			   ENTRYPOINT_REJOIN_SUFFIX "', 0, 4096, true)",
			   0, NULL, NULL, NULL, &account);
	switch (entrypoint_parse_rejoin(account, sentence, sizeof sentence)) {
	case ENTRYPOINT_REJOIN_REWOUND:
	case ENTRYPOINT_REJOIN_CLONED:
		report(actor, LOG_LEVEL_NOTICE, cluster->name, index, "rejoin finished: %s", sentence);
		break;
	case ENTRYPOINT_REJOIN_MOVED_ASIDE:
		report(actor, LOG_LEVEL_WARNING, cluster->name, index, "rejoin failed: %s", sentence);
		break;
	case ENTRYPOINT_REJOIN_UNKNOWN:
		report(actor, LOG_LEVEL_NOTICE, cluster->name, index,
		       "rejoin finished: its pod answers, but pgha-entrypoint left no account of what it did; see its "
		       "log (kubectl logs)");
		break;
	}
	free(account);
}

/* The actions that differ on kubernetes; false for those that are SQL on every platform. */
static bool kube_carry_out(struct actor *actor, const struct cluster_config *cluster,
			   const struct cluster_observation *observation, const struct action *action)
{
	const char *name = cluster->name;
	const struct member_observation *member = observation_member(observation, action->member);
	char why[1024] = "", slot[NAMES_BUFFER_SIZE];

	switch (action->type) {
	case ACTION_INITIALIZE:
		kube_start(actor, cluster, action->member, OPERATION_INITIALIZE, true, -1);
		break;
	case ACTION_CLONE:
		kube_start(actor, cluster, action->member, OPERATION_CLONE, false, action->source);
		break;
	case ACTION_REJOIN:
		if (member && member->live_processes > 0) {
			/* a diverged standby still runs: its pod is deleted as for a stop, and created
			 * again to rewind once it is gone (settle); pg_rewind wants it shut down */
			if (kube_delete_member(actor->kube, cluster, action->member, -1, why, sizeof why))
				begin(actor, name, action->member, OPERATION_REJOIN, action->source)->stopping = true;
			else
				report(actor, LOG_LEVEL_ERROR, name, action->member, "deleting its pod to rewind it failed: %s",
				       why);
			break;
		}
		kube_start(actor, cluster, action->member, OPERATION_REJOIN, false, action->source);
		break;
	case ACTION_START:
		kube_start(actor, cluster, action->member, OPERATION_START, member && !member->standby_signal, -1);
		break;
	case ACTION_STOP:
	case ACTION_RESTART:
		if (kube_delete_member(actor->kube, cluster, action->member, -1, why, sizeof why))
			begin(actor, name, action->member, action->type == ACTION_STOP ? OPERATION_STOP : OPERATION_RESTART,
			      -1);
		else
			report(actor, LOG_LEVEL_ERROR, name, action->member, "deleting its pod failed: %s", why);
		break;
	case ACTION_MOVE_ASIDE:
		report(actor, LOG_LEVEL_ERROR, name, action->member,
		       "its volume holds something that is not a data directory: pgha-entrypoint leaves it alone");
		break;
	case ACTION_CONFIGURE:
		kube_configure(actor, cluster, action->member);
		break;
	case ACTION_FOLLOW: {
		const struct member_observation *upstream = observation_member(observation, action->source);
		if (!upstream || !upstream->address[0]) {
			report(actor, LOG_LEVEL_ERROR, name, action->member, "following: the primary's pod has no address");
			break;
		}
		char *conninfo = kube_primary_conninfo(cluster, action->member, upstream);
		names_slot(slot, sizeof slot, name, action->member);
		if (alter_system(actor, cluster, action->member, "primary_conninfo", conninfo) &&
		    alter_system(actor, cluster, action->member, "primary_slot_name", slot))
			reload_member(actor, cluster, action->member);
		free(conninfo);
		break;
	}
	case ACTION_SET_SYNCHRONOUS:
		/* the daemon recorded the new list as intent before this runs */
		if (alter_system(actor, cluster, action->member, "synchronous_standby_names", action->text))
			reload_member(actor, cluster, action->member);
		break;
	case ACTION_CUT:
		/* '' rather than RESET, which would fall back to the upstream the pod started
		 * with. The WAL receiver of another pod cannot be signalled from here: it ends
		 * once the startup process reads the new setting, so the sessions whose queries
		 * may hold replay back (a replay conflict waits up to
		 * max_standby_streaming_delay) are ended; the choice waits for the receiver
		 * to be gone from pg_stat_wal_receiver */
		if (alter_system(actor, cluster, action->member, "primary_conninfo", ""))
			reload_ending_sessions(actor, cluster, action->member);
		break;
	case ACTION_FENCE:
		if (kube_fence(actor->kube, cluster, action->member, why, sizeof why))
			report(actor, LOG_LEVEL_WARNING, name, action->member, "fenced: its pod is deleted at once");
		else
			report(actor, LOG_LEVEL_ERROR, name, action->member, "fencing failed: %s", why);
		break;
	case ACTION_CREATE_REPLICATION_ROLE:
	case ACTION_ALTER_REPLICATION_ROLE: {
		char password[128];
		if (!kube_replication_password(actor->kube, cluster, password, sizeof password, why, sizeof why))
			report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		else
			set_replication_role(actor, cluster, action, password);
		explicit_bzero(password, sizeof password);
		break;
	}
	case ACTION_RESET_OVERRIDES:
	case ACTION_CREATE_SLOT:
	case ACTION_DROP_SLOT:
	case ACTION_PROMOTE:
		return false;
	}
	return true;
}

/* pg_rewind of a stopped member from source, as a program on the loop. */
static void rewind_member(struct actor *actor, const struct cluster_config *cluster, int index, int source)
{
	struct operation *operation = begin(actor, cluster->name, index, OPERATION_REJOIN, source);
	operation->job = local_rewind(actor->platform, actor->event, cluster, index, source, on_program_done, operation);
	operation->active = operation->job != NULL;
}

static void carry_out(struct actor *actor, const struct cluster_config *cluster,
		      const struct cluster_observation *observation, const struct action *action)
{
	const char *name = cluster->name;
	char why[512] = "", source[NAMES_BUFFER_SIZE] = "";
	struct operation *operation;

	if (action->source >= 0)
		names_member(source, sizeof source, name, action->source);
	report(actor, LOG_LEVEL_NOTICE, name, action->member, "%s%s%s: %s", action_type_names[action->type],
	       source[0] ? " " : "", source, action->reason);
	if (actor->kube && kube_carry_out(actor, cluster, observation, action))
		return;
	switch (action->type) {
	case ACTION_INITIALIZE:
		operation = begin(actor, name, action->member, OPERATION_INITIALIZE, -1);
		operation->job = local_initialize(actor->platform, actor->event, cluster, action->member, on_program_done,
						  operation);
		operation->active = operation->job != NULL;
		break;
	case ACTION_CLONE:
		operation = begin(actor, name, action->member, OPERATION_CLONE, action->source);
		operation->job = local_clone(actor->platform, actor->event, cluster, action->member, action->source,
					     on_program_done, operation);
		operation->active = operation->job != NULL;
		break;
	case ACTION_MOVE_ASIDE: {
		char moved[1024];
		if (local_move_aside(actor->platform, cluster, action->member, moved, sizeof moved, why, sizeof why))
			report(actor, LOG_LEVEL_WARNING, name, action->member, "unusable data directory kept as %s", moved);
		else
			report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		break;
	}
	case ACTION_START:
		start(actor, cluster, action->member);
		break;
	case ACTION_CONFIGURE:
		if (!local_write_settings(actor->platform, cluster, action->member, why, sizeof why))
			report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		else
			reload_member(actor, cluster, action->member);
		break;
	case ACTION_RESET_OVERRIDES: {
		char names[sizeof action->text];
		snprintf(names, sizeof names, "%s", action->text);
		char *rest = NULL;
		for (char *setting = strtok_r(names, ",", &rest); setting; setting = strtok_r(NULL, ",", &rest))
			run_statement(actor, cluster, action->member, "resetting an ALTER SYSTEM override", NULL, 0, NULL,
				      build_alter_system_reset, setting);
		reload_member(actor, cluster, action->member);
		break;
	}
	case ACTION_RESTART:
		stop_member(actor, cluster, observation, action->member, OPERATION_RESTART);
		break;
	case ACTION_STOP:
		stop_member(actor, cluster, observation, action->member, OPERATION_STOP);
		break;
	case ACTION_CREATE_REPLICATION_ROLE:
	case ACTION_ALTER_REPLICATION_ROLE: {
		char password[128], passfile[1024];
		if (!local_replication_secret(actor->platform, cluster, password, sizeof password, passfile,
					      sizeof passfile, why, sizeof why))
			report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
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
		run_statement(actor, cluster, action->member, action_type_names[action->type],
			      action->type == ACTION_CREATE_SLOT
				      ? "SELECT pg_catalog.pg_create_physical_replication_slot($1, true)"
				      : "SELECT pg_catalog.pg_drop_replication_slot($1)",
			      1, parameters, NULL, NULL);
		break;
	}
	case ACTION_FOLLOW:
		if (!local_write_standby_settings(actor->platform, cluster, action->member, action->source, why, sizeof why))
			report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		else
			reload_member(actor, cluster, action->member);
		break;
	case ACTION_SET_SYNCHRONOUS:
		/* the daemon recorded the new list as intent before this runs */
		if (!local_write_synchronous_names(actor->platform, cluster, action->member, action->text, why, sizeof why))
			report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		else
			reload_member(actor, cluster, action->member);
		break;
	case ACTION_FENCE: {
		const struct member_observation *member = observation_member(observation, action->member);
		int killed = local_fence(actor->platform, cluster, action->member, member ? member->postmaster : 0, why,
					 sizeof why);
		if (killed < 0)
			report(actor, LOG_LEVEL_ERROR, name, action->member, "fencing failed: %s", why);
		else
			report(actor, LOG_LEVEL_WARNING, name, action->member, "fenced: %d process%s killed", killed,
			       killed == 1 ? "" : "es");
		break;
	}
	case ACTION_PROMOTE:
		if (run_statement(actor, cluster, action->member, "promoting", "SELECT pg_catalog.pg_promote(false)", 0,
				  NULL, NULL, NULL))
			begin(actor, name, action->member, OPERATION_PROMOTE, -1);
		break;
	case ACTION_CUT: {
		/* first no upstream to start a receiver for, then the receiver ended: the
		 * startup process reloads before it needs WAL again, whatever replay waits on;
		 * the sessions are ended too, so that a replay conflict does not hold back the
		 * promotion of this standby, should it be chosen */
		const struct member_observation *member = observation_member(observation, action->member);
		if (!local_write_standby_settings(actor->platform, cluster, action->member, -1, why, sizeof why) ||
		    !reload_ending_sessions(actor, cluster, action->member))
			report(actor, LOG_LEVEL_ERROR, name, action->member, "cut failed: %s", why[0] ? why : "no reload");
		else if (member && !local_stop_wal_receiver(actor->platform, cluster, action->member, member->receiver_pid,
							     why, sizeof why))
			report(actor, LOG_LEVEL_ERROR, name, action->member, "cut failed: %s", why);
		break;
	}
	case ACTION_REJOIN: {
		/* a diverged standby still runs: it stops first (a fast shutdown, clean as
		 * pg_rewind wants it), and the rewind starts once it is down (settle) */
		const struct member_observation *member = observation_member(observation, action->member);
		if (member && member->postmaster && !member->postmaster_exited) {
			if (local_stop(member->postmaster, why, sizeof why))
				begin(actor, name, action->member, OPERATION_REJOIN, action->source)->stopping = true;
			else
				report(actor, LOG_LEVEL_ERROR, name, action->member, "stopping it to rewind failed: %s", why);
			break;
		}
		rewind_member(actor, cluster, action->member, action->source);
		break;
	}
	}
}

/* A start is over once the member answers, a stop once its postmaster is gone. */
static void settle(struct actor *actor, const struct cluster_config *cluster,
		   const struct cluster_observation *observation)
{
	for (size_t i = 0; i < actor->operation_count; i++) {
		struct operation *operation = actor->operations[i];
		if (!operation->active || operation->job || strcmp(operation->cluster, cluster->name) != 0)
			continue;
		const struct member_observation *member = observation_member(observation, operation->index);
		/* a pod is gone, or its container ended: nothing of it runs */
		bool gone = member && (actor->kube ? member->live_processes == 0 : member->postmaster == 0);
		if (operation->kind == OPERATION_REJOIN && operation->stopping && gone) {
			/* the diverged standby has stopped: now its rewind, by pg_rewind here or by
			 * pgha-entrypoint in a new pod */
			operation->active = false;
			if (actor->kube)
				kube_start(actor, cluster, operation->index, OPERATION_REJOIN, false, operation->source);
			else
				rewind_member(actor, cluster, operation->index, operation->source);
			continue;
		}
		if (operation->kind == OPERATION_RESTART && gone) {
			/* stopped: the second half of a restart is a start */
			operation->active = false;
			if (actor->kube)
				kube_start(actor, cluster, operation->index, OPERATION_START, !member->standby_signal, -1);
			else
				start(actor, cluster, operation->index);
			continue;
		}
		bool starting = operation->kind == OPERATION_START ||
				(actor->kube && !operation->stopping &&
				 (operation->kind == OPERATION_INITIALIZE || operation->kind == OPERATION_CLONE ||
				  operation->kind == OPERATION_REJOIN));
		bool over = !member || (starting				? member->reachable
					: operation->kind == OPERATION_PROMOTE ? member->reachable && !member->in_recovery
									       : gone);
		char state = actor->kube ? (member && member->postmaster_exited && !member->live_processes ? 'Z' : 'R')
			     : operation->kind == OPERATION_START ? proc_state(operation->postmaster)
								  : 'R';
		if (!over && starting && actor->kube && (state == 'Z')) {
			operation->active = false;
			report(actor, LOG_LEVEL_ERROR, cluster->name, operation->index,
			       "%s failed: its pod's container ended; see its log (kubectl logs)",
			       operation_names[operation->kind]);
		} else if (!over && (state == 0 || state == 'Z')) {
			/* PostgreSQL refused to start: say so now rather than wait for the deadline */
			operation->active = false;
			report(actor, LOG_LEVEL_ERROR, cluster->name, operation->index,
			       "start failed: the postmaster (pid %ld) exited; see postgresql.log in its directory",
			       (long)operation->postmaster);
		} else if (over) {
			operation->active = false;
			if (operation->kind == OPERATION_PROMOTE && actor->kube) {
				/* a primary follows no one; should it become a standby again, its pod
				 * starts with fresh standby settings that these would override */
				alter_system(actor, cluster, operation->index, "primary_conninfo", NULL);
				alter_system(actor, cluster, operation->index, "primary_slot_name", NULL);
			} else if (operation->kind == OPERATION_PROMOTE) {
				/* a primary follows no one: its standby settings go (read at its next start) */
				char why[512];
				if (!local_write_standby_settings(actor->platform, cluster, operation->index, -1, why, sizeof why))
					report(actor, LOG_LEVEL_WARNING, cluster->name, operation->index, "%s", why);
			}
			if (operation->kind == OPERATION_PROMOTE) {
				/* the new timeline reaches pg_control at the first checkpoint, which a
				 * promotion only requests; pg_rewind of the old primary needs it now */
				run_statement(actor, cluster, operation->index, "the checkpoint after promotion", "CHECKPOINT",
					      0, NULL, NULL, NULL);
			}
			if (starting && operation->kind == OPERATION_REJOIN)
				kube_report_rejoin(actor, cluster, operation->index);
			else
				report(actor, LOG_LEVEL_NOTICE, cluster->name, operation->index, "%s",
				       starting				      ? "started"
				       : operation->kind == OPERATION_PROMOTE ? "promoted: it is the primary"
									      : "stopped");
		} else if (now_ms() > operation->deadline_ms) {
			operation->active = false;
			report(actor, LOG_LEVEL_WARNING, cluster->name, operation->index, "%s not over after %d s: %s",
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

void actor_run(struct actor *actor, const struct cluster_config *cluster, const struct cluster_observation *observation,
	       const struct action_list *actions)
{
	actor->observation = observation;
	settle(actor, cluster, observation);
	for (size_t i = 0; i < actions->count; i++)
		carry_out(actor, cluster, observation, &actions->items[i]);
}
