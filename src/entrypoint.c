/* entrypoint: what pgha-entrypoint decides, without side effects: its environment read and checked, what to do with the data directory it finds, and the text of the files it writes. */
#include "autoconfig.h"

#include "entrypoint.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "memory.h"
#include "names.h"
#include "pg.h"

/* Room left after PGDATA in a path for the names put beside it (".initializing"...). */
#define DATA_PATH_MAX (PATH_MAX - 64)
/* A wait longer than a week is a mistake, not a wish. */
#define WAIT_TIMEOUT_MAX_S (7 * 24 * 3600)
/* What the walreceiver keeps of the primary's WAL beyond the slot, in case there is none. */
#define WAL_KEEP_SIZE "512MB"
/* Enough senders and slots for the standbys of any cluster pgha makes, and a clone in progress. */
#define WAL_SENDERS "10"

/* ---- the environment ---- */

static bool is_absolute_path(const char *value, const char *name, char *why, size_t why_size)
{
	if (value[0] != '/') {
		snprintf(why, why_size, "%s=%s is not an absolute path", name, value);
		return false;
	}
	if (strlen(value) > DATA_PATH_MAX) {
		snprintf(why, why_size, "%s is longer than %d characters", name, DATA_PATH_MAX);
		return false;
	}
	return true;
}

static bool parse_data(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	if (!is_absolute_path(value, "PGDATA", why, why_size))
		return false;
	char *data = xstrdup(value);
	for (size_t length = strlen(data); length > 1 && data[length - 1] == '/'; length--)
		data[length - 1] = '\0';
	if (strcmp(data, "/") == 0) {
		snprintf(why, why_size, "PGDATA=/ is the root directory, not a data directory");
		free(data);
		return false;
	}
	environment->data = data;
	return true;
}

static bool parse_label(char **field, const char *name, const char *value, char *why, size_t why_size)
{
	if (!names_is_dns_label(value)) {
		snprintf(why, why_size,
			 "%s=%s is not usable: it must be 1 to 63 lowercase letters, digits or '-', start with a letter "
			 "and end with a letter or digit",
			 name, value);
		return false;
	}
	*field = xstrdup(value);
	return true;
}

static bool parse_cluster(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	return parse_label(&environment->cluster, "PGHA_CLUSTER", value, why, why_size);
}

static bool parse_member(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	return parse_label(&environment->member, "PGHA_MEMBER", value, why, why_size);
}

static bool parse_role(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	if (strcmp(value, "primary") == 0)
		environment->role = ENTRYPOINT_PRIMARY;
	else if (strcmp(value, "standby") == 0)
		environment->role = ENTRYPOINT_STANDBY;
	else {
		snprintf(why, why_size, "PGHA_ROLE=%s is neither primary nor standby", value);
		return false;
	}
	return true;
}

static bool parse_bootstrap(struct entrypoint_environment *environment, const char *value, char *why,
			    size_t why_size)
{
	if (strcmp(value, "1") != 0 && strcmp(value, "0") != 0) {
		snprintf(why, why_size, "PGHA_BOOTSTRAP=%s is neither 1 nor 0", value);
		return false;
	}
	environment->bootstrap = value[0] == '1';
	return true;
}

static bool parse_rewind(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	if (strcmp(value, "1") != 0 && strcmp(value, "0") != 0) {
		snprintf(why, why_size, "PGHA_REWIND=%s is neither 1 nor 0", value);
		return false;
	}
	environment->rewind = value[0] == '1';
	return true;
}

static bool parse_integer(const char *name, const char *value, long minimum, long maximum, int *result, char *why,
			  size_t why_size)
{
	char *end;
	errno = 0;
	long number = strtol(value, &end, 10);

	if (errno || end == value || *end != '\0' || !isdigit((unsigned char)value[0]) || number < minimum ||
	    number > maximum) {
		snprintf(why, why_size, "%s=%s is not a whole number from %ld to %ld", name, value, minimum, maximum);
		return false;
	}
	*result = (int)number;
	return true;
}

static bool parse_port(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	return parse_integer("PGHA_PORT", value, 1, 65535, &environment->port, why, why_size);
}

static bool parse_primary_port(struct entrypoint_environment *environment, const char *value, char *why,
			       size_t why_size)
{
	return parse_integer("PGHA_PRIMARY_PORT", value, 1, 65535, &environment->primary_port, why, why_size);
}

