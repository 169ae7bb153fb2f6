/* failover: the pure transition table of failover and switchover: failure detection, the choice of a candidate that has every acknowledged commit, and fence, demote, promote in their safe order. No I/O. */
#include "autoconfig.h"

#include "failover.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "names.h"
#include "pg.h"
#include "syncnames.h"
#include "syncset.h"

/* A switchover's old primary must have shut down, and its target received everything,
 * within this; otherwise the switchover is abandoned and the old primary runs again. */
#define DEMOTE_TIMEOUT_MS 30000

#define IDLE (-1)

struct context {
	const struct cluster_config *cluster;
	const struct cluster_observation *observation;
	const struct cluster_state *state;
	const struct failover_request *request;
	struct failover_step *step;
	const struct member_observation *primary; /* observed: answers and is not in recovery */
	char failure[256];                        /* why the known primary counts as failed */
	struct failover_choice choice;
};

static const struct member_observation *member_at(const struct context *context, int index)
{
	return index >= 0 ? observation_member(context->observation, index) : NULL;
}

static struct name_text {
	char text[NAMES_BUFFER_SIZE];
} name_of(const struct cluster_config *cluster, int index)
{
	struct name_text name;
	names_member(name.text, sizeof name.text, cluster->name, index);
	return name;
}

static void say(char *buffer, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buffer, size_t size, const char *format, ...)
{
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(buffer, size, format, arguments);
	va_end(arguments);
}

/* Which of two standbys' WAL goes further: a later timeline first (an LSN on an older
 * one may be on a branch the newer history left), then the position. */
static int compare_progress(const struct member_observation *a, const struct member_observation *b)
{
	if (a->wal_timeline && b->wal_timeline && a->wal_timeline != b->wal_timeline)
		return a->wal_timeline < b->wal_timeline ? -1 : 1;
	uint64_t left = observation_position(a), right = observation_position(b);
	return left < right ? -1 : left > right;
}

static bool is_standby(const struct member_observation *member)
{
	return member && member->reachable && member->in_recovery;
}

bool failover_standby_cut(const struct member_observation *member)
{
	return is_standby(member) && !member->receiving && observation_text(member->primary_conninfo)[0] == '\0';
}

bool failover_needs_cut(const struct member_observation *member, int old_primary)
{
	return member->index != old_primary && is_standby(member) && !member->busy && !failover_standby_cut(member);
}

/* A standby that counts toward a choice: it answers and, when the choice is final,
 * is cut from the old primary. */
static bool counts(const struct member_observation *member, bool cut)
{
	return is_standby(member) && (!cut || failover_standby_cut(member));
}

/* Any process of the member still alive: it could still write or send WAL. One whose
 * deletion is asked and may not be heard (a pod on a node cut off) counts as fenced: the
 * cut that follows is what keeps its WAL from the candidates. */
static bool has_processes(const struct member_observation *member)
{
	return member && !member->fenced &&
	       ((member->postmaster && !member->postmaster_exited) || member->live_processes > 0);
}

/* ---- the choice of a candidate ---- */

/* Marks the members spec names. */
static void mark_named(const struct cluster_observation *observation, const struct sync_spec *spec, bool *named)
{
	for (size_t s = 0; s < spec->count; s++)
		for (size_t m = 0; m < observation->count; m++)
			if (syncnames_name_matches(spec->names[s], observation->members[m].name))
				named[m] = true;
}

void failover_choose(const struct cluster_config *cluster, const struct cluster_observation *observation,
		     const struct cluster_state *state, int exclude, int wanted, bool cut,
		     struct failover_choice *choice)
{
	bool *pool = xcalloc(observation->count ? observation->count : 1, sizeof *pool);
	char lsn[32], best_lsn[32], detail[512] = "";
	size_t detail_length = 0;
	const struct member_observation *most = NULL; /* the most advanced that counts */
	bool any_reachable = false;

	*choice = (struct failover_choice){.member = -1};

