/* test-jsonpack: json_pack formats are checked against the types of their arguments, and a mismatch never reaches jansson. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "jsonpack.h"
#include "tap.h"

/* The compact text of value (consumed), "(null)" for NULL; a new string. */
static char *text_of(json_t *value)
{
	char *text = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : strdup("(null)");
	json_decref(value);
	return text;
}

#define packs(expected, ...)                                                                    \
	do {                                                                                    \
		unsigned long packed_before = jsonpack_failures();                                    \
		char *packed = text_of(jsonpack(__VA_ARGS__));                                    \
		is_str(packed, expected, "%s packs as json_pack does", #__VA_ARGS__);             \
		is_int(jsonpack_failures(), packed_before, "  and counts no failure");                \
		free(packed);                                                                     \
	} while (0)

#define refuses(...)                                                                            \
	do {                                                                                    \
		unsigned long packed_before = jsonpack_failures();                                    \
		json_t *packed = jsonpack(__VA_ARGS__);                                           \
		ok(!packed, "%s is refused", #__VA_ARGS__);                                       \
		is_int(jsonpack_failures(), packed_before + 1, "  and counted as a failure");         \
		json_decref(packed);                                                              \
	} while (0)

enum colour { RED };

static void test_formats_that_fit(void)
{
	char name[16] = "demo-1";
	const char *constant = "c";
	json_int_t big = 1LL << 40;
	size_t two = 2;

	packs("{\"error\":\"x\",\"ok\":false}", "{s:b, s:s}", "ok", 0, "error", "x");
	packs("{\"ok\":true}", "{s:b}", "ok", true);
	packs("\"nope is not a member of demo\"", "s+++", "nope", " is not a member", " of ", "demo");
	packs("\"abc\"", "s+", "a", "bc");
	packs("[\"ab\",\"cd\"]", "[s#, s%]", "abc", 2, "cde", two);
	packs("\"abcd\"", "s#+#", "abx", 2, "cdx", 2);
	packs("{\"big\":1099511627776,\"small\":7}", "{s:I, s:i}", "big", big, "small", 7);
	packs("[1.5,null,true]", "[f, n, b]", 1.5, true);
	packs("{\"c\":\"c\",\"name\":\"demo-1\"}", "{s:s, s:s}", "name", name, constant, constant);
	packs("{\"a\":[{\"b\":{}}]}", "{s:[{s:o}]}", "a", "b", json_object());
	json_t *kept = json_array();
	packs("{\"kept\":[]}", "{s:O}", "kept", kept);
	is_int(kept->refcount, 1, "O leaves the caller's reference");
	json_decref(kept);
	packs("{\"absent\":null}", "{s:s?, s:o*}", "absent", (const char *)NULL, "none", (json_t *)NULL);
	packs("{\"a\":\"b\"}", "{s+: s}", "", "a", "b");
}

static void test_formats_that_do_not_fit(void)
{
	/* the format of issue 18: four strings asked for, three given */
	refuses("{s:b, s:s+++}", "ok", 0, "error", "nope", " is not a member of ", "demo");
	refuses("{s:b, s:s}", "ok", 0, "error");
	refuses("{s:b}", "ok", 0, "extra");
	refuses("{s:I}", "timeline", 7);
	refuses("{s:i}", "timeline", (json_int_t)7);
	enum colour colour = RED;
	refuses("{s:i}", "kind", colour);
	refuses("{s:i}", "length", (long)7);
	refuses("{s:o}", "object", "not an object");
	refuses("{s:s}", "name", 7);
	refuses("[s#]", "abc", (size_t)2);
	refuses("[s%]", "abc", 2);
	refuses("{s:f}", "ratio", 1);
	refuses("{i:s}", 1, "x");
	refuses("{s:s", "a", "b");
	refuses("[s, s", "a", "b");
	refuses("{s:x}", "a", "b");
	refuses("s?#", "a", 1);
	refuses("s s", "a", "b");
	/* what only jansson can see: the values */
	refuses("{s:s}", "name", (const char *)NULL);
	refuses("{s:s}", "name", "\xc3");
	refuses("{s:o}", "object", (json_t *)NULL);
}

static void test_strict_aborts(void)
{
	/* the strict mode is the tests': it cannot be observed here without dying, so only
	 * its switch is exercised; the fuzz targets and the control test run under it */
	jsonpack_set_strict(true);
	packs("{\"ok\":true}", "{s:b}", "ok", true);
	jsonpack_set_strict(false);
}

/* Every call of libpgha, run by some test or not: linked whole into this test. */
static void test_every_call_fits(void)
{
	static const char *const modules[] = {"src/control.c", "src/daemon.c", "src/k8s.c", "src/platform_k8s.c",
					      "src/state.c"};
	size_t count;
	const struct jsonpack_site *const *sites = jsonpack_sites(&count);

	for (size_t i = 0; i < count; i++) {
		char why[256];
		if (strstr(sites[i]->file, "tests/"))
			continue; /* this test's own, several wrong on purpose */
		bool fits = jsonpack_fits(sites[i], why, sizeof why);
		ok(fits, "%s:%d: \"%s\" fits its arguments%s%s", sites[i]->file, sites[i]->line, sites[i]->format,
		   fits ? "" : ": ", why);
	}
	/* the linker gathered them all (pghactl's are not in the library: its integration
	 * tests run them) */
	for (size_t m = 0; m < sizeof modules / sizeof modules[0]; m++) {
		size_t found = 0;
		for (size_t i = 0; i < count; i++)
			found += strstr(sites[i]->file, modules[m]) != NULL;
		ok(found > 0, "the calls of %s are checked (%zu)", modules[m], found);
	}
}

static void test_text(void)
{
	static const struct {
		const char *what, *text, *expected;
	} cases[] = {
		{"ASCII", "plain", "\"plain\""},
		{"UTF-8", "d\xc3\xa9j\xc3\xa0 \xe2\x82\xac \xf0\x9f\x90\x98", "\"d\\u00E9j\\u00E0 \\u20AC \\uD83D\\uDC18\""},
		{"a character cut by snprintf", "caf\xc3", "\"caf\\uFFFD\""},
		{"Latin-1", "caf\xe9!", "\"caf\\uFFFD!\""},
		{"an overlong slash", "\xc0\xaf", "\"\\uFFFD\\uFFFD\""},
		{"a surrogate", "\xed\xa0\x80", "\"\\uFFFD\\uFFFD\\uFFFD\""},
		{"past U+10FFFF", "\xf4\x90\x80\x80", "\"\\uFFFD\\uFFFD\\uFFFD\\uFFFD\""},
		{"nothing", NULL, "\"\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = text_of(jsonpack_text(cases[i].text));
		char *ascii = NULL;
		/* compare with escapes: JSON_ENSURE_ASCII shows what was kept and replaced */
		json_t *parsed = json_loads(got, JSON_DECODE_ANY, NULL);
		ascii = parsed ? json_dumps(parsed, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
		json_decref(parsed);
		is_str(ascii, cases[i].expected, "jsonpack_text of %s", cases[i].what);
		free(ascii);
		free(got);
	}
}

int main(void)
{
	jsonpack_set_strict(false); /* tap.h makes unit tests strict; these failures are on purpose */
	test_formats_that_fit();
	test_formats_that_do_not_fit();
	test_strict_aborts();
	test_every_call_fits();
	test_text();
	return done_testing();
}
