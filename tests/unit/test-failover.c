/* test-failover: the failover transition table, case by case (every row, refusals included), and the choice of a candidate. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "failover.h"
#include "memory.h"
#include "names.h"
#include "observe.h"
#include "state.h"
#include "tap.h"

#define NOW 1000000000LL

/* "3 any 1" / "3 first 1" / "3 off", then "p2=0" priority overrides, then "manual". */
static struct pgha_config *load_cluster(const char *shape)
{
	char method[16] = "any", word[32], members[256] = "", extra[128] = "";
	int replicas = 3, number = 1, used = 0, index, priority;
	struct diag_list errors = {0};

	sscanf(shape, "%d %15s %d%n", &replicas, method, &number, &used);
	shape += used;
	while (sscanf(shape, " %31s%n", word, &used) == 1) {
		shape += used;
		if (sscanf(word, "p%d=%d", &index, &priority) == 2)
			snprintf(members + strlen(members), sizeof members - strlen(members),
				 "%s{ index = %d; priority = %d; }", members[0] ? ", " : "", index, priority);
		else if (strcmp(word, "manual") == 0)
			snprintf(extra, sizeof extra, "failover = { automatic = false; };");
		else if (strcmp(word, "optional") == 0)
			snprintf(extra, sizeof extra, "synchronous = { method = \"%s\"; number = %d; required = false; };",
				 method, number);
	}
	char *text;
	if (strstr(extra, "synchronous"))
		text = xasprintf("clusters = ( { name = \"test\"; replicas = %d; port = 5432; %s members = ( %s ); } );",
				 replicas, extra, members);
	else
		text = xasprintf("clusters = ( { name = \"test\"; replicas = %d; port = 5432; synchronous = { method = "
				 "\"%s\"; number = %d; }; %s members = ( %s ); } );",
				 replicas, method, number, extra, members);
	struct pgha_config *config = config_load_string(text, "test.conf", &errors);
	for (size_t i = 0; i < errors.count; i++)
		diag("%s", errors.messages[i]);
	diag_free(&errors);
	free(text);
	return config;
}

/* One member per word:
 *   primary[@LSN]          answers, not in recovery
 *   standby@LSN            answers, in recovery, streaming, received up to LSN
 *   cut@LSN                answers, in recovery, received up to LSN, follows no one and
 *                          no WAL receiver runs (a failover has cut it)
 *   down                   no postmaster, no process, no standby.signal (a stopped primary)
 *   down-standby           no postmaster, standby.signal
 *   clean@LSN              down, shut down cleanly, last checkpoint at LSN
 *   exited                 its postmaster exited (a zombie), no process left
 *   exited+procs           its postmaster exited, processes left behind
 *   fenced                 kubernetes: its pod is being deleted, its container not reported ended
 *   hung@MS                running, not answering for MS milliseconds
 *   lost-standby           running with standby.signal, not answering
 * with "+busy" appended: pgha is working on it. */
