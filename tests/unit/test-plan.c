/* test-plan: what a reload would do, described from two configurations and an observation. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "memory.h"
#include "plan.h"
#include "tap.h"

static struct pgha_config *load(const char *text)
{
	struct diag_list errors = {0};
	struct pgha_config *config = config_load_string(text, "plan.conf", &errors);
	for (size_t i = 0; i < errors.count; i++)
		diag("%s", errors.messages[i]);
	diag_free(&errors);
	return config;
}

/* test-0 primary, test-1 and test-2 streaming standbys, listed as ANY 1. */
static void healthy_observation(struct cluster_observation *observation)
{
	observation->count = 3;
	observation->members = xcalloc(3, sizeof *observation->members);
	for (int i = 0; i < 3; i++) {
		struct member_observation *member = &observation->members[i];
		member->index = i;
		snprintf(member->name, sizeof member->name, "test-%d", i);
		member->data_exists = member->reachable = true;
		member->in_recovery = member->streaming = i > 0;
	}
	struct member_observation *primary = &observation->members[0];
	observation_set_text(&primary->synchronous_standby_names, "ANY 1 (\"test-1\", \"test-2\")",
			     OBSERVATION_NAMES_SIZE);
	primary->peer_count = 2;
	primary->peers = xcalloc(2, sizeof *primary->peers);
	for (int i = 0; i < 2; i++) {
		snprintf(primary->peers[i].application_name, sizeof primary->peers[i].application_name, "test-%d", i + 1);
		snprintf(primary->peers[i].state, sizeof primary->peers[i].state, "streaming");
	}
}

