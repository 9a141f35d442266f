#!/usr/bin/env python3
"""bench/peers/peers.py: warnfuse side by side with its peers, in one run, on one
machine, on one event set (issue 7).

  raw          bench-broker: raw libmosquitto QoS 1 through a private broker (the ceiling)
  raw-chain    bench-broker --relays 2: the same messages through three QoS 1 broker
               hops (publisher -> relay -> relay -> subscriber, the hops of
               producer -> wf-fusion -> wf-dispatch -> observer), no work, nothing
               durable: the floor of a three-service pipeline; checked exactly once
  raw-chain-bundle  the same chain with 16 events per MQTT message (bench-broker
               --bundle 16): the floor of that pipeline if it carried several
               events per message, which warnfuse does not (a diagnosis, entries/s)
  warnfuse     bench-peers-warnfuse: producer outbox -> broker -> wf-fusion ->
               wf-dispatch (committed, acked) -> duty notices, durable
               (throughput; paced latency)
  warnfuse-nostation  the same with no duty station in the routing file: wf-dispatch
               commits every version (and acks it) but publishes no notice; a
               diagnosis that separates its commit path from its notice publishing
  alertmanager prometheus-alertmanager fed the same events as alerts over
               POST /api/v2/alerts; a webhook receiver here (accepted alerts/s,
               time to the last resolved notification, POST -> first notification)
  sec          SEC (Simple Event Correlator) on the same events as log lines with
               equivalent lifecycle, pairing (chain) and threshold rules (lines/s,
               checked against the expected number of correlated outputs)

The event set: --count events (default 60,000) over 30 hazards x --counties Henan
counties (default 100), each (hazard, county) running whole cycles ALERT IV ->
UPDATE III -> UPDATE II -> UPDATE I -> CANCEL; rounds are emitted county by
county, rainstorm before flood, so each cycle pairs rainstorm and flood in every
county. It is generated once per run and written as JSON lines (warnfuse), log
lines (SEC) and alert batches (Alertmanager).

Every measurement runs --runs times (default 3), interleaved; the summary prints
the median and the range, and the ratios of the medians. Everything listens on
127.0.0.1 on free ports; the processes started here are stopped here, by PID.
Each wait has a deadline; a failed or incomplete measurement prints 0 and the
exit status is 1.

Usage: bench/peers/peers.py [--build DIR] [--count N] [--counties C] [--runs R]
                            [--only raw,raw-chain,raw-chain-bundle,warnfuse,
                                    warnfuse-nostation,alertmanager,sec]
                            [--keep]
"""
import argparse
import http.client
import http.server
import json
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# The 30 hazards of the set and the agency that reports each (proto/types.proto).
HAZARDS = [
    ("met", h) for h in ("typhoon", "rainstorm", "snowstorm", "cold_wave", "gale", "sandstorm",
                         "heat", "drought", "lightning", "hail", "frost", "fog", "haze",
                         "road_icing")
] + [("water", h) for h in ("flood", "low_water", "reservoir", "flash_flood")] + [
    ("geo", h) for h in ("landslide", "debris_flow", "collapse", "subsidence")
] + [("fire", h) for h in ("forest_fire", "urban_fire", "hazmat", "explosion")] + [
    ("police", h) for h in ("crowd", "traffic", "public_order", "missing_persons")
]
STEPS = [("ALERT", "IV"), ("UPDATE", "III"), ("UPDATE", "II"), ("UPDATE", "I"), ("CANCEL", "NONE")]
EVENT_GAP_MS = 100          # event time between two events of the set
VALIDITY_MS = 12 * 3600000  # expires_ms - observed_ms
SEC_WINDOW_CHAIN_S = 6 * 3600   # flood-chain "within = 6h"
SEC_WINDOW_CROWD_S = 1800       # crowd-reports "within = 30m", "min = 3"