	/* which members may hold acknowledged commits, and how many of them must answer */
	if (cluster->synchronous.method == SYNC_METHOD_OFF || (state->synchronous_known && !state->synchronous[0] &&
							       !state->previous[0] && !cluster->synchronous.required)) {
		/* asynchronous: the most advanced standby that answers; commits it lacks are lost */
		for (size_t m = 0; m < observation->count; m++)
			pool[m] = observation->members[m].index != exclude;
	} else if (!state->synchronous_known) {
		/* never published: every member must answer */
		for (size_t m = 0; m < observation->count; m++) {
			const struct member_observation *member = &observation->members[m];
			if (member->index == exclude || member->index >= cluster->replicas)
				continue;
			pool[m] = true;
			if (!counts(member, cut)) {
				say(choice->why, sizeof choice->why,
				    "no synchronous list was ever published, so every standby must answer, and %s does not (%s)",
				    member->name,
				    !member->reachable ? member->error
				    : is_standby(member) ? "it still receives WAL or follows a member"
							 : "it is not in recovery");
				goto out;
			}
		}
	} else {
		const char *lists[2] = {state->synchronous, state->previous};
		for (size_t l = 0; l < 2; l++) {
			struct sync_spec spec;
			char why[256];
			if (!lists[l][0])
				continue;
			if (!syncnames_parse(lists[l], &spec, why, sizeof why)) {
				say(choice->why, sizeof choice->why, "the published synchronous list '%s' cannot be read: %s",
				    lists[l], why);
				goto out;
			}
			bool *named = xcalloc(observation->count ? observation->count : 1, sizeof *named);
			size_t reachable = 0;
			char missing[256] = "";
			size_t missing_length = 0;
			mark_named(observation, &spec, named);
			for (size_t s = 0; s < spec.count; s++) {
				bool answered = false;
				for (size_t m = 0; m < observation->count; m++)
					if (syncnames_name_matches(spec.names[s], observation->members[m].name) &&
					    observation->members[m].index != exclude && counts(&observation->members[m], cut))
						answered = true;
				if (answered)
					reachable++;
				else if (missing_length < sizeof missing)
					missing_length += (size_t)snprintf(missing + missing_length, sizeof missing - missing_length,
									   "%s%s", missing_length ? ", " : "", spec.names[s]);
			}
			size_t needed = spec.count - (size_t)spec.number + 1;
			for (size_t m = 0; m < observation->count; m++)
				pool[m] |= named[m];
			free(named);
			sync_spec_free(&spec);
			if (reachable < needed) {
				say(choice->why, sizeof choice->why,
				    "the published synchronous list '%s' needs %zu of its members answering as standbys%s to "
				    "be sure one has every acknowledged commit; %zu do (not: %s)",
				    lists[l], needed, cut ? " that receive no more WAL" : "", reachable, missing);
				goto out;
			}
		}
	}

	/* the most advanced of the pool */
	for (size_t m = 0; m < observation->count; m++) {
		const struct member_observation *member = &observation->members[m];
		if (!pool[m] || member->index == exclude || !counts(member, cut))
			continue;
		any_reachable = true;
		if (!most || compare_progress(member, most) > 0)
			most = member;
		pg_lsn_format(lsn, sizeof lsn, observation_position(member));
		if (detail_length < sizeof detail)
			detail_length += (size_t)snprintf(detail + detail_length, sizeof detail - detail_length, "%s%s at %s",
							  detail_length ? ", " : "", member->name, lsn);
	}
	pg_lsn_format(best_lsn, sizeof best_lsn, most ? observation_position(most) : 0);
	if (!any_reachable) {
		say(choice->why, sizeof choice->why, "no standby that may hold the acknowledged commits answers");
		goto out;
	}

	if (wanted >= 0) {
		const struct member_observation *member = observation_member(observation, wanted);
		struct name_text name = name_of(cluster, wanted);
		choice->member = wanted;
		if (!member || !is_standby(member) || wanted == exclude)
			say(choice->why, sizeof choice->why, "%s is not a standby that answers", name.text);
		else if (!counts(member, cut))
			say(choice->why, sizeof choice->why, "%s still receives WAL or follows a member", name.text);
		else if (wanted >= cluster->replicas)
			say(choice->why, sizeof choice->why, "%s is beyond replicas = %d", name.text, cluster->replicas);
		else if (!pool[member - observation->members])
			say(choice->why, sizeof choice->why,
			    "%s is not in the published synchronous list '%s': it may lack acknowledged commits", name.text,
			    state->synchronous);
		else if (compare_progress(member, most) < 0) {
			pg_lsn_format(lsn, sizeof lsn, observation_position(member));
			say(choice->why, sizeof choice->why,
			    "%s has WAL up to %s but the most advanced has %s (%s): commits acknowledged in between would "
			    "be lost",
			    name.text, lsn, best_lsn, detail);
		} else {
			choice->safe = true;
			say(choice->why, sizeof choice->why, "%s has every acknowledged commit (%s)", name.text, detail);
		}
		goto out;
	}

