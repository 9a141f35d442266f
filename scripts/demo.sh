#!/bin/bash
# The whole of warnfuse on one machine, locked down as in production, with one
# command. It installs what it needs (scripts/deps.sh demo), builds (build-demo/),
# then, all on loopback and in a temporary directory:
#   - a private Mosquitto with the shipped ACL and a password file: every
#     service, console and operator connects as its own broker user, created
#     by deploy/mosquitto/add-user;
#   - Kannel (bearerbox + smsbox) with fakesmsc standing in for the operator;
#   - the five agency adapters on their spool directories, wf-fusion and
#     wf-dispatch, the county's duty console that acknowledges every notice
#     (wfctl ack), and 大冶镇's duty station where nobody answers;
#   - the scenario of deploy/examples/demo/scenario: 登封市 on 2026-07-20, a
#     rainstorm that becomes a flood and a landslide chain and is lifted
#     (解除) the same morning, the agencies' files dropped into their spools
#     one step at a time, two duty officers signing off what needs review
#     (wfctl approve), and every delivery shown as it happens: duty notices,
#     escalations, acknowledgements, broadcast state, CAP 1.2 files, SMS.
# It ends by itself (about a minute), stops everything it started (by PID),
# prints a summary (warnings, deliveries per channel, acknowledgements,
# escalations, and the path of one warning from its first event to its last
# delivery), and exits non-zero if an outcome is missing.
#
# Usage: scripts/demo.sh [--pace SECONDS] [--keep] [--no-deps] [--help]
#   --pace S   pause between scenario steps, 1..60 seconds (default 3)
#   --keep     keep the temporary directory (logs, configs, LMDB stores)
#   --no-deps  do not run scripts/deps.sh (the packages are there)
# Environment: WF_DEMO_BUILD=DIR builds and runs from DIR (default build-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

pace=3 keep=0 deps=1
while [ $# -gt 0 ]; do
	case "$1" in
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
		--pace) [ $# -ge 2 ] || { echo "demo.sh: --pace needs SECONDS" >&2; exit 2; }
			case "$2" in ''|*[!0-9.]*) echo "demo.sh: --pace: not a number: $2" >&2; exit 2 ;; esac
			awk -v p="$2" 'BEGIN { exit !(p >= 1 && p <= 60) }' \
				|| { echo "demo.sh: --pace: $2 is not between 1 and 60 seconds" >&2; exit 2; }
			pace="$2"; shift 2 ;;
		--keep) keep=1; shift ;;
		--no-deps) deps=0; shift ;;
		*) echo "demo.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
	esac
done

say() { printf '%s\n' "$*"; }
fail() {   # keeps the temporary directory (logs, configs, stores) for a look
	say "demo.sh: $*" >&2
	[ -z "${tmp:-}" ] || { keep=1; say "demo.sh: the logs are in $tmp/log, $tmp/kannel and $tmp/broker" >&2; }
	exit 1
}

[ "$deps" = 0 ] || scripts/deps.sh demo
bdir="${WF_DEMO_BUILD:-build-demo}"
say "== building warnfuse ($bdir/)"
if [ -f "$bdir/build.ninja" ]; then
	meson setup --reconfigure "$bdir" >/dev/null
else
	meson setup "$bdir" -Dtests=false >/dev/null   # the demo needs no test suite
fi
meson compile -C "$bdir" >/dev/null || fail "the build failed: meson compile -C $bdir"
b="$root/$bdir"
wfctl="$b/services/wfctl/wfctl"

demo="$root/deploy/examples/demo"
tmp="$(mktemp -d /tmp/warnfuse-demo.XXXXXX)"
chmod 0700 "$tmp"
t0="$(date +%s.%N)"

