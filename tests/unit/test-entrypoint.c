/* test-entrypoint: pgha-entrypoint's environment checks, its decision over every kind of data directory, the files it writes, and its supervisor's signal table. */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "entrypoint.h"
#include "exitcode.h"
#include "supervise.h"
#include "tap.h"

/* An environment as a NULL-terminated list of "NAME=value". */
static const char *lookup(const char *name, void *context)
{
	const char *const *entries = context;
	size_t length = strlen(name);

	for (size_t i = 0; entries[i]; i++)
		if (strncmp(entries[i], name, length) == 0 && entries[i][length] == '=')
			return entries[i] + length + 1;
	return NULL;
}

#define SECRETS "PGHA_SECRETS_DIR=/etc/pgha/secrets"

static const struct {
	const char *name;
	const char *entries[16];
	const char *error; /* NULL: valid; else a part of the errors */
} environment_cases[] = {
	{"the smallest valid environment", {"PGDATA=/d/pgdata", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary"}, NULL},
	{"a standby with its primary", {"PGDATA=/d/pgdata", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby",
					"PGHA_PRIMARY_HOST=10.0.0.5,test-rw", "PGHA_SLOT=test_1"}, NULL},
	{"nothing set: each required variable named", {NULL}, "PGDATA is not set"},
	{"PGHA_MEMBER missing", {"PGDATA=/d/pgdata", "PGHA_ROLE=primary"}, "PGHA_MEMBER is not set"},
	{"PGHA_MEMBER empty, as Kubernetes writes an unset value", {"PGDATA=/d", "PGHA_MEMBER=", "PGHA_ROLE=primary"},
	 "PGHA_MEMBER is not set"},
	{"PGDATA relative", {"PGDATA=data", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary"},
	 "PGDATA=data is not an absolute path"},
	{"PGDATA the root", {"PGDATA=///", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary"}, "root directory"},
	{"a member name that is no label", {"PGDATA=/d", "PGHA_MEMBER=Test_0", "PGHA_ROLE=primary"},
	 "PGHA_MEMBER=Test_0 is not usable"},
	{"an unknown role", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=leader"},
	 "PGHA_ROLE=leader is neither primary nor standby"},
	{"a standby without a primary", {"PGDATA=/d", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby"},
	 "PGHA_ROLE=standby needs PGHA_PRIMARY_HOST"},
	{"a port out of range", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary", "PGHA_PORT=70000"},
	 "PGHA_PORT=70000 is not a whole number from 1 to 65535"},
	{"a port with a sign", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary", "PGHA_PORT=+5432"},
	 "PGHA_PORT=+5432"},
	{"a primary port that is no number", {"PGDATA=/d", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby",
					      "PGHA_PRIMARY_HOST=h", "PGHA_PRIMARY_PORT=5432x"},
	 "PGHA_PRIMARY_PORT=5432x"},
	{"PGHA_BOOTSTRAP neither 1 nor 0", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary",
					    "PGHA_BOOTSTRAP=yes"},
	 "PGHA_BOOTSTRAP=yes is neither 1 nor 0"},
	{"an empty host in the list", {"PGDATA=/d", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby",
				       "PGHA_PRIMARY_HOST=a,,b"},
	 "empty or overlong host"},
	{"a blank in the host list", {"PGDATA=/d", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby",
				      "PGHA_PRIMARY_HOST=a, b"},
	 "holds a blank"},
	{"a slot name with '-'", {"PGDATA=/d", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby", "PGHA_PRIMARY_HOST=h",
				  "PGHA_SLOT=test-1"},
	 "PGHA_SLOT=test-1 is not a replication slot name"},
	{"a relative secrets directory", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary",
					  "PGHA_SECRETS_DIR=secrets"},
	 "PGHA_SECRETS_DIR=secrets is not an absolute path"},
	{"a relative socket directory", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary",
					 "PGHA_SOCKET_DIR=run"},
	 "PGHA_SOCKET_DIR=run"},
	{"a relative bindir", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary", "PGHA_BINDIR=bin"},
	 "PGHA_BINDIR=bin"},
	{"a negative wait", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary", "PGHA_WAIT_TIMEOUT=-1"},
	 "PGHA_WAIT_TIMEOUT=-1"},
	{"an unknown log level", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary", "PGHA_LOG_LEVEL=loud"},
	 "PGHA_LOG_LEVEL=loud"},
	{"a standby to rewind", {"PGDATA=/d", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby", "PGHA_PRIMARY_HOST=h",
				 "PGHA_REWIND=1"}, NULL},
	{"PGHA_REWIND neither 1 nor 0", {"PGDATA=/d", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby",
					 "PGHA_PRIMARY_HOST=h", "PGHA_REWIND=yes"},
	 "PGHA_REWIND=yes is neither 1 nor 0"},
	{"a primary to rewind", {"PGDATA=/d", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary", "PGHA_PRIMARY_HOST=h",
				 "PGHA_REWIND=1"},
	 "PGHA_REWIND=1 needs PGHA_ROLE=standby"},
	{"several mistakes, all reported", {"PGDATA=rel", "PGHA_MEMBER=test-0", "PGHA_ROLE=leader", "PGHA_PORT=0"},
	 "PGDATA=rel is not an absolute path\nPGHA_ROLE=leader is neither primary nor standby\nPGHA_PORT=0"},
};

/* errors on one line, for a TAP description */
static const char *one_line(char *errors)
{
	for (char *c = errors; *c; c++)
		if (*c == '\n')
			*c = '|';
	return errors;
}

static void test_environment_cases(void)
{
	char errors[4096];

	for (size_t i = 0; i < sizeof environment_cases / sizeof environment_cases[0]; i++) {
		struct entrypoint_environment environment;
		bool valid = entrypoint_read_environment(lookup, (void *)environment_cases[i].entries, &environment,
							 errors, sizeof errors);
		if (!environment_cases[i].error)
			ok(valid && errors[0] == '\0', "environment: %s is valid%s%s", environment_cases[i].name,
			   errors[0] ? ": " : "", errors);
		else {
			bool refused = !valid && strstr(errors, environment_cases[i].error);
			ok(refused, "environment: %s is refused: %s", environment_cases[i].name, one_line(errors));
		}
		entrypoint_environment_free(&environment);
	}
}

static void test_environment_values(void)
{
	char errors[4096];
	struct entrypoint_environment environment;
	const char *const defaults[] = {"PGDATA=/var/lib/postgresql/data/pgdata/", "PGHA_MEMBER=test-0",
					"PGHA_ROLE=primary", "PGHA_LISTEN=", NULL};

	ok(entrypoint_read_environment(lookup, (void *)defaults, &environment, errors, sizeof errors),
	   "defaults: valid");
	is_str(environment.data, "/var/lib/postgresql/data/pgdata", "defaults: PGDATA loses its trailing '/'");
	is_int(environment.port, 5432, "defaults: port 5432");
	is_int(environment.primary_port, 5432, "defaults: the primary's port is the member's");
	is_int(environment.bootstrap, false, "defaults: no bootstrap");
	is_int(environment.rewind, false, "defaults: no rewind");
	is_str(environment.listen, "*", "defaults: an empty PGHA_LISTEN listens everywhere");
	is_str(environment.secrets_dir, "/etc/pgha/secrets", "defaults: the contract's secrets directory");
	ok(environment.socket_dir == NULL, "defaults: the socket directory is chosen at start");
	ok(environment.bindir == NULL, "defaults: the programs are searched");
	ok(environment.slot == NULL && environment.cluster == NULL, "defaults: no slot, no cluster");
	is_int(environment.wait_timeout_s, 600, "defaults: waits 600 s for the primary");
	is_int(environment.log_level, LOG_LEVEL_INFO, "defaults: info");
	is_int(environment.initdb_nosync, false, "defaults: initdb syncs");
	entrypoint_environment_free(&environment);

	const char *const given[] = {"PGDATA=/d/pgdata", "PGHA_MEMBER=test-2", "PGHA_ROLE=standby",
				     "PGHA_CLUSTER=test", "PGHA_PORT=6000", "PGHA_PRIMARY_HOST=10.0.0.5,test-rw",
				     "PGHA_PRIMARY_PORT=6001", "PGHA_SLOT=test_2", "PGHA_LISTEN=10.0.0.7",
				     "PGHA_SOCKET_DIR=", "PGHA_WAIT_TIMEOUT=0", "PGHA_LOG_LEVEL=debug",
				     "PGHA_BOOTSTRAP=1", "PGHA_TEST_INITDB_NOSYNC=1", NULL};
	ok(entrypoint_read_environment(lookup, (void *)given, &environment, errors, sizeof errors), "given: valid");
	is_int(environment.role, ENTRYPOINT_STANDBY, "given: standby");
	is_str(environment.cluster, "test", "given: cluster");
	is_int(environment.port, 6000, "given: port");
	is_int(environment.primary_port, 6001, "given: primary port");
	is_int(environment.primary_host_count, 2, "given: two primary hosts");
	ok(environment.primary_host_count == 2 && strcmp(environment.primary_hosts[0], "10.0.0.5") == 0 &&
		   strcmp(environment.primary_hosts[1], "test-rw") == 0,
	   "given: the hosts in order");
	is_str(environment.primary_host_list, "10.0.0.5,test-rw", "given: the list as given");
	is_str(environment.slot, "test_2", "given: slot");
	is_str(environment.listen, "10.0.0.7", "given: listen");
	is_str(environment.socket_dir, "", "given: an empty PGHA_SOCKET_DIR means no Unix socket");
	is_int(environment.wait_timeout_s, 0, "given: no wait");
	is_int(environment.log_level, LOG_LEVEL_DEBUG, "given: debug");
	ok(environment.bootstrap && environment.initdb_nosync, "given: bootstrap, nosync");
	entrypoint_environment_free(&environment);

	for (size_t i = 0; i < entrypoint_variable_count; i++)
		ok(entrypoint_variables[i].doc && entrypoint_variables[i].doc[0] && entrypoint_variables[i].parse,
		   "variable %s has a doc line and a parser", entrypoint_variables[i].name);
}

/* ---- the decision ---- */

enum role_case { PRIMARY, PRIMARY_BOOTSTRAP, PRIMARY_WITH_HOST, STANDBY, STANDBY_REWIND };

static const struct {
	const char *name;
	enum role_case role;
	struct datadir_contents data;
	int server_version;
	pid_t postmaster;
	enum entrypoint_action action;
	bool follow;
	int exit_status;        /* for a refusal */
	const char *reason;     /* a part of the reason */
} decision_cases[] = {
	{"missing, bootstrap primary: initdb", PRIMARY_BOOTSTRAP, {.kind = DATADIR_MISSING}, 15, 0,
	 ENTRYPOINT_INITIALIZE, false, 0, "is missing and this member bootstraps"},
	{"empty, bootstrap primary: initdb", PRIMARY_BOOTSTRAP, {.kind = DATADIR_EMPTY}, 15, 0, ENTRYPOINT_INITIALIZE,
	 false, 0, "initdb"},
	{"empty, standby: clone", STANDBY, {.kind = DATADIR_EMPTY}, 15, 0, ENTRYPOINT_CLONE, true, 0,
	 "copying the primary (10.0.0.5,test-rw)"},
	{"missing, standby: clone", STANDBY, {.kind = DATADIR_MISSING}, 15, 0, ENTRYPOINT_CLONE, true, 0,
	 "is missing: copying"},
	{"empty, primary without bootstrap but with a primary: clone, never initdb", PRIMARY_WITH_HOST,
	 {.kind = DATADIR_EMPTY}, 15, 0, ENTRYPOINT_CLONE, true, 0, "PGHA_BOOTSTRAP is not 1, so no new cluster"},
	{"empty, primary without bootstrap nor primary: refuse", PRIMARY, {.kind = DATADIR_EMPTY}, 15, 0,
	 ENTRYPOINT_REFUSE, false, PGHA_EXIT_CONFIG, "never re-created empty"},
	{"foreign files: refuse, counted", STANDBY, {.kind = DATADIR_FOREIGN, .entries = 3}, 15, 0, ENTRYPOINT_REFUSE,
	 false, PGHA_EXIT_DATA,
	 "PGDATA /v/pgdata holds 3 entries but no PG_VERSION: not a PostgreSQL data directory; pgha-entrypoint does "
	 "not touch it"},
	{"one foreign file, even for a bootstrap primary: refuse", PRIMARY_BOOTSTRAP,
	 {.kind = DATADIR_FOREIGN, .entries = 1}, 15, 0, ENTRYPOINT_REFUSE, false, PGHA_EXIT_DATA,
	 "holds 1 entry but no PG_VERSION"},
	{"PG_VERSION without pg_control: refuse", STANDBY, {.kind = DATADIR_FOREIGN, .entries = 5, .pg_version = true},
	 15, 0, ENTRYPOINT_REFUSE, false, PGHA_EXIT_DATA, "PG_VERSION but no global/pg_control"},
	{"a file where the directory should be: refuse", PRIMARY_BOOTSTRAP, {.kind = DATADIR_NOT_DIRECTORY}, 15, 0,
	 ENTRYPOINT_REFUSE, false, PGHA_EXIT_DATA, "is not a directory"},
	{"unreadable for lack of permission: refuse", STANDBY, {.kind = DATADIR_UNREADABLE, .error = EACCES}, 15, 0,
	 ENTRYPOINT_REFUSE, false, PGHA_EXIT_PERMISSION, "Permission denied"},
	{"unreadable otherwise: refuse", STANDBY, {.kind = DATADIR_UNREADABLE, .error = EIO}, 15, 0,
	 ENTRYPOINT_REFUSE, false, PGHA_EXIT_DATA, "Input/output error"},
	{"a primary's directory, primary: start as is", PRIMARY,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .major_version = 15}, 15, 0,
	 ENTRYPOINT_START, false, 0, "starting it as it is"},
	{"a data directory is never initialized again, bootstrap or not", PRIMARY_BOOTSTRAP,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .major_version = 15}, 15, 0,
	 ENTRYPOINT_START, false, 0, "as it is"},
	{"a standby's directory, primary: start as is, pghad promotes", PRIMARY,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .standby_signal = true,
	  .major_version = 15},
	 15, 0, ENTRYPOINT_START, false, 0, "pghad promotes it if it must"},
	{"a standby's directory, standby: start as is, following", STANDBY,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .standby_signal = true,
	  .major_version = 15},
	 15, 0, ENTRYPOINT_START, true, 0, "standby.signal"},
	{"a former primary, standby: rewind", STANDBY,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .major_version = 15}, 15, 0,
	 ENTRYPOINT_REWIND, true, 0, "pg_rewind from the primary (10.0.0.5,test-rw)"},
	{"a standby's directory, PGHA_REWIND=1: rewind although standby.signal is there", STANDBY_REWIND,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .standby_signal = true,
	  .major_version = 15},
	 15, 0, ENTRYPOINT_REWIND, true, 0,
	 "standby's data directory (standby.signal) whose WAL pghad found diverged from the primary's history "
	 "(PGHA_REWIND=1): pg_rewind from the primary (10.0.0.5,test-rw)"},
	{"a standby's directory, PGHA_REWIND=1: moved aside if pg_rewind fails, never deleted", STANDBY_REWIND,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .standby_signal = true,
	  .major_version = 15},
	 15, 0, ENTRYPOINT_REWIND, true, 0, "the directory is moved aside (kept)"},
	{"a former primary, PGHA_REWIND=1: rewind", STANDBY_REWIND,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .major_version = 15}, 15, 0,
	 ENTRYPOINT_REWIND, true, 0, "former primary (no standby.signal)"},
	{"empty, PGHA_REWIND=1: nothing to rewind, clone", STANDBY_REWIND, {.kind = DATADIR_EMPTY}, 15, 0,
	 ENTRYPOINT_CLONE, true, 0, "copying the primary (10.0.0.5,test-rw)"},
	{"missing, PGHA_REWIND=1: clone", STANDBY_REWIND, {.kind = DATADIR_MISSING}, 15, 0, ENTRYPOINT_CLONE, true, 0,
	 "is missing: copying"},
	{"a running postmaster, PGHA_REWIND=1: refuse, not rewound under it", STANDBY_REWIND,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .standby_signal = true,
	  .major_version = 15},
	 15, 4242, ENTRYPOINT_REFUSE, false, PGHA_EXIT_FAILURE, "postmaster pid 4242"},
	{"foreign files, PGHA_REWIND=1: refuse", STANDBY_REWIND, {.kind = DATADIR_FOREIGN, .entries = 3}, 15, 0,
	 ENTRYPOINT_REFUSE, false, PGHA_EXIT_DATA, "not a PostgreSQL data directory"},
	{"another major version, PGHA_REWIND=1: refuse", STANDBY_REWIND,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .standby_signal = true,
	  .major_version = 14},
	 15, 0, ENTRYPOINT_REFUSE, false, PGHA_EXIT_POSTGRESQL, "does not upgrade"},
	{"a running postmaster: refuse", STANDBY,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .major_version = 15}, 15, 4242,
	 ENTRYPOINT_REFUSE, false, PGHA_EXIT_FAILURE, "postmaster pid 4242"},
	{"another major version: refuse, no upgrade", PRIMARY,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .major_version = 14}, 15, 0,
	 ENTRYPOINT_REFUSE, false, PGHA_EXIT_POSTGRESQL, "PostgreSQL 14 data directory but the server programs are "
							 "PostgreSQL 15"},
	{"an unknown server version does not stop a start", PRIMARY,
	 {.kind = DATADIR_CLUSTER, .entries = 20, .pg_version = true, .pg_control = true, .major_version = 14}, 0, 0,
	 ENTRYPOINT_START, false, 0, "as it is"},
};

