/* test-routes: the URIs and the service file clients reach clusters by, checked against libpq itself. */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "file.h"
#include "memory.h"
#include "routes.h"
#include "tap.h"

struct uri_case {
	const char *what;
	int replicas, port;
	const char *host; /* NULL: the default */
	bool read_only;
	const char *expected; /* NULL: refused */
	/* what libpq reads from it */
	const char *libpq_host, *libpq_port;
};

#define RW "/postgres?target_session_attrs=read-write&connect_timeout=3"
#define RO "/postgres?target_session_attrs=prefer-standby&connect_timeout=3"

static const struct uri_case uri_cases[] = {
	{"one member, read-write", 1, 5432, NULL, false, "postgresql://127.0.0.1:5432" RW, "127.0.0.1", "5432"},
	{"one member, read-only", 1, 5432, NULL, true, "postgresql://127.0.0.1:5432" RO, "127.0.0.1", "5432"},
	{"three members, read-write", 3, 5432, NULL, false,
	 "postgresql://127.0.0.1:5432,127.0.0.1:5433,127.0.0.1:5434" RW, "127.0.0.1,127.0.0.1,127.0.0.1",
	 "5432,5433,5434"},
	{"three members, read-only", 3, 6000, NULL, true,
	 "postgresql://127.0.0.1:6000,127.0.0.1:6001,127.0.0.1:6002" RO, "127.0.0.1,127.0.0.1,127.0.0.1",
	 "6000,6001,6002"},
	{"a host name", 2, 5432, "db.example.com", false, "postgresql://db.example.com:5432,db.example.com:5433" RW,
	 "db.example.com,db.example.com", "5432,5433"},
	{"an IPv6 address is bracketed", 2, 5432, "::1", true, "postgresql://[::1]:5432,[::1]:5433" RO, "::1,::1",
	 "5432,5433"},
	{"a bracketed IPv6 address is taken as it is", 1, 5432, "[::1]", false, "postgresql://[::1]:5432" RW, "::1",
	 "5432"},
	{"an IPv6 zone is percent-encoded", 1, 5432, "fe80::1%lo", false, "postgresql://[fe80::1%25lo]:5432" RW,
	 "fe80::1%lo", "5432"},
	{"a socket directory is percent-encoded", 2, 5432, "/var/run/postgresql", false,
	 "postgresql://%2Fvar%2Frun%2Fpostgresql:5432,%2Fvar%2Frun%2Fpostgresql:5433" RW,
	 "/var/run/postgresql,/var/run/postgresql", "5432,5433"},
	{"reserved characters are percent-encoded", 1, 5432, "a b@c/d?e#f&g=h", false,
	 "postgresql://a%20b%40c%2Fd%3Fe%23f%26g%3Dh:5432" RW, "a b@c/d?e#f&g=h", "5432"},
	{"an empty host is refused", 1, 5432, "", false, NULL, NULL, NULL},
	{"empty brackets are refused", 1, 5432, "[]", false, NULL, NULL, NULL},
	{"a comma cannot be in a host list", 1, 5432, "a,b", false, NULL, NULL, NULL},
	{"no members, no URI", 0, 5432, NULL, false, NULL, NULL, NULL},
};

/* The value libpq has for keyword in options, or NULL. */
static const char *option(const PQconninfoOption *options, const char *keyword)
{
	for (const PQconninfoOption *o = options; o && o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0)
			return o->val;
	return NULL;
}

static void test_uris(void)
{
	for (size_t i = 0; i < sizeof uri_cases / sizeof uri_cases[0]; i++) {
		const struct uri_case *c = &uri_cases[i];
		struct cluster_config cluster = {.name = "test", .replicas = c->replicas, .port = c->port};
		char *uri = routes_uri(&cluster, c->host, c->read_only);

		if (!c->expected) {
			ok(uri == NULL, "%s: no URI", c->what);
			free(uri);
			continue;
		}
		is_str(uri, c->expected, "%s: the URI", c->what);

		/* libpq is the judge of what the URI means */
		char *error = NULL;
		PQconninfoOption *options = uri ? PQconninfoParse(uri, &error) : NULL;
		if (!ok(options != NULL, "%s: libpq parses it", c->what))
			diag("%s", error ? error : "(no message)");
		is_str(option(options, "host"), c->libpq_host, "%s: libpq's host", c->what);
		is_str(option(options, "port"), c->libpq_port, "%s: libpq's port", c->what);
		is_str(option(options, "target_session_attrs"), c->read_only ? "prefer-standby" : "read-write",
		       "%s: libpq's target_session_attrs", c->what);
		is_str(option(options, "connect_timeout"), "3", "%s: libpq's connect_timeout", c->what);
		is_str(option(options, "dbname"), "postgres", "%s: libpq's dbname", c->what);
		PQconninfoFree(options);
		PQfreemem(error);
		free(uri);
	}
}

