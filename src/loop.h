/* loop: pghad's single event loop (sd-event): signals handled in the loop, and the timer that drives each reconcile iteration. */
#ifndef PGHA_LOOP_H
#define PGHA_LOOP_H

#include "daemon.h"

/* Runs until SIGTERM or SIGINT. Returns a PGHA_EXIT_* status. */
int loop_run(struct daemon *daemon);

#endif
