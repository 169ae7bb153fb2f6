/* test-decide: the loop's decisions as tables of cases (a cluster's shape and an observation in, the ordered actions and what is waited for out), and safety properties over every small observation. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "decide.h"
#include "syncset.h"
#include "memory.h"
#include "names.h"
#include "tap.h"

/*
 * A cluster's shape, in words: "REPLICAS [METHOD NUMBER [required|optional]] [pINDEX=PRIORITY ...]",
 * e.g. "3" (the defaults: any 1 required) or "4 first 2 optional p1=50 p2=0". It is
 * loaded through config_load_string, so the defaults are the real ones.
 *
 * An observation, one word per member from index 0: a kind and "+modifiers".
 *   primary       running, reachable, not in recovery, has pgha's replication role
 *   standby       running, reachable, in recovery, standby.signal, following the first
 *                 primary listed with current settings
 *   down          a data directory and standby.signal, no postmaster (a killed standby)
 *   down-primary  a data directory without standby.signal, no postmaster
 *   empty         no data directory
 *   unusable      something pgha cannot use where the data directory belongs
 *   unreachable   running with standby.signal, but the probe cannot reach it
 * modifiers: +busy +running +no-role +no-signal +stale (follow settings not current)
 *            +upstream=N +upstream=none
 * Every primary in the observation gets the case's peers ("1 2=catchup TEST-1 3@6000": a
 * member index or a literal application_name, then the state, streaming if none, then how
 * many ms ago it last answered, 0 if not said, "-" for never), slots ("1 2
 * other": a member index for its slot name, or a literal slot name) and
 * synchronous_standby_names.
 *
 * Actions, as compared: "TYPE MEMBER" and "clone M from P", "follow M to P",
 * "create-slot P for M", "drop-slot P SLOT", "set-synchronous P VALUE" ('' for empty),
 * joined with "; ".
 */

/* A decision from the state of a cluster pghad has never seen (nothing remembered, no
 * request): how every case below is decided. */
static void decide_fresh(const struct cluster_config *cluster, const struct cluster_observation *observation,
			 struct action_list *actions)
{
	struct cluster_state state;
	state_init(&state);
	decide(cluster, observation, &state, NULL, actions);
}

static struct pgha_config *load_cluster(const char *shape)
{
	char method[16] = "", required[16] = "", word[32], synchronous[128] = "", members[512] = "";
	int replicas = 0, number = 0, used = 0, index, priority;
	struct diag_list errors = {0};
	struct pgha_config *config;
	char *text;

	if (sscanf(shape, "%d%n", &replicas, &used) == 1)
		shape += used;
	if (sscanf(shape, " %15[a-z]%n", method, &used) == 1) {
		shape += used;
		snprintf(synchronous, sizeof synchronous, "method = \"%s\"; ", method);
		if (sscanf(shape, "%d%n", &number, &used) == 1) {
			shape += used;
			snprintf(synchronous + strlen(synchronous), sizeof synchronous - strlen(synchronous),
				 "number = %d; ", number);
		}
		if (sscanf(shape, " %15[a-z]%n", required, &used) == 1) {
			shape += used;
			snprintf(synchronous + strlen(synchronous), sizeof synchronous - strlen(synchronous),
				 "required = %s; ", strcmp(required, "required") == 0 ? "true" : "false");
		}
	}
	while (sscanf(shape, " %31s%n", word, &used) == 1 && sscanf(word, "p%d=%d", &index, &priority) == 2) {
		snprintf(members + strlen(members), sizeof members - strlen(members), "%s{ index = %d; priority = %d; }",
			 members[0] ? ", " : "", index, priority);
		shape += used;
	}
	if (sscanf(shape, " %31s", word) == 1) {
		printf("Bail out! \"%s\" in a cluster shape\n", word);
		exit(1);
	}
	text = xasprintf("clusters = ( { name = \"test\"; replicas = %d; synchronous = { %s}; members = ( %s ); } );",
			 replicas, synchronous, members);
	config = config_load_string(text, "test.conf", &errors);
	for (size_t i = 0; i < errors.count; i++)
		diag("%s: %s", text, errors.messages[i]);
	diag_free(&errors);
	free(text);
	if (!config) {
		printf("Bail out! cannot load a cluster shape\n");
		exit(1);
	}
	return config;
}

static void bail_out(const char *what, const char *word)
{
	printf("Bail out! %s \"%s\"\n", what, word);
	exit(1);
}

/* The next space-separated word of *cursor into word; false at the end. */
static bool next_word(const char **cursor, char *word, size_t size)
{
	const char *start = *cursor + strspn(*cursor, " ");
	size_t length = strcspn(start, " ");

	if (length == 0)
		return false;
	if (length >= size)
		bail_out("word too long:", start);
	memcpy(word, start, length);
	word[length] = '\0';
	*cursor = start + length;
	return true;
}

static size_t count_words(const char *text)
{
	char word[128];
	size_t count = 0;

	while (text && next_word(&text, word, sizeof word))
		count++;
	return count;
}

static void set_kind(struct member_observation *member, const char *kind)
{
	pid_t pid = 1000 + member->index;

	if (strcmp(kind, "primary") == 0)
		*member = (struct member_observation){.data_exists = true, .postmaster = pid, .reachable = true,
						      .replication_role = true, .replication_role_exists = true,
						      .settings_current = true, .timeline = 2};
	else if (strcmp(kind, "standby") == 0)
		*member = (struct member_observation){.data_exists = true, .standby_signal = true, .postmaster = pid,
						      .reachable = true, .in_recovery = true, .streaming = true,
						      .upstream = -2, .follow_settings_current = true,
						      .settings_current = true};
	else if (strcmp(kind, "down") == 0)
		*member = (struct member_observation){.data_exists = true, .standby_signal = true};
	else if (strcmp(kind, "down-primary") == 0)
		*member = (struct member_observation){.data_exists = true, .timeline = 1};
	else if (strcmp(kind, "empty") == 0)
		*member = (struct member_observation){0};
	else if (strcmp(kind, "unusable") == 0)
		*member = (struct member_observation){.data_unusable = true};
	else if (strcmp(kind, "unreachable") == 0)
		*member = (struct member_observation){.data_exists = true, .standby_signal = true, .postmaster = pid};
	else
		bail_out("unknown member kind", kind);
}

static void set_modifier(struct member_observation *member, const char *modifier)
{
	if (strcmp(modifier, "busy") == 0)
		member->busy = true;
	else if (strcmp(modifier, "timeline2") == 0)
		member->timeline = 2;
	else if (strcmp(modifier, "running") == 0)
		member->postmaster = 1000 + member->index;
	else if (strcmp(modifier, "no-role") == 0)
		member->replication_role = member->replication_role_exists = false;
	else if (strcmp(modifier, "unusable-role") == 0)
		member->replication_role = false; /* it exists, without LOGIN or REPLICATION */
	else if (strcmp(modifier, "no-signal") == 0)
		member->standby_signal = false;
	else if (strcmp(modifier, "stale") == 0)
		member->follow_settings_current = false;
	else if (strcmp(modifier, "overridden") == 0)
		snprintf(member->overridden, sizeof member->overridden, "synchronous_standby_names");
	else if (strcmp(modifier, "not-streaming") == 0)
		member->streaming = false;
	else if (strcmp(modifier, "old-settings") == 0)
		member->settings_current = false;
	else if (strcmp(modifier, "pending-restart") == 0)
		member->pending_restart = true;
	else if (strcmp(modifier, "lowers") == 0)
		member->pending_restart = member->lowers_standby_sensitive = true;
	else if (strcmp(modifier, "upstream=none") == 0)
		member->upstream = -1;
	else if (sscanf(modifier, "upstream=%d", &member->upstream) != 1)
		bail_out("unknown member modifier", modifier);
}

