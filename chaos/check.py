"""check: did the mesh heal, and how fast.

Rules (each one line of output, "ok" or "FAIL"):

  converged        after the last fault ends, within --converge-timeout,
                   every running agent sees exactly the running agents as
                   alive and every stopped one as dead/left (or not at all)
  same view        read once more through `meshctl members --json`: all
                   agents agree on every member's state and incarnation,
                   and each member's incarnation is the one it holds itself
                   (so a crashed and restarted node has rejoined with its
                   new life, not merely been resurrected by gossip)
  agents running   no meshd exited on its own during the run
  no false deaths  no agent logged "X ...->dead" during a loss-only phase:
                   a stretch with only loss <= LOSS_LIMIT %, delay+jitter
                   <= DELAY_LIMIT ms and duplication active, starting
                   GRACE_S after the last disruptive fault ended (suspicions
                   raised during that fault may still expire)
  bound            time to converge <= 3 * log2(N) protocol periods
"""
import calendar
import json
import os
import re
import subprocess
import time

from scenario import bound_s

# Stated limits for "nobody alive is declared dead" (issue 17): 30 % egress
# loss on any number of nodes, and delay + jitter up to 150 ms (100 +- 50 ms
# on every agent): the probe timeout follows the round trip, and suspicion
# timeouts and last calls grow with the loss each agent measures.
LOSS_LIMIT = 30.0
DELAY_LIMIT = 150.0
# 6 suspicion timeouts of a lone accuser (6 * 800 ms) plus a probe period
# and margin: how long a suspicion from a disruptive fault may outlive it.
GRACE_S = 10.0

DEATH_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z \w+\s+"
                      r"swim: (\S+) (\w+)->dead inc=(\d+) by (\S+)")


class Report:
    def __init__(self, log=print):
        self.items = []
        self.log = log

    def add(self, name, ok, detail=""):
        self.items.append((name, bool(ok), detail))
        self.log("%s %s%s" % ("ok  " if ok else "FAIL", name,
                              (": " + detail) if detail else ""))
        return ok

    def summary(self):
        p = sum(1 for _, ok, _ in self.items if ok)
        return "%d passed, %d failed" % (p, len(self.items) - p)

    def failed(self):
        return any(not ok for _, ok, _ in self.items)


def converged(lab):
    """(True, "") when every running agent sees the running ones alive and
    no one else alive; else (False, why)."""
    nodes = lab.nodes()
    running = {nd["name"] for nd in nodes if lab.agent_running(nd)}
    views = lab.views(timeout=0.5)
    for agent in sorted(running):
        v = views.get(agent)
        if v is None:
            return False, "%s does not answer" % agent
        alive = {k for k, m in v.items() if m["state"] == "alive"}
        if alive != running:
            miss = sorted(running - alive)
            extra = sorted(alive - running)
            return False, "%s: missing %s extra %s" % (agent, miss, extra)
    return True, ""


def wait_converged(lab, since, timeout, step=0.2):
    """Seconds from `since` until converged, or None after timeout."""
    why = ""
    while time.time() - since < timeout:
        ok, why = converged(lab)
        if ok:
            return time.time() - since, ""
        time.sleep(step)
    return None, why


