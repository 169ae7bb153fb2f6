/* routes: how clients reach a cluster on the local platform: a multi-host libpq URI, and a libpq service file with CLUSTER-rw and CLUSTER-ro for every cluster. */
#ifndef PGHA_ROUTES_H
#define PGHA_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Where clients find the members when no host is given: they listen on this host's
 * loopback. */
#define ROUTES_DEFAULT_HOST "127.0.0.1"
/* Seconds a client waits for one member before trying the next, so that a dead member
 * costs a client seconds, not the kernel's TCP timeout. */
#define ROUTES_CONNECT_TIMEOUT 3
/* The file name under the state directory, and its mode: every client must read it. */
#define ROUTES_SERVICE_FILE_NAME "pg_service.conf"
#define ROUTES_SERVICE_FILE_MODE 0644

/* A libpq URI over every configured member of cluster (indices 0..replicas-1, in
 * order), on host (NULL: ROUTES_DEFAULT_HOST; a name, an IPv4 or IPv6 address or a
 * socket directory):
 *   postgresql://127.0.0.1:5432,127.0.0.1:5433/postgres?target_session_attrs=read-write&connect_timeout=3
 * read_only asks for target_session_attrs=prefer-standby: a standby when one is up,
 * else the primary. A new string; NULL when host cannot be in a libpq host list
 * (empty, or with a comma: libpq splits on commas even once percent-decoded) or the
 * cluster has no members. */
char *routes_uri(const struct cluster_config *cluster, const char *host, bool read_only);

/* The content of a libpq connection service file: a header saying pghad owns the file,
 * then for every cluster, in configuration order, [CLUSTER-rw] and [CLUSTER-ro] over its
 * members on ROUTES_DEFAULT_HOST. The same configuration always gives the same bytes.
 * A cluster whose name is not a DNS label is left out: its name could not be a section
 * header (libpq reads each line verbatim), and a validated configuration has none.
 * A new string. */
char *routes_service_file(const struct pgha_config *config);

/* STATE_DIR/pg_service.conf in buffer; NULL when it does not fit. */
const char *routes_service_file_path(const struct pgha_config *config, char *buffer, size_t size);

/* Writes the service file to path (its directory must exist), crash-safe and with
 * ROUTES_SERVICE_FILE_MODE, unless path already holds exactly that content with that
 * mode: called every loop, it touches the disk only when the clusters changed. *changed
 * (changed may be NULL) says whether it wrote. False with why written on failure. */
bool routes_write_service_file(const struct pgha_config *config, const char *path, bool *changed, char *why,
			       size_t why_size);

#endif