static void test_decision_cases(void)
{
	char errors[4096];

	for (size_t i = 0; i < sizeof decision_cases / sizeof decision_cases[0]; i++) {
		const char *primary[] = {"PGDATA=/v/pgdata", "PGHA_MEMBER=test-0", "PGHA_ROLE=primary", NULL, NULL};
		const char *standby[] = {"PGDATA=/v/pgdata", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby",
					 "PGHA_PRIMARY_HOST=10.0.0.5,test-rw", NULL};
		const char *rewind[] = {"PGDATA=/v/pgdata", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby",
					"PGHA_PRIMARY_HOST=10.0.0.5,test-rw", "PGHA_REWIND=1", NULL};
		const char **entries = decision_cases[i].role == STANDBY	  ? standby
				       : decision_cases[i].role == STANDBY_REWIND ? rewind
										  : primary;
		if (decision_cases[i].role == PRIMARY_BOOTSTRAP)
			primary[3] = "PGHA_BOOTSTRAP=1";
		if (decision_cases[i].role == PRIMARY_WITH_HOST)
			primary[3] = "PGHA_PRIMARY_HOST=10.0.0.5";
		struct entrypoint_environment environment;
		if (!entrypoint_read_environment(lookup, entries, &environment, errors, sizeof errors)) {
			ok(false, "decision: %s: environment refused: %s", decision_cases[i].name, errors);
			continue;
		}
		struct entrypoint_found found = {.data = decision_cases[i].data,
						 .server_major_version = decision_cases[i].server_version,
						 .postmaster = decision_cases[i].postmaster};
		struct entrypoint_decision decision;
		entrypoint_decide(&environment, &found, &decision);
		bool right = decision.action == decision_cases[i].action && decision.follow == decision_cases[i].follow &&
			     (decision.action != ENTRYPOINT_REFUSE || decision.exit_status == decision_cases[i].exit_status) &&
			     strstr(decision.reason, decision_cases[i].reason);
		if (!ok(right, "decision: %s", decision_cases[i].name))
			diag("got %s (follow %d, exit %d): %s", entrypoint_action_name(decision.action), decision.follow,
			     decision.exit_status, decision.reason);
		entrypoint_environment_free(&environment);
	}
}

