/* datadir: PostgreSQL data directories as pgha finds and prepares them on any platform: what one holds, whether a postmaster runs on it, and the settings files pgha writes into it. */
#include "autoconfig.h"

#include "datadir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "memory.h"
#include "pg.h"
#include "proc.h"

/* The line that makes postgresql.conf read pgha's settings. */
#define INCLUDE_LINE "include = 'pgha.conf'"

static bool exists(const char *directory, const char *name)
{
	char *path = xasprintf("%s/%s", directory, name);
	bool found = access(path, F_OK) == 0;
	free(path);
	return found;
}

static int read_major_version(const char *data)
{
	char why[256];
	char *path = xasprintf("%s/PG_VERSION", data);
	char *content = file_read(path, 64, NULL, why, sizeof why);
	long major = content ? strtol(content, NULL, 10) : 0;

	free(path);
	free(content);
	return major > 0 && major < 1000 ? (int)major : 0;
}

void datadir_inspect(const char *path, struct datadir_contents *contents)
{
	struct stat status;

	*contents = (struct datadir_contents){.kind = DATADIR_MISSING};
	if (stat(path, &status) < 0) {
		if (errno != ENOENT || lstat(path, &status) == 0) {
			/* a dangling symbolic link is something there, not nothing */
			contents->kind = errno == ENOENT ? DATADIR_NOT_DIRECTORY : DATADIR_UNREADABLE;
			contents->error = errno;
		}
		return;
	}
	if (!S_ISDIR(status.st_mode)) {
		contents->kind = DATADIR_NOT_DIRECTORY;
		return;
	}
	contents->pg_version = exists(path, "PG_VERSION");
	contents->pg_control = exists(path, "global/pg_control");
	/* one with both is no empty directory: listed only when it may not be a data
	 * directory (its entries counted for the message that refuses it). pghad looks at
	 * every member's at every iteration, and the listing was a sixth of its CPU at rest */
	if (!contents->pg_version || !contents->pg_control) {
		DIR *listing = opendir(path);
		if (!listing) {
			contents->kind = DATADIR_UNREADABLE;
			contents->error = errno;
			return;
		}
		for (struct dirent *entry; (entry = readdir(listing));)
			if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
				contents->entries++;
		closedir(listing);
		if (contents->entries == 0) {
			*contents = (struct datadir_contents){.kind = DATADIR_EMPTY};
			return;
		}
	}
	contents->standby_signal = exists(path, "standby.signal");
	contents->major_version = contents->pg_version ? read_major_version(path) : 0;
	contents->kind = contents->pg_version && contents->pg_control ? DATADIR_CLUSTER : DATADIR_FOREIGN;
}

const char *datadir_kind_name(enum datadir_kind kind)
{
	switch (kind) {
	case DATADIR_MISSING:
		return "missing";
	case DATADIR_EMPTY:
		return "empty";
	case DATADIR_CLUSTER:
		return "a PostgreSQL data directory";
	case DATADIR_FOREIGN:
		return "not a PostgreSQL data directory";
	case DATADIR_NOT_DIRECTORY:
		return "not a directory";
	case DATADIR_UNREADABLE:
		return "unreadable";
	}
	return "unknown";
}

bool datadir_same_process(const struct datadir_verified *verified, pid_t pid, unsigned long long start_time)
{
	/* a start time of 0 is one that could not be read, never a match */
	return verified && verified->pid == pid && verified->start_time == start_time && start_time != 0;
}

void datadir_verified_forget(struct datadir_verified *verified)
{
	proc_watch_close(&verified->process);
	*verified = (struct datadir_verified){0};
}

/* The postmaster verified before, still running, as its watch shows it, when the
 * postmaster.pid that named it is unchanged (identity: seen now); else 0. */
static pid_t still_verified(struct datadir_verified *verified, const struct file_identity *identity, bool *exited,
			    char *state)
{
	unsigned long long start_time;
	char letter;

	if (!verified || !verified->pid || !verified->process.open || !identity->known ||
	    !file_identity_unchanged(&verified->pid_file, identity))
		return 0;
	if (!proc_watch_stat(&verified->process, &letter, &start_time) || start_time != verified->start_time) {
		/* reaped: gone, whatever postmaster.pid still says */
		datadir_verified_forget(verified);
		return 0;
	}
	*exited = letter == 'Z';
	if (state)
		*state = letter;
	return verified->pid;
}

pid_t datadir_postmaster_remembering(const char *data, bool *exited, char *state, struct datadir_verified *verified)
{
	char *pid_file = xasprintf("%s/postmaster.pid", data);
	pid_t pid = datadir_postmaster_of_pid_file(pid_file, exited, state, verified);
	free(pid_file);
	return pid;
}

