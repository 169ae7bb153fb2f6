/* failover: the pure transition table of failover and switchover: when the primary counts as failed, which standby may replace it without losing an acknowledged commit, and the steps (fence, demote, promote) in their safe order. No I/O. */
#ifndef PGHA_FAILOVER_H
#define PGHA_FAILOVER_H

#include <stdbool.h>

#include "config.h"
#include "observation.h"
#include "state.h"

/* An operator's request (pghactl switchover / failover), until it is begun or refused. */
struct failover_request {
	enum failover_kind kind; /* FAILOVER_SWITCHOVER or FAILOVER_MANUAL; FAILOVER_NONE: none */
	int to;                  /* -1: switchover to the best candidate */
	bool force;              /* manual: promote to even though it may lack acknowledged commits */
};

/* The member that may be promoted in place of exclude, or -1 and why not. */
struct failover_choice {
	int member;
	bool safe;      /* member has every acknowledged commit as far as the rules can tell */
	char why[1024]; /* the reasoning, for logs and status: members, LSNs, what is missing */
};

/* Chooses among the standbys: only from the last published synchronous list(s) when
 * synchronous replication is on, enough of whose members must be reachable to be sure
 * one has every acknowledged commit (n - k + 1 of n listed for ANY k or FIRST k), then
 * the most advanced (received or replayed WAL), then the highest priority (0: never),
 * then the lowest index. With wanted >= 0, says whether that member is such a choice;
 * if it is not, member is wanted with safe false and why says what it may lack.
 * With cut, only standbys cut from the old primary (failover_standby_cut) count: their
 * positions are final, so the most advanced stays the most advanced; without it the
 * choice is a forecast (whether a failover could succeed, whom it would promote). */
void failover_choose(const struct cluster_config *cluster, const struct cluster_observation *observation,
		     const struct cluster_state *state, int exclude, int wanted, bool cut,
		     struct failover_choice *choice);

/* A standby that answers and can receive no more WAL from anyone: no WAL receiver runs
 * and it follows no one (a receiver cannot start again). What it has is final. */
bool failover_standby_cut(const struct member_observation *member);
/* A standby a failover must cut before it chooses: it answers and is not cut yet. */
bool failover_needs_cut(const struct member_observation *member, int old_primary);

enum failover_action {
	FAILOVER_ACTION_NONE,
	FAILOVER_ACTION_FENCE,       /* kill every process of member (the old primary) */
	FAILOVER_ACTION_CUT,         /* every standby that failover_needs_cut stops receiving WAL (member -1) */
	FAILOVER_ACTION_STOP,        /* shut member (the old primary) down cleanly: a switchover */
	FAILOVER_ACTION_SET_SYNCHRONOUS, /* member (the candidate): synchronous_standby_names = names, before it is promoted */
	FAILOVER_ACTION_PROMOTE,     /* promote member */
};

/* One step of failover for a cluster. */
struct failover_step {
	struct cluster_state next;  /* the state after the step: recorded before its action is taken */
	enum failover_action action;
	int member;
	char reason[512];
	/* a member the other rules must leave stopped (the failed or fenced old primary): -1 */
	int hold;
	/* a failover is under way or the primary is suspect: decide again soon */
	bool hurry;
	/* the primary's role is in question: rules that need a primary wait */
	bool in_progress;
	char waiting[1024]; /* a refusal, "would fail over to ...", or what the failover waits for */
	const char *transition; /* the row of the table that applied last, for the log */
	const char *applied[4]; /* every row that applied, in order */
	int applied_count;
	/* the operator's request: taken (begun) or refused with why */
	bool request_taken;
	char request_error[1024];
};

/* The step to take now, from the cluster's configuration, one observation (taken at
 * observation->now_ms), the state remembered, and the operator's pending request
 * (NULL: none). */
void failover_step(const struct cluster_config *cluster, const struct cluster_observation *observation,
		   const struct cluster_state *state, const struct failover_request *request, struct failover_step *step);

/* The table, for the documentation and the tests: each row's phase, the names of its
 * condition and action functions (NULL: a function failover_function_names lacks, which
 * test-failover-table reports), and its comment. */
struct failover_row {
	const char *phase;
	const char *when;
	const char *then;
	const char *comment;
};
size_t failover_rows(const struct failover_row **rows);

#endif