static bool parse_primary_hosts(struct entrypoint_environment *environment, const char *value, char *why,
				size_t why_size)
{
	size_t count = 1;

	for (const char *c = value; *c; c++) {
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c)) {
			snprintf(why, why_size, "PGHA_PRIMARY_HOST=%s holds a blank: hosts are separated by ',' alone",
				 value);
			return false;
		}
		count += *c == ',';
	}
	char **hosts = xcalloc(count, sizeof *hosts);
	const char *start = value;
	for (size_t i = 0; i < count; i++) {
		size_t length = strcspn(start, ",");
		if (length == 0 || length > 255) {
			snprintf(why, why_size, "PGHA_PRIMARY_HOST=%s has an empty or overlong host (item %zu)", value,
				 i + 1);
			for (size_t j = 0; j < i; j++)
				free(hosts[j]);
			free(hosts);
			return false;
		}
		hosts[i] = xmalloc(length + 1);
		memcpy(hosts[i], start, length);
		hosts[i][length] = '\0';
		start += length + 1;
	}
	environment->primary_host_list = xstrdup(value);
	environment->primary_hosts = hosts;
	environment->primary_host_count = count;
	return true;
}

static bool parse_slot(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	size_t length = strlen(value);

	if (length > NAMES_MAX_LENGTH || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_") != length) {
		snprintf(why, why_size,
			 "PGHA_SLOT=%s is not a replication slot name: 1 to 63 lowercase letters, digits or '_'", value);
		return false;
	}
	environment->slot = xstrdup(value);
	return true;
}

static bool parse_listen(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	(void)why;
	(void)why_size;
	environment->listen = xstrdup(value[0] ? value : "*");
	return true;
}

static bool parse_secrets_dir(struct entrypoint_environment *environment, const char *value, char *why,
			      size_t why_size)
{
	if (!is_absolute_path(value, "PGHA_SECRETS_DIR", why, why_size))
		return false;
	environment->secrets_dir = xstrdup(value);
	return true;
}

static bool parse_socket_dir(struct entrypoint_environment *environment, const char *value, char *why,
			     size_t why_size)
{
	if (value[0] && !is_absolute_path(value, "PGHA_SOCKET_DIR", why, why_size))
		return false;
	environment->socket_dir = xstrdup(value);
	return true;
}

static bool parse_bindir(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	if (!is_absolute_path(value, "PGHA_BINDIR", why, why_size))
		return false;
	environment->bindir = xstrdup(value);
	return true;
}

static bool parse_termination_path(struct entrypoint_environment *environment, const char *value, char *why,
				   size_t why_size)
{
	if (!is_absolute_path(value, "PGHA_TERMINATION_MESSAGE_PATH", why, why_size))
		return false;
	environment->termination_path = xstrdup(value);
	return true;
}

static bool parse_wait_timeout(struct entrypoint_environment *environment, const char *value, char *why,
			       size_t why_size)
{
	return parse_integer("PGHA_WAIT_TIMEOUT", value, 0, WAIT_TIMEOUT_MAX_S, &environment->wait_timeout_s, why,
			     why_size);
}

/* A Kubernetes object name: a DNS subdomain, at most 253 characters. */
static bool parse_object_name(const char *name, const char *value, char **result, char *why, size_t why_size)
{
	size_t length = strlen(value);

	if (length > 253 || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789-.") != length) {
		snprintf(why, why_size, "%s=%s is not a Kubernetes object name: lowercase letters, digits, '-' and '.'",
			 name, value);
		return false;
	}
	*result = xstrdup(value);
	return true;
}

static bool parse_lease(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	return parse_object_name("PGHA_LEASE", value, &environment->lease, why, why_size);
}

static bool parse_pod_name(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	return parse_object_name("PGHA_POD_NAME", value, &environment->pod_name, why, why_size);
}

static bool parse_pod_uid(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	size_t length = strlen(value);

	if (length > 64 || strspn(value, "abcdefABCDEF0123456789-") != length) {
		snprintf(why, why_size, "PGHA_POD_UID=%s is not a uid", value);
		return false;
	}
	environment->pod_uid = xstrdup(value);
	return true;
}

