/* platform_k8s: members as Pods with PersistentVolumeClaims, routes as Services selecting role labels, and one acting pghad per cluster elected by a Lease that also holds the cluster's intent. */
#include "autoconfig.h"

#include "platform_k8s.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "act.h"
#include "entrypoint.h"
#include "exitcode.h"
#include "file.h"
#include "jsonpack.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "lease.h"
#include "log.h"
#include "memory.h"
#include "names.h"
#include "history.h"
#include "observation.h"
#include "podgone.h"
#include "testhook.h"

#define SUPERUSER "postgres"
#define REPLICATION_USER "pgha_replicator"
/* Where the member pods keep their data and find their secrets (see pgha-entrypoint(1)). */
#define DATA_MOUNT "/var/lib/postgresql/data"
#define DATA_DIRECTORY DATA_MOUNT "/pgdata"
#define SECRETS_MOUNT "/etc/pgha/secrets"
#define POSTGRES_UID 999
/* pgha-entrypoint turns a pod's SIGTERM into an immediate shutdown and kills a postmaster
 * still there after 4 s: the container ends within this, and a fenced member stops at
 * once rather than after a smart shutdown that open sessions could hold for ever. */
#define TERMINATION_GRACE_SECONDS 5
/* Where a container finds its service account's token, CA and namespace. */
#define SERVICE_ACCOUNT_MOUNT "/var/run/secrets/kubernetes.io/serviceaccount"
/* A projected token's life; the kubelet renews it before 80% of it. */
#define TOKEN_EXPIRATION_SECONDS 3607
/* The most members a cluster can have (the replicas option's maximum). */
#define MEMBERS_MAX 99

/* Annotations pgha keeps: on a claim, what its data is; on a Lease, the cluster's state. */
#define ANNOTATION_INITIALIZED "pgha.io/initialized"
#define ANNOTATION_ROLE "pgha.io/role"
#define ANNOTATION_TIMELINE "pgha.io/timeline"
#define ANNOTATION_PARAMETERS "pgha.io/parameters"
#define ANNOTATION_STATE "pgha.io/state"
/* on a claim: what pgha-entrypoint last kept aside in the volume (a failed rewind), for status */
#define ANNOTATION_KEPT_ASIDE "pgha.io/kept-aside"
/* on a claim: the member's pod last seen bound to a node with its containers not all ended,
 * {"node", "pod", "uid"}; removed once they are seen ended, or its node back (podgone.h).
 * A pod that leaves the API server without that (deleted at once, or by the pod garbage
 * collector after its Node object went) may still run there: the member is not made
 * again on the claim meanwhile. */
#define ANNOTATION_POD "pgha.io/pod"
/* The uids of pods the watch saw deleted with their containers ended, the latest kept. */
#define ENDED_UIDS 64
/* The pods the watch saw deleted bound to a node with their containers not ended, whose
 * claim's ANNOTATION_POD is written from this if it was not yet (a pod deleted before
 * kube_publish recorded it), the latest kept. */
#define VANISHED_PODS 16
/* A Node and its Lease are read again no sooner than this while a member waits on them. */
#define NODE_READ_MS 500

/* How often the holder renews: see kube_lead and lease.h. */
#define RENEW_FRACTION LEASE_RENEW_FRACTION

struct kube_platform;

/* A member whose pod left the API server while it may still run on its node: what its
 * claim's ANNOTATION_POD says, the reads of the node and its Lease, the judgement's memory. */
struct pod_wait {
	struct kube_platform *kube;
	char cluster[NAMES_BUFFER_SIZE];
	int index;
	char pod[NAMES_BUFFER_SIZE], uid[64], node[256];
	struct podgone_memory memory;
	struct k8s_call *node_call, *lease_call;
	long long read_ms;           /* monotonic: when the last reads were sent */
	bool node_read, lease_read;  /* answered (200 or 404) since the wait began */
	bool node_exists, node_ready;
	char renew_time[PODGONE_TIME_SIZE];
	char read_error[512];        /* the last read that failed otherwise, "" when none */
	char why[512];               /* the last judgement's reason, logged when it changes */
	bool gone;                   /* judged gone: the annotation is removed (kube_publish) */
};

struct lease_cache {
	struct kube_platform *kube;
	char cluster[NAMES_BUFFER_SIZE];
	struct k8s_call *call;  /* a read or write in flight */
	bool idle;              /* nothing in flight, nor a chain (a read, then a takeover) under way */
	long long read_ms;      /* monotonic: when it was last read (not held) */
	bool writing_takeover;
	int writing_duration_ms;
	int last_status;        /* of the last write */
	char error[1024];       /* why the last read or write failed, "" when it did not */
	json_t *object;         /* as last read or written */
	bool held;
	/* monotonic: when the request of our last successful write started (the earliest it
	 * can have landed), and the duration it wrote */
	long long renewed_ms;
	int renewed_duration_ms;
	char seen_version[64];  /* the resourceVersion last seen, and since when (monotonic, read after the answer) */
	long long seen_ms;
	/* the last refusal to act, logged once per renewal and cause: the renewal it was
	 * judged on, and whether the Lease was held then and past its end */
	long long refused_renewal_ms;
	int refused_cause; /* 0: none since acting; 1: not held; 2: within the margin; 3: expired */
	char holder[256];
	long long service_created_ms[2], service_refused_ms[2]; /* CLUSTER-rw, -ro: see ensure_service */
};

#define RATE_VERBS 7
#define RATE_SAMPLES 64

struct secret_cache {
	char cluster[NAMES_BUFFER_SIZE];
	char superuser[128];
	char replication[128];
	char *passfile;
};

struct kube_platform {
	const struct pgha_config *config;
	struct k8s_client *client;
	char namespace[NAMES_BUFFER_SIZE];
	char identity[256];
	json_t *pods; /* items of the last list */
	json_t *claims;
	json_t *services; /* pgha's Services (CLUSTER-rw, -ro) */
	unsigned long requests_at_refresh, requests_per_iteration;
	struct lease_cache **leases; /* each at its own address: calls in flight point to it */
	size_t lease_count;
	long long deadline_ms;       /* monotonic: this iteration's budget for the API server ends (0: none) */
	struct secret_cache *secrets;
	size_t secret_count;
	sd_event_source *renewal;     /* the Leases' renewal timer, once attached to the loop */
	struct kube_watch *watches;   /* pods, claims */
	bool list_ended;              /* set when a list answers or fails */
	long long silent_since_ms;    /* monotonic: the API server was last seen silent since then (0: not) */
	/* requests made by verb, sampled at most once a second: the rates status shows */
	struct rate_sample {
		long long ms;
		unsigned long counts[RATE_VERBS];
	} samples[RATE_SAMPLES];
	size_t sample_count, sample_next;
	char ended_uids[ENDED_UIDS][64]; /* see ENDED_UIDS */
	size_t ended_next;
	struct vanished_pod {              /* see VANISHED_PODS */
		char pod[NAMES_BUFFER_SIZE], uid[64];
		char *record;              /* its ANNOTATION_POD text; NULL: an empty slot */
	} vanished[VANISHED_PODS];
	size_t vanished_next;
	struct pod_wait **waits;         /* each at its own address: calls in flight point to it */
	size_t wait_count;
	/* "CLUSTER/INDEX": the uid of the pod pghad last made for that member, which its
	 * operation awaits (kube_failed): right after pghad replaced a pod, the watch may
	 * still show the one it replaced, ended */
	json_t *made;
};

static const char *const rate_verbs[RATE_VERBS] = {"GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE"};

static void kube_watches_new(struct kube_platform *kube);
static void kube_watches_free(struct kube_platform *kube);
static const char *object_name(const json_t *object);
static bool pod_deleted(struct kube_platform *kube, const json_t *pod);
static void pods_unlisted(struct kube_platform *kube, const json_t *previous, const json_t *listed, const char *why);
static void waits_free(struct kube_platform *kube);

static long long monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* A MicroTime as the API writes it: "2026-11-22T10:00:00.123456Z". */
static void micro_time(char *buffer, size_t size)
{
	struct timespec now;
	struct tm tm;
	char seconds[32];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(seconds, sizeof seconds, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buffer, size, "%s.%06ldZ", seconds, now.tv_nsec / 1000);
}

static int lease_duration_ms(const struct kube_platform *kube)
{
	return kube->config->platform.kubernetes.lease_seconds * 1000;
}

struct kube_platform *kube_platform_new(const struct pgha_config *config, const char *identity, char *why,
					size_t why_size)
{
	const char *kubeconfig = config->platform.kubernetes.kubeconfig;
	struct k8s_client *client = k8s_client_new(kubeconfig, NULL, why, why_size);
	if (!client)
		return NULL;
	struct kube_platform *kube = xcalloc(1, sizeof *kube);
	kube->config = config;
	kube->client = client;
	kube_watches_new(kube);
	snprintf(kube->namespace, sizeof kube->namespace, "%s", config->platform.kubernetes.namespace);
	if (identity && identity[0]) {
		snprintf(kube->identity, sizeof kube->identity, "%s", identity);
	} else {
		char host[200] = "";
		gethostname(host, sizeof host - 1);
		snprintf(kube->identity, sizeof kube->identity, "%s-%ld", host[0] ? host : "pghad", (long)getpid());
	}
	return kube;
}

void kube_platform_free(struct kube_platform *kube)
{
	if (!kube)
		return;
	sd_event_source_disable_unref(kube->renewal);
	/* the calls in flight first, while the client they belong to still exists */
	kube_watches_free(kube);
	waits_free(kube);
	for (size_t i = 0; i < VANISHED_PODS; i++)
		free(kube->vanished[i].record);
	json_decref(kube->made);
	for (size_t i = 0; i < kube->lease_count; i++) {
		k8s_cancel(kube->leases[i]->call);
		json_decref(kube->leases[i]->object);
		free(kube->leases[i]);
	}
	free(kube->leases);
	k8s_client_free(kube->client);
	json_decref(kube->pods);
	json_decref(kube->claims);
	json_decref(kube->services);
	for (size_t i = 0; i < kube->secret_count; i++) {
		explicit_bzero(&kube->secrets[i], offsetof(struct secret_cache, passfile));
		free(kube->secrets[i].passfile);
	}
	free(kube->secrets);
	free(kube);
}

void kube_platform_set_config(struct kube_platform *kube, const struct pgha_config *config)
{
	kube->config = config;
}

const char *kube_identity(const struct kube_platform *kube)
{
	return kube->identity;
}

const char *kube_namespace(const struct kube_platform *kube)
{
	return kube->namespace;
}

unsigned long kube_requests_per_iteration(const struct kube_platform *kube)
{
	return kube->requests_per_iteration;
}

unsigned long kube_requests_total(const struct kube_platform *kube)
{
	return k8s_client_requests(kube->client);
}

static char *core_path(const struct kube_platform *kube, const char *kind, const char *name);
static bool is_configured_cluster(const struct pgha_config *config, const char *name);

json_t *kube_request_counts(const struct kube_platform *kube)
{
	size_t count;
	const struct k8s_request_count *counts = k8s_client_request_counts(kube->client, &count);
	json_t *array = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(array, jsonpack("{s:s, s:i, s:I}", "verb", counts[i].method, "code", counts[i].status,
						      "count", (json_int_t)counts[i].count));
	return array;
}

/* "switchover" -> "Switchover", "manual failover" -> "ManualFailover": an Event's reason. */
static void event_reason(char *buffer, size_t size, const char *kind)
{
	size_t length = 0;
	bool upper = true;
	for (const char *c = kind; *c && length + 1 < size; c++) {
		if (*c == ' ' || *c == '-') {
			upper = true;
			continue;
		}
		buffer[length++] = upper && *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c;
		upper = false;
	}
	buffer[length] = '\0';
}

bool kube_post_event(struct kube_platform *kube, const struct history_entry *entry, char *why, size_t why_size)
{
	char pod[NAMES_BUFFER_SIZE], reason[64], now[64], *message;
	const char *dash = strrchr(entry->member, '-');

	if (!entry->cluster[0] || !dash) {
		snprintf(why, why_size, "no member's pod to attach the event to");
		return false;
	}
	names_pod(pod, sizeof pod, entry->cluster, atoi(dash + 1));
	event_reason(reason, sizeof reason, entry->kind);
	micro_time(now, sizeof now);
	/* an Event's lastTimestamp is a Time: seconds, no fraction */
	snprintf(now + 19, sizeof now - 19, "Z");
	bool failed = strcmp(entry->outcome, "completed") != 0 && strcmp(entry->outcome, "accepted") != 0;
	message = xasprintf("%s %s in %lld ms: %s", entry->kind, entry->outcome, entry->duration_ms, entry->reason);
	json_t *event = jsonpack("{s:s, s:s, s:{s:s+, s:s}, s:{s:s, s:s, s:s, s:s}, s:s, s:o, s:s, s:{s:s}, s:s, s:s, "
				 "s:s, s:s, s:i}",
				 "apiVersion", "v1", "kind", "Event", "metadata", "generateName", pod, ".", "namespace",
				 kube->namespace, "involvedObject", "apiVersion", "v1", "kind", "Pod", "name", pod,
				 "namespace", kube->namespace, "reason", reason, "message", jsonpack_text(message), "type",
				 failed ? "Warning" : "Normal", "source", "component", "pghad", "reportingComponent",
				 "pghad", "reportingInstance", kube->identity, "firstTimestamp", now, "lastTimestamp", now,
				 "count", 1);
	free(message);
	char *path = core_path(kube, "events", NULL);
	int status = event ? k8s_create(kube->client, path, event, NULL, why, why_size) : -1;
	if (!event)
		snprintf(why, why_size, "the event cannot be encoded");
	free(path);
	json_decref(event);
	return status >= 200 && status < 300;
}

/* "/api/v1/namespaces/NS/KIND[/NAME]" */
static char *core_path(const struct kube_platform *kube, const char *kind, const char *name)
{
	return name ? xasprintf("/api/v1/namespaces/%s/%s/%s", kube->namespace, kind, name)
		    : xasprintf("/api/v1/namespaces/%s/%s", kube->namespace, kind);
}

static char *lease_path(const struct kube_platform *kube, const char *name)
{
	return name ? xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", kube->namespace, name)
		    : xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases", kube->namespace);
}

/* ---- watches ---- */

/* How long a watch lasts on the API server before it is made again from the last
 * resourceVersion (the client gives it this and a margin). */
#define WATCH_SECONDS 240
/* A list or watch that failed is made again no sooner than this. */
#define WATCH_RETRY_MS 1000
/* An iteration's time for the API server: synchronous requests end by then. */
#define ITERATION_BUDGET_MS 1000
/* pods, claims, services: what an iteration needs listed */
#define WATCHES 3
/* and the Leases, which the renewal timer reads (not held) from their watch */
#define WATCH_LEASES 3

/* What the watch of one kind (pods, claims) keeps: the objects as the API server last
 * said (live, changed by the watch's events as they come: an event replaces an element,
 * never edits one, so that a shallow copy is a snapshot), the version to resume from. */
struct kube_watch {
	struct kube_platform *kube;
	const char *kind;       /* "pods", "persistentvolumeclaims" */
	json_t *live;           /* NULL until the first list answered */
	char version[64];       /* resourceVersion to resume from ("" : list first) */
	struct k8s_call *call;  /* the list or the watch in flight */
	bool listing;
	bool expired;           /* the watch said 410 Gone: list again */
	long long retry_ms;     /* monotonic: not before then after a failure */
	long long sent_ms;      /* monotonic: when the watch in flight was sent */
	char error[1024];
	unsigned long lists, watches, events;
};

static void watch_kick(struct kube_watch *watch);

static char *watch_path(const struct kube_watch *watch, bool streaming)
{
	char *collection = strcmp(watch->kind, "leases") == 0 ? lease_path(watch->kube, NULL)
							     : core_path(watch->kube, watch->kind, NULL);
	char *selector = k8s_escape(KUBE_OWNER_LABEL "=" KUBE_OWNER_VALUE);
	char *path;
	if (streaming) {
		char *version = k8s_escape(watch->version);
		path = xasprintf("%s?labelSelector=%s&watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d",
				 collection, selector, version, WATCH_SECONDS);
		free(version);
	} else {
		/* resourceVersion 0: from the API server's watch cache, not a quorum read of etcd;
		 * the watch goes on from the version it says */
		path = xasprintf("%s?labelSelector=%s&resourceVersion=0", collection, selector);
	}
	free(selector);
	free(collection);
	return path;
}

