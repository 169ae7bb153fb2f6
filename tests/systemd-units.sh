#!/bin/sh
# The built systemd files (TAP): systemd-analyze verify passes on pghad.service with no
# warning, and would catch a mistake; its hardening stays within an exposure budget; it
# keeps what pghad's safety relies on (KillMode=process, no restart on a config error,
# the watchdog, only pghad may notify) and lets pghad write where its defaults point;
# the sysusers.d file creates postgres only when missing, and the tmpfiles.d file makes
# pghad's directories with their modes and owner. Everything runs offline: PID 1 need
# not be systemd.
# Absolute: with --root, systemd-sysusers and systemd-tmpfiles look for a relative
# file name inside the root.
builddir=$(cd "$top_builddir" && pwd)
unit="$builddir/systemd/pghad.service"
sysusers="$builddir/systemd/sysusers.d/pgha.conf"
tmpfiles="$builddir/systemd/tmpfiles.d/pgha.conf"
pghad="$builddir/src/pghad"
. "$top_srcdir/tests/tap.sh"

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..1"
		echo "not ok 1 - $tool is missing: install the Debian package systemd (scripts/install-deps test)"
		exit 0
	fi
done

# The value of Key= in the unit (the last one, as systemd reads it).
setting() {
	sed -n "s/^$1=//p" "$unit" | tail -n 1
}

# verify checks that ExecStart= names an executable and that each Documentation= man
# page exists. Neither is installed here, so the unit is verified as installed into a
# staging root: pghad copied to a directory of its own, ExecStart= pointed at the copy
# (the only change), and the man pages found through MANPATH in the built ones.
exec_start=$(setting ExecStart)
mkdir -p "$work/sbin" "$work/man/man1" "$work/man/man5" "$work/man/man8" "$work/units" "$work/broken"
cp "$pghad" "$work/sbin/pghad"
cp "$builddir/docs/pghactl.1" "$work/man/man1/"
cp "$builddir/docs/pgha.conf.5" "$work/man/man5/"
cp "$builddir/docs/pghad.8" "$work/man/man8/"
sed "s|^ExecStart=$exec_start\$|ExecStart=$work/sbin/pghad|" "$unit" >"$work/units/pghad.service"

# Passing means exit status 0 and not a word: verify only warns about unknown keys.
verify() { # unit file
	MANPATH="$work/man" SYSTEMD_LOG_LEVEL=info systemd-analyze verify --man=yes "$1" >"$work/verify" 2>&1
	status=$?
	cat "$work/verify"
	[ "$status" -eq 0 ] && [ ! -s "$work/verify" ]
}

check "ExecStart= is $sbindir/pghad, where make install puts pghad" test "$exec_start" = "$sbindir/pghad"
check "systemd-analyze verify passes on pghad.service, man pages included, without a warning" \
	verify "$work/units/pghad.service"

# The same check must fail on a misspelt hardening option and on a missing man page.
sed 's/^ProtectHome=/ProtectHomme=/' "$work/units/pghad.service" >"$work/broken/pghad.service"
check "verify catches a misspelt option" fails verify "$work/broken/pghad.service"
rm "$work/man/man5/pgha.conf.5"
check "verify catches a Documentation= page that does not exist" \
	fails verify "$work/units/pghad.service"
cp "$builddir/docs/pgha.conf.5" "$work/man/man5/"

# The hardening: exposure at most 4.0 of 10 (3.1 when written); a removed protection
# shows here before it reaches a machine.
check "systemd-analyze security rates pghad.service at most 4.0" \
	systemd-analyze security --offline=yes --threshold=40 --no-pager "$work/units/pghad.service"

# What pghad's guarantees rest on.
config_exit=$(sed -n 's/^[[:space:]]*PGHA_EXIT_CONFIG = \([0-9]*\),.*/\1/p' "$top_srcdir/src/exitcode.h")
check "Type=notify (no notify-reload before systemd 253) with ExecReload sending SIGHUP" \
	test "$(setting Type)" = notify -a "$(setting ExecReload)" = '/bin/kill -HUP $MAINPID'
check "KillMode=process: stopping pghad never signals the postmasters in its cgroup" \
	test "$(setting KillMode)" = process
check "RestartPreventExitStatus= holds the config error status ($config_exit) of src/exitcode.h" \
	sh -c 'test -n "$1" && printf " %s \n" "$2" | grep -q " $1 "' sh "$config_exit" "$(setting RestartPreventExitStatus)"
check "Restart=on-failure, WatchdogSec= set, NotifyAccess=main, User=postgres" \
	test "$(setting Restart)" = on-failure -a -n "$(setting WatchdogSec)" -a "$(setting NotifyAccess)" = main \
	-a "$(setting User)" = postgres
check "RemoveIPC= is not set: it would remove the postmasters' shared memory" \
	sh -c '! grep -q "^RemoveIPC=" "$1"' sh "$unit"

# Under ProtectSystem=strict, pghad (and PostgreSQL) can write only where the unit
# says: every directory pghad's defaults name must lie under a ReadWritePaths= entry.
writable=$(setting ReadWritePaths | tr ' ' '\n' | sed 's/^-//')
under_writable() { # path
	for directory in $writable; do
		case "$1/" in "$directory"/*) return 0 ;; esac
	done
	echo "$1 is not under ReadWritePaths= ($writable)"
	return 1
}
default_of() { # option path
	"$pghad" --describe-config | awk -F '\t' -v option="$1" '$1 == option { print $3 }'
}
state_dir=$(default_of daemon.state_dir)
socket_dir=$(dirname "$(default_of daemon.control_socket)")
base_dir=$(default_of platform.local.base_dir)
for directory in "$state_dir" "$socket_dir" "$base_dir"; do
	check "the unit lets pghad write $directory" under_writable "$directory"
done

# sysusers.d: postgres is created in an empty root, and an existing one is kept as it is.
mkdir -p "$work/empty/etc" "$work/existing/etc"
check "systemd-sysusers creates postgres where it is missing" \
	sh -c 'systemd-sysusers --root="$1" "$2" && grep -q "^postgres:x:[0-9]*:[0-9]*:PostgreSQL administrator:" "$1/etc/passwd" &&
		grep -q "^postgres:x:" "$1/etc/group"' sh "$work/empty" "$sysusers"
printf 'postgres:x:4242:4242:kept:/srv/postgres:/bin/sh\n' >"$work/existing/etc/passwd"
printf 'postgres:x:4242:\n' >"$work/existing/etc/group"
cp "$work/existing/etc/passwd" "$work/existing/passwd.before"
check "systemd-sysusers keeps an existing postgres untouched" \
	sh -c 'systemd-sysusers --root="$1" "$2" && cmp "$1/passwd.before" "$1/etc/passwd"' sh "$work/existing" "$sysusers"

# tmpfiles.d: in the root where sysusers made postgres, the directories of the defaults.
check "systemd-tmpfiles creates $state_dir (0755) and $socket_dir (0750) owned by postgres" \
	sh -c 'systemd-tmpfiles --root="$1" --create "$2" &&
		uid=$(sed -n "s/^postgres:x:\([0-9]*\):.*/\1/p" "$1/etc/passwd") &&
		test "$(stat -c "%a %u" "$1$3")" = "755 $uid" && test "$(stat -c "%a %u" "$1$4")" = "750 $uid"' \
	sh "$work/empty" "$tmpfiles" "$state_dir" "$socket_dir"
echo "1..$count"
