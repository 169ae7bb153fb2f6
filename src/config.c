/* config: the option table, parsing of pgha.conf into an immutable struct that owns its strings, and complete validation. */
#include "autoconfig.h"

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "memory.h"
#include "names.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

const char *const platform_type_names[] = {"local", "kubernetes", NULL};
const char *const sync_method_names[] = {"off", "any", "first", NULL};
const char *const access_mode_names[] = {"ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany", NULL};

/* ---- value checks named by the table ---- */

static bool check_absolute_path(const char *value, char *why, size_t why_size)
{
	if (value[0] != '/') {
		snprintf(why, why_size, "must be an absolute path");
		return false;
	}
	return true;
}

static bool check_optional_absolute_path(const char *value, char *why, size_t why_size)
{
	return value[0] == '\0' || check_absolute_path(value, why, why_size);
}

static bool check_dns_label(const char *value, char *why, size_t why_size)
{
	if (!names_is_dns_label(value)) {
		snprintf(why, why_size,
			 "must be 1 to 63 lowercase letters, digits or '-', starting with a letter "
			 "and ending with a letter or digit");
		return false;
	}
	return true;
}

static bool check_optional_dns_subdomain(const char *value, char *why, size_t why_size)
{
	if (value[0] != '\0' && !names_is_dns_subdomain(value)) {
		snprintf(why, why_size, "must be empty or a DNS subdomain (lowercase letters, digits, '-' and '.')");
		return false;
	}
	return true;
}

static bool check_image(const char *value, char *why, size_t why_size)
{
	for (const char *c = value; *c; c++)
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c)) {
			snprintf(why, why_size, "must not contain spaces or control characters");
			return false;
		}
	return true;
}

/* A Kubernetes quantity as volumes use it: digits, an optional fraction, an optional
 * binary or decimal suffix ("10Gi", "500M", "1.5Ti"). */