static void watch_failed(struct kube_watch *watch, const char *why)
{
	watch->call = NULL;
	watch->listing = false;
	watch->retry_ms = monotonic_ms() + WATCH_RETRY_MS;
	watch->kube->list_ended = true;
	if (strcmp(watch->error, why) != 0)
		log_message(LOG_LEVEL_WARNING, NULL, NULL, "kubernetes: watching %s: %s", watch->kind, why);
	snprintf(watch->error, sizeof watch->error, "%s", why);
}

static void on_listed(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct kube_watch *watch = context;
	(void)sent_ms;

	json_t *items = json_object_get(reply, "items");
	const char *version = json_string_value(json_object_get(json_object_get(reply, "metadata"), "resourceVersion"));
	if (status != 200 || !(json_is_array(items) || json_is_null(items) || !items) || !version || !*version) {
		watch_failed(watch, status == 200 ? "the list has no items or no resourceVersion" : why);
		return;
	}
	json_t *listed = json_is_array(items) ? json_copy(items) : json_array();
	if (strcmp(watch->kind, "pods") == 0)
		pods_unlisted(watch->kube, watch->live, listed,
			      watch->expired ? "was too old to resume (410 Gone)" : "ended");
	json_decref(watch->live);
	watch->live = listed;
	snprintf(watch->version, sizeof watch->version, "%s", version);
	watch->call = NULL;
	watch->listing = false;
	watch->expired = false;
	if (watch->error[0])
		log_message(LOG_LEVEL_NOTICE, NULL, NULL, "kubernetes: watching %s again", watch->kind);
	watch->error[0] = '\0';
	watch->kube->list_ended = true;
	watch_kick(watch);
}

/* One event of the watch: the live objects follow it. */
static void on_watch_event(json_t *line, void *context)
{
	struct kube_watch *watch = context;
	const char *type = json_string_value(json_object_get(line, "type"));
	json_t *object = json_object_get(line, "object");
	const char *version = json_string_value(json_object_get(json_object_get(object, "metadata"), "resourceVersion"));

	if (!type || !json_is_object(object))
		return;
	watch->events++;
	if (strcmp(type, "ERROR") == 0) {
		/* 410 Gone: the version is too old to resume from; anything else ends it too */
		if (json_integer_value(json_object_get(object, "code")) == 410)
			watch->expired = true;
		else
			log_message(LOG_LEVEL_WARNING, NULL, NULL, "kubernetes: the watch of %s says: %s", watch->kind,
				    json_string_value(json_object_get(object, "message")) ?: "an error");
		return;
	}
	if (version && *version)
		snprintf(watch->version, sizeof watch->version, "%s", version);
	if (strcmp(type, "BOOKMARK") == 0 || !watch->live)
		return;
	const char *name = object_name(object);
	size_t i;
	json_t *item;
	json_array_foreach(watch->live, i, item)
		if (strcmp(object_name(item), name) == 0)
			break;
	if (strcmp(type, "DELETED") == 0) {
		if (strcmp(watch->kind, "pods") == 0)
			pod_deleted(watch->kube, object);
		if (i < json_array_size(watch->live))
			json_array_remove(watch->live, i);
	} else if (i < json_array_size(watch->live)) {
		json_array_set(watch->live, i, object);
	} else {
		json_array_append(watch->live, object);
	}
}

static void on_watch_end(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct kube_watch *watch = context;
	(void)reply;
	(void)sent_ms;

	watch->call = NULL;
	if (status == 410)
		watch->expired = true;
	if (watch->expired) {
		log_message(LOG_LEVEL_INFO, NULL, NULL, "kubernetes: the watch of %s is too old to resume (410 Gone): "
			    "listing again", watch->kind);
		watch->version[0] = '\0';
		watch_kick(watch);
	} else if (status == 200) {
		/* its time on the API server is over: on from where it was */
		watch_kick(watch);
	} else {
		watch_failed(watch, why);
	}
}

/* Lists, or watches from the version the list or the last event said, when neither is
 * in flight and no failure is too recent. */
static void watch_kick(struct kube_watch *watch)
{
	struct kube_platform *kube = watch->kube;
	char why[1024];

	if (watch->call || monotonic_ms() < watch->retry_ms)
		return;
	bool streaming = watch->live && watch->version[0] && !watch->expired;
	if (streaming && testhook_expire_watch(watch->kind)) {
		on_watch_end(410, NULL, "test hook", 0, watch); /* lists again */
		return;
	}
	char *path = watch_path(watch, streaming);
	if (streaming) {
		watch->watches++;
		watch->sent_ms = monotonic_ms();
		watch->call = k8s_stream(kube->client, path, monotonic_ms() + (WATCH_SECONDS + 30) * 1000LL, on_watch_event,
					 on_watch_end, watch, why, sizeof why);
	} else {
		watch->lists++;
		watch->listing = true;
		watch->call = k8s_send(kube->client, "LIST", path, NULL, NULL, 0, on_listed, watch, why, sizeof why);
	}
	free(path);
	if (!watch->call)
		watch_failed(watch, why);
}

/* The API server answers again after a silence: each watch sent before the silence is
 * made again from its resourceVersion (nothing is missed, and a live stream costs one
 * request). Its connection may be alive while the stream is not: an HTTP/2 proxy or load
 * balancer in front of the API server keeps the TCP connection whose upstream is gone,
 * and the kernel's keepalives cannot see that. A stream on a dead connection has been
 * ended by its keepalives already. */
static void watches_after_silence(struct kube_platform *kube)
{
	long long silent = k8s_client_silent_since(kube->client);

	if (silent) {
		if (!kube->silent_since_ms)
			kube->silent_since_ms = silent;
		return;
	}
	if (!kube->silent_since_ms)
		return;
	for (int i = 0; i <= WATCH_LEASES; i++) {
		struct kube_watch *watch = &kube->watches[i];
		if (!watch->call || watch->listing || watch->sent_ms >= kube->silent_since_ms)
			continue;
		log_message(LOG_LEVEL_INFO, NULL, NULL, "kubernetes: the API server answers again: watching %s again "
			    "from where it was", watch->kind);
		k8s_cancel(watch->call);
		watch->call = NULL;
		watch_kick(watch);
	}
	kube->silent_since_ms = 0;
}

static bool watches_listed(const struct kube_platform *kube)
{
	for (int i = 0; i < WATCHES; i++)
		if (!kube->watches[i].live)
			return false;
	return true;
}

static void kube_watches_new(struct kube_platform *kube)
{
	kube->watches = xcalloc(WATCHES + 1, sizeof *kube->watches);
	kube->watches[0] = (struct kube_watch){.kube = kube, .kind = "pods"};
	kube->watches[1] = (struct kube_watch){.kube = kube, .kind = "persistentvolumeclaims"};
	kube->watches[2] = (struct kube_watch){.kube = kube, .kind = "services"};
	kube->watches[WATCH_LEASES] = (struct kube_watch){.kube = kube, .kind = "leases"};
}

static void kube_watches_free(struct kube_platform *kube)
{
	for (int i = 0; kube->watches && i <= WATCH_LEASES; i++) {
		k8s_cancel(kube->watches[i].call);
		json_decref(kube->watches[i].live);
	}
	free(kube->watches);
}

/* Synchronous requests end by deadline_ms (0: by their own limits only). */
static void kube_set_budget(struct kube_platform *kube, long long deadline_ms)
{
	kube->deadline_ms = deadline_ms;
	k8s_client_set_deadline(kube->client, deadline_ms);
}

static void verb_totals(const struct kube_platform *kube, unsigned long *totals)
{
	size_t count;
	const struct k8s_request_count *counts = k8s_client_request_counts(kube->client, &count);
	for (int v = 0; v < RATE_VERBS; v++)
		totals[v] = 0;
	for (size_t i = 0; i < count; i++)
		for (int v = 0; v < RATE_VERBS; v++)
			if (strcmp(counts[i].method, rate_verbs[v]) == 0)
				totals[v] += counts[i].count;
}

static void rates_sample(struct kube_platform *kube)
{
	long long now = monotonic_ms();
	if (kube->sample_count) {
		size_t last = (kube->sample_next + RATE_SAMPLES - 1) % RATE_SAMPLES;
		if (now - kube->samples[last].ms < 1000)
			return;
	}
	struct rate_sample *sample = &kube->samples[kube->sample_next];
	sample->ms = now;
	verb_totals(kube, sample->counts);
	kube->sample_next = (kube->sample_next + 1) % RATE_SAMPLES;
	if (kube->sample_count < RATE_SAMPLES)
		kube->sample_count++;
}

json_t *kube_request_rates(const struct kube_platform *kube)
{
	unsigned long totals[RATE_VERBS];
	long long now = monotonic_ms();
	json_t *rates = json_object();
	/* the oldest sample at most a minute old */
	const struct rate_sample *oldest = NULL;
	for (size_t i = 0; i < kube->sample_count; i++) {
		const struct rate_sample *sample = &kube->samples[i];
		if (now - sample->ms <= 60000 && (!oldest || sample->ms < oldest->ms))
			oldest = sample;
	}
	verb_totals(kube, totals);
	double seconds = oldest ? (double)(now - oldest->ms) / 1000.0 : 0;
	for (int v = 0; v < RATE_VERBS; v++)
		json_object_set_new(rates, rate_verbs[v],
				    json_real(seconds >= 1 ? (double)(totals[v] - oldest->counts[v]) / seconds : 0.0));
	json_object_set_new(rates, "seconds", json_real(seconds));
	return rates;
}

/* The snapshot an iteration works on: the watches' objects as they are now. The first
 * time, the lists are waited for within the iteration's budget; after that, nothing is:
 * an API server that does not answer leaves the last snapshot in force. */
bool kube_refresh(struct kube_platform *kube, char *why, size_t why_size)
{
	unsigned long now = k8s_client_requests(kube->client);

	kube->requests_per_iteration = now - kube->requests_at_refresh;
	kube->requests_at_refresh = now;
	kube_set_budget(kube, monotonic_ms() + ITERATION_BUDGET_MS);
	rates_sample(kube);
	bool failing = false;
	watches_after_silence(kube);
	for (int i = 0; i <= WATCH_LEASES; i++)
		watch_kick(&kube->watches[i]);
	while (!watches_listed(kube) && !failing && !k8s_client_silent_since(kube->client) &&
	       monotonic_ms() < kube->deadline_ms) {
		kube->list_ended = false;
		k8s_run(kube->client, &kube->list_ended, kube->deadline_ms);
		for (int i = 0; i < WATCHES; i++)
			failing |= kube->watches[i].retry_ms > monotonic_ms();
	}
	if (!watches_listed(kube)) {
		const char *error = "";
		for (int i = 0; i < WATCHES && !error[0]; i++)
			error = kube->watches[i].error;
		snprintf(why, why_size, "the lists of pods, claims and services: %s", error[0] ? error : "no answer yet");
		return false;
	}
	/* a watch that failed and was made again from where it was: it streams again */
	for (int i = 0; i <= WATCH_LEASES; i++) {
		struct kube_watch *watch = &kube->watches[i];
		if (watch->error[0] && watch->call && !watch->listing && k8s_call_status(watch->call) == 200) {
			log_message(LOG_LEVEL_NOTICE, NULL, NULL, "kubernetes: watching %s again", watch->kind);
			watch->error[0] = '\0';
		}
	}
	json_decref(kube->pods);
	json_decref(kube->claims);
	json_decref(kube->services);
	kube->pods = json_copy(kube->watches[0].live);
	kube->services = json_copy(kube->watches[2].live);
	kube->claims = json_copy(kube->watches[1].live);
	return true;
}

static const char *object_name(const json_t *object)
{
	const char *name = json_string_value(json_object_get(json_object_get(object, "metadata"), "name"));
	return name ? name : "";
}

static const char *object_label(const json_t *object, const char *label)
{
	return json_string_value(json_object_get(json_object_get(json_object_get(object, "metadata"), "labels"), label));
}

static const char *object_annotation(const json_t *object, const char *annotation)
{
	return json_string_value(
		json_object_get(json_object_get(json_object_get(object, "metadata"), "annotations"), annotation));
}

static json_t *find_named(json_t *items, const char *name)
{
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item)
		if (strcmp(object_name(item), name) == 0)
			return item;
	return NULL;
}

static json_t *member_pod(const struct kube_platform *kube, const char *cluster, int index)
{
	char name[NAMES_BUFFER_SIZE];
	names_pod(name, sizeof name, cluster, index);
	return find_named(kube->pods, name);
}

static const char *object_uid(const json_t *object)
{
	return json_string_value(json_object_get(json_object_get(object, "metadata"), "uid"));
}

#define MADE_KEY_SIZE (NAMES_BUFFER_SIZE + 16)

/* The member's key in kube->made: "CLUSTER/INDEX". */
static const char *made_key(char key[MADE_KEY_SIZE], const char *cluster, int index)
{
	snprintf(key, MADE_KEY_SIZE, "%s/%d", cluster, index);
	return key;
}

/* The pod pghad made for a member (uid: NULL when it does not know which is there). */
static void made_record(struct kube_platform *kube, const char *cluster, int index, const char *uid)
{
	char key[MADE_KEY_SIZE];
	made_key(key, cluster, index);
	if (!kube->made)
		kube->made = json_object();
	if (uid)
		json_object_set_new(kube->made, key, json_string(uid));
	else
		json_object_del(kube->made, key);
}

/* Whether the member's pod, as the watch shows it now, is the one pghad made last for it
 * (or pghad does not know which one it made). */
static bool pod_is_made(const struct kube_platform *kube, const char *cluster, int index, const json_t *pod)
{
	char key[MADE_KEY_SIZE];
	const char *made = json_string_value(json_object_get(kube->made, made_key(key, cluster, index)));
	return !made || strcmp(object_uid(pod) ?: "", made) == 0;
}

/* Deletes the pod as observed, on the condition that it is still that pod (its uid): a
 * decision made on one pod never deletes a newer one of the same name. 409: another pod
 * by now, which counts as done (the next iteration looks at the new one). */
static bool delete_pod(struct kube_platform *kube, const json_t *pod, int grace_seconds, char *why, size_t why_size)
{
	char *path = core_path(kube, "pods", object_name(pod));
	int status = k8s_delete(kube->client, path, grace_seconds, object_uid(pod), why, why_size);
	free(path);
	if (status == 409)
		log_message(LOG_LEVEL_NOTICE, object_label(pod, "cluster"), object_label(pod, "member"),
			    "pod %s not deleted: it is another pod by now (%s)", object_name(pod), why);
	return status == 200 || status == 202 || status == 404 || status == 409;
}

static json_t *member_claim(const struct kube_platform *kube, const char *cluster, int index)
{
	char name[NAMES_BUFFER_SIZE];
	names_volume(name, sizeof name, cluster, index);
	return find_named(kube->claims, name);
}

/* The member index an object of cluster is for, from its member label ("test-2"), or -1. */
static int member_index_of(const json_t *object, const char *cluster)
{
	const char *owner = object_label(object, "cluster"), *member = object_label(object, "member");
	size_t length = strlen(cluster);
	char *end;

	if (!owner || !member || strcmp(owner, cluster) != 0 || strncmp(member, cluster, length) != 0 ||
	    member[length] != '-')
		return -1;
	errno = 0;
	long index = strtol(member + length + 1, &end, 10);
	return errno || *end || end == member + length + 1 || index < 0 || index > 98 ? -1 : (int)index;
}

/* Whether the pod status reports every container terminated (and at least one). */
static bool containers_ended(const json_t *status)
{
	const json_t *containers = json_object_get(status, "containerStatuses");
	size_t i;
	json_t *container;

	if (!json_array_size(containers))
		return false;
	json_array_foreach(containers, i, container)
		if (!json_object_get(json_object_get(container, "state"), "terminated"))
			return false;
	return true;
}

/* An ended container's termination message, as pgha-entrypoint writes it (what pg_control
 * says once PostgreSQL exited): whether it shut down cleanly, at which checkpoint. */
static void read_termination(const json_t *status, struct member_observation *member)
{
	const json_t *container = json_array_get(json_object_get(status, "containerStatuses"), 0);
	const char *message = json_string_value(
		json_object_get(json_object_get(json_object_get(container, "state"), "terminated"), "message"));
	struct entrypoint_control control;

	if (!entrypoint_parse_control(message, &control))
		return;
	member->shut_down = control.shut_down;
	member->checkpoint_lsn = control.checkpoint_lsn;
	member->timeline = control.timeline;
}

/* ---- pods that left the API server while they may still run ---- */

/* Whether nothing of pod runs any more: its phase says its container ended, or it is
 * being deleted and its kubelet reported every container terminated. */
static bool pod_ended(const json_t *pod)
{
	const json_t *status = json_object_get(pod, "status");
	const char *phase = json_string_value(json_object_get(status, "phase"));
	if (phase && (strcmp(phase, "Failed") == 0 || strcmp(phase, "Succeeded") == 0))
		return true;
	return json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp") && containers_ended(status);
}

