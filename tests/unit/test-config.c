/* test-config: the option table, parsing, defaults and every validation error, as tables of cases. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "memory.h"
#include "tap.h"

/* An expected error: its line in the case's text, and a part of its message. */
struct expected_error {
	int line;
	const char *text;
};

struct invalid_case {
	const char *what;
	const char *config;
	struct expected_error errors[4]; /* exactly these, in any order */
};

#define CLUSTER_OPEN "clusters = ( { name = \"test\"; "

static const struct invalid_case invalid_cases[] = {
	{"syntax error", "daemon: {\n loop_interval_ms = ; };", {{2, "syntax error"}}},
	{"unknown top-level key, with a hint", "deamon: { };", {{1, "unknown option \"deamon\" in the configuration (did you mean \"daemon\"?)"}}},
	{"unknown top-level key, no hint", "\nzzzzzz = 1;", {{2, "unknown option \"zzzzzz\""}}},
	{"unknown daemon key", "daemon: {\n log_levl = \"info\"; };",
	 {{2, "unknown option \"daemon.log_levl\" in the configuration (did you mean \"daemon.log_level\"?)"}}},
	{"unknown cluster key", CLUSTER_OPEN "\nreplica = 3; } );",
	 {{2, "unknown option \"replica\" in cluster \"test\" (did you mean \"replicas\"?)"}}},
	{"unknown nested cluster key", CLUSTER_OPEN "synchronous = {\nmethd = \"any\"; }; } );",
	 {{2, "unknown option \"synchronous.methd\" in cluster \"test\" (did you mean \"synchronous.method\"?)"}}},
	{"unknown member key", CLUSTER_OPEN "members = ( { index = 1;\nprio = 1; } ); } );",
	 {{2, "unknown option \"prio\" in a member override of cluster \"test\""}}},
	{"scalar where a group belongs", CLUSTER_OPEN "synchronous = 1; } );",
	 {{1, "clusters.synchronous must be a group { ... }, not an integer"}}},
	{"integer expected", CLUSTER_OPEN "replicas = \"3\"; } );", {{1, "clusters.replicas must be an integer, not a string"}}},
	{"integer below range", "daemon: { loop_interval_ms = 5; };",
	 {{1, "daemon.loop_interval_ms must be between 100 and 60000 (got 5)"}}},
	{"no data job at all", "daemon: {\n  max_data_jobs = 0;\n};",
	 {{2, "daemon.max_data_jobs must be between 1 and 1000 (got 0)"}}},
	{"integer above range", CLUSTER_OPEN "replicas = 100; } );", {{1, "clusters.replicas must be between 1 and 99 (got 100)"}}},
	{"64-bit integer out of range", CLUSTER_OPEN "port = 10000000000L; } );",
	 {{1, "clusters.port must be between 1 and 65535 (got 10000000000)"}}},
	{"boolean expected", CLUSTER_OPEN "failover = { automatic = 1; }; } );",
	 {{1, "clusters.failover.automatic must be true or false, not an integer"}}},
	{"string expected", "daemon: { state_dir = 5; };", {{1, "daemon.state_dir must be a string, not an integer"}}},
	{"relative path", "daemon: { state_dir = \"var/lib\"; };", {{1, "daemon.state_dir \"var/lib\" must be an absolute path"}}},
	{"relative optional path", "platform: { local: { bindir = \"bin\"; }; };", {{1, "must be an absolute path"}}},
	{"namespace not a DNS label", "platform: { kubernetes: { namespace = \"My_NS\"; }; };",
	 {{1, "platform.kubernetes.namespace \"My_NS\" must be 1 to 63 lowercase letters"}}},
	{"image with a space", "platform: { kubernetes: { image = \"a b\"; }; };", {{1, "must not contain spaces"}}},
	{"bad volume size", CLUSTER_OPEN "volume = { size = \"10 GB\"; }; } );", {{1, "clusters.volume.size \"10 GB\" must be a size"}}},
	{"bad volume size suffix", CLUSTER_OPEN "volume = { size = \"10Gb\"; }; } );", {{1, "must be a size"}}},
	{"bad volume fraction", CLUSTER_OPEN "volume = { size = \"1.Gi\"; }; } );", {{1, "must be a size"}}},
	{"bad storage class", CLUSTER_OPEN "volume = { storage_class = \"Fast!\"; }; } );", {{1, "must be empty or a DNS subdomain"}}},
	{"enum value not allowed", CLUSTER_OPEN "synchronous = { method = \"all\"; }; } );",
	 {{1, "clusters.synchronous.method must be one of \"off\", \"any\", \"first\" (got \"all\")"}}},
	{"enum not a string", "daemon: { log_level = 3; };", {{1, "daemon.log_level must be a string, not an integer"}}},
	{"parameters not a group", CLUSTER_OPEN "postgresql = { parameters = 1; }; } );",
	 {{1, "clusters.postgresql.parameters must be a group"}}},
	{"parameter name invalid", CLUSTER_OPEN "postgresql = { parameters = { work-mem = 1; }; }; } );",
	 {{1, "\"work-mem\" is not a PostgreSQL parameter name"}}},
	{"parameter owned by pgha", CLUSTER_OPEN "postgresql = { parameters = {\nsynchronous_standby_names = \"*\"; }; }; } );",
	 {{2, "synchronous_standby_names is managed by pgha"}}},
	{"parameter owned, any case", "defaults: { postgresql = { parameters = { Primary_Conninfo = \"x\"; }; }; };",
	 {{1, "Primary_Conninfo is managed by pgha"}}},
	{"parameter value is a list", CLUSTER_OPEN "postgresql = { parameters = { work_mem = [1, 2]; }; }; } );",
	 {{1, "clusters.postgresql.parameters.work_mem must be a number, a boolean or a string (or a group naming a prefix), not an array"}}},
	{"parameter prefix not an identifier",
	 CLUSTER_OPEN "postgresql = { parameters = {\nauto-explain = { log_min_duration = 1; }; }; }; } );",
	 {{2, "clusters.postgresql.parameters: \"auto-explain\" is not a parameter prefix: it must be an identifier"}}},
	{"parameter prefix too long",
	 "defaults: { postgresql = { parameters = {\nabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd = { x = 1; }; }; }; };",
	 {{2, "\"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd\" is not a parameter prefix"}}},
	{"parameter prefix nested twice",
	 CLUSTER_OPEN "postgresql = { parameters = { auto_explain = {\nlog = { min_duration = 1; }; }; }; }; } );",
	 {{2, "clusters.postgresql.parameters.auto_explain.log: a PostgreSQL parameter name has one dot at most"}}},
	{"prefixed parameter name invalid",
	 CLUSTER_OPEN "postgresql = { parameters = { auto_explain = {\nlog-min-duration = 1; }; }; }; } );",
	 {{2, "clusters.postgresql.parameters.auto_explain: \"log-min-duration\" is not a PostgreSQL parameter name"}}},
	{"prefixed parameter value is a list",
	 CLUSTER_OPEN "postgresql = { parameters = { auto_explain = {\nlog_min_duration = (1); }; }; }; } );",
	 {{2, "clusters.postgresql.parameters.auto_explain.log_min_duration must be a number, a boolean or a string, not a list"}}},
	{"prefixed parameter value with a newline",
	 CLUSTER_OPEN "postgresql = { parameters = { pg_stat_statements = {\ntrack = \"a\\nb\"; }; }; }; } );",
	 {{2, "clusters.postgresql.parameters.pg_stat_statements.track must not contain control characters"}}},
	{"parameter value with a newline", CLUSTER_OPEN "postgresql = { parameters = { application_name = \"a\\nb\"; }; }; } );",
	 {{1, "must not contain control characters"}}},
	{"cluster without name", "clusters = ( {\nreplicas = 2;\nsynchronous = { method = \"off\"; }; } );",
	 {{1, "cluster #1 lacks the required option \"name\""}}},
	{"member without index", CLUSTER_OPEN "members = (\n{ priority = 1; } ); } );",
	 {{2, "a member override of cluster \"test\" lacks the required option \"index\""}}},
	{"name in defaults", "defaults: {\nname = \"x\"; };", {{2, "\"name\" belongs in a cluster block, not in defaults"}}},
	{"members in defaults", "defaults: {\nmembers = (); };", {{2, "\"members\" belongs in a cluster block, not in defaults"}}},
	{"defaults not a group", "defaults = 1;", {{1, "defaults must be a group"}}},
	{"clusters not a list", "clusters = { name = \"x\"; };", {{1, "clusters must be a list"}}},
	{"cluster entry not a group", "clusters = ( 1 );", {{1, "each entry of clusters must be a group"}}},
	{"members not a list", CLUSTER_OPEN "members = { index = 1; }; } );", {{1, "members of cluster \"test\" must be a list"}}},
	{"member entry not a group", CLUSTER_OPEN "members = ( 1 ); } );", {{1, "each entry of members must be a group"}}},
	{"cluster name with uppercase", "clusters = ( {\nname = \"Test\"; } );", {{2, "clusters.name \"Test\" must be 1 to 63 lowercase"}}},
	{"cluster name too long for its pods",
	 "clusters = ( {\nname = \"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijab\"; replicas = 12; } );",
	 {{2, "is too long: its pod name \"postgres-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijab-11\" would exceed 63"}}},
	{"synchronous number above the standbys", CLUSTER_OPEN "replicas = 2;\nsynchronous = { number = 2; }; } );",
	 {{2, "cluster \"test\": synchronous.number = 2 needs at least 2 standbys, but replicas = 2 gives 1"}}},
	{"default synchronous number with one member", "clusters = ( {\nname = \"solo\"; replicas = 1; } );",
	 {{1, "cluster \"solo\": synchronous.number = 1 needs at least 1 standbys, but replicas = 1 gives 0"}}},
	{"PostgreSQL before 10", CLUSTER_OPEN "postgresql = { version = 9; }; } );", {{1, "postgresql.version = 9 is not supported"}}},
	{"local ports beyond 65535", CLUSTER_OPEN "\nport = 65534; } );", {{2, "members use ports 65534 to 65536, beyond 65535"}}},
	{"member override beyond replicas", CLUSTER_OPEN "members = (\n{ index = 3; } ); } );",
	 {{2, "member override for index 3, but replicas = 3 has members 0 to 2"}}},
	{"duplicate member override", CLUSTER_OPEN "members = ( { index = 1; },\n{ index = 1; } ); } );",
	 {{2, "a second override for member index 1 (the first is at line 1)"}}},
	{"wal_level minimal", CLUSTER_OPEN "postgresql = { parameters = {\nwal_level = \"minimal\"; }; }; } );",
	 {{2, "wal_level = minimal makes streaming replication impossible"}}},
	{"asynchronous commit under synchronous replication",
	 CLUSTER_OPEN "postgresql = { parameters = {\nsynchronous_commit = false; }; }; } );",
	 {{2, "synchronous_commit = off acknowledges commits before a standby has them"}}},
	{"synchronous_commit local", "defaults: { postgresql = { parameters = {\nsynchronous_commit = \"local\"; }; }; };\n" CLUSTER_OPEN "} );",
	 {{2, "cluster \"test\": synchronous_commit = local"}}},
	{"too few WAL senders", CLUSTER_OPEN "replicas = 4; postgresql = { parameters = {\nmax_wal_senders = 4; }; }; } );",
	 {{2, "max_wal_senders = 4 is too low for 3 standbys: at least 5 are needed"}}},
	{"too few replication slots", CLUSTER_OPEN "postgresql = { parameters = {\nmax_replication_slots = 1; }; }; } );",
	 {{2, "max_replication_slots = 1 is too low for 2 standbys"}}},
	{"kubernetes without an image", "platform: {\ntype = \"kubernetes\"; };",
	 {{2, "platform.type = \"kubernetes\" needs platform.kubernetes.image"}}},
	{"duplicate cluster names", "clusters = ( { name = \"a\"; port = 6000; },\n{ name = \"a\"; port = 7000; } );",
	 {{2, "duplicate cluster name \"a\" (first defined at test.conf:1)"}}},
	{"overlapping local ports", "clusters = ( { name = \"a\"; port = 6000; },\n{ name = \"b\";\nport = 6002; } );",
	 {{3, "cluster \"b\" uses ports 6002 to 6004, which overlap those of cluster #1 (6000 to 6002)"}}},
	{"a refused name does not hide other mistakes", "clusters = ( {\nname = \"Bad\";\nreplicas = 1; } );",
	 {{2, "clusters.name \"Bad\""}, {1, "cluster #1: synchronous.number = 1 needs at least 1 standbys"}}},
	{"three mistakes, three lines",
	 "daemon: {\n  loop_interval_ms = 0;\n};\nclusters = (\n  { name = \"a\"; port = 6000; },\n  { name = \"a\"; port = 7000;\n    replcas = 3; }\n);",
	 {{2, "daemon.loop_interval_ms must be between 100 and 60000 (got 0)"},
	  {6, "duplicate cluster name \"a\""},
	  {7, "unknown option \"replcas\""}}},
	{"@include from a string", "@include \"other.conf\"", {{0, "@include is only allowed in configuration files"}}},
};

