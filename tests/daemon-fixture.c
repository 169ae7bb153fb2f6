/* daemon-fixture: a pghad daemon started on a small configuration in a temporary directory, with no member running, whose control handler tests and fuzz targets call without a socket. */
#include "autoconfig.h"

#include "daemon-fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "exitcode.h"
#include "memory.h"
#include "names.h"
#include "observe.h"
#include "state.h"

static bool write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t length = strlen(text);
	bool written = fd >= 0 && write(fd, text, length) == (ssize_t)length;

	if (fd >= 0)
		close(fd);
	if (!written)
		fprintf(stderr, "daemon-fixture: cannot write %s: %s\n", path, strerror(errno));
	return written;
}

bool daemon_fixture_create(struct daemon_fixture *fixture, enum fixture_platform platform)
{
	const char *temporary = getenv("TMPDIR");
	char path[400];

	*fixture = (struct daemon_fixture){0};
	snprintf(fixture->directory, sizeof fixture->directory, "%s/pgha-fixture-XXXXXX",
		 temporary && temporary[0] ? temporary : "/tmp");
	if (!mkdtemp(fixture->directory)) {
		fprintf(stderr, "daemon-fixture: cannot make %s: %s\n", fixture->directory, strerror(errno));
		return false;
	}
	snprintf(path, sizeof path, "%s/bin", fixture->directory);
	if (mkdir(path, 0755) < 0)
		return false;
	/* has_postgres() wants an executable; an empty file cannot be executed */
	snprintf(path, sizeof path, "%s/bin/postgres", fixture->directory);
	if (!write_file(path, "", 0755))
		return false;
	snprintf(path, sizeof path, "%s/kubeconfig", fixture->directory);
	if (platform == FIXTURE_KUBERNETES &&
	    !write_file(path,
			"apiVersion: v1\n"
			"kind: Config\n"
			"clusters:\n"
			"- name: nowhere\n"
			"  cluster:\n"
			"    server: http://127.0.0.1:1\n"
			"users:\n"
			"- name: nobody\n"
			"  user:\n"
			"    token: not-a-token\n"
			"contexts:\n"
			"- name: nowhere\n"
			"  context:\n"
			"    cluster: nowhere\n"
			"    user: nobody\n"
			"current-context: nowhere\n",
			0600))
		return false;
	char *text = xasprintf(
		"daemon: { state_dir = \"%1$s/state\"; control_socket = \"%1$s/pghad.sock\"; log_level = \"error\"; };\n"
		"platform: { type = \"%2$s\";\n"
		"  local: { base_dir = \"%1$s/clusters\"; bindir = \"%1$s/bin\"; };\n"
		"  kubernetes: { namespace = \"fixture\"; kubeconfig = \"%1$s/kubeconfig\"; image = \"postgres:15\"; }; };\n"
		"clusters = (\n"
		"  { name = \"alpha\"; replicas = 3; port = 6000; },\n"
		"  { name = \"beta\"; replicas = 2; port = 6010; synchronous = { method = \"off\"; }; }\n"
		");\n",
		fixture->directory, platform == FIXTURE_KUBERNETES ? "kubernetes" : "local");
	snprintf(fixture->config_path, sizeof fixture->config_path, "%s/pgha.conf", fixture->directory);
	bool written = write_file(fixture->config_path, text, 0644);
	free(text);
	return written;
}

/* A member as observed: running or not, primary or standby of member 0. */
static void observe_member(struct member_observation *member, const char *cluster, int index, bool running)
{
	*member = (struct member_observation){.index = index, .upstream = -1};
	names_member(member->name, sizeof member->name, cluster, index);
	if (!running)
		return;
	member->data_exists = member->reachable = member->settings_current = member->follow_settings_current = true;
	member->timeline = 1;
	member->lsn = member->receive_lsn = 0x3000060;
	if (index == 0) {
		free(member->synchronous_standby_names);
		member->synchronous_standby_names = xasprintf("ANY 1 (\"%s-1\", \"%s-2\")", cluster, cluster);
		member->replication_role = true;
		member->peer_count = 2;
		member->peers = xcalloc(2, sizeof *member->peers);
		for (int peer = 0; peer < 2; peer++) {
			struct replication_peer *standby = &member->peers[peer];
			names_member(standby->application_name, sizeof standby->application_name, cluster, peer + 1);
			snprintf(standby->state, sizeof standby->state, "streaming");
			snprintf(standby->sync_state, sizeof standby->sync_state, "quorum");
			standby->flush_lsn = standby->replay_lsn = member->lsn;
		}
	} else {
		member->in_recovery = member->streaming = member->standby_signal = true;
		member->upstream = 0;
	}
}