/* The watch saw pod deleted: as it was then, its containers ended or not. A kubelet
 * removes a pod only once it reported them ended; a pod removed at once (grace 0), or by
 * the pod garbage collector, need not have. Returns whether it is remembered as a pod
 * that may still run on its node. */
static char *pod_record_text(const json_t *pod);

static bool pod_deleted(struct kube_platform *kube, const json_t *pod)
{
	const char *uid = object_uid(pod);
	if (!uid)
		return false;
	if (pod_ended(pod)) {
		snprintf(kube->ended_uids[kube->ended_next], sizeof kube->ended_uids[0], "%s", uid);
		kube->ended_next = (kube->ended_next + 1) % ENDED_UIDS;
		return false;
	}
	char *record = pod_record_text(pod);
	if (!record)
		return false;
	struct vanished_pod *slot = &kube->vanished[kube->vanished_next];
	kube->vanished_next = (kube->vanished_next + 1) % VANISHED_PODS;
	free(slot->record);
	snprintf(slot->pod, sizeof slot->pod, "%s", object_name(pod));
	snprintf(slot->uid, sizeof slot->uid, "%s", uid);
	slot->record = record;
	return true;
}

/* The latest pod of that name the watch saw vanish while it may run, NULL when none. */
static struct vanished_pod *vanished_pod(struct kube_platform *kube, const char *name)
{
	for (size_t back = 1; back <= VANISHED_PODS; back++) {
		struct vanished_pod *slot = &kube->vanished[(kube->vanished_next + VANISHED_PODS - back) % VANISHED_PODS];
		if (slot->record && strcmp(slot->pod, name) == 0)
			return slot;
	}
	return NULL;
}

static void vanished_forget(struct kube_platform *kube, const char *uid)
{
	for (size_t i = 0; i < VANISHED_PODS; i++)
		if (kube->vanished[i].record && strcmp(kube->vanished[i].uid, uid) == 0) {
			free(kube->vanished[i].record);
			kube->vanished[i].record = NULL;
		}
}

static bool ended_uid(const struct kube_platform *kube, const char *uid)
{
	for (size_t i = 0; uid && uid[0] && i < ENDED_UIDS; i++)
		if (strcmp(kube->ended_uids[i], uid) == 0)
			return true;
	return false;
}

/* A list made again (why: what the watch did) replaces the view of pods: a pod of the
 * previous view missing from it left the API server while the watch was not there to say
 * so, and no DELETED event will ever come for it: it is taken as deleted as last seen
 * (pod_deleted). The first list after pghad starts has no previous view: a pod deleted
 * before it is covered by its claim's ANNOTATION_POD alone. Both lists have the same label
 * selector: pods not pgha's are in neither; one that lost pgha's label is missing, as the
 * watch would have said it deleted; those of clusters not configured here are taken in as
 * the watch's events are. */
static void pods_unlisted(struct kube_platform *kube, const json_t *previous, const json_t *listed, const char *why)
{
	json_t *unlisted = podgone_unlisted(previous, listed);
	size_t i;
	json_t *pod;

	json_array_foreach(unlisted, i, pod) {
		bool ended = pod_ended(pod) || ended_uid(kube, object_uid(pod));
		bool may_run = pod_deleted(kube, pod);
		if (!ended)
			log_message(may_run ? LOG_LEVEL_WARNING : LOG_LEVEL_NOTICE, object_label(pod, "cluster"),
				    object_label(pod, "member"), "pod %s (uid %s) left the API server unseen: not in the "
				    "list made again after the watch %s; taken as deleted as last seen (%s)",
				    object_name(pod), object_uid(pod), why,
				    may_run ? "it may still run on its node" : "on no node");
	}
	json_decref(unlisted);
}

/* A claim's ANNOTATION_POD read: false when it is not there or cannot be read. */
struct pod_record {
	char pod[NAMES_BUFFER_SIZE], uid[64], node[256];
};

static bool pod_record_parse(const char *text, struct pod_record *record)
{
	json_t *object = text ? json_loads(text, 0, NULL) : NULL;
	const char *pod = json_string_value(json_object_get(object, "pod"));
	const char *uid = json_string_value(json_object_get(object, "uid"));
	const char *node = json_string_value(json_object_get(object, "node"));
	bool read = pod && uid && node && uid[0] && node[0] && strlen(pod) < sizeof record->pod &&
		    strlen(uid) < sizeof record->uid && strlen(node) < sizeof record->node;
	if (read) {
		snprintf(record->pod, sizeof record->pod, "%s", pod);
		snprintf(record->uid, sizeof record->uid, "%s", uid);
		snprintf(record->node, sizeof record->node, "%s", node);
	}
	json_decref(object);
	return read;
}

/* The annotation a pod bound to a node whose containers have not all ended calls for, NULL
 * for any other pod. */
