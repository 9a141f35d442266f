#!/bin/sh
# wfctl's usage errors exit 2 with a reason (meson test: wfctl-usage).
wfctl="$1"
fail=0
check() { # expected-exit expected-text args...
	want="$1"; text="$2"; shift 2
	out="$("$wfctl" "$@" 2>&1)"; got=$?
	if [ "$got" != "$want" ] || ! printf '%s' "$out" | grep -q -- "$text"; then
		echo "FAIL: wfctl $*: exit $got (want $want), output: $out"; fail=1
	fi
}
check 2 "not ID@VERSION" approve no-version --operator op-x
check 2 "needs --reason" reject w@1 --operator op-x
check 2 "operator OP is required" approve w@1
check 2 "unknown command" frobnicate
check 2 "not a port" watch --port 0
check 0 "wfctl approve ID@VERSION" --help
exit $fail