static bool has_error(const struct diag_list *errors, const struct expected_error *expected)
{
	char prefix[64];

	if (expected->line > 0)
		snprintf(prefix, sizeof prefix, "test.conf:%d: ", expected->line);
	else
		snprintf(prefix, sizeof prefix, "test.conf: ");
	for (size_t i = 0; i < errors->count; i++)
		if (strncmp(errors->messages[i], prefix, strlen(prefix)) == 0 && strstr(errors->messages[i], expected->text))
			return true;
	return false;
}

static void test_invalid_cases(void)
{
	for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++) {
		const struct invalid_case *test = &invalid_cases[i];
		struct diag_list errors = {0};
		struct pgha_config *config = config_load_string(test->config, "test.conf", &errors);
		size_t expected_count = 0;
		bool all_found = true;

		for (; expected_count < 4 && test->errors[expected_count].text; expected_count++)
			all_found &= has_error(&errors, &test->errors[expected_count]);
		ok(!config && errors.count == expected_count && all_found, "rejected: %s", test->what);
		if (config || errors.count != expected_count || !all_found)
			for (size_t j = 0; j < errors.count; j++)
				diag("  got: %s", errors.messages[j]);
		config_free(config);
		diag_free(&errors);
	}
}

static struct pgha_config *load_valid(const char *text)
{
	struct diag_list errors = {0};
	struct pgha_config *config = config_load_string(text, "test.conf", &errors);

