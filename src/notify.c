/* notify: the service manager protocol (sd_notify): readiness, reloads, stopping and a status line. */
#include "autoconfig.h"

#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

/* The last STATUS= sent, whoever sent it, so that notify_status_update sends only changes. */
static char last_status[1024];

/* Without NOTIFY_SOCKET sd_notify does nothing and returns 0, so these are safe anywhere. */
static void notify_send(const char *message)
{
	int result = sd_notify(0, message);
	if (result < 0)
		log_debug("sd_notify failed: %s", message);
}

void notify_ready(void)
{
	notify_send("READY=1");
}

void notify_reloading(void)
{
	struct timespec now;
	char message[96];

	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(message, sizeof message, "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000ULL);
	notify_send(message);
}

void notify_stopping(void)
{
	notify_send("STOPPING=1");
}

/* text as one status line: the protocol is line based and a newline would start a new field. */
static void one_line(char *line, size_t size, const char *text)
{
	snprintf(line, size, "%s", text);
	for (char *c = line; *c; c++)
		if (*c == '\n')
			*c = ' ';
}

static void send_status(const char *line)
{
	char message[sizeof last_status + sizeof "STATUS="];

	snprintf(last_status, sizeof last_status, "%s", line);
	snprintf(message, sizeof message, "STATUS=%s", last_status);
	notify_send(message);
}

void notify_status(const char *format, ...)
{
	char text[sizeof last_status], line[sizeof last_status];
	va_list args;

	va_start(args, format);
	vsnprintf(text, sizeof text, format, args);
	va_end(args);
	one_line(line, sizeof line, text);
	send_status(line);
}

void notify_status_update(const char *text)
{
	char line[sizeof last_status];

	one_line(line, sizeof line, text);
	if (strcmp(line, last_status) != 0)
		send_status(line);
}

void notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}
