/* testhook: hooks that only tests use, to make pghad misbehave on purpose and watch the consequences from outside. */
#ifndef PGHA_TESTHOOK_H
#define PGHA_TESTHOOK_H

#include <stdbool.h>

/* When $PGHA_TEST_STALL_FILE names a file that exists, blocks until it is removed, as a
 * call that hangs would: the loop does nothing meanwhile, signals wait, the watchdog
 * starves. where says which callback stalls ("iteration", "reload") in the log. Does
 * nothing when the variable is unset, as in every real deployment; see pghad(8). */
void testhook_stall(const char *where);

/* When $PGHA_TEST_STOP_BEFORE names what (an action, "fence"), stops the whole process
 * with SIGSTOP the first time it is about to do it, as a pghad frozen between its
 * decision and its action: a test resumes it with SIGCONT. Once per process. */
void testhook_stop_before(const char *what);

/* When $PGHA_TEST_EXPIRE_WATCH_FILE names a file that exists and says a kind of the
 * watches ("pods"), removes it and returns true: the watch of that kind about to be made
 * again from where it was is taken as told 410 Gone instead (too old to resume, as after a
 * silence longer than the API server's history), and lists again. Once per file. */
bool testhook_expire_watch(const char *kind);

#endif
