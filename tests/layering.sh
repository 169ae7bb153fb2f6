#!/bin/sh
# The layers of src/ stay layered (see docs/HACKING.md): no include cycle between
# modules, and the loop's files (daemon, loop, observe, act) name no platform, which
# they reach only through src/platform.h; and both checks really fail when broken (TAP).
. "$top_srcdir/tests/tap.sh"
graph="$top_srcdir/scripts/include-graph"
python=${PYTHON3:-python3}

check "no include cycle between the modules of src/" "$python" "$graph" --check "$top_srcdir/src"

loop_names_no_platform() { # directory
	found=0
	for file in daemon.c loop.c observe.c act.c; do
		if grep -n 'kube\|local_' "$1/$file"; then
			echo "$file names a platform: reach it through platform.h"
			found=1
		fi
	done
	return $found
}
check "daemon.c, loop.c, observe.c and act.c name no platform" loop_names_no_platform "$top_srcdir/src"

# A copy where decide.h includes failover.h and failover.h decide.h, and where act.c
# calls a platform by name: both checks must notice.
mkdir "$work/src"
cp "$top_srcdir"/src/*.c "$top_srcdir"/src/*.h "$work/src"
printf '#include "decide.h"\n' >>"$work/src/failover.h"
check "a cycle is caught" sh -c '! "$1" "$2" --check "$3" >"$4/cycle" && grep -q "decide" "$4/cycle"' \
	sh "$python" "$graph" "$work/src" "$work"
printf '/* kube_fence */\n' >>"$work/src/act.c"
check "a platform named in the loop is caught" fails loop_names_no_platform "$work/src"

echo "1..$count"
