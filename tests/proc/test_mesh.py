#!/usr/bin/env python3
"""Process-level test: five real meshd agents on loopback.

Checks, in order: they converge; kill -9 of one makes every other mark it
dead; restarting it brings it back alive with a higher incarnation; hostile
datagrams and frames are dropped and counted and change nothing; an agent
with the wrong key cannot join; meshctl fails clearly with no agent;
a graceful leave is seen as 'left'.
"""
import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402
import meshlab  # noqa: E402

check = meshlab.Checks()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    with meshlab.Lab(args.bin, 5) as lab:
        lab.start_all()
        t = lab.wait(lambda: lab.converged(5), 20)
        check("five agents converge", t is not None,
              "%.2f s" % t if t else "")

        # meshctl text and JSON on a live agent.
        a1 = lab.agents[0]
        out = subprocess.run([lab.meshctl, "--data-dir", a1.dir, "status"],
                             capture_output=True, text=True)
        check("meshctl status text", out.returncode == 0 and
              "incarnation" in out.stdout and "5 alive" in out.stdout,
              out.stdout.splitlines()[0] if out.stdout else out.stderr)
        st = a1.status()
        check("status json has members with fields",
              len(st["members"]) == 5 and all(
                  {"name", "addr", "state", "incarnation"} <= set(m)
                  for m in st["members"]) and len(st["id"]) == 16)

        # kill -9 one agent: every other marks it dead.
        victim = lab.agents[3]
        inc_before = a1.members()[victim.name]["incarnation"]
        victim.kill9()
        t = lab.wait(lambda: lab.all_see(victim.name, "dead"), 30)
        check("kill -9 -> all others mark it dead", t is not None,
              "%.2f s" % t if t else "")

        # Restart it: alive again, higher incarnation, everywhere.
        victim.start()
        victim.wait_socket()
        t = lab.wait(lambda: lab.all_see(victim.name, "alive",
                                         min_inc=inc_before + 1), 30)
        check("restart -> alive with higher incarnation", t is not None,
              "%.2f s" % t if t else "")

        # Hostile input to agent 2, over UDP and TCP.
        a2 = lab.agents[1]
        before = a2.status()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Too short to be sealed; sealed-looking garbage (version byte 1)
        # that no key opens; an unknown sealing version.
        for payload in (b"x" * 10, b"\x01" + os.urandom(200),
                        b"\x01" + os.urandom(90), b"\x07" + os.urandom(60)):
            u.sendto(payload, ("127.0.0.1", a2.port))
        u.close()
        for frame in (b"\xff\xff\xff\xff", (100).to_bytes(4, "big") +
                      b"\x01" + os.urandom(99), (5).to_bytes(4, "big") + b"short"):
            c = socket.create_connection(("127.0.0.1", a2.port), timeout=2)
            c.sendall(frame)
            try:
                c.recv(10)
            except OSError:
                pass
            c.close()
        # Sealed with the right key but wrong inside: an unknown protocol
        # major, a body that is not protobuf, a stream frame of that major.
        key = hostile.read_primary_key(lab.keyring)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(hostile.seal(key, hostile.ping_packet(hostile.PROTOCOL_UNKNOWN, a2.name)),
                 ("127.0.0.1", a2.port))
        u.sendto(hostile.seal(key, b"\xff\xff\xff\xff garbage"),
                 ("127.0.0.1", a2.port))
        # The control: the same ping at our version is answered.
        u.settimeout(2)
        u.sendto(hostile.seal(key, hostile.ping_packet(hostile.PROTOCOL, a2.name)),
                 ("127.0.0.1", a2.port))
        try:
            # More than the 29 bytes of a version-2 seal: an ack inside.
            answered = len(u.recvfrom(2048)[0]) > 29
        except OSError:
            answered = False
        u.close()
        c = socket.create_connection(("127.0.0.1", a2.port), timeout=2)
        c.sendall(hostile.frame(hostile.seal(key, hostile.push_pull(
            hostile.PROTOCOL_UNKNOWN, "intruder"))))
        try:
            c.recv(10)
        except OSError:
            pass
        c.close()
        time.sleep(0.5)
        after = a2.status()
        d0, d1 = before["dropped"], after["dropped"]
        check("garbage datagrams counted as wrong key",
              d1["wrong_key"] - d0["wrong_key"] >= 2, str(d1))
        check("truncated datagram/frame counted",
              d1["truncated"] - d0["truncated"] >= 2, str(d1))
        check("unknown seal version counted",
              d1["seal_version"] - d0["seal_version"] >= 1, str(d1))
        check("oversize frame counted",
              d1["oversize"] - d0["oversize"] >= 1, str(d1))
        check("sealed ping of our version is answered (control)", answered)
        check("sealed unknown protocol major (datagram, frame) counted",
              d1["protocol_version"] - d0["protocol_version"] >= 2, str(d1))
        check("sealed non-protobuf datagram counted as malformed",
              d1["malformed"] - d0["malformed"] >= 1, str(d1))
        # (A transient suspicion on a loaded machine is not the input's
        # doing; a new, dead or left member, or our refutation, would be.)
        names0 = sorted(m["name"] for m in before["members"])
        names1 = sorted(m["name"] for m in after["members"])
        check("hostile input changed no membership",
              a2.alive() and names0 == names1 and
              after["counts"]["dead"] == 0 and after["counts"]["left"] == 0
              and after["incarnation"] == before["incarnation"],
              "counts %s inc %d -> %d" % (after["counts"],
                                          before["incarnation"],
                                          after["incarnation"]))

        # An agent with another key cannot join.
        stranger = meshlab.Agent(lab, 9)
        stranger.keyring = os.path.join(lab.root, "other-keyring")
        lab.make_keyring(stranger.keyring)
        stranger.start(join=[a1.addr])
        stranger.wait_socket()
        time.sleep(5)
        sst = stranger.status()
        seen = any(stranger.name in a.members() for a in lab.live()
                   if a is not stranger)
        check("wrong key cannot join", sst["counts"]["alive"] == 1 and
              not sst["joined"] and not seen,
              "stranger sees %d alive" % sst["counts"]["alive"])
        check("wrong-key traffic counted by the seed",
              a1.status()["dropped"]["wrong_key"] > 0)
        stranger.term()

        # meshctl with no agent: one-line error, non-zero exit.
        out = subprocess.run([lab.meshctl, "--data-dir",
                              os.path.join(lab.root, "nothing"), "status"],
                             capture_output=True, text=True)
        check("meshctl without agent fails clearly",
              out.returncode != 0 and "no agent running" in out.stderr and
              len(out.stderr.strip().splitlines()) == 1, out.stderr.strip())
        out = subprocess.run([lab.meshctl, "--data-dir", a1.dir, "bogus"],
                             capture_output=True, text=True)
        check("meshctl rejects an unknown command", out.returncode == 2)

        # Graceful leave via meshctl.
        leaver = lab.agents[4]
        out = subprocess.run([lab.meshctl, "--data-dir", leaver.dir,
                              "leave"], capture_output=True, text=True)
        leaver.proc.wait(10)
        t = lab.wait(lambda: lab.all_see(leaver.name, "left"), 15)
        check("leave -> others mark it left", out.returncode == 0 and
              t is not None and leaver.proc.returncode == 0)
        susp = sum(a.status()["swim"]["suspicions"] for a in lab.live())
        print("info: suspicions raised during the run: %d" % susp)

    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
