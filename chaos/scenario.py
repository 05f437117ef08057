"""scenario: the declarative fault files, the random generator, the engine.

A scenario file, one statement a line, `#` starts a comment:

    nodes 8                          # lab size (2..250)
    settle 3                         # quiet seconds before t=0 (default 3)
    at 0  crash n2 n5          for 20
    at 25 partition n1..n3 | n4..n8 for 30
    at 25 loss all 10%         for 30
    at 60 oneway n1 -> n2..n4  for 10
    at 60 delay n3 100ms 40ms  for 10   # delay, then +/- jitter (optional)
    at 75 dup n4,n6 20%        for 10
    at 80 pause n7             for 8

    tenants 4 writers 6 rate 12      # tenant workload (tenants.py)
    at 8  crash replica:t1:2   for 6    # the 2nd replica of tenant t1

`at T` is seconds after the start; every fault has `for D` seconds and is
undone when they are over. `tenants N [writers W] [rate R]` creates
tenants t1..tN before t=0 and runs W writers at about R operations a
second each until the last fault ends; crash and pause may then name
`replica:tI[:K]`, the K-th replica (default 1st) the mesh placed tenant tI
on when it was created, resolved when the fault starts. Node sets: `n3`,
`n1..n4`, `all`, joined by spaces or commas. A partition's groups are split by `|`; `oneway A -> B`
drops only A's packets to B. Faults may overlap, except that one node
cannot be in two crash/pause/kill/restart statements or two delay faults
at once.

Kills, restarts, conditions and checks:

    at 0   kill n8                       # kill -9, never restarted
    at 3   restart n4 for 2              # SIGTERM, wait for the exit, 2 s
                                         # down, start again (for: optional)
    at +0  when alive n4 within 20 then restart n5
    at +1  when converged within 20      # a bare condition
    at 10  when dead n8 within 20
    check min-alive 6
    check incarnation-up n4,n5
    check ends-dead n8
    check no-live-deaths

`kill NODES` takes no `for`: the node stays dead to the end of the run
(nothing may crash, pause, restart or kill it again), and `all agents
running` does not count it. `restart NODES [for D]` leaves gracefully: the
agent gets SIGTERM (SIGCONT first, should it be paused), the engine waits
until it has exited (it is killed after EXIT_MAX_S, which fails the run),
keeps it down D seconds (default 0) and starts it on the same data dir.

`at +D` begins D seconds after the statement on the line above is done: a
fault when it is undone, a kill when it is made, a restart when the agent
runs again, a `when` when its action is done (or, bare, when its condition
held). `when COND within S [then ACTION]` watches COND every POLL_S from
its time on; once it holds, ACTION (any statement after `at T`: a fault,
kill or restart) begins then; if S seconds pass first, the run fails with
"COND not met within S s: why", and the statements that follow it with
`at +D` are skipped (and fail too). Conditions:

    alive NODES   each runs, holds itself alive, and every other running
                  agent sees it alive at that same incarnation (so a
                  restarted node counts once it rejoined with its new life)
    dead NODES    none runs (crashed, killed, exited or paused) and every
                  running agent sees each dead or left, or not at all
    converged     every running agent sees exactly the running ones alive

Every wait has its limit, so a scenario still ends by itself; its length
is the latest it can end. `check` lines are asserted after the faults, once
the mesh has converged (see check.py): `min-alive K` (no agent's view ever
held fewer than K alive, not counting a node's own view while it is down
or before it has rejoined), `incarnation-up NODES` (each runs at the end
at an incarnation higher than before t=0, and everyone sees it there),
`ends-dead NODES` (each is down at the end and every running agent sees it
dead or left), `no-live-deaths` (no agent logged `X ...->dead` while X was
live: not crashed, killed, restarting or paused, and no partition, one-way
cut or loss/delay over the limits was on, each until 10 s after it ended).
"""
import heapq
import itertools
import math
import random
import re
import threading
import time

import faults
from chaoslab import LabError, view_of

KINDS = ("crash", "pause", "partition", "oneway", "loss", "delay", "dup",
         "kill", "restart")
