/* test-names: the names derived for members and objects, and the rules for cluster names. */
#include "autoconfig.h"

#include <string.h>

#include "names.h"
#include "tap.h"

static const struct {
	const char *name;
	bool label, subdomain;
} name_cases[] = {
	{"test", true, true},
	{"a", true, true},
	{"a1-b2", true, true},
	{"1abc", false, true}, /* a label must start with a letter */
	{"abc-", false, false},
	{"-abc", false, false},
	{"Test", false, false}, /* uppercase would not survive as a service name */
	{"te_st", false, false},
	{"te.st", false, true},
	{"", false, false},
	{"a..b", false, false},
	{"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc", true, true},   /* 63 */
	{"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", false, false}, /* 64 */
};

int main(void)
{
	char buffer[128], why[256];

	names_member(buffer, sizeof buffer, "test", 2);
	is_str(buffer, "test-2", "member name");
	names_pod(buffer, sizeof buffer, "test", 0);
	is_str(buffer, "postgres-test-0", "pod name, as in the seed");
	names_volume(buffer, sizeof buffer, "test", 1);
	is_str(buffer, "pgdata-postgres-test-1", "volume claim name, as in the seed");
	names_slot(buffer, sizeof buffer, "my-test", 12);
	is_str(buffer, "my_test_12", "slot name: '-' is not allowed in slot names");

	for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
		is_int(names_is_dns_label(name_cases[i].name), name_cases[i].label, "label \"%s\"", name_cases[i].name);
		is_int(names_is_dns_subdomain(name_cases[i].name), name_cases[i].subdomain, "subdomain \"%s\"",
		       name_cases[i].name);
	}

	ok(names_check_cluster("test", 98, why, sizeof why), "a short cluster name is usable");
	ok(!names_check_cluster("Test", 2, why, sizeof why) && strstr(why, "lowercase"), "uppercase is refused: %s", why);
	/* "postgres-" + 52 + "-98" = 64 characters */
	const char *long_name = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijab";
	ok(!names_check_cluster(long_name, 98, why, sizeof why) && strstr(why, "too long"),
	   "a name whose pod name exceeds 63 characters is refused: %s", why);
	ok(names_check_cluster(long_name, 9, why, sizeof why), "the same name fits with fewer members");
	return done_testing();
}
