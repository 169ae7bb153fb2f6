/* test-syncnames: rendering, parsing and comparing synchronous_standby_names, in tables checked against PostgreSQL. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "memory.h"
#include "syncnames.h"
#include "tap.h"

#define MAX_NAMES 8
#define OFF SYNC_METHOD_OFF
#define ANY SYNC_METHOD_ANY
#define FIRST SYNC_METHOD_FIRST

/* 63 bytes, the longest application_name PostgreSQL keeps */
#define LONG_LOWER "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc"
#define LONG_MIXED "Node-With \"Quotes\" And Spaces-abcdefghijabcdefghijabcdefghijab"

static size_t count_names(const char *const *names)
{
	size_t count = 0;

	while (count < MAX_NAMES && names[count])
		count++;
	return count;
}

static const struct render_case {
	const char *what;
	int method, number;
	const char *names[MAX_NAMES]; /* up to the first NULL */
	const char *expected;
} render_cases[] = {
	{"off is the empty string", OFF, 1, {"a", "b"}, ""},
	{"a method pgha does not know is off", 7, 1, {"a"}, ""},
	{"no names is the empty string", FIRST, 1, {NULL}, ""},
	{"no names with ANY", ANY, 2, {NULL}, ""},
	{"FIRST with one name", FIRST, 1, {"a"}, "FIRST 1 (\"a\")"},
	{"FIRST with two", FIRST, 2, {"test-1", "test-2"}, "FIRST 2 (\"test-1\", \"test-2\")"},
	{"ANY with three", ANY, 2, {"a", "b", "c"}, "ANY 2 (\"a\", \"b\", \"c\")"},
	{"a quote in a name is doubled", ANY, 1, {"x\"y", "\"\""}, "ANY 1 (\"x\"\"y\", \"\"\"\"\"\")"},
	{"case and spaces kept", FIRST, 1, {"Node A"}, "FIRST 1 (\"Node A\")"},
	{"number above the names is clamped", ANY, 5, {"a", "b"}, "ANY 2 (\"a\", \"b\")"},
	{"number 0 becomes 1", FIRST, 0, {"a", "b"}, "FIRST 1 (\"a\", \"b\")"},
	{"negative number becomes 1", ANY, -3, {"a"}, "ANY 1 (\"a\")"},
	{"an empty name", FIRST, 1, {""}, "FIRST 1 (\"\")"},
	{"the wildcard", FIRST, 1, {"*"}, "FIRST 1 (\"*\")"},
};

static void test_render(void)
{
	for (size_t i = 0; i < sizeof render_cases / sizeof render_cases[0]; i++) {
		const struct render_case *test = &render_cases[i];
		char *text = syncnames_render(test->method, test->number, test->names, count_names(test->names));

		is_str(text, test->expected, "render: %s", test->what);
		free(text);
	}
}

/* Every accepted value here was also accepted by a PostgreSQL 15.20 server. */
static const struct parse_case {
	const char *what;
	const char *text;
	int method, number;
	const char *names[MAX_NAMES];
} parse_cases[] = {
	{"empty is off", "", OFF, 0, {NULL}},
	{"one name", "a", FIRST, 1, {"a"}},
	{"a bare list is FIRST 1", "a, b", FIRST, 1, {"a", "b"}},
	{"a number without keyword is FIRST", "2 (a, b)", FIRST, 2, {"a", "b"}},
	{"no space before the parenthesis", "2(a)", FIRST, 2, {"a"}},
	{"FIRST", "FIRST 2 (a,b)", FIRST, 2, {"a", "b"}},
	{"first in lower case", "first 2 (a,b)", FIRST, 2, {"a", "b"}},
	{"FiRsT in mixed case", "FiRsT 1 (a)", FIRST, 1, {"a"}},
	{"ANY", "ANY 1 (a, b)", ANY, 1, {"a", "b"}},
	{"any in lower case", "any 2 (a,b)", ANY, 2, {"a", "b"}},
	{"Any in mixed case, no space", "Any 1(a,b)", ANY, 1, {"a", "b"}},
	{"whitespace everywhere", "  ANY  2 ( a , b )  ", ANY, 2, {"a", "b"}},
	{"tabs and newlines", "\t a \n", FIRST, 1, {"a"}},
	{"vertical tab and form feed", "a\v,\fb", FIRST, 1, {"a", "b"}},
	{"unquoted names keep their case", "Node_A, NODE_b", FIRST, 1, {"Node_A", "NODE_b"}},
	{"quoted names keep their case and spaces", "\"Node A\", \"B\"", FIRST, 1, {"Node A", "B"}},
	{"a doubled quote is one quote", "\"x\"\"y\"", FIRST, 1, {"x\"y"}},
	{"a name that is one quote", "\"\"\"\"", FIRST, 1, {"\""}},
	{"an empty quoted name", "\"\"", FIRST, 1, {""}},
	{"quotes allow '-'", "ANY 1 (\"node-1\", \"node-2\")", ANY, 1, {"node-1", "node-2"}},
	{"quotes allow the keywords", "\"any\", \"FIRST\"", FIRST, 1, {"any", "FIRST"}},
	{"a keyword inside a longer name", "anyone, firstly", FIRST, 1, {"anyone", "firstly"}},
	{"the wildcard", "*", FIRST, 1, {"*"}},
	{"the wildcard after a name", "a, *", FIRST, 1, {"a", "*"}},
	{"the wildcard in ANY", "ANY 1 (*)", ANY, 1, {"*"}},
	{"a quoted wildcard", "\"*\"", FIRST, 1, {"*"}},
	{"digits alone are a name", "2", FIRST, 1, {"2"}},
	{"digits as names", "1, 2", FIRST, 1, {"1", "2"}},
	{"digits then a name", "2, a", FIRST, 1, {"2", "a"}},
	{"digits as a name in a list", "ANY 1 (1, 02)", ANY, 1, {"1", "02"}},
	{"leading zero in the number", "01 (a)", FIRST, 1, {"a"}},
	{"number above the names", "ANY 3 (a)", ANY, 3, {"a"}},
	{"'$' and '_' in names", "a$b, _x", FIRST, 1, {"a$b", "_x"}},
	{"bytes above 127 are letters", "\xc3\xa9t\xc3\xa9", FIRST, 1, {"\xc3\xa9t\xc3\xa9"}},
	{"the largest int", "2147483647 (a)", FIRST, 2147483647, {"a"}},
	{"a number wrapped as PostgreSQL's atoi() does", "99999999999 (a)", FIRST, 1215752191, {"a"}},
	{"a 63-character name", "FIRST 1 (" LONG_LOWER ")", FIRST, 1, {LONG_LOWER}},
};

