/* test-kubeconfig: the YAML subset reader, and the current context of the kubeconfig shapes kubectl, kind and minikube write. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kubeconfig.h"
#include "memory.h"
#include "tap.h"
#include "yaml.h"

/* YAML in, the JSON it reads as (compact, keys sorted), or the start of the error. */
static const struct {
	const char *name;
	const char *yaml;
	const char *json;
	const char *error;
} yaml_cases[] = {
	{"a mapping of plain scalars", "a: b\nc: d e\n", "{\"a\":\"b\",\"c\":\"d e\"}", NULL},
	{"nested mappings", "a:\n  b:\n    c: d\n  e: f\ng: h\n", "{\"a\":{\"b\":{\"c\":\"d\"},\"e\":\"f\"},\"g\":\"h\"}", NULL},
	{"a sequence at the key's indentation, as kubectl writes it", "a:\n- x\n- y\nb: z\n",
	 "{\"a\":[\"x\",\"y\"],\"b\":\"z\"}", NULL},
	{"a sequence indented under its key", "a:\n  - x\n  - y\nb: z\n", "{\"a\":[\"x\",\"y\"],\"b\":\"z\"}", NULL},
	{"- name: items whose mapping continues below", "l:\n- name: one\n  v:\n    k: 1\n- name: two\n",
	 "{\"l\":[{\"name\":\"one\",\"v\":{\"k\":\"1\"}},{\"name\":\"two\"}]}", NULL},
	{"an item's mapping starting on the next line", "- \n  a: b\n-\n  c: d\n", "[{\"a\":\"b\"},{\"c\":\"d\"}]", NULL},
	{"nested sequences", "- - a\n  - b\n- c\n", "[[\"a\",\"b\"],\"c\"]", NULL},
	{"an item indented by more than one space", "-   a: b\n    c: d\n", "[{\"a\":\"b\",\"c\":\"d\"}]", NULL},
	{"null, booleans and numbers", "a:\nb: ~\nc: null\nd: true\ne: False\nf: 42\ng: \"true\"\n",
	 "{\"a\":null,\"b\":null,\"c\":null,\"d\":true,\"e\":false,\"f\":\"42\",\"g\":\"true\"}", NULL},
	{"comments, blank lines and document markers", "%YAML 1.2\n---   # start\n# c\n\na: b # c\n\n#x\nc: 'd # e'\n...\nz: 1\n",
	 "{\"a\":\"b\",\"c\":\"d # e\"}", NULL},
	{"a hash without a blank before it is content", "a: b#c\n", "{\"a\":\"b#c\"}", NULL},
	{"URLs and times keep their colons", "server: https://[::1]:6443/x\nt: Mon, 01 Jan 2024 10:00:00 UTC\n",
	 "{\"server\":\"https://[::1]:6443/x\",\"t\":\"Mon, 01 Jan 2024 10:00:00 UTC\"}", NULL},
	{"single quotes", "a: 'it''s: #1'\n'k y': ''\n", "{\"a\":\"it's: #1\",\"k y\":\"\"}", NULL},
	{"double quotes and escapes", "a: \"t\\tn\\n\\\"q\\\" \\\\ \\u00e9\\x41\\U0001F600\"\n\"k\\u0021\": x\n",
	 "{\"a\":\"t\\tn\\n\\\"q\\\" \\\\ \xc3\xa9" "A\xf0\x9f\x98\x80\",\"k!\":\"x\"}", NULL},
	{"a long plain scalar folded by kubectl", "a:\n  hint: Install the plugin by\n    following https://x.example/y\n  b: c\n",
	 "{\"a\":{\"b\":\"c\",\"hint\":\"Install the plugin by following https://x.example/y\"}}", NULL},
	{"an empty line in a plain scalar is a newline", "a: one\n\n  two\nb: c\n", "{\"a\":\"one\\ntwo\",\"b\":\"c\"}", NULL},
	{"a double-quoted scalar over lines", "a: \"one\n  two\\\n  three\n\n  four\"\nb: c\n",
	 "{\"a\":\"one twothree\\nfour\",\"b\":\"c\"}", NULL},
	{"flow collections on one line", "a: {}\nb: []\nc: [x, 'y', {k: v, n: }]\nd: {e: [1, 2],}\n",
	 "{\"a\":{},\"b\":[],\"c\":[\"x\",\"y\",{\"k\":\"v\",\"n\":null}],\"d\":{\"e\":[\"1\",\"2\"]}}", NULL},
	{"CRLF line ends and a byte order mark", "\xEF\xBB\xBF" "a: b\r\nc:\r\n- d\r\n", "{\"a\":\"b\",\"c\":[\"d\"]}", NULL},
	{"an empty document is null", "# nothing\n", "null", NULL},
	{"a scalar document", "just text\n", "\"just text\"", NULL},
	{"a duplicate key", "a: b\na: c\n", NULL, "line 2: the key \"a\" appears twice"},
	{"a tab in the indentation", "a:\n\tb: c\n", NULL, "line 2: a tab in the indentation"},
	{"an indentation that fits nothing", "a:\n    b: c\n  d: e\n", NULL, "line 3: unexpected indentation"},
	{"a value holding \": \"", "a: b: c\n", NULL, "line 1: a value cannot hold \": \" unless quoted"},
	{"a block scalar", "a: |\n  text\n", NULL, "line 1: block scalars (| and >) are not supported"},
	{"an anchor", "a: &x b\n", NULL, "line 1: anchors (&) are not supported"},
	{"an alias", "a: *x\n", NULL, "line 1: aliases (*) are not supported"},
	{"a tag", "a: !!str b\n", NULL, "line 1: tags (!) are not supported"},
	{"a second document", "a: b\n---\nc: d\n", NULL, "line 2: a second document (---) is not supported"},
	{"an unterminated quote", "a: \"b\nc: d\n", NULL, "line 1: a quoted scalar that never ends"},
	{"a flow collection over lines", "a: [b,\n  c]\n", NULL, "line 1: a flow collection ([...]) must end"},
	{"text after a quoted scalar", "a: 'b' c\n", NULL, "line 1: unexpected text after a quoted scalar"},
	{"a bad escape", "a: \"\\q\"\n", NULL, "line 1: an unknown escape"},
	{"a sequence where keys are", "a: b\n- c\n", NULL, "line 2: a sequence item (-) where a key was expected"},
	{"a key without a colon", "a: b\nc\n", NULL, "line 2: expected \"key: value\""},
	{"text after the document", "  a: b\nc: d\n", NULL, "line 2: unexpected text after the document"},
};

