/* kubeconfig: what a kubeconfig file's current context resolves to (API server, credentials, namespace), from the YAML kubectl and kind write, or JSON. */
#include "autoconfig.h"

#include "kubeconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "file.h"
#include "memory.h"
#include "yaml.h"

/* A kubeconfig with inline certificates is a few kilobytes; anything this large is not one. */
#define KUBECONFIG_MAXIMUM (4 * 1024 * 1024)

struct loader {
	const char *path;
	char *why;
	size_t why_size;
	bool failed;
};

static void refuse(struct loader *loader, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void refuse(struct loader *loader, const char *format, ...)
{
	va_list args;

	if (loader->failed)
		return;
	loader->failed = true;
	int used = snprintf(loader->why, loader->why_size, "kubeconfig %s: ", loader->path);
	if (used < 0 || (size_t)used >= loader->why_size)
		return;
	va_start(args, format);
	vsnprintf(loader->why + used, loader->why_size - (size_t)used, format, args);
	va_end(args);
}

bool kubeconfig_decode_base64(const char *text, struct kubeconfig_blob *blob)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char *out = xmalloc(strlen(text) / 4 * 3 + 3);
	size_t produced = 0, padding = 0;
	uint32_t bits = 0;
	int count = 0;

	for (const char *c = text; *c; c++) {
		const char *position = strchr(alphabet, *c);
		if (*c == '\n' || *c == '\r' || *c == ' ' || *c == '\t')
			continue;
		if (*c == '=') {
			padding++;
			continue;
		}
		if (padding || !position)
			goto invalid;
		bits = bits << 6 | (uint32_t)(position - alphabet);
		if (++count == 4) {
			out[produced++] = (unsigned char)(bits >> 16);
			out[produced++] = (unsigned char)(bits >> 8);
			out[produced++] = (unsigned char)bits;
			bits = 0;
			count = 0;
		}
	}
	if (count == 1 || padding > 2 || (padding && (size_t)count + padding != 4))
		goto invalid;
	if (count == 2) {
		out[produced++] = (unsigned char)(bits >> 4);
	} else if (count == 3) {
		out[produced++] = (unsigned char)(bits >> 10);
		out[produced++] = (unsigned char)(bits >> 2);
	}
	if (produced == 0)
		goto invalid;
	blob->data = out;
	blob->length = produced;
	return true;
invalid:
	free(out);
	return false;
}

/* The inner object (under field) of the entry named name in the list clusters,
 * contexts or users; false when no entry has that name. */
static bool find_named(json_t *root, const char *list, const char *name, const char *field, json_t **inner)
{
	size_t index;
	json_t *entry;

	json_array_foreach(json_object_get(root, list), index, entry) {
		const char *entry_name = json_string_value(json_object_get(entry, "name"));
		if (entry_name && strcmp(entry_name, name) == 0) {
			*inner = json_object_get(entry, field);
			return true;
		}
	}
	return false;
}

/* A string member of object: NULL when absent, null or empty; refused when another type. */
static const char *string_member(struct loader *loader, json_t *object, const char *what, const char *key)
{
	json_t *value = json_object_get(object, key);

	if (!value || json_is_null(value))
		return NULL;
	if (!json_is_string(value)) {
		refuse(loader, "%s: %s must be a string", what, key);
		return NULL;
	}
	return *json_string_value(value) ? json_string_value(value) : NULL;
}

/* Files named in a kubeconfig are relative to the kubeconfig's directory. */
static char *resolve(const struct loader *loader, const char *file)
{
	const char *slash = strrchr(loader->path, '/');

	if (!file)
		return NULL;
	if (file[0] == '/' || !slash)
		return xstrdup(file);
	return xasprintf("%.*s/%s", (int)(slash - loader->path), loader->path, file);
}

static void inline_data(struct loader *loader, json_t *object, const char *what, const char *key,
			struct kubeconfig_blob *blob)
{
	const char *text = string_member(loader, object, what, key);

	if (text && !kubeconfig_decode_base64(text, blob))
		refuse(loader, "%s: %s is not valid base64", what, key);
}

static void read_cluster(struct loader *loader, json_t *cluster, const char *what, struct kubeconfig *config)
{
	const char *server = string_member(loader, cluster, what, "server");
	json_t *insecure = json_object_get(cluster, "insecure-skip-tls-verify");

	if (!server)
		refuse(loader, "%s has no server", what);
	else if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
		refuse(loader, "%s: server %s is not an https:// or http:// address", what, server);
	config->server = server ? xstrdup(server) : NULL;
	if (insecure && !json_is_boolean(insecure) && !json_is_null(insecure))
		refuse(loader, "%s: insecure-skip-tls-verify must be true or false", what);
	config->insecure_skip_tls_verify = json_is_true(insecure);
	config->certificate_authority = resolve(loader, string_member(loader, cluster, what, "certificate-authority"));
	inline_data(loader, cluster, what, "certificate-authority-data", &config->certificate_authority_data);
	const char *proxy = string_member(loader, cluster, what, "proxy-url");
	config->proxy_url = proxy ? xstrdup(proxy) : NULL;
	if (config->insecure_skip_tls_verify && (config->certificate_authority || config->certificate_authority_data.data))
		refuse(loader, "%s: insecure-skip-tls-verify and a certificate authority exclude each other", what);
	if (string_member(loader, cluster, what, "tls-server-name"))
		refuse(loader, "%s: tls-server-name is not supported: name the server by a name its certificate holds",
		       what);
}