static bool has_names(const struct sync_spec *spec, const char *const *names)
{
	size_t count = count_names(names);
	bool same = spec->count == count;

	for (size_t i = 0; same && i < count; i++)
		same = strcmp(spec->names[i], names[i]) == 0;
	if (!same)
		for (size_t i = 0; i < spec->count; i++)
			diag("  got name \"%s\"", spec->names[i]);
	return same;
}

static void test_parse_accepted(void)
{
	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
		const struct parse_case *test = &parse_cases[i];
		struct sync_spec spec;
		char why[256] = "";
		bool parsed = syncnames_parse(test->text, &spec, why, sizeof why);

		ok(parsed && spec.method == test->method && spec.number == test->number &&
			   has_names(&spec, test->names),
		   "parse: %s", test->what);
		if (!parsed)
			diag("  refused: %s", why);
		else if (spec.method != test->method || spec.number != test->number)
			diag("  got method %d number %d", spec.method, spec.number);
		sync_spec_free(&spec);
	}
}

/* The reasons are PostgreSQL's, as a 15.20 server gave them for the same values (it
 * quotes only the closing quote of a quoted name; here the whole name is quoted), with a
 * hint added for whitespace-only values and for unquoted names with other characters. */
static const struct rejected_case {
	const char *what;
	const char *text;
	const char *why;
} rejected_cases[] = {
	{"only whitespace", "   ",
	 "syntax error at end of input (only the empty string turns synchronous replication off, not one made of "
	 "whitespace)"},
	{"number 0", "0 (a)", "number of synchronous standbys (0) must be greater than zero"},
	{"number 0 with ANY", "ANY 0 (a)", "number of synchronous standbys (0) must be greater than zero"},
	{"number 0 with FIRST", "FIRST 00 (a)", "number of synchronous standbys (0) must be greater than zero"},
	{"a number that wraps negative", "2147483648 (a)",
	 "number of synchronous standbys (-2147483648) must be greater than zero"},
	{"a number beyond a long", "9999999999999999999999 (a)",
	 "number of synchronous standbys (-1) must be greater than zero"},
	{"a negative number", "-1 (a)", "syntax error at or near \"-\""},
	{"a fraction", "1.5 (a)", "syntax error at or near \".\""},
	{"a keyword without number", "FIRST (a)", "syntax error at or near \"(\""},
	{"a word for the number", "ANY x (a)", "syntax error at or near \"x\""},
	{"ANY alone", "ANY", "syntax error at end of input"},
	{"first alone: a keyword is not a name", "first", "syntax error at end of input"},
	{"a keyword first in a list", "first, b", "syntax error at or near \",\""},
	{"a keyword in a list", "any 1 (any)", "syntax error at or near \"any\""},
	{"a keyword run into the number", "ANY2 (a)", "syntax error at or near \"(\""},
	{"no closing parenthesis", "2 (a", "syntax error at end of input"},
	{"one closing parenthesis too many", "2 (a))", "syntax error at or near \")\""},
	{"a list without number", "(a, b)", "syntax error at or near \"(\""},
	{"an empty list", "2 ()", "syntax error at or near \")\""},
	{"trailing garbage", "2 (a, b) x", "syntax error at or near \"x\""},
	{"a second list", "FIRST 1 (a) , b", "syntax error at or near \",\""},
	{"names without comma", "a b", "syntax error at or near \"b\""},
	{"an empty element", "a,,b", "syntax error at or near \",\""},
	{"a trailing comma", "a,", "syntax error at end of input"},
	{"an unterminated quote", "\"a", "unterminated quoted identifier at end of input"},
	{"a doubled quote that leaves it open", "\"\"\"", "unterminated quoted identifier at end of input"},
	{"an unterminated quote at the end", "ANY 1 (a) \"", "unterminated quoted identifier at end of input"},
	{"quoted names without comma", "\"a\" \"b\"", "syntax error at or near \"\"b\"\""},
	{"text after a quoted name", "\"a\"b", "syntax error at or near \"b\""},
	{"digits run into letters", "1abc", "syntax error at or near \"abc\""},
	{"a name starting with '$'", "$a", "syntax error at or near \"$\""},
	{"a '-' apart from a name", "a - b", "syntax error at or near \"-\""},
	{"a '-' in an unquoted name", "node-1",
	 "syntax error at or near \"-\" (a name with characters other than letters, digits, '_' and '$' must be in "
	 "double quotes)"},
	{"a ';' in an unquoted name", "ANY 1 (a;b)",
	 "syntax error at or near \";\" (a name with characters other than letters, digits, '_' and '$' must be in "
	 "double quotes)"},
	{"a single quote in an unquoted name", "a'b",
	 "syntax error at or near \"'\" (a name with characters other than letters, digits, '_' and '$' must be in "
	 "double quotes)"},
};