static void build(struct cluster_observation *observation, const char *spec, const char *peers)
{
	char copy[512], *rest = NULL;
	size_t count = 0;

	snprintf(copy, sizeof copy, "%s", spec);
	*observation = (struct cluster_observation){.members = xcalloc(8, sizeof *observation->members), .now_ms = NOW};
	for (char *word = strtok_r(copy, " ", &rest); word; word = strtok_r(NULL, " ", &rest), count++) {
		struct member_observation *member = &observation->members[count];
		unsigned long long lsn = 0;
		char *at = strchr(word, '@'), *plus = strstr(word, "+busy");
		*member = (struct member_observation){.index = (int)count, .upstream = -1, .data_exists = true};
		names_member(member->name, sizeof member->name, "test", (int)count);
		if (plus) {
			member->busy = true;
			*plus = '\0';
		}
		if (at) {
			lsn = strtoull(at + 1, NULL, 10);
			*at = '\0';
		}
		if (strcmp(word, "primary") == 0) {
			*member = (struct member_observation){.index = member->index, .upstream = -1, .data_exists = true,
							      .busy = member->busy, .postmaster = 1000 + (pid_t)count,
							      .live_processes = 1, .reachable = true, .lsn = lsn};
			snprintf(member->name, sizeof member->name, "test-%zu", count);
			observation_set_text(&member->synchronous_standby_names, "ANY 1 (\"test-1\", \"test-2\")",
					     OBSERVATION_NAMES_SIZE);
		} else if (strcmp(word, "standby") == 0 || strcmp(word, "cut") == 0) {
			member->standby_signal = member->reachable = member->in_recovery = true;
			member->streaming = member->receiving = strcmp(word, "standby") == 0;
			member->receiver_pid = member->receiving ? 2000 + (pid_t)count : 0;
			if (member->receiving)
				observation_set_text(&member->primary_conninfo, "host=test-0",
						     OBSERVATION_CONNINFO_SIZE);
			member->postmaster = 1000 + (pid_t)count;
			member->live_processes = 1;
			member->receive_lsn = lsn;
			member->lsn = lsn > 10 ? lsn - 10 : 0;
		} else if (strcmp(word, "down") == 0 || strcmp(word, "clean") == 0) {
			member->checkpoint_lsn = lsn;
			member->shut_down = strcmp(word, "clean") == 0;
		} else if (strcmp(word, "down-standby") == 0) {
			member->standby_signal = true;
		} else if (strcmp(word, "exited") == 0 || strcmp(word, "exited+procs") == 0) {
			member->postmaster = 1000 + (pid_t)count;
			member->postmaster_exited = true;
			member->live_processes = strchr(word, '+') ? 3 : 0;
		} else if (strcmp(word, "fenced") == 0) {
			member->postmaster = 1000 + (pid_t)count;
			member->postmaster_exited = true;
			member->live_processes = 1;
			member->fenced = true;
		} else if (strcmp(word, "hung") == 0) {
			member->postmaster = 1000 + (pid_t)count;
			member->live_processes = 1;
			member->unreachable_ms = (long long)lsn;
			snprintf(member->error, sizeof member->error, "timeout");
		} else if (strcmp(word, "lost-standby") == 0) {
			member->standby_signal = true;
			member->postmaster = 1000 + (pid_t)count;
			member->live_processes = 1;
			snprintf(member->error, sizeof member->error, "timeout");
		}
	}
	observation->count = count;
	/* "1:sync 2:potential": the primary's pg_stat_replication */
	for (size_t i = 0; i < count; i++) {
		struct member_observation *primary = &observation->members[i];
		if (!primary->reachable || primary->in_recovery || !peers)
			continue;
		char list[256], *cursor = NULL;
		snprintf(list, sizeof list, "%s", peers);
		primary->peers = xcalloc(8, sizeof *primary->peers);
		for (char *peer = strtok_r(list, " ", &cursor); peer; peer = strtok_r(NULL, " ", &cursor)) {
			int index;
			char sync_state[16];
			if (sscanf(peer, "%d:%15s", &index, sync_state) != 2)
				continue;
			struct replication_peer *into = &primary->peers[primary->peer_count++];
			snprintf(into->application_name, sizeof into->application_name, "test-%d", index);
			snprintf(into->state, sizeof into->state, "streaming");
			snprintf(into->sync_state, sizeof into->sync_state, "%s", sync_state);
		}
	}
}

static void release(struct cluster_observation *observation)
{
	for (size_t i = 0; i < observation->count; i++) {
		free(observation->members[i].peers);
		free(observation->members[i].synchronous_standby_names);
		free(observation->members[i].primary_conninfo);
	}
	free(observation->members);
}