bool daemon_fixture_start(struct daemon_fixture *fixture, enum fixture_observation observation)
{
	struct daemon *daemon = &fixture->daemon;

	if (daemon_start(daemon, fixture->config_path) != PGHA_EXIT_OK) {
		fprintf(stderr, "daemon-fixture: the daemon does not start on %s\n", fixture->config_path);
		daemon_stop(daemon);
		return false;
	}
	if (observation == FIXTURE_NOT_OBSERVED)
		return true;
	if (observation == FIXTURE_ALPHA_RUNNING) {
		/* what pghad recorded when it saw alpha-0 primary: the failover's starting point */
		struct cluster_state state;
		char path[400], why[512];
		state_init(&state);
		state.primary = 0;
		state.synchronous_known = true;
		snprintf(state.synchronous, sizeof state.synchronous, "ANY 1 (\"alpha-1\", \"alpha-2\")");
		snprintf(path, sizeof path, "%s/state", fixture->directory);
		mkdir(path, 0755);
		snprintf(path, sizeof path, "%s/state/alpha", fixture->directory);
		mkdir(path, 0700);
		snprintf(path, sizeof path, "%s/state/alpha/state.json", fixture->directory);
		if (!state_save(path, &state, why, sizeof why)) {
			fprintf(stderr, "daemon-fixture: %s\n", why);
			return false;
		}
	}
	/* what daemon_iterate keeps for status and for checking requests, made by hand */
	size_t count = daemon->config->cluster_count;
	daemon->observed_clusters = count;
	daemon->observations = xcalloc(count, sizeof *daemon->observations);
	daemon->waiting = xcalloc(count, sizeof *daemon->waiting);
	for (size_t i = 0; i < count; i++) {
		const struct cluster_config *cluster = &daemon->config->clusters[i];
		struct cluster_observation *seen = &daemon->observations[i];
		bool running = observation == FIXTURE_ALPHA_RUNNING && strcmp(cluster->name, "alpha") == 0;
		seen->count = (size_t)cluster->replicas;
		seen->members = xcalloc(seen->count, sizeof *seen->members);
		seen->now_ms = observation_clock_ms();
		for (int m = 0; m < cluster->replicas; m++)
			observe_member(&seen->members[m], cluster->name, m, running);
	}
	return true;
}

static int remove_entry(const char *path, const struct stat *status, int type, struct FTW *where)
{
	(void)status, (void)type, (void)where;
	if (remove(path) < 0)
		fprintf(stderr, "daemon-fixture: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void remove_tree(const char *path)
{
	if (access(path, F_OK) == 0)
		nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void daemon_fixture_stop(struct daemon_fixture *fixture)
{
	char path[400];

	daemon_stop(&fixture->daemon);
	snprintf(path, sizeof path, "%s/state", fixture->directory);
	remove_tree(path);
	snprintf(path, sizeof path, "%s/clusters", fixture->directory);
	remove_tree(path);
}

void daemon_fixture_remove(struct daemon_fixture *fixture)
{
	if (fixture->directory[0])
		remove_tree(fixture->directory);
	fixture->directory[0] = '\0';
}

json_t *daemon_fixture_ask(struct daemon_fixture *fixture, const char *line)
{
	char *answer = control_answer(line, strlen(line), daemon_control, &fixture->daemon);
	size_t length = strlen(answer);
	json_t *reply = NULL;

	/* one line, ending in its newline and holding no other */
	if (length && answer[length - 1] == '\n' && !memchr(answer, '\n', length - 1))
		reply = json_loadb(answer, length - 1, 0, NULL);
	if (reply && !json_is_object(reply)) {
		json_decref(reply);
		reply = NULL;
	}
	free(answer);
	return reply;
}
