#!/bin/sh
# The main job, on the embedded default: installs what it needs, builds
# warnfuse (build-demo/), then, all on loopback and in a temporary directory:
#   1. delivery round trip: a private Mosquitto, a producer node persisting
#      5,000 events in its LMDB outbox, a consumer applying each exactly once
#      (group commit) and acking (bench/bench-node.c);
#   2. the live pipeline on a private Mosquitto: wf-fusion and wf-dispatch as
#      daemons, the five agency adapters fed 登封市's example files of
#      2026-07-20 (deploy/examples/) in time order, each adapter exiting once
#      fusion acknowledged its events; `wfctl watch` prints every warning
#      version, duty notice and broadcast state as it is published; then two
#      operators sign off the red flood warning (`wfctl approve`) and it goes
#      out to broadcast and as a CAP 1.2 file;
#   3. what the next hours bring: the same events through wf-fusion --replay
#      --drain, to the last all-clear (解除).
# It ends by itself, stops what it started (by PID) and prints a summary.
# Usage: scripts/demo.sh [--help]
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in
	-h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	'') ;;
	*) echo "demo.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

scripts/deps.sh test
if [ -f build-demo/build.ninja ]; then
	meson setup --reconfigure build-demo >/dev/null
else
	meson setup build-demo >/dev/null
fi
meson compile -C build-demo >/dev/null
b="$PWD/build-demo"

echo "== 1. end-to-end delivery through a private Mosquitto (outbox -> broker -> dedupe -> ack)"
"$b/bench/bench-node" --count 5000 2>&1 | sed 's/^/   /'

tmp="$(mktemp -d)"
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
[ -z "${WF_DEMO_KEEP:-}" ] || trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done; echo "kept $tmp"' EXIT
export WF_REGIONS="$PWD/data/regions.csv"
NOW=2026-07-20T12:30:00+08:00
export WF_NOW="$NOW"

# the feed, in time order: agency, file
feed="fire deploy/examples/fire/danger-20260720T0800.csv
met deploy/examples/met/aws-20260720T0900.csv
water deploy/examples/water/gauge-20260720T1000.csv
geo deploy/examples/geo/risk-20260720T1000.csv
fire deploy/examples/fire/hotspots-20260720T1030.csv
geo deploy/examples/geo/sensors-20260720T1100.csv
police deploy/examples/police/incidents-20260720T1130.csv
fire deploy/examples/fire/incidents-20260720T1150.csv"

# What fusion will publish: the same events, in the same order, through the
# same engine offline (replay mode); the live run must match its count.
: > "$tmp/events.jsonl"
echo "$feed" | while read -r a f; do
	"$b/services/$a/wf-$a" --config "deploy/examples/$a/$a.conf" --now "$NOW" --dry-run "$f" \
		| grep -v '"rejected"' >> "$tmp/events.jsonl"
done
"$b/services/fusion/wf-fusion" --replay "$tmp/events.jsonl" --rules deploy/fusion-rules.conf \
	--regions data/regions.csv > "$tmp/expected.jsonl" 2> "$tmp/replay.err"
want="$(wc -l < "$tmp/expected.jsonl")"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$tmp/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
max_queued_messages 100000
log_dest stderr
EOF
mosquitto -c "$tmp/mosquitto.conf" 2> "$tmp/mosquitto.log" & pids="$pids $!"
i=0
until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do
	i=$((i + 1)); [ "$i" -lt 100 ] || { echo "demo.sh: mosquitto did not start" >&2; exit 1; }
	sleep 0.05
done

mqtt="[mqtt]
host = 127.0.0.1
port = $port"
cat > "$tmp/fusion.conf" <<EOF
[service]
id = wf-fusion-1
state_dir = $tmp/fusion
heartbeat = 2s
$mqtt
[fusion]
rules = deploy/fusion-rules.conf
clock = events
EOF
sed -e "s#/tmp/warnfuse-dispatch#$tmp/dispatch#" deploy/examples/dispatch/dispatch.conf \
	> "$tmp/dispatch.conf"
printf '%s\n' "$mqtt" >> "$tmp/dispatch.conf"

echo "== 2. live: 5 adapters -> Mosquitto :$port -> wf-fusion -> wf-dispatch (登封市, clock at $NOW)"
"$b/services/fusion/wf-fusion" --config "$tmp/fusion.conf" 2> "$tmp/fusion.log" & pids="$pids $!"
fusion_pid=$!
"$b/services/dispatch/wf-dispatch" --config "$tmp/dispatch.conf" 2> "$tmp/dispatch.log" & pids="$pids $!"
# the live view: every line as it comes, and a copy for the summary
{ "$b/services/wfctl/wfctl" watch --port "$port" --count "$want" --timeout 60; echo "watch-exit $?"; } \
	| tee "$tmp/watch.out" | grep --line-buffered -v '^watch-exit' | sed -u 's/^/   /' &