# Faults that take a node (or a link) away completely; the others only make
# the network worse. Loss-only phases, where the checker requires that no
# one is declared dead, are the stretches with no disruptive fault.
DISRUPTIVE = ("crash", "pause", "partition", "oneway")
MAX_LENGTH_S = 3600  # every scenario is bounded
# `when COND within S`: what COND may be, and the largest S.
CONDITIONS = ("alive", "dead", "converged")
MAX_WAIT_S = 600
# `restart`: how long an agent may take to leave after SIGTERM before it is
# killed (meshd gives its leave 3 s, MESHD_LEAVE_GRACE_MS in agent/meshd.c).
EXIT_MAX_S = 15.0
# How often a `when` condition and a leaving agent are looked at.
POLL_S = 0.25


def _nodes(tokens, n, where, tenants=0):
    out = []
    for tok in " ".join(tokens).replace(",", " ").split():
        m = re.fullmatch(r"replica:t(\d+)(?::(\d+))?", tok)
        if m and tenants:
            if not 1 <= int(m.group(1)) <= tenants:
                raise LabError("%s: '%s': there are tenants t1..t%d"
                               % (where, tok, tenants))
            if m.group(2) is not None and not 1 <= int(m.group(2)) <= 8:
                raise LabError("%s: '%s': a tenant has at most 8 replicas"
                               % (where, tok))
            out.append(tok)
            continue
        if tok.startswith("replica:"):
            raise LabError("%s: '%s' needs a 'tenants N' line (and is "
                           "replica:tI or replica:tI:K)" % (where, tok))
        if tok == "all":
            out.extend("n%d" % i for i in range(1, n + 1))
            continue
        m = re.fullmatch(r"n(\d+)(?:\.\.n?(\d+))?", tok)
        if not m:
            raise LabError("%s: bad node '%s' (n3, n1..n4 or all)"
                           % (where, tok))
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if not 1 <= lo <= hi <= n:
            raise LabError("%s: '%s' is outside n1..n%d" % (where, tok, n))
        out.extend("n%d" % i for i in range(lo, hi + 1))
    if not out:
        raise LabError("%s: no nodes named" % where)
    seen = []
    for i in out:
        if i not in seen:
            seen.append(i)
    return seen


def _pct(tok, where):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)%", tok)
    if not m or not 0 <= float(m.group(1)) <= 100:
        raise LabError("%s: bad percentage '%s' (e.g. 10%%)" % (where, tok))
    return float(m.group(1))


def _ms(tok, where):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)ms", tok)
    if not m:
        raise LabError("%s: bad time '%s' (e.g. 100ms)" % (where, tok))
    return float(m.group(1))


def parse(text, name="scenario"):
    sc = {"name": name, "nodes": None, "settle": 3.0, "events": [],
          "tenants": None, "checks": []}
    lines = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append((no, line))
    for no, line in lines:
        toks = line.split()
        where = "%s:%d" % (name, no)
        if toks[0] == "nodes" and len(toks) == 2 and toks[1].isdigit():
            sc["nodes"] = int(toks[1])
        elif toks[0] == "settle" and len(toks) == 2:
            sc["settle"] = float(toks[1])
        elif toks[0] == "tenants":
            sc["tenants"] = _tenants(toks, where)
    if not sc["nodes"]:
        raise LabError("%s: missing 'nodes N'" % name)
    n = sc["nodes"]
    tenants = (sc["tenants"] or {}).get("tenants", 0)
    prev = None  # the statement above, for `at +D`
    for no, line in lines:
        toks = line.split()
        where = "%s:%d" % (name, no)
        if toks[0] in ("nodes", "settle", "tenants"):
            continue
        if toks[0] == "check":
            sc["checks"].append(_check(toks, n, where, line))
            continue
        if toks[0] != "at" or len(toks) < 3:
            raise LabError("%s: expected 'at T KIND ... for D': %s"
                           % (where, line))
        ev = {"id": len(sc["events"]), "line": line, "where": where}
        if toks[1].startswith("+"):
            if prev is None:
                raise LabError("%s: 'at +D' follows the statement above, "
                               "and there is none" % where)
            ev["after"], ev["delay"] = prev["id"], _secs(toks[1][1:] or "0",
                                                         where, line)
        else:
            ev["at"] = _secs(toks[1], where, line)
        rest = toks[2:]
        if rest[0] == "when":
            rest = _when(ev, rest, n, where)
        if rest:
            _action(ev, rest, n, where, line, tenants)
        else:
            ev.update(kind="when", dur=0.0)
        sc["events"].append(ev)
        prev = ev
    _bounds(sc)
    sc["events"].sort(key=lambda e: e["at"])
    _check_overlaps(sc)
    if sc["events"] and length(sc) > MAX_LENGTH_S:
        raise LabError("%s: longer than %d s" % (name, MAX_LENGTH_S))
    return sc