static char *pod_record_text(const json_t *pod)
{
	const char *node = json_string_value(json_object_get(json_object_get(pod, "spec"), "nodeName"));
	const char *uid = object_uid(pod);
	if (!node || !node[0] || !uid || !uid[0] || pod_ended(pod))
		return NULL;
	json_t *object = jsonpack("{s:s, s:s, s:s}", "node", node, "pod", object_name(pod), "uid", uid);
	char *text = object ? json_dumps(object, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(object);
	return text;
}

static void wait_free(struct pod_wait *wait)
{
	k8s_cancel(wait->node_call);
	k8s_cancel(wait->lease_call);
	free(wait);
}

static void waits_free(struct kube_platform *kube)
{
	for (size_t i = 0; i < kube->wait_count; i++)
		wait_free(kube->waits[i]);
	free(kube->waits);
	kube->waits = NULL;
	kube->wait_count = 0;
}

static struct pod_wait *wait_find(const struct kube_platform *kube, const char *cluster, int index)
{
	for (size_t i = 0; i < kube->wait_count; i++)
		if (kube->waits[i]->index == index && strcmp(kube->waits[i]->cluster, cluster) == 0)
			return kube->waits[i];
	return NULL;
}

/* The member no longer waits (its pod is there again, or its claim records none). */
static void wait_drop(struct kube_platform *kube, const char *cluster, int index)
{
	for (size_t i = 0; i < kube->wait_count; i++)
		if (kube->waits[i]->index == index && strcmp(kube->waits[i]->cluster, cluster) == 0) {
			wait_free(kube->waits[i]);
			kube->waits[i] = kube->waits[--kube->wait_count];
			return;
		}
}

/* The member's wait for the pod record names, a new one when it names another pod. */
static struct pod_wait *wait_for(struct kube_platform *kube, const char *cluster, int index,
				 const struct pod_record *record)
{
	struct pod_wait *wait = wait_find(kube, cluster, index);
	if (wait && strcmp(wait->uid, record->uid) == 0 && strcmp(wait->node, record->node) == 0)
		return wait;
	wait_drop(kube, cluster, index);
	wait = xcalloc(1, sizeof *wait);
	wait->kube = kube;
	snprintf(wait->cluster, sizeof wait->cluster, "%s", cluster);
	wait->index = index;
	snprintf(wait->pod, sizeof wait->pod, "%s", record->pod);
	snprintf(wait->uid, sizeof wait->uid, "%s", record->uid);
	snprintf(wait->node, sizeof wait->node, "%s", record->node);
	kube->waits = xreallocarray(kube->waits, kube->wait_count + 1, sizeof *kube->waits);
	kube->waits[kube->wait_count++] = wait;
	return wait;
}

static void on_node_read(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct pod_wait *wait = context;
	(void)sent_ms;

	wait->node_call = NULL;
	if (status == 200 && json_is_object(reply)) {
		bool ready = false;
		size_t i;
		json_t *condition;
		json_array_foreach(json_object_get(json_object_get(reply, "status"), "conditions"), i, condition) {
			const char *type = json_string_value(json_object_get(condition, "type"));
			const char *value = json_string_value(json_object_get(condition, "status"));
			if (type && strcmp(type, "Ready") == 0)
				ready = value && strcmp(value, "True") == 0;
		}
		wait->node_read = wait->node_exists = true;
		wait->node_ready = ready;
	} else if (status == 404) {
		wait->node_read = true;
		wait->node_exists = wait->node_ready = false;
	} else {
		snprintf(wait->read_error, sizeof wait->read_error, "%s", why ? why : "no answer");
	}
}

static void on_node_lease_read(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct pod_wait *wait = context;
	(void)sent_ms;

	wait->lease_call = NULL;
	if (status == 200 && json_is_object(reply)) {
		const char *renewed = json_string_value(json_object_get(json_object_get(reply, "spec"), "renewTime"));
		snprintf(wait->renew_time, sizeof wait->renew_time, "%s", renewed ? renewed : "");
		wait->lease_read = true;
	} else if (status == 404) {
		wait->renew_time[0] = '\0';
		wait->lease_read = true;
	} else {
		snprintf(wait->read_error, sizeof wait->read_error, "%s", why ? why : "no answer");
	}
}

/* Reads the Node and its Lease (kube-node-lease) again, in flight, once the last reads
 * are over and NODE_READ_MS old: their answers come on the loop, for the next turn. */
static void wait_read(struct kube_platform *kube, struct pod_wait *wait)
{
	char why[1024];
	long long now = monotonic_ms();

	if (wait->node_call || wait->lease_call || (wait->read_ms && now - wait->read_ms < NODE_READ_MS))
		return;
	wait->read_ms = now;
	wait->read_error[0] = '\0';
	char *name = k8s_escape(wait->node);
	char *path = xasprintf("/api/v1/nodes/%s", name);
	long long deadline = now + ITERATION_BUDGET_MS;
	wait->node_call = k8s_send(kube->client, "GET", path, NULL, NULL, deadline, on_node_read, wait, why, sizeof why);
	if (!wait->node_call)
		snprintf(wait->read_error, sizeof wait->read_error, "%.511s", why);
	free(path);
	path = xasprintf("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/%s", name);
	wait->lease_call =
		k8s_send(kube->client, "GET", path, NULL, NULL, deadline, on_node_lease_read, wait, why, sizeof why);
	if (!wait->lease_call)
		snprintf(wait->read_error, sizeof wait->read_error, "%.511s", why);
	free(path);
	free(name);
}

/* A member whose pod is not in the API server: whether its claim records a pod that may
 * still run on its node (then the member is observed as a pod being deleted whose
 * container has not ended: fenced, and running for anything that would start on its
 * volume), or not (no pod). */
static bool pod_may_run(struct kube_platform *kube, const struct cluster_config *cluster, const json_t *claim,
			struct member_observation *member)
{
	const char *text = claim ? object_annotation(claim, ANNOTATION_POD) : NULL;
	struct pod_record record;
	char why[512], pod_name[NAMES_BUFFER_SIZE];

	/* not recorded yet: as the watch saw it vanish (kube_publish records it) */
	names_pod(pod_name, sizeof pod_name, cluster->name, member->index);
	const struct vanished_pod *vanished = text ? NULL : vanished_pod(kube, pod_name);
	if (vanished)
		text = vanished->record;
	if (!text) {
		wait_drop(kube, cluster->name, member->index);
		return false;
	}
	bool read = pod_record_parse(text, &record);
	if (read && !vanished)
		vanished_forget(kube, record.uid); /* recorded: the claim keeps it from now on */
	if (read && ended_uid(kube, record.uid)) {
		/* seen deleted with its containers ended: kube_publish removes the annotation */
		wait_drop(kube, cluster->name, member->index);
		return false;
	}
	if (!read)
		record = (struct pod_record){.pod = "?", .uid = "", .node = "?"};
	struct pod_wait *wait = wait_for(kube, cluster->name, member->index, &record);
	enum podgone_verdict verdict = PODGONE_MAY_RUN;
	if (!read) {
		snprintf(why, sizeof why, "claim %s's annotation " ANNOTATION_POD " cannot be read",
			 claim ? object_name(claim) : "?");
	} else if (wait->gone) {
		verdict = PODGONE_GONE;
	} else {
		wait_read(kube, wait);
		struct podgone_node seen = {.answered = wait->node_read && wait->lease_read, .exists = wait->node_exists,
					    .ready = wait->node_ready, .renew_time = wait->renew_time};
		verdict = podgone_judge(&wait->memory, wait->node, &seen, why, sizeof why);
		if (verdict == PODGONE_MAY_RUN && !seen.answered && wait->read_error[0])
			snprintf(why + strlen(why), sizeof why - strlen(why), " (%.200s)", wait->read_error);
	}
	if (verdict == PODGONE_GONE) {
		if (!wait->gone)
			log_message(LOG_LEVEL_NOTICE, cluster->name, member->name,
				    "pod %s (uid %s) is gone from node %s: %s", wait->pod, wait->uid, wait->node, why);
		wait->gone = true;
		vanished_forget(kube, wait->uid);
		return false;
	}
	if (strcmp(wait->why, why) != 0) {
		log_message(LOG_LEVEL_WARNING, cluster->name, member->name,
			    "pod %s (uid %s) left the API server but may still run on node %s: not made again on "
			    "claim %s until it is known gone: %s; if you know it no longer runs there: kubectl "
			    "annotate pvc %s " ANNOTATION_POD "-",
			    record.pod, record.uid, record.node, claim ? object_name(claim) : "?", why,
			    claim ? object_name(claim) : "CLAIM");
		snprintf(wait->why, sizeof wait->why, "%s", why);
	}
	member->postmaster = 1;
	member->postmaster_exited = true;
	member->live_processes = 1;
	member->fenced = true;
	snprintf(member->error, sizeof member->error, "its pod may still run on its node: %.200s", why);
	return true;
}

/* The parameters the configuration asks for, as the text a claim's annotation keeps. */
static char *parameters_text(const struct cluster_config *cluster)
{
	json_t *object = json_object();
	for (size_t i = 0; i < cluster->postgresql.parameters.count; i++)
		json_object_set_new(object, cluster->postgresql.parameters.items[i].name,
				    json_string(cluster->postgresql.parameters.items[i].value));
	char *text = json_dumps(object, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(object);
	return text;
}

void kube_observe_cluster(struct kube_platform *kube, const struct cluster_config *cluster,
			  struct cluster_observation *observation)
{
	int highest = -1;
	size_t i;
	json_t *item;

	json_array_foreach(kube->claims, i, item) {
		int index = member_index_of(item, cluster->name);
		if (index > highest)
			highest = index;
	}
	json_array_foreach(kube->pods, i, item) {
		int index = member_index_of(item, cluster->name);
		if (index > highest)
			highest = index;
	}
	int count = highest + 1 > cluster->replicas ? highest + 1 : cluster->replicas;
	char *wanted_parameters = parameters_text(cluster);

	observation->count = (size_t)count;
	observation->now_ms = observation_clock_ms();
	observation->members = xcalloc(observation->count, sizeof *observation->members);
	for (int index = 0; index < count; index++) {
		struct member_observation *member = &observation->members[index];
		const json_t *claim = member_claim(kube, cluster->name, index);
		const json_t *pod = member_pod(kube, cluster->name, index);

		member->index = index;
		member->upstream = -1;
		names_member(member->name, sizeof member->name, cluster->name, index);
		const char *initialized = claim ? object_annotation(claim, ANNOTATION_INITIALIZED) : NULL;
		member->data_exists = initialized && strcmp(initialized, "true") == 0;
		const char *role = claim ? object_annotation(claim, ANNOTATION_ROLE) : NULL;
		member->standby_signal = member->data_exists && !(role && strcmp(role, "primary") == 0);
		const char *timeline = claim ? object_annotation(claim, ANNOTATION_TIMELINE) : NULL;
		member->timeline = timeline ? (uint32_t)strtoul(timeline, NULL, 10) : 0;
		const char *applied = claim ? object_annotation(claim, ANNOTATION_PARAMETERS) : NULL;
		member->settings_current = !member->data_exists || (applied && strcmp(applied, wanted_parameters) == 0);
		if (!pod) {
			if (!pod_may_run(kube, cluster, claim, member))
				snprintf(member->error, sizeof member->error, "no pod");
			continue;
		}
		const json_t *status = json_object_get(pod, "status");
		const char *phase = json_string_value(json_object_get(status, "phase"));
		const char *address = json_string_value(json_object_get(status, "podIP"));
		bool deleting = json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp") != NULL;
		phase = phase ? phase : "Pending";
		if (strcmp(phase, "Failed") == 0 || strcmp(phase, "Succeeded") == 0) {
			/* restartPolicy Never: its container ended and nothing of it runs */
			member->postmaster = 1;
			member->postmaster_exited = true;
			snprintf(member->error, sizeof member->error, "its pod's container ended (%s)", phase);
			read_termination(status, member);
		} else if (deleting) {
			/* it is going away: it serves nothing, but its container may run until its
			 * kubelet reports it ended and removes the pod, which a kubelet cut off from
			 * the API server never does: fenced, and running for anything that would
			 * start on its volume */
			bool ended = containers_ended(status);
			member->postmaster = 1;
			member->postmaster_exited = true;
			member->live_processes = ended ? 0 : 1;
			member->fenced = !ended;
			snprintf(member->error, sizeof member->error, "its pod is being deleted%s",
				 ended ? ", its container ended" : "");
		} else if (strcmp(phase, "Running") == 0 && address && address[0]) {
			member->postmaster = 1;
			member->live_processes = 1;
			snprintf(member->address, sizeof member->address, "%s", address);
		} else {
			/* not started yet: it may start at any moment */
			member->live_processes = 1;
			snprintf(member->error, sizeof member->error, "its pod is %s", phase);
		}
	}
	free(wanted_parameters);
}

/* ---- secrets ---- */

/* A Secret's value (base64) as a string in buffer; false when it is not base64, holds a
 * NUL or a line break (a passfile could not hold it), or does not fit. */
static bool secret_value(const char *text, char *buffer, size_t size)
{
	struct kubeconfig_blob blob = {0};
	bool fits = text && kubeconfig_decode_base64(text, &blob) && blob.length < size &&
		    !memchr(blob.data, '\0', blob.length) && !memchr(blob.data, '\n', blob.length) &&
		    !memchr(blob.data, '\r', blob.length);
	if (fits) {
		memcpy(buffer, blob.data, blob.length);
		buffer[blob.length] = '\0';
	}
	if (blob.data)
		explicit_bzero(blob.data, blob.length);
	free(blob.data);
	return fits;
}

static json_t *owner_labels(const char *cluster)
{
	return jsonpack("{s:s, s:s, s:s}", KUBE_OWNER_LABEL, KUBE_OWNER_VALUE, "app", "postgres", "cluster", cluster);
}

/* The cluster's Secret, read once (made when missing), and a passfile for pghad's own
 * connections as the superuser in the state directory. */
static struct secret_cache *cluster_secret(struct kube_platform *kube, const struct cluster_config *cluster,
					   char *why, size_t why_size)
{
	for (size_t i = 0; i < kube->secret_count; i++)
		if (strcmp(kube->secrets[i].cluster, cluster->name) == 0)
			return &kube->secrets[i];

	struct secret_cache secret = {0};
	char name[NAMES_BUFFER_SIZE];
	json_t *object = NULL;
	snprintf(secret.cluster, sizeof secret.cluster, "%s", cluster->name);
	snprintf(name, sizeof name, "pgha-%s", cluster->name);
	char *path = core_path(kube, "secrets", name);
	int status = k8s_get(kube->client, path, &object, why, why_size);
	free(path);
	if (status == 404) {
		if (!pg_make_password(secret.superuser, sizeof secret.superuser, why, why_size) ||
		    !pg_make_password(secret.replication, sizeof secret.replication, why, why_size))
			return NULL;
		json_t *created = jsonpack("{s:s, s:s, s:{s:s, s:o}, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
					    "Secret", "metadata", "name", name, "labels", owner_labels(cluster->name),
					    "type", "Opaque", "stringData", "superuser-password", secret.superuser,
					    "replication-password", secret.replication);
		path = core_path(kube, "secrets", NULL);
		status = k8s_create(kube->client, path, created, NULL, why, why_size);
		free(path);
		json_decref(created);
		if (status == 409)
			snprintf(why, why_size, "secret %s was created by someone else meanwhile; reading it next time", name);
		if (status != 201) {
			explicit_bzero(&secret, sizeof secret);
			return NULL;
		}
		log_message(LOG_LEVEL_NOTICE, cluster->name, NULL, "secret %s created with new passwords", name);
	} else if (status == 200) {
		const json_t *data = json_object_get(object, "data");
		const char *superuser = json_string_value(json_object_get(data, "superuser-password"));
		const char *replication = json_string_value(json_object_get(data, "replication-password"));
		bool read = secret_value(superuser, secret.superuser, sizeof secret.superuser) &&
			    secret_value(replication, secret.replication, sizeof secret.replication);
		json_decref(object);
		if (!read) {
			snprintf(why, why_size, "secret %s lacks superuser-password or replication-password", name);
			explicit_bzero(&secret, sizeof secret);
			return NULL;
		}
	} else {
		return NULL;
	}

	char *directory = xasprintf("%s/%s", kube->config->daemon.state_dir, cluster->name);
	if ((mkdir(kube->config->daemon.state_dir, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(directory, 0700) < 0 && errno != EEXIST)) {
		snprintf(why, why_size, "cannot create %s: %s", directory, strerror(errno));
		free(directory);
		explicit_bzero(&secret, sizeof secret);
		return NULL;
	}
	secret.passfile = xasprintf("%s/superuser.pgpass", directory);
	free(directory);
	char *line = NULL;
	pg_passfile_append(&line, SUPERUSER, secret.superuser);
	bool written = file_replace(secret.passfile, line, strlen(line), 0600, why, why_size);
	explicit_bzero(line, strlen(line));
	free(line);
	if (!written) {
		free(secret.passfile);
		explicit_bzero(&secret, sizeof secret);
		return NULL;
	}
	kube->secrets = xreallocarray(kube->secrets, kube->secret_count + 1, sizeof *kube->secrets);
	kube->secrets[kube->secret_count] = secret;
	return &kube->secrets[kube->secret_count++];
}

bool kube_replication_password(struct kube_platform *kube, const struct cluster_config *cluster, char *password,
			       size_t password_size, char *why, size_t why_size)
{
	struct secret_cache *secret = cluster_secret(kube, cluster, why, why_size);
	if (secret)
		snprintf(password, password_size, "%s", secret->replication);
	return secret != NULL;
}

struct pg_target kube_admin_target(struct kube_platform *kube, const struct cluster_config *cluster,
				   const struct member_observation *member)
{
	char why[512];
	struct secret_cache *secret = cluster_secret(kube, cluster, why, sizeof why);
	return (struct pg_target){
		.host = member->address[0] ? xstrdup(member->address) : NULL,
		.port = cluster->port,
		.user = SUPERUSER,
		.passfile = secret ? secret->passfile : NULL,
	};
}

char *kube_primary_conninfo(const struct cluster_config *cluster, int index, const struct member_observation *upstream)
{
	char application[NAMES_BUFFER_SIZE], port[16];
	char *conninfo = NULL;

	names_member(application, sizeof application, cluster->name, index);
	snprintf(port, sizeof port, "%d", cluster->port);
	pg_conninfo_append(&conninfo, "host", upstream->address);
	pg_conninfo_append(&conninfo, "port", port);
	pg_conninfo_append(&conninfo, "user", REPLICATION_USER);
	pg_conninfo_append(&conninfo, "application_name", application);
	pg_conninfo_append(&conninfo, "connect_timeout", "2");
	pg_conninfo_append_receiver_timeouts(&conninfo);
	return conninfo;
}

int kube_upstream_of(const struct cluster_observation *observation, const char *primary_conninfo)
{
	PQconninfoOption *options = PQconninfoParse(primary_conninfo, NULL);
	int upstream = -1;

	for (PQconninfoOption *option = options; option && option->keyword; option++)
		if (strcmp(option->keyword, "host") == 0 && option->val)
			for (size_t i = 0; i < observation->count && upstream < 0; i++)
				if (observation->members[i].address[0] &&
				    strcmp(observation->members[i].address, option->val) == 0)
					upstream = observation->members[i].index;
	PQconninfoFree(options);
	return upstream;
}

/* ---- election ---- */

static struct lease_cache *lease_for(struct kube_platform *kube, const char *cluster)
{
	for (size_t i = 0; i < kube->lease_count; i++)
		if (strcmp(kube->leases[i]->cluster, cluster) == 0)
			return kube->leases[i];
	kube->leases = xreallocarray(kube->leases, kube->lease_count + 1, sizeof *kube->leases);
	struct lease_cache *lease = xcalloc(1, sizeof *lease);
	kube->leases[kube->lease_count++] = lease;
	lease->kube = kube;
	lease->idle = true;
	lease->last_status = -1;
	snprintf(lease->cluster, sizeof lease->cluster, "%s", cluster);
	return lease;
}

bool kube_lease_held(const struct kube_platform *kube, const char *cluster)
{
	for (size_t i = 0; i < kube->lease_count; i++)
		if (strcmp(kube->leases[i]->cluster, cluster) == 0)
			return kube->leases[i]->held;
	return false;
}

const char *kube_lease_holder(const struct kube_platform *kube, const char *cluster)
{
	for (size_t i = 0; i < kube->lease_count; i++)
		if (strcmp(kube->leases[i]->cluster, cluster) == 0)
			return kube->leases[i]->holder;
	return "";
}

static const char *resource_version(const json_t *object)
{
	const char *version = json_string_value(json_object_get(json_object_get(object, "metadata"), "resourceVersion"));
	return version ? version : "";
}

static bool state_of_lease(const struct lease_cache *lease, struct cluster_state *state, char *why, size_t why_size)
{
	const char *text = object_annotation(lease->object, ANNOTATION_STATE);
	if (!text) {
		state_init(state);
		return true;
	}
	char name[NAMES_BUFFER_SIZE + 64];
	snprintf(name, sizeof name, "lease pgha-%s annotation " ANNOTATION_STATE, lease->cluster);
	return state_parse(text, name, state, why, why_size);
}

/* Our write to the Lease (a renewal, a takeover, new state) answered: remember it, valid
 * from the request's start (sent_ms) for the duration written. */
static void lease_written(struct lease_cache *lease, json_t *object, long long sent_ms, int duration_ms)
{
	json_decref(lease->object);
	lease->object = object;
	lease->held = true;
	lease->renewed_ms = sent_ms;
	lease->renewed_duration_ms = duration_ms;
	snprintf(lease->seen_version, sizeof lease->seen_version, "%s", resource_version(object));
	lease->seen_ms = sent_ms;
}

static void lease_lost(struct lease_cache *lease, const char *why)
{
	if (lease->held)
		log_message(LOG_LEVEL_WARNING, lease->cluster, NULL, "lease pgha-%s lost (%s): not acting on the cluster",
			    lease->cluster, why);
	lease->held = false;
}

/* Every Lease's reads and writes are calls in flight (k8s_send), one at a time per
 * Lease: lease->idle is false while one, or a chain (a read, then a takeover), is. The
 * renewal timer starts them between iterations; an iteration waits for them within its
 * budget for the API server only. */

static void lease_idle(struct lease_cache *lease, const char *why)
{
	lease->call = NULL;
	lease->idle = true;
	snprintf(lease->error, sizeof lease->error, "%s", why ? why : "");
}

static void on_lease_written(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct lease_cache *lease = context;
	struct kube_platform *kube = lease->kube;
	char name[NAMES_BUFFER_SIZE + 8];

	snprintf(name, sizeof name, "pgha-%s", lease->cluster);
	lease->last_status = status;
	if (status == 200 && json_is_object(reply)) {
		if (lease->writing_takeover || !lease->held)
			log_message(LOG_LEVEL_NOTICE, lease->cluster, NULL, "lease %s taken by %s: acting on the cluster", name,
				    kube->identity);
		lease_written(lease, json_incref(reply), sent_ms, lease->writing_duration_ms);
		snprintf(lease->holder, sizeof lease->holder, "%s", kube->identity);
		lease_idle(lease, NULL);
		return;
	}
	lease_lost(lease, why);
	lease_idle(lease, why);
}

/* PUTs object (read at its resourceVersion) as held by us now: the outcome comes to
 * on_lease_written. False (why written, the Lease idle) when it cannot be sent. */
static bool lease_put(struct kube_platform *kube, struct lease_cache *lease, json_t *object, bool takeover)
{
	char now[64], name[NAMES_BUFFER_SIZE + 8], why[1024];
	json_t *spec = json_object_get(object, "spec");

	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(object, "spec", spec);
	}
	micro_time(now, sizeof now);
	json_object_set_new(spec, "holderIdentity", json_string(kube->identity));
	json_object_set_new(spec, "leaseDurationSeconds", json_integer(kube->config->platform.kubernetes.lease_seconds));
	json_object_set_new(spec, "renewTime", json_string(now));
	if (takeover) {
		json_object_set_new(spec, "acquireTime", json_string(now));
		json_object_set_new(spec, "leaseTransitions",
				    json_integer(json_integer_value(json_object_get(spec, "leaseTransitions")) + 1));
	}
	snprintf(name, sizeof name, "pgha-%s", lease->cluster);
	char *path = lease_path(kube, name);
	lease->idle = false;
	lease->writing_takeover = takeover;
	lease->writing_duration_ms = lease_duration_ms(kube);
	lease->last_status = -1;
	/* a renewal is worth nothing once the Lease it renews is over */
	long long deadline = monotonic_ms() + lease_duration_ms(kube);
	lease->call = resource_version(object)[0]
			      ? k8s_send(kube->client, "PUT", path, object, NULL, deadline, on_lease_written, lease, why,
					 sizeof why)
			      : NULL;
	free(path);
	if (!lease->call) {
		if (!resource_version(object)[0])
			snprintf(why, sizeof why, "lease %s carries no resourceVersion", name);
		lease_lost(lease, why);
		lease_idle(lease, why);
		return false;
	}
	return true;
}

static void on_lease_created(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct lease_cache *lease = context;
	struct kube_platform *kube = lease->kube;
	char name[NAMES_BUFFER_SIZE + 8], reason[1024];

	snprintf(name, sizeof name, "pgha-%s", lease->cluster);
	if (status != 201 || !json_is_object(reply)) {
		if (status == 409)
			snprintf(reason, sizeof reason, "lease %s was just created by another pghad", name);
		else
			snprintf(reason, sizeof reason, "%s", why);
		lease_idle(lease, reason);
		return;
	}
	log_message(LOG_LEVEL_NOTICE, lease->cluster, NULL, "lease %s created by %s: acting on the cluster", name,
		    kube->identity);
	lease_written(lease, json_incref(reply), sent_ms, lease->writing_duration_ms);
	snprintf(lease->holder, sizeof lease->holder, "%s", kube->identity);
	lease_idle(lease, NULL);
}

static void lease_create(struct kube_platform *kube, struct lease_cache *lease)
{
	char now[64], name[NAMES_BUFFER_SIZE + 8], why[1024];
	struct cluster_state initial;

	state_init(&initial);
	char *state = state_format(&initial);
	micro_time(now, sizeof now);
	snprintf(name, sizeof name, "pgha-%s", lease->cluster);
	json_t *object = jsonpack("{s:s, s:s, s:{s:s, s:o, s:{s:s}}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
				   "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", name, "labels",
				   owner_labels(lease->cluster), "annotations", ANNOTATION_STATE, state, "spec",
				   "holderIdentity", kube->identity, "leaseDurationSeconds",
				   kube->config->platform.kubernetes.lease_seconds, "acquireTime", now, "renewTime", now,
				   "leaseTransitions", 0);
	free(state);
	char *path = lease_path(kube, NULL);
	lease->idle = false;
	lease->writing_duration_ms = lease_duration_ms(kube);
	lease->call = k8s_send(kube->client, "POST", path, object, NULL, 0, on_lease_created, lease, why, sizeof why);
	free(path);
	json_decref(object);
	if (!lease->call)
		lease_idle(lease, why);
}

/* Another pghad takes over only after seeing the same resourceVersion for the whole
 * duration the Lease states, by its own monotonic clock read after each answer (no
 * comparison of clocks across machines): the holder has stopped acting by then
 * (lease.h). The takeover's PUT carries the version seen: any write since makes it 409. */
static void lease_seen(struct kube_platform *kube, struct lease_cache *lease, const json_t *read, long long answered);

static void on_lease_read(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct lease_cache *lease = context;
	struct kube_platform *kube = lease->kube;
	(void)sent_ms;

	/* read after the answer, which may have taken the whole request timeout */
	long long answered = monotonic_ms();
	lease->call = NULL;
	lease->read_ms = answered;
	if (status == 404) {
		lease_create(kube, lease);
		return;
	}
	if (status != 200 || !json_is_object(reply)) {
		lease_idle(lease, why);
		return;
	}
	lease_seen(kube, lease, reply, answered);
}

/* What the Lease is as read (a GET, or the watch of Leases) at answered: its holder,
 * and whether it may be taken over (then it is, with a PUT: the chain goes on). */
static void lease_seen(struct kube_platform *kube, struct lease_cache *lease, const json_t *read, long long answered)
{
	char name[NAMES_BUFFER_SIZE + 8], reason[1024];

	snprintf(name, sizeof name, "pgha-%s", lease->cluster);
	json_t *object = json_deep_copy(read);
	const json_t *spec = json_object_get(object, "spec");
	const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
	const char *version = resource_version(object);
	/* the duration the holder wrote, not ours: a pghad configured with a longer one
	 * would otherwise be taken over while it still acts */
	int stated = lease_takeover_duration_ms(json_integer_value(json_object_get(spec, "leaseDurationSeconds")),
						kube->config->platform.kubernetes.lease_seconds);
	snprintf(lease->holder, sizeof lease->holder, "%s", holder ? holder : "");
	if (strcmp(version, lease->seen_version) != 0) {
		snprintf(lease->seen_version, sizeof lease->seen_version, "%s", version);
		lease->seen_ms = answered;
	}
	bool ours = holder && strcmp(holder, kube->identity) == 0 && lease->held;
	bool expired = !holder || !holder[0] || lease_expired_for_others(lease->seen_ms, stated, answered);
	if (!ours && !expired) {
		lease_lost(lease, "held by another pghad");
		json_decref(lease->object);
		lease->object = object;
		snprintf(reason, sizeof reason, "lease %s is held by %s", name, lease->holder);
		lease_idle(lease, reason);
		return;
	}
	/* ours by name but not in our memory: we stopped acting; taken like any other */
	lease_put(kube, lease, object, !ours);
	json_decref(object);
}

static void lease_read(struct kube_platform *kube, struct lease_cache *lease)
{
	char name[NAMES_BUFFER_SIZE + 8], why[1024];

	snprintf(name, sizeof name, "pgha-%s", lease->cluster);
	char *path = lease_path(kube, name);
	lease->idle = false;
	lease->call = k8s_send(kube->client, "GET", path, NULL, NULL, 0, on_lease_read, lease, why, sizeof why);
	free(path);
	if (!lease->call) {
		lease->read_ms = monotonic_ms();
		lease_idle(lease, why);
	}
}

/* Starts what a Lease needs now, when nothing of it is in flight: held, its renewal
 * once due (a Lease already over is not renewed blindly: read again, it says who holds
 * it); not held, a read every renewal period (with read only). */
static void lease_kick(struct kube_platform *kube, struct lease_cache *lease, bool read)
{
	int renew = lease_duration_ms(kube) / RENEW_FRACTION;
	long long now = monotonic_ms();

	if (!lease->idle)
		return;
	if (lease->held && lease->object) {
		if (now - lease->renewed_ms < renew)
			return;
		if (lease_remaining_ms(lease->renewed_ms, lease->renewed_duration_ms, now) > 0) {
			json_t *object = json_deep_copy(lease->object);
			lease_put(kube, lease, object, false);
			json_decref(object);
			return;
		}
		/* over (this pghad was stopped, or the API server did not answer): still ours if
		 * nobody took it, which the read says */
		read = true;
	}
	if (!read || (lease->read_ms && now - lease->read_ms < renew))
		return;
	/* not held: as the watch of Leases shows it, once it is listed, with no request
	 * (read now, after the event came: as late as, or later than, a GET's answer) */
	const struct kube_watch *leases = &kube->watches[WATCH_LEASES];
	char name[NAMES_BUFFER_SIZE + 8];
	snprintf(name, sizeof name, "pgha-%s", lease->cluster);
	const json_t *watched = !lease->held && leases->live && !leases->error[0] ? find_named(leases->live, name) : NULL;
	if (watched) {
		lease->read_ms = now;
		lease->idle = false;
		lease_seen(kube, lease, watched, now);
		return;
	}
	lease_read(kube, lease);
}

/* Waits for what is in flight for lease, within the iteration's budget for the API
 * server, and not at all while it does not answer. */
static void lease_wait(struct kube_platform *kube, struct lease_cache *lease)
{
	if (!lease->idle && !k8s_client_silent_since(kube->client))
		k8s_run(kube->client, &lease->idle, kube->deadline_ms);
}

/* A holder renews every duration/RENEW_FRACTION (its timer) and acts only while
 * lease_may_act says so, checked again at each action (kube_may_act). */
bool kube_lead(struct kube_platform *kube, const struct cluster_config *cluster, struct cluster_state *state,
	       char *why, size_t why_size)
{
	struct lease_cache *lease = lease_for(kube, cluster->name);

	lease_kick(kube, lease, true);
	/* waited for the first time only: later reads and renewals go on between iterations */
	if (!lease->held && !lease->read_ms)
		lease_wait(kube, lease);
	long long now = monotonic_ms();
	if (lease->held && lease->object && lease_remaining_ms(lease->renewed_ms, lease->renewed_duration_ms, now) > 0)
		return state_of_lease(lease, state, why, why_size);
	if (lease->held)
		snprintf(why, why_size, "lease pgha-%s was not renewed before its end: reading it again", cluster->name);
	else if (lease->holder[0] && strcmp(lease->holder, kube->identity) != 0)
		snprintf(why, why_size, "lease pgha-%s is held by %s", cluster->name, lease->holder);
	else if (lease->error[0])
		snprintf(why, why_size, "%s", lease->error);
	else
		snprintf(why, why_size, "lease pgha-%s: %s", cluster->name,
			 lease->idle ? "not held" : "its read or write is still in flight");
	return false;
}

/* The renewal timer: Leases held are renewed once due, others read, between iterations
 * however far apart (a long loop_interval_ms, an iteration's wait). A Lease that changed
 * behind its holder is lost (409). Leases of clusters no longer configured are renewed
 * while held (their removal goes on) but not read. */
static int on_renewal(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct kube_platform *kube = userdata;
	int renew = lease_duration_ms(kube) / RENEW_FRACTION;
	(void)usec;

	for (size_t i = 0; i < kube->lease_count; i++)
		lease_kick(kube, kube->leases[i], is_configured_cluster(kube->config, kube->leases[i]->cluster));
	/* half a renewal period: a due renewal waits at most that long */
	int result = sd_event_source_set_time_relative(source, (uint64_t)(renew > 200 ? renew / 2 : 100) * 1000);
	if (result >= 0)
		result = sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
	if (result < 0)
		log_error("kubernetes: cannot arm the leases' renewal timer again: %s", strerror(-result));
	return 0;
}

void kube_attach(struct kube_platform *kube, sd_event *event)
{
	int result = k8s_client_attach(kube->client, event);
	if (result < 0)
		log_error("kubernetes: cannot run the API client on the event loop: %s; its calls progress during "
			  "iterations only", strerror(-result));
	result = sd_event_add_time_relative(event, &kube->renewal, CLOCK_MONOTONIC, 100 * 1000, 0, on_renewal, kube);
	if (result < 0)
		log_error("kubernetes: cannot add the leases' renewal timer: %s; they are renewed at iterations only",
			  strerror(-result));
}

bool kube_may_act(struct kube_platform *kube, const char *cluster, char *why, size_t why_size)
{
	struct lease_cache *lease = lease_for(kube, cluster);
	char reason[256];

	long long now = monotonic_ms();

	if (lease_may_act(lease->held, lease->renewed_ms, lease->renewed_duration_ms, now, reason, sizeof reason)) {
		lease->refused_cause = 0;
		return true;
	}
	snprintf(why, why_size, "not acting on cluster %s: %s", cluster, reason);
	int cause = !lease->held ? 1 : lease_remaining_ms(lease->renewed_ms, lease->renewed_duration_ms, now) > 0 ? 2 : 3;
	if (cause != lease->refused_cause || lease->renewed_ms != lease->refused_renewal_ms) {
		log_message(LOG_LEVEL_WARNING, cluster, NULL, "%s", why);
		lease->refused_cause = cause;
		lease->refused_renewal_ms = lease->renewed_ms;
	}
	return false;
}

/* Whether the state this pghad holds on cluster's Lease has a switchover from member
 * index in its demote phase: that member's pod shuts itself down cleanly once its self-fence
 * watch reads it (selffence.h). */
static bool kube_demoting(struct kube_platform *kube, const char *cluster, int index)
{
	struct lease_cache *lease = lease_for(kube, cluster);
	struct cluster_state state;
	char why[256];

	return lease->held && lease->object && state_of_lease(lease, &state, why, sizeof why) &&
	       state.failover.kind == FAILOVER_SWITCHOVER && state.failover.phase == PHASE_DEMOTE &&
	       state.failover.from == index;
}

bool kube_save_state(struct kube_platform *kube, const struct cluster_config *cluster,
		     const struct cluster_state *state, char *why, size_t why_size)
{
	struct lease_cache *lease = lease_for(kube, cluster->name);

	/* a renewal in flight first: two writes at one version, one would be a conflict */
	lease_wait(kube, lease);
	if (!lease->idle) {
		snprintf(why, why_size, "lease pgha-%s: a write is still in flight, the API server is slow to answer",
			 cluster->name);
		return false;
	}
	if (!lease->held || !lease->object) {
		snprintf(why, why_size, "lease pgha-%s is not held by this pghad", cluster->name);
		return false;
	}
	json_t *object = json_deep_copy(lease->object);
	json_t *metadata = json_object_get(object, "metadata");
	json_t *annotations = json_object_get(metadata, "annotations");
	if (!json_is_object(annotations)) {
		annotations = json_object();
		json_object_set_new(metadata, "annotations", annotations);
	}
	char *text = state_format(state);
	json_object_set_new(annotations, ANNOTATION_STATE, json_string(text));
	free(text);
	bool sent = lease_put(kube, lease, object, false);
	json_decref(object);
	if (sent)
		lease_wait(kube, lease);
	if (!lease->idle) {
		/* its outcome comes later, to on_lease_written; the actions wait for the next iteration */
		snprintf(why, why_size, "lease pgha-%s: the state's write got no answer in this iteration's time",
			 cluster->name);
		return false;
	}
	if (lease->last_status != 200)
		snprintf(why, why_size, "%s", lease->error);
	return lease->last_status == 200;
}

/* ---- members ---- */

static json_t *env(const char *name, const char *value)
{
	return jsonpack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *member_labels(const char *cluster, int index, bool primary)
{
	char member[NAMES_BUFFER_SIZE];
	names_member(member, sizeof member, cluster, index);
	json_t *labels = owner_labels(cluster);
	json_object_set_new(labels, "member", json_string(member));
	json_object_set_new(labels, "role", json_string(primary ? "primary" : "replica"));
	json_object_set_new(labels, "master", json_string(primary ? "true" : "false"));
	return labels;
}

static bool ensure_claim(struct kube_platform *kube, const struct cluster_config *cluster, int index, char *why,
			 size_t why_size)
{
	char name[NAMES_BUFFER_SIZE], member[NAMES_BUFFER_SIZE];

	if (member_claim(kube, cluster->name, index))
		return true;
	names_volume(name, sizeof name, cluster->name, index);
	names_member(member, sizeof member, cluster->name, index);
	json_t *labels = owner_labels(cluster->name);
	json_object_set_new(labels, "member", json_string(member));
	json_t *claim = jsonpack("{s:s, s:s, s:{s:s, s:o}, s:{s:[s], s:{s:{s:s}}}}", "apiVersion", "v1", "kind",
				  "PersistentVolumeClaim", "metadata", "name", name, "labels", labels, "spec",
				  "accessModes", access_mode_names[cluster->volume.access_mode], "resources", "requests",
				  "storage", cluster->volume.size);
	if (cluster->volume.storage_class[0])
		json_object_set_new(json_object_get(claim, "spec"), "storageClassName",
				    json_string(cluster->volume.storage_class));
	char *path = core_path(kube, "persistentvolumeclaims", NULL);
	int status = k8s_create(kube->client, path, claim, NULL, why, why_size);
	free(path);
	json_decref(claim);
	if (status == 201)
		log_message(LOG_LEVEL_NOTICE, cluster->name, member, "volume claim %s created (%s)", name,
			    cluster->volume.size);
	return status == 201 || status == 409;
}

/* What the members' own ServiceAccount, pgha-CLUSTER-member, may do: get and watch the
 * cluster's member pods and its Lease, nothing else (the self-fence, see
 * pgha-entrypoint(1)). Made with the first pod; 409 means already there. */
static bool ensure_member_access(struct kube_platform *kube, const struct cluster_config *cluster, char *why,
				 size_t why_size)
{
	char account[NAMES_BUFFER_SIZE + 16], lease[NAMES_BUFFER_SIZE + 8];
	snprintf(account, sizeof account, "pgha-%s-member", cluster->name);
	snprintf(lease, sizeof lease, "pgha-%s", cluster->name);

	json_t *pods = json_array();
	for (int i = 0; i < MEMBERS_MAX; i++) {
		char pod[NAMES_BUFFER_SIZE];
		names_pod(pod, sizeof pod, cluster->name, i);
		json_array_append_new(pods, json_string(pod));
	}
	json_t *objects[3] = {
		jsonpack("{s:s, s:s, s:{s:s, s:o}, s:b}", "apiVersion", "v1", "kind", "ServiceAccount", "metadata", "name",
			 account, "labels", owner_labels(cluster->name), "automountServiceAccountToken", 0),
		jsonpack("{s:s, s:s, s:{s:s, s:o}, s:[{s:[s], s:[s], s:o, s:[s, s]}, {s:[s], s:[s], s:[s], s:[s, s]}]}",
			 "apiVersion", "rbac.authorization.k8s.io/v1", "kind", "Role", "metadata", "name", account,
			 "labels", owner_labels(cluster->name), "rules", "apiGroups", "", "resources", "pods",
			 "resourceNames", pods, "verbs", "get", "watch", "apiGroups", "coordination.k8s.io", "resources",
			 "leases", "resourceNames", lease, "verbs", "get", "watch"),
		jsonpack("{s:s, s:s, s:{s:s, s:o}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "apiVersion",
			 "rbac.authorization.k8s.io/v1", "kind", "RoleBinding", "metadata", "name", account, "labels",
			 owner_labels(cluster->name), "roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "Role",
			 "name", account, "subjects", "kind", "ServiceAccount", "name", account, "namespace",
			 kube->namespace),
	};
	char *paths[3] = {core_path(kube, "serviceaccounts", NULL),
			  xasprintf("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles", kube->namespace),
			  xasprintf("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings", kube->namespace)};
	bool made = true;
	for (int i = 0; i < 3; i++) {
		int status = made ? k8s_create(kube->client, paths[i], objects[i], NULL, why, why_size) : 0;
		if (status == 201 && i == 2)
			log_message(LOG_LEVEL_NOTICE, cluster->name, NULL,
				    "service account %s created: the members may read their pods and Lease %s", account, lease);
		made = made && (status == 201 || status == 409);
		json_decref(objects[i]);
		free(paths[i]);
	}
	return made;
}

bool kube_create_member(struct kube_platform *kube, const struct cluster_config *cluster, int index,
			enum kube_pod_start start, const struct member_observation *upstream, char *why,
			size_t why_size)
{
	bool primary = start == KUBE_POD_PRIMARY || start == KUBE_POD_BOOTSTRAP;
	char pod_name[NAMES_BUFFER_SIZE], claim[NAMES_BUFFER_SIZE], member[NAMES_BUFFER_SIZE];
	char port[16], secret[NAMES_BUFFER_SIZE + 8], slot[NAMES_BUFFER_SIZE];
	const json_t *existing = member_pod(kube, cluster->name, index);

	if (!kube_may_act(kube, cluster->name, why, why_size) || !cluster_secret(kube, cluster, why, why_size) ||
	    !ensure_member_access(kube, cluster, why, why_size) || !ensure_claim(kube, cluster, index, why, why_size))
		return false;
	names_pod(pod_name, sizeof pod_name, cluster->name, index);
	if (existing) {
		const char *phase = json_string_value(json_object_get(json_object_get(existing, "status"), "phase"));
		if (!phase || (strcmp(phase, "Failed") != 0 && strcmp(phase, "Succeeded") != 0)) {
			/* already there: its start is awaited like a new one's */
			made_record(kube, cluster->name, index, object_uid(existing));
			return true;
		}
		if (!delete_pod(kube, existing, 0, why, why_size))
			return false;
	}
	names_volume(claim, sizeof claim, cluster->name, index);
	names_member(member, sizeof member, cluster->name, index);
	names_slot(slot, sizeof slot, cluster->name, index);
	snprintf(port, sizeof port, "%d", cluster->port);
	snprintf(secret, sizeof secret, "pgha-%s", cluster->name);

	json_t *environment = json_array();
	json_array_append_new(environment, env("PGHA_CLUSTER", cluster->name));
	json_array_append_new(environment, env("PGHA_MEMBER", member));
	json_array_append_new(environment, env("PGHA_PORT", port));
	json_array_append_new(environment, env("PGHA_ROLE", primary ? "primary" : "standby"));
	if (start == KUBE_POD_BOOTSTRAP)
		json_array_append_new(environment, env("PGHA_BOOTSTRAP", "1"));
	if (start == KUBE_POD_REWIND)
		json_array_append_new(environment, env("PGHA_REWIND", "1"));
	if (!primary) {
		/* the primary's address now, then its Service for when the pod outlives that */
		char *hosts = upstream && upstream->address[0] ? xasprintf("%s,%s-rw", upstream->address, cluster->name)
							       : xasprintf("%s-rw", cluster->name);
		json_array_append_new(environment, env("PGHA_PRIMARY_HOST", hosts));
		json_array_append_new(environment, env("PGHA_PRIMARY_PORT", port));
		json_array_append_new(environment, env("PGHA_SLOT", slot));
		free(hosts);
	}
	json_array_append_new(environment, jsonpack("{s:s, s:{s:{s:s}}}", "name", "PGHA_LISTEN", "valueFrom",
						     "fieldRef", "fieldPath", "status.podIP"));
	json_array_append_new(environment, env("PGDATA", DATA_DIRECTORY));
	json_array_append_new(environment, env("PGHA_SECRETS_DIR", SECRETS_MOUNT));
	/* the self-fence: what the member checks while it runs as the primary */
	char lease[NAMES_BUFFER_SIZE + 8], number[16], isolation[16], account[NAMES_BUFFER_SIZE + 16];
	snprintf(lease, sizeof lease, "pgha-%s", cluster->name);
	snprintf(number, sizeof number, "%d", index);
	snprintf(isolation, sizeof isolation, "%d", kube->config->platform.kubernetes.isolation_seconds);
	snprintf(account, sizeof account, "pgha-%s-member", cluster->name);
	json_array_append_new(environment, env("PGHA_LEASE", lease));
	json_array_append_new(environment, env("PGHA_MEMBER_INDEX", number));
	json_array_append_new(environment, env("PGHA_ISOLATION_TIMEOUT", isolation));
	json_array_append_new(environment, jsonpack("{s:s, s:{s:{s:s}}}", "name", "PGHA_POD_NAME", "valueFrom",
						     "fieldRef", "fieldPath", "metadata.name"));
	json_array_append_new(environment, jsonpack("{s:s, s:{s:{s:s}}}", "name", "PGHA_POD_UID", "valueFrom",
						     "fieldRef", "fieldPath", "metadata.uid"));

	json_t *container = jsonpack(
		"{s:s, s:s, s:[s], s:[{s:s, s:i, s:s}], s:o, s:[{s:s, s:s}, {s:s, s:s, s:b}, {s:s, s:s, s:b}],"
		" s:{s:{s:i}, s:i, s:i}, s:s, s:s}",
		"name", "postgres", "image", kube->config->platform.kubernetes.image, "command", "pgha-entrypoint", "ports",
		"name", "postgresql", "containerPort", cluster->port, "protocol", "TCP", "env", environment,
		"volumeMounts", "name", "pgdata", "mountPath", DATA_MOUNT, "name", "secrets", "mountPath", SECRETS_MOUNT,
		"readOnly", 1, "name", "service-account", "mountPath", SERVICE_ACCOUNT_MOUNT, "readOnly", 1, "readinessProbe", "tcpSocket", "port", cluster->port, "periodSeconds", 2,
		"failureThreshold", 1,
		/* pgha-entrypoint writes what pg_control says there once PostgreSQL ends (entrypoint.h) */
		"terminationMessagePath", ENTRYPOINT_TERMINATION_PATH, "terminationMessagePolicy", "File");
	/* PostgreSQL runs as the image's postgres user (uid 999 in Debian's and the official
	 * images); fsGroup makes the volume and the secret files (0440) its group's */
	/* the token as the ServiceAccount admission plugin would project it (automount is off,
	 * so that the plugin adds none of its own): a short-lived token bound to the pod, the
	 * cluster's CA, the namespace */
	json_t *service_account = jsonpack(
		"{s:s, s:{s:i, s:[{s:{s:s, s:i}}, {s:{s:s, s:[{s:s, s:s}]}}, {s:{s:[{s:s, s:{s:s, s:s}}]}}]}}", "name",
		"service-account", "projected", "defaultMode", 0444, "sources", "serviceAccountToken", "path", "token",
		"expirationSeconds", TOKEN_EXPIRATION_SECONDS, "configMap", "name", "kube-root-ca.crt", "items", "key",
		"ca.crt", "path", "ca.crt", "downwardAPI", "items", "path", "namespace", "fieldRef", "apiVersion", "v1",
		"fieldPath", "metadata.namespace");
	json_t *pod = jsonpack("{s:s, s:s, s:{s:s, s:o}, s:{s:s, s:b, s:s, s:i, s:{s:i, s:i, s:i, s:b}, s:[o],"
				" s:[{s:s, s:{s:s}}, {s:s, s:{s:s, s:i}}, o]}}",
				"apiVersion", "v1", "kind", "Pod", "metadata", "name", pod_name, "labels",
				member_labels(cluster->name, index, primary), "spec", "serviceAccountName", account,
				"automountServiceAccountToken", 0, "restartPolicy", "Never",
				"terminationGracePeriodSeconds", TERMINATION_GRACE_SECONDS, "securityContext", "runAsUser", POSTGRES_UID,
				"runAsGroup", POSTGRES_UID, "fsGroup", POSTGRES_UID, "runAsNonRoot", 1, "containers",
				container, "volumes", "name", "pgdata", "persistentVolumeClaim", "claimName", claim, "name",
				"secrets", "secret", "secretName", secret, "defaultMode", 0440, service_account);
	char *path = core_path(kube, "pods", NULL);
	json_t *created = NULL;
	int status = k8s_create(kube->client, path, pod, &created, why, why_size);
	free(path);
	json_decref(pod);
	/* 409: one is there already, whichever it is: its start is awaited like a new one's */
	made_record(kube, cluster->name, index, status == 201 ? object_uid(created) : NULL);
	json_decref(created);
	return status == 201 || status == 409;
}

bool kube_delete_member(struct kube_platform *kube, const struct cluster_config *cluster, int index,
			int grace_seconds, char *why, size_t why_size)
{
	const json_t *pod = member_pod(kube, cluster->name, index);
	if (!kube_may_act(kube, cluster->name, why, why_size))
		return false;
	/* only a pod observed is deleted, by its uid; none observed: nothing to delete */
	return !pod || delete_pod(kube, pod, grace_seconds, why, why_size);
}

/* A merge patch of object KIND/NAME (consumes patch). */
static bool merge_patch(struct kube_platform *kube, const char *kind, const char *name, json_t *patch, char *why,
			size_t why_size)
{
	char *path = core_path(kube, kind, name);
	int status = k8s_merge_patch(kube->client, path, patch, NULL, NULL, why, why_size);
	free(path);
	json_decref(patch);
	return status == 200;
}

static bool patch_labels(struct kube_platform *kube, const char *pod_name, bool primary, char *why, size_t why_size)
{
	return merge_patch(kube, "pods", pod_name,
			   jsonpack("{s:{s:{s:s, s:s}}}", "metadata", "labels", "role", primary ? "primary" : "replica",
				     "master", primary ? "true" : "false"),
			   why, why_size);
}

bool kube_fence(struct kube_platform *kube, const struct cluster_config *cluster, int index, char *why,
		size_t why_size)
{
	char ignored[512];
	const json_t *pod = member_pod(kube, cluster->name, index);
	if (!kube_may_act(kube, cluster->name, why, why_size))
		return false;
	if (!pod)
		return true;
	/* first out of CLUSTER-rw, in case the deletion takes a while to land; the uid in the
	 * patch is a precondition: a newer pod of that name keeps its labels */
	if (object_uid(pod))
		merge_patch(kube, "pods", object_name(pod),
			    jsonpack("{s:{s:s, s:{s:s, s:s}}}", "metadata", "uid", object_uid(pod), "labels", "role",
				      "replica", "master", "false"),
			    ignored, sizeof ignored);
	/* not at once (grace 0), which removes the pod object before anything stopped: with its
	 * grace period the object stays, Terminating, until its kubelet has stopped the
	 * container (pgha-entrypoint makes SIGTERM an immediate shutdown) and removes it, so
	 * that the member is never created again while its container may still run; the
	 * failover does not wait for that (the cut protects it), the re-creation does */
	return delete_pod(kube, pod, TERMINATION_GRACE_SECONDS, why, why_size);
}

static bool annotate_claim(struct kube_platform *kube, const struct cluster_config *cluster, int index,
			   json_t *annotations, char *why, size_t why_size)
{
	char name[NAMES_BUFFER_SIZE];
	names_volume(name, sizeof name, cluster->name, index);
	return merge_patch(kube, "persistentvolumeclaims", name,
			   jsonpack("{s:{s:o}}", "metadata", "annotations", annotations), why, why_size);
}

bool kube_mark_configured(struct kube_platform *kube, const struct cluster_config *cluster, int index, char *why,
			  size_t why_size)
{
	char *text = parameters_text(cluster);
	bool marked = annotate_claim(kube, cluster, index, jsonpack("{s:s}", ANNOTATION_PARAMETERS, text), why, why_size);
	free(text);
	return marked;
}

static char **string_list_add(char **list, size_t *count, const char *value)
{
	list = xreallocarray(list, *count + 2, sizeof *list);
	list[(*count)++] = xstrdup(value);
	list[*count] = NULL;
	return list;
}

void kube_parameter_changes(struct kube_platform *kube, const struct cluster_config *cluster, int index,
			    char ***set_names, char ***set_values, char ***reset_names)
{
	const json_t *claim = member_claim(kube, cluster->name, index);
	const char *applied_text = claim ? object_annotation(claim, ANNOTATION_PARAMETERS) : NULL;
	json_t *applied = applied_text ? json_loads(applied_text, 0, NULL) : NULL;
	size_t names = 0, values = 0, resets = 0;
	const char *name;
	json_t *value;

	*set_names = *set_values = *reset_names = NULL;
	for (size_t i = 0; i < cluster->postgresql.parameters.count; i++) {
		*set_names = string_list_add(*set_names, &names, cluster->postgresql.parameters.items[i].name);
		*set_values = string_list_add(*set_values, &values, cluster->postgresql.parameters.items[i].value);
	}
	json_object_foreach(applied, name, value) {
		bool kept = false;
		for (size_t i = 0; i < cluster->postgresql.parameters.count && !kept; i++)
			kept = strcmp(cluster->postgresql.parameters.items[i].name, name) == 0;
		if (!kept)
			*reset_names = string_list_add(*reset_names, &resets, name);
	}
	json_decref(applied);
}

/* ---- routes and records ---- */

/* Creates or corrects Service CLUSTER-SUFFIX; true when it is as wanted now. */
static bool ensure_service(struct kube_platform *kube, const struct cluster_config *cluster, const char *suffix,
			   const char *role)
{
	char name[NAMES_BUFFER_SIZE + 8], why[1024];
	json_t *existing = NULL;
	bool right = false;

	snprintf(name, sizeof name, "%s-%s", cluster->name, suffix);
	json_t *wanted_spec = jsonpack("{s:{s:s, s:s, s:s}, s:[{s:s, s:i, s:i, s:s}]}", "selector", "app", "postgres",
					"cluster", cluster->name, "role", role, "ports", "name", "postgresql", "port",
					cluster->port, "targetPort", cluster->port, "protocol", "TCP");
	char *path = core_path(kube, "services", name);
	/* as the watch last said: no request while it is right */
	const json_t *seen = find_named(kube->services, name);
	existing = seen ? json_deep_copy(seen) : NULL;
	int status = seen ? 200 : 404;
	/* one of that name that is not pgha's is not in the watch: its create answered 409,
	 * and it is left alone for a while rather than asked again each iteration */
	struct lease_cache *record = lease_for(kube, cluster->name);
	int which = strcmp(suffix, "rw") == 0 ? 0 : 1;
	long long now = monotonic_ms();
	if (status == 404 && record->service_refused_ms[which] && now - record->service_refused_ms[which] < 10000)
		status = 0;
	if (status == 404) {
		json_t *service = jsonpack("{s:s, s:s, s:{s:s, s:o}, s:O}", "apiVersion", "v1", "kind", "Service",
					    "metadata", "name", name, "labels", owner_labels(cluster->name), "spec",
					    wanted_spec);
		char *collection = core_path(kube, "services", NULL);
		status = k8s_create(kube->client, collection, service, NULL, why, sizeof why);
		free(collection);
		json_decref(service);
		right = status == 201;
		if (status == 201) {
			record->service_created_ms[which] = now;
			log_message(LOG_LEVEL_NOTICE, cluster->name, NULL, "service %s created (role=%s, port %d)", name, role,
				    cluster->port);
		} else if (status == 409) {
			/* ours, made a moment ago and not in the watch yet, or someone else's */
			record->service_refused_ms[which] = now;
			if (!record->service_created_ms[which] || now - record->service_created_ms[which] > 10000)
				log_message(LOG_LEVEL_WARNING, cluster->name, NULL,
					    "service %s exists but pgha did not create it: leaving it alone", name);
		} else {
			log_message(LOG_LEVEL_ERROR, cluster->name, NULL, "%s", why);
		}
	} else if (status == 0) {
		right = false;
	} else if (status == 200) {
		json_t *spec = json_object_get(existing, "spec");
		if (!json_equal(json_object_get(spec, "selector"), json_object_get(wanted_spec, "selector")) ||
			   json_integer_value(json_object_get(json_array_get(json_object_get(spec, "ports"), 0), "port")) !=
				   cluster->port) {
			json_object_set(spec, "selector", json_object_get(wanted_spec, "selector"));
			json_object_set(spec, "ports", json_object_get(wanted_spec, "ports"));
			status = k8s_replace(kube->client, path, existing, NULL, why, sizeof why);
			right = status == 200;
			if (status == 200)
				log_message(LOG_LEVEL_NOTICE, cluster->name, NULL, "service %s updated (port %d)", name,
					    cluster->port);
			else
				log_message(LOG_LEVEL_WARNING, cluster->name, NULL, "%s (read again next time)", why);
		} else {
			right = true;
		}
	}
	json_decref(existing);
	json_decref(wanted_spec);
	free(path);
	return right;
}

void kube_publish(struct kube_platform *kube, const struct cluster_config *cluster,
		  const struct cluster_observation *observation)
{
	const struct member_observation *primary = observation_primary(observation);
	char why[1024];

	/* labels are routes: an observation made before the Lease ran out must not move them */
	if (!kube_may_act(kube, cluster->name, why, sizeof why))
		return;
	for (size_t i = 0; i < observation->count; i++) {
		const struct member_observation *member = &observation->members[i];
		const json_t *pod = member_pod(kube, cluster->name, member->index);
		const json_t *claim = member_claim(kube, cluster->name, member->index);
		bool is_primary = member == primary;

		/* labels: only the one primary observed is selected by CLUSTER-rw */
		if (pod && !json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp")) {
			const char *role = object_label(pod, "role"), *master = object_label(pod, "master");
			bool labelled_primary = role && strcmp(role, "primary") == 0;
			bool labelled_master = master && strcmp(master, "true") == 0;
			bool known = member->reachable || labelled_primary || labelled_master;
			/* routes follow decisions, not probes: with no primary observed, a primary that
			 * does not answer keeps its route (a blip must not cost its clients their
			 * writes); the failover takes it away when it begins (kube_fence), and a
			 * primary observed elsewhere, or this one answering as a standby, does too */
			if (!primary && !member->reachable && labelled_primary && labelled_master)
				is_primary = true;
			if (known && (labelled_primary != is_primary || labelled_master != is_primary || !role || !master)) {
				if (patch_labels(kube, object_name(pod), is_primary, why, sizeof why))
					log_message(LOG_LEVEL_NOTICE, cluster->name, member->name, "pod labelled role=%s",
						    is_primary ? "primary" : "replica");
				else
					log_message(LOG_LEVEL_WARNING, cluster->name, member->name, "%s", why);
			}
		}
		/* the claim records the pod that may run on a node, for when it leaves the API
		 * server without its containers seen ended; removed once they are, or once its
		 * node is back (pod_may_run) */
		if (claim) {
			const char *recorded = object_annotation(claim, ANNOTATION_POD);
			char *wanted = pod ? pod_record_text(pod) : NULL;
			/* a pod the watch saw vanish before it was recorded */
			char pod_name[NAMES_BUFFER_SIZE];
			names_pod(pod_name, sizeof pod_name, cluster->name, member->index);
			const struct vanished_pod *vanished = !pod && !recorded ? vanished_pod(kube, pod_name) : NULL;
			const struct pod_wait *judged = vanished ? wait_find(kube, cluster->name, member->index) : NULL;
			if (vanished && !(judged && judged->gone && strcmp(judged->uid, vanished->uid) == 0) &&
			    !ended_uid(kube, vanished->uid))
				wanted = xstrdup(vanished->record);
			struct pod_record record;
			bool known = recorded && pod_record_parse(recorded, &record);
			/* recorded: the claim keeps it from now on (and an operator who removes the
			 * annotation is not overruled by this memory) */
			if (known)
				vanished_forget(kube, record.uid);
			const struct pod_wait *wait = known ? wait_find(kube, cluster->name, member->index) : NULL;
			bool over = known && ((pod && pod_ended(pod) && strcmp(object_uid(pod) ?: "", record.uid) == 0) ||
					      ended_uid(kube, record.uid) ||
					      (wait && wait->gone && strcmp(wait->uid, record.uid) == 0));
			json_t *change = wanted && (!recorded || strcmp(recorded, wanted) != 0)
						 ? jsonpack("{s:s}", ANNOTATION_POD, wanted)
					 : !wanted && over ? jsonpack("{s:n}", ANNOTATION_POD)
							   : NULL;
			bool written = change && annotate_claim(kube, cluster, member->index, change, why, sizeof why);
			if (change && !written)
				log_message(LOG_LEVEL_WARNING, cluster->name, member->name, "%s", why);
			if (vanished && (written || !wanted))
				vanished_forget(kube, vanished->uid);
			free(wanted);
		}
		/* the claim remembers what its data is, for when no pod runs */
		if (claim && member->reachable) {
			const char *role = is_primary ? "primary" : member->in_recovery ? "standby" : NULL;
			const char *initialized = object_annotation(claim, ANNOTATION_INITIALIZED);
			const char *recorded_role = object_annotation(claim, ANNOTATION_ROLE);
			const char *recorded_timeline = object_annotation(claim, ANNOTATION_TIMELINE);
			char timeline[16];
			snprintf(timeline, sizeof timeline, "%u", member->timeline);
			if (role && (!initialized || strcmp(initialized, "true") != 0 || !recorded_role ||
				     strcmp(recorded_role, role) != 0 || !recorded_timeline ||
				     strcmp(recorded_timeline, timeline) != 0) &&
			    !annotate_claim(kube, cluster, member->index,
					    jsonpack("{s:s, s:s, s:s}", ANNOTATION_INITIALIZED, "true", ANNOTATION_ROLE, role,
						      ANNOTATION_TIMELINE, timeline),
					    why, sizeof why))
				log_message(LOG_LEVEL_WARNING, cluster->name, member->name, "%s", why);
		}
	}
	/* Services, as the watch shows them: a request only to make or correct one */
	ensure_service(kube, cluster, "rw", "primary");
	ensure_service(kube, cluster, "ro", "replica");
}

static bool is_configured_cluster(const struct pgha_config *config, const char *name)
{
	for (size_t i = 0; i < config->cluster_count; i++)
		if (strcmp(config->clusters[i].name, name) == 0)
			return true;
	return false;
}

/* A cluster no longer configured is removed by the holder of its own Lease only, as any
 * other action on it: two pghads with different configurations (one reloaded before the
 * other) must not both act on it. */
static bool lead_unconfigured(struct kube_platform *kube, const char *name, char *why, size_t why_size)
{
	struct cluster_config stub = {.name = (char *)name};
	struct cluster_state state;
	return kube_lead(kube, &stub, &state, why, why_size) && kube_may_act(kube, name, why, why_size);
}

/* Whether this pghad may remove the unconfigured cluster name, asked once per call of
 * kube_remove_unconfigured: leads remembers the answers. */
struct removal_leads {
	char names[8][NAMES_BUFFER_SIZE];
	bool allowed[8];
	size_t count;
};

static bool may_remove(struct kube_platform *kube, struct removal_leads *leads, const char *name)
{
	char why[1024];
	for (size_t i = 0; i < leads->count; i++)
		if (strcmp(leads->names[i], name) == 0)
			return leads->allowed[i];
	bool allowed = lead_unconfigured(kube, name, why, sizeof why);
	if (leads->count < sizeof leads->names / sizeof leads->names[0]) {
		snprintf(leads->names[leads->count], sizeof leads->names[0], "%s", name);
		leads->allowed[leads->count++] = allowed;
	}
	return allowed;
}

void kube_remove_unconfigured(struct kube_platform *kube, const struct pgha_config *config)
{
	char why[1024];
	size_t i;
	json_t *item;
	struct removal_leads leads = {0};

	json_array_foreach(kube->pods, i, item) {
		const char *cluster = object_label(item, "cluster");
		if (!cluster || is_configured_cluster(config, cluster) ||
		    json_object_get(json_object_get(item, "metadata"), "deletionTimestamp") ||
		    !may_remove(kube, &leads, cluster))
			continue;
		char *path = core_path(kube, "pods", object_name(item));
		int status = k8s_delete(kube->client, path, -1, object_uid(item), why, sizeof why);
		free(path);
		if (status == 200 || status == 202)
			log_message(LOG_LEVEL_NOTICE, cluster, NULL,
				    "cluster removed from the configuration: pod %s deleted (its volume claim is kept)",
				    object_name(item));
		else if (status != 404)
			log_message(LOG_LEVEL_ERROR, cluster, NULL, "%s", why);
	}
	/* Services of removed clusters, as the watch shows pgha's */
	json_array_foreach(kube->services, i, item) {
		const char *cluster = object_label(item, "cluster");
		if (!cluster || is_configured_cluster(config, cluster) || !may_remove(kube, &leads, cluster))
			continue;
		char *path = core_path(kube, "services", object_name(item));
		if (k8s_delete(kube->client, path, -1, object_uid(item), why, sizeof why) == 200)
			log_message(LOG_LEVEL_NOTICE, cluster, NULL, "cluster removed from the configuration: service %s deleted",
				    object_name(item));
		free(path);
	}
}

bool kube_purge_cluster(struct kube_platform *kube, const struct pgha_config *config, const char *name, char *why,
			size_t why_size)
{
	size_t i, claims = 0;
	json_t *item;
	char object[NAMES_BUFFER_SIZE + 8];

	if (is_configured_cluster(config, name)) {
		snprintf(why, why_size, "cluster %s is in the configuration: remove its block and reload first", name);
		return false;
	}
	bool refreshed = kube_refresh(kube, why, why_size);
	/* an operator's request, not an iteration: its requests have their own limits */
	kube_set_budget(kube, 0);
	if (!refreshed || !lead_unconfigured(kube, name, why, why_size))
		return false;
	json_array_foreach(kube->pods, i, item) {
		const char *cluster = object_label(item, "cluster");
		if (cluster && strcmp(cluster, name) == 0) {
			snprintf(why, why_size, "pod %s of cluster %s still exists; purge once it is gone", object_name(item),
				 name);
			return false;
		}
	}
	json_array_foreach(kube->claims, i, item) {
		const char *cluster = object_label(item, "cluster");
		if (!cluster || strcmp(cluster, name) != 0)
			continue;
		char *path = core_path(kube, "persistentvolumeclaims", object_name(item));
		int status = k8s_delete(kube->client, path, -1, NULL, why, why_size);
		free(path);
		if (status != 200 && status != 202 && status != 404)
			return false;
		log_message(LOG_LEVEL_WARNING, name, NULL, "purge: volume claim %s deleted", object_name(item));
		claims++;
	}
	/* the members' own access (ensure_member_access): binding, role, account */
	char account[NAMES_BUFFER_SIZE + 16];
	snprintf(account, sizeof account, "pgha-%s-member", name);
	char *access[3] = {xasprintf("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings/%s", kube->namespace,
				     account),
			   xasprintf("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles/%s", kube->namespace, account),
			   core_path(kube, "serviceaccounts", account)};
	bool access_deleted = true;
	for (int j = 0; j < 3; j++) {
		int status = access_deleted ? k8s_delete(kube->client, access[j], -1, NULL, why, why_size) : 0;
		access_deleted = access_deleted && (status == 200 || status == 404);
		free(access[j]);
	}
	if (!access_deleted)
		return false;
	snprintf(object, sizeof object, "pgha-%s", name);
	char *secret = core_path(kube, "secrets", object), *lease = lease_path(kube, object);
	int secret_status = k8s_delete(kube->client, secret, -1, NULL, why, why_size);
	int lease_status = secret_status == 200 || secret_status == 404
				   ? k8s_delete(kube->client, lease, -1, NULL, why, why_size)
				   : secret_status;
	free(secret);
	free(lease);
	if ((secret_status != 200 && secret_status != 404) || (lease_status != 200 && lease_status != 404))
		return false;
	for (i = 0; i < kube->secret_count; i++)
		if (strcmp(kube->secrets[i].cluster, name) == 0)
			kube->secrets[i].cluster[0] = '\0';
	log_message(LOG_LEVEL_WARNING, name, NULL, "purge: %zu volume claim%s, the members' service account, the secret and the lease deleted", claims,
		    claims == 1 ? "" : "s");
	return true;
}

/* ---- the platform interface (platform.h) ---- */

/* The Kubernetes platform as the interface holds it: the client, and the API server's
 * last failure ("" once it answers), logged when it changes and shown in status. */
struct kube_state {
	struct kube_platform *kube;
	char error[1024];
};

static struct kube_platform *kube_of(struct platform *platform)
{
	return ((struct kube_state *)platform->state)->kube;
}

/* A pod cloning or rewinding its data (pg_basebackup, pg_rewind) may take long. */
#define COPY_TIMEOUT_MS (3600 * 1000)

static void free_strings(char **list)
{
	for (size_t i = 0; list && list[i]; i++)
		free(list[i]);
	free(list);
}

/* ALTER SYSTEM SET names[i] = values[i] (a NULL value: RESET) on a member in order, then
 * (with reload) pg_reload_conf() once every one was written, all on one connection. With
 * chained, a setting is only written once those before it were. True when all succeeded. */
static bool kube_alter_system(struct actor *actor, const struct cluster_config *cluster, int index, size_t count,
			      const char *const *names, const char *const *values, bool chained, bool reload)
{
	struct actor_setting *settings = xcalloc(count ? count : 1, sizeof *settings);
	struct actor_step *steps = xcalloc(count + 1, sizeof *steps);
	for (size_t i = 0; i < count; i++) {
		actor_setting_init(&settings[i], names[i], values[i]);
		steps[i] = settings[i].step;
		steps[i].after_all = chained;
	}
	steps[count] = (struct actor_step){
		.what = "reloading",
		.sql = "SELECT pg_catalog.pg_reload_conf()",
		.after_all = true,
	};
	bool applied = actor_statements(actor, cluster, index, steps, count + (reload ? 1 : 0));
	for (size_t i = 0; i < count; i++)
		actor_setting_clear(&settings[i]);
	free(steps);
	free(settings);
	return applied;
}

/* On kubernetes the configured parameters live in postgresql.auto.conf, which the member's
 * volume keeps: those the configuration no longer names are reset. */
static void kube_configure(struct kube_platform *kube, struct actor *actor, const struct cluster_config *cluster, int index)
{
	char **names, **values, **resets, why[1024];
	size_t count = 0, n = 0;

	kube_parameter_changes(kube, cluster, index, &names, &values, &resets);
	for (size_t i = 0; resets && resets[i]; i++)
		count++;
	for (size_t i = 0; names && names[i]; i++)
		count++;
	/* resets, sets, then the reload once every one was written */
	const char **all_names = xcalloc(count ? count : 1, sizeof *all_names);
	const char **all_values = xcalloc(count ? count : 1, sizeof *all_values);
	for (size_t i = 0; resets && resets[i]; i++, n++)
		all_names[n] = resets[i];
	for (size_t i = 0; names && names[i]; i++, n++) {
		all_names[n] = names[i];
		all_values[n] = values[i];
	}
	bool applied = kube_alter_system(actor, cluster, index, count, all_names, all_values, false, true);
	free(all_names);
	free(all_values);
	free_strings(names);
	free_strings(values);
	free_strings(resets);
	if (!applied)
		return;
	if (!kube_mark_configured(kube, cluster, index, why, sizeof why))
		actor_report(actor, LOG_LEVEL_WARNING, cluster->name, index, "cannot record the parameters applied: %s", why);
}

/* Creates the member's pod; its start (initdb, clone, rewind inside the pod) is over
 * once it answers. A rejoin's pod rewinds its data first, whatever standby.signal says. */
static void kube_start(struct kube_platform *kube, struct actor *actor, const struct cluster_config *cluster, int index, enum operation_kind kind,
		       bool primary, int source)
{
	const struct member_observation *upstream =
		source >= 0 ? observation_member(actor_observation(actor), source) : observation_primary(actor_observation(actor));
	enum kube_pod_start start = kind == OPERATION_INITIALIZE ? KUBE_POD_BOOTSTRAP
				    : kind == OPERATION_REJOIN   ? KUBE_POD_REWIND
				    : primary			 ? KUBE_POD_PRIMARY
								 : KUBE_POD_STANDBY;
	char why[1024] = "";

	if (!kube_create_member(kube, cluster, index, start, upstream, why, sizeof why)) {
		actor_report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", operation_names[kind], why);
		return;
	}
	struct operation *operation = actor_begin(actor, cluster->name, index, kind, source);
	if (kind != OPERATION_START)
		operation->deadline_ms = actor_now_ms() + COPY_TIMEOUT_MS;
}

/* pgha-entrypoint wrote beside the data directory what the rejoin of member index came
 * to (rewound, or moved aside and copied again); the member answers now, and pghad reads
 * it through it, since a pod's log is out of its reach. */
static void kube_report_rejoin(struct kube_platform *kube, struct actor *actor, const struct cluster_config *cluster,
			       int index)
{
	char *account = NULL, sentence[768], why[512];

	actor_statement_with(actor, cluster, index, "reading what pgha-entrypoint did to rejoin", NULL, NULL,
			   "SELECT pg_catalog.pg_read_file(pg_catalog.current_setting('data_directory') || '"
			   ENTRYPOINT_REJOIN_SUFFIX "', 0, 4096, true)",
			   0, NULL, NULL, NULL, &account);
	switch (entrypoint_parse_rejoin(account, sentence, sizeof sentence)) {
	case ENTRYPOINT_REJOIN_REWOUND:
	case ENTRYPOINT_REJOIN_CLONED:
		actor_report(actor, LOG_LEVEL_NOTICE, cluster->name, index, "rejoin finished: %s", sentence);
		break;
	case ENTRYPOINT_REJOIN_MOVED_ASIDE: {
		actor_report(actor, LOG_LEVEL_WARNING, cluster->name, index, "rejoin failed: %s", sentence);
		/* the member's claim keeps it, shown in status (kept_aside) until the next one:
		 * its last event is soon another */
		char stamp[32];
		time_t now = time(NULL);
		struct tm utc;
		gmtime_r(&now, &utc);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
		char *text = xasprintf("%s: %s", stamp, sentence);
		if (!annotate_claim(kube, cluster, index, jsonpack("{s:s}", ANNOTATION_KEPT_ASIDE, text), why, sizeof why))
			actor_report(actor, LOG_LEVEL_WARNING, cluster->name, index,
				     "cannot record on its volume claim what was kept aside: %s", why);
		free(text);
		break;
	}
	case ENTRYPOINT_REJOIN_UNKNOWN:
		actor_report(actor, LOG_LEVEL_NOTICE, cluster->name, index,
		       "rejoin finished: its pod answers, but pgha-entrypoint left no account of what it did; see its "
		       "log (kubectl logs)");
		break;
	}
	free(account);
}

/* The actions that differ on kubernetes; false for those that are SQL on every platform. */
static bool kube_act(struct platform *platform, struct actor *actor, const struct cluster_config *cluster,
		     const struct cluster_observation *observation, const struct action *action)
{
	struct kube_platform *kube = kube_of(platform);
	const char *name = cluster->name;
	const struct member_observation *member = observation_member(observation, action->member);
	char why[1024] = "", slot[NAMES_BUFFER_SIZE];

	switch (action->type) {
	case ACTION_INITIALIZE:
		kube_start(kube, actor, cluster, action->member, OPERATION_INITIALIZE, true, -1);
		break;
	case ACTION_CLONE:
		kube_start(kube, actor, cluster, action->member, OPERATION_CLONE, false, action->source);
		break;
	case ACTION_REJOIN:
		if (member && member->live_processes > 0) {
			/* a diverged standby still runs: its pod is deleted as for a stop, and created
			 * again to rewind once it is gone (settle); pg_rewind wants it shut down */
			if (kube_delete_member(kube, cluster, action->member, -1, why, sizeof why))
				actor_begin(actor, name, action->member, OPERATION_REJOIN, action->source)->stopping = true;
			else
				actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "deleting its pod to rewind it failed: %s",
				       why);
			break;
		}
		kube_start(kube, actor, cluster, action->member, OPERATION_REJOIN, false, action->source);
		break;
	case ACTION_START:
		kube_start(kube, actor, cluster, action->member, OPERATION_START, member && !member->standby_signal, -1);
		break;
	case ACTION_STOP:
		if (kube_demoting(kube, name, action->member)) {
			/* a switchover's old primary: deleting its pod would be an immediate shutdown
			 * (a kubelet's SIGTERM), after which its standbys may miss what it wrote last.
			 * The state on the Lease, written before this, tells its self-fence watch
			 * to shut it down cleanly (a fast shutdown sends the standbys everything up to
			 * its shutdown checkpoint); its container then ends with pg_control's
			 * checkpoint in its termination message, which the switchover waits for its
			 * target to have. Its pod stays until then: only the pod is read. */
			actor_begin(actor, name, action->member, OPERATION_STOP, -1);
			actor_report(actor, LOG_LEVEL_NOTICE, name, action->member,
				     "switchover: its self-fence watch shuts it down cleanly, as the state on the Lease "
				     "asks; its pod ends with its shutdown checkpoint in its termination message");
			break;
		}
		/* fall through */
	case ACTION_RESTART:
		if (kube_delete_member(kube, cluster, action->member, -1, why, sizeof why))
			actor_begin(actor, name, action->member, action->type == ACTION_STOP ? OPERATION_STOP : OPERATION_RESTART,
			      -1);
		else
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "deleting its pod failed: %s", why);
		break;
	case ACTION_MOVE_ASIDE:
		actor_report(actor, LOG_LEVEL_ERROR, name, action->member,
		       "its volume holds something that is not a data directory: pgha-entrypoint leaves it alone");
		break;
	case ACTION_CONFIGURE:
		kube_configure(kube, actor, cluster, action->member);
		break;
	case ACTION_FOLLOW: {
		const struct member_observation *upstream = observation_member(observation, action->source);
		if (!upstream || !upstream->address[0]) {
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "following: the primary's pod has no address");
			break;
		}
		char *conninfo = kube_primary_conninfo(cluster, action->member, upstream);
		names_slot(slot, sizeof slot, name, action->member);
		const char *follow_names[] = {"primary_conninfo", "primary_slot_name"};
		const char *follow_values[] = {conninfo, slot};
		kube_alter_system(actor, cluster, action->member, 2, follow_names, follow_values, true, true);
		free(conninfo);
		break;
	}
	case ACTION_SET_SYNCHRONOUS:
		/* the daemon recorded the new list as intent before this runs */
		kube_alter_system(actor, cluster, action->member, 1, (const char *[]){"synchronous_standby_names"},
				  (const char *[]){action->text}, true, true);
		break;
	case ACTION_CUT: {
		/* '' rather than RESET, which would fall back to the upstream the pod started
		 * with. The WAL receiver of another pod cannot be signalled from here: it ends
		 * once the startup process reads the new setting, so the sessions whose queries
		 * may hold replay back (a replay conflict waits up to
		 * max_standby_streaming_delay) are ended; the choice waits for the receiver
		 * to be gone from pg_stat_wal_receiver. Both on one connection, the reload
		 * only once the setting is written */
		struct actor_setting setting;
		actor_setting_init(&setting, "primary_conninfo", "");
		struct actor_step steps[] = {setting.step, actor_reload_ending_sessions_step()};
		steps[1].after_all = true;
		actor_statements(actor, cluster, action->member, steps, 2);
		actor_setting_clear(&setting);
		break;
	}
	case ACTION_FENCE:
		if (kube_fence(kube, cluster, action->member, why, sizeof why))
			actor_report(actor, LOG_LEVEL_WARNING, name, action->member,
				     "fenced: its pod is being deleted (SIGTERM: an immediate shutdown)");
		else
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "fencing failed: %s", why);
		break;
	case ACTION_CREATE_REPLICATION_ROLE:
	case ACTION_ALTER_REPLICATION_ROLE:
	case ACTION_RESET_OVERRIDES:
	case ACTION_CREATE_SLOT:
	case ACTION_DROP_SLOT:
	case ACTION_PROMOTE:
		return false;
	}
	return true;
}

