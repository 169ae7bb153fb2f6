/* standbyreach: when a primary last reached its standbys, known from their reply_time changing between rounds alone, so that no standby's clock enters the time. */
#include "autoconfig.h"

#include "standbyreach.h"

#include <stdlib.h>
#include <string.h>

#include "memory.h"

static const struct standbyreach_row *find(const struct standbyreach_memory *memory,
					   const struct standbyreach_row *row)
{
	for (size_t i = 0; i < memory->count; i++)
		if (memory->rows[i].walsender_pid == row->walsender_pid &&
		    strcmp(memory->rows[i].application_name, row->application_name) == 0)
			return &memory->rows[i];
	return NULL;
}

long long standbyreach_update(struct standbyreach_memory *memory, const struct standbyreach_row *rows, size_t count,
			      long long read_ms)
{
	long long reached = 0;

	for (size_t i = 0; i < count; i++) {
		const struct standbyreach_row *before = find(memory, &rows[i]);
		if (before && (before->replied != rows[i].replied || before->reply_time_us != rows[i].reply_time_us) &&
		    memory->read_ms > reached)
			reached = memory->read_ms;
	}
	struct standbyreach_row *kept = count ? xcalloc(count, sizeof *kept) : NULL;
	if (count)
		memcpy(kept, rows, count * sizeof *kept);
	free(memory->rows);
	*memory = (struct standbyreach_memory){.rows = kept, .count = count, .read_ms = read_ms};
	return reached;
}

void standbyreach_clear(struct standbyreach_memory *memory)
{
	free(memory->rows);
	*memory = (struct standbyreach_memory){0};
}
