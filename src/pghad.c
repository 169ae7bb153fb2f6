/* pghad: the daemon's entry point: parse the command line, then wire configuration, logging and the event loop together. */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "exitcode.h"
#include "failover_table.h"
#include "log.h"
#include "loop.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pghad [OPTION]...\n"
		"Keep the PostgreSQL clusters described in the configuration highly available.\n"
		"\n"
		"  -c, --config=FILE      read FILE instead of " SYSCONFDIR "/pgha.conf\n"
		"  -t, --check-config     check the configuration, print every error or a summary, and exit\n"
		"      --describe-config  print every option (path, type, default, range, reload, doc) and exit\n"
		"      --describe-failover\n"
		"                         print the failover table (phase, condition, action, comment) and exit\n"
		"  -h, --help             print this help and exit\n"
		"  -V, --version          print the version and exit\n"
		"\n"
		"Signals: SIGHUP reloads the configuration; SIGTERM and SIGINT stop pghad, never PostgreSQL.\n"
		"See pghad(8) and pgha.conf(5).\n");
}

int main(int argc, char **argv)
{
	enum { OPT_DESCRIBE = 256, OPT_DESCRIBE_FAILOVER };
	static const struct option long_options[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 't'},
		{"describe-config", no_argument, NULL, OPT_DESCRIBE},
		{"describe-failover", no_argument, NULL, OPT_DESCRIBE_FAILOVER},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = SYSCONFDIR "/pgha.conf";
	bool check_only = false;
	struct daemon daemon;
	int option;

	log_init("pghad");
	while ((option = getopt_long(argc, argv, "c:thV", long_options, NULL)) != -1) {
		switch (option) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case OPT_DESCRIBE:
			config_print_options(stdout);
			return PGHA_EXIT_OK;
		case OPT_DESCRIBE_FAILOVER:
			failover_table_print(stdout);
			return PGHA_EXIT_OK;
		case 'h':
			usage(stdout);
			return PGHA_EXIT_OK;
		case 'V':
			printf("pghad (pgha) %s\n", PACKAGE_VERSION);
			return PGHA_EXIT_OK;
		default:
			usage(stderr);
			return PGHA_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pghad: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return PGHA_EXIT_USAGE;
	}
	if (check_only)
		return config_check_file(config_path, stdout, stderr) ? PGHA_EXIT_OK : PGHA_EXIT_CONFIG;

	if (geteuid() == 0) {
		log_error("pghad must not run as root: PostgreSQL refuses to run as root and pghad runs it; "
			  "start pghad as the user that owns the data (User=postgres in pghad.service)");
		return PGHA_EXIT_PERMISSION;
	}
	/* a descriptor per member's kept connection and two per member's watched postmaster
	 * (its /proc entries: local platform), more while they are probed: the soft limit of
	 * 1024 that systemd and most shells give would run out at a few hundred members,
	 * and pghad uses no select() */
	struct rlimit descriptors;
	if (getrlimit(RLIMIT_NOFILE, &descriptors) == 0 && descriptors.rlim_cur < descriptors.rlim_max) {
		descriptors.rlim_cur = descriptors.rlim_max;
		setrlimit(RLIMIT_NOFILE, &descriptors);
	}
	int started = daemon_start(&daemon, config_path);
	if (started != PGHA_EXIT_OK) {
		daemon_stop(&daemon);
		return started;
	}
	int status = loop_run(&daemon);
	daemon_stop(&daemon);
	return status;
}