static int kube_open(struct platform *platform, const struct pgha_config *config)
{
	char why[1024];
	struct kube_state *state = xcalloc(1, sizeof *state);

	platform->state = state;
	state->kube = kube_platform_new(config, getenv("PGHA_IDENTITY"), why, sizeof why);
	if (!state->kube) {
		log_error("kubernetes: %s", why);
		return PGHA_EXIT_KUBERNETES;
	}
	log_info("kubernetes: namespace %s, acting as %s where it holds a cluster's lease", kube_namespace(state->kube),
		 kube_identity(state->kube));
	return PGHA_EXIT_OK;
}

static void kube_close(struct platform *platform)
{
	struct kube_state *state = platform->state;
	if (state)
		kube_platform_free(state->kube);
	free(state);
	platform->state = NULL;
}

static void kube_set_config(struct platform *platform, const struct pgha_config *config)
{
	kube_platform_set_config(kube_of(platform), config);
}

/* The API server did not answer the iteration's lists (why): every held Lease whose
 * validity is over is lost now, said in the log and the status. The iteration stops
 * before kube_lead, which would find it so, and the renewal timer leaves an expired
 * Lease alone: without this, a pghad cut off from the API server would go on reporting
 * a Lease another pghad has taken over, and never say why it does not act. */
static void leases_expire(struct kube_platform *kube, const char *why)
{
	long long now = monotonic_ms();

	for (size_t i = 0; i < kube->lease_count; i++) {
		struct lease_cache *lease = kube->leases[i];
		long long remaining = lease_remaining_ms(lease->renewed_ms, lease->renewed_duration_ms, now);
		if (!lease->held || remaining > 0)
			continue;
		char reason[1400];
		snprintf(reason, sizeof reason, "expired %lld ms ago without an answered renewal; %s", -remaining, why);
		lease_lost(lease, reason);
	}
}

