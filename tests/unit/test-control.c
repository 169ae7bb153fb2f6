/* test-control: every reply of pghad's control handler, asked as pghactl asks over the socket, to a daemon with no member running: its keys and its refusals. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../daemon-fixture.h"
#include "memory.h"
#include "state.h"
#include "tap.h"

static struct daemon_fixture fixture;

/* Whether object's keys are exactly those of keys (space-separated), whatever the order. */
static bool has_keys(const json_t *object, const char *keys)
{
	char *copy = xstrdup(keys), *save = NULL;
	size_t count = 0;
	bool all = json_is_object(object);

	for (char *key = strtok_r(copy, " ", &save); all && key; key = strtok_r(NULL, " ", &save), count++)
		if (!json_object_get(object, key)) {
			diag("no key %s", key);
			all = false;
		}
	if (all && json_object_size(object) != count) {
		char *text = json_dumps(object, JSON_COMPACT | JSON_SORT_KEYS);
		diag("more keys than %s: %s", keys, text);
		free(text);
		all = false;
	}
	free(copy);
	return all;
}

static const char *text(const json_t *object, const char *key)
{
	const char *value = json_string_value(json_object_get(object, key));
	return value ? value : "(not a string)";
}

/* Asks line and checks that the reply is a refusal saying exactly expected. */
static void refused(const char *line, const char *expected)
{
	json_t *reply = daemon_fixture_ask(&fixture, line);
	ok(has_keys(reply, "ok error") && json_is_false(json_object_get(reply, "ok")), "%s is refused", line);
	is_str(text(reply, "error"), expected, "  saying why");
	json_decref(reply);
}

/* Asks line and checks that the reply is {"ok": true, ...} with keys; returns it. */
static json_t *accepted(const char *line, const char *keys)
{
	json_t *reply = daemon_fixture_ask(&fixture, line);
	ok(has_keys(reply, keys) && json_is_true(json_object_get(reply, "ok")), "%s is answered with %s", line, keys);
	if (json_is_false(json_object_get(reply, "ok")))
		diag("refused: %s", text(reply, "error"));
	return reply;
}

static const char *const status_keys = "ok version pid config platform iterations reload_errors clusters loop reloads "
				       "now_ms iterations_begun history_error";
static const char *const cluster_keys = "name replicas port synchronous failover synchronous_standby_names "
					"published_synchronous_standby_names known_primary waiting members";
static const char *const failover_keys = "automatic timeout_ms paused under_way last request_error request_pending "
					 "counts last_ended";
static const char *const member_keys = "name port role state reachable probe_age_ms postmaster_check_ms timeline lag_bytes "
				       "replay_lag_seconds reply_age_ms sync_state configured error last_event "
				       "last_event_ms last_event_failed clone kept_aside";

static const json_t *cluster_of(const json_t *status, size_t index)
{
	return json_array_get(json_object_get(status, "clusters"), index);
}

static void test_status_before_the_first_iteration(void)
{
	json_t *status = accepted("{\"command\": \"status\"}", status_keys);
	is_str(text(status, "platform"), "local", "status: the platform");
	is_str(text(status, "config"), fixture.config_path, "status: the configuration file");
	is_int(json_integer_value(json_object_get(status, "pid")), getpid(), "status: pghad's pid");
	is_int(json_array_size(json_object_get(status, "clusters")), 2, "status: both clusters");
	const json_t *alpha = cluster_of(status, 0);
	ok(has_keys(alpha, cluster_keys), "status: a cluster's keys");
	ok(has_keys(json_object_get(alpha, "synchronous"), "method number required"), "status: synchronous's keys");
	ok(has_keys(json_object_get(alpha, "failover"), failover_keys), "status: failover's keys");
	ok(json_is_null(json_object_get(json_object_get(alpha, "failover"), "under_way")), "status: no failover under way");
	is_int(json_array_size(json_object_get(alpha, "members")), 0, "status: no member before the first observation");
	json_decref(status);
}

