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

A scenario's `when` statements, restarts and `check` lines add (see
check_scenario and chaos/scenario.py): each `when` met in time, each
restart left and came back, min-alive K, incarnation-up NODES, ends-dead
NODES and no-live-deaths (no `X ...->dead` in any agent's log while X was
live, over the whole run). Nodes a `kill` stopped for good are left out of
"agents running", and their deaths out of "no false deaths".
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
    # A node a `kill` stopped for good is rightly declared dead, whenever.
    killed = {d[0]: d[1] for e in events if e["kind"] == "kill"
              for d in e.get("downs", [])}
    deaths = [d for d in death_lines(lab)
              if not (d[2] in killed and d[0] >= killed[d[2]])]
    bad = [d for d in deaths for a, b in windows if a <= d[0] <= b]
    total = sum(b - a for a, b in windows)
    return rep.add(
        "no false deaths in loss-only phases (loss <= %g%%, delay <= %g ms)"
        % (LOSS_LIMIT, DELAY_LIMIT), not bad,
        "%.0f s checked" % total if not bad else "; ".join(
            "%s declared %s dead (by %s)" % (d[1], d[2], d[4])
            for d in bad[:4]))


def check_running(lab, rep):
    """Every agent's process is the one the lab last started, running;
    agents a `kill` statement stopped for good are not counted."""
    killed = set((lab.load() or {}).get("killed", []))
    nodes = [nd for nd in lab.nodes() if nd["name"] not in killed]
    bad = [nd["name"] for nd in nodes if not lab.agent_running(nd)]
    return rep.add("all %d agents running%s" % (
        len(nodes), " (%s killed on purpose)" % ",".join(sorted(killed))
        if killed else ""), not bad, "stopped: %s" % bad if bad else "")


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


# ---- conditions of `when` and the scenario's own `check` lines --------------

def _running(lab):
    return {nd["name"] for nd in lab.nodes() if lab.agent_running(nd)}


def alive_everywhere(lab, names):
    """(True, "") when each of @names runs, holds itself alive, and every
    other running agent sees it alive at the incarnation it holds itself
    (so a restarted node counts only once it has rejoined with its new
    life); else (False, why)."""
    running = _running(lab)
    views = lab.views(timeout=0.5)
    for x in names:
        if x not in running:
            return False, "%s is not running" % x
        own = (views.get(x) or {}).get(x)
        if own is None or own["state"] != "alive":
            return False, "%s holds itself %s" % (
                x, own["state"] if own else "unknown (no answer)")
        for a in sorted(running - {x}):
            m = (views.get(a) or {}).get(x)
            if views.get(a) is None:
                return False, "%s does not answer" % a
            if m is None or m["state"] != "alive" or \
                    m["incarnation"] != own["incarnation"]:
                return False, "%s sees %s %s (it is alive at inc=%d)" % (
                    a, x, "%s inc=%d" % (m["state"], m["incarnation"])
                    if m else "not at all", own["incarnation"])
    return True, ""


def dead_everywhere(lab, names):
    """(True, "") when none of @names runs and every running agent sees each
    of them dead or left (or not at all); else (False, why)."""
    running = _running(lab)
    views = lab.views(timeout=0.5)
    for x in names:
        if x in running:
            return False, "%s is running" % x
        for a in sorted(running):
            if views.get(a) is None:
                return False, "%s does not answer" % a
            m = views[a].get(x)
            if m is not None and m["state"] not in ("dead", "left"):
                return False, "%s sees %s %s inc=%d" % (
                    a, x, m["state"], m["incarnation"])
    return True, ""


def own_incarnations(lab):
    """{node: the incarnation it holds itself} of every answering agent."""
    out = {}
    for a, v in lab.views(timeout=1.0).items():
        if v and a in v:
            out[a] = v[a]["incarnation"]
    return out


def _downs(events):
    """{node: [(from, to)]}: wall-clock stretches in which the node was
    crashed, killed (to = inf), leaving/restarting, or paused."""
    out = {}
    for e in events:
        for name, a, b in e.get("downs", []):
            out.setdefault(name, []).append(
                (a, float("inf") if b is None else b))
    return out


def check_steps(events, rep):
    """One line per `when` and per restart: met in time, left and came
    back; and every statement that did not run."""
    for e in events:
        if e.get("status") == "skipped":
            rep.add("'%s' ran" % e["line"], False, e["error"])
        elif "when" in e:
            rep.add("'%s' met in time" % e["line"], "t_met" in e,
                    "after %.1f s" % (e["t_met"] - e["t_armed"])
                    if "t_met" in e else e.get("error", "never watched"))
        if e["kind"] == "restart" and "t_start" in e:
            ok = "error" not in e and "t_exited" in e and "t_end" in e
            rep.add("'%s': left and started again" % e["line"], ok,
                    e["error"] if "error" in e else
                    "exited %.1f s after SIGTERM, started again %.1f s "
                    "later" % (e["t_exited"] - e["t_start"],
                               e["t_end"] - e["t_exited"]) if ok else
                    "not started again")


