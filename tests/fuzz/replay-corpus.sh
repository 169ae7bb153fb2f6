#!/bin/sh
# Replays every file of the fuzz corpus through the configuration parser (TAP).
corpus="$top_srcdir/tests/fuzz/corpus"
target="$top_builddir/tests/fuzz/fuzz-config"
count=0
for input in "$corpus"/* "$top_srcdir"/tests/integration/configs/*.conf; do
	[ -f "$input" ] || continue
	count=$((count + 1))
	if "$target" "$input" >/dev/null 2>&1; then
		echo "ok $count - $(basename "$input")"
	else
		echo "not ok $count - $(basename "$input") crashed the parser (exit $?)"
	fi
done
echo "1..$count"