static void test_status_of_members_without_data(void)
{
	json_t *status = accepted("{\"command\": \"status\"}", status_keys);
	const json_t *members = json_object_get(cluster_of(status, 0), "members");
	is_int(json_array_size(members), 3, "status: alpha's three members");
	const json_t *member = json_array_get(members, 2);
	ok(has_keys(member, member_keys), "status: a member's keys");
	is_str(text(member, "name"), "alpha-2", "status: the member's name");
	is_int(json_integer_value(json_object_get(member, "port")), 6002, "status: its port");
	is_str(text(member, "role"), "unknown", "status: its role");
	is_str(text(member, "state"), "no data", "status: its state");
	is_str(text(member, "kept_aside"), "", "status: nothing kept aside");
	ok(json_is_null(json_object_get(member, "postmaster_check_ms")), "status: no postmaster to check");
	ok(json_is_null(json_object_get(member, "lag_bytes")), "status: no lag without a primary");
	json_decref(status);
}

static void test_requests_that_are_not_commands(void)
{
	refused("not json", "a request is one JSON object per line");
	refused("[\"status\"]", "a request is one JSON object per line");
	refused("", "a request is one JSON object per line");
	refused("{}", "the request has no \"command\"");
	refused("{\"command\": null}", "the request has no \"command\"");
	refused("{\"command\": 5}", "\"command\" must be a string");
	refused("{\"command\": \"explode\"}", "unknown command: explode");
	refused("{\"command\": \"d\\u00e9truire\"}", "unknown command: d\xc3\xa9truire");
}

static void test_failover_requests_refused(void)
{
	/* issue 18: a typo of the member read a vararg that was never passed */
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"nope\"}",
		"nope is not a member of alpha (its members are alpha-0, alpha-1 and alpha-2)");
	refused("{\"command\": \"switchover\", \"cluster\": \"alpha\", \"to\": \"nope\"}",
		"nope is not a member of alpha (its members are alpha-0, alpha-1 and alpha-2)");
	refused("{\"command\": \"failover\", \"cluster\": \"beta\", \"to\": \"beta-2\", \"force\": true}",
		"beta-2 is not a member of beta (its members are beta-0 and beta-1)");
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"beta-1\"}",
		"beta-1 is not a member of alpha (its members are alpha-0, alpha-1 and alpha-2)");
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\"}", "failover needs the member to promote (--to MEMBER)");
	refused("{\"command\": \"failover\", \"cluster\": \"nosuch\", \"to\": \"nosuch-1\"}", "no cluster named nosuch");
	refused("{\"command\": \"failover\", \"to\": \"alpha-1\"}", "failover needs the cluster's name");
	refused("{\"command\": \"switchover\"}", "switchover needs the cluster's name");
	refused("{\"command\": \"failover\", \"cluster\": [\"alpha\"], \"to\": \"alpha-1\"}", "\"cluster\" must be a string");
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": 1}", "\"to\" must be a string");
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"alpha-1\", \"force\": \"yes\"}",
		"\"force\" must be true or false");
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"alpha-1\"}",
		"alpha has no known primary to fail over from");
	refused("{\"command\": \"switchover\", \"cluster\": \"alpha\"}",
		"a switchover needs a primary that answers; alpha has none (use pghactl failover)");
}

/* A name longer than any buffer, of two-byte characters: quoted whole, never cut. */
static void test_long_names_are_quoted_whole(void)
{
	size_t count = 3000;
	char *name = xcalloc(count * 2 + 1, 1);
	for (size_t i = 0; i < count; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2);
	char *line = xasprintf("{\"command\": \"pause\", \"cluster\": \"%s\"}", name);
	char *expected = xasprintf("no cluster named %s", name);
	refused(line, expected);
	free(line);
	free(expected);
	line = xasprintf("{\"command\": \"purge\", \"cluster\": \"%s\", \"confirm\": \"%s\"}", name, name);
	expected = xasprintf("no cluster can be named \"%s\"", name);
	refused(line, expected);
	free(line);
	free(expected);
	free(name);
}