def check_min_alive(c, samples, events, t0, rep):
    """Over the run (t >= 0), no agent saw fewer than K members alive.
    Views of an agent from its crash, kill, SIGTERM or pause until its
    first view after it came back that shows anyone but itself (it had not
    joined yet) are not counted: they are no one's view of the mesh."""
    downs = _downs(events)
    low = None
    joined = {}  # agent -> the return after which it was seen joined
    for t, agent, alive, _ in sorted(samples, key=lambda s: s[0]):
        wall = t0 + t
        ws = downs.get(agent, [])
        if t < 0 or any(a <= wall < b for a, b in ws):
            continue
        back = max((b for a, b in ws if b <= wall), default=None)
        if back is not None and joined.get(agent) != back:
            if alive <= 1:
                continue
            joined[agent] = back
        if low is None or alive < low[0]:
            low = (alive, agent, t)
    if low is None:
        return rep.add(c["line"], False, "no samples")
    return rep.add(c["line"], low[0] >= c["k"],
                   "lowest %d (%s at t=%.1f)" % low if low[0] >= c["k"] else
                   "%s saw only %d alive at t=%.1f (needs >= %d)" % (
                       low[1], low[0], low[2], c["k"]))


def check_incarnation_up(lab, c, before, rep):
    """Each node runs at the end with an incarnation higher than it held
    before t=0, and every running agent sees it alive at that one."""
    views = meshctl_views(lab)
    problems = []
    for x in c["targets"]:
        v = views.get(x)
        if v is None or x not in v:
            problems.append("%s is not running" % x)
            continue
        inc, was = v[x]["incarnation"], before.get(x)
        if was is None:
            problems.append("%s: no incarnation before t=0" % x)
        elif inc <= was:
            problems.append("%s still at inc=%d (was %d before t=0)"
                            % (x, inc, was))
        for a, va in sorted(views.items()):
            m = (va or {}).get(x)
            if m is None or m["state"] != "alive" or m["incarnation"] != inc:
                problems.append("%s sees %s %s" % (a, x, "%s inc=%d" % (
                    m["state"], m["incarnation"]) if m else "not at all"))
    return rep.add(c["line"], not problems, "; ".join(problems[:4]) or
                   ", ".join("%s %d->%d" % (x, before[x],
                                            views[x][x]["incarnation"])
                             for x in c["targets"]))


def check_ends_dead(lab, c, rep):
    """Each node is down at the end and every running agent sees it dead
    or left (or has forgotten it)."""
    running = _running(lab)
    problems = ["%s is running (pid %d)" % (x, lab.node(x)["pid"])
                for x in c["targets"] if x in running]
    views = meshctl_views(lab)
    for a, v in sorted(views.items()):
        for x in c["targets"]:
            m = (v or {}).get(x)
            if m is not None and m["state"] not in ("dead", "left"):
                problems.append("%s sees %s %s inc=%d" % (
                    a, x, m["state"], m["incarnation"]))
    return rep.add(c["line"], not problems, "; ".join(problems[:4]) or
                   "%d agents see %s dead or left" % (
                       len(views), ",".join(c["targets"])))


def excused(events):
    """(everyone, per_node): wall-clock stretches in which a death is no
    false one. Everyone during a partition, one-way cut, or loss/delay
    over the limits; a node while it is crashed, killed, restarting or
    paused; each until GRACE_S after it ended (suspicions raised then may
    still expire)."""
    glob = [(e["t_start"], e["t_end"] + GRACE_S) for e in events
            if "t_end" in e and (e["kind"] in ("partition", "oneway") or
                                 e["kind"] in ("loss", "delay") and
                                 not _is_mild(e))]
    per = {x: [(a, b + GRACE_S) for a, b in w]
           for x, w in _downs(events).items()}
    return glob, per


def check_no_live_deaths(lab, events, t0, rep):
    """No agent logged a `X ...->dead` line (from its own log, so a death
    refuted a moment later still counts) at a time X was live."""
    glob, per = excused(events)
    bad = []
    n = 0
    for d in death_lines(lab):
        if d[0] < t0:
            continue
        n += 1
        if any(a <= d[0] <= b for a, b in glob + per.get(d[2], [])):
            continue
        bad.append(d)
    return rep.add("no-live-deaths: no live agent declared dead (agents' "
                   "logs)", not bad,
                   "%d deaths logged, all of crashed/killed/paused/"
                   "restarting or partitioned nodes" % n if not bad else
                   "; ".join("%s declared %s dead at t=%.1f (%s->dead, by "
                             "%s) while it was live" % (
                                 d[1], d[2], d[0] - t0, d[3], d[4])
                             for d in bad[:4]) +
                   ("; %d more" % (len(bad) - 4) if len(bad) > 4 else ""))


def check_scenario(lab, sc, events, samples, t0, before, rep):
    """The scenario's own steps and `check` lines, after check_all."""
    check_steps(events, rep)
    for c in sc.get("checks", []):
        if c["check"] == "min-alive":
            check_min_alive(c, samples, events, t0, rep)
        elif c["check"] == "incarnation-up":
            check_incarnation_up(lab, c, before, rep)
        elif c["check"] == "ends-dead":
            check_ends_dead(lab, c, rep)
        elif c["check"] == "no-live-deaths":
            check_no_live_deaths(lab, events, t0, rep)
