/* decide: the pure heart of the loop: from a cluster's configuration and one observation of it, the ordered actions that bring it closer to the configuration. No I/O. */
#ifndef PGHA_DECIDE_H
#define PGHA_DECIDE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "failover.h"
#include "observation.h"
#include "state.h"

enum action_type {
	ACTION_INITIALIZE,          /* initdb member, the first primary of a new cluster */
	ACTION_MOVE_ASIDE,          /* rename member's unusable data directory away; never delete it */
	ACTION_CLONE,               /* pg_basebackup member from source, as a standby following source */
	ACTION_START,               /* start member's postmaster */
	ACTION_STOP,                /* stop member's postmaster (fast), keeping its data */
	ACTION_CREATE_REPLICATION_ROLE, /* on member (the primary): pgha's replication role */
	ACTION_ALTER_REPLICATION_ROLE,  /* on member (the primary): LOGIN, REPLICATION and the password to the role */
	ACTION_CREATE_SLOT,         /* on member (the primary): the physical slot of standby source */
	ACTION_DROP_SLOT,           /* on member (the primary): the slot of a removed standby, named in text */
	ACTION_FOLLOW,              /* write member's standby settings to follow source, and reload it */
	ACTION_SET_SYNCHRONOUS,     /* on member (the primary): synchronous_standby_names = text */
	ACTION_CONFIGURE,           /* rewrite member's pgha.conf from the configuration, and reload it */
	ACTION_RESTART,             /* stop member (fast) and start it again, for settings that need it */
	ACTION_RESET_OVERRIDES,     /* ALTER SYSTEM RESET the settings named in text ("a,b") on member, and reload */
	ACTION_FENCE,               /* kill every process of member, a failed or replaced primary */
	ACTION_PROMOTE,             /* promote member, a standby, to primary */
	ACTION_REJOIN,              /* make member, a stopped former primary, a standby of source (pg_rewind if needed) */
	ACTION_CUT,                 /* member, a standby, stops receiving WAL: it follows no one, and its WAL receiver ends */
};
#define ACTION_TYPE_COUNT (ACTION_CUT + 1)

extern const char *const action_type_names[];

struct action {
	enum action_type type;
	int member; /* the member acted on */
	int source; /* ACTION_CLONE, ACTION_FOLLOW: the primary; ACTION_CREATE_SLOT: the standby; else -1 */
	char text[STATE_NAMES_SIZE]; /* ACTION_SET_SYNCHRONOUS: the new value; ACTION_DROP_SLOT: the slot */
	char reason[256]; /* why, for the log and status: "test-2 has no data directory" */
};

struct action_list {
	struct action *items;
	size_t count;
	/* why the cluster cannot be brought closer now, or "" ("waiting for a primary to
	 * clone test-2 from"); shown in status, never an error by itself */
	char waiting[1024];
	/* the remembered state after these actions: written before any of them is taken
	 * (intent first), when it differs from the state decided from */
	struct cluster_state next_state;
	bool hurry; /* a failover is under way or the primary is suspect: decide again soon */
	const char *transition; /* the failover table's row that applied */
	bool request_taken;     /* the operator's request was begun */
	char request_error[1024]; /* or refused, and why */
};

/* The actions for one cluster, in the order they must be carried out, from its
 * configuration, one observation, the state remembered and the operator's pending
 * switchover or failover request (NULL: none). */
void decide(const struct cluster_config *cluster, const struct cluster_observation *observation,
	    const struct cluster_state *state, const struct failover_request *request, struct action_list *actions);
void action_list_free(struct action_list *actions);

#endif
