#!/bin/sh
# Installs the Debian 12 packages warnfuse needs to build, test and run.
# Usage: scripts/deps.sh [build|test|bench|demo|fuzz|all]   (default: test)
# demo: what scripts/demo.sh runs on (the build, the broker, Kannel with fakesmsc, xmllint).
# Idempotent: installs only what is missing; needs root (or sudo) for apt-get.
set -eu

BUILD="meson ninja-build pkg-config gcc libc6-dev python3 \
libmosquitto-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev libev-dev \
libsystemd-dev libinih-dev libssl-dev libcjson-dev libxml2-dev libxmlsec1-dev \
libcurl4-openssl-dev libmicrohttpd-dev help2man"
RUNTIME="mosquitto mosquitto-clients lmdb-utils"
# SMS: bearerbox/smsbox (kannel) and fakesmsc (kannel-extras); xmllint (libxml2-utils) for CAP
SMS="kannel kannel-extras libxml2-utils"
TEST="check libsubunit-dev protobuf-compiler valgrind $SMS"
# fuzz/run: clang 14; libFuzzer and the ASan/UBSan runtimes (libclang-rt-14-dev, only
# a Recommends of clang); llvm-symbolizer for readable sanitizer stacks (llvm-14)
FUZZ="clang libclang-rt-14-dev llvm-14"
# bench/run peers: the peers warnfuse is compared with (Alertmanager 0.25, SEC 2.9)
PEERS="prometheus-alertmanager sec"

what="${1:-test}"
case "$what" in
	build) pkgs="$BUILD" ;;
	test) pkgs="$BUILD $RUNTIME $TEST" ;;
	bench) pkgs="$BUILD $RUNTIME $TEST $PEERS" ;;
	demo) pkgs="$BUILD $RUNTIME $SMS" ;;
	fuzz) pkgs="$BUILD $FUZZ" ;;
	all) pkgs="$BUILD $RUNTIME $TEST $FUZZ $PEERS" ;;
	-h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "deps.sh: unknown set '$what' (build|test|bench|demo|fuzz|all)" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
echo "deps.sh: installing:$missing" >&2
$SUDO apt-get update -qq
# The Debian mosquitto package starts a system broker on :1883 where systemd runs;
# warnfuse's tests never use it (they start private brokers on free ports).
# prometheus-alertmanager and sec likewise come with system services (:9093, and a
# sec reading /etc/sec.conf); bench/run peers starts its own on free ports and temp dirs.
# Likewise kannel's init script may start a system bearerbox (/etc/kannel/kannel.conf,
# admin port 13000); the SMS tests run private ones on free loopback ports.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