	/* among the most advanced: priority, then index */
	int chosen_priority = 0;
	for (size_t m = 0; m < observation->count; m++) {
		const struct member_observation *member = &observation->members[m];
		int priority = config_member_priority(cluster, member->index);
		if (!pool[m] || member->index == exclude || !counts(member, cut) || compare_progress(member, most) != 0 ||
		    member->index >= cluster->replicas || member->busy || priority == 0)
			continue;
		if (choice->member < 0 || priority > chosen_priority) {
			choice->member = member->index;
			chosen_priority = priority;
		}
	}
	if (choice->member < 0) {
		say(choice->why, sizeof choice->why,
		    "the most advanced standbys (at %s) cannot be promoted (priority 0, busy or beyond replicas): %s",
		    best_lsn, detail);
		goto out;
	}
	choice->safe = true;
	say(choice->why, sizeof choice->why, "%s is the most advanced (%s), priority %d", name_of(cluster, choice->member).text,
	    detail, chosen_priority);
out:
	free(pool);
}

/* ---- the table ---- */

static const struct member_observation *old_primary(const struct context *context)
{
	const struct cluster_state *next = &context->step->next;
	return member_at(context, next->failover.kind != FAILOVER_NONE ? next->failover.from : next->primary);
}

static void hold_old(struct context *context)
{
	const struct member_observation *old = old_primary(context);
	context->step->hold = old ? old->index : -1;
	context->step->in_progress = true;
}

static void set_action(struct context *context, enum failover_action action, int member, const char *format, ...)
	__attribute__((format(printf, 4, 5)));
static void set_action(struct context *context, enum failover_action action, int member, const char *format, ...)
{
	va_list arguments;
	context->step->action = action;
	context->step->member = member;
	va_start(arguments, format);
	vsnprintf(context->step->reason, sizeof context->step->reason, format, arguments);
	va_end(arguments);
}

