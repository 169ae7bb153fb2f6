/* platform_local: members as PostgreSQL processes on this host: their directories, ports and settings files, and the programs that create, start and stop them. */
#include "autoconfig.h"

#include "platform_local.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "act.h"
#include "bindir.h"
#include "datadir.h"
#include "entrypoint.h" /* pg_controldata's output, read as the member's entrypoint reads it */
#include "exitcode.h"
#include "file.h"
#include "jsonpack.h"
#include "log.h"
#include "memory.h"
#include "names.h"
#include "observation.h"
#include "routes.h"
#include "state.h"

static int each_process_in(const char *data, bool (*found)(pid_t pid, void *context), void *context);
static bool count_one(pid_t pid, void *context);

/* initdb and pg_basebackup of a big database take long; a stuck one must still end. */
#define INITIALIZE_TIMEOUT_MS (10 * 60 * 1000)
#define CLONE_TIMEOUT_MS (6 * 60 * 60 * 1000)
#define PROGRAM_TIMEOUT_MS (30 * 1000)

static bool find_bindir(struct local_platform *platform)
{
	char why[512];

	if (bindir_find(platform->config->platform.local.bindir, "platform.local.bindir", platform->bindir,
			sizeof platform->bindir, why, sizeof why))
		return true;
	log_error("%s", why);
	return false;
}

bool local_platform_init(struct local_platform *platform, const struct pgha_config *config)
{
	struct passwd *account = getpwuid(geteuid());

	*platform = (struct local_platform){.config = config};
	if (!account) {
		log_error("cannot find the name of user %ld", (long)geteuid());
		return false;
	}
	snprintf(platform->user, sizeof platform->user, "%s", account->pw_name);
	if (!find_bindir(platform))
		return false;
	log_info("PostgreSQL programs in %s; members run as %s", platform->bindir, platform->user);
	return true;
}

static char *member_directory(const struct local_platform *platform, const char *cluster, int index)
{
	char member[NAMES_BUFFER_SIZE];
	names_member(member, sizeof member, cluster, index);
	return xasprintf("%s/%s/%s", platform->config->platform.local.base_dir, cluster, member);
}

char *local_member_directory(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	return member_directory(platform, cluster->name, index);
}

/* The paths of a member that pghad looks at in every iteration. They follow from the
 * base directory (which a reload cannot change), the cluster's name and the member's
 * index alone, so a member's memory keeps them: building them for every member at every
 * iteration (their vsnprintf and malloc) was about 8 % of pghad's CPU at rest. */
struct member_paths {
	char *directory; /* BASE/CLUSTER/MEMBER, its socket's directory */
	char *data;      /* DIRECTORY/data */
	char *pid_file;  /* DATA/postmaster.pid */
	char *settings;  /* DATA/pgha.conf */
};

static void member_paths_make(struct member_paths *paths, const struct local_platform *platform, const char *cluster,
			      int index)
{
	paths->directory = member_directory(platform, cluster, index);
	paths->data = xasprintf("%s/data", paths->directory);
	paths->pid_file = xasprintf("%s/postmaster.pid", paths->data);
	paths->settings = xasprintf("%s/pgha.conf", paths->data);
}

static void member_paths_free(struct member_paths *paths)
{
	free(paths->directory);
	free(paths->data);
	free(paths->pid_file);
	free(paths->settings);
	*paths = (struct member_paths){0};
}

/* A file of a member's directory ("data", "postgresql.log"). */
static char *member_path(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			 const char *name)
{
	char *directory = local_member_directory(platform, cluster, index);
	char *path = xasprintf("%s/%s", directory, name);
	free(directory);
	return path;
}

char *local_data_directory(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	return member_path(platform, cluster, index, "data");
}

int local_member_port(const struct cluster_config *cluster, int index)
{
	return config_member_port(cluster, index);
}

/* The admin target of member index, whose directory (its socket's) is directory, taken. */
static struct pg_target admin_target_in(const struct local_platform *platform, const struct cluster_config *cluster,
					int index, char *directory)
{
	return (struct pg_target){.host = directory, .port = local_member_port(cluster, index), .user = platform->user};
}

struct pg_target local_admin_target(const struct local_platform *platform, const struct cluster_config *cluster,
				    int index)
{
	return admin_target_in(platform, cluster, index, local_member_directory(platform, cluster, index));
}

static bool exists(const char *directory, const char *name)
{
	char *path = xasprintf("%s/%s", directory, name);
	bool found = access(path, F_OK) == 0;
	free(path);
	return found;
}

/* local_member_state of the member at paths, remembering the postmaster verified in
 * *verified (NULL: nothing). */
static void member_state(const struct member_paths *paths, struct datadir_verified *verified,
			 struct local_member_state *state)
{
	const char *data = paths->data;
	struct file_identity identity;
	mode_t mode;

	*state = (struct local_member_state){0};
	/* one look at the path (lstat) tells whether it is a directory and, since it then is
	 * no symbolic link, gives the identity a stat would: a second stat of the same path
	 * for every member at every iteration is saved */
	bool found = file_identity_read_link(data, &identity, &mode);
	if (!found || !S_ISDIR(mode)) {
		/* nothing there (or unreadable: reported when used), or something that is no
		 * directory; no postmaster runs on it */
		state->data_unusable = found;
		if (verified)
			datadir_verified_forget(verified);
		return;
	}
	state->postmaster = datadir_postmaster_of_pid_file(paths->pid_file, &state->postmaster_exited,
							    &state->postmaster_state, verified);
	/* what it holds, looked at again only when it may have changed: while the postmaster
	 * verified before runs on it (watched), and the directory's identity is unchanged
	 * (file_identity_unchanged), what it held then (three access() and a read of
	 * PG_VERSION for every member at every iteration were a third of what pghad did at
	 * rest after its other files were remembered); its identity was looked at above,
	 * before what it holds is read: a change in between is seen the next time */
	struct datadir_contents contents;
	bool running = verified && state->postmaster && !state->postmaster_exited && verified->process.open &&
		       verified->pid == state->postmaster;
	if (running && verified->inspected && file_identity_unchanged(&verified->directory, &identity)) {
		contents = verified->contents;
	} else {
		datadir_inspect(data, &contents);
		if (verified) {
			verified->inspected = running;
			verified->directory = identity;
			verified->contents = contents;
		}
	}
	/* an empty directory is no data yet: initdb and pg_basebackup can fill it (nor is one
	 * that cannot be listed: initdb or pg_basebackup then says why) */
	bool empty = contents.kind == DATADIR_EMPTY || contents.kind == DATADIR_UNREADABLE;
	if (!empty || state->postmaster) {
		state->data_exists = contents.pg_version && contents.pg_control;
		state->data_unusable = !state->data_exists && !state->postmaster;
		state->standby_signal = contents.standby_signal;
	}
}

void local_member_state(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			struct local_member_state *state)
{
	struct member_paths paths;
	member_paths_make(&paths, platform, cluster->name, index);
	member_state(&paths, NULL, state);
	member_paths_free(&paths);
}

int local_highest_member(const struct local_platform *platform, const struct cluster_config *cluster)
{
	char prefix[NAMES_BUFFER_SIZE];
	char *path = xasprintf("%s/%s", platform->config->platform.local.base_dir, cluster->name);
	int highest = -1;

	snprintf(prefix, sizeof prefix, "%s-", cluster->name);
	DIR *listing = opendir(path);
	free(path);
	for (struct dirent *entry; listing && (entry = readdir(listing));) {
		char *end;
		if (strncmp(entry->d_name, prefix, strlen(prefix)) != 0)
			continue;
		long index = strtol(entry->d_name + strlen(prefix), &end, 10);
		if (*end == '\0' && index >= 0 && index < 1000 && index > highest)
			highest = (int)index;
	}
	if (listing)
		closedir(listing);
	return highest;
}

/* The cluster's directory under the state directory: its secrets and remembered intent. */
static char *secret_directory(const struct local_platform *platform, const struct cluster_config *cluster)
{
	return xasprintf("%s/%s", platform->config->daemon.state_dir, cluster->name);
}

char *local_cluster_state_directory(const struct local_platform *platform, const struct cluster_config *cluster,
				    char *why, size_t why_size)
{
	const char *state_dir = platform->config->daemon.state_dir;
	char *directory = secret_directory(platform, cluster);

	/* the state directory holds the service file clients read; each cluster's own
	 * directory holds its secrets and is pghad's alone */
	if ((mkdir(state_dir, 0755) < 0 && errno != EEXIST) || (mkdir(directory, 0700) < 0 && errno != EEXIST)) {
		snprintf(why, why_size, "cannot create %s: %s", directory, strerror(errno));
		free(directory);
		return NULL;
	}
	return directory;
}

bool local_replication_secret(const struct local_platform *platform, const struct cluster_config *cluster,
			      char *password, size_t password_size, char *passfile, size_t passfile_size, char *why,
			      size_t why_size)
{
	char *directory = local_cluster_state_directory(platform, cluster, why, why_size);
	char *path = directory ? xasprintf("%s/replication.password", directory) : NULL;
	char *content = NULL;
	bool made = false;

	if (!directory)
		goto out;
	content = file_read(path, 1024, NULL, why, why_size);
	if (!content && errno != ENOENT)
		goto out;
	if (!content) {
		char text[64];
		if (!pg_make_password(text, sizeof text, why, why_size))
			goto out;
		if (!file_replace(path, text, strlen(text), 0600, why, why_size))
			goto out;
		content = xstrdup(text);
	}
	content[strcspn(content, "\n")] = '\0';
	snprintf(password, password_size, "%s", content);
	char *line = NULL;
	pg_passfile_append(&line, REPLICATION_ROLE, content);
	char *pgpass = xasprintf("%s/pgpass", directory);
	snprintf(passfile, passfile_size, "%s", pgpass);
	made = strlen(pgpass) < passfile_size && file_replace(pgpass, line, strlen(line), 0600, why, why_size);
	free(line);
	free(pgpass);
out:
	free(content);
	free(directory);
	free(path);
	return made;
}