/* What a primary sees: its standbys, its slots and its synchronous_standby_names. */
static void set_primary_view(struct member_observation *primary, const char *peers, const char *slots,
			     const char *synchronous)
{
	char word[128];

	primary->peer_count = count_words(peers);
	primary->peers = xcalloc(primary->peer_count, sizeof *primary->peers);
	for (size_t i = 0; i < primary->peer_count; i++) {
		struct replication_peer *peer = &primary->peers[i];
		char *state;
		int index;

		next_word(&peers, word, sizeof word);
		char *age = strchr(word, '@');
		if (age) {
			*age++ = '\0';
			peer->reply_age_ms = strcmp(age, "-") == 0 ? -1 : atoll(age);
		}
		state = strchr(word, '=');
		if (state)
			*state++ = '\0';
		snprintf(peer->state, sizeof peer->state, "%s", state ? state : "streaming");
		if (sscanf(word, "%d", &index) == 1)
			names_member(peer->application_name, sizeof peer->application_name, "test", index);
		else
			snprintf(peer->application_name, sizeof peer->application_name, "%.*s", MEMBER_NAME_SIZE - 1, word);
	}
	primary->slot_count = count_words(slots);
	primary->slots = xcalloc(primary->slot_count, sizeof *primary->slots);
	for (size_t i = 0; i < primary->slot_count; i++) {
		int index;

		next_word(&slots, word, sizeof word);
		if (sscanf(word, "%d", &index) == 1 && strspn(word, "0123456789") == strlen(word))
			names_slot(primary->slots[i], sizeof primary->slots[i], "test", index);
		else
			snprintf(primary->slots[i], sizeof primary->slots[i], "%.*s", MEMBER_NAME_SIZE - 1, word);
	}
	observation_set_text(&primary->synchronous_standby_names, synchronous, OBSERVATION_NAMES_SIZE);
}

static void build_observation(struct cluster_observation *observation, const char *members, const char *peers,
			      const char *slots, const char *synchronous)
{
	char word[128];
	int first_primary = -1;

	observation->count = count_words(members);
	observation->members = xcalloc(observation->count, sizeof *observation->members);
	for (size_t i = 0; i < observation->count; i++) {
		struct member_observation *member = &observation->members[i];
		char *modifier, *next;

		next_word(&members, word, sizeof word);
		next = strchr(word, '+');
		if (next)
			*next++ = '\0';
		member->index = (int)i;
		set_kind(member, word);
		member->index = (int)i;
		names_member(member->name, sizeof member->name, "test", member->index);
		for (modifier = next; modifier; modifier = next) {
			next = strchr(modifier, '+');
			if (next)
				*next++ = '\0';
			set_modifier(member, modifier);
		}
		if (member->reachable && !member->in_recovery) {
			set_primary_view(member, peers, slots, synchronous);
			if (first_primary < 0)
				first_primary = member->index;
		}
	}
	for (size_t i = 0; i < observation->count; i++)
		if (observation->members[i].upstream == -2)
			observation->members[i].upstream = first_primary;
}

static void free_observation(struct cluster_observation *observation)
{
	for (size_t i = 0; i < observation->count; i++) {
		free(observation->members[i].peers);
		free(observation->members[i].slots);
		free(observation->members[i].synchronous_standby_names);
		free(observation->members[i].primary_conninfo);
	}
	free(observation->members);
	*observation = (struct cluster_observation){0};
}

/* The actions as one line, in the notation of the tables. */
static void render_actions(const struct action_list *actions, char *out, size_t size)
{
	size_t length = 0;

	out[0] = '\0';
	for (size_t i = 0; i < actions->count && length < size; i++) {
		const struct action *action = &actions->items[i];
		char member[MEMBER_NAME_SIZE], source[MEMBER_NAME_SIZE], detail[8300] = "";

		names_member(member, sizeof member, "test", action->member);
		names_member(source, sizeof source, "test", action->source);
		switch (action->type) {
		case ACTION_CLONE:
			snprintf(detail, sizeof detail, " from %s", source);
			break;
		case ACTION_FOLLOW:
			snprintf(detail, sizeof detail, " to %s", source);
			break;
		case ACTION_CREATE_SLOT:
			snprintf(detail, sizeof detail, " for %s", source);
			break;
		case ACTION_DROP_SLOT:
		case ACTION_RESET_OVERRIDES:
		case ACTION_SET_SYNCHRONOUS:
			snprintf(detail, sizeof detail, " %s", action->text[0] ? action->text : "''");
			break;
		default:
			break;
		}
		length += (size_t)snprintf(out + length, size - length, "%s%s %s%s", i ? "; " : "",
					   action_type_names[action->type], member, detail);
	}
}

struct decide_case {
	const char *what;
	const char *cluster, *members;
	const char *peers, *slots, *synchronous; /* as every primary sees them */
	const char *expected;
	const char *waiting; /* a part of what is waited for; NULL: nothing is */
};

#define HEALTHY_3 "primary standby standby", "1 2", "1 2", "ANY 1 (\"test-1\", \"test-2\")"
#define FOUR_STREAMING "primary standby standby standby", "1 2 3", "1 2 3"

