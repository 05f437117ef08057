#!/usr/bin/env python3
"""Tenant benchmark with real meshd agents on loopback (issue 11 item 9).

Starts 8 agents (RF 3) with tests/proc/meshlab.py, drives them with
bench/tenant-load (a pipelining C client of the admin socket) and prints:

  a. writes/s through one node and through all 8, at --ack one and quorum
  b. write -> visible on all replicas: latency of --ack all writes (the
     answer comes once every replica committed), unloaded and at a paced
     moderate load
  c. tenant wire bytes per update against the encoded delta, with several
     nodes writing the same tenants and keys at once
  d. restart of an agent holding 10^6 keys: exec -> first `tenant get` served
  e. anti-entropy bytes/s per node pair between equal replicas, 10,000
     tenants, idle

Figures are medians over --runs repeats where a repeat makes sense.
docs/tenant-bench.md explains what each one counts.

Usage: bench/tenant-bench.py --bin BUILD_DIR [--quick] [--json] [--runs N]
                             [--only a,b,c,d,e] [--keep]

Agents listen on 127.0.0.1 only. Every process it starts (agents and load
generators) is stopped by its PID at the end, on failure and on Ctrl-C.
"""
import argparse
import json
import os
import resource
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

N_AGENTS = 8
RF = 3
# Sealing adds 1 version byte, a 12-byte nonce and a 16-byte tag to every
# frame (agent/io/seal.h, version 2), and the stream a 4-byte length word
# (net.h).
SEAL_FRAME = 29 + 4

LOADS = []  # load generators running, stopped by PID on the way out


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def med(v):
    return round(statistics.median(v), 3) if v else None


def stop_loads():
    for p in LOADS:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
    LOADS.clear()


