/* notify: the service manager protocol (sd_notify): readiness, reloads, stopping and a status line. */
#ifndef PGHA_NOTIFY_H
#define PGHA_NOTIFY_H

void notify_ready(void);
/* RELOADING=1 with the MONOTONIC_USEC that Type=notify-reload requires. */
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *format, ...) __attribute__((format(printf, 1, 2)));

#endif
