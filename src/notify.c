/* notify: the service manager protocol (sd_notify): readiness, reloads, stopping and a status line. */
#include "autoconfig.h"

#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

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

void notify_status(const char *format, ...)
{
	char message[1024];
	va_list args;
	int length = snprintf(message, sizeof message, "STATUS=");

	va_start(args, format);
	vsnprintf(message + length, sizeof message - (size_t)length, format, args);
	va_end(args);
	/* the protocol is line based: a newline would start a new field */
	for (char *c = message; *c; c++)
		if (*c == '\n')
			*c = ' ';
	notify_send(message);
}