	for (size_t i = 0; i < errors.count; i++)
		diag("unexpected: %s", errors.messages[i]);
	diag_free(&errors);
	return config;
}

static const char *parameter(const struct cluster_config *cluster, const char *name)
{
	for (size_t i = 0; i < cluster->postgresql.parameters.count; i++)
		if (strcmp(cluster->postgresql.parameters.items[i].name, name) == 0)
			return cluster->postgresql.parameters.items[i].value;
	return NULL;
}

static void test_defaults(void)
{
	struct pgha_config *config = load_valid("");

	ok(config != NULL, "an empty file is valid");
	if (!config)
		return;
	is_int(config->cluster_count, 0, "with no clusters");
	is_int(config->daemon.loop_interval_ms, 500, "default loop interval");
	is_int(config->daemon.max_data_jobs, 4, "default data jobs at once");
	is_int(config->daemon.log_level, LOG_LEVEL_INFO, "default log level");
	is_int(config->platform.type, PLATFORM_LOCAL, "default platform");
	is_str(config->platform.kubernetes.namespace, "default", "default namespace");
	ok(config->daemon.state_dir[0] == '/', "default state_dir is absolute: %s", config->daemon.state_dir);
	config_free(config);

	config = load_valid(CLUSTER_OPEN "} );");
	ok(config != NULL, "a cluster with only a name is valid");
	if (!config)
		return;
	const struct cluster_config *cluster = &config->clusters[0];
	is_str(cluster->name, "test", "cluster name");
	is_int(cluster->replicas, 3, "default replicas");
	is_int(cluster->port, 5432, "default port");
	is_int(cluster->synchronous.method, SYNC_METHOD_ANY, "default synchronous method");
	is_int(cluster->synchronous.number, 1, "default synchronous number");
	ok(cluster->synchronous.required, "synchronous replication is required by default");
	ok(cluster->failover.automatic, "automatic failover by default");
	is_int(cluster->failover.timeout_ms, 1500, "default failover timeout");
	is_str(cluster->volume.size, "10Gi", "default volume size");
	is_int(cluster->volume.access_mode, 0, "default access mode");
	is_int(cluster->postgresql.parameters.count, 0, "no parameters by default");
	is_int(config_member_priority(cluster, 1), 100, "default member priority");
	is_int(cluster->origin.line, 1, "the cluster block's line is kept");
	config_free(config);
}