/* ---- the rest ---- */

static void test_delays(void)
{
	int delays[8], delay = 0;

	for (size_t i = 0; i < 8; i++)
		delays[i] = delay = entrypoint_next_delay_ms(delay);
	ok(delays[0] == 500 && delays[1] == 1000 && delays[2] == 2000 && delays[3] == 4000 && delays[4] == 5000 &&
		   delays[7] == 5000,
	   "the wait doubles from 0.5 s to at most 5 s: %d %d %d %d %d ... %d", delays[0], delays[1], delays[2],
	   delays[3], delays[4], delays[7]);
}

static void test_passwords(void)
{
	static const struct {
		const char *content;
		size_t length;
		const char *password; /* NULL: refused */
		const char *why;
	} cases[] = {
		{"s3cret", 6, "s3cret", NULL},
		{"s3cret\n", 7, "s3cret", NULL},
		{"s3cret\r\n", 8, "s3cret", NULL},
		{"with: colon\\ and 'quote' ", 25, "with: colon\\ and 'quote' ", NULL},
		{"", 0, NULL, "empty"},
		{"\n", 1, NULL, "empty"},
		{"two\nlines", 9, NULL, "line break"},
		{"two\nlines\n", 10, NULL, "line break"},
		{"nul\0byte", 8, NULL, "NUL"},
	};
	char password[64], why[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool read = entrypoint_password(cases[i].content, cases[i].length, password, sizeof password, why,
						sizeof why);
		if (cases[i].password)
			ok(read && strcmp(password, cases[i].password) == 0, "password %zu is read as meant", i);
		else
			ok(!read && strstr(why, cases[i].why) && !strstr(why, "two") && !strstr(why, "nul"),
			   "password %zu is refused without being shown: %s", i, why);
	}
	ok(!entrypoint_password("0123456789", 10, password, 8, why, sizeof why) && strstr(why, "longer"),
	   "a password longer than the buffer is refused: %s", why);
}

