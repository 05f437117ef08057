#!/usr/bin/env python3
"""Process-level test: an insider who holds the cluster key, against four
real agents on loopback (issue 16, findings 1 and 5).

1. Forged facts about n2 (dead, suspect and left at incarnations n2 never
   signed, left without n2's signature, alive at another address under
   another key) change no view: n2 stays alive, at its incarnation and
   address, on every agent, and each forgery is counted.
2. A push-pull listing 5,000 invented members admits none of them.
3. The insider's own, properly signed record is admitted: the record
   layout above is the agents' own, so the refusals were for the reasons
   counted, not for a garbled record.
4. A death forged at n2's real incarnation costs n2 a refutation, never a
   death on any agent.
5. A rolling restart that ends with the seed, restarted with no one to
   join, re-admits the seed everywhere (it used to stay 'left' for good).
"""
import argparse
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402
import meshlab  # noqa: E402

check = meshlab.Checks()
LOCAL = bytes([127, 0, 0, 1])


def send_udp(key, agent, payload):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(hostile.seal(key, payload), ("127.0.0.1", agent.port))
    u.close()


def send_frame(key, agent, payload):
    c = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
    c.sendall(hostile.frame(hostile.seal(key, payload)))
    c.settimeout(5)
    try:
        c.recv(1 << 20)
    except OSError:
        pass
    c.close()


def died_in_logs(agents, name):
    """Lines where any agent marked @name dead or left."""
    out = []
    for a in agents:
        for _, _, msg in a.log_lines():
            if ("swim: %s " % name) in msg and ("->dead" in msg or
                                                 "->left" in msg):
                out.append("%s: %s" % (a.name, msg))
    return out


def drops(agents):
    total = {}
    for a in agents:
        for k, v in a.status()["dropped"].items():
            total[k] = total.get(k, 0) + v
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    with meshlab.Lab(args.bin, 4) as lab:
        lab.start_all()
        t = lab.wait(lambda: lab.converged(4), 20)
        check("four agents converge", t is not None)
        n1, n2, n3, n4 = lab.agents
        key = hostile.read_primary_key(lab.keyring)
        before = {a.name: a.members()["n2"] for a in (n1, n3, n4)}
        inc2 = n2.status()["incarnation"]
        d0 = drops(lab.agents)

        # 1. Forged facts about n2, to every agent (n2 included).
        mallory = hostile.Identity()
        junk = bytes(64)
        forged = []
        for inc in (2 ** 32 - 1, 2 ** 64 - 1, inc2 + 1):
            for state in (hostile.DEAD, hostile.SUSPECT):
                forged.append(hostile.update("n2", state, inc, frm="n4"))
        forged.append(hostile.update("n2", hostile.LEFT, inc2))
        forged.append(hostile.update("n2", hostile.LEFT, inc2 + 1,
                                     key=mallory.key(), sig=junk))
        elsewhere = n2.port + 100
        forged.append(hostile.update(
            "n2", hostile.ALIVE, inc2 + 5, ip=LOCAL, port=elsewhere,
            key=mallory.key(),
            sig=mallory.sign(hostile.record_bytes("n2", inc2 + 5, LOCAL,
                                                  elsewhere))))
        for a in lab.agents:
            for u in forged:
                send_udp(key, a, hostile.gossip_packet([u]))

        # 2. 5,000 invented members in one push-pull, to n1.
        ghosts = [hostile.update("ghost%d" % i, hostile.ALIVE, 1, ip=LOCAL,
                                 port=20000 + i) for i in range(5000)]
        send_frame(key, n1, hostile.push_pull_members("n3", ghosts))

        time.sleep(3)
        d1 = drops(lab.agents)
        grew = {k: d1.get(k, 0) - d0.get(k, 0) for k in
                ("unseen_incarnation", "bad_signature", "key_conflict")}
        # (2^32 - 1 is below n2's first incarnation, boot 1 << 32: stale.)
        check("accusations beyond what n2 signed dropped and counted",
              grew["unseen_incarnation"] >= 4 * 4, str(grew))
        check("unsigned leave and 5,000 unsigned members counted",
              grew["bad_signature"] >= 4 + 5000, str(grew))
        check("records under another key for n2 counted",
              grew["key_conflict"] >= 2 * 4, str(grew))
        same = True
        id2 = n2.status()["id"]
        for a in (n1, n3, n4):
            m = a.members()["n2"]
            same &= (m["state"] == "alive" and m["id"] == id2 and
                     m["incarnation"] == before[a.name]["incarnation"] and
                     m["addr"] == before[a.name]["addr"])
        check("n2 alive at its incarnation, address and key everywhere",
              same and n2.status()["incarnation"] == inc2,
              "n2 inc %d -> %d" % (inc2, n2.status()["incarnation"]))
        check("no agent marked n2 dead or left",
              not died_in_logs(lab.agents, "n2"),
              "; ".join(died_in_logs(lab.agents, "n2"))[:300])
        counts = [a.status()["counts"] for a in lab.agents]
        check("no invented member admitted",
              all(sum(c.values()) == 4 for c in counts), str(counts))

        # 3. The insider's own record, signed with its own key: admitted.
        # (An insider can add itself; nothing answers at its address, so
        # it is suspected and declared dead like any crashed node.)
        port = n4.port + 200
        own = hostile.update("mallory", hostile.ALIVE, 1, ip=LOCAL,
                             port=port, key=mallory.key(),
                             sig=mallory.sign(hostile.record_bytes(
                                 "mallory", 1, LOCAL, port)))
        send_udp(key, n1, hostile.gossip_packet([own]))
        time.sleep(0.5)
        check("a properly signed record is admitted (layout matches)",
              "mallory" in n1.members(), "%d members" % len(n1.members()))

        # 4. A death forged at n2's real incarnation: a refutation only.
        inc2 = n2.status()["incarnation"]
        send_udp(key, n1, hostile.gossip_packet(
            [hostile.update("n2", hostile.DEAD, inc2, frm="n4")]))
        t = lab.wait(lambda: n2.status()["incarnation"] > inc2 and
                     lab.all_see("n2", "alive",
                                 min_inc=n2.status()["incarnation"]), 15)
        check("a death forged at n2's incarnation is refuted", t is not None)
        time.sleep(2)
        check("and n2 was never dead on any agent",
              not died_in_logs(lab.agents, "n2"),
              "; ".join(died_in_logs(lab.agents, "n2"))[:300])

        # 5. Rolling restart ending with the seed, which has no --join.
        for a in (n4, n3, n2):
            a.term()
            a.start(join=[n1.addr])
            a.wait_socket()
            lab.wait(lambda: lab.all_see(a.name, "alive"), 20)
        inc1 = n1.status()["incarnation"]
        n1.term()
        time.sleep(1)
        left = all(x.members()["n1"]["state"] == "left" for x in (n2, n3, n4))
        n1.start(join=[])
        n1.wait_socket()
        t = lab.wait(lambda: lab.all_see("n1", "alive", min_inc=inc1 + 1) and
                     n1.status()["counts"]["alive"] >= 4, 30)
        check("seed restarted alone is re-admitted (was left: %s)" % left,
              t is not None and left,
              "%.1f s" % t if t else str(n1.status()["counts"]))
    return check.summary()


if __name__ == "__main__":
    random.seed(1)
    sys.exit(main())