char *local_primary_conninfo(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			     int upstream)
{
	char port[16], member[NAMES_BUFFER_SIZE];
	char *directory = secret_directory(platform, cluster);
	char *passfile = xasprintf("%s/pgpass", directory);
	char *conninfo = NULL;

	free(directory);
	snprintf(port, sizeof port, "%d", local_member_port(cluster, upstream));
	names_member(member, sizeof member, cluster->name, index);
	pg_conninfo_append(&conninfo, "host", "127.0.0.1");
	pg_conninfo_append(&conninfo, "port", port);
	pg_conninfo_append(&conninfo, "user", REPLICATION_ROLE);
	pg_conninfo_append(&conninfo, "passfile", passfile);
	pg_conninfo_append(&conninfo, "application_name", member);
	/* a primary that hangs must not keep the walreceiver waiting forever */
	pg_conninfo_append(&conninfo, "connect_timeout", "5");
	pg_conninfo_append_receiver_timeouts(&conninfo);
	free(passfile);
	return conninfo;
}

int local_upstream_of(const struct cluster_config *cluster, const char *primary_conninfo)
{
	char *error = NULL;
	PQconninfoOption *options = PQconninfoParse(primary_conninfo, &error);
	int upstream = -1;
	bool loopback = false;

	PQfreemem(error);
	if (!options)
		return -1;
	for (PQconninfoOption *option = options; option->keyword; option++) {
		if (!option->val)
			continue;
		if (strcmp(option->keyword, "host") == 0)
			loopback = strcmp(option->val, "127.0.0.1") == 0;
		if (strcmp(option->keyword, "port") == 0) {
			int port = atoi(option->val);
			if (port >= cluster->port && port < cluster->port + 1000)
				upstream = port - cluster->port;
		}
	}
	PQconninfoFree(options);
	return loopback ? upstream : -1;
}

static const char *parameter_value(const struct cluster_config *cluster, const char *name)
{
	for (size_t i = 0; i < cluster->postgresql.parameters.count; i++)
		if (strcasecmp(cluster->postgresql.parameters.items[i].name, name) == 0)
			return cluster->postgresql.parameters.items[i].value;
	return NULL;
}

/* The content of a member's pgha.conf. */
static char *render_settings(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	char port[16], member[NAMES_BUFFER_SIZE], senders[16];
	char *data = local_data_directory(platform, cluster, index);
	char *directory = local_member_directory(platform, cluster, index);
	char *text = xstrdup("# Written by pghad: changes here are overwritten. Set parameters in pgha.conf(5)'s\n"
			     "# postgresql.parameters instead.\n");

	snprintf(port, sizeof port, "%d", local_member_port(cluster, index));
	names_member(member, sizeof member, cluster->name, index);
	datadir_append_setting(&text, "port", port);
	datadir_append_setting(&text, "listen_addresses", "127.0.0.1");
	datadir_append_setting(&text, "unix_socket_directories", directory);
	datadir_append_setting(&text, "cluster_name", member);
	datadir_append_setting(&text, "hot_standby", "on");
	/* pg_rewind needs hints or checksums; initdb turns checksums on, hints cover clones of others */
	datadir_append_setting(&text, "wal_log_hints", "on");
	/* enough senders and slots for every standby and a clone in progress, unless set */
	snprintf(senders, sizeof senders, "%d", cluster->replicas + 2 > 10 ? cluster->replicas + 2 : 10);
	if (!parameter_value(cluster, "max_wal_senders"))
		datadir_append_setting(&text, "max_wal_senders", senders);
	if (!parameter_value(cluster, "max_replication_slots"))
		datadir_append_setting(&text, "max_replication_slots", senders);
	/* a standby whose primary went away retries after this: PostgreSQL's 5 s would be
	 * most of a failover's time (unless set) */
	if (!parameter_value(cluster, "wal_retrieve_retry_interval"))
		datadir_append_setting(&text, "wal_retrieve_retry_interval", "250ms");
	/* a standby answers its primary at least every second, WAL or not, as on kubernetes
	 * (pgha-entrypoint): one that stops answering is soon not counted as streaming, though
	 * its walsender lingers until wal_sender_timeout (config_standby_reply_bound_ms) */
	if (!parameter_value(cluster, "wal_receiver_status_interval"))
		datadir_append_setting(&text, "wal_receiver_status_interval", "1s");
	for (size_t i = 0; i < cluster->postgresql.parameters.count; i++)
		datadir_append_setting(&text, cluster->postgresql.parameters.items[i].name,
			       cluster->postgresql.parameters.items[i].value);
	char *tail = xasprintf("%sinclude_if_exists = 'pgha-standby.conf'\ninclude_if_exists = 'pgha-synchronous.conf'\n",
			       text);
	free(text);
	free(data);
	free(directory);
	return tail;
}

bool local_write_settings(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			  char *why, size_t why_size)
{
	char *data = local_data_directory(platform, cluster, index);
	char *text = render_settings(platform, cluster, index);
	bool written = datadir_write_file(data, "pgha.conf", text, why, why_size);
	free(text);
	free(data);
	return written;
}

/* local_settings_current, remembering in *expected the text the configuration renders
 * (NULL: not rendered yet; forgotten when the configuration changes) and in *file the
 * identity of pgha.conf when it last held that text: the file is read again only once
 * it changed (pghad's own writes replace it; an edit by hand sets its change time). */
static bool settings_current(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			     const char *path, char **expected, struct file_identity *file)
{
	char why[256];
	struct file_identity now = {0};
	char *rendered = NULL;
	bool current;

	if (file && file_identity_read(path, &now) && *expected && file_identity_unchanged(file, &now))
		return true;
	if (!expected)
		expected = &rendered;
	if (!*expected)
		*expected = render_settings(platform, cluster, index);
	char *actual = file_read(path, 1024 * 1024, NULL, why, sizeof why);
	current = actual && strcmp(actual, *expected) == 0;
	if (file)
		*file = current ? now : (struct file_identity){0};
	free(rendered);
	free(actual);
	return current;
}

bool local_settings_current(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	char *path = member_path(platform, cluster, index, "data/pgha.conf");
	bool current = settings_current(platform, cluster, index, path, NULL, NULL);
	free(path);
	return current;
}



bool local_write_standby_settings(const struct local_platform *platform, const struct cluster_config *cluster,
				  int index, int upstream, char *why, size_t why_size)
{
	char slot[NAMES_BUFFER_SIZE];
	char *data = local_data_directory(platform, cluster, index);
	char *text = xstrdup("# Written by pghad: whom this member follows.\n");

	if (upstream >= 0) {
		char *conninfo = local_primary_conninfo(platform, cluster, index, upstream);
		names_slot(slot, sizeof slot, cluster->name, index);
		datadir_append_setting(&text, "primary_conninfo", conninfo);
		datadir_append_setting(&text, "primary_slot_name", slot);
		free(conninfo);
	}
	bool written = datadir_write_file(data, "pgha-standby.conf", text, why, why_size);
	free(text);
	free(data);
	return written;
}

bool local_write_synchronous_names(const struct local_platform *platform, const struct cluster_config *cluster,
				   int index, const char *names, char *why, size_t why_size)
{
	char *data = local_data_directory(platform, cluster, index);
	char *text = xstrdup("# Written by pghad: the standbys that confirm each commit.\n");

	datadir_append_setting(&text, "synchronous_standby_names", names);
	bool written = datadir_write_file(data, "pgha-synchronous.conf", text, why, why_size);
	free(text);
	free(data);
	return written;
}

static bool make_directory(char *path, char *why, size_t why_size)
{
	bool made = mkdir(path, 0700) == 0 || errno == EEXIST;
	if (!made)
		snprintf(why, why_size, "cannot create %s: %s", path, strerror(errno));
	free(path);
	return made;
}

static bool make_member_directory(const struct local_platform *platform, const struct cluster_config *cluster,
				  int index, char *why, size_t why_size)
{
	const char *base = platform->config->platform.local.base_dir;

	return make_directory(xstrdup(base), why, why_size) &&
	       make_directory(xasprintf("%s/%s", base, cluster->name), why, why_size) &&
	       make_directory(local_member_directory(platform, cluster, index), why, why_size);
}

static char *program(const struct local_platform *platform, const char *name)
{
	return bindir_program(platform->bindir, name);
}

struct proc_job *local_initialize(const struct local_platform *platform, sd_event *event,
				  const struct cluster_config *cluster, int index, proc_done_fn done, void *userdata)
{
	char why[256];

	if (!make_member_directory(platform, cluster, index, why, sizeof why)) {
		log_message(LOG_LEVEL_ERROR, cluster->name, NULL, "%s", why);
		return NULL;
	}
	char *initdb = program(platform, "initdb");
	char *data = local_data_directory(platform, cluster, index);
	/* PGHA_TEST_INITDB_NOSYNC: for tests only, documented in pghad(8); a real cluster is synced */
	const bool nosync = getenv("PGHA_TEST_INITDB_NOSYNC") != NULL;
	const char *const argv[] = {initdb, "--pgdata", data, "--username", platform->user, "--auth-local=peer",
				    "--auth-host=scram-sha-256", "--data-checksums", "--encoding=UTF8",
				    nosync ? "--nosync" : NULL, NULL};
	struct proc_job *job = proc_start(event, argv, NULL, NULL, INITIALIZE_TIMEOUT_MS, done, userdata);
	free(initdb);
	free(data);
	return job;
}