# ---------- everything started is stopped by PID, in reverse order ----------
pids=""           # "name:pid" in start order
started() { pids="$pids $1:$2"; }
stop_pid() {      # name pid: SIGTERM, up to 10 s, then SIGKILL
	local n=$1 p=$2 i=0
	kill -0 "$p" 2>/dev/null || return 0
	kill "$p" 2>/dev/null || true
	while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$p" 2>/dev/null; then
		say "   ($n did not stop in 10 s: SIGKILL)"
		kill -9 "$p" 2>/dev/null || true
	fi
	local rc=0
	wait "$p" 2>/dev/null || rc=$?
	echo "$n $rc" >> "$tmp/exits"
}
stop_all() {
	local rev="" x
	for x in $pids; do rev="$x $rev"; done
	for x in $rev; do stop_pid "${x%%:*}" "${x##*:}"; done
	pids=""
}
cleanup() {
	stop_all
	if [ "$keep" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {      # what seconds command...: polls every 0.1 s
	local what=$1 secs=$2 i=0; shift 2
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt $((secs * 10)) ] || fail "$what did not happen within $secs s"
		sleep 0.1
	done
}
alive() { kill -0 "$1" 2>/dev/null; }

free_ports() {
	python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
read -r port k_admin k_smsbox k_smsc k_sendsms <<<"$(free_ports 5)"

# Every service runs on the scenario's clock: the morning of 2026-07-20,
# just after the last file of the scenario (docs/service-runtime.md, WF_NOW).
# (the adapters take it as --now, the other programs from the environment)
export WF_NOW=2026-07-20T11:00:00+08:00
export WF_REGIONS="$root/data/regions.csv"

# ---------- broker users and the locked-down broker ----------
say "== the broker: Mosquitto on 127.0.0.1:$port with the shipped ACL and a password file"
stations="duty-410185 duty-410185105"
operators="op-zhang op-li"
deploy/mosquitto/add-user --quiet --passwd "$tmp/broker/passwd" --secrets "$tmp/secrets" \
	--owner "$(id -un)" --services $stations $operators
say "   users: $(cut -d: -f1 "$tmp/broker/passwd" | tr '\n' ' ')(deploy/mosquitto/add-user)"
cp deploy/mosquitto/acl "$tmp/broker/acl"
# deploy/mosquitto/warnfuse.conf with this run's port and paths
sed -e "s#^listener 1883 127.0.0.1#listener $port 127.0.0.1#" \
	-e "s#^password_file .*#password_file $tmp/broker/passwd#" \
	-e "s#^acl_file .*#acl_file $tmp/broker/acl#" \
	-e "s#^persistence_location .*#persistence_location $tmp/broker/#" \
	deploy/mosquitto/warnfuse.conf > "$tmp/broker/mosquitto.conf"
grep -q "^listener $port 127.0.0.1" "$tmp/broker/mosquitto.conf" || fail "deploy/mosquitto/warnfuse.conf has no 'listener 1883 127.0.0.1' line"
{ echo "log_dest stderr"; echo "log_type error"; echo "log_type warning"; echo "log_type notice"
  # as root, Mosquitto would switch to the mosquitto user, who cannot read this 0700 directory
  [ "$(id -u)" != 0 ] || echo "user root"; } >> "$tmp/broker/mosquitto.conf"
mosquitto -c "$tmp/broker/mosquitto.conf" 2> "$tmp/broker/mosquitto.log" &
mosq_pid=$!; started mosquitto $mosq_pid
port_open() { alive "$mosq_pid" && python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)"; }
wait_for "Mosquitto accepting connections" 10 port_open "$port"

# ---------- Kannel with fakesmsc ----------
say "== SMS: Kannel bearerbox + smsbox, fakesmsc as the operator's SMSC (sendsms on :$k_sendsms)"
mkdir -p "$tmp/kannel"
head -c 18 /dev/urandom | base64 | tr -d '+/=' > "$tmp/secrets/kannel-sendsms"
chmod 0600 "$tmp/secrets/kannel-sendsms"
k_status="statpw-$RANDOM$RANDOM"
# deploy/kannel/kannel.conf's settings, with the fake SMSC instead of SMPP (no inline comments!)
cat > "$tmp/kannel/kannel.conf" <<EOF
group = core
admin-port = $k_admin
admin-interface = 127.0.0.1
admin-password = adm-$RANDOM$RANDOM
status-password = $k_status
smsbox-port = $k_smsbox
smsbox-interface = 127.0.0.1
log-file = "$tmp/kannel/bearerbox.log"
log-level = 1
store-type = spool
store-location = "$tmp/kannel/store"
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake1
port = $k_smsc
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $k_smsbox
sendsms-port = $k_sendsms
sendsms-interface = 127.0.0.1
log-file = "$tmp/kannel/smsbox.log"
log-level = 1
http-request-retry = 10
http-queue-delay = 3
max-pending-requests = 1024

group = sendsms-user
username = warnfuse
password = $(cat "$tmp/secrets/kannel-sendsms")
concatenation = true
max-messages = 6
user-allow-ip = "127.0.0.1"
EOF
chmod 0600 "$tmp/kannel/kannel.conf"
mkdir -p "$tmp/kannel/store"   # bearerbox panics at start without it
/usr/sbin/bearerbox -v 1 "$tmp/kannel/kannel.conf" > "$tmp/kannel/bearerbox.out" 2>&1 < /dev/null &
bb_pid=$!; started bearerbox $bb_pid
bb_up() { alive "$bb_pid" && port_open "$k_admin" && port_open "$k_smsbox" && port_open "$k_smsc"; }
wait_for "bearerbox listening" 10 bb_up
# -m 0: send nothing, print what arrives (on stderr, at debug level)
/usr/lib/kannel/test/fakesmsc -H 127.0.0.1 -r "$k_smsc" -m 0 "1 2 text nop" < /dev/null \
	> "$tmp/kannel/fakesmsc.log" 2>&1 &
started fakesmsc $!
/usr/sbin/smsbox -v 1 "$tmp/kannel/kannel.conf" > "$tmp/kannel/smsbox.out" 2>&1 < /dev/null &
sb_pid=$!; started smsbox $sb_pid
kannel_ready() {   # smsbox attached and the fake SMSC online (KANNEL.md, readiness)
	alive "$bb_pid" && alive "$sb_pid" || return 1
	local s; s="$(python3 -c 'import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=1).read().decode())' \
		"http://127.0.0.1:$k_admin/status.txt?password=$k_status")" || return 1
	case "$s" in *smsbox:*) ;; *) return 1 ;; esac
	case "$s" in *"(online"*) ;; *) return 1 ;; esac
	port_open "$k_sendsms"
}
wait_for "Kannel ready (smsbox connected, fakesmsc online)" 15 kannel_ready

