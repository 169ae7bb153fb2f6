#!/bin/sh
# bench/partition counts, for faults d, e and f, lost commits, acks by a member that was not
# the primary, Lease holders at once and more from pghad's and the writers' logs
# (bench/partition_measure.py); its --self-test checks that counting on synthetic logs, so a
# broken benchmark is not found only when someone runs it (TAP).
exec "${PYTHON3:-python3}" "$top_srcdir/bench/partition" --self-test