static bool check_quantity(const char *value, char *why, size_t why_size)
{
	static const char *const suffixes[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", NULL};
	const char *c = value;

	if (!isdigit((unsigned char)*c))
		goto bad;
	while (isdigit((unsigned char)*c))
		c++;
	if (*c == '.') {
		c++;
		if (!isdigit((unsigned char)*c))
			goto bad;
		while (isdigit((unsigned char)*c))
			c++;
	}
	for (size_t i = 0; suffixes[i]; i++)
		if (strcmp(c, suffixes[i]) == 0)
			return true;
bad:
	snprintf(why, why_size, "must be a size such as \"10Gi\", \"500Mi\" or \"1Ti\"");
	return false;
}

/* ---- the option table ---- */

#define GLOBAL(field) SCOPE_GLOBAL, offsetof(struct pgha_config, field)
#define CLUSTER(field) SCOPE_CLUSTER, offsetof(struct cluster_config, field)
#define MEMBER(field) SCOPE_MEMBER, offsetof(struct member_config, field)

/* Declared in the order the sample file and the man page present them. */
#define OPTION(...) OPTION_ROW(__VA_ARGS__)
#define OPTION_ROW(path_, scope_, offset_, type_, default_, minimum_, maximum_, choices_, check_, reload_, doc_) \
	{.path = path_, .scope = scope_, .offset = offset_, .type = type_, .default_value = default_,            \
	 .minimum = minimum_, .maximum = maximum_, .choices = choices_, .check = check_, .reloadable = reload_, \
	 .doc = doc_}

static const struct option_spec options[] = {
	OPTION("daemon.state_dir", GLOBAL(daemon.state_dir), OPTION_STRING, LOCALSTATEDIR "/lib/pgha", 0, 0, NULL,
	       check_absolute_path, false,
	       "directory of pghad's remembered intent and the replication password file"),
	OPTION("daemon.control_socket", GLOBAL(daemon.control_socket), OPTION_STRING, RUNSTATEDIR "/pgha/pghad.sock",
	       0, 0, NULL, check_absolute_path, false, "Unix socket on which pghactl talks to pghad"),
	OPTION("daemon.loop_interval_ms", GLOBAL(daemon.loop_interval_ms), OPTION_INT, "500", 100, 60000, NULL, NULL,
	       true, "time between two iterations of the reconcile loop, in milliseconds"),
	OPTION("daemon.log_level", GLOBAL(daemon.log_level), OPTION_ENUM, "info", 0, 0, log_level_names, NULL, true,
	       "least severe message logged: error, warning, notice, info or debug"),
	OPTION("daemon.metrics_file", GLOBAL(daemon.metrics_file), OPTION_STRING, "", 0, 0, NULL,
	       check_optional_absolute_path, true,
	       "file pghad rewrites after each loop iteration with its metrics in Prometheus's text format, as node_exporter's textfile collector reads them; empty: none"),
	OPTION("daemon.max_data_jobs", GLOBAL(daemon.max_data_jobs), OPTION_INT, "4", 1, 1000, NULL, NULL, true,
	       "data directories written at once across all clusters (initdb, clones, rejoins with pg_rewind); more wait in a queue that status shows"),
	OPTION("platform.type", GLOBAL(platform.type), OPTION_ENUM, "local", 0, 0, platform_type_names, NULL, false,
	       "where members live: local (processes on this host) or kubernetes (pods)"),
	OPTION("platform.local.base_dir", GLOBAL(platform.local.base_dir), OPTION_STRING,
	       LOCALSTATEDIR "/lib/pgha/clusters", 0, 0, NULL, check_absolute_path, false,
	       "directory holding one data directory per local member"),
	OPTION("platform.local.bindir", GLOBAL(platform.local.bindir), OPTION_STRING, "", 0, 0, NULL,
	       check_optional_absolute_path, true,
	       "directory of the PostgreSQL programs; empty: pg_config --bindir, then the newest installed version"),
	OPTION("platform.kubernetes.namespace", GLOBAL(platform.kubernetes.namespace), OPTION_STRING, "default", 0, 0,
	       NULL, check_dns_label, false, "namespace of the clusters' pods, volume claims, services and leases"),
	OPTION("platform.kubernetes.kubeconfig", GLOBAL(platform.kubernetes.kubeconfig), OPTION_STRING, "", 0, 0, NULL,
	       check_optional_absolute_path, true, "kubeconfig file to use; empty: the pod's in-cluster credentials"),
	OPTION("platform.kubernetes.image", GLOBAL(platform.kubernetes.image), OPTION_STRING, "", 0, 0, NULL,
	       check_image, true, "container image of the members, which must provide pgha-entrypoint (required on kubernetes)"),
	OPTION("platform.kubernetes.lease_seconds", GLOBAL(platform.kubernetes.lease_seconds), OPTION_INT, "10", 2, 300,
	       NULL, NULL, true,
	       "duration of each cluster's Lease: another pghad takes a cluster over this long after its holder stopped renewing"),
	OPTION("platform.kubernetes.isolation_seconds", GLOBAL(platform.kubernetes.isolation_seconds), OPTION_INT, "10", 2,
	       300, NULL, NULL, true,
	       "a primary that reaches neither the API server nor any standby this long stops itself (pods created after a change)"),

	OPTION("name", CLUSTER(name), OPTION_STRING, NULL, 0, 0, NULL, check_dns_label, true,
	       "the cluster's name, part of every member, pod, volume and service name (required)"),
	OPTION("replicas", CLUSTER(replicas), OPTION_INT, "3", 1, 99, NULL, NULL, true,
	       "number of members, the primary included"),
	OPTION("port", CLUSTER(port), OPTION_INT, "5432", 1, 65535, NULL, NULL, true,
	       "PostgreSQL port; on the local platform member i listens on port + i"),
	OPTION("synchronous.method", CLUSTER(synchronous.method), OPTION_ENUM, "any", 0, 0, sync_method_names, NULL,
	       true, "synchronous replication: any (quorum, ANY k), first (priority, FIRST k) or off"),
	OPTION("synchronous.number", CLUSTER(synchronous.number), OPTION_INT, "1", 1, 98, NULL, NULL, true,
	       "number k of standbys that must confirm each commit"),
	OPTION("synchronous.required", CLUSTER(synchronous.required), OPTION_BOOL, "true", 0, 0, NULL, NULL, true,
	       "true: commits wait when fewer than k standbys stream; false: fewer names are listed rather than block"),
	OPTION("failover.automatic", CLUSTER(failover.automatic), OPTION_BOOL, "true", 0, 0, NULL, NULL, true,
	       "promote a standby by itself when the primary fails"),
	OPTION("failover.timeout_ms", CLUSTER(failover.timeout_ms), OPTION_INT, "1500", 500, 600000, NULL, NULL, true,
	       "how long a running primary may go without answering before it counts as failed, in milliseconds (a primary whose processes are gone has failed at once)"),
	OPTION("volume.size", CLUSTER(volume.size), OPTION_STRING, "10Gi", 0, 0, NULL, check_quantity, true,
	       "size of each member's volume claim (kubernetes)"),
	OPTION("volume.storage_class", CLUSTER(volume.storage_class), OPTION_STRING, "", 0, 0, NULL,
	       check_optional_dns_subdomain, true, "storage class of the volume claims; empty: the cluster's default"),
	OPTION("volume.access_mode", CLUSTER(volume.access_mode), OPTION_ENUM, "ReadWriteOnce", 0, 0, access_mode_names,
	       NULL, true, "access mode of the volume claims: ReadWriteOnce, ReadWriteOncePod or ReadWriteMany"),
	OPTION("postgresql.version", CLUSTER(postgresql.version), OPTION_INT, "0", 0, 99, NULL, NULL, false,
	       "PostgreSQL major version; 0: the version of the programs found"),
	OPTION("postgresql.parameters", CLUSTER(postgresql.parameters), OPTION_PARAMETERS, "", 0, 0, NULL, NULL, true,
	       "PostgreSQL settings as name = value, and prefix = { name = value; } for a module's prefix.name; "
	       "merged over those of the defaults block, name by name"),

	OPTION("index", MEMBER(index), OPTION_INT, NULL, 0, 98, NULL, NULL, true,
	       "which member the override is for: member index of cluster name is name-index (required)"),
	OPTION("priority", MEMBER(priority), OPTION_INT, "100", 0, 1000, NULL, NULL, true,
	       "preference among failover candidates, higher first; 0: never promoted"),
};

#define OPTION_COUNT (sizeof options / sizeof options[0])
_Static_assert(sizeof options / sizeof options[0] <= CONFIG_OPTION_MAX, "raise CONFIG_OPTION_MAX");

const struct option_spec *config_options(size_t *count)
{
	*count = OPTION_COUNT;
	return options;
}

const char *config_default(const char *path)
{
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (options[i].scope == SCOPE_GLOBAL && strcmp(options[i].path, path) == 0)
			return options[i].default_value;
	return NULL;
}

/* The directory against which a file's relative @include names resolve. */
static char *directory_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	char *directory = xstrdup(path);
	directory[slash - path] = '\0';
	return directory;
}

char *config_peek_string(const char *file, const char *path)
{
	config_t parsed;
	const char *value = NULL;
	char *copy = NULL, *directory = directory_of(file);

	config_init(&parsed);
	config_set_include_dir(&parsed, directory);
	if (config_read_file(&parsed, file) == CONFIG_TRUE && config_lookup_string(&parsed, path, &value) == CONFIG_TRUE)
		copy = xstrdup(value);
	config_destroy(&parsed);
	free(directory);
	return copy;
}

/* The prefix under which an option of a scope is written in the file and documented. */
static const char *scope_prefix(enum option_scope scope)
{
	switch (scope) {
	case SCOPE_CLUSTER:
		return "clusters.";
	case SCOPE_MEMBER:
		return "clusters.members.";
	case SCOPE_GLOBAL:
		break;
	}
	return "";
}

/* PostgreSQL settings that pgha writes itself: a user value would fight pgha's. */
static const char *const owned_parameters[] = {
	"config_file", "data_directory", "hba_file", "ident_file", "external_pid_file", "port",
	"listen_addresses", "unix_socket_directories", "synchronous_standby_names", "primary_conninfo",
	"primary_slot_name", "hot_standby", "cluster_name", "promote_trigger_file", "recovery_target",
	"recovery_target_lsn", "recovery_target_name", "recovery_target_time", "recovery_target_xid",
	"recovery_target_timeline", "recovery_target_action", "recovery_target_inclusive", NULL,
};

/* ---- parsing ---- */

struct parser {
	struct pgha_config *config;
	struct diag_list *errors;
	const char *name;      /* the file name used when libconfig knows none */
	const char *directory; /* where relative @include names resolve, or NULL */
};

