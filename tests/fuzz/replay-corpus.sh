#!/bin/sh
# Replays every file of the fuzz corpora through their targets (TAP): the configuration
# parser's corpus and the integration tests' configurations through fuzz-config, the
# control protocol's through fuzz-control.
count=0
replay() { # target, inputs...
	target=$1
	shift
	for input in "$@"; do
		[ -f "$input" ] || continue
		count=$((count + 1))
		"$top_builddir/tests/fuzz/$target" "$input" >/dev/null 2>"$top_builddir/tests/fuzz/replay.err"
		status=$?
		if [ "$status" -eq 0 ]; then
			echo "ok $count - $target $(basename "$input")"
		else
			echo "not ok $count - $target $(basename "$input") crashed (exit $status)"
			sed 's/^/# /' "$top_builddir/tests/fuzz/replay.err" | tail -n 40
		fi
	done
}
replay fuzz-config "$top_srcdir"/tests/fuzz/corpus/* "$top_srcdir"/tests/integration/configs/*.conf
replay fuzz-control "$top_srcdir"/tests/fuzz/corpus-control/*
rm -f "$top_builddir/tests/fuzz/replay.err"
echo "1..$count"
