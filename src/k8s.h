/* k8s: a small Kubernetes API client (libcurl's multi interface + jansson): credentials from a kubeconfig or the pod's service account, requests in flight on an sd-event loop or waited for within a deadline, 429/503 honoured, clear errors, optimistic concurrency by resourceVersion. */
#ifndef PGHA_K8S_H
#define PGHA_K8S_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <systemd/sd-event.h>

struct k8s_client;

/* Connect and total time limits of every request, in milliseconds. */
struct k8s_limits {
	int connect_timeout_ms; /* 0: 2000 */
	int timeout_ms;         /* 0: 5000 */
};

/* A client from kubeconfig (a path: its current context's cluster, user and namespace;
 * token, token file, client certificate and key (files or inline data), CA (file or
 * inline data)), or when kubeconfig is NULL or "" from the pod's service account
 * (KUBERNETES_SERVICE_HOST/PORT, the token file, re-read when it changes, the CA file
 * and the namespace file). NULL with the reason in why when neither can be used. */
struct k8s_client *k8s_client_new(const char *kubeconfig, const struct k8s_limits *limits, char *why,
				  size_t why_size);
void k8s_client_free(struct k8s_client *client);
/* The namespace of the kubeconfig's context or the service account ("default" when
 * neither names one). */
const char *k8s_client_namespace(const struct k8s_client *client);
/* The API server's address ("https://127.0.0.1:6443"), for messages. */
const char *k8s_client_server(const struct k8s_client *client);
/* Requests sent since the client was made (each retry counts). */
unsigned long k8s_client_requests(const struct k8s_client *client);

/* The client's transfers run on event from now on (libcurl's sockets and timer as its
 * sources), so that calls sent with k8s_send go on while the loop does. Without it,
 * they go on only while a synchronous request waits. Negative errno on failure. */
int k8s_client_attach(struct k8s_client *client, sd_event *event);

/* Synchronous requests (k8s_request and the conveniences below) end by deadline_ms
 * (CLOCK_MONOTONIC, ms; 0: only by the client's limits): one made past it is not sent
 * (-1). A caller with a budget for the API server sets it, and 0 after. */
void k8s_client_set_deadline(struct k8s_client *client, long long deadline_ms);
/* Since when (monotonic ms) no request got an answer, or a request in flight (not a
 * watch) has waited for one more than 2 s: 0 while the API server answers. A
 * synchronous request made with a deadline set is not sent meanwhile (-1). */
long long k8s_client_silent_since(const struct k8s_client *client);
/* Until when (monotonic ms) the API server asked for no request (429/503); past: none. */
long long k8s_client_not_before(const struct k8s_client *client);

/* A call in flight. Its done callback gets the status (-1: no answer), the parsed reply
 * (NULL when not JSON; borrowed: incref to keep), why unless 2xx, and when the attempt
 * that answered was sent (monotonic ms, before it could land). A 429 or 503 answer
 * makes the client wait for its Retry-After (else a back-off doubling from 250 ms),
 * capped at 10 s, before any request; the call itself is sent again then, up to 4
 * attempts, unless that is past its deadline. */
struct k8s_call;
typedef void (*k8s_done_fn)(int status, json_t *reply, const char *why, long long sent_ms, void *context);
/* Each line (a JSON object) of a watch as it comes; must make no request itself. */
typedef void (*k8s_line_fn)(json_t *line, void *context);
/* Sends a request without waiting: done is called from the event loop (or from a
 * synchronous request's wait) once it is over, and the call is freed after. deadline_ms
 * (0: none) bounds it besides the client's limits. NULL (why written, done not called)
 * when it cannot be sent. */
struct k8s_call *k8s_send(struct k8s_client *client, const char *method, const char *path, const json_t *body,
			  const char *content_type, long long deadline_ms, k8s_done_fn done, void *context, char *why,
			  size_t why_size);
/* A GET whose body is a stream of lines (a watch), with no total time limit but
 * deadline_ms (0: none): line for each, done at its end (the reply is NULL then). */
struct k8s_call *k8s_stream(struct k8s_client *client, const char *path, long long deadline_ms, k8s_line_fn line,
			    k8s_done_fn done, void *context, char *why, size_t why_size);
/* Ends a call at once; its done is not called. NULL: nothing. */
void k8s_cancel(struct k8s_call *call);
/* The HTTP status of call's answer so far (a watch's while it streams); 0: none yet. */
int k8s_call_status(const struct k8s_call *call);
/* Runs the client's transfers until *over (set by a done callback) or deadline_ms (0:
 * the longest a request may take with its waits after 429/503). */
