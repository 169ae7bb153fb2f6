#!/bin/sh
# Every option of the table is shown in the sample configuration and documented in
# pgha.conf(5), every command-line flag in its program's man page, every environment
# variable pghad reads in pghad(8) and every one pgha-entrypoint reads in
# pgha-entrypoint(1), every row of the failover table in pghad(8); and the check really
# fails when one goes missing (TAP).
checker="$top_builddir/tests/check-options"
sample="$top_builddir/etc/pgha.conf"
page="$top_builddir/docs/pgha.conf.5"
. "$top_srcdir/tests/tap.sh"

check "sample configuration and pgha.conf(5) cover the option table" "$checker" "$sample" "$page"

# Remove one option's entry from a copy of the man page: the checker must notice.
grep -v '^\.B clusters\.failover\.timeout_ms$' "$page" >"$work/pgha.conf.5"
check "an option missing from pgha.conf(5) is caught" \
	sh -c '! "$1" "$2" "$3" >"$4/missing" && grep -q "clusters.failover.timeout_ms has no" "$4/missing"' \
	sh "$checker" "$sample" "$work/pgha.conf.5" "$work"

# Remove the same option from a copy of the sample: the checker must notice too.
grep -v 'timeout_ms = ' "$sample" >"$work/pgha.conf"
check "an option missing from the sample configuration is caught" \
	sh -c '! "$1" "$2" "$3" >"$4/missing" && grep -q "clusters.failover.timeout_ms is not shown" "$4/missing"' \
	sh "$checker" "$work/pgha.conf" "$page" "$work"

# Every long flag that a program's --help shows appears in its man page, where
# groff writes "-" as "\-".
for program in pghad:8 pghactl:1 pgha-entrypoint:1; do
	name=${program%:*}
	section=${program#*:}
	for flag in $("$top_builddir/src/$name" --help | grep -o -- '--[a-z-]*' | sort -u); do
		escaped=$(printf '%s' "$flag" | sed 's/-/\\\\-/g')
		check "$name --help flag $flag is in $name($section)" \
			grep -q -e "$escaped" -e "$flag" "$top_builddir/docs/$name.$section"
	done
done
# Every environment variable pghad reads itself (the test-only ones included) has an
# entry in pghad(8); sd_notify's variables are documented there by hand.
documents_variable() { # variable, man page
	grep -q -e "^\.B $1\$" -e "^\.BR $1 " "$2"
}
for variable in $(sed -n 's/.*getenv("\([A-Z_]*\)").*/\1/p' "$top_srcdir"/src/*.c | sort -u); do
	check "environment variable $variable is in pghad(8)" documents_variable "$variable" "$top_builddir/docs/pghad.8"
done
sed '/^\.B PGHA_TEST_STALL_FILE$/d' "$top_builddir/docs/pghad.8" >"$work/pghad.8"
check "an environment variable missing from pghad(8) is caught" \
	fails documents_variable PGHA_TEST_STALL_FILE "$work/pghad.8"
# pgha-entrypoint's variables come from one table, which its --help prints: each one
# has an entry in pgha-entrypoint(1).
entrypoint_variables=$("$top_builddir/src/pgha-entrypoint" --help | sed -n 's/^  \(PG[A-Z_]*\) .*/\1/p')
check "pgha-entrypoint --help lists its environment variables" test -n "$entrypoint_variables"
for variable in $entrypoint_variables; do
	check "environment variable $variable is in pgha-entrypoint(1)" \
		documents_variable "$variable" "$top_builddir/docs/pgha-entrypoint.1"
done
# pghad(8) shows the failover table pghad runs: it is generated from src/failover.c's
# table at build time; this checks that the page built is that table, row by row.
"$top_builddir/src/pghad" --describe-failover >"$work/failover" 2>&1
check "pghad --describe-failover prints the failover table" test -s "$work/failover"
shows_row() { # condition, action, man page
	grep -qxF ".BR $1 \" \\(-> \" $2" "$3"
}
row=0
tab=$(printf '\t')
while IFS=$tab read -r phase condition action comment; do
	row=$((row + 1))
	check "failover row $row ($phase: $condition -> $action) is in pghad(8)" \
		shows_row "$condition" "$action" "$top_builddir/docs/pghad.8"
done <"$work/failover"
grep -vxF '.BR old_primary_running " \(-> " stop_old_primary' "$top_builddir/docs/pghad.8" >"$work/pghad.8"
check "a failover row missing from pghad(8) is caught" \
	fails shows_row old_primary_running stop_old_primary "$work/pghad.8"
echo "1..$count"