# ---------- configs: the examples' agency sections, this run's [service]/[mqtt] ----------
mqtt() {   # user
	printf '[mqtt]\nhost = 127.0.0.1\nport = %s\nusername = %s\npassword_file = %s/secrets/%s\n' \
		"$port" "$1" "$tmp" "$1"
}
agencies="met water geo fire police"
for a in $agencies; do
	mkdir -p "$tmp/spool/$a"
	{ printf '[service]\nid = wf-%s-1\nstate_dir = %s/state/%s\nregions = %s\nheartbeat = 2s\n' \
		"$a" "$tmp" "$a" "$WF_REGIONS"
	  printf '[adapter]\nspool = %s/spool/%s\n' "$tmp" "$a"
	  mqtt "wf-$a-1"
	  awk '/^\[/{skip=($0=="[service]"||$0=="[adapter]"||$0=="[mqtt]")} !skip' \
		"deploy/examples/$a/$a.conf"; } > "$tmp/$a.conf"
done
{ printf '[service]\nid = wf-fusion-1\nstate_dir = %s/state/fusion\nregions = %s\nheartbeat = 2s\n' \
	"$tmp" "$WF_REGIONS"
  mqtt wf-fusion-1
  printf '[fusion]\nrules = %s/deploy/fusion-rules.conf\nclock = events\n' "$root"; } > "$tmp/fusion.conf"
{ printf '[service]\nid = wf-dispatch-1\nstate_dir = %s/state/dispatch\nregions = %s\nheartbeat = 2s\n' \
	"$tmp" "$WF_REGIONS"
  mqtt wf-dispatch-1
  cat <<EOF
[dispatch]
routes = $demo/routes.conf

# the production policy (I/II two operators, III one, IV automatic), but
# acknowledgement deadlines of seconds so that an escalation happens in the demo
[duty]
ack_deadline_I = 6s
ack_deadline_II = 6s
ack_deadline_III = 6s
ack_deadline_IV = 6s
followup_interval = 0

[cap]
spool_dir = $tmp/state/dispatch-cap
sender = warnfuse@410185.example
sender_name = 登封市应急管理局

[sms]
sendsms_url = http://127.0.0.1:$k_sendsms/cgi-bin/sendsms
username = warnfuse
password_file = $tmp/secrets/kannel-sendsms
from = 12379
subscribers = $demo/subscribers.csv
EOF
} > "$tmp/dispatch.conf"
for s in $agencies fusion dispatch; do
	bin="$b/services/$s/wf-$s"
	"$bin" --config "$tmp/$s.conf" --check-config > /dev/null 2> "$tmp/check.err" \
		|| { cat "$tmp/check.err" >&2; fail "wf-$s --check-config refused $tmp/$s.conf"; }