static const char *intern_file(struct parser *parser, const char *file)
{
	struct pgha_config *config = parser->config;

	char *resolved;

	if (!file)
		file = parser->name;
	/* libconfig names an included file as written; say where it really is */
	if (file != parser->name && strcmp(file, parser->name) != 0 && file[0] != '/' && parser->directory)
		resolved = xasprintf("%s/%s", parser->directory, file);
	else
		resolved = xstrdup(file);
	for (size_t i = 0; i < config->file_count; i++)
		if (strcmp(config->files[i], resolved) == 0) {
			free(resolved);
			return config->files[i];
		}
	config->files = xreallocarray(config->files, config->file_count + 1, sizeof *config->files);
	config->files[config->file_count] = resolved;
	return config->files[config->file_count++];
}

static struct origin origin_of(struct parser *parser, const config_setting_t *setting)
{
	return (struct origin){
		.file = intern_file(parser, config_setting_source_file(setting)),
		.line = (int)config_setting_source_line(setting),
	};
}

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a number with a fraction";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	}
	return "an unknown type";
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t length_b = strlen(b);
	size_t row[length_b + 1];

	for (size_t j = 0; j <= length_b; j++)
		row[j] = j;
	for (size_t i = 1; a[i - 1]; i++) {
		size_t diagonal = row[0];
		row[0] = i;
		for (size_t j = 1; j <= length_b; j++) {
			size_t above = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = diagonal + cost;
			if (above + 1 < best)
				best = above + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diagonal = above;
		}
	}
	return row[length_b];
}

static const struct option_spec *find_option(enum option_scope scope, const char *path)
{
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (options[i].scope == scope && strcmp(options[i].path, path) == 0)
			return &options[i];
	return NULL;
}

/* True when path names a group that contains options of the scope ("synchronous"). */
static bool is_option_group(enum option_scope scope, const char *path)
{
	size_t length = strlen(path);

	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (options[i].scope == scope && strncmp(options[i].path, path, length) == 0 &&
		    options[i].path[length] == '.')
			return true;
	return false;
}

/* The known key closest to name at the level of prefix, for a "did you mean" hint. */
static const char *closest_key(enum option_scope scope, const char *prefix, const char *name,
			       const char *const *extra_keys, char *best, size_t best_size)
{
	size_t prefix_length = strlen(prefix), best_distance = 3;
	bool found = false;

	for (size_t i = 0; i < OPTION_COUNT; i++) {
		if (options[i].scope != scope || strncmp(options[i].path, prefix, prefix_length) != 0)
			continue;
		char key[128];
		snprintf(key, sizeof key, "%s", options[i].path + prefix_length);
		key[strcspn(key, ".")] = '\0';
		size_t distance = edit_distance(name, key);
		if (distance < best_distance) {
			best_distance = distance;
			snprintf(best, best_size, "%s", key);
			found = true;
		}
	}
	for (size_t i = 0; extra_keys && extra_keys[i]; i++) {
		size_t distance = edit_distance(name, extra_keys[i]);
		if (distance < best_distance) {
			best_distance = distance;
			snprintf(best, best_size, "%s", extra_keys[i]);
			found = true;
		}
	}
	return found ? best : NULL;
}

static void *field(void *base, const struct option_spec *option)
{
	return (char *)base + option->offset;
}

static size_t option_id(const struct option_spec *option)
{
	return (size_t)(option - options);
}

static void free_parameters(struct pg_parameter_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].name);
		free(list->items[i].value);
	}
	free(list->items);
	*list = (struct pg_parameter_list){0};
}

/* Sets name = value in list, replacing an earlier value of the same name. */
static void set_parameter(struct pg_parameter_list *list, const char *name, const char *value, struct origin origin)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcasecmp(list->items[i].name, name) == 0) {
			free(list->items[i].value);
			list->items[i].value = xstrdup(value);
			list->items[i].origin = origin;
			return;
		}
	list->items = xreallocarray(list->items, list->count + 1, sizeof *list->items);
	list->items[list->count++] = (struct pg_parameter){xstrdup(name), xstrdup(value), origin};
}

/* Stores the table default of option into the struct at base. */
static void apply_default(void *base, const struct option_spec *option)
{
	const char *text = option->default_value;

	if (!text)
		return;
	switch (option->type) {
	case OPTION_INT:
		*(int *)field(base, option) = atoi(text);
		break;
	case OPTION_BOOL:
		*(bool *)field(base, option) = strcmp(text, "true") == 0;
		break;
	case OPTION_STRING:
		*(char **)field(base, option) = xstrdup(text);
		break;
	case OPTION_ENUM:
		for (int i = 0; option->choices[i]; i++)
			if (strcmp(option->choices[i], text) == 0)
				*(int *)field(base, option) = i;
		break;
	case OPTION_PARAMETERS:
		*(struct pg_parameter_list *)field(base, option) = (struct pg_parameter_list){0};
		break;
	}
}

static void apply_defaults(void *base, enum option_scope scope)
{
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (options[i].scope == scope)
			apply_default(base, &options[i]);
}

/* A PostgreSQL parameter name, or one part of a custom parameter's prefix.name: an
 * identifier as postgresql.conf reads it (letters, digits and '_', not starting with a
 * digit), no longer than the 63 bytes of an SQL identifier, so that ALTER SYSTEM on
 * kubernetes takes it unchanged. */