static bool kube_refresh_platform(struct platform *platform)
{
	struct kube_state *state = platform->state;
	char why[1024] = "";
	bool listed = kube_refresh(state->kube, why, sizeof why);
	if (!listed)
		kube_set_budget(state->kube, 0); /* no finish in this iteration */
	/* listed once, the iteration goes on with what the watches last said, however long
	 * the API server has not answered; that is an error to show all the same */
	bool silent = listed && k8s_client_silent_since(state->kube->client);
	if (silent)
		snprintf(why, sizeof why, "the API server does not answer: working on what its watches last said");

	if (!listed || silent)
		leases_expire(state->kube, why);

	bool answers = listed && !silent;
	if (!answers || state->error[0]) {
		if (answers || strcmp(why, state->error) != 0)
			log_message(answers ? LOG_LEVEL_NOTICE : LOG_LEVEL_ERROR, NULL, NULL, "kubernetes: %s",
				    answers ? "the API server answers again" : why);
		snprintf(state->error, sizeof state->error, "%s", answers ? "" : why);
	}
	return listed;
}

static void kube_observe(struct platform *platform, const struct cluster_config *cluster,
			 struct cluster_observation *observation)
{
	kube_observe_cluster(kube_of(platform), cluster, observation);
}

static bool kube_target(struct platform *platform, const struct cluster_config *cluster, int index,
			const struct member_observation *member, struct pg_target *target, char *why, size_t why_size)
{
	(void)index;
	if (!member || !member->address[0]) {
		snprintf(why, why_size, "its pod has no address");
		return false;
	}
	*target = kube_admin_target(kube_of(platform), cluster, member);
	return true;
}