static void read_user(struct loader *loader, json_t *user, const char *what, struct kubeconfig *config)
{
	static const char *const unsupported[] = {"exec", "auth-provider", "username", "password"};
	const char *token = string_member(loader, user, what, "token");

	for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
		json_t *value = json_object_get(user, unsupported[i]);
		if (value && !json_is_null(value))
			refuse(loader,
			       "%s authenticates with %s, which pgha does not support: give it a token, a tokenFile or a "
			       "client certificate",
			       what, unsupported[i]);
	}
	config->token = token ? xstrdup(token) : NULL;
	config->token_file = resolve(loader, string_member(loader, user, what, "tokenFile"));
	config->client_certificate = resolve(loader, string_member(loader, user, what, "client-certificate"));
	inline_data(loader, user, what, "client-certificate-data", &config->client_certificate_data);
	config->client_key = resolve(loader, string_member(loader, user, what, "client-key"));
	inline_data(loader, user, what, "client-key-data", &config->client_key_data);
	bool certificate = config->client_certificate || config->client_certificate_data.data;
	bool key = config->client_key || config->client_key_data.data;
	if (certificate != key)
		refuse(loader, "%s has a client %s but no client %s", what, certificate ? "certificate" : "key",
		       certificate ? "key" : "certificate");
}

bool kubeconfig_parse(const char *text, const char *path, struct kubeconfig *config, char *why, size_t why_size)
{
	struct loader loader = {.path = path, .why = why, .why_size = why_size};
	const char *start = text + strspn(text, " \t\r\n");
	char reason[256];
	json_t *root;

	memset(config, 0, sizeof *config);
	if (*start == '{') {
		json_error_t error;
		root = json_loads(text, JSON_REJECT_DUPLICATES, &error);
		if (!root)
			refuse(&loader, "line %d: %s", error.line, error.text);
	} else {
		root = yaml_parse(text, reason, sizeof reason);
		if (!root)
			refuse(&loader, "%s", reason);
	}
	if (root && !json_is_object(root))
		refuse(&loader, "not a kubeconfig: the file is not a mapping");
	const char *context = root ? string_member(&loader, root, "the file", "current-context") : NULL;
	json_t *context_entry = NULL, *cluster_entry = NULL, *user_entry = NULL;
	if (!context)
		refuse(&loader, "no current-context is set (kubectl config use-context NAME sets one)");
	else if (!find_named(root, "contexts", context, "context", &context_entry))
		refuse(&loader, "current-context %s is not among its contexts", context);
	if (loader.failed)
		goto out;

	char *what = xasprintf("context %s", context);
	const char *cluster = string_member(&loader, context_entry, what, "cluster");
	const char *user = string_member(&loader, context_entry, what, "user");
	const char *namespace = string_member(&loader, context_entry, what, "namespace");
	if (!cluster)
		refuse(&loader, "context %s names no cluster", context);
	else if (!find_named(root, "clusters", cluster, "cluster", &cluster_entry))
		refuse(&loader, "context %s names cluster %s, which the file does not define", context, cluster);
	if (user && !find_named(root, "users", user, "user", &user_entry))
		refuse(&loader, "context %s names user %s, which the file does not define", context, user);
	free(what);
	config->context = xstrdup(context);
	config->namespace = namespace ? xstrdup(namespace) : NULL;
	if (!loader.failed) {
		what = xasprintf("cluster %s", cluster);
		read_cluster(&loader, cluster_entry, what, config);
		free(what);
	}
	if (!loader.failed && user) {
		what = xasprintf("user %s", user);
		read_user(&loader, user_entry, what, config);
		free(what);
	}
out:
	json_decref(root);
	if (loader.failed)
		kubeconfig_clear(config);
	return !loader.failed;
}

bool kubeconfig_load(const char *path, struct kubeconfig *config, char *why, size_t why_size)
{
	char reason[256];
	char *text = file_read(path, KUBECONFIG_MAXIMUM, NULL, reason, sizeof reason);

	memset(config, 0, sizeof *config);
	if (!text) {
		snprintf(why, why_size, "cannot read kubeconfig %s: %s", path,
			 errno == EFBIG ? "it is larger than 4 MiB" : strerror(errno));
		return false;
	}
	bool loaded = kubeconfig_parse(text, path, config, why, why_size);
	explicit_bzero(text, strlen(text)); /* it may hold a token or a key */
	free(text);
	return loaded;
}

static void clear_blob(struct kubeconfig_blob *blob, bool secret)
{
	if (blob->data && secret)
		explicit_bzero(blob->data, blob->length);
	free(blob->data);
	blob->data = NULL;
	blob->length = 0;
}

void kubeconfig_clear(struct kubeconfig *config)
{
	if (config->token)
		explicit_bzero(config->token, strlen(config->token));
	free(config->token);
	free(config->context);
	free(config->server);
	free(config->namespace);
	free(config->certificate_authority);
	free(config->client_certificate);
	free(config->client_key);
	free(config->token_file);
	free(config->proxy_url);
	clear_blob(&config->certificate_authority_data, false);
	clear_blob(&config->client_certificate_data, false);
	clear_blob(&config->client_key_data, true);
	memset(config, 0, sizeof *config);
}
