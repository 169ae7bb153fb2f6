/* k8s: a small Kubernetes API client (libcurl + jansson): credentials from a kubeconfig or the pod's service account, bounded requests, clear errors, optimistic concurrency by resourceVersion. */
#include "autoconfig.h"

#include "k8s.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "file.h"
#include "jsonpack.h"
#include "kubeconfig.h"
#include "log.h"
#include "memory.h"

#define SERVICE_ACCOUNT_DIRECTORY "/var/run/secrets/kubernetes.io/serviceaccount"
/* A list of every pod of a large namespace stays well under this; more is a runaway. */
#define REPLY_MAXIMUM (64 * 1024 * 1024)
#define TOKEN_MAXIMUM (64 * 1024)

/* A token read from a file, re-read whenever the file is another one or was written
 * since: kubelet rotates a projected service account token by swapping a symlink, and a
 * kubeconfig's tokenFile may be rewritten in place. */
struct token_source {
	char *path;   /* NULL: the token never changes */
	char *token;  /* NULL: requests carry no token */
	struct stat seen;
	bool have_seen;
	bool failing; /* the last re-read failed (logged once) */
};

/* One socket libcurl asked to be watched, and its source on the event loop (if any). */
struct watched_socket {
	curl_socket_t fd;
	int what; /* CURL_POLL_IN, _OUT, _INOUT */
	sd_event_source *source;
};

struct k8s_call;

struct k8s_client {
	CURLM *multi;             /* every request, on the event loop once attached */
	struct k8s_call *calls;   /* in flight or waiting to be sent */
	struct watched_socket *sockets;
	size_t socket_count;
	sd_event *event;          /* NULL: synchronous calls poll by themselves */
	sd_event_source *timer;
	long long curl_timeout_ms;  /* monotonic: when libcurl wants its timeout run (0: never) */
	long long deadline_ms;      /* synchronous requests end by then (0: only their limits) */
	long long not_before_ms;    /* no request before then: a 429 or 503 asked to wait */
	unsigned throttled_in_a_row;
	long long silent_since_ms;  /* a request got no answer, none has since (0: answers) */
	struct kubeconfig config; /* TLS material and proxy; the token lives in token */
	char *server;             /* without a trailing slash */
	char *namespace;
	struct k8s_limits limits;
	struct token_source token;
	unsigned long requests;
	struct k8s_request_count counts[K8S_REQUEST_COUNTS];
	size_t count_count;
};

struct reply_buffer {
	char *data;
	size_t length;
	bool too_large;
};

static int on_socket(CURL *curl, curl_socket_t fd, int what, void *userdata, void *socketp);
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userdata);
static void call_free(struct k8s_call *call);

static long long now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool is_success(int status)
{
	return status >= 200 && status < 300;
}

/* ---- tokens ---- */

static void forget(char **secret)
{
	if (*secret)
		explicit_bzero(*secret, strlen(*secret));
	free(*secret);
	*secret = NULL;
}