def log(msg):
    print("peers: " + msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, step=0.02):
    """Polls PRED until true or TIMEOUT seconds; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def stop(proc, timeout=10):
    """SIGTERM to the process we started, SIGKILL after TIMEOUT seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def pct(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    return v[int(p * (len(v) - 1) + 0.5)]


# ---------------------------------------------------------------- event set

def henan_counties(n):
    out = []
    with open(os.path.join(ROOT, "data", "regions.csv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("41") and line[12:13] == "," and line.rstrip().endswith(",county"):
                out.append(line[:12])
                if len(out) == n:
                    break
    if len(out) < n:
        sys.exit("peers: only %d Henan counties in data/regions.csv" % len(out))
    return out


def make_events(count, n_counties):
    """The shared event set: a list of dicts, in emission order."""
    counties = henan_counties(n_counties)
    series = [(c, a, h) for c in counties for (a, h) in HAZARDS]
    per_cycle = len(series) * len(STEPS)
    cycles = max(1, count // per_cycle)
    n = cycles * per_cycle
    now_ms = int(time.time() * 1000)
    base = now_ms - n * EVENT_GAP_MS - 600000  # the last event 10 min ago
    events = []
    for i in range(n):
        rnd, s = divmod(i, len(series))
        cycle, step = divmod(rnd, len(STEPS))
        county, agency, hazard = series[s]
        mt, level = STEPS[step]
        eid = "peers:%s:%s:%d:%d" % (county[:6], hazard, cycle, step)
        ref = "peers:%s:%s:%d:%d" % (county[:6], hazard, cycle, step - 1)
        events.append({
            "i": i, "county": county, "agency": agency, "hazard": hazard, "msg_type": mt,
            "level": level, "id": eid, "ref": ref if step > 0 else None, "cycle": cycle,
            "observed_ms": base + i * EVENT_GAP_MS,
        })
    return events, cycles


def write_jsonl(events, path):
    """Events in the JSON form of docs/protocol.md (what wf-fusion --replay reads)."""
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            j = {
                "id": e["id"], "agency": "AGENCY_" + e["agency"].upper(),
                "hazard": "HAZARD_" + e["hazard"].upper(), "region": e["county"],
                "level": "LEVEL_" + e["level"], "observed_ms": e["observed_ms"],
                "issued_ms": e["observed_ms"], "expires_ms": e["observed_ms"] + VALIDITY_MS,
                "status": "STATUS_ACTUAL", "text": "peers bench", "producer": "wf-adapter-peers",
                "seq": e["i"] + 1, "msg_type": "MSG_TYPE_" + e["msg_type"],
            }
            if e["ref"]:
                j["references"] = [e["ref"]]
            f.write(json.dumps(j, separators=(",", ":")) + "\n")


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)


def write_log(events, path):
    """The same events as log lines for SEC: TIME AGENCY HAZARD REGION TYPE LEVEL ID."""
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write("%s %s %s %s %s %s %s\n" % (iso(e["observed_ms"]), e["agency"], e["hazard"],
                                                e["county"], e["msg_type"], e["level"], e["id"]))


# ---------------------------------------------------------------- raw mosquitto

def run_raw(build, count, workdir):
    exe = os.path.join(build, "bench", "bench-broker")
    if not os.access(exe, os.X_OK):
        log("%s is not built" % exe)
        return None
    r = subprocess.run([exe, "--count", str(count)], capture_output=True, text=True, timeout=300)
    for line in r.stdout.splitlines():
        k, _, v = line.partition(" ")
        if k == "broker.raw_qos1_msgs_per_s":
            return {"msgs_per_s": float(v)}
    log("bench-broker failed (%d): %s" % (r.returncode, r.stderr.strip()[-500:]))
    return None


# The broker hops of warnfuse's pipeline as measured (bench-peers-warnfuse):
# producer -> broker -> wf-fusion -> broker -> wf-dispatch -> broker -> observer
# (the dispatcher's acks and duty notices), so two relays in between.
CHAIN_RELAYS = 2


CHAIN_BUNDLE = 16  # raw-chain-bundle: entries per MQTT message


def run_raw_chain(build, count, workdir, bundle=1):
    """bench-broker --relays CHAIN_RELAYS [--bundle BUNDLE]: COUNT messages (or
    entries of BUNDLE per message) through the chain, every one received
    exactly once (by its sequence number), or None."""
    exe = os.path.join(build, "bench", "bench-broker")
    if not os.access(exe, os.X_OK):
        log("%s is not built" % exe)
        return None
    r = subprocess.run([exe, "--count", str(count), "--relays", str(CHAIN_RELAYS),
                        "--bundle", str(bundle)],
                       capture_output=True, text=True, timeout=300)
    v = {}
    for line in r.stdout.splitlines():
        k, _, x = line.partition(" ")
        if k.startswith("chain."):
            try:
                v[k[len("chain."):]] = float(x)
            except ValueError:
                pass
    if (r.returncode != 0 or v.get("raw_qos1_msgs_per_s", 0) <= 0 or v.get("missing", 1) != 0
            or v.get("duplicates", 1) != 0 or v.get("hops") != CHAIN_RELAYS + 1
            or v.get("bundle") != bundle):
        log("bench-broker --relays %d failed (%d): %s %s" % (CHAIN_RELAYS, r.returncode,
                                                            r.stdout.strip().replace("\n", ", "),
                                                            r.stderr.strip()[-500:]))
        return None
    return {"msgs_per_s": v["raw_qos1_msgs_per_s"], "hops": v["hops"],
            "duplicates": v["duplicates"], "missing": v["missing"]}


# ---------------------------------------------------------------- warnfuse

def run_warnfuse(build, jsonl, workdir, no_station=False):
    """NO_STATION: the diagnosis run, wf-dispatch with no duty station (it
    commits every version and publishes nothing), no latency phase."""
    exe = os.path.join(build, "bench", "bench-peers-warnfuse")
    if not os.access(exe, os.X_OK):
        log("%s is not built" % exe)
        return None
    args = ["--no-station"] if no_station else ["--rate", "1000", "--seconds", "10"]
    r = subprocess.run([exe, "--events", jsonl] + args, capture_output=True, text=True,
                       timeout=900)
    v = {}
    for line in r.stdout.splitlines():
        k, _, x = line.partition(" ")
        if k.startswith("peers.warnfuse."):
            v[k[len("peers.warnfuse."):]] = float(x)
    for line in r.stderr.strip().splitlines():
        log(line)
    if v.get("committed_events_per_s", 0) <= 0:
        log("bench-peers-warnfuse failed (%d)" % r.returncode)
        return None
    if no_station:
        return {k: x for k, x in v.items() if k in ("committed_events_per_s",
                                                      "acked_events_per_s")}
    if r.returncode != 0:  # committed everywhere, but duty notices missing: reported
        log("bench-peers-warnfuse: incomplete (exit %d): %d of %d warnings' final version "
            "not notified" % (r.returncode, v.get("final_versions_missing", -1),
                              v.get("replay_warnings", -1)))
    return v


# ---------------------------------------------------------------- alertmanager

AM_GROUP_WAIT = "100ms"
AM_GROUP_INTERVAL = "1s"
AM_BATCH = 64  # Prometheus' notifier sends at most 64 alerts per POST
AM_RESOLVED_WAIT_S = 60  # after the last POST, for every group's final resolved notification


def webhook_main(sock, q):
    """The webhook receiver, in its own process (so that it does not share a
    GIL with the client POSTing alerts): puts (arrival time, (hazard,
    county), status, alerts) of each notification on Q."""
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            t = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            try:
                m = json.loads(body)
                gl = m.get("groupLabels", {})
                q.put((t, (gl.get("hazard"), gl.get("county")), m.get("status"),
                       len(m.get("alerts", []))))
            except (ValueError, AttributeError):
                q.put((t, None, "bad", 0))

        def log_message(self, *a):
            pass

    class S(http.server.ThreadingHTTPServer):
        def server_bind(self):
            self.socket = sock
            self.server_address = sock.getsockname()

        def server_activate(self):
            pass
    S(sock.getsockname(), H).serve_forever()


class Webhook:
    """The webhook receiver process and what it received: per group, the
    notification times, and the time of the latest resolved one."""

    def __init__(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self.q = multiprocessing.Queue()
        self.proc = multiprocessing.Process(target=webhook_main, args=(sock, self.q), daemon=True)
        self.proc.start()
        sock.close()
        self.reset()

    def reset(self):
        self.drain()
        self.times, self.resolved = {}, {}
        self.notifications = self.alerts = 0

    def drain(self):
        while True:
            try:
                t, g, status, n = self.q.get_nowait()
            except queue.Empty:
                return
            if not hasattr(self, "times"):
                continue
            self.notifications += 1
            self.alerts += n
            self.times.setdefault(g, []).append(t)
            if status == "resolved":
                self.resolved[g] = t

    def close(self):
        self.proc.terminate()
        self.proc.join(10)


def am_alerts(e, ends):
    """The alerts one event becomes. Labels alertname, hazard, county, agency,
    incident (the cycle: each cycle is a new warning in warnfuse, so a new
    alert here; without it a whole cycle inside one group interval would
    resolve the same fingerprints as the cycle before and never be notified)
    and level: a level change is a new alert, so Alertmanager notifies it (an
    annotation change alone would be deduplicated away). ALERT: the level
    fires; UPDATE: the new level fires and the previous one is resolved;
    CANCEL: the previous level is resolved. A firing alert gets startsAt =
    its arrival (so group_wait applies to a new group); a resolved one has
    startsAt = endsAt = a moment before the POSTs."""
    def alert(level, resolved):
        a = {"labels": {"alertname": e["hazard"], "hazard": e["hazard"], "county": e["county"],
                        "agency": e["agency"], "incident": str(e["cycle"]), "level": level},
             "annotations": {"event_id": e["id"], "msg_type": e["msg_type"]},
             "generatorURL": "http://127.0.0.1/peers"}
        if resolved:
            a["startsAt"] = a["endsAt"] = ends
        return a
    step = [lv for _, lv in STEPS]
    k = step.index(e["level"])
    out = []
    if e["msg_type"] != "CANCEL":
        out.append(alert(e["level"], False))
    if k > 0:
        out.append(alert(step[k - 1], True))
    return out


def am_batches(events):
    """POST bodies of whole events, at most AM_BATCH alerts each, with the
    group of each event in them; prepared before the clock starts."""
    ends = iso(int(time.time() * 1000) - 1000)
    batches, alerts, groups = [], [], []
    for e in events:
        al = am_alerts(e, ends)
        if len(alerts) + len(al) > AM_BATCH:
            batches.append((json.dumps(alerts).encode(), groups, len(alerts)))
            alerts, groups = [], []
        alerts += al
        groups.append((e["hazard"], e["county"]))
    if alerts:
        batches.append((json.dumps(alerts).encode(), groups, len(alerts)))
    return batches


def am_start(workdir, hook_port):
    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not exe:
        log("prometheus-alertmanager is not installed (scripts/deps.sh bench)")
        return None, None, None
    d = tempfile.mkdtemp(prefix="am-", dir=workdir)
    port = free_port()
    with open(os.path.join(d, "alertmanager.yml"), "w") as f:
        f.write("route:\n  receiver: bench\n  group_by: [hazard, county]\n"
                "  group_wait: %s\n  group_interval: %s\n  repeat_interval: 24h\n"
                "receivers:\n- name: bench\n  webhook_configs:\n"
                "  - url: http://127.0.0.1:%d/\n    send_resolved: true\n"
                % (AM_GROUP_WAIT, AM_GROUP_INTERVAL, hook_port))
    logf = open(os.path.join(d, "alertmanager.log"), "w")
    proc = subprocess.Popen([exe, "--config.file=" + os.path.join(d, "alertmanager.yml"),
                             "--storage.path=" + os.path.join(d, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port,
                             "--cluster.listen-address=", "--log.level=warn"],
                            stdout=logf, stderr=subprocess.STDOUT)

    def ready():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/-/ready")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return proc.poll() is not None
    if not wait_for(ready, 30) or proc.poll() is not None:
        log("alertmanager did not come up (log %s)" % logf.name)
        stop(proc)
        logf.close()
        return None, None, None
    logf.close()
    return proc, port, d


def am_post(conn, body):
    conn.request("POST", "/api/v2/alerts", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        log("alertmanager: POST answered %d" % r.status)
    return r.status == 200


def am_latencies(sends, times):
    """For each (group, send time) in SENDS: the time to the first notification
    of the group after it (TIMES: group -> arrival times); None if none came."""
    out = []
    for g, t in sends:
        nxt = [x for x in times.get(g, ()) if x > t]
        out.append((min(nxt) - t) * 1000 if nxt else None)
    return out


def run_alertmanager(events, workdir, rate=1000, seconds=10, time_limit=300):
    hook = Webhook()
    res = {}
    try:
        # 1. throughput: every event, batches back to back on one connection
        proc, port, d = am_start(workdir, hook.port)
        if proc is None:
            return None
        try:
            batches = am_batches(events)
            groups = {g for _, gs, _ in batches for g in gs}
            n_alerts = sum(n for _, _, n in batches)
            last_post = {}
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t0 = time.monotonic()
            for body, gs, _ in batches:
                t = time.monotonic()
                if t > t0 + time_limit:
                    log("alertmanager: POSTs over the time limit")
                    return None
                for g in gs:
                    last_post[g] = t
                if not am_post(conn, body):
                    return None
            t_posted = time.monotonic()
            conn.close()

            # done when every group's latest resolved notification came after
            # its last POST (the final CANCEL of each series was notified)
            def all_resolved():
                hook.drain()
                return all(hook.resolved.get(g, 0) > last_post[g] for g in groups)
            # a minute after the last POST is 60 group intervals: in some runs
            # Alertmanager never sends part of the final resolved notifications
            # (seen in 3 of 9 runs of 3,000 groups, 5 min waits included)
            done = wait_for(all_resolved, AM_RESOLVED_WAIT_S, 0.05)
            t_done = max(hook.resolved.values()) if hook.resolved else time.monotonic()
            n_res = sum(1 for g in groups if hook.resolved.get(g, 0) > last_post[g])
            res.update({
                "events": len(events), "alerts": n_alerts, "groups": len(groups),
                "accepted_events_per_s": len(events) / (t_posted - t0),
                "accepted_alerts_per_s": n_alerts / (t_posted - t0),
                "resolved_events_per_s": len(events) / (t_done - t0) if done else 0.0,
                "groups_resolved": n_res, "notifications": hook.notifications,
                "notified_alerts": hook.alerts,
            })
            log("alertmanager: %d events (%d alerts) posted in %.2f s; %d notifications "
                "(%d alerts in them); %d of %d groups resolved after %.2f s" %
                (len(events), n_alerts, t_posted - t0, hook.notifications, hook.alerts,
                 n_res, len(groups), t_done - t0))
            if not done:
                return None
        finally:
            stop(proc)
            shutil.rmtree(d, ignore_errors=True)

        # 2. latency: a fresh instance; the first RATE * SECONDS events paced at
        # RATE/s (each 10 ms tick POSTs the events due, as Prometheus batches)
        hook.reset()
        proc, port, d = am_start(workdir, hook.port)
        if proc is None:
            return None
        try:
            lat_events = events[:int(rate * seconds)]
            ends = iso(int(time.time() * 1000) - 1000)
            bodies = [(json.dumps(am_alerts(e, ends)), (e["hazard"], e["county"]))
                      for e in lat_events]
            sends = []
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t0 = time.monotonic()
            while len(sends) < len(bodies) and time.monotonic() < t0 + seconds + time_limit:
                due = min(len(bodies), int((time.monotonic() - t0) * rate) + 1)
                if due > len(sends):
                    chunk = bodies[len(sends):due]
                    body = ("[" + ",".join(b[1:-1] for b, _ in chunk) + "]").encode()
                    t = time.monotonic()
                    if not am_post(conn, body):
                        return None
                    sends += [(g, t) for _, g in chunk]
                time.sleep(0.01)
            conn.close()
            last = {}
            for g, t in sends:
                last[g] = t

            def settled():
                hook.drain()
                return all(max(hook.times.get(g, [0])) > t for g, t in last.items())
            wait_for(settled, 10, 0.05)
            hook.drain()
            all_lat = am_latencies(sends, hook.times)
            lat = [x for x in all_lat if x is not None]
            left = len(all_lat) - len(lat)
            res.update({
                "latency_events": len(lat_events), "latency_rate": rate,
                "latency_samples": len(lat), "latency_unanswered": left,
                "latency_p50_ms": pct(lat, 0.5), "latency_p90_ms": pct(lat, 0.9),
                "latency_p99_ms": pct(lat, 0.99), "latency_max_ms": max(lat) if lat else 0.0,
            })
            log("alertmanager: latency: %d events at %d/s, %d samples, %d without a "
                "notification after them" % (len(lat_events), rate, len(lat), left))
        finally:
            stop(proc)
            shutil.rmtree(d, ignore_errors=True)
        return res
    finally:
        hook.close()


# ---------------------------------------------------------------- SEC

SEC_RULES = r"""# SEC rules equivalent to the fusion rules the event set exercises.
# Line: TIME AGENCY HAZARD REGION TYPE LEVEL ID

# lifecycle per hazard + county (fusion: one warning per hazard and county,
# versions on ALERT/UPDATE, ended by CANCEL): a context holds the open incident
type=Single
ptype=RegExp
pattern=^\S+ (\w+) (\w+) (\d{12}) ALERT (\S+) (\S+)$
context=!open_$2_$3
continue=TakeNext
desc=open $2 $3
action=create open_$2_$3 86400; write %(out)s version new $2 $3 $4 $5

type=Single
ptype=RegExp
pattern=^\S+ (\w+) (\w+) (\d{12}) UPDATE (\S+) (\S+)$
context=open_$2_$3
continue=TakeNext
desc=update $2 $3
action=write %(out)s version update $2 $3 $4 $5

type=Single
ptype=RegExp
pattern=^\S+ (\w+) (\w+) (\d{12}) CANCEL (\S+) (\S+)$
context=open_$2_$3
continue=TakeNext
desc=cancel $2 $3
action=delete open_$2_$3; write %(out)s version cancel $2 $3 $5

# flood-chain: a rainstorm, then a rising river in the same county within 6 h
type=Pair
ptype=RegExp
pattern=^\S+ met rainstorm (\d{12}) ALERT
continue=TakeNext
desc=rain $1
action=none
ptype2=RegExp
pattern2=^\S+ water flood $1 ALERT
continue2=TakeNext
desc2=flood chain $1
action2=write %(out)s chain flood $1
window=%(chain)d

# crowd-reports: 3 crowd reports in a county within 30 min
type=SingleWithThreshold
ptype=RegExp
pattern=^\S+ police crowd (\d{12}) (?:ALERT|UPDATE)
desc=crowd $1
action=write %(out)s count crowd $1
window=%(crowd)d
thresh=3
"""


def sec_expected(events):
    """What the rules above must write for EVENTS (their semantics, computed
    independently; the windows are far longer than a run)."""
    open_, waiting, crowd = set(), set(), {}
    n = 0
    for e in events:
        key = (e["hazard"], e["county"])
        if e["msg_type"] == "ALERT" and key not in open_:
            open_.add(key)
            n += 1
        elif e["msg_type"] == "UPDATE" and key in open_:
            n += 1
        elif e["msg_type"] == "CANCEL" and key in open_:
            open_.discard(key)
            n += 1
        if e["msg_type"] == "ALERT" and e["hazard"] == "rainstorm":
            waiting.add(e["county"])
        elif e["msg_type"] == "ALERT" and e["hazard"] == "flood" and e["county"] in waiting:
            waiting.discard(e["county"])
            n += 1
        if e["hazard"] == "crowd" and e["msg_type"] in ("ALERT", "UPDATE"):
            crowd[e["county"]] = crowd.get(e["county"], 0) + 1
            if crowd[e["county"]] == 3:
                n += 1
    return n


def run_sec(events, logpath, workdir, time_limit=600):
    exe = shutil.which("sec")
    if not exe:
        log("sec is not installed (scripts/deps.sh bench)")
        return None
    d = tempfile.mkdtemp(prefix="sec-", dir=workdir)
    out = os.path.join(d, "out.txt")
    rules = os.path.join(d, "rules.sec")
    with open(rules, "w") as f:
        f.write(SEC_RULES % {"out": out, "chain": SEC_WINDOW_CHAIN_S, "crowd": SEC_WINDOW_CROWD_S})
    want = sec_expected(events)
    try:
        t0 = time.monotonic()
        r = subprocess.run([exe, "--conf=" + rules, "--input=" + logpath, "--notail",
                            "--nodetach", "--nointevents", "--log=" + os.path.join(d, "sec.log"),
                            "--debug=3"], capture_output=True, text=True, timeout=time_limit)
        t = time.monotonic() - t0
        got = 0
        if os.path.exists(out):
            with open(out) as f:
                got = sum(1 for _ in f)
        if r.returncode != 0 or got != want:
            log("sec: exit %d, %d outputs, %d expected: %s" % (r.returncode, got, want,
                                                                r.stderr.strip()[-300:]))
            return None
        log("sec: %d lines in %.2f s, %d outputs (as expected)" % (len(events), t, got))
        return {"lines_per_s": len(events) / t, "outputs": got, "seconds": t}
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"),
                    help="build directory with bench-broker and bench-peers-warnfuse")
    ap.add_argument("--count", type=int, default=60000, help="events, rounded down to whole "
                    "cycles of 30 hazards x COUNTIES x 5 steps, at least one cycle "
                    "(15,000 with 100 counties); default 60000")
    ap.add_argument("--counties", type=int, default=100, help="Henan counties (1..150)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each measurement (1..10)")
    ap.add_argument("--only", default="raw,raw-chain,raw-chain-bundle,warnfuse,"
                    "warnfuse-nostation,alertmanager,sec",
                    help="comma-separated measurements (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the event files")
    a = ap.parse_args()
    if not 1 <= a.counties <= 150 or not 1 <= a.runs <= 10 or not 1 <= a.count <= 200000:
        ap.error("--counties 1..150, --runs 1..10, --count 1..200000")
    which = [w for w in a.only.split(",") if w]
    for w in which:
        if w not in ("raw", "raw-chain", "raw-chain-bundle", "warnfuse", "warnfuse-nostation",
                     "alertmanager", "sec"):
            ap.error("--only: unknown '%s'" % w)

    workdir = tempfile.mkdtemp(prefix="bench-peers-")
    try:
        return measure(a, which, workdir)
    finally:
        if a.keep:
            log("kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(a, which, workdir):
    """Generates the event set in WORKDIR, runs every measurement A.runs
    times, prints the summary; returns the exit status."""
    events, cycles = make_events(a.count, a.counties)
    if len(events) > 200000:
        log("more than 200,000 events")
        return 2
    jsonl = os.path.join(workdir, "events.jsonl")
    logpath = os.path.join(workdir, "events.log")
    write_jsonl(events, jsonl)
    write_log(events, logpath)
    print("peers.events %d" % len(events))
    print("peers.series %d" % (len(HAZARDS) * a.counties))
    print("peers.cycles %d" % cycles)
    sys.stdout.flush()
    log("%d events (%d hazards x %d counties x %d cycles x 5 steps) in %s" %
        (len(events), len(HAZARDS), a.counties, cycles, workdir))

    results = {w: [] for w in which}
    failed = False
    for run in range(a.runs):
        for w in which:
            log("run %d/%d: %s" % (run + 1, a.runs, w))
            if w == "raw":
                v = run_raw(a.build, len(events), workdir)
            elif w == "raw-chain":
                v = run_raw_chain(a.build, len(events), workdir)
            elif w == "raw-chain-bundle":
                v = run_raw_chain(a.build, len(events), workdir, bundle=CHAIN_BUNDLE)
            elif w == "warnfuse":
                v = run_warnfuse(a.build, jsonl, workdir)
            elif w == "warnfuse-nostation":
                v = run_warnfuse(a.build, jsonl, workdir, no_station=True)
            elif w == "alertmanager":
                v = run_alertmanager(events, workdir)
            else:
                v = run_sec(events, logpath, workdir)
            if v is None or v.get("final_versions_missing", 0) > 0:
                failed = True  # an incomplete warnfuse run still prints its figures
            if v is None:
                continue
            results[w].append(v)
            for k, x in sorted(v.items()):
                print("peers.%s.run%d.%s %.2f" % (w, run + 1, k, x))
            sys.stdout.flush()

    def med(w, k):
        xs = [v[k] for v in results.get(w, []) if k in v]
        return (statistics.median(xs), min(xs), max(xs)) if xs else (0.0, 0.0, 0.0)

    headline = [("raw", "msgs_per_s", "raw Mosquitto QoS 1, msg/s"),
                ("raw-chain", "msgs_per_s",
                 "raw Mosquitto QoS 1 through %d hops (%d relays), msg/s"
                 % (CHAIN_RELAYS + 1, CHAIN_RELAYS)),
                ("raw-chain-bundle", "msgs_per_s",
                 "the same chain, %d entries per message (not warnfuse's protocol), entries/s"
                 % CHAIN_BUNDLE),
                ("warnfuse", "committed_events_per_s",
                 "warnfuse producer->fusion->dispatch, every version committed by dispatch, events/s"),
                ("warnfuse", "acked_events_per_s",
                 "warnfuse producer->fusion, producer outbox drained, events/s"),
                ("warnfuse", "notified_events_per_s",
                 "warnfuse to every final version's duty notice, events/s (0: some never came)"),
                ("warnfuse", "final_versions_missing",
                 "warnfuse warnings whose final version's duty notice never came"),
                ("warnfuse-nostation", "committed_events_per_s",
                 "warnfuse the same, wf-dispatch with no duty station (publishes nothing), "
                 "events/s"),
                ("warnfuse", "latency_p50_ms", "warnfuse event->duty notice p50 ms (1,000/s)"),
                ("warnfuse", "latency_p99_ms", "warnfuse event->duty notice p99 ms (1,000/s)"),
                ("warnfuse", "cpu_ms_fusion",
                 "wf-fusion's CPU from the first emit to the last commit, ms"),
                ("warnfuse", "cpu_ms_dispatch", "wf-dispatch's CPU, the same span, ms"),
                ("warnfuse", "cpu_ms_broker", "the broker's CPU, the same span, ms"),
                ("warnfuse", "cpu_ms_harness",
                 "the benchmark's producer and console (one process), the same span, ms"),
                ("alertmanager", "accepted_events_per_s", "Alertmanager POSTs accepted, events/s"),
                ("alertmanager", "accepted_alerts_per_s", "Alertmanager POSTs accepted, alerts/s"),
                ("alertmanager", "resolved_events_per_s",
                 "Alertmanager to every group's final resolved notification, events/s"),
                ("alertmanager", "latency_p50_ms",
                 "Alertmanager POST->next notification of the group p50 ms (1,000/s)"),
                ("alertmanager", "latency_p99_ms",
                 "Alertmanager POST->next notification of the group p99 ms (1,000/s)"),
                ("sec", "lines_per_s", "SEC, lines/s")]
    print("== peers summary: median [min-max] of %d runs, %d events" % (a.runs, len(events)))
    for w, k, label in headline:
        if w in results and results[w]:
            m, lo, hi = med(w, k)
            print("peers.%s.%s %.2f  # %s [%.2f-%.2f]" % (w, k, m, label, lo, hi))
    wf = med("warnfuse", "committed_events_per_s")[0]
    wfn = med("warnfuse-nostation", "committed_events_per_s")[0]
    for name, w, k in (("alertmanager_resolved", "alertmanager", "resolved_events_per_s"),
                       ("sec", "sec", "lines_per_s"), ("raw_qos1", "raw", "msgs_per_s"),
                       ("raw_chain", "raw-chain", "msgs_per_s")):
        other = med(w, k)[0]
        if wfn > 0 and other > 0:
            print("ratio.peers.warnfuse_nostation_vs_%s %.2f" % (name, wfn / other))
    for name, w, k in (("alertmanager_accepted", "alertmanager", "accepted_events_per_s"),
                       ("alertmanager_resolved", "alertmanager", "resolved_events_per_s"),
                       ("sec", "sec", "lines_per_s"), ("raw_qos1", "raw", "msgs_per_s"),
                       ("raw_chain", "raw-chain", "msgs_per_s"),
                       ("raw_chain_bundle", "raw-chain-bundle", "msgs_per_s")):
        other = med(w, k)[0]
        if wf > 0 and other > 0:
            print("ratio.peers.warnfuse_vs_%s %.2f" % (name, wf / other))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
