#!/usr/bin/env python3
"""make demo: five agents form a mesh on loopback; one is killed and every
other marks it dead; it restarts and is alive again at a higher
incarnation; then all leave. Everything stops by itself."""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "proc"))
import meshlab  # noqa: E402


def show(lab, agent, what):
    print("\n$ meshctl --data-dir %s %s" % (agent.dir, what), flush=True)
    subprocess.run([lab.meshctl, "--data-dir", agent.dir] + what.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build")
    ap.add_argument("--nodes", type=int, default=5)
    args = ap.parse_args()
    with meshlab.Lab(args.bin, args.nodes) as lab:
        print("starting %d agents on 127.0.0.1:%d-%d (data in %s)" %
              (args.nodes, lab.base_port + 1, lab.base_port + args.nodes,
               lab.root))
        packs = os.path.join(lab.root, "packs")
        with open(packs, "w") as f:
            f.write("\n".join(str(i) for i in range(1, 101)) + "\n")
        for a in lab.agents:
            a.start(extra=["--packs", packs])
        for a in lab.agents:
            a.wait_socket()
        t = lab.wait(lambda: lab.converged(args.nodes), 30)
        print("every agent sees %d alive after %.2f s" % (args.nodes, t))
        show(lab, lab.agents[0], "status")
        show(lab, lab.agents[0], "members")
        # A pack the victim holds, to watch it move.
        out = subprocess.run([lab.meshctl, "--data-dir", lab.agents[-1].dir,
                              "packs", "--json"], capture_output=True,
                             text=True)
        pack = json.loads(out.stdout)["packs"][0]
        show(lab, lab.agents[2], "place %d" % pack)

        victim = lab.agents[-1]
        print("\nkill -9 %s (pid %d)" % (victim.name, victim.proc.pid))
        victim.kill9()
        t = lab.wait(lambda: lab.all_see(victim.name, "dead"), 30)
        print("every other agent marks %s dead after %.2f s" %
              (victim.name, t))
        show(lab, lab.agents[0], "members")

        show(lab, lab.agents[2], "place %d" % pack)

        print("\nrestarting %s" % victim.name)
        victim.start(extra=["--packs", packs])
        victim.wait_socket()
        t = lab.wait(lambda: lab.all_see(victim.name, "alive", min_inc=2), 30)
        print("%s is alive again everywhere after %.2f s" % (victim.name, t))
        show(lab, lab.agents[1], "members")

        print("\nall agents leave (SIGTERM)")
        for a in lab.agents:
            a.term()
        print("done: logs were in %s" % lab.root)


if __name__ == "__main__":
    main()
