/* test-lease: the Lease's arithmetic: until when the holder acts, when another may take over, and that the first always ends before the second begins. */
#include "autoconfig.h"

#include <string.h>

#include "lease.h"
#include "tap.h"

static void test_margin(void)
{
	is_int(lease_action_margin_ms(10000), 2500, "a quarter of a 10 s lease");
	is_int(lease_action_margin_ms(4000), 1000, "a quarter of a 4 s lease");
	is_int(lease_action_margin_ms(1000), LEASE_MIN_MARGIN_MS, "never below the minimum");
}

static void test_holder(void)
{
	static const struct {
		bool held;
		long long sent, now;
		int duration;
		bool may;
		const char *why;
	} cases[] = {
		{true, 1000, 1000, 10000, true, ""},
		{true, 1000, 8499, 10000, true, ""},
		/* 2500 ms margin: from 8500 on the holder stops, though its lease still runs */
		{true, 1000, 8500, 10000, false, "expires in 2500 ms, within the 2500 ms margin"},
		{true, 1000, 10999, 10000, false, "expires in 1 ms"},
		{true, 1000, 11000, 10000, false, "expired 0 ms ago"},
		/* resumed after a SIGSTOP long past its lease */
		{true, 1000, 61000, 10000, false, "expired 50000 ms ago (last renewal sent 60000 ms ago, for 10000 ms)"},
		{false, 1000, 1000, 10000, false, "does not hold the lease"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char why[256] = "";
		bool may = lease_may_act(cases[i].held, cases[i].sent, cases[i].duration, cases[i].now, why, sizeof why);
		ok(may == cases[i].may, "case %zu: %s", i, may ? "may act" : "may not act");
		ok(strstr(why, cases[i].why) != NULL, "case %zu: why \"%s\" says \"%s\"", i, why, cases[i].why);
	}
	is_int((int)lease_remaining_ms(1000, 4000, 2000), 3000, "remaining from the request's start");
}

static void test_takeover(void)
{
	is_int(lease_takeover_duration_ms(4, 10), 4000, "the Lease's own duration, not this pghad's");
	is_int(lease_takeover_duration_ms(30, 10), 30000, "a longer one too");
	is_int(lease_takeover_duration_ms(0, 10), 10000, "missing: this pghad's");
	is_int(lease_takeover_duration_ms(-5, 10), 10000, "negative: this pghad's");
	is_int(lease_takeover_duration_ms(100000, 10), 10000, "absurd: this pghad's");
	ok(!lease_expired_for_others(5000, 4000, 8999), "not before the whole duration");
	ok(lease_expired_for_others(5000, 4000, 9000), "after the whole duration");
}

/* Every timing of one renewal: the request starts at 0, lands on the API server at
 * landed, answers at answered; another pghad first sees it at seen (after it landed).
 * The holder's last moment of acting is always before the other's first. */
static void test_holder_ends_before_takeover(void)
{
	bool always = true;
	long long worst_gap = -1;

	for (int duration = 2000; duration <= 12000; duration += 2000)
		for (long long landed = 0; landed <= 5000; landed += 250)
			for (long long answered = landed; answered <= 5000; answered += 250)
				for (long long seen = landed; seen <= landed + 6000; seen += 250) {
					long long last_act = -1;
					char why[256];
					for (long long now = answered; now < duration + 1000; now += 50)
						if (lease_may_act(true, 0, duration, now, why, sizeof why))
							last_act = now;
					long long takeover = seen + duration;
					if (last_act >= 0 && last_act >= takeover)
						always = false;
					if (last_act >= 0 && (worst_gap < 0 || takeover - last_act < worst_gap))
						worst_gap = takeover - last_act;
				}
	ok(always, "the holder stops acting before any other pghad may take over");
	ok(worst_gap >= LEASE_MIN_MARGIN_MS, "by at least the margin (%lld ms at worst)", worst_gap);
}

int main(void)
{
	test_margin();
	test_holder();
	test_takeover();
	test_holder_ends_before_takeover();
	return done_testing();
}
