/* test-sequences: drives the real decide() through sequences of faults in a small deterministic model of a local-platform cluster, exhaustively to a bounded depth and by seeded random walks beyond it, and checks after every step that no acknowledged commit is lost and that never two members accept writes. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "decide.h"
#include "failover.h"
#include "memory.h"
#include "names.h"
#include "observe.h"
#include "state.h"
#include "syncnames.h"
#include "tap.h"

/*
 * The model. A member has a data directory, processes that run (or not), answers
 * pghad's probe (or hangs: its processes run on, serve clients and stream WAL, but the
 * probe gets no answer), and a WAL history: the records 1..flushed of the history that
 * leads to its timeline. Timelines form a tree: timeline t begins after its switchpoint
 * on its parent, so two members hold the same record at an LSN exactly when their
 * histories agree up to it. Every record is a commit.
 *
 * A standby streams from its upstream when its receiver runs (primary_conninfo names
 * the upstream), its connection is up, the upstream's processes run and hold its slot,
 * and its WAL is a prefix of the upstream's; then it receives everything at once,
 * unless its receiver is stalled (connected, receiving nothing). A primary acknowledges
 * its commits as its running synchronous_standby_names asks, from the flush positions
 * of the standbys that stream from it, exactly as PostgreSQL releases its waiters.
 *
 * A standby whose WAL goes past the point where its upstream's history left that
 * timeline has diverged: it cannot stream until it is rewound.
 *
 * pghad is the real decide(): each iteration observes the model as observe.c would,
 * decides from the state it remembers, writes the next state (intent first) and then
 * carries the actions out on the model as the local platform would.
 */

#define MAX_MEMBERS 5
#define MAX_TIMELINES 32
#define RUNNING_NAMES_SIZE 128 /* ANY 4 ("test-1", "test-2", "test-3", "test-4") fits */
#define STEADY_LSN 10
#define START_MS 1000000000LL
#define FULL_TRACES 3 /* failures printed step by step; the others as a sequence to replay */
#define MAX_PATH 512

struct timeline {
	int parent;	     /* 0: the first timeline */
	uint64_t switchpoint; /* the last record it shares with its parent */
};

struct model_member {
	bool data;	     /* its data directory exists */
	bool standby_signal; /* it starts as a standby */
	bool processes;	     /* its postmaster and children run */
	bool hung;	     /* they run, but pghad's probe gets no answer */
	bool in_recovery;    /* PostgreSQL runs it as a standby */
	bool shut_down;	     /* its last stop was clean */
	bool replication_role;
	int timeline;	   /* the history its WAL follows (a standby's: the timeline of its last record) */
	uint64_t flushed;  /* the end of its WAL: written by a primary, received and flushed by a standby */
	uint64_t received; /* pg_last_wal_receive_lsn(): 0 from its start until its receiver streams */
	int upstream;	   /* the member its primary_conninfo names, -1: none */
	bool connection_down; /* its replication connection is broken (a blip) */
	bool stalled;	      /* its receiver stays connected but receives nothing (a lag) */
	bool streaming;	      /* its receiver streams from upstream (pg_stat_wal_receiver) */
	bool caught_up;	      /* it reached its upstream's end since it connected ('streaming', not 'catchup') */
	bool slots[MAX_MEMBERS]; /* the physical slots on it, by the standby they are for */
	char synchronous[RUNNING_NAMES_SIZE]; /* synchronous_standby_names as it runs */
};

/* Everything but pghad's remembered state, small enough to copy at every step. */
struct world {
	int count;
	struct model_member members[MAX_MEMBERS];
	struct timeline timelines[MAX_TIMELINES + 1]; /* by id, from 1 */
	int timeline_count;
	/* the highest acknowledged commit per timeline (0: none): a member that holds it holds
	 * every acknowledged commit of that timeline, as acknowledgments follow WAL order */
	uint64_t acknowledged[MAX_TIMELINES + 1];
	long long now_ms;
	long long unreachable_since[MAX_MEMBERS]; /* pghad's memory (track_unreachable), lost when it restarts */
	int faults, commits;			  /* used of the search's budget */
	uint64_t state_hash;			  /* of *state, normalised; see hash_state */
	bool state_hash_known;			  /* false: to be made when needed */
	bool quiescent; /* pghad had nothing to do, and nothing happened since */
};

struct model {
	struct world world;
	struct cluster_state *state; /* what pghad remembers: written before it acts */
};

enum event_kind {
	EVENT_ITERATE,		  /* pghad: observe, decide, write the state, act */
	EVENT_CONVERGE,		  /* pghad iterates until it has nothing more to do */
	EVENT_CRASH_AFTER_INTENT, /* pghad: observe, decide, write the state, then crash before acting */
	EVENT_PGHAD_RESTART,	  /* pghad restarts: it reads its state back, forgets the rest */
	EVENT_COMMIT,		  /* a client commits on member, which accepts writes */
	EVENT_TIME,		  /* failover.timeout_ms passes */
	EVENT_DIE,		  /* member's processes are killed */
	EVENT_HANG,		  /* member stops answering pghad; its processes run on */
	EVENT_ANSWER,		  /* it answers again */
	EVENT_BLIP,		  /* member's replication connection breaks */
	EVENT_RECONNECT,	  /* and comes back */
	EVENT_STALL,		  /* member's WAL receiver stays connected but receives nothing */
	EVENT_RESUME,		  /* and receives again */
	EVENT_KIND_COUNT,
};

static const char *const event_names[] = {
	[EVENT_ITERATE] = "iterate", [EVENT_CONVERGE] = "converge", [EVENT_CRASH_AFTER_INTENT] = "crash-after-intent",
	[EVENT_PGHAD_RESTART] = "pghad-restart", [EVENT_COMMIT] = "commit", [EVENT_TIME] = "time",
	[EVENT_DIE] = "die", [EVENT_HANG] = "hang", [EVENT_ANSWER] = "answer", [EVENT_BLIP] = "blip",
	[EVENT_RECONNECT] = "reconnect", [EVENT_STALL] = "stall", [EVENT_RESUME] = "resume",
};
_Static_assert(sizeof event_names / sizeof event_names[0] == EVENT_KIND_COUNT, "a name for every event");

struct event {
	enum event_kind kind;
	int member; /* -1 for pghad's events and time */
};

/* One configuration being checked, and what the checks found. */
struct run {
	struct pgha_config *config;
	const struct cluster_config *cluster;
	char label[64]; /* "3 any 1 required": also how PGHA_SEQUENCE_REPLAY names it */
	bool verbose;	/* print every step */
	char violation[2048];
	int step; /* of the sequence being run, for the trace */
	size_t last_actions; /* how many actions the last iterate event took */
	bool last_changed;   /* and whether it changed the state */
	bool impossible;     /* a sequence replayed asked for an event that could not happen */
	unsigned long long steps, decisions;
	int promotions[MAX_MEMBERS];
	char waiting[1024]; /* what the last decision waited for */
	char *audit_list;   /* the audit's sequence: the list the primary ran before it died */
	int audit_primary;  /* and the primary at its end, -1: none */
	/* running lists as PostgreSQL reads them, the last few parsed */
	struct parsed_list {
		char text[RUNNING_NAMES_SIZE];
		bool used, valid;
		int method, number;
		int priority[MAX_MEMBERS]; /* 1 for the first name listed, 0: not listed */
		char why[256];
	} lists[16];
	unsigned list_next;
	/* the observation decide reads, filled from the model */
	struct member_observation observed[MAX_MEMBERS];
	struct replication_peer peers[MAX_MEMBERS][MAX_MEMBERS];
	char slots[MAX_MEMBERS][MAX_MEMBERS][MEMBER_NAME_SIZE];
	struct timeline_switch histories[MAX_MEMBERS][MAX_TIMELINES];
	char synchronous[MAX_MEMBERS][RUNNING_NAMES_SIZE];
	char conninfo[MAX_MEMBERS][128];
};

#define CONVERGE_ROUNDS 16

/* How often the promise was released by an asynchronous period (see
 * forgive_when_asynchronous), over the whole run, for the record. */
static unsigned long long asynchronous_periods;

static struct name {
	char text[NAMES_BUFFER_SIZE];
} name_of(int index)
{
	struct name name;
	names_member(name.text, sizeof name.text, "test", index);
	return name;
}

/* The names the hot paths use, made once. */
static char member_names[MAX_MEMBERS][MEMBER_NAME_SIZE], slot_names[MAX_MEMBERS][MEMBER_NAME_SIZE];

static void make_names(void)
{
	for (int i = 0; i < MAX_MEMBERS; i++) {
		names_member(member_names[i], sizeof member_names[i], "test", i);
		names_slot(slot_names[i], sizeof slot_names[i], "test", i);
	}
}