static const struct decide_case decide_cases[] = {
	/* a new cluster */
	{"new cluster: only test-0 is initialized", "3", "empty empty empty", "", "", "", "initialize test-0", NULL},
	{"new cluster of one member", "1 off", "empty", "", "", "", "initialize test-0", NULL},
	{"initdb under way on test-0: nothing else, the clones wait", "3", "empty+busy empty empty", "", "", "", "",
	 "waiting for a primary to clone test-1 from"},
	{"test-0 initialized, not running: started; the clones wait", "3", "down-primary empty empty", "", "", "",
	 "start test-0", "waiting for a primary to clone test-1 from"},
	{"new primary: its replication role first, no synchronous list yet, the clones wait", "3",
	 "primary+no-role empty empty", "", "", "", "create-replication-role test-0",
	 "waiting for the replication role on test-0 to clone test-1"},
	{"the role exists without LOGIN or REPLICATION: altered, not created again; the clones wait", "3",
	 "primary+unusable-role empty empty", "", "", "", "alter-replication-role test-0",
	 "waiting for the replication role on test-0 to clone test-1"},
	{"the role unusable under a running list: altered, and the list left as it is", "3",
	 "primary+unusable-role standby standby", "1 2", "1 2", "ANY 1 (\"test-1\", \"test-2\")",
	 "alter-replication-role test-0", NULL},
	{"primary with its role: slots before clones, a required list padded to its number", "3", "primary empty empty",
	 "", "", "",
	 "create-slot test-0 for test-1; create-slot test-0 for test-2; clone test-1 from test-0; clone test-2 from test-0; "
	 "set-synchronous test-0 ANY 1 (\"test-1\")",
	 NULL},
	{"a slot that exists is not created again", "3", "primary empty standby", "2", "1 2", "ANY 1 (\"test-2\")",
	 "clone test-1 from test-0", NULL},
	{"healthy cluster: nothing to do", "3", HEALTHY_3, "", NULL},

	/* settings */
	{"a standby's pgha.conf is old: rewritten and reloaded", "3", "primary standby+old-settings standby", "1 2", "1 2",
	 "ANY 1 (\"test-1\", \"test-2\")", "configure test-1", NULL},
	{"every running member's old pgha.conf is rewritten, and no restart yet", "3",
	 "primary+old-settings+pending-restart standby+old-settings standby+pending-restart", "1 2", "1 2",
	 "ANY 1 (\"test-1\", \"test-2\")", "configure test-0; configure test-1", NULL},
	{"a stopped member's pgha.conf is left to its start", "3", "primary standby down+old-settings", "1", "1 2",
	 "ANY 1 (\"test-1\")", "start test-2", NULL},
	{"a restart: standbys first, the lowest index first", "3",
	 "primary+pending-restart standby+pending-restart standby+pending-restart", "1 2", "1 2",
	 "ANY 1 (\"test-1\", \"test-2\")", "restart test-1", NULL},
	{"then the next standby", "3", "primary+pending-restart standby standby+pending-restart", "1 2", "1 2",
	 "ANY 1 (\"test-1\", \"test-2\")", "restart test-2", NULL},
	{"the primary last", "3", "primary+pending-restart standby standby", "1 2", "1 2",
	 "ANY 1 (\"test-1\", \"test-2\")", "restart test-0", NULL},
	{"a standby that does not stream yet is not restarted: it may not have replayed the primary's change", "3",
	 "primary standby+pending-restart+not-streaming standby", "1 2", "1 2", "ANY 1 (\"test-1\", \"test-2\")", "",
	 NULL},
	{"ALTER SYSTEM over pgha's synchronous list is reset, and restarts wait", "3",
	 "primary+overridden+pending-restart standby standby", "1 2", "1 2", "ANY 1 (\"test-1\", \"test-2\")",
	 "reset-overrides test-0 synchronous_standby_names", NULL},
	{"a lowered hot-standby-sensitive setting: the primary first", "3",
	 "primary+lowers standby+pending-restart standby+pending-restart", "1 2", "1 2",
	 "ANY 1 (\"test-1\", \"test-2\")", "restart test-0", NULL},
	{"one restart at a time: none while a member is busy", "3",
	 "primary+pending-restart standby+busy standby+pending-restart", "1 2", "1 2", "ANY 1 (\"test-1\", \"test-2\")",
	 "", NULL},
	{"none while a running member does not answer", "3", "primary+pending-restart standby unreachable", "1", "1 2",
	 "ANY 1 (\"test-1\")", "", NULL},
	{"a restart needs a primary to order it against", "3", "unreachable standby+pending-restart standby", "", "", "",
	 "", NULL},

	/* healing */
	{"killed standby: started", "3", "primary standby down", "1", "1 2", "ANY 1 (\"test-1\")", "start test-2", NULL},
	{"killed primary, standbys up: the primary is started, nobody follows nobody", "3",
	 "down-primary standby standby", "", "", "", "start test-0", NULL},
	{"whole cluster down: every member is started", "3", "down-primary down down", "", "", "",
	 "start test-0; start test-1; start test-2", NULL},
	{"unusable directory: moved aside, nothing else for that member", "3", "primary standby unusable", "1", "1 2",
	 "ANY 1 (\"test-1\")", "move-aside test-2", NULL},
	{"unusable directory under a running postmaster: left alone", "3", "primary standby unusable+running", "1",
	 "1 2", "ANY 1 (\"test-1\")", "", "test-2's data directory looks unusable but its postmaster 1002 runs"},
	{"no data directory under a running postmaster: not cloned over", "3", "primary standby empty+running", "1",
	 "1", "ANY 1 (\"test-1\")", "", "test-2 has no data directory but its postmaster 1002 still runs"},
	{"stopped test-0 without standby.signal while test-1 is primary: it rejoins as test-1's standby", "3",
	 "down-primary primary standby", "2", "0 2", "ANY 1 (\"test-2\")", "rejoin test-0", NULL},
	{"a former primary rejoins only once the new primary's pg_control has its timeline", "3",
	 "down-primary+timeline2 primary standby", "2", "0 2", "ANY 1 (\"test-2\")", "",
	 "waiting for test-1's checkpoint on its new timeline"},
	{"a former primary rejoins only once the primary has its slot", "3", "down-primary primary standby", "2", "2",
	 "ANY 1 (\"test-2\")", "create-slot test-1 for test-0; rejoin test-0", NULL},
	{"two stopped members without standby.signal: neither is started", "3", "down-primary down-primary down", "",
	 "", "", "start test-2", "and test-1 is stopped without standby.signal too"},
	{"a running member without standby.signal that cannot be probed blocks a start", "3",
	 "down-primary unreachable+no-signal down", "", "", "", "start test-2", "and test-1 runs without standby.signal"},
	{"a busy member without standby.signal blocks a start", "3", "down-primary down-primary+busy down", "", "", "",
	 "start test-2", "and test-1 is busy and has no standby.signal"},
	{"a removed member is never started, and does not block a start", "3", "down-primary down down down-primary",
	 "", "", "", "start test-0; start test-1; start test-2", NULL},
	{"an unreachable standby: nothing to do for it", "3", "primary unreachable standby", "2", "1 2",
	 "ANY 1 (\"test-2\")", "", NULL},

	/* several primaries */
	{"two primaries: no action at all", "3", "primary primary empty", "", "", "", "",
	 "several primaries: test-0, test-1; not acting"},
	{"two primaries: not even a move aside or a start", "4", "primary unusable down primary", "", "", "", "",
	 "several primaries: test-0, test-3; not acting"},

	/* scaling */
	{"scale up 3 to 4: the new member's slot, then its clone", "4", "primary standby standby empty", "1 2", "1 2",
	 "ANY 1 (\"test-1\", \"test-2\")", "create-slot test-0 for test-3; clone test-3 from test-0", NULL},
	{"scale up 3 to 4: not listed while it catches up", "4", "primary standby standby standby", "1 2 3=catchup",
	 "1 2 3", "ANY 1 (\"test-1\", \"test-2\")", "", NULL},
	{"scale up 3 to 4: listed once it streams", "4", FOUR_STREAMING, "ANY 1 (\"test-1\", \"test-2\")",
	 "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\", \"test-3\")", NULL},
	{"scale down 4 to 3, round 1: the list drops test-3 first, test-3 keeps running", "3", FOUR_STREAMING,
	 "ANY 1 (\"test-1\", \"test-2\", \"test-3\")", "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\")",
	 "waiting for test-3 to leave synchronous_standby_names on test-0 before stopping it"},
	{"scale down 4 to 3, round 2: test-3 stops, its slot stays while it runs", "3", FOUR_STREAMING,
	 "ANY 1 (\"test-1\", \"test-2\")", "stop test-3", NULL},
	{"scale down 4 to 3, round 3: the slot of the stopped member is dropped", "3", "primary standby standby down",
	 "1 2", "1 2 3", "ANY 1 (\"test-1\", \"test-2\")", "drop-slot test-0 test_3", NULL},
	{"scale down 4 to 3, round 4: done, and the data of test-3 stays", "3", "primary standby standby down", "1 2",
	 "1 2", "ANY 1 (\"test-1\", \"test-2\")", "", NULL},
	{"scale down: a removed member listed in capitals is still listed", "3", FOUR_STREAMING,
	 "ANY 1 (\"test-1\", \"test-2\", \"TEST-3\")", "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\")",
	 "waiting for test-3 to leave"},
	{"scale down: \"*\" lists a removed member too", "3", FOUR_STREAMING, "ANY 1 (*)",
	 "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\")", "waiting for test-3 to leave"},
	{"scale down: a list that does not parse may name it", "3", FOUR_STREAMING, "ANY 1 (test-1, test-2)",
	 "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\")", "waiting for test-3 to leave"},
	{"scale down: a removed member stops at once when there is no primary", "3",
	 "unreachable+no-signal standby standby standby", "", "", "", "stop test-3", NULL},
	{"scale down: a removed primary keeps running", "3", "standby standby standby primary", "0 1 2", "0 1 2",
	 "ANY 1 (\"test-0\", \"test-1\", \"test-2\")", "", "test-3 is the primary but beyond replicas = 3; it keeps running"},
	{"scale down: the slot of a member that is gone is dropped", "3", "primary standby standby", "1 2", "1 2 3",
	 "ANY 1 (\"test-1\", \"test-2\")", "drop-slot test-0 test_3", NULL},
	{"scale down: slots of removed members are dropped in member order", "3", "primary standby standby", "1 2",
	 "9 1 2 4", "ANY 1 (\"test-1\", \"test-2\")", "drop-slot test-0 test_4; drop-slot test-0 test_9", NULL},
	{"scale down: the slot of a busy removed member stays", "3", "primary standby standby down+busy", "1 2", "1 2 3",
	 "ANY 1 (\"test-1\", \"test-2\")", "", NULL},
	{"slots not named like a member slot of this cluster are never touched", "3", "primary standby standby", "1 2",
	 "1 2 0 other test_03 test_ test prod_3 Test_3 test_3x test_-3 test_1_0", "ANY 1 (\"test-1\", \"test-2\")", "",
	 NULL},

	/* the synchronous list */
	{"number 1 to 2", "4 any 2", FOUR_STREAMING, "ANY 1 (\"test-1\", \"test-2\", \"test-3\")",
	 "set-synchronous test-0 ANY 2 (\"test-1\", \"test-2\", \"test-3\")", NULL},
	{"first: by priority, highest first, priority 0 still listed", "4 first 1 required p1=50 p2=0", FOUR_STREAMING,
	 "", "set-synchronous test-0 FIRST 1 (\"test-3\", \"test-1\", \"test-2\")", NULL},
	{"first: equal priorities by index", "4 first 2", FOUR_STREAMING, "ANY 2 (\"test-1\", \"test-2\", \"test-3\")",
	 "set-synchronous test-0 FIRST 2 (\"test-1\", \"test-2\", \"test-3\")", NULL},
	{"required, nobody streams: the list still has number names", "4 any 2 required",
	 "primary standby standby standby", "1=catchup", "1 2 3", "", "set-synchronous test-0 ANY 2 (\"test-1\", \"test-2\")",
	 NULL},
	{"required: padded with the first candidates in order", "4 any 2 required", "primary standby standby standby", "3",
	 "1 2 3", "", "set-synchronous test-0 ANY 2 (\"test-1\", \"test-3\")", NULL},
	{"optional, nobody streams: no list", "3 any 1 optional", "primary standby standby", "", "1 2",
	 "ANY 1 (\"test-1\")", "set-synchronous test-0 ''", NULL},
	{"optional: fewer streaming than number lowers the number", "4 any 2 optional", "primary standby standby standby",
	 "2", "1 2 3", "", "set-synchronous test-0 ANY 1 (\"test-2\")", NULL},
	{"off: the list is emptied", "3 off", HEALTHY_3, "set-synchronous test-0 ''", NULL},
	{"off and empty: nothing to do", "3 off", "primary standby standby", "1 2", "1 2", "", "", NULL},
	{"drift: ANY in another order is the same", "3", "primary standby standby", "1 2", "1 2",
	 "ANY 1 (\"test-2\", \"test-1\")", "", NULL},
	{"drift: FIRST in another order differs", "3 first 1", "primary standby standby", "1 2", "1 2",
	 "FIRST 1 (\"test-2\", \"test-1\")", "set-synchronous test-0 FIRST 1 (\"test-1\", \"test-2\")", NULL},
	{"drift: keywords and names in other letter case are the same", "3", "primary standby standby", "1 2", "1 2",
	 "any 1 (\"TEST-1\", \"Test-2\")", "", NULL},
	{"drift: FIRST where ANY is configured", "3", "primary standby standby", "1 2", "1 2",
	 "FIRST 1 (\"test-1\", \"test-2\")", "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\")", NULL},
	{"drift: another number", "3", "primary standby standby", "1 2", "1 2", "ANY 2 (\"test-1\", \"test-2\")",
	 "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\")", NULL},
	{"drift: a value that does not parse", "3", "primary standby standby", "1 2", "1 2", "ANY 1 (test-1, test-2)",
	 "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\")", NULL},
	{"an application_name in another case still streams for its member", "3", "primary standby standby",
	 "TEST-1 Test-2", "1 2", "ANY 1 (\"test-1\", \"test-2\")", "", NULL},
	{"a standby that stopped answering its primary leaves the list as one that stopped streaming", "3 any 1 optional",
	 "primary standby standby", "1@60000 2", "1 2", "ANY 1 (\"test-1\", \"test-2\")",
	 "set-synchronous test-0 ANY 1 (\"test-2\")", NULL},
	{"and comes back once it answers again", "3 any 1 optional", "primary standby standby", "1@200 2", "1 2",
	 "ANY 1 (\"test-2\")", "set-synchronous test-0 ANY 1 (\"test-1\", \"test-2\")", NULL},
	{"peers that are not members are not listed", "3", "primary standby standby", "1 other-2 test-7", "1 2",
	 "ANY 1 (\"test-1\")", "", NULL},
	{"no role, no list: CREATE ROLE must not wait on standbys that cannot connect yet", "3",
	 "primary+no-role standby empty", "1", "1 3", "",
	 "create-replication-role test-0; drop-slot test-0 test_3", "waiting for the replication role on test-0"},

	/* following */
	{"a standby following another member is pointed at the primary", "3", "primary standby+upstream=2 standby",
	 "1 2", "1 2", "ANY 1 (\"test-1\", \"test-2\")", "follow test-1 to test-0", NULL},
	{"a standby following no known member is pointed at the primary", "3", "primary standby standby+upstream=none",
	 "1", "1 2", "ANY 1 (\"test-1\")", "follow test-2 to test-0", NULL},
	{"a standby with stale follow settings gets them rewritten", "3", "primary standby+stale standby", "1 2", "1 2",
	 "ANY 1 (\"test-1\", \"test-2\")", "follow test-1 to test-0", NULL},
	{"a standby without its slot: the slot, then the follow", "3", "primary standby+stale standby", "1 2", "2",
	 "ANY 1 (\"test-1\", \"test-2\")", "create-slot test-0 for test-1; follow test-1 to test-0", NULL},

	/* busy members */
	{"busy members are left alone", "3", "primary standby+busy+upstream=2+stale down+busy", "", "",
	 "ANY 1 (\"test-1\")", "", NULL},
	{"a busy primary: nothing on it, but a clone whose slot exists goes on; a follow waits for its slot", "3",
	 "primary+busy empty standby+stale", "2", "1", "", "clone test-1 from test-0",
	 "waiting for test-0 to be free to create the slot test_2 for test-2 to follow it"},
	{"a busy primary without the slot of a member to clone: the clone waits", "3", "primary+busy empty standby", "2",
	 "2", "ANY 1 (\"test-2\")", "", "waiting for test-0 to be free to create the slot test_1 before cloning test-1"},

	/* all at once */
	{"every kind of action at once, in the order they must run", "5",
	 "primary standby+upstream=none down empty unusable standby", "1 5", "2 5 6", "ANY 1 (\"test-2\")",
	 "move-aside test-4; start test-2; create-slot test-0 for test-1; create-slot test-0 for test-3; "
	 "clone test-3 from test-0; follow test-1 to test-0; set-synchronous test-0 ANY 1 (\"test-1\"); stop test-5; "
	 "drop-slot test-0 test_6",
	 NULL},
};

