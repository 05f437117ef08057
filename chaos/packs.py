#!/usr/bin/env python3
"""chaos/packs.py: packs under faults in the namespace lab (docs/packs-lab.md).

  python3 chaos/packs.py [--agents 32] [--packs 40] [--kills 20]
                         [--out docs/packs-lab.json] [--phases failover,...]

Every agent runs `meshd --pack-hook scripts/pack-hook`; the hook of node nI
appends "<unix-ms> <action> <pack> <node>" to STATE/nI.hook.log
(MESH_HOOK_LOG, set by chaoslab.Lab.up(pack_hook=...)) and keeps its
pidfiles in STATE/nI.hook (MESH_HOOK_DIR). Three phases, each on a fresh
lab with the packs added through `meshctl pack add` at n1:

  failover   --kills times: pick a pack's owner (owners[0] in `meshctl pack
             ls --json` at another running agent; never the same node twice,
             so flap damping sees one death per node), kill -9 it, find in
             the hook logs the first `start P` by another node for each of
             its packs P: failover = that time - the kill. Then restart it,
             wait for the mesh to see all agents alive and for the hook
             logs to be quiet, and go on.
  partition  split the agents in two halves (nftables, as `chaos/lab fault
             partition`) for --split-s, heal, and measure heal -> views
             merged (every agent sees every agent alive) -> last duplicate
             stopped (the hook log's `stop` that leaves each pack on one
             node).
  flap       pause one agent (SIGSTOP until someone declares it dead, then
             SIGCONT) --flaps times within a minute, or kill -9 and restart
             it (--flap-mode kill), and count the moves of its packs.

"On" means, per (pack, node): from the node's `start` to its `stop` in the
hook log. Three views of duplicates are kept, because kill -9 of meshd
leaves the pack process the hook started running (it is detached):
  live      a killed agent's packs are off at the kill (what the living
            agents run);
  restart   a killed agent's packs stay on until it is restarted (the view
            the issue asked for);
  procs     the processes themselves: every pidfile in every MESH_HOOK_DIR
            sampled every 0.2 s, a pack on where its process is alive.

Everything is bounded: each wait has a timeout and the whole run a
--deadline (default 840 s). The lab (prefix --prefix, default pmpk) is taken
down at the end of every phase and on any error or signal.
"""
import argparse
import calendar
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import chaoslab  # noqa: E402
import check  # noqa: E402
import faults  # noqa: E402
import scenario  # noqa: E402
from chaoslab import Lab, LabError  # noqa: E402

HOOK = os.path.join(REPO, "scripts", "pack-hook")
PERIOD_MS = chaoslab.PERIOD_MS  # SWIM probe period, swim_config.c
SWIM_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z \w+\s+"
                     r"swim: (\S+) (\w+)->(\w+) inc=(\d+)")
MOVE_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z \w+\s+"
                     r"pack: (\S+) moves (\S+) -> (\S+) \((\w+)\)")


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted("stopped by signal %d" % signum)


def log(s):
    print("%s %s" % (time.strftime("%H:%M:%S"), s), flush=True)


def now_ms():
    return int(time.time() * 1000)


class Deadline:
    def __init__(self, seconds):
        self.end = time.time() + seconds

    def left(self):
        return self.end - time.time()

    def check(self, what):
        if self.left() <= 0:
            raise LabError("deadline reached during %s" % what)


# ---- reading logs incrementally ---------------------------------------------

class Tail:
    """New complete lines of a set of files, by offset."""

    def __init__(self):
        self.off = {}
        self.part = {}

    def read(self, path):
        out = []
        try:
            with open(path, "rb") as f:
                f.seek(self.off.get(path, 0))
                data = f.read()
        except OSError:
            return out
        self.off[path] = self.off.get(path, 0) + len(data)
        data = self.part.pop(path, b"") + data
        lines = data.split(b"\n")
        if lines[-1]:
            self.part[path] = lines[-1]
        for ln in lines[:-1]:
            out.append(ln.decode(errors="replace"))
        return out


class HookLog:
    """Every hook action of every node: (ms, action, pack, node), sorted."""

    def __init__(self, lab):
        self.lab = lab
        self.tail = Tail()
        self.ev = []

    def refresh(self):
        new = []
        for nd in self.lab.nodes():
            for ln in self.tail.read(self.lab.hook_log(nd)):
                f = ln.split()
                if len(f) == 4 and f[0].isdigit():
                    new.append((int(f[0]), f[1], f[2], f[3]))
        if new:
            self.ev.extend(new)
            self.ev.sort()
        return new

    def moves(self, since_ms=0):
        return [e for e in self.ev if e[1] in ("start", "stop")
                and e[0] >= since_ms]


