/* failover_table: the failover transition table shown to operators: tab-separated for pghad --describe-failover, and as the roff section of pghad(8) generated from it when pgha is built. */
#ifndef PGHA_FAILOVER_TABLE_H
#define PGHA_FAILOVER_TABLE_H

#include <stdio.h>

/* One line per row, in the order rows are tried: phase, condition, action and
 * comment, tab-separated. */
void failover_table_print(FILE *out);

/* The same rows as roff for a man page: a paragraph per phase, a tagged paragraph per
 * row ("condition -> action", then the comment). */
void failover_table_print_man(FILE *out);

#endif