static const struct {
	const char *what, *next;
	struct plan_setting settings[3];
	const char *expected[4]; /* lines that must be there */
} cases[] = {
	{"nothing changes", "clusters = ( { name = \"test\"; port = 6000; } );", {{"", "", "", false}}, {"nothing changes"}},
	{"a new cluster", "clusters = ( { name = \"test\"; port = 6000; }, { name = \"new\"; port = 7000; } );",
	 {{"", "", "", false}}, {"cluster new:", "  new: new-0 initialized as its primary, then 2 standbys cloned from it"}},
	{"a removed cluster", "clusters = ( );", {{"", "", "", false}},
	 {"cluster test: removed: its members are stopped, the primary first; its data is kept"}},
	{"replicas up", "clusters = ( { name = \"test\"; port = 6000; replicas = 4; } );", {{"", "", "", false}},
	 {"  add member test-3: cloned from the primary, listed as synchronous once it streams"}},
	{"replicas down", "clusters = ( { name = \"test\"; port = 6000; replicas = 2; } );", {{"", "", "", false}},
	 {"  remove member test-2: it leaves the synchronous list, then stops; its data is kept",
	  "  synchronous_standby_names: 'ANY 1 (\"test-1\", \"test-2\")' -> 'ANY 1 (\"test-1\")'"}},
	{"synchronous number", "clusters = ( { name = \"test\"; port = 6000; synchronous = { number = 2; }; } );",
	 {{"", "", "", false}}, {"  synchronous_standby_names: 'ANY 1 (\"test-1\", \"test-2\")' -> 'ANY 2 (\"test-1\", \"test-2\")'"}},
	{"another option", "clusters = ( { name = \"test\"; port = 6000; failover = { timeout_ms = 5000; }; } );",
	 {{"", "", "", false}}, {"  failover.timeout_ms: 1500 -> 5000"}},
	{"a reload-level parameter",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = { work_mem = \"8MB\"; }; }; } );",
	 {{"work_mem", "user", "4MB", false}}, {"  parameter work_mem = '8MB' (new): applied by reload"}},
	{"a restart, raised",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = { max_connections = 200; }; }; } );",
	 {{"max_connections", "postmaster", "100", false}},
	 {"  parameter max_connections = '200' (new): needs a restart: test-1, test-2 one at a time, then test-0"}},
	{"a restart, lowered",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = { max_connections = 50; }; }; } );",
	 {{"max_connections", "postmaster", "100", false}},
	 {"  parameter max_connections = '50' (new): needs a restart: test-0 first (a lowered setting its standbys may "
	  "not run lower), then test-1, test-2"}},
	{"an internal setting",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = { block_size = 4096; }; }; } );",
	 {{"block_size", "internal", "8192", false}}, {"  parameter block_size = '4096' (new): cannot be changed on a running cluster"}},
	{"unknown to the primary",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = { my_setting = 1; }; }; } );",
	 {{"", "", "", false}},
	 {"  parameter my_setting = '1' (new): test-0 knows no such parameter: a member reloading it applies none of "
	  "the changes of its file, and cannot start with it"}},
	{"a loaded module's parameter",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = {\n"
	 "  Auto_Explain = { Log_Min_Duration = \"1s\"; }; }; }; } );",
	 {{"auto_explain.log_min_duration", "superuser", "-1", false}, {"auto_explain", "", "", true}},
	 {"  parameter Auto_Explain.Log_Min_Duration = '1s' (new): applied by reload"}},
	{"a loaded module's restart parameter",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = { pg_stat_statements = { max = 10000; }; }; }; } );",
	 {{"pg_stat_statements.max", "postmaster", "5000", false}, {"pg_stat_statements", "", "", true}},
	 {"  parameter pg_stat_statements.max = '10000' (new): needs a restart: test-1, test-2 one at a time, then test-0"}},
	{"a placeholder: no module defines the prefix",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = { auto_explain = { log_min_duration = \"1s\"; }; }; }; } );",
	 {{"", "", "", false}},
	 {"  parameter auto_explain.log_min_duration = '1s' (new): applied by reload as a placeholder: no module loaded "
	  "on test-0 defines auto_explain.*; the one that does checks the value when it is loaded"}},
	{"a name the loaded module does not define",
	 "clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = { auto_explain = { log_min_durration = 1; }; }; }; } );",
	 {{"auto_explain", "", "", true}},
	 {"  parameter auto_explain.log_min_durration = '1' (new): the module loaded on test-0 under auto_explain defines "
	  "no such parameter: PostgreSQL ignores it, with a warning in its log"}},
};

int main(void)
{
	struct pgha_config *running = load("clusters = ( { name = \"test\"; port = 6000; } );");
	struct cluster_observation observation = {0};

	healthy_observation(&observation);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct pgha_config *next = load(cases[c].next);
		struct diag_list lines = {0};
		const struct plan_setting *settings[2] = {cases[c].settings, cases[c].settings};
		size_t counts[2] = {0, 0};
		for (size_t i = 0; i < 3 && cases[c].settings[i].name[0]; i++)
			counts[0] = counts[1] = i + 1;
		bool has_data[2] = {false, false};
		struct plan_input input = {running, next, &observation, 1, settings, counts, has_data};
		bool all = next != NULL;

		if (next)
			plan_describe(&input, &lines);
		for (size_t e = 0; e < 4 && cases[c].expected[e]; e++) {
			bool found = false;
			for (size_t l = 0; l < lines.count; l++)
				found |= strncmp(lines.messages[l], cases[c].expected[e], strlen(cases[c].expected[e])) == 0;
			all &= found;
		}
		ok(all, "plan: %s", cases[c].what);
		if (!all)
			for (size_t l = 0; l < lines.count; l++)
				diag("  got: %s", lines.messages[l]);
		diag_free(&lines);
		config_free(next);
	}
	/* an unknown parameter removed: the reload drops it */
	struct pgha_config *had_typo = load("clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = {\n"
					    "  auto_explain = { log_min_durration = 5; }; }; }; } );");
	const struct plan_setting prefix_only[] = {{"auto_explain", "", "", true}};
	const struct plan_setting *removed_settings[1] = {prefix_only};
	size_t removed_counts[1] = {1};
	struct plan_input removal = {had_typo, running, &observation, 1, removed_settings, removed_counts, (bool[1]){false}};
	struct diag_list removed = {0};
	if (had_typo)
		plan_describe(&removal, &removed);
	ok(removed.count == 2 && strcmp(removed.messages[1], "  parameter auto_explain.log_min_durration back to "
				       "PostgreSQL's default (was '5'): removed by reload (test-0 knows no such "
				       "parameter)") == 0,
	   "plan: an unknown parameter removed");
	for (size_t l = 0; removed.count != 2 && l < removed.count; l++)
		diag("  got: %s", removed.messages[l]);
	diag_free(&removed);
	config_free(had_typo);

	/* no primary answered: nothing is known of the parameter */
	struct pgha_config *unasked = load("clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = {\n"
					   "  auto_explain = { log_min_duration = 5; }; }; }; } );");
	const struct plan_setting *no_settings[1] = {NULL};
	size_t no_counts[1] = {0};
	struct plan_input unanswered = {running, unasked, &observation, 1, no_settings, no_counts, (bool[1]){false}};
	struct diag_list told = {0};
	plan_describe(&unanswered, &told);
	ok(told.count == 2 && strcmp(told.messages[1], "  parameter auto_explain.log_min_duration = '5' (new): applied by "
				     "reload when PostgreSQL knows it, by restarts if it needs one (no primary answered to tell)") == 0,
	   "plan: no primary answered");
	for (size_t l = 0; told.count != 2 && l < told.count; l++)
		diag("  got: %s", told.messages[l]);
	diag_free(&told);
	config_free(unasked);

	/* on kubernetes ALTER SYSTEM refuses what PostgreSQL does not know, placeholders aside */
	static const char kubernetes[] =
		"platform: { type = \"kubernetes\"; kubernetes: { image = \"pgha:1\"; }; };\n"
		"clusters = ( { name = \"test\"; port = 6000; postgresql = { parameters = {\n";
	char *kube_running_text = xasprintf("%s}; }; } );", kubernetes);
	char *kube_next_text = xasprintf("%s  my_setting = 1; auto_explain = { log_min_durration = 1; };\n"
					 "  pg_stat_statements = { track = \"all\"; }; }; }; } );", kubernetes);
	struct pgha_config *kube_running = load(kube_running_text), *kube_next = load(kube_next_text);
	const struct plan_setting kube_settings[] = {{"auto_explain", "", "", true}};
	const struct plan_setting *kube_setting_lists[1] = {kube_settings};
	size_t kube_counts[1] = {1};
	struct plan_input kube_input = {kube_running, kube_next, &observation, 1, kube_setting_lists, kube_counts,
					(bool[1]){false}};
	struct diag_list kube_lines = {0};
	if (kube_running && kube_next)
		plan_describe(&kube_input, &kube_lines);
	static const char *const kube_expected[] = {
		"  parameter my_setting = '1' (new): test-0 knows no such parameter: ALTER SYSTEM refuses it, and the "
		"members' parameters stay unapplied until it is removed",
		"  parameter auto_explain.log_min_durration = '1' (new): the module loaded on test-0 under auto_explain "
		"defines no such parameter: ALTER SYSTEM refuses it, and the members' parameters stay unapplied until it is "
		"removed",
		"  parameter pg_stat_statements.track = 'all' (new): applied by reload as a placeholder",
	};
	bool all_kube = kube_lines.count == 4;
	for (size_t e = 0; e < 3; e++) {
		bool found = false;
		for (size_t l = 0; l < kube_lines.count; l++)
			found |= strncmp(kube_lines.messages[l], kube_expected[e], strlen(kube_expected[e])) == 0;
		all_kube &= found;
	}
	ok(all_kube, "plan: on kubernetes, what ALTER SYSTEM refuses is said so; a placeholder is applied all the same");
	for (size_t l = 0; !all_kube && l < kube_lines.count; l++)
		diag("  got: %s", kube_lines.messages[l]);
	diag_free(&kube_lines);
	config_free(kube_running);
	config_free(kube_next);
	free(kube_running_text);
	free(kube_next_text);

	/* a cluster added back finds the data it left: it is not created again */
	struct pgha_config *empty = load("clusters = ( );");
	struct pgha_config *back = load("clusters = ( { name = \"test\"; port = 6000; } );");
	bool has_data[1] = {true};
	size_t none[1] = {0};
	struct plan_input input = {empty, back, NULL, 0, NULL, none, has_data};
	struct diag_list lines = {0};
	plan_describe(&input, &lines);
	ok(lines.count == 2 && strcmp(lines.messages[1], "  added back: its members start from the data kept for them") == 0,
	   "plan: a cluster added back reuses its data");
	diag_free(&lines);
	config_free(empty);
	config_free(back);

	cluster_observation_free(&observation);
	config_free(running);
	return done_testing();
}
