/* names: the names pgha derives for a cluster's members and objects, and the rules a cluster name must obey for all of them. */
#ifndef PGHA_NAMES_H
#define PGHA_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* The longest name Kubernetes accepts for a label value or a DNS label, and the
 * longest application_name PostgreSQL keeps (NAMEDATALEN - 1). */
#define NAMES_MAX_LENGTH 63
/* Room for any derived name, with its terminating NUL. */
#define NAMES_BUFFER_SIZE 96

/* The application_name of a member's clone (pg_basebackup): "clone:test-2". Never the
 * member's own name: the primary would list the copy's WAL stream in
 * pg_stat_replication under the member's name, where synchronous_standby_names could
 * count it as the member, whose data is not there yet. A colon is in no member name, so
 * even cut at 63 bytes it names no member. */
#define NAMES_CLONE_PREFIX "clone:"
void names_clone_application(char *buffer, size_t size, const char *member);

/* Member index of cluster: "test-2". */
void names_member(char *buffer, size_t size, const char *cluster, int index);
/* The pod and the volume claim of a member: "postgres-test-2", "pgdata-postgres-test-2". */
void names_pod(char *buffer, size_t size, const char *cluster, int index);
void names_volume(char *buffer, size_t size, const char *cluster, int index);

/* The physical replication slot of a member: slot names allow only lowercase
 * letters, digits and '_', so "test-2" becomes "test_2". */
void names_slot(char *buffer, size_t size, const char *cluster, int index);

/* True when name is an RFC 1035 label: lowercase letters, digits and '-', starting
 * with a letter, ending with a letter or digit, at most 63 characters. Services and
 * namespaces need this, and it is also a valid label value and application_name. */
bool names_is_dns_label(const char *name);
/* True when name is an RFC 1123 subdomain (storage class names). */
bool names_is_dns_subdomain(const char *name);

/* Checks that every name derived from cluster for members 0..max_index fits the limits
 * of Kubernetes and PostgreSQL; on failure writes the reason into why. */
bool names_check_cluster(const char *cluster, int max_index, char *why, size_t why_size);

#endif