/* Every action says why, and names the member it acts on. */
static bool reasons_name_members(const struct action_list *actions, const char **bad)
{
	for (size_t i = 0; i < actions->count; i++) {
		char member[MEMBER_NAME_SIZE];

		names_member(member, sizeof member, "test", actions->items[i].member);
		if (!strstr(actions->items[i].reason, member)) {
			*bad = actions->items[i].reason;
			return false;
		}
	}
	return true;
}

static void test_decide_cases(void)
{
	bool reasons_ok = true, deterministic = true;

	for (size_t i = 0; i < sizeof decide_cases / sizeof decide_cases[0]; i++) {
		const struct decide_case *test = &decide_cases[i];
		struct pgha_config *config = load_cluster(test->cluster);
		struct cluster_observation observation = {0};
		struct action_list actions, again;
		char got[4096], got_again[4096];
		const char *bad;

		build_observation(&observation, test->members, test->peers, test->slots, test->synchronous);
		decide_fresh(&config->clusters[0], &observation, &actions);
		render_actions(&actions, got, sizeof got);
		is_str(got, test->expected, "%s", test->what);
		if (test->waiting)
			ok(strstr(actions.waiting, test->waiting) != NULL, "%s: waits (%s)", test->what, actions.waiting);
		else
			ok(actions.waiting[0] == '\0', "%s: waits for nothing", test->what);
		if (test->waiting && !strstr(actions.waiting, test->waiting))
			diag("expected it to contain \"%s\"", test->waiting);
		if (!reasons_name_members(&actions, &bad)) {
			diag("%s: a reason that does not name its member: \"%s\"", test->what, bad);
			reasons_ok = false;
		}
		decide_fresh(&config->clusters[0], &observation, &again);
		render_actions(&again, got_again, sizeof got_again);
		if (strcmp(got, got_again) != 0 || strcmp(actions.waiting, again.waiting) != 0) {
			diag("%s: a second decision differs: \"%s\"", test->what, got_again);
			deterministic = false;
		}
		action_list_free(&again);
		action_list_free(&actions);
		free_observation(&observation);
		config_free(config);
	}
	ok(reasons_ok, "every action of every case has a reason naming its member");
	ok(deterministic, "the same inputs give the same decision");
}