static void test_parse_rejected(void)
{
	for (size_t i = 0; i < sizeof rejected_cases / sizeof rejected_cases[0]; i++) {
		const struct rejected_case *test = &rejected_cases[i];
		struct sync_spec spec;
		char why[256] = "";
		bool parsed = syncnames_parse(test->text, &spec, why, sizeof why);

		ok(!parsed && spec.method == OFF && spec.number == 0 && spec.names == NULL && spec.count == 0,
		   "parse refuses %s, leaving the result off", test->what);
		is_str(why, test->why, "  with PostgreSQL's reason");
		sync_spec_free(&spec);
	}

	struct sync_spec spec;
	ok(!syncnames_parse("2 (a", &spec, NULL, 0), "a refusal without a buffer for the reason");
}

static const struct round_trip_case {
	const char *what;
	int method, number;
	const char *names[MAX_NAMES];
} round_trip_cases[] = {
	{"one plain name", FIRST, 1, {"test-0"}},
	{"member names", ANY, 2, {"test-1", "test-2", "test-3"}},
	{"uppercase", FIRST, 2, {"UPPER", "Mixed", "lower"}},
	{"quotes and spaces", ANY, 1, {"x\"y", "\"", "\"\"", "with space", " lead", "trail "}},
	{"words PostgreSQL reads as keywords or numbers", FIRST, 3, {"any", "FIRST", "1", "007"}},
	{"punctuation", ANY, 2, {"(x), y", "a,b", "*", "$a", "-"}},
	{"empty and non-ASCII", FIRST, 1, {"", "\xc3\xa9t\xc3\xa9"}},
	{"63-character names", ANY, 2, {LONG_LOWER, LONG_MIXED}},
	{"clamped number", FIRST, 9, {"a", "b"}},
};

static void test_round_trip(void)
{
	for (size_t i = 0; i < sizeof round_trip_cases / sizeof round_trip_cases[0]; i++) {
		const struct round_trip_case *test = &round_trip_cases[i];
		size_t count = count_names(test->names);
		char *text = syncnames_render(test->method, test->number, test->names, count);
		struct sync_spec parsed;
		char why[256] = "";
		int expected_number = (size_t)test->number > count ? (int)count : test->number;

		if (!ok(syncnames_parse(text, &parsed, why, sizeof why), "round trip parses: %s", test->what))
			diag("  %s: %s", text, why);
		ok(parsed.method == test->method && parsed.number == expected_number && has_names(&parsed, test->names),
		   "  and gives back method, number and names exactly");

		struct sync_spec original = {test->method, expected_number, (char **)test->names, count};
		ok(syncnames_equal(&original, &parsed), "  and equals what was rendered");
		sync_spec_free(&parsed);
		free(text);
	}
}