def _secs(tok, where, line):
    try:
        v = float(tok)
    except ValueError:
        raise LabError("%s: T and D are seconds: %s" % (where, line))
    if v < 0:
        raise LabError("%s: T must be >= 0 and D > 0" % where)
    return v


def _action(ev, toks, n, where, line, tenants):
    """Fills ev with the action `KIND ARGS [for D]` of a statement."""
    kind = toks[0]
    ev["kind"] = kind
    if kind in ("kill", "restart"):
        args, dur = toks[1:], None
        if len(toks) >= 3 and toks[-2] == "for":
            args, dur = toks[1:-2], _secs(toks[-1], where, line)
        if kind == "kill" and dur is not None:
            raise LabError("%s: a kill stays dead to the end of the run; "
                           "'crash NODES for D' is a crash that is "
                           "restarted" % where)
        ev["dur"] = dur or 0.0
        ev["targets"] = _nodes(args, n, where, tenants)
        return
    if len(toks) < 3 or toks[-2] != "for":
        raise LabError("%s: expected 'at T KIND ... for D': %s"
                       % (where, line))
    dur = _secs(toks[-1], where, line)
    args = toks[1:-2]
    if dur <= 0:
        raise LabError("%s: T must be >= 0 and D > 0" % where)
    ev["dur"] = dur
    if kind in ("crash", "pause"):
        ev["targets"] = _nodes(args, n, where, tenants)
    elif kind == "partition":
        parts = " ".join(args).split("|")
        if len(parts) < 2:
            raise LabError("%s: partition needs groups split by |"
                           % where)
        ev["groups"] = [_nodes([p], n, where) for p in parts]
    elif kind == "oneway":
        parts = " ".join(args).split("->")
        if len(parts) != 2:
            raise LabError("%s: oneway needs 'A -> B'" % where)
        ev["groups"] = [_nodes([p], n, where) for p in parts]
    elif kind in ("loss", "dup"):
        if not args:
            raise LabError("%s: %s needs nodes and a percentage"
                           % (where, kind))
        ev["pct"] = _pct(args[-1], where)
        ev["targets"] = _nodes(args[:-1], n, where)
    elif kind == "delay":
        ms = [a for a in args if a.endswith("ms")]
        if not 1 <= len(ms) <= 2:
            raise LabError("%s: delay needs 'NODES 100ms [40ms]'" % where)
        ev["delay_ms"] = _ms(ms[0], where)
        ev["jitter_ms"] = _ms(ms[1], where) if len(ms) == 2 else 0.0
        ev["targets"] = _nodes([a for a in args if a not in ms], n, where)
    else:
        raise LabError("%s: unknown fault '%s' (one of %s)"
                       % (where, kind, ", ".join(KINDS)))
    if "groups" in ev:
        flat = [x for g in ev["groups"] for x in g]
        if len(flat) != len(set(flat)):
            raise LabError("%s: groups overlap" % where)


