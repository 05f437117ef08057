#!/usr/bin/env python3
"""Membership benchmark with real meshd agents on loopback (issue 2).

For each N it prints:
  converge_s        start of N agents -> every agent sees N alive
  detect_*_s        kill -9 of one agent -> first suspect / first dead /
                    100% of the others mark it dead (median over --kills)
  bytes_per_s       sent per agent per second while idle (sealed UDP
                    payload + TCP frames), median and max over agents;
                    *_wire adds 28 bytes of IPv4+UDP header per datagram;
                    ip_bytes_per_s counts every IP packet the agents put on
                    loopback (UDP, TCP handshakes, acks and teardowns, all
                    headers) with nftables counters (root only)
  rss_kb, cpu_pct   per agent while idle, median and max
  false_suspicions  suspicions raised against live agents while idle

With --profiles default,memberlist the same N is run twice, the second
time with `meshd --profile memberlist` (memberlist's LAN timing in our
core: 1 s probes, 500 ms timeout, suspicion multiplier 4, 2
confirmations), so the two timings are compared in one run.

Usage: bench/membership-bench.py --bin build [--nodes 16,64] [--idle 60]
                                 [--kills 5] [--profiles default,memberlist]
                                 [--json]
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "proc"))
import meshlab  # noqa: E402

DEAD_RE = re.compile(r"swim: (\S+) (\w+)->dead inc=")
SUSPECT_RE = re.compile(r"swim: (\S+) alive->suspect inc=")


def pct(vals, q):
    vals = sorted(vals)
    return vals[min(len(vals) - 1, int(q * len(vals)))]


def first_event(agent, regex, name, since):
    for t, _, msg in agent.log_lines():
        m = regex.search(msg)
        if m and m.group(1) == name and t >= since:
            return t
    return None


class WireCounter:
    """nftables counters of every IPv4 packet from or to the agents' ports
    on loopback, in a table of our own (deleted on exit). A packet between
    two agents' ports counts once: the first rule accepts what it counts."""

    def __init__(self, lo, hi):
        self.table = "packmesh_bench_%d" % os.getpid()
        rules = """
table ip %(t)s {
  chain out {
    type filter hook output priority 0; policy accept;
    oifname "lo" meta l4proto udp th sport %(lo)d-%(hi)d counter accept
    oifname "lo" meta l4proto udp th dport %(lo)d-%(hi)d counter accept
    oifname "lo" meta l4proto tcp th sport %(lo)d-%(hi)d counter accept
    oifname "lo" meta l4proto tcp th dport %(lo)d-%(hi)d counter accept
  }
}
""" % {"t": self.table, "lo": lo, "hi": hi}
        subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True)

    def read(self):
        """(packets, bytes, udp bytes, tcp bytes) so far."""
        out = subprocess.run(["nft", "list", "table", "ip", self.table],
                             capture_output=True, check=True).stdout.decode()
        c = [(int(m.group(1)), int(m.group(2))) for m in
             re.finditer(r"counter packets (\d+) bytes (\d+)", out)]
        return (sum(p for p, _ in c), sum(b for _, b in c),
                c[0][1] + c[1][1], c[2][1] + c[3][1])

    def close(self):
        subprocess.run(["nft", "delete", "table", "ip", self.table],
                       check=False)


