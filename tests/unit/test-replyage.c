/* test-replyage: a standby's reply age, read by successive probes of its primary, is corrected for the offset between its clock and the primary's that those probes prove: as the primary's clock gives it when the clocks agree, off by at most a probe's interval when the standby's runs ahead or behind. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "replyage.h"
#include "tap.h"

#define STEPS 8

/* One standby, "s1", read by probes of its primary: at each, the stamp its reply
 * carries ("": none), the age the primary's clock gives (clock_timestamp() - stamp,
 * floored at 0; -1: none), and the age held. */
struct step {
	long long now;
	const char *stamp;
	long long clock_age;
	long long held;
};

static const struct {
	const char *name;
	struct step steps[STEPS];
} cases[] = {
	{"clocks that agree: each age as the primary's clock gives it",
	 {{1000, "a", 200, 200}, {1500, "b", 300, 300}, {2000, "c", 100, 100}, {2500, "c", 600, 600},
	  {3000, "d", 50, 50}}},
	{"read for the first time: the primary's clock alone, whatever it says",
	 {{1000, "a", 90000, 90000}}},
	{"a standby 60 s ahead, answering: its stamps' offset taken out",
	 {{1000, "a", -60000, 0}, {1500, "a", -59500, 500}, {2000, "b", -60000, 0}, {2500, "b", -59500, 500},
	  {3000, "c", -59900, 100}}},
	{"a standby 60 s ahead, cut off: its age grows from its last stamp, as with agreeing clocks",
	 {{1000, "a", -60000, 0}, {1500, "b", -60000, 0}, {2000, "b", -59500, 500}, {4000, "b", -57500, 2500},
	  {7000, "b", -54500, 5500}, {61500, "b", 0, 60000}, {62000, "b", 500, 60500}}},
	{"a standby 60 s behind, answering: silent at its first read only, then within a probe's interval",
	 {{1000, "a", 60200, 60200}, {1500, "b", 60100, 500}, {2000, "c", 60300, 500}, {2500, "c", 60800, 1000},
	  {3000, "d", 60000, 200}}},
	{"a standby that leaves the list is forgotten: back, it is read for the first time again",
	 {{1000, "a", 61000, 61000}, {1500, "b", 61000, 500}, {2000, NULL, 0, 0}, {2500, "c", 61000, 61000}}},
	{"a reply without a stamp is left as it is, and remembered as nothing",
	 {{1000, "a", 61000, 61000}, {1500, "", -1, -1}, {2000, "b", 61000, 61000}}},
	{"a standby's clock set right: the offsets proved before are dropped, not kept against the new stamps",
	 {{1000, "a", 60000, 60000}, {1500, "b", 60000, 500}, {2000, "c", 100, 100}, {2500, "c", 600, 600}}},
};

int main(void)
{
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct reply_memory memory = {0};
		bool held = true;
		char got[256] = "";
		for (int s = 0; s < STEPS && cases[c].steps[s].now; s++) {
			const struct step *step = &cases[c].steps[s];
			struct replication_peer peers[2] = {0};
			size_t count = 0;
			/* another standby, agreeing, beside it: it changes nothing of s1's */
			snprintf(peers[count].application_name, sizeof peers[count].application_name, "s2");
			snprintf(peers[count].reply_time, sizeof peers[count].reply_time, "t%lld", step->now);
			peers[count++].reply_age_ms = 0;
			if (step->stamp) {
				snprintf(peers[count].application_name, sizeof peers[count].application_name, "s1");
				snprintf(peers[count].reply_time, sizeof peers[count].reply_time, "%s", step->stamp);
				peers[count++].reply_age_ms = step->clock_age;
			}
			struct reply_memory next = {0};
			replyage_hold(&memory, peers, count, step->now, &next);
			replyage_forget(&memory);
			memory = next;
			if (step->stamp) {
				snprintf(got + strlen(got), sizeof got - strlen(got), " %lld", peers[1].reply_age_ms);
				held = held && peers[1].reply_age_ms == step->held;
			}
			held = held && peers[0].reply_age_ms == 0;
		}
		ok(held, "%s (held:%s)", cases[c].name, got);
		replyage_forget(&memory);
	}

	/* asked without remembering (a doubt on the probe just read), nothing changes */
	struct reply_memory memory = {0}, next = {0};
	struct replication_peer peer = {.application_name = "s1", .reply_time = "a", .reply_age_ms = 0};
	replyage_hold(&memory, &peer, 1, 1000, &next);
	struct replication_peer again = {.application_name = "s1", .reply_time = "a", .reply_age_ms = 2000};
	replyage_hold(&next, &again, 1, 3000, NULL);
	is_int(again.reply_age_ms, 2000, "held without remembering: 2000 ms since the stamp was first read");
	ok(next.count == 1 && next.seen[0].read_ms == 1000 && next.seen[0].high == 0 && !next.seen[0].bounded_below,
	   "and the memory is as it was");
	replyage_forget(&next);
	return done_testing();
}