bool local_finish_initialize(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			     char *why, size_t why_size)
{
	if (!local_write_settings(platform, cluster, index, why, why_size))
		return false;
	/* the one line pgha adds to the file initdb wrote; everything else is in pgha.conf */
	char *data = local_data_directory(platform, cluster, index);
	bool added = datadir_include_settings(data, "pghad", why, why_size);
	free(data);
	return added;
}

/* pg_basebackup copies into data.cloning, renamed to data only once complete, so a copy
 * cut short never looks like a data directory. */
static char *cloning_directory(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	return member_path(platform, cluster, index, "data.cloning");
}

struct proc_job *local_clone(const struct local_platform *platform, sd_event *event,
			     const struct cluster_config *cluster, int index, int source, proc_done_fn done,
			     void *userdata)
{
	char slot[NAMES_BUFFER_SIZE], password[128], passfile[1024], why[256], port[16];
	char *conninfo = NULL;

	if (!make_member_directory(platform, cluster, index, why, sizeof why) ||
	    !local_replication_secret(platform, cluster, password, sizeof password, passfile, sizeof passfile, why,
				      sizeof why)) {
		log_message(LOG_LEVEL_ERROR, cluster->name, NULL, "%s", why);
		return NULL;
	}
	char *basebackup = program(platform, "pg_basebackup");
	char *target = cloning_directory(platform, cluster, index);
	names_slot(slot, sizeof slot, cluster->name, index);
	snprintf(port, sizeof port, "%d", local_member_port(cluster, source));
	pg_conninfo_append(&conninfo, "host", "127.0.0.1");
	pg_conninfo_append(&conninfo, "port", port);
	pg_conninfo_append(&conninfo, "user", REPLICATION_ROLE);
	pg_conninfo_append(&conninfo, "passfile", passfile);
	pg_conninfo_append(&conninfo, "connect_timeout", "10");
	/* named after the member, so that the primary's pg_stat_progress_basebackup, joined
	 * with pg_stat_activity, tells status whose clone it is */
	char member[NAMES_BUFFER_SIZE], application[NAMES_BUFFER_SIZE + 16];
	names_member(member, sizeof member, cluster->name, index);
	names_clone_application(application, sizeof application, member);
	pg_conninfo_append(&conninfo, "application_name", application);
	/* test only: a throttled copy lasts long enough to be watched */
	const char *max_rate = getenv("PGHA_TEST_CLONE_MAX_RATE");
	const char *const argv[] = {basebackup, "--pgdata", target, "--dbname", conninfo, "--wal-method=stream",
				    "--checkpoint=fast", "--slot", slot, "--no-password",
				    max_rate && max_rate[0] ? "--max-rate" : NULL, max_rate, NULL};
	struct proc_job *job = proc_start(event, argv, NULL, NULL, CLONE_TIMEOUT_MS, done, userdata);
	free(conninfo);
	free(basebackup);
	free(target);
	return job;
}

bool local_finish_clone(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			int source, char *why, size_t why_size)
{
	char *data = local_data_directory(platform, cluster, index);
	char *copy = cloning_directory(platform, cluster, index);
	char *inherited = xasprintf("%s/pgha-synchronous.conf", copy);
	bool finished = false;

	/* the primary's own synchronous list came along with the copy */
	unlink(inherited);
	if (!datadir_write_file(copy, "standby.signal", "", why, why_size))
		goto out;
	if (rename(copy, data) < 0) {
		snprintf(why, why_size, "cannot move the copy %s to %s: %s", copy, data, strerror(errno));
		goto out;
	}
	finished = local_write_settings(platform, cluster, index, why, why_size) &&
		   local_write_standby_settings(platform, cluster, index, source, why, why_size);
out:
	free(data);
	free(copy);
	free(inherited);
	return finished;
}

void local_abandon_clone(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	char *copy = cloning_directory(platform, cluster, index);

	if (access(copy, F_OK) == 0) {
		char *aside = datadir_aside_name(copy, "failed");
		if (rename(copy, aside) == 0)
			log_message(LOG_LEVEL_WARNING, cluster->name, NULL, "kept the incomplete copy as %s", aside);
		else
			log_message(LOG_LEVEL_ERROR, cluster->name, NULL, "cannot move the incomplete copy %s aside: %m",
				    copy);
		free(aside);
	}
	free(copy);
}

/* The settings a standby cannot run lower than its primary ran them, as pg_controldata
 * names them, and as postgres does. */
static const struct {
	const char *control, *setting;
} standby_sensitive[] = {
	{"max_connections setting:", "max_connections"},
	{"max_worker_processes setting:", "max_worker_processes"},
	{"max_wal_senders setting:", "max_wal_senders"},
	{"max_prepared_xacts setting:", "max_prepared_transactions"},
	{"max_locks_per_xact setting:", "max_locks_per_transaction"},
};
#define STANDBY_SENSITIVE_COUNT (sizeof standby_sensitive / sizeof standby_sensitive[0])

/* The value a program prints after label on a line of its own, or -1. */
static long value_after(const char *output, const char *label)
{
	const char *found = strstr(output, label);
	return found ? strtol(found + strlen(label), NULL, 10) : -1;
}

/* The value postgres -C prints, among the log lines it may print too (through a pipe
 * its stdout, buffered, comes after them): the line made of digits only; -1 if none. */
static long numeric_line(const char *output)
{
	for (const char *line = output; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != '\0')) {
		size_t digits = strspn(line, "0123456789");
		if (digits > 0 && (line[digits] == '\n' || line[digits] == '\0'))
			return strtol(line, NULL, 10);
	}
	return -1;
}

/* A standby whose pg_control records a higher hot-standby-sensitive value than its
 * configuration files give (the primary lowered it, and the standby has not replayed
 * that yet) refuses to start. It then starts with the recorded values, "-c name=value"
 * for this start only; once it has replayed the primary's change, a restart (decided
 * from pg_settings.source = 'command line') brings it to the configured value. */
static void add_recorded_settings(const struct local_platform *platform, const char *data, const char **argv,
				  size_t *argc, char overrides[][64], const char *cluster, const char *member)
{
	char *controldata = program(platform, "pg_controldata");
	char *postgres = program(platform, "postgres");
	const char *const control_argv[] = {controldata, "-D", data, NULL};
	const char *const c_locale[] = {"LC_ALL=C", NULL};
	struct proc_result control;

	if (proc_run(control_argv, c_locale, NULL, PROGRAM_TIMEOUT_MS, &control)) {
		for (size_t i = 0; i < STANDBY_SENSITIVE_COUNT; i++) {
			long recorded = value_after(control.output, standby_sensitive[i].control);
			const char *const setting_argv[] = {postgres, "-D", data, "-C", standby_sensitive[i].setting, NULL};
			struct proc_result setting;
			if (recorded < 0 || !proc_run(setting_argv, c_locale, NULL, PROGRAM_TIMEOUT_MS, &setting)) {
				if (recorded >= 0)
					proc_result_free(&setting);
				continue;
			}
			long configured = numeric_line(setting.output);
			proc_result_free(&setting);
			if (configured < 0 || recorded <= configured)
				continue;
			snprintf(overrides[i], 64, "%s=%ld", standby_sensitive[i].setting, recorded);
			argv[(*argc)++] = "-c";
			argv[(*argc)++] = overrides[i];
			log_message(LOG_LEVEL_NOTICE, cluster, member,
				    "starting %s with %s until it has replayed its primary's lower %ld", member, overrides[i],
				    configured);
		}
	}
	proc_result_free(&control);
	free(controldata);
	free(postgres);
}

/* A lock file whose postmaster exited but is not reaped yet (its parent is slow to)
 * still passes PostgreSQL's lock check, kill(pid, 0). Once no process of the member is
 * alive, it is stale and goes, so that the member can start again. */
static void remove_stale_lock(const char *path, const char *data)
{
	char why[256];
	char *content = file_read(path, 64 * 1024, NULL, why, sizeof why);
	long pid = content ? strtol(content, NULL, 10) : 0;

	if (pid > 0 && proc_state((pid_t)pid) == 'Z' && each_process_in(data, count_one, NULL) == 0) {
		if (unlink(path) == 0)
			log_info("removed %s: its postmaster %ld has exited and left no process", path, pid);
	}
	free(content);
}

/* The data directory's lock, and the lock of the member's socket. */
static void remove_stale_locks(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	char *data = local_data_directory(platform, cluster, index);
	char *directory = local_member_directory(platform, cluster, index);
	char *pid_file = xasprintf("%s/postmaster.pid", data);
	char *socket_lock = xasprintf("%s/.s.PGSQL.%d.lock", directory, local_member_port(cluster, index));

	remove_stale_lock(pid_file, data);
	remove_stale_lock(socket_lock, data);
	free(data);
	free(directory);
	free(pid_file);
	free(socket_lock);
}