def run(bin_dir, n, idle_s, kills, seed, profile):
    rnd = random.Random(seed)
    out = {"nodes": n, "profile": profile}
    extra = ["--profile", profile]
    with meshlab.Lab(bin_dir, n) as lab:
        t0 = time.time()
        for a in lab.agents:
            a.start(extra=extra)
        for a in lab.agents:
            a.wait_socket()
        t = lab.wait(lambda: lab.converged(n), 60, step=0.2)
        if t is None:
            raise RuntimeError("N=%d did not converge in 60 s" % n)
        out["converge_s"] = round(time.time() - t0, 2)
        time.sleep(2)  # let join gossip drain before measuring idle

        # Idle window: traffic, CPU, RSS, false suspicions.
        def snap():
            res = {}
            for a in lab.agents:
                st = a.status()
                tr = st["traffic"]
                res[a.name] = (tr["udp_sent_bytes"] + tr["tcp_sent_bytes"],
                               tr["udp_sent"], a.cpu_s(),
                               st["swim"]["suspicions"])
            return res
        wc = None
        if os.geteuid() == 0:
            wc = WireCounter(lab.base_port, lab.base_port + n + 4)
        try:
            c0 = wc.read() if wc else None
            s0, w0 = snap(), time.time()
            time.sleep(idle_s)
            s1, w1 = snap(), time.time()
            c1 = wc.read() if wc else None
        finally:
            if wc:
                wc.close()
        dt = w1 - w0
        if c0 is not None:
            out["ip_bytes_per_s_per_agent"] = round(
                (c1[1] - c0[1]) / dt / n, 1)
            out["ip_packets_per_s_per_agent"] = round(
                (c1[0] - c0[0]) / dt / n, 2)
            out["ip_udp_bytes_per_s_per_agent"] = round(
                (c1[2] - c0[2]) / dt / n, 1)
            out["ip_tcp_bytes_per_s_per_agent"] = round(
                (c1[3] - c0[3]) / dt / n, 1)
        bps = [(s1[k][0] - s0[k][0]) / dt for k in s0]
        wire = [(s1[k][0] - s0[k][0] + 28 * (s1[k][1] - s0[k][1])) / dt
                for k in s0]
        cpu = [100.0 * (s1[k][2] - s0[k][2]) / dt for k in s0]
        rss = [a.rss_kb() for a in lab.agents]
        out["idle_s"] = round(dt, 1)
        out["bytes_per_s_median"] = round(statistics.median(bps), 1)
        out["bytes_per_s_max"] = round(max(bps), 1)
        out["bytes_per_s_wire_median"] = round(statistics.median(wire), 1)
        out["cpu_pct_median"] = round(statistics.median(cpu), 3)
        out["cpu_pct_max"] = round(max(cpu), 3)
        out["rss_kb_median"] = statistics.median(rss)
        out["rss_kb_max"] = max(rss)
        out["false_suspicions"] = sum(s1[k][3] - s0[k][3] for k in s0)

        # Kills: one at a time, restarted before the next.
        firsts, deads, alls = [], [], []
        for _ in range(kills):
            victim = rnd.choice(lab.agents[3:])
            others = [a for a in lab.agents if a is not victim]
            tk = victim.kill9()
            ok = lab.wait(lambda: lab.all_see(victim.name, "dead", others),
                          60, step=0.25)
            if ok is None:
                raise RuntimeError("N=%d: %s never dead everywhere" %
                                   (n, victim.name))
            times = [first_event(a, DEAD_RE, victim.name, tk)
                     for a in others]
            sus = [first_event(a, SUSPECT_RE, victim.name, tk)
                   for a in others]
            times = [x for x in times if x is not None]
            sus = [x for x in sus if x is not None]
            # Agents that heard "dead" before "suspect" log no suspect.
            firsts.append(min(sus + times) - tk)
            deads.append(min(times) - tk)
            alls.append(max(times) - tk)
            victim.start(extra=extra)
            victim.wait_socket()
            lab.wait(lambda: lab.converged(n), 60, step=0.25)
        out["kills"] = kills
        out["detect_first_suspect_s_median"] = round(
            statistics.median(firsts), 2)
        out["detect_first_dead_s_median"] = round(statistics.median(deads), 2)
        out["detect_100pct_s_median"] = round(statistics.median(alls), 2)
        out["detect_100pct_s_max"] = round(max(alls), 2)
        out["detect_100pct_s_all"] = [round(x, 2) for x in alls]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build")
    ap.add_argument("--nodes", default="16,64")
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--profiles", default="default",
                    help="comma-separated meshd --profile values, run "
                    "one after the other (default,memberlist compares "
                    "our timing with memberlist's in one run)")
    args = ap.parse_args()
    results = []
    for n in [int(x) for x in args.nodes.split(",")]:
        for profile in args.profiles.split(","):
            r = run(args.bin, n, args.idle, args.kills, args.seed, profile)
            results.append(r)
            if not args.json:
                for k, v in r.items():
                    print("N=%d %s %s %s" % (n, profile, k, v), flush=True)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
