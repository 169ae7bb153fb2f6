/* control: the control socket, one JSON object per line over a Unix stream socket: the server side in pghad's loop, the client side for pghactl. */
#ifndef PGHA_CONTROL_H
#define PGHA_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <systemd/sd-event.h>

/* Answers one request; returns a new reference to the reply object. */
typedef json_t *(*control_handler_fn)(const json_t *request, void *userdata);

struct control_server;

/* Listens on path (mode 0660) and serves requests from the loop. Refuses when another
 * process answers on path; removes a stale socket left by a crash. */
struct control_server *control_listen(sd_event *event, const char *path, control_handler_fn handler,
				      void *userdata);
void control_close(struct control_server *server);

/* What the server sends back for one request line (without its newline): handler's reply,
 * or a refusal when the line is not one JSON object, as one JSON line ending in '\n'.
 * Never fails: a reply that cannot be encoded becomes a refusal that says so. A new
 * string. The server calls it for each line; the control fuzz target calls it directly. */
char *control_answer(const char *line, size_t length, control_handler_fn handler, void *userdata);

/* Sends request and waits at most timeout_ms for the reply. Returns NULL and writes
 * the reason into why when there is none. */
json_t *control_request(const char *path, const json_t *request, int timeout_ms, char *why, size_t why_size);

#endif
