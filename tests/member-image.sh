#!/bin/sh
# The member image (TAP): what contrib/image/Containerfile builds runs PostgreSQL the
# way pghad's pods do. With podman, with no network but a loopback of their own shared
# by the two containers: a bootstrap primary (uid 999, the pod's environment, the volume and the secrets
# mounted where pghad mounts them) initialises and starts PostgreSQL, a standby in the
# primary's network namespace clones it and streams, both stop cleanly on SIGTERM, and the primary starts
# again as is on its volume.
# The image: PGHA_MEMBER_IMAGE (a podman image name, or an OCI archive, loaded), else
# with PGHA_IMAGE_TESTS=1 scripts/build-image builds it into the scratch directory
# (about 4 minutes the first time, 2 later: the debootstrap base is reused). Skips
# without either, and without root or podman (scripts/install-deps image).
top=$(cd "$top_srcdir" && pwd)
. "$top_srcdir/tests/tap.sh"

skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}
[ "$(id -u)" = 0 ] || skip_all "needs root (rootful podman)"
command -v podman >/dev/null || skip_all "podman is missing: scripts/install-deps image"

# ---- the image ----
image=${PGHA_MEMBER_IMAGE:-}
if [ -z "$image" ]; then
	[ "${PGHA_IMAGE_TESTS:-0}" = 1 ] ||
		skip_all "set PGHA_IMAGE_TESTS=1 (builds the image) or PGHA_MEMBER_IMAGE=IMAGE|ARCHIVE"
	command -v debootstrap >/dev/null || skip_all "debootstrap is missing: scripts/install-deps image"
	started=$(date +%s)
	if ! PATH=/usr/sbin:/usr/bin:/sbin:/bin "$top/scripts/build-image" "$work/image" >"$work/build.log" 2>&1; then
		echo "not ok 1 - scripts/build-image builds the images"
		tail -n 60 "$work/build.log" | sed 's/^/# /'
		echo "1..1"
		exit 0
	fi
	echo "ok 1 - scripts/build-image builds the images ($(($(date +%s) - started)) s)"
	sed -n 's/^==> /# /p' "$work/build.log"
	count=1
	image=$(grep 'pgha-postgres-.*\.oci\.tar$' "$work/build.log" | tail -n 1)
fi
case "$image" in
*.tar)
	loaded=$(podman load -q -i "$image" 2>&1) || {
		echo "Bail out! podman load $image: $loaded"
		exit 1
	}
	image=$(echo "$loaded" | sed -n 's/^Loaded image[^:]*: *//p' | cut -d, -f1)
	;;
esac
echo "# image $image, $(($(podman image inspect --format '{{.Size}}' "$image") / 1000000)) MB"