static void finish_failover(struct context *context, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void finish_failover(struct context *context, const char *format, ...)
{
	struct cluster_state *next = &context->step->next;
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(next->last, sizeof next->last, format, arguments);
	va_end(arguments);
	next->failover = (struct failover_intent){.from = -1, .to = -1};
	context->step->hurry = true;
}

/* -- predicates -- */

static bool always(struct context *context)
{
	(void)context;
	return true;
}

static bool request_refused(struct context *context)
{
	const struct failover_request *request = context->request;
	struct failover_step *step = context->step;
	const struct cluster_config *cluster = context->cluster;

	if (!request || request->kind == FAILOVER_NONE)
		return false;
	const struct member_observation *old = old_primary(context);
	if (request->kind == FAILOVER_SWITCHOVER) {
		if (!context->primary) {
			say(step->request_error, sizeof step->request_error,
			    "a switchover needs a primary that answers; %s has none (use pghactl failover)", cluster->name);
			return true;
		}
		if (request->to == context->primary->index) {
			say(step->request_error, sizeof step->request_error, "%s is already the primary",
			    context->primary->name);
			return true;
		}
		if (request->to >= 0) {
			const struct member_observation *target = member_at(context, request->to);
			if (!target || !is_standby(target) || !target->streaming) {
				say(step->request_error, sizeof step->request_error, "%s is not a standby streaming from %s",
				    name_of(cluster, request->to).text, context->primary->name);
				return true;
			}
			if (config_member_priority(cluster, request->to) == 0) {
				say(step->request_error, sizeof step->request_error,
				    "%s has priority 0: it is never promoted", target->name);
				return true;
			}
			if (cluster->synchronous.method != SYNC_METHOD_OFF) {
				/* as the primary reports it: commits wait for it now */
				const char *sync_state = "not connected";
				for (size_t i = 0; i < context->primary->peer_count; i++) {
					const struct replication_peer *peer = &context->primary->peers[i];
					if (!syncnames_name_matches(target->name, peer->application_name))
						continue;
					/* one that stopped answering is listed until wal_sender_timeout */
					sync_state = observation_peer_streaming(peer, config_standby_reply_bound_ms(cluster))
							     ? peer->sync_state
							     : "not answering";
				}
				if (strcmp(sync_state, "sync") != 0 && strcmp(sync_state, "quorum") != 0) {
					say(step->request_error, sizeof step->request_error,
					    "%s is not a synchronous standby (%s reports it %s, with synchronous_standby_names "
					    "= '%s'): only a member commits wait for may become primary by switchover",
					    target->name, context->primary->name, sync_state,
					    observation_text(context->primary->synchronous_standby_names));
					return true;
				}
			}
			return false;
		}
		failover_choose(cluster, context->observation, &step->next, context->primary->index, -1, false,
				&context->choice);
		if (context->choice.member < 0) {
			say(step->request_error, sizeof step->request_error, "no standby can take over: %s",
			    context->choice.why);
			return true;
		}
		return false;
	}
	/* manual failover */
	if (!old) {
		say(step->request_error, sizeof step->request_error, "%s has no known primary to fail over from",
		    cluster->name);
		return true;
	}
	if (request->to == old->index) {
		say(step->request_error, sizeof step->request_error, "%s is the primary being failed over from",
		    old->name);
		return true;
	}
	failover_choose(cluster, context->observation, &step->next, old->index, request->to, false, &context->choice);
	if (!context->choice.safe && !(request->force && is_standby(member_at(context, request->to)))) {
		say(step->request_error, sizeof step->request_error, "refusing to promote %s: %s%s",
		    name_of(cluster, request->to).text, context->choice.why,
		    is_standby(member_at(context, request->to)) ? "; --force promotes it anyway, losing those commits"
								 : "");
		return true;
	}
	return false;
}

static bool switchover_requested(struct context *context)
{
	return context->request && context->request->kind == FAILOVER_SWITCHOVER;
}

static bool manual_failover_requested(struct context *context)
{
	return context->request && context->request->kind == FAILOVER_MANUAL;
}

static bool primary_answers(struct context *context)
{
	return context->primary != NULL;
}

static bool no_known_primary(struct context *context)
{
	const struct member_observation *old = old_primary(context);
	return !old || !old->data_exists || old->standby_signal;
}

/* The known primary has not failed yet: pgha is working on it, or it has not answered
 * for less than failover.timeout_ms while its processes run. */
static bool primary_not_failed(struct context *context)
{
	const struct member_observation *old = old_primary(context);

	if (old->busy)
		return true;
	if (!old->postmaster)
		say(context->failure, sizeof context->failure, "%s has no postmaster", old->name);
	else if (old->postmaster_exited)
		say(context->failure, sizeof context->failure, "%s's postmaster %ld exited", old->name,
		    (long)old->postmaster);
	else if (old->reachable && old->in_recovery)
		return true; /* a standby now: not pgha's doing, and not a failure to fail over from */
	else if (old->unreachable_ms >= context->cluster->failover.timeout_ms)
		say(context->failure, sizeof context->failure, "%s has not answered for %lld ms (%s)", old->name,
		    old->unreachable_ms, old->error);
	else
		return true;
	return false;
}

static bool no_safe_candidate(struct context *context)
{
	failover_choose(context->cluster, context->observation, &context->step->next, old_primary(context)->index, -1,
			false, &context->choice);
	return context->choice.member < 0;
}

static bool failover_suspended(struct context *context)
{
	return context->state->paused || !context->cluster->failover.automatic;
}

static bool old_primary_running(struct context *context)
{
	const struct member_observation *old = old_primary(context);
	return old && old->postmaster && !old->postmaster_exited;
}

static bool old_primary_has_processes(struct context *context)
{
	return has_processes(old_primary(context));
}

static bool demote_timed_out(struct context *context)
{
	return context->observation->now_ms - context->step->next.failover.started_ms > DEMOTE_TIMEOUT_MS;
}

/* The target received the old primary's shutdown checkpoint: it has all the old primary wrote. */
static bool target_caught_up(struct context *context)
{
	const struct member_observation *old = old_primary(context);
	const struct member_observation *target = member_at(context, context->step->next.failover.to);
	return old && old->shut_down && is_standby(target) && observation_position(target) > old->checkpoint_lsn;
}

static bool candidate_found(struct context *context)
{
	const struct failover_intent *intent = &context->step->next.failover;
	failover_choose(context->cluster, context->observation, &context->step->next, intent->from, intent->to, true,
			&context->choice);
	return context->choice.member >= 0 && (context->choice.safe || intent->force);
}

/* A standby still receives WAL, or could again: from the old primary, if any of it still
 * runs where pghad cannot see (a node cut off), or through a WAL receiver that a replay
 * conflict keeps from reading its new settings. */
static bool standbys_not_cut(struct context *context)
{
	for (size_t i = 0; i < context->observation->count; i++)
		if (failover_needs_cut(&context->observation->members[i], context->step->next.failover.from))
			return true;
	return false;
}

static bool candidate_is_primary(struct context *context)
{
	const struct member_observation *candidate = member_at(context, context->step->next.failover.to);
	return candidate && candidate->reachable && !candidate->in_recovery;
}

static bool candidate_not_answering(struct context *context)
{
	const struct member_observation *candidate = member_at(context, context->step->next.failover.to);
	return !is_standby(candidate) || candidate->busy;
}

static bool candidate_synchronous_differs(struct context *context)
{
	const struct member_observation *candidate = member_at(context, context->step->next.failover.to);
	struct sync_spec running, wanted;
	char why[256];
	bool differ = true;

	if (!syncnames_parse(observation_text(candidate->synchronous_standby_names), &running, why, sizeof why))
		return true;
	if (syncnames_parse(context->step->next.synchronous, &wanted, why, sizeof why)) {
		differ = !syncnames_equal(&running, &wanted);
		sync_spec_free(&wanted);
	}
	sync_spec_free(&running);
	return differ;
}

/* -- what each row does; true: the phase changed without an action, consult the table again -- */

static bool refuse_request(struct context *context)
{
	(void)context; /* request_error says why */
	return true;
}

static bool begin_switchover(struct context *context)
{
	struct failover_step *step = context->step;
	int to = context->request->to >= 0 ? context->request->to : context->choice.member;

	step->request_taken = true;
	step->next.failover = (struct failover_intent){
		.kind = FAILOVER_SWITCHOVER,
		.phase = PHASE_DEMOTE,
		.from = context->primary->index,
		.to = to,
		.started_ms = context->observation->now_ms,
	};
	say(step->next.failover.reason, sizeof step->next.failover.reason, "switchover from %s to %s asked by the operator",
	    context->primary->name, name_of(context->cluster, to).text);
	return true;
}

static bool begin_manual_failover(struct context *context)
{
	struct failover_step *step = context->step;
	const struct member_observation *old = old_primary(context);

	step->request_taken = true;
	step->next.failover = (struct failover_intent){
		.kind = FAILOVER_MANUAL,
		.phase = PHASE_FENCE,
		.from = old->index,
		.to = context->request->to,
		.force = context->request->force,
		.started_ms = context->observation->now_ms,
	};
	say(step->next.failover.reason, sizeof step->next.failover.reason, "failover from %s to %s asked by the operator%s",
	    old->name, name_of(context->cluster, context->request->to).text,
	    context->request->force ? " (forced)" : "");
	return true;
}

static bool remember_primary(struct context *context)
{
	context->step->next.primary = context->primary->index;
	return false;
}

static bool nothing(struct context *context)
{
	(void)context;
	return false;
}

static bool wait_for_timeout(struct context *context)
{
	const struct member_observation *old = old_primary(context);
	if (old && !old->busy && old->postmaster && !old->reachable) {
		say(context->step->waiting, sizeof context->step->waiting,
		    "%s, the primary, has not answered for %lld ms (%s); it counts as failed after %d ms", old->name,
		    old->unreachable_ms, old->error, context->cluster->failover.timeout_ms);
		context->step->hurry = true;
	}
	return false;
}

static bool refuse_failover(struct context *context)
{
	say(context->step->waiting, sizeof context->step->waiting, "%s failed: %s; not failing over: %s",
	    old_primary(context)->name, context->failure, context->choice.why);
	return false;
}

static bool would_fail_over(struct context *context)
{
	hold_old(context);
	say(context->step->waiting, sizeof context->step->waiting, "%s: %s failed (%s); would fail over to %s (%s)",
	    context->state->paused ? "automatic failover is paused" : "failover.automatic is false",
	    old_primary(context)->name, context->failure, name_of(context->cluster, context->choice.member).text,
	    context->choice.why);
	return false;
}

static bool begin_failover(struct context *context)
{
	struct failover_step *step = context->step;
	const struct member_observation *old = old_primary(context);

	step->next.failover = (struct failover_intent){
		.kind = FAILOVER_AUTOMATIC,
		.phase = PHASE_FENCE,
		.from = old->index,
		.to = -1,
		.started_ms = context->observation->now_ms,
	};
	say(step->next.failover.reason, sizeof step->next.failover.reason, "%s", context->failure);
	return true;
}

static bool stop_old_primary(struct context *context)
{
	const struct member_observation *old = old_primary(context);
	hold_old(context);
	context->step->hurry = true;
	if (old->busy)
		say(context->step->waiting, sizeof context->step->waiting, "switchover: waiting for %s to shut down",
		    old->name);
	else
		set_action(context, FAILOVER_ACTION_STOP, old->index,
			   "switchover to %s: shutting %s down cleanly, which sends its standbys all it wrote",
			   name_of(context->cluster, context->step->next.failover.to).text, old->name);
	return false;
}

static bool fence(struct context *context)
{
	const struct member_observation *old = old_primary(context);
	hold_old(context);
	context->step->hurry = true;
	set_action(context, FAILOVER_ACTION_FENCE, old->index,
		   "%s: fencing %s (killing its remaining processes) so that it acknowledges nothing more",
		   context->step->next.failover.reason, old->name);
	return false;
}

static bool cut_standbys(struct context *context)
{
	char list[512] = "";
	size_t length = 0;
	hold_old(context);
	context->step->hurry = true;
	for (size_t i = 0; i < context->observation->count; i++) {
		const struct member_observation *member = &context->observation->members[i];
		if (failover_needs_cut(member, context->step->next.failover.from) && length < sizeof list)
			length += (size_t)snprintf(list + length, sizeof list - length, "%s%s", length ? ", " : "",
						   member->name);
	}
	set_action(context, FAILOVER_ACTION_CUT, -1,
		   "%s: %s stop receiving WAL (following no one, WAL receiver ended) before a candidate is chosen, "
		   "so that nothing more reaches them from %s",
		   context->step->next.failover.reason, list, name_of(context->cluster, context->step->next.failover.from).text);
	return false;
}

static bool begin_promote(struct context *context)
{
	struct cluster_state *next = &context->step->next;
	int to = next->failover.phase == PHASE_DEMOTE ? next->failover.to : context->choice.member;
	char *names = syncset_names(context->cluster, context->observation, to);

	next->failover.phase = PHASE_PROMOTE;
	next->failover.to = to;
	/* the candidate has every acknowledged commit; its list counts alone only once its
	 * members have flushed what the candidate has: until then the candidate itself is
	 * the list before, so that a failover of the candidate needs it (found by the
	 * sequence checker: the list padded with a lagging standby, then the candidate dies) */
	struct name_text candidate = name_of(context->cluster, to);
	const char *only[] = {candidate.text};
	char *itself = syncnames_render(SYNC_METHOD_ANY, 1, only, 1);
	snprintf(next->synchronous, sizeof next->synchronous, "%s", names);
	snprintf(next->previous, sizeof next->previous, "%s", itself);
	next->synchronous_since_lsn = 0;
	next->synchronous_known = true;
	free(itself);
	free(names);
	return true;
}

static bool abandon(struct context *context)
{
	const struct cluster_state *next = &context->step->next;
	const char *why = next->failover.phase == PHASE_DEMOTE ? "the old primary did not shut down, or its target did "
								   "not receive everything, in time"
								 : context->choice.why;
	finish_failover(context, "%s from %s abandoned: %s; %s runs as the primary again",
			failover_kind_names[next->failover.kind], name_of(context->cluster, next->failover.from).text, why,
			name_of(context->cluster, next->failover.from).text);
	say(context->step->waiting, sizeof context->step->waiting, "%s", next->last);
	return false;
}

static bool wait_catch_up(struct context *context)
{
	const struct member_observation *old = old_primary(context);
	const struct member_observation *target = member_at(context, context->step->next.failover.to);
	char have[32] = "nothing", need[32];
	hold_old(context);
	context->step->hurry = true;
	if (!old) {
		/* the remembered state names a member that is not observed (its directory gone) */
		say(context->step->waiting, sizeof context->step->waiting,
		    "switchover: waiting for %s, the old primary, which is not observed",
		    name_of(context->cluster, context->step->next.failover.from).text);
		return false;
	}
	if (!old->shut_down) {
		/* its pg_control (read by the platform: pg_controldata, a pod's termination
		 * message) does not say it shut down cleanly: there is no checkpoint to wait for */
		say(context->step->waiting, sizeof context->step->waiting,
		    "switchover: waiting for %s's shutdown checkpoint: its pg_control does not say it shut down cleanly",
		    old->name);
		return false;
	}
	if (is_standby(target))
		pg_lsn_format(have, sizeof have, observation_position(target));
	pg_lsn_format(need, sizeof need, old->checkpoint_lsn);
	say(context->step->waiting, sizeof context->step->waiting,
	    "switchover: waiting for %s to receive %s's shutdown checkpoint at %s (it has %s)",
	    name_of(context->cluster, context->step->next.failover.to).text, old->name, need, have);
	return false;
}

static bool complete(struct context *context)
{
	struct cluster_state *next = &context->step->next;
	const struct member_observation *candidate = member_at(context, next->failover.to);
	long long elapsed = context->observation->now_ms - next->failover.started_ms;

	next->primary = candidate->index;
	finish_failover(context, "%s from %s to %s completed in %lld ms (%s)", failover_kind_names[next->failover.kind],
			name_of(context->cluster, next->failover.from).text, candidate->name, elapsed,
			next->failover.reason);
	return false;
}

static bool wait_candidate(struct context *context)
{
	hold_old(context);
	context->step->hurry = true;
	say(context->step->waiting, sizeof context->step->waiting, "failover: waiting for %s to answer or to finish promoting",
	    name_of(context->cluster, context->step->next.failover.to).text);
	return false;
}

static bool set_candidate_synchronous(struct context *context)
{
	const struct cluster_state *next = &context->step->next;
	hold_old(context);
	context->step->hurry = true;
	set_action(context, FAILOVER_ACTION_SET_SYNCHRONOUS, next->failover.to,
		   "%s gets synchronous_standby_names = '%s' before its promotion, so that no commit on it is "
		   "acknowledged without a standby",
		   name_of(context->cluster, next->failover.to).text, next->synchronous);
	return false;
}

static bool promote(struct context *context)
{
	const struct cluster_state *next = &context->step->next;
	hold_old(context);
	context->step->hurry = true;
	set_action(context, FAILOVER_ACTION_PROMOTE, next->failover.to, "%s: promoting %s in place of %s",
		   next->failover.reason, name_of(context->cluster, next->failover.to).text,
		   name_of(context->cluster, next->failover.from).text);
	return false;
}

struct transition {
	int phase; /* enum failover_phase, or IDLE */
	bool (*when)(struct context *);
	bool (*then)(struct context *);
	const char *comment;
};

/* Read top to bottom within a phase: the first row whose condition holds applies. */
static const struct transition transitions[] = {
	{IDLE, request_refused, refuse_request, "an operator's request that cannot be carried out safely is refused, with why"},
	{IDLE, switchover_requested, begin_switchover, "switchover asked: record it, then shut the primary down cleanly"},
	{IDLE, manual_failover_requested, begin_manual_failover, "failover to a member asked: record it, then fence the primary"},
	{IDLE, primary_answers, remember_primary, "the primary answers: remember which member it is"},
	{IDLE, no_known_primary, nothing, "no primary known yet (a new cluster, or one never seen running): the healing rules act"},
	{IDLE, primary_not_failed, wait_for_timeout, "the primary is busy, or silent for less than failover.timeout_ms: wait"},
	{IDLE, no_safe_candidate, refuse_failover, "the primary failed but no standby surely has every acknowledged commit: refuse and say why (a primary whose process is gone restarts in place)"},
	{IDLE, failover_suspended, would_fail_over, "paused, or failover.automatic false: say whom it would promote, and leave the old primary stopped"},
	{IDLE, always, begin_failover, "the primary failed: record the failover, then fence it"},

	{PHASE_DEMOTE, old_primary_running, stop_old_primary, "switchover: the old primary shuts down cleanly"},
	{PHASE_DEMOTE, old_primary_has_processes, fence, "switchover: processes its postmaster left behind are killed"},
	{PHASE_DEMOTE, target_caught_up, begin_promote, "switchover: the target has the shutdown checkpoint: record the promotion"},
	{PHASE_DEMOTE, demote_timed_out, abandon, "switchover: not done in time: abandon, the old primary restarts"},
	{PHASE_DEMOTE, always, wait_catch_up, "switchover: wait for the target to receive everything"},

	{PHASE_FENCE, old_primary_has_processes, fence, "failover: kill every process of the old primary"},
	{PHASE_FENCE, standbys_not_cut, cut_standbys, "failover: fenced; every standby that answers stops receiving WAL (it follows no one, its WAL receiver ends) before a candidate is chosen"},
	{PHASE_FENCE, candidate_found, begin_promote, "failover: fenced and cut; a safe candidate is chosen from final positions: record the promotion"},
	{PHASE_FENCE, always, abandon, "failover: fenced but no safe candidate: abandon, the old primary restarts in place"},

	{PHASE_PROMOTE, old_primary_has_processes, fence, "promotion: the old primary must stay fenced"},
	{PHASE_PROMOTE, candidate_is_primary, complete, "promotion: the candidate is the primary: done"},
	{PHASE_PROMOTE, candidate_not_answering, wait_candidate, "promotion: wait for the candidate to answer, or to finish promoting"},
	{PHASE_PROMOTE, candidate_synchronous_differs, set_candidate_synchronous, "promotion: give the candidate its synchronous list first"},
	{PHASE_PROMOTE, always, promote, "promotion: promote the candidate"},
};

/* The functions of the rows by name, for operators (pghad --describe-failover and
 * pghad(8), generated from the table), one a line in alphabetical order. A row's
 * function missing here shows as a test failure of test-failover-table, never as a
 * wrong page. */
#define NAMED(function) {function, #function}
static const struct {
	bool (*function)(struct context *);
	const char *name;
} failover_function_names[] = {
	NAMED(abandon),
	NAMED(always),
	NAMED(begin_failover),
	NAMED(begin_manual_failover),
	NAMED(begin_promote),
	NAMED(begin_switchover),
	NAMED(candidate_found),
	NAMED(candidate_is_primary),
	NAMED(candidate_not_answering),
	NAMED(candidate_synchronous_differs),
	NAMED(complete),
	NAMED(cut_standbys),
	NAMED(demote_timed_out),
	NAMED(failover_suspended),
	NAMED(fence),
	NAMED(manual_failover_requested),
	NAMED(no_known_primary),
	NAMED(no_safe_candidate),
	NAMED(nothing),
	NAMED(old_primary_has_processes),
	NAMED(old_primary_running),
	NAMED(primary_answers),
	NAMED(primary_not_failed),
	NAMED(promote),
	NAMED(refuse_failover),
	NAMED(refuse_request),
	NAMED(remember_primary),
	NAMED(request_refused),
	NAMED(set_candidate_synchronous),
	NAMED(standbys_not_cut),
	NAMED(stop_old_primary),
	NAMED(switchover_requested),
	NAMED(target_caught_up),
	NAMED(wait_candidate),
	NAMED(wait_catch_up),
	NAMED(wait_for_timeout),
	NAMED(would_fail_over),
};

static const char *function_name(bool (*function)(struct context *))
{
	for (size_t i = 0; i < sizeof failover_function_names / sizeof failover_function_names[0]; i++)
		if (failover_function_names[i].function == function)
			return failover_function_names[i].name;
	return NULL;
}

size_t failover_rows(const struct failover_row **rows)
{
	static struct failover_row table[sizeof transitions / sizeof transitions[0]];
	for (size_t i = 0; i < sizeof transitions / sizeof transitions[0]; i++)
		table[i] = (struct failover_row){
			.phase = transitions[i].phase == IDLE ? "idle" : failover_phase_names[transitions[i].phase],
			.when = function_name(transitions[i].when),
			.then = function_name(transitions[i].then),
			.comment = transitions[i].comment,
		};
	*rows = table;
	return sizeof transitions / sizeof transitions[0];
}

void failover_step(const struct cluster_config *cluster, const struct cluster_observation *observation,
		   const struct cluster_state *state, const struct failover_request *request, struct failover_step *step)
{
	struct context context = {
		.cluster = cluster,
		.observation = observation,
		.state = state,
		.request = request,
		.step = step,
		.primary = observation_primary(observation),
	};

	*step = (struct failover_step){.next = *state, .member = -1, .hold = -1};
	/* each pass may move to the next phase without an action, as when the old primary
	 * is already gone; four passes reach any phase */
	for (int pass = 0; pass < 4; pass++) {
		int phase = step->next.failover.kind == FAILOVER_NONE ? IDLE : (int)step->next.failover.phase;
		const struct transition *row = NULL;
		for (size_t i = 0; i < sizeof transitions / sizeof transitions[0] && !row; i++)
			if (transitions[i].phase == phase && transitions[i].when(&context))
				row = &transitions[i];
		step->transition = row->comment;
		step->applied[step->applied_count++] = row->comment;
		if (!row->then(&context))
			break;
		if (row->then == refuse_request)
			context.request = NULL;
	}
	if (step->next.failover.kind != FAILOVER_NONE)
		step->in_progress = true;
}
