/* config: the option table, parsing of pgha.conf into an immutable struct that owns its strings, and complete validation. */
#ifndef PGHA_CONFIG_H
#define PGHA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "diag.h"

enum platform_type { PLATFORM_LOCAL, PLATFORM_KUBERNETES };
enum sync_method { SYNC_METHOD_OFF, SYNC_METHOD_ANY, SYNC_METHOD_FIRST };

/* Where an option may appear. Cluster options may also appear in the defaults block. */
enum option_scope { SCOPE_GLOBAL, SCOPE_CLUSTER, SCOPE_MEMBER };

enum option_type {
	OPTION_INT,
	OPTION_BOOL,
	OPTION_STRING,
	OPTION_ENUM,
	OPTION_PARAMETERS, /* a group of PostgreSQL parameters, any name */
};

/* Extra checks on a string value; returns false and writes the reason into why. */
typedef bool (*option_check_fn)(const char *value, char *why, size_t why_size);

/* One option, declared once: parsing, defaults, --describe-config, the sample file
 * check and the man page check all read this table. */
struct option_spec {
	const char *path; /* dotted, relative to its scope: "synchronous.method" */
	enum option_scope scope;
	enum option_type type;
	const char *default_value; /* as written in the file; NULL: required */
	long long minimum, maximum;
	const char *const *choices; /* OPTION_ENUM */
	option_check_fn check;      /* OPTION_STRING, optional */
	bool reloadable;            /* false: a change on SIGHUP is refused */
	size_t offset;              /* into the struct of the scope */
	const char *doc;
};

struct pg_parameter {
	char *name;  /* "work_mem", or a custom parameter's "prefix.name" ("auto_explain.log_min_duration") */
	char *value; /* as PostgreSQL reads it in postgresql.conf, unquoted */
	struct origin origin;
};

struct pg_parameter_list {
	struct pg_parameter *items;
	size_t count;
};

/* Room for the origin of every option; the table is checked against it at compile time. */
#define CONFIG_OPTION_MAX 48

struct member_config {
	int index;
	int priority;
	struct origin origin;
	struct origin origins[CONFIG_OPTION_MAX]; /* by option id; file NULL: not set */
};

struct cluster_config {
	char *name;
	int replicas;
	int port;
	struct {
		int method; /* enum sync_method */
		int number;
		bool required;
	} synchronous;
	struct {
		bool automatic;
		int timeout_ms;
	} failover;
	struct {
		char *size;
		char *storage_class;
		int access_mode;
	} volume;
	struct {
		int version; /* 0: the version of the binaries found */
		struct pg_parameter_list parameters;
	} postgresql;
	struct member_config *members; /* per-member overrides, sorted by index */
	size_t member_count;
	struct origin origin; /* the line of the cluster's block */
	struct origin origins[CONFIG_OPTION_MAX];
};

struct pgha_config {
	struct {
		char *state_dir;
		char *control_socket;
		int loop_interval_ms;
		int log_level; /* enum log_level */
		char *metrics_file; /* "" when none */
		int max_data_jobs;  /* initdb, clones and rejoins at once, across clusters */
	} daemon;
	struct {
		int type; /* enum platform_type */
		struct {
			char *base_dir;
			char *bindir;
		} local;
		struct {
			char *namespace;
			char *kubeconfig;
			char *image;
			int lease_seconds;
			int isolation_seconds;
		} kubernetes;
	} platform;
	struct cluster_config *clusters;
	size_t cluster_count;
	struct origin origins[CONFIG_OPTION_MAX];
	/* every option that the file sets somewhere (globally, in defaults, a cluster or a member) */
	bool set_in_file[CONFIG_OPTION_MAX];
	char *path;   /* the file this was read from */
	char **files; /* every file read (includes), owned; origins point into them */
	size_t file_count;
};

extern const char *const platform_type_names[];
extern const char *const sync_method_names[];
extern const char *const access_mode_names[];

const struct option_spec *config_options(size_t *count);
/* The table default of a global option ("daemon.control_socket"), or NULL. */
const char *config_default(const char *path);
/* The string a file sets for a global option, read without validating the rest, so
 * that a file with mistakes still says where pghad listens. NULL when the file cannot
 * be parsed or does not set it; free() the result. */
char *config_peek_string(const char *file, const char *path);

/* Reads and validates a configuration. Returns NULL and fills errors with every
 * problem found ("file:line: reason") when it is not valid. */
struct pgha_config *config_load_file(const char *path, struct diag_list *errors);
/* The same from memory; name stands for the file in messages. @include is refused. */
struct pgha_config *config_load_string(const char *text, const char *name, struct diag_list *errors);
void config_free(struct pgha_config *config);

/* Checks that new can replace old in a running daemon: options that are not
 * reloadable must not change. Adds a message per change to errors. */
bool config_check_reload(const struct pgha_config *old, const struct pgha_config *new, struct diag_list *errors);

/* Reads a configuration for planning: like config_load_file, but returns what could be
 * read even when errors were found (a value in error keeps its default), so that a
 * plan can show the rest. NULL only when the file cannot be parsed at all. */
struct pgha_config *config_load_file_partial(const char *path, struct diag_list *errors);

/* Calls found for every cluster option (parameters and member overrides aside) whose
 * value differs between two clusters, with both values as the file would write them. */
void config_cluster_differences(const struct cluster_config *old, const struct cluster_config *new,
				void (*found)(const char *path, const char *was, const char *now, void *context),
				void *context);

/* The priority of a member (its override, or the default), and its override if any. */
const struct member_config *config_member(const struct cluster_config *cluster, int index);
int config_member_priority(const struct cluster_config *cluster, int index);
/* The port member index listens on when members share a host (the local platform): port + index. */
int config_member_port(const struct cluster_config *cluster, int index);
/* How often a standby of the cluster answers its primary at least, in ms: its
 * wal_receiver_status_interval, as configured, else the 1 s both platforms set; 0 when
 * it does not answer unless WAL comes (0, or a value that cannot be read). */
long long config_standby_reply_interval_ms(const struct cluster_config *cluster);
/* How long ago a standby may have last answered its primary and still count as
 * streaming (config.c says why); 0: no bound, as when its standbys need not answer. */
long long config_standby_reply_bound_ms(const struct cluster_config *cluster);

/* Loads path and prints either the summary to out or every error and their count to
 * errors_out, as --check-config does. Returns whether the file is valid. */
bool config_check_file(const char *path, FILE *out, FILE *errors_out);

/* One paragraph for an operator: platform, then one line per cluster. */
void config_print_summary(const struct pgha_config *config, FILE *out);
/* The option table as tab-separated lines: path, scope, type, default, range, reload, doc. */
void config_print_options(FILE *out);

#endif
