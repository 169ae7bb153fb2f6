/* datadir: PostgreSQL data directories as pgha finds and prepares them on any platform: what one holds, whether a postmaster runs on it, and the settings files pgha writes into it. */
#ifndef PGHA_DATADIR_H
#define PGHA_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "file.h"
#include "proc.h"

/* The role pgha's standbys replicate as. */
#define REPLICATION_ROLE "pgha_replicator"

/* What a path holds, as far as PostgreSQL is concerned. */
enum datadir_kind {
	DATADIR_MISSING,       /* nothing at the path */
	DATADIR_EMPTY,         /* an empty directory: initdb and pg_basebackup can fill it */
	DATADIR_CLUSTER,       /* a directory with PG_VERSION and global/pg_control */
	DATADIR_FOREIGN,       /* a non-empty directory lacking one of them */
	DATADIR_NOT_DIRECTORY, /* a file, a symbolic link to one, a socket... */
	DATADIR_UNREADABLE,    /* cannot be examined (error says why) */
};

struct datadir_contents {
	enum datadir_kind kind;
	size_t entries;      /* names in the directory besides "." and "..": counted only when it is no data directory (0 for one) */
	bool pg_version;     /* PG_VERSION is there */
	bool pg_control;     /* global/pg_control is there */
	bool standby_signal; /* standby.signal is there */
	int major_version;   /* from PG_VERSION ("15" -> 15, "9.6" -> 9); 0 when absent or unreadable */
	int error;           /* the errno of DATADIR_UNREADABLE */
};

/* Looks at path (following a symbolic link to a directory, as PostgreSQL does). */
void datadir_inspect(const char *path, struct datadir_contents *contents);
/* "missing", "empty", "a PostgreSQL data directory"... for messages. */
const char *datadir_kind_name(enum datadir_kind kind);

/* The postmaster recorded in data's postmaster.pid while that process still runs
 * postgres, else 0. A postmaster that exited but whose parent has not reaped it yet still
 * holds the directory in PostgreSQL's eyes (its lock check is kill(pid, 0)): it is
 * returned too, with *exited set. With state, the process state letter /proc showed
 * for it ('S', 'R', 'T', 'D', 'Z'...; 0 with no postmaster). */
pid_t datadir_postmaster(const char *data, bool *exited, char *state);

/* The process datadir_postmaster last found running postgres for a data directory:
 * its pid and its start time, which together name one process (a pid reused later
 * starts later). {0} when none. */
struct datadir_verified {
	pid_t pid;
	unsigned long long start_time; /* clock ticks after boot (/proc/PID/stat) */
	/* its /proc entries kept open, and postmaster.pid when it named it: while that file
	 * is unchanged (file_identity_unchanged), it is not read again, and the process is
	 * looked at through the watch alone (closed: the usual way) */
	struct proc_watch process;
	struct file_identity pid_file;
	/* what the data directory held (datadir_inspect) while that process ran, and the
	 * directory's identity then: an entry made, removed or renamed in it (standby.signal)
	 * changes it */
	bool inspected;
	struct file_identity directory;
	struct datadir_contents contents;
};
/* Forgets what verified holds, its watch closed. */
void datadir_verified_forget(struct datadir_verified *verified);
/* Whether pid, started at start_time, is the process verified (NULL: none). */
bool datadir_same_process(const struct datadir_verified *verified, pid_t pid, unsigned long long start_time);
/* datadir_postmaster for a caller that looks again and again: the command of the process
 * in *verified is not read again while it runs; *verified follows what is found. */
pid_t datadir_postmaster_remembering(const char *data, bool *exited, char *state, struct datadir_verified *verified);
/* The same given the path of data's postmaster.pid (DATA/postmaster.pid), for a caller
 * that keeps it rather than building it at every look. */
pid_t datadir_postmaster_of_pid_file(const char *pid_file, bool *exited, char *state,
				     struct datadir_verified *verified);

/* Appends one "name = 'value'\n" line to *text (a malloc()ed string, replaced). */
void datadir_append_setting(char **text, const char *name, const char *value);

/* Replaces data/name with content (mode 0600) so that a crash leaves the old or the new. */
bool datadir_write_file(const char *data, const char *name, const char *content, char *why, size_t why_size);

/* Makes data's postgresql.conf include pgha.conf, appending the line (under a comment
 * naming writer) unless the file has it already. */
bool datadir_include_settings(const char *data, const char *writer, char *why, size_t why_size);

/* path.KIND.TIMESTAMP (UTC): where a directory pgha will not use is kept. A new string. */
char *datadir_aside_name(const char *path, const char *kind);

#endif