pid_t local_start(const struct local_platform *platform, const struct cluster_config *cluster, int index, char *why,
		  size_t why_size)
{
	char *postgres = program(platform, "postgres");
	char *data = local_data_directory(platform, cluster, index);
	char *directory = local_member_directory(platform, cluster, index);
	char *log_path = member_path(platform, cluster, index, "postgresql.log");
	char overrides[STANDBY_SENSITIVE_COUNT][64], member[NAMES_BUFFER_SIZE];
	const char *argv[4 + 2 * STANDBY_SENSITIVE_COUNT + 1] = {postgres, "-D", data};
	size_t argc = 3;

	names_member(member, sizeof member, cluster->name, index);
	remove_stale_locks(platform, cluster, index);
	if (exists(data, "standby.signal"))
		add_recorded_settings(platform, data, argv, &argc, overrides, cluster->name, member);
	argv[argc] = NULL;
	pid_t pid = proc_spawn_detached(argv, NULL, directory, log_path, why, why_size);

	free(postgres);
	free(data);
	free(directory);
	free(log_path);
	return pid;
}

bool local_stop(pid_t postmaster, char *why, size_t why_size)
{
	if (kill(postmaster, SIGINT) < 0) {
		snprintf(why, why_size, "cannot signal postmaster %ld: %s", (long)postmaster, strerror(errno));
		return false;
	}
	return true;
}

/* Calls found for each live process whose working directory is data (resolved). */
static int each_process_in(const char *data, bool (*found)(pid_t pid, void *context), void *context)
{
	char resolved[4096], link[4096], path[64];
	int count = 0;
	DIR *proc;

	if (!realpath(data, resolved))
		return 0;
	proc = opendir("/proc");
	for (struct dirent *entry; proc && (entry = readdir(proc));) {
		char *end;
		long pid = strtol(entry->d_name, &end, 10);
		if (pid <= 0 || *end != '\0')
			continue;
		snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
		ssize_t length = readlink(path, link, sizeof link - 1);
		if (length <= 0)
			continue; /* gone, a zombie (no working directory), or not ours to see */
		link[length] = '\0';
		if (strcmp(link, resolved) == 0 && found((pid_t)pid, context))
			count++;
	}
	if (proc)
		closedir(proc);
	return count;
}

static bool count_one(pid_t pid, void *context)
{
	(void)pid;
	(void)context;
	return true;
}

int local_count_processes(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	char *data = local_data_directory(platform, cluster, index);
	int count = each_process_in(data, count_one, NULL);
	free(data);
	return count;
}

static bool kill_not_pending(pid_t pid, void *context)
{
	(void)context;
	return !proc_kill_pending(pid);
}

/* Whether every process of a member still alive has SIGKILL waiting on it (pghad's fence
 * sent it): frozen or stuck in the kernel, they cannot run to their end, but none of them
 * will run its own code again, so none will write or send WAL. */
static bool local_all_killed(const struct local_platform *platform, const struct cluster_config *cluster,
			     int index, const struct member_observation *member)
{
	/* the postmaster first, the first killed: SIGKILL ends at once a process that can
	 * run or sleeps interruptibly, so only one in uninterruptible sleep (D: frozen, or
	 * stuck in the kernel) can have it waiting, and /proc/PID/status is not read for
	 * the others at every iteration */
	if (member->postmaster && !member->postmaster_exited &&
	    (member->postmaster_state != 'D' || !proc_kill_pending(member->postmaster)))
		return false;
	char *data = local_data_directory(platform, cluster, index);
	int running = each_process_in(data, kill_not_pending, NULL);
	free(data);
	return running == 0;
}

static bool kill_one(pid_t pid, void *context)
{
	(void)context;
	return kill(pid, SIGKILL) == 0;
}

int local_fence(const struct local_platform *platform, const struct cluster_config *cluster, int index,
		pid_t postmaster, char *why, size_t why_size)
{
	char *data = local_data_directory(platform, cluster, index);
	int killed = 0;

	int failure = 0;

	/* the postmaster first, so that it starts no new child; SIGKILL works on a stopped one */
	if (postmaster > 0 && proc_state(postmaster) != 'Z') {
		if (kill(postmaster, SIGKILL) == 0)
			killed++;
		else
			failure = errno;
	}
	killed += each_process_in(data, kill_one, NULL);
	free(data);
	if (killed == 0 && failure && failure != ESRCH) {
		snprintf(why, why_size, "cannot kill postmaster %ld: %s", (long)postmaster, strerror(failure));
		return -1;
	}
	return killed;
}

/* Whether pid is the process looked for. */
static bool is_pid(pid_t pid, void *context)
{
	return pid == *(const pid_t *)context;
}

bool local_stop_wal_receiver(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			     pid_t receiver, char *why, size_t why_size)
{
	char *data = local_data_directory(platform, cluster, index);
	/* a pid read in the probe may have been reused since: only one of this member's */
	bool ours = receiver > 0 && each_process_in(data, is_pid, &receiver) == 1;
	free(data);
	if (!ours)
		return true; /* it has exited already */
	if (kill(receiver, SIGTERM) != 0 && errno != ESRCH) {
		snprintf(why, why_size, "cannot stop the WAL receiver %ld: %s", (long)receiver, strerror(errno));
		return false;
	}
	/* a stopped receiver (SIGSTOP, a debugger) acts on SIGTERM only once continued; it
	 * can receive nothing more from a fenced primary on its way out */
	char state = proc_state(receiver);
	if (state == 'T' || state == 't')
		kill(receiver, SIGCONT);
	return true;
}

bool local_control_checkpoint(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			      uint64_t *checkpoint_lsn, uint32_t *timeline, bool *shut_down)
{
	char *controldata = program(platform, "pg_controldata");
	char *data = local_data_directory(platform, cluster, index);
	const char *const argv[] = {controldata, "-D", data, NULL};
	const char *const c_locale[] = {"LC_ALL=C", NULL};
	struct proc_result result;
	bool read = false;

	struct entrypoint_control control;
	if (proc_run(argv, c_locale, NULL, PROGRAM_TIMEOUT_MS, &result) && proc_result_succeeded(&result) &&
	    entrypoint_parse_controldata(result.output, &control)) {
		*checkpoint_lsn = control.checkpoint_lsn;
		*timeline = control.timeline;
		*shut_down = control.shut_down;
		read = true;
	}
	proc_result_free(&result);
	free(controldata);
	free(data);
	return read;
}

struct proc_job *local_rewind(const struct local_platform *platform, sd_event *event,
			      const struct cluster_config *cluster, int index, int source, proc_done_fn done,
			      void *userdata)
{
	char port[16];
	char *conninfo = NULL;
	char *rewind = program(platform, "pg_rewind");
	char *data = local_data_directory(platform, cluster, index);
	struct pg_target target = local_admin_target(platform, cluster, source);

	snprintf(port, sizeof port, "%d", target.port);
	pg_conninfo_append(&conninfo, "host", target.host);
	pg_conninfo_append(&conninfo, "port", port);
	pg_conninfo_append(&conninfo, "user", target.user);
	pg_conninfo_append(&conninfo, "dbname", "postgres");
	pg_conninfo_append(&conninfo, "connect_timeout", "10");
	const char *const argv[] = {rewind, "--target-pgdata", data, "--source-server", conninfo, "--progress", NULL};
	remove_stale_locks(platform, cluster, index);
	struct proc_job *job = proc_start(event, argv, NULL, NULL, CLONE_TIMEOUT_MS, done, userdata);
	free(conninfo);
	free(rewind);
	free(data);
	free((char *)target.host);
	return job;
}

bool local_finish_rejoin(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			 int source, char *why, size_t why_size)
{
	char *data = local_data_directory(platform, cluster, index);
	bool finished = false;

	/* pg_rewind copied the source's settings files: this member's own are rewritten, and
	 * a standby runs no synchronous list */
	if (local_write_synchronous_names(platform, cluster, index, "", why, why_size) &&
	    datadir_write_file(data, "standby.signal", "", why, why_size))
		finished = local_write_settings(platform, cluster, index, why, why_size) &&
			   local_write_standby_settings(platform, cluster, index, source, why, why_size);
	free(data);
	return finished;
}

bool local_move_aside(const struct local_platform *platform, const struct cluster_config *cluster, int index,
		      char *moved_to, size_t moved_size, char *why, size_t why_size)
{
	char *data = local_data_directory(platform, cluster, index);
	char *aside = datadir_aside_name(data, "unusable");
	bool moved = rename(data, aside) == 0;

	if (moved)
		snprintf(moved_to, moved_size, "%s", aside);
	else
		snprintf(why, why_size, "cannot move %s aside: %s", data, strerror(errno));
	free(data);
	free(aside);
	return moved;
}

static bool configured(const struct pgha_config *config, const char *name)
{
	for (size_t i = 0; i < config->cluster_count; i++)
		if (strcmp(config->clusters[i].name, name) == 0)
			return true;
	return false;
}

/* Clusters with directories under base_dir but no block in the configuration: their
 * members are stopped, their data kept. Calls found for each, with a stand-in cluster
 * (name only) that the path functions accept. False when the base directory held no
 * name but those of configured clusters (nor could be listed), so that only a change of
 * its entries, or of the configuration, can bring a removed cluster. */
static bool removed_clusters(const struct local_platform *platform,
			     void (*found)(const struct cluster_config *removed, void *context), void *context)
{
	DIR *listing = opendir(platform->config->platform.local.base_dir);
	bool others = !listing && errno != ENOENT;

	for (struct dirent *entry; listing && (entry = readdir(listing));) {
		/* only directories named like a cluster pgha could have made */
		if (!names_is_dns_label(entry->d_name) || configured(platform->config, entry->d_name))
			continue;
		others = true;
		struct cluster_config removed = {.name = entry->d_name};
		if (local_highest_member(platform, &removed) >= 0)
			found(&removed, context);
	}
	if (listing)
		closedir(listing);
	return others;
}