static void kube_execute(struct platform *platform, struct pg_request *requests, size_t count, int timeout_ms)
{
	(void)platform;
	pg_execute_all(requests, count, timeout_ms);
}

static struct pg_batch *kube_execute_start(struct platform *platform, sd_event *event, struct pg_request *requests,
					 size_t count, int timeout_ms, pg_batch_done_fn done, void *context)
{
	(void)platform;
	return pg_execute_start(event, requests, count, timeout_ms, done, context);
}

static char *kube_owned_settings(struct platform *platform, const struct cluster_config *cluster)
{
	/* pgha's own settings are ALTER SYSTEM's here: none is an override */
	(void)platform;
	(void)cluster;
	return xstrdup("{}");
}

static int kube_upstream(struct platform *platform, const struct cluster_config *cluster,
			 const struct cluster_observation *observation, const char *primary_conninfo)
{
	(void)platform;
	(void)cluster;
	return kube_upstream_of(observation, primary_conninfo);
}

static char *kube_conninfo(struct platform *platform, const struct cluster_config *cluster,
			   const struct cluster_observation *observation, int index, int upstream)
{
	(void)platform;
	return kube_primary_conninfo(cluster, index, observation_member(observation, upstream));
}

/* The state is on the cluster's Lease, and only its holder acts. */
static enum platform_hold kube_load_state(struct platform *platform, const struct cluster_config *cluster,
					  struct cluster_state *state, char *why, size_t why_size)
{
	return kube_lead(kube_of(platform), cluster, state, why, why_size) ? PLATFORM_HOLD_ACTS
									     : PLATFORM_HOLD_ELSEWHERE;
}