static const char expected_header[] =
	"# libpq connection services for the clusters of pgha, written by pghad.\n"
	"# pghad overwrites this file whenever the clusters change: edit pgha.conf, not this file.\n"
	"#\n"
	"# CLUSTER-rw reaches the primary; CLUSTER-ro a standby when one is up, else the primary:\n"
	"#   PGSERVICEFILE=/path/of/this/file psql service=CLUSTER-rw\n"
	"# With libpq 16 or later, PGLOADBALANCEHOSTS=random spreads CLUSTER-ro over the standbys.\n";

static const char expected_sections[] =
	"\n"
	"[test-rw]\n"
	"host=127.0.0.1,127.0.0.1,127.0.0.1\n"
	"port=5432,5433,5434\n"
	"dbname=postgres\n"
	"target_session_attrs=read-write\n"
	"connect_timeout=3\n"
	"\n"
	"[test-ro]\n"
	"host=127.0.0.1,127.0.0.1,127.0.0.1\n"
	"port=5432,5433,5434\n"
	"dbname=postgres\n"
	"target_session_attrs=prefer-standby\n"
	"connect_timeout=3\n"
	"\n"
	"[other-rw]\n"
	"host=127.0.0.1\n"
	"port=6543\n"
	"dbname=postgres\n"
	"target_session_attrs=read-write\n"
	"connect_timeout=3\n"
	"\n"
	"[other-ro]\n"
	"host=127.0.0.1\n"
	"port=6543\n"
	"dbname=postgres\n"
	"target_session_attrs=prefer-standby\n"
	"connect_timeout=3\n";

static void test_service_file(void)
{
	struct cluster_config clusters[] = {
		{.name = "test", .replicas = 3, .port = 5432},
		{.name = "other", .replicas = 1, .port = 6543},
	};
	struct pgha_config config = {.clusters = clusters, .cluster_count = 2};
	char *expected = xasprintf("%s%s", expected_header, expected_sections);

	char *content = routes_service_file(&config);
	is_str(content, expected, "the service file for two clusters");

	/* the same configuration, in other memory, gives the same bytes */
	char *copy_names[] = {xstrdup("test"), xstrdup("other")};
	struct cluster_config copies[] = {
		{.name = copy_names[0], .replicas = 3, .port = 5432},
		{.name = copy_names[1], .replicas = 1, .port = 6543},
	};
	struct pgha_config copy = {.clusters = copies, .cluster_count = 2};
	char *again = routes_service_file(&config), *from_copy = routes_service_file(&copy);
	is_str(again, content, "rendering twice gives the same bytes");
	is_str(from_copy, content, "an equal configuration gives the same bytes");
	free(again);
	free(from_copy);
	free(copy_names[0]);
	free(copy_names[1]);

	struct pgha_config empty = {0};
	char *header_only = routes_service_file(&empty);
	is_str(header_only, expected_header, "no clusters: the header alone");
	free(header_only);

	/* a name that is not a DNS label could break out of its [section] line */
	struct cluster_config unsafe[] = {
		{.name = "test", .replicas = 3, .port = 5432},
		{.name = "bad]\nhost=evil", .replicas = 1, .port = 7000},
		{.name = "other", .replicas = 1, .port = 6543},
		{.name = "nobody", .replicas = 0, .port = 8000},
	};
	struct pgha_config with_unsafe = {.clusters = unsafe, .cluster_count = 4};
	char *skipped = routes_service_file(&with_unsafe);
	is_str(skipped, expected, "a cluster whose name is not a DNS label, or without members, is left out");
	free(skipped);

	free(content);
	free(expected);
}

/* What libpq makes of service=NAME with PGSERVICEFILE set: PQconninfoParse does not
 * expand services, but starting a connection does, and PQconninfo reads the result
 * back. The connection is abandoned before any exchange, so no server is needed. */
static void check_service(const char *service, const char *host, const char *port, const char *attributes)
{
	char *conninfo = xasprintf("service=%s", service);
	PGconn *connection = PQconnectStart(conninfo);
	const char *error = connection ? PQerrorMessage(connection) : "out of memory";

	if (!ok(connection && !strstr(error, "service"), "libpq reads service %s", service))
		diag("%.*s", (int)strcspn(error, "\n"), error);
	PQconninfoOption *options = connection ? PQconninfo(connection) : NULL;
	is_str(option(options, "host"), host, "%s: libpq's host", service);
	is_str(option(options, "port"), port, "%s: libpq's port", service);
	is_str(option(options, "target_session_attrs"), attributes, "%s: libpq's target_session_attrs", service);
	is_str(option(options, "connect_timeout"), "3", "%s: libpq's connect_timeout", service);
	is_str(option(options, "dbname"), "postgres", "%s: libpq's dbname", service);
	PQconninfoFree(options);
	PQfinish(connection);
	free(conninfo);
}

