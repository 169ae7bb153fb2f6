#!/bin/sh
# The Debian package (TAP): scripts/build-deb builds it, lintian finds no error, and
# dpkg installs it with its maintainer scripts into a throwaway root (DPKG_ROOT, the
# way a chrootless bootstrap does): the file list, /etc/pgha.conf as a conffile that
# checks clean with the installed pghad, the postgres account and directories made,
# the unit installed but neither enabled nor started and passing systemd-analyze
# verify, an upgrade that keeps a changed conffile, and a purge that keeps the data.
top=$(cd "$top_srcdir" && pwd)
. "$top_srcdir/tests/tap.sh"

skip() { # description, reason
	count=$((count + 1))
	echo "ok $count - $1 # SKIP $2"
}

for tool in dpkg-buildpackage dh lintian systemd-analyze; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..1"
		echo "not ok 1 - $tool is missing: run scripts/install-deps test"
		exit 0
	fi
done

# The package is built as a build daemon would, with the system's PATH: debhelper runs
# autoreconf, which make distcheck hides from its own build on purpose, and a Python
# earlier in PATH must not leak into the build either. nocheck: the unit tests of the
# package build are the ones this make check runs already, and their timing checks
# would make this test fail for reasons that are not the package's.
started=$(date +%s)
if ! PATH=/usr/sbin:/usr/bin:/sbin:/bin DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck" \
	"$top/scripts/build-deb" "$work/packages" >"$work/build.log" 2>&1; then
	echo "not ok 1 - scripts/build-deb builds the package"
	# the failed tests of the package's check-unit, with their logs, then the end
	grep -E '^(FAIL|ERROR|not ok)' "$work/build.log" | sed 's/^/# /'
	grep -v '^PASS: ' "$work/build.log" | tail -n 150 | sed 's/^/# /'
	echo "1..1"
	exit 0
fi
echo "ok 1 - scripts/build-deb builds the package ($(($(date +%s) - started)) s)"
count=1
changes=$(tail -n 1 "$work/build.log")
deb=$(ls "$work"/packages/pgha_*.deb)

# lintian: no error, whatever the warnings (shown here for the log).
lintian_clean() {
	# its own TMPDIR: lintian leaves files there
	mkdir -p "$work/tmp"
	TMPDIR="$work/tmp" lintian --fail-on error "$changes" >"$work/lintian" 2>&1
	status=$?
	grep -v 'running with root privileges' "$work/lintian"
	[ "$status" -eq 0 ] && ! grep -q '^E: ' "$work/lintian"
}
check "lintian reports no error" lintian_clean
grep -v 'running with root privileges' "$work/lintian" | sed 's/^/# lintian: /'

# The shipped copyright file is machine-readable (DEP-5), names the PostgreSQL License
# for every file, and carries the very text of LICENSE: the two cannot drift apart.
copyright_is_license() {
	dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/share/doc/pgha/copyright >"$work/copyright" || return 1
	head -n 1 "$work/copyright" |
		grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' || return 1
	grep -qx 'Copyright: 2026 pgha developers' "$work/copyright" || return 1
	[ "$(grep -cx 'License: PostgreSQL' "$work/copyright")" -eq 2 ] || return 1
	# the stand-alone License paragraph, unfolded, against LICENSE after its copyright line
	sed -n '/^License: PostgreSQL$/,$ { /^ /p; }' "$work/copyright" |
		sed -e 's/^ \.$//' -e 's/^ //' >"$work/license-text"
	sed '1,/^Copyright (c) 2026, pgha developers$/d' "$top/LICENSE" | sed '/./,$!d' >"$work/license-file"
	diff -u "$work/license-file" "$work/license-text"
}
check "the copyright file is DEP-5 and holds LICENSE's PostgreSQL License" copyright_is_license

# A scratch root for dpkg, with the maintainer scripts run outside a chroot but against
# the root (DPKG_ROOT): debhelper's sysusers, tmpfiles and systemd snippets honour it.
root="$work/root"
mkdir -p "$root/etc" "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" \
	"$root/var/log"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
in_root() { # dpkg arguments...: the libraries and systemd are the host's, not the root's
	dpkg --root="$root" --force-script-chrootless --force-depends --force-not-root "$@"
}

if [ "$(id -u)" != 0 ]; then
	for what in "installs into a throwaway root" "installs its files" "checks its sample" "runs its scripts" \
		"verifies its unit" "upgrades" "purges"; do
		skip "the package $what" "dpkg --root needs root (CI runs as root)"
	done
	echo "1..$count"
	exit 0
fi