static void test_inheritance(void)
{
	struct pgha_config *config = load_valid(
		"defaults: { replicas = 5; synchronous = { number = 2; };\n"
		"  postgresql = { parameters = { work_mem = \"4MB\"; max_connections = 50; hot_standby_feedback = true;\n"
		"    random_page_cost = 1.5; shared_preload_libraries = \"\"; }; }; };\n"
		"clusters = ( { name = \"a\"; port = 6000; },\n"
		"  { name = \"b\"; port = 7000; replicas = 3; synchronous = { method = \"first\"; number = 1; required = false; };\n"
		"    postgresql = { parameters = { MAX_CONNECTIONS = 200; big = 5000000000L; }; };\n"
		"    members = ( { index = 2; priority = 0; }, { index = 0; priority = 7; } ); } );");

	ok(config != NULL, "defaults and overrides parse");
	if (!config)
		return;
	const struct cluster_config *a = &config->clusters[0], *b = &config->clusters[1];
	is_int(a->replicas, 5, "a cluster inherits replicas from defaults");
	is_int(a->synchronous.number, 2, "and nested options");
	is_int(b->replicas, 3, "a cluster's own value wins");
	is_int(b->synchronous.method, SYNC_METHOD_FIRST, "first method");
	ok(!b->synchronous.required, "required = false");
	is_str(parameter(a, "work_mem"), "4MB", "string parameter inherited");
	is_str(parameter(a, "hot_standby_feedback"), "on", "booleans become on/off");
	is_str(parameter(a, "random_page_cost"), "1.5", "floats keep their value");
	is_str(parameter(a, "shared_preload_libraries"), "", "an empty string is a value");
	is_str(parameter(a, "max_connections"), "50", "integer parameter inherited");
	is_str(parameter(b, "max_connections"), "200", "a cluster overrides a parameter whatever its case");
	is_str(parameter(b, "big"), "5000000000", "64-bit integers");
	is_int(b->postgresql.parameters.count, 6, "merged, not duplicated");
	is_int(b->postgresql.parameters.items[1].origin.line, 6, "an overridden parameter points at the cluster's line");
	is_int(b->member_count, 2, "two member overrides");
	is_int(b->members[0].index, 0, "overrides sorted by index");
	is_int(config_member_priority(b, 0), 7, "priority override");
	is_int(config_member_priority(b, 2), 0, "priority 0: never promoted");
	is_int(config_member_priority(b, 1), 100, "member without override: default priority");
	ok(config_member(b, 1) == NULL, "no override for member 1");
	config_free(config);
}