/* The token in path: trailing blanks removed, and only characters a header may carry. */
static char *read_token(const char *path, char *why, size_t why_size)
{
	char reason[256];
	size_t length;
	char *token = file_read(path, TOKEN_MAXIMUM, &length, reason, sizeof reason);

	if (!token) {
		snprintf(why, why_size, "cannot read the token file %s: %s", path, strerror(errno));
		return NULL;
	}
	while (length > 0 && isspace((unsigned char)token[length - 1]))
		token[--length] = '\0';
	bool usable = length > 0;
	for (size_t i = 0; i < length; i++)
		usable &= token[i] > ' ' && token[i] < 0x7f;
	if (!usable) {
		snprintf(why, why_size, "the token file %s holds no token (%s)", path,
			 length ? "unexpected characters" : "it is empty");
		forget(&token);
	}
	return token;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Re-reads the token file when it changed. A failed re-read keeps the token in hand
 * (a rotation caught half way is retried at the next request); false only when there
 * is no token at all. */
static bool refresh_token(struct token_source *source, char *why, size_t why_size)
{
	struct stat now;

	if (!source->path)
		return true;
	bool stated = stat(source->path, &now) == 0;
	if (stated && source->have_seen && same_file(&now, &source->seen))
		return true;
	char reason[512];
	char *token = read_token(source->path, reason, sizeof reason);
	if (token) {
		forget(&source->token);
		source->token = token;
		source->seen = now;
		source->have_seen = stated;
		if (source->failing)
			log_notice("the token file %s is readable again", source->path);
		source->failing = false;
		return true;
	}
	if (!source->failing && source->token)
		log_warning("%s; requests carry the token read before", reason);
	source->failing = true;
	source->have_seen = false;
	if (source->token)
		return true;
	snprintf(why, why_size, "%s", reason);
	return false;
}

/* ---- creation ---- */

/* What the pod's service account resolves to, as a kubeconfig would. */
static bool service_account(struct kubeconfig *config, char *why, size_t why_size)
{
	/* Tests only: a service account directory outside a pod (see pghad(8)). */
	const char *directory = getenv("PGHA_K8S_SERVICEACCOUNT_DIR");
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char reason[256];

	memset(config, 0, sizeof *config);
	if (!directory || !*directory)
		directory = SERVICE_ACCOUNT_DIRECTORY;
	if (!host || !*host || !port || !*port) {
		snprintf(why, why_size,
			 "no kubeconfig is set, and KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not: "
			 "outside a pod, name a kubeconfig");
		return false;
	}
	if (strspn(port, "0123456789") != strlen(port)) {
		snprintf(why, why_size, "KUBERNETES_SERVICE_PORT is not a port number: %s", port);
		return false;
	}
	/* an IPv6 address is bracketed in a URL */
	config->server = xasprintf(strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
	config->token_file = xasprintf("%s/token", directory);
	config->certificate_authority = xasprintf("%s/ca.crt", directory);
	if (access(config->certificate_authority, R_OK) < 0) {
		snprintf(why, why_size, "cannot read the service account's CA certificate %s: %s",
			 config->certificate_authority, strerror(errno));
		kubeconfig_clear(config);
		return false;
	}
	char *namespace_file = xasprintf("%s/namespace", directory);
	char *namespace = file_read(namespace_file, 1024, NULL, reason, sizeof reason);
	free(namespace_file);
	if (namespace) {
		size_t length = strcspn(namespace, " \t\r\n");
		namespace[length] = '\0';
		if (length)
			config->namespace = namespace;
		else
			free(namespace);
	}
	return true;
}

struct k8s_client *k8s_client_new(const char *kubeconfig, const struct k8s_limits *limits, char *why,
				  size_t why_size)
{
	static bool curl_ready;
	struct kubeconfig config;
	char reason[512];

	if (kubeconfig && *kubeconfig) {
		if (!kubeconfig_load(kubeconfig, &config, why, why_size))
			return NULL;
	} else if (!service_account(&config, why, why_size)) {
		return NULL;
	}
#if LIBCURL_VERSION_NUM < 0x074d00
	if (config.certificate_authority_data.data) {
		snprintf(why, why_size, "kubeconfig %s: certificate-authority-data needs libcurl 7.77 or later: name the "
			 "CA file with certificate-authority", kubeconfig);
		kubeconfig_clear(&config);
		return NULL;
	}
#endif
	/* once per process, before any handle: the daemon has a single thread */
	if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(why, why_size, "cannot initialise libcurl");
		kubeconfig_clear(&config);
		return NULL;
	}
	curl_ready = true;

	struct k8s_client *client = xcalloc(1, sizeof *client);
	client->config = config;
	client->multi = curl_multi_init();
	if (client->multi) {
		curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
		curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
		curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
		curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
	}
	client->server = xstrdup(config.server);
	for (size_t length = strlen(client->server); length > 0 && client->server[length - 1] == '/';)
		client->server[--length] = '\0';
	client->namespace = xstrdup(config.namespace ? config.namespace : "default");
	client->limits.connect_timeout_ms = limits && limits->connect_timeout_ms > 0 ? limits->connect_timeout_ms : 2000;
	client->limits.timeout_ms = limits && limits->timeout_ms > 0 ? limits->timeout_ms : 5000;
	client->token.token = config.token;
	client->token.path = config.token_file;
	client->config.token = NULL;
	client->config.token_file = NULL;
	if (!client->multi) {
		snprintf(why, why_size, "cannot initialise libcurl");
		k8s_client_free(client);
		return NULL;
	}
	if (!refresh_token(&client->token, reason, sizeof reason)) {
		if (kubeconfig && *kubeconfig)
			snprintf(why, why_size, "kubeconfig %s: %s", kubeconfig, reason);
		else
			snprintf(why, why_size, "the service account: %s", reason);
		k8s_client_free(client);
		return NULL;
	}
	return client;
}

void k8s_client_free(struct k8s_client *client)
{
	if (!client)
		return;
	while (client->calls)
		call_free(client->calls);
	for (size_t i = 0; i < client->socket_count; i++)
		sd_event_source_disable_unref(client->sockets[i].source);
	free(client->sockets);
	if (client->multi)
		curl_multi_cleanup(client->multi);
	sd_event_source_disable_unref(client->timer);
	sd_event_unref(client->event);
	forget(&client->token.token);
	free(client->token.path);
	kubeconfig_clear(&client->config);
	free(client->server);
	free(client->namespace);
	free(client);
}

const char *k8s_client_namespace(const struct k8s_client *client)
{
	return client->namespace;
}

const char *k8s_client_server(const struct k8s_client *client)
{
	return client->server;
}

unsigned long k8s_client_requests(const struct k8s_client *client)
{
	return client->requests;
}

/* ---- answers ---- */

static const char *reason_phrase(int status)
{
	static const struct {
		int status;
		const char *phrase;
	} phrases[] = {
		{200, "OK"},
		{201, "Created"},
		{202, "Accepted"},
		{204, "No Content"},
		{400, "Bad Request"},
		{401, "Unauthorized"},
		{403, "Forbidden"},
		{404, "Not Found"},
		{405, "Method Not Allowed"},
		{406, "Not Acceptable"},
		{409, "Conflict"},
		{410, "Gone"},
		{413, "Request Entity Too Large"},
		{415, "Unsupported Media Type"},
		{422, "Unprocessable Entity"},
		{429, "Too Many Requests"},
		{500, "Internal Server Error"},
		{502, "Bad Gateway"},
		{503, "Service Unavailable"},
		{504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < sizeof phrases / sizeof *phrases; i++)
		if (phrases[i].status == status)
			return phrases[i].phrase;
	return NULL;
}

/* Copies text into a line of at most size - 1 bytes: control characters become spaces,
 * runs of spaces one, no blank at either end. */
static void one_line(char *line, size_t size, const char *text, size_t length)
{
	size_t used = 0;

	for (size_t i = 0; i < length && used + 1 < size; i++) {
		char c = iscntrl((unsigned char)text[i]) ? ' ' : text[i];
		if (c == ' ' && (used == 0 || line[used - 1] == ' '))
			continue;
		line[used++] = c;
	}
	while (used > 0 && line[used - 1] == ' ')
		used--;
	line[used] = '\0';
}

void k8s_format_error(char *why, size_t why_size, const char *method, const char *path, int status, const char *body,
		      size_t body_length)
{
	json_t *parsed = body && body_length ? json_loadb(body, body_length, 0, NULL) : NULL;
	const char *message = json_string_value(json_object_get(parsed, "message"));
	const char *phrase = reason_phrase(status);
	char detail[512] = "";

	if (!message || !*message)
		message = json_string_value(json_object_get(parsed, "reason"));
	if (message && *message)
		one_line(detail, sizeof detail, message, strlen(message));
	else if (!parsed && body_length)
		one_line(detail, sizeof detail, body, body_length < 200 ? body_length : 200);
	snprintf(why, why_size, "%s %s: %d%s%s%s%s", method, path, status, phrase ? " " : "", phrase ? phrase : "",
		 *detail ? ": " : "", detail);
	log_scrub(why);
	json_decref(parsed);
}

static size_t collect(char *data, size_t size, size_t count, void *context)
{
	struct reply_buffer *buffer = context;
	size_t bytes = size * count;

	if (bytes > REPLY_MAXIMUM - buffer->length) {
		buffer->too_large = true;
		return 0;
	}
	buffer->data = xreallocarray(buffer->data, buffer->length + bytes + 1, 1);
	memcpy(buffer->data + buffer->length, data, bytes);
	buffer->length += bytes;
	buffer->data[buffer->length] = '\0';
	return bytes;
}

/* ---- requests ---- */

/* What a request's answer asks of the ones after it: a 429 or 503 with Retry-After (in
 * seconds) or, without one, a back-off doubling from BACKOFF_FIRST_MS; both capped. */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_CAP_MS 10000
/* The attempts of one call, the first one included, while 429/503 answers come. */
#define ATTEMPTS_MAXIMUM 4
/* An API server that leaves a request unanswered this long counts as silent (a loaded
 * one may take a second). */
#define SLOW_MS 2000


struct k8s_call {
	struct k8s_client *client;
	struct k8s_call *next; /* the client's calls */
	CURL *curl;
	char method[8];
	char verb[8]; /* as counted: the method, or LIST or WATCH for a GET of a collection or a watch */
	char *path, *url, *payload, *content_type;
	struct curl_slist *headers;
	struct reply_buffer buffer;
	char error[CURL_ERROR_SIZE];
	k8s_done_fn done;
	k8s_line_fn line; /* a watch: each line as it comes */
	void *context;
	long long deadline_ms;  /* 0: none but the limits */
	long long sent_ms;      /* when the current attempt was sent */
	long long retry_at_ms;  /* > 0: waiting to be sent then */
	int attempts;
	bool in_multi;
	bool finished;          /* out of the multi, its outcome known, done not called yet */
	bool cancelled;
	bool streaming;         /* no total time limit: a watch */
	size_t line_start;      /* a watch: where the unparsed rest of buffer starts */
	CURLcode code;
	int status;
	long retry_after_ms;    /* of the answer; -1: none */
};

static size_t collect_line(char *data, size_t size, size_t count, void *context);

static void wipe_headers(struct curl_slist **headers)
{
	/* the header list held the token: wipe it before it goes back to the allocator */
	for (struct curl_slist *header = *headers; header; header = header->next)
		explicit_bzero(header->data, strlen(header->data));
	curl_slist_free_all(*headers);
	*headers = NULL;
}

static struct curl_slist *append_header(struct curl_slist *headers, const char *header)
{
	struct curl_slist *longer = curl_slist_append(headers, header);

	if (!longer) {
		fputs("pgha: out of memory\n", stderr);
		abort();
	}
	return longer;
}

static CURLcode set_blob(CURL *curl, CURLoption option, const struct kubeconfig_blob *blob)
{
	/* the client outlives every request, so curl need not copy */
	struct curl_blob curl_blob = {.data = blob->data, .len = blob->length, .flags = CURL_BLOB_NOCOPY};
	return curl_easy_setopt(curl, option, &curl_blob);
}

static size_t header_seen(char *data, size_t size, size_t count, void *context)
{
	struct k8s_call *call = context;
	size_t bytes = size * count;
	static const char name[] = "retry-after:";

	if (bytes > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
		char value[32];
		size_t length = bytes - (sizeof name - 1) < sizeof value - 1 ? bytes - (sizeof name - 1) : sizeof value - 1;
		memcpy(value, data + sizeof name - 1, length);
		value[length] = '\0';
		char *end;
		long seconds = strtol(value, &end, 10);
		/* delta-seconds only; an HTTP date counts as no Retry-After (the back-off applies) */
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (end != value && !*end && seconds >= 0)
			call->retry_after_ms = seconds > BACKOFF_CAP_MS / 1000 ? BACKOFF_CAP_MS : seconds * 1000;
	} else if (bytes > 5 && strncmp(data, "HTTP/", 5) == 0) {
		call->retry_after_ms = -1; /* a new answer (after a 100 Continue, say) */
	}
	return bytes;
}

/* A connection to the API server whose peer went silent (a partition, a lost NAT entry,
 * a host gone without a reset) is given up within a few seconds, not the ~10 min of the
 * kernel's keepalive defaults or ~15 min of retransmissions: every request shares it
 * (HTTP/2), and a watch on it would keep the last view in force without a word. Idle,
 * a probe goes out after KEEPALIVE_IDLE_S and every KEEPALIVE_INTERVAL_S after; data sent
 * or probes left unacknowledged for USER_TIMEOUT_MS end the connection (ACKs come from
 * the peer's kernel: a slow or stopped API server process still sends them). */
#define KEEPALIVE_IDLE_S 3
#define KEEPALIVE_INTERVAL_S 1
#define KEEPALIVE_COUNT 5
#define USER_TIMEOUT_MS 8000

/* What libcurl 7.88 cannot set itself on a new connection's socket. Failures are not
 * fatal: the connection works, only a dead peer is noticed later. */
static int socket_options(void *context, curl_socket_t fd, curlsocktype purpose)
{
	(void)context;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKOPT_OK;
	int count = KEEPALIVE_COUNT, user_timeout = USER_TIMEOUT_MS;
	if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout) != 0)
		log_debug("kubernetes: a connection's keepalive options cannot be set: %s", strerror(errno));
	return CURL_SOCKOPT_OK;
}