static const struct match_case {
	const char *listed, *application_name;
	bool matches;
} match_cases[] = {
	{"a", "a", true},
	{"A", "a", true},
	{"node_1", "NODE_1", true},
	{"Test-2", "test-2", true},
	{"*", "anything", true},
	{"*", "", true},
	{"*", "*", true},
	{"", "", true},
	{"a", "b", false},
	{"a", "ab", false},
	{"ab", "a", false},
	{"x", "*", false},            /* a standby named "*" is no wildcard */
	{"\xc3\xa9", "\xc3\x89", false}, /* é and É: only ASCII letters are folded */
	{"\xc3\xa9", "\xc3\xa9", true},
};

static void test_name_matches(void)
{
	for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
		const struct match_case *test = &match_cases[i];

		is_int(syncnames_name_matches(test->listed, test->application_name), test->matches,
		       "listed \"%s\" %s application_name \"%s\"", test->listed,
		       test->matches ? "matches" : "does not match", test->application_name);
	}
}

static const struct equal_case {
	const char *what;
	const char *a, *b;
	bool equal;
} equal_cases[] = {
	{"both off", "", "", true},
	{"off and on", "", "a", false},
	{"on and off", "a", "", false},
	{"the same name", "a", "a", true},
	{"names differing in case", "a", "A", true},
	{"quoted and unquoted", "\"Node\"", "node", true},
	{"a bare list is FIRST 1", "a, b", "FIRST 1 (a, b)", true},
	{"a number without keyword is FIRST", "2 (a, b)", "FIRST 2 (\"a\", \"b\")", true},
	{"order matters for FIRST", "FIRST 1 (a, b)", "FIRST 1 (b, a)", false},
	{"order does not matter for ANY", "ANY 1 (a, b)", "ANY 1 (B, a)", true},
	{"three names in any order", "ANY 2 (a, b, c)", "ANY 2 (c, a, b)", true},
	{"number differs", "ANY 1 (a, b)", "ANY 2 (a, b)", false},
	{"method differs", "ANY 1 (a)", "FIRST 1 (a)", false},
	{"one name more", "ANY 1 (a, b)", "ANY 1 (a, b, c)", false},
	{"another name, ANY", "ANY 1 (a, b)", "ANY 1 (a, c)", false},
	{"another name, FIRST", "FIRST 1 (a, b)", "FIRST 1 (a, c)", false},
	{"duplicates count", "ANY 2 (a, a, b)", "ANY 2 (a, b, b)", false},
	{"the wildcard is not a name", "*", "a", false},
	{"the wildcard quoted or not", "\"*\"", "*", true},
};

static void test_equal(void)
{
	for (size_t i = 0; i < sizeof equal_cases / sizeof equal_cases[0]; i++) {
		const struct equal_case *test = &equal_cases[i];
		struct sync_spec a = {0}, b = {0};
		char why[256] = "";

		if (!ok(syncnames_parse(test->a, &a, why, sizeof why) && syncnames_parse(test->b, &b, why, sizeof why),
			"equal: both of '%s' and '%s' parse", test->a, test->b))
			diag("  %s", why);
		is_int(syncnames_equal(&a, &b), test->equal, "  %s: %s", test->what,
		       test->equal ? "equal" : "different");
		is_int(syncnames_equal(&b, &a), test->equal, "  and the other way round");
		sync_spec_free(&a);
		sync_spec_free(&b);
	}

	/* Off as rendering sees it, whatever the other fields hold. */
	char *names[] = {"a"};
	struct sync_spec off = {OFF, 0, NULL, 0}, off_with_number = {OFF, 3, names, 1};
	struct sync_spec first_without_names = {FIRST, 1, NULL, 0}, unknown_method = {7, 1, names, 1};
	struct sync_spec first = {FIRST, 1, names, 1};
	ok(syncnames_equal(&off, &off_with_number), "off equals off with a number and names");
	ok(syncnames_equal(&off, &first_without_names), "off equals FIRST without names");
	ok(syncnames_equal(&off, &unknown_method), "off equals a method pgha does not know");
	ok(!syncnames_equal(&off, &first), "off differs from FIRST 1 (a)");
}

static void test_free(void)
{
	struct sync_spec spec;
	char why[256];

	ok(syncnames_parse("ANY 1 (a, b)", &spec, why, sizeof why), "a value to free");
	sync_spec_free(&spec);
	ok(spec.method == OFF && spec.names == NULL && spec.count == 0, "freeing leaves the result off");
	sync_spec_free(&spec);
	sync_spec_free(NULL);
	ok(true, "freeing twice, and freeing NULL, are harmless");
}

int main(void)
{
	test_render();
	test_parse_accepted();
	test_parse_rejected();
	test_round_trip();
	test_name_matches();
	test_equal();
	test_free();
	return done_testing();
}