def meshctl_views(lab):
    """{agent: {name: member}} through the meshctl binary, as an operator
    would read it."""
    st = lab.load()
    ctl = os.path.join(st["bin"], "meshctl")
    out = {}
    for nd in st["nodes"]:
        if not lab.agent_running(nd):
            continue
        p = subprocess.run([ctl, "--data-dir", nd["dir"], "members", "--json"],
                           capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            out[nd["name"]] = None
            continue
        out[nd["name"]] = {m["name"]: m for m in
                           json.loads(p.stdout)["members"]}
    return out


def check_same_view(lab, rep):
    views = meshctl_views(lab)
    bad = [a for a, v in views.items() if v is None]
    if bad:
        return rep.add("same view", False, "no answer from %s" % bad)
    own = {a: v[a]["incarnation"] for a, v in views.items() if a in v}
    problems = []
    for a, v in sorted(views.items()):
        for name in views:
            m = v.get(name)
            if m is None or m["state"] != "alive":
                problems.append("%s sees %s %s" % (
                    a, name, m["state"] if m else "missing"))
            elif m["incarnation"] != own.get(name):
                problems.append("%s sees %s inc=%d, it is at %s" % (
                    a, name, m["incarnation"], own.get(name)))
        for name, m in v.items():
            if name not in views and m["state"] in ("alive", "suspect"):
                problems.append("%s sees stopped %s %s" % (a, name,
                                                           m["state"]))
    return rep.add("same view (meshctl members --json, %d agents)"
                   % len(views), not problems, "; ".join(problems[:4]))


def death_lines(lab):
    """(time, agent, victim, from_state, by) for every death in the logs."""
    out = []
    for nd in lab.nodes():
        try:
            with open(nd["log"], errors="replace") as f:
                for line in f:
                    m = DEATH_RE.match(line)
                    if m:
                        t = calendar.timegm(time.strptime(
                            m.group(1), "%Y-%m-%dT%H:%M:%S"))
                        out.append((t + int(m.group(2)) / 1000.0, nd["name"],
                                    m.group(3), m.group(4), m.group(6)))
        except OSError:
            pass
    return out


def _is_mild(ev):
    if ev["kind"] == "loss":
        return ev["pct"] <= LOSS_LIMIT
    if ev["kind"] == "delay":
        return ev["delay_ms"] + ev["jitter_ms"] <= DELAY_LIMIT
    return ev["kind"] == "dup"


def loss_only_windows(events):
    """Wall-clock intervals where only mild faults are active, minus GRACE_S
    after every harsh one (disruptive, or loss/delay over the limits)."""
    mild = [(e["t_start"], e["t_end"]) for e in events
            if "t_end" in e and _is_mild(e)]
    harsh = [(e["t_start"], e["t_end"] + GRACE_S) for e in events
             if "t_end" in e and not _is_mild(e)]
    out = []
    for a, b in mild:
        pieces = [(a, b)]
        for ha, hb in harsh:
            nxt = []
            for pa, pb in pieces:
                if hb <= pa or ha >= pb:
                    nxt.append((pa, pb))
                    continue
                if pa < ha:
                    nxt.append((pa, ha))
                if hb < pb:
                    nxt.append((hb, pb))
            pieces = nxt
        out.extend(p for p in pieces if p[1] - p[0] > 0.5)
    # Overlapping mild faults give overlapping pieces: merge them.
    merged = []
    for a, b in sorted(out):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def check_false_deaths(lab, events, rep):
    windows = loss_only_windows(events)
    if not windows:
        return rep.add("no false deaths in loss-only phases", True,
                       "no loss-only phase in this scenario")
    deaths = death_lines(lab)
    bad = [d for d in deaths for a, b in windows if a <= d[0] <= b]
    total = sum(b - a for a, b in windows)
    return rep.add(
        "no false deaths in loss-only phases (loss <= %g%%, delay <= %g ms)"
        % (LOSS_LIMIT, DELAY_LIMIT), not bad,
        "%.0f s checked" % total if not bad else "; ".join(
            "%s declared %s dead (by %s)" % (d[1], d[2], d[4])
            for d in bad[:4]))


def check_running(lab, rep):
    """Every agent's process is the one the lab last started, running."""
    bad = [nd["name"] for nd in lab.nodes() if not lab.agent_running(nd)]
    return rep.add("all %d agents running" % len(lab.nodes()), not bad,
                   "stopped: %s" % bad if bad else "")


def check_all(lab, events, t_last, timeout, period_ms, rep, strict_bound=True):
    """The full set of checks after the faults; returns seconds to
    converge (or None)."""
    n = len(lab.nodes())
    conv, why = wait_converged(lab, t_last, timeout)
    rep.add("converged after the last fault", conv is not None,
            "%.2f s" % conv if conv is not None else
            "not within %g s: %s" % (timeout, why))
    check_running(lab, rep)
    check_same_view(lab, rep)
    check_false_deaths(lab, events, rep)
    b = bound_s(n, period_ms)
    ok = conv is not None and conv <= b
    detail = "%s s vs 3*log2(%d)*%g ms = %.2f s" % (
        "%.2f" % conv if conv is not None else "never", n, period_ms, b)
    if strict_bound or ok:
        rep.add("reconverged within 3*log2(N) periods", ok, detail)
    else:
        rep.log("note reconverged within 3*log2(N) periods: %s (not "
                "enforced)" % detail)
    return conv
