/* daemon: pghad's running state (the configuration in force, the last reload error) and what a reload and a loop iteration do. */
#ifndef PGHA_DAEMON_H
#define PGHA_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "observe.h"
#include "platform_local.h"

struct actor;

struct daemon {
	char *config_path;
	struct pgha_config *config;      /* never NULL once started; replaced only by a valid one */
	struct diag_list reload_errors;  /* why the last reload was rejected; empty after a good one */
	uint64_t iterations;
	struct local_platform platform;
	struct actor *actor; /* NULL until attached to a loop, and on platforms not run yet */
	/* the last iteration's view, for status: one per cluster of config */
	struct cluster_observation *observations;
	char (*waiting)[256];
	size_t observed_clusters;
};

/* Loads the configuration for the first time and finds what the platform needs.
 * Returns PGHA_EXIT_OK, or the exit status to stop with (errors logged). */
int daemon_start(struct daemon *daemon, const char *config_path);
/* Gives the daemon the loop on which its long operations run. */
void daemon_attach(struct daemon *daemon, sd_event *event);
/* Re-reads the configuration and swaps it in only when it is valid and may change now;
 * otherwise logs every error and keeps the current one. Returns whether it swapped. */
bool daemon_reload(struct daemon *daemon);
/* One iteration of the reconcile loop. */
void daemon_iterate(struct daemon *daemon);
void daemon_stop(struct daemon *daemon);

/* Answers a control socket request ({"command": "status"|"reload"}); see pghactl(1). */
json_t *daemon_control(const json_t *request, void *daemon);

/* A one-line summary for STATUS= and logs. */
void daemon_status_line(const struct daemon *daemon, char *buffer, size_t size);

#endif
