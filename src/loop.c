/* loop: pghad's single event loop (sd-event): signals handled in the loop, the timer that begins each reconcile iteration (every cluster's own turn), the watchdog that iterations feed, and a wake-up the moment a primary's postmaster exits. */
#include "autoconfig.h"

#include "loop.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "control.h"
#include "exitcode.h"
#include "log.h"
#include "memory.h"
#include "notify.h"
#include "testhook.h"

/* A primary's postmaster, watched through a pidfd: readable once it has exited. */
struct watch {
	pid_t pid;
	sd_event_source *source;
};

struct loop {
	struct daemon *daemon;
	struct watch *watches; /* sorted by pid */
	size_t watch_count;
	pid_t *seen; /* the daemon's list of primaries to watch, as last acted on */
	size_t seen_count;
	sd_event *event;
	sd_event_source *timer;
	bool ready_sent;
	uint64_t reported_through;    /* daemon->observed_through when the status was last sent */
	/* the watchdog: 0 when the service manager asked for none */
	uint64_t watchdog_usec;
	sd_event_source *watchdog;
	uint64_t iterations_done;     /* iterations completed */
	uint64_t iterations_at_ping;  /* iterations_done when WATCHDOG=1 was last sent */
	uint64_t last_iteration_end;  /* CLOCK_MONOTONIC, usec: when the last iteration completed */
	uint64_t next_interval_usec;  /* the wait armed after it */
	bool watchdog_starved;        /* a ping was withheld; logged once until the loop recovers */
};

static uint64_t interval_usec(const struct loop *loop)
{
	return (uint64_t)loop->daemon->config->daemon.loop_interval_ms * 1000ULL;
}

/* The time now, not sd_event_now()'s time of the loop's last wake-up, which is older by
 * the length of whatever callback is running. */
static uint64_t monotonic_usec(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000ULL + (uint64_t)now.tv_nsec / 1000ULL;
}

static void iterate_now(void *userdata)
{
	struct loop *loop = userdata;
	if (sd_event_source_set_time_relative(loop->timer, 0) >= 0)
		sd_event_source_set_enabled(loop->timer, SD_EVENT_ONESHOT);
}

static int on_postmaster_exit(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct loop *loop = userdata;

	/* decide now rather than at the next tick: the primary is gone */
	log_debug("a primary's postmaster exited: iterating now");
	sd_event_source_set_enabled(source, SD_EVENT_OFF);
	iterate_now(loop);
	return 0;
}

