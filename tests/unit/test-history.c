/* test-history: pghad's history file: appended line by line, read back after a restart, a cut last line skipped, bounded in memory and compacted on disk, and filtered by cluster. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "history.h"
#include "tap.h"

static struct history_entry entry(long long at_ms, const char *cluster, const char *kind, const char *reason)
{
	struct history_entry made = {.at_ms = at_ms, .duration_ms = at_ms % 1000};
	snprintf(made.cluster, sizeof made.cluster, "%s", cluster);
	snprintf(made.member, sizeof made.member, "%s%s", cluster, cluster[0] ? "-1" : "");
	snprintf(made.kind, sizeof made.kind, "%s", kind);
	snprintf(made.outcome, sizeof made.outcome, "completed");
	snprintf(made.reason, sizeof made.reason, "%s", reason);
	return made;
}

static long count_lines(const char *path)
{
	FILE *file = fopen(path, "r");
	long lines = 0;
	int c;
	while (file && (c = fgetc(file)) != EOF)
		lines += c == '\n';
	if (file)
		fclose(file);
	return lines;
}

int main(void)
{
	char directory[] = "/tmp/pgha-test-history-XXXXXX";
	char why[512], path[256];
	struct history history;

	ok(mkdtemp(directory) != NULL, "a temporary directory");
	snprintf(path, sizeof path, "%s/history.jsonl", directory);

	ok(history_open(&history, path, why, sizeof why), "a missing file is an empty history");
	is_int(history.count, 0, "  with no entry");
	struct history_entry failover = entry(1000123, "demo", "failover", "automatic from demo-0 to demo-1 \"quoted\"");
	struct history_entry reload = entry(1000500, "", "reload", "1 cluster");
	struct history_entry other = entry(1000900, "other", "switchover", "asked by the operator");
	ok(history_add(&history, &failover) && history_add(&history, &reload) && history_add(&history, &other),
	   "three entries appended");
	is_int(count_lines(path), 3, "  one line each in the file");
	history_close(&history);

	ok(history_open(&history, path, why, sizeof why), "read again, as by a restarted pghad");
	is_int(history.count, 3, "  all three are back");
	json_t *demo = history_json(&history, "demo");
	is_int(json_array_size(demo), 2, "demo's history: its failover and the daemon's reload");
	struct history_entry back;
	ok(history_entry_parse(json_array_get(demo, 0), &back), "  an entry parses back");
	is_str(back.reason, failover.reason, "  with its reason whole");
	is_int(back.duration_ms, 123, "  and its duration");
	is_str(back.member, "demo-1", "  and its member");
	json_decref(demo);
	json_t *all = history_json(&history, NULL);
	is_int(json_array_size(all), 3, "without a cluster: every entry");
	is_str(json_string_value(json_object_get(json_array_get(all, 2), "kind")), "switchover", "  oldest first");
	json_decref(all);
	history_close(&history);

	/* a crash in the middle of a write leaves half a line: it is skipped, and the next
	 * entry still reads */
	FILE *file = fopen(path, "a");
	fputs("{\"at_ms\": 5, \"duration_ms\": 1, \"clus", file);
	fclose(file);
	ok(history_open(&history, path, why, sizeof why), "a file ending in half a line is read");
	is_int(history.count, 3, "  the half line is skipped");
	history_close(&history);
	file = fopen(path, "a");
	fputs("\nnot json\n{\"kind\": \"no time\"}\n", file);
	fclose(file);
	ok(history_open(&history, path, why, sizeof why), "lines that are not entries are skipped");
	is_int(history.count, 3, "  the entries stay");

	/* bounded: the newest HISTORY_LIMIT in memory, the file compacted at twice as many lines */
	for (int i = 0; i < 2 * HISTORY_LIMIT; i++) {
		struct history_entry many = entry(2000000 + i, "demo", "start", "started");
		history_add(&history, &many);
	}
	is_int(history.count, HISTORY_LIMIT, "memory keeps HISTORY_LIMIT entries");
	ok(count_lines(path) <= 2 * HISTORY_LIMIT, "the file never holds more than twice as many lines");
	json_t *kept = history_json(&history, NULL);
	is_int(json_integer_value(json_object_get(json_array_get(kept, HISTORY_LIMIT - 1), "at_ms")),
	       2000000 + 2 * HISTORY_LIMIT - 1, "the newest is kept");
	json_decref(kept);
	history_close(&history);
	ok(history_open(&history, path, why, sizeof why), "the compacted file reads");
	is_int(history.count, HISTORY_LIMIT, "  into HISTORY_LIMIT entries");
	history_close(&history);

	ok(history_open(&history, NULL, why, sizeof why), "without a file: in memory only");
	ok(history_add(&history, &failover), "  adding works");
	is_int(history.count, 1, "  and is kept");
	history_close(&history);

	/* a path that cannot be written: the entry is kept in memory, the error said */
	char blocked[300];
	snprintf(blocked, sizeof blocked, "%s/no-such-directory/history.jsonl", directory);
	ok(history_open(&history, blocked, why, sizeof why), "a file in a missing directory opens empty");
	ok(!history_add(&history, &failover), "  appending fails");
	ok(strstr(history.error, "no-such-directory") != NULL, "  and says where: %s", history.error);
	is_int(history.count, 1, "  the entry is kept in memory anyway");
	history_close(&history);

	unlink(path);
	rmdir(directory);
	return done_testing();
}
