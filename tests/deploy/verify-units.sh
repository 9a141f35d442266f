#!/bin/sh
# Checks the shipped systemd units with systemd-analyze verify (every
# directive known and well-formed, dependencies resolvable) and
# systemd-analyze security --offline=yes (exposure <= 2.0, "OK"). The binaries are
# not installed in a test run, so ExecStart paths are pointed at /bin/true
# in a private copy; any other complaint fails the test.
set -eu
src="${WF_SOURCE_ROOT:-$(dirname "$0")/../..}/deploy/systemd"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for inst in met water geo fire police fusion dispatch; do
	sed 's|/usr/local/bin/wf-%i|/bin/true|g' "$src/warnfuse@.service" > "$tmp/warnfuse@$inst.service"
done
cp "$src/warnfuse.target" "$tmp/"
out="$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
	./warnfuse@met.service ./warnfuse@fusion.service ./warnfuse.target 2>&1 || echo "exit $?")"
# "User=warnfuse" may not exist on a build machine; everything else is an error.
out="$(printf '%s\n' "$out" | grep -v -e '^$' -e 'user.*warnfuse' || true)"
if [ -n "$out" ]; then
	printf 'systemd-analyze verify complained:\n%s\n' "$out" >&2
	exit 1
fi
# the hardening score of the shipped template (the same for every instance)
score="$(cd "$tmp" && systemd-analyze security --offline=yes ./warnfuse@fusion.service 2>/dev/null \
	| sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
if [ -z "$score" ] || ! awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
	echo "systemd-analyze security: exposure '${score:-?}', want <= 2.0" >&2
	exit 1
fi
echo "units verified: warnfuse@.service (7 instances), warnfuse.target; security exposure $score (<= 2.0)"
