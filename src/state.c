/* state: what pghad must not forget across a crash, per cluster, read from and written to a JSON file atomically (temp file, fsync, rename). */
#include "autoconfig.h"

#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "file.h"
#include "jsonpack.h"
#include "memory.h"
#include "pg.h"

const char *const failover_kind_names[] = {"none", "automatic", "switchover", "manual"};
const char *const failover_phase_names[] = {"demote", "fence", "promote"};

void state_init(struct cluster_state *state)
{
	*state = (struct cluster_state){.primary = -1, .failover = {.from = -1, .to = -1}};
}

void state_keep(struct kept_state *kept, const struct cluster_state *state)
{
	kept_state_free(kept);
	*kept = (struct kept_state){.primary = state->primary,
				    .synchronous = xstrdup(state->synchronous),
				    .previous = xstrdup(state->previous),
				    .synchronous_known = state->synchronous_known,
				    .synchronous_since_lsn = state->synchronous_since_lsn,
				    .paused = state->paused,
				    .failover = state->failover};
	snprintf(kept->last, sizeof kept->last, "%s", state->last);
}

void state_restore(struct cluster_state *state, const struct kept_state *kept)
{
	if (!kept->synchronous) {
		state_init(state);
		return;
	}
	*state = (struct cluster_state){.primary = kept->primary,
					.synchronous_known = kept->synchronous_known,
					.synchronous_since_lsn = kept->synchronous_since_lsn,
					.paused = kept->paused,
					.failover = kept->failover};
	snprintf(state->synchronous, sizeof state->synchronous, "%s", kept->synchronous);
	snprintf(state->previous, sizeof state->previous, "%s", kept->previous ? kept->previous : "");
	snprintf(state->last, sizeof state->last, "%s", kept->last);
}

void kept_state_free(struct kept_state *kept)
{
	free(kept->synchronous);
	free(kept->previous);
	*kept = (struct kept_state){0};
}

bool state_equal(const struct cluster_state *a, const struct cluster_state *b)
{
	return a->primary == b->primary && a->synchronous_known == b->synchronous_known && a->paused == b->paused &&
	       strcmp(a->synchronous, b->synchronous) == 0 && strcmp(a->previous, b->previous) == 0 &&
	       a->synchronous_since_lsn == b->synchronous_since_lsn &&
	       a->failover.kind == b->failover.kind && a->failover.phase == b->failover.phase &&
	       a->failover.from == b->failover.from && a->failover.to == b->failover.to &&
	       a->failover.force == b->failover.force && a->failover.started_ms == b->failover.started_ms &&
	       strcmp(a->failover.reason, b->failover.reason) == 0 && strcmp(a->last, b->last) == 0;
}

static int lookup(const char *const *names, size_t count, const char *name)
{
	for (size_t i = 0; name && i < count; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

static void copy_string(char *target, size_t size, const json_t *object, const char *key)
{
	const char *value = json_string_value(json_object_get(object, key));
	snprintf(target, size, "%s", value ? value : "");
}

bool state_parse(const char *text, const char *name, struct cluster_state *state, char *why, size_t why_size)
{
	json_error_t error;
	json_t *root = NULL;
	bool loaded = false;
	const char *path = name;

	state_init(state);
	root = json_loads(text, 0, &error);
	if (!json_is_object(root)) {
		snprintf(why, why_size, "%s:%d: not a pgha state: %s", path, error.line, error.text);
		goto out;
	}
	json_t *primary = json_object_get(root, "primary");
	state->primary = json_is_integer(primary) ? (int)json_integer_value(primary) : -1;
	state->synchronous_known = json_is_string(json_object_get(root, "synchronous_standby_names"));
	copy_string(state->synchronous, sizeof state->synchronous, root, "synchronous_standby_names");
	copy_string(state->previous, sizeof state->previous, root, "previous_synchronous_standby_names");
	if (state->previous[0]) {
		const char *since = json_string_value(json_object_get(root, "previous_kept_until_flushed"));
		state->synchronous_since_lsn = since ? pg_lsn_parse(since) : 0;
	}
	state->paused = json_is_true(json_object_get(root, "paused"));
	copy_string(state->last, sizeof state->last, root, "last_failover");

	json_t *failover = json_object_get(root, "failover");
	if (json_is_object(failover)) {
		int kind = lookup(failover_kind_names, 4, json_string_value(json_object_get(failover, "kind")));
		int phase = lookup(failover_phase_names, 3, json_string_value(json_object_get(failover, "phase")));
		json_t *from = json_object_get(failover, "from"), *to = json_object_get(failover, "to");
		if (kind <= FAILOVER_NONE || phase < 0 || !json_is_integer(from) || !json_is_integer(to)) {
			snprintf(why, why_size, "%s: the failover under way is not understood", path);
			goto out;
		}
		state->failover = (struct failover_intent){
			.kind = (enum failover_kind)kind,
			.phase = (enum failover_phase)phase,
			.from = (int)json_integer_value(from),
			.to = (int)json_integer_value(to),
			.force = json_is_true(json_object_get(failover, "force")),
			.started_ms = (long long)json_integer_value(json_object_get(failover, "started_ms")),
		};
		copy_string(state->failover.reason, sizeof state->failover.reason, failover, "reason");
	}
	loaded = true;
out:
	json_decref(root);
	return loaded;
}

bool state_load(const char *path, struct cluster_state *state, char *why, size_t why_size)
{
	state_init(state);
	char *text = file_read(path, 1024 * 1024, NULL, why, why_size);
	if (!text)
		return errno == ENOENT;
	bool loaded = state_parse(text, path, state, why, why_size);
	free(text);
	return loaded;
}

char *state_format(const struct cluster_state *state)
{
	json_t *root = json_object();

	json_object_set_new(root, "primary", state->primary >= 0 ? json_integer(state->primary) : json_null());
	if (state->synchronous_known) {
		json_object_set_new(root, "synchronous_standby_names", json_string(state->synchronous));
		if (state->previous[0]) {
			json_object_set_new(root, "previous_synchronous_standby_names", json_string(state->previous));
			if (state->synchronous_since_lsn) {
				char lsn[32];
				pg_lsn_format(lsn, sizeof lsn, state->synchronous_since_lsn);
				json_object_set_new(root, "previous_kept_until_flushed", json_string(lsn));
			}
		}
	}
	json_object_set_new(root, "paused", json_boolean(state->paused));
	if (state->failover.kind != FAILOVER_NONE)
		json_object_set_new(root, "failover",
				    jsonpack("{s:s, s:s, s:i, s:i, s:b, s:I, s:s}", "kind",
					      failover_kind_names[state->failover.kind], "phase",
					      failover_phase_names[state->failover.phase], "from", state->failover.from, "to",
					      state->failover.to, "force", state->failover.force, "started_ms",
					      (json_int_t)state->failover.started_ms, "reason", state->failover.reason));
	if (state->last[0])
		json_object_set_new(root, "last_failover", json_string(state->last));
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	return text;
}

bool state_save(const char *path, const struct cluster_state *state, char *why, size_t why_size)
{
	char *text = state_format(state);
	if (!text) {
		snprintf(why, why_size, "cannot encode the state of %s", path);
		return false;
	}
	bool saved = file_replace(path, text, strlen(text), 0600, why, why_size);
	free(text);
	return saved;
}
