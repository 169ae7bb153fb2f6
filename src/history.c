/* history: what pghad did (failovers, switchovers, promotions, rejoins, clones, restarts, reloads), bounded and append-only in a file of the state directory, so that pghactl history outlives a restart. */
#include "autoconfig.h"

#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "jsonpack.h"
#include "memory.h"

/* Twice HISTORY_LIMIT lines of at most a few KiB each. */
#define HISTORY_FILE_MAXIMUM (16 * 1024 * 1024)

json_t *history_entry_json(const struct history_entry *entry)
{
	return jsonpack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "at_ms", (json_int_t)entry->at_ms, "duration_ms",
			(json_int_t)entry->duration_ms, "cluster", jsonpack_text(entry->cluster), "member",
			jsonpack_text(entry->member), "kind", jsonpack_text(entry->kind), "outcome",
			jsonpack_text(entry->outcome), "reason", jsonpack_text(entry->reason));
}

static bool copy_field(const json_t *object, const char *key, char *target, size_t size)
{
	const char *text = json_string_value(json_object_get(object, key));
	if (!text)
		return false;
	snprintf(target, size, "%s", text);
	return true;
}

bool history_entry_parse(const json_t *object, struct history_entry *entry)
{
	*entry = (struct history_entry){0};
	const json_t *at = json_object_get(object, "at_ms"), *duration = json_object_get(object, "duration_ms");
	if (!json_is_integer(at) || !json_is_integer(duration))
		return false;
	entry->at_ms = (long long)json_integer_value(at);
	entry->duration_ms = (long long)json_integer_value(duration);
	return copy_field(object, "cluster", entry->cluster, sizeof entry->cluster) &&
	       copy_field(object, "member", entry->member, sizeof entry->member) &&
	       copy_field(object, "kind", entry->kind, sizeof entry->kind) && entry->kind[0] &&
	       copy_field(object, "outcome", entry->outcome, sizeof entry->outcome) &&
	       copy_field(object, "reason", entry->reason, sizeof entry->reason);
}

static void keep(struct history *history, const struct history_entry *entry)
{
	if (history->count < HISTORY_LIMIT) {
		history->entries[(history->first + history->count++) % HISTORY_LIMIT] = *entry;
		return;
	}
	history->entries[history->first] = *entry;
	history->first = (history->first + 1) % HISTORY_LIMIT;
}

static const struct history_entry *entry_at(const struct history *history, size_t i)
{
	return &history->entries[(history->first + i) % HISTORY_LIMIT];
}

/* One entry as a line, a new string. */
static char *entry_line(const struct history_entry *entry)
{
	json_t *object = history_entry_json(entry);
	char *text = object ? json_dumps(object, JSON_COMPACT) : NULL;
	json_decref(object);
	char *line = text ? xasprintf("%s\n", text) : NULL;
	free(text);
	return line;
}

bool history_open(struct history *history, const char *path, char *why, size_t why_size)
{
	*history = (struct history){.path = path ? xstrdup(path) : NULL,
				    .entries = xcalloc(HISTORY_LIMIT, sizeof *history->entries)};
	if (!path)
		return true;
	size_t length;
	char *text = file_read(path, HISTORY_FILE_MAXIMUM, &length, why, why_size);
	if (!text)
		return errno == ENOENT;
	for (char *line = text, *end; line < text + length; line = end + 1) {
		end = strchr(line, '\n');
		if (!end)
			end = text + length; /* a last line without its newline: a write cut short */
		*end = '\0';
		history->file_lines++;
		json_t *object = json_loads(line, 0, NULL);
		struct history_entry entry;
		if (object && history_entry_parse(object, &entry))
			keep(history, &entry);
		json_decref(object);
	}
	free(text);
	return true;
}

void history_close(struct history *history)
{
	free(history->path);
	free(history->entries);
	*history = (struct history){0};
}

/* Rewrites the file with the entries kept, atomically. */
static bool compact(struct history *history)
{
	char *text = NULL;
	size_t length = 0;
	FILE *out = open_memstream(&text, &length);
	if (!out) {
		snprintf(history->error, sizeof history->error, "cannot compact %s: out of memory", history->path);
		return false;
	}
	for (size_t i = 0; i < history->count; i++) {
		char *line = entry_line(entry_at(history, i));
		if (line)
			fputs(line, out);
		free(line);
	}
	fclose(out);
	char why[400];
	bool replaced = file_replace(history->path, text, length, 0644, why, sizeof why);
	free(text);
	if (!replaced) {
		snprintf(history->error, sizeof history->error, "%s", why);
		return false;
	}
	history->file_lines = history->count;
	return true;
}

bool history_add(struct history *history, const struct history_entry *entry)
{
	keep(history, entry);
	if (!history->path)
		return true;
	if (history->file_lines >= 2 * HISTORY_LIMIT) {
		bool compacted = compact(history);
		if (compacted)
			history->error[0] = '\0';
		return compacted;
	}
	char *line = entry_line(entry);
	if (!line) {
		snprintf(history->error, sizeof history->error, "cannot encode a history entry");
		return false;
	}
	/* O_APPEND and a single write: a line is never interleaved nor, but for a crash in
	 * the middle of it, cut; a cut line is skipped when the file is read */
	int fd = open(history->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	size_t length = strlen(line);
	ssize_t written = fd < 0 ? -1 : write(fd, line, length);
	int saved = errno;
	if (fd >= 0)
		close(fd);
	free(line);
	if (written != (ssize_t)length) {
		snprintf(history->error, sizeof history->error, "cannot append to %s: %s", history->path,
			 written < 0 ? strerror(saved) : "short write");
		return false;
	}
	history->file_lines++;
	history->error[0] = '\0';
	return true;
}

json_t *history_json(const struct history *history, const char *cluster)
{
	json_t *entries = json_array();
	for (size_t i = 0; i < history->count; i++) {
		const struct history_entry *entry = entry_at(history, i);
		if (cluster && entry->cluster[0] && strcmp(entry->cluster, cluster) != 0)
			continue;
		json_array_append_new(entries, history_entry_json(entry));
	}
	return entries;
}
