/* test-podgone: a pod that left the API server counts as gone from its node only once the node is Ready and its kubelet renewed its Lease twice since pghad looked; never while the node is missing, not Ready, or silent; and a list made again shows which pods left it unseen. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "podgone.h"
#include "tap.h"

#define T0 "2026-12-03T10:00:00.000000Z"
#define T1 "2026-12-03T10:00:10.000000Z"
#define T2 "2026-12-03T10:00:20.000000Z"
#define T3 "2026-12-03T10:00:30.000000Z"
/* what each reading is */
#define READY(t) {true, true, true, t}
#define NOT_READY(t) {true, true, false, t}
#define NO_NODE {true, false, false, NULL}
#define UNREAD {false, false, false, NULL}
#define M PODGONE_MAY_RUN
#define G PODGONE_GONE

/* Each case: readings one after the other from an empty memory (a pghad that just saw the
 * pod missing, or just started), the verdict after each, and what the last why says. */
static const struct {
	const char *name;
	int count;
	struct podgone_node seen[6];
	enum podgone_verdict verdicts[6];
	const char *why;
} cases[] = {
	{"nothing read yet: may run", 1, {UNREAD}, {M}, "reading node n1"},
	{"the node does not exist: may run, however long", 3, {NO_NODE, NO_NODE, NO_NODE}, {M, M, M},
	 "node n1 does not exist"},
	{"Ready, the first renewTime seen is only the baseline", 1, {READY(T0)}, {M}, "0 of 2"},
	{"Ready, renewed once since: may run (its cleanup may come after that renewal)", 2, {READY(T0), READY(T1)}, {M, M},
	 "1 of 2"},
	{"Ready, renewed twice since: gone", 3, {READY(T0), READY(T1), READY(T2)}, {M, M, G}, "renewed its Lease 2 times"},
	{"the same renewTime read again is no renewal", 4, {READY(T0), READY(T1), READY(T1), READY(T1)}, {M, M, M, M},
	 "1 of 2"},
	{"renewals seen not Ready do not count", 3, {NOT_READY(T0), NOT_READY(T1), NOT_READY(T2)}, {M, M, M},
	 "is not Ready"},
	{"Ready again: counted from the first renewTime seen Ready", 4,
	 {NOT_READY(T0), NOT_READY(T1), READY(T1), READY(T2)}, {M, M, M, M}, "1 of 2"},
	{"not Ready in between starts the count again", 5, {READY(T0), READY(T1), NOT_READY(T2), READY(T2), READY(T3)},
	 {M, M, M, M, M}, "1 of 2"},
	{"the node deleted in between starts the count again", 5, {READY(T0), READY(T1), NO_NODE, READY(T2), READY(T3)},
	 {M, M, M, M, M}, "1 of 2"},
	{"an unanswered read keeps what was counted", 4, {READY(T0), READY(T1), UNREAD, READY(T2)}, {M, M, M, G},
	 "2 times"},
	{"Ready with no Lease renewed: may run", 2, {READY(NULL), READY("")}, {M, M}, "no Lease renewed"},
	{"a Lease that appears counts from its first renewTime", 3, {READY(NULL), READY(T0), READY(T1)}, {M, M, M},
	 "1 of 2"},
	{"a renewTime earlier than the last (the Lease made again) starts the count again", 4,
	 {READY(T1), READY(T2), READY(T0), READY(T1)}, {M, M, M, M}, "1 of 2"},
	{"a renewTime that cannot be read: may run", 2, {READY(T0), READY("yesterday")}, {M, M}, "cannot be read"},
	{"renewTimes in other offsets compare as times", 3,
	 {READY("2026-12-03T11:00:00.000000+01:00"), READY("2026-12-03T10:00:00.5Z"), READY("2026-12-03T05:00:01-05:00")},
	 {M, M, G}, "2 times"},
	{"microseconds count", 3, {READY("2026-12-03T10:00:00.000001Z"), READY("2026-12-03T10:00:00.000002Z"),
				   READY("2026-12-03T10:00:00.000003Z")}, {M, M, G}, "2 times"},
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct podgone_memory memory;
		memset(&memory, 0, sizeof memory);
		char why[256] = "";
		bool as_said = true;
		for (int step = 0; step < cases[i].count; step++) {
			enum podgone_verdict verdict = podgone_judge(&memory, "n1", &cases[i].seen[step], why, sizeof why);
			if (verdict != cases[i].verdicts[step]) {
				diag("%s: reading %d: %s", cases[i].name, step + 1, verdict == G ? "gone" : "may run");
				as_said = false;
			}
		}
		ok(as_said, "%s", cases[i].name);
		ok(strstr(why, cases[i].why) != NULL, "%s: why \"%s\" says \"%s\"", cases[i].name, why, cases[i].why);
	}
}