/* Reasons a reader sees in the log, checked word for word once. */
static void test_reasons(void)
{
	struct pgha_config *config = load_cluster("3");
	struct cluster_observation observation = {0};
	struct action_list actions;

	build_observation(&observation, "primary standby empty", "1", "1 2", "ANY 1 (\"test-1\")");
	decide_fresh(&config->clusters[0], &observation, &actions);
	is_int(actions.count, 1, "one clone");
	if (actions.count == 1) {
		is_str(actions.items[0].reason, "test-2 has no data directory: cloning it from test-0", "the reason of a clone");
		is_int(actions.items[0].source, 0, "the clone's source is the primary");
		is_str(actions.items[0].text, "", "a clone has no text");
	}
	action_list_free(&actions);
	free_observation(&observation);

	build_observation(&observation, "primary standby down", "1", "1 2 7", "ANY 1 (\"test-1\")");
	decide_fresh(&config->clusters[0], &observation, &actions);
	is_int(actions.count, 2, "a start and a slot to drop");
	if (actions.count == 2) {
		is_int(actions.items[0].source, -1, "a start has no source");
		is_str(actions.items[1].text, "test_7", "a slot to drop is named in text");
		ok(strstr(actions.items[1].reason, "test-7") != NULL, "and its reason names its member: %s",
		   actions.items[1].reason);
	}
	action_list_free(&actions);
	action_list_free(&actions);
	ok(actions.items == NULL && actions.count == 0 && actions.waiting[0] == '\0',
	   "action_list_free leaves an empty list and can be called again");
	free_observation(&observation);
	config_free(config);
}

static void test_action_type_names(void)
{
	bool all_named = true, distinct = true;

	for (int type = ACTION_INITIALIZE; type < ACTION_TYPE_COUNT; type++) {
		all_named &= action_type_names[type] != NULL && action_type_names[type][0] != '\0';
		for (int other = ACTION_INITIALIZE; all_named && other < type; other++)
			distinct &= strcmp(action_type_names[type], action_type_names[other]) != 0;
	}
	ok(all_named && distinct, "every action type has its own name");
	is_str(action_type_names[ACTION_MOVE_ASIDE], "move-aside", "names are spelt with '-'");
	is_str(action_type_names[ACTION_CREATE_REPLICATION_ROLE], "create-replication-role", "the longest name");
}

struct synchronous_case {
	const char *what;
	const char *cluster, *members, *peers;
	int primary;
	const char *expected;
};

static const struct synchronous_case synchronous_cases[] = {
	{"off", "3 off", "primary standby standby", "1 2", 0, ""},
	{"any: the streaming standbys, by index", "4", "primary standby standby standby", "3 1", 0,
	 "ANY 1 (\"test-1\", \"test-3\")"},
	{"the primary elsewhere: test-0 is a candidate", "3", "standby primary standby", "2 0", 1,
	 "ANY 1 (\"test-0\", \"test-2\")"},
	{"catchup, startup, backup and stopping do not count", "5 any 1 optional",
	 "primary standby standby standby standby", "1=catchup 2=startup 3=backup 4=stopping", 0, ""},
	{"required pads with the candidates in their order", "4 first 2 required p3=500", "primary standby standby standby",
	 "2", 0, "FIRST 2 (\"test-3\", \"test-2\")"},
	{"optional: every streaming standby is listed, the number stays", "4 any 1 optional",
	 "primary standby standby standby", "1 2 3", 0, "ANY 1 (\"test-1\", \"test-2\", \"test-3\")"},
	{"optional: the number is lowered to the streaming standbys", "4 first 3 optional",
	 "primary standby standby standby", "3 2", 0, "FIRST 2 (\"test-2\", \"test-3\")"},
	{"a removed standby that streams is not listed", "3", "primary standby standby standby", "1 3", 0,
	 "ANY 1 (\"test-1\")"},
	{"a removed primary: every configured member is a candidate", "3", "standby standby standby primary", "0 1 2", 3,
	 "ANY 1 (\"test-0\", \"test-1\", \"test-2\")"},
	{"no primary observed: a required list is still padded", "3", "down-primary down down", "", 0,
	 "ANY 1 (\"test-1\")"},
	{"application_name matches ignoring case", "3", "primary standby standby", "TEST-2", 0, "ANY 1 (\"test-2\")"},
	{"a peer listed twice counts once", "3 any 1 optional", "primary standby standby", "2 2", 0, "ANY 1 (\"test-2\")"},
	/* a standby cut off stays "streaming" until wal_sender_timeout: its last answer tells;
	 * the bound is five times wal_receiver_status_interval (1 s) here */
	{"a streaming standby that has not answered for longer than the bound is not listed", "3 any 1 optional",
	 "primary standby standby", "1@5001 2@900", 0, "ANY 1 (\"test-2\")"},
	{"one that answered within the bound is", "3 any 1 optional", "primary standby standby", "1@5000 2", 0,
	 "ANY 1 (\"test-1\", \"test-2\")"},
	{"one that has not answered yet is not", "3 any 1 optional", "primary standby standby", "1@- 2", 0,
	 "ANY 1 (\"test-2\")"},
	{"none answering: synchronous replication off when optional", "3 any 1 optional", "primary standby standby",
	 "1@60000 2@60000", 0, ""},
	{"required: a standby that stopped answering pads the list as one that stopped streaming", "3 any 1 required",
	 "primary standby standby", "1@60000", 0, "ANY 1 (\"test-1\")"},
};

static void test_synchronous_names(void)
{
	for (size_t i = 0; i < sizeof synchronous_cases / sizeof synchronous_cases[0]; i++) {
		const struct synchronous_case *test = &synchronous_cases[i];
		struct pgha_config *config = load_cluster(test->cluster);
		struct cluster_observation observation = {0};
		char *names;

		build_observation(&observation, test->members, test->peers, "", "");
		names = syncset_names(&config->clusters[0], &observation, test->primary);
		is_str(names, test->expected, "synchronous names: %s", test->what);
		free(names);
		free_observation(&observation);
		config_free(config);
	}
}

/*
 * Safety properties, over every observation of three configured members in any of
 * these states, each busy or not, and a fourth member removed by scaling down, under two
 * synchronous lists: one that names the removed member and one that does not.
 */
static const char *const member_states[] = {
	"primary", "primary+no-role", "primary+unusable-role", "standby", "standby+upstream=none", "down", "down-primary", "empty",
	"unusable", "unreachable", "unreachable+no-signal", "primary+pending-restart", "primary+lowers",
	"standby+pending-restart", "standby+old-settings", "standby+overridden",
};
static const char *const removed_member_states[] = {
	"empty", "primary", "standby", "standby+busy", "down", "down-primary", "unreachable+no-signal",
};

#define STATE_COUNT (sizeof member_states / sizeof member_states[0])
#define REMOVED_STATE_COUNT (sizeof removed_member_states / sizeof removed_member_states[0])
#define SAFETY_CONFIGURED 3

enum safety_property {
	SAFETY_SEVERAL_PRIMARIES,
	SAFETY_ORDER,
	SAFETY_BUSY,
	SAFETY_INITIALIZE,
	SAFETY_START,
	SAFETY_CLONE,
	SAFETY_MOVE_ASIDE,
	SAFETY_STOP,
	SAFETY_ON_PRIMARY,
	SAFETY_ROLE,
	SAFETY_SET_SYNCHRONOUS,
	SAFETY_DROP_SLOT,
	SAFETY_DUPLICATE,
	SAFETY_RESTART,
	SAFETY_CONFIGURE,
	SAFETY_REJOIN,
	SAFETY_FAILOVER,
	SAFETY_PROPERTY_COUNT,
};

static const char *const safety_descriptions[] = {
	[SAFETY_SEVERAL_PRIMARIES] = "with several primaries, no action at all",
	[SAFETY_ORDER] = "actions come in execution order, by member within a type",
	[SAFETY_BUSY] = "no action touches a busy member",
	[SAFETY_INITIALIZE] = "initialize only test-0, alone, when no member has anything",
	[SAFETY_START] = "a start never makes a second primary",
	[SAFETY_CLONE] = "a clone goes onto an empty, stopped, configured member, from the primary, with its slot",
	[SAFETY_MOVE_ASIDE] = "move-aside only an unusable directory without a postmaster",
	[SAFETY_STOP] = "stop only a removed member that is not the primary and not listed as synchronous",
	[SAFETY_ON_PRIMARY] = "role, slots and synchronous list only on the primary",
	[SAFETY_ROLE] = "create the replication role only when it does not exist, alter it only when it exists "
			"without LOGIN or REPLICATION",
	[SAFETY_SET_SYNCHRONOUS] = "a synchronous list only once the primary has its replication role",
	[SAFETY_DROP_SLOT] = "drop-slot only the slot of a removed member that is not running",
	[SAFETY_DUPLICATE] = "no action twice",
	[SAFETY_RESTART] = "one restart at a time, of a configured member that waits for one, with a primary, "
			   "while no member is busy; a standby before the primary unless the primary lowers a setting",
	[SAFETY_CONFIGURE] = "configure only a reachable configured member whose pgha.conf is old; reset only the "
			     "overrides observed",
	[SAFETY_REJOIN] = "rejoin only a stopped configured member without standby.signal, to the primary, with its slot",
	[SAFETY_FAILOVER] = "no fence, cut or promotion when nothing is remembered of a primary",
};