/* Postmasters already asked to stop: asked once, not at every iteration while they shut down. */
#define ASKED_MAX 64
static pid_t asked_to_stop[ASKED_MAX]; /* a ring: the oldest request is forgotten first */
static size_t asked_next;

static bool ask_once(pid_t pid)
{
	for (size_t i = 0; i < ASKED_MAX; i++)
		if (asked_to_stop[i] == pid)
			return false;
	asked_to_stop[asked_next] = pid;
	asked_next = (asked_next + 1) % ASKED_MAX;
	return true;
}

int local_stop_removed_cluster(const struct local_platform *platform, const struct cluster_config *removed)
{
	int highest = local_highest_member(platform, removed), running = 0;
	bool primary_running = false;
	char why[256];

	for (int i = 0; i <= highest; i++) {
		struct local_member_state state;
		local_member_state(platform, removed, i, &state);
		primary_running |= state.postmaster && !state.standby_signal;
	}
	for (int i = 0; i <= highest; i++) {
		struct local_member_state state;
		local_member_state(platform, removed, i, &state);
		if (!state.postmaster)
			continue;
		running++;
		if (primary_running && state.standby_signal)
			continue; /* standbys wait for the primary to be down */
		if (proc_state(state.postmaster) == 'Z' || !ask_once(state.postmaster))
			continue; /* already exited but not reaped, or already asked */
		char member[NAMES_BUFFER_SIZE];
		names_member(member, sizeof member, removed->name, i);
		if (local_stop(state.postmaster, why, sizeof why))
			log_message(LOG_LEVEL_NOTICE, removed->name, member,
				    "stopping %s: cluster %s is no longer in the configuration (its data is kept)", member,
				    removed->name);
		else
			log_message(LOG_LEVEL_ERROR, removed->name, member, "%s", why);
	}
	return running;
}