check "dpkg installs the package into a throwaway root, maintainer scripts included" in_root -i "$deb"
dpkg --root="$root" -L pgha >"$work/list" 2>&1
unit=$(grep '/systemd/system/pghad\.service$' "$work/list")
installed() { # path: listed by dpkg and present in the root
	grep -qx "$1" "$work/list" && test -f "$root$1"
}
for file in /usr/sbin/pghad /usr/bin/pghactl /usr/bin/pgha-entrypoint /usr/share/man/man8/pghad.8.gz \
	/usr/share/man/man1/pghactl.1.gz /usr/share/man/man1/pgha-entrypoint.1.gz \
	/usr/share/man/man5/pgha.conf.5.gz /etc/pgha.conf "${unit:-/lib/systemd/system/pghad.service}" \
	/usr/lib/sysusers.d/pgha.conf /usr/lib/tmpfiles.d/pgha.conf /usr/share/doc/pgha/copyright; do
	check "the package installs $file" installed "$file"
done
check "/etc/pgha.conf is a conffile" \
	sh -c 'dpkg-query --admindir="$1/var/lib/dpkg" -W -f="\${Conffiles}\n" pgha | grep -q "^ /etc/pgha.conf "' \
	sh "$root"
check "/etc/pgha.conf points daemon.metrics_file at node_exporter's textfile directory" \
	grep -q '^  metrics_file = "/var/lib/prometheus/node-exporter/pgha.prom";' "$root/etc/pgha.conf"
check "the installed pghad checks the installed /etc/pgha.conf clean" \
	"$root/usr/sbin/pghad" --check-config -c "$root/etc/pgha.conf"

# The postinst: postgres created when missing, its directories made, nothing enabled,
# and no start of pghad but a try-restart after an upgrade (which starts nothing that
# does not run).
check "postinst created the postgres account" grep -q '^postgres:x:' "$root/etc/passwd"
postgres_uid=$(sed -n 's/^postgres:x:\([0-9]*\):.*/\1/p' "$root/etc/passwd")
check "postinst made /var/lib/pgha (0755) and /run/pgha (0750) owned by postgres" \
	test "$(stat -c '%a %u' "$root/var/lib/pgha")" = "755 $postgres_uid" \
	-a "$(stat -c '%a %u' "$root/run/pgha")" = "750 $postgres_uid"
check "postinst recorded pghad.service without enabling it" \
	sh -c 'test -e "$1/var/lib/systemd/deb-systemd-helper-enabled/pghad.service.dsh-also" &&
		! find "$1/etc" -name pghad.service | grep .' sh "$root"
dpkg-deb -e "$deb" "$work/control"
starts_nothing() {
	cat "$work"/control/*inst "$work"/control/*rm 2>/dev/null | grep -o 'deb-systemd-invoke [a-z-]*' | sort -u
	actions=$(cat "$work"/control/*inst "$work"/control/*rm 2>/dev/null | grep -o 'deb-systemd-invoke [a-z-]*' |
		sort -u | tr '\n' ' ')
	test "$actions" = "deb-systemd-invoke stop deb-systemd-invoke try-restart "
}
check "the maintainer scripts only stop pghad (removal) or try-restart it (upgrade)" starts_nothing

# The installed unit, verified as in tests/systemd-units.sh: ExecStart= pointed at the
# installed pghad in the root, the man pages from the root.
sed "s|^ExecStart=/usr/sbin/pghad\$|ExecStart=$root/usr/sbin/pghad|" "$root$unit" >"$work/pghad.service"
verify_installed() {
	MANPATH="$root/usr/share/man" systemd-analyze verify --man=yes "$work/pghad.service" >"$work/verify" 2>&1
	status=$?
	cat "$work/verify"
	grep -q "^ExecStart=$root/usr/sbin/pghad\$" "$work/pghad.service" && [ "$status" -eq 0 ] && [ ! -s "$work/verify" ]
}
check "systemd-analyze verify passes on the installed unit" verify_installed

# An upgrade (the same version again: postinst configure with the old version) keeps
# the operator's /etc/pgha.conf and the postgres account.
printf '# changed by the operator\n' >>"$root/etc/pgha.conf"
cp "$root/etc/pgha.conf" "$work/pgha.conf.changed"
check "an upgrade keeps a changed /etc/pgha.conf and the postgres account" \
	sh -c 'dpkg --root="$1" --force-script-chrootless --force-depends --force-not-root --force-confold -i "$2" &&
		cmp "$3" "$1/etc/pgha.conf" && grep -q "^postgres:x:$4:" "$1/etc/passwd"' \
	sh "$root" "$deb" "$work/pgha.conf.changed" "$postgres_uid"

# Purging removes the package and its conffile, never the data.
mkdir -p "$root/var/lib/pgha/clusters/test/test-0"
echo data >"$root/var/lib/pgha/clusters/test/test-0/PG_VERSION"
check "purging removes the files and the conffile but keeps /var/lib/pgha" \
	sh -c 'dpkg --root="$1" --force-script-chrootless --force-depends --force-not-root --purge pgha &&
		test ! -e "$1/usr/sbin/pghad" -a ! -e "$1/etc/pgha.conf" &&
		test -f "$1/var/lib/pgha/clusters/test/test-0/PG_VERSION"' sh "$root"
echo "1..$count"