static bool parse_member_index(struct entrypoint_environment *environment, const char *value, char *why,
			       size_t why_size)
{
	return parse_integer("PGHA_MEMBER_INDEX", value, 0, 98, &environment->member_index, why, why_size);
}

static bool parse_isolation_timeout(struct entrypoint_environment *environment, const char *value, char *why,
				    size_t why_size)
{
	return parse_integer("PGHA_ISOLATION_TIMEOUT", value, 2, 300, &environment->isolation_timeout_s, why, why_size);
}

static bool parse_log_level(struct entrypoint_environment *environment, const char *value, char *why,
			    size_t why_size)
{
	for (int level = 0; log_level_names[level]; level++)
		if (strcmp(value, log_level_names[level]) == 0) {
			environment->log_level = (enum log_level)level;
			return true;
		}
	snprintf(why, why_size, "PGHA_LOG_LEVEL=%s is not one of error, warning, notice, info, debug", value);
	return false;
}

static bool parse_nosync(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size)
{
	(void)value;
	(void)why;
	(void)why_size;
	environment->initdb_nosync = true;
	return true;
}

const struct entrypoint_variable entrypoint_variables[] = {
	{"PGDATA", true, NULL, false, parse_data, "the data directory (absolute; a subdirectory of the volume)"},
	{"PGHA_MEMBER", true, NULL, false, parse_member, "this member's name: application_name and cluster_name"},
	{"PGHA_ROLE", true, NULL, false, parse_role, "primary or standby: what pghad wants this member to start as"},
	{"PGHA_CLUSTER", false, NULL, false, parse_cluster, "the cluster's name, for log lines"},
	{"PGHA_PORT", false, "5432", false, parse_port, "the port PostgreSQL listens on"},
	{"PGHA_BOOTSTRAP", false, "0", false, parse_bootstrap,
	 "1: this member may initdb an empty data directory (member 0 of a new cluster)"},
	{"PGHA_REWIND", false, "0", false, parse_rewind,
	 "1: pghad found this standby's data diverged from the primary's history: pg_rewind it, even with "
	 "standby.signal"},
	{"PGHA_PRIMARY_HOST", false, NULL, false, parse_primary_hosts,
	 "the primary's hosts, comma-separated (required for a standby)"},
	{"PGHA_PRIMARY_PORT", false, NULL, false, parse_primary_port, "the primary's port (default: PGHA_PORT)"},
	{"PGHA_SLOT", false, NULL, false, parse_slot, "the physical replication slot this standby uses on the primary"},
	{"PGHA_LISTEN", false, "*", false, parse_listen, "listen_addresses (the pod's IP)"},
	{"PGHA_SECRETS_DIR", false, "/etc/pgha/secrets", false, parse_secrets_dir,
	 "holds the files superuser-password and replication-password"},
	{"PGHA_SOCKET_DIR", false, NULL, true, parse_socket_dir,
	 "unix_socket_directories (default /var/run/postgresql if writable, else none; empty: none)"},
	{"PGHA_BINDIR", false, NULL, false, parse_bindir,
	 "PostgreSQL's programs (default: pg_config --bindir, else the newest /usr/lib/postgresql/*/bin)"},
	{"PGHA_WAIT_TIMEOUT", false, "600", false, parse_wait_timeout,
	 "seconds to wait for the primary before giving up"},
	{"PGHA_LOG_LEVEL", false, "info", false, parse_log_level, "error, warning, notice, info or debug"},
	{"PGHA_LEASE", false, NULL, false, parse_lease,
	 "the Lease holding the cluster's state (set by pghad on Kubernetes): while this member runs as the primary, "
	 "it stops itself when deposed or isolated"},
	{"PGHA_POD_NAME", false, NULL, false, parse_pod_name, "this member's pod (required with PGHA_LEASE)"},
	{"PGHA_POD_UID", false, NULL, false, parse_pod_uid, "this member's pod's uid: another pod of its name counts as its deletion"},
	{"PGHA_MEMBER_INDEX", false, NULL, false, parse_member_index,
	 "this member's number in the cluster's state (required with PGHA_LEASE)"},
	{"PGHA_ISOLATION_TIMEOUT", false, "10", false, parse_isolation_timeout,
	 "seconds a primary that reaches neither the API server nor any standby keeps running"},
	{"PGHA_TERMINATION_MESSAGE_PATH", false, NULL, false, parse_termination_path,
	 "where PostgreSQL's exit is reported (default /dev/termination-log, when the kubelet made it)"},
	{"PGHA_TEST_INITDB_NOSYNC", false, NULL, false, parse_nosync,
	 "tests only: initdb --nosync (not safe against a crash of the machine)"},
};
const size_t entrypoint_variable_count = sizeof entrypoint_variables / sizeof entrypoint_variables[0];

