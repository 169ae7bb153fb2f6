/* selffence: whether a primary must stop itself, pure: its pod deleted, the cluster's state on its Lease naming another primary, or neither the API server nor any standby reached for the isolation timeout. */
#ifndef PGHA_SELFFENCE_H
#define PGHA_SELFFENCE_H

#include <stdbool.h>
#include <stddef.h>

/* What the member's local PostgreSQL said it is. */
enum selffence_role {
	SELFFENCE_ROLE_UNKNOWN, /* it did not answer: the last role seen holds */
	SELFFENCE_ROLE_PRIMARY,
	SELFFENCE_ROLE_STANDBY,
};

/* What the API server said of the member's own pod. */
enum selffence_pod {
	SELFFENCE_POD_UNKNOWN,  /* no answer that can be read (no answer, 5xx, 401, 403) */
	SELFFENCE_POD_RUNNING,  /* there, the same uid, no deletionTimestamp */
	SELFFENCE_POD_DELETING, /* deletionTimestamp set: its kubelet may never act on it */
	SELFFENCE_POD_GONE,     /* 404, or a pod of the same name with another uid */
};

/* What the Lease's pgha.io/state says of who may be primary. */
struct selffence_lease {
	bool known;            /* read and understood */
	int primary;           /* state.primary: -1 when none yet */
	bool failover;         /* a failover is under way */
	bool demoting;         /* ... in its clean demote phase (a switchover) */
	int from, to;          /* its old primary and candidate (-1: not chosen) */
};

/* One round of checks. Times are on the monotonic clock, read at the START of the request
 * that brought the answer (the latest moment the peer is known to have been reached is
 * then never overstated); 0 when there was no such answer this round. */
struct selffence_observation {
	long long now_ms;
	enum selffence_role role;
	int streaming;              /* walsenders in state streaming, -1 unknown */
	/* the latest moment a streaming standby is known to have answered: the start of the
	 * last round before its reply_time changed (standbyreach), never its reply_time itself,
	 * which the standby's clock stamps */
	long long standby_reached_ms;
	long long api_reached_ms;   /* the GET of the pod that was answered (2xx or 404) */
	enum selffence_pod pod;
	struct selffence_lease lease;
};

/* What the watch remembers between rounds (zero it before the first). */
struct selffence_memory {
	bool primary;          /* the member was last seen running as the primary */
	long long reached_ms;  /* the last moment the API server or a streaming standby was reached */
	bool isolated_told;    /* the isolation with a standby still streaming was logged */
};

struct selffence_config {
	int member;            /* this member's index in the Lease's state */
	int isolation_ms;      /* neither the API server nor a standby reached this long: stop */
};

enum selffence_verdict {
	SELFFENCE_KEEP,
	SELFFENCE_STOP,
	SELFFENCE_DEMOTE, /* a clean (fast) shutdown: the Lease's switchover demotes this primary */
};

/* Pure: whether PostgreSQL must stop now, why in why. Only a member running as the
 * primary (or last seen so while its PostgreSQL does not answer) is ever stopped; the
 * isolation clock starts when it is first seen as the primary. memory is updated.
 * SELFFENCE_DEMOTE when the Lease's switchover is in its clean demote phase from this
 * member: pghad asks the old primary's shutdown that way, since deleting its pod would
 * be an immediate one (a kubelet's SIGTERM), which sends its standbys nothing more. A
 * reason to stop at once (the pod deleted) comes first. */
enum selffence_verdict selffence_decide(const struct selffence_config *config,
					const struct selffence_observation *observation,
					struct selffence_memory *memory, char *why, size_t why_size);

/* Pure: whether the Lease's state lets member run as the primary: no failover under
 * way and the state names it or no one; or a failover under way whose candidate it is,
 * or whose old primary it is during a switchover's clean demote (it must still send its
 * last WAL). who gets the member the state names instead, -1 when none. */
bool selffence_lease_allows(const struct selffence_lease *lease, int member, int *who);

#endif
