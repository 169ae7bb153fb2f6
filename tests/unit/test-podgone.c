/* test-podgone: a pod that left the API server counts as gone from its node only once the node is Ready and its kubelet renewed its Lease twice since pghad looked; never while the node is missing, not Ready, or silent. */
#include "autoconfig.h"

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

int main(void)
{
	test_cases();
	test_times();
	return done_testing();
}
