/* test-failover-table: every row of the failover table has its functions' names, and the text and man page forms show every row as it is. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failover.h"
#include "failover_table.h"
#include "memory.h"
#include "tap.h"

/* What out wrote, as one string. */
static char *printed(void (*print)(FILE *))
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);
	print(out);
	fclose(out);
	return text;
}

/* The comment as failover_table_print_man writes it: '-' and '\\' escaped. */
static char *roff(const char *comment)
{
	char *text = xmalloc(2 * strlen(comment) + 3), *at = text;
	if (comment[0] == '.' || comment[0] == '\'')
		at += sprintf(at, "\\&");
	for (const char *c = comment; *c; c++) {
		if (*c == '-' || *c == '\\')
			*at++ = '\\';
		*at++ = *c == '\\' ? 'e' : *c;
	}
	*at = '\0';
	return text;
}

int main(void)
{
	const struct failover_row *rows;
	size_t count = failover_rows(&rows);
	bool named = true, complete = true;

	ok(count > 10, "the table has %zu rows", count);
	for (size_t i = 0; i < count; i++) {
		complete &= rows[i].phase && rows[i].phase[0] && rows[i].comment && rows[i].comment[0];
		if (!rows[i].when || !rows[i].then) {
			named = false;
			diag("row %zu (%s: %s): its %s no name: add NAMED(the function) to failover_function_names in "
			     "src/failover.c", i + 1, rows[i].phase, rows[i].comment,
			     !rows[i].when && !rows[i].then ? "condition and its action have"
			     : !rows[i].when		    ? "condition has"
							    : "action has");
		}
	}
	ok(named, "every row's condition and action have a name (failover_function_names is complete)");
	ok(complete, "every row has a phase and a comment");
	ok(strcmp(rows[0].phase, "idle") == 0, "the first rows are those of no failover under way (idle)");

	char *text = printed(failover_table_print);
	char *line = text;
	bool rows_match = true;
	size_t lines = 0;
	for (char *end; line && *line; line = end ? end + 1 : NULL, lines++) {
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		if (lines >= count)
			continue;
		char expected[1024];
		snprintf(expected, sizeof expected, "%s\t%s\t%s\t%s", rows[lines].phase,
			 rows[lines].when ? rows[lines].when : "(unnamed)", rows[lines].then ? rows[lines].then : "(unnamed)",
			 rows[lines].comment);
		if (strcmp(line, expected) != 0) {
			rows_match = false;
			diag("line %zu: %s", lines + 1, line);
		}
	}
	is_int(lines, count, "--describe-failover: one line per row");
	ok(rows_match, "each line: phase, condition, action and comment, tab-separated, in the table's order");
	free(text);

	char *page = printed(failover_table_print_man);
	bool shown = true;
	size_t phases = 0, tags = 0;
	for (size_t i = 0; i < count; i++) {
		char tag[256];
		char *comment = roff(rows[i].comment);
		snprintf(tag, sizeof tag, ".TP\n.BR %s \" \\(-> \" %s\n%s\n", rows[i].when ? rows[i].when : "(unnamed)",
			 rows[i].then ? rows[i].then : "(unnamed)", comment);
		if (!strstr(page, tag)) {
			shown = false;
			diag("row %zu is not in the page as\n%s", i + 1, tag);
		}
		phases += i == 0 || strcmp(rows[i].phase, rows[i - 1].phase) != 0;
		free(comment);
	}
	for (const char *at = page; (at = strstr(at, ".TP\n")); at++)
		tags++;
	ok(shown, "pghad(8): each row as a tagged paragraph, condition -> action, then its comment escaped for roff");
	is_int(tags, count, "pghad(8): as many tagged paragraphs as rows");
	size_t headings = 0;
	for (const char *at = page; (at = strstr(at, ".PP\nPhase\n.BR ")); at++)
		headings++;
	is_int(headings, phases, "pghad(8): a heading per phase");
	bool escaped = true;
	for (const char *at = page; (at = strchr(at, '-')); at++)
		escaped &= at > page && (at[-1] == '\\' || (at[-1] == '(' && at[1] == '>'));
	ok(escaped, "pghad(8): every minus sign escaped (\\-), the arrow (\\(->) aside");
	free(page);
	return done_testing();
}