def busy_s():
    """CPU seconds the whole machine has been busy (not idle, not iowait):
    other users of the machine show up as busy minus ours."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def load(bin_dir, args, timeout):
    """Runs tenant-load with @args; returns its JSON plus the CPU seconds it
    used (cpu_s) and the machine's busy cores meanwhile. Killed (by PID) if
    it outlives @timeout."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b0, w0 = busy_s(), time.monotonic()
    p = subprocess.Popen([os.path.join(bin_dir, "tenant-load")] +
                         [str(a) for a in args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    LOADS.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise RuntimeError("tenant-load ran over %.0f s" % timeout)
    finally:
        if p in LOADS:
            LOADS.remove(p)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b1, w1 = busy_s(), time.monotonic()
    if p.returncode not in (0, 3) or not out.strip():
        raise RuntimeError("tenant-load failed (%d): %s" %
                           (p.returncode, err.strip()))
    res = json.loads(out)
    res["cpu_s"] = round((ru1.ru_utime - ru0.ru_utime) +
                         (ru1.ru_stime - ru0.ru_stime), 2)
    res["wall_s"] = w1 - w0
    res["machine_busy_cores"] = round((b1 - b0) / (w1 - w0), 2)
    return res


def other_cores(res):
    """Cores busy with neither our agents nor our load generator."""
    return round(res["machine_busy_cores"] -
                 (res.get("agents_cpu_s", 0) + res["cpu_s"]) /
                 res["wall_s"], 2)


def sock(a):
    return os.path.join(a.dir, "meshd.sock")


def socks_args(agents):
    out = []
    for a in agents:
        out += ["--sock", sock(a)]
    return out


def tstats(agents):
    """{name: tenants counters} plus the agents' CPU seconds."""
    res = {}
    for a in agents:
        res[a.name] = dict(a.status()["tenants"])
        res[a.name]["cpu_s"] = a.cpu_s()
    return res


def delta(s0, s1, key):
    return sum(s1[k][key] - s0[k][key] for k in s0)


def wire(s0, s1):
    """Tenant bytes on the wire, sealing and length word included."""
    return delta(s0, s1, "frame_bytes_sent") + \
        SEAL_FRAME * delta(s0, s1, "frames_sent")


def start_mesh(bin_dir, root, extra=()):
    lab = meshlab.Lab(bin_dir, N_AGENTS, root=root)
    args = ["--tenant-replicas", str(RF), "--store-max-mb", "8192"]
    args += list(extra)
    for a in lab.agents:
        a.start(extra=args)
    for a in lab.agents:
        a.wait_socket()

    def ready():
        sts = [a.status() for a in lab.agents]
        digests = {s["placement"]["ring_digest"] for s in sts}
        return all(s["counts"]["alive"] == N_AGENTS and
                   s["placement"]["eligible"] == N_AGENTS
                   for s in sts) and len(digests) == 1
    if lab.wait(ready, 60, step=0.2) is None:
        raise RuntimeError("the mesh did not converge in 60 s")
    return lab


def create_tenants(bin_dir, lab, prefix, n, path):
    r = load(bin_dir, socks_args(lab.agents) +
             ["--op", "create", "--count", n, "--prefix", prefix,
              "--out", path, "--ack", "all", "--conns", 1,
              "--window", 64], timeout=120 + n / 50)
    if r["ok"] != n:
        raise RuntimeError("created %d of %d tenants: %s" %
                           (r["ok"], n, r["errors"]))
    return r


def wait_quiet(lab, timeout):
    """Waits until no replica is behind and anti-entropy finds nothing new
    for two rounds; returns the seconds waited or None."""
    last = [None]

    def quiet():
        sts = [a.status()["tenants"] for a in lab.live()]
        behind = sum(s["replicas_behind"] for s in sts)
        mism = sum(s["ae_mismatches"] + s["ae_pulls_sent"] for s in sts)
        prev, last[0] = last[0], mism
        return behind == 0 and prev == mism
    return lab.wait(quiet, timeout, step=4.5)


def tenant_replicas(lab, tenant, cap):
    ans = meshlab.ask(lab.agents[0].dir, ["tenant", "digest", tenant,
                                          "--cap", cap, "--json"])
    if ans.startswith("error"):
        raise RuntimeError("digest %s: %s" % (tenant, ans))
    return json.loads(ans)["replicas"]


def read_caps(path):
    with open(path) as f:
        return [tuple(line.split()) for line in f if line.strip()]


def write_caps(path, pairs):
    with open(path, "w") as f:
        for t, c in pairs:
            f.write("%s %s\n" % (t, c))


# ---- a. throughput ---------------------------------------------------------

def bench_throughput(bin_dir, lab, tmp, runs, secs):
    caps = os.path.join(tmp, "tp.caps")
    create_tenants(bin_dir, lab, "tp", 64, caps)
    out = {}
    for via in ("one_node", "all_nodes"):
        agents = lab.agents[:1] if via == "one_node" else lab.agents
        conns = 8 if via == "one_node" else 1
        for ack in ("one", "quorum"):
            rs = []
            for r in range(runs):
                s0 = tstats(lab.agents)
                res = load(bin_dir, socks_args(agents) +
                           ["--tenants", caps, "--op", "put", "--ack", ack,
                            "--duration", secs, "--conns", conns,
                            "--window", 256, "--value-size", 100,
                            "--prefix", "a-%s-%s-%d" % (via, ack, r)],
                           timeout=secs + 60)
                s1 = tstats(lab.agents)
                res["agents_cpu_s"] = round(delta(s0, s1, "cpu_s"), 2)
                res["forwarded"] = delta(s0, s1, "forwarded")
                res["timeouts"] = delta(s0, s1, "timeouts")
                rs.append(res)
                log("a %s %s run %d: %.0f ok/s, p99 %.1f ms, errors %s, "
                    "cores: agents %.2f loadgen %.2f other %.2f" %
                    (via, ack, r, res["ok_per_s"], res["lat_ms"]["p99"],
                     res["errors"], res["agents_cpu_s"] / res["wall_s"],
                     res["cpu_s"] / res["wall_s"], other_cores(res)))
            out["%s_%s" % (via, ack)] = {
                "ok_per_s": med([x["ok_per_s"] for x in rs]),
                "ok_per_s_all": [x["ok_per_s"] for x in rs],
                "lat_p50_ms": med([x["lat_ms"]["p50"] for x in rs]),
                "lat_p99_ms": med([x["lat_ms"]["p99"] for x in rs]),
                "errors": [x["errors"] for x in rs],
                "agents_cpu_cores": med([x["agents_cpu_s"] / x["wall_s"]
                                         for x in rs]),
                "loadgen_cpu_cores": med([x["cpu_s"] / x["wall_s"]
                                          for x in rs]),
                "forwarded_share": med([x["forwarded"] / max(1, x["ok"])
                                        for x in rs]),
                "other_cores": med([other_cores(x) for x in rs]),
            }
            wait_quiet(lab, 60)
    return out


# ---- b. write -> visible on all replicas -----------------------------------

def bench_visibility(bin_dir, lab, tmp, runs, secs, count):
    caps = os.path.join(tmp, "vis.caps")
    create_tenants(bin_dir, lab, "vis", 64, caps)
    out = {}
    # Unloaded: one connection, one request at a time, ack all.
    rs = []
    for r in range(runs):
        a = lab.agents[(3 * r) % N_AGENTS]
        s0 = tstats(lab.agents)
        res = load(bin_dir, ["--sock", sock(a), "--tenants", caps,
                             "--op", "put", "--ack", "all", "--count", count,
                             "--conns", 1, "--window", 1,
                             "--prefix", "b0-%d" % r], timeout=120)
        res["agents_cpu_s"] = delta(s0, tstats(lab.agents), "cpu_s")
        rs.append(res)
        log("b unloaded via %s: p50 %.2f p99 %.2f max %.2f ms, errors %s, "
            "other cores %.2f" %
            (a.name, res["lat_ms"]["p50"], res["lat_ms"]["p99"],
             res["lat_ms"]["max"], res["errors"], other_cores(res)))
    out["unloaded"] = summary_lat(rs)
    out["unloaded"]["requests"] = count
    # Moderate load: ack-all writes paced over all 8 nodes, at 2.5% and
    # 10% of what the mesh takes pipelined at ack one (section a).
    for rate in (500, 2000):
        rs = []
        for r in range(runs):
            s0 = tstats(lab.agents)
            res = load(bin_dir, socks_args(lab.agents) +
                       ["--tenants", caps, "--op", "put", "--ack", "all",
                        "--duration", secs, "--rate", rate, "--conns", 1,
                        "--window", 64, "--prefix", "b%d-%d" % (rate, r)],
                       timeout=secs + 60)
            res["agents_cpu_s"] = delta(s0, tstats(lab.agents), "cpu_s")
            rs.append(res)
            log("b %d/s: %.0f ok/s p50 %.2f p99 %.2f max %.2f ms, errors "
                "%s, cores: agents %.2f other %.2f" %
                (rate, res["ok_per_s"], res["lat_ms"]["p50"],
                 res["lat_ms"]["p99"], res["lat_ms"]["max"], res["errors"],
                 res["agents_cpu_s"] / res["wall_s"], other_cores(res)))
        out["rate_%d" % rate] = summary_lat(rs)
        wait_quiet(lab, 60)
    return out


def summary_lat(rs):
    return {
        "ok_per_s": med([x["ok_per_s"] for x in rs]),
        "p50_ms": med([x["lat_ms"]["p50"] for x in rs]),
        "p99_ms": med([x["lat_ms"]["p99"] for x in rs]),
        "max_ms": med([x["lat_ms"]["max"] for x in rs]),
        "errors": [x["errors"] for x in rs],
        "agents_cpu_cores": med([x["agents_cpu_s"] / x["wall_s"]
                                 for x in rs]),
        "other_cores": med([other_cores(x) for x in rs]),
    }


# ---- c. bytes per update ---------------------------------------------------

def bench_bytes(bin_dir, lab, tmp, runs, secs):
    """Concurrent writers on the same keys. Two set-ups: the writers are
    the tenants' own replicas (every byte is a delta, its ack, or
    anti-entropy), and writers on all 8 nodes (forwarded requests too)."""
    path = os.path.join(tmp, "bw-all.caps")
    create_tenants(bin_dir, lab, "bw", 240, path)
    pairs = read_caps(path)
    groups = {}
    for t, c in pairs:
        groups.setdefault(tuple(sorted(tenant_replicas(lab, t, c))),
                          []).append((t, c))
    rset, chosen = max(groups.items(), key=lambda kv: len(kv[1]))
    chosen = chosen[:16]
    same = os.path.join(tmp, "bw-same.caps")
    write_caps(same, chosen)
    writers = [a for a in lab.agents if a.name in rset]
    log("c: %d tenants replicated on %s" % (len(chosen), ",".join(rset)))
    out = {"tenants": len(chosen), "replica_set": list(rset),
           "value_size": 100, "keys_per_tenant": 50}

    def one(agents, caps, rate, tag, r):
        wait_quiet(lab, 30)
        s0 = tstats(lab.agents)
        args = socks_args(agents) + [
            "--tenants", caps, "--op", "put", "--ack", "one",
            "--duration", secs, "--conns", 2, "--window", 128,
            "--value-size", 100, "--keyspace", 50, "--prefix", "c"]
        if rate:
            args += ["--rate", rate]
        res = load(bin_dir, args, timeout=secs + 60)
        # Let the last deltas, acks and anti-entropy of this run go out.
        time.sleep(3)
        s1 = tstats(lab.agents)
        deltas = delta(s0, s1, "deltas_sent")
        dbytes = delta(s0, s1, "delta_bytes_sent")
        w = wire(s0, s1)
        frames = delta(s0, s1, "frames_sent")
        x = {"ok_per_s": res["ok_per_s"], "deltas": deltas,
             "delta_bytes_per_update": round(dbytes / max(1, deltas), 1),
             "wire_bytes_per_update": round(w / max(1, deltas), 1),
             "ratio": round(w / max(1, dbytes), 3),
             "deltas_per_frame": round(deltas / max(1, frames), 2),
             "ae_bytes": delta(s0, s1, "ae_bytes_sent"),
             "forwarded": delta(s0, s1, "forwarded"),
             "machine_busy_cores": res["machine_busy_cores"]}
        log("c %s run %d: %s" % (tag, r, x))
        return x

    def summary(xs):
        return {k: med([x[k] for x in xs]) for k in xs[0]}

    for tag, agents, caps, rate in (
            ("replicas_pipelined", writers, same, 0),
            ("replicas_paced_300", writers, same, 300),
            ("all_nodes_pipelined", lab.agents, same, 0)):
        n = runs if tag != "all_nodes_pipelined" else 1
        out[tag] = summary([one(agents, caps, rate, tag, r)
                            for r in range(n)])
    return out


# ---- d. restart with 10^6 keys ---------------------------------------------

def first_read(agent, tenant, cap, key, timeout=20.0):
    """Starts @agent; returns seconds from exec to the first `tenant get`
    answer that is not an error, the number of tries and what the failed
    tries met ({error text or exception name: count})."""
    line = "tenant get %s %s --cap %s" % (tenant, key, cap)
    t0 = time.monotonic()
    agent.start(join=agent.lab_join, extra=agent.lab_extra)
    tries, failed = 0, {}
    while time.monotonic() - t0 < timeout:
        tries += 1
        try:
            ans = meshlab.ask(agent.dir, line, timeout=2.0)
            if not ans.startswith("error"):
                return time.monotonic() - t0, tries, failed
            why = ans.split("(")[0].strip()[:60]
        except OSError as e:
            why = type(e).__name__
        failed[why] = failed.get(why, 0) + 1
        if agent.proc.poll() is not None:
            raise RuntimeError("%s exited: %s" % (agent.name, agent.tail()))
        time.sleep(0.001)
    raise RuntimeError("no read served %.0f s after restart: %s" %
                       (timeout, failed))


def bench_restart(bin_dir, tmp, keys, restarts):
    root = os.path.join(tmp, "restart")
    lab = meshlab.Lab(bin_dir, 1, root=root)
    try:
        a = lab.agents[0]
        a.lab_join = []
        a.lab_extra = ["--tenant-replicas", "1", "--store-max-mb", "8192"]
        a.start(join=[], extra=a.lab_extra)
        a.wait_socket()
        caps = os.path.join(tmp, "big.caps")
        load(bin_dir, ["--sock", sock(a), "--op", "create", "--count", 1,
                       "--prefix", "big", "--out", caps], timeout=60)
        tenant, cap = read_caps(caps)[0]
        res = load(bin_dir, ["--sock", sock(a), "--tenants", caps,
                             "--op", "put", "--ack", "one",
                             "--count", keys, "--conns", 4,
                             "--window", 256, "--value-size", 100,
                             "--prefix", "key"], timeout=600)
        if res["ok"] != keys:
            raise RuntimeError("loaded %d of %d keys: %s" %
                               (res["ok"], keys, res["errors"]))
        held = a.status()["tenants"]["keys"]
        mdb = os.path.getsize(os.path.join(a.dir, "mesh.mdb"))
        log("d: %d keys loaded at %.0f/s, %d held, mesh.mdb %.0f MiB" %
            (keys, res["ok_per_s"], held, mdb / 2**20))
        out = {"keys": keys, "load_per_s": round(res["ok_per_s"]),
               "keys_held": held, "mdb_mib": round(mdb / 2**20)}
        for how in ("term", "kill9"):
            ts = []
            for r in range(restarts):
                if how == "term":
                    a.term(timeout=30)
                else:
                    a.kill9()
                # Cold page cache is out of reach without root; the file
                # was just written, so reads come from the page cache.
                dt, tries, ans = first_read(a, tenant, cap,
                                            "key-%d" % (r * 7919 % keys))
                ts.append(dt)
                log("d %s restart %d: first read after %.1f ms "
                    "(%d tries, failed: %s)" % (how, r, dt * 1000, tries,
                                                ans))
            out[how + "_ms"] = round(1000 * statistics.median(ts), 1)
            out[how + "_ms_all"] = [round(1000 * x, 1) for x in ts]
        out["rss_kb_after"] = a.rss_kb()
        return out
    finally:
        lab.close()


# ---- e. anti-entropy between equal replicas -------------------------------

def bench_ae(bin_dir, tmp, ntenants, window, slices):
    lab = start_mesh(bin_dir, os.path.join(tmp, "ae"))
    try:
        caps = os.path.join(tmp, "ae.caps")
        t0 = time.time()
        r = create_tenants(bin_dir, lab, "ae", ntenants, caps)
        log("e: %d tenants created in %.1f s (%.0f/s)" %
            (ntenants, time.time() - t0, r["ok_per_s"]))
        r = load(bin_dir, socks_args(lab.agents) +
                 ["--tenants", caps, "--op", "put", "--ack", "all",
                  "--count", ntenants, "--conns", 1, "--window", 64,
                  "--prefix", "k"], timeout=300)
        if r["ok"] != ntenants:
            raise RuntimeError("e: %d of %d writes: %s" %
                               (r["ok"], ntenants, r["errors"]))
        w = wait_quiet(lab, 120)
        log("e: one key per tenant written; quiet after %s s" % w)
        held = [a.status()["tenants"]["held"] for a in lab.agents]
        pairs = N_AGENTS * (N_AGENTS - 1) // 2
        per_pair, per_node = [], []
        snaps = [(time.time(), tstats(lab.agents))]
        for _ in range(slices):
            time.sleep(window / slices)
            snaps.append((time.time(), tstats(lab.agents)))
        for (ta, sa), (tb, sb) in zip(snaps, snaps[1:]):
            per_pair.append(wire(sa, sb) / pairs / (tb - ta))
        (ta, sa), (tb, sb) = snaps[0], snaps[-1]
        for k in sa:
            b = (sb[k]["frame_bytes_sent"] - sa[k]["frame_bytes_sent"] +
                 SEAL_FRAME * (sb[k]["frames_sent"] - sa[k]["frames_sent"]))
            per_node.append(b / (tb - ta))
        frames = delta(sa, sb, "frames_sent")
        cpu = delta(sa, sb, "cpu_s")
        out = {"tenants": ntenants, "held_per_node": held,
               "window_s": round(tb - ta, 1), "pairs": pairs,
               "bytes_per_s_per_pair": round(statistics.median(per_pair), 1),
               "bytes_per_s_per_pair_slices": [round(x, 1)
                                               for x in per_pair],
               "bytes_per_s_per_pair_whole": round(
                   wire(sa, sb) / pairs / (tb - ta), 1),
               "bytes_per_s_per_node_median": round(
                   statistics.median(per_node), 1),
               "frames_per_s_per_pair": round(frames / pairs / (tb - ta), 2),
               "ae_mismatches": delta(sa, sb, "ae_mismatches"),
               "ae_pulls_sent": delta(sa, sb, "ae_pulls_sent"),
               "agents_cpu_pct": round(100 * cpu / (tb - ta), 2)}
        log("e: %s" % out)
        # Bonus: restart one agent of the 10,000-tenant mesh and time its
        # first read of a tenant it holds.
        a = lab.agents[-1]
        ls = json.loads(meshlab.ask(a.dir, "tenant ls --json", timeout=30))
        mine = {x["tenant"] for x in ls["tenants"] if x["replica"]}
        tenant, cap = next((t, c) for t, c in read_caps(caps) if t in mine)
        a.lab_join = None
        a.lab_extra = ["--tenant-replicas", str(RF), "--store-max-mb",
                       "8192"]
        a.term(timeout=30)
        # tenant-load wrote key k-S into tenant ae-S (one write each).
        dt, tries, ans = first_read(a, tenant, cap,
                                    "k-%d" % int(tenant.split("-")[1]))
        out["restart_first_read_ms"] = round(1000 * dt, 1)
        out["restart_held"] = len(ls["tenants"])
        out["restart_failed_tries"] = ans
        log("e: %s restarted holding %d tenants: first read after %.1f ms"
            " (%d tries, failed: %s)" % (a.name, len(ls["tenants"]),
                                         1000 * dt, tries, ans))
        return out
    finally:
        lab.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--only", default="a,b,c,d,e")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (logs, stores)")
    args = ap.parse_args()
    if not os.access(os.path.join(args.bin, "tenant-load"), os.X_OK):
        sys.exit("missing %s/tenant-load: build first" % args.bin)
    q = args.quick
    runs = args.runs or (1 if q else 3)
    secs = 3 if q else 10
    only = set(args.only.split(","))

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    # Also when started in the background, where SIGINT comes ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    tmp = tempfile.mkdtemp(prefix="tenant-bench-")
    res = {"agents": N_AGENTS, "rf": RF, "cores": os.cpu_count(),
           "quick": q, "runs": runs}
    lab = None
    try:
        if only & {"a", "b", "c"}:
            lab = start_mesh(args.bin, os.path.join(tmp, "mesh"))
            if "a" in only:
                res["a_throughput"] = bench_throughput(args.bin, lab, tmp,
                                                       runs, secs)
            if "b" in only:
                res["b_visibility"] = bench_visibility(
                    args.bin, lab, tmp, runs, secs, 100 if q else 300)
            if "c" in only:
                res["c_bytes"] = bench_bytes(args.bin, lab, tmp, runs, secs)
            lab.close()
            lab = None
        if "d" in only:
            res["d_restart"] = bench_restart(args.bin, tmp,
                                             100000 if q else 1000000,
                                             runs)
        if "e" in only:
            res["e_anti_entropy"] = bench_ae(args.bin, tmp,
                                             1000 if q else 10000,
                                             20 if q else 60, 3)
    finally:
        stop_loads()
        if lab is not None:
            lab.close()
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print_table(res)


def print_table(res):
    rows = []
    a = res.get("a_throughput")
    if a:
        for k, v in a.items():
            rows.append(("a writes/s %s" % k, v["ok_per_s"],
                         ">= 10000" if k.endswith("_one") else ">= 3000",
                         "p99 %.1f ms, cores: agents %.2f loadgen %.2f "
                         "other %.2f" %
                         (v["lat_p99_ms"], v["agents_cpu_cores"],
                          v["loadgen_cpu_cores"], v["other_cores"])))
    b = res.get("b_visibility")
    if b:
        for k in ("unloaded", "rate_500", "rate_2000"):
            v = b[k]
            rows.append(("b ack-all p50/p99 ms %s" % k,
                         "%.2f / %.2f" % (v["p50_ms"], v["p99_ms"]),
                         "p99 < 10", "max %.1f ms, agents %.2f cores, "
                         "other %.2f" % (v["max_ms"], v["agents_cpu_cores"],
                                         v["other_cores"])))
    c = res.get("c_bytes")
    if c:
        for k in ("replicas_pipelined", "replicas_paced_300",
                  "all_nodes_pipelined"):
            v = c[k]
            rows.append(("c wire/delta bytes %s" % k, v["ratio"], "<= 1.5",
                         "%.0f B wire vs %.0f B delta per update, %.1f "
                         "deltas/frame" % (v["wire_bytes_per_update"],
                                           v["delta_bytes_per_update"],
                                           v["deltas_per_frame"])))
    d = res.get("d_restart")
    if d:
        for k in ("term", "kill9"):
            rows.append(("d restart->first read ms (%s)" % k, d[k + "_ms"],
                         "< 1000", "%d keys, %d MiB store" %
                         (d["keys"], d["mdb_mib"])))
    e = res.get("e_anti_entropy")
    if e:
        rows.append(("e idle tenant B/s per pair", e["bytes_per_s_per_pair"],
                     "<= 200", "%d tenants, %.0f s, %.2f frames/s/pair" %
                     (e["tenants"], e["window_s"],
                      e["frames_per_s_per_pair"])))
        rows.append(("e restart->first read ms, %d tenants held" %
                     e["restart_held"], e["restart_first_read_ms"],
                     "-", "one agent of the mesh, SIGTERM"))
    w = max(len(r[0]) for r in rows) if rows else 10
    print("%-*s  %14s  %9s  %s" % (w, "figure", "measured", "target",
                                    "notes"))
    for r in rows:
        print("%-*s  %14s  %9s  %s" % (w, r[0], r[1], r[2], r[3]))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_loads()
        sys.exit(130)