done
"$b/services/fusion/wf-fusion" --check-rules deploy/fusion-rules.conf > /dev/null

# ---------- what fusion must publish: the same files through the same code offline ----------
steps="$(grep -v '^[[:space:]]*#' "$demo/scenario" | grep -v '^[[:space:]]*$')"
: > "$tmp/events.jsonl"
declare -A afiles acount
while read -r a f _; do
	[ "$a" = review ] && continue
	afiles[$a]="${afiles[$a]:-} $demo/$f"
	# one dry run over the agency's files so far (rolling history), keep the new lines
	"$b/services/$a/wf-$a" --config "$tmp/$a.conf" --now "$WF_NOW" --dry-run ${afiles[$a]} > "$tmp/dry.out" \
		2> "$tmp/dry.err" || { cat "$tmp/dry.err" >&2; fail "wf-$a --dry-run refused $f"; }
	grep -q '"rejected"' "$tmp/dry.out" && fail "wf-$a rejects $f: $(grep '"rejected"' "$tmp/dry.out")"
	tail -n +$(( ${acount[$a]:-0} + 1 )) "$tmp/dry.out" | sed "s|^|$f |" >> "$tmp/events.tagged"
	acount[$a]="$(wc -l < "$tmp/dry.out")"
done <<<"$steps"
cut -d' ' -f2- "$tmp/events.tagged" > "$tmp/events.jsonl"
"$b/services/fusion/wf-fusion" --replay "$tmp/events.jsonl" --rules deploy/fusion-rules.conf \
	--regions "$WF_REGIONS" > "$tmp/expected.jsonl" 2> "$tmp/replay.err" \
	|| { cat "$tmp/replay.err" >&2; fail "wf-fusion --replay failed"; }

# ---------- the services ----------
say "== the services, each its own broker user: wf-met, wf-water, wf-geo, wf-fire, wf-police, wf-dispatch, wf-fusion"
mkdir -p "$tmp/log"
# started producers first, so that they are stopped last: fusion stops before
# the adapters go away (no monitoring-gap warnings at the end)
for a in $agencies; do
	"$b/services/$a/wf-$a" --config "$tmp/$a.conf" --now "$WF_NOW" 2> "$tmp/log/$a.log" &
	started "wf-$a" $!