/* The value libpq parses for key out of conninfo, or NULL. */
static char *parsed_value(const char *conninfo, const char *key)
{
	char *error = NULL;
	PQconninfoOption *options = PQconninfoParse(conninfo, &error);
	char *found = NULL;

	PQfreemem(error);
	for (PQconninfoOption *option = options; option && option->keyword; option++)
		if (strcmp(option->keyword, key) == 0 && option->val)
			found = strdup(option->val);
	PQconninfoFree(options);
	return found;
}

static void test_files(void)
{
	char errors[4096];
	struct entrypoint_environment environment;
	const char *const entries[] = {"PGDATA=/v/pgdata", "PGHA_MEMBER=test-1", "PGHA_ROLE=standby",
				       "PGHA_PORT=6000", "PGHA_PRIMARY_HOST=10.0.0.5,test-rw", "PGHA_SLOT=test_1",
				       "PGHA_LISTEN=10.0.0.7", NULL};

	if (!ok(entrypoint_read_environment(lookup, (void *)entries, &environment, errors, sizeof errors),
		"files: environment valid"))
		return;

	char *settings = entrypoint_render_settings(&environment, "/run/pg's");
	static const char *const expected_lines[] = {
		"listen_addresses = '10.0.0.7'\n", "port = '6000'\n", "unix_socket_directories = '/run/pg''s'\n",
		"cluster_name = 'test-1'\n", "hot_standby = 'on'\n", "wal_level = 'replica'\n", "wal_log_hints = 'on'\n",
		"max_wal_senders = '10'\n", "max_replication_slots = '10'\n", "wal_keep_size = '512MB'\n",
		"wal_receiver_status_interval = '1s'\n", "include_if_exists = 'pgha-standby.conf'\n",
	};
	for (size_t i = 0; i < sizeof expected_lines / sizeof expected_lines[0]; i++)
		ok(strstr(settings, expected_lines[i]) != NULL, "pgha.conf has %.*s", (int)strlen(expected_lines[i]) - 1,
		   expected_lines[i]);
	free(settings);

	char *reached = entrypoint_primary_conninfo(&environment, "10.0.0.5", "/v/pgdata.pgpass");
	char *host = parsed_value(reached, "host"), *port = parsed_value(reached, "port");
	char *user = parsed_value(reached, "user"), *name = parsed_value(reached, "application_name");
	char *passfile = parsed_value(reached, "passfile"), *attributes = parsed_value(reached, "target_session_attrs");
	ok(host && strcmp(host, "10.0.0.5") == 0 && port && strcmp(port, "5432") != 0 && strcmp(port, "6000") == 0,
	   "conninfo of the reached primary: its host and port: %s", reached);
	ok(user && strcmp(user, "pgha_replicator") == 0, "conninfo: as pgha_replicator");
	ok(name && strcmp(name, "test-1") == 0, "conninfo: application_name is the member");
	ok(passfile && strcmp(passfile, "/v/pgdata.pgpass") == 0, "conninfo: the password file, never a password");
	ok(attributes == NULL, "conninfo: one host needs no target_session_attrs");
	ok(!strstr(reached, "password="), "conninfo: no password in it");
	free(host), free(port), free(user), free(name), free(passfile), free(attributes);
	char *user_timeout = parsed_value(reached, "tcp_user_timeout"), *idle = parsed_value(reached, "keepalives_idle");
	ok(user_timeout && strcmp(user_timeout, "10000") == 0 && idle && strcmp(idle, "5") == 0,
	   "conninfo: a silent primary is given up within 10 s, with or without data unacknowledged");
	free(user_timeout), free(idle);

	char *any = entrypoint_primary_conninfo(&environment, NULL, "/v/pgdata.pgpass");
	host = parsed_value(any, "host");
	attributes = parsed_value(any, "target_session_attrs");
	ok(host && strcmp(host, "10.0.0.5,test-rw") == 0, "conninfo of a start as is: every host named");
	ok(attributes && strcmp(attributes, "read-write") == 0, "conninfo: of which the writable one");
	free(host), free(attributes);

	char *standby = entrypoint_render_standby(&environment, reached);
	ok(strstr(standby, "primary_conninfo = '") && strstr(standby, "primary_slot_name = 'test_1'\n"),
	   "pgha-standby.conf: primary_conninfo and the slot");
	free(standby);
	free(environment.slot);
	environment.slot = NULL;
	standby = entrypoint_render_standby(&environment, reached);
	ok(!strstr(standby, "primary_slot_name"), "pgha-standby.conf: no slot without PGHA_SLOT");
	free(standby);
	free(reached);
	free(any);

	const char *hba = entrypoint_hba();
	ok(strstr(hba, "\nlocal   all          all            peer\n") &&
		   strstr(hba, "\nhost    all          all   all      scram-sha-256\n") &&
		   strstr(hba, "\nhost    replication  all   all      scram-sha-256\n") && !strstr(hba, "trust"),
	   "pg_hba.conf: peer locally, SCRAM from anywhere, never trust");
	entrypoint_environment_free(&environment);
}

