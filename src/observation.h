/* observation: what one look at a cluster saw of each member (from the platform and from PostgreSQL), and the questions decide, failover and the platforms ask of it. No I/O. */
#ifndef PGHA_OBSERVATION_H
#define PGHA_OBSERVATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "timeline.h"

#define MEMBER_NAME_SIZE 64
/* The longest synchronous_standby_names and primary_conninfo an observation keeps, with
 * the terminator: 99 long names fit. They are heap strings of their own length, not
 * buffers of this size: observations are made at every turn of every cluster, and a
 * member's would otherwise be 10 KiB, mostly of nothing. */
#define OBSERVATION_NAMES_SIZE 8192
#define OBSERVATION_CONNINFO_SIZE 1024
/* pg_stat_replication.reply_time as text: "2026-12-04 16:00:00.123456+00" */
#define REPLY_TIME_SIZE 48

/* A standby as the primary sees it in pg_stat_replication. */
struct replication_peer {
	char application_name[MEMBER_NAME_SIZE];
	char state[16];      /* "streaming", "catchup", "startup", "backup", "stopping" */
	char sync_state[16]; /* "sync", "quorum", "potential", "async" */
	uint64_t flush_lsn;
	uint64_t replay_lsn;
	double replay_lag_seconds; /* pg_stat_replication.replay_lag; -1 when unknown (idle, or none yet) */
	/* how long before the probe it last answered (clock_timestamp() - reply_time, ms, by
	 * the primary's clock: 0 when the standby's is ahead), held within what pghad's own
	 * probes of the primary prove (replyage.h); -1 when it has not yet */
	long long reply_age_ms;
	char reply_time[REPLY_TIME_SIZE]; /* as the standby stamped it; "": none */
};

/* A base backup the primary is sending (pg_stat_progress_basebackup): a member's clone. */
struct clone_progress {
	char application_name[MEMBER_NAME_SIZE]; /* "clone:MEMBER" (names_clone_application) */
	char phase[48];
	long long total_bytes; /* the estimate; -1 when pg_basebackup asked for none */
	long long streamed_bytes;
};

struct member_observation {
	int index;
	char name[MEMBER_NAME_SIZE]; /* "test-1" */

	/* from the platform */
	bool data_exists;   /* the data directory holds a PostgreSQL data directory (PG_VERSION) */
	bool data_unusable; /* something is there that is not a data directory pgha can use */
	bool standby_signal; /* standby.signal is present: the member starts as a standby */
	pid_t postmaster;   /* the running postmaster, 0 when none */
	bool postmaster_exited; /* postmaster has exited but is not reaped yet: it serves nothing */
	/* the running postmaster's process state as /proc shows it ('S', 'R', 'T' when stopped
	 * by a signal or a debugger...); 0 where the platform cannot see the process (kubernetes) */
	char postmaster_state;
	/* where that postmaster sleeps, when the platform can tell (locally, from
	 * /proc/PID/wchan; else unknown) */
	enum postmaster_wait {
		POSTMASTER_WAIT_UNKNOWN,
		POSTMASTER_WAIT_CONNECTIONS, /* in select, poll or epoll: its loop, waiting for connections */
		POSTMASTER_WAIT_ELSEWHERE,   /* a lock, a read, a sleep: not in its loop */
	} postmaster_wait;
	/* processes of the member still alive (the postmaster and its children, also those
	 * a dead postmaster left behind); counted before the probes when the postmaster is
	 * gone or has exited, else 1 */
	int live_processes;
	/* its end is asked but may never be heard (on kubernetes: its pod is being deleted and
	 * its container is not reported terminated, as on a node cut off, for ever; locally:
	 * SIGKILL waits on each of its processes, frozen or stuck in the kernel): what may
	 * still run of it is fenced off by the failover's cut, so a failover need not wait for
	 * it; but it counts as running (live_processes) for everything else: nothing starts on
	 * its volume meanwhile */
	bool fenced;
	/* stopped members without standby.signal, from pg_control: where the last checkpoint
	 * is, and whether the server was shut down cleanly (it then wrote nothing after) */
	uint64_t checkpoint_lsn;
	bool shut_down;
	char address[64];   /* kubernetes: its pod's IP, "" when it has none */
	bool busy;          /* pgha is doing something long to it (initdb, clone, start): leave it alone */

