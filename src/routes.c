/* routes: how clients reach a cluster on the local platform: a multi-host libpq URI, and a libpq service file with CLUSTER-rw and CLUSTER-ro for every cluster. */
#include "autoconfig.h"

#include "routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file.h"
#include "memory.h"
#include "names.h"

/* The database every member has from initdb. */
#define ROUTES_DATABASE "postgres"

/* read-write: a session that can write, which no standby gives. prefer-standby: a standby
 * when one answers, else the primary, so reads go on while every standby is down. Both
 * need libpq 14. load_balance_hosts=random would spread the reads, but only libpq 16
 * knows it and older ones refuse the whole URI or service over an unknown option
 * (Debian 12 ships libpq 15), so it is left to clients (PGLOADBALANCEHOSTS). */
static const char *session_attributes(bool read_only)
{
	return read_only ? "prefer-standby" : "read-write";
}

/* A string that grows as it is written. */
struct text {
	char *data;
	size_t length;
};

static void text_append(struct text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void text_append(struct text *text, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	int needed = vsnprintf(NULL, 0, format, args);
	va_end(args);
	text->data = xreallocarray(text->data, text->length + (size_t)needed + 1, 1);
	va_start(args, format);
	vsnprintf(text->data + text->length, (size_t)needed + 1, format, args);
	va_end(args);
	text->length += (size_t)needed;
}

/* RFC 3986's unreserved characters, and those of also_kept, pass as they are; every
 * other byte becomes %XX, which libpq decodes in each part of a URI. */
static void append_encoded(struct text *text, const char *value, const char *also_kept)
{
	for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
		bool kept = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			    strchr("-._~", *c) || (also_kept && strchr(also_kept, *c));
		if (kept)
			text_append(text, "%c", *c);
		else
			text_append(text, "%%%02X", *c);
	}
}

/* host as it is written in each element of a URI's host list, or NULL when libpq could
 * not take it there. */
static char *uri_host(const char *host)
{
	size_t length = strlen(host);
	struct text text = {0};

	/* an IPv6 address may come bracketed already */
	if (length >= 2 && host[0] == '[' && host[length - 1] == ']') {
		host++;
		length -= 2;
	}
	char *bare = xasprintf("%.*s", (int)length, host);
	if (bare[0] == '\0' || strchr(bare, ',')) {
		free(bare);
		return NULL;
	}
	if (bare[0] != '/' && strchr(bare, ':')) {
		/* an IPv6 address: brackets keep its colons from reading as a port */
		text_append(&text, "[");
		append_encoded(&text, bare, ":");
		text_append(&text, "]");
	} else {
		/* a name, an IPv4 address, or a socket directory, whose slashes become %2F */
		append_encoded(&text, bare, NULL);
	}
	free(bare);
	return text.data;
}

char *routes_uri(const struct cluster_config *cluster, const char *host, bool read_only)
{
	struct text uri = {0};

	if (cluster->replicas < 1)
		return NULL;
	char *address = uri_host(host ? host : ROUTES_DEFAULT_HOST);
	if (!address)
		return NULL;
	text_append(&uri, "postgresql://");
	for (int index = 0; index < cluster->replicas; index++)
		text_append(&uri, "%s%s:%d", index ? "," : "", address, config_member_port(cluster, index));
	text_append(&uri, "/%s?target_session_attrs=%s&connect_timeout=%d", ROUTES_DATABASE,
		    session_attributes(read_only), ROUTES_CONNECT_TIMEOUT);
	free(address);
	return uri.data;
}

/* Comment lines are skipped by libpq; they tell a reader who owns the file and how to use it. */
static const char service_file_header[] =
	"# libpq connection services for the clusters of pgha, written by pghad.\n"
	"# pghad overwrites this file whenever the clusters change: edit pgha.conf, not this file.\n"
	"#\n"
	"# CLUSTER-rw reaches the primary; CLUSTER-ro a standby when one is up, else the primary:\n"
	"#   PGSERVICEFILE=/path/of/this/file psql service=CLUSTER-rw\n"
	"# With libpq 16 or later, PGLOADBALANCEHOSTS=random spreads CLUSTER-ro over the standbys.\n";

/* One [NAME] section. libpq takes each value verbatim to the end of its line, with no
 * quoting or escapes, so only values pgha makes itself appear here: fixed words, numbers
 * and a cluster name that is a DNS label. */
static void append_service(struct text *text, const struct cluster_config *cluster, bool read_only)
{
	text_append(text, "\n[%s-%s]\nhost=", cluster->name, read_only ? "ro" : "rw");
	for (int index = 0; index < cluster->replicas; index++)
		text_append(text, "%s%s", index ? "," : "", ROUTES_DEFAULT_HOST);
	/* one port per host, in the same order: libpq pairs them by position */
	text_append(text, "\nport=");
	for (int index = 0; index < cluster->replicas; index++)
		text_append(text, "%s%d", index ? "," : "", config_member_port(cluster, index));
	text_append(text, "\ndbname=%s\ntarget_session_attrs=%s\nconnect_timeout=%d\n", ROUTES_DATABASE,
		    session_attributes(read_only), ROUTES_CONNECT_TIMEOUT);
}

char *routes_service_file(const struct pgha_config *config)
{
	struct text text = {0};

	text_append(&text, "%s", service_file_header);
	for (size_t i = 0; i < config->cluster_count; i++) {
		const struct cluster_config *cluster = &config->clusters[i];
		if (cluster->replicas < 1 || !names_is_dns_label(cluster->name))
			continue;
		append_service(&text, cluster, false);
		append_service(&text, cluster, true);
	}
	return text.data;
}

const char *routes_service_file_path(const struct pgha_config *config, char *buffer, size_t size)
{
	int length = snprintf(buffer, size, "%s/%s", config->daemon.state_dir, ROUTES_SERVICE_FILE_NAME);
	return length >= 0 && (size_t)length < size ? buffer : NULL;
}

bool routes_write_service_file(const struct pgha_config *config, const char *path, bool *changed, char *why,
			       size_t why_size)
{
	char *content = routes_service_file(config);
	size_t length = strlen(content), current_length = 0;
	char unread[256]; /* a file that cannot be read is simply replaced */
	struct stat status;

	/* a file longer than the new content differs from it: file_read stops there (EFBIG) */
	char *current = file_read(path, length, &current_length, unread, sizeof unread);
	bool same = current && current_length == length && memcmp(current, content, length) == 0 &&
		    lstat(path, &status) == 0 && S_ISREG(status.st_mode) &&
		    (status.st_mode & 07777) == ROUTES_SERVICE_FILE_MODE;
	bool written = !same && file_replace(path, content, length, ROUTES_SERVICE_FILE_MODE, why, why_size);

	if (changed)
		*changed = written;
	free(current);
	free(content);
	return same || written;
}
