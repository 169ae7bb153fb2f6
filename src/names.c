/* names: the names pgha derives for a cluster's members and objects, and the rules a cluster name must obey for all of them. */
#include "autoconfig.h"

#include "names.h"

#include <stdio.h>
#include <string.h>

void names_member(char *buffer, size_t size, const char *cluster, int index)
{
	snprintf(buffer, size, "%s-%d", cluster, index);
}

void names_pod(char *buffer, size_t size, const char *cluster, int index)
{
	snprintf(buffer, size, "postgres-%s-%d", cluster, index);
}

void names_volume(char *buffer, size_t size, const char *cluster, int index)
{
	snprintf(buffer, size, "pgdata-postgres-%s-%d", cluster, index);
}

void names_clone_application(char *buffer, size_t size, const char *member)
{
	snprintf(buffer, size, NAMES_CLONE_PREFIX "%s", member);
}

void names_slot(char *buffer, size_t size, const char *cluster, int index)
{
	names_member(buffer, size, cluster, index);
	for (char *c = buffer; *c; c++)
		if (*c == '-')
			*c = '_';
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_label(const char *name, size_t length, bool letter_first)
{
	if (length == 0 || length > NAMES_MAX_LENGTH)
		return false;
	if (letter_first ? !(name[0] >= 'a' && name[0] <= 'z') : !is_lower_alnum(name[0]))
		return false;
	if (!is_lower_alnum(name[length - 1]))
		return false;
	for (size_t i = 0; i < length; i++)
		if (!is_lower_alnum(name[i]) && name[i] != '-')
			return false;
	return true;
}

bool names_is_dns_label(const char *name)
{
	return is_label(name, strlen(name), true);
}

bool names_is_dns_subdomain(const char *name)
{
	size_t length = strlen(name);

	if (length == 0 || length > 253)
		return false;
	for (const char *part = name;;) {
		const char *dot = strchr(part, '.');
		size_t part_length = dot ? (size_t)(dot - part) : strlen(part);
		if (!is_label(part, part_length, false))
			return false;
		if (!dot)
			return true;
		part = dot + 1;
	}
}

bool names_check_cluster(const char *cluster, int max_index, char *why, size_t why_size)
{
	char derived[512];

	if (!names_is_dns_label(cluster)) {
		snprintf(why, why_size,
			 "cluster name \"%s\" is not usable: it must be 1 to 63 lowercase letters, digits or '-', "
			 "start with a letter and end with a letter or digit (it names pods, services and "
			 "PostgreSQL application names)",
			 cluster);
		return false;
	}
	/* The pod name is the longest name derived from the cluster that must stay a DNS label. */
	names_pod(derived, sizeof derived, cluster, max_index);
	if (strlen(derived) > NAMES_MAX_LENGTH) {
		snprintf(why, why_size,
			 "cluster name \"%s\" is too long: its pod name \"%s\" would exceed %d characters",
			 cluster, derived, NAMES_MAX_LENGTH);
		return false;
	}
	return true;
}
