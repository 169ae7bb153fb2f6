/* timeline: a primary's timeline history (its .history file) and whether a standby's WAL is part of it or diverged from it. Pure. */
#include "autoconfig.h"

#include "timeline.h"

#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "pg.h"

bool timeline_parse_history(const char *text, struct timeline_switch **switches, size_t *count)
{
	size_t capacity = 0;

	*switches = NULL;
	*count = 0;
	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *cursor = line + strspn(line, " \t");
		if (*cursor == '\n' || *cursor == '#' || *cursor == '\0')
			continue;
		char *end;
		unsigned long timeline = strtoul(cursor, &end, 10);
		uint64_t lsn = end != cursor && (*end == '\t' || *end == ' ') ? pg_lsn_parse(end) : 0;
		if (timeline == 0 || timeline > UINT32_MAX || lsn == 0) {
			free(*switches);
			*switches = NULL;
			*count = 0;
			return false;
		}
		if (*count == capacity) {
			capacity = capacity ? 2 * capacity : 4;
			*switches = xreallocarray(*switches, capacity, sizeof **switches);
		}
		(*switches)[(*count)++] = (struct timeline_switch){.timeline = (uint32_t)timeline, .end_lsn = lsn};
	}
	return true;
}

bool timeline_contains(const struct timeline_switch *switches, size_t count, uint32_t current, uint32_t timeline,
		       uint64_t position)
{
	if (timeline == current)
		return true;
	for (size_t i = 0; i < count; i++)
		if (switches[i].timeline == timeline)
			return position <= switches[i].end_lsn;
	return false;
}