/* libconfig names cannot hold a dot: a group names the prefix of prefix.name. */
static void test_prefixed_parameters(void)
{
	struct pgha_config *config = load_valid(
		"defaults: { postgresql = { parameters = { work_mem = \"4MB\";\n"
		"  auto_explain = { log_min_duration = \"1s\"; log_analyze = true; }; }; }; };\n"
		"clusters = ( { name = \"a\"; port = 6000; },\n"
		"  { name = \"b\"; port = 7000; postgresql = { parameters = {\n"
		"    Auto_Explain = { LOG_MIN_DURATION = 250; };\n"
		"    pg_stat_statements = { track = \"all\"; max = 10000; }; session_preload_libraries = \"auto_explain\"; }; }; } );");

	ok(config != NULL, "prefix groups parse in defaults and in a cluster");
	if (!config)
		return;
	const struct cluster_config *a = &config->clusters[0], *b = &config->clusters[1];
	is_str(parameter(a, "auto_explain.log_min_duration"), "1s", "a group names the prefix of its parameters");
	is_str(parameter(a, "auto_explain.log_analyze"), "on", "booleans in a group become on/off too");
	is_int(a->postgresql.parameters.count, 3, "a inherits the defaults' three parameters");
	is_str(parameter(b, "auto_explain.log_min_duration"), "250",
	       "a cluster overrides a prefixed parameter by its full name, whatever its case");
	is_str(parameter(b, "auto_explain.log_analyze"), "on", "and keeps the defaults' others of the same prefix");
	is_str(parameter(b, "pg_stat_statements.track"), "all", "a prefix only the cluster names");
	is_str(parameter(b, "pg_stat_statements.max"), "10000", "integers in a group");
	is_str(parameter(b, "session_preload_libraries"), "auto_explain", "flat names beside groups");
	is_int(b->postgresql.parameters.count, 6, "merged by full name, not duplicated");
	for (size_t i = 0; i < b->postgresql.parameters.count; i++)
		if (strcmp(b->postgresql.parameters.items[i].name, "auto_explain.log_min_duration") == 0)
			is_int(b->postgresql.parameters.items[i].origin.line, 5, "an overridden prefixed parameter points at the cluster's line");
	config_free(config);
}