static int remove_entry(const char *path, const struct stat *status, int type, struct FTW *position)
{
	(void)status;
	(void)position;
	/* FTW_PHYS: a symbolic link is removed, never followed */
	return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static bool remove_tree(const char *path, char *why, size_t why_size)
{
	if (access(path, F_OK) != 0)
		return true;
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		snprintf(why, why_size, "cannot remove all of %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

bool local_purge_cluster(const struct local_platform *platform, const char *name, char *why, size_t why_size)
{
	if (!names_is_dns_label(name)) {
		snprintf(why, why_size, "\"%s\" is not a cluster name", name);
		return false;
	}
	if (configured(platform->config, name)) {
		snprintf(why, why_size, "cluster %s is in the configuration: remove its block and reload first", name);
		return false;
	}
	struct cluster_config removed = {.name = (char *)name};
	int highest = local_highest_member(platform, &removed);
	char *directory = xasprintf("%s/%s", platform->config->platform.local.base_dir, name);
	char *secrets = secret_directory(platform, &removed);
	bool purged = false;

	if (highest < 0 && access(directory, F_OK) != 0 && access(secrets, F_OK) != 0) {
		snprintf(why, why_size, "cluster %s has no data here", name);
		goto out;
	}
	for (int i = 0; i <= highest; i++) {
		struct local_member_state state;
		local_member_state(platform, &removed, i, &state);
		if (state.postmaster) {
			snprintf(why, why_size, "member %s-%d still runs (pid %ld): pghad stops the members of a removed "
				 "cluster; try again once they are down", name, i, (long)state.postmaster);
			goto out;
		}
	}
	purged = remove_tree(directory, why, why_size) && remove_tree(secrets, why, why_size);
out:
	free(directory);
	free(secrets);
	return purged;
}

/* The member's data directory last moved aside (local_move_aside): the newest of its
 * DATA.unusable.STAMP siblings, whose stamps sort as they were made; NULL when none. */
static char *local_kept_aside(const struct local_platform *platform, const struct cluster_config *cluster, int index)
{
	char *data = local_data_directory(platform, cluster, index);
	char *slash = strrchr(data, '/');
	char *newest = NULL;

	if (slash) {
		*slash = '\0';
		char *prefix = xasprintf("%s.unusable.", slash + 1);
		DIR *directory = opendir(data);
		struct dirent *entry;
		while (directory && (entry = readdir(directory)))
			if (strncmp(entry->d_name, prefix, strlen(prefix)) == 0 &&
			    (!newest || strcmp(entry->d_name, newest) > 0)) {
				free(newest);
				newest = xstrdup(entry->d_name);
			}
		if (directory)
			closedir(directory);
		free(prefix);
		if (newest) {
			char *path = xasprintf("%s/%s", data, newest);
			free(newest);
			newest = path;
		}
	}
	free(data);
	return newest;
}

/* ---- what pghad remembers between iterations ---- */

/* Of a member: each item a shortcut past a read, which a change on disk or in /proc
 * voids, never a truth of its own. */
struct member_memory {
	struct member_paths paths;              /* made at its first look, kept: they never change */
	struct datadir_verified postmaster;     /* found running postgres: its command is not read again */
	char *settings;                         /* its pgha.conf as the configuration renders it (NULL: not yet) */
	struct file_identity settings_file;     /* pgha.conf when it last held that text */
	struct file_identity directory;         /* its directory when kept_aside was found */
	char *kept_aside;                       /* local_kept_aside then (NULL: none) */
};

/* Of a configured cluster: its members by index, as many as were looked at. */
struct cluster_memory {
	char *name;
	const struct cluster_config *config; /* the configuration its settings were rendered from */
	char *owned_settings;                /* local_owned_settings' text[] for it (NULL: not yet) */
	char *path;                          /* its directory, BASE/CLUSTER */
	struct file_identity directory;      /* its directory when highest was found */
	int highest;                         /* local_highest_member then */
	char *state_path;                    /* its state file, once its directory was made */
	struct file_identity state_file;     /* that file when it last held the state pghad holds */
	size_t count;
	struct member_memory *members;
};

/* One per configured cluster at most: a removed cluster is forgotten at the reload that
 * removes it (local_set_config). */
struct local_memory {
	size_t count;
	struct cluster_memory *clusters;
	/* the configuration the service file was last found to hold (NULL: none, or not
	 * since the last reload), and the file's identity then (write_routes) */
	const struct pgha_config *routes_config;
	struct file_identity routes_file;
	/* the base directory when its listing held no name but those of configured clusters
	 * (unknown: it did, or not since the last reload; stop_removed_clusters) */
	struct file_identity base_directory;
};

static void forget_settings(struct member_memory *member)
{
	free(member->settings);
	member->settings = NULL;
	member->settings_file = (struct file_identity){0};
}

static void forget_cluster(struct cluster_memory *cluster)
{
	for (size_t i = 0; i < cluster->count; i++) {
		forget_settings(&cluster->members[i]);
		free(cluster->members[i].kept_aside);
		datadir_verified_forget(&cluster->members[i].postmaster);
		member_paths_free(&cluster->members[i].paths);
	}
	free(cluster->members);
	free(cluster->name);
	free(cluster->owned_settings);
	free(cluster->path);
	free(cluster->state_path);
}

/* What is remembered of cluster, made when new; NULL when the platform remembers nothing. */
static struct cluster_memory *cluster_memory(const struct local_platform *platform,
					     const struct cluster_config *cluster)
{
	struct local_memory *memory = platform->memory;
	struct cluster_memory *found = NULL;

	if (!memory)
		return NULL;
	/* by the configuration first, one name compared rather than one per cluster (each
	 * holds its own cluster's, or NULL since a reload; the name, should a cluster of a
	 * configuration since freed ever be passed) */
	for (size_t i = 0; i < memory->count && !found; i++)
		if (memory->clusters[i].config == cluster && strcmp(memory->clusters[i].name, cluster->name) == 0)
			found = &memory->clusters[i];
	for (size_t i = 0; i < memory->count && !found; i++)
		if (strcmp(memory->clusters[i].name, cluster->name) == 0)
			found = &memory->clusters[i];
	if (!found) {
		memory->clusters = xreallocarray(memory->clusters, memory->count + 1, sizeof *memory->clusters);
		found = &memory->clusters[memory->count++];
		*found = (struct cluster_memory){
			.name = xstrdup(cluster->name),
			.config = cluster,
			.path = xasprintf("%s/%s", platform->config->platform.local.base_dir, cluster->name),
		};
	}
	/* rendered from another configuration: rendered again (and the state file, whose
	 * directory it names, looked for again) */
	if (found->config != cluster) {
		for (size_t i = 0; i < found->count; i++)
			forget_settings(&found->members[i]);
		free(found->owned_settings);
		found->owned_settings = NULL;
		found->config = cluster;
		free(found->state_path);
		found->state_path = NULL;
		found->state_file = (struct file_identity){0};
	}
	return found;
}

/* What is remembered of member index of cluster (NULL: nothing), made when new. */
static struct member_memory *member_memory(const struct local_platform *platform, struct cluster_memory *cluster,
					   int index)
{
	/* no more than local_highest_member counts: an index read from elsewhere (a member's
	 * name) makes no huge array */
	if (!cluster || index < 0 || index >= 1000)
		return NULL;
	if ((size_t)index >= cluster->count) {
		cluster->members = xreallocarray(cluster->members, (size_t)index + 1, sizeof *cluster->members);
		memset(&cluster->members[cluster->count], 0, ((size_t)index + 1 - cluster->count) * sizeof *cluster->members);
		cluster->count = (size_t)index + 1;
	}
	struct member_memory *member = &cluster->members[index];
	if (!member->paths.directory)
		member_paths_make(&member->paths, platform, cluster->name, index);
	return member;
}

/* local_highest_member, listed again only once the cluster's directory changed (a
 * member's directory made or removed changes its modification time). */
static int highest_member(const struct local_platform *platform, const struct cluster_config *cluster,
			  struct cluster_memory *memory)
{
	if (!memory)
		return local_highest_member(platform, cluster);
	struct file_identity now;
	file_identity_read(memory->path, &now);
	if (!file_identity_unchanged(&memory->directory, &now)) {
		memory->highest = local_highest_member(platform, cluster);
		memory->directory = now; /* looked at before the listing: a change during it is seen next time */
	}
	return memory->highest;
}

/* local_kept_aside, listed again only once the member's directory changed (a move
 * aside renames into it). A new string or NULL. */
static char *kept_aside(const struct local_platform *platform, const struct cluster_config *cluster, int index,
			struct member_memory *memory)
{
	if (!memory)
		return local_kept_aside(platform, cluster, index);
	struct file_identity now;
	file_identity_read(memory->paths.directory, &now);
	if (!file_identity_unchanged(&memory->directory, &now)) {
		free(memory->kept_aside);
		memory->kept_aside = local_kept_aside(platform, cluster, index);
		memory->directory = now;
	}
	return memory->kept_aside ? xstrdup(memory->kept_aside) : NULL;
}

/* ---- the platform interface (platform.h) ---- */

/* The state of the local platform as the interface holds it. */
static struct local_platform *local_of(struct platform *platform)
{
	return platform->state;
}

static void on_program_done(const struct proc_result *result, void *userdata)
{
	struct operation *operation = userdata;
	struct actor *actor = operation->actor;
	const struct local_platform *local = local_of(actor_platform(actor));
	const struct cluster_config *cluster = actor_cluster(actor, operation->cluster);
	char outcome[256], why[1024] = "";

	operation->active = false;
	operation->job = NULL;
	proc_result_describe(result, outcome, sizeof outcome);
	if (!cluster) {
		log_message(LOG_LEVEL_WARNING, operation->cluster, NULL, "%s of member %d ended (%s) after its cluster "
			    "left the configuration", operation_names[operation->kind], operation->index, outcome);
		return;
	}
	bool succeeded = proc_result_succeeded(result);
	if (succeeded && operation->kind == OPERATION_INITIALIZE)
		succeeded = local_finish_initialize(local, cluster, operation->index, why, sizeof why);
	else if (succeeded && operation->kind == OPERATION_CLONE)
		succeeded = local_finish_clone(local, cluster, operation->index, operation->source, why,
					       sizeof why);
	else if (succeeded && operation->kind == OPERATION_REJOIN)
		succeeded = local_finish_rejoin(local, cluster, operation->index, operation->source, why,
						sizeof why);
	else
		snprintf(why, sizeof why, "%s; its output ends with: %.300s", outcome,
			 result->output_length > 300 ? result->output + result->output_length - 300 : result->output);
	if (!succeeded && operation->kind == OPERATION_CLONE)
		local_abandon_clone(local, cluster, operation->index);
	if (!succeeded && operation->kind == OPERATION_REJOIN) {
		/* its directory is kept aside, never deleted; the member is cloned afresh */
		char moved[1024], aside_why[512];
		if (local_move_aside(local, cluster, operation->index, moved, sizeof moved, aside_why,
				     sizeof aside_why))
			actor_finish(actor, operation, LOG_LEVEL_WARNING, false,
				     "rejoin failed (%s); its data directory is kept as %s and it will be cloned again", why,
				     moved);
		else
			actor_finish(actor, operation, LOG_LEVEL_ERROR, false, "rejoin failed (%s), and %s", why, aside_why);
		return;
	}
	if (succeeded)
		actor_finish(actor, operation, LOG_LEVEL_NOTICE, true, "%s finished in %lld ms",
			     operation_names[operation->kind], result->elapsed_ms);
	else
		actor_finish(actor, operation, LOG_LEVEL_ERROR, false, "%s failed: %s", operation_names[operation->kind],
			     why);
}


/* A fast shutdown, followed by nothing (stop) or by a start (restart, see settle). */
static void stop_member(struct actor *actor, const struct cluster_config *cluster,
			const struct cluster_observation *observation, int index, enum operation_kind kind)
{
	const struct member_observation *member = observation_member(observation, index);
	char why[512] = "";

	if (member && member->postmaster && local_stop(member->postmaster, why, sizeof why))
		actor_begin(actor, cluster->name, index, kind, -1);
	else if (why[0])
		actor_report(actor, LOG_LEVEL_ERROR, cluster->name, index, "%s failed: %s", operation_names[kind], why);
}


/* A member starts from the settings the configuration asks for now. */
static void start(const struct local_platform *local, struct actor *actor, const struct cluster_config *cluster, int index)
{
	char why[512];
	pid_t pid = -1;

	if (local_write_settings(local, cluster, index, why, sizeof why))
		pid = local_start(local, cluster, index, why, sizeof why);
	if (pid > 0)
		actor_begin(actor, cluster->name, index, OPERATION_START, -1)->postmaster = pid;
	else
		actor_report(actor, LOG_LEVEL_ERROR, cluster->name, index, "start failed: %s", why);
}

/* pg_rewind of a stopped member from source, as a program on the loop. */
static void rewind_member(const struct local_platform *local, struct actor *actor, const struct cluster_config *cluster,
			  int index, int source)
{
	struct operation *operation = actor_begin(actor, cluster->name, index, OPERATION_REJOIN, source);
	operation->job = local_rewind(local, actor_event(actor), cluster, index, source, on_program_done, operation);
	operation->active = operation->job != NULL;
}

static bool local_act(struct platform *platform, struct actor *actor, const struct cluster_config *cluster,
		      const struct cluster_observation *observation, const struct action *action)
{
	const struct local_platform *local = local_of(platform);
	const char *name = cluster->name;
	char why[512] = "";
	struct operation *operation;

	switch (action->type) {
	case ACTION_INITIALIZE:
		operation = actor_begin(actor, name, action->member, OPERATION_INITIALIZE, -1);
		operation->job = local_initialize(local, actor_event(actor), cluster, action->member, on_program_done,
						  operation);
		operation->active = operation->job != NULL;
		break;
	case ACTION_CLONE:
		operation = actor_begin(actor, name, action->member, OPERATION_CLONE, action->source);
		operation->job = local_clone(local, actor_event(actor), cluster, action->member, action->source,
					     on_program_done, operation);
		operation->active = operation->job != NULL;
		break;
	case ACTION_MOVE_ASIDE: {
		char moved[1024];
		if (local_move_aside(local, cluster, action->member, moved, sizeof moved, why, sizeof why))
			actor_report(actor, LOG_LEVEL_WARNING, name, action->member, "unusable data directory kept as %s", moved);
		else
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		break;
	}
	case ACTION_START:
		start(local, actor, cluster, action->member);
		break;
	case ACTION_CONFIGURE:
		if (!local_write_settings(local, cluster, action->member, why, sizeof why))
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		else
			actor_reload(actor, cluster, action->member);
		break;
	case ACTION_RESTART:
		stop_member(actor, cluster, observation, action->member, OPERATION_RESTART);
		break;
	case ACTION_STOP:
		stop_member(actor, cluster, observation, action->member, OPERATION_STOP);
		break;
	case ACTION_FOLLOW:
		if (!local_write_standby_settings(local, cluster, action->member, action->source, why, sizeof why))
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		else
			actor_reload(actor, cluster, action->member);
		break;
	case ACTION_SET_SYNCHRONOUS:
		/* the daemon recorded the new list as intent before this runs */
		if (!local_write_synchronous_names(local, cluster, action->member, action->text, why, sizeof why))
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "%s", why);
		else
			actor_reload(actor, cluster, action->member);
		break;
	case ACTION_FENCE: {
		const struct member_observation *member = observation_member(observation, action->member);
		int killed = local_fence(local, cluster, action->member, member ? member->postmaster : 0, why,
					 sizeof why);
		if (killed < 0)
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "fencing failed: %s", why);
		else
			actor_report(actor, LOG_LEVEL_WARNING, name, action->member, "fenced: %d process%s killed", killed,
			       killed == 1 ? "" : "es");
		break;
	}
	case ACTION_CUT: {
		/* first no upstream to start a receiver for, then the receiver ended: the
		 * startup process reloads before it needs WAL again, whatever replay waits on;
		 * the sessions are ended too, so that a replay conflict does not hold back the
		 * promotion of this standby, should it be chosen */
		const struct member_observation *member = observation_member(observation, action->member);
		if (!local_write_standby_settings(local, cluster, action->member, -1, why, sizeof why) ||
		    !actor_reload_ending_sessions(actor, cluster, action->member))
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "cut failed: %s", why[0] ? why : "no reload");
		else if (member && !local_stop_wal_receiver(local, cluster, action->member, member->receiver_pid,
							     why, sizeof why))
			actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "cut failed: %s", why);
		break;
	}
	case ACTION_REJOIN: {
		/* a diverged standby still runs: it stops first (a fast shutdown, clean as
		 * pg_rewind wants it), and the rewind starts once it is down (settle) */
		const struct member_observation *member = observation_member(observation, action->member);
		if (member && member->postmaster && !member->postmaster_exited) {
			if (local_stop(member->postmaster, why, sizeof why))
				actor_begin(actor, name, action->member, OPERATION_REJOIN, action->source)->stopping = true;
			else
				actor_report(actor, LOG_LEVEL_ERROR, name, action->member, "stopping it to rewind failed: %s", why);
			break;
		}
		rewind_member(local, actor, cluster, action->member, action->source);
		break;
	}
	case ACTION_RESET_OVERRIDES:
	case ACTION_CREATE_REPLICATION_ROLE:
	case ACTION_ALTER_REPLICATION_ROLE:
	case ACTION_CREATE_SLOT:
	case ACTION_DROP_SLOT:
	case ACTION_PROMOTE:
		return false;
	}
	return true;
}

