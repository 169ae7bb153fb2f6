/* test-timeline: reading timeline history files, and whether a standby's WAL is part of a primary's history or diverged from it. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "observe.h"
#include "tap.h"
#include "timeline.h"

struct contains_case {
	const char *what;
	uint32_t current, timeline;
	uint64_t position;
	bool contained;
};

int main(void)
{
	struct timeline_switch *switches;
	size_t count;

	/* as PostgreSQL 15 writes 00000003.history */
	ok(timeline_parse_history("1\t0/3000060\tno recovery target specified\n\n"
				  "2\t0/5000100\tno recovery target specified\n",
				  &switches, &count),
	   "a history file is read");
	is_int((int)count, 2, "two ancestor timelines");
	ok(count == 2 && switches[0].timeline == 1 && switches[0].end_lsn == 0x3000060 && switches[1].timeline == 2 &&
		   switches[1].end_lsn == 0x5000100,
	   "each with where it ended");

	static const struct contains_case cases[] = {
		{"the same timeline, any position", 3, 3, 0x90000000, true},
		{"an ancestor up to where it ended", 3, 2, 0x5000100, true},
		{"an ancestor before where it ended", 3, 1, 0x1000000, true},
		{"an ancestor past where it ended: diverged", 3, 2, 0x5000101, false},
		{"timeline 1 past its end: diverged", 3, 1, 0x4000000, false},
		{"a later timeline than the primary's: another branch", 3, 4, 0x1000000, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ok(timeline_contains(switches, count, cases[i].current, cases[i].timeline, cases[i].position) ==
			   cases[i].contained,
		   "contains: %s", cases[i].what);
	free(switches);

	ok(timeline_parse_history("# a comment\n", &switches, &count) && count == 0 && !switches,
	   "a history of comments only names no timeline");
	ok(!timeline_parse_history("garbage\n", &switches, &count) && count == 0 && !switches, "garbage is refused");
	ok(!timeline_parse_history("1\tnot-an-lsn\treason\n", &switches, &count), "a line without an LSN is refused");
	ok(timeline_contains(NULL, 0, 1, 1, 0xFFFFFFFF), "timeline 1 without a history holds all of timeline 1");
	ok(!timeline_contains(NULL, 0, 2, 1, 0x100), "a timeline the history does not name is another branch");

	/* the observation's view: a standby against a primary */
	struct timeline_switch fork = {.timeline = 1, .end_lsn = 1000};
	struct member_observation primary = {.reachable = true, .wal_timeline = 2, .history = &fork, .history_count = 1};
	struct member_observation standby = {.reachable = true, .in_recovery = true, .wal_timeline = 1, .receive_lsn = 1200};
	ok(observation_diverged(&standby, &primary), "diverged: received on timeline 1 past its end at 1000");
	standby.receive_lsn = 900;
	standby.lsn = 1100;
	ok(observation_diverged(&standby, &primary), "diverged: replayed past it counts too");
	standby.lsn = 1000;
	ok(!observation_diverged(&standby, &primary), "not diverged: up to the fork on timeline 1");
	standby.wal_timeline = 2;
	standby.receive_lsn = 5000;
	ok(!observation_diverged(&standby, &primary), "not diverged: on the primary's timeline");
	standby.wal_timeline = 0;
	ok(!observation_diverged(&standby, &primary), "unknown timeline: not taken for diverged");
	/* against a candidate about to be promoted (in recovery, on timeline 2 at 1500) */
	struct member_observation candidate = {.reachable = true, .in_recovery = true, .wal_timeline = 2, .receive_lsn = 1500};
	standby = (struct member_observation){.reachable = true, .in_recovery = true, .wal_timeline = 2, .receive_lsn = 1600};
	ok(observation_diverged(&standby, &candidate), "candidate: a standby further on the same timeline will diverge");
	standby.receive_lsn = 1500;
	ok(!observation_diverged(&standby, &candidate), "candidate: one as far will not");
	standby.wal_timeline = 3;
	standby.receive_lsn = 10;
	ok(observation_diverged(&standby, &candidate), "candidate: one on a later timeline is on another branch");
	ok(!observation_diverged(&candidate, &candidate), "a member never diverges from itself");
	return done_testing();
}
