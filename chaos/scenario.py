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
cannot be in two crash/pause faults or two delay faults at once.
"""
import math
import random
import re
import threading
import time

import faults
from chaoslab import LabError, view_of

KINDS = ("crash", "pause", "partition", "oneway", "loss", "delay", "dup")
# Faults that take a node (or a link) away completely; the others only make
# the network worse. Loss-only phases, where the checker requires that no
# one is declared dead, are the stretches with no disruptive fault.
DISRUPTIVE = ("crash", "pause", "partition", "oneway")
MAX_LENGTH_S = 3600  # every scenario is bounded


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
          "tenants": None}
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
    for no, line in lines:
        toks = line.split()
        where = "%s:%d" % (name, no)
        if toks[0] in ("nodes", "settle", "tenants"):
            continue
        if toks[0] != "at" or len(toks) < 5 or toks[-2] != "for":
            raise LabError("%s: expected 'at T KIND ... for D': %s"
                           % (where, line))
        try:
            at, dur = float(toks[1]), float(toks[-1])
        except ValueError:
            raise LabError("%s: T and D are seconds: %s" % (where, line))
        kind, args = toks[2], toks[3:-2]
        if at < 0 or dur <= 0:
            raise LabError("%s: T must be >= 0 and D > 0" % where)
        ev = {"at": at, "dur": dur, "kind": kind, "line": line}
        if kind in ("crash", "pause"):
            ev["targets"] = _nodes(args, n, where, (sc["tenants"] or {})
                                   .get("tenants", 0))
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
        sc["events"].append(ev)
    sc["events"].sort(key=lambda e: e["at"])
    _check_overlaps(sc)
    if sc["events"] and length(sc) > MAX_LENGTH_S:
        raise LabError("%s: longer than %d s" % (name, MAX_LENGTH_S))
    return sc


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


def _check_overlaps(sc):
    """One node cannot be crashed and paused at once, or delayed twice: the
    undo of one would silently end the other."""
    for cls in (("crash", "pause"), ("delay",)):
        evs = [e for e in sc["events"] if e["kind"] in cls]
        for i, a in enumerate(evs):
            for b in evs[i + 1:]:
                if b["at"] < a["at"] + a["dur"] and a["at"] < b["at"] + b["dur"]:
                    both = set(a["targets"]) & set(b["targets"])
                    if both:
                        raise LabError("'%s' and '%s' overlap on %s" % (
                            a["line"], b["line"], " ".join(sorted(both))))


def length(sc):
    return max((e["at"] + e["dur"] for e in sc["events"]), default=0.0)


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


def execute(lab, sc, t0, log=print, seed=1, deadline=None, resolve=None):
    """Runs the events of sc with t=0 at wall time t0. Fills in each
    event's real start/end (wall clock) and returns the events. Undoes
    whatever is still active if interrupted. resolve(token) names the node
    of a `replica:tI[:K]` target when the fault starts."""
    actions = []
    for i, ev in enumerate(sc["events"]):
        actions.append((ev["at"], 0, i, "start"))
        actions.append((ev["at"] + ev["dur"], 1, i, "end"))
    actions.sort()
    active = {}
    fid = 0
    try:
        for at, _, i, what in actions:
            ev = sc["events"][i]
            wait = t0 + at - time.time()
            if deadline is not None and time.time() + max(0, wait) > deadline:
                raise LabError("scenario would pass the run's deadline")
            if wait > 0:
                time.sleep(wait)
            if what == "start":
                with lab.state() as st:
                    fid = st["next_fault"]
                    st["next_fault"] += 1
                    st["faults"].append({"fid": fid, "line": ev["line"]})
                real = _resolved(ev, resolve)
                rec = faults.apply(lab, real, fid, seed=seed + i)
                rec["ev"] = real
                ev["t_start"] = time.time()
                active[i] = rec
                log("t=%5.1f  start  %s%s" % (
                    time.time() - t0, ev["line"], "  (= %s)" % ",".join(
                        ev["resolved"]) if "resolved" in ev else ""))
            else:
                rec = active.pop(i)
                faults.undo(lab, rec["ev"], rec)
                ev["t_end"] = time.time()
                with lab.state() as st:
                    st["faults"] = [f for f in st["faults"]
                                    if f["fid"] != rec["fid"]]
                log("t=%5.1f  end    %s" % (time.time() - t0, ev["line"]))
    finally:
        for i, rec in active.items():
            try:
                faults.undo(lab, rec["ev"], rec)
            except LabError as e:
                log("undo failed: %s" % e)
            sc["events"][i]["t_end"] = time.time()
    return sc["events"]


def bound_s(n, period_ms):
    """The reconvergence target: 3 * log2(N) protocol periods."""
    return 3 * math.log2(n) * period_ms / 1000.0