static int local_open(struct platform *platform, const struct pgha_config *config)
{
	struct local_platform *local = xcalloc(1, sizeof *local);
	platform->state = local;
	if (!local_platform_init(local, config))
		return PGHA_EXIT_POSTGRESQL;
	local->memory = xcalloc(1, sizeof *local->memory);
	return PGHA_EXIT_OK;
}

static void local_close(struct platform *platform)
{
	struct local_platform *local = local_of(platform);
	if (local && local->memory) {
		for (size_t i = 0; i < local->memory->count; i++)
			forget_cluster(&local->memory->clusters[i]);
		free(local->memory->clusters);
		free(local->memory);
	}
	free(platform->state);
	platform->state = NULL;
}

static void local_set_config(struct platform *platform, const struct pgha_config *config)
{
	struct local_platform *local = local_of(platform);
	struct local_memory *memory = local->memory;

	local->config = config; /* the platform's own options cannot change on reload */
	/* removed clusters are forgotten; what the others' old configuration gave is
	 * forgotten at their next look (cluster_memory: the old one is freed already, and
	 * the new one may be at its address) */
	for (size_t i = 0; memory && i < memory->count;) {
		struct cluster_memory *cluster = &memory->clusters[i];
		if (!configured(config, cluster->name)) {
			forget_cluster(cluster);
			memory->clusters[i] = memory->clusters[--memory->count];
			continue;
		}
		cluster->config = NULL;
		i++;
	}
	if (memory) {
		memory->routes_config = NULL;
		memory->base_directory = (struct file_identity){0}; /* a cluster removed now is listed */
	}
}

static bool local_refresh(struct platform *platform)
{
	(void)platform;
	return true;
}

static void local_observe(struct platform *platform, const struct cluster_config *cluster,
			  struct cluster_observation *observation)
{
	const struct local_platform *local = local_of(platform);
	struct cluster_memory *memory = cluster_memory(local, cluster);
	int highest = highest_member(local, cluster, memory);
	int count = highest + 1 > cluster->replicas ? highest + 1 : cluster->replicas;

	observation->count = (size_t)count;
	observation->now_ms = observation_clock_ms();
	observation->members = xcalloc(observation->count, sizeof *observation->members);
	for (int i = 0; i < count; i++) {
		struct member_observation *member = &observation->members[i];
		struct local_member_state state;
		struct member_memory *remembered = member_memory(local, memory, i);
		struct member_paths made = {0};
		const struct member_paths *paths = remembered ? &remembered->paths : &made;
		if (!remembered)
			member_paths_make(&made, local, cluster->name, i);
		member->index = i;
		member->upstream = -1;
		names_member(member->name, sizeof member->name, cluster->name, i);
		member_state(paths, remembered ? &remembered->postmaster : NULL, &state);
		member->data_exists = state.data_exists;
		member->data_unusable = state.data_unusable;
		member->standby_signal = state.standby_signal;
		member->postmaster = state.postmaster;
		member->postmaster_exited = state.postmaster_exited;
		if (member->postmaster && !member->postmaster_exited)
			member->postmaster_state = state.postmaster_state;
		/* asleep: where (observe.c checks a postmaster in its loop less often) */
		if (member->postmaster_state == 'S') {
			struct datadir_verified *verified = remembered ? &remembered->postmaster : NULL;
			enum proc_wait wait = verified && verified->process.open && verified->pid == member->postmaster
						      ? proc_watch_wait(&verified->process)
						      : proc_wait(member->postmaster);
			member->postmaster_wait = wait == PROC_WAIT_DESCRIPTORS ? POSTMASTER_WAIT_CONNECTIONS
						  : wait == PROC_WAIT_OTHER     ? POSTMASTER_WAIT_ELSEWHERE
										: POSTMASTER_WAIT_UNKNOWN;
		}
		member->settings_current = !member->data_exists ||
					   settings_current(local, cluster, i, paths->settings,
							    remembered ? &remembered->settings : NULL,
							    remembered ? &remembered->settings_file : NULL);
		/* counted before the probes: when none is left, nothing the probes see can
		 * change because of this member any more (a failover relies on it) */
		member->live_processes = member->postmaster && !member->postmaster_exited
						 ? 1
						 : local_count_processes(local, cluster, i);
		/* killed but not ended (frozen, stuck in the kernel): a failover need not wait
		 * for its end, nothing else starts on its data meanwhile */
		member->fenced = member->live_processes &&
				 local_all_killed(local, cluster, i, member);
		if (member->data_exists && !member->standby_signal && !member->live_processes)
			local_control_checkpoint(local, cluster, i, &member->checkpoint_lsn, &member->timeline,
						 &member->shut_down);
		member_paths_free(&made);
	}
}

static bool local_target(struct platform *platform, const struct cluster_config *cluster, int index,
			 const struct member_observation *member, struct pg_target *target, char *why, size_t why_size)
{
	const struct local_platform *local = local_of(platform);
	struct member_memory *remembered = member_memory(local, cluster_memory(local, cluster), index);
	(void)member;
	(void)why;
	(void)why_size;
	/* the socket's directory kept in the member's memory, copied: the caller frees it */
	*target = remembered ? admin_target_in(local, cluster, index, xstrdup(remembered->paths.directory))
			     : local_admin_target(local, cluster, index);
	return true;
}

static void local_execute(struct platform *platform, struct pg_request *requests, size_t count, int timeout_ms)
{
	(void)platform;
	pg_execute_all(requests, count, timeout_ms);
}

static struct pg_batch *local_execute_start(struct platform *platform, sd_event *event, struct pg_request *requests,
					 size_t count, int timeout_ms, pg_batch_done_fn done, void *context)
{
	(void)platform;
	return pg_execute_start(event, requests, count, timeout_ms, done, context);
}

/* The settings pgha writes itself, whatever the configuration says. */
static const char *const owned_settings[] = {
	"port", "listen_addresses", "unix_socket_directories", "cluster_name", "hot_standby", "wal_log_hints",
	"max_wal_senders", "max_replication_slots", "synchronous_standby_names", "primary_conninfo",
	"primary_slot_name", NULL,
};

/* The names of the settings pgha owns or configures, as a text[] parameter. PostgreSQL
 * reports names in lower case; configured ones may be written in any case. */