def _when(ev, toks, n, where):
    """`when COND within S [then ACTION]`: fills ev["when"]; returns the
    ACTION's tokens (empty for a bare condition)."""
    usage = ("%s: expected 'when alive NODES|dead NODES|converged within S "
             "[then ACTION]'" % where)
    if "within" not in toks:
        raise LabError(usage + " (every condition has a time limit)")
    k = toks.index("within")
    cond = toks[1:k]
    if not cond or cond[0] not in CONDITIONS or k + 1 >= len(toks):
        raise LabError(usage)
    w = {"cond": cond[0]}
    if cond[0] == "converged":
        if len(cond) != 1:
            raise LabError(usage)
    else:
        w["targets"] = _nodes(cond[1:], n, where)
    try:
        w["within"] = float(toks[k + 1])
    except ValueError:
        raise LabError(usage)
    if not 0 < w["within"] <= MAX_WAIT_S:
        raise LabError("%s: 'within S' must be in (0, %d] seconds"
                       % (where, MAX_WAIT_S))
    ev["when"] = w
    rest = toks[k + 2:]
    if rest and (rest[0] != "then" or len(rest) < 2):
        raise LabError(usage)
    return rest[1:]


def _check(toks, n, where, line):
    """`check min-alive K`, `check incarnation-up NODES`, `check ends-dead
    NODES`, `check no-live-deaths`: assertions run after the faults."""
    what = toks[1] if len(toks) > 1 else ""
    c = {"check": what, "line": line, "where": where}
    if what == "min-alive" and len(toks) == 3 and toks[2].isdigit() and \
            1 <= int(toks[2]) <= n:
        c["k"] = int(toks[2])
    elif what in ("incarnation-up", "ends-dead") and len(toks) > 2:
        c["targets"] = _nodes(toks[2:], n, where)
    elif what == "no-live-deaths" and len(toks) == 2:
        pass
    else:
        raise LabError("%s: expected 'check min-alive K' (1..%d), 'check "
                       "incarnation-up NODES', 'check ends-dead NODES' or "
                       "'check no-live-deaths': %s" % (where, n, line))
    return c


def _bounds(sc):
    """Earliest and latest times of every statement, seconds after t=0:
    `lo` = earliest start, `hi` = latest end (None for a kill: the node
    stays dead), `done_lo`/`done_hi` = when the statements after it may begin.
    `at` becomes `lo` for statements that follow another."""
    by_id = {e["id"]: e for e in sc["events"]}
    for ev in sc["events"]:  # file order: a predecessor comes first
        if "after" in ev:
            p = by_id[ev["after"]]
            arm_lo, arm_hi = p["done_lo"] + ev["delay"], \
                p["done_hi"] + ev["delay"]
            ev["at"] = arm_lo
        else:
            arm_lo = arm_hi = ev["at"]
        if "when" in ev:
            arm_hi += ev["when"]["within"]
        act_lo, act_hi = ev["dur"], ev["dur"]
        if ev["kind"] == "restart":
            act_hi += EXIT_MAX_S
        ev["lo"] = arm_lo
        ev["done_lo"], ev["done_hi"] = arm_lo + act_lo, arm_hi + act_hi
        # None: never (results.json stays plain JSON).
        ev["hi"] = None if ev["kind"] == "kill" else ev["done_hi"]


def _tenants(toks, where):
    """`tenants N [writers W] [rate R]`: the tenant workload."""
    spec = {"tenants": 0, "writers": 4, "rate": 10.0}
    if len(toks) < 2 or not toks[1].isdigit() or len(toks) % 2 != 0:
        raise LabError("%s: expected 'tenants N [writers W] [rate R]'"
                       % where)
    spec["tenants"] = int(toks[1])
    for k, v in zip(toks[2::2], toks[3::2]):
        try:
            if k == "writers":
                spec["writers"] = int(v)
            elif k == "rate":
                spec["rate"] = float(v)
            else:
                raise ValueError
        except ValueError:
            raise LabError("%s: bad '%s %s' (writers W, rate R)"
                           % (where, k, v))
    if not (1 <= spec["tenants"] <= 64 and 1 <= spec["writers"] <= 64 and
            0 < spec["rate"] <= 200):
        raise LabError("%s: tenants 1..64, writers 1..64, rate (0, 200] "
                       "per writer" % where)
    return spec


def _ancestors(sc, ev):
    by_id = {e["id"]: e for e in sc["events"]}
    out = set()
    while "after" in ev:
        out.add(ev["after"])
        ev = by_id[ev["after"]]
    return out


