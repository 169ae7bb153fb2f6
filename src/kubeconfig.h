/* kubeconfig: what a kubeconfig file's current context resolves to (API server, credentials, namespace), from the YAML kubectl and kind write, or JSON. */
#ifndef PGHA_KUBECONFIG_H
#define PGHA_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct kubeconfig_blob {
	unsigned char *data; /* NULL when absent */
	size_t length;
};

/* Standard base64 with padding, as kubeconfig *-data fields and Secret data hold it;
 * line breaks and blanks are skipped. False when text is not base64 or decodes to
 * nothing; blob->data is then left alone, else the caller frees it. */
bool kubeconfig_decode_base64(const char *text, struct kubeconfig_blob *blob);

/* One context's server and credentials; k8s.c fills the same from a pod's service
 * account. Files are absolute or relative to the working directory (kubeconfig_load
 * resolves those of the file against its directory, as kubectl does). */
struct kubeconfig {
	char *context;   /* the current context's name (NULL for a service account) */
	char *server;    /* "https://host:port", maybe with a path, as the file says */
	char *namespace; /* NULL when the context names none */
	bool insecure_skip_tls_verify;
	char *certificate_authority; /* a file, or NULL for the system's CAs */
	struct kubeconfig_blob certificate_authority_data;
	char *client_certificate;
	struct kubeconfig_blob client_certificate_data;
	char *client_key;
	struct kubeconfig_blob client_key_data;
	char *token;      /* a bearer token, or NULL */
	char *token_file; /* a file holding the token, re-read when it changes; wins over token */
	char *proxy_url;  /* NULL: no proxy, whatever the environment says */
};

/* Reads path and resolves its current context. false with "kubeconfig PATH: reason" in
 * why, naming the context, cluster or user at fault; config is then empty. */
bool kubeconfig_load(const char *path, struct kubeconfig *config, char *why, size_t why_size);
/* The same from text already read; path names it in messages and anchors relative files. */
bool kubeconfig_parse(const char *text, const char *path, struct kubeconfig *config, char *why, size_t why_size);
/* Frees what config holds, wiping the token and the client key first. */
void kubeconfig_clear(struct kubeconfig *config);

#endif
