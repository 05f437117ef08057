#!/usr/bin/env python3
"""Process-level test of packs with real agents (issue 12).

Five agents in three zones, each with scripts/pack-hook and 1000 MiB for
packs. Desired packs come from one agent's --packs FILE and from `meshctl
pack add` at various agents; every agent must agree on every owner, each
owner's hook must start its packs (once), memory must be a hard limit, a
drained agent must stop its packs and get them back after undrain, a pack
owned by an agent killed with -9 must be started by the next owner (and
the move recorded in its history), a removed pack must be stopped, and bad
commands must be refused with a clear error, changing nothing.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meshlab  # noqa: E402

check = meshlab.Checks()
HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                    "scripts", "pack-hook")
BOOT = ["boot-%02d" % i for i in range(24)]


ctl = meshlab.ctl


def ls(lab, agent):
    out = ctl(lab, agent, "pack", "ls", "--json")
    return {p["name"]: p for p in json.loads(out.stdout)["packs"]}


def hook_lines(path):
    """[(ms, action, pack, node)] from the hook log."""
    try:
        with open(path) as f:
            return [(int(a), b, c, d) for a, b, c, d in
                    (ln.split() for ln in f if len(ln.split()) == 4)]
    except FileNotFoundError:
        return []


def running(lines):
    """{(pack, node)} started and not stopped since."""
    on = set()
    for _, act, pack, node in lines:
        if act == "start":
            on.add((pack, node))
        elif act == "stop":
            on.discard((pack, node))
    return on


def agree(lab, agents):
    views = [ls(lab, a) for a in agents]
    first = views[0]
    return all(set(v) == set(first) and
               all(v[p]["owners"] == first[p]["owners"] for p in first)
               for v in views)


def stop_pack_processes(root):
    """Kills what the hook started (detached from the agents)."""
    for dirpath, _, files in os.walk(root):
        for fn in files:
            if not fn.endswith(".pid"):
                continue
            try:
                with open(os.path.join(dirpath, fn)) as f:
                    pid = int(f.read().split()[0])
                os.killpg(pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    with meshlab.Lab(args.bin, 5) as lab:
        log = os.path.join(lab.root, "hook.log")
        packs_file = os.path.join(lab.root, "packs")
        with open(packs_file, "w") as f:
            f.write("# bootstrap\n" + "\n".join(BOOT) + "\n")

        def env(a):
            return {"MESH_HOOK_LOG": log,
                    "MESH_HOOK_DIR": os.path.join(lab.root, "hook-" + a.name),
                    "MESH_PACK_LABEL_CMD": "sleep 300"}
        extra = ["--pack-hook", HOOK, "--capacity-mem", "1000",
                 "--anti-entropy-ms", "300", "--pack-check-ms", "2000"]
        try:
            for a in lab.agents:
                a.start(extra=extra + (["--packs", packs_file]
                                       if a.idx == 1 else []), env=env(a))
            for a in lab.agents:
                a.wait_socket()
            check("converge", lab.wait(lambda: lab.converged(5), 20)
                  is not None)
            run_checks(lab, log, extra, env)
        finally:
            stop_pack_processes(lab.root)
    return check.summary()


def run_checks(lab, log, extra, env):  # noqa: C901 (one scenario)
    a0, a1 = lab.agents[0], lab.agents[1]
    # --packs FILE adds its packs once; every agent learns them.
    check("bootstrap packs reach every agent",
          lab.wait(lambda: all(set(BOOT) <= set(ls(lab, a))
                               for a in lab.agents), 20) is not None)
    out = ctl(lab, lab.agents[2], "pack", "add", "web", "--mem", "100",
              "--replicas", "3", "--label", "TEAM=blue")
    check("pack add answers", out.returncode == 0 and
          "added" in out.stdout, out.stdout + out.stderr)
    check("all agents agree on every owner",
          lab.wait(lambda: "web" in ls(lab, lab.agents[4]) and
                   agree(lab, lab.agents), 15) is not None)
    zone = {a.name: "z%d" % (a.idx % 3) for a in lab.agents}
    web = ls(lab, a0)["web"]
    check("replicas distinct and in 3 zones",
          len(set(web["owners"])) == 3 and
          len({zone[n] for n in web["owners"]}) == 3, str(web["owners"]))
    want = {(p, o) for p, v in ls(lab, a0).items() for o in v["owners"]}
    check("each owner's hook started its packs",
          lab.wait(lambda: running(hook_lines(log)) == want, 20)
          is not None, str(len(want)))
    reps = {p: v["replicas"] for p, v in ls(lab, a0).items()}
    on = {}
    for p, _ in running(hook_lines(log)):
        on[p] = on.get(p, 0) + 1
    check("no pack runs on more owners than its replicas",
          all(on[p] <= reps.get(p, 0) for p in on), str(on))
    check("status counts every pack running",
          lab.wait(lambda: a1.status()["packs"]["running"] ==
                   len(BOOT) + 1, 15) is not None,
          json.dumps(a1.status()["packs"]))

    # Memory is hard: a pack bigger than any node is unplaceable.
    ctl(lab, a0, "pack", "add", "huge", "--mem", "5000")
    check("unplaceable pack reported with the reason",
          lab.wait(lambda: "huge" in ls(lab, a1) and
                   ls(lab, a1)["huge"]["owners"] == [] and
                   "MiB" in ls(lab, a1)["huge"]["why"], 10) is not None)
    check("status counts it unplaceable",
          a1.status()["packs"]["unplaceable"] == 1)
    for a in lab.agents:
        st = a.status()["packs"]
        if st["mem_mib_here"] > 1000:
            check("memory within capacity on " + a.name, False, str(st))

    # Bad input: refused, nothing changes.
    lab.wait(lambda: "huge" in ls(lab, a0), 10)
    before = set(ls(lab, a0))
    for bad, why in [(["pack", "add", "a/b"], "pack name"),
                     (["pack", "add", "x", "--replicas", "9"], "replicas"),
                     (["pack", "add", "x", "--mem", "lots"], "MiB"),
                     (["pack", "add", "x", "--label", "bad-key=1"],
                      "label"),
                     (["pack", "add", "x", "--region", "r1"], "zone"),
                     (["pack", "rm", "nope"], "no such pack"),
                     (["pack", "frobnicate"], "unknown pack command")]:
        out = ctl(lab, a0, *bad)
        check("refused: " + " ".join(bad),
              out.returncode != 0 and why in out.stdout + out.stderr,
              (out.stdout + out.stderr).strip())
    time.sleep(1)
    check("refused commands changed nothing", set(ls(lab, a0)) == before)
    # A client with a real capability (of its own tenant) cannot write
    # the system tenant: asked straight at the socket, past meshctl.
    made = ctl(lab, a0, "tenant", "create", "t1", "--json")
    cap = json.loads(made.stdout)["cap"]
    ans = meshlab.ask(a0.dir, " ".join(meshlab.encode_token(t.encode())
                                       for t in ["tenant", "put", "_mesh",
                                                 "pack/x", "v", "--cap",
                                                 cap]))
    check("the system tenant is not open to clients",
          "reserved" in ans, ans.strip())

    # Drain: the agent's packs stop there and go elsewhere; undrain.
    drained = lab.agents[3]
    check("drain", ctl(lab, drained, "drain").returncode == 0)

    def drained_empty():
        on = running(hook_lines(log))
        return (not any(n == drained.name for _, n in on) and
                all(drained.name not in v["owners"]
                    for v in ls(lab, a0).values()))
    check("drained agent stops its packs; nobody places on it",
          lab.wait(drained_empty, 20) is not None)
    check("undrain", ctl(lab, drained, "undrain").returncode == 0)
    check("undrained agent takes packs again",
          lab.wait(lambda: any(n == drained.name for _, n in
                               running(hook_lines(log))), 20) is not None)

    # Failover: kill -9 the owner of a single-replica pack.
    view = ls(lab, a0)
    victim = next(a for a in lab.agents[1:]
                  if any(v["owners"] == [a.name] for v in view.values()))
    pack = next(p for p, v in view.items() if v["owners"] == [victim.name])
    t_kill = int(time.time() * 1000)
    victim.kill9()

    def restarted():
        for ms, act, p, n in hook_lines(log):
            if act == "start" and p == pack and n != victim.name and \
                    ms >= t_kill:
                return ms - t_kill, n
        return None
    lab.wait(lambda: restarted() is not None, 20)
    got = restarted()
    check("next owner starts the pack after kill -9",
          got is not None, str(got))
    if got is not None:
        # The 5 s target is measured in the 32-agent lab (docs/
        # packs-lab.md); here, with sanitizers and other tests on two
        # cores, only a bound that says "it happened by itself".
        check("failover within 10 s", got[0] <= 10000, "%d ms" % got[0])
        new = next(a for a in lab.agents if a.name == got[1])
        hist = ctl(lab, new, "pack", "history", pack, "--json")
        moves = json.loads(hist.stdout)["moves"]
        check("the new owner's history has the move",
              any(m["from"] == victim.name and m["to"] == new.name and
                  m["reason"] == "down" for m in moves), hist.stdout)

    # A restarted agent knows every desired pack from its own store.
    t_restart = int(time.time() * 1000)
    victim.start(extra=extra, env=env(victim))
    victim.wait_socket()
    check("a restarted agent knows the desired packs at once",
          set(ls(lab, victim)) == set(ls(lab, a0)),
          "%d of %d" % (len(ls(lab, victim)), len(ls(lab, a0))))

    # What its hook left running (kill -9 does not stop pack processes)
    # is checked if it owns it again, stopped if not: each pack runs on
    # its owners only.
    def steady():
        want = {(p, o) for p, v in ls(lab, a0).items() for o in v["owners"]}
        return running(hook_lines(log)) == want
    check("after the restart every pack runs on its owners only",
          lab.wait(steady, 30) is not None)
    # It placed nothing before it had heard from the mesh (alone, it would
    # own and start every pack).
    owned = {p for p, v in ls(lab, a0).items() if victim.name in v["owners"]}
    extra_starts = [p for ms, act, p, n in hook_lines(log)
                    if ms >= t_restart and n == victim.name and
                    act == "start" and p not in owned]
    check("the restarted agent started no pack it does not own",
          not extra_starts, str(extra_starts))

    # Remove: every owner stops it.
    live = [a for a in lab.agents if a.alive()]
    out = ctl(lab, live[0], "pack", "rm", "web")
    check("pack rm answers", out.returncode == 0, out.stdout + out.stderr)
    names = {a.name for a in live}
    check("removed pack stopped on every live owner",
          lab.wait(lambda: not any(p == "web" and n in names for p, n in
                                   running(hook_lines(log))), 20)
          is not None)
    check("removed pack gone from every view",
          lab.wait(lambda: all("web" not in ls(lab, a) for a in live), 10)
          is not None)


if __name__ == "__main__":
    sys.exit(main())
