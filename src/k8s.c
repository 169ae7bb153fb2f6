/* k8s: a small Kubernetes API client (libcurl + jansson): credentials from a kubeconfig or the pod's service account, bounded requests, clear errors, optimistic concurrency by resourceVersion. */
#include "autoconfig.h"

#include "k8s.h"

#include <ctype.h>
#include <errno.h>
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

struct k8s_client {
	CURL *curl;
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
	client->curl = curl_easy_init();
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
	if (!client->curl) {
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
	if (client->curl)
		curl_easy_cleanup(client->curl);
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

/* Sets the options of one request; the handle keeps its connections across requests. */
static CURLcode prepare(struct k8s_client *client, const char *method, const char *url, const char *payload,
			struct curl_slist *headers, struct reply_buffer *buffer, char *error)
{
	const struct kubeconfig *config = &client->config;
	CURL *curl = client->curl;
	CURLcode code = CURLE_OK;

	curl_easy_reset(curl);
#define SET(option, value)                                              \
	do {                                                            \
		if (code == CURLE_OK)                                   \
			code = curl_easy_setopt(curl, option, value);   \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)client->limits.connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, (long)client->limits.timeout_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	/* the environment's http_proxy and friends do not apply: only the kubeconfig's */
	SET(CURLOPT_PROXY, config->proxy_url ? config->proxy_url : "");
	SET(CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, collect);
	SET(CURLOPT_WRITEDATA, buffer);
	SET(CURLOPT_ERRORBUFFER, error);
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
		if (payload || strcmp(method, "POST") == 0) {
			SET(CURLOPT_POSTFIELDSIZE, (long)(payload ? strlen(payload) : 0));
			SET(CURLOPT_POSTFIELDS, payload ? payload : "");
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

int k8s_request(struct k8s_client *client, const char *method, const char *path, const json_t *body,
		const char *content_type, json_t **reply, char *why, size_t why_size)
{
	char reason[512], error[CURL_ERROR_SIZE] = "";
	struct reply_buffer buffer = {0};
	struct curl_slist *headers = NULL;
	char *payload = NULL;
	int status = -1;

	if (reply)
		*reply = NULL;
	if (!refresh_token(&client->token, reason, sizeof reason)) {
		snprintf(why, why_size, "%s %s: %s", method, path, reason);
		return -1;
	}
	if (body && !(payload = json_dumps(body, JSON_COMPACT))) {
		snprintf(why, why_size, "%s %s: the body cannot be written as JSON", method, path);
		return -1;
	}
	char *url = xasprintf("%s%s", client->server, path);
	headers = append_header(headers, "Accept: application/json");
	if (payload) {
		char *header = xasprintf("Content-Type: %s", content_type ? content_type : "application/json");
		headers = append_header(headers, header);
		free(header);
	}
	headers = append_header(headers, "Expect:"); /* no 100-continue round trip before a body */
	if (client->token.token) {
		char *header = xasprintf("Authorization: Bearer %s", client->token.token);
		headers = append_header(headers, header);
		forget(&header);
	}

	long long started = now_ms();
	CURLcode code = prepare(client, method, url, payload, headers, &buffer, error);
	if (code != CURLE_OK) {
		/* an option this libcurl lacks, such as a blob its TLS library cannot take */
		snprintf(why, why_size, "%s %s: libcurl cannot be set up for this server: %s", method, path,
			 curl_easy_strerror(code));
		goto out;
	}
	client->requests++;
	code = curl_easy_perform(client->curl);
	if (code != CURLE_OK)
		count_request(client, method, 0);
	if (code != CURLE_OK) {
		if (buffer.too_large)
			snprintf(why, why_size, "%s %s: the reply is larger than %d MiB", method, path,
				 REPLY_MAXIMUM / 1024 / 1024);
		else
			snprintf(why, why_size, "%s %s: no answer from %s: %s", method, path, client->server,
				 *error ? error : curl_easy_strerror(code));
		log_scrub(why);
		log_debug("%s %s: no answer after %lld ms", method, path, now_ms() - started);
		goto out;
	}
	long response = 0;
	curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &response);
	status = (int)response;
	count_request(client, method, status);
	log_debug("%s %s: %d after %lld ms", method, path, status, now_ms() - started);
	if (reply && buffer.length)
		*reply = json_loadb(buffer.data, buffer.length, 0, NULL);
	if (!is_success(status))
		k8s_format_error(why, why_size, method, path, status, buffer.data, buffer.length);
out:
	/* the header list held the token: wipe it before it goes back to the allocator */
	for (struct curl_slist *header = headers; header; header = header->next)
		explicit_bzero(header->data, strlen(header->data));
	curl_slist_free_all(headers);
	/* and libcurl must not keep pointers to what is freed here */
	curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(client->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(client->curl, CURLOPT_POSTFIELDS, NULL);
	free(buffer.data);
	free(payload);
	free(url);
	return status;
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
	int status = request_object(client, "GET", query, NULL, NULL, &list, why, why_size);
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
