/* history: what pghad did (failovers, switchovers, promotions, rejoins, clones, restarts, reloads), bounded and append-only in a file of the state directory, so that pghactl history outlives a restart. */
#ifndef PGHA_HISTORY_H
#define PGHA_HISTORY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "names.h"

/* Entries kept; the file is compacted to these once it holds twice as many lines. */
#define HISTORY_LIMIT 1000

struct history_entry {
	long long at_ms;       /* when it ended: wall clock, milliseconds since the epoch */
	long long duration_ms; /* from its start to its end; -1 when it has none (a reload) */
	char cluster[NAMES_BUFFER_SIZE]; /* "" for the daemon itself (a reload) */
	char member[NAMES_BUFFER_SIZE];       /* the member it happened to ("" for a cluster or the daemon) */
	char kind[32];         /* "failover", "switchover", "manual failover", "promote", "clone", ... */
	char outcome[32];      /* "completed", "abandoned", "failed", "accepted", "refused" */
	char reason[768];
};

struct history {
	char *path;            /* NULL: kept in memory only */
	struct history_entry *entries; /* a ring of HISTORY_LIMIT, oldest at first */
	size_t first, count;
	size_t file_lines;     /* lines in the file, to know when to compact it */
	char error[512];       /* the last failure to write the file, "" when none */
};

/* Reads path (a missing file is an empty history; lines that cannot be read, such as
 * half a line a crash left, are skipped) and appends to it from now on. path NULL: in
 * memory only. False (why written) when the file exists but cannot be read; the
 * history then starts empty, still appended to path. */
bool history_open(struct history *history, const char *path, char *why, size_t why_size);
void history_close(struct history *history);

/* Adds entry, and appends it to the file (one JSON line, written whole with one write).
 * False (why in history->error, logged by the caller) when the file cannot be written;
 * the entry is kept in memory anyway. */
bool history_add(struct history *history, const struct history_entry *entry);

/* The entries of cluster (NULL: all; a reload shows under every cluster), oldest first,
 * as a JSON array. */
json_t *history_json(const struct history *history, const char *cluster);

/* An entry as one JSON object, and back; false when the object is not an entry. */
json_t *history_entry_json(const struct history_entry *entry);
bool history_entry_parse(const json_t *object, struct history_entry *entry);

#endif