static bool is_guc_identifier(const char *name)
{
	if (strlen(name) > 63 || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_')
			return false;
	return true;
}

/* Reads postgresql.parameters into list. libconfig names cannot hold a dot, so a custom
 * parameter prefix.name (auto_explain.log_min_duration) is written as a group named for
 * its prefix: auto_explain = { log_min_duration = "1s"; }. prefix is that group's name
 * inside such a group, NULL at the top. One level only: postgresql.conf's grammar reads
 * a name with one dot at most (a.b.c is a syntax error there, and a reload that meets
 * one applies nothing at all). */
static void parse_parameters(struct parser *parser, const config_setting_t *group, const char *path,
			     const char *prefix, struct pg_parameter_list *list)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *setting = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(setting);
		struct origin where = origin_of(parser, setting);
		char value[64], full_name[160];
		const char *text = value;

		if (config_setting_type(setting) == CONFIG_TYPE_GROUP) {
			char nested[300];
			if (prefix) {
				diag_add(parser->errors, &where,
					 "%s.%s: a PostgreSQL parameter name has one dot at most (prefix.name), so a "
					 "prefix group cannot hold another group",
					 path, name);
				continue;
			}
			if (!is_guc_identifier(name)) {
				diag_add(parser->errors, &where,
					 "%s: \"%s\" is not a parameter prefix: it must be an identifier (letters, digits "
					 "and '_', not starting with a digit, at most 63 bytes)",
					 path, name);
				continue;
			}
			snprintf(nested, sizeof nested, "%s.%s", path, name);
			parse_parameters(parser, setting, nested, name, list);
			continue;
		}
		if (!is_guc_identifier(name)) {
			diag_add(parser->errors, &where, "%s: \"%s\" is not a PostgreSQL parameter name", path, name);
			continue;
		}
		bool owned = false;
		for (size_t j = 0; owned_parameters[j] && !prefix; j++)
			owned |= strcasecmp(owned_parameters[j], name) == 0;
		if (owned) {
			diag_add(parser->errors, &where,
				 "%s: %s is managed by pgha and cannot be set in the configuration", path, name);
			continue;
		}
		switch (config_setting_type(setting)) {
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64:
			snprintf(value, sizeof value, "%lld", config_setting_get_int64(setting));
			break;
		case CONFIG_TYPE_FLOAT:
			snprintf(value, sizeof value, "%.15g", config_setting_get_float(setting));
			break;
		case CONFIG_TYPE_BOOL:
			text = config_setting_get_bool(setting) ? "on" : "off";
			break;
		case CONFIG_TYPE_STRING:
			text = config_setting_get_string(setting);
			break;
		default:
			diag_add(parser->errors, &where, "%s.%s must be a number, a boolean or a string%s, not %s", path,
				 name, prefix ? "" : " (or a group naming a prefix)", type_name(config_setting_type(setting)));
			continue;
		}
		bool control = false;
		for (const char *c = text; *c; c++)
			control |= iscntrl((unsigned char)*c) != 0;
		if (control) {
			diag_add(parser->errors, &where, "%s.%s must not contain control characters", path, name);
			continue;
		}
		if (prefix)
			snprintf(full_name, sizeof full_name, "%s.%s", prefix, name);
		else
			snprintf(full_name, sizeof full_name, "%s", name);
		set_parameter(list, full_name, text, where);
	}
}

/* The libconfig types each kind of option accepts, and how a mismatch is worded. */
static const struct {
	int types[2];
	const char *wanted;
} accepted_types[] = {
	[OPTION_INT] = {{CONFIG_TYPE_INT, CONFIG_TYPE_INT64}, "an integer"},
	[OPTION_BOOL] = {{CONFIG_TYPE_BOOL, CONFIG_TYPE_BOOL}, "true or false"},
	[OPTION_STRING] = {{CONFIG_TYPE_STRING, CONFIG_TYPE_STRING}, "a string"},
	[OPTION_ENUM] = {{CONFIG_TYPE_STRING, CONFIG_TYPE_STRING}, "a string"},
	[OPTION_PARAMETERS] = {{CONFIG_TYPE_GROUP, CONFIG_TYPE_GROUP}, "a group { name = value; ... }"},
};

/* Reads one option's value from setting into the struct at base. */
static void parse_value(struct parser *parser, const config_setting_t *setting, const struct option_spec *option,
			void *base, const char *shown_path)
{
	struct origin where = origin_of(parser, setting);
	int type = config_setting_type(setting);
	char why[256];

	if (type != accepted_types[option->type].types[0] && type != accepted_types[option->type].types[1]) {
		diag_add(parser->errors, &where, "%s must be %s, not %s", shown_path, accepted_types[option->type].wanted,
			 type_name(type));
		return;
	}
	switch (option->type) {
	case OPTION_INT: {
		long long value = config_setting_get_int64(setting);
		if (value < option->minimum || value > option->maximum) {
			diag_add(parser->errors, &where, "%s must be between %lld and %lld (got %lld)", shown_path,
				 option->minimum, option->maximum, value);
			return;
		}
		*(int *)field(base, option) = (int)value;
		break;
	}
	case OPTION_BOOL:
		*(bool *)field(base, option) = config_setting_get_bool(setting);
		break;
	case OPTION_STRING: {
		const char *value = config_setting_get_string(setting);
		if (option->check && !option->check(value, why, sizeof why)) {
			diag_add(parser->errors, &where, "%s \"%s\" %s", shown_path, value, why);
			return;
		}
		char **target = field(base, option);
		free(*target);
		*target = xstrdup(value);
		break;
	}
	case OPTION_ENUM: {
		const char *value = config_setting_get_string(setting);
		int chosen = -1;
		char choices[256] = "";
		for (int i = 0; option->choices[i]; i++) {
			if (strcmp(option->choices[i], value) == 0)
				chosen = i;
			snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s\"%s\"",
				 i == 0 ? "" : ", ", option->choices[i]);
		}
		if (chosen < 0) {
			diag_add(parser->errors, &where, "%s must be one of %s (got \"%s\")", shown_path, choices, value);
			return;
		}
		*(int *)field(base, option) = chosen;
		break;
	}
	case OPTION_PARAMETERS:
		parse_parameters(parser, setting, shown_path, NULL, field(base, option));
		break;
	}
	parser->config->set_in_file[option_id(option)] = true;
}

/* Walks a group of the file, storing the options of scope found in it into base and
 * their origins into origins. Keys in handled are left to the caller; any other key
 * that is not an option of the scope is an error. context names the block for messages. */
static void parse_group(struct parser *parser, const config_setting_t *group, enum option_scope scope,
			const char *prefix, void *base, struct origin *origins, const char *const *handled,
			const char *context)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *setting = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(setting);
		char path[256], shown[300];
		bool skip = false;

		snprintf(path, sizeof path, "%s%s", prefix, name);
		for (size_t j = 0; handled && handled[j] && !prefix[0]; j++)
			skip |= strcmp(handled[j], name) == 0;
		if (skip)
			continue;
		snprintf(shown, sizeof shown, "%s%s", scope_prefix(scope), path);

		const struct option_spec *option = find_option(scope, path);
		struct origin where = origin_of(parser, setting);
		if (option) {
			parse_value(parser, setting, option, base, shown);
			origins[option_id(option)] = where;
		} else if (is_option_group(scope, path)) {
			if (config_setting_type(setting) != CONFIG_TYPE_GROUP) {
				diag_add(parser->errors, &where, "%s must be a group { ... }, not %s", shown,
					 type_name(config_setting_type(setting)));
				continue;
			}
			char nested[260];
			snprintf(nested, sizeof nested, "%s.", path);
			parse_group(parser, setting, scope, nested, base, origins, handled, context);
		} else {
			char suggestion[128];
			const char *hint = closest_key(scope, prefix, name, prefix[0] ? NULL : handled, suggestion,
						       sizeof suggestion);
			if (hint)
				diag_add(parser->errors, &where, "unknown option \"%s\" in %s (did you mean \"%s%s\"?)", path,
					 context, prefix, hint);
			else
				diag_add(parser->errors, &where, "unknown option \"%s\" in %s", path, context);
		}
	}
}

