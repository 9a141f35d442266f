#!/bin/sh
# The shipped daemon configs pass --check-config once their /etc paths point
# at the source tree, and --check-config catches what they point at: a bad
# rule file, a bad owned prefix, a missing routing file (exit 2, reason).
# Usage: check-configs.sh WF-FUSION WF-DISPATCH   (meson test: check-configs)
set -u
fusion="$1"; dispatch="$2"
src="${WF_SOURCE_ROOT:-$(dirname "$0")/../..}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() { # exit text command...
	want="$1"; text="$2"; shift 2
	out="$("$@" 2>&1)"; got=$?
	if [ "$got" != "$want" ] || ! printf '%s' "$out" | grep -q -- "$text"; then
		echo "FAIL: $*: exit $got (want $want): $out"; fail=1
	fi
}
sed "s#/etc/warnfuse/fusion-rules.conf#$src/deploy/fusion-rules.conf#" "$src/deploy/fusion.conf" > "$tmp/fusion.conf"
expect 0 ": OK" "$fusion" --config "$tmp/fusion.conf" --check-config
sed 's/^owned =.*/owned = 41x/' "$tmp/fusion.conf" > "$tmp/bad-owned.conf"
expect 2 "bad prefix '41x'" "$fusion" --config "$tmp/bad-owned.conf" --check-config
printf '[fusion]\ndwell = forever\n' > "$tmp/bad.rules"
sed "s#^rules = .*#rules = $tmp/bad.rules#" "$tmp/fusion.conf" > "$tmp/bad-rules.conf"
expect 2 "bad.rules:2" "$fusion" --config "$tmp/bad-rules.conf" --check-config
sed "s#/etc/warnfuse/dispatch-routes.conf#$src/deploy/dispatch-routes.conf#" "$src/deploy/dispatch.conf" > "$tmp/dispatch.conf"
expect 0 ": OK" "$dispatch" --config "$tmp/dispatch.conf" --check-config
sed "s#^routes = .*#routes = $tmp/missing.conf#" "$tmp/dispatch.conf" > "$tmp/no-routes.conf"
expect 2 "missing.conf" "$dispatch" --config "$tmp/no-routes.conf" --check-config
[ "$fail" = 0 ] && echo "shipped fusion and dispatch configs check; bad owned, rules and routes refused"
exit "$fail"