void k8s_run(struct k8s_client *client, const bool *over, long long deadline_ms);

/* Requests made, by method and HTTP status (0: no answer), for metrics. */
struct k8s_request_count {
	char method[8];
	int status;
	unsigned long count;
};
#define K8S_REQUEST_COUNTS 48
/* The counts so far (at most K8S_REQUEST_COUNTS pairs; further pairs are counted in the
 * last one, of method "OTHER"), and how many there are. */
const struct k8s_request_count *k8s_client_request_counts(const struct k8s_client *client, size_t *count);

/* "METHOD PATH: STATUS REASON: message" of an answer that is not 2xx into why: the
 * message is the API Status object's in body, else the start of a body that is not JSON
 * (on one line); bearer tokens are scrubbed. Exposed for the unit tests. */
void k8s_format_error(char *why, size_t why_size, const char *method, const char *path, int status, const char *body,
		      size_t body_length);

/* method may be "LIST": a GET counted as a list in k8s_client_request_counts (a watch
 * is counted as WATCH). */
/* One request, synchronous: the client's other calls go on while it waits, and it ends
 * within the client's total time limit (timeout_ms, waits after a 429/503 included) or
 * by the deadline set, whichever comes first. path starts with "/api" or "/apis" and is already escaped where needed.
 * body (may be NULL) is sent as JSON with content_type (NULL: application/json). On any
 * HTTP answer returns its status and, when reply is not NULL, sets *reply to the parsed
 * body (NULL when it is not JSON); the caller json_decref()s it. Returns -1 when no answer
 * came (connection, TLS, timeout). Unless the status is 2xx, why holds
 * "METHOD PATH: STATUS REASON: message" with the API's Status message. Tokens, keys and
 * passwords never reach why or the log. */
int k8s_request(struct k8s_client *client, const char *method, const char *path, const json_t *body,
		const char *content_type, json_t **reply, char *why, size_t why_size);

/* Conveniences over k8s_request; each returns the HTTP status (-1: no answer). Their
 * object outputs are set on a 2xx answer only (NULL otherwise); a 2xx answer whose body
 * is not a JSON object counts as no answer (-1), so that a 2xx always comes with one. */
int k8s_get(struct k8s_client *client, const char *path, json_t **object, char *why, size_t why_size);
/* A list, narrowed by label_selector (NULL: all), served from the API server's cache when
 * resource_version is "0". *items is the list's items array (a new reference) and, when
 * list_version is not NULL, its metadata.resourceVersion is copied there. */
int k8s_list(struct k8s_client *client, const char *path, const char *label_selector, const char *resource_version,
	     json_t **items, char *list_version, size_t list_version_size, char *why, size_t why_size);
/* POST: 201 created, 409 when it already exists. *created may be NULL. */
int k8s_create(struct k8s_client *client, const char *collection_path, const json_t *object, json_t **created,
	       char *why, size_t why_size);
/* PUT of object, which carries the metadata.resourceVersion it was read at: 409 Conflict
 * when the object changed since (never a blind overwrite: an object without one is
 * refused, unsent, with -1). */
int k8s_replace(struct k8s_client *client, const char *path, const json_t *object, json_t **replaced, char *why,
		size_t why_size);
/* JSON merge patch (RFC 7386). With resource_version not NULL the patch carries it as
 * metadata.resourceVersion, a precondition: 409 when the object changed since. */
int k8s_merge_patch(struct k8s_client *client, const char *path, const json_t *patch, const char *resource_version,
		    json_t **patched, char *why, size_t why_size);
/* DELETE. grace_seconds -1: the object's own grace period; 0: at once. uid, when not
 * NULL, is a precondition (409 when the object is another one by now). 404 is returned
 * as such: the caller decides whether gone is fine. */
int k8s_delete(struct k8s_client *client, const char *path, int grace_seconds, const char *uid, char *why,
	       size_t why_size);

/* Read-modify-write with optimistic concurrency: GET path, call change (which edits the
 * object in place and returns false to give up without writing, why written), PUT it;
 * on 409 Conflict read again and retry, up to attempts times. Returns the last status,
 * or 0 when change gave up (then *updated is the object as read, as change left it).
 * Each try is two requests, each bounded by the client's limits; no sleep between. */
typedef bool (*k8s_change_fn)(json_t *object, void *context, char *why, size_t why_size);
int k8s_update(struct k8s_client *client, const char *path, k8s_change_fn change, void *context, int attempts,
	       json_t **updated, char *why, size_t why_size);

/* Escapes value for a URL path segment or query value (a new string). */
char *k8s_escape(const char *value);

#endif