watch_pid=$!
# ready = its retained ONLINE birth, published once its subscriptions are granted
for s in wf-fusion-1 wf-dispatch-1; do
	mosquitto_sub -p "$port" -t "wf/v1/state/$s" -C 1 -W 20 > /dev/null \
		|| { echo "demo.sh: $s did not come up (see its log)" >&2; cat "$tmp"/*.log >&2; exit 1; }
done
echo "$feed" | while read -r a f; do
	conf="$tmp/$a.conf"
	if [ ! -f "$conf" ]; then
		# the example's agency sections, our [service]/[mqtt]
		{ printf '[service]\nid = wf-%s-1\nstate_dir = %s/%s\nheartbeat = 2s\n%s\n' \
			"$a" "$tmp" "$a" "$mqtt"
		  awk '/^\[/{skip=($0=="[service]"||$0=="[adapter]"||$0=="[mqtt]")} !skip' \
			"deploy/examples/$a/$a.conf"; } > "$conf"
	fi
	# --stdin: one file, exit once fusion acknowledged every event of it
	"$b/services/$a/wf-$a" --config "$conf" --now "$NOW" --stdin < "$f" 2>> "$tmp/adapters.log" \
		|| echo "   (wf-$a exited $? on $f)"
done
wait "$watch_pid" || true
rc="$(sed -n 's/^watch-exit //p' "$tmp/watch.out")"

# review: the red flood warning (rainstorm + rising river) needs two different operators
flood="$(python3 -c '
import json, sys
last = {}
for l in open(sys.argv[1]):
    w = json.loads(l)
    if w.get("hazard") == "HAZARD_FLOOD": last[w["id"]] = w["version"]
for k, v in last.items(): print("%s@%s" % (k, v)); break' "$tmp/expected.jsonl")"
if [ -n "$flood" ]; then
	echo "== 2b. review: two duty officers sign off the red flood warning $flood"
	for op in op-zhang op-li; do
		"$b/services/wfctl/wfctl" approve "$flood" --operator "$op" --port "$port" \
			--state "$tmp/wfctl-$op" --timeout 20 2>&1 | sed 's/^/   /'
	done
	# what the public channels now carry (the retained broadcast state, duty notices)
	"$b/services/wfctl/wfctl" watch --port "$port" --timeout 2 2> /dev/null \
		| grep -v ' WARNING \|why:' | tee -a "$tmp/watch.out" | sed 's/^/   /' || true
fi

got="$(grep -c ' WARNING ' "$tmp/watch.out" || true)"
notices="$(grep -c ' DUTY ' "$tmp/watch.out" || true)"
bcast="$(grep -c ' BROADCAST ' "$tmp/watch.out" || true)"
caps="$(ls "$tmp/dispatch/cap" 2>/dev/null | grep -c '\.xml$' || true)"
echo "== summary of the live run"
echo "   warning versions published by wf-fusion: $got (replay mode says $want)$( [ "$rc" = 0 ] || echo ", watch exit $rc")"
echo "   duty notices: $notices; broadcast state updates: $bcast; CAP 1.2 files: $caps"
if [ "$caps" -gt 0 ] && command -v xmllint >/dev/null; then
	one="$(ls "$tmp/dispatch/cap"/*.xml | head -1)"
	if xmllint --noout --schema services/met/schema/CAP-v1.2.xsd "$one" 2>/dev/null; then
		echo "   $(basename "$one"): valid against the OASIS CAP 1.2 schema"
	else
		echo "   $(basename "$one"): NOT valid against the CAP 1.2 schema"
	fi
fi
echo "   (review: level IV is released automatically, III after one operator's approval, I and II"
echo "    after two different operators'; here only the flood warning was signed off)"
kill "$fusion_pid" 2>/dev/null || true
wait "$fusion_pid" 2>/dev/null || true
tail -1 "$tmp/fusion.log" | sed 's/^<[0-9]>[^ ]* /   wf-fusion: /'

echo "== 3. what the next hours bring: the same events, wf-fusion --replay --drain"
"$b/services/fusion/wf-fusion" --replay "$tmp/events.jsonl" --rules deploy/fusion-rules.conf \
	--regions data/regions.csv --drain 2>/dev/null | python3 -c '
import json, sys
for l in sys.stdin:
    w = json.loads(l)
    print("   %-6s v%-2s %-18s %-9s %s" % (w.get("msg_type","")[9:], w.get("version"),
        w.get("hazard","")[7:], w.get("level",""), w.get("headline","")))'
echo "== done"
[ "$got" = "$want" ]