/* Inputs that a careless reader would spend quadratic time or unbounded stack on. */
static void test_hostile_yaml(void)
{
	size_t lines = 200000;
	char why[256] = "";
	char *text = xmalloc(lines * 4 + 16);
	char *out = stpcpy(text, "a: \"open\n");
	for (size_t i = 0; i < lines; i++)
		out = stpcpy(out, " xy\n");
	time_t started = time(NULL);
	ok(!yaml_parse(text, why, sizeof why) && strcmp(why, "line 1: a quoted scalar that never ends") == 0,
	   "a quote that never closes in a long file: %s", why);
	out = stpcpy(text, "a: plain\n");
	for (size_t i = 0; i < lines; i++)
		out = stpcpy(out, " xy\n");
	json_t *value = yaml_parse(text, why, sizeof why);
	ok(value && json_string_length(json_object_get(value, "a")) == 5 + lines * 3,
	   "a plain scalar over many lines");
	json_decref(value);
	ok(time(NULL) - started < 5, "both in linear time");

	out = text;
	for (int i = 0; i < 10000; i++)
		out = stpcpy(out, "- ");
	strcpy(out, "a\n");
	ok(!yaml_parse(text, why, sizeof why) && strcmp(why, "line 1: nested more than 64 levels deep") == 0,
	   "deep block nesting is refused: %s", why);
	memset(text, '[', 100000);
	text[100000] = '\0';
	ok(!yaml_parse(text, why, sizeof why) && strcmp(why, "line 1: nested more than 64 levels deep") == 0,
	   "deep flow nesting is refused: %s", why);
	out = text;
	for (int i = 0; i < 1000; i++)
		out += sprintf(out, "%*sk:\n", i, "");
	ok(!yaml_parse(text, why, sizeof why) && strcmp(why, "line 65: nested more than 64 levels deep") == 0,
	   "deep indentation is refused: %s", why);
	out = text;
	for (int i = 0; i < 60; i++)
		out += sprintf(out, "%*sk:\n", i, "");
	value = yaml_parse(text, why, sizeof why);
	ok(value != NULL, "but 60 levels are read: %s", why);
	json_decref(value);
	free(text);
}

