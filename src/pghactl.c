/* pghactl: the operator's command line; for now it checks configurations, later it talks to pghad's control socket. */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "exitcode.h"
#include "log.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pghactl [-c FILE] COMMAND\n"
		"Operate the PostgreSQL clusters that pghad keeps.\n"
		"\n"
		"Commands:\n"
		"  check [FILE]     check a configuration file (default: the one given by -c)\n"
		"\n"
		"  -c, --config=FILE  pghad's configuration (default " SYSCONFDIR "/pgha.conf)\n"
		"  -h, --help         print this help and exit\n"
		"  -V, --version      print the version and exit\n"
		"See pghactl(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = SYSCONFDIR "/pgha.conf";
	int option;

	log_init("pghactl");
	while ((option = getopt_long(argc, argv, "+c:hV", long_options, NULL)) != -1) {
		switch (option) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return PGHA_EXIT_OK;
		case 'V':
			printf("pghactl (pgha) %s\n", PACKAGE_VERSION);
			return PGHA_EXIT_OK;
		default:
			usage(stderr);
			return PGHA_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return PGHA_EXIT_USAGE;
	}
	const char *command = argv[optind];
	if (strcmp(command, "check") == 0 && argc - optind <= 2)
		return config_check_file(argc - optind == 2 ? argv[optind + 1] : config_path, stdout, stderr)
			       ? PGHA_EXIT_OK
			       : PGHA_EXIT_CONFIG;
	fprintf(stderr, "pghactl: unknown command \"%s\"\n", command);
	usage(stderr);
	return PGHA_EXIT_USAGE;
}