static const enum action_type expected_order[] = {
	ACTION_FENCE, ACTION_CUT, ACTION_MOVE_ASIDE, ACTION_INITIALIZE, ACTION_START, ACTION_CREATE_REPLICATION_ROLE,
	ACTION_ALTER_REPLICATION_ROLE, ACTION_CREATE_SLOT, ACTION_CLONE, ACTION_REJOIN, ACTION_FOLLOW,
	ACTION_RESET_OVERRIDES, ACTION_CONFIGURE,
	ACTION_SET_SYNCHRONOUS, ACTION_PROMOTE, ACTION_STOP, ACTION_DROP_SLOT, ACTION_RESTART,
};

static int order_of(enum action_type type)
{
	for (int i = 0; i < (int)(sizeof expected_order / sizeof expected_order[0]); i++)
		if (expected_order[i] == type)
			return i;
	return -1;
}

static bool is_primary_member(const struct member_observation *member)
{
	return member->reachable && !member->in_recovery;
}

/* Whether actions holds one of type on a member other than except (-1: any member). */
static bool has_type(const struct action_list *actions, enum action_type type, int except)
{
	for (size_t i = 0; i < actions->count; i++)
		if (actions->items[i].type == type && actions->items[i].member != except)
			return true;
	return false;
}

static bool has_action(const struct action_list *actions, size_t before, enum action_type type, int member, int source)
{
	for (size_t i = 0; i < before; i++)
		if (actions->items[i].type == type && actions->items[i].member == member && actions->items[i].source == source)
			return true;
	return false;
}

static bool lists_name(const char *synchronous, const char *member)
{
	/* the test's lists are all of the form ANY 1 ("a", ...): a quoted name is enough */
	char quoted[MEMBER_NAME_SIZE + 2];

	snprintf(quoted, sizeof quoted, "\"%s\"", member);
	return strstr(synchronous, quoted) != NULL;
}

/* Which property actions break for observation, or SAFETY_PROPERTY_COUNT when none. */
static enum safety_property check_safety(int replicas, const struct cluster_observation *observation,
					 const struct action_list *actions)
{
	const struct member_observation *members = observation->members, *primary = NULL;
	int primaries = 0;
	bool anything = false;

	for (size_t i = 0; i < observation->count; i++) {
		if (is_primary_member(&members[i])) {
			primaries++;
			primary = &members[i];
		}
		anything |= members[i].data_exists || members[i].data_unusable || members[i].busy || members[i].postmaster;
	}
	if (primaries > 1)
		return actions->count == 0 && strstr(actions->waiting, "several primaries") ? SAFETY_PROPERTY_COUNT
											 : SAFETY_SEVERAL_PRIMARIES;

	for (size_t i = 0; i < actions->count; i++) {
		const struct action *action = &actions->items[i];
		const struct member_observation *member = &members[action->member];
		bool configured = action->member < replicas;
		char name[MEMBER_NAME_SIZE], slot[MEMBER_NAME_SIZE];

		if (i > 0) {
			const struct action *previous = &actions->items[i - 1];

			if (order_of(previous->type) > order_of(action->type) ||
			    (previous->type == action->type && previous->member > action->member))
				return SAFETY_ORDER;
		}
		for (size_t j = 0; j < i; j++)
			if (actions->items[j].type == action->type && actions->items[j].member == action->member &&
			    actions->items[j].source == action->source && strcmp(actions->items[j].text, action->text) == 0)
				return SAFETY_DUPLICATE;
		if (member->busy)
			return SAFETY_BUSY;
		names_member(name, sizeof name, "test", action->member);
		switch (action->type) {
		case ACTION_INITIALIZE:
			if (anything || action->member != 0 || actions->count != 1)
				return SAFETY_INITIALIZE;
			break;
		case ACTION_START:
			if (!configured || !member->data_exists || member->data_unusable || member->postmaster)
				return SAFETY_START;
			if (member->standby_signal)
				break;
			for (size_t j = 0; j < observation->count; j++) {
				const struct member_observation *other = &members[j];

				if (other == member)
					continue;
				if (is_primary_member(other) || (!other->standby_signal && (other->postmaster || other->busy)))
					return SAFETY_START;
				for (size_t k = 0; k < actions->count; k++)
					if (actions->items[k].type == ACTION_START && actions->items[k].member == other->index &&
					    !other->standby_signal)
						return SAFETY_START;
			}
			break;
		case ACTION_CLONE:
			if (!configured || member->data_exists || member->data_unusable || member->postmaster || !primary ||
			    action->source != primary->index || !primary->replication_role)
				return SAFETY_CLONE;
			names_slot(slot, sizeof slot, "test", action->member);
			bool slot_exists = false;
			for (size_t j = 0; j < primary->slot_count; j++)
				slot_exists |= strcmp(primary->slots[j], slot) == 0;
			if (!slot_exists && !has_action(actions, i, ACTION_CREATE_SLOT, primary->index, action->member))
				return SAFETY_CLONE;
			break;
		case ACTION_MOVE_ASIDE:
			if (!member->data_unusable || member->postmaster)
				return SAFETY_MOVE_ASIDE;
			break;
		case ACTION_REJOIN:
			if (!configured || !member->data_exists || member->postmaster || member->standby_signal || !primary ||
			    action->source != primary->index)
				return SAFETY_REJOIN;
			names_slot(slot, sizeof slot, "test", action->member);
			bool rejoin_slot = false;
			for (size_t j = 0; j < primary->slot_count; j++)
				rejoin_slot |= strcmp(primary->slots[j], slot) == 0;
			if (!rejoin_slot && !has_action(actions, i, ACTION_CREATE_SLOT, primary->index, action->member))
				return SAFETY_REJOIN;
			break;
		case ACTION_FENCE:
		case ACTION_CUT:
		case ACTION_PROMOTE:
			return SAFETY_FAILOVER;
		case ACTION_STOP:
			if (configured || member == primary ||
			    (primary && lists_name(observation_text(primary->synchronous_standby_names), name)))
				return SAFETY_STOP;
			break;
		case ACTION_CREATE_REPLICATION_ROLE:
		case ACTION_ALTER_REPLICATION_ROLE:
		case ACTION_CREATE_SLOT:
		case ACTION_DROP_SLOT:
		case ACTION_SET_SYNCHRONOUS:
			if (member != primary)
				return SAFETY_ON_PRIMARY;
			if ((action->type == ACTION_CREATE_REPLICATION_ROLE && primary->replication_role_exists) ||
			    (action->type == ACTION_ALTER_REPLICATION_ROLE &&
			     (!primary->replication_role_exists || primary->replication_role)))
				return SAFETY_ROLE;
			if (action->type == ACTION_SET_SYNCHRONOUS &&
			    (!primary->replication_role ||
			     has_action(actions, actions->count, ACTION_CREATE_REPLICATION_ROLE, primary->index, -1) ||
			     has_action(actions, actions->count, ACTION_ALTER_REPLICATION_ROLE, primary->index, -1)))
				return SAFETY_SET_SYNCHRONOUS;
			if (action->type == ACTION_DROP_SLOT) {
				int owner = -1;

				if (sscanf(action->text, "test_%d", &owner) != 1 || owner < replicas ||
				    ((size_t)owner < observation->count && members[owner].postmaster))
					return SAFETY_DROP_SLOT;
			}
			break;
		case ACTION_FOLLOW:
			if (!primary || action->source != primary->index || !configured || !member->in_recovery)
				return SAFETY_ON_PRIMARY;
			break;
		case ACTION_CONFIGURE:
			if (!configured || !member->reachable || member->settings_current)
				return SAFETY_CONFIGURE;
			break;
		case ACTION_RESET_OVERRIDES:
			if (!member->reachable || !member->overridden[0] || strcmp(action->text, member->overridden) != 0)
				return SAFETY_CONFIGURE;
			break;
		case ACTION_RESTART:
			if (!configured || !member->reachable || !member->pending_restart || !primary ||
			    has_type(actions, ACTION_CONFIGURE, -1) || has_type(actions, ACTION_RESTART, action->member))
				return SAFETY_RESTART;
			for (size_t j = 0; j < observation->count; j++) {
				const struct member_observation *other = &members[j];
				if (other->busy)
					return SAFETY_RESTART;
				/* the primary goes first only when it lowers a setting, else last */
				if (member == primary && !primary->lowers_standby_sensitive && other != primary &&
				    other->reachable && other->in_recovery && other->pending_restart && other->index < replicas)
					return SAFETY_RESTART;
				if (member != primary && primary->pending_restart && primary->lowers_standby_sensitive)
					return SAFETY_RESTART;
			}
			break;
		}
	}
	return SAFETY_PROPERTY_COUNT;
}

