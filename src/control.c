/* control: the control socket, one JSON object per line over a Unix stream socket: the server side in pghad's loop, the client side for pghactl. */
#include "autoconfig.h"

#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "jsonpack.h"
#include "log.h"
#include "memory.h"

/* A request larger than this is not one pghactl sends: the connection is dropped. */
#define CONTROL_MAX_LINE (64 * 1024)

struct control_server {
	sd_event *event;
	sd_event_source *listener;
	int fd;
	char *path;
	control_handler_fn handler;
	void *userdata;
};

struct control_client {
	struct control_server *server;
	sd_event_source *source;
	int fd;
	char *input;
	size_t input_length;
	char *output;
	size_t output_length, output_sent;
	bool peer_closed; /* the peer sent everything it will send */
};

static bool address_of(const char *path, struct sockaddr_un *address)
{
	if (strlen(path) >= sizeof address->sun_path)
		return false;
	*address = (struct sockaddr_un){.sun_family = AF_UNIX};
	memcpy(address->sun_path, path, strlen(path) + 1);
	return true;
}

static void client_free(struct control_client *client)
{
	sd_event_source_disable_unref(client->source);
	close(client->fd);
	free(client->input);
	free(client->output);
	free(client);
}

char *control_answer(const char *line, size_t length, control_handler_fn handler, void *userdata)
{
	json_error_t error;
	json_t *request = json_loadb(line, length, 0, &error);
	json_t *reply;

	if (!request || !json_is_object(request))
		reply = jsonpack("{s:b, s:s}", "ok", false, "error", "a request is one JSON object per line");
	else
		reply = handler(request, userdata);
	json_decref(request);
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	if (!text) {
		/* jsonpack has logged where, when it was a reply builder */
		log_error("control socket: the reply to a request could not be encoded");
		text = xstrdup("{\"ok\":false,\"error\":\"pghad could not encode its reply (a bug: see its log)\"}");
	}
	size_t text_length = strlen(text);
	text = xreallocarray(text, text_length + 2, 1);
	memcpy(text + text_length, "\n", 2);
	return text;
}

/* Answers every complete line received so far. */
static void client_handle_lines(struct control_client *client)
{
	char *newline;

	while ((newline = memchr(client->input, '\n', client->input_length))) {
		size_t line_length = (size_t)(newline - client->input);
		char *reply = control_answer(client->input, line_length, client->server->handler, client->server->userdata);
		size_t length = strlen(reply);

		client->output = xreallocarray(client->output, client->output_length + length, 1);
		memcpy(client->output + client->output_length, reply, length);
		client->output_length += length;
		free(reply);
		memmove(client->input, newline + 1, client->input_length - line_length - 1);
		client->input_length -= line_length + 1;
	}
}

static int on_client(sd_event_source *source, int fd, uint32_t events, void *userdata)
{
	struct control_client *client = userdata;

	if ((events & EPOLLIN) && !client->peer_closed) {
		char buffer[4096];
		ssize_t got = read(fd, buffer, sizeof buffer);
		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
			client->peer_closed = true;
		} else if (got > 0) {
			if (client->input_length + (size_t)got > CONTROL_MAX_LINE) {
				log_warning("control socket: request longer than %d bytes, connection dropped", CONTROL_MAX_LINE);
				client_free(client);
				return 0;
			}
			client->input = xreallocarray(client->input, client->input_length + (size_t)got, 1);
			memcpy(client->input + client->input_length, buffer, (size_t)got);
			client->input_length += (size_t)got;
			client_handle_lines(client);
		}
	}
	if (client->output_sent < client->output_length) {
		ssize_t sent = send(fd, client->output + client->output_sent, client->output_length - client->output_sent,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent < 0 && errno != EAGAIN && errno != EINTR) {
			client_free(client);
			return 0;
		}
		if (sent > 0)
			client->output_sent += (size_t)sent;
	}
	if (client->output_sent == client->output_length) {
		client->output_sent = client->output_length = 0;
		if (client->peer_closed || (events & (EPOLLHUP | EPOLLERR))) {
			client_free(client);
			return 0;
		}
	}
	/* read until the peer is done; ask for writability only while a reply waits */
	sd_event_source_set_io_events(source, (client->peer_closed ? 0 : EPOLLIN) |
						      (client->output_length ? EPOLLOUT : 0));
	return 0;
}

static int on_accept(sd_event_source *source, int fd, uint32_t events, void *userdata)
{
	struct control_server *server = userdata;
	int connection = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (connection < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warning("control socket: accept failed: %m");
		return 0;
	}
	struct control_client *client = xcalloc(1, sizeof *client);
	client->server = server;
	client->fd = connection;
	int result = sd_event_add_io(server->event, &client->source, connection, EPOLLIN, on_client, client);
	if (result < 0) {
		log_warning("control socket: cannot watch a connection: %s", strerror(-result));
		close(connection);
		free(client);
		return 0;
	}
	return 0;
}