struct failover_case {
	const char *what;
	const char *cluster;
	const char *members;
	const char *peers;
	/* the remembered state: "primary=0 sync=ANY 1 (\"test-1\", \"test-2\")" and so on, or
	 * "fresh"; see state_from */
	const char *state;
	const char *request; /* "switchover", "switchover 2", "failover 2", "failover! 2", or NULL */
	/* expected */
	const char *action;  /* "fence 0", "stop 0", "set-synchronous 1", "promote 1", "" */
	const char *phase;   /* the next state's phase, or "idle" */
	int next_primary;
	const char *waiting; /* a substring of waiting, or "" for none */
	const char *request_error; /* a substring, "" when taken or none */
	const char *row; /* a substring of the row that applied last */
};

static void state_from(const char *text, struct cluster_state *state)
{
	state_init(state);
	if (strcmp(text, "fresh") == 0)
		return;
	const char *found;
	if ((found = strstr(text, "primary=")))
		state->primary = atoi(found + 8);
	if ((found = strstr(text, "sync=")) && (state->synchronous_known = true))
		snprintf(state->synchronous, sizeof state->synchronous, "%.*s", (int)strcspn(found + 5, "|"), found + 5);
	if ((found = strstr(text, "previous=")))
		snprintf(state->previous, sizeof state->previous, "%.*s", (int)strcspn(found + 9, "|"), found + 9);
	state->paused = strstr(text, "paused") != NULL;
	const char *phases[] = {"demote", "fence", "promote"};
	for (int phase = 0; phase < 3; phase++) {
		char key[32];
		int from, to;
		snprintf(key, sizeof key, "%s:", phases[phase]);
		if ((found = strstr(text, key)) && sscanf(found + strlen(key), "%d>%d", &from, &to) == 2)
			state->failover = (struct failover_intent){
				.kind = phase == 0 ? FAILOVER_SWITCHOVER : FAILOVER_AUTOMATIC,
				.phase = (enum failover_phase)phase,
				.from = from,
				.to = to,
				.started_ms = strstr(text, "old") ? NOW - 60000 : NOW - 100,
			};
	}
}

#define SYNC_12 "sync=ANY 1 (\"test-1\", \"test-2\")"