static void test_safety(void)
{
	static const char *const synchronous_lists[] = {"ANY 1 (\"test-1\", \"test-3\")", "ANY 1 (\"test-1\")"};
	struct pgha_config *config = load_cluster("3"); /* replicas = SAFETY_CONFIGURED */
	char counterexample[SAFETY_PROPERTY_COUNT][1024] = {{0}};
	size_t decisions = 0, combinations = 1;

	for (int i = 0; i < SAFETY_CONFIGURED; i++)
		combinations *= 2 * STATE_COUNT;
	combinations *= REMOVED_STATE_COUNT;
	for (size_t list = 0; list < 2; list++)
		for (size_t combination = 0; combination < combinations; combination++) {
			char members[256] = "", got[4096];
			struct cluster_observation observation = {0};
			struct action_list actions;
			size_t rest = combination;
			enum safety_property broken;

			for (int i = 0; i < SAFETY_CONFIGURED; i++) {
				size_t state = rest % (2 * STATE_COUNT);

				rest /= 2 * STATE_COUNT;
				snprintf(members + strlen(members), sizeof members - strlen(members), "%s%s ",
					 member_states[state / 2], state % 2 ? "+busy" : "");
			}
			snprintf(members + strlen(members), sizeof members - strlen(members), "%s",
				 removed_member_states[rest]);
			build_observation(&observation, members, "1 2 3", "1 3", synchronous_lists[list]);
			decide_fresh(&config->clusters[0], &observation, &actions);
			decisions++;
			broken = check_safety(config->clusters[0].replicas, &observation, &actions);
			if (broken != SAFETY_PROPERTY_COUNT && !counterexample[broken][0]) {
				render_actions(&actions, got, sizeof got);
				snprintf(counterexample[broken], sizeof counterexample[broken], "%s / %s -> %.700s", members,
					 synchronous_lists[list], got);
			}
			action_list_free(&actions);
			free_observation(&observation);
		}
	diag("%zu observations decided", decisions);
	for (int property = 0; property < SAFETY_PROPERTY_COUNT; property++) {
		ok(!counterexample[property][0], "safety: %s", safety_descriptions[property]);
		if (counterexample[property][0])
			diag("counterexample: %s", counterexample[property]);
	}
	config_free(config);
}

/* 98 standbys make the longest list a valid configuration allows for "test": it is set
 * whole (a cut list would mean something else to PostgreSQL). */
static void test_long_synchronous_list(void)
{
	struct pgha_config *config = load_cluster("99");
	struct cluster_observation observation = {0};
	char members[2048] = "primary", peers[1024] = "";
	struct action_list actions;
	char *names;

	for (int i = 1; i < 99; i++) {
		snprintf(members + strlen(members), sizeof members - strlen(members), " standby");
		snprintf(peers + strlen(peers), sizeof peers - strlen(peers), "%s%d", i > 1 ? " " : "", i);
	}
	build_observation(&observation, members, peers, peers, "ANY 1 (\"test-1\")");
	names = syncset_names(&config->clusters[0], &observation, 0);
	ok(strlen(names) < sizeof actions.items[0].text && strstr(names, "\"test-98\")") != NULL,
	   "98 standbys: a list of %zu bytes fits an action", strlen(names));
	decide_fresh(&config->clusters[0], &observation, &actions);
	bool set_whole = false;
	for (size_t i = 0; i < actions.count; i++)
		set_whole |= actions.items[i].type == ACTION_SET_SYNCHRONOUS && strcmp(actions.items[i].text, names) == 0;
	ok(set_whole, "98 standbys: the whole list is set");
	is_str(actions.waiting, "", "98 standbys: nothing waits");
	action_list_free(&actions);
	free(names);
	free_observation(&observation);
	config_free(config);
}

/* One step of a sequence: the observation of a 3-member cluster whose primary test-0
 * runs synchronous and is at primary_lsn (0: test-0 is down, its processes gone);
 * streaming names the standbys in its pg_stat_replication ("1 2"), each flushed to the
 * LSN of flushed[index]; received[index] is what each standby has. */
static struct action_list sequence_step(const struct cluster_config *cluster, struct cluster_state *state,
					const char *synchronous, uint64_t primary_lsn, const char *streaming,
					const uint64_t flushed[3], const uint64_t received[3])
{
	struct cluster_observation observation = {0};
	struct action_list actions;
	char members[128];

	snprintf(members, sizeof members, "%s standby%s standby%s", primary_lsn ? "primary" : "down-primary",
		 strchr(streaming, '1') ? "" : "+not-streaming", strchr(streaming, '2') ? "" : "+not-streaming");
	build_observation(&observation, members, streaming, "1 2", synchronous);
	observation.now_ms = 1000000;
	if (primary_lsn)
		observation.members[0].lsn = primary_lsn;
	for (size_t p = 0; p < observation.members[0].peer_count; p++) {
		int index = observation.members[0].peers[p].application_name[5] - '0';
		observation.members[0].peers[p].flush_lsn = flushed[index];
	}
	for (int i = 1; i < 3; i++)
		observation.members[i].receive_lsn = observation.members[i].lsn = received[i];
	decide(cluster, &observation, state, NULL, &actions);
	*state = actions.next_state;
	free_observation(&observation);
	return actions;
}

static bool sets_synchronous(const struct action_list *actions, const char *value)
{
	for (size_t i = 0; i < actions->count; i++)
		if (actions->items[i].type == ACTION_SET_SYNCHRONOUS && (!value || strcmp(actions->items[i].text, value) == 0))
			return true;
	return false;
}

/* The audit's sequence (issue 12): test-2 is the synchronous standby at 1000, test-1
 * answers but lags at 100; test-2's connection blips; the primary dies. Promoting test-1
 * would lose every commit acknowledged through test-2 above 100. */
