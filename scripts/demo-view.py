#!/usr/bin/env python3
"""demo-view: the live view of scripts/demo.sh.

Runs `wfctl watch --json` as the broker user USER, prints one readable line per
warning version, duty notice and broadcast state, and writes each message,
stamped with the wall-clock time, to LOG ({"t": unix seconds, "msg": {...}}).
A second thread polls the CAP spool directory and fakesmsc's log and prints
what reached them (also logged: {"t", "cap": NAME} and {"t", "sms": {...}}).
Runs until SIGTERM. Also a library: read_sms(PATH) decodes fakesmsc's log.

Usage: demo-view.py --wfctl PATH --port P --username U --password-file F --log FILE
                    --t0 UNIX --cap-dir DIR --fakesmsc LOG [--ready FILE]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

COLOUR = {"LEVEL_I": "红", "LEVEL_II": "橙", "LEVEL_III": "黄", "LEVEL_IV": "蓝"}
KIND = {"NOTICE_KIND_NOTICE": "notice", "NOTICE_KIND_ESCALATION": "ESCALATION",
        "NOTICE_KIND_REMINDER": "reminder", "NOTICE_KIND_RELEASED": "released"}
GOT = re.compile(r"^(\S+ \S+) .*Got message \d+: <(\S+) (\S+) (\S+) (.*)>\s*$")


def url_decode(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "+":
            out.append(0x20)
        elif c == "%" and i + 2 < len(s) + 0 and re.match(r"[0-9A-Fa-f]{2}", s[i + 1:i + 3]):
            out.append(int(s[i + 1:i + 3], 16))
            i += 2
        else:
            out.extend(c.encode("latin-1", "replace"))
        i += 1
    return bytes(out)


def read_sms(path, offset=0):
    """Parses fakesmsc's log from OFFSET: returns (messages, new offset), one
    message per handset and text, the parts of a concatenated one joined:
    {"time", "to", "parts", "text"}."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    msgs, pending = [], {}
    for raw in data[:end].decode("utf-8", "replace").splitlines():
        m = GOT.match(raw)
        if not m:
            continue
        when, _frm, to, typ, rest = m.groups()
        if typ == "udh":
            udh_s, _, body = rest.partition(" data ")
            udh = url_decode(udh_s)
            text = url_decode(body).decode("utf-16-be", "replace")
            if len(udh) >= 6 and udh[1] == 0:
                ref, total, seq = udh[3], udh[4], udh[5]
                p = pending.setdefault((to, ref), {"time": when, "parts": {}, "total": total})
                p["parts"][seq] = text
                if len(p["parts"]) == total:
                    msgs.append({"time": when, "to": to, "parts": total,
                                 "text": "".join(p["parts"][k] for k in sorted(p["parts"]))})
                    del pending[(to, ref)]
                continue
        elif typ == "ucs-2":
            text = url_decode(rest).decode("utf-16-be", "replace")
        else:
            text = url_decode(rest).decode("latin-1", "replace")
        msgs.append({"time": when, "to": to, "parts": 1, "text": text})
    if pending:  # an incomplete concatenated message: read it again next time
        return msgs, offset
    return msgs, offset + end


def region_names():
    """code -> name from WF_REGIONS (data/regions.csv: code,name,parent,level)."""
    names = {}
    try:
        with open(os.environ.get("WF_REGIONS", ""), encoding="utf-8") as f:
            for l in f:
                p = l.split(",")
                if len(p) >= 2 and p[0].isdigit():
                    names[p[0]] = p[1]
    except OSError:
        pass
    return names


class View:
    def __init__(self, a):
        self.a = a
        self.names = region_names()
        self.lock = threading.Lock()
        self.log = open(a.log, "a", buffering=1)
        self.stop = threading.Event()

    def rel(self, t):
        return "%+6.1fs" % (t - self.a.t0)

    def out(self, t, line, rec):
        with self.lock:
            rec = dict(rec, t=t)
            self.log.write(json.dumps(rec, ensure_ascii=False) + "\n")
            if line:
                print("   %s  %s" % (self.rel(t), line), flush=True)

    def on_message(self, t, msg):
        if "warning" in msg:
            w = msg["warning"]
            mt = w.get("msg_type", "")[9:]
            why = ", ".join(w.get("rule_ids", []))
            line = "WARNING   %-6s v%-2s %s %s%s" % (
                mt, w.get("version"), COLOUR.get(w.get("level"), "?"), w.get("headline", ""),
                "   (rules: %s; %d event(s))" % (why, len(w.get("event_ids", []))) if why else "")
            self.out(t, line, {"msg": msg})
        elif "duty_notice" in msg:
            n = msg["duty_notice"]
            kind = KIND.get(n.get("kind"), n.get("kind"))
            text = (n.get("text") or "").split("\n")[0].split("：")[0]
            line = "DUTY      %-10s -> %-15s %s v%s%s%s" % (
                kind, n.get("station"), text, n.get("version"),
                ", pending review" if n.get("pending_review") else "",
                " (%s did not answer)" % n["escalated_from"] if n.get("escalated_from") else "")
            self.out(t, line, {"msg": msg})
        elif "broadcast" in msg:
            b = msg["broadcast"]
            act = b.get("active", [])
            line = "BROADCAST %s: %s" % (
                self.names.get(b.get("region"), b.get("region")), "; ".join("%s %s" % (COLOUR.get(x.get("level"), "?"),
                                                      x.get("headline", "")) for x in act)
                if act else "nothing active (all clear)")
            self.out(t, line, {"msg": msg})
        elif "state" in msg:
            s = msg["state"]
            # one-shot wfctl runs (approve, ack) come and go: only services count
            if s.get("status") != "SERVICE_ONLINE" and s.get("kind") != "wfctl":
                self.out(t, "STATE     %s is offline" % s.get("service"), {"msg": msg})

    def poll_files(self):
        seen = set()
        off = 0
        while not self.stop.is_set():
            try:
                names = sorted(os.listdir(self.a.cap_dir))
            except OSError:
                names = []
            for n in names:
                if n.endswith(".xml") and n not in seen:
                    seen.add(n)
                    self.out(time.time(), "CAP       %s written" % n, {"cap": n})
            msgs, off = read_sms(self.a.fakesmsc, off)
            groups = {}
            for m in msgs:
                groups.setdefault((m["text"], m["parts"]), []).append(m["to"])
                self.out(time.time(), None, {"sms": m})
            for (text, parts), tos in groups.items():
                self.out(time.time(), "SMS       at fakesmsc, %d handset(s), %d part(s) each: %s"
                         % (len(tos), parts, text), {})
            self.stop.wait(0.25)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--username", dest="user", required=True)
    for k in ("--wfctl", "--port", "--password-file", "--log", "--cap-dir",
              "--fakesmsc"):
        ap.add_argument(k, required=True)
    ap.add_argument("--t0", type=float, required=True)
    ap.add_argument("--ready")
    a = ap.parse_args()
    v = View(a)
    auth = ["--port", a.port, "--username", a.user, "--password-file", a.password_file]
    watch = subprocess.Popen([a.wfctl, "watch", "--json"] + auth, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def stop(*_):
        if watch.poll() is None:
            watch.terminate()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    th = threading.Thread(target=v.poll_files, daemon=True)
    th.start()
    for line in watch.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if a.ready and not os.path.exists(a.ready):
            open(a.ready, "w").close()  # subscribed: the first heartbeat arrived
        v.on_message(time.time(), msg)
    watch.wait()
    v.stop.set()
    th.join(2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