static const struct failover_case cases[] = {
	/* idle */
	{"a healthy primary is remembered", "3 any 1", "primary standby@100 standby@100", NULL, "fresh", NULL, "", "idle",
	 0, "", "", "remember which member"},
	{"nothing remembered and no primary: healing decides", "3 any 1", "down standby@100 standby@100", NULL, "fresh",
	 NULL, "", "idle", -1, "", "", "no primary known yet"},
	{"a remembered primary that is now a standby is not failed over from", "3 any 1",
	 "standby@100 standby@100 standby@100", NULL, "primary=0|" SYNC_12, NULL, "", "idle", 0, "", "",
	 "no primary known yet"},
	{"silent for less than the timeout: wait", "3 any 1", "hung@800 standby@100 standby@100", NULL,
	 "primary=0|" SYNC_12, NULL, "", "idle", 0, "has not answered for 800 ms", "", "busy, or silent"},
	{"a busy primary (pgha restarts it) is not failed", "3 any 1", "down+busy standby@100 standby@100", NULL,
	 "primary=0|" SYNC_12, NULL, "", "idle", 0, "", "", "busy, or silent"},
	{"silent past the timeout: fence it", "3 any 1", "hung@1600 standby@100 standby@120", NULL, "primary=0|" SYNC_12,
	 NULL, "fence 0", "fence", 0, "", "", "kill every process"},
	{"its postmaster exited but children live: fence them", "3 any 1", "exited+procs standby@100 standby@120", NULL,
	 "primary=0|" SYNC_12, NULL, "fence 0", "fence", 0, "", "", "kill every process"},
	{"killed and gone: its standbys are cut before any is chosen", "3 any 1",
	 "exited standby@100 standby@120", NULL, "primary=0|" SYNC_12, NULL, "cut -1", "fence", 0, "", "",
	 "stops receiving WAL"},
	{"killed and gone, standbys cut: straight to the most advanced standby's synchronous list", "3 any 1",
	 "exited cut@100 cut@120", NULL, "primary=0|" SYNC_12, NULL, "set-synchronous 2", "promote", 0, "", "",
	 "synchronous list first"},
	{"no postmaster at all counts as failed at once", "3 any 1", "down cut@130 cut@120", NULL,
	 "primary=0|" SYNC_12, NULL, "set-synchronous 1", "promote", 0, "", "", "synchronous list first"},
	{"ANY 1 of two with one standby unreachable: refuse and say why", "3 any 1", "down lost-standby standby@120", NULL,
	 "primary=0|" SYNC_12, NULL, "", "idle", 0, "needs 2 of its members answering as standbys", "",
	 "no standby surely has"},
	{"every standby unreachable: refuse", "3 any 1", "hung@5000 lost-standby lost-standby", NULL,
	 "primary=0|" SYNC_12, NULL, "", "idle", 0, "not failing over", "", "no standby surely has"},
	{"a standby outside the published list is not enough: refuse", "3 any 1", "down lost-standby standby@200", NULL,
	 "primary=0|sync=ANY 1 (\"test-1\")", NULL, "", "idle", 0, "(not: test-1)", "", "no standby surely has"},
	{"the published list decides, not who answers: test-2 alone is listed", "3 any 1", "down cut@300 cut@200",
	 NULL, "primary=0|sync=ANY 1 (\"test-2\")", NULL, "set-synchronous 2", "promote", 0, "", "",
	 "synchronous list first"},
	{"a change not yet confirmed: both lists must be satisfied", "3 any 1", "down standby@300 lost-standby", NULL,
	 "primary=0|sync=ANY 1 (\"test-1\")|previous=ANY 1 (\"test-2\")", NULL, "", "idle", 0,
	 "'ANY 1 (\"test-2\")' needs 1", "", "no standby surely has"},
	{"never published: every standby must answer", "3 any 1", "down standby@300 lost-standby", NULL, "primary=0",
	 NULL, "", "idle", 0, "every standby must answer", "", "no standby surely has"},
	{"asynchronous: the most advanced that answers", "3 off 1", "down cut@300 lost-standby", NULL,
	 "primary=0|sync=", NULL, "promote 1", "promote", 0, "", "", "promote the candidate"},
	{"priority 0 is never promoted, even when most advanced", "3 any 1 p2=0", "down standby@100 standby@200", NULL,
	 "primary=0|" SYNC_12, NULL, "", "idle", 0, "cannot be promoted (priority 0", "", "no standby surely has"},
	{"equal LSNs: the higher priority wins", "3 any 1 p1=50 p2=200", "down cut@200 cut@200", NULL,
	 "primary=0|" SYNC_12, NULL, "set-synchronous 2", "promote", 0, "", "", "synchronous list first"},
	{"paused: would fail over, named, and the old primary is held", "3 any 1", "down standby@200 standby@100", NULL,
	 "primary=0|paused|" SYNC_12, NULL, "", "idle", 0, "automatic failover is paused: test-0 failed", "",
	 "paused, or failover.automatic"},
	{"failover.automatic false: would fail over", "3 any 1 manual", "down standby@200 standby@100", NULL,
	 "primary=0|" SYNC_12, NULL, "", "idle", 0, "would fail over to test-1", "", "paused, or failover.automatic"},
	/* requests */
	{"switchover to a synchronous standby: record it, stop the primary", "3 any 1",
	 "primary@500 standby@500 standby@500", "1:quorum 2:quorum", "primary=0|" SYNC_12, "switchover 2", "stop 0",
	 "demote", 0, "", "", "shuts down cleanly"},
	{"switchover without a target: the best candidate", "3 any 1", "primary@500 standby@400 standby@500",
	 "1:quorum 2:quorum", "primary=0|" SYNC_12, "switchover", "stop 0", "demote", 0, "", "", "shuts down cleanly"},
	{"switchover to a potential standby is refused", "3 first 1", "primary@500 standby@500 standby@500",
	 "1:sync 2:potential", "primary=0|sync=FIRST 1 (\"test-1\", \"test-2\")", "switchover 2", "", "idle", 0, "",
	 "test-2 is not a synchronous standby", "refused"},
	{"switchover to the primary is refused", "3 any 1", "primary@500 standby@500 standby@500", "1:quorum 2:quorum",
	 "primary=0|" SYNC_12, "switchover 0", "", "idle", 0, "", "already the primary", "refused"},
	{"switchover without a primary is refused", "3 any 1", "hung@100 standby@500 standby@500", NULL,
	 "primary=0|" SYNC_12, "switchover 1", "", "idle", 0, "has not answered for 100 ms", "needs a primary that answers",
	 "refused"},
	{"failover to a member behind is refused without force", "3 any 1", "primary@500 standby@100 standby@200", NULL,
	 "primary=0|" SYNC_12, "failover 1", "", "idle", 0, "", "commits acknowledged in between would be lost",
	 "refused"},
	{"failover to a member behind with force: fenced, then promoted", "3 any 1", "down cut@100 cut@200", NULL,
	 "primary=0|" SYNC_12, "failover! 1", "set-synchronous 1", "promote", 0, "", "", "synchronous list first"},
	{"failover to the most advanced, primary still running: fence first", "3 any 1",
	 "primary@500 standby@500 standby@400", "1:quorum 2:quorum", "primary=0|" SYNC_12, "failover 1", "fence 0",
	 "fence", 0, "", "", "kill every process"},
	/* demote */
	{"demote: the old primary still runs: stop it", "3 any 1", "primary@500 standby@500 standby@500",
	 "1:quorum 2:quorum", "primary=0|" SYNC_12 "|demote:0>2", NULL, "stop 0", "demote", 0, "", "",
	 "shuts down cleanly"},
	{"demote: stopping (busy): wait", "3 any 1", "primary@500+busy standby@500 standby@500", "1:quorum 2:quorum",
	 "primary=0|" SYNC_12 "|demote:0>2", NULL, "", "demote", 0, "waiting for test-0 to shut down", "",
	 "shuts down cleanly"},
	{"demote: a process left behind is killed", "3 any 1", "exited+procs standby@500 standby@500", NULL,
	 "primary=0|" SYNC_12 "|demote:0>2", NULL, "fence 0", "demote", 0, "", "", "left behind are killed"},
	{"demote: the target has the shutdown checkpoint: promote it", "3 any 1", "clean@450 standby@500 standby@400", NULL,
	 "primary=0|" SYNC_12 "|demote:0>1", NULL, "", "promote", 0, "", "", "set-synchronous-or-promote"},
	{"demote: the target lacks it: wait", "3 any 1", "clean@450 standby@500 standby@400", NULL,
	 "primary=0|" SYNC_12 "|demote:0>2", NULL, "", "demote", 0, "to receive test-0's shutdown checkpoint", "",
	 "wait for the target"},
	{"demote: too long: abandon, the old primary runs again", "3 any 1", "clean@450 standby@500 standby@400", NULL,
	 "primary=0|" SYNC_12 "|demote:0>2|old", NULL, "", "idle", 0, "abandoned", "", "not done in time"},
	{"demote: the remembered old primary is not observed (its directory gone): wait, never crash", "3 any 1",
	 "standby@500 standby@500 standby@500", NULL, "primary=3|" SYNC_12 "|demote:3>1", NULL, "", "demote", 3,
	 "test-3, the old primary, which is not observed", "", "wait for the target"},
	/* fence */
	{"fence: processes remain: kill them", "3 any 1", "exited+procs standby@100 standby@200", NULL,
	 "primary=0|" SYNC_12 "|fence:0>-1", NULL, "fence 0", "fence", 0, "", "", "kill every process"},
	{"fence: its pod is being deleted, maybe on a node cut off: no waiting for it, the cut first", "3 any 1",
	 "fenced standby@100 standby@200", NULL, "primary=0|" SYNC_12 "|fence:0>-1", NULL, "cut -1", "fence", 0, "", "",
	 "stops receiving WAL"},
	{"fence: its pod is being deleted, standbys cut: promotion recorded", "3 any 1", "fenced cut@100 cut@200", NULL,
	 "primary=0|" SYNC_12 "|fence:0>-1", NULL, "set-synchronous 2", "promote", 0, "", "", "synchronous list first"},
	{"fence: done, a standby still receives: cut it before choosing", "3 any 1", "exited cut@100 standby@200", NULL,
	 "primary=0|" SYNC_12 "|fence:0>-1", NULL, "cut -1", "fence", 0, "", "", "stops receiving WAL"},
	{"fence: done, cut, a candidate: promotion recorded", "3 any 1", "exited cut@100 cut@200", NULL,
	 "primary=0|" SYNC_12 "|fence:0>-1", NULL, "set-synchronous 2", "promote", 0, "", "", "synchronous list first"},
	{"fence: done, no candidate any more: abandon", "3 any 1", "exited cut@100 lost-standby", NULL,
	 "primary=0|" SYNC_12 "|fence:0>-1", NULL, "", "idle", 0, "abandoned", "", "no safe candidate: abandon"},
	/* promote */
	{"promote: the old primary came back: fence it again", "3 any 1", "primary@100 standby@200 standby@100", NULL,
	 "primary=0|sync=ANY 1 (\"test-1\")|promote:0>2", NULL, "fence 0", "promote", 0, "", "",
	 "must stay fenced"},
	{"promote: the candidate is primary: done", "3 any 1", "exited standby@100 primary@300", NULL,
	 "primary=0|sync=ANY 1 (\"test-1\")|promote:0>2", NULL, "", "idle", 2, "", "", "the candidate is the primary"},
	{"promote: the candidate does not answer: wait", "3 any 1", "exited standby@100 lost-standby", NULL,
	 "primary=0|sync=ANY 1 (\"test-1\")|promote:0>2", NULL, "", "promote", 0, "waiting for test-2", "",
	 "wait for the candidate"},
	{"promote: the candidate runs the wrong list: set it first", "3 any 1", "exited standby@100 standby@300", NULL,
	 "primary=0|sync=ANY 1 (\"test-1\")|promote:0>2", NULL, "set-synchronous 2", "promote", 0, "", "",
	 "synchronous list first"},
};

