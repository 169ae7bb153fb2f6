/* fencewatch: a member's watch on its own primary, as a process of its own beside the postmaster: each second it asks the local PostgreSQL its role and standbys, and the API server its pod and the cluster's Lease, and exits asking for an immediate shutdown when selffence says so. */
#ifndef PGHA_FENCEWATCH_H
#define PGHA_FENCEWATCH_H

#include <stdbool.h>
#include <sys/types.h>

#include "pg.h"

/* The watch's exit status that asks the supervisor for an immediate shutdown. */
#define FENCEWATCH_EXIT_STOP 86
/* ... and the one that asks for a clean (fast) shutdown: a switchover demotes this primary. */
#define FENCEWATCH_EXIT_DEMOTE 87
/* Time between two rounds of checks. */
#define FENCEWATCH_INTERVAL_MS 1000

struct fencewatch_config {
	const char *cluster;   /* for log lines */
	const char *member;
	const char *lease;     /* the Lease holding the cluster's state, in the service account's namespace */
	const char *pod_name;
	const char *pod_uid;   /* NULL: the pod's uid is not checked */
	int member_index;      /* this member in the Lease's state */
	int isolation_ms;
	struct pg_target local; /* the member's own PostgreSQL, as its superuser */
};

/* Forks the watch (its credentials are the pod's service account, see k8s.h); the child
 * never returns: it ends with FENCEWATCH_EXIT_STOP once PostgreSQL must stop (why
 * logged), with FENCEWATCH_EXIT_DEMOTE once a switchover asks for its clean shutdown,
 * and dies with its parent. Every request is bounded: a round lasts at most a
 * few seconds whatever the peers do, and the parent, which only waits for it, is never
 * held. The pid, -1 (logged) when it cannot be forked. */
pid_t fencewatch_start(const struct fencewatch_config *config);

#endif
