/* test-k8s: the API client's error messages, escaping, and how it finds its server and credentials (requests themselves are tested against a fake API server in tests/integration/test_k8s_client.py). */
#include "autoconfig.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "k8s.h"
#include "memory.h"
#include "tap.h"

static const struct {
	const char *name;
	const char *method, *path;
	int status;
	const char *body;
	const char *why;
} errors[] = {
	{"a Status object's message", "GET", "/api/v1/namespaces/default/pods/x", 404,
	 "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"x\\\" "
	 "not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"x\",\"kind\":\"pods\"},\"code\":404}",
	 "GET /api/v1/namespaces/default/pods/x: 404 Not Found: pods \"x\" not found"},
	{"a conflict", "PUT", "/apis/coordination.k8s.io/v1/namespaces/db/leases/pgha-test", 409,
	 "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"Operation cannot be fulfilled on leases.coordination.k8s.io "
	 "\\\"pgha-test\\\": the object has been modified; please apply your changes to the latest version and try "
	 "again\",\"reason\":\"Conflict\",\"code\":409}",
	 "PUT /apis/coordination.k8s.io/v1/namespaces/db/leases/pgha-test: 409 Conflict: Operation cannot be fulfilled "
	 "on leases.coordination.k8s.io \"pgha-test\": the object has been modified; please apply your changes to the "
	 "latest version and try again"},
	{"a Status with only a reason", "DELETE", "/api/v1/namespaces/a/pods/b", 403, "{\"kind\":\"Status\",\"reason\":\"Forbidden\"}",
	 "DELETE /api/v1/namespaces/a/pods/b: 403 Forbidden: Forbidden"},
	{"a message over lines becomes one line", "POST", "/api/v1/namespaces/a/pods", 422,
	 "{\"message\":\"Pod \\\"p\\\" is invalid:\\n\\tspec.containers: Required value\"}",
	 "POST /api/v1/namespaces/a/pods: 422 Unprocessable Entity: Pod \"p\" is invalid: spec.containers: Required value"},
	{"a body that is not JSON", "GET", "/api", 503, "upstream connect error\r\n or disconnect\n",
	 "GET /api: 503 Service Unavailable: upstream connect error or disconnect"},
	{"no body", "GET", "/api", 401, "", "GET /api: 401 Unauthorized"},
	{"a status without a known phrase", "GET", "/api", 418, "{}", "GET /api: 418"},
	{"a token echoed by a proxy is scrubbed", "GET", "/api", 400, "bad header Authorization: Bearer abcdefghijkl",
	 "GET /api: 400 Bad Request: bad header Authorization: Bearer ***"},
};

static void test_errors(void)
{
	char why[1024];

	for (size_t i = 0; i < sizeof errors / sizeof *errors; i++) {
		k8s_format_error(why, sizeof why, errors[i].method, errors[i].path, errors[i].status, errors[i].body,
				 strlen(errors[i].body));
		is_str(why, errors[i].why, "error: %s", errors[i].name);
	}
	char *long_body = xmalloc(5001);
	memset(long_body, 'x', 5000);
	long_body[5000] = '\0';
	k8s_format_error(why, sizeof why, "GET", "/api", 502, long_body, 5000);
	ok(strlen(why) == strlen("GET /api: 502 Bad Gateway: ") + 200, "a long body is cut at 200 bytes");
	free(long_body);
	k8s_format_error(why, 24, "GET", "/api/v1/namespaces/default/pods", 404, "{\"message\":\"m\"}", 15);
	is_str(why, "GET /api/v1/namespaces/", "a small buffer is filled, never overrun");
}