/* Appends one line to errors, as far as it fits. */
static void add_error(char *errors, size_t errors_size, const char *format, ...) __attribute__((format(printf, 3, 4)));

static void add_error(char *errors, size_t errors_size, const char *format, ...)
{
	size_t used = strlen(errors);
	va_list arguments;

	if (used + 1 >= errors_size)
		return;
	if (used)
		errors[used++] = '\n', errors[used] = '\0';
	va_start(arguments, format);
	vsnprintf(errors + used, errors_size - used, format, arguments);
	va_end(arguments);
}

bool entrypoint_read_environment(const char *(*lookup)(const char *name, void *context), void *context,
				 struct entrypoint_environment *environment, char *errors, size_t errors_size)
{
	char why[PATH_MAX + 256];
	bool valid = true;

	*environment = (struct entrypoint_environment){.log_level = LOG_LEVEL_INFO, .member_index = -1};
	errors[0] = '\0';
	for (size_t i = 0; i < entrypoint_variable_count; i++) {
		const struct entrypoint_variable *variable = &entrypoint_variables[i];
		const char *value = lookup(variable->name, context);
		if (value && !value[0] && !variable->empty_is_value)
			value = NULL; /* Kubernetes writes an unset value as "" */
		if (!value && variable->required) {
			add_error(errors, errors_size, "%s is not set: %s", variable->name, variable->doc);
			valid = false;
			continue;
		}
		if (!value)
			value = variable->fallback;
		if (value && !variable->parse(environment, value, why, sizeof why)) {
			add_error(errors, errors_size, "%s", why);
			valid = false;
		}
	}
	if (!environment->primary_port)
		environment->primary_port = environment->port;
	if (environment->role == ENTRYPOINT_STANDBY && !environment->primary_host_list) {
		add_error(errors, errors_size, "PGHA_ROLE=standby needs PGHA_PRIMARY_HOST: the primary to follow");
		valid = false;
	}
	if (environment->lease && (!environment->pod_name || environment->member_index < 0)) {
		add_error(errors, errors_size, "PGHA_LEASE needs PGHA_POD_NAME and PGHA_MEMBER_INDEX: the pod and the member to watch");
		valid = false;
	}
	if (environment->rewind && environment->role != ENTRYPOINT_STANDBY) {
		add_error(errors, errors_size, "PGHA_REWIND=1 needs PGHA_ROLE=standby: a member is rewound to follow a primary");
		valid = false;
	}
	return valid;
}

void entrypoint_environment_free(struct entrypoint_environment *environment)
{
	free(environment->data);
	free(environment->cluster);
	free(environment->member);
	free(environment->primary_host_list);
	for (size_t i = 0; i < environment->primary_host_count; i++)
		free(environment->primary_hosts[i]);
	free(environment->primary_hosts);
	free(environment->slot);
	free(environment->listen);
	free(environment->secrets_dir);
	free(environment->socket_dir);
	free(environment->bindir);
	free(environment->lease);
	free(environment->pod_name);
	free(environment->pod_uid);
	free(environment->termination_path);
	*environment = (struct entrypoint_environment){0};
}

/* ---- the decision ---- */

