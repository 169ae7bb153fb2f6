/* platform_k8s: members as Pods with PersistentVolumeClaims, routes as Services selecting role labels, and one acting pghad per cluster elected by a Lease that also holds the cluster's intent. */
#ifndef PGHA_PLATFORM_K8S_H
#define PGHA_PLATFORM_K8S_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config.h"
#include "observation.h"
#include "pg.h"
#include "platform.h"
#include "state.h"

/* The label every object pgha creates carries; objects without it are never touched. */
#define KUBE_OWNER_LABEL "app.kubernetes.io/managed-by"
#define KUBE_OWNER_VALUE "pgha"

struct kube_platform;

/* The platform interface on Kubernetes (platform.h). */
extern const struct platform_ops kube_platform_ops;

/* A client from platform.kubernetes (kubeconfig or in-cluster credentials). identity
 * names this pghad in Leases (NULL: HOSTNAME-PID). NULL (why written) when the
 * credentials cannot be used. */
struct kube_platform *kube_platform_new(const struct pgha_config *config, const char *identity, char *why,
					size_t why_size);
void kube_platform_free(struct kube_platform *kube);
/* After a reload: the configuration in force (the namespace and credentials stay). */
void kube_platform_set_config(struct kube_platform *kube, const struct pgha_config *config);

/* Once per iteration, before anything else: lists the namespace's pods and volume claims
 * of pgha (two requests). False (why written) when the API server did not answer: the
 * iteration then acts on nothing. */
bool kube_refresh(struct kube_platform *kube, char *why, size_t why_size);
/* Requests sent in the last completed iteration, and in all. */
unsigned long kube_requests_per_iteration(const struct kube_platform *kube);
unsigned long kube_requests_total(const struct kube_platform *kube);
/* Requests by method and HTTP status, as a JSON array of {verb, code, count}. */
json_t *kube_request_counts(const struct kube_platform *kube);
/* Requests per second by verb (GET, LIST, WATCH, POST, PUT, PATCH, DELETE) over the last
 * minute at most, and "seconds": the time they were measured over. */
json_t *kube_request_rates(const struct kube_platform *kube);

struct history_entry;
/* An entry of pghad's history as a Kubernetes Event on the pod of its member, as
 * kubectl get events shows them. False (why written) when it cannot be created. */
bool kube_post_event(struct kube_platform *kube, const struct history_entry *entry, char *why, size_t why_size);
const char *kube_identity(const struct kube_platform *kube);
const char *kube_namespace(const struct kube_platform *kube);

/* Election: takes or renews cluster's Lease, and reads the state kept on it. Returns
 * true when this pghad holds it and may act; false with why ("held by X") otherwise. */
bool kube_lead(struct kube_platform *kube, const struct cluster_config *cluster, struct cluster_state *state,
	       char *why, size_t why_size);
/* Writes state onto the Lease, conditioned on its resourceVersion; false (why written)
 * when the Lease changed under us: this pghad then no longer acts on the cluster. */
bool kube_save_state(struct kube_platform *kube, const struct cluster_config *cluster,
		     const struct cluster_state *state, char *why, size_t why_size);
/* Whether this pghad may take an action on cluster now (fence, promote, delete, follow,
 * create, purge...): it holds the Lease and, by the monotonic clock read now, the Lease
 * has more than a safety margin left (lease.h). When not, why says so and it is logged
 * (once per cause): the caller stops acting. Cheap: no request. */
bool kube_may_act(struct kube_platform *kube, const char *cluster, char *why, size_t why_size);
/* Adds the Leases' renewal timer to the daemon's loop (see platform.h's attach). */
void kube_attach(struct kube_platform *kube, sd_event *event);
/* Whether this pghad holds cluster's Lease now, and the holder as last read ("" when
 * unknown). */
bool kube_lease_held(const struct kube_platform *kube, const char *cluster);
const char *kube_lease_holder(const struct kube_platform *kube, const char *cluster);

