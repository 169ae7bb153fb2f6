/* test-metrics: the Prometheus text made from status documents, table by table: names, labels, escaping, the histogram's cumulative buckets, and what is left out when unknown. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"

/* A status document as pghad answers it, with one cluster whose members are given. */
static const char status_head[] =
	"{\"ok\": true, \"version\": \"1.2\", \"platform\": \"local\", \"iterations\": 7, \"reload_errors\": [],"
	" \"loop\": {\"iteration_seconds\": {\"bounds\": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],"
	"   \"counts\": [1, 2, 0, 0, 0, 0, 0, 0, 0, 1], \"count\": 5, \"sum\": 4.5}},"
	" \"reloads\": {\"accepted\": 2, \"refused\": 1},";

struct metrics_case {
	const char *name;
	const char *document; /* after status_head */
	const char *present[12]; /* lines the text must hold */
	const char *absent[6];   /* substrings it must not */
};

static const struct metrics_case cases[] = {
	{"a healthy cluster after an automatic failover",
	 "\"clusters\": [{\"name\": \"demo\", \"replicas\": 2,"
	 " \"failover\": {\"paused\": false, \"under_way\": null,"
	 "   \"counts\": {\"automatic\": {\"completed\": 1, \"abandoned\": 0}},"
	 "   \"last_ended\": {\"kind\": \"automatic\", \"outcome\": \"completed\", \"duration_ms\": 350}},"
	 " \"members\": ["
	 "  {\"name\": \"demo-0\", \"role\": \"replica\", \"reachable\": true, \"timeline\": 2, \"lag_bytes\": 16,"
	 "   \"replay_lag_seconds\": 0.25, \"sync_state\": \"quorum\", \"clone\": null},"
	 "  {\"name\": \"demo-1\", \"role\": \"primary\", \"reachable\": true, \"timeline\": 2, \"lag_bytes\": null,"
	 "   \"replay_lag_seconds\": null, \"sync_state\": \"\", \"clone\": null}]}]}",
	 {"pgha_info{version=\"1.2\",platform=\"local\"} 1\n",
	  "pgha_failovers_total{cluster=\"demo\",kind=\"automatic\",outcome=\"completed\"} 1\n",
	  "pgha_failovers_total{cluster=\"demo\",kind=\"switchover\",outcome=\"abandoned\"} 0\n",
	  "pgha_last_failover_duration_seconds{cluster=\"demo\",kind=\"automatic\",outcome=\"completed\"} 0.35\n",
	  "pgha_member_role{cluster=\"demo\",member=\"demo-1\",role=\"primary\"} 1\n",
	  "pgha_member_role{cluster=\"demo\",member=\"demo-0\",role=\"primary\"} 0\n",
	  "pgha_member_timeline{cluster=\"demo\",member=\"demo-1\"} 2\n",
	  "pgha_member_lag_bytes{cluster=\"demo\",member=\"demo-0\"} 16\n",
	  "pgha_member_replay_lag_seconds{cluster=\"demo\",member=\"demo-0\"} 0.25\n",
	  "pgha_member_synchronous{cluster=\"demo\",member=\"demo-0\"} 1\n",
	  "pgha_cluster_primary{cluster=\"demo\",member=\"demo-1\"} 1\n",
	  "pgha_cluster_members_up{cluster=\"demo\"} 2\n"},
	 {"pgha_member_lag_bytes{cluster=\"demo\",member=\"demo-1\"}", "pgha_cluster_lease_held",
	  "pgha_member_clone", "pgha_kubernetes_api_requests_total"}},
	{"the histogram is cumulative, and reloads and iterations are counters",
	 "\"clusters\": []}",
	 {"# TYPE pgha_loop_iteration_duration_seconds histogram\n",
	  "pgha_loop_iteration_duration_seconds_bucket{le=\"0.005\"} 1\n",
	  "pgha_loop_iteration_duration_seconds_bucket{le=\"0.01\"} 3\n",
	  "pgha_loop_iteration_duration_seconds_bucket{le=\"2.5\"} 3\n",
	  "pgha_loop_iteration_duration_seconds_bucket{le=\"5\"} 4\n",
	  "pgha_loop_iteration_duration_seconds_bucket{le=\"+Inf\"} 5\n",
	  "pgha_loop_iteration_duration_seconds_sum 4.5\n", "pgha_loop_iteration_duration_seconds_count 5\n",
	  "pgha_reloads_total{result=\"refused\"} 1\n", "pgha_loop_iterations_total 7\n",
	  "# TYPE pgha_reloads_total counter\n", "pgha_config_last_reload_refused 0\n"},
	 {"pgha_cluster_replicas{", "pgha_last_failover_duration_seconds"}},
	{"a member down, a clone, a Lease and API requests on kubernetes",
	 "\"kubernetes\": {\"api_requests\": [{\"verb\": \"GET\", \"code\": 200, \"count\": 40},"
	 "  {\"verb\": \"PATCH\", \"code\": 409, \"count\": 2}]},"
	 "\"clusters\": [{\"name\": \"k\", \"replicas\": 3, \"lease\": {\"held\": true},"
	 " \"failover\": {\"paused\": true, \"under_way\": {\"kind\": \"automatic\"}, \"counts\": {}, \"last_ended\": null},"
	 " \"members\": ["
	 "  {\"name\": \"k-0\", \"role\": \"unknown\", \"reachable\": false, \"timeline\": 3, \"lag_bytes\": null},"
	 "  {\"name\": \"k-2\", \"role\": \"unknown\", \"reachable\": false, \"timeline\": 0,"
	 "   \"clone\": {\"phase\": \"streaming database files\", \"total_bytes\": 1000, \"streamed_bytes\": 250,"
	 "     \"percent\": 25.0}}]}]}",
	 {"pgha_cluster_lease_held{cluster=\"k\"} 1\n", "pgha_cluster_paused{cluster=\"k\"} 1\n",
	  "pgha_cluster_failover_in_progress{cluster=\"k\"} 1\n", "pgha_cluster_primaries{cluster=\"k\"} 0\n",
	  "pgha_member_up{cluster=\"k\",member=\"k-0\"} 0\n",
	  "pgha_member_role{cluster=\"k\",member=\"k-0\",role=\"unknown\"} 1\n",
	  "pgha_member_clone_total_bytes{cluster=\"k\",member=\"k-2\"} 1000\n",
	  "pgha_member_clone_streamed_bytes{cluster=\"k\",member=\"k-2\"} 250\n",
	  "pgha_kubernetes_api_requests_total{verb=\"PATCH\",code=\"409\"} 2\n",
	  "pgha_failovers_total{cluster=\"k\",kind=\"manual\",outcome=\"completed\"} 0\n"},
	 {"pgha_member_timeline{", "pgha_member_synchronous{"}},
	{"label values are escaped",
	 "\"clusters\": [{\"name\": \"a\\\"b\\\\c\\nd\", \"replicas\": 1, \"failover\": {}, \"members\": []}]}",
	 {"pgha_cluster_replicas{cluster=\"a\\\"b\\\\c\\nd\"} 1\n"},
	 {"\"a\"b"}},
};