static void refuse(struct entrypoint_decision *decision, int exit_status, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static void refuse(struct entrypoint_decision *decision, int exit_status, const char *format, ...)
{
	va_list arguments;

	decision->action = ENTRYPOINT_REFUSE;
	decision->follow = false;
	decision->exit_status = exit_status;
	va_start(arguments, format);
	vsnprintf(decision->reason, sizeof decision->reason, format, arguments);
	va_end(arguments);
}

static void choose(struct entrypoint_decision *decision, enum entrypoint_action action, bool follow,
		   const char *format, ...) __attribute__((format(printf, 4, 5)));

static void choose(struct entrypoint_decision *decision, enum entrypoint_action action, bool follow,
		   const char *format, ...)
{
	va_list arguments;

	decision->action = action;
	decision->follow = follow;
	decision->exit_status = PGHA_EXIT_OK;
	va_start(arguments, format);
	vsnprintf(decision->reason, sizeof decision->reason, format, arguments);
	va_end(arguments);
}

/* An empty (or missing) data directory: a new cluster, a copy of the primary, or nothing. */
static void decide_empty(const struct entrypoint_environment *environment, const char *state,
			 struct entrypoint_decision *decision)
{
	const char *data = environment->data;

	if (environment->role == ENTRYPOINT_PRIMARY && environment->bootstrap)
		choose(decision, ENTRYPOINT_INITIALIZE, false,
		       "PGDATA %s is %s and this member bootstraps the cluster (PGHA_ROLE=primary, PGHA_BOOTSTRAP=1): "
		       "initdb",
		       data, state);
	else if (environment->primary_host_list && environment->role == ENTRYPOINT_STANDBY)
		choose(decision, ENTRYPOINT_CLONE, true,
		       "PGDATA %s is %s: copying the primary (%s) with pg_basebackup, then starting as its standby", data,
		       state, environment->primary_host_list);
	else if (environment->primary_host_list)
		choose(decision, ENTRYPOINT_CLONE, true,
		       "PGDATA %s is %s and PGHA_BOOTSTRAP is not 1, so no new cluster is made: copying the primary "
		       "(%s) with pg_basebackup, then starting as its standby (pghad promotes it if it must)",
		       data, state, environment->primary_host_list);
	else
		refuse(decision, PGHA_EXIT_CONFIG,
		       "PGDATA %s is %s, PGHA_ROLE=primary without PGHA_BOOTSTRAP=1 may not initialize a new cluster "
		       "(a primary that lost its data is never re-created empty), and no PGHA_PRIMARY_HOST names a "
		       "primary to copy: nothing to start",
		       data, state);
}

/* A PostgreSQL data directory: started as it is, or rewound first when it is a former
 * primary that must now follow another, or a standby that pghad found diverged. */
static void decide_cluster(const struct entrypoint_environment *environment, const struct entrypoint_found *found,
			   struct entrypoint_decision *decision)
{
	const char *data = environment->data;
	int data_version = found->data.major_version, server_version = found->server_major_version;

	if (found->postmaster) {
		refuse(decision, PGHA_EXIT_FAILURE,
		       "PostgreSQL already runs on PGDATA %s (postmaster pid %ld, named in its postmaster.pid): "
		       "pgha-entrypoint does not touch a running data directory",
		       data, (long)found->postmaster);
		return;
	}
	if (data_version && server_version && data_version != server_version) {
		refuse(decision, PGHA_EXIT_POSTGRESQL,
		       "PGDATA %s holds a PostgreSQL %d data directory but the server programs are PostgreSQL %d: "
		       "pgha-entrypoint does not upgrade; run an image of PostgreSQL %d (or upgrade with pg_upgrade)",
		       data, data_version, server_version, data_version);
		return;
	}
	if (environment->role == ENTRYPOINT_PRIMARY)
		choose(decision, ENTRYPOINT_START, false, "PGDATA %s holds a PostgreSQL data directory%s: starting it as it is",
		       data,
		       found->data.standby_signal ? " of a standby (standby.signal; pghad promotes it if it must)" : "");
	else if (found->data.standby_signal && environment->rewind)
		choose(decision, ENTRYPOINT_REWIND, true,
		       "PGDATA %s holds a standby's data directory (standby.signal) whose WAL pghad found diverged from "
		       "the primary's history (PGHA_REWIND=1): pg_rewind from the primary (%s), then starting as its "
		       "standby; should pg_rewind fail, the directory is moved aside (kept) and the primary copied again",
		       data, environment->primary_host_list);
	else if (found->data.standby_signal)
		choose(decision, ENTRYPOINT_START, true,
		       "PGDATA %s holds a standby's data directory (standby.signal): starting it as it is, following "
		       "the primary (%s)",
		       data, environment->primary_host_list);
	else
		choose(decision, ENTRYPOINT_REWIND, true,
		       "PGDATA %s holds the data directory of a former primary (no standby.signal) and PGHA_ROLE=standby: "
		       "pg_rewind from the primary (%s), then starting as its standby; should pg_rewind fail, the "
		       "directory is moved aside (kept) and the primary copied again",
		       data, environment->primary_host_list);
}

void entrypoint_decide(const struct entrypoint_environment *environment, const struct entrypoint_found *found,
		       struct entrypoint_decision *decision)
{
	const struct datadir_contents *contents = &found->data;
	const char *data = environment->data;

	*decision = (struct entrypoint_decision){0};
	switch (contents->kind) {
	case DATADIR_MISSING:
		decide_empty(environment, "missing", decision);
		return;
	case DATADIR_EMPTY:
		decide_empty(environment, "empty", decision);
		return;
	case DATADIR_CLUSTER:
		decide_cluster(environment, found, decision);
		return;
	case DATADIR_FOREIGN:
		if (!contents->pg_version)
			refuse(decision, PGHA_EXIT_DATA,
			       "PGDATA %s holds %zu %s but no PG_VERSION: not a PostgreSQL data directory; "
			       "pgha-entrypoint does not touch it",
			       data, contents->entries, contents->entries == 1 ? "entry" : "entries");
		else
			refuse(decision, PGHA_EXIT_DATA,
			       "PGDATA %s holds PG_VERSION but no global/pg_control: an incomplete or damaged PostgreSQL "
			       "data directory; pgha-entrypoint does not touch it",
			       data);
		return;
	case DATADIR_NOT_DIRECTORY:
		refuse(decision, PGHA_EXIT_DATA, "PGDATA %s is not a directory: pgha-entrypoint does not touch it", data);
		return;
	case DATADIR_UNREADABLE:
		refuse(decision,
		       contents->error == EACCES || contents->error == EPERM ? PGHA_EXIT_PERMISSION : PGHA_EXIT_DATA,
		       "cannot examine PGDATA %s: %s; pgha-entrypoint does not touch it", data, strerror(contents->error));
		return;
	}
	refuse(decision, PGHA_EXIT_INTERNAL, "PGDATA %s: unknown kind of directory %d", data, (int)contents->kind);
}

const char *entrypoint_action_name(enum entrypoint_action action)
{
	static const char *const names[] = {
		[ENTRYPOINT_INITIALIZE] = "initialize", [ENTRYPOINT_CLONE] = "clone", [ENTRYPOINT_REWIND] = "rewind",
		[ENTRYPOINT_START] = "start",           [ENTRYPOINT_REFUSE] = "refuse",
	};
	return (size_t)action < sizeof names / sizeof names[0] ? names[action] : "unknown";
}

int entrypoint_next_delay_ms(int delay_ms)
{
	if (delay_ms < ENTRYPOINT_FIRST_DELAY_MS)
		return ENTRYPOINT_FIRST_DELAY_MS;
	return delay_ms >= ENTRYPOINT_MAX_DELAY_MS / 2 ? ENTRYPOINT_MAX_DELAY_MS : 2 * delay_ms;
}

bool entrypoint_password(const char *content, size_t length, char *password, size_t password_size, char *why,
			 size_t why_size)
{
	/* one line break at the end is how files are usually written: it is not part of the password */
	if (length > 0 && content[length - 1] == '\n')
		length--;
	if (length > 0 && content[length - 1] == '\r')
		length--;
	if (length == 0) {
		snprintf(why, why_size, "it is empty");
		return false;
	}
	if (memchr(content, '\0', length)) {
		snprintf(why, why_size, "it holds a NUL byte");
		return false;
	}
	if (memchr(content, '\n', length) || memchr(content, '\r', length)) {
		/* initdb reads one line, and a password file holds one entry per line */
		snprintf(why, why_size, "it holds a line break before its end");
		return false;
	}
	if (length >= password_size) {
		snprintf(why, why_size, "it is longer than %zu bytes", password_size - 1);
		return false;
	}
	memcpy(password, content, length);
	password[length] = '\0';
	return true;
}

void entrypoint_last_line(const char *output, char *line, size_t size)
{
	const char *end = output + strlen(output);

	line[0] = '\0';
	while (end > output) {
		while (end > output && isspace((unsigned char)end[-1]))
			end--;
		const char *start = end;
		while (start > output && start[-1] != '\n')
			start--;
		while (start < end && isspace((unsigned char)*start))
			start++;
		if (start < end) {
			size_t length = (size_t)(end - start) < size - 1 ? (size_t)(end - start) : size - 1;
			memcpy(line, start, length);
			line[length] = '\0';
			return;
		}
		end = start;
	}
}

static const char *const rejoin_outcomes[] = {
	[ENTRYPOINT_REJOIN_REWOUND] = "rewound",
	[ENTRYPOINT_REJOIN_CLONED] = "cloned",
	[ENTRYPOINT_REJOIN_MOVED_ASIDE] = "moved-aside",
};

char *entrypoint_render_rejoin(enum entrypoint_rejoin outcome, const char *sentence)
{
	char *text = xasprintf("%s: %s\n", rejoin_outcomes[outcome], sentence);
	/* one line, whatever a program's output put into the sentence */
	for (char *c = text; c[1]; c++)
		if (iscntrl((unsigned char)*c))
			*c = ' ';
	return text;
}

enum entrypoint_rejoin entrypoint_parse_rejoin(const char *content, char *sentence, size_t sentence_size)
{
	sentence[0] = '\0';
	if (!content)
		return ENTRYPOINT_REJOIN_UNKNOWN;
	for (size_t outcome = ENTRYPOINT_REJOIN_REWOUND; outcome < sizeof rejoin_outcomes / sizeof rejoin_outcomes[0];
	     outcome++) {
		size_t length = strlen(rejoin_outcomes[outcome]);
		if (strncmp(content, rejoin_outcomes[outcome], length) != 0 || strncmp(content + length, ": ", 2) != 0)
			continue;
		const char *start = content + length + 2;
		size_t taken = strcspn(start, "\n");
		if (taken >= sentence_size)
			taken = sentence_size - 1;
		for (size_t i = 0; i < taken; i++)
			sentence[i] = iscntrl((unsigned char)start[i]) ? ' ' : start[i];
		sentence[taken] = '\0';
		return (enum entrypoint_rejoin)outcome;
	}
	return ENTRYPOINT_REJOIN_UNKNOWN;
}

/* ---- pg_control in the termination message ---- */

/* The value after "label:" in pg_controldata's output, blanks skipped; NULL when absent. */
static const char *controldata_value(const char *output, const char *label)
{
	const char *line = strstr(output, label);
	if (!line)
		return NULL;
	line += strlen(label);
	return line + strspn(line, " \t");
}

bool entrypoint_parse_controldata(const char *output, struct entrypoint_control *control)
{
	*control = (struct entrypoint_control){0};
	if (!output)
		return false;
	const char *location = controldata_value(output, "Latest checkpoint location:");
	const char *state = controldata_value(output, "Database cluster state:");
	const char *timeline = controldata_value(output, "Latest checkpoint's TimeLineID:");
	control->checkpoint_lsn = location ? pg_lsn_parse(location) : 0;
	if (!control->checkpoint_lsn || !state || !timeline)
		return false;
	control->shut_down = strncmp(state, "shut down\n", 10) == 0;
	control->timeline = (uint32_t)strtoul(timeline, NULL, 10);
	return control->timeline > 0;
}

#define CONTROL_PREFIX "pgha-entrypoint pg_control: "

char *entrypoint_render_control(const struct entrypoint_control *control)
{
	char lsn[32];
	pg_lsn_format(lsn, sizeof lsn, control->checkpoint_lsn);
	return xasprintf(CONTROL_PREFIX "state=%s checkpoint=%s timeline=%u\n",
			 control->shut_down ? "shut-down" : "not-shut-down", lsn, control->timeline);
}

bool entrypoint_parse_control(const char *message, struct entrypoint_control *control)
{
	char state[32], lsn[32];
	unsigned timeline;

	*control = (struct entrypoint_control){0};
	if (!message || strncmp(message, CONTROL_PREFIX, strlen(CONTROL_PREFIX)) != 0 ||
	    sscanf(message + strlen(CONTROL_PREFIX), "state=%31s checkpoint=%31s timeline=%u", state, lsn, &timeline) != 3)
		return false;
	if (strcmp(state, "shut-down") != 0 && strcmp(state, "not-shut-down") != 0)
		return false;
	control->shut_down = strcmp(state, "shut-down") == 0;
	control->checkpoint_lsn = pg_lsn_parse(lsn);
	control->timeline = (uint32_t)timeline;
	return control->checkpoint_lsn != 0 && timeline > 0;
}

/* ---- the files ---- */

char *entrypoint_render_settings(const struct entrypoint_environment *environment, const char *socket_dir)
{
	char port[16];
	char *text = xasprintf("# Written by pgha-entrypoint each time member %s starts: changes here are lost.\n"
			       "# pghad sets the cluster's parameters with ALTER SYSTEM, which overrides this file.\n",
			       environment->member);

	snprintf(port, sizeof port, "%d", environment->port);
	datadir_append_setting(&text, "listen_addresses", environment->listen);
	datadir_append_setting(&text, "port", port);
	datadir_append_setting(&text, "unix_socket_directories", socket_dir);
	datadir_append_setting(&text, "cluster_name", environment->member);
	datadir_append_setting(&text, "hot_standby", "on");
	datadir_append_setting(&text, "wal_level", "replica");
	/* pg_rewind needs hints or checksums; initdb turns checksums on, hints cover copies of others */
	datadir_append_setting(&text, "wal_log_hints", "on");
	datadir_append_setting(&text, "max_wal_senders", WAL_SENDERS);
	datadir_append_setting(&text, "max_replication_slots", WAL_SENDERS);
	datadir_append_setting(&text, "wal_keep_size", WAL_KEEP_SIZE);
	/* a standby answers its primary at least every second, even with no WAL to confirm:
	 * the primary's self-fence counts a standby as reached when its answers change
	 * pg_stat_replication.reply_time between two of its rounds a second apart, since a
	 * walsender whose standby is cut off stays "streaming" until wal_sender_timeout;
	 * pghad stops counting one as streaming when it has not answered for a few
	 * intervals (config_standby_reply_bound_ms); a cluster's parameters (ALTER SYSTEM)
	 * override it, and pghad's bound follows them */
	datadir_append_setting(&text, "wal_receiver_status_interval", "1s");
	char *tail = xasprintf("%sinclude_if_exists = 'pgha-standby.conf'\n", text);
	free(text);
	return tail;
}

char *entrypoint_primary_conninfo(const struct entrypoint_environment *environment, const char *host,
				  const char *passfile)
{
	char port[16];
	char *conninfo = NULL;

	snprintf(port, sizeof port, "%d", environment->primary_port);
	pg_conninfo_append(&conninfo, "host", host ? host : environment->primary_host_list);
	pg_conninfo_append(&conninfo, "port", port);
	pg_conninfo_append(&conninfo, "user", REPLICATION_ROLE);
	pg_conninfo_append(&conninfo, "passfile", passfile);
	pg_conninfo_append(&conninfo, "application_name", environment->member);
	if (!host)
		pg_conninfo_append(&conninfo, "target_session_attrs", "read-write");
	/* a primary that hangs must not keep the walreceiver waiting forever */
	pg_conninfo_append(&conninfo, "connect_timeout", "5");
	pg_conninfo_append_receiver_timeouts(&conninfo);
	return conninfo;
}

char *entrypoint_render_standby(const struct entrypoint_environment *environment, const char *conninfo)
{
	char *text = xstrdup("# Written by pgha-entrypoint: whom this standby follows when it starts.\n"
			     "# pghad changes it with ALTER SYSTEM when the primary changes.\n");

	datadir_append_setting(&text, "primary_conninfo", conninfo);
	if (environment->slot)
		datadir_append_setting(&text, "primary_slot_name", environment->slot);
	return text;
}

const char *entrypoint_hba(void)
{
	return "# Written by pgha-entrypoint each time the member starts: changes here are lost.\n"
	       "# Peer authentication over the Unix socket; passwords (SCRAM) over TCP from anywhere:\n"
	       "# pghad, the other members and clients all come over the pod network.\n"
	       "# TYPE  DATABASE     USER  ADDRESS  METHOD\n"
	       "local   all          all            peer\n"
	       "local   replication  all            peer\n"
	       "host    all          all   all      scram-sha-256\n"
	       "host    replication  all   all      scram-sha-256\n";
}