done
"$b/services/dispatch/wf-dispatch" --config "$tmp/dispatch.conf" 2> "$tmp/log/dispatch.log" &
dispatch_pid=$!; started wf-dispatch $dispatch_pid
"$b/services/fusion/wf-fusion" --config "$tmp/fusion.conf" 2> "$tmp/log/fusion.log" &
started wf-fusion $!
auth() { echo "--port $port --username $1 --password-file $tmp/secrets/$1"; }
all_online() {   # wfctl state lists all seven services online
	# (its exit status also says "overdue": wfctl state reads the system clock,
	# the services' heartbeats carry the scenario's clock, WF_NOW)
	"$wfctl" state $(auth wfctl) > "$tmp/state.out" 2>&1 || true
	[ "$(grep -c '^wf-[a-z]*-1 .* online ' "$tmp/state.out")" -ge 7 ]
}
wait_for "all seven services online (wfctl state)" 20 all_online
awk 'NR > 1 { printf "   %-14s %-9s %s\n", $1, $2, $3 }' "$tmp/state.out"

# ---------- the live view and the two duty stations ----------
mkdir -p "$tmp/state/dispatch-cap"
python3 scripts/demo-view.py --wfctl "$wfctl" $(auth wfctl) --log "$tmp/view.jsonl" --t0 "$t0" \
	--cap-dir "$tmp/state/dispatch-cap" --fakesmsc "$tmp/kannel/fakesmsc.log" --ready "$tmp/view.ready" &
started demo-view $!
python3 scripts/demo-console.py --wfctl "$wfctl" $(auth duty-410185) --station duty-410185 \
	--ack 王五 --state "$tmp/state/console-duty-410185" --log "$tmp/console-duty-410185.jsonl" \
	--t0 "$t0" --say "ACK       duty-410185 (王五, the county's duty room) acknowledges " \
	--ready "$tmp/console-1.ready" &
started console-duty-410185 $!
python3 scripts/demo-console.py --wfctl "$wfctl" $(auth duty-410185105) --station duty-410185105 \
	--log "$tmp/console-duty-410185105.jsonl" --ready "$tmp/console-2.ready" &
started console-duty-410185105 $!
wait_for "the live view and both consoles subscribed" 15 \
	test -e "$tmp/view.ready" -a -e "$tmp/console-1.ready" -a -e "$tmp/console-2.ready"
say "   duty consoles: duty-410185 (the county's duty room; 王五 acknowledges every notice with wfctl ack)"
say "                  duty-410185105 (大冶镇: nobody answers, so its notices escalate after 6 s)"

