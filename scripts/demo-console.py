#!/usr/bin/env python3
"""demo-console: one broker client of scripts/demo.sh, on wfctl.

Runs `wfctl watch --json` as the broker user USER and writes every message it
sees, stamped with the wall-clock time, to LOG (one JSON object a line:
{"t": unix seconds, "msg": {...}}). With --station it is that duty station's
console: it keeps only the notices to that station and, with --ack NAME,
acknowledges each one with `wfctl ack` (as USER = the station, the person on
duty NAME), logging {"t", "ack": {"id", "version", "kind", "rc", "secs"}}.
Without --ack it is a station where nobody answers: it only records what
arrives. Runs until SIGTERM; every wfctl it starts is waited for.

Usage: demo-console.py --wfctl PATH --port P --username U --password-file F --log FILE
                       [--station S [--ack NAME --state DIR]] [--say PREFIX] [--t0 UNIX] [--ready FILE]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

KIND = {"NOTICE_KIND_NOTICE": "notice", "NOTICE_KIND_ESCALATION": "escalation",
        "NOTICE_KIND_REMINDER": "reminder", "NOTICE_KIND_RELEASED": "released"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wfctl", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--username", dest="user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--station")
    ap.add_argument("--ack", metavar="NAME")
    ap.add_argument("--state")
    ap.add_argument("--say", default="", help="prefix of the lines printed for each ack")
    ap.add_argument("--t0", type=float, help="print times as seconds since this (unix time)")
    ap.add_argument("--ready", help="file created once the first message (a heartbeat) arrived")
    a = ap.parse_args()
    if a.ack and not (a.station and a.state):
        ap.error("--ack needs --station and --state")

    auth = ["--port", a.port, "--username", a.user, "--password-file", a.password_file]
    watch = subprocess.Popen([a.wfctl, "watch", "--json"] + auth, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def stop(*_):
        if watch.poll() is None:
            watch.terminate()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    seen = set()
    with open(a.log, "a", buffering=1) as log:
        for line in watch.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            now = time.time()
            if a.ready and not os.path.exists(a.ready):
                open(a.ready, "w").close()  # subscribed: the first heartbeat arrived
            n = msg.get("duty_notice")
            if a.station:
                if not n or n.get("station") != a.station:
                    continue
                # a notice is republished after a dispatcher reconnect: once is enough
                key = (n.get("warning_id"), n.get("version"), n.get("kind"), n.get("deadline_ms"))
                if key in seen:
                    continue
                seen.add(key)
            log.write(json.dumps({"t": now, "msg": msg}, ensure_ascii=False) + "\n")
            if not (a.ack and n):
                continue
            if n.get("kind") == "NOTICE_KIND_RELEASED":
                continue  # released after review: nothing to acknowledge (the view shows it)
            ref = "%s@%s" % (n.get("warning_id"), n.get("version"))
            t0 = time.time()
            rc = subprocess.call([a.wfctl, "ack", a.station, ref, "--operator", a.ack,
                                  "--state", a.state, "--timeout", "15"] + auth,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            secs = time.time() - t0
            log.write(json.dumps({"t": time.time(), "ack": {
                "id": n.get("warning_id"), "version": n.get("version"),
                "kind": KIND.get(n.get("kind"), n.get("kind")), "rc": rc,
                "secs": round(secs, 3)}}) + "\n")
            kind = KIND.get(n.get("kind"), "notice")
            what = (n.get("text") or "").split("\n")[0].split("：")[0]
            frm = n.get("escalated_from")
            print("   %s  %s%s v%s%s: %s" % (
                "%+6.1fs" % (time.time() - a.t0) if a.t0 else "", a.say, what, n.get("version"),
                " (escalated from %s)" % frm if kind == "escalation" and frm else
                (" (%s)" % kind if kind != "notice" else ""),
                "done in %.1f s" % secs if rc == 0 else
                "ACK FAILED (wfctl exit %d)" % rc), flush=True)
    watch.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