static void test_pause_and_resume(void)
{
	json_t *reply = accepted("{\"command\": \"pause\"}", "ok clusters");
	is_int(json_array_size(json_object_get(reply, "clusters")), 2, "pause: every cluster");
	json_decref(reply);
	reply = accepted("{\"command\": \"resume\", \"cluster\": \"alpha\"}", "ok clusters");
	is_str(json_string_value(json_array_get(json_object_get(reply, "clusters"), 0)), "alpha", "resume: alpha alone");
	json_decref(reply);
	json_t *status = accepted("{\"command\": \"status\"}", status_keys);
	ok(json_is_false(json_object_get(json_object_get(cluster_of(status, 0), "failover"), "paused")),
	   "status: alpha resumed");
	ok(json_is_true(json_object_get(json_object_get(cluster_of(status, 1), "failover"), "paused")),
	   "status: beta still paused");
	json_decref(status);
	refused("{\"command\": \"pause\", \"cluster\": \"nosuch\"}", "no cluster named nosuch");
	refused("{\"command\": \"resume\", \"cluster\": 7}", "\"cluster\" must be a string");
}

static void test_plan(void)
{
	json_t *reply = accepted("{\"command\": \"plan\"}", "ok file valid errors plan");
	is_str(text(reply, "file"), fixture.config_path, "plan: of the running configuration without a file");
	ok(json_is_true(json_object_get(reply, "valid")), "plan: the file is valid");
	is_str(json_string_value(json_array_get(json_object_get(reply, "plan"), 0)), "nothing changes",
	       "plan: nothing changes");
	json_decref(reply);

	char *line = xasprintf("{\"command\": \"plan\", \"file\": \"%s/missing.conf\"}", fixture.directory);
	reply = accepted(line, "ok file valid errors plan");
	ok(json_is_false(json_object_get(reply, "valid")), "plan: a missing file is not valid");
	char *expected = xasprintf("%s/missing.conf: cannot read the configuration: No such file or directory",
				   fixture.directory);
	is_str(json_string_value(json_array_get(json_object_get(reply, "errors"), 0)), expected, "plan: says why");
	free(expected);
	json_decref(reply);
	free(line);

	refused("{\"command\": \"plan\", \"file\": \"pgha.conf\"}", "plan needs the file's absolute path, not pgha.conf");
	refused("{\"command\": \"plan\", \"file\": \"/dev/null\"}", "/dev/null is not a regular file");
	refused("{\"command\": \"plan\", \"file\": {}}", "\"file\" must be a string");
	line = xasprintf("{\"command\": \"plan\", \"file\": \"%s\"}", fixture.directory);
	expected = xasprintf("%s is not a regular file", fixture.directory);
	refused(line, expected);
	free(line);
	free(expected);
}

static void test_reload(void)
{
	json_t *reply = accepted("{\"command\": \"reload\"}", "ok errors");
	is_int(json_array_size(json_object_get(reply, "errors")), 0, "reload: no error");
	json_decref(reply);

	/* a rejected reload answers ok false with every error, and keeps the configuration */
	char *saved = xasprintf("%s.saved", fixture.config_path);
	rename(fixture.config_path, saved);
	FILE *broken = fopen(fixture.config_path, "w");
	fputs("clusters = ( { name = \"alpha\"; replicas = 0; } );\n", broken);
	fclose(broken);
	reply = daemon_fixture_ask(&fixture, "{\"command\": \"reload\"}");
	ok(has_keys(reply, "ok errors") && json_is_false(json_object_get(reply, "ok")), "reload: a bad file is refused");
	const char *first = json_string_value(json_array_get(json_object_get(reply, "errors"), 0));
	ok(first && strncmp(first, fixture.config_path, strlen(fixture.config_path)) == 0 &&
		   first[strlen(fixture.config_path)] == ':',
	   "reload: each error is file:line: %s", first ? first : "(none)");
	json_decref(reply);
	json_t *status = accepted("{\"command\": \"status\"}", status_keys);
	ok(json_array_size(json_object_get(status, "reload_errors")) > 0, "status: shows the rejected reload");
	is_int(json_array_size(json_object_get(status, "clusters")), 2, "status: the running configuration stays");
	json_decref(status);
	rename(saved, fixture.config_path);
	free(saved);
	reply = accepted("{\"command\": \"reload\"}", "ok errors");
	json_decref(reply);

	/* each reload is counted, and kept in the history with its outcome */
	status = accepted("{\"command\": \"status\"}", status_keys);
	const json_t *reloads = json_object_get(status, "reloads");
	is_int(json_integer_value(json_object_get(reloads, "accepted")), 2, "status: two reloads accepted");
	is_int(json_integer_value(json_object_get(reloads, "refused")), 1, "status: one refused");
	json_decref(status);
	reply = accepted("{\"command\": \"history\"}", "ok entries now_ms error");
	const json_t *entries = json_object_get(reply, "entries");
	size_t count = json_array_size(entries);
	ok(count >= 3, "history: the three reloads at least (%zu entries)", count);
	const json_t *refusal = json_array_get(entries, count - 2);
	ok(has_keys(refusal, "at_ms duration_ms cluster member kind outcome reason"), "history: an entry's keys");
	is_str(text(refusal, "kind"), "reload", "history: the reload before last");
	is_str(text(refusal, "outcome"), "refused", "history: was refused");
	ok(strstr(text(refusal, "reason"), fixture.config_path) != NULL, "history: and says where: %s", text(refusal, "reason"));
	is_str(text(json_array_get(entries, count - 1), "outcome"), "accepted", "history: the last was accepted");
	json_decref(reply);
	/* a cluster's history holds the reloads too; another cluster's entries are left out */
	reply = accepted("{\"command\": \"history\", \"cluster\": \"no-such-cluster\"}", "ok entries now_ms error");
	is_int(json_array_size(json_object_get(reply, "entries")), count, "history of a cluster: the daemon's entries");
	json_decref(reply);
	refused("{\"command\": \"history\", \"cluster\": 7}", "\"cluster\" must be a string");
}