/* Every sample follows its family's TYPE, no family is declared twice, and every line
 * ends with a newline. */
static bool well_formed(const char *text, char *why, size_t why_size)
{
	char declared[64][80];
	size_t families = 0;
	const char *line = text;
	while (*line) {
		const char *end = strchr(line, '\n');
		if (!end) {
			snprintf(why, why_size, "a line without its newline: %s", line);
			return false;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[80];
			sscanf(line + 7, "%79s", name);
			for (size_t i = 0; i < families; i++)
				if (strcmp(declared[i], name) == 0) {
					snprintf(why, why_size, "%s declared twice", name);
					return false;
				}
			if (families < 64)
				snprintf(declared[families++], sizeof declared[0], "%s", name);
		} else if (line[0] != '#') {
			bool known = false;
			for (size_t i = 0; i < families && !known; i++)
				known = strncmp(line, declared[i], strlen(declared[i])) == 0;
			if (!known || families == 0 || strncmp(line, declared[families - 1], strlen(declared[families - 1])) != 0) {
				snprintf(why, why_size, "a sample outside its family: %.*s", (int)(end - line), line);
				return false;
			}
		}
		line = end + 1;
	}
	return true;
}

static void test_cases(void)
{
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const struct metrics_case *test = &cases[c];
		char *document = NULL;
		size_t length = strlen(status_head) + strlen(test->document) + 1;
		document = malloc(length);
		snprintf(document, length, "%s%s", status_head, test->document);
		json_error_t error;
		json_t *status = json_loads(document, 0, &error);
		ok(status != NULL, "%s: the document parses (%s)", test->name, status ? "" : error.text);
		char *text = metrics_format(status);
		ok(text != NULL, "%s: formats", test->name);
		for (size_t i = 0; text && i < sizeof test->present / sizeof test->present[0] && test->present[i]; i++)
			if (!ok(strstr(text, test->present[i]) != NULL, "%s: has %.*s", test->name,
				(int)strcspn(test->present[i], "\n"), test->present[i]))
				diag("%s", text);
		for (size_t i = 0; text && i < sizeof test->absent / sizeof test->absent[0] && test->absent[i]; i++)
			ok(strstr(text, test->absent[i]) == NULL, "%s: has no %s", test->name, test->absent[i]);
		char why[256] = "";
		ok(text && well_formed(text, why, sizeof why), "%s: each family whole, after its TYPE %s", test->name, why);
		char *again = metrics_format(status);
		ok(text && again && strcmp(text, again) == 0, "%s: the same document gives the same text", test->name);
		free(again);
		free(text);
		json_decref(status);
		free(document);
	}
}

static void test_refusals_and_histogram(void)
{
	json_t *array = json_array();
	ok(metrics_format(array) == NULL, "an array is not a status document");
	ok(metrics_format(NULL) == NULL, "nor is nothing");
	json_decref(array);

	struct metrics_histogram histogram = {0};
	metrics_observe(&histogram, 0.001);
	metrics_observe(&histogram, 0.005); /* on a bound: in that bucket (le means at most) */
	metrics_observe(&histogram, 0.3);
	metrics_observe(&histogram, 60);    /* above every bound: only in +Inf, that is count */
	is_int(histogram.counts[0], 2, "0.001 s and 0.005 s fall in le=0.005");
	is_int(histogram.counts[6], 1, "0.3 s falls in le=0.5");
	is_int(histogram.count, 4, "every observation is counted");
	unsigned long long bucketed = 0;
	for (size_t i = 0; i < METRICS_ITERATION_BUCKETS; i++)
		bucketed += histogram.counts[i];
	is_int(bucketed, 3, "60 s is in no finite bucket");
	json_t *shown = metrics_histogram_json(&histogram);
	is_int(json_integer_value(json_object_get(shown, "count")), 4, "the status document carries the count");
	is_int(json_array_size(json_object_get(shown, "bounds")), METRICS_ITERATION_BUCKETS, "and every bound");
	json_decref(shown);
}

int main(void)
{
	test_cases();
	test_refusals_and_histogram();
	return done_testing();
}
