/* notify: the service manager protocol (sd_notify): readiness, reloads, stopping and a status line. */
#ifndef PGHA_NOTIFY_H
#define PGHA_NOTIFY_H

void notify_ready(void);
/* RELOADING=1 with the MONOTONIC_USEC that Type=notify-reload requires. */
void notify_reloading(void);
void notify_stopping(void);
/* STATUS=, always sent (a reload reports its outcome even when nothing changed). */
void notify_status(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* STATUS=text only when it differs from the last status sent: the loop calls it after
 * every iteration, and an unchanged line is not worth a datagram. */
void notify_status_update(const char *text);
/* WATCHDOG=1: the caller has checked that the loop is alive (see loop.c). */
void notify_watchdog(void);

#endif