static void test_times(void)
{
	int order = 9;
	ok(podgone_time_compare(T0, T1, &order) && order < 0, "earlier");
	ok(podgone_time_compare(T1, T0, &order) && order > 0, "later");
	ok(podgone_time_compare("2026-12-03T10:00:00Z", T0, &order) && order == 0, "no fraction is .000000");
	ok(podgone_time_compare("2024-02-29T23:59:59.999999Z", "2024-03-01T00:00:00Z", &order) && order < 0,
	   "across a leap day");
	ok(!podgone_time_compare("2026-12-03 10:00:00Z", T0, &order), "a space for the T is refused");
	ok(!podgone_time_compare("2026-12-03T10:00:00", T0, &order), "no zone is refused");
	ok(!podgone_time_compare("2026-12-03T10:00:00.Z", T0, &order), "an empty fraction is refused");
	ok(!podgone_time_compare("2026-13-03T10:00:00Z", T0, &order), "month 13 is refused");
	ok(!podgone_time_compare(T0 "x", T0, &order), "trailing text is refused");
	ok(!podgone_time_compare(NULL, T0, &order), "NULL is refused");
}

/* Each case: the watch's view and the list made again as "name:uid" pods ("name" alone:
 * no uid; NULL view: none yet), and the pods of the view the list no longer has. */
static const struct {
	const char *name;
	const char *previous[4];
	bool no_view;
	const char *listed[4];
	const char *unlisted[4];
} unlisted_cases[] = {
	{"the first list: nothing to compare with", {NULL}, true, {"a:1", "b:2"}, {NULL}},
	{"the same pods: none", {"a:1", "b:2"}, false, {"b:2", "a:1"}, {NULL}},
	{"a pod deleted unseen", {"a:1", "b:2", "c:3"}, false, {"a:1", "c:3"}, {"b:2"}},
	{"every pod deleted unseen: an empty list", {"a:1", "b:2"}, false, {NULL}, {"a:1", "b:2"}},
	{"the same name with another uid: the previous pod is gone", {"a:1", "b:2"}, false, {"a:1", "b:7"}, {"b:2"}},
	{"a pod made since: none", {"a:1"}, false, {"a:1", "b:2"}, {NULL}},
	{"another name with the same uid is the same pod", {"a:1"}, false, {"z:1"}, {NULL}},
	{"a pod without a uid is left out", {"a", "b:2"}, false, {NULL}, {"b:2"}},
};

static json_t *pods(const char *const *specs, bool none)
{
	if (none)
		return NULL;
	json_t *array = json_array();
	for (int i = 0; i < 4 && specs[i]; i++) {
		char name[16];
		const char *colon = strchr(specs[i], ':');
		snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - specs[i]) : (int)strlen(specs[i]), specs[i]);
		json_t *metadata = json_pack("{s:s}", "name", name);
		if (colon)
			json_object_set_new(metadata, "uid", json_string(colon + 1));
		json_array_append_new(array, json_pack("{s:o, s:{s:s}}", "metadata", metadata, "spec", "nodeName", "n1"));
	}
	return array;
}

static void test_unlisted(void)
{
	for (size_t i = 0; i < sizeof unlisted_cases / sizeof unlisted_cases[0]; i++) {
		json_t *previous = pods(unlisted_cases[i].previous, unlisted_cases[i].no_view);
		json_t *listed = pods(unlisted_cases[i].listed, false);
		json_t *expected = pods(unlisted_cases[i].unlisted, false);
		json_t *unlisted = podgone_unlisted(previous, listed);
		char *text = json_dumps(unlisted, JSON_COMPACT);
		ok(json_equal(unlisted, expected), "%s: %s", unlisted_cases[i].name, text);
		free(text);
		json_decref(unlisted);
		json_decref(expected);
		json_decref(listed);
		json_decref(previous);
	}
}

int main(void)
{
	test_cases();
	test_times();
	test_unlisted();
	return done_testing();
}
