# tap.sh: what the shell TAP tests share, sourced by them: a scratch directory $work
# removed on exit, and check DESCRIPTION COMMAND... printing one TAP result (with the
# command's output as comments when it fails) and counting it in $count; fails COMMAND...
# succeeds when the command (a shell function too) fails.
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
count=0

check() { # description, command...
	description=$1
	shift
	count=$((count + 1))
	if "$@" >"$work/out" 2>&1; then
		echo "ok $count - $description"
	else
		echo "not ok $count - $description"
		sed 's/^/# /' "$work/out"
	fi
}

fails() {
	! "$@"
}