/* pghactl metrics: the text format, with a family per metric. */
static void test_metrics(void)
{
	json_t *reply = accepted("{\"command\": \"metrics\"}", "ok text");
	const char *metrics = text(reply, "text");
	ok(strstr(metrics, "# TYPE pgha_failovers_total counter\n") != NULL, "metrics: failovers are a counter");
	ok(strstr(metrics, "pgha_failovers_total{cluster=\"alpha\",kind=\"automatic\",outcome=\"completed\"} 0\n") != NULL,
	   "metrics: alpha's automatic failovers, none yet");
	ok(strstr(metrics, "pgha_cluster_replicas{cluster=\"alpha\"} 3\n") != NULL, "metrics: alpha's three replicas");
	ok(strstr(metrics, "pgha_loop_iteration_duration_seconds_count ") != NULL, "metrics: the loop's histogram");
	json_decref(reply);
}

static void test_purge(void)
{
	refused("{\"command\": \"purge\", \"cluster\": \"alpha\"}",
		"purge deletes a cluster's data: it needs the cluster's name repeated as confirmation");
	refused("{\"command\": \"purge\", \"cluster\": \"alpha\", \"confirm\": \"beta\"}",
		"purge deletes a cluster's data: it needs the cluster's name repeated as confirmation");
	refused("{\"command\": \"purge\", \"cluster\": \"alpha\", \"confirm\": \"alpha\"}",
		"cluster alpha is in the configuration: remove its block and reload first");
	refused("{\"command\": \"purge\", \"cluster\": \"gone\", \"confirm\": \"gone\"}", "cluster gone has no data here");
	refused("{\"command\": \"purge\", \"cluster\": \"../x\", \"confirm\": \"../x\"}", "no cluster can be named \"../x\"");
	refused("{\"command\": \"purge\", \"cluster\": 1, \"confirm\": 1}", "\"cluster\" must be a string");

	char *directory = xasprintf("%s/clusters/gone/gone-0/data", fixture.directory);
	for (char *slash = strchr(directory + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(directory, 0700);
		*slash = '/';
	}
	mkdir(directory, 0700);
	json_t *reply = accepted("{\"command\": \"purge\", \"cluster\": \"gone\", \"confirm\": \"gone\"}", "ok");
	json_decref(reply);
	ok(access(directory, F_OK) != 0, "purge: the removed cluster's data is deleted");
	free(directory);
}

static void test_running_cluster(void)
{
	json_t *status = accepted("{\"command\": \"status\"}", status_keys);
	const json_t *alpha = cluster_of(status, 0);
	const json_t *members = json_object_get(alpha, "members");
	is_str(text(alpha, "synchronous_standby_names"), "ANY 1 (\"alpha-1\", \"alpha-2\")", "status: the primary's list");
	is_str(text(json_array_get(members, 0), "role"), "primary", "status: alpha-0 is the primary");
	is_str(text(json_array_get(members, 0), "state"), "running", "status: and runs");
	is_str(text(json_array_get(members, 1), "role"), "replica", "status: alpha-1 is a replica");
	is_str(text(json_array_get(members, 1), "state"), "streaming", "status: streaming");
	is_str(text(json_array_get(members, 1), "sync_state"), "quorum", "status: a quorum standby");
	is_int(json_integer_value(json_object_get(json_array_get(members, 1), "lag_bytes")), 0, "status: no lag");
	ok(has_keys(json_array_get(members, 1), member_keys), "status: a running member's keys");
	json_decref(status);

	refused("{\"command\": \"switchover\", \"cluster\": \"alpha\", \"to\": \"alpha-0\"}", "alpha-0 is already the primary");
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"alpha-0\"}",
		"alpha-0 is the primary being failed over from");
	json_t *reply = accepted("{\"command\": \"switchover\", \"cluster\": \"alpha\", \"to\": \"alpha-1\"}", "ok");
	json_decref(reply);
	status = accepted("{\"command\": \"status\"}", status_keys);
	ok(json_is_true(json_object_get(json_object_get(cluster_of(status, 0), "failover"), "request_pending")),
	   "status: the switchover waits for the next iteration");
	json_decref(status);
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"alpha-2\"}", "another request is pending");

	/* a failover under way, as the state file records it */
	struct cluster_state state;
	char why[512];
	char *path = xasprintf("%s/state/alpha/state.json", fixture.directory);
	state_init(&state);
	state.primary = 0;
	state.failover = (struct failover_intent){.kind = FAILOVER_AUTOMATIC, .phase = PHASE_FENCE, .from = 0, .to = 2,
						  .started_ms = 1767225600000};
	snprintf(state.failover.reason, sizeof state.failover.reason, "alpha-0 does not answer");
	ok(state_save(path, &state, why, sizeof why), "a failover recorded: %s", why);
	free(path);
	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"alpha-1\"}",
		"a failover is under way: alpha-0 does not answer");
	status = accepted("{\"command\": \"status\"}", status_keys);
	const json_t *under_way = json_object_get(json_object_get(cluster_of(status, 0), "failover"), "under_way");
	ok(has_keys(under_way, "kind phase from to reason started_ms"), "status: the failover under way's keys");
	is_str(text(under_way, "from"), "alpha-0", "status: the failover is from alpha-0");
	is_str(text(under_way, "to"), "alpha-2", "status: to alpha-2");
	is_int(json_integer_value(json_object_get(under_way, "started_ms")), 1767225600000, "status: since when");
	json_decref(status);
}