/* Sets the options of one attempt of call on its handle. */
static CURLcode prepare(struct k8s_call *call, long timeout_ms)
{
	struct k8s_client *client = call->client;
	const struct kubeconfig *config = &client->config;
	const char *method = call->method;
	CURL *curl = call->curl;
	CURLcode code = CURLE_OK;

	curl_easy_reset(curl);
#define SET(option, value)                                              \
	do {                                                            \
		if (code == CURLE_OK)                                   \
			code = curl_easy_setopt(curl, option, value);   \
	} while (0)
	SET(CURLOPT_URL, call->url);
	SET(CURLOPT_PRIVATE, call);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)client->limits.connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, timeout_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, (long)KEEPALIVE_IDLE_S);
	SET(CURLOPT_TCP_KEEPINTVL, (long)KEEPALIVE_INTERVAL_S);
	SET(CURLOPT_SOCKOPTFUNCTION, socket_options);
	/* the environment's http_proxy and friends do not apply: only the kubeconfig's */
	SET(CURLOPT_PROXY, config->proxy_url ? config->proxy_url : "");
	SET(CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_HTTPHEADER, call->headers);
	SET(CURLOPT_WRITEFUNCTION, call->line ? collect_line : collect);
	SET(CURLOPT_WRITEDATA, call->line ? (void *)call : (void *)&call->buffer);
	SET(CURLOPT_HEADERFUNCTION, header_seen);
	SET(CURLOPT_HEADERDATA, call);
	SET(CURLOPT_ERRORBUFFER, call->error);
	if (config->insecure_skip_tls_verify) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (config->certificate_authority_data.data) {
#if LIBCURL_VERSION_NUM >= 0x074d00
		if (code == CURLE_OK)
			code = set_blob(curl, CURLOPT_CAINFO_BLOB, &config->certificate_authority_data);
#endif
	} else if (config->certificate_authority) {
		SET(CURLOPT_CAINFO, config->certificate_authority);
	}
	if (config->client_certificate_data.data && code == CURLE_OK)
		code = set_blob(curl, CURLOPT_SSLCERT_BLOB, &config->client_certificate_data);
	else if (config->client_certificate)
		SET(CURLOPT_SSLCERT, config->client_certificate);
	if (config->client_key_data.data && code == CURLE_OK)
		code = set_blob(curl, CURLOPT_SSLKEY_BLOB, &config->client_key_data);
	else if (config->client_key)
		SET(CURLOPT_SSLKEY, config->client_key);
	if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, method);
		if (call->payload || strcmp(method, "POST") == 0) {
			SET(CURLOPT_POSTFIELDSIZE, (long)(call->payload ? strlen(call->payload) : 0));
			SET(CURLOPT_POSTFIELDS, call->payload ? call->payload : "");
		}
	}