static int compare_pids(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* A pidfd watch on pid appended to watches (nothing when the process is gone already, or
 * on a kernel without pidfd_open, before 5.3: detection is left to the next iteration). */
static void add_watch(struct loop *loop, struct watch *watches, size_t *count, pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return;
	sd_event_source *source = NULL;
	if (sd_event_add_io(loop->event, &source, fd, EPOLLIN, on_postmaster_exit, loop) < 0) {
		close(fd);
		return;
	}
	sd_event_source_set_io_fd_own(source, 1);
	watches[(*count)++] = (struct watch){.pid = pid, .source = source};
}

/* Watches exactly the primaries' postmasters the daemon lists. Called after every cluster's
 * turn: when the list is what it was (nearly always), that costs one comparison of it;
 * otherwise one pass over both, sorted by pid (loop->watches always is), not a search
 * of one for each of the other, which grew with the cube of the clusters per iteration. */
static void update_watches(struct loop *loop)
{
	const struct daemon *daemon = loop->daemon;
	size_t count = daemon->watched_count;

	if (count == loop->seen_count && (count == 0 || memcmp(daemon->watched, loop->seen, count * sizeof *loop->seen) == 0))
		return;
	loop->seen = xreallocarray(loop->seen, count + 1, sizeof *loop->seen);
	if (count)
		memcpy(loop->seen, daemon->watched, count * sizeof *loop->seen);
	loop->seen_count = count;

	pid_t *wanted = xreallocarray(NULL, count + 1, sizeof *wanted);
	if (count)
		memcpy(wanted, daemon->watched, count * sizeof *wanted);
	qsort(wanted, count, sizeof *wanted, compare_pids);
	struct watch *next = xreallocarray(NULL, loop->watch_count + count + 1, sizeof *next);
	size_t kept = 0, i = 0, w = 0;
	while (i < loop->watch_count || w < count) {
		if (w > 0 && w < count && wanted[w] == wanted[w - 1]) {
			w++; /* listed twice */
		} else if (w == count || (i < loop->watch_count && loop->watches[i].pid < wanted[w])) {
			sd_event_source_disable_unref(loop->watches[i++].source);
		} else if (i < loop->watch_count && loop->watches[i].pid == wanted[w]) {
			next[kept++] = loop->watches[i++];
			w++;
		} else {
			add_watch(loop, next, &kept, wanted[w++]);
		}
	}
	free(wanted);
	free(loop->watches);
	loop->watches = next;
	loop->watch_count = kept;
}

/* Once every cluster's turn of an iteration is over: the status, and the first time,
 * readiness (the configuration loaded and one full iteration done). */
static void report(struct loop *loop)
{
	char status[1024];

	if (loop->daemon->observed_through == loop->reported_through)
		return;
	loop->reported_through = loop->daemon->observed_through;
	daemon_status_line(loop->daemon, status, sizeof status);
	if (!loop->ready_sent) {
		notify_status("%s", status);
		notify_ready();
		loop->ready_sent = true;
	} else
		notify_status_update(status);
}

/* After a cluster's turn: its primary may have changed, and an iteration may be over. */
static void after_turn(void *userdata)
{
	struct loop *loop = userdata;

	update_watches(loop);
	report(loop);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct loop *loop = userdata;

	testhook_stall("iteration");
	/* each cluster's turn decides and acts when its own members answered, and one that
	 * must hurry arms its own next turn: the tick waits for none of them */
	daemon_tick(loop->daemon);
	update_watches(loop);
	report(loop);
	loop->iterations_done++;
	loop->last_iteration_end = monotonic_usec();
	/* the next iteration is measured from the end of this one (not from the loop's wake-up,
	 * as set_time_relative would), so a slow iteration is still followed by a full pause */
	loop->next_interval_usec = interval_usec(loop);
	int result = sd_event_source_set_time(source, loop->last_iteration_end + loop->next_interval_usec);
	if (result >= 0)
		result = sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
	if (result < 0) {
		log_error("cannot re-arm the loop timer: %s", strerror(-result));
		return sd_event_exit(loop->event, PGHA_EXIT_INTERNAL);
	}
	return 0;
}

/* The loop is alive when an iteration completed since the last ping, or when the next one
 * is simply not due yet (loop_interval_ms may be longer than half the watchdog interval).
 * An iteration overdue by more than a quarter of the watchdog interval means the loop is
 * not getting to it; a call that hangs stops every callback, this one included. Either
 * way no ping goes out, and the service manager restarts pghad. */
static bool loop_alive(const struct loop *loop, uint64_t now)
{
	return loop->iterations_done != loop->iterations_at_ping ||
	       now <= loop->last_iteration_end + loop->next_interval_usec + loop->watchdog_usec / 4;
}

static int on_watchdog(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct loop *loop = userdata;
	uint64_t now = monotonic_usec();

	if (loop_alive(loop, now)) {
		notify_watchdog();
		loop->iterations_at_ping = loop->iterations_done;
		if (loop->watchdog_starved)
			log_notice("the loop iterates again: feeding the watchdog again");
		loop->watchdog_starved = false;
	} else if (!loop->watchdog_starved) {
		log_error("no loop iteration completed for %llu ms: not feeding the watchdog",
			  (unsigned long long)((now - loop->last_iteration_end) / 1000));
		loop->watchdog_starved = true;
	}
	int result = sd_event_source_set_time_relative(source, loop->watchdog_usec / 2);
	if (result >= 0)
		result = sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
	if (result < 0) {
		log_error("cannot re-arm the watchdog timer: %s", strerror(-result));
		return sd_event_exit(loop->event, PGHA_EXIT_INTERNAL);
	}
	return 0;
}

/* With WATCHDOG_USEC (systemd's WatchdogSec=), a timer at half the interval checks that
 * the loop is alive before each ping; without it, nothing is set up and nothing is sent. */
static int watchdog_setup(struct loop *loop)
{
	int result = sd_watchdog_enabled(0, &loop->watchdog_usec);

	if (result < 0) {
		log_warning("ignoring the service manager's watchdog settings: %s", strerror(-result));
		loop->watchdog_usec = 0;
	}
	if (result <= 0 || loop->watchdog_usec == 0) {
		loop->watchdog_usec = 0;
		return 0;
	}
	/* the first iteration is due at once: measure from now */
	loop->last_iteration_end = monotonic_usec();
	/* accuracy 1 ms: sd-event's default slack (250 ms) would eat into a short watchdog interval */
	result = sd_event_add_time_relative(loop->event, &loop->watchdog, CLOCK_MONOTONIC, loop->watchdog_usec / 2, 1000,
					    on_watchdog, loop);
	if (result >= 0)
		result = sd_event_source_set_enabled(loop->watchdog, SD_EVENT_ONESHOT);
	/* when an iteration and a ping are due at once, the iteration goes first and counts */
	if (result >= 0)
		result = sd_event_source_set_priority(loop->watchdog, SD_EVENT_PRIORITY_IDLE);
	if (result >= 0)
		log_info("watchdog: WATCHDOG=1 every %llu ms while the loop iterates",
			 (unsigned long long)(loop->watchdog_usec / 2000));
	return result;
}

static int on_reload(sd_event_source *source, const struct signalfd_siginfo *info, void *userdata)
{
	struct loop *loop = userdata;

	/* a SIGHUP that arrives meanwhile stays pending in the signalfd: the next reload follows */
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
	if (result >= 0)
		result = watchdog_setup(&loop);
	if (result < 0) {
		log_error("cannot set up the event loop: %s", strerror(-result));
		goto out;
	}
	daemon_attach(daemon, loop.event);
	daemon->wake = iterate_now;
	daemon->turned = after_turn;
	daemon->wake_data = &loop;
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
	for (size_t i = 0; i < loop.watch_count; i++)
		sd_event_source_disable_unref(loop.watches[i].source);
	free(loop.watches);
	free(loop.seen);
	sd_event_source_unref(loop.watchdog);
	sd_event_source_unref(loop.timer);
	sd_event_unref(loop.event);
	return status;
}