static void test_last_line(void)
{
	static const struct {
		const char *output;
		size_t size;
		const char *line;
	} cases[] = {
		{"pg_rewind: servers diverged\npg_rewind: error: could not find common ancestor\n", 128,
		 "pg_rewind: error: could not find common ancestor"},
		{"first\n  last with blanks around \t\n\n  \n", 128, "last with blanks around"},
		{"one line, no break", 128, "one line, no break"},
		{"", 128, ""},
		{"\n \n\t\n", 128, ""},
		{"a longer last line", 9, "a longer"},
	};
	char line[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		entrypoint_last_line(cases[i].output, line, cases[i].size);
		is_str(line, cases[i].line, "the last line of output %zu", i);
	}
}

static void test_rejoin_account(void)
{
	static const struct {
		enum entrypoint_rejoin outcome;
		const char *sentence;
	} outcomes[] = {
		{ENTRYPOINT_REJOIN_REWOUND, "rewound with pg_rewind from the primary at 10.0.0.5:5432"},
		{ENTRYPOINT_REJOIN_CLONED, "its volume held no data directory to rewind"},
		{ENTRYPOINT_REJOIN_MOVED_ASIDE, "pg_rewind exited with status 1: pg_rewind: error: x; its data directory "
						"is kept as /v/pgdata.unusable.20261202T190524Z"},
	};
	char sentence[256];

	for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
		char *text = entrypoint_render_rejoin(outcomes[i].outcome, outcomes[i].sentence);
		ok(strchr(text, '\n') == text + strlen(text) - 1, "rejoin account %zu is one line: %s", i, text);
		enum entrypoint_rejoin read = entrypoint_parse_rejoin(text, sentence, sizeof sentence);
		ok(read == outcomes[i].outcome && strcmp(sentence, outcomes[i].sentence) == 0,
		   "rejoin account %zu reads back as written: %s", i, sentence);
		free(text);
	}
	char *text = entrypoint_render_rejoin(ENTRYPOINT_REJOIN_MOVED_ASIDE, "failed\nwith\ra break");
	ok(entrypoint_parse_rejoin(text, sentence, sizeof sentence) == ENTRYPOINT_REJOIN_MOVED_ASIDE &&
		   strcmp(sentence, "failed with a break") == 0,
	   "a line break in the sentence does not end the account: %s", sentence);
	free(text);
	ok(entrypoint_parse_rejoin(NULL, sentence, sizeof sentence) == ENTRYPOINT_REJOIN_UNKNOWN && !sentence[0],
	   "no account: unknown");
	ok(entrypoint_parse_rejoin("", sentence, sizeof sentence) == ENTRYPOINT_REJOIN_UNKNOWN,
	   "an empty account: unknown");
	ok(entrypoint_parse_rejoin("rewound without a colon\n", sentence, sizeof sentence) == ENTRYPOINT_REJOIN_UNKNOWN,
	   "an account in another form: unknown");
	ok(entrypoint_parse_rejoin("promoted: by whom?\n", sentence, sizeof sentence) == ENTRYPOINT_REJOIN_UNKNOWN,
	   "an outcome pgha-entrypoint never writes: unknown");
	ok(entrypoint_parse_rejoin("cloned: a\001b\nsecond line\n", sentence, sizeof sentence) ==
			   ENTRYPOINT_REJOIN_CLONED &&
		   strcmp(sentence, "a b") == 0,
	   "only the first line, control characters replaced: %s", sentence);
	ok(entrypoint_parse_rejoin("rewound: 0123456789\n", sentence, 5) == ENTRYPOINT_REJOIN_REWOUND &&
		   strcmp(sentence, "0123") == 0,
	   "a sentence longer than the buffer is cut: %s", sentence);
}