static bool fail(struct run *run, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Records the first violation of a sequence; false, so that callers can return it. */
static bool fail(struct run *run, const char *format, ...)
{
	va_list arguments;

	if (run->violation[0])
		return false;
	va_start(arguments, format);
	vsnprintf(run->violation, sizeof run->violation, format, arguments);
	va_end(arguments);
	return false;
}

static void bail_out(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bail_out(const char *format, ...)
{
	va_list arguments;

	printf("Bail out! ");
	va_start(arguments, format);
	vprintf(format, arguments);
	va_end(arguments);
	printf("\n");
	exit(1);
}

/* ---- WAL histories ---- */

/* The timeline that wrote the record at lsn, in the history that leads to timeline. */
static int timeline_of_record(const struct world *world, int timeline, uint64_t lsn)
{
	while (world->timelines[timeline].parent > 0 && lsn <= world->timelines[timeline].switchpoint)
		timeline = world->timelines[timeline].parent;
	return timeline;
}

/* Up to which LSN the histories that lead to timelines a and b hold the same records. */
static uint64_t fork_point(const struct world *world, int a, int b)
{
	bool in_a[MAX_TIMELINES + 1] = {false};
	uint64_t a_leaves[MAX_TIMELINES + 1];
	uint64_t end = UINT64_MAX;

	for (int t = a; t > 0; t = world->timelines[t].parent) {
		in_a[t] = true;
		a_leaves[t] = end;
		end = world->timelines[t].switchpoint;
	}
	end = UINT64_MAX;
	for (int t = b; t > 0; t = world->timelines[t].parent) {
		if (in_a[t])
			return a_leaves[t] < end ? a_leaves[t] : end;
		end = world->timelines[t].switchpoint;
	}
	return 0; /* every history begins with timeline 1 */
}

/* Member's WAL holds the record that timeline wrote at lsn. */
static bool holds(const struct world *world, int member, int timeline, uint64_t lsn)
{
	const struct model_member *m = &world->members[member];
	return m->data && lsn <= m->flushed && timeline_of_record(world, m->timeline, lsn) == timeline;
}

/* The first acknowledged commit member lacks; false when it holds them all. */
static bool lacks_acknowledged(const struct world *world, int member, int *timeline, uint64_t *lsn)
{
	for (int t = 1; t <= world->timeline_count; t++)
		if (world->acknowledged[t] && !holds(world, member, t, world->acknowledged[t])) {
			*timeline = t;
			*lsn = world->acknowledged[t];
			return true;
		}
	return false;
}

/* The WAL of standby is all in upstream's: it can stream from it. */
static bool is_prefix_of(const struct world *world, int standby, int upstream)
{
	const struct model_member *s = &world->members[standby], *u = &world->members[upstream];
	return s->flushed <= u->flushed && s->flushed <= fork_point(world, s->timeline, u->timeline);
}

/* The history file of timeline: each ancestor, oldest first, and where it ended. */
static size_t timeline_history(const struct world *world, int timeline, struct timeline_switch *history)
{
	size_t count = 0;

	for (int t = timeline; world->timelines[t].parent > 0; t = world->timelines[t].parent)
		history[count++] = (struct timeline_switch){(uint32_t)world->timelines[t].parent,
							    world->timelines[t].switchpoint};
	for (size_t i = 0; i < count / 2; i++) {
		struct timeline_switch swap = history[i];
		history[i] = history[count - 1 - i];
		history[count - 1 - i] = swap;
	}
	return count;
}

/* ---- synchronous replication, as PostgreSQL runs it ---- */

static bool is_writer(const struct world *world, int member)
{
	const struct model_member *m = &world->members[member];
	return m->data && m->processes && !m->in_recovery;
}

/* Standby has a walsender on primary (a row in primary's pg_stat_replication). */
static bool streams_from(const struct world *world, int standby, int primary)
{
	const struct model_member *s = &world->members[standby];
	return standby != primary && s->processes && s->in_recovery && s->upstream == primary && s->streaming;
}

/* What primary's running list makes of its walsenders. */
struct synchronous_view {
	bool off;
	int method, number;
	int priority[MAX_MEMBERS];  /* 1 for the first name listed, 0: not listed */
	/* that confirm commits: FIRST, the k listed in state 'streaming' of highest priority;
	 * ANY, every listed one in state 'streaming' */
	bool chosen[MAX_MEMBERS];
	int connected_listed;	     /* listed standbys that stream from it, caught up or not */
	uint64_t point;		     /* WAL confirmed as the list asks; 0: not enough standbys */
};

static const struct parsed_list *parse_running(struct run *run, const char *text)
{
	for (size_t i = 0; i < sizeof run->lists / sizeof run->lists[0]; i++)
		if (run->lists[i].used && strcmp(run->lists[i].text, text) == 0)
			return &run->lists[i];

	struct parsed_list *list = &run->lists[run->list_next++ % (sizeof run->lists / sizeof run->lists[0])];
	struct sync_spec spec;

	*list = (struct parsed_list){.used = true};
	snprintf(list->text, sizeof list->text, "%s", text);
	list->valid = syncnames_parse(text, &spec, list->why, sizeof list->why);
	if (!list->valid)
		return list;
	list->method = spec.method;
	list->number = spec.number;
	for (int member = 0; member < MAX_MEMBERS; member++)
		for (size_t i = 0; i < spec.count && !list->priority[member]; i++)
			if (syncnames_name_matches(spec.names[i], member_names[member]))
				list->priority[member] = (int)i + 1;
	sync_spec_free(&spec);
	return list;
}

static bool synchronous_view(struct run *run, const struct world *world, int primary, struct synchronous_view *view)
{
	const struct model_member *p = &world->members[primary];
	const struct parsed_list *list = parse_running(run, p->synchronous);
	int order[MAX_MEMBERS], count = 0;

	*view = (struct synchronous_view){0};
	if (!list->valid)
		return fail(run, "%s runs synchronous_standby_names = '%s', which PostgreSQL refuses: %s",
			    name_of(primary).text, p->synchronous, list->why);
	view->off = list->method == SYNC_METHOD_OFF;
	view->method = list->method;
	view->number = list->number;
	for (int s = 0; s < world->count; s++) {
		if (!streams_from(world, s, primary))
			continue;
		view->priority[s] = list->priority[s];
		if (!view->priority[s])
			continue;
		view->connected_listed++;
		if (world->members[s].caught_up)
			order[count++] = s;
	}
	/* FIRST: by priority (then walsender order, the index here); ANY: by flush, highest first */
	for (int i = 1; i < count; i++)
		for (int j = i; j > 0; j--) {
			int a = order[j - 1], b = order[j];
			bool swap = list->method == SYNC_METHOD_FIRST
					    ? view->priority[a] > view->priority[b]
					    : world->members[a].flushed < world->members[b].flushed;
			if (!swap)
				break;
			order[j - 1] = b;
			order[j] = a;
		}
	if (view->off) {
		view->point = p->flushed;
	} else if (list->method == SYNC_METHOD_FIRST) {
		uint64_t lowest = UINT64_MAX;
		for (int i = 0; i < count && i < list->number; i++) {
			view->chosen[order[i]] = true;
			if (world->members[order[i]].flushed < lowest)
				lowest = world->members[order[i]].flushed;
		}
		view->point = count >= list->number ? lowest : 0;
	} else {
		for (int i = 0; i < count; i++)
			view->chosen[order[i]] = true;
		view->point = count >= list->number ? world->members[order[list->number - 1]].flushed : 0;
	}
	return true;
}

/* A primary that could acknowledge a commit now or as soon as its standbys catch up. */
static bool accepts_writes(struct run *run, const struct world *world, int member)
{
	struct synchronous_view view;
	if (!is_writer(world, member) || !synchronous_view(run, world, member, &view))
		return false;
	return view.off || view.connected_listed >= view.number;
}

/* ---- the world moves on by itself: WAL flows, waiting commits are acknowledged ---- */

static bool can_stream(const struct world *world, int standby)
{
	const struct model_member *s = &world->members[standby];
	if (!s->processes || !s->in_recovery || s->upstream < 0 || s->upstream == standby || s->connection_down)
		return false;
	const struct model_member *u = &world->members[s->upstream];
	/* pgha always sets primary_slot_name: without the slot the upstream refuses it */
	return u->processes && u->slots[standby] && is_prefix_of(world, standby, s->upstream);
}

static void acknowledge(struct world *world, int primary, uint64_t lsn)
{
	int timeline = world->members[primary].timeline;
	/* only the primary's own commits wait on it; those before its timeline began were
	 * acknowledged, or not, by the primary that wrote them */
	if (lsn && timeline_of_record(world, timeline, lsn) == timeline && lsn > world->acknowledged[timeline])
		world->acknowledged[timeline] = lsn;
}

/* After every step: WAL flows to every standby that can stream, down cascades, until
 * nothing moves; then each primary acknowledges what its running list allows. */
static bool settle(struct run *run, struct world *world)
{
	for (int round = 0; round <= world->count; round++) {
		bool changed = false;
		for (int s = 0; s < world->count; s++) {
			struct model_member *m = &world->members[s];
			struct model_member before = *m;
			m->streaming = can_stream(world, s);
			if (m->streaming) {
				const struct model_member *u = &world->members[m->upstream];
				if (!m->stalled) {
					m->flushed = u->flushed;
					m->timeline = u->timeline;
				}
				m->received = m->flushed;
				m->caught_up |= m->flushed == u->flushed;
			} else {
				m->caught_up = false;
			}
			if (m->in_recovery)
				m->timeline = timeline_of_record(world, m->timeline, m->flushed);
			changed |= m->streaming != before.streaming || m->flushed != before.flushed ||
				   m->timeline != before.timeline || m->caught_up != before.caught_up;
		}
		if (!changed)
			break;
	}
	for (int p = 0; p < world->count; p++) {
		struct synchronous_view view;
		if (!is_writer(world, p))
			continue;
		if (!synchronous_view(run, world, p, &view))
			return false;
		/* with synchronous.required false, what is acknowledged without any standby is
		 * asynchronous: pgha does not promise to keep it */
		if (!view.off || run->cluster->synchronous.required)
			acknowledge(world, p, view.point < world->members[p].flushed ? view.point : world->members[p].flushed);
	}
	return true;
}

/* ---- what pghad sees: the observation, as observe.c and the daemon fill it ---- */

/* Every field is set at every call (the buffers are reused): one the model does not
 * know stays as calloc left it, 0. */
static void observe_model(struct run *run, struct model *model, struct cluster_observation *observation)
{
	struct world *world = &model->world;

	*observation = (struct cluster_observation){.members = run->observed, .count = (size_t)world->count,
						    .now_ms = world->now_ms};
	for (int i = 0; i < world->count; i++) {
		const struct model_member *m = &world->members[i];
		struct member_observation *o = &run->observed[i];

		/* from the platform */
		o->index = i;
		memcpy(o->name, member_names[i], sizeof o->name);
		o->data_exists = m->data;
		o->data_unusable = false;
		o->standby_signal = m->standby_signal;
		o->postmaster = m->processes ? 4000 + i : 0;
		o->postmaster_exited = false;
		o->live_processes = m->processes ? 1 : 0;
		/* pg_control, of a stopped member without standby.signal */
		bool stopped_primary = m->data && !m->standby_signal && !m->processes;
		o->checkpoint_lsn = stopped_primary ? m->flushed : 0;
		o->shut_down = stopped_primary && m->shut_down;
		o->timeline = stopped_primary ? (uint32_t)m->timeline : 0;
		o->address[0] = '\0';
		o->busy = false; /* the model's operations are over at once */
		o->settings_current = true;
		/* from the probe */
		o->reachable = m->processes && !m->hung;
		o->error[0] = '\0';
		o->in_recovery = o->reachable && m->in_recovery;
		o->lsn = o->receive_lsn = 0;
		o->streaming = o->receiving = o->pending_restart = o->lowers_standby_sensitive = false;
		o->replication_role = o->replication_role_exists = false;
		o->receiver_pid = 0;
		o->wal_timeline = 0;
		o->history = run->histories[i];
		o->history_count = 0;
		o->synchronous_standby_names = run->synchronous[i];
		o->primary_conninfo = run->conninfo[i];
		o->overridden[0] = o->synchronous_standby_names[0] = o->primary_conninfo[0] = o->primary_slot_name[0] = '\0';
		o->upstream = -1;
		o->follow_settings_current = false;
		o->peers = run->peers[i];
		o->peer_count = 0;
		o->slots = run->slots[i];
		o->slot_count = 0;
		/* the daemon's track_unreachable: from the first probe that failed */
		if (!m->processes || !m->hung)
			world->unreachable_since[i] = 0;
		else if (!world->unreachable_since[i])
			world->unreachable_since[i] = world->now_ms;
		o->unreachable_ms = m->processes && m->hung ? world->now_ms - world->unreachable_since[i] : 0;
		if (!o->reachable) {
			snprintf(o->error, sizeof o->error, "%s", m->processes ? "timeout" : "not running");
			continue;
		}
		o->timeline = (uint32_t)m->timeline;
		o->lsn = m->flushed; /* a standby replays what it flushed at once */
		o->receive_lsn = m->received;
		o->streaming = m->in_recovery && m->streaming;
		/* pg_stat_wal_receiver has a row whatever the receiver's state: while the
		 * standby has an upstream, its startup process keeps starting one */
		o->receiving = m->in_recovery && m->upstream >= 0;
		o->receiver_pid = o->receiving ? 5000 + i : 0;
		o->replication_role = o->replication_role_exists = m->replication_role;
		/* the timeline of its WAL: a primary's own; a standby's latest segment's, that
		 * of its last record here */
		o->wal_timeline = (uint32_t)m->timeline;
		if (!m->in_recovery)
			o->history_count = timeline_history(world, m->timeline, run->histories[i]);
		memcpy(o->synchronous_standby_names, m->synchronous, sizeof run->synchronous[i]);
		if (m->in_recovery && m->upstream >= 0) {
			snprintf(o->primary_conninfo, sizeof run->conninfo[i], "host=model port=%d application_name=%s",
				 5432 + m->upstream, o->name);
			memcpy(o->primary_slot_name, slot_names[i], sizeof o->primary_slot_name);
			o->upstream = m->upstream;
			o->follow_settings_current = true;
		}
		struct synchronous_view view = {0};
		if (!m->in_recovery && !synchronous_view(run, world, i, &view))
			memset(&view, 0, sizeof view);
		for (int s = 0; s < world->count; s++) {
			if (!streams_from(world, s, i))
				continue;
			struct replication_peer *peer = &run->peers[i][o->peer_count++];
			*peer = (struct replication_peer){.flush_lsn = world->members[s].flushed,
							  .replay_lsn = world->members[s].flushed};
			memcpy(peer->application_name, member_names[s], sizeof peer->application_name);
			snprintf(peer->state, sizeof peer->state, "%s", world->members[s].caught_up ? "streaming" : "catchup");
			/* as pg_stat_replication says it: a cascading walsender is always async */
			const char *sync_state = "async";
			if (!m->in_recovery && view.priority[s])
				sync_state = !view.chosen[s]			     ? "potential"
					     : view.method == SYNC_METHOD_FIRST ? "sync"
										: "quorum";
			snprintf(peer->sync_state, sizeof peer->sync_state, "%s", sync_state);
		}
		for (int s = 0; s < world->count; s++)
			if (m->slots[s])
				memcpy(run->slots[i][o->slot_count++], slot_names[s], MEMBER_NAME_SIZE);
	}
}

/* ---- pghad's actions, carried out on the model as the local platform does ---- */

static bool act(struct run *run, struct model *model, const struct action *action)
{
	struct world *world = &model->world;

	if (action->member < 0 || action->member >= world->count)
		return fail(run, "%s names member %d, which does not exist", action_type_names[action->type], action->member);
	struct model_member *m = &world->members[action->member];
	int index = action->member;
	bool answers = m->processes && !m->hung;

	switch (action->type) {
	case ACTION_FENCE:
		/* SIGKILL of every process, hung or not */
		m->processes = m->hung = m->streaming = false;
		return true;
	case ACTION_PROMOTE: {
		if (!answers || !m->in_recovery)
			return true; /* pg_promote() fails; decide sees it next time */
		int timeline;
		uint64_t lsn;
		run->promotions[index]++;
		if (lacks_acknowledged(world, index, &timeline, &lsn))
			return fail(run,
				    "invariant 3: %s is promoted but lacks the commit acknowledged at LSN %llu on timeline %d "
				    "(its WAL ends at %llu on timeline %d)",
				    name_of(index).text, (unsigned long long)lsn, timeline, (unsigned long long)m->flushed,
				    m->timeline);
		if (world->timeline_count == MAX_TIMELINES)
			bail_out("the model has no room for a timeline beyond %d", MAX_TIMELINES);
		int next = ++world->timeline_count;
		world->timelines[next] = (struct timeline){.parent = m->timeline, .switchpoint = m->flushed};
		m->timeline = next;
		m->in_recovery = m->standby_signal = m->streaming = m->caught_up = false;
		/* a primary follows no one: act.c removes its standby settings once promoted */
		m->upstream = -1;
		return true;
	}
	case ACTION_SET_SYNCHRONOUS:
		if (!answers)
			return true; /* the reload fails */
		if (strlen(action->text) >= sizeof m->synchronous)
			bail_out("the model keeps synchronous_standby_names of up to %zu bytes, not '%s'",
				 sizeof m->synchronous - 1, action->text);
		/* a standby keeps it too, and runs it once promoted */
		snprintf(m->synchronous, sizeof m->synchronous, "%s", action->text);
		return true;
	case ACTION_CUT:
		if (!answers)
			return true; /* the reload fails; the receiver is not touched */
		/* primary_conninfo '' and reloaded, then the WAL receiver ended: it receives
		 * nothing more and no receiver starts again; what it has is final */
		m->upstream = -1;
		m->streaming = m->caught_up = false;
		return true;
	case ACTION_FOLLOW:
		if (action->source < 0 || action->source >= world->count)
			return fail(run, "follow %s to member %d, which does not exist", name_of(index).text, action->source);
		/* the settings are written and reloaded; the receiver reconnects to source */
		m->upstream = action->source;
		m->streaming = m->caught_up = false;
		return true;
	case ACTION_START:
		if (m->processes || !m->data)
			return true; /* local_start refuses */
		m->processes = true;
		m->hung = false;
		m->in_recovery = m->standby_signal;
		m->shut_down = false;
		m->received = 0;
		m->streaming = m->caught_up = false;
		return true;
	case ACTION_STOP:
		if (!answers)
			return true;
		m->processes = m->streaming = false;
		m->shut_down = !m->in_recovery;
		return true;
	case ACTION_RESTART:
		if (!answers)
			return true;
		m->shut_down = false;
		m->received = 0;
		m->in_recovery = m->standby_signal;
		m->streaming = m->caught_up = false;
		return true;
	case ACTION_REJOIN: {
		int source = action->source;
		if (source < 0 || source >= world->count)
			return fail(run, "rejoin %s to member %d, which does not exist", name_of(index).text, source);
		if (m->processes) {
			/* a diverged standby still runs: a fast shutdown first, then the rewind */
			if (!answers)
				return true;
			m->processes = m->streaming = m->caught_up = false;
		}
		if (!world->members[source].processes || world->members[source].hung)
			return true; /* pg_rewind needs the source answering: it stays stopped */
		/* pg_rewind: nothing to do unless its WAL goes past the fork point; then its
		 * history is replaced from there by the source's, up to the source's end */
		if (m->flushed > fork_point(world, m->timeline, world->members[source].timeline)) {
			m->flushed = world->members[source].flushed;
			m->timeline = timeline_of_record(world, world->members[source].timeline, m->flushed);
		}
		memset(m->slots, 0, sizeof m->slots); /* pg_rewind leaves pg_replslot out */
		m->standby_signal = true;
		m->shut_down = false;
		m->upstream = source;
		return true;
	}
	case ACTION_CLONE: {
		int source = action->source;
		if (source < 0 || source >= world->count)
			return fail(run, "clone %s from member %d, which does not exist", name_of(index).text, source);
		if (m->processes || !world->members[source].processes)
			return true;
		m->data = m->standby_signal = true;
		m->flushed = world->members[source].flushed;
		m->timeline = timeline_of_record(world, world->members[source].timeline, m->flushed);
		memset(m->slots, 0, sizeof m->slots);
		m->upstream = source;
		m->replication_role = world->members[source].replication_role;
		return true;
	}
	case ACTION_CREATE_SLOT:
		if (action->source < 0 || action->source >= world->count)
			return fail(run, "create-slot on %s for member %d, which does not exist", name_of(index).text,
				    action->source);
		if (answers)
			m->slots[action->source] = true;
		return true;
	case ACTION_DROP_SLOT: {
		int owner;
		if (sscanf(action->text, "test_%d", &owner) == 1 && owner >= 0 && owner < world->count && answers)
			m->slots[owner] = false;
		return true;
	}
	case ACTION_CREATE_REPLICATION_ROLE:
	case ACTION_ALTER_REPLICATION_ROLE:
		/* a role is replicated: every member that follows this one has it too */
		if (answers)
			for (int i = 0; i < world->count; i++)
				world->members[i].replication_role = true;
		return true;
	case ACTION_CONFIGURE:
	case ACTION_RESET_OVERRIDES:
		return true; /* the model's settings are always current */
	case ACTION_INITIALIZE:
	case ACTION_MOVE_ASIDE:
		/* the model never loses every data directory nor holds an unusable one */
		return fail(run, "%s %s: an action this cluster never calls for", action_type_names[action->type],
			    name_of(index).text);
	}
	/* with every action type handled above, -Wswitch stops the build when a new one
	 * appears; this catches a value out of the enumeration */
	bail_out("the model does not know the action type %d on %s", (int)action->type, name_of(index).text);
}

/* ---- the trace ---- */

static void print_world(struct run *run, const struct model *model)
{
	const struct world *world = &model->world;
	char line[2048];
	size_t length = 0;

	for (int i = 0; i < world->count; i++) {
		const struct model_member *m = &world->members[i];
		const char *role = !m->data		  ? "no data"
				   : !m->processes	  ? (m->standby_signal ? "down standby" : "down primary")
				   : m->in_recovery	  ? "standby"
							  : "primary";
		length += (size_t)snprintf(line + length, sizeof line - length, "%s%s %s%s tl%d wal %llu", i ? " | " : "",
					   name_of(i).text, role, m->hung ? " hung" : "", m->timeline,
					   (unsigned long long)m->flushed);
		if (length >= sizeof line)
			break;
		if (m->processes && m->in_recovery)
			length += (size_t)snprintf(line + length, sizeof line - length, " %s %s%s%s",
						   m->upstream >= 0 ? name_of(m->upstream).text : "no upstream",
						   m->streaming ? "streaming" : "not streaming",
						   m->connection_down ? " (connection down)" : "", m->stalled ? " (stalled)" : "");
		else if (m->processes)
			length += (size_t)snprintf(line + length, sizeof line - length, " runs '%s'%s", m->synchronous,
						   accepts_writes(run, world, i) ? " accepts writes" : "");
		if (length >= sizeof line)
			break;
	}
	printf("#       world: %s\n", line);
	length = 0;
	line[0] = '\0';
	for (int t = 1; t <= world->timeline_count && length < sizeof line; t++)
		if (world->acknowledged[t])
			length += (size_t)snprintf(line + length, sizeof line - length, "%stl%d up to %llu", length ? ", " : "",
						   t, (unsigned long long)world->acknowledged[t]);
	printf("#       acknowledged: %s\n", line[0] ? line : "nothing");
}

static void print_observation(const struct cluster_observation *observation)
{
	for (size_t i = 0; i < observation->count; i++) {
		const struct member_observation *o = &observation->members[i];
		char line[2048];
		size_t length = (size_t)snprintf(line, sizeof line, "%s:", o->name);

		if (!o->reachable) {
			length += (size_t)snprintf(line + length, sizeof line - length, " %s, postmaster %ld, %s%s",
						   o->error, (long)o->postmaster,
						   o->data_exists ? "data" : "no data",
						   o->standby_signal ? ", standby.signal" : "");
			if (o->unreachable_ms)
				length += (size_t)snprintf(line + length, sizeof line - length, ", unreachable %lld ms",
							   o->unreachable_ms);
			if (o->timeline)
				length += (size_t)snprintf(line + length, sizeof line - length, ", pg_control tl%u at %llu",
							   o->timeline, (unsigned long long)o->checkpoint_lsn);
		} else if (o->in_recovery) {
			length += (size_t)snprintf(line + length, sizeof line - length,
						   " standby tl%u lsn %llu receive %llu %s upstream %d runs '%s'", o->timeline,
						   (unsigned long long)o->lsn, (unsigned long long)o->receive_lsn,
						   o->streaming ? "streaming" : "not streaming", o->upstream,
						   o->synchronous_standby_names);
		} else {
			length += (size_t)snprintf(line + length, sizeof line - length, " primary tl%u lsn %llu runs '%s' peers",
						   o->timeline, (unsigned long long)o->lsn, o->synchronous_standby_names);
			for (size_t p = 0; p < o->peer_count && length < sizeof line; p++)
				length += (size_t)snprintf(line + length, sizeof line - length, " %s %s/%s@%llu",
							   o->peers[p].application_name, o->peers[p].state,
							   o->peers[p].sync_state, (unsigned long long)o->peers[p].flush_lsn);
			if (!o->peer_count && length < sizeof line)
				length += (size_t)snprintf(line + length, sizeof line - length, " none");
		}
		printf("#       observed %s\n", line);
	}
}

static void print_decision(const struct action_list *actions, const struct cluster_state *state)
{
	if (!actions->count)
		printf("#       actions: none\n");
	for (size_t i = 0; i < actions->count; i++) {
		const struct action *action = &actions->items[i];
		printf("#       action: %s %s", action_type_names[action->type], name_of(action->member).text);
		if (action->source >= 0)
			printf(" (source %s)", name_of(action->source).text);
		if (action->type == ACTION_SET_SYNCHRONOUS)
			printf(" '%s'", action->text);
		printf(": %s\n", action->reason);
	}
	if (actions->waiting[0])
		printf("#       waiting: %s\n", actions->waiting);
	printf("#       state: primary %d, synchronous '%s', previous '%s'%s", state->primary, state->synchronous,
	       state->previous, state->synchronous_known ? "" : " (unknown)");
	if (state->failover.kind != FAILOVER_NONE)
		printf(", %s failover in phase %s from %d to %d", failover_kind_names[state->failover.kind],
		       failover_phase_names[state->failover.phase], state->failover.from, state->failover.to);
	printf("\n");
}

/* ---- the steps ---- */

/* pghad's state, normalised so that equal futures hash alike: the text that only
 * informs people (the last outcome, the failover's reason) is left out, strings count
 * up to their end, and the start of a failover is made relative. Every other byte is
 * hashed as it is, so a field added to the state later is hashed too; at worst bytes
 * that do not matter (padding) make two equal states look different, which costs
 * exploration, never a state left unexplored. */
static uint64_t hash_text(uint64_t hash, const char *text);
static uint64_t mix(uint64_t hash, uint64_t value);

static uint64_t hash_state(const struct cluster_state *state, long long now_ms)
{
	static const struct {
		size_t offset, size;
		bool text; /* hashed up to its end; false: left out */
	} strings[] = {
		{offsetof(struct cluster_state, synchronous), sizeof state->synchronous, true},
		{offsetof(struct cluster_state, previous), sizeof state->previous, true},
		{offsetof(struct cluster_state, failover.reason), sizeof state->failover.reason, false},
		{offsetof(struct cluster_state, last), sizeof state->last, false},
	};
	const size_t string_count = sizeof strings / sizeof strings[0];
	const size_t started = offsetof(struct cluster_state, failover.started_ms);
	const unsigned char *bytes = (const unsigned char *)state;
	/* the start of a failover as its age, capped: past every timeout all ages are one */
	long long age = state->failover.kind == FAILOVER_NONE ? 0 : now_ms - state->failover.started_ms;
	age = age > 60001 ? 60001 : age;
	uint64_t hash = 0x5eed;
	size_t at = 0;

	for (size_t i = 0; i <= string_count; i++) {
		size_t until = i < string_count ? strings[i].offset : sizeof *state;
		for (size_t j = at; j < until; j++) {
			unsigned char byte = j >= started && j < started + sizeof age
						     ? ((const unsigned char *)&age)[j - started]
						     : bytes[j];
			hash = mix(hash, (uint64_t)byte << 32 | j);
		}
		if (i == string_count)
			break;
		if (strings[i].text)
			hash = hash_text(hash, (const char *)bytes + strings[i].offset);
		at = strings[i].offset + strings[i].size;
	}
	return hash;
}

/* One iteration of pghad's loop; acting false: it crashes once the intent is written. */
static bool iterate(struct run *run, struct model *model, struct cluster_state *scratch, bool acting,
		    size_t *action_count, bool *changed)
{
	struct cluster_observation observation;
	struct action_list actions;
	bool ok = true;

	observe_model(run, model, &observation);
	decide(run->cluster, &observation, model->state, NULL, &actions);
	run->decisions++;
	if (action_count)
		*action_count = actions.count;
	snprintf(run->waiting, sizeof run->waiting, "%s", actions.waiting);
	/* intent first: daemon.c writes the state when it differs, then acts */
	*changed = !state_equal(model->state, &actions.next_state);
	if (*changed) {
		*scratch = actions.next_state;
		model->state = scratch;
	}
	if (run->verbose) {
		print_observation(&observation);
		print_decision(&actions, model->state);
	}
	for (size_t i = 0; acting && ok && i < actions.count; i++)
		ok = act(run, model, &actions.items[i]);
	action_list_free(&actions);
	return ok;
}

static void forget_daemon_memory(struct world *world)
{
	memset(world->unreachable_since, 0, sizeof world->unreachable_since);
}

/* With synchronous.required false, pgha lets the list go empty when no standby
 * streams, and says so in its state: from then on, and until a list runs again, the
 * cluster is asynchronous and a failover may lose what was acknowledged (failover.c,
 * failover_choose). Never while a failover is under way: its choice was made under
 * the lists before. */
static void forgive_when_asynchronous(struct run *run, struct model *model)
{
	const struct cluster_state *state = model->state;
	struct world *world = &model->world;
	bool empty_primary = false;

	if (run->cluster->synchronous.required || state->failover.kind != FAILOVER_NONE || !state->synchronous_known ||
	    state->synchronous[0] || state->previous[0])
		return;
	for (int i = 0; i < world->count; i++)
		empty_primary |= is_writer(world, i) && !world->members[i].synchronous[0];
	if (!empty_primary)
		return;
	for (int t = 1; t <= world->timeline_count; t++)
		if (world->acknowledged[t]) {
			world->acknowledged[t] = 0;
			asynchronous_periods++;
		}
}

static bool check_invariants(struct run *run, const struct model *model)
{
	const struct world *world = &model->world;
	const struct cluster_state *state = model->state;
	int accepting = 0, writers = 0, timeline;
	char names[256] = "";
	size_t length = 0;
	uint64_t lsn;

	for (int i = 0; i < world->count; i++) {
		if (!is_writer(world, i))
			continue;
		writers++;
		if (accepts_writes(run, world, i)) {
			accepting++;
			length += (size_t)snprintf(names + length, sizeof names - length, "%s%s", length ? ", " : "",
						   name_of(i).text);
		}
		if (run->violation[0])
			return false;
	}
	if (accepting > 1)
		return fail(run, "invariant 2: %d members accept writes: %s", accepting, names);
	for (int i = 0; i < world->count; i++)
		if (is_writer(world, i) && lacks_acknowledged(world, i, &timeline, &lsn))
			return fail(run, "invariant 1: %s is a primary but lacks the commit acknowledged at LSN %llu on timeline %d",
				    name_of(i).text, (unsigned long long)lsn, timeline);
	if (!writers && state->failover.kind != FAILOVER_NONE && state->failover.phase == PHASE_PROMOTE &&
	    state->failover.to >= 0 && state->failover.to < world->count &&
	    lacks_acknowledged(world, state->failover.to, &timeline, &lsn))
		return fail(run,
			    "invariant 1: %s, chosen for promotion, lacks the commit acknowledged at LSN %llu on timeline %d",
			    name_of(state->failover.to).text, (unsigned long long)lsn, timeline);
	return true;
}

static int timeout_ms(const struct run *run)
{
	return run->cluster->failover.timeout_ms;
}

static bool apply_event(struct run *run, struct model *model, struct event event, struct cluster_state *scratch)
{
	struct world *world = &model->world;
	struct model_member *m = event.member >= 0 ? &world->members[event.member] : NULL;
	long long now_before = world->now_ms;
	bool ok = true, changed = false;

	run->step++;
	run->steps++;
	if (run->verbose)
		printf("#   step %d: %s%s%s\n", run->step, event_names[event.kind], m ? " " : "",
		       m ? name_of(event.member).text : "");
	switch (event.kind) {
	case EVENT_ITERATE:
		ok = iterate(run, model, scratch, true, &run->last_actions, &run->last_changed);
		changed = run->last_changed;
		break;
	case EVENT_CONVERGE:
		for (int round = 0; ok; round++) {
			size_t actions;
			bool changed_now;
			if (round == CONVERGE_ROUNDS) {
				ok = fail(run, "liveness: pghad still acts after %d iterations", CONVERGE_ROUNDS);
				break;
			}
			/* between iterations the world moves on (WAL flows, commits are acknowledged) */
			ok = iterate(run, model, scratch, true, &actions, &changed_now) && settle(run, world) &&
			     check_invariants(run, model);
			changed |= changed_now;
			if (!actions && !changed_now)
				break;
		}
		break;
	case EVENT_CRASH_AFTER_INTENT:
		ok = iterate(run, model, scratch, false, NULL, &changed);
		forget_daemon_memory(world);
		world->faults++;
		break;
	case EVENT_PGHAD_RESTART: {
		/* it reads back what it wrote */
		char *text = state_format(model->state), why[512];
		if (!text || !state_parse(text, "state", scratch, why, sizeof why))
			bail_out("the state does not read back: %s", text ? why : "cannot format it");
		free(text);
		model->state = scratch;
		changed = true;
		forget_daemon_memory(world);
		world->faults++;
		break;
	}
	case EVENT_COMMIT:
		m->flushed++;
		world->commits++;
		break;
	case EVENT_TIME:
		world->now_ms += timeout_ms(run) + 1;
		break;
	case EVENT_DIE:
		m->processes = m->hung = m->streaming = false;
		world->faults++;
		break;
	case EVENT_HANG:
		m->hung = true;
		world->faults++;
		break;
	case EVENT_ANSWER:
		m->hung = false;
		world->faults++;
		break;
	case EVENT_BLIP:
		m->connection_down = true;
		world->faults++;
		break;
	case EVENT_RECONNECT:
		m->connection_down = false;
		world->faults++;
		break;
	case EVENT_STALL:
		m->stalled = true;
		world->faults++;
		break;
	case EVENT_RESUME:
		m->stalled = false;
		world->faults++;
		break;
	case EVENT_KIND_COUNT:
		bail_out("no such event");
	}
	ok = ok && settle(run, world);
	if (ok) {
		forgive_when_asynchronous(run, model);
		ok = check_invariants(run, model);
	}
	if (changed || world->now_ms != now_before)
		world->state_hash_known = false;
	world->quiescent = (event.kind == EVENT_ITERATE && !run->last_actions && !run->last_changed) ||
			   event.kind == EVENT_CONVERGE;
	if (run->verbose) {
		print_world(run, model);
		if (!ok)
			printf("#   VIOLATION: %s\n", run->violation);
	}
	return ok;
}

/* What may happen next. limits (NULL: none) bound faults and commits in the search. */
struct limits {
	int depth, faults, commits;
};

static size_t list_events(const struct run *run, const struct model *model, const struct limits *limits,
			  struct event *events)
{
	const struct world *world = &model->world;
	bool faults_left = !limits || world->faults < limits->faults;
	bool commits_left = !limits || world->commits < limits->commits;
	bool remembered = false, time_matters = false;
	size_t count = 0;

	for (int i = 0; i < world->count; i++) {
		remembered |= world->unreachable_since[i] != 0;
		time_matters |= world->unreachable_since[i] != 0 &&
				world->now_ms - world->unreachable_since[i] <= timeout_ms(run);
	}
	events[count++] = (struct event){EVENT_ITERATE, -1}; /* first: explore relies on it */
	events[count++] = (struct event){EVENT_CONVERGE, -1};
	if (faults_left)
		events[count++] = (struct event){EVENT_CRASH_AFTER_INTENT, -1};
	if (faults_left && remembered)
		events[count++] = (struct event){EVENT_PGHAD_RESTART, -1};
	if (time_matters)
		events[count++] = (struct event){EVENT_TIME, -1};
	for (int i = 0; i < world->count; i++) {
		const struct model_member *m = &world->members[i];
		if (commits_left && is_writer(world, i))
			events[count++] = (struct event){EVENT_COMMIT, i};
		if (!faults_left)
			continue;
		if (m->processes)
			events[count++] = (struct event){EVENT_DIE, i};
		if (m->processes && !m->hung)
			events[count++] = (struct event){EVENT_HANG, i};
		if (m->hung)
			events[count++] = (struct event){EVENT_ANSWER, i};
		if (m->processes && m->in_recovery && m->upstream >= 0 && !m->connection_down)
			events[count++] = (struct event){EVENT_BLIP, i};
		if (m->connection_down)
			events[count++] = (struct event){EVENT_RECONNECT, i};
		if (m->processes && m->in_recovery && !m->stalled)
			events[count++] = (struct event){EVENT_STALL, i};
		if (m->stalled)
			events[count++] = (struct event){EVENT_RESUME, i};
	}
	return count;
}

/* ---- the steady state every sequence starts from ---- */

/* A healthy cluster at lsn, as pghad leaves it: member 0 the primary running the list
 * decide publishes, every standby streaming from it, everything acknowledged. */
static void steady_state(struct run *run, struct model *model, struct cluster_state *state, uint64_t lsn)
{
	struct world *world = &model->world;
	bool verbose = run->verbose;

	*world = (struct world){.count = run->cluster->replicas, .timeline_count = 1, .now_ms = START_MS};
	world->timelines[1] = (struct timeline){.parent = 0, .switchpoint = 0};
	for (int i = 0; i < world->count; i++) {
		struct model_member *m = &world->members[i];
		*m = (struct model_member){.data = true, .processes = true, .in_recovery = i > 0, .standby_signal = i > 0,
					   .replication_role = true, .timeline = 1, .flushed = lsn, .upstream = i > 0 ? 0 : -1};
		if (i > 0)
			world->members[0].slots[i] = true;
	}
	state_init(state);
	model->state = state;
	run->verbose = false;
	if (!settle(run, world))
		bail_out("%s: the steady state does not settle: %s", run->label, run->violation);
	for (int round = 0;; round++) {
		size_t actions;
		bool changed;
		if (round == 10 || !iterate(run, model, state, true, &actions, &changed) || !settle(run, world))
			bail_out("%s: pghad does not bring the model to a steady state: %s", run->label, run->violation);
		if (!actions && !changed)
			break;
	}
	run->verbose = verbose;
	for (int i = 1; i < world->count; i++)
		if (!world->members[i].streaming)
			bail_out("%s: in the steady state %s does not stream", run->label, name_of(i).text);
	if (!world->members[0].synchronous[0])
		bail_out("%s: in the steady state the primary runs no synchronous list", run->label);
	world->acknowledged[1] = lsn;
	run->step = 0;
	run->violation[0] = '\0';
	memset(run->promotions, 0, sizeof run->promotions);
}

/* ---- configurations ---- */

static void load_run(struct run *run, int replicas, int method, int number, bool required)
{
	struct diag_list errors = {0};
	char *text = xasprintf("clusters = ( { name = \"test\"; replicas = %d; synchronous = { method = \"%s\"; "
			       "number = %d; required = %s; }; } );",
			       replicas, method == SYNC_METHOD_FIRST ? "first" : "any", number, required ? "true" : "false");

	*run = (struct run){0};
	run->config = config_load_string(text, "sequences.conf", &errors);
	for (size_t i = 0; i < errors.count; i++)
		diag("%s", errors.messages[i]);
	diag_free(&errors);
	free(text);
	if (!run->config)
		bail_out("cannot load the configuration of %d members", replicas);
	run->cluster = &run->config->clusters[0];
	snprintf(run->label, sizeof run->label, "%d %s %d %s", replicas, method == SYNC_METHOD_FIRST ? "first" : "any",
		 number, required ? "required" : "optional");
}

static struct run *new_run(int replicas, int method, int number, bool required)
{
	struct run *run = xcalloc(1, sizeof *run);
	load_run(run, replicas, method, number, required);
	return run;
}

static void free_run(struct run *run)
{
	config_free(run->config);
	free(run);
}

/* "3 any 1 required" */
static struct run *run_from_label(const char *label)
{
	char method[16], required[16];
	int replicas, number;

	if (sscanf(label, "%d %15s %d %15s", &replicas, method, &number, required) != 4 ||
	    (strcmp(method, "any") != 0 && strcmp(method, "first") != 0) ||
	    (strcmp(required, "required") != 0 && strcmp(required, "optional") != 0) || replicas < 2 ||
	    replicas > MAX_MEMBERS)
		bail_out("'%s' is not a configuration such as '3 any 1 required'", label);
	return new_run(replicas, strcmp(method, "first") == 0 ? SYNC_METHOD_FIRST : SYNC_METHOD_ANY, number,
		       strcmp(required, "required") == 0);
}

/* ---- sequences: as text, to replay; step by step ---- */

static void format_sequence(const struct event *events, size_t count, char *out, size_t size)
{
	size_t length = 0;
	out[0] = '\0';
	for (size_t i = 0; i < count && length < size; i++)
		if (events[i].member >= 0)
			length += (size_t)snprintf(out + length, size - length, "%s%s:%d", i ? " " : "",
						   event_names[events[i].kind], events[i].member);
		else
			length += (size_t)snprintf(out + length, size - length, "%s%s", i ? " " : "",
						   event_names[events[i].kind]);
}

static size_t parse_sequence(const char *text, struct event *events, size_t capacity)
{
	size_t count = 0;
	char word[64];
	int used;

	while (sscanf(text, " %63s%n", word, &used) == 1) {
		char *colon = strchr(word, ':');
		int member = -1;
		text += used;
		if (colon) {
			*colon = '\0';
			member = atoi(colon + 1);
		}
		int kind = 0;
		while (kind < EVENT_KIND_COUNT && strcmp(event_names[kind], word) != 0)
			kind++;
		if (kind == EVENT_KIND_COUNT || count == capacity || (member < 0) != (kind < EVENT_COMMIT || kind == EVENT_TIME) ||
		    member >= MAX_MEMBERS)
			bail_out("'%s' is not an event such as iterate, commit:0 or blip:2", word);
		events[count++] = (struct event){(enum event_kind)kind, member};
	}
	return count;
}

static bool is_possible(const struct run *run, const struct model *model, struct event event)
{
	struct event events[4 * MAX_MEMBERS * EVENT_KIND_COUNT];
	size_t count = list_events(run, model, NULL, events);
	for (size_t i = 0; i < count; i++)
		if (events[i].kind == event.kind && events[i].member == event.member)
			return true;
	return false;
}

/* Runs events from the steady state; false at the first violation (run->violation). */
static bool run_sequence(struct run *run, const struct event *events, size_t count, size_t *done)
{
	struct cluster_state *states = xcalloc(2, sizeof *states);
	struct model model;
	bool ok = true;
	size_t i;

	steady_state(run, &model, &states[0], STEADY_LSN);
	if (run->verbose) {
		printf("#   %s, the steady state:\n", run->label);
		print_world(run, &model);
	}
	for (i = 0; i < count && ok; i++) {
		if (!is_possible(run, &model, events[i])) {
			run->impossible = true;
			ok = fail(run, "step %zu, %s%s%s, cannot happen here", i + 1, event_names[events[i].kind],
				  events[i].member >= 0 ? " " : "", events[i].member >= 0 ? name_of(events[i].member).text : "");
			break;
		}
		/* two buffers in turn: the new state never overwrites the one decided from */
		struct cluster_state *scratch = model.state == &states[0] ? &states[1] : &states[0];
		ok = apply_event(run, &model, events[i], scratch);
	}
	if (done)
		*done = i;
	free(states);
	return ok;
}

/* Whether events, from the steady state, break the invariant violation names; *done:
 * the events up to the one that breaks it. */
static bool breaks_the_same(const char *label, const char *violation, const struct event *events, size_t count,
			    size_t *done)
{
	struct run *run = run_from_label(label);
	size_t invariant_length = strcspn(violation, ":");
	bool same = !run_sequence(run, events, count, done) && !run->impossible &&
		    strncmp(run->violation, violation, invariant_length + 1) == 0;
	free_run(run);
	return same;
}

/* The same violation (its invariant) from a shorter sequence: events are dropped one or
 * two at a time while the sequence still breaks the same invariant, and a run of single
 * iterations becomes one converge where that does too. Returns the new count. */
static size_t shrink_sequence(const char *label, const char *violation, struct event *events, size_t count)
{
	struct event *candidate = xcalloc(count ? count : 1, sizeof *candidate);
	size_t done;
	bool shorter = true;

	while (shorter) {
		shorter = false;
		for (size_t drop = 0; drop < count;) {
			memcpy(candidate, events, drop * sizeof *events);
			memcpy(candidate + drop, events + drop + 1, (count - drop - 1) * sizeof *events);
			if (breaks_the_same(label, violation, candidate, count - 1, &done)) {
				count = done;
				memcpy(events, candidate, count * sizeof *events);
				shorter = true;
			} else {
				drop++;
			}
		}
		/* a fault and its end (blip and reconnect) only go in pairs */
		for (size_t first = 0; !shorter && count <= 48 && first < count; first++)
			for (size_t second = first + 1; !shorter && second < count; second++) {
				size_t length = 0;
				for (size_t i = 0; i < count; i++)
					if (i != first && i != second)
						candidate[length++] = events[i];
				if (breaks_the_same(label, violation, candidate, length, &done)) {
					count = done;
					memcpy(events, candidate, count * sizeof *events);
					shorter = true;
				}
			}
	}
	/* a run of single iterations that converge reads as one converge */
	for (size_t first = 0; first < count; first++) {
		size_t end = first;
		while (end < count && events[end].kind == EVENT_ITERATE)
			end++;
		if (end - first < 2)
			continue;
		memcpy(candidate, events, first * sizeof *events);
		candidate[first] = (struct event){EVENT_CONVERGE, -1};
		memcpy(candidate + first + 1, events + end, (count - end) * sizeof *events);
		if (breaks_the_same(label, violation, candidate, count - (end - first) + 1, &done)) {
			count = done;
			memcpy(events, candidate, count * sizeof *events);
		}
	}
	free(candidate);
	return count;
}

/* Prints how a failure happened: the sequence shrunk, then step by step by replaying it. */
static void report_failure(const char *label, const char *violation, struct event *events, size_t count, bool full)
{
	char sequence[8192];
	size_t found = count;

	count = shrink_sequence(label, violation, events, count);
	format_sequence(events, count, sequence, sizeof sequence);
	struct run *replay = run_from_label(label);
	if (run_sequence(replay, events, count, NULL))
		bail_out("the replay of a failure did not fail: the model is not deterministic");
	diag("  shrunk to %zu steps (from %zu): %s", count, found, replay->violation);
	diag("  sequence: %s", sequence);
	diag("  replay: PGHA_SEQUENCE_REPLAY='%s: %s' tests/unit/test-sequences", label, sequence);
	free_run(replay);
	if (!full)
		return;
	replay = run_from_label(label);
	replay->verbose = true;
	run_sequence(replay, events, count, NULL);
	free_run(replay);
}

/* ---- exhaustive search ---- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t mix(uint64_t hash, uint64_t value)
{
	uint64_t state = hash ^ value;
	return splitmix64(&state);
}

static uint64_t hash_text(uint64_t hash, const char *text)
{
	uint64_t word = 0;
	size_t i = 0;
	for (; text[i]; i++) {
		word = word << 8 | (unsigned char)text[i];
		if (i % 8 == 7) {
			hash = mix(hash, word);
			word = 0;
		}
	}
	return mix(hash, word ^ (uint64_t)i << 56);
}

/* The state of the model: the world and pghad's state, not the budget used to get there. */
static uint64_t hash_model(const struct run *run, struct model *model)
{
	struct world *world = &model->world;

	if (!world->state_hash_known) {
		world->state_hash = hash_state(model->state, world->now_ms);
		world->state_hash_known = true;
	}
	uint64_t hash = world->state_hash;

	for (int i = 0; i < world->count; i++) {
		const struct model_member *m = &world->members[i];
		uint64_t flags = (uint64_t)m->data | (uint64_t)m->standby_signal << 1 | (uint64_t)m->processes << 2 |
				 (uint64_t)m->hung << 3 | (uint64_t)m->in_recovery << 4 | (uint64_t)m->shut_down << 5 |
				 (uint64_t)m->replication_role << 6 | (uint64_t)m->connection_down << 7 |
				 (uint64_t)m->stalled << 8 | (uint64_t)m->streaming << 9 | (uint64_t)m->caught_up << 10;
		for (int s = 0; s < world->count; s++)
			flags |= (uint64_t)m->slots[s] << (16 + s);
		/* how long pghad has seen it silent matters up to the timeout */
		long long since = world->unreachable_since[i] ? world->now_ms - world->unreachable_since[i] + 1 : 0;
		if (since > timeout_ms(run) + 1)
			since = timeout_ms(run) + 1;
		hash = mix(hash, flags);
		hash = mix(hash, (uint64_t)m->timeline << 48 ^ (uint64_t)(m->upstream + 1) << 40 ^ (uint64_t)since);
		hash = mix(hash, m->flushed);
		hash = mix(hash, m->received);
		hash = hash_text(hash, m->synchronous);
	}
	for (int t = 1; t <= world->timeline_count; t++) {
		hash = mix(hash, (uint64_t)world->timelines[t].parent << 56 ^ world->timelines[t].switchpoint);
		hash = mix(hash, world->acknowledged[t]);
	}
	return hash;
}

/* What a search may still do from a state. */
struct budget {
	int steps, faults, commits;
};

static bool covers(struct budget seen, struct budget now)
{
	return seen.steps >= now.steps && seen.faults >= now.faults && seen.commits >= now.commits;
}

/* Visited states, by hash, with the budget left when each was explored: a state seen
 * with at least as much left of every budget has nothing new to offer. (Two states
 * with the same 64-bit hash would be taken for one; with a few million states the odds
 * are below one in a million.) */
struct memo_entry {
	uint64_t key; /* 0: empty */
	uint8_t steps, faults, commits;
};

struct memo {
	struct memo_entry *entries;
	size_t capacity, count;
};

static struct memo_entry *memo_find(struct memo *memo, uint64_t key)
{
	size_t i = (size_t)(key ^ key >> 29) & (memo->capacity - 1);
	while (memo->entries[i].key && memo->entries[i].key != key)
		i = (i + 1) & (memo->capacity - 1);
	return &memo->entries[i];
}

static void memo_grow(struct memo *memo)
{
	struct memo bigger = {.capacity = memo->capacity ? memo->capacity * 2 : 1 << 16, .count = memo->count};
	bigger.entries = xcalloc(bigger.capacity, sizeof *bigger.entries);
	for (size_t i = 0; i < memo->capacity; i++)
		if (memo->entries[i].key)
			*memo_find(&bigger, memo->entries[i].key) = memo->entries[i];
	free(memo->entries);
	*memo = bigger;
}

/* Whether the state of hash must be explored with left; records it. */
static bool memo_visit(struct memo *memo, uint64_t hash, struct budget left)
{
	uint64_t key = hash ? hash : 1;

	if (2 * (memo->count + 1) > memo->capacity)
		memo_grow(memo);
	struct memo_entry *entry = memo_find(memo, key);
	if (entry->key && covers((struct budget){entry->steps, entry->faults, entry->commits}, left))
		return false;
	memo->count += !entry->key;
	*entry = (struct memo_entry){key, (uint8_t)left.steps, (uint8_t)left.faults, (uint8_t)left.commits};
	return true;
}

struct search {
	struct run *run;
	struct limits limits;
	struct memo memo;
	struct cluster_state *scratch; /* one per depth */
	struct event path[MAX_PATH];
	struct event found[MAX_PATH];
	size_t found_length;
	unsigned long long sequences; /* paths that ended at the depth bound or with nothing new */
};

/* Faults that only stop something (a process, a probe's answer, a connection, a
 * receiver): once WAL has flowed as far as it can, two of them on different members
 * lead to the same world in either order, and neither can break an invariant the other
 * did not, so only one order is explored. */
static bool only_stops(enum event_kind kind)
{
	return kind == EVENT_DIE || kind == EVENT_HANG || kind == EVENT_BLIP || kind == EVENT_STALL;
}

/* Likewise faults that only let something go on again: WAL then flows to the same
 * fixpoint, acknowledgments only grow, and a violation on the way remains at the end. */
static bool only_heals(enum event_kind kind)
{
	return kind == EVENT_ANSWER || kind == EVENT_RECONNECT || kind == EVENT_RESUME;
}

static void explore(struct search *search, const struct model *model, int depth, struct event previous)
{
	struct event events[4 * MAX_MEMBERS * EVENT_KIND_COUNT];
	size_t count = list_events(search->run, model, &search->limits, events);
	struct model iterated;
	bool iterate_did_nothing = false, remembered = false;

	for (int i = 0; i < model->world.count; i++)
		remembered |= model->world.unreachable_since[i] != 0;
	for (size_t e = 0; e < count && !search->found_length; e++) {
		struct event event = events[e];
		struct model child = *model;

		if (event.member < previous.member && ((only_stops(event.kind) && only_stops(previous.kind)) ||
							(only_heals(event.kind) && only_heals(previous.kind))))
			continue;
		/* the same as iterate when it had nothing to do and nothing to forget */
		if (event.kind == EVENT_CRASH_AFTER_INTENT && iterate_did_nothing && !remembered)
			continue;
		/* pghad on a model where it has nothing to do does nothing */
		if (model->world.quiescent && (event.kind == EVENT_ITERATE || event.kind == EVENT_CONVERGE ||
					       (event.kind == EVENT_CRASH_AFTER_INTENT && !remembered)))
			continue;
		if (event.kind == EVENT_CONVERGE) {
			/* converging after one iteration is converging from before it, explored already */
			if (previous.kind == EVENT_ITERATE || iterate_did_nothing)
				continue;
			/* and goes on from where one iteration left the model */
			child = iterated;
		}
		search->path[depth] = event;
		search->run->step = depth;
		if (!apply_event(search->run, &child, event, &search->scratch[depth])) {
			search->found_length = (size_t)depth + 1;
			memcpy(search->found, search->path, search->found_length * sizeof *search->found);
			return;
		}
		if (event.kind == EVENT_ITERATE) {
			iterated = child;
			iterate_did_nothing = !search->run->last_actions && !search->run->last_changed;
		}
		struct budget left = {search->limits.depth - depth - 1, search->limits.faults - child.world.faults,
				      search->limits.commits - child.world.commits};
		if (!left.steps || !memo_visit(&search->memo, hash_model(search->run, &child), left)) {
			search->sequences++;
			continue;
		}
		explore(search, &child, depth + 1, event);
	}
}

struct shape {
	int replicas, method, number;
	bool required;
};

/* Totals of the exhaustive searches, for the record. */
static unsigned long long total_states, total_sequences, total_steps, total_decisions;

/* Exhaustive to limits from the steady state; true when nothing was violated. */
static bool check_exhaustively(const struct shape *shape, struct limits limits, int *full_traces)
{
	struct search search = {.run = new_run(shape->replicas, shape->method, shape->number, shape->required),
				.limits = limits};
	struct cluster_state *initial = xcalloc(1, sizeof *initial);
	struct model model;

	if (limits.depth > MAX_PATH)
		bail_out("a depth of %d is beyond %d", limits.depth, MAX_PATH);
	search.scratch = xcalloc((size_t)limits.depth, sizeof *search.scratch);
	steady_state(search.run, &model, initial, STEADY_LSN);
	memo_visit(&search.memo, hash_model(search.run, &model), (struct budget){limits.depth, limits.faults, limits.commits});
	explore(&search, &model, 0, (struct event){EVENT_ITERATE, -1});
	bool passed = !search.found_length;
	ok(passed,
	   "exhaustive, %s: every sequence of up to %d steps (%d faults, %d commits): %zu states, %llu sequences, "
	   "%llu steps, %llu decisions",
	   search.run->label, limits.depth, limits.faults, limits.commits, search.memo.count, search.sequences,
	   search.run->steps, search.run->decisions);
	if (!passed) {
		diag("  %s", search.run->violation);
		report_failure(search.run->label, search.run->violation, search.found, search.found_length,
			       (*full_traces)++ < FULL_TRACES);
	}
	total_states += search.memo.count;
	total_sequences += search.sequences;
	total_steps += search.run->steps;
	total_decisions += search.run->decisions;
	free(search.memo.entries);
	free(search.scratch);
	free(initial);
	free_run(search.run);
	return passed;
}

/* ---- random walks ---- */

static const int event_weights[] = {
	[EVENT_ITERATE] = 30, [EVENT_CONVERGE] = 10, [EVENT_CRASH_AFTER_INTENT] = 2, [EVENT_PGHAD_RESTART] = 2, [EVENT_COMMIT] = 16,
	[EVENT_TIME] = 6,     [EVENT_DIE] = 2,		      [EVENT_HANG] = 2,		  [EVENT_ANSWER] = 6,
	[EVENT_BLIP] = 4,     [EVENT_RECONNECT] = 6,	      [EVENT_STALL] = 3,	  [EVENT_RESUME] = 6,
};
_Static_assert(sizeof event_weights / sizeof event_weights[0] == EVENT_KIND_COUNT, "a weight for every event");

static const struct shape *shape_of_seed(const struct shape *shapes, size_t count, uint64_t seed)
{
	uint64_t state = seed;
	return &shapes[splitmix64(&state) % count];
}

/* One walk of length events from the steady state, chosen by seed; the events taken in
 * path. False at a violation, with *taken the events up to it. */
static bool random_walk(struct run *run, uint64_t seed, size_t length, struct event *path, size_t *taken)
{
	struct cluster_state *states = xcalloc(2, sizeof *states);
	struct model model;
	uint64_t random = seed ^ 0x243f6a8885a308d3ULL;
	bool ok = true;
	size_t step;

	steady_state(run, &model, &states[0], STEADY_LSN);
	if (run->verbose) {
		printf("#   %s, the steady state:\n", run->label);
		print_world(run, &model);
	}
	for (step = 0; step < length && ok; step++) {
		struct event events[4 * MAX_MEMBERS * EVENT_KIND_COUNT];
		size_t count = list_events(run, &model, NULL, events);
		uint64_t total = 0, pick;
		for (size_t e = 0; e < count; e++)
			total += (uint64_t)event_weights[events[e].kind];
		pick = splitmix64(&random) % total;
		size_t chosen = 0;
		while (pick >= (uint64_t)event_weights[events[chosen].kind]) {
			pick -= (uint64_t)event_weights[events[chosen].kind];
			chosen++;
		}
		path[step] = events[chosen];
		struct cluster_state *scratch = model.state == &states[0] ? &states[1] : &states[0];
		ok = apply_event(run, &model, events[chosen], scratch);
	}
	*taken = step;
	free(states);
	return ok;
}

/* ---- the audit's sequence (issue 12), by hand ---- */

/* Runs the audit's sequence; verbose prints it step by step (the 900 commits aside). */
static void run_audit_sequence(struct run *run, bool verbose)
{
	struct cluster_state *states = xcalloc(2, sizeof *states);
	struct model model;
	int primary = -1;

	/* every step is taken even after a violation, to see where the sequence ends */
#define STEP(kind, member)                                                                                             \
	apply_event(run, &model, (struct event){(kind), (member)}, model.state == &states[0] ? &states[1] : &states[0])

	run->verbose = verbose;
	steady_state(run, &model, &states[0], 100);
	if (verbose) {
		printf("#   %s, the steady state at LSN 100:\n", run->label);
		print_world(run, &model);
	}
	/* test-1 stops streaming and is dropped from the list: ANY 1 ("test-2") runs */
	STEP(EVENT_BLIP, 1);
	STEP(EVENT_ITERATE, -1);
	STEP(EVENT_ITERATE, -1);
	/* commits up to 1000, acknowledged through test-2 alone; test-1 answers, at 100 */
	run->verbose = false;
	for (int i = 0; i < 900; i++)
		STEP(EVENT_COMMIT, 0);
	run->verbose = verbose;
	if (verbose) {
		printf("#   900 commits on test-0\n");
		print_world(run, &model);
	}
	/* test-2's connection blips; pghad publishes a new list and the primary runs it */
	STEP(EVENT_BLIP, 2);
	STEP(EVENT_ITERATE, -1);
	STEP(EVENT_ITERATE, -1);
	run->audit_list = xstrdup(model.world.members[0].synchronous);
	/* the primary dies; pghad goes on */
	STEP(EVENT_DIE, 0);
	for (int i = 0; i < 12; i++)
		STEP(EVENT_ITERATE, -1);
#undef STEP
	for (int i = 0; i < model.world.count; i++)
		if (is_writer(&model.world, i))
			primary = i;
	run->audit_primary = primary;
	free(states);
}

static void test_audit_sequence(void)
{
	struct run *run = new_run(3, SYNC_METHOD_ANY, 1, true);

	run_audit_sequence(run, getenv("PGHA_SEQUENCE_VERBOSE") != NULL);
	diag("audit: after test-2's blip the primary ran '%s'", run->audit_list);
	ok(run->promotions[1] == 0, "audit: test-1, which lacks commits 101 to 1000, is never promoted (promoted %d times)",
	   run->promotions[1]);
	ok(run->audit_primary == 2 || (run->audit_primary < 0 && run->waiting[0]),
	   "audit: the sequence ends with test-2 promoted, or a refusal that says why (primary: %s; waiting: %s)",
	   run->audit_primary >= 0 ? name_of(run->audit_primary).text : "none", run->waiting[0] ? run->waiting : "nothing");
	ok(!run->violation[0], "audit: no invariant is broken%s%s", run->violation[0] ? ": " : "", run->violation);
	if (run->violation[0] || run->promotions[1]) {
		struct run *replay = new_run(3, SYNC_METHOD_ANY, 1, true);
		diag("audit, step by step:");
		run_audit_sequence(replay, true);
		free(replay->audit_list);
		free_run(replay);
	}
	free(run->audit_list);
	free_run(run);
}

/* ---- sequences the checker found, kept by name ---- */

static const struct named_sequence {
	const char *what;
	const char *configuration;
	const char *events;
	const char *todo; /* why it is known to fail still, or NULL */
} named_sequences[] = {
	/* both broke the code before issue 12's fix (62f2acc) */
	{"a standby that streams but lags is left alone in the list when the other blips", "3 any 1 optional",
	 "stall:1 commit:0 blip:2 converge die:0 converge", NULL},
	{"after a failover the new primary's list is padded with a standby that lags", "3 any 1 required",
	 "hang:0 iterate time blip:1 commit:0 iterate iterate iterate iterate die:2 iterate", NULL},
	/* found after the first fix: the list a candidate got before its promotion became the
	 * whole pool at once, though its members had not confirmed the candidate's WAL; the
	 * candidate died and a member of that list that lacked it was chosen (begin_promote
	 * now keeps the candidate itself as the list before) */
	{"a second failover, then the new primary dies before its list's member has its WAL", "3 any 1 required",
	 "die:0 converge blip:0 commit:1 die:1 iterate iterate iterate iterate die:2 converge", NULL},
};

static void test_named_sequences(void)
{
	struct event *events = xcalloc(MAX_PATH, sizeof *events);

	for (size_t i = 0; i < sizeof named_sequences / sizeof named_sequences[0]; i++) {
		const struct named_sequence *named = &named_sequences[i];
		struct run *run = run_from_label(named->configuration);
		size_t count = parse_sequence(named->events, events, MAX_PATH);
		bool passed = run_sequence(run, events, count, NULL);

		ok(passed, "found before: %s (%s: %s)%s%s%s%s", named->what, named->configuration, named->events,
		   passed ? "" : ": ", run->violation, named->todo ? " # TODO " : "", named->todo ? named->todo : "");
		/* the harness counts a TODO that fails as expected (XFAIL) and one that passes as
		 * unexpected (XPASS, which fails make check): the program's status follows */
		if (named->todo && !passed)
			tap_failed--;
		free_run(run);
	}
	free(events);
}

/* ---- the plan ---- */

static long long environment_number(const char *name, long long fallback)
{
	const char *value = getenv(name);
	char *end;
	if (!value || !*value)
		return fallback;
	long long number = strtoll(value, &end, 0);
	if (*end)
		bail_out("%s=%s is not a number", name, value);
	return number;
}

static size_t every_shape(struct shape *shapes)
{
	size_t count = 0;
	for (int replicas = 3; replicas <= MAX_MEMBERS; replicas++)
		for (int method = SYNC_METHOD_ANY; method <= SYNC_METHOD_FIRST; method++)
			for (int number = 1; number <= replicas - 1; number++)
				for (int required = 1; required >= 0; required--)
					shapes[count++] = (struct shape){replicas, method, number, required};
	return count;
}

/* The bounds of the exhaustive search, by cluster size, chosen so that all of it takes
 * some seconds (and a minute under the sanitizers): the cost grows with the faults
 * allowed far more than with the steps, as pghad's iterations mostly converge. Three
 * members get the faults of the audit's sequence and more; larger clusters are taken
 * further by the random walks. PGHA_SEQUENCE_DEPTH, _FAULTS and _COMMITS add to them. */
static struct limits exhaustive_limits(int replicas)
{
	struct limits limits = replicas == 3 ? (struct limits){12, 3, 2}
			       : replicas == 4 ? (struct limits){10, 2, 2}
					       : (struct limits){9, 2, 2};
	limits.depth += (int)environment_number("PGHA_SEQUENCE_DEPTH", 0);
	limits.faults += (int)environment_number("PGHA_SEQUENCE_FAULTS", 0);
	limits.commits += (int)environment_number("PGHA_SEQUENCE_COMMITS", 0);
	return limits;
}

static void replay_from_environment(const char *text)
{
	const char *colon = strchr(text, ':');
	struct event *events = xcalloc(MAX_PATH, sizeof *events);
	char label[64];

	if (!colon || (size_t)(colon - text) >= sizeof label)
		bail_out("PGHA_SEQUENCE_REPLAY='CONFIGURATION: EVENT...', such as '3 any 1 required: blip:1 iterate'");
	snprintf(label, sizeof label, "%.*s", (int)(colon - text), text);
	size_t count = parse_sequence(colon + 1, events, MAX_PATH);
	struct run *run = run_from_label(label);
	run->verbose = true;
	bool passed = run_sequence(run, events, count, NULL);
	ok(passed, "replay of %zu events on %s%s%s", count, label, passed ? "" : ": ", run->violation);
	free_run(run);
	free(events);
}

/*
 * Run as make check does, it is deterministic: the audit's sequence, the named ones,
 * every configuration exhaustively, then random walks from a fixed base seed. Knobs:
 *   PGHA_SEQUENCE_REPLAY='3 any 1 required: blip:1 iterate commit:0 ...'  one sequence, step by step
 *   PGHA_SEQUENCE_SEED=N        the random walk of seed N, step by step (the seed picks the configuration)
 *   PGHA_SEQUENCE_ONLY='3 any 1 required'   that configuration's exhaustive search alone
 *   PGHA_SEQUENCE_DEPTH, _FAULTS, _COMMITS  added to the exhaustive bounds
 *   PGHA_SEQUENCE_BUDGET=N      N times the random walks;  PGHA_SEQUENCE_BASE_SEED=N  another base seed
 *   PGHA_SEQUENCE_VERBOSE=1     the audit's sequence step by step
 */
int main(void)
{
	make_names();
	struct shape shapes[64];
	size_t shape_count = every_shape(shapes);
	const char *replay = getenv("PGHA_SEQUENCE_REPLAY");
	long long only_seed = environment_number("PGHA_SEQUENCE_SEED", -1);
	long long budget = environment_number("PGHA_SEQUENCE_BUDGET", 1);
	uint64_t base_seed = (uint64_t)environment_number("PGHA_SEQUENCE_BASE_SEED", 20240612);
	struct event *path = xcalloc(MAX_PATH, sizeof *path);
	int full_traces = 0;

	if (replay) {
		replay_from_environment(replay);
		free(path);
		return done_testing();
	}
	const char *only = getenv("PGHA_SEQUENCE_ONLY");
	if (only) {
		/* one configuration's exhaustive search, to measure or debug it */
		struct run *run = run_from_label(only);
		struct shape shape = {run->cluster->replicas, run->cluster->synchronous.method, run->cluster->synchronous.number,
				      run->cluster->synchronous.required};
		free_run(run);
		check_exhaustively(&shape, exhaustive_limits(shape.replicas), &full_traces);
		free(path);
		return done_testing();
	}
	if (only_seed >= 0) {
		const struct shape *shape = shape_of_seed(shapes, shape_count, (uint64_t)only_seed);
		struct run *run = new_run(shape->replicas, shape->method, shape->number, shape->required);
		size_t taken;
		run->verbose = true;
		bool passed = random_walk(run, (uint64_t)only_seed, 80, path, &taken);
		ok(passed, "random walk of seed %lld on %s: %zu steps%s%s", only_seed, run->label, taken,
		   passed ? "" : ": ", run->violation);
		free_run(run);
		free(path);
		return done_testing();
	}

	test_audit_sequence();
	test_named_sequences();

	for (size_t i = 0; i < shape_count; i++)
		check_exhaustively(&shapes[i], exhaustive_limits(shapes[i].replicas), &full_traces);
	diag("exhaustive, %zu configurations: %llu states, %llu sequences, %llu steps, %llu decisions", shape_count,
	     total_states, total_sequences, total_steps, total_decisions);

	/* random walks beyond the exhaustive depth: each seed picks a configuration */
	unsigned long long walks = 0, steps = 0, decisions = 0;
	long long walk_count = 1000 * budget;
	int failures = 0;
	uint64_t seeds = base_seed;
	for (long long w = 0; w < walk_count && failures < 5; w++) {
		uint64_t seed = splitmix64(&seeds) >> 16;
		const struct shape *shape = shape_of_seed(shapes, shape_count, seed);
		struct run *run = new_run(shape->replicas, shape->method, shape->number, shape->required);
		size_t taken;
		walks++;
		if (!random_walk(run, seed, 80, path, &taken)) {
			failures++;
			diag("random walk of seed %llu on %s: %s", (unsigned long long)seed, run->label, run->violation);
			diag("  replay: PGHA_SEQUENCE_SEED=%llu tests/unit/test-sequences", (unsigned long long)seed);
			report_failure(run->label, run->violation, path, taken, full_traces++ < FULL_TRACES);
		}
		steps += run->steps;
		decisions += run->decisions;
		free_run(run);
	}
	ok(failures == 0, "random walks from base seed %llu: %llu walks of up to 80 steps, %llu steps, %llu decisions%s",
	   (unsigned long long)base_seed, walks, steps, decisions,
	   failures == 0 ? "" : failures < 5 ? ": some failed" : ": stopped at the fifth that failed");
	diag("times an asynchronous period (synchronous.required = false, no standby streaming) released what was "
	     "acknowledged before it: %llu", asynchronous_periods);
	free(path);
	return done_testing();
}