static void test_yaml(void)
{
	for (size_t i = 0; i < sizeof yaml_cases / sizeof *yaml_cases; i++) {
		char why[256] = "";
		json_t *value = yaml_parse(yaml_cases[i].yaml, why, sizeof why);
		if (yaml_cases[i].json) {
			char *text = value ? json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
			is_str(text, yaml_cases[i].json, "yaml: %s", yaml_cases[i].name);
			if (!value)
				diag("error: %s", why);
			free(text);
		} else {
			ok(!value && strncmp(why, yaml_cases[i].error, strlen(yaml_cases[i].error)) == 0, "yaml refuses %s: %s",
			   yaml_cases[i].name, why);
		}
		json_decref(value);
	}
}

/* "aGVsbG8=" is "hello", "Y2VydA==" "cert", "a2V5" "key". */
static const char kind_config[] = "apiVersion: v1\n"
				  "clusters:\n"
				  "- cluster:\n"
				  "    certificate-authority-data: aGVsbG8=\n"
				  "    server: https://127.0.0.1:41443\n"
				  "  name: kind-kind\n"
				  "contexts:\n"
				  "- context:\n"
				  "    cluster: kind-kind\n"
				  "    user: kind-kind\n"
				  "  name: kind-kind\n"
				  "current-context: kind-kind\n"
				  "kind: Config\n"
				  "preferences: {}\n"
				  "users:\n"
				  "- name: kind-kind\n"
				  "  user:\n"
				  "    client-certificate-data: Y2VydA==\n"
				  "    client-key-data: a2V5\n";

/* kubectl config set-cluster / set-credentials / set-context, two of each, with a GKE
 * user whose exec plugin this reader must parse but the chosen context does not use. */
static const char kubectl_config[] = "apiVersion: v1\n"
				     "clusters:\n"
				     "- cluster:\n"
				     "    insecure-skip-tls-verify: true\n"
				     "    server: http://127.0.0.1:8080\n"
				     "  name: local\n"
				     "- cluster:\n"
				     "    certificate-authority: pki/ca.crt\n"
				     "    extensions:\n"
				     "    - extension:\n"
				     "        last-update: Mon, 01 Jan 2024 10:00:00 UTC\n"
				     "        provider: minikube.sigs.k8s.io\n"
				     "        version: v1.32.0\n"
				     "      name: cluster_info\n"
				     "    server: https://192.168.49.2:8443\n"
				     "  name: minikube\n"
				     "contexts:\n"
				     "- context:\n"
				     "    cluster: minikube\n"
				     "    namespace: databases\n"
				     "    user: minikube\n"
				     "  name: minikube\n"
				     "- context:\n"
				     "    cluster: local\n"
				     "    user: gke\n"
				     "  name: gke\n"
				     "- context:\n"
				     "    cluster: local\n"
				     "    user: robot\n"
				     "  name: robot\n"
				     "- context:\n"
				     "    cluster: local\n"
				     "    user: ghost\n"
				     "  name: ghost\n"
				     "- context:\n"
				     "    cluster: nowhere\n"
				     "  name: lost\n"
				     "- context:\n"
				     "    cluster: local\n"
				     "  name: anonymous\n"
				     "current-context: %s\n"
				     "kind: Config\n"
				     "preferences: {}\n"
				     "users:\n"
				     "- name: minikube\n"
				     "  user:\n"
				     "    client-certificate: /home/u/.minikube/client.crt\n"
				     "    client-key: keys/client.key\n"
				     "- name: gke\n"
				     "  user:\n"
				     "    exec:\n"
				     "      apiVersion: client.authentication.k8s.io/v1beta1\n"
				     "      args: null\n"
				     "      command: gke-gcloud-auth-plugin\n"
				     "      env: null\n"
				     "      installHint: Install gke-gcloud-auth-plugin for use with kubectl by following\n"
				     "        https://cloud.google.com/blog/products/containers-kubernetes/kubectl-auth-changes-in-gke\n"
				     "      interactiveMode: IfAvailable\n"
				     "      provideClusterInfo: true\n"
				     "- name: robot\n"
				     "  user:\n"
				     "    token: \"abc.def-ghi\"\n"
				     "    tokenFile: /var/run/token\n";