pid_t datadir_postmaster_of_pid_file(const char *pid_file, bool *exited, char *state,
				     struct datadir_verified *verified)
{
	char path[64], why[256], command[256] = "";
	struct file_identity identity = {0};
	unsigned long long start_time;
	long pid;
	char letter;

	*exited = false;
	if (state)
		*state = 0;
	/* looked at before it is read: a change while it is read is seen the next time */
	if (verified)
		file_identity_read(pid_file, &identity);
	pid_t still = still_verified(verified, &identity, exited, state);
	if (still)
		return still;
	/* read when it may have changed: it is where the pid comes from */
	char *content = file_read(pid_file, 64 * 1024, NULL, why, sizeof why);
	if (!content) {
		if (verified)
			datadir_verified_forget(verified);
		return 0;
	}
	pid = strtol(content, NULL, 10);
	free(content);
	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM)) {
		if (verified)
			datadir_verified_forget(verified);
		return 0;
	}
	proc_stat((pid_t)pid, &letter, &start_time);
	if (letter == 'Z') {
		*exited = true;
		if (state)
			*state = letter;
		return (pid_t)pid;
	}
	/* the process found running postgres before, still running: a pid reused since
	 * would have started later. The postmaster never execs another program, so its
	 * command cannot have changed */
	if (!datadir_same_process(verified, (pid_t)pid, start_time)) {
		if (verified)
			datadir_verified_forget(verified);
		/* a pid reused by another program after a crash is not our postmaster */
		snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
		content = file_read(path, 64 * 1024, NULL, why, sizeof why);
		if (content) {
			snprintf(command, sizeof command, "%s", content);
			free(content);
		}
		const char *base = strrchr(command, '/');
		if (strcmp(base ? base + 1 : command, "postgres") != 0)
			return 0;
	}
	if (verified) {
		verified->pid = (pid_t)pid;
		verified->start_time = start_time;
		verified->pid_file = identity;
		/* opened after the start time was read: if the pid were reused in between, the
		 * watch would show another start time, and be forgotten at its first look */
		if (!verified->process.open || verified->process.pid != (pid_t)pid)
			proc_watch_open(&verified->process, (pid_t)pid);
	}
	if (state)
		*state = letter;
	return (pid_t)pid;
}

pid_t datadir_postmaster(const char *data, bool *exited, char *state)
{
	return datadir_postmaster_remembering(data, exited, state, NULL);
}

void datadir_append_setting(char **text, const char *name, const char *value)
{
	char *quoted = pg_conf_quote(value);
	char *line = xasprintf("%s%s = %s\n", *text, name, quoted);
	free(quoted);
	free(*text);
	*text = line;
}

bool datadir_write_file(const char *data, const char *name, const char *content, char *why, size_t why_size)
{
	char *path = xasprintf("%s/%s", data, name);
	bool written = file_replace(path, content, strlen(content), 0600, why, why_size);
	free(path);
	return written;
}

/* Whether a line of text, leading and trailing blanks aside, is line. */
static bool has_line(const char *text, const char *line)
{
	size_t length = strlen(line);

	for (const char *at = text; *at;) {
		size_t line_length = strcspn(at, "\n");
		const char *start = at + strspn(at, " \t");
		const char *rest = start + length;
		if (strncmp(start, line, length) == 0 && (size_t)(rest + strspn(rest, " \t\r") - at) == line_length)
			return true;
		at += line_length + (at[line_length] == '\n');
	}
	return false;
}

bool datadir_include_settings(const char *data, const char *writer, char *why, size_t why_size)
{
	char *path = xasprintf("%s/postgresql.conf", data);
	char *content = file_read(path, 16 * 1024 * 1024, NULL, why, why_size);
	bool included = false;

	if (!content)
		goto out;
	if (has_line(content, INCLUDE_LINE)) {
		included = true;
		goto out;
	}
	FILE *conf = fopen(path, "a");
	included = conf && fprintf(conf, "\n# Added by %s: the settings it manages.\n" INCLUDE_LINE "\n", writer) > 0;
	if (conf && fclose(conf) != 0)
		included = false;
	if (!included)
		snprintf(why, why_size, "cannot add the include of pgha.conf to %s: %s", path, strerror(errno));
out:
	free(content);
	free(path);
	return included;
}

char *datadir_aside_name(const char *path, const char *kind)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm utc;

	gmtime_r(&now, &utc);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
	return xasprintf("%s.%s.%s", path, kind, stamp);
}