/* How long a standby may go without answering its primary and still count as
 * streaming: five of its status intervals, never less than failover.timeout_ms. */
static void test_standby_reply_bound(void)
{
	static const struct {
		const char *settings, *what;
		long long interval_ms, bound_ms;
	} cases[] = {
		{"", "the 1 s both platforms set: five seconds", 1000, 5000},
		{"failover = { timeout_ms = 8000; };", "never less than failover.timeout_ms", 1000, 8000},
		{"postgresql = { parameters = { wal_receiver_status_interval = \"2s\"; }; };", "a configured interval",
		 2000, 10000},
		{"postgresql = { parameters = { wal_receiver_status_interval = 10; }; };", "seconds without a unit", 10000,
		 50000},
		{"postgresql = { parameters = { wal_receiver_status_interval = \"500ms\"; }; };",
		 "in ms: the failover timeout is the floor", 500, 2500},
		{"postgresql = { parameters = { wal_receiver_status_interval = \"1 min\"; }; };", "in minutes", 60000,
		 300000},
		{"postgresql = { parameters = { wal_receiver_status_interval = 0; }; };",
		 "0: standbys answer only when WAL comes, no bound", 0, 0},
		{"postgresql = { parameters = { wal_receiver_status_interval = \"often\"; }; };",
		 "a value that cannot be read: no bound", 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = xasprintf("clusters = ( { name = \"a\"; %s } );", cases[i].settings);
		struct pgha_config *config = load_valid(text);
		free(text);
		ok(config != NULL, "standby reply bound: %s: loads", cases[i].what);
		if (!config)
			continue;
		is_int(config_standby_reply_interval_ms(&config->clusters[0]), cases[i].interval_ms,
		       "standby reply interval: %s", cases[i].what);
		is_int(config_standby_reply_bound_ms(&config->clusters[0]), cases[i].bound_ms, "standby reply bound: %s",
		       cases[i].what);
		config_free(config);
	}
}

static void test_platforms(void)
{
	struct pgha_config *config = load_valid(
		"platform: { type = \"kubernetes\"; kubernetes: { image = \"registry.example/pgha:1\"; namespace = \"db\"; }; };\n"
		"clusters = ( { name = \"a\"; }, { name = \"b\"; } );");

	ok(config != NULL, "on kubernetes, clusters may share a port");
	if (config) {
		is_int(config->platform.type, PLATFORM_KUBERNETES, "kubernetes platform");
		is_str(config->platform.kubernetes.image, "registry.example/pgha:1", "image");
	}
	config_free(config);
	config = load_valid(CLUSTER_OPEN "replicas = 1; synchronous = { method = \"off\"; }; "
				      "postgresql = { parameters = { synchronous_commit = \"local\"; }; }; } );");
	ok(config != NULL, "synchronous method off: one member and synchronous_commit = local are fine");
	config_free(config);
}

static void test_option_table(void)
{
	size_t count;
	const struct option_spec *options = config_options(&count);
	bool documented = true, ranged = true, unique = true, defaults_valid = true;

	ok(count > 20 && count <= CONFIG_OPTION_MAX, "the table has %zu options", count);
	for (size_t i = 0; i < count; i++) {
		documented &= options[i].doc && strlen(options[i].doc) > 10;
		if (options[i].type == OPTION_INT)
			ranged &= options[i].minimum <= options[i].maximum;
		if (options[i].type == OPTION_INT && options[i].default_value) {
			long long value = atoll(options[i].default_value);
			defaults_valid &= value >= options[i].minimum && value <= options[i].maximum;
		}
		if (options[i].type == OPTION_ENUM && options[i].default_value) {
			bool found = false;
			for (size_t j = 0; options[i].choices[j]; j++)
				found |= strcmp(options[i].choices[j], options[i].default_value) == 0;
			defaults_valid &= found;
		}
		for (size_t j = 0; j < i; j++)
			unique &= !(options[i].scope == options[j].scope && strcmp(options[i].path, options[j].path) == 0);
	}
	ok(documented, "every option has a doc line");
	ok(ranged, "every integer range is ordered");
	ok(defaults_valid, "every default is within its range or choices");
	ok(unique, "no option is declared twice");
}

static void test_set_in_file(void)
{
	size_t count;
	const struct option_spec *options = config_options(&count);
	struct pgha_config *config = load_valid("daemon: { log_level = \"debug\"; };\n"
						"defaults: { replicas = 2; };\n" CLUSTER_OPEN
						"members = ( { index = 1; } ); } );");
	bool log_level = false, replicas = false, index = false, priority = false, port = false;

	if (!config) {
		ok(false, "set_in_file config loads");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		if (strcmp(options[i].path, "daemon.log_level") == 0)
			log_level = config->set_in_file[i];
		if (strcmp(options[i].path, "replicas") == 0)
			replicas = config->set_in_file[i];
		if (strcmp(options[i].path, "index") == 0)
			index = config->set_in_file[i];
		if (strcmp(options[i].path, "priority") == 0)
			priority = config->set_in_file[i];
		if (strcmp(options[i].path, "port") == 0)
			port = config->set_in_file[i];
	}
	ok(log_level && replicas && index, "options set globally, in defaults and in members are recorded");
	ok(!priority && !port, "options left at their default are not");
	config_free(config);
}

static void test_reload_check(void)
{
	struct pgha_config *old = load_valid("daemon: { state_dir = \"/a\"; loop_interval_ms = 500; };\n" CLUSTER_OPEN
					     "postgresql = { version = 15; }; } );");
	struct pgha_config *fine = load_valid("daemon: { state_dir = \"/a\"; loop_interval_ms = 800; };\n" CLUSTER_OPEN
					      "replicas = 5; postgresql = { version = 15; }; } );\n");
	struct pgha_config *moved = load_valid("daemon: {\nstate_dir = \"/b\"; };\n" CLUSTER_OPEN "\npostgresql = { version = 16; }; },\n"
					       "{ name = \"new\"; port = 7000; postgresql = { version = 14; }; } );");
	struct diag_list errors = {0};

	if (!old || !fine || !moved) {
		ok(false, "reload configurations load");
		return;
	}
	ok(config_check_reload(old, fine, &errors) && errors.count == 0, "reloadable options may change");
	ok(!config_check_reload(old, moved, &errors), "a non-reloadable change is refused");
	is_int(errors.count, 2, "two refusals (state_dir, version of the existing cluster; the new cluster is free)");
	if (errors.count == 2) {
		ok(strstr(errors.messages[0], "test.conf:2: daemon.state_dir cannot change while pghad runs (\"/a\", now \"/b\")") != NULL,
		   "state_dir refusal with its line: %s", errors.messages[0]);
		ok(strstr(errors.messages[1], "test.conf:4: cluster \"test\": postgresql.version cannot change on a running cluster (15, now 16)") != NULL,
		   "version refusal with its line: %s", errors.messages[1]);
	}
	diag_free(&errors);
	config_free(old);
	config_free(fine);
	config_free(moved);
}

static void test_files(void)
{
	char directory[] = "/tmp/pgha-test-config-XXXXXX";
	char main_path[128], include_path[128];
	struct diag_list errors = {0};

	if (!mkdtemp(directory)) {
		ok(false, "temporary directory");
		return;
	}
	snprintf(main_path, sizeof main_path, "%s/pgha.conf", directory);
	snprintf(include_path, sizeof include_path, "%s/clusters.conf", directory);
	FILE *file = fopen(include_path, "w");
	fputs("clusters = ( { name = \"inc\";\n  replicas = 0; } );\n", file);
	fclose(file);
	file = fopen(main_path, "w");
	fputs("daemon: { log_level = \"debug\"; };\n@include \"clusters.conf\"\n", file);
	fclose(file);

	struct pgha_config *config = config_load_file(main_path, &errors);
	char expected[256];
	snprintf(expected, sizeof expected, "%s:2: clusters.replicas must be between 1 and 99", include_path);
	ok(!config && errors.count == 1 && strstr(errors.messages[0], expected),
	   "an error in an included file names that file and line: %s", errors.count ? errors.messages[0] : "none");
	diag_free(&errors);

	file = fopen(include_path, "w");
	fputs("clusters = ( { name = \"inc\"; } );\n", file);
	fclose(file);
	config = config_load_file(main_path, &errors);
	ok(config && config->cluster_count == 1 && strcmp(config->clusters[0].name, "inc") == 0,
	   "@include is resolved relative to the including file");
	if (config)
		is_str(config->clusters[0].origin.file, include_path, "origins point at the included file");
	config_free(config);
	diag_free(&errors);

	unlink(include_path);
	unlink(main_path);
	config = config_load_file(main_path, &errors);
	ok(!config && errors.count == 1 && strstr(errors.messages[0], "cannot read the configuration: No such file or directory"),
	   "a missing file is reported with the reason: %s", errors.count ? errors.messages[0] : "none");
	diag_free(&errors);
	rmdir(directory);
}

int main(void)
{
	test_invalid_cases();
	test_defaults();
	test_inheritance();
	test_prefixed_parameters();
	test_standby_reply_bound();
	test_platforms();
	test_option_table();
	test_set_in_file();
	test_reload_check();
	test_files();
	return done_testing();
}