#undef SET
	return code;
}

const struct k8s_request_count *k8s_client_request_counts(const struct k8s_client *client, size_t *count)
{
	*count = client->count_count;
	return client->counts;
}

static void count_request(struct k8s_client *client, const char *method, int status)
{
	if (status < 0)
		status = 0;
	for (size_t i = 0; i < client->count_count; i++)
		if (client->counts[i].status == status && strcmp(client->counts[i].method, method) == 0) {
			client->counts[i].count++;
			return;
		}
	if (client->count_count >= K8S_REQUEST_COUNTS - 1) {
		/* the verbs pgha uses and the codes the API server answers are few: never reached
		 * but by a misbehaving server, whose extra pairs are lumped together in the last */
		struct k8s_request_count *other = &client->counts[K8S_REQUEST_COUNTS - 1];
		if (client->count_count < K8S_REQUEST_COUNTS) {
			*other = (struct k8s_request_count){.method = "OTHER"};
			client->count_count = K8S_REQUEST_COUNTS;
		}
		other->count++;
		return;
	}
	struct k8s_request_count *next = &client->counts[client->count_count++];
	snprintf(next->method, sizeof next->method, "%s", method);
	next->status = status;
	next->count = 1;
}

static void arm_timer(struct k8s_client *client);

static void call_free(struct k8s_call *call)
{
	struct k8s_client *client = call->client;

	for (struct k8s_call **link = &client->calls; *link; link = &(*link)->next)
		if (*link == call) {
			*link = call->next;
			break;
		}
	if (call->in_multi)
		curl_multi_remove_handle(client->multi, call->curl);
	if (call->curl)
		curl_easy_cleanup(call->curl);
	wipe_headers(&call->headers);
	free(call->buffer.data);
	free(call->payload);
	free(call->content_type);
	free(call->path);
	free(call->url);
	free(call);
}

/* Sends call now: headers with the token as it is now, the time limit left. False with
 * why (then the call is over) when it cannot be. */
static bool call_send(struct k8s_call *call, char *why, size_t why_size)
{
	struct k8s_client *client = call->client;
	char reason[512];
	long long now = now_ms();
	long timeout = call->streaming ? 0 : client->limits.timeout_ms;

	if (!refresh_token(&client->token, reason, sizeof reason)) {
		snprintf(why, why_size, "%s %s: %s", call->method, call->path, reason);
		return false;
	}
	if (call->deadline_ms) {
		long long left = call->deadline_ms - now;
		if (left <= 0) {
			snprintf(why, why_size, "%s %s: not sent: its time is spent", call->method, call->path);
			return false;
		}
		if (timeout == 0 || left < timeout)
			timeout = (long)left;
	}
	wipe_headers(&call->headers);
	call->headers = append_header(call->headers, "Accept: application/json");
	if (call->payload) {
		char *header = xasprintf("Content-Type: %s", call->content_type ? call->content_type : "application/json");
		call->headers = append_header(call->headers, header);
		free(header);
	}
	call->headers = append_header(call->headers, "Expect:"); /* no 100-continue round trip before a body */
	if (client->token.token) {
		char *header = xasprintf("Authorization: Bearer %s", client->token.token);
		call->headers = append_header(call->headers, header);
		forget(&header);
	}
	free(call->buffer.data);
	call->buffer = (struct reply_buffer){0};
	call->line_start = 0;
	call->error[0] = '\0';
	call->retry_after_ms = -1;
	CURLcode code = prepare(call, timeout);
	if (code != CURLE_OK) {
		/* an option this libcurl lacks, such as a blob its TLS library cannot take */
		snprintf(why, why_size, "%s %s: libcurl cannot be set up for this server: %s", call->method, call->path,
			 curl_easy_strerror(code));
		return false;
	}
	CURLMcode added = curl_multi_add_handle(client->multi, call->curl);
	if (added != CURLM_OK) {
		snprintf(why, why_size, "%s %s: libcurl cannot take the request: %s", call->method, call->path,
			 curl_multi_strerror(added));
		return false;
	}
	call->in_multi = true;
	call->retry_at_ms = 0;
	call->sent_ms = now;
	call->attempts++;
	client->requests++;
	return true;
}

