#!/bin/sh
# The test command (README, .ci/run): installs what is missing, then builds
# warnfuse twice and runs every test:
#   1. build-asan: -Db_sanitize=address,undefined, `meson test --setup sanitize`
#      (unit, contract and integration suites, real mosquitto brokers);
#   2. build-valgrind: plain build, unit suite under `meson test --setup valgrind`.
# Any failure, or any skipped test (a missing prerequisite), fails the run.
# Usage: scripts/test.sh [--no-valgrind] [--help]
set -eu

cd "$(dirname "$0")/.."
valgrind=1
for a in "$@"; do
	case "$a" in
		--no-valgrind) valgrind=0 ;;
		-h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "test.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
	esac
done

scripts/deps.sh test

setup() { # dir, options...
	dir="$1"; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

jobs="$(nproc 2>/dev/null || echo 2)"
status=0

echo "== build-asan (ASan+UBSan): all suites"
setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
meson compile -C build-asan
meson test -C build-asan --setup sanitize --print-errorlogs --num-processes "$jobs" || status=1

if [ "$valgrind" = 1 ]; then
	echo "== build-valgrind: unit suite under valgrind"
	setup build-valgrind
	meson compile -C build-valgrind
	meson test -C build-valgrind --setup valgrind --suite unit --print-errorlogs --num-processes "$jobs" || status=1
fi

# One summary line over both runs; skipped tests count as failures here
# because in this command every prerequisite is installed.
python3 scripts/test-summary.py build-asan/meson-logs/testlog-sanitize.json \
	$( [ "$valgrind" = 1 ] && echo build-valgrind/meson-logs/testlog-valgrind.json ) || status=1
exit "$status"