static void test_libpq_reads_service_file(const char *directory)
{
	/* ports nothing should listen on: libpq's first connect() must not reach a server */
	struct cluster_config clusters[] = {
		{.name = "test", .replicas = 3, .port = 1},
		{.name = "other", .replicas = 1, .port = 4},
	};
	struct pgha_config config = {.daemon.state_dir = (char *)directory, .clusters = clusters, .cluster_count = 2};
	char path[512], why[512];

	ok(routes_service_file_path(&config, path, sizeof path) &&
		   routes_write_service_file(&config, path, NULL, why, sizeof why),
	   "a service file for libpq to read");
	setenv("PGSERVICEFILE", path, 1);
	check_service("test-rw", "127.0.0.1,127.0.0.1,127.0.0.1", "1,2,3", "read-write");
	check_service("test-ro", "127.0.0.1,127.0.0.1,127.0.0.1", "1,2,3", "prefer-standby");
	check_service("other-rw", "127.0.0.1", "4", "read-write");
	check_service("other-ro", "127.0.0.1", "4", "prefer-standby");

	/* and the check above could fail: a missing service is reported */
	PGconn *connection = PQconnectStart("service=missing");
	const char *error = connection ? PQerrorMessage(connection) : "out of memory";
	ok(connection && PQstatus(connection) == CONNECTION_BAD &&
		   strstr(error, "definition of service \"missing\" not found"),
	   "a service the file does not define is an error: %.*s", (int)strcspn(error, "\n"), error);
	PQfinish(connection);
	unsetenv("PGSERVICEFILE");
	unlink(path);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void test_write(const char *directory)
{
	struct cluster_config clusters[] = {{.name = "test", .replicas = 3, .port = 5432}};
	struct pgha_config config = {.daemon.state_dir = (char *)directory, .clusters = clusters, .cluster_count = 1};
	char path[512], why[512] = "", small[8];
	struct stat before, after;
	bool changed = false;

	ok(routes_service_file_path(&config, small, sizeof small) == NULL, "a path that does not fit is refused");
	const char *got = routes_service_file_path(&config, path, sizeof path);
	char *expected_path = xasprintf("%s/pg_service.conf", directory);
	is_str(got, expected_path, "the service file is STATE_DIR/pg_service.conf");
	free(expected_path);

	/* the mode is 0644 whatever the umask: clients of every user read it */
	mode_t previous = umask(0077);
	bool written = routes_write_service_file(&config, path, &changed, why, sizeof why);
	if (!ok(written && changed, "a new file is written"))
		diag("%s", why);
	umask(previous);
	char *content = file_read(path, 65536, NULL, why, sizeof why);
	char *expected = routes_service_file(&config);
	is_str(content, expected, "with the rendered content");
	free(content);
	ok(stat(path, &before) == 0 && (before.st_mode & 07777) == 0644, "readable by every client (0644)");

	changed = true;
	ok(routes_write_service_file(&config, path, &changed, why, sizeof why) && !changed,
	   "an unchanged file is not written again");
	ok(stat(path, &after) == 0 && same_file(&before, &after), "its inode and mtime are the same");

	clusters[0].replicas = 2;
	ok(routes_write_service_file(&config, path, &changed, why, sizeof why) && changed,
	   "a changed configuration rewrites it");
	content = file_read(path, 65536, NULL, why, sizeof why);
	ok(content && strstr(content, "port=5432,5433\n") && !strstr(content, "5434"), "with the new members");
	free(content);
	ok(stat(path, &after) == 0 && !same_file(&before, &after), "as a new file");

	/* the same content with more after it, or with another mode, is not the file pghad wants */
	free(expected);
	expected = routes_service_file(&config);
	char *longer = xasprintf("%s[extra]\nhost=elsewhere\n", expected);
	file_replace(path, longer, strlen(longer), 0644, why, sizeof why);
	ok(routes_write_service_file(&config, path, &changed, why, sizeof why) && changed,
	   "a file that only starts with the content is rewritten");
	content = file_read(path, 65536, NULL, why, sizeof why);
	is_str(content, expected, "back to the rendered content");
	free(content);
	free(longer);
	chmod(path, 0600);
	ok(routes_write_service_file(&config, path, &changed, why, sizeof why) && changed,
	   "a file clients cannot read is rewritten");
	ok(stat(path, &after) == 0 && (after.st_mode & 07777) == 0644, "with its mode restored");
	free(expected);

	unlink(path);
	char *missing = xasprintf("%s/missing/pg_service.conf", directory);
	changed = true;
	ok(!routes_write_service_file(&config, missing, &changed, why, sizeof why) && !changed &&
		   strstr(why, "missing/pg_service.conf"),
	   "a missing directory fails with the reason: %s", why);
	free(missing);
}

int main(void)
{
	char directory[] = "/tmp/pgha-test-routes-XXXXXX";

	if (!mkdtemp(directory))
		return 1;
	test_uris();
	test_service_file();
	test_libpq_reads_service_file(directory);
	test_write(directory);
	rmdir(directory);
	return done_testing();
}