/* Ends call with status (-1: no answer) and why, calling its done, then frees it. */
static void call_end(struct k8s_call *call, int status, json_t *reply, const char *why)
{
	if (call->done && !call->cancelled)
		call->done(status, reply, why, call->sent_ms, call->context);
	json_decref(reply);
	call_free(call);
}

/* The wait before the next request after a 429 or 503 answer: its Retry-After, else a
 * back-off doubling with each such answer in a row; capped. */
static long backoff_ms(struct k8s_client *client, long retry_after_ms)
{
	client->throttled_in_a_row++;
	if (retry_after_ms >= 0)
		return retry_after_ms;
	long wait = BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < client->throttled_in_a_row && wait < BACKOFF_CAP_MS; i++)
		wait *= 2;
	return wait < BACKOFF_CAP_MS ? wait : BACKOFF_CAP_MS;
}

/* An attempt of call is over (out of the multi): count it, learn from it, and either
 * send it again later (429/503 and time for it) or end it. */
static void call_attempted(struct k8s_call *call)
{
	struct k8s_client *client = call->client;
	char why[1024] = "";
	long long now = now_ms();
	int status = -1;

	if (call->code != CURLE_OK) {
		count_request(client, call->verb, 0);
		if (call->buffer.too_large)
			snprintf(why, sizeof why, "%s %s: the reply is larger than %d MiB", call->method, call->path,
				 REPLY_MAXIMUM / 1024 / 1024);
		else
			snprintf(why, sizeof why, "%s %s: no answer from %s: %s", call->method, call->path, client->server,
				 call->error[0] ? call->error : curl_easy_strerror(call->code));
		log_scrub(why);
		log_debug("%s %s: no answer after %lld ms", call->method, call->path, now - call->sent_ms);
		/* a watch lasts as long as it lasts: its end says nothing of the API server */
		if (!call->streaming && (call->code == CURLE_OPERATION_TIMEDOUT || call->code == CURLE_COULDNT_CONNECT)) {
			if (!client->silent_since_ms)
				client->silent_since_ms = call->sent_ms;
		}
		call_end(call, -1, NULL, why);
		return;
	}
	long response = 0;
	curl_easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &response);
	status = (int)response;
	count_request(client, call->verb, status);
	client->silent_since_ms = 0;
	log_debug("%s %s: %d after %lld ms", call->method, call->path, status, now - call->sent_ms);
	if (status == 429 || status == 503) {
		long wait = backoff_ms(client, call->retry_after_ms);
		if (client->not_before_ms < now + wait)
			client->not_before_ms = now + wait;
		log_debug("%s %s: %d: no request before %ld ms from now", call->method, call->path, status, wait);
		bool time_left = !call->deadline_ms || client->not_before_ms < call->deadline_ms;
		if (!call->streaming && call->attempts < ATTEMPTS_MAXIMUM && time_left) {
			call->retry_at_ms = client->not_before_ms;
			return; /* sent again by the timer or the pump */
		}
	} else {
		client->throttled_in_a_row = 0;
	}
	json_t *reply = call->buffer.length && !call->line ? json_loadb(call->buffer.data, call->buffer.length, 0, NULL)
							   : NULL;
	if (!is_success(status))
		k8s_format_error(why, sizeof why, call->method, call->path, status, call->buffer.data,
				 call->buffer.length);
	if ((status == 429 || status == 503) && call->retry_after_ms >= 0) {
		size_t length = strlen(why);
		snprintf(why + length, sizeof why - length, " (Retry-After %ld s)", call->retry_after_ms / 1000);
	}
	call_end(call, status, reply, why);
}

/* The calls whose wait is over are sent; those that cannot be are ended. */
static void send_due(struct k8s_client *client)
{
	long long now = now_ms();
	bool again = true;

	while (again) {
		again = false;
		for (struct k8s_call *call = client->calls; call; call = call->next) {
			if (call->in_multi || call->finished || !call->retry_at_ms || call->retry_at_ms > now)
				continue;
			char why[1024];
			if (call->deadline_ms && call->retry_at_ms >= call->deadline_ms) {
				snprintf(why, sizeof why, "%s %s: not sent: the API server asked to wait past its time",
					 call->method, call->path);
				call_end(call, -1, NULL, why);
			} else if (!call_send(call, why, sizeof why)) {
				call_end(call, -1, NULL, why);
			} else {
				continue;
			}
			again = true; /* the list changed */
			break;
		}
	}
}

/* Takes the finished transfers out of the multi, then deals with each: a done callback
 * may start or cancel calls, so none runs while the multi's messages are read. */
static void reap(struct k8s_client *client)
{
	CURLMsg *message;
	int left;

	while ((message = curl_multi_info_read(client->multi, &left))) {
		if (message->msg != CURLMSG_DONE)
			continue;
		struct k8s_call *call = NULL;
		curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&call);
		call->code = message->data.result;
		curl_multi_remove_handle(client->multi, call->curl);
		call->in_multi = false;
		call->finished = true;
	}
	bool again = true;
	while (again) {
		again = false;
		for (struct k8s_call *call = client->calls; call; call = call->next)
			if (call->finished) {
				call->finished = false;
				call_attempted(call);
				again = true;
				break;
			}
	}
	send_due(client);
}

/* ---- the event loop's sources (sd-event), or a poll of our own for a synchronous call ---- */

static int on_socket_ready(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct k8s_client *client = userdata;
	int running, flags = 0;
	(void)source;

	if (revents & (EPOLLIN | EPOLLHUP))
		flags |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(client->multi, fd, flags, &running);
	reap(client);
	arm_timer(client);
	return 0;
}