# ---------- the scenario ----------
say "== the scenario: 登封市, 2026-07-20 (deploy/examples/demo/scenario; times on the left are seconds since the start)"
: > "$tmp/steps.jsonl"
now() { date +%s.%N; }
outbox_empty() {   # the adapter's LMDB outbox holds nothing fusion has not acknowledged
	local e
	e="$(mdb_stat -s "outbox:wf-$1-1" "$tmp/state/$1" 2>/dev/null | sed -n 's/^ *Entries: //p')"
	[ "${e:-x}" = 0 ]
}
processed() { [ -e "$tmp/spool/$1/done/$2" ] || [ -e "$tmp/spool/$1/rejected/$2" ]; }
review() {
	# the notices the county got that wait for review: latest version of each warning
	python3 - "$tmp/console-duty-410185.jsonl" "$tmp/steps.jsonl" <<'EOF'
import json, sys
last = {}
done = {json.loads(l)["approve"]["ref"] for l in open(sys.argv[2]) if '"approve"' in l}
for l in open(sys.argv[1]):
    r = json.loads(l)
    n = r.get("msg", {}).get("duty_notice")
    # the county's own notices, and what reached it by escalation
    if n and n.get("kind") in ("NOTICE_KIND_NOTICE", "NOTICE_KIND_ESCALATION"):
        k = n["warning_id"]
        if k not in last or n["version"] > last[k]["version"]:
            last[k] = n
for n in last.values():
    ref = "%s@%s" % (n["warning_id"], n["version"])
    # pending when it was sent, not a cancel, and not signed off by us since
    if n.get("pending_review") and n.get("msg_type") != "MSG_TYPE_CANCEL" and ref not in done:
        need = 2 if n["level"] in ("LEVEL_I", "LEVEL_II") else 1
        what = n["text"].split("\n")[0].split("：")[0]
        print("%s %d %s" % (ref, need, what.split("】", 1)[-1]))
EOF
}
sayt() { awk -v a="$(now)" -v b="$t0" -v s="$*" 'BEGIN { printf "   %+6.1fs  %s\n", a - b, s }'; }
while read -r a f text; do
	if [ "$a" = review ]; then
		text="$f $text"
		sayt "REVIEW    $text"
		review > "$tmp/review.todo"
		[ -s "$tmp/review.todo" ] || sayt "          (nothing pending)"
		while read -r ref need what; do
			for op in op-zhang op-li; do
				[ "$op" = op-li ] && [ "$need" -lt 2 ] && continue
				name=张三; [ "$op" = op-li ] && name=李四
				ts="$(now)"
				if "$wfctl" approve "$ref" $(auth "$op") --state "$tmp/state/wfctl-$op" \
					--timeout 15 < /dev/null > "$tmp/approve.out" 2>&1; then rc=0; else rc=$?; fi
				printf '{"t": %s, "approve": {"ref": "%s", "operator": "%s", "rc": %d}}\n' \
					"$ts" "$ref" "$op" "$rc" >> "$tmp/steps.jsonl"
				if [ "$rc" = 0 ]; then
					sayt "APPROVE   $name ($op) signs off $what v${ref##*@}"
				else
					sayt "APPROVE   $name ($op): wfctl approve $ref FAILED (exit $rc): $(tail -1 "$tmp/approve.out")"
				fi
			done
		done < "$tmp/review.todo"
	else
		sayt "EVENT     $text"
		sayt "          -> $f into wf-$a's spool"
		cp "$demo/$f" "$tmp/spool/$a/.$f.tmp"
		ts="$(now)"
		mv "$tmp/spool/$a/.$f.tmp" "$tmp/spool/$a/$f"   # the spool protocol: write, then rename
		printf '{"t": %s, "drop": {"agency": "%s", "file": "%s"}}\n' "$ts" "$a" "$f" >> "$tmp/steps.jsonl"
		wait_for "wf-$a processing $f" 15 processed "$a" "$f"
		[ -e "$tmp/spool/$a/done/$f" ] || fail "wf-$a rejected $f: $(cat "$tmp/spool/$a/rejected/$f.reason" 2>/dev/null)"
		wait_for "fusion acknowledging wf-$a's events" 15 outbox_empty "$a"
	fi
	sleep "$pace"
done <<<"$steps"

# ---------- let the last deadlines pass, then stop ----------
settled() {   # every notice to duty-410185 acknowledged; nothing to 大冶镇 for 8 s (deadline 6 s)
	python3 - "$tmp/console-duty-410185.jsonl" "$tmp/console-duty-410185105.jsonl" <<'EOF'
import json, sys, time
n = a = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    # a RELEASED notice (a version released after review) asks for no acknowledgement
    n += ("msg" in r and "duty_notice" in r["msg"]
          and r["msg"]["duty_notice"].get("kind") != "NOTICE_KIND_RELEASED")
    a += "ack" in r
last = max([json.loads(l)["t"] for l in open(sys.argv[2])] or [0])
sys.exit(0 if n == a and time.time() - last > 8 else 1)
EOF
}
sayt "WAIT      for the last acknowledgement deadlines (6 s)"
wait_for "the duty stations settling" 40 settled
sleep 1
sayt "STOP      stopping everything that was started (by PID)"
stop_all

# ---------- summary and checks ----------
python3 scripts/demo-summary.py --dir "$tmp" --t0 "$t0" --schema services/met/schema/CAP-v1.2.xsd \
	|| fail "an outcome is missing (above)"