def _check_overlaps(sc):
    """One node cannot be crashed, killed, restarted or paused twice at once,
    or delayed twice: the undo of one would silently end the other. A
    statement that may start at different times counts from its earliest
    start to its latest end; one that follows another (`at +D`) never
    overlaps those it follows, except that nothing crashes, kills, restarts
    or pauses a node after its kill."""
    for cls in (("crash", "pause", "kill", "restart"), ("delay",)):
        evs = [e for e in sc["events"] if e["kind"] in cls]
        for i, a in enumerate(evs):
            for b in evs[i + 1:]:
                chained = a["id"] in _ancestors(sc, b) or \
                    b["id"] in _ancestors(sc, a)
                if chained and "kill" not in (a["kind"], b["kind"]):
                    continue
                a_hi = math.inf if a["hi"] is None else a["hi"]
                b_hi = math.inf if b["hi"] is None else b["hi"]
                if b["lo"] < a_hi and a["lo"] < b_hi:
                    both = set(a["targets"]) & set(b["targets"])
                    if both:
                        raise LabError("'%s' and '%s' overlap on %s" % (
                            a["line"], b["line"], " ".join(sorted(both))))


def length(sc):
    return max((e["done_hi"] for e in sc["events"]), default=0.0)


def load(path):
    with open(path) as f:
        return parse(f.read(), path)


# ---- random scenarios ------------------------------------------------------

