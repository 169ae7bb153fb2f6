/* standbyreach: when a primary last reached its standbys, known from their reply_time changing between rounds alone, so that no standby's clock enters the time. */
#ifndef PGHA_STANDBYREACH_H
#define PGHA_STANDBYREACH_H

#include <stdbool.h>
#include <stddef.h>

/* application_name as pg_stat_replication shows it: NAMEDATALEN - 1 bytes at most. */
#define STANDBYREACH_NAME_SIZE 64

/* One streaming standby, a row of pg_stat_replication. */
struct standbyreach_row {
	int walsender_pid;
	char application_name[STANDBYREACH_NAME_SIZE];
	bool replied;            /* reply_time is not null */
	long long reply_time_us; /* stamped by the standby's clock: only ever compared with its own earlier value */
};

/* What the watch remembers of the last round whose rows were read (zero it before the first). */
struct standbyreach_memory {
	struct standbyreach_row *rows;
	size_t count;
	long long read_ms; /* the monotonic start of the request that read them */
};

/* Pure: the latest moment this round's rows (read by a request started at read_ms) prove
 * a standby reached, 0 when none does. A standby whose reply_time differs from the one
 * the previous round read answered after that round's query ran, so it was reached no
 * earlier than that round's start; one seen for the first time (another walsender pid or
 * application_name) proves nothing yet. memory becomes this round's rows. */
long long standbyreach_update(struct standbyreach_memory *memory, const struct standbyreach_row *rows, size_t count,
			      long long read_ms);

/* Releases the rows memory holds and zeroes it. */
void standbyreach_clear(struct standbyreach_memory *memory);

#endif