static void test_escape(void)
{
	static const struct {
		const char *value, *escaped;
	} cases[] = {
		{"app=postgres,cluster=test", "app%3Dpostgres%2Ccluster%3Dtest"},
		{"role in (primary, replica)", "role%20in%20%28primary%2C%20replica%29"},
		{"a-b_c.d~e", "a-b_c.d~e"},
		{"x/y?z&w#", "x%2Fy%3Fz%26w%23"},
		{"", ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *escaped = k8s_escape(cases[i].value);
		is_str(escaped, cases[i].escaped, "escapes \"%s\"", cases[i].value);
		free(escaped);
	}
}

static void write_file(const char *directory, const char *name, const char *content)
{
	char *path = xasprintf("%s/%s", directory, name);
	FILE *file = fopen(path, "w");
	if (file) {
		fputs(content, file);
		fclose(file);
	}
	free(path);
}

static void remove_file(const char *directory, const char *name)
{
	char *path = xasprintf("%s/%s", directory, name);
	unlink(path);
	free(path);
}

static void test_service_account(const char *directory)
{
	char why[512] = "";
	struct k8s_client *client;

	setenv("PGHA_K8S_SERVICEACCOUNT_DIR", directory, 1);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	ok(!k8s_client_new(NULL, NULL, why, sizeof why) && strstr(why, "KUBERNETES_SERVICE_HOST"),
	   "outside a pod and without a kubeconfig, says what is missing: %s", why);

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	write_file(directory, "ca.crt", "not checked until a request\n");
	ok(!k8s_client_new("", NULL, why, sizeof why) && strstr(why, "the service account: cannot read the token file") &&
		   strstr(why, "/token"),
	   "without a token, says so: %s", why);

	write_file(directory, "token", "eyJhbGciOiJSUzI1NiJ9.sa-token\n");
	write_file(directory, "namespace", "databases\n");
	why[0] = '\0';
	client = k8s_client_new("", NULL, why, sizeof why);
	ok(client, "in a pod: %s", why);
	if (client) {
		is_str(k8s_client_server(client), "https://10.96.0.1:443", "the service's address");
		is_str(k8s_client_namespace(client), "databases", "the namespace file, without its newline");
		is_int(k8s_client_requests(client), 0, "no request yet");
		k8s_client_free(client);
	}

	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	remove_file(directory, "namespace");
	why[0] = '\0';
	client = k8s_client_new(NULL, NULL, why, sizeof why);
	ok(client, "an IPv6 service: %s", why);
	if (client) {
		is_str(k8s_client_server(client), "https://[fd00:10:96::1]:443", "is bracketed");
		is_str(k8s_client_namespace(client), "default", "without a namespace file, default");
		k8s_client_free(client);
	}

	write_file(directory, "token", " \n");
	ok(!k8s_client_new(NULL, NULL, why, sizeof why) && strstr(why, "holds no token (it is empty)"),
	   "an empty token file is refused: %s", why);
	write_file(directory, "token", "two\nlines\n");
	ok(!k8s_client_new(NULL, NULL, why, sizeof why) && strstr(why, "unexpected characters"),
	   "a token that could break the header is refused: %s", why);
	ok(!strstr(why, "two"), "without showing it");

	remove_file(directory, "ca.crt");
	write_file(directory, "token", "t\n");
	ok(!k8s_client_new(NULL, NULL, why, sizeof why) && strstr(why, "CA certificate") && strstr(why, "ca.crt"),
	   "a missing CA is named: %s", why);
	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	ok(!k8s_client_new(NULL, NULL, why, sizeof why) && strstr(why, "not a port number"),
	   "a port that is no number: %s", why);
	remove_file(directory, "token");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("PGHA_K8S_SERVICEACCOUNT_DIR");
}

/* A TCP port nothing listens on. */
static int closed_port(void)
{
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t length = sizeof address;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&address, sizeof address) == 0 &&
	    getsockname(fd, (struct sockaddr *)&address, &length) == 0)
		port = ntohs(address.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void test_kubeconfig(const char *directory)
{
	char why[512] = "";
	char *path = xasprintf("%s/config", directory);
	char *text = xasprintf("current-context: c\n"
			       "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
			       "clusters:\n- name: k\n  cluster:\n    server: http://127.0.0.1:%d/\n"
			       "users:\n- name: u\n  user:\n    tokenFile: token\n",
			       closed_port());

	write_file(directory, "config", text);
	free(text);
	ok(!k8s_client_new(path, NULL, why, sizeof why) && strstr(why, "kubeconfig ") &&
		   strstr(why, "cannot read the token file") && strstr(why, "/token"),
	   "a kubeconfig whose token file is missing: %s", why);

	write_file(directory, "token", "kubeconfig-token\n");
	struct k8s_limits limits = {.connect_timeout_ms = 1000, .timeout_ms = 2000};
	why[0] = '\0';
	struct k8s_client *client = k8s_client_new(path, &limits, why, sizeof why);
	ok(client, "a kubeconfig with a relative token file: %s", why);
	if (client) {
		ok(strncmp(k8s_client_server(client), "http://127.0.0.1:", 17) == 0 &&
			   k8s_client_server(client)[strlen(k8s_client_server(client)) - 1] != '/',
		   "the server, without its trailing slash: %s", k8s_client_server(client));
		is_str(k8s_client_namespace(client), "default", "no namespace in the context: default");

		json_t *sentinel = json_object(), *object = sentinel;
		time_t started = time(NULL);
		int status = k8s_get(client, "/api/v1/namespaces/default/pods/x", &object, why, sizeof why);
		is_int(status, -1, "a closed port: no answer");
		ok(!object, "and no object");
		json_decref(sentinel);
		ok(strstr(why, "GET /api/v1/namespaces/default/pods/x: no answer from http://127.0.0.1:") != NULL,
		   "the reason names the request and the server: %s", why);
		ok(!strstr(why, "kubeconfig-token"), "but not the token");
		ok(time(NULL) - started < 3, "at once");
		is_int(k8s_client_requests(client), 1, "one request counted");

		/* a token file gone for a moment (a rotation half done) keeps the token read before */
		remove_file(directory, "token");
		status = k8s_delete(client, "/api/v1/namespaces/default/pods/x", 0, NULL, why, sizeof why);
		ok(status == -1 && strstr(why, "no answer from"), "a vanished token file keeps the last token: %s", why);
		is_int(k8s_client_requests(client), 2, "and the request is sent");

		json_t *unversioned = json_pack("{s:{}}", "metadata"), *array = json_array();
		status = k8s_replace(client, "/api/v1/namespaces/default/pods/x", unversioned, NULL, why, sizeof why);
		ok(status == -1 && strstr(why, "carries no metadata.resourceVersion"),
		   "a replace without a resourceVersion is refused before it is sent: %s", why);
		is_int(k8s_client_requests(client), 2, "nothing sent");
		ok(k8s_merge_patch(client, "/x", array, NULL, NULL, why, sizeof why) == -1 &&
			   strstr(why, "must be a JSON object"),
		   "a merge patch must be an object: %s", why);
		json_decref(unversioned);
		json_decref(array);
		k8s_client_free(client);
	}
	k8s_client_free(NULL);
	remove_file(directory, "config");
	free(path);
}

int main(void)
{
	char directory[] = "/tmp/pgha-test-k8s-XXXXXX";

	if (!mkdtemp(directory))
		return 1;
	test_errors();
	test_escape();
	test_service_account(directory);
	test_kubeconfig(directory);
	rmdir(directory);
	return done_testing();
}
