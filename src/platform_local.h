/* platform_local: members as PostgreSQL processes on this host: their directories, ports and settings files, and the programs that create, start and stop them. */
#ifndef PGHA_PLATFORM_LOCAL_H
#define PGHA_PLATFORM_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "platform.h"
#include "datadir.h"
#include "pg.h"
#include "proc.h"

/* The platform interface on this host (platform.h). */
extern const struct platform_ops local_platform_ops;

struct local_memory;

/* What the local platform needs besides the configuration, found once at start. */
struct local_platform {
	const struct pgha_config *config;
	char bindir[512];   /* PostgreSQL's programs */
	char user[64];      /* the OS user pghad runs as: PostgreSQL's superuser, by peer authentication */
	/* what pghad remembers of the files and processes of its members between iterations,
	 * so that one at rest costs a few stats (platform_local.c); NULL: nothing remembered */
	struct local_memory *memory;
};

/* Finds PostgreSQL's programs: platform.local.bindir, else pg_config --bindir, else the
 * newest /usr/lib/postgresql/VERSION/bin. Checks that every member's socket path fits.
 * False (logged) when not. */
bool local_platform_init(struct local_platform *platform, const struct pgha_config *config);

/* Where member index of cluster lives: BASE/CLUSTER/MEMBER holds data/, the socket and
 * postgresql.log. New strings: paths are never truncated. */
char *local_member_directory(const struct local_platform *platform, const struct cluster_config *cluster, int index);
char *local_data_directory(const struct local_platform *platform, const struct cluster_config *cluster, int index);
int local_member_port(const struct cluster_config *cluster, int index);
/* How pghad itself connects to a member: the member's socket directory (host, a new
 * string the caller frees), as PostgreSQL's superuser (peer authentication). */
struct pg_target local_admin_target(const struct local_platform *platform, const struct cluster_config *cluster,
				    int index);

/* What is on disk and running for a member. */
struct local_member_state {
	bool data_exists;
	bool data_unusable;
	bool standby_signal;
	pid_t postmaster;
	bool postmaster_exited; /* postmaster is a zombie: exited, not yet reaped */
	char postmaster_state;  /* its state in /proc when it was read ('S', 'D', 'T'...) */
};
void local_member_state(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			struct local_member_state *state);
/* The highest member index with a directory, or -1: members left by scaling down. */
int local_highest_member(const struct local_platform *platform, const struct cluster_config *cluster);

/* The primary_conninfo pgha writes for member index following member upstream; a new string. */
char *local_primary_conninfo(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			     int upstream);
/* The member a primary_conninfo points to, or -1. */
int local_upstream_of(const struct cluster_config *cluster, const char *primary_conninfo);

/* STATE_DIR/CLUSTER, created when missing (the state directory 0755, the cluster's 0700):
 * a new string, or NULL with the reason. */
char *local_cluster_state_directory(const struct local_platform *platform, const struct cluster_config *cluster,
				    char *why, size_t why_size);

/* The replication password of a cluster, created (random, mode 0600) on first use, and
 * the passfile libpq reads it from. False (why written) when they cannot be made. */
bool local_replication_secret(const struct local_platform *platform, const struct cluster_config *cluster,
			      char *password, size_t password_size, char *passfile, size_t passfile_size, char *why,
			      size_t why_size);

/* The settings pgha owns: pgha.conf (fixed settings and the configured parameters),
 * pgha-standby.conf (whom to follow) and pgha-synchronous.conf, all included from
 * postgresql.conf. upstream -1 removes the standby settings. */
bool local_write_settings(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			  char *why, size_t why_size);
/* Whether a member's pgha.conf holds what the configuration asks for now. */
bool local_settings_current(const struct local_platform *platform, const struct cluster_config *cluster, int index);
bool local_write_standby_settings(const struct local_platform *platform, const struct cluster_config *cluster,
				  int index, int upstream, char *why, size_t why_size);
