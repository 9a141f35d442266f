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
check 0 "wfctl list \[--all\]" list --help
check 0 "wfctl silence add" silence --help
check 2 "cancel needs --reason" cancel w@1 --operator op-x
check 2 "needs --channel" silence add --operator op-x --expires 1h --reason x
check 2 "not a duration" silence add --operator op-x --channel sms --expires soon --reason x
check 2 "not a prefix" silence add --operator op-x --channel sms --expires 1h --reason x --region 4101x
check 2 "silence needs add or list" silence
check 2 "exactly one warning ID" show
check 2 "exactly one FILE" inject
check 2 "No such file" inject /nonexistent/drill.jsonl
check 2 "takes no --channel" approve w@1 --operator op-x --channel sms
check 2 "not a warning id" show 'wf/v1/#'
check 2 "not a warning id" cancel 'w+1' --operator op-x --reason x
exit $fail
