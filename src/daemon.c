/* daemon: pghad's running state (the configuration in force, the last reload error) and what a reload and a loop iteration do. */
#include "autoconfig.h"

#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "memory.h"
#include "notify.h"

static void log_errors(const struct diag_list *errors)
{
	for (size_t i = 0; i < errors->count; i++)
		log_error("%s", errors->messages[i]);
}

bool daemon_start(struct daemon *daemon, const char *config_path)
{
	struct diag_list errors = {0};

	*daemon = (struct daemon){.config_path = xstrdup(config_path)};
	daemon->config = config_load_file(config_path, &errors);
	if (!daemon->config) {
		log_errors(&errors);
		log_error("%s: %zu error%s, not starting", config_path, errors.count, errors.count == 1 ? "" : "s");
		diag_free(&errors);
		return false;
	}
	log_set_level((enum log_level)daemon->config->daemon.log_level);
	log_info("configuration loaded from %s: %zu cluster%s on the %s platform", config_path,
		 daemon->config->cluster_count, daemon->config->cluster_count == 1 ? "" : "s",
		 platform_type_names[daemon->config->platform.type]);
	return true;
}

bool daemon_reload(struct daemon *daemon)
{
	struct diag_list errors = {0};
	struct pgha_config *candidate;
	char status[512];

	notify_reloading();
	log_info("reloading the configuration from %s", daemon->config_path);
	candidate = config_load_file(daemon->config_path, &errors);
	if (candidate && !config_check_reload(daemon->config, candidate, &errors)) {
		config_free(candidate);
		candidate = NULL;
	}
	diag_free(&daemon->reload_errors);
	if (!candidate) {
		log_errors(&errors);
		log_error("%zu error%s in %s: keeping the current configuration", errors.count,
			  errors.count == 1 ? "" : "s", daemon->config_path);
		daemon->reload_errors = errors;
		errors = (struct diag_list){0};
	} else {
		config_free(daemon->config);
		daemon->config = candidate;
		log_set_level((enum log_level)candidate->daemon.log_level);
		log_notice("configuration reloaded from %s: %zu cluster%s", daemon->config_path, candidate->cluster_count,
			   candidate->cluster_count == 1 ? "" : "s");
	}
	diag_free(&errors);
	daemon_status_line(daemon, status, sizeof status);
	notify_status("%s", status);
	notify_ready();
	return candidate != NULL;
}

void daemon_iterate(struct daemon *daemon)
{
	daemon->iterations++;
	log_debug("loop iteration %llu", (unsigned long long)daemon->iterations);
}

void daemon_stop(struct daemon *daemon)
{
	config_free(daemon->config);
	free(daemon->config_path);
	diag_free(&daemon->reload_errors);
	*daemon = (struct daemon){0};
}

void daemon_status_line(const struct daemon *daemon, char *buffer, size_t size)
{
	int length = snprintf(buffer, size, "%zu cluster%s", daemon->config->cluster_count,
			      daemon->config->cluster_count == 1 ? "" : "s");
	for (size_t i = 0; i < daemon->config->cluster_count && length > 0 && (size_t)length < size; i++)
		length += snprintf(buffer + length, size - (size_t)length, "%s%s", i == 0 ? ": " : ", ",
				   daemon->config->clusters[i].name);
	if (daemon->reload_errors.count && length > 0 && (size_t)length < size)
		snprintf(buffer + length, size - (size_t)length, "; config rejected: %s", daemon->reload_errors.messages[0]);
}

static json_t *error_array(const struct diag_list *errors)
{
	json_t *array = json_array();
	for (size_t i = 0; i < errors->count; i++)
		json_array_append_new(array, json_string(errors->messages[i]));
	return array;
}

static json_t *cluster_status(const struct cluster_config *cluster)
{
	return json_pack("{s:s, s:i, s:i, s:{s:s, s:i, s:b}, s:{s:b, s:i}}", "name", cluster->name, "replicas",
			 cluster->replicas, "port", cluster->port, "synchronous", "method",
			 sync_method_names[cluster->synchronous.method], "number", cluster->synchronous.number,
			 "required", cluster->synchronous.required, "failover", "automatic", cluster->failover.automatic,
			 "timeout_ms", cluster->failover.timeout_ms);
}

static json_t *status_reply(const struct daemon *daemon)
{
	json_t *clusters = json_array();

	for (size_t i = 0; i < daemon->config->cluster_count; i++)
		json_array_append_new(clusters, cluster_status(&daemon->config->clusters[i]));
	return json_pack("{s:b, s:s, s:I, s:s, s:s, s:I, s:o, s:o}", "ok", 1, "version", PACKAGE_VERSION, "pid",
			 (json_int_t)getpid(), "config", daemon->config_path, "platform",
			 platform_type_names[daemon->config->platform.type], "iterations", (json_int_t)daemon->iterations,
			 "reload_errors", error_array(&daemon->reload_errors), "clusters", clusters);
}

json_t *daemon_control(const json_t *request, void *userdata)
{
	struct daemon *daemon = userdata;
	const char *command = json_string_value(json_object_get(request, "command"));

	if (!command)
		return json_pack("{s:b, s:s}", "ok", 0, "error", "the request has no \"command\"");
	if (strcmp(command, "status") == 0)
		return status_reply(daemon);
	if (strcmp(command, "reload") == 0) {
		log_info("reload requested on the control socket");
		bool applied = daemon_reload(daemon);
		return json_pack("{s:b, s:o}", "ok", applied, "errors", error_array(&daemon->reload_errors));
	}
	return json_pack("{s:b, s:s+}", "ok", 0, "error", "unknown command: ", command);
}