static void test_audit_sequence(void)
{
	struct pgha_config *config = load_cluster("3 any 1 required");
	const struct cluster_config *cluster = &config->clusters[0];
	struct cluster_state state;
	struct action_list actions;
	const char *only_2 = "ANY 1 (\"test-2\")", *only_1 = "ANY 1 (\"test-1\")";
	uint64_t flushed[3] = {0, 100, 1000}, received[3] = {0, 100, 1000};

	state_init(&state);
	state.primary = 0;
	state.synchronous_known = true;
	snprintf(state.synchronous, sizeof state.synchronous, "%s", only_2);

	actions = sequence_step(cluster, &state, only_2, 1000, "2", flushed, received);
	ok(!sets_synchronous(&actions, NULL), "audit 1: test-2 streams and is listed: nothing to change");
	action_list_free(&actions);

	actions = sequence_step(cluster, &state, only_2, 1000, "", flushed, received);
	ok(!sets_synchronous(&actions, NULL), "audit 2: test-2 blips: the list keeps it rather than pad with test-1, "
					      "which answers but does not stream (%s)",
	   state.synchronous);
	action_list_free(&actions);

	actions = sequence_step(cluster, &state, only_2, 1000, "1", flushed, received);
	ok(sets_synchronous(&actions, only_1), "audit 3: test-1 streams, test-2 does not: the list becomes test-1");
	is_str(state.previous, only_2, "audit 3: the list before stays in the failover pool");
	action_list_free(&actions);

	actions = sequence_step(cluster, &state, only_1, 1000, "1", flushed, received);
	is_str(state.previous, only_2, "audit 4: the primary runs the new list, test-1 has flushed 100 of 1000: the "
				       "list before is kept");
	ok(state.synchronous_since_lsn == 1000, "audit 4: kept until the new list has flushed the primary's position "
						"when it took effect");
	action_list_free(&actions);

	/* the primary dies; both standbys answer, cut from it (no WAL receiver) */
	int promoted = -1;
	char refused[1024] = "";
	for (int step = 0; step < 4 && promoted < 0; step++) {
		actions = sequence_step(cluster, &state, only_1, 0, "", flushed, received);
		if (state.failover.kind != FAILOVER_NONE && state.failover.phase == PHASE_PROMOTE)
			promoted = state.failover.to;
		snprintf(refused, sizeof refused, "%s", actions.waiting);
		action_list_free(&actions);
	}
	ok(promoted == 2, "audit 5: the primary dies: test-2 (at 1000) is chosen, never test-1 (chosen: %d; %s)", promoted,
	   refused);

	/* the same, but test-1 confirms everything first: the list before is dropped */
	state_init(&state);
	state.primary = 0;
	state.synchronous_known = true;
	snprintf(state.synchronous, sizeof state.synchronous, "%s", only_1);
	snprintf(state.previous, sizeof state.previous, "%s", only_2);
	uint64_t behind[3] = {0, 900, 1000}, caught_up[3] = {0, 1000, 1000};
	actions = sequence_step(cluster, &state, only_1, 1000, "1", behind, behind);
	action_list_free(&actions);
	ok(state.synchronous_since_lsn == 1000 && state.previous[0], "confirm: the position is taken when the new list "
								       "is first seen running");
	actions = sequence_step(cluster, &state, only_1, 1100, "1", caught_up, caught_up);
	ok(!state.previous[0] && state.synchronous_since_lsn == 0,
	   "confirm: test-1 has flushed 1000: the list before leaves the pool ('%s')", state.previous);
	action_list_free(&actions);

	/* a change while one is unconfirmed: both earlier lists stay, merged */
	state_init(&state);
	state.primary = 0;
	state.synchronous_known = true;
	snprintf(state.synchronous, sizeof state.synchronous, "%s", only_1);
	snprintf(state.previous, sizeof state.previous, "%s", only_2);
	state.synchronous_since_lsn = 1000;
	actions = sequence_step(cluster, &state, only_1, 1000, "2", flushed, received);
	ok(sets_synchronous(&actions, only_2), "merge: test-2 streams again, test-1 no longer: the list becomes test-2");
	is_str(state.previous, "ANY 1 (\"test-2\", \"test-1\")",
	       "merge: the unconfirmed list and the one before it are kept as one, with the smaller number");
	action_list_free(&actions);
	config_free(config);
}

/* Padding keeps what the primary's list names; a standby that only answers is not
 * preferred to it. */
static void test_padding_keeps_the_running_list(void)
{
	struct pgha_config *config = load_cluster("3 any 1 required");
	struct cluster_observation observation = {0};

	build_observation(&observation, "primary standby+not-streaming standby+not-streaming", "", "1 2",
			  "ANY 1 (\"test-2\")");
	char *names = syncset_names(&config->clusters[0], &observation, 0);
	is_str(names, "ANY 1 (\"test-2\")", "padding: nobody streams: the list keeps test-2, not test-1 that answers");
	free(names);
	free_observation(&observation);
	config_free(config);
}

/* A standby whose WAL went past the primary's fork point is rewound, and never listed. */
static void test_diverged_standby(void)
{
	struct pgha_config *config = load_cluster("3 any 1 required");
	struct cluster_observation observation = {0};
	struct action_list actions;
	struct timeline_switch fork = {.timeline = 1, .end_lsn = 1000};
	char got[4096];

	build_observation(&observation, "primary standby+not-streaming standby+not-streaming", "", "1 2",
			  "ANY 1 (\"test-1\")");
	struct member_observation *primary = &observation.members[0];
	primary->wal_timeline = 2;
	primary->history = &fork;
	primary->history_count = 1;
	observation.members[1].wal_timeline = 1;
	observation.members[1].receive_lsn = 1200;
	observation.members[2].wal_timeline = 2;
	observation.members[2].receive_lsn = 1100;
	char *names = syncset_names(&config->clusters[0], &observation, 0);
	is_str(names, "ANY 1 (\"test-2\")", "diverged: padding skips test-1 although the primary's list names it");
	free(names);
	/* streaming for a moment, as from the start of its segment up to the fork */
	free(primary->peers);
	free(primary->slots);
	set_primary_view(primary, "1 2", "1 2", "ANY 1 (\"test-1\")");
	primary->wal_timeline = 2;
	primary->history = &fork;
	primary->history_count = 1;
	names = syncset_names(&config->clusters[0], &observation, 0);
	is_str(names, "ANY 1 (\"test-2\")", "diverged: test-1 is not listed even while the primary shows it streaming");
	free(names);
	free(primary->peers);
	free(primary->slots);
	set_primary_view(primary, "", "1 2", "ANY 1 (\"test-1\")");
	decide_fresh(&config->clusters[0], &observation, &actions);
	render_actions(&actions, got, sizeof got);
	ok(strstr(got, "rejoin test-1") != NULL && strstr(got, "follow test-1") == NULL, "diverged: test-1 is rewound (%s)",
	   got);
	ok(strstr(got, "rejoin test-2") == NULL, "diverged: test-2, on the primary's timeline, is not (%s)", got);
	action_list_free(&actions);
	primary->timeline = 1; /* pg_control not yet on timeline 2 */
	decide_fresh(&config->clusters[0], &observation, &actions);
	render_actions(&actions, got, sizeof got);
	ok(strstr(got, "rejoin") == NULL && strstr(actions.waiting, "checkpoint on timeline 2"),
	   "diverged: the rewind waits for the primary's checkpoint on its timeline (%s)", actions.waiting);
	action_list_free(&actions);
	primary->history = NULL;
	primary->history_count = 0;
	free_observation(&observation);
	config_free(config);
}

/* A failover forced to a standby behind another: the one ahead is not pointed at the
 * candidate (its WAL goes past where the new timeline will fork off), nor listed on it;
 * the one behind is. */
static void test_diverged_from_the_candidate(void)
{
	struct pgha_config *config = load_cluster("4 any 1 required");
	const struct cluster_config *cluster = &config->clusters[0];
	struct cluster_observation observation = {0};
	struct cluster_state state;
	struct action_list actions;
	char got[4096];

	build_observation(&observation, "down-primary standby+not-streaming standby+not-streaming standby+not-streaming",
			  "", "", "");
	for (size_t i = 1; i < 4; i++) {
		observation.members[i].upstream = -1; /* cut from test-0 */
		observation.members[i].wal_timeline = 1;
	}
	observation.members[1].receive_lsn = 1200; /* ahead of the candidate */
	observation.members[2].receive_lsn = 1000; /* the candidate */
	observation.members[3].receive_lsn = 900;  /* behind it */
	state_init(&state);
	state.primary = 0;
	state.synchronous_known = true;
	/* as begin_promote padded it: test-0 first, never the diverged test-1 */
	snprintf(state.synchronous, sizeof state.synchronous, "ANY 1 (\"test-0\")");
	state.failover = (struct failover_intent){.kind = FAILOVER_MANUAL, .phase = PHASE_PROMOTE, .from = 0, .to = 2,
						  .force = true};
	decide(cluster, &observation, &state, NULL, &actions);
	render_actions(&actions, got, sizeof got);
	ok(strstr(got, "follow test-1") == NULL, "forced failover: test-1, ahead of the candidate, does not follow it (%s)",
	   got);
	ok(strstr(got, "follow test-3 to test-2") != NULL, "forced failover: test-3, behind it, follows it (%s)", got);
	action_list_free(&actions);

	/* both stream from the candidate a moment: only test-3 may be its synchronous standby */
	set_primary_view(&observation.members[2], "1 3", "1 3", "");
	char *names = syncset_names(cluster, &observation, 2);
	is_str(names, "ANY 1 (\"test-3\")", "forced failover: the candidate's list names test-3, never test-1");
	free(names);
	free_observation(&observation);
	config_free(config);
}

int main(void)
{
	test_action_type_names();
	test_decide_cases();
	test_reasons();
	test_synchronous_names();
	test_long_synchronous_list();
	test_padding_keeps_the_running_list();
	test_audit_sequence();
	test_diverged_standby();
	test_diverged_from_the_candidate();
	test_safety();
	return done_testing();
}
