#!/bin/sh
# bench/failover counts lost commits and the RTO from the writer's log; its --self-test
# checks that counting on synthetic logs, so a broken benchmark is not found only when
# someone runs it (TAP).
exec "${PYTHON3:-python3}" "$top_srcdir/bench/failover" --self-test