# the containers are named after this test's pid, and removed at the end
name=pgha-image-test-$$
cleanup() {
	podman rm -f -t 0 "$name-standby" >/dev/null 2>&1
	podman rm -f -t 0 "$name-primary" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

# Rootful podman gives containers nofile 1048576 and nproc 4194304 by default, which
# takes CAP_SYS_RESOURCE to set; a root without it (these machines' CapEff lacks bit 24)
# gets "error setting rlimits for ready process: operation not permitted" from runc.
# Limits this process may set, and more than PostgreSQL needs here:
limits="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=4096:4096"

config() { # the value of the image's config field: config FIELD
	podman image inspect --format "{{$1}}" "$image"
}
check "the image runs as uid 999 (pghad's runAsUser)" test "$(config .Config.User)" = 999:999
check "the image's entrypoint is pgha-entrypoint" \
	sh -c 'echo "$1" | grep -q pgha-entrypoint' - "$(config .Config.Entrypoint)"
postgres_account() {
	podman run --rm $limits --entrypoint id "$image" -u postgres >"$work/id" && grep -qx 999 "$work/id"
}
check "the image's postgres account is uid 999" postgres_account
check "pgha-entrypoint finds PostgreSQL 15's server programs" \
	podman run --rm $limits --entrypoint sh "$image" -c 'pgha-entrypoint --help >/dev/null; ls /usr/lib/postgresql/15/bin/postgres'

# ---- the pod: the volumes and secrets as pghad's pod spec mounts them ----
superuser_password="super $(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
replication_password="repl $(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -m 0750 "$work/secrets" "$work/primary" "$work/standby"
printf '%s' "$superuser_password" >"$work/secrets/superuser-password"
printf '%s' "$replication_password" >"$work/secrets/replication-password"
chmod 0440 "$work/secrets"/*
chown -R 0:999 "$work/secrets"
chown 999:999 "$work/primary" "$work/standby"
chmod 0700 "$work/primary" "$work/standby"
# the primary in a network namespace with a loopback only, the standby in the primary's
run_member() { # container, volume, environment...
	container=$1 volume=$2
	network=none
	[ "$container" = primary ] || network=container:$name-primary
	shift 2
	podman run -d $limits --network "$network" --name "$name-$container" --user 999:999 \
		-v "$volume:/var/lib/postgresql/data" -v "$work/secrets:/etc/pgha/secrets:ro" \
		-e PGDATA=/var/lib/postgresql/data/pgdata -e PGHA_CLUSTER=image -e PGHA_LISTEN=127.0.0.1 \
		-e PGHA_SECRETS_DIR=/etc/pgha/secrets -e PGHA_TEST_INITDB_NOSYNC=1 "$@" "$image" >/dev/null
}

# Waits until PostgreSQL in the container answers on its port, or the container ends
# (then fails at once), or 300 s have passed: the event itself, polled.
answers() { # container, port
	deadline=$(($(date +%s) + 300))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		[ "$(podman inspect --format '{{.State.Running}}' "$name-$1")" = true ] || {
			podman logs "$name-$1"
			echo "the container ended: exit $(podman inspect --format '{{.State.ExitCode}}' "$name-$1")"
			return 1
		}
		podman exec "$name-$1" pg_isready -q -h 127.0.0.1 -p "$2" && return 0
		sleep 0.2
	done
	podman logs "$name-$1"
	return 1
}

sql() { # container, port, query: its result, unaligned, as the superuser over TCP
	PGPASSWORD=$superuser_password podman exec -e PGPASSWORD "$name-$1" \
		psql -X -qAt -h 127.0.0.1 -p "$2" -U postgres -d postgres -c "$3"
}

result_is() { # expected, container, port, query
	expected=$1
	shift
	actual=$(sql "$@") || return 1
	[ "$actual" = "$expected" ] || {
		echo "expected '$expected', got '$actual'"
		return 1
	}
}

run_member primary "$work/primary" -e PGHA_MEMBER=image-0 -e PGHA_ROLE=primary -e PGHA_BOOTSTRAP=1 -e PGHA_PORT=5432
check "a bootstrap primary initialises and starts PostgreSQL" answers primary 5432
check "the primary is not in recovery" result_is f primary 5432 "select pg_is_in_recovery()"
check "the primary takes writes with the superuser's password" result_is 1 primary 5432 \
	"create table image_test (id int); insert into image_test values (42); select count(*) from image_test"
check "the data directory is the volume's pgdata, owned by uid 999" \
	sh -c '[ "$(stat -c %u "$1")" = 999 ] && [ -f "$1/PG_VERSION" ] && grep -qx 15 "$1/PG_VERSION"' - "$work/primary/pgdata"

# what pghad does on a new primary: its replication role, with the password of the
# Secret (read by psql in the container, never on a command line)
replication_role() {
	printf '%s\n' '\set password `cat /etc/pgha/secrets/replication-password`' \
		"CREATE ROLE pgha_replicator WITH LOGIN REPLICATION PASSWORD :'password';" |
		PGPASSWORD=$superuser_password podman exec -i -e PGPASSWORD "$name-primary" \
			psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres -d postgres
}
check "the replication role is made as pghad makes it" replication_role

run_member standby "$work/standby" -e PGHA_MEMBER=image-1 -e PGHA_ROLE=standby -e PGHA_PORT=5433 \
	-e PGHA_PRIMARY_HOST=127.0.0.1 -e PGHA_PRIMARY_PORT=5432
check "a standby clones the primary and starts" answers standby 5433
check "the standby is in recovery" result_is t standby 5433 "select pg_is_in_recovery()"
streams() {
	deadline=$(($(date +%s) + 120))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		[ "$(sql primary 5432 "select application_name || ':' || state from pg_stat_replication")" = image-1:streaming ] &&
			return 0
		sleep 0.2
	done
	sql primary 5432 "select * from pg_stat_replication"
	return 1
}
check "the standby streams from the primary as image-1" streams
sql primary 5432 "insert into image_test values (43)" >/dev/null
replayed() {
	deadline=$(($(date +%s) + 60))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		[ "$(sql standby 5433 "select count(*) from image_test")" = 2 ] && return 0
		sleep 0.2
	done
	return 1
}
check "a commit on the primary reaches the standby" replayed

stopped_cleanly() { # container: SIGTERM, exit 0, and PostgreSQL's clean shutdown in its log
	podman stop -t 60 "$name-$1" >/dev/null || return 1
	code=$(podman inspect --format '{{.State.ExitCode}}' "$name-$1")
	podman logs "$name-$1" 2>&1 | tail -n 5
	[ "$code" = 0 ] && podman logs "$name-$1" 2>&1 | grep -q 'database system is shut down'
}
check "the standby stops cleanly on SIGTERM" stopped_cleanly standby
check "the primary stops cleanly on SIGTERM" stopped_cleanly primary

# the standby shares the primary's network namespace: both go
podman rm "$name-standby" >/dev/null && podman rm "$name-primary" >/dev/null
# as a kubelet leaves it after applying the pod's fsGroup to the volume again
chmod 2770 "$work/primary/pgdata"
run_member primary "$work/primary" -e PGHA_MEMBER=image-0 -e PGHA_ROLE=primary -e PGHA_PORT=5432
check "the primary starts again as is on its volume, group-writable (fsGroup) as it was" answers primary 5432
check "with its data" result_is 2 primary 5432 "select count(*) from image_test"

echo "1..$count"