	/* from the libpq probe; meaningful only when reachable */
	bool reachable;
	long long unreachable_ms; /* how long it has been running but not answering (filled by the daemon) */
	char error[256]; /* why it is not reachable, or the last failure of an action on it */
	bool in_recovery;
	uint32_t timeline; /* from the probe's pg_control_checkpoint(); of a stopped primary, from pg_control */
	uint64_t lsn;         /* primary: pg_current_wal_lsn(); standby: last replayed */
	uint64_t receive_lsn; /* standby: last WAL received and flushed by its walreceiver */
	bool streaming;       /* standby: its walreceiver streams */
	/* standby: a WAL receiver process runs, whatever its state (starting, streaming,
	 * waiting): it may be receiving from the old primary and confirming its commits */
	bool receiving;
	pid_t receiver_pid; /* that process, 0 when none */
	/* the timeline its WAL is on (0: unknown): a primary's current one; a standby's, the
	 * latest of the WAL segments in its pg_wal (what it has received or restored) */
	uint32_t wal_timeline;
	/* primary: its timeline history, each ancestor timeline and where it ended */
	struct timeline_switch *history;
	size_t history_count;
	bool pending_restart; /* some setting waits for a restart */
	/* a hot-standby-sensitive setting (max_connections, max_wal_senders, ...) waits for a
	 * restart with a lower value than runs: the primary must restart before its standbys */
	bool lowers_standby_sensitive;
	bool settings_current; /* pgha.conf holds what the configuration asks (from the platform) */
	/* settings pgha owns or configures that ALTER SYSTEM overrides (postgresql.auto.conf is
	 * read after pgha's files): "name,name"; empty when none */
	char overridden[512];
	bool replication_role;        /* primary: pgha's replication role exists with LOGIN and REPLICATION */
	bool replication_role_exists; /* primary: it exists, usable or not */
	/* as the server runs it, up to OBSERVATION_NAMES_SIZE - 1 bytes; owned (freed with the
	 * observation); NULL: none read, as "" (observation_text) */
	char *synchronous_standby_names;
	/* standby: as the server runs it, up to OBSERVATION_CONNINFO_SIZE - 1 bytes; owned, as above */
	char *primary_conninfo;
	char primary_slot_name[MEMBER_NAME_SIZE];
	/* standby: the member its primary_conninfo points to (-1: none or unknown), and
	 * whether primary_conninfo and primary_slot_name are exactly what pgha writes for
	 * following that member; the platform knows how to tell */
	int upstream;
	bool follow_settings_current;
	struct replication_peer *peers; /* primary: its standbys */
	size_t peer_count;
	struct clone_progress *clones;  /* primary: the base backups it sends */
	size_t clone_count;
	/* standby: the timeline its WAL receiver receives (pg_stat_wal_receiver.received_tli);
	 * 0 when none runs. For status: decide reads timeline and wal_timeline */
	uint32_t received_timeline;
	char (*slots)[MEMBER_NAME_SIZE]; /* physical replication slots on this member */
	size_t slot_count;
	/* when the PostgreSQL fields above were read (wall clock ms; 0: not read): a standby
	 * of a cluster at rest is not probed at every iteration, and keeps its last probe's */
	long long probed_ms;
};

/* Every member with an index below replicas, and any above it that still has data
 * (left by scaling down), ordered by index. */
struct cluster_observation {
	struct member_observation *members;
	size_t count;
	long long now_ms; /* when it was taken: wall clock, milliseconds since the epoch */
};

void cluster_observation_free(struct cluster_observation *observation);
/* Frees what a member's observation holds (its lists and texts) and empties them. */
void member_observation_clear_lists(struct member_observation *member);
/* A member's text (synchronous_standby_names, primary_conninfo) as a string: "" when
 * it is NULL (not read, or the member did not answer). */
static inline const char *observation_text(const char *text)
{
	return text ? text : "";
}
/* Sets a member's text to a copy of value (NULL: "") cut to size - 1 bytes, freeing the
 * one it had. */
void observation_set_text(char **text, const char *value, size_t size);
/* Gives to what the probe of from found (every field read from PostgreSQL, its
 * lists copied); leaves what the platform found as it is. */
void observation_copy_probe(struct member_observation *to, const struct member_observation *from);
/* The member that is reachable and not in recovery, or NULL (decide refuses to act when
 * there are several; this returns the first). */
const struct member_observation *observation_primary(const struct cluster_observation *observation);
/* The clock of now_ms: wall clock milliseconds since the epoch (intent on disk outlives
 * a reboot, so it is not the monotonic clock). */
long long observation_clock_ms(void);
/* Tests on the simulated platform only: time passes, by ms, for that clock. */
void observation_clock_advance(long long ms);
const struct member_observation *observation_member(const struct cluster_observation *observation, int index);
/* Whether standby, in recovery, holds WAL that primary's timeline history does not (it
 * went on past the point where the primary's timeline forked off): it can follow the
 * primary only once rewound. primary may also be a standby about to be promoted, whose
 * timeline will fork off where its WAL ends. False when either's timeline is unknown. */
bool observation_diverged(const struct member_observation *standby, const struct member_observation *primary);
/* Whether peer streams and last answered its primary within bound_ms (0: no bound): a
 * standby cut off stays "streaming" until wal_sender_timeout, but answers no more. */
bool observation_peer_streaming(const struct replication_peer *peer, long long bound_ms);
/* How far a standby's WAL goes: what it received and flushed, or replayed if more. */
uint64_t observation_position(const struct member_observation *member);

#endif
