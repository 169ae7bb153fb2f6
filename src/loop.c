/* loop: pghad's single event loop (sd-event): signals handled in the loop, and the timer that drives each reconcile iteration. */
#include "autoconfig.h"

#include "loop.h"

#include <signal.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "control.h"
#include "exitcode.h"
#include "log.h"
#include "notify.h"

struct loop {
	struct daemon *daemon;
	sd_event *event;
	sd_event_source *timer;
	bool ready_sent;
};

static uint64_t interval_usec(const struct loop *loop)
{
	return (uint64_t)loop->daemon->config->daemon.loop_interval_ms * 1000ULL;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct loop *loop = userdata;
	char status[1024];

	daemon_iterate(loop->daemon);
	daemon_status_line(loop->daemon, status, sizeof status);
	if (!loop->ready_sent) {
		/* ready means: configuration loaded and one full iteration done */
		notify_status("%s", status);
		notify_ready();
		loop->ready_sent = true;
	} else
		notify_status_update(status);
	/* the next iteration is measured from the end of this one, so a slow iteration
	 * never makes iterations pile up */
	int result = sd_event_source_set_time_relative(source, interval_usec(loop));
	if (result >= 0)
		result = sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
	if (result < 0) {
		log_error("cannot re-arm the loop timer: %s", strerror(-result));
		return sd_event_exit(loop->event, PGHA_EXIT_INTERNAL);
	}
	return 0;
}

static int on_reload(sd_event_source *source, const struct signalfd_siginfo *info, void *userdata)
{
	struct loop *loop = userdata;

	daemon_reload(loop->daemon);
	/* a changed loop_interval_ms applies from the next iteration */
	return 0;
}

static int on_stop(sd_event_source *source, const struct signalfd_siginfo *info, void *userdata)
{
	struct loop *loop = userdata;

	log_notice("received SIG%s: stopping pghad (PostgreSQL keeps running)", sigabbrev_np((int)info->ssi_signo));
	notify_stopping();
	return sd_event_exit(loop->event, PGHA_EXIT_OK);
}

int loop_run(struct daemon *daemon)
{
	struct loop loop = {.daemon = daemon};
	sigset_t signals;
	struct control_server *control = NULL;
	int result, status = PGHA_EXIT_INTERNAL;

	/* signals are delivered through signalfd in the loop, never in signal context */
	sigemptyset(&signals);
	sigaddset(&signals, SIGHUP);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	if (sigprocmask(SIG_BLOCK, &signals, NULL) < 0) {
		log_error("cannot block signals: %m");
		return PGHA_EXIT_INTERNAL;
	}
	result = sd_event_default(&loop.event);
	if (result >= 0)
		result = sd_event_add_signal(loop.event, NULL, SIGHUP, on_reload, &loop);
	if (result >= 0)
		result = sd_event_add_signal(loop.event, NULL, SIGTERM, on_stop, &loop);
	if (result >= 0)
		result = sd_event_add_signal(loop.event, NULL, SIGINT, on_stop, &loop);
	if (result >= 0)
		/* accuracy 1 ms: sd-event's default slack (250 ms) would stretch short intervals */
		result = sd_event_add_time_relative(loop.event, &loop.timer, CLOCK_MONOTONIC, 0, 1000, on_timer, &loop);
	if (result >= 0)
		result = sd_event_source_set_enabled(loop.timer, SD_EVENT_ONESHOT);
	if (result < 0) {
		log_error("cannot set up the event loop: %s", strerror(-result));
		goto out;
	}
	daemon_attach(daemon, loop.event);
	/* the control socket also guarantees one pghad per socket: a second one stops here */
	control = control_listen(loop.event, daemon->config->daemon.control_socket, daemon_control, daemon);
	if (!control) {
		status = PGHA_EXIT_FAILURE;
		goto out;
	}
	log_info("pghad running: loop every %d ms, control socket %s", daemon->config->daemon.loop_interval_ms,
		 daemon->config->daemon.control_socket);
	result = sd_event_loop(loop.event);
	if (result < 0)
		log_error("event loop failed: %s", strerror(-result));
	else
		status = result;
out:
	control_close(control);
	sd_event_source_unref(loop.timer);
	sd_event_unref(loop.event);
	return status;
}
