/* entrypoint: what pgha-entrypoint decides, without side effects: its environment read and checked, what to do with the data directory it finds, and the text of the files it writes. */
#ifndef PGHA_ENTRYPOINT_H
#define PGHA_ENTRYPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "datadir.h"
#include "log.h"

/* PostgreSQL's superuser, as initdb makes it on a member. */
#define ENTRYPOINT_SUPERUSER "postgres"
/* The files of PGHA_SECRETS_DIR, as pghad's Secret names its keys. */
#define ENTRYPOINT_SUPERUSER_SECRET "superuser-password"
#define ENTRYPOINT_REPLICATION_SECRET "replication-password"

/* The first wait for the primary, its growth (doubling) and its ceiling. */
#define ENTRYPOINT_FIRST_DELAY_MS 500
#define ENTRYPOINT_MAX_DELAY_MS 5000

enum entrypoint_role {
	ENTRYPOINT_PRIMARY,
	ENTRYPOINT_STANDBY,
};

/* What pgha-entrypoint is told by its environment (pghad's pod spec), checked. */
struct entrypoint_environment {
	char *data;                /* PGDATA: absolute, without a trailing '/' */
	char *cluster;             /* PGHA_CLUSTER, NULL when unset: for log lines only */
	char *member;              /* PGHA_MEMBER: application_name and cluster_name */
	enum entrypoint_role role; /* PGHA_ROLE */
	bool bootstrap;            /* PGHA_BOOTSTRAP=1: may initdb an empty data directory */
	bool rewind;               /* PGHA_REWIND=1: pghad found its data diverged from the primary's history */
	int port;                  /* PGHA_PORT */
	char *primary_host_list;   /* PGHA_PRIMARY_HOST as given ("H1,H2"), NULL when unset */
	char **primary_hosts;      /* the same, split; primary_host_count of them */
	size_t primary_host_count;
	int primary_port;          /* PGHA_PRIMARY_PORT, else PGHA_PORT */
	char *slot;                /* PGHA_SLOT, NULL when unset */
	char *listen;              /* PGHA_LISTEN, "*" when unset or empty */
	char *secrets_dir;         /* PGHA_SECRETS_DIR */
	char *socket_dir;          /* PGHA_SOCKET_DIR; NULL when unset, "" for no Unix socket */
	char *bindir;              /* PGHA_BINDIR, NULL when unset: searched */
	int wait_timeout_s;        /* PGHA_WAIT_TIMEOUT */
	enum log_level log_level;  /* PGHA_LOG_LEVEL */
	bool initdb_nosync;        /* PGHA_TEST_INITDB_NOSYNC: tests only */
	/* the self-fence (fencewatch.h), on when PGHA_LEASE is set */
	char *lease;               /* PGHA_LEASE, NULL when unset */
	char *pod_name;            /* PGHA_POD_NAME */
	char *pod_uid;             /* PGHA_POD_UID, NULL when unset */
	int member_index;          /* PGHA_MEMBER_INDEX, -1 when unset */
	int isolation_timeout_s;   /* PGHA_ISOLATION_TIMEOUT */
	char *termination_path;    /* PGHA_TERMINATION_MESSAGE_PATH, NULL when unset */
};

/* The variables it reads, in the order --help and pgha-entrypoint(1) show them. */
struct entrypoint_variable {
	const char *name;
	bool required;          /* an error when unset or empty */
	const char *fallback;   /* the value taken when unset (NULL: none), shown by --help */
	bool empty_is_value;    /* "" means something of its own rather than "unset" */
	bool (*parse)(struct entrypoint_environment *environment, const char *value, char *why, size_t why_size);
	const char *doc;        /* one line for --help */
};
extern const struct entrypoint_variable entrypoint_variables[];
extern const size_t entrypoint_variable_count;

/* Reads every variable through lookup (getenv, or a table in tests) into environment,
 * which it owns afterwards (entrypoint_environment_free). Checks each value and the
 * rules between them (a standby needs PGHA_PRIMARY_HOST). False when any is wrong, with
 * every mistake in errors, one per line, so that all can be fixed at once. */
bool entrypoint_read_environment(const char *(*lookup)(const char *name, void *context), void *context,
				 struct entrypoint_environment *environment, char *errors, size_t errors_size);
void entrypoint_environment_free(struct entrypoint_environment *environment);

/* What there is to decide from, besides the environment. */
struct entrypoint_found {
	struct datadir_contents data; /* what PGDATA holds */
	int server_major_version;     /* of the PostgreSQL programs found, 0 when unknown */
	pid_t postmaster;             /* a postmaster running on PGDATA, 0 when none */
};

enum entrypoint_action {
	ENTRYPOINT_INITIALIZE, /* initdb a new cluster: the bootstrap primary */
	ENTRYPOINT_CLONE,      /* wait for the primary, pg_basebackup, start as a standby */
	ENTRYPOINT_REWIND,     /* wait for the primary, pg_rewind (or move aside and clone when it fails), start as a standby */
	ENTRYPOINT_START,      /* start what is there */
	ENTRYPOINT_REFUSE,     /* touch nothing, say why, exit with exit_status */
};

