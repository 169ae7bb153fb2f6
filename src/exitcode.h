/* exitcode: the exit statuses of pgha's programs, stable so that systemd units and scripts can rely on them. */
#ifndef PGHA_EXITCODE_H
#define PGHA_EXITCODE_H

/* Values follow sysexits(3) where one fits, so they read naturally in systemctl status. */
enum pgha_exit {
	PGHA_EXIT_OK = 0,
	PGHA_EXIT_FAILURE = 1,     /* the command ran and did not succeed */
	PGHA_EXIT_USAGE = 64,      /* bad command line */
	PGHA_EXIT_DATA = 65,       /* a data directory pgha will not touch (not PostgreSQL's): restarting will not help */
	PGHA_EXIT_INTERNAL = 70,   /* a bug or a failure of the system (out of memory, event loop) */
	PGHA_EXIT_PERMISSION = 77, /* run as root, or a file pghad must own is not its own */
	PGHA_EXIT_CONFIG = 78,     /* the configuration is invalid: restarting will not help */
	PGHA_EXIT_POSTGRESQL = 79, /* PostgreSQL could not be found or used */
	PGHA_EXIT_KUBERNETES = 80, /* the Kubernetes API could not be used */
};

#endif