static int on_socket(CURL *curl, curl_socket_t fd, int what, void *userdata, void *socketp)
{
	struct k8s_client *client = userdata;
	size_t i;
	(void)curl;
	(void)socketp;

	for (i = 0; i < client->socket_count && client->sockets[i].fd != fd; i++)
		;
	if (what == CURL_POLL_REMOVE) {
		if (i < client->socket_count) {
			sd_event_source_disable_unref(client->sockets[i].source);
			client->sockets[i] = client->sockets[--client->socket_count];
		}
		return 0;
	}
	if (i == client->socket_count) {
		client->sockets = xreallocarray(client->sockets, client->socket_count + 1, sizeof *client->sockets);
		client->sockets[client->socket_count++] = (struct watched_socket){.fd = fd};
	}
	struct watched_socket *watched = &client->sockets[i];
	uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	watched->what = what;
	if (!client->event)
		return 0;
	int result = watched->source ? sd_event_source_set_io_events(watched->source, events)
				     : sd_event_add_io(client->event, &watched->source, fd, events, on_socket_ready, client);
	if (result < 0)
		log_error("kubernetes: cannot watch a connection to the API server: %s", strerror(-result));
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userdata)
{
	struct k8s_client *client = userdata;
	(void)multi;

	client->curl_timeout_ms = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;
	arm_timer(client);
	return 0;
}

/* When something is due next: libcurl's timeout or a call's wait (0: nothing). */
static long long next_due(const struct k8s_client *client)
{
	long long due = client->curl_timeout_ms;
	for (const struct k8s_call *call = client->calls; call; call = call->next)
		if (!call->in_multi && call->retry_at_ms && (!due || call->retry_at_ms < due))
			due = call->retry_at_ms;
	return due;
}