struct entrypoint_decision {
	enum entrypoint_action action;
	bool follow;       /* (re)write standby.signal and pgha-standby.conf: it starts as a standby of the primary */
	int exit_status;   /* for ENTRYPOINT_REFUSE: a PGHA_EXIT_* status */
	char reason[1024]; /* one sentence for the log: why this action, or why nothing is done */
};

/* The decision, a pure function of the environment and what was found. It never chooses
 * to write into a non-empty directory that is not a PostgreSQL data directory, nor to
 * initialize one without PGHA_BOOTSTRAP=1. */
void entrypoint_decide(const struct entrypoint_environment *environment, const struct entrypoint_found *found,
		       struct entrypoint_decision *decision);
const char *entrypoint_action_name(enum entrypoint_action action);

/* The wait after delay_ms: doubled, at most ENTRYPOINT_MAX_DELAY_MS. */
int entrypoint_next_delay_ms(int delay_ms);

/* A password from the content of its secret file (length bytes): one trailing line break
 * is dropped; empty, NUL bytes or other line breaks are refused (why says which, never
 * the password). password is then NUL-terminated. */
bool entrypoint_password(const char *content, size_t length, char *password, size_t password_size, char *why,
			 size_t why_size);

/* The last line of a program's output that is not blank (at most size-1 bytes, blanks
 * around it dropped), "" when there is none: where its error is. */
void entrypoint_last_line(const char *output, char *line, size_t size);

/* What pgha-entrypoint did when told PGHA_REWIND=1, for pghad, which reads it through
 * the member once it answers: the file PGDATA ENTRYPOINT_REJOIN_SUFFIX, beside PGDATA
 * rather than in it (pg_rewind and pg_basebackup would carry it to another member), one
 * line "OUTCOME: sentence". */
#define ENTRYPOINT_REJOIN_SUFFIX ".rejoin"

enum entrypoint_rejoin {
	ENTRYPOINT_REJOIN_UNKNOWN,     /* no such file, or not one pgha-entrypoint wrote */
	ENTRYPOINT_REJOIN_REWOUND,     /* pg_rewind from the primary */
	ENTRYPOINT_REJOIN_CLONED,      /* there was no data directory to rewind: cloned */
	ENTRYPOINT_REJOIN_MOVED_ASIDE, /* pg_rewind failed: the directory kept aside, cloned again */
};

/* The file's content for outcome (not UNKNOWN), sentence on one line. A new string. */
char *entrypoint_render_rejoin(enum entrypoint_rejoin outcome, const char *sentence);
/* The outcome content tells (NULL: UNKNOWN), and its sentence in sentence: the first
 * line, control characters replaced ("" when UNKNOWN). */
enum entrypoint_rejoin entrypoint_parse_rejoin(const char *content, char *sentence, size_t sentence_size);

/* What pg_control says once PostgreSQL has exited: pgha-entrypoint puts it in the
 * container's termination message (the pod's status keeps it, containerStatuses[].state
 * .terminated.message), where pghad reads it as the local platform reads pg_controldata:
 * a switchover's old primary has shut down cleanly, and at which checkpoint. */
struct entrypoint_control {
	bool shut_down;          /* "Database cluster state: shut down": nothing written after */
	uint64_t checkpoint_lsn; /* latest checkpoint location */
	uint32_t timeline;       /* latest checkpoint's TimeLineID */
};

/* Where the message goes without PGHA_TERMINATION_MESSAGE_PATH: Kubernetes's default
 * terminationMessagePath. */
#define ENTRYPOINT_TERMINATION_PATH "/dev/termination-log"

/* Pure: pg_controldata's output (LC_ALL=C) read; false when it holds no checkpoint. */
bool entrypoint_parse_controldata(const char *output, struct entrypoint_control *control);
/* The termination message for control: one line. A new string. */
char *entrypoint_render_control(const struct entrypoint_control *control);
/* Pure: a termination message read; false when it is not one pgha-entrypoint wrote. */
bool entrypoint_parse_control(const char *message, struct entrypoint_control *control);

/* The settings pgha-entrypoint owns, pgha.conf; socket_dir is the Unix socket directory
 * chosen ("" for none). A new string. */
char *entrypoint_render_settings(const struct entrypoint_environment *environment, const char *socket_dir);
/* primary_conninfo for this member: host is the primary it reached, or NULL for every host
 * of PGHA_PRIMARY_HOST with target_session_attrs=read-write. A new string. */
char *entrypoint_primary_conninfo(const struct entrypoint_environment *environment, const char *host,
				  const char *passfile);
/* pgha-standby.conf: primary_conninfo and, with PGHA_SLOT, primary_slot_name. A new string. */
char *entrypoint_render_standby(const struct entrypoint_environment *environment, const char *conninfo);
/* pg_hba.conf: peer over the Unix socket, scram-sha-256 over TCP from anywhere. */
const char *entrypoint_hba(void);

#endif
