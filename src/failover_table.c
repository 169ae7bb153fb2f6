/* failover_table: the failover transition table shown to operators: tab-separated for pghad --describe-failover, and as the roff section of pghad(8) generated from it when pgha is built. */
#include "autoconfig.h"

#include "failover_table.h"

#include <string.h>

#include "failover.h"

/* A function failover.c has no name for; test-failover-table fails on it. */
#define UNNAMED "(unnamed)"

void failover_table_print(FILE *out)
{
	const struct failover_row *rows;
	size_t count = failover_rows(&rows);

	for (size_t i = 0; i < count; i++)
		fprintf(out, "%s\t%s\t%s\t%s\n", rows[i].phase, rows[i].when ? rows[i].when : UNNAMED,
			rows[i].then ? rows[i].then : UNNAMED, rows[i].comment);
}

/* text as one roff text line: backslashes and minus signs escaped, and a leading '.' or
 * '\'' kept from being read as a request. */
static void roff_line(FILE *out, const char *text)
{
	if (text[0] == '.' || text[0] == '\'')
		fputs("\\&", out);
	for (const char *c = text; *c; c++) {
		if (*c == '\\')
			fputs("\\e", out);
		else if (*c == '-')
			fputs("\\-", out);
		else
			fputc(*c, out);
	}
	fputc('\n', out);
}

void failover_table_print_man(FILE *out)
{
	const struct failover_row *rows;
	size_t count = failover_rows(&rows);

	for (size_t i = 0; i < count; i++) {
		if (i == 0 || strcmp(rows[i].phase, rows[i - 1].phase) != 0)
			fprintf(out, ".PP\nPhase\n.BR %s :\n", rows[i].phase);
		/* function names are C identifiers: nothing in them to escape */
		fprintf(out, ".TP\n.BR %s \" \\(-> \" %s\n", rows[i].when ? rows[i].when : UNNAMED,
			rows[i].then ? rows[i].then : UNNAMED);
		roff_line(out, rows[i].comment);
	}
}
