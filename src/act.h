/* act: carries out decide's actions on the local platform, logs each, records intent before changing the synchronous set, and tracks long operations so the loop never waits for them. */
#ifndef PGHA_ACT_H
#define PGHA_ACT_H

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "decide.h"
#include "observe.h"
#include "platform_local.h"

struct actor;
struct kube_platform;

/* config points at the daemon's current configuration, which a reload replaces:
 * operations that finish later look their cluster up in it by name. */
/* kube NULL: members are local; else they are the kubernetes platform's pods. */
struct actor *actor_new(sd_event *event, const struct local_platform *platform, struct kube_platform *kube,
			struct pgha_config *const *config);
void actor_free(struct actor *actor);

/* observe_busy_fn: an operation on the member is under way. */
bool actor_busy(const char *cluster, int index, void *actor);

/* Ends the waits that the observation shows are over (a started member answers, a
 * stopped one is gone), and clears the busy flag of their members in observation, so
 * that the decision made from it can already act on them. */
void actor_settle(struct actor *actor, const struct cluster_config *cluster, struct cluster_observation *observation);

/* Ends the waits that the observation shows are over (a started member answers, a
 * stopped one is gone), then carries out actions in order. An action that fails is
 * logged; the next loop decides again from what it then observes. */
void actor_run(struct actor *actor, const struct cluster_config *cluster, const struct cluster_observation *observation,
	       const struct action_list *actions);

/* The last thing done to or failed on a member, for status ("" when none). */
const char *actor_last_event(const struct actor *actor, const char *cluster, int index);

#endif