/* True when a process accepts connections on path. */
static bool someone_listens(const struct sockaddr_un *address)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool answered;

	if (fd < 0)
		return false;
	answered = connect(fd, (const struct sockaddr *)address, sizeof *address) == 0;
	close(fd);
	return answered;
}

struct control_server *control_listen(sd_event *event, const char *path, control_handler_fn handler, void *userdata)
{
	struct sockaddr_un address;
	struct stat status;
	int fd;

	if (!address_of(path, &address)) {
		log_error("control socket %s: the path is too long for a Unix socket", path);
		return NULL;
	}
	if (lstat(path, &status) == 0) {
		if (!S_ISSOCK(status.st_mode)) {
			log_error("control socket %s exists and is not a socket: not touching it", path);
			return NULL;
		}
		if (someone_listens(&address)) {
			log_error("control socket %s answers: another pghad is running with it", path);
			return NULL;
		}
		unlink(path); /* left by a pghad that crashed */
	}
	char *directory = xstrdup(path);
	*strrchr(directory, '/') = '\0';
	if (directory[0] && mkdir(directory, 0750) < 0 && errno != EEXIST) {
		log_error("cannot create the directory of the control socket %s: %m", path);
		free(directory);
		return NULL;
	}
	free(directory);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("control socket: %m");
		return NULL;
	}
	/* create the socket with its final mode: no window in which others could connect */
	mode_t previous = umask(0117);
	int bound = bind(fd, (struct sockaddr *)&address, sizeof address);
	umask(previous);
	if (bound < 0 || listen(fd, 16) < 0) {
		log_error("cannot listen on the control socket %s: %m", path);
		close(fd);
		return NULL;
	}
	struct control_server *server = xcalloc(1, sizeof *server);
	*server = (struct control_server){.event = event, .fd = fd, .path = xstrdup(path), .handler = handler,
					  .userdata = userdata};
	int result = sd_event_add_io(event, &server->listener, fd, EPOLLIN, on_accept, server);
	if (result < 0) {
		log_error("control socket: cannot watch %s: %s", path, strerror(-result));
		control_close(server);
		return NULL;
	}
	return server;
}

void control_close(struct control_server *server)
{
	if (!server)
		return;
	sd_event_source_disable_unref(server->listener);
	close(server->fd);
	unlink(server->path);
	free(server->path);
	free(server);
}

static long long now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

json_t *control_request(const char *path, const json_t *request, int timeout_ms, char *why, size_t why_size)
{
	struct sockaddr_un address;
	long long deadline = now_ms() + timeout_ms;
	char *text = NULL, *input = NULL;
	size_t input_length = 0;
	json_t *reply = NULL;
	int fd = -1;

	if (!address_of(path, &address)) {
		snprintf(why, why_size, "%s: the path is too long for a Unix socket", path);
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
		snprintf(why, why_size, "cannot connect to pghad at %s: %s (is pghad running?)", path, strerror(errno));
		goto out;
	}
	text = request ? json_dumps(request, JSON_COMPACT) : NULL;
	if (!text) {
		snprintf(why, why_size, "the request to pghad cannot be encoded");
		goto out;
	}
	size_t length = strlen(text), sent = 0;
	text = xreallocarray(text, length + 2, 1);
	memcpy(text + length, "\n", 2);
	length++;
	while (sent < length) {
		struct pollfd wait = {.fd = fd, .events = POLLOUT};
		long long left = deadline - now_ms();
		if (left <= 0 || poll(&wait, 1, (int)left) <= 0) {
			snprintf(why, why_size, "pghad at %s did not take the request within %d ms", path, timeout_ms);
			goto out;
		}
		ssize_t written = send(fd, text + sent, length - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (written < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, why_size, "sending to pghad at %s: %s", path, strerror(errno));
			goto out;
		}
		if (written > 0)
			sent += (size_t)written;
	}
	for (;;) {
		char buffer[4096];
		struct pollfd wait = {.fd = fd, .events = POLLIN};
		long long left = deadline - now_ms();
		if (left <= 0 || poll(&wait, 1, (int)left) <= 0) {
			snprintf(why, why_size, "pghad at %s did not answer within %d ms", path, timeout_ms);
			goto out;
		}
		ssize_t got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0) {
			snprintf(why, why_size, "pghad at %s closed the connection without answering", path);
			goto out;
		}
		input = xreallocarray(input, input_length + (size_t)got, 1);
		memcpy(input + input_length, buffer, (size_t)got);
		input_length += (size_t)got;
		char *newline = memchr(input, '\n', input_length);
		if (newline) {
			json_error_t error;
			reply = json_loadb(input, (size_t)(newline - input), 0, &error);
			if (!reply || !json_is_object(reply)) {
				json_decref(reply);
				reply = NULL;
				snprintf(why, why_size, "pghad at %s answered something that is not a JSON object: %s", path,
					 error.text);
			}
			goto out;
		}
		if (input_length > CONTROL_MAX_LINE * 16) {
			snprintf(why, why_size, "pghad at %s answered more than %d bytes without a newline", path,
				 CONTROL_MAX_LINE * 16);
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(text);
	free(input);
	return reply;
}
