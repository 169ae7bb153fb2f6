/* state: what pghad must not forget across a crash, per cluster: the primary, the published synchronous list, a failover under way, pause; kept in a JSON file written atomically. */
#ifndef PGHA_STATE_H
#define PGHA_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a synchronous_standby_names that lists 99 long names. */
#define STATE_NAMES_SIZE 8192

enum failover_kind { FAILOVER_NONE, FAILOVER_AUTOMATIC, FAILOVER_SWITCHOVER, FAILOVER_MANUAL };
extern const char *const failover_kind_names[];

/* Where a failover stands. Each phase is entered with its intent on disk first. */
enum failover_phase {
	PHASE_DEMOTE,  /* switchover: the old primary shuts down cleanly, sending everything to its standbys */
	PHASE_FENCE,   /* the old primary's processes are being killed: nothing it does counts any more */
	PHASE_PROMOTE, /* the candidate gets its synchronous list, then is promoted */
};
extern const char *const failover_phase_names[];

struct failover_intent {
	enum failover_kind kind; /* FAILOVER_NONE: no failover under way */
	enum failover_phase phase;
	int from;  /* the old primary */
	int to;    /* the member promoted; -1 until chosen */
	bool force; /* manual: promote to even though it may lack commits */
	long long started_ms; /* wall clock, milliseconds since the epoch */
	char reason[256];
};

struct cluster_state {
	int primary; /* the member last seen as the primary, -1 when unknown */
	/* the synchronous_standby_names pghad last published for primary, and while a change
	 * is not yet confirmed running the one before it ("" both when none); a failover
	 * candidate must satisfy both */
	char synchronous[STATE_NAMES_SIZE];
	char previous[STATE_NAMES_SIZE];
	bool synchronous_known; /* false: never published (a failover then checks every member) */
	/* while previous is kept: the primary's WAL position when it was first seen running
	 * synchronous (0 until then). Every commit acknowledged under previous lies below it,
	 * so previous leaves the pool once synchronous.number members of synchronous have
	 * flushed that far */
	uint64_t synchronous_since_lsn;
	bool paused;            /* automatic failover suspended by pghactl pause */
	struct failover_intent failover;
	char last[512]; /* the last failover's outcome, for status */
};

/* A cluster_state as pghad keeps it between turns, one per cluster: the same fields,
 * its two lists as heap strings of their own length (never NULL once kept). A
 * cluster_state is 17 KiB, nearly all of it room for the longest lists: kept for 100
 * clusters, that was 1.7 MB of pghad's RSS. */
struct kept_state {
	int primary;
	char *synchronous;
	char *previous;
	bool synchronous_known;
	uint64_t synchronous_since_lsn;
	bool paused;
	struct failover_intent failover;
	char last[512];
};

void state_init(struct cluster_state *state);
/* kept becomes a copy of state (what it held before is freed). */
void state_keep(struct kept_state *kept, const struct cluster_state *state);
/* state becomes what kept holds (a kept_state all zero: the initial state). */
void state_restore(struct cluster_state *state, const struct kept_state *kept);
void kept_state_free(struct kept_state *kept);
bool state_equal(const struct cluster_state *a, const struct cluster_state *b);

/* Reads path into state; a missing file is the initial state. False (why written) when
 * the file exists but cannot be read or understood: the caller must not act on it. */
bool state_load(const char *path, struct cluster_state *state, char *why, size_t why_size);
/* The same from text (a Lease annotation on Kubernetes); name stands for it in messages. */
bool state_parse(const char *text, const char *name, struct cluster_state *state, char *why, size_t why_size);
/* state as JSON text, a new string (NULL only when out of memory). */
char *state_format(const struct cluster_state *state);
/* Writes state to path: temporary file, fsync, rename, fsync of the directory. */
bool state_save(const char *path, const struct cluster_state *state, char *why, size_t why_size);

#endif