static char *kubectl_with(const char *context)
{
	return xasprintf(kubectl_config, context);
}

static bool blob_is(const struct kubeconfig_blob *blob, const char *text)
{
	return blob->data && blob->length == strlen(text) && memcmp(blob->data, text, blob->length) == 0;
}

static void test_kind(void)
{
	struct kubeconfig config;
	char why[512] = "";

	ok(kubeconfig_parse(kind_config, "/home/u/.kube/config", &config, why, sizeof why), "kind's kubeconfig: %s", why);
	is_str(config.context, "kind-kind", "its current context");
	is_str(config.server, "https://127.0.0.1:41443", "its server");
	ok(!config.namespace, "no namespace: the client says default");
	ok(blob_is(&config.certificate_authority_data, "hello"), "the CA inline, decoded");
	ok(blob_is(&config.client_certificate_data, "cert"), "the client certificate inline");
	ok(blob_is(&config.client_key_data, "key"), "the client key inline, without padding");
	ok(!config.token && !config.token_file && !config.insecure_skip_tls_verify && !config.certificate_authority,
	   "nothing else");
	kubeconfig_clear(&config);
	ok(!config.server && !config.client_key_data.data, "cleared");
}

static void test_kubectl(void)
{
	struct kubeconfig config;
	char why[512] = "";
	char *text = kubectl_with("minikube");

	ok(kubeconfig_parse(text, "/home/u/.kube/config", &config, why, sizeof why), "minikube's context: %s", why);
	free(text);
	is_str(config.server, "https://192.168.49.2:8443", "its server");
	is_str(config.namespace, "databases", "the context's namespace");
	is_str(config.certificate_authority, "/home/u/.kube/pki/ca.crt", "a relative CA is relative to the file");
	is_str(config.client_certificate, "/home/u/.minikube/client.crt", "an absolute certificate stays");
	is_str(config.client_key, "/home/u/.kube/keys/client.key", "a relative key too");
	kubeconfig_clear(&config);

	text = kubectl_with("robot");
	ok(kubeconfig_parse(text, "config", &config, why, sizeof why), "a token user: %s", why);
	free(text);
	is_str(config.token, "abc.def-ghi", "its token");
	is_str(config.token_file, "/var/run/token", "its token file");
	ok(config.insecure_skip_tls_verify, "insecure-skip-tls-verify");
	is_str(config.server, "http://127.0.0.1:8080", "a plain http server");
	kubeconfig_clear(&config);

	text = kubectl_with("anonymous");
	ok(kubeconfig_parse(text, "config", &config, why, sizeof why) && !config.token && !config.client_key,
	   "a context without a user has no credentials: %s", why);
	free(text);
	kubeconfig_clear(&config);
}