/* The supervisor's table: the container's stop signals become an immediate shutdown (a
 * smart one would let a fenced member's sessions go on committing), the others pass. */
static void test_supervisor_signals(void)
{
	static const struct {
		int signo;
		enum supervise_action action;
		int postmaster_signal;
	} cases[] = {
		{SIGTERM, SUPERVISE_STOP, SIGQUIT},    {SIGINT, SUPERVISE_STOP, SIGQUIT},
		{SIGQUIT, SUPERVISE_STOP, SIGQUIT},    {SIGHUP, SUPERVISE_FORWARD, SIGHUP},
		{SIGUSR1, SUPERVISE_FORWARD, SIGUSR1}, {SIGUSR2, SUPERVISE_FORWARD, SIGUSR2},
		{SIGCHLD, SUPERVISE_REAP, 0},          {SIGPIPE, SUPERVISE_IGNORE, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int postmaster_signal = -1;
		enum supervise_action action = supervise_action_for(cases[i].signo, &postmaster_signal);
		is_int(action, cases[i].action, "SIG%s: its action", sigabbrev_np(cases[i].signo));
		is_int(postmaster_signal, cases[i].postmaster_signal, "SIG%s: what the postmaster gets",
		       sigabbrev_np(cases[i].signo));
	}
	/* every signal the supervisor waits for has an action other than ignoring it */
	for (const int *signo = supervise_signals; *signo; signo++) {
		int postmaster_signal;
		ok(supervise_action_for(*signo, &postmaster_signal) != SUPERVISE_IGNORE, "SIG%s is taken",
		   sigabbrev_np(*signo));
	}
	is_int(supervise_exit_status(0), 0, "exit 0");
	is_int(supervise_exit_status(3 << 8), 3, "exit 3");
	is_int(supervise_exit_status(SIGKILL), 128 + SIGKILL, "killed by SIGKILL: 137");
	is_int(supervise_exit_status(SIGQUIT | 0x80), 128 + SIGQUIT, "killed by SIGQUIT with a core: 131");
}

/* pg_control read after PostgreSQL exited, written as the termination message, read back
 * by pghad; a watch's exit asking for a clean shutdown. */
static void test_termination_message(void)
{
	/* pg_controldata 15 output, shortened */
	static const char shut_down[] = "pg_control version number:            1300\n"
					"Database cluster state:               shut down\n"
					"pg_control last modified:             Thu 03 Dec 2026 06:40:00 AM UTC\n"
					"Latest checkpoint location:           0/5000060\n"
					"Latest checkpoint's REDO location:    0/5000060\n"
					"Latest checkpoint's TimeLineID:       3\n";
	static const char crashed[] = "Database cluster state:               in production\n"
				      "Latest checkpoint location:           1/A0000028\n"
				      "Latest checkpoint's TimeLineID:       1\n";
	struct entrypoint_control control, read;

	ok(entrypoint_parse_controldata(shut_down, &control) && control.shut_down &&
		   control.checkpoint_lsn == 0x5000060 && control.timeline == 3,
	   "pg_controldata of a server shut down: its checkpoint and timeline");
	char *message = entrypoint_render_control(&control);
	is_str(message, "pgha-entrypoint pg_control: state=shut-down checkpoint=0/5000060 timeline=3\n",
	       "the termination message is one line");
	ok(entrypoint_parse_control(message, &read) && read.shut_down && read.checkpoint_lsn == 0x5000060 &&
		   read.timeline == 3,
	   "the termination message reads back as written");
	free(message);
	ok(entrypoint_parse_controldata(crashed, &control) && !control.shut_down &&
		   control.checkpoint_lsn == ((uint64_t)1 << 32 | 0xA0000028) && control.timeline == 1,
	   "pg_controldata of a server that did not shut down: not shut down");
	message = entrypoint_render_control(&control);
	ok(entrypoint_parse_control(message, &read) && !read.shut_down && read.checkpoint_lsn == control.checkpoint_lsn,
	   "a server that did not shut down reads back so: %s", message);
	free(message);
	ok(!entrypoint_parse_controldata("Database cluster state: shut down\n", &control),
	   "pg_controldata output without a checkpoint: not read");
	ok(!entrypoint_parse_controldata(NULL, &control), "no pg_controldata output: not read");
	ok(!entrypoint_parse_control(NULL, &read), "no termination message: not read");
	ok(!entrypoint_parse_control("Error: OOMKilled", &read), "a message someone else wrote: not read");
	ok(!entrypoint_parse_control("pgha-entrypoint pg_control: state=maybe checkpoint=0/1 timeline=1", &read),
	   "an unknown state: not read");
	ok(!entrypoint_parse_control("pgha-entrypoint pg_control: state=shut-down checkpoint=zz timeline=1", &read),
	   "a checkpoint that is not an LSN: not read");

	struct supervise_watch watch = {.stop_status = 86, .demote_status = 87};
	ok(supervise_watch_demotes(&watch, 87 << 8) && !supervise_watch_stops(&watch, 87 << 8),
	   "a watch ending with its demote status asks for a clean shutdown, not an immediate one");
	ok(supervise_watch_stops(&watch, 86 << 8) && !supervise_watch_demotes(&watch, 86 << 8),
	   "a watch ending with its stop status asks for an immediate shutdown");
	ok(!supervise_watch_demotes(&watch, SIGKILL), "a watch killed asks for nothing");
	watch.demote_status = 0;
	ok(!supervise_watch_demotes(&watch, 0), "a watch without a demote status never demotes");
}

int main(void)
{
	test_environment_cases();
	test_environment_values();
	test_decision_cases();
	test_delays();
	test_passwords();
	test_files();
	test_last_line();
	test_rejoin_account();
	test_supervisor_signals();
	test_termination_message();
	return done_testing();
}