static bool kube_save(struct platform *platform, const struct cluster_config *cluster,
		      const struct cluster_state *state, char *why, size_t why_size)
{
	return kube_save_state(kube_of(platform), cluster, state, why, why_size);
}

/* The Lease, checked with its margin by the monotonic clock at the moment of each action. */
static bool kube_may_act_platform(struct platform *platform, const struct cluster_config *cluster, char *why,
				  size_t why_size)
{
	return kube_may_act(kube_of(platform), cluster->name, why, why_size);
}

static bool kube_password(struct platform *platform, const struct cluster_config *cluster, char *password,
			  size_t password_size, char *why, size_t why_size)
{
	return kube_replication_password(kube_of(platform), cluster, password, password_size, why, why_size);
}

/* A pod is gone, or its container ended: nothing of it runs. */
static bool kube_gone(const struct member_observation *member)
{
	return member->live_processes == 0;
}

static bool kube_failed(struct platform *platform, const struct operation *operation,
			const struct member_observation *member, char *why, size_t why_size)
{
	if (!member || !member->postmaster_exited || member->live_processes)
		return false;
	/* what ended must be the pod the operation awaits: right after pghad replaced a pod
	 * (a rejoin's rewind pod in place of the one it stopped), its watch may still show
	 * the old one, ended, for a few milliseconds */
	const struct kube_platform *kube = kube_of(platform);
	const json_t *pod = member_pod(kube, operation->cluster, operation->index);
	if (!pod || !pod_ended(pod) || !pod_is_made(kube, operation->cluster, operation->index, pod))
		return false;
	snprintf(why, why_size, "its pod's container ended; see its log (kubectl logs)");
	return true;
}

static bool kube_over(struct platform *platform, struct actor *actor, const struct cluster_config *cluster,
		      const struct operation *operation)
{
	(void)platform;
	if (operation->kind == OPERATION_PROMOTE) {
		/* a primary follows no one; should it become a standby again, its pod starts
		 * with fresh standby settings that these would override */
		kube_alter_system(actor, cluster, operation->index, 2, (const char *[]){"primary_conninfo", "primary_slot_name"},
				  (const char *[]){NULL, NULL}, false, false);
		return false;
	}
	if (operation->kind == OPERATION_REJOIN && !operation->stopping) {
		kube_report_rejoin(kube_of(platform), actor, cluster, operation->index);
		return true;
	}
	return false;
}

static void kube_publish_platform(struct platform *platform, const struct cluster_config *cluster,
				  const struct cluster_observation *observation)
{
	kube_publish(kube_of(platform), cluster, observation);
}

static pid_t kube_watch(struct platform *platform, const struct member_observation *primary)
{
	/* a pod's processes are not this host's */
	(void)platform;
	(void)primary;
	return 0;
}

/* A turn's calls to the API server end within ITERATION_BUDGET_MS of its start, as the
 * refresh's do: decided after its members answered, a turn comes long after the refresh
 * (whose budget finish has ended), and a call in flight to a frozen API server (a Lease's
 * renewal) must not hold up the loop until the call's own limit. */
static void kube_turn(struct platform *platform, bool begins)
{
	kube_set_budget(kube_of(platform), begins ? monotonic_ms() + ITERATION_BUDGET_MS : 0);
}

static void kube_finish(struct platform *platform, const struct pgha_config *config)
{
	kube_remove_unconfigured(kube_of(platform), config);
	/* the iteration is over: requests between iterations have their own limits only */
	kube_set_budget(kube_of(platform), 0);
}

/* kubectl get events shows what happened to a member's pod: an entry about a member
 * becomes an Event on its pod (a reload, about no member, does not). */
static bool kube_record(struct platform *platform, const struct history_entry *entry, char *why, size_t why_size)
{
	if (!entry->member[0])
		return true;
	return kube_post_event(kube_of(platform), entry, why, why_size);
}

static bool kube_has_data(struct platform *platform, const struct cluster_config *cluster)
{
	(void)platform;
	(void)cluster;
	return false;
}

static bool kube_purge(struct platform *platform, const char *name, char *why, size_t why_size)
{
	struct kube_platform *kube = kube_of(platform);
	return kube_purge_cluster(kube, kube->config, name, why, why_size);
}

static int kube_port(const struct platform *platform, const struct cluster_config *cluster, int index)
{
	(void)platform;
	(void)index;
	return cluster->port;
}

static void kube_status(const struct platform *platform, json_t *reply)
{
	const struct kube_state *state = platform->state;
	json_object_set_new(reply, "kubernetes",
			    jsonpack("{s:s, s:s, s:I, s:I, s:o}", "namespace", kube_namespace(state->kube), "identity",
				     kube_identity(state->kube), "requests_per_iteration",
				     (json_int_t)kube_requests_per_iteration(state->kube), "requests_total",
				     (json_int_t)kube_requests_total(state->kube), "error", jsonpack_text(state->error)));
	json_object_set_new(json_object_get(reply, "kubernetes"), "api_requests", kube_request_counts(state->kube));
	json_object_set_new(json_object_get(reply, "kubernetes"), "requests_per_second", kube_request_rates(state->kube));
}

static void kube_cluster_status(const struct platform *platform, const struct cluster_config *cluster, json_t *reply)
{
	const struct kube_platform *kube = ((const struct kube_state *)platform->state)->kube;
	json_object_set_new(reply, "lease",
			    jsonpack("{s:s+, s:s, s:b}", "name", "pgha-", cluster->name, "holder",
				     kube_lease_holder(kube, cluster->name), "held", kube_lease_held(kube, cluster->name)));
	/* each member: what pgha-entrypoint last kept aside in its volume, "" when nothing */
	size_t i;
	json_t *member;
	json_array_foreach(json_object_get(reply, "members"), i, member) {
		const char *name = json_string_value(json_object_get(member, "name"));
		size_t length = strlen(cluster->name);
		const json_t *claim = NULL;
		if (name && strncmp(name, cluster->name, length) == 0 && name[length] == '-')
			claim = member_claim(kube, cluster->name, atoi(name + length + 1));
		const char *kept = claim ? object_annotation(claim, ANNOTATION_KEPT_ASIDE) : NULL;
		json_object_set_new(member, "kept_aside", jsonpack_text(kept ? kept : ""));
	}
}

static void kube_attach_platform(struct platform *platform, sd_event *event)
{
	kube_attach(kube_of(platform), event);
}

const struct platform_ops kube_platform_ops = {
	.name = "kubernetes",
	.open = kube_open,
	.attach = kube_attach_platform,
	.close = kube_close,
	.set_config = kube_set_config,
	.refresh = kube_refresh_platform,
	.observe = kube_observe,
	.admin_target = kube_target,
	.execute = kube_execute,
	.execute_start = kube_execute_start,
	.owned_settings = kube_owned_settings,
	.upstream_of = kube_upstream,
	.primary_conninfo = kube_conninfo,
	.load_state = kube_load_state,
	.save_state = kube_save,
	.may_act = kube_may_act_platform,
	.act = kube_act,
	.replication_password = kube_password,
	.gone = kube_gone,
	.failed = kube_failed,
	.over = kube_over,
	.publish = kube_publish_platform,
	.watch = kube_watch,
	.turn = kube_turn,
	.finish = kube_finish,
	.record = kube_record,
	.has_data = kube_has_data,
	.purge = kube_purge,
	.member_port = kube_port,
	.status = kube_status,
	.cluster_status = kube_cluster_status,
};