static const struct {
	const char *name;
	const char *context; /* the current context of kubectl_config; NULL: text below */
	const char *text;
	const char *error;
} refused[] = {
	{"a user the file does not define", "ghost", NULL,
	 "kubeconfig /k/config: context ghost names user ghost, which the file does not define"},
	{"a cluster the file does not define", "lost", NULL,
	 "kubeconfig /k/config: context lost names cluster nowhere, which the file does not define"},
	{"a current context the file does not define", "elsewhere", NULL,
	 "kubeconfig /k/config: current-context elsewhere is not among its contexts"},
	{"an exec plugin", "gke", NULL,
	 "kubeconfig /k/config: user gke authenticates with exec, which pgha does not support: give it a token, a "
	 "tokenFile or a client certificate"},
	{"no current context", NULL, "apiVersion: v1\nclusters: []\n",
	 "kubeconfig /k/config: no current-context is set"},
	{"a file that is not YAML of the subset", NULL, "a: b\n\tc: d\n", "kubeconfig /k/config: line 2: a tab"},
	{"a file that is no mapping", NULL, "- a\n", "kubeconfig /k/config: not a kubeconfig"},
	{"invalid base64", NULL,
	 "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster:\n"
	 "    server: https://h\n    certificate-authority-data: aGVsbG8*\n",
	 "kubeconfig /k/config: cluster k: certificate-authority-data is not valid base64"},
	{"a server that is no URL", NULL,
	 "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster:\n"
	 "    server: h:6443\n",
	 "kubeconfig /k/config: cluster k: server h:6443 is not an https:// or http:// address"},
	{"a cluster without a server", NULL,
	 "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {}\n",
	 "kubeconfig /k/config: cluster k has no server"},
	{"insecure with a CA", NULL,
	 "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster:\n"
	 "    server: https://h\n    certificate-authority: /ca\n    insecure-skip-tls-verify: true\n",
	 "kubeconfig /k/config: cluster k: insecure-skip-tls-verify and a certificate authority exclude each other"},
	{"a certificate without its key", NULL,
	 "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n"
	 "  cluster:\n    server: https://h\nusers:\n- name: u\n  user:\n    client-certificate-data: Y2VydA==\n",
	 "kubeconfig /k/config: user u has a client certificate but no client key"},
	{"a token that is no string", NULL,
	 "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n"
	 "  cluster:\n    server: https://h\nusers:\n- name: u\n  user:\n    token: [a]\n",
	 "kubeconfig /k/config: user u: token must be a string"},
};

static void test_refused(void)
{
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		struct kubeconfig config;
		char why[512] = "";
		char *text = refused[i].context ? kubectl_with(refused[i].context) : xstrdup(refused[i].text);
		bool parsed = kubeconfig_parse(text, "/k/config", &config, why, sizeof why);
		ok(!parsed && strncmp(why, refused[i].error, strlen(refused[i].error)) == 0, "refuses %s: %s",
		   refused[i].name, why);
		ok(!config.server && !config.context, "and leaves nothing behind");
		free(text);
	}
}

static void test_json_and_files(void)
{
	struct kubeconfig config;
	char why[512] = "";
	static const char json[] = "{\"current-context\": \"c\", \"contexts\": [{\"name\": \"c\", \"context\": "
				   "{\"cluster\": \"k\", \"user\": \"u\", \"namespace\": \"ns\"}}], \"clusters\": "
				   "[{\"name\": \"k\", \"cluster\": {\"server\": \"https://h:1/\"}}], \"users\": "
				   "[{\"name\": \"u\", \"user\": {\"token\": \"t\"}}]}";

	ok(kubeconfig_parse(json, "/k/config.json", &config, why, sizeof why), "a JSON kubeconfig: %s", why);
	is_str(config.namespace, "ns", "its namespace");
	is_str(config.token, "t", "its token");
	kubeconfig_clear(&config);

	char path[] = "/tmp/pgha-test-kubeconfig-XXXXXX";
	int fd = mkstemp(path);
	ok(fd >= 0 && write(fd, kind_config, strlen(kind_config)) == (ssize_t)strlen(kind_config), "a kubeconfig file");
	close(fd);
	ok(kubeconfig_load(path, &config, why, sizeof why) && strcmp(config.server, "https://127.0.0.1:41443") == 0,
	   "is loaded: %s", why);
	kubeconfig_clear(&config);
	unlink(path);
	ok(!kubeconfig_load(path, &config, why, sizeof why) && strstr(why, "cannot read kubeconfig /tmp/") &&
		   strstr(why, "No such file or directory"),
	   "a missing file says so: %s", why);
}

int main(void)
{
	test_yaml();
	test_hostile_yaml();
	test_kind();
	test_kubectl();
	test_refused();
	test_json_and_files();
	return done_testing();
}