static char *owned_settings_array(const struct cluster_config *cluster)
{
	size_t owned = 0, count;
	while (owned_settings[owned])
		owned++;
	count = owned + cluster->postgresql.parameters.count;
	char **names = xcalloc(count, sizeof *names);
	for (size_t i = 0; i < count; i++) {
		names[i] = xstrdup(i < owned ? owned_settings[i] : cluster->postgresql.parameters.items[i - owned].name);
		for (char *c = names[i]; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	char *array = pg_text_array((const char *const *)names, count);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return array;
}

/* owned_settings_array, a new string, built once per configuration of the cluster (it
 * was built for every member probed at every iteration). */
static char *local_owned_settings(struct platform *platform, const struct cluster_config *cluster)
{
	struct cluster_memory *memory = cluster_memory(local_of(platform), cluster);
	if (!memory)
		return owned_settings_array(cluster);
	if (!memory->owned_settings)
		memory->owned_settings = owned_settings_array(cluster);
	return xstrdup(memory->owned_settings);
}

static int local_upstream(struct platform *platform, const struct cluster_config *cluster,
			  const struct cluster_observation *observation, const char *primary_conninfo)
{
	(void)platform;
	(void)observation;
	return local_upstream_of(cluster, primary_conninfo);
}

static char *local_conninfo(struct platform *platform, const struct cluster_config *cluster,
			    const struct cluster_observation *observation, int index, int upstream)
{
	(void)observation;
	return local_primary_conninfo(local_of(platform), cluster, index, upstream);
}

/* STATE_DIR/CLUSTER/state.json, a new string; NULL (why written) when the directory
 * cannot be made. */
static char *state_path(const struct local_platform *local, const struct cluster_config *cluster, char *why,
			size_t why_size)
{
	char *directory = local_cluster_state_directory(local, cluster, why, why_size);
	char *path = directory ? xasprintf("%s/state.json", directory) : NULL;
	free(directory);
	return path;
}

/* The state file is the truth: what pghactl pause wrote, or what a previous pghad left, is
 * what decides. It is read again whenever it may have changed: unless its identity is the
 * one it had when pghad last read or wrote it (file_identity_unchanged: the same inode,
 * which a write by rename replaces, the same times and size, and not changed within the
 * second before), in which case the state pghad holds (the daemon passes it in state) is
 * the file's. Reading and parsing it, with the two mkdir of its directory, for every
 * cluster at every iteration was about 7 % of pghad's system calls at rest (strace -c,
 * 20 clusters). */
static enum platform_hold local_load_state(struct platform *platform, const struct cluster_config *cluster,
					   struct cluster_state *state, char *why, size_t why_size)
{
	const struct local_platform *local = local_of(platform);
	struct cluster_memory *memory = cluster_memory(local, cluster);
	struct file_identity now;

	if (memory && memory->state_path && memory->state_file.known &&
	    file_identity_read(memory->state_path, &now) && file_identity_unchanged(&memory->state_file, &now))
		return PLATFORM_HOLD_ACTS;
	char *path = state_path(local, cluster, why, why_size);
	/* looked at before it is read: a change while it is read is seen the next time */
	bool known = path && memory && file_identity_read(path, &now);
	bool loaded = path && state_load(path, state, why, why_size);
	if (memory) {
		memory->state_file = loaded && known ? now : (struct file_identity){0};
		if (path && !memory->state_path)
			memory->state_path = xstrdup(path);
	}
	free(path);
	return loaded ? PLATFORM_HOLD_ACTS : PLATFORM_HOLD_UNREADABLE;
}

static bool local_save_state(struct platform *platform, const struct cluster_config *cluster,
			     const struct cluster_state *state, char *why, size_t why_size)
{
	const struct local_platform *local = local_of(platform);
	struct cluster_memory *memory = cluster_memory(local, cluster);
	char *path = state_path(local, cluster, why, why_size);
	bool saved = path && state_save(path, state, why, why_size);
	/* what it holds now is what pghad holds (the daemon keeps what it saved) */
	if (memory && (!saved || !file_identity_read(path, &memory->state_file)))
		memory->state_file = (struct file_identity){0};
	free(path);
	return saved;
}

/* The local platform has no lease: its state file is read each iteration, and nothing
 * can be lost between two actions. */
static bool local_may_act(struct platform *platform, const struct cluster_config *cluster, char *why,
			  size_t why_size)
{
	(void)platform;
	(void)cluster;
	(void)why;
	(void)why_size;
	return true;
}

static bool local_password(struct platform *platform, const struct cluster_config *cluster, char *password,
			   size_t password_size, char *why, size_t why_size)
{
	char passfile[1024];
	return local_replication_secret(local_of(platform), cluster, password, password_size, passfile,
					sizeof passfile, why, why_size);
}

static bool local_gone(const struct member_observation *member)
{
	return member->postmaster == 0;
}

static bool local_failed(struct platform *platform, const struct operation *operation,
			 const struct member_observation *member, char *why, size_t why_size)
{
	(void)platform;
	(void)member;
	char state = operation->kind == OPERATION_START ? proc_state(operation->postmaster) : 'R';
	if (state != 0 && state != 'Z')
		return false;
	/* PostgreSQL refused to start */
	snprintf(why, why_size, "the postmaster (pid %ld) exited; see postgresql.log in its directory",
		 (long)operation->postmaster);
	return true;
}

static bool local_over(struct platform *platform, struct actor *actor, const struct cluster_config *cluster,
		       const struct operation *operation)
{
	char why[512];
	/* a primary follows no one: its standby settings go (read at its next start) */
	if (operation->kind == OPERATION_PROMOTE &&
	    !local_write_standby_settings(local_of(platform), cluster, operation->index, -1, why, sizeof why))
		actor_report(actor, LOG_LEVEL_WARNING, cluster->name, operation->index, "%s", why);
	return false;
}

static void local_publish(struct platform *platform, const struct cluster_config *cluster,
			  const struct cluster_observation *observation)
{
	/* the routes (the service file) follow the configuration, not what was observed */
	(void)platform;
	(void)cluster;
	(void)observation;
}

/* Asleep (S) in select, poll or epoll, as an idle backend waits in its loop for its
 * client's next message (a backend waiting for a lock sleeps elsewhere, on a semaphore;
 * one stopped or frozen is not S, or waits in the freezer). */
static bool local_backend_waits(struct platform *platform, struct proc_watch *watch, pid_t backend)
{
	char state;
	unsigned long long start_time;

	(void)platform;
	if (backend <= 0 || ((!watch->open || watch->pid != backend) && !proc_watch_open(watch, backend)))
		return false;
	return proc_watch_stat(watch, &state, &start_time) && state == 'S' && proc_watch_wait(watch) == PROC_WAIT_DESCRIPTORS;
}

static pid_t local_watch(struct platform *platform, const struct member_observation *primary)
{
	(void)platform;
	return primary->postmaster;
}

/* Members of clusters removed from the configuration are stopped, their data kept. */
static void stop_removed(const struct cluster_config *removed, void *context)
{
	int running = local_stop_removed_cluster(context, removed);
	if (running)
		log_message(LOG_LEVEL_DEBUG, removed->name, NULL, "removed cluster: %d member%s still running", running,
			    running == 1 ? "" : "s");
}

/* The libpq service file (CLUSTER-rw, CLUSTER-ro) follows the configuration; it is
 * written only when its content changes. It is rendered and compared only when the
 * configuration or the file may have changed: while the configuration is the one it was
 * last found to hold (memory, NULL: no memory), and its identity is the one it had then
 * (file_identity_unchanged: an edit, a deletion, a rename or a chmod changes it), it
 * still holds it. Rendering and reading it at every iteration were 4 % of pghad's CPU at
 * rest with 100 clusters. */
static void write_routes(struct local_memory *memory, const struct pgha_config *config)
{
	char path[4096], why[512];
	bool changed = false;
	struct file_identity now;

	if (!routes_service_file_path(config, path, sizeof path))
		return;
	/* looked at before it is read: a change while it is read is seen the next time (the
	 * link itself: one put in its place is another file) */
	file_identity_read_link(path, &now, NULL);
	if (memory && memory->routes_config == config && file_identity_unchanged(&memory->routes_file, &now))
		return;
	if (memory)
		memory->routes_config = NULL;
	if (mkdir(config->daemon.state_dir, 0755) < 0 && errno != EEXIST) {
		log_error("cannot create %s: %m", config->daemon.state_dir);
		return;
	}
	if (!routes_write_service_file(config, path, &changed, why, sizeof why)) {
		log_error("service file: %s", why);
	} else if (changed) {
		/* its identity is another now: it is compared again at the next iteration */
		log_info("service file %s written", path);
	} else if (memory) {
		memory->routes_config = config;
		memory->routes_file = now;
	}
}

/* The members of removed clusters stopped (stop_removed). The base directory is listed
 * again only when a removed cluster may be in it: unless it held no name but those of
 * configured clusters, and its identity is unchanged since (a directory made, removed
 * or renamed in it changes it), under the same configuration (local_set_config forgets
 * it). Listing it, and looking each name up among the configured clusters, at every
 * iteration was 1.2 % of pghad's CPU at rest with 20 clusters, and grows with their
 * square. */
static void stop_removed_clusters(struct local_platform *local)
{
	struct local_memory *memory = local->memory;
	struct file_identity now;

	if (memory) {
		/* looked at before it is listed: a change while it is listed is seen the next time */
		file_identity_read(local->config->platform.local.base_dir, &now);
		if (file_identity_unchanged(&memory->base_directory, &now))
			return;
	}
	bool others = removed_clusters(local, stop_removed, local);
	if (memory)
		memory->base_directory = others ? (struct file_identity){0} : now;
}

static void local_finish(struct platform *platform, const struct pgha_config *config)
{
	stop_removed_clusters(local_of(platform));
	write_routes(local_of(platform)->memory, config);
}

static bool local_has_data(struct platform *platform, const struct cluster_config *cluster)
{
	return local_highest_member(local_of(platform), cluster) >= 0;
}

static bool local_purge(struct platform *platform, const char *name, char *why, size_t why_size)
{
	return local_purge_cluster(local_of(platform), name, why, why_size);
}

static int local_port(const struct platform *platform, const struct cluster_config *cluster, int index)
{
	(void)platform;
	return local_member_port(cluster, index);
}

static void local_status(const struct platform *platform, json_t *reply)
{
	(void)platform;
	(void)reply;
}

static void local_cluster_status(const struct platform *platform, const struct cluster_config *cluster, json_t *reply)
{
	const struct local_platform *local = platform->state;
	struct cluster_memory *memory = cluster_memory(local, cluster);
	/* each member: its data directory last kept aside, "" when none (as on Kubernetes) */
	size_t i;
	json_t *member;
	json_array_foreach(json_object_get(reply, "members"), i, member) {
		const char *name = json_string_value(json_object_get(member, "name"));
		size_t length = strlen(cluster->name);
		char *kept = NULL;
		if (name && strncmp(name, cluster->name, length) == 0 && name[length] == '-')
			kept = kept_aside(local, cluster, atoi(name + length + 1),
					  member_memory(local, memory, atoi(name + length + 1)));
		json_object_set_new(member, "kept_aside", jsonpack_text(kept ? kept : ""));
		free(kept);
	}
}

/* The history file is all there is of it here. */
static bool local_record(struct platform *platform, const struct history_entry *entry, char *why, size_t why_size)
{
	(void)platform;
	(void)entry;
	(void)why;
	(void)why_size;
	return true;
}

/* Nothing of its own to run between iterations. */
static void local_attach(struct platform *platform, sd_event *event)
{
	(void)platform;
	(void)event;
}

const struct platform_ops local_platform_ops = {
	.name = "local",
	.open = local_open,
	.attach = local_attach,
	.close = local_close,
	.set_config = local_set_config,
	.refresh = local_refresh,
	.observe = local_observe,
	.admin_target = local_target,
	.execute = local_execute,
	.execute_start = local_execute_start,
	.owned_settings = local_owned_settings,
	.upstream_of = local_upstream,
	.primary_conninfo = local_conninfo,
	.load_state = local_load_state,
	.save_state = local_save_state,
	.may_act = local_may_act,
	.act = local_act,
	.replication_password = local_password,
	.gone = local_gone,
	.failed = local_failed,
	.over = local_over,
	.publish = local_publish,
	.backend_waits = local_backend_waits,
	.watch = local_watch,
	.finish = local_finish,
	.record = local_record,
	.has_data = local_has_data,
	.purge = local_purge,
	.member_port = local_port,
	.status = local_status,
	.cluster_status = local_cluster_status,
};