static void require_options(struct parser *parser, enum option_scope scope, const struct origin *origins,
			    const struct origin *block, const char *context)
{
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (options[i].scope == scope && !options[i].default_value && !origins[i].file)
			diag_add(parser->errors, block, "%s lacks the required option \"%s\"", context, options[i].path);
}

static void free_cluster(struct cluster_config *cluster)
{
	free(cluster->name);
	free(cluster->volume.size);
	free(cluster->volume.storage_class);
	free_parameters(&cluster->postgresql.parameters);
	free(cluster->members);
}

/* A deep copy of a cluster template (defaults), so each cluster owns its strings. */
static void copy_cluster(struct cluster_config *to, const struct cluster_config *from)
{
	*to = *from;
	to->name = from->name ? xstrdup(from->name) : NULL;
	to->volume.size = xstrdup(from->volume.size);
	to->volume.storage_class = xstrdup(from->volume.storage_class);
	to->postgresql.parameters = (struct pg_parameter_list){0};
	for (size_t i = 0; i < from->postgresql.parameters.count; i++) {
		const struct pg_parameter *parameter = &from->postgresql.parameters.items[i];
		set_parameter(&to->postgresql.parameters, parameter->name, parameter->value, parameter->origin);
	}
	to->members = NULL;
	to->member_count = 0;
}

static int compare_members(const void *a, const void *b)
{
	const struct member_config *left = a, *right = b;
	return (left->index > right->index) - (left->index < right->index);
}

static void parse_members(struct parser *parser, const config_setting_t *list, struct cluster_config *cluster,
			  const char *context)
{
	struct origin where = origin_of(parser, list);

	if (config_setting_type(list) != CONFIG_TYPE_LIST) {
		diag_add(parser->errors, &where, "members of %s must be a list: members = ( { index = 1; ... } );",
			 context);
		return;
	}
	cluster->member_count = (size_t)config_setting_length(list);
	cluster->members = xcalloc(cluster->member_count, sizeof *cluster->members);
	for (size_t i = 0; i < cluster->member_count; i++) {
		const config_setting_t *group = config_setting_get_elem(list, (unsigned)i);
		struct member_config *member = &cluster->members[i];
		char member_context[160];

		apply_defaults(member, SCOPE_MEMBER);
		member->index = -1;
		member->origin = origin_of(parser, group);
		snprintf(member_context, sizeof member_context, "a member override of %s", context);
		if (config_setting_type(group) != CONFIG_TYPE_GROUP) {
			diag_add(parser->errors, &member->origin, "each entry of members must be a group { index = ...; }");
			continue;
		}
		parse_group(parser, group, SCOPE_MEMBER, "", member, member->origins, NULL, member_context);
		require_options(parser, SCOPE_MEMBER, member->origins, &member->origin, member_context);
	}
	qsort(cluster->members, cluster->member_count, sizeof *cluster->members, compare_members);
}

static const char *const cluster_structural_keys[] = {"members", NULL};
static const char *const top_level_keys[] = {"defaults", "clusters", NULL};

static void parse_clusters(struct parser *parser, const config_setting_t *root)
{
	struct pgha_config *config = parser->config;
	struct cluster_config template = {0};
	const config_setting_t *defaults = config_setting_get_member(root, "defaults");
	const config_setting_t *list = config_setting_get_member(root, "clusters");

	apply_defaults(&template, SCOPE_CLUSTER);
	if (defaults) {
		struct origin where = origin_of(parser, defaults);
		if (config_setting_type(defaults) != CONFIG_TYPE_GROUP) {
			diag_add(parser->errors, &where, "defaults must be a group: defaults = { ... };");
		} else {
			static const char *const not_in_defaults[] = {"name", "members", NULL};
			for (size_t i = 0; not_in_defaults[i]; i++) {
				const config_setting_t *misplaced = config_setting_get_member(defaults, not_in_defaults[i]);
				if (misplaced) {
					struct origin at = origin_of(parser, misplaced);
					diag_add(parser->errors, &at, "\"%s\" belongs in a cluster block, not in defaults",
						 not_in_defaults[i]);
				}
			}
			parse_group(parser, defaults, SCOPE_CLUSTER, "", &template, template.origins, not_in_defaults,
				    "defaults");
		}
	}
	if (list) {
		struct origin where = origin_of(parser, list);
		if (config_setting_type(list) != CONFIG_TYPE_LIST) {
			diag_add(parser->errors, &where, "clusters must be a list: clusters = ( { name = \"test\"; ... } );");
			list = NULL;
		}
	}
	config->cluster_count = list ? (size_t)config_setting_length(list) : 0;
	config->clusters = xcalloc(config->cluster_count, sizeof *config->clusters);
	for (size_t i = 0; i < config->cluster_count; i++) {
		const config_setting_t *group = config_setting_get_elem(list, (unsigned)i);
		struct cluster_config *cluster = &config->clusters[i];
		char context[128];

		copy_cluster(cluster, &template);
		cluster->origin = origin_of(parser, group);
		if (config_setting_type(group) != CONFIG_TYPE_GROUP) {
			diag_add(parser->errors, &cluster->origin, "each entry of clusters must be a group { name = ...; }");
			continue;
		}
		const config_setting_t *name = config_setting_get_member(group, "name");
		if (name && config_setting_type(name) == CONFIG_TYPE_STRING)
			snprintf(context, sizeof context, "cluster \"%s\"", config_setting_get_string(name));
		else
			snprintf(context, sizeof context, "cluster #%zu", i + 1);
		parse_group(parser, group, SCOPE_CLUSTER, "", cluster, cluster->origins, cluster_structural_keys, context);
		require_options(parser, SCOPE_CLUSTER, cluster->origins, &cluster->origin, context);
		const config_setting_t *members = config_setting_get_member(group, "members");
		if (members)
			parse_members(parser, members, cluster, context);
	}
	free_cluster(&template);
}

