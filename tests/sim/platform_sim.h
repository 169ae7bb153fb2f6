/* platform_sim: a simulated platform for tests: members are records in memory that a test moves (dies, hangs, lags, blips), and every statement pghad sends is answered from them; no PostgreSQL, no process. */
#ifndef PGHA_PLATFORM_SIM_H
#define PGHA_PLATFORM_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "platform.h"
#include "state.h"

#define SIM_MAX_CLUSTERS 1024
/* The slots of the index of clusters by name: a power of two, twice the clusters. */
#define SIM_INDEX_SIZE (2 * SIM_MAX_CLUSTERS)
#define SIM_MAX_MEMBERS 16

/* One member as the simulation keeps it. */
struct sim_member {
	bool data;          /* it has a data directory */
	bool standby;       /* standby.signal, or a standby while running */
	bool running;       /* its postmaster runs */
	bool clean;         /* it was shut down cleanly (not killed) */
	bool hung;          /* it runs but answers nothing (SIGSTOP, a full disk) */
	int blips;          /* the next probes that fail though it runs */
	uint64_t lag;       /* bytes a standby stays behind its upstream */
	uint32_t timeline;
	uint64_t lsn;       /* primary: written; standby: received and replayed */
	int upstream;       /* the member its settings follow, -1: none */
	bool role;          /* the replication role exists (on a primary) */
	char synchronous[STATE_NAMES_SIZE];
	char slots[SIM_MAX_MEMBERS][64];
	int slot_count;
	unsigned long probes; /* observe.c's probes asked of it, answered or not */
	unsigned long pings;  /* observe.c's pings (a Sync alone) asked of it */
};

struct sim_cluster {
	char name[64];
	struct sim_member members[SIM_MAX_MEMBERS];
	struct cluster_state state; /* what save_state recorded */
	bool state_saved;
	bool refuse_actions;    /* may_act says no, as for a Lease held past its margin */
	unsigned long refusals; /* the times may_act said no */
};

/* The simulated world: every cluster by name, made on first sight. */
struct sim_world {
	struct sim_cluster clusters[SIM_MAX_CLUSTERS];
	int cluster_count;
	/* clusters by the hash of their name (open addressing): index + 1, 0 for a free slot;
	 * so that finding one costs the same with 1,000 clusters as with 1 (bench/scale-sim) */
	int index[SIM_INDEX_SIZE];
	unsigned long statements; /* statements answered */
	unsigned long promotions;
};

/* The operations; the platform's state is the world sim_attach gives. */
extern const struct platform_ops sim_platform_ops;
/* The world the next open uses (one at a time). */
void sim_attach(struct sim_world *world);

/* The world moves on: primaries write bytes, streaming standbys receive up to their lag. */
void sim_advance(struct sim_world *world, uint64_t bytes);
struct sim_cluster *sim_cluster(struct sim_world *world, const char *name);

/* What a test does to a member. */
void sim_kill(struct sim_world *world, const char *cluster, int index);  /* dies: SIGKILL, no clean shutdown */
void sim_hang(struct sim_world *world, const char *cluster, int index, bool hung);
void sim_lag(struct sim_world *world, const char *cluster, int index, uint64_t bytes);
void sim_blip(struct sim_world *world, const char *cluster, int index, int probes);

/* The member that runs as a primary (-1: none, -2: several). */
int sim_primary(const struct sim_world *world, const char *cluster);

#endif
