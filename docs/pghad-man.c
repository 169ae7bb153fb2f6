/* pghad-man: writes pghad(8) from its page source, with the failover table generated from the table pghad runs, so that the page cannot drift from the code. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failover_table.h"

/* The line of the page source that the table replaces. */
#define PLACEHOLDER "@FAILOVER_TABLE@"

int main(int argc, char **argv)
{
	char line[4096];
	int found = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: pghad-man PAGE_SOURCE > PAGE\n");
		return 2;
	}
	FILE *source = fopen(argv[1], "r");
	if (!source) {
		perror(argv[1]);
		return 1;
	}
	while (fgets(line, sizeof line, source)) {
		if (strcmp(line, PLACEHOLDER "\n") == 0) {
			failover_table_print_man(stdout);
			found++;
		} else {
			fputs(line, stdout);
		}
	}
	fclose(source);
	if (found != 1) {
		fprintf(stderr, "%s: needs exactly one line \"" PLACEHOLDER "\", where the failover table goes (found %d)\n",
			argv[1], found);
		return 1;
	}
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
