#!/usr/bin/env python3
"""The membership frontier table of docs/membership.md (issue 17).

Runs meshsim's crash1 scenario over a grid of loss and delay, for our
default settings and for memberlist's LAN timing reproduced in the core
(meshsim --profile memberlist), at N = 64 and N = 1,000, and prints one
markdown table per N. With --doc it also rewrites the tables between the
"frontier:begin" and "frontier:end" markers of docs/membership.md and
keeps every run's JSON in docs/membership-frontier.jsonl.

  tests/sim/frontier.py --build build-sim [--ns 64,1000] [--seeds64 9]
                        [--seeds1000 3] [--jobs 1] [--losses 0,0.1]
                        [--delays 0,100] [--doc [--append]]

Every run starts from a converged mesh and kills one node at 40 s, when
every node has answered about 50 probes and knows what its network is
like (a fresh node treats its network as lossy until 32 probes in a row
were answered in time).

Delay D means a one-way latency uniform in [D/2, 3D/2] on every datagram
(meshsim --latency D/2 --latency-spread 0 --jitter D); D = 0 is meshsim's
LAN default (1-10 ms per link, 0-5 ms jitter). Wire bytes count what the
core sends plus 29 bytes of sealing and 28 of IPv4/UDP header per
datagram, for both profiles.
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LOSSES = [0, 0.05, 0.1, 0.2, 0.3]
DELAYS = [0, 50, 100, 200]
PROFILES = ["default", "memberlist"]
SEAL = 29
IPUDP = 28


def one(sim, profile, n, loss, delay, seed, duration):
    args = [sim, "--profile", profile, "--nodes", str(n), "--seed",
            str(seed), "--scenario", "crash1", "--loss", str(loss),
            "--duration", str(duration), "--fault-at", "40000", "--json"]
    if delay > 0:
        args += ["--latency", str(delay // 2), "--latency-spread", "0",
                 "--jitter", str(delay)]
    out = subprocess.run(args, capture_output=True, check=True).stdout
    r = json.loads(out)
    r["profile"] = profile
    r["delay_ms"] = delay
    return r


def nearest_rank(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * len(xs) + 0.5)) - 1))]


def cell(runs):
    det = [r["dead_100pct_ms"] for r in runs]
    missed = sum(1 for d in det if d is None)
    det = [d / 1000.0 for d in det if d is not None]
    per_s = 1000.0 / runs[0]["probe_interval_ms"]
    msgs = statistics.mean(r["steady_msgs_per_node_per_period"]["mean"]
                           for r in runs) * per_s
    plain = statistics.mean(r["steady_bytes_per_node_per_period"]["mean"]
                            for r in runs) * per_s
    all_msgs = statistics.mean(r["msgs_per_node_per_period"]["mean"]
                               for r in runs) * per_s
    all_plain = statistics.mean(r["bytes_per_node_per_period"]["mean"]
                                for r in runs) * per_s
    return {
        "runs": len(runs),
        "p50": statistics.median(det) if det else None,
        "worst": max(det) if det else None,
        "missed": missed,
        "false_suspect": sum(r["false_suspect"] for r in runs),
        "false_dead": sum(r["false_dead"] for r in runs),
        "idle_dgrams_s": msgs,
        "idle_wire_s": plain + msgs * (SEAL + IPUDP),
        "run_dgrams_s": all_msgs,
        "run_wire_s": all_plain + all_msgs * (SEAL + IPUDP),
    }


def fmt(v, nd=2):
    return "-" if v is None else ("%.*f" % (nd, v))


def table(n, cells, seeds, duration):
    lines = [
        "#### N = %s, crash1, %d seeds per cell, %d s after the kill"
        % ("{:,}".format(n), seeds, duration // 1000),
        "",
        "| loss | delay | kill → 100% dead p50 / worst (s): ours | "
        "memberlist timing | ratio p50 | false suspect / dead: ours | "
        "memberlist timing | idle datagrams/s, wire B/s: ours | "
        "memberlist timing | whole run wire B/s: ours | memberlist timing |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for loss in LOSSES:
        for d in DELAYS:
            a = cells[("default", n, loss, d)]
            b = cells[("memberlist", n, loss, d)]
            ratio = (a["p50"] / b["p50"]) if a["p50"] and b["p50"] else None

            def det(c):
                s = "%s / %s" % (fmt(c["p50"]), fmt(c["worst"]))
                if c["missed"]:
                    s += " (%d never)" % c["missed"]
                return s
            lines.append(
                "| %d%% | %d ms | %s | %s | %s | %d / %d | %d / %d | "
                "%.2f, %.0f | %.2f, %.0f | %.0f | %.0f |" % (
                    round(loss * 100), d, det(a), det(b), fmt(ratio),
                    a["false_suspect"], a["false_dead"],
                    b["false_suspect"], b["false_dead"],
                    a["idle_dgrams_s"], a["idle_wire_s"],
                    b["idle_dgrams_s"], b["idle_wire_s"],
                    a["run_wire_s"], b["run_wire_s"]))
    return "\n".join(lines)


def main():
    global LOSSES, DELAYS
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-sim"))
    ap.add_argument("--ns", default="64,1000")
    ap.add_argument("--seeds64", type=int, default=9)
    ap.add_argument("--seeds1000", type=int, default=3)
    ap.add_argument("--duration", type=int, default=30000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--doc", action="store_true")
    ap.add_argument("--append", action="store_true",
                    help="with --doc: keep the tables already there")
    ap.add_argument("--losses", default=",".join(str(x) for x in LOSSES),
                    help="loss fractions of the grid")
    ap.add_argument("--delays", default=",".join(str(x) for x in DELAYS),
                    help="delays (ms) of the grid")
    args = ap.parse_args()
    LOSSES = [float(x) if "." in x else int(x)
              for x in args.losses.split(",")]
    DELAYS = [int(x) for x in args.delays.split(",")]
    sim = os.path.join(args.build, "tests", "sim", "meshsim")
    ns = [int(x) for x in args.ns.split(",")]
    work = []
    for n in ns:
        seeds = args.seeds64 if n < 1000 else args.seeds1000
        for p in PROFILES:
            for loss in LOSSES:
                for d in DELAYS:
                    for s in range(1, seeds + 1):
                        work.append((p, n, loss, d, s))
    runs = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        futs = {ex.submit(one, sim, p, n, loss, d, s, args.duration):
                (p, n, loss, d) for (p, n, loss, d, s) in work}
        done = 0
        for f in concurrent.futures.as_completed(futs):
            runs.setdefault(futs[f], []).append(f.result())
            done += 1
            print("frontier: %d/%d" % (done, len(work)), file=sys.stderr)
    cells = {k: cell(v) for k, v in runs.items()}
    text = "\n\n".join(
        table(n, cells, args.seeds64 if n < 1000 else args.seeds1000,
              args.duration) for n in ns)
    print(text)
    if args.doc:
        # --append adds these tables after the ones the markers hold (a
        # big N run apart, with fewer seeds or a smaller grid).
        doc = os.path.join(ROOT, "docs", "membership.md")
        body = open(doc).read()
        a = body.index("<!-- frontier:begin -->")
        b = body.index("<!-- frontier:end -->")
        keep = body[a + len("<!-- frontier:begin -->\n"):b] \
            if args.append else ""
        body = (body[:a] + "<!-- frontier:begin -->\n" + keep + text +
                "\n" + body[b:])
        open(doc, "w").write(body)
        mode = "a" if args.append else "w"
        with open(os.path.join(ROOT, "docs", "membership-frontier.jsonl"),
                  mode) as f:
            for k in sorted(runs):
                for r in sorted(runs[k], key=lambda r: r["seed"]):
                    f.write(json.dumps(r, sort_keys=True) + "\n")

if __name__ == "__main__":
    main()
