#!/usr/bin/env python3
"""A thousand real meshd agents on one machine (issue 17, target 4).

Starts --agents meshd processes on loopback, each on an address of its own
in 127.0.0.0/8 (so that the per-source stream caps of the seeds see one
source per agent, as on a real network), all joining through the first
three at once. Then:

  1. converge: time from the first start until every agent reports every
     other alive (polled over the admin sockets: a sample of agents every
     second, then a sweep of all of them to confirm);
  2. idle for --idle seconds: false suspicions are counted from the
     agents' own logs ("X alive->suspect"), every distinct (subject,
     incarnation) once, so a short-lived suspicion that polling would miss
     still counts; also the agents' own suspicion counters;
  3. kill -9 --kill-pct of the non-seed agents at once: time until every
     survivor reports all of them dead.

Prints one JSON object. Every process it started is killed by PID at the
end, and its temporary directory removed (--keep keeps the logs).

  bench/thousand.py --bin build [--agents 1000] [--idle 300] [--kill-pct 10]
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "proc"))
import meshlab  # noqa: E402

SUSPECT_RE = re.compile(r"swim: (\S+) alive->suspect inc=(\d+)")
DEAD_RE = re.compile(r"swim: (\S+) \w+->dead inc=(\d+)")


class Node:
    def __init__(self, root, i, port):
        self.i = i
        self.name = "a%04d" % i
        # 127.0.<hi>.<lo>: one loopback address per agent.
        self.ip = "127.0.%d.%d" % (i // 250, i % 250 + 1)
        self.addr = "%s:%d" % (self.ip, port)
        self.dir = os.path.join(root, self.name)
        self.log = os.path.join(root, self.name + ".log")
        self.proc = None

    def start(self, meshd, keyring, seeds):
        args = [meshd, "--name", self.name, "--bind", self.addr,
                "--data-dir", self.dir, "--keyring", keyring,
                "--store-max-mb", "16", "--zone", "z%d" % (self.i % 3),
                "--join", ",".join(seeds)]
        with open(self.log, "a") as logf:
            self.proc = subprocess.Popen(args, stdout=logf,
                                         stderr=subprocess.STDOUT)

    def counts(self):
        """(alive, suspect, dead) from the text status (small)."""
        text = meshlab.ask(self.dir, "status", timeout=10)
        m = re.search(r"members\s+(\d+) alive, (\d+) suspect, (\d+) dead",
                      text)
        if not m:
            raise ValueError("no members line")
        return tuple(int(x) for x in m.groups())

    def suspicions(self):
        return json.loads(meshlab.ask(self.dir, "status --json",
                                      timeout=30))["swim"]["suspicions"]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def try_counts(n):
    try:
        return n.counts()
    except (OSError, ValueError):
        return None


def wait_all(nodes, ok, timeout, sample=12, rnd=random.Random(7)):
    """Seconds until ok(counts) holds for every node in @nodes (a sample
    polled every second, then a full sweep), or None."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        pick = rnd.sample(nodes, min(sample, len(nodes)))
        if all((c := try_counts(n)) is not None and ok(c) for n in pick):
            if all((c := try_counts(n)) is not None and ok(c)
                   for n in nodes):
                return time.time() - t0
        time.sleep(1.0)
    return None


def log_suspicions(nodes, since, names):
    """Distinct (subject, incarnation) suspected in any log at or after
    @since (epoch seconds), limited to subjects in @names."""
    seen = set()
    for n in nodes:
        try:
            with open(n.log, errors="replace") as f:
                for line in f:
                    m = meshlab.LOG_RE.match(line.rstrip("\n"))
                    if not m or meshlab.log_time(m.group(1)) < since:
                        continue
                    s = SUSPECT_RE.search(m.group(3))
                    if s and s.group(1) in names:
                        seen.add((s.group(1), int(s.group(2))))
        except FileNotFoundError:
            pass
    return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=300)
    ap.add_argument("--kill-pct", type=float, default=10)
    ap.add_argument("--converge-timeout", type=float, default=180)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    meshd = os.path.join(args.bin, "meshd")
    meshctl = os.path.join(args.bin, "meshctl")
    n = args.agents
    rnd = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="thousand-")
    keyring = os.path.join(root, "keyring")
    with open(keyring, "w") as f:
        f.write(subprocess.run([meshctl, "keygen"], check=True,
                               capture_output=True, text=True).stdout)
    os.chmod(keyring, 0o600)
    port = meshlab.free_port_base(1) + 1
    nodes = [Node(root, i, port) for i in range(n)]
    seeds = [x.addr for x in nodes[:3]]
    out = {"agents": n, "idle_s": args.idle, "kill_pct": args.kill_pct}
    try:
        t0 = time.time()
        for x in nodes:
            x.start(meshd, keyring, seeds)
        out["start_all_s"] = round(time.time() - t0, 1)
        conv = wait_all(nodes, lambda c: c[0] == n and c[1] == 0,
                        args.converge_timeout)
        out["converge_s"] = None if conv is None else round(
            time.time() - t0, 1)
        if conv is None:
            raise RuntimeError("not converged in %.0f s"
                               % args.converge_timeout)
        rss = []
        for x in nodes:
            with open("/proc/%d/status" % x.proc.pid) as f:
                rss += [int(line.split()[1]) for line in f
                        if line.startswith("VmRSS:")]
        out["rss_mib_median"] = round(statistics.median(rss) / 1024, 1)
        out["rss_mib_total"] = round(sum(rss) / 1024, 0)

        names = {x.name for x in nodes}
        s0 = sum(x.suspicions() for x in nodes)
        t_idle = time.time()
        time.sleep(args.idle)
        s1 = sum(x.suspicions() for x in nodes)
        out["idle_suspicions_counted"] = s1 - s0
        out["idle_suspicions_logged"] = len(
            log_suspicions(nodes, t_idle, names))
        out["idle_still_converged"] = all(
            (c := try_counts(x)) is not None and c[0] == n for x in nodes)

        k = max(1, int(round(n * args.kill_pct / 100.0)))
        victims = rnd.sample(nodes[3:], k)
        tk = time.time()
        for v in victims:
            v.proc.send_signal(signal.SIGKILL)
        for v in victims:
            v.proc.wait()
        live = [x for x in nodes if x.alive()]
        det = wait_all(live, lambda c: c[0] == n - k and c[2] == k, 180)
        out["killed"] = k
        out["kill_all_dead_s"] = None if det is None else round(
            time.time() - tk, 1)
        # Live agents declared dead by anyone, from the logs.
        vnames = {v.name for v in victims}
        false_dead = set()
        for x in live:
            with open(x.log, errors="replace") as f:
                for line in f:
                    d = DEAD_RE.search(line)
                    if d and d.group(1) not in vnames:
                        false_dead.add(d.group(1))
        out["false_dead"] = sorted(false_dead)
    finally:
        for x in nodes:
            if x.alive():
                x.proc.send_signal(signal.SIGKILL)
        for x in nodes:
            if x.proc is not None:
                x.proc.wait()
        if args.keep:
            out["root"] = root
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