bool local_write_synchronous_names(const struct local_platform *platform, const struct cluster_config *cluster,
				   int index, const char *names, char *why, size_t why_size);

/* Long operations run as programs on the loop; done is called once with the outcome. */
struct proc_job *local_initialize(const struct local_platform *platform, sd_event *event,
				  const struct cluster_config *cluster, int index, proc_done_fn done, void *userdata);
struct proc_job *local_clone(const struct local_platform *platform, sd_event *event,
			     const struct cluster_config *cluster, int index, int source, proc_done_fn done,
			     void *userdata);
/* After a successful initdb or pg_basebackup: settings, and for a clone standby.signal
 * and the move of the copy into place. */
bool local_finish_initialize(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			     char *why, size_t why_size);
bool local_finish_clone(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			int source, char *why, size_t why_size);
/* A copy that failed is moved aside like an unusable directory: pgha deletes no data. */
void local_abandon_clone(const struct local_platform *platform, const struct cluster_config *cluster, int index);

/* Starts the postmaster detached (it outlives pghad); returns its pid or -1. */
pid_t local_start(const struct local_platform *platform, const struct cluster_config *cluster, int index, char *why,
		  size_t why_size);

/* Asks the postmaster to stop (fast shutdown: SIGINT); does not wait. */
bool local_stop(pid_t postmaster, char *why, size_t why_size);
/* Stops the running members of a removed cluster, the primary first (it then sends its
 * standbys everything, its shutdown checkpoint included), standbys once it is down.
 * Returns how many are still running. */
int local_stop_removed_cluster(const struct local_platform *platform, const struct cluster_config *removed);
/* Deletes everything of a cluster: its directory under base_dir (data, moved-aside
 * copies, logs) and its state directory (secrets, intent). Only for a cluster that is
 * not configured and has no running member; the caller has checked the operator's
 * confirmation. False with the reason otherwise. */
bool local_purge_cluster(const struct local_platform *platform, const char *name, char *why, size_t why_size);

/* The live processes of a member: every process (zombies aside) whose working directory
 * is its data directory, as PostgreSQL's postmaster and all its children have, also
 * those a killed postmaster left behind. */
int local_count_processes(const struct local_platform *platform, const struct cluster_config *cluster, int index);
/* Fences a member: SIGKILL to its postmaster (even a stopped one) and to every live
 * process of it. Returns how many were signalled, -1 (why written) when none could be. */
int local_fence(const struct local_platform *platform, const struct cluster_config *cluster, int index,
		pid_t postmaster, char *why, size_t why_size);
/* Ends a member's WAL receiver (SIGTERM to receiver, once it is known to be a process of
 * that member, and SIGCONT if it is stopped): its startup process then starts another only if the settings it has
 * reloaded still name an upstream. False (why written) when it cannot be signalled. */
bool local_stop_wal_receiver(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			     pid_t receiver, char *why, size_t why_size);
/* From pg_control of a stopped member: its latest checkpoint's location and timeline, and whether it
 * was shut down cleanly. False when pg_controldata cannot tell. */
bool local_control_checkpoint(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			      uint64_t *checkpoint_lsn, uint32_t *timeline, bool *shut_down);
/* Makes a stopped former primary a copy of source's history: pg_rewind (which first
 * finishes crash recovery if it was not shut down cleanly; nothing to do when it has
 * not diverged). Then local_finish_rejoin writes its settings and standby.signal. */
struct proc_job *local_rewind(const struct local_platform *platform, sd_event *event,
			      const struct cluster_config *cluster, int index, int source, proc_done_fn done,
			      void *userdata);
bool local_finish_rejoin(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			 int source, char *why, size_t why_size);

/* Renames an unusable data directory to data.unusable.TIMESTAMP. */
bool local_move_aside(const struct local_platform *platform, const struct cluster_config *cluster, int index,
		      char *moved_to, size_t moved_size, char *why, size_t why_size);

#endif