/* ---- validation across options ---- */

/* The origin of an option of a cluster: where it was set, else the cluster's block. */
static const struct origin *cluster_origin(const struct cluster_config *cluster, const char *path)
{
	const struct option_spec *option = find_option(SCOPE_CLUSTER, path);
	const struct origin *where = &cluster->origins[option_id(option)];
	return where->file ? where : &cluster->origin;
}

static const struct pg_parameter *find_parameter(const struct cluster_config *cluster, const char *name)
{
	for (size_t i = 0; i < cluster->postgresql.parameters.count; i++)
		if (strcasecmp(cluster->postgresql.parameters.items[i].name, name) == 0)
			return &cluster->postgresql.parameters.items[i];
	return NULL;
}

static void validate_parameters(struct parser *parser, const struct cluster_config *cluster, const char *label)
{
	const struct pg_parameter *parameter;
	int standbys = cluster->replicas - 1;

	parameter = find_parameter(cluster, "wal_level");
	if (parameter && strcasecmp(parameter->value, "minimal") == 0)
		diag_add(parser->errors, &parameter->origin,
			 "%s: wal_level = minimal makes streaming replication impossible; use replica or logical",
			 label);
	parameter = find_parameter(cluster, "synchronous_commit");
	if (parameter && cluster->synchronous.method != SYNC_METHOD_OFF &&
	    (strcasecmp(parameter->value, "off") == 0 || strcasecmp(parameter->value, "local") == 0 ||
	     strcasecmp(parameter->value, "false") == 0 || strcasecmp(parameter->value, "no") == 0 ||
	     strcasecmp(parameter->value, "0") == 0))
		diag_add(parser->errors, &parameter->origin,
			 "%s: synchronous_commit = %s acknowledges commits before a standby has them, "
			 "so a failover could lose them; remove it or set synchronous.method = \"off\"",
			 label, parameter->value);
	/* each standby streams over one WAL sender; cloning one more takes two */
	parameter = find_parameter(cluster, "max_wal_senders");
	if (parameter) {
		char *end;
		long value = strtol(parameter->value, &end, 10);
		if (*end == '\0' && value < standbys + 2)
			diag_add(parser->errors, &parameter->origin,
				 "%s: max_wal_senders = %ld is too low for %d standbys: at least %d are needed "
				 "(one per standby, two to clone a new one)",
				 label, value, standbys, standbys + 2);
	}
	parameter = find_parameter(cluster, "max_replication_slots");
	if (parameter) {
		char *end;
		long value = strtol(parameter->value, &end, 10);
		if (*end == '\0' && value < standbys)
			diag_add(parser->errors, &parameter->origin,
				 "%s: max_replication_slots = %ld is too low for %d standbys (one slot each)",
				 label, value, standbys);
	}
}

static void validate_cluster(struct parser *parser, const struct cluster_config *cluster, const char *label)
{
	char why[256];

	if (cluster->name && !names_check_cluster(cluster->name, cluster->replicas - 1, why, sizeof why))
		diag_add(parser->errors, cluster_origin(cluster, "name"), "%s", why);
	if (cluster->synchronous.method != SYNC_METHOD_OFF && cluster->synchronous.number > cluster->replicas - 1)
		diag_add(parser->errors, cluster_origin(cluster, "synchronous.number"),
			 "%s: synchronous.number = %d needs at least %d standbys, but replicas = %d gives %d; "
			 "lower the number, raise replicas or set synchronous.method = \"off\"",
			 label, cluster->synchronous.number, cluster->synchronous.number, cluster->replicas,
			 cluster->replicas - 1);
	if (cluster->postgresql.version > 0 && cluster->postgresql.version < 10)
		diag_add(parser->errors, cluster_origin(cluster, "postgresql.version"),
			 "%s: postgresql.version = %d is not supported (10 or later, or 0 for the installed one)",
			 label, cluster->postgresql.version);
	if (parser->config->platform.type == PLATFORM_LOCAL && cluster->port + cluster->replicas - 1 > 65535)
		diag_add(parser->errors, cluster_origin(cluster, "port"),
			 "%s: on the local platform members use ports %d to %d, beyond 65535", label,
			 cluster->port, cluster->port + cluster->replicas - 1);
	for (size_t i = 0; i < cluster->member_count; i++) {
		const struct member_config *member = &cluster->members[i];
		if (member->index < 0)
			continue; /* missing, already reported */
		if (member->index >= cluster->replicas)
			diag_add(parser->errors, &member->origin,
				 "%s: member override for index %d, but replicas = %d has members 0 to %d; "
				 "remove the override or raise replicas",
				 label, member->index, cluster->replicas, cluster->replicas - 1);
		if (i > 0 && cluster->members[i - 1].index == member->index)
			diag_add(parser->errors, &member->origin,
				 "%s: a second override for member index %d (the first is at line %d)",
				 label, member->index, cluster->members[i - 1].origin.line);
	}
	validate_parameters(parser, cluster, label);
}

static void validate(struct parser *parser)
{
	struct pgha_config *config = parser->config;

	if (config->platform.type == PLATFORM_KUBERNETES && config->platform.kubernetes.image[0] == '\0') {
		const struct option_spec *type = find_option(SCOPE_GLOBAL, "platform.type");
		diag_add(parser->errors, &config->origins[option_id(type)],
			 "platform.type = \"kubernetes\" needs platform.kubernetes.image, the members' image");
	}
	for (size_t i = 0; i < config->cluster_count; i++) {
		const struct cluster_config *cluster = &config->clusters[i];
		char label[96];
		/* a cluster whose name was refused is still checked, under its position */
		if (cluster->name)
			snprintf(label, sizeof label, "cluster \"%s\"", cluster->name);
		else
			snprintf(label, sizeof label, "cluster #%zu", i + 1);
		validate_cluster(parser, cluster, label);
		for (size_t j = 0; j < i; j++) {
			const struct cluster_config *other = &config->clusters[j];
			if (cluster->name && other->name && strcmp(other->name, cluster->name) == 0)
				diag_add(parser->errors, cluster_origin(cluster, "name"),
					 "duplicate cluster name \"%s\" (first defined at %s:%d)", cluster->name,
					 other->origin.file, other->origin.line);
			else if (config->platform.type == PLATFORM_LOCAL && cluster->port <= other->port + other->replicas - 1 &&
				 other->port <= cluster->port + cluster->replicas - 1)
				diag_add(parser->errors, cluster_origin(cluster, "port"),
					 "%s uses ports %d to %d, which overlap those of cluster #%zu (%d to %d); "
					 "on the local platform every member needs its own port",
					 label, cluster->port, cluster->port + cluster->replicas - 1, j + 1,
					 other->port, other->port + other->replicas - 1);
		}
	}
}