static void test_kubernetes(void)
{
	json_t *status = accepted("{\"command\": \"status\"}", "ok version pid config platform iterations reload_errors "
								   "clusters loop reloads now_ms iterations_begun history_error kubernetes");
	is_str(text(status, "platform"), "kubernetes", "kubernetes status: the platform");
	const json_t *kubernetes = json_object_get(status, "kubernetes");
	ok(has_keys(kubernetes, "namespace identity requests_per_iteration requests_total error api_requests "
			       "requests_per_second"),
	   "kubernetes status: the API's keys");
	is_str(text(kubernetes, "namespace"), "fixture", "kubernetes status: the namespace");
	const json_t *alpha = cluster_of(status, 0);
	ok(has_keys(alpha, "name replicas port synchronous failover synchronous_standby_names "
			   "published_synchronous_standby_names known_primary waiting members lease"),
	   "kubernetes status: a cluster's keys");
	const json_t *lease = json_object_get(alpha, "lease");
	ok(has_keys(lease, "name holder held"), "kubernetes status: the lease's keys");
	is_str(text(lease, "name"), "pgha-alpha", "kubernetes status: the lease's name");
	json_decref(status);

	refused("{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"nope\"}",
		"nope is not a member of alpha (its members are alpha-0, alpha-1 and alpha-2)");
	/* no API server answers: refused with the reason, whatever it is */
	const char *unanswered[] = {
		"{\"command\": \"failover\", \"cluster\": \"alpha\", \"to\": \"alpha-1\"}",
		"{\"command\": \"switchover\", \"cluster\": \"alpha\", \"to\": \"alpha-1\"}",
		"{\"command\": \"pause\", \"cluster\": \"beta\"}",
		"{\"command\": \"purge\", \"cluster\": \"gone\", \"confirm\": \"gone\"}",
	};
	for (size_t i = 0; i < sizeof unanswered / sizeof unanswered[0]; i++) {
		json_t *reply = daemon_fixture_ask(&fixture, unanswered[i]);
		ok(has_keys(reply, "ok error") && json_is_false(json_object_get(reply, "ok")) && text(reply, "error")[0],
		   "kubernetes: %s is refused with a reason: %s", unanswered[i], text(reply, "error"));
		json_decref(reply);
	}
}