class AgentLog:
    """swim state changes and pack moves from every agent's log."""

    def __init__(self, lab):
        self.lab = lab
        self.tail = Tail()
        self.swim = []   # (ms, observer, member, from, to, inc)
        self.moves = []  # (ms, observer, pack, from, to, reason)

    @staticmethod
    def _ms(stamp, milli):
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) \
            * 1000 + int(milli)

    def refresh(self):
        for nd in self.lab.nodes():
            for ln in self.tail.read(nd["log"]):
                m = SWIM_RE.match(ln)
                if m:
                    self.swim.append((self._ms(m.group(1), m.group(2)),
                                      nd["name"], m.group(3), m.group(4),
                                      m.group(5), int(m.group(6))))
                    continue
                m = MOVE_RE.match(ln)
                if m:
                    self.moves.append((self._ms(m.group(1), m.group(2)),
                                       nd["name"], m.group(3), m.group(4),
                                       m.group(5), m.group(6)))
        self.swim.sort()
        self.moves.sort()

    def first(self, member, to, since_ms, observers=None):
        for e in self.swim:
            if e[0] >= since_ms and e[2] == member and e[4] == to and (
                    observers is None or e[1] in observers):
                return e
        return None

    def observers_of(self, member, to, since_ms, until_ms=None):
        """{observer: first ms it logged member ->to in the window}."""
        out = {}
        for e in self.swim:
            if e[0] >= since_ms and (until_ms is None or e[0] < until_ms) \
                    and e[2] == member and e[4] == to and e[1] not in out:
                out[e[1]] = e[0]
        return out


class ProcSampler(threading.Thread):
    """Samples every node's MESH_HOOK_DIR pidfiles: which pack processes
    are alive where. Transitions: (ms, pack, node, on)."""

    def __init__(self, lab, step=0.2):
        super().__init__(daemon=True)
        self.lab = lab
        self.step = step
        self.halt = threading.Event()
        self.state = {}
        self.trans = []

    def sample(self):
        t = now_ms()
        seen = set()
        for nd in self.lab.nodes():
            d = os.path.join(self.lab.dir, nd["name"] + ".hook")
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for fn in names:
                if not fn.endswith(".pid"):
                    continue
                try:
                    with open(os.path.join(d, fn)) as f:
                        pid, start = f.read().split()[:2]
                    alive = chaoslab.proc_is(int(pid), int(start))
                except (OSError, ValueError):
                    continue
                if alive:
                    seen.add((fn[:-4], nd["name"]))
        for key in seen - set(k for k, v in self.state.items() if v):
            self.trans.append((t, key[0], key[1], True))
            self.state[key] = True
        for key in [k for k, v in self.state.items() if v and k not in seen]:
            self.trans.append((t, key[0], key[1], False))
            self.state[key] = False

    def run(self):
        # Bounded by halt, which every phase sets in its finally.
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.step)

    def stop(self):
        self.halt.set()
        if self.is_alive():
            self.join(5)


# ---- intervals ----------------------------------------------------------------

def intervals(hook_ev, kills, restarts, mode, t_end):
    """{pack: [(node, t0, t1)]} of "on" from start..stop per node. kills and
    restarts: [(ms, node)]. mode "live" ends a node's intervals at its kill,
    "restart" at its next restart (the first start after it opens anew). A
    check opens one too: a restarted agent adopts what its hook left running
    and checks it instead of starting it again."""
    marks = [(t, 0, "kill", n, None) for t, n in kills] if mode == "live" \
        else [(t, 0, "restart", n, None) for t, n in restarts]
    evs = sorted([(t, 1, a, n, p) for t, a, p, n in hook_ev
                  if a in ("start", "stop", "check")] + marks)
    open_ = {}
    out = {}
    for t, _, a, n, p in evs:
        if a in ("start", "check"):
            open_.setdefault((p, n), t)
        elif a == "stop":
            if (p, n) in open_:
                out.setdefault(p, []).append((n, open_.pop((p, n)), t))
        else:  # a kill or restart closes every interval of node n
            for key in [k for k in open_ if k[1] == n]:
                out.setdefault(key[0], []).append((n, open_.pop(key), t))
    for (p, n), t0 in open_.items():
        out.setdefault(p, []).append((n, t0, t_end))
    return out


def proc_intervals(trans, t_end):
    out = {}
    open_ = {}
    for t, p, n, on in trans:
        if on:
            open_.setdefault((p, n), t)
        elif (p, n) in open_:
            out.setdefault(p, []).append((n, open_.pop((p, n)), t))
    for (p, n), t0 in open_.items():
        out.setdefault(p, []).append((n, t0, t_end))
    return out


def overlaps(ivs):
    """Segments (t0, t1, nodes) where >= 2 intervals of one pack are on."""
    pts = []
    for n, a, b in ivs:
        if b > a:
            pts.append((a, 1, n))
            pts.append((b, -1, n))
    pts.sort(key=lambda x: (x[0], x[1]))
    on = {}
    segs = []
    last = None
    for t, d, n in pts:
        if last is not None and t > last and sum(on.values()) >= 2:
            segs.append((last, t, sorted(k for k, v in on.items() if v)))
        on[n] = on.get(n, 0) + d
        last = t
    return segs