/* ---- entry points ---- */

static struct pgha_config *finish(struct parser *parser, config_t *file, bool read)
{
	struct pgha_config *config = parser->config;

	if (!read) {
		struct origin where = {
			.file = intern_file(parser, config_error_file(file)),
			.line = config_error_line(file),
		};
		diag_add(parser->errors, &where, "%s", config_error_text(file));
	} else {
		const config_setting_t *root = config_root_setting(file);
		parse_group(parser, root, SCOPE_GLOBAL, "", config, config->origins, top_level_keys, "the configuration");
		parse_clusters(parser, root);
		validate(parser);
	}
	config_destroy(file);
	return config;
}

static struct pgha_config *start(struct parser *parser, struct diag_list *errors, const char *name)
{
	struct pgha_config *config = xcalloc(1, sizeof *config);

	apply_defaults(config, SCOPE_GLOBAL);
	config->path = xstrdup(name);
	*parser = (struct parser){.config = config, .errors = errors, .name = name};
	return config;
}

static struct pgha_config *keep_if_valid(struct pgha_config *config, struct diag_list *errors, size_t before)
{
	if (errors->count > before) {
		config_free(config);
		return NULL;
	}
	return config;
}

static struct pgha_config *load_file(const char *path, struct diag_list *errors, bool partial);

struct pgha_config *config_load_file(const char *path, struct diag_list *errors)
{
	return load_file(path, errors, false);
}

struct pgha_config *config_load_file_partial(const char *path, struct diag_list *errors)
{
	return load_file(path, errors, true);
}

static struct pgha_config *load_file(const char *path, struct diag_list *errors, bool partial)
{
	struct parser parser;
	struct pgha_config *config = start(&parser, errors, path);
	size_t before = errors->count;
	config_t file;

	/* libconfig reports an unreadable file without its reason: open it ourselves first */
	FILE *stream = fopen(path, "r");
	struct stat status;
	int reason = !stream ? errno : fstat(fileno(stream), &status) < 0 ? errno : S_ISDIR(status.st_mode) ? EISDIR : 0;
	if (reason) {
		diag_add(errors, &(struct origin){.file = path}, "cannot read the configuration: %s", strerror(reason));
		if (stream)
			fclose(stream);
		config_free(config);
		return NULL;
	}
	fclose(stream);

	config_init(&file);
	char *directory = directory_of(path);
	parser.directory = directory;
	config_set_include_dir(&file, directory);
	bool read = config_read_file(&file, path) == CONFIG_TRUE;
	config = finish(&parser, &file, read);
	if (!partial || !read)
		config = keep_if_valid(config, errors, before);
	free(directory);
	return config;
}

struct pgha_config *config_load_string(const char *text, const char *name, struct diag_list *errors)
{
	struct parser parser;
	struct pgha_config *config = start(&parser, errors, name);
	size_t before = errors->count;
	config_t file;

	/* a string has no directory to resolve @include against, and reading files
	 * named by untrusted text (the fuzzer's) is not this function's job */
	if (strstr(text, "@include")) {
		diag_add(errors, &(struct origin){.file = name}, "@include is only allowed in configuration files");
		config_free(config);
		return NULL;
	}
	config_init(&file);
	bool read = config_read_string(&file, text) == CONFIG_TRUE;
	return keep_if_valid(finish(&parser, &file, read), errors, before);
}

void config_free(struct pgha_config *config)
{
	if (!config)
		return;
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (options[i].scope == SCOPE_GLOBAL && options[i].type == OPTION_STRING)
			free(*(char **)field(config, &options[i]));
	for (size_t i = 0; i < config->cluster_count; i++)
		free_cluster(&config->clusters[i]);
	free(config->clusters);
	for (size_t i = 0; i < config->file_count; i++)
		free(config->files[i]);
	free(config->files);
	free(config->path);
	free(config);
}

static bool values_equal(const struct option_spec *option, const void *a, const void *b)
{
	switch (option->type) {
	case OPTION_INT:
	case OPTION_ENUM:
		return *(const int *)((const char *)a + option->offset) == *(const int *)((const char *)b + option->offset);
	case OPTION_BOOL:
		return *(const bool *)((const char *)a + option->offset) == *(const bool *)((const char *)b + option->offset);
	case OPTION_STRING: {
		/* a partially read configuration may lack a string (a required name in error) */
		const char *left = *(char *const *)((const char *)a + option->offset);
		const char *right = *(char *const *)((const char *)b + option->offset);
		return left && right ? strcmp(left, right) == 0 : left == right;
	}
	case OPTION_PARAMETERS:
		break;
	}
	return true; /* parameters are always reloadable */
}

static void describe_value(const struct option_spec *option, const void *base, char *out, size_t size)
{
	const void *value = (const char *)base + option->offset;

	switch (option->type) {
	case OPTION_INT:
		snprintf(out, size, "%d", *(const int *)value);
		break;
	case OPTION_ENUM:
		snprintf(out, size, "\"%s\"", option->choices[*(const int *)value]);
		break;
	case OPTION_BOOL:
		snprintf(out, size, "%s", *(const bool *)value ? "true" : "false");
		break;
	case OPTION_STRING:
		snprintf(out, size, "\"%s\"", *(char *const *)value ? *(char *const *)value : "");
		break;
	case OPTION_PARAMETERS:
		snprintf(out, size, "{...}");
		break;
	}
}