static const char *const action_names[] = {"", "fence", "cut", "stop", "set-synchronous", "promote"};

int main(void)
{
	const struct failover_row *rows;
	size_t row_count = failover_rows(&rows);
	bool *hit = xcalloc(row_count, sizeof *hit);

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const struct failover_case *test = &cases[c];
		struct pgha_config *config = load_cluster(test->cluster);
		struct cluster_observation observation;
		struct cluster_state state;
		struct failover_request request = {.kind = FAILOVER_NONE, .to = -1};
		struct failover_step step;
		char got[64];

		if (!config) {
			ok(false, "%s: the configuration loads", test->what);
			continue;
		}
		build(&observation, test->members, test->peers);
		state_from(test->state, &state);
		/* a candidate in a PROMOTE case runs what that case says it runs */
		if (strstr(test->what, "wrong list") == NULL && state.failover.phase == PHASE_PROMOTE &&
		    state.failover.kind != FAILOVER_NONE && state.failover.to >= 0)
			observation_set_text(&observation.members[state.failover.to].synchronous_standby_names,
					     state.synchronous, OBSERVATION_NAMES_SIZE);
		if (test->request) {
			int to = -1;
			request.kind = strncmp(test->request, "switchover", 10) == 0 ? FAILOVER_SWITCHOVER : FAILOVER_MANUAL;
			request.force = strchr(test->request, '!') != NULL;
			const char *space = strchr(test->request, ' ');
			if (space)
				to = atoi(space + 1);
			request.to = to;
		}
		failover_step(&config->clusters[0], &observation, &state, test->request ? &request : NULL, &step);

		if (step.action == FAILOVER_ACTION_NONE)
			snprintf(got, sizeof got, "%s", "");
		else
			snprintf(got, sizeof got, "%s %d", action_names[step.action], step.member);
		if (strcmp(test->row, "set-synchronous-or-promote") == 0) {
			ok(step.action == FAILOVER_ACTION_SET_SYNCHRONOUS || step.action == FAILOVER_ACTION_PROMOTE,
			   "%s: action (%s)", test->what, got);
		} else {
			is_str(got, test->action, "%s: action", test->what);
		}
		const char *phase = step.next.failover.kind == FAILOVER_NONE ? "idle"
										: failover_phase_names[step.next.failover.phase];
		is_str(phase, test->phase, "%s: phase", test->what);
		is_int(step.next.primary, test->next_primary, "%s: remembered primary", test->what);
		if (test->waiting[0])
			ok(strstr(step.waiting, test->waiting) != NULL, "%s: waiting says \"%s\" (%s)", test->what,
			   test->waiting, step.waiting);
		else
			ok(step.waiting[0] == '\0' || step.next.failover.kind != FAILOVER_NONE, "%s: nothing waits (%s)",
			   test->what, step.waiting);
		if (test->request_error[0])
			ok(strstr(step.request_error, test->request_error) != NULL && !step.request_taken,
			   "%s: refused with \"%s\" (%s)", test->what, test->request_error, step.request_error);
		else if (test->request)
			ok(step.request_taken && !step.request_error[0], "%s: request taken (%s)", test->what,
			   step.request_error);
		bool row_applied = strcmp(test->row, "set-synchronous-or-promote") == 0;
		for (int a = 0; a < step.applied_count; a++)
			row_applied |= strstr(step.applied[a], test->row) != NULL;
		ok(row_applied, "%s: row \"%s\" applied (last: %s)", test->what, test->row,
		   step.transition ? step.transition : "none");
		for (size_t r = 0; r < row_count; r++)
			for (int a = 0; a < step.applied_count; a++)
				if (step.applied[a] == rows[r].comment)
					hit[r] = true;
		/* the old primary is never the one promoted */
		if (step.action == FAILOVER_ACTION_PROMOTE || step.action == FAILOVER_ACTION_SET_SYNCHRONOUS)
			ok(step.member != step.next.failover.from, "%s: the old primary is not promoted", test->what);
		release(&observation);
		config_free(config);
	}

	/* every row of the table was exercised by some case, as the last row applied or on
	 * the way to it */
	bool all_rows = true;
	for (size_t r = 0; r < row_count; r++)
		if (!hit[r]) {
			diag("no case reaches the row %s: %s", rows[r].phase, rows[r].comment);
			all_rows = false;
		}
	ok(all_rows, "every one of the %zu rows of the table is exercised", row_count);

	/* the choice, directly */
	struct pgha_config *config = load_cluster("3 any 1");
	struct cluster_observation observation;
	struct cluster_state state;
	struct failover_choice choice;
	state_from("primary=0|" SYNC_12, &state);
	build(&observation, "down standby@100 standby@200", NULL);
	failover_choose(&config->clusters[0], &observation, &state, 0, -1, false, &choice);
	ok(choice.safe && choice.member == 2, "choose: the most advanced (%s)", choice.why);
	ok(strstr(choice.why, "test-1 at 0/64") && strstr(choice.why, "test-2 at 0/C8"), "choose: LSNs shown (%s)",
	   choice.why);
	failover_choose(&config->clusters[0], &observation, &state, 0, 1, false, &choice);
	ok(!choice.safe && choice.member == 1 && strstr(choice.why, "would be lost"), "choose: a wanted member behind (%s)",
	   choice.why);
	release(&observation);
	config_free(config);
	free(hit);
	return done_testing();
}