def generate(seed, n=8, total=60.0):
    """A random scenario, the same for the same seed. Faults follow each
    other with gaps, sometimes with a concurrent network fault on top;
    at most a third of the nodes crash or pause at once, so a majority
    always stays up to re-seed the rest."""
    rnd = random.Random(seed)
    nodes = ["n%d" % i for i in range(1, n + 1)]
    out = ["# generated by chaos/gen %d --nodes %d --length %g"
           % (seed, n, total), "nodes %d" % n, "settle 3"]
    t = 0.0

    def some(k_max):
        k = rnd.randint(1, max(1, k_max))
        return ",".join(sorted(rnd.sample(nodes, k),
                               key=lambda x: int(x[1:])))

    def mild(at, dur):
        kind = rnd.choice(("loss", "delay", "dup"))
        who = "all" if rnd.random() < 0.4 else some(n // 2)
        if kind == "loss":
            arg = "%d%%" % rnd.choice((2, 5, 10, 20))
        elif kind == "dup":
            arg = "%d%%" % rnd.choice((5, 10, 25))
        else:
            d = rnd.choice((20, 50, 100, 200))
            arg = "%dms %dms" % (d, d // 2)
        return "at %g %s %s %s for %g" % (at, kind, who, arg, dur)

    while t < total:
        dur = float(rnd.randint(5, 15))
        kind = rnd.choice(DISRUPTIVE + ("mild",))
        if kind in ("crash", "pause"):
            out.append("at %g %s %s for %g" % (t, kind, some(n // 3), dur))
        elif kind in ("partition", "oneway"):
            order = nodes[:]
            rnd.shuffle(order)
            cut = rnd.randint(1, n - 1)
            a = ",".join(sorted(order[:cut], key=lambda x: int(x[1:])))
            b = ",".join(sorted(order[cut:], key=lambda x: int(x[1:])))
            sep = "|" if kind == "partition" else "->"
            out.append("at %g %s %s %s %s for %g" % (t, kind, a, sep, b, dur))
        else:
            out.append(mild(t, dur))
        if kind != "mild" and rnd.random() < 0.3:
            out.append(mild(t, dur))
        t += dur + rnd.randint(2, 8)
    return "\n".join(out) + "\n"


# ---- the engine --------------------------------------------------------------

class Sampler(threading.Thread):
    """Asks every agent for its view every `step` seconds, for the timeline
    and for the checker; a paused or crashed agent simply has no sample."""

    def __init__(self, lab, t0, step=0.5):
        super().__init__(daemon=True)
        self.lab, self.t0, self.step = lab, t0, step
        self.samples = []  # (t, agent, alive count, {name: state})
        self.halt = threading.Event()

    def run(self):
        nodes = self.lab.nodes()
        while not self.halt.is_set():
            t = time.time()
            for nd in nodes:
                v = view_of(nd["dir"], 0.3)
                if v is not None:
                    states = {k: m["state"] for k, m in v.items()}
                    self.samples.append((t - self.t0, nd["name"], sum(
                        1 for s in states.values() if s == "alive"), states))
            self.halt.wait(max(0.0, self.step - (time.time() - t)))

    def stop(self):
        self.halt.set()
        self.join(5)


def _resolved(ev, resolve):
    """ev with its `replica:tI[:K]` targets named (resolve(token) gives a
    node name); ev itself when it has none."""
    sym = [x for x in ev.get("targets", []) if x.startswith("replica:")]
    if not sym:
        return ev
    if resolve is None:
        raise LabError("'%s' names a tenant replica: only chaos/run with a "
                       "'tenants' line knows them" % ev["line"])
    out = dict(ev)
    out["targets"] = []
    for x in ev["targets"]:
        name = resolve(x) if x.startswith("replica:") else x
        if name not in out["targets"]:
            out["targets"].append(name)
    ev["resolved"] = out["targets"]
    return out


def condition(lab, w):
    """(True, "") when `when` condition w holds now, else (False, why)."""
    import check  # check imports this module
    if w["cond"] == "converged":
        return check.converged(lab)
    if w["cond"] == "alive":
        return check.alive_everywhere(lab, w["targets"])
    return check.dead_everywhere(lab, w["targets"])


def _cond_text(w):
    return " ".join([w["cond"]] + ([",".join(w["targets"])]
                                   if "targets" in w else []))


def execute(lab, sc, t0, log=print, seed=1, deadline=None, resolve=None):
    """Runs the events of sc with t=0 at wall time t0. Fills in each
    event's real times (wall clock) and returns the events:

      t_start, t_end  the fault (for a restart: SIGTERM sent, agent started
                      again; for a kill both are the kill)
      t_exited        restart: when the last target had left and exited
      t_armed, t_met  a `when`: since when it was watched, when it held
      status          "done", "timeout" (condition not met in time) or
                      "skipped" (it follows a statement that did not run)
      error           what went wrong, for the checker
      downs           [(node, from, to)]: the node was down (crash, kill,
                      restart) or paused; `to` is None for a kill

    A statement at `at T` begins at t0 + T; one at `at +D` D seconds after
    the statement above it is done. Undoes whatever is still active (and
    starts agents a restart had stopped) if interrupted. resolve(token)
    names the node of a `replica:tI[:K]` target when the fault starts."""
    evs = sc["events"]
    by_id = {ev["id"]: k for k, ev in enumerate(evs)}
    followers = {}
    for k, ev in enumerate(evs):
        if "after" in ev:
            followers.setdefault(by_id[ev["after"]], []).append(k)
    heap = []
    seq = itertools.count()

    def push(t, phase, k, what, *arg):
        heapq.heappush(heap, (t, phase, k, next(seq), what, arg))

    def now():
        return time.time() - t0

    active = {}      # k -> undo record of a running fault or restart
    for k, ev in enumerate(evs):
        if "after" not in ev:
            push(t0 + ev["at"], 0, k, "arm")

    def done(k):
        evs[k]["status"] = "done"
        for j in followers.get(k, []):
            push(time.time() + evs[j]["delay"], 0, j, "arm")

    def skip(k, why):
        for j in followers.get(k, []):
            evs[j]["status"] = "skipped"
            evs[j]["error"] = "not run: %s" % why
            log("t=%5.1f  skip   %s" % (now(), evs[j]["line"]))
            skip(j, "it follows '%s', which did not run" % evs[j]["line"])

    def begin(k):
        ev = evs[k]
        if ev["kind"] == "when":
            done(k)
            return
        with lab.state() as st:
            fid = st["next_fault"]
            st["next_fault"] += 1
            st["faults"].append({"fid": fid, "line": ev["line"]})
        real = _resolved(ev, resolve)
        rec = faults.apply(lab, real, fid, seed=seed + k)
        rec["ev"] = real
        ev["t_start"] = time.time()
        log("t=%5.1f  start  %s%s" % (
            now(), ev["line"], "  (= %s)" % ",".join(
                ev["resolved"]) if "resolved" in ev else ""))
        if ev["kind"] in ("crash", "pause", "kill", "restart"):
            ev["downs"] = [[x, ev["t_start"], None] for x in real["targets"]]
        if ev["kind"] == "kill":
            ev["t_end"] = ev["t_start"]
            _forget_fault(lab, rec)
            done(k)
            return
        active[k] = rec
        if ev["kind"] == "restart":
            push(time.time() + POLL_S / 5, 0, k, "exited",
                 time.time() + EXIT_MAX_S)
        elif "after" in ev or "when" in ev:
            push(ev["t_start"] + ev["dur"], 1, k, "end")
        else:
            push(t0 + ev["at"] + ev["dur"], 1, k, "end")

    def end(k):
        ev = evs[k]
        rec = active.pop(k)
        faults.undo(lab, rec["ev"], rec)
        ev["t_end"] = time.time()
        for d in ev.get("downs", []):
            d[2] = ev["t_end"]
        _forget_fault(lab, rec)
        log("t=%5.1f  end    %s" % (now(), ev["line"]))
        done(k)

    try:
        while heap:
            at, _, k, _, what, arg = heap[0]
            ev = evs[k]
            wait = at - time.time()
            if deadline is not None and time.time() + max(0, wait) > deadline:
                raise LabError("scenario would pass the run's deadline")
            if wait > 0:
                time.sleep(wait)
            heapq.heappop(heap)
            if what == "arm" and "when" in ev:
                ev["t_armed"] = time.time()
                log("t=%5.1f  watch  %s" % (now(), ev["line"]))
                push(time.time(), 0, k, "poll")
            elif what == "arm":
                begin(k)
            elif what == "poll":
                w = ev["when"]
                ok, why = condition(lab, w)
                if ok:
                    ev["t_met"] = time.time()
                    log("t=%5.1f  met    %s (after %.1f s)" % (
                        now(), _cond_text(w), ev["t_met"] - ev["t_armed"]))
                    begin(k)
                elif time.time() >= ev["t_armed"] + w["within"]:
                    ev["status"] = "timeout"
                    ev["error"] = "%s not met within %g s: %s" % (
                        _cond_text(w), w["within"], why)
                    log("t=%5.1f  TIMEOUT %s: %s" % (now(), ev["line"],
                                                     ev["error"]))
                    skip(k, "it follows '%s', whose condition was not met"
                         % ev["line"])
                else:
                    push(time.time() + POLL_S, 0, k, "poll")
            elif what == "exited":
                rec = active[k]
                left = faults.still_running(rec)
                if left and time.time() < arg[0]:
                    push(time.time() + POLL_S / 5, 0, k, "exited", arg[0])
                    continue
                if left:
                    ev["error"] = "%s did not exit within %g s of SIGTERM " \
                        "(killed)" % (",".join(left), EXIT_MAX_S)
                    faults.kill_now(lab, rec)
                ev["t_exited"] = time.time()
                log("t=%5.1f  exited %s (%.1f s after SIGTERM)" % (
                    now(), ",".join(rec["ev"]["targets"]),
                    ev["t_exited"] - ev["t_start"]))
                push(time.time() + ev["dur"], 1, k, "end")
            else:
                end(k)
    finally:
        for k, rec in active.items():
            try:
                faults.undo(lab, rec["ev"], rec)
            except LabError as e:
                log("undo failed: %s" % e)
            evs[k]["t_end"] = time.time()
            for d in evs[k].get("downs", []):
                d[2] = evs[k]["t_end"]
    return evs


def _forget_fault(lab, rec):
    with lab.state() as st:
        st["faults"] = [f for f in st["faults"] if f["fid"] != rec["fid"]]


def bound_s(n, period_ms):
    """The reconvergence target: 3 * log2(N) protocol periods."""
    return 3 * math.log2(n) * period_ms / 1000.0