bool config_check_reload(const struct pgha_config *old, const struct pgha_config *new, struct diag_list *errors)
{
	size_t before = errors->count;
	char was[300], now[300];

	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct option_spec *option = &options[i];
		if (option->reloadable)
			continue;
		if (option->scope == SCOPE_GLOBAL && !values_equal(option, old, new)) {
			describe_value(option, old, was, sizeof was);
			describe_value(option, new, now, sizeof now);
			const struct origin *where = new->origins[i].file ? &new->origins[i] : &(struct origin){.file = new->path};
			diag_add(errors, where, "%s cannot change while pghad runs (%s, now %s): restart pghad to apply it",
				 option->path, was, now);
		}
		if (option->scope != SCOPE_CLUSTER)
			continue;
		for (size_t c = 0; c < new->cluster_count; c++)
			for (size_t o = 0; o < old->cluster_count; o++) {
				const struct cluster_config *before_cluster = &old->clusters[o], *after = &new->clusters[c];
				if (strcmp(before_cluster->name, after->name) != 0 || values_equal(option, before_cluster, after))
					continue;
				describe_value(option, before_cluster, was, sizeof was);
				describe_value(option, after, now, sizeof now);
				diag_add(errors, cluster_origin(after, option->path),
					 "cluster \"%s\": %s cannot change on a running cluster (%s, now %s)", after->name,
					 option->path, was, now);
			}
	}
	return errors->count == before;
}

void config_cluster_differences(const struct cluster_config *old, const struct cluster_config *new,
				void (*found)(const char *path, const char *was, const char *now, void *context),
				void *context)
{
	char was[300], now[300];

	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct option_spec *option = &options[i];
		if (option->scope != SCOPE_CLUSTER || option->type == OPTION_PARAMETERS || values_equal(option, old, new))
			continue;
		describe_value(option, old, was, sizeof was);
		describe_value(option, new, now, sizeof now);
		found(option->path, was, now, context);
	}
}

const struct member_config *config_member(const struct cluster_config *cluster, int index)
{
	for (size_t i = 0; i < cluster->member_count; i++)
		if (cluster->members[i].index == index)
			return &cluster->members[i];
	return NULL;
}

int config_member_port(const struct cluster_config *cluster, int index)
{
	return cluster->port + index;
}

int config_member_priority(const struct cluster_config *cluster, int index)
{
	const struct member_config *member = config_member(cluster, index);
	struct member_config defaults;

	if (member)
		return member->priority;
	apply_defaults(&defaults, SCOPE_MEMBER);
	return defaults.priority;
}

long long config_standby_reply_interval_ms(const struct cluster_config *cluster)
{
	static const struct {
		const char *unit;
		long long ms;
	} units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
	const struct pg_parameter *parameter = find_parameter(cluster, "wal_receiver_status_interval");

	if (!parameter)
		return 1000;
	char *end;
	errno = 0;
	long long value = strtoll(parameter->value, &end, 10);
	if (errno || end == parameter->value || value <= 0 || value > 86400000)
		return 0;
	while (isspace((unsigned char)*end))
		end++;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(end, units[i].unit) == 0)
			return value * units[i].ms;
	return 0;
}

/* A standby sends its primary a status reply at least every wal_receiver_status_interval,
 * WAL or not; one cut off (isolated, frozen) stays "streaming" in pg_stat_replication until
 * wal_sender_timeout (60 s), but replies no more. Five intervals missed in a row is no
 * scheduling delay of a starved machine; and a standby is never judged faster than a
 * primary: failover.timeout_ms is how long one may not answer before it counts as failed. */
#define STANDBY_REPLY_INTERVALS 5

long long config_standby_reply_bound_ms(const struct cluster_config *cluster)
{
	long long interval = config_standby_reply_interval_ms(cluster);

	if (interval <= 0)
		return 0;
	long long bound = STANDBY_REPLY_INTERVALS * interval;
	return bound > cluster->failover.timeout_ms ? bound : cluster->failover.timeout_ms;
}

void config_print_summary(const struct pgha_config *config, FILE *out)
{
	fprintf(out, "%s: valid; platform %s", config->path, platform_type_names[config->platform.type]);
	if (config->platform.type == PLATFORM_LOCAL)
		fprintf(out, " (data under %s)", config->platform.local.base_dir);
	else
		fprintf(out, " (namespace %s, image %s)", config->platform.kubernetes.namespace,
			config->platform.kubernetes.image);
	fprintf(out, ", %zu cluster%s\n", config->cluster_count, config->cluster_count == 1 ? "" : "s");
	for (size_t i = 0; i < config->cluster_count; i++) {
		const struct cluster_config *cluster = &config->clusters[i];
		fprintf(out, "  %s: %d member%s, port %d", cluster->name, cluster->replicas, cluster->replicas == 1 ? "" : "s",
			cluster->port);
		if (config->platform.type == PLATFORM_LOCAL && cluster->replicas > 1)
			fprintf(out, "-%d", cluster->port + cluster->replicas - 1);
		if (cluster->synchronous.method == SYNC_METHOD_OFF)
			fprintf(out, ", asynchronous");
		else
			fprintf(out, ", synchronous %s %d%s", cluster->synchronous.method == SYNC_METHOD_ANY ? "ANY" : "FIRST",
				cluster->synchronous.number, cluster->synchronous.required ? " (required)" : "");
		if (cluster->failover.automatic)
			fprintf(out, ", automatic failover after %d ms", cluster->failover.timeout_ms);
		else
			fprintf(out, ", manual failover only");
		fprintf(out, ", %zu parameter%s\n", cluster->postgresql.parameters.count,
			cluster->postgresql.parameters.count == 1 ? "" : "s");
	}
}

bool config_check_file(const char *path, FILE *out, FILE *errors_out)
{
	struct diag_list errors = {0};
	struct pgha_config *config = config_load_file(path, &errors);

	if (!config) {
		for (size_t i = 0; i < errors.count; i++)
			fprintf(errors_out, "%s\n", errors.messages[i]);
		fprintf(errors_out, "%s: %zu error%s\n", path, errors.count, errors.count == 1 ? "" : "s");
		diag_free(&errors);
		return false;
	}
	config_print_summary(config, out);
	config_free(config);
	return true;
}

void config_print_options(FILE *out)
{
	static const char *const type_names[] = {"integer", "boolean", "string", "enum", "parameters"};

	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct option_spec *option = &options[i];
		char range[64] = "";
		if (option->type == OPTION_INT)
			snprintf(range, sizeof range, "%lld..%lld", option->minimum, option->maximum);
		fprintf(out, "%s%s\t%s\t%s\t%s\t%s\t%s\n", scope_prefix(option->scope), option->path,
			type_names[option->type], option->default_value ? option->default_value : "(required)", range,
			option->reloadable ? "reload" : "restart", option->doc);
	}
}
