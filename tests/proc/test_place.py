#!/usr/bin/env python3
"""Process-level test of placement with real agents (issue 5).

Five agents in three zones place the same 200 packs with 3 replicas each:
every agent computes the same owners for a pack; owners are distinct and
spread over zones; every pack is held exactly 3 times across the mesh;
a drained agent ends up with no packs and is never an owner; after a
kill -9 the survivors re-place everything among themselves.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meshlab  # noqa: E402

check = meshlab.Checks()
PACKS = list(range(1000, 1200))
REPLICAS = 3


def ctl(lab, agent, *args):
    out = subprocess.run([lab.meshctl, "--data-dir", agent.dir] + list(args),
                         capture_output=True, text=True)
    return out


def owners(lab, agent, pack):
    out = ctl(lab, agent, "place", str(pack), "--json")
    return [o["name"] for o in json.loads(out.stdout)["owners"]]


def holdings(lab, agents):
    """{pack: number of agents that list it in `meshctl packs`}."""
    count = {}
    for a in agents:
        for p in json.loads(ctl(lab, a, "packs", "--json").stdout)["packs"]:
            count[p] = count.get(p, 0) + 1
    return count


def agree(lab, agents, packs):
    for p in packs:
        if len({tuple(owners(lab, a, p)) for a in agents}) != 1:
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    with meshlab.Lab(args.bin, 5) as lab:
        packs_file = os.path.join(lab.root, "packs")
        with open(packs_file, "w") as f:
            f.write("# test packs\n" + "\n".join(map(str, PACKS)) + "\n")
        extra = ["--packs", packs_file, "--replicas", str(REPLICAS)]
        for a in lab.agents:
            a.start(extra=extra)
        for a in lab.agents:
            a.wait_socket()
        check("converge", lab.wait(lambda: lab.converged(5), 20) is not None)

        sample = PACKS[:20]
        check("all agents compute the same owners",
              lab.wait(lambda: agree(lab, lab.agents, sample), 10)
              is not None)
        zone = {a.name: "z%d" % (a.idx % 3) for a in lab.agents}
        o = owners(lab, lab.agents[0], 1042)
        check("owners distinct and in 3 zones", len(set(o)) == REPLICAS and
              len({zone[n] for n in o}) == 3, str(o))
        h = holdings(lab, lab.agents)
        check("every pack held exactly %d times" % REPLICAS,
              sorted(h) == PACKS and set(h.values()) == {REPLICAS})
        bad = ctl(lab, lab.agents[0], "place", "not-a-number")
        check("place rejects a bad id", bad.returncode != 0 and
              "pack id" in bad.stderr, bad.stderr.strip())

        drained = lab.agents[1]
        out = ctl(lab, drained, "drain")
        check("drain accepted", out.returncode == 0, out.stdout.strip())
        check("status shows draining",
              drained.status()["draining"] is True)
        others = [a for a in lab.agents if a is not drained]
        # The drain is stored: it survives a restart of the agent.
        drained.term()
        drained.start(extra=extra)
        drained.wait_socket()
        check("drain survives a restart", drained.status()["draining"])
        lab.wait(lambda: lab.all_see(drained.name, "alive", min_inc=3), 20)

        def drained_empty():
            mine = json.loads(ctl(lab, drained, "packs", "--json").stdout)
            return (not mine["packs"] and agree(lab, lab.agents, sample) and
                    all(drained.name not in owners(lab, a, p)
                        for a in others for p in sample[:5]))
        check("drained agent holds nothing, owns no pack anywhere",
              lab.wait(drained_empty, 15) is not None)
        h = holdings(lab, others)
        check("after drain, every pack still held %d times" % REPLICAS,
              sorted(h) == PACKS and set(h.values()) == {REPLICAS})

        victim = lab.agents[4]
        victim.kill9()
        live = [a for a in lab.agents if a is not victim]
        check("victim marked dead",
              lab.wait(lambda: lab.all_see(victim.name, "dead"), 30)
              is not None)
        # Three eligible agents remain (one drained, one dead): each pack
        # is on all three.
        h = holdings(lab, live)
        check("after kill, packs re-placed on the survivors",
              sorted(h) == PACKS and set(h.values()) == {REPLICAS} and
              agree(lab, live, sample))

    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
