#!/bin/sh
# bench/scale-sim measures pghad's loop alone with many clusters on the simulated
# platform (tests/sim/scale-sim); its --self-test runs it with 20 clusters and checks what
# it reports (every cluster healthy, the failovers done, the numbers present and
# consistent, the table written), so that the benchmark cannot rot between its runs.
exec "${PYTHON3:-python3}" "$top_srcdir/bench/scale-sim" --self-test --program "$top_builddir/tests/sim/scale-sim"
