/* daemon-fixture: a pghad daemon started on a small configuration in a temporary directory, with no member running, whose control handler tests and fuzz targets call without a socket. */
#ifndef PGHA_DAEMON_FIXTURE_H
#define PGHA_DAEMON_FIXTURE_H

#include <stdbool.h>

#include "daemon.h"

/* Two clusters: alpha (3 members, port 6000, ANY 1 required) and beta (2 members, port
 * 6010, asynchronous). */
#define FIXTURE_CLUSTERS "alpha", "beta"

enum fixture_platform { FIXTURE_LOCAL, FIXTURE_KUBERNETES };

/* What the daemon saw in its last iteration: nothing yet, members without data (a
 * cluster not created yet, as pghad sees it before its first initdb), or alpha running
 * with alpha-0 its primary and alpha-1 a synchronous standby (observed, not started). */
enum fixture_observation { FIXTURE_NOT_OBSERVED, FIXTURE_NO_DATA, FIXTURE_ALPHA_RUNNING };

struct daemon_fixture {
	char directory[256]; /* everything the daemon touches is under it */
	char config_path[320];
	struct daemon daemon;
};

/* Makes the directory (under $TMPDIR or /tmp) and its configuration: the daemon's state
 * and the members' base directory are in it, and platform.local.bindir names a directory
 * whose "postgres" is an empty file, so that nothing can run. On kubernetes the
 * kubeconfig names a server on 127.0.0.1:1, where no one listens. False (printed on
 * stderr) when it cannot. */
bool daemon_fixture_create(struct daemon_fixture *fixture, enum fixture_platform platform);
/* Starts the daemon on it, as pghad does before its loop, with the observation given.
 * False (printed) when the daemon does not start. */
bool daemon_fixture_start(struct daemon_fixture *fixture, enum fixture_observation observation);
/* Stops the daemon and forgets what it recorded (the state directory, the members'
 * directories), so that the next start begins afresh. */
void daemon_fixture_stop(struct daemon_fixture *fixture);
/* Removes the directory and everything in it. */
void daemon_fixture_remove(struct daemon_fixture *fixture);

/* The daemon's reply line to one request line, parsed; NULL when it is not a JSON object
 * (which is a failure of the control protocol). */
json_t *daemon_fixture_ask(struct daemon_fixture *fixture, const char *line);

#endif