/* The platform's half of an observation: members (by index, up to the highest volume
 * claim or replicas), each from its pod (phase, address, deletion) and its claim
 * (whether it holds data, its last role and timeline, the parameters applied). */
void kube_observe_cluster(struct kube_platform *kube, const struct cluster_config *cluster,
			  struct cluster_observation *observation);
/* How pghad connects to a member: its pod's address, as the superuser, with a passfile
 * written from the cluster's Secret. host is a new string (NULL when no address). */
struct pg_target kube_admin_target(struct kube_platform *kube, const struct cluster_config *cluster,
				   const struct member_observation *member);
/* The primary_conninfo pgha sets for a standby following upstream (a new string), and
 * the member a running primary_conninfo points to (-1: none). */
char *kube_primary_conninfo(const struct cluster_config *cluster, int index, const struct member_observation *upstream);
int kube_upstream_of(const struct cluster_observation *observation, const char *primary_conninfo);

/* The cluster's Secret (made once) and the replication password from it. */
bool kube_replication_password(struct kube_platform *kube, const struct cluster_config *cluster, char *password,
			       size_t password_size, char *why, size_t why_size);

/* How a member's pod starts: what pgha-entrypoint is told (PGHA_ROLE, PGHA_BOOTSTRAP,
 * PGHA_REWIND). */
enum kube_pod_start {
	KUBE_POD_PRIMARY,   /* as a primary, from the data it has */
	KUBE_POD_BOOTSTRAP, /* as the first primary of a new cluster: may initdb an empty volume */
	KUBE_POD_STANDBY,   /* as a standby of upstream: cloned first when its volume is empty */
	KUBE_POD_REWIND,    /* as a standby of upstream, its data rewound first: it diverged */
};

/* Creates member index's claim when missing and its pod, to start as start says; a
 * standby follows upstream (which may be NULL when no primary has an address: an
 * existing standby starts without one). A pod that ended is deleted first. */
bool kube_create_member(struct kube_platform *kube, const struct cluster_config *cluster, int index,
			enum kube_pod_start start, const struct member_observation *upstream, char *why,
			size_t why_size);
/* Deletes member index's pod (grace_seconds -1: its own grace period); its claim stays. */
bool kube_delete_member(struct kube_platform *kube, const struct cluster_config *cluster, int index,
			int grace_seconds, char *why, size_t why_size);
/* Fences member index: its labels stop routing to it, then its pod is deleted with its
 * termination grace period (the pod stays until its kubelet reports its container gone;
 * kube_observe_cluster counts it as fenced meanwhile). */
bool kube_fence(struct kube_platform *kube, const struct cluster_config *cluster, int index, char *why,
		size_t why_size);
/* The parameters applied to member index's data are now those of the configuration. */
bool kube_mark_configured(struct kube_platform *kube, const struct cluster_config *cluster, int index, char *why,
			  size_t why_size);
/* The parameters to SET and the names to RESET for member index to run the configured
 * parameters (arrays of new strings, NULL-terminated). */
void kube_parameter_changes(struct kube_platform *kube, const struct cluster_config *cluster, int index,
			    char ***set_names, char ***set_values, char ***reset_names);

/* After the cluster's actions: pods labelled by the role observed (master=true on the
 * one primary only), claims annotated with their data's role and timeline, the Services
 * CLUSTER-rw and CLUSTER-ro present. Changes only what differs. */
void kube_publish(struct kube_platform *kube, const struct cluster_config *cluster,
		  const struct cluster_observation *observation);

/* Clusters with pgha's pods or Services but no block in the configuration: their pods
 * and Services are deleted, their claims (data), Secret and Lease kept. */
void kube_remove_unconfigured(struct kube_platform *kube, const struct pgha_config *config);
/* Deletes the claims, Secret and Lease of a cluster that is not configured and has no
 * pod left. False with the reason otherwise. */
bool kube_purge_cluster(struct kube_platform *kube, const struct pgha_config *config, const char *name, char *why,
			size_t why_size);

#endif