static void run_timeouts(struct k8s_client *client)
{
	int running;
	if (client->curl_timeout_ms && client->curl_timeout_ms <= now_ms()) {
		client->curl_timeout_ms = 0;
		curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	reap(client);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct k8s_client *client = userdata;
	(void)source;
	(void)usec;

	run_timeouts(client);
	arm_timer(client);
	return 0;
}

static void arm_timer(struct k8s_client *client)
{
	if (!client->timer)
		return;
	long long due = next_due(client);
	if (!due) {
		sd_event_source_set_enabled(client->timer, SD_EVENT_OFF);
		return;
	}
	int result = sd_event_source_set_time(client->timer, (uint64_t)due * 1000);
	if (result >= 0)
		result = sd_event_source_set_enabled(client->timer, SD_EVENT_ONESHOT);
	if (result < 0)
		log_error("kubernetes: cannot arm the API client's timer: %s", strerror(-result));
}

int k8s_client_attach(struct k8s_client *client, sd_event *event)
{
	int result = sd_event_add_time(event, &client->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, client);
	if (result < 0)
		return result;
	sd_event_source_set_enabled(client->timer, SD_EVENT_OFF);
	client->event = sd_event_ref(event);
	for (size_t i = 0; i < client->socket_count; i++) {
		struct watched_socket *watched = &client->sockets[i];
		uint32_t events = (watched->what & CURL_POLL_IN ? EPOLLIN : 0) | (watched->what & CURL_POLL_OUT ? EPOLLOUT : 0);
		sd_event_add_io(event, &watched->source, watched->fd, events, on_socket_ready, client);
	}
	arm_timer(client);
	return 0;
}

/* Runs the client's transfers until *over or deadline_ms (0: none), with a poll of its
 * own: the event loop does not run meanwhile, but every call in flight goes on. */
static void pump(struct k8s_client *client, const bool *over, long long deadline_ms)
{
	while (!*over) {
		long long now = now_ms();
		if (deadline_ms && now >= deadline_ms)
			break;
		long long due = next_due(client);
		if (deadline_ms && (!due || deadline_ms < due))
			due = deadline_ms;
		int timeout = !due ? 1000 : due <= now ? 0 : due - now > 1000 ? 1000 : (int)(due - now);
		struct pollfd *fds = xcalloc(client->socket_count + 1, sizeof *fds);
		size_t count = client->socket_count;
		for (size_t i = 0; i < count; i++)
			fds[i] = (struct pollfd){.fd = client->sockets[i].fd,
						  .events = (short)((client->sockets[i].what & CURL_POLL_IN ? POLLIN : 0) |
								    (client->sockets[i].what & CURL_POLL_OUT ? POLLOUT : 0))};
		int ready = poll(fds, count, timeout);
		for (size_t i = 0; ready > 0 && i < count; i++) {
			if (!fds[i].revents)
				continue;
			int flags = (fds[i].revents & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) |
				    (fds[i].revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
				    (fds[i].revents & POLLERR ? CURL_CSELECT_ERR : 0);
			int running;
			curl_multi_socket_action(client->multi, fds[i].fd, flags, &running);
		}
		free(fds);
		run_timeouts(client);
	}
	arm_timer(client);
}

/* ---- the calls ---- */

static struct k8s_call *call_new(struct k8s_client *client, const char *method, const char *path, const json_t *body,
				 const char *content_type, k8s_done_fn done, void *context, char *why, size_t why_size)
{
	char *payload = NULL;

	if (body && !(payload = json_dumps(body, JSON_COMPACT))) {
		snprintf(why, why_size, "%s %s: the body cannot be written as JSON", method, path);
		return NULL;
	}
	struct k8s_call *call = xcalloc(1, sizeof *call);
	call->client = client;
	call->curl = curl_easy_init();
	if (!call->curl) {
		snprintf(why, why_size, "cannot initialise libcurl");
		free(payload);
		free(call);
		return NULL;
	}
	/* "LIST": a GET, counted as a list */
	snprintf(call->method, sizeof call->method, "%s", strcmp(method, "LIST") == 0 ? "GET" : method);
	snprintf(call->verb, sizeof call->verb, "%s", method);
	call->path = xstrdup(path);
	call->url = xasprintf("%s%s", client->server, path);
	call->payload = payload;
	call->content_type = content_type ? xstrdup(content_type) : NULL;
	call->done = done;
	call->context = context;
	call->retry_after_ms = -1;
	call->next = client->calls;
	client->calls = call;
	return call;
}

/* Sends call, or has it wait for the back-off an earlier answer asked for; false (call
 * freed, why written) when it cannot go out in its time. */
static bool call_start(struct k8s_call *call, char *why, size_t why_size)
{
	struct k8s_client *client = call->client;
	long long now = now_ms();

	if (client->not_before_ms > now) {
		if (call->deadline_ms && client->not_before_ms >= call->deadline_ms) {
			snprintf(why, why_size, "%s %s: not sent: the API server asked for no request in the next %lld ms",
				 call->method, call->path, client->not_before_ms - now);
			call_free(call);
			return false;
		}
		call->retry_at_ms = client->not_before_ms;
		arm_timer(client);
		return true;
	}
	if (!call_send(call, why, why_size)) {
		call_free(call);
		return false;
	}
	arm_timer(client);
	return true;
}

struct k8s_call *k8s_send(struct k8s_client *client, const char *method, const char *path, const json_t *body,
			  const char *content_type, long long deadline_ms, k8s_done_fn done, void *context, char *why,
			  size_t why_size)
{
	struct k8s_call *call = call_new(client, method, path, body, content_type, done, context, why, why_size);
	if (!call)
		return NULL;
	call->deadline_ms = deadline_ms;
	return call_start(call, why, why_size) ? call : NULL;
}

/* A watch's body: one JSON object per line, handed over as each line is complete. */
static size_t collect_line(char *data, size_t size, size_t count, void *context)
{
	struct k8s_call *call = context;
	size_t bytes = collect(data, size, count, &call->buffer);

	if (bytes != size * count)
		return bytes;
	char *start = call->buffer.data + call->line_start, *end;
	while ((end = memchr(start, '\n', call->buffer.length - (size_t)(start - call->buffer.data)))) {
		json_t *line = json_loadb(start, (size_t)(end - start), 0, NULL);
		if (line)
			call->line(line, call->context);
		json_decref(line);
		start = end + 1;
	}
	/* keep only the incomplete rest */
	size_t rest = call->buffer.length - (size_t)(start - call->buffer.data);
	memmove(call->buffer.data, start, rest);
	call->buffer.length = rest;
	call->buffer.data[rest] = '\0';
	call->line_start = 0;
	return bytes;
}

struct k8s_call *k8s_stream(struct k8s_client *client, const char *path, long long deadline_ms, k8s_line_fn line,
			    k8s_done_fn done, void *context, char *why, size_t why_size)
{
	struct k8s_call *call = call_new(client, "GET", path, NULL, NULL, done, context, why, why_size);
	if (!call)
		return NULL;
	call->line = line;
	call->streaming = true;
	snprintf(call->verb, sizeof call->verb, "WATCH");
	call->deadline_ms = deadline_ms;
	return call_start(call, why, why_size) ? call : NULL;
}

void k8s_cancel(struct k8s_call *call)
{
	if (!call)
		return;
	struct k8s_client *client = call->client;
	call_free(call);
	arm_timer(client);
}

int k8s_call_status(const struct k8s_call *call)
{
	long status = 0;
	if (call && call->in_multi)
		curl_easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &status);
	return (int)status;
}

void k8s_run(struct k8s_client *client, const bool *over, long long deadline_ms)
{
	/* every call ends by its own limits; this only guards against waiting on one that
	 * no call will ever set */
	if (!deadline_ms)
		deadline_ms = now_ms() + client->limits.timeout_ms + (long long)ATTEMPTS_MAXIMUM * BACKOFF_CAP_MS;
	pump(client, over, deadline_ms);
}

void k8s_client_set_deadline(struct k8s_client *client, long long deadline_ms)
{
	client->deadline_ms = deadline_ms;
}

long long k8s_client_silent_since(const struct k8s_client *client)
{
	if (client->silent_since_ms)
		return client->silent_since_ms;
	/* a request unanswered for longer than an answer takes: as good as silent */
	long long now = now_ms(), oldest = 0;
	for (const struct k8s_call *call = client->calls; call; call = call->next)
		if (call->in_multi && !call->streaming && now - call->sent_ms > SLOW_MS &&
		    (!oldest || call->sent_ms < oldest))
			oldest = call->sent_ms;
	return oldest;
}

long long k8s_client_not_before(const struct k8s_client *client)
{
	return client->not_before_ms;
}

/* A synchronous request: sent as any call, then the client's transfers are run until it
 * is over; its deadline is the client's (an iteration's budget) if that is sooner. */
struct outcome {
	bool over;
	int status;
	json_t *reply;
	char *why;
	size_t why_size;
};

static void outcome_done(int status, json_t *reply, const char *why, long long sent_ms, void *context)
{
	struct outcome *outcome = context;
	(void)sent_ms;
	outcome->over = true;
	outcome->status = status;
	outcome->reply = json_incref(reply);
	if (status < 200 || status > 299)
		snprintf(outcome->why, outcome->why_size, "%s", why);
}

int k8s_request(struct k8s_client *client, const char *method, const char *path, const json_t *body,
		const char *content_type, json_t **reply, char *why, size_t why_size)
{
	struct outcome outcome = {.status = -1, .why = why, .why_size = why_size};
	long long now = now_ms();

	if (reply)
		*reply = NULL;
	if (client->deadline_ms && client->deadline_ms <= now) {
		snprintf(why, why_size, "%s %s: not sent: this iteration's time for the API server is spent", method, path);
		return -1;
	}
	long long silent = client->deadline_ms ? k8s_client_silent_since(client) : 0;
	if (silent) {
		/* within a budget, not worth a wait: the calls in flight say when it answers again */
		snprintf(why, why_size, "%s %s: not sent: the API server has not answered for %lld ms", method, path,
			 now - silent);
		return -1;
	}
	struct k8s_call *call = call_new(client, method, path, body, content_type, outcome_done, &outcome, why,
					 why_size);
	if (!call)
		return -1;
	/* the whole of it, waits for the API server included, within the client's time limit */
	call->deadline_ms = now + client->limits.timeout_ms;
	if (client->deadline_ms && client->deadline_ms < call->deadline_ms)
		call->deadline_ms = client->deadline_ms;
	if (!call_start(call, why, why_size))
		return -1;
	/* the call's own time limit ends it; the margin only guards against a lost timer */
	pump(client, &outcome.over, call->deadline_ms + 1000);
	if (!outcome.over) {
		snprintf(why, why_size, "%s %s: no answer in its time", method, path);
		k8s_cancel(call);
		return -1;
	}
	if (reply)
		*reply = outcome.reply;
	else
		json_decref(outcome.reply);
	return outcome.status;
}

/* A request whose success must bring an object: a 2xx answer with anything else counts
 * as no usable answer. *object is set on success only. */
static int request_object(struct k8s_client *client, const char *method, const char *path, const json_t *body,
			  const char *content_type, json_t **object, char *why, size_t why_size)
{
	json_t *reply = NULL;
	int status = k8s_request(client, method, path, body, content_type, &reply, why, why_size);

	if (object)
		*object = NULL;
	if (is_success(status) && !json_is_object(reply)) {
		snprintf(why, why_size, "%s %s: %d %s, but the reply is not a JSON object", method, path, status,
			 reason_phrase(status) ? reason_phrase(status) : "");
		status = -1;
	} else if (is_success(status) && object) {
		*object = reply;
		reply = NULL;
	}
	json_decref(reply);
	return status;
}

int k8s_get(struct k8s_client *client, const char *path, json_t **object, char *why, size_t why_size)
{
	return request_object(client, "GET", path, NULL, NULL, object, why, why_size);
}

int k8s_list(struct k8s_client *client, const char *path, const char *label_selector, const char *resource_version,
	     json_t **items, char *list_version, size_t list_version_size, char *why, size_t why_size)
{
	char *query = xstrdup(path);
	json_t *list = NULL;

	*items = NULL;
	if (list_version && list_version_size)
		list_version[0] = '\0';
	const char *parameters[][2] = {{"labelSelector", label_selector}, {"resourceVersion", resource_version}};
	for (size_t i = 0; i < sizeof parameters / sizeof *parameters; i++) {
		if (!parameters[i][1])
			continue;
		char *value = k8s_escape(parameters[i][1]);
		char *longer = xasprintf("%s%c%s=%s", query, strchr(query, '?') ? '&' : '?', parameters[i][0], value);
		free(value);
		free(query);
		query = longer;
	}
	int status = request_object(client, "LIST", query, NULL, NULL, &list, why, why_size);
	if (is_success(status)) {
		json_t *array = json_object_get(list, "items");
		if (array && !json_is_array(array) && !json_is_null(array)) {
			snprintf(why, why_size, "GET %s: %d, but the reply is not a list", query, status);
			status = -1;
		} else {
			/* an empty list may come without items */
			*items = json_is_array(array) ? json_incref(array) : json_array();
			const char *version = json_string_value(json_object_get(json_object_get(list, "metadata"),
										 "resourceVersion"));
			if (list_version && list_version_size)
				snprintf(list_version, list_version_size, "%s", version ? version : "");
		}
	}
	json_decref(list);
	free(query);
	return status;
}

int k8s_create(struct k8s_client *client, const char *collection_path, const json_t *object, json_t **created,
	       char *why, size_t why_size)
{
	return request_object(client, "POST", collection_path, object, NULL, created, why, why_size);
}

int k8s_replace(struct k8s_client *client, const char *path, const json_t *object, json_t **replaced, char *why,
		size_t why_size)
{
	const char *version =
		json_string_value(json_object_get(json_object_get(object, "metadata"), "resourceVersion"));

	if (replaced)
		*replaced = NULL;
	if (!version || !*version) {
		snprintf(why, why_size, "PUT %s: the object carries no metadata.resourceVersion, and a replace without "
			 "one would overwrite whatever is there", path);
		return -1;
	}
	return request_object(client, "PUT", path, object, NULL, replaced, why, why_size);
}

int k8s_merge_patch(struct k8s_client *client, const char *path, const json_t *patch, const char *resource_version,
		    json_t **patched, char *why, size_t why_size)
{
	json_t *body;

	if (patched)
		*patched = NULL;
	if (!json_is_object(patch)) {
		snprintf(why, why_size, "PATCH %s: a merge patch must be a JSON object", path);
		return -1;
	}
	if (resource_version) {
		body = json_deep_copy(patch);
		json_t *metadata = json_object_get(body, "metadata");
		if (!json_is_object(metadata)) {
			metadata = json_object();
			json_object_set_new(body, "metadata", metadata);
		}
		json_object_set_new(metadata, "resourceVersion", json_string(resource_version));
	} else {
		body = json_incref((json_t *)patch);
	}
	int status = request_object(client, "PATCH", path, body, "application/merge-patch+json", patched, why,
				    why_size);
	json_decref(body);
	return status;
}

int k8s_delete(struct k8s_client *client, const char *path, int grace_seconds, const char *uid, char *why,
	       size_t why_size)
{
	json_t *options = jsonpack("{s:s, s:s}", "apiVersion", "v1", "kind", "DeleteOptions");

	if (grace_seconds >= 0)
		json_object_set_new(options, "gracePeriodSeconds", json_integer(grace_seconds));
	if (uid)
		json_object_set_new(options, "preconditions", jsonpack("{s:s}", "uid", uid));
	int status = k8s_request(client, "DELETE", path, options, NULL, NULL, why, why_size);
	json_decref(options);
	return status;
}

int k8s_update(struct k8s_client *client, const char *path, k8s_change_fn change, void *context, int attempts,
	       json_t **updated, char *why, size_t why_size)
{
	int status = -1;

	if (updated)
		*updated = NULL;
	if (attempts < 1)
		attempts = 1;
	for (int attempt = 1; attempt <= attempts; attempt++) {
		json_t *object = NULL;
		status = k8s_get(client, path, &object, why, why_size);
		if (!is_success(status))
			return status;
		if (!change(object, context, why, why_size)) {
			if (updated)
				*updated = object;
			else
				json_decref(object);
			return 0;
		}
		status = k8s_replace(client, path, object, updated, why, why_size);
		json_decref(object);
		if (status != 409)
			return status;
	}
	size_t length = strlen(why);
	snprintf(why + length, why_size - length, " (gave up after %d attempts)", attempts);
	return status;
}

char *k8s_escape(const char *value)
{
	/* libcurl ignores the handle since 7.82 and used it only for character set
	 * conversions on old systems before */
	char *escaped = curl_easy_escape(NULL, value, 0);

	if (!escaped) {
		fputs("pgha: out of memory\n", stderr);
		abort();
	}
	char *copy = xstrdup(escaped);
	curl_free(escaped);
	return copy;
}
