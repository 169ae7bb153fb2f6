/* act: carries out decide's actions through the platform, logs each, and tracks long operations so the loop never waits for them; what it offers a platform carrying out an action. */
#ifndef PGHA_ACT_H
#define PGHA_ACT_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "decide.h"
#include "log.h"
#include "names.h"
#include "observation.h"
#include "platform.h"
#include "proc.h"

struct actor;

/* config points at the daemon's current configuration, which a reload replaces:
 * operations that finish later look their cluster up in it by name. */
struct actor *actor_new(sd_event *event, struct platform *platform, struct pgha_config *const *config);
void actor_free(struct actor *actor);

/* observe_busy_fn: an operation on the member is under way. */
bool actor_busy(const char *cluster, int index, void *actor);
/* Between iterations: the operations under way first, so that lookups (actor_busy, each
 * turn's settling) scan only them and not every operation that ever ran at once. */
void actor_tidy(struct actor *actor);
/* The operation slots a lookup scans now (tests). */
size_t actor_scanned(const struct actor *actor);

/* Ends the waits that the observation shows are over (a started member answers, a
 * stopped one is gone), and clears the busy flag of their members in observation, so
 * that the decision made from it can already act on them. */
void actor_settle(struct actor *actor, const struct cluster_config *cluster, struct cluster_observation *observation);

/* Ends the waits that the observation shows are over (a started member answers, a
 * stopped one is gone), then carries out actions in order. An action that fails is
 * logged; the next loop decides again from what it then observes. */
void actor_run(struct actor *actor, const struct cluster_config *cluster, const struct cluster_observation *observation,
	       const struct action_list *actions);

/* The data jobs (initdb, clone, rejoin) running and those queued for a free one of
 * daemon.max_data_jobs, for status: {"limit", "running": [...], "queued": [...]}. */
json_t *actor_data_jobs(const struct actor *actor);

/* The last thing done to or failed on a member, for status ("" when none). */
const char *actor_last_event(const struct actor *actor, const char *cluster, int index);
/* The same, with when it happened (wall clock ms; 0 when none) and whether it was a
 * failure (an error or a warning) rather than something done. */
const char *actor_member_event(const struct actor *actor, const char *cluster, int index, long long *at_ms,
			       bool *failed);

struct history_entry;
/* Called with each operation that ends (promote, clone, rejoin, restart, ...), for
 * pghad's history. */
typedef void (*actor_record_fn)(const struct history_entry *entry, void *context);
void actor_set_recorder(struct actor *actor, actor_record_fn record, void *context);

/* ---- for the platforms ---- */

enum operation_kind {
	OPERATION_INITIALIZE,
	OPERATION_CLONE,
	OPERATION_START,
	OPERATION_STOP,
	OPERATION_RESTART,
	OPERATION_PROMOTE,
	OPERATION_REJOIN,
};
#define OPERATION_KIND_COUNT (OPERATION_REJOIN + 1)
extern const char *const operation_names[];

/* Something long done to a member, under way until the observation shows it over
 * (see settle in act.c), its program ends, or its deadline passes. */
struct operation {
	struct actor *actor;
	char cluster[NAMES_BUFFER_SIZE];
	int index;
	int source;
	enum operation_kind kind;
	struct proc_job *job;  /* a program run here (initdb, pg_basebackup, pg_rewind): ended by it, not by settle */
	pid_t postmaster;      /* start: the postmaster started */
	long long deadline_ms; /* monotonic */
	bool stopping;         /* rejoin: the member is stopping first; its rewind comes once it is gone */
	bool active;
	long long started_ms; /* wall clock, for history; a restart's start keeps its stop's */
	bool restarting;      /* a start that is the second half of a restart */
};

/* Begins an operation on a member: it is busy until the operation ends. */
struct operation *actor_begin(struct actor *actor, const char *cluster, int index, enum operation_kind kind,
			      int source);
/* actor_report of an operation's end (it succeeded or not), which also goes into pghad's
 * history. */
void actor_finish(struct actor *actor, const struct operation *operation, enum log_level level, bool succeeded,
		  const char *format, ...) __attribute__((format(printf, 5, 6)));
/* The monotonic clock of deadlines, in milliseconds. */
long long actor_now_ms(void);
/* Logs about a member with the journal's fields, and keeps it for status. */
void actor_report(struct actor *actor, enum log_level level, const char *cluster, int index, const char *format, ...)
	__attribute__((format(printf, 5, 6)));
/* The loop programs run on; the observation being acted on; a cluster of the
 * configuration in force by name (NULL: no longer configured). */
sd_event *actor_event(const struct actor *actor);
struct platform *actor_platform(const struct actor *actor);
const struct cluster_observation *actor_observation(const struct actor *actor);
const struct cluster_config *actor_cluster(const struct actor *actor, const char *name);

/* One statement on a member, bounded, over a connection with the server options
 * options (NULL: none); false (reported) when it fails, unless it fails with the SQLSTATE
 * quiet_state (NULL: none), which is left to the caller. With value, the first value it
 * returns (a new string; NULL when none or null). */
bool actor_statement_with(struct actor *actor, const struct cluster_config *cluster, int index, const char *what,
			  const char *options, const char *quiet_state, const char *sql, int parameter_count,
			  const char *const *parameters, char *(*build_sql)(PGconn *, void *), void *build_context,
			  char **value);
/* One statement on a member, bounded; false (reported) when it fails. */
bool actor_statement(struct actor *actor, const struct cluster_config *cluster, int index, const char *what,
		     const char *sql, int parameter_count, const char *const *parameters,
		     char *(*build_sql)(PGconn *, void *), void *build_context);
/* Settings were written: the member reads them now. */
void actor_reload(struct actor *actor, const struct cluster_config *cluster, int index);
/* The same, and its client sessions end (a standby a failover cuts). */
bool actor_reload_ending_sessions(struct actor *actor, const struct cluster_config *cluster, int index);
/* One statement of several that actor_statements runs on a member. */
struct actor_step {
	const char *what; /* for the log: "<what> failed: <why>" */
	const char *sql;  /* or, built once connected (quoting for that server): */
	char *(*build_sql)(PGconn *, void *);
	void *build_context;
	/* refused with this SQLSTATE (NULL: none), it is run again on a connection of its
	 * own started with the server options retry_options */
	const char *retry_state;
	const char *retry_options;
	bool after_all; /* run only when every step before it succeeded */
	bool succeeded; /* set by actor_statements */
};
/* The steps in order, on one connection to the member (one backend, not one per
 * statement), each bounded as actor_statement's; each failure reported. A step that
 * lost the connection (the server went away) leaves the next to make one again; after
 * one that timed out, the rest are not tried (reported as failed), so a hung server
 * costs one timeout. True when every step succeeded. */
bool actor_statements(struct actor *actor, const struct cluster_config *cluster, int index, struct actor_step *steps,
		      size_t count);
/* actor_reload_ending_sessions's statement as a step, to run after others on their connection. */
struct actor_step actor_reload_ending_sessions_step(void);
/* ALTER SYSTEM SET name = value (value NULL: RESET) as a step (setting->step), custom
 * names included; name and value are kept as pointers. Clear it after the run. */
struct actor_setting {
	const char *name;
	const char *value;
	char what[192];
	char *options;
	struct actor_step step;
};
void actor_setting_init(struct actor_setting *setting, const char *name, const char *value);
void actor_setting_clear(struct actor_setting *setting);
/* ALTER SYSTEM SET name = value on a member (value NULL: RESET), custom names included. */
bool actor_alter_system(struct actor *actor, const struct cluster_config *cluster, int index, const char *name,
			const char *value);

#endif