def dup_in(segs, a, b):
    """Milliseconds of segs inside [a, b)."""
    return sum(max(0, min(t1, b) - max(t0, a)) for t0, t1, _ in segs)


def count_at(ivs_by_pack, t):
    """{pack: number of nodes on at ms t}."""
    return {p: sum(1 for _, a, b in ivs if a <= t < b)
            for p, ivs in ivs_by_pack.items()}


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 100)) - 1))
    return v[k]


def summary(values):
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": statistics.median(values),
            "p99": pct(values, 99), "max": max(values),
            "min": min(values), "mean": round(statistics.mean(values), 1)}


# ---- the lab and meshctl -----------------------------------------------------

def meshctl(lab, node, args, timeout=15):
    nd = lab.node(node)
    p = subprocess.run([os.path.join(lab.load()["bin"], "meshctl"),
                        "--data-dir", nd["dir"]] + args,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def meshctl_json(lab, node, args, timeout=15):
    rc, out, err = meshctl(lab, node, args, timeout)
    if rc != 0:
        raise LabError("meshctl %s at %s: %s" % (" ".join(args), node,
                                                 (err or out).strip()))
    return json.loads(out)


def running_agents(lab):
    return [nd["name"] for nd in lab.nodes() if lab.agent_running(nd)]


def bring_up(lab, n, npacks, extra, hl, dl):
    """A fresh lab with the hook, npacks packs added at n1; waits until
    every pack has a start in the hook log and the mesh is quiet."""
    lab.down(log=lambda *_: None)
    t0 = time.time()
    lab.up(n, extra_args=extra, log=lambda *_: None, pack_hook=HOOK)
    lab.wait_sockets()
    conv, why = check.wait_converged(lab, t0, 60)
    if conv is None:
        raise LabError("lab not converged: %s" % why)
    log("lab %s: %d agents up and converged in %.2f s" % (lab.prefix, n,
                                                         conv))
    names = ["pk%02d" % i for i in range(1, npacks + 1)]
    t_add = time.time()
    for p in names:
        for attempt in range(5):
            rc, out, err = meshctl(lab, "n1", ["pack", "add", p,
                                               "--replicas", "1"])
            if rc == 0:
                break
            time.sleep(0.5)
        else:
            raise LabError("pack add %s: %s" % (p, (err or out).strip()))
    log("%d packs added at n1 in %.2f s" % (npacks, time.time() - t_add))
    end = time.time() + 60
    while time.time() < end:
        dl.check("bring-up")
        hl.refresh()
        started = {e[2] for e in hl.ev if e[1] == "start"}
        if started >= set(names):
            break
        time.sleep(0.2)
    else:
        raise LabError("not every pack started within 60 s: missing %s"
                       % sorted(set(names) - started))
    q = wait_stable(lab, hl, dl, quiet=3.0, timeout=40)
    log("all %d packs started %.2f s after the first add; stable after "
        "%.2f s more" % (npacks, max(e[0] for e in hl.ev if
                                     e[1] == "start") / 1000.0 - t_add, q))
    # What `status --json` says: desired and running at every agent.
    t_s = time.time()
    counts = {}
    while time.time() - t_s < 30:
        dl.check("bring-up status")
        counts = status_counts(lab)
        if all(c == (npacks, npacks) for c in counts.values()):
            break
        time.sleep(0.5)
    lab.bring_up_status = {
        "all_report_running_s": (time.time() - t_s if all(
            c == (npacks, npacks) for c in counts.values()) else None),
        "desired_running": counts}
    log("status --json (desired, running) at every agent %s: %s" % (
        "agrees after %.1f s" % lab.bring_up_status["all_report_running_s"]
        if lab.bring_up_status["all_report_running_s"] is not None else
        "does NOT agree within 30 s", sorted(set(counts.values()))))
    return names


def status_counts(lab):
    """{agent: (desired, running)} from every running agent's status."""
    out = {}
    for a in running_agents(lab):
        try:
            p = json.loads(chaoslab.ask(lab.node(a)["dir"], "status --json",
                                        2.0))["packs"]
            out[a] = (p["desired"], p["running"])
        except (OSError, ValueError, KeyError):
            out[a] = None
    return out


def wait_stable(lab, hl, dl, quiet=3.0, timeout=40.0):
    """Until every running agent sees every running agent alive and the hook
    logs have had no start/stop for `quiet` s. Returns seconds waited;
    raises LabError on timeout."""
    t0 = time.time()
    end = t0 + timeout
    while time.time() < end:
        dl.check("waiting for a stable mesh")
        hl.refresh()
        last = max((e[0] for e in hl.moves()), default=0) / 1000.0
        if time.time() - last >= quiet:
            ok, why = check.converged(lab)
            if ok:
                return time.time() - t0
        time.sleep(0.25)
    raise LabError("mesh not stable within %g s" % timeout)


def kill_agent(lab, name):
    nd = lab.node(name)
    t = time.time()
    if not chaoslab.signal_pid(nd["pid"], nd["start"], signal.SIGKILL):
        raise LabError("%s is not running" % name)
    for _ in range(200):
        chaoslab.reap(nd["pid"])
        if not chaoslab.proc_is(nd["pid"], nd["start"]):
            break
        time.sleep(0.01)
    return t


def owners_now(lab, querier):
    j = meshctl_json(lab, querier, ["pack", "ls", "--json"])
    return {p["name"]: (p["owners"][0] if p["owners"] else None)
            for p in j["packs"]}


# ---- phase 1: failover ---------------------------------------------------------

def phase_failover(lab, args, dl, rng):
    hl = HookLog(lab)
    al = AgentLog(lab)
    ps = ProcSampler(lab)
    names = bring_up(lab, args.agents, args.packs, args.meshd_arg, hl, dl)
    ps.start()
    res = {"kills": [], "notes": [], "bring_up": lab.bring_up_status}
    killed = {}
    kills, restarts = [], []
    try:
        for k in range(args.kills):
            if dl.left() < 60 + args.reserve_s:
                res["notes"].append("stopped after %d kills: deadline" % k)
                break
            wait_stable(lab, hl, dl, quiet=3.0, timeout=40)
            if res["kills"]:
                prev = res["kills"][-1]
                prev["victim_status_after"] = meshctl_json(
                    lab, prev["victim"], ["status", "--json"])["packs"]
            # Ask an agent that was never killed: a restarted one may not
            # know the packs (see docs/packs-lab.md).
            run = running_agents(lab)
            querier = rng.choice([a for a in run if a not in killed] or run)
            own = owners_now(lab, querier)
            # Only nodes never killed: a second death within the flap
            # half-life would damp the node.
            cand = sorted({o for o in own.values() if o and o != querier
                           and o not in killed})
            if not cand:
                res["notes"].append("no unkilled owner left after %d kills"
                                    % k)
                break
            victim = rng.choice(cand)
            vpacks = sorted(p for p, o in own.items() if o == victim)
            hl.refresh()
            on_before = {p for p in vpacks if any(
                e[2] == p and e[3] == victim and e[1] == "start"
                for e in hl.ev)}
            t_kill = kill_agent(lab, victim)
            tk = int(t_kill * 1000)
            killed[victim] = t_kill
            kills.append((tk, victim))
            got = {}
            end = time.time() + 15
            while time.time() < end and len(got) < len(vpacks):
                hl.refresh()
                for t, a, p, n in hl.ev:
                    if a == "start" and t >= tk and n != victim and \
                            p in vpacks and p not in got:
                        got[p] = (t, n)
                time.sleep(0.05)
            # Where the survivors placed a pack nobody started.
            lost = {}
            for p in sorted(set(vpacks) - set(got)):
                try:
                    j = meshctl_json(lab, querier, ["pack", "show", p,
                                                    "--json"])
                    lost[p] = j["pack"]["owners"]
                except (LabError, ValueError, KeyError):
                    lost[p] = None
            # Let the moves settle before the restart.
            time.sleep(1.0)
            hl.refresh()
            t_restart = time.time()
            lab.start_agent(victim)
            restarts.append((int(t_restart * 1000), victim))
            conv, why = check.wait_converged(lab, t_restart, 30, step=0.1)
            al.refresh()
            sus = al.first(victim, "suspect", tk)
            dead = al.first(victim, "dead", tk)
            dead_all = al.observers_of(victim, "dead", tk,
                                       int(t_restart * 1000))
            rec = {"i": k + 1, "victim": victim, "querier": querier,
                   "t_kill_ms": tk, "packs": vpacks,
                   "started_before": sorted(on_before),
                   "failover_ms": {p: got[p][0] - tk for p in got},
                   "new_owner": {p: got[p][1] for p in got},
                   "missing": sorted(set(vpacks) - set(got)),
                   "missing_owners": lost,
                   "restarted_before": sorted(n for n in killed
                                              if n != victim),
                   "first_suspect_ms": sus[0] - tk if sus else None,
                   "first_dead_ms": dead[0] - tk if dead else None,
                   "dead_seen_by": len(dead_all),
                   "last_dead_ms": (max(dead_all.values()) - tk
                                    if dead_all else None),
                   "t_restart_ms": int(t_restart * 1000),
                   "rejoin_s": conv}
            res["kills"].append(rec)
            log("kill %2d: %s (%d packs) failover %s ms; dead first %s ms, "
                "%d agents by %s ms; rejoined in %s s" % (
                    k + 1, victim, len(vpacks),
                    ",".join(str(v) for v in rec["failover_ms"].values())
                    or "-", rec["first_dead_ms"], rec["dead_seen_by"],
                    rec["last_dead_ms"],
                    "%.2f" % conv if conv is not None else "NOT"))
            if rec["missing"]:
                log("   no failover start for %s" % rec["missing"])
        t_settle = time.time()
        try:
            wait_stable(lab, hl, dl, quiet=3.0, timeout=40)
        except LabError as e:
            res["notes"].append("after the last kill: %s" % e)
        res["settle_after_last_s"] = time.time() - t_settle
        if res["kills"]:
            prev = res["kills"][-1]
            prev["victim_status_after"] = meshctl_json(
                lab, prev["victim"], ["status", "--json"])["packs"]
        # What the mesh says after all the kills and restarts.
        q = [a for a in running_agents(lab) if a not in killed][0]
        res["final_querier"] = q
        res["final_status"] = {n: meshctl_json(lab, n, ["status", "--json"])
                               ["packs"] for n in running_agents(lab)}
        res["final_owners"] = owners_now(lab, q)
        res["final_ls"] = meshctl_json(lab, q, ["pack", "ls", "--json"])
    finally:
        ps.stop()
    hl.refresh()
    al.refresh()
    t_end = now_ms()
    res["hook_events"] = hl.moves()
    res["restarts"] = restarts
    # Duplicates, per failover: window [t_kill, next kill).
    views = {
        "live": intervals(hl.ev, kills, restarts, "live", t_end),
        "restart": intervals(hl.ev, kills, restarts, "restart", t_end),
        "procs": proc_intervals(ps.trans, t_end),
    }
    segs = {v: {p: overlaps(iv) for p, iv in ivs.items()}
            for v, ivs in views.items()}
    for i, rec in enumerate(res["kills"]):
        a = rec["t_kill_ms"]
        b = res["kills"][i + 1]["t_kill_ms"] if i + 1 < len(res["kills"]) \
            else t_end
        rec["dup_ms"] = {}
        for v in views:
            per = {p: dup_in(s, a, b) for p, s in segs[v].items()
                   if dup_in(s, a, b) > 0}
            rec["dup_ms"][v] = per
        # The restarted agent and the packs that moved back to it.
        back = [e for e in hl.ev if e[0] >= rec["t_restart_ms"] and e[0] < b
                and e[2] in rec["packs"]]
        rec["after_restart"] = [list(e) for e in back if e[1] != "check"]
        rec["victim_restarted_starts"] = sorted(
            {e[2] for e in back if e[1] in ("start", "check") and e[3] ==
             rec["victim"]})
    # Packs still running as processes of a node that no longer owns them.
    owners = res.get("final_owners", {})
    orphans = []
    for p, ivs in views["procs"].items():
        for n, a, b in ivs:
            if b >= t_end - 1 and owners.get(p) != n:
                orphans.append((p, n))
    res["orphan_processes_at_end"] = sorted(orphans)
    dark = sorted(p for p in names if not any(
        n == owners.get(p) and b >= t_end - 1
        for n, a, b in views["live"].get(p, [])))
    res["packs_not_run_by_owner_at_end"] = dark
    per_pack = [v for r in res["kills"] for v in r["failover_ms"].values()]
    per_kill = [max(r["failover_ms"].values()) for r in res["kills"]
                if r["failover_ms"]]
    res["summary"] = {
        "failover_per_pack_ms": summary(per_pack),
        "failover_per_kill_max_ms": summary(per_kill),
        "first_dead_ms": summary([r["first_dead_ms"] for r in res["kills"]
                                  if r["first_dead_ms"] is not None]),
        "dead_to_start_ms": summary([
            v - r["first_dead_ms"] for r in res["kills"]
            if r["first_dead_ms"] is not None
            for v in r["failover_ms"].values()]),
        "missing_failovers": sum(len(r["missing"]) for r in res["kills"]),
    }
    for v in views:
        per_fail = [max(r["dup_ms"][v].values()) if r["dup_ms"][v] else 0
                    for r in res["kills"]]
        per_pk = [ms for r in res["kills"] for ms in r["dup_ms"][v].values()]
        res["summary"]["dup_%s_per_kill_max_ms" % v] = summary(per_fail)
        res["summary"]["dup_%s_per_pack_ms" % v] = summary(per_pk)
        res["summary"]["dup_%s_kills_with_any" % v] = sum(
            1 for x in per_fail if x > 0)
    res["summary"]["restarted_victim_started_its_packs"] = sum(
        1 for r in res["kills"] if r["victim_restarted_starts"])
    res["summary"]["move_to_hook_ms"] = summary(move_to_hook(al, hl))
    return res


def move_to_hook(al, hl, since_ms=0, until_ms=None):
    """Milliseconds from a node's `pack: P moves A -> B` log line to its
    hook's `start P` (B) or `stop P` (A): how long the hook run waited."""
    out = []
    for t, obs, p, a, b, _ in al.moves:
        if t < since_ms or (until_ms is not None and t >= until_ms):
            continue
        act = "start" if b == obs else "stop" if a == obs else None
        if act is None:
            continue
        nxt = [e[0] for e in hl.ev if e[2] == p and e[3] == obs and
               e[1] == act and t - 5 <= e[0] < t + 60000]
        if nxt:
            out.append(nxt[0] - t)
    return out


# ---- phase 2: partition and heal --------------------------------------------------

def phase_partition(lab, args, dl):
    hl = HookLog(lab)
    al = AgentLog(lab)
    names = bring_up(lab, args.agents, args.packs, args.meshd_arg, hl, dl)
    n = args.agents
    half = n // 2
    line = "partition n1..n%d | n%d..n%d" % (half, half + 1, n)
    sc = scenario.parse("nodes %d\nat 0 %s for %g\n" % (n, line,
                                                        args.split_s),
                        "packs-partition")
    ev = sc["events"][0]
    own0 = owners_now(lab, "n1")
    with lab.state() as st:
        fid = st["next_fault"]
        st["next_fault"] += 1
        st["faults"].append({"fid": fid, "line": ev["line"]})
    rec = faults.apply(lab, ev, fid)
    t_split = time.time()
    log("split: %s" % line)
    res = {"line": line, "split_s": args.split_s,
           "bring_up": lab.bring_up_status,
           "t_split_ms": int(t_split * 1000), "owners_before": own0}
    try:
        # Sample once near the end: does each side see the other dead?
        time.sleep(max(0, args.split_s - 1.5))
        views = lab.views(timeout=0.5)
        res["alive_seen_before_heal"] = {
            a: sum(1 for m in v.values() if m["state"] == "alive")
            if v else None for a, v in views.items()}
        time.sleep(max(0, t_split + args.split_s - time.time()))
    finally:
        faults.undo(lab, ev, rec)
        t_heal = time.time()
        with lab.state() as st:
            st["faults"] = [f for f in st["faults"] if f["fid"] != fid]
    th = int(t_heal * 1000)
    log("healed after %.1f s" % (t_heal - t_split))
    conv, why = check.wait_converged(lab, t_heal, 60, step=0.05)
    t_merged = t_heal + conv if conv is not None else None
    log("views merged %s after the heal" % ("%.2f s" % conv if conv is not
                                             None else "NOT (%s)" % why))
    # Until every pack is on exactly one node again (live view) and quiet.
    end = time.time() + 60
    t_exact = None
    while time.time() < end:
        dl.check("partition heal")
        hl.refresh()
        ivs = intervals(hl.ev, [], [], "live", now_ms())
        c = count_at(ivs, now_ms() - 1)
        if all(c.get(p, 0) == 1 for p in names):
            t_exact = time.time()
            break
        time.sleep(0.1)
    try:
        wait_stable(lab, hl, dl, quiet=3.0, timeout=30)
    except LabError as e:
        res["note"] = str(e)
    hl.refresh()
    al.refresh()
    t_end = now_ms()
    ivs = intervals(hl.ev, [], [], "live", t_end)
    segs = {p: overlaps(iv) for p, iv in ivs.items()}
    dup_end = {}
    for p, ss in segs.items():
        after = [s for s in ss if s[1] > th]
        if after:
            dup_end[p] = max(s[1] for s in after)
    started_in_split = sorted({e[2] for e in hl.ev if e[1] == "start"
                               and int(t_split * 1000) <= e[0] < th})
    side = {("n%d" % i): (0 if i <= half else 1) for i in range(1, n + 1)}
    res.update({
        "t_heal_ms": th,
        "heal_to_merged_s": conv,
        "packs_duplicated": sum(1 for s in segs.values() if s),
        "packs_started_during_split": len(started_in_split),
        "dup_stop_after_heal_ms": {p: t - th for p, t in dup_end.items()},
        "last_dup_stop_after_heal_ms": (max(dup_end.values()) - th
                                        if dup_end else None),
        "last_dup_stop_after_merged_ms": (
            max(dup_end.values()) - int(t_merged * 1000)
            if dup_end and t_merged else None),
        "exactly_one_after_heal_s": (t_exact - t_heal) if t_exact else None,
        "move_to_hook_ms_before_split": summary(move_to_hook(
            al, hl, 0, int(t_split * 1000))),
        "move_to_hook_ms_after_heal": summary(move_to_hook(al, hl, th)),
        "moves_logged_after_heal": len([m for m in al.moves
                                        if m[0] >= th]),
        "last_move_logged_after_heal_ms": max(
            [m[0] - th for m in al.moves if m[0] >= th], default=None),
        "two_periods_ms": 2 * PERIOD_MS,
        "hook_events": hl.moves(int(t_split * 1000) - 1000),
        "owners_after": owners_now(lab, "n1"),
    })
    # When did each side declare the other side dead (first/last agent)?
    deaths = [e for e in al.swim if e[4] == "dead" and
              int(t_split * 1000) <= e[0] < th and
              side.get(e[1]) != side.get(e[2])]
    res["split_first_dead_ms"] = (min(e[0] for e in deaths) -
                                  int(t_split * 1000)) if deaths else None
    pairs = {}
    for e in deaths:
        pairs.setdefault((e[1], e[2]), e[0])
    res["split_dead_pairs"] = len(pairs)
    res["split_all_dead_ms"] = (max(pairs.values()) - int(t_split * 1000)
                                if len(pairs) == 2 * half * (n - half)
                                else None)
    res["owners_changed_by_split"] = sorted(
        p for p in own0 if own0[p] != res["owners_after"].get(p))
    log("partition: %d packs started during the split; heal->merged %s s; "
        "last duplicate stop %s ms after heal, %s ms after merge" % (
            res["packs_started_during_split"], res["heal_to_merged_s"],
            res["last_dup_stop_after_heal_ms"],
            res["last_dup_stop_after_merged_ms"]))
    return res


# ---- phase 3: flap damping ----------------------------------------------------------

def phase_flap(lab, args, dl):
    hl = HookLog(lab)
    al = AgentLog(lab)
    ps = ProcSampler(lab)
    names = bring_up(lab, args.agents, args.packs, args.meshd_arg, hl, dl)
    ps.start()
    own = owners_now(lab, "n1")
    count = {}
    for p, o in own.items():
        if o not in ("n1", "n2", None):
            count[o] = count.get(o, 0) + 1
    x = max(sorted(count), key=lambda k: count[k])
    xpacks = sorted(p for p, o in own.items() if o == x)
    log("flapping %s (%s), owner of %s" % (x, args.flap_mode,
                                           ",".join(xpacks)))
    res = {"node": x, "mode": args.flap_mode, "packs": xpacks, "flaps": [],
           "bring_up": lab.bring_up_status}
    try:
        t_first = time.time()
        for i in range(args.flaps):
            dl.check("flapping")
            nd = lab.node(x)
            t_down = time.time()
            td = int(t_down * 1000)
            if args.flap_mode == "kill":
                kill_agent(lab, x)
            else:
                chaoslab.signal_pid(nd["pid"], nd["start"], signal.SIGSTOP)
            # Down until some agent declares it dead (bounded).
            end = time.time() + 12
            dead = None
            while time.time() < end and dead is None:
                al.refresh()
                dead = al.first(x, "dead", td)
                time.sleep(0.05)
            time.sleep(0.5)
            t_up = time.time()
            if args.flap_mode == "kill":
                lab.start_agent(x)
            else:
                chaoslab.signal_pid(nd["pid"], nd["start"], signal.SIGCONT)
            conv, why = check.wait_converged(lab, t_up, 10, step=0.1)
            time.sleep(args.flap_gap_s)
            scores = {}
            for a in ("n1", "n2"):
                try:
                    v = chaoslab.view_of(lab.node(a)["dir"], 1.0) or {}
                    m = v.get(x, {})
                    scores[a] = (m.get("flap_score"), m.get("damped"))
                except LabError:
                    pass
            rec = {"i": i + 1, "t_down_ms": td, "t_up_ms": int(t_up * 1000),
                   "dead_after_ms": dead[0] - td if dead else None,
                   "alive_again_s": conv, "score_damped": scores}
            res["flaps"].append(rec)
            log("flap %d: down %.1f s (dead after %s ms), all see it alive "
                "%s s after; flap score/damped at n1,n2: %s" % (
                    i + 1, t_up - t_down, rec["dead_after_ms"],
                    "%.2f" % conv if conv is not None else "NOT", scores))
        res["flaps_within_s"] = res["flaps"][-1]["t_up_ms"] / 1000.0 - t_first
        # Watch until no pack of x runs twice (its readmission) or the
        # time is up.
        t_obs = time.time()
        until = t_obs + max(0, min(args.flap_observe_s, dl.left() - 30))
        res["dup_over_s"] = None
        while time.time() < until:
            time.sleep(0.5)
            st = dict(ps.state)
            twice = [p for p in xpacks if sum(
                1 for (pp, n), on in st.items() if pp == p and on) >= 2]
            if not twice:
                res["dup_over_s"] = time.time() - t_obs
                break
        res["observed_after_last_s"] = time.time() - t_obs
    finally:
        ps.stop()
    hl.refresh()
    al.refresh()
    t_end = now_ms()
    fl = res["flaps"]
    ev = [e for e in hl.moves(fl[0]["t_down_ms"]) if e[2] in xpacks]
    res["hook_events"] = [list(e) for e in ev]
    # Starts/stops of its packs between each departure and the next.
    for j, r in enumerate(fl):
        b = fl[j + 1]["t_down_ms"] if j + 1 < len(fl) else t_end
        r["hook_moves"] = [list(e) for e in ev if r["t_down_ms"] <= e[0] < b]
    t2 = fl[1]["t_up_ms"] if len(fl) > 1 else None
    res["hook_moves_after_2nd_return"] = [list(e) for e in ev
                                          if t2 and e[0] >= t2]
    res["agent_moves_after_2nd_return"] = [
        list(m) for m in al.moves if t2 and m[0] >= t2 and m[2] in xpacks]
    # meshctl pack history at every agent, for the packs of x.
    hist = []
    for a in running_agents(lab):
        for p in xpacks:
            try:
                j = meshctl_json(lab, a, ["pack", "history", p, "--json"])
            except (LabError, ValueError):
                continue
            for m in j.get("moves", []):
                if m["unix_ms"] >= fl[0]["t_down_ms"]:
                    hist.append((m["unix_ms"], a, p, m["from"], m["to"],
                                 m["reason"]))
    res["history_moves"] = sorted(hist)
    res["history_moves_after_2nd_return"] = [h for h in sorted(hist)
                                             if t2 and h[0] >= t2]
    ivs = intervals(hl.ev, [], [], "live", t_end)
    res["dup_ms_live"] = {p: dup_in(overlaps(ivs.get(p, [])),
                                    fl[0]["t_down_ms"], t_end)
                          for p in xpacks}
    pivs = proc_intervals(ps.trans, t_end)
    res["dup_ms_procs"] = {p: dup_in(overlaps(pivs.get(p, [])),
                                     fl[0]["t_down_ms"], t_end)
                           for p in xpacks}
    res["still_duplicated_at_end"] = sorted(
        p for p in xpacks if sum(1 for _, a, b in pivs.get(p, [])
                                 if b >= t_end - 1) >= 2)
    views = {}
    for a in (x, "n1"):
        v = chaoslab.view_of(lab.node(a)["dir"], 1.0) or {}
        views[a] = {k: (m.get("flap_score"), m.get("damped"))
                    for k, m in v.items() if k == x}
    res["end_scores"] = views
    res["move_to_hook_ms"] = summary(move_to_hook(al, hl))
    res["owners_at_end"] = {a: {p: o for p, o in owners_now(lab, a).items()
                                if p in xpacks} for a in (x, "n1")}
    log("flap: %d hook moves of %s's packs after its 2nd return; %d "
        "history moves; duplicated at end: %s" % (
            len(res["hook_moves_after_2nd_return"]), x,
            len(res["history_moves_after_2nd_return"]),
            res["still_duplicated_at_end"]))
    return res


def main():
    ap = argparse.ArgumentParser(description="packs in the chaos lab")
    ap.add_argument("--agents", type=int, default=32)
    ap.add_argument("--packs", type=int, default=40)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--split-s", type=float, default=15.0)
    ap.add_argument("--flaps", type=int, default=5)
    ap.add_argument("--flap-mode", choices=("pause", "kill"),
                    default="pause")
    ap.add_argument("--flap-gap-s", type=float, default=2.0,
                    help="up this long after all see it alive again")
    ap.add_argument("--flap-observe-s", type=float, default=150.0,
                    help="after the last flap, watch at most this long "
                    "for its packs to run once again")
    ap.add_argument("--phases", default="failover,partition,flap")
    ap.add_argument("--prefix", default="pmpk")
    ap.add_argument("--bin", default=None)
    ap.add_argument("--meshd-arg", action="append", default=[])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--deadline", type=float, default=840)
    ap.add_argument("--out", default=None, help="results as JSON")
    ap.add_argument("--logs", default=None,
                    help="keep every agent's log and hook log here")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    dl = Deadline(args.deadline)
    # Seconds the failover phase leaves for the phases after it.
    later = args.phases.split(",")
    args.reserve_s = 170 * len([p for p in later[later.index("failover") + 1:]]
                               if "failover" in later else [])
    rng = random.Random(args.seed)
    lab = Lab(args.prefix, bin_dir=args.bin)
    out = {"args": vars(args), "period_ms": PERIOD_MS,
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    t0 = time.time()
    rc = 0
    try:
        for ph in args.phases.split(","):
            log("== phase %s" % ph)
            try:
                if ph == "failover":
                    out["failover"] = phase_failover(lab, args, dl, rng)
                elif ph == "partition":
                    out["partition"] = phase_partition(lab, args, dl)
                elif ph == "flap":
                    out["flap"] = phase_flap(lab, args, dl)
                else:
                    raise LabError("unknown phase %s" % ph)
            except LabError as e:
                log("phase %s failed: %s" % (ph, e))
                out.setdefault("errors", []).append("%s: %s" % (ph, e))
                rc = 1
            finally:
                if args.logs:
                    keep = args.logs
                    os.makedirs(keep, exist_ok=True)
                    for nd in lab.nodes():
                        for src, suf in ((nd["log"], ".log"),
                                         (lab.hook_log(nd), ".hook.log")):
                            try:
                                with open(src, "rb") as f, open(
                                        os.path.join(keep, "%s-%s%s" % (
                                            ph, nd["name"], suf)),
                                        "wb") as g:
                                    g.write(f.read())
                            except OSError:
                                pass
                lab.down(log=log)
    except (KeyboardInterrupt, Interrupted) as e:
        out.setdefault("errors", []).append(str(e) or "interrupted")
        rc = 1
    finally:
        ok = lab.down(log=log)
        out["lab_down_clean"] = ok
        out["took_s"] = time.time() - t0
        if args.out:
            with open(args.out, "w") as f:
                json.dump(out, f, indent=1, default=str)
            log("results in %s" % args.out)
    for ph in ("failover", "partition", "flap"):
        if ph in out and "summary" in out[ph]:
            print(json.dumps({ph: out[ph]["summary"]}, indent=1))
    return rc


if __name__ == "__main__":
    sys.exit(main())
