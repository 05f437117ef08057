#!/usr/bin/env python3
"""make demo: five agents form a mesh on loopback; a tenant is created and
written at one agent and read at another; one agent is killed and every
other marks it dead while the tenant stays readable and writable at
quorum; it restarts, is alive again at a higher incarnation and catches up
on the tenant (equal digests); then all leave. Everything stops by
itself."""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "proc"))
import meshlab  # noqa: E402


def show(lab, agent, what, env=None):
    print("\n$ meshctl --data-dir %s %s" % (agent.dir, what), flush=True)
    subprocess.run([lab.meshctl, "--data-dir", agent.dir] + what.split(),
                   env=env)


def digests(lab, tenant):
    """{agent: digest} of the agents that replicate @tenant."""
    res = {}
    for a in lab.live():
        out = subprocess.run([lab.meshctl, "--data-dir", a.dir, "tenant",
                              "ls", "--json"], capture_output=True, text=True)
        for t in json.loads(out.stdout or "{}").get("tenants", []):
            if t["tenant"] == tenant and t["replica"]:
                res[a.name] = t["digest"]
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build")
    ap.add_argument("--nodes", type=int, default=5)
    args = ap.parse_args()
    with meshlab.Lab(args.bin, args.nodes) as lab:
        print("starting %d agents on 127.0.0.1:%d-%d (data in %s)" %
              (args.nodes, lab.base_port + 1, lab.base_port + args.nodes,
               lab.root))
        for a in lab.agents:
            a.start(extra=["--capacity-mem", "1024"])
        for a in lab.agents:
            a.wait_socket()
        t = lab.wait(lambda: lab.converged(args.nodes), 30)
        print("every agent sees %d alive after %.2f s" % (args.nodes, t))
        show(lab, lab.agents[0], "status")
        show(lab, lab.agents[0], "members")
        # Tenant state: create at one agent, write and read anywhere.
        capfile = os.path.join(lab.root, "demo.cap")
        print("\n$ meshctl --data-dir %s tenant create demo > %s" %
              (lab.agents[0].dir, capfile), flush=True)
        out = subprocess.run([lab.meshctl, "--data-dir", lab.agents[0].dir,
                              "tenant", "create", "demo"],
                             capture_output=True, text=True)
        with open(capfile, "w") as f:
            f.write(out.stdout)
        env = dict(os.environ, MESH_CAP=out.stdout)
        show(lab, lab.agents[1], "tenant put demo greeting hello --ack quorum",
             env)
        show(lab, lab.agents[3], "tenant inc demo visits 3", env)
        show(lab, lab.agents[2], "tenant get demo greeting --json", env)

        # Packs: declared once, at any agent; every agent agrees on owners.
        show(lab, lab.agents[0], "pack add web --mem 256 --replicas 2")
        show(lab, lab.agents[1], "pack add batch --mem 512")
        show(lab, lab.agents[4], "pack add huge --mem 4096")
        lab.wait(lambda: "huge" in subprocess.run(
            [lab.meshctl, "--data-dir", lab.agents[3].dir, "pack", "ls"],
            capture_output=True, text=True).stdout, 15)
        show(lab, lab.agents[3], "pack ls")

        # The tenant's primary replica is the one we kill; watch the packs
        # move too.
        out = subprocess.run([lab.meshctl, "--data-dir", lab.agents[2].dir,
                              "tenant", "digest", "demo", "--json"],
                             capture_output=True, text=True, env=env)
        primary = json.loads(out.stdout)["replicas"][0]
        victim = next(a for a in lab.agents if a.name == primary)
        show(lab, victim, "packs")
        print("\nkill -9 %s (pid %d)" % (victim.name, victim.proc.pid))
        victim.kill9()
        t = lab.wait(lambda: lab.all_see(victim.name, "dead"), 30)
        print("every other agent marks %s dead after %.2f s" %
              (victim.name, t))
        show(lab, lab.agents[0], "members")

        survivor = next(a for a in lab.agents if a is not victim)
        show(lab, survivor, "pack ls")
        show(lab, survivor, "status")
        others = [a for a in lab.agents if a is not victim]
        show(lab, others[0], "tenant put demo after-kill yes --ack quorum",
             env)
        show(lab, others[1], "tenant get demo visits", env)

        print("\nrestarting %s" % victim.name)
        victim.start(extra=["--capacity-mem", "1024"])
        victim.wait_socket()
        t = lab.wait(lambda: lab.all_see(victim.name, "alive", min_inc=2), 30)
        print("%s is alive again everywhere after %.2f s" % (victim.name, t))
        show(lab, lab.agents[1], "members")
        t = lab.wait(lambda: len(digests(lab, "demo")) == 3 and
                     len(set(digests(lab, "demo").values())) == 1, 30)
        print("\nthe tenant's three replicas hold equal digests after %s s:"
              " %s" % ("%.2f" % t if t is not None else "(not within 30)",
                       digests(lab, "demo")))
        show(lab, victim, "tenant ls")

        print("\nall agents leave (SIGTERM)")
        for a in lab.agents:
            a.term()
        print("done: logs were in %s" % lab.root)


if __name__ == "__main__":
    main()