/* What pghad keeps of each cluster's state between turns is the state whole: every field
 * comes back, the longest lists too. */
static void test_kept_state(void)
{
	struct cluster_state state, back;
	struct kept_state kept = {0};

	state_restore(&back, &kept);
	state_init(&state);
	ok(state_equal(&back, &state), "kept state: nothing kept yet is the initial state");

	state = (struct cluster_state){.primary = 2, .synchronous_known = true, .synchronous_since_lsn = 0x3000060,
				       .paused = true,
				       .failover = {.kind = FAILOVER_MANUAL, .phase = PHASE_PROMOTE, .from = 1, .to = 2,
						    .force = true, .started_ms = 1767225600000}};
	memset(state.synchronous, 'a', sizeof state.synchronous - 1);
	snprintf(state.previous, sizeof state.previous, "ANY 1 (\"alpha-1\", \"alpha-2\")");
	snprintf(state.failover.reason, sizeof state.failover.reason, "asked by the operator");
	snprintf(state.last, sizeof state.last, "failover to alpha-2 completed");
	state_keep(&kept, &state);
	state_restore(&back, &kept);
	ok(state_equal(&back, &state), "kept state: every field comes back");
	is_int((long long)strlen(back.synchronous), STATE_NAMES_SIZE - 1, "kept state: the longest list whole");
	ok(back.synchronous_since_lsn == state.synchronous_since_lsn && back.failover.force && back.paused,
	   "kept state: the position, the force and the pause");

	state_init(&state);
	state_keep(&kept, &state);
	state_restore(&back, &kept);
	ok(state_equal(&back, &state) && !back.synchronous[0] && back.primary == -1,
	   "kept state: keeping again replaces what was kept");
	kept_state_free(&kept);
}

int main(void)
{
	test_kept_state();
	if (!daemon_fixture_create(&fixture, FIXTURE_LOCAL) || !daemon_fixture_start(&fixture, FIXTURE_NOT_OBSERVED)) {
		daemon_fixture_remove(&fixture);
		ok(false, "the daemon starts on the fixture");
		return done_testing();
	}
	test_status_before_the_first_iteration();
	daemon_fixture_stop(&fixture);

	daemon_fixture_start(&fixture, FIXTURE_NO_DATA);
	test_status_of_members_without_data();
	test_requests_that_are_not_commands();
	test_failover_requests_refused();
	test_long_names_are_quoted_whole();
	test_pause_and_resume();
	test_plan();
	test_purge();
	test_reload();
	test_metrics();
	daemon_fixture_stop(&fixture);

	daemon_fixture_start(&fixture, FIXTURE_ALPHA_RUNNING);
	test_running_cluster();
	daemon_fixture_stop(&fixture);
	daemon_fixture_remove(&fixture);

	if (daemon_fixture_create(&fixture, FIXTURE_KUBERNETES) && daemon_fixture_start(&fixture, FIXTURE_NOT_OBSERVED)) {
		test_kubernetes();
		daemon_fixture_stop(&fixture);
	} else {
		ok(false, "the daemon starts on the kubernetes fixture");
	}
	daemon_fixture_remove(&fixture);
	is_int(jsonpack_failures(), 0, "no json_pack format failed its arguments");
	return done_testing();
}
