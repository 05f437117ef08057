#!/usr/bin/env python3
"""Process-level test of tenant state with real agents (issue 11).

Five agents on loopback, RF 3: a tenant is created at one agent and used
from every other; quorum writes survive kill -9 of a replica, which catches
up after its restart (equal digests); a drained replica hands the tenant
over; every operation with another tenant's capability is refused; bad
commands and capabilities get clear errors; a tiny LMDB map fills up with a
clear error while reads go on, and a restart with a larger map takes writes
again; a truncated data file is refused at start.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meshlab  # noqa: E402

check = meshlab.Checks()


ctl = meshlab.ctl


def jctl(lab, agent, *args, cap=None):
    out = ctl(lab, agent, *args, "--json", cap=cap)
    if out.returncode != 0:
        return {"error": out.stderr.strip()}
    return json.loads(out.stdout)


def holders(lab, tenant):
    """{agent name: digest} of the agents holding @tenant as replicas."""
    res = {}
    for a in lab.live():
        for t in jctl(lab, a, "tenant", "ls").get("tenants", []):
            if t["tenant"] == tenant and t["replica"]:
                res[a.name] = t["digest"]
    return res


def converged(lab, tenant, n):
    h = holders(lab, tenant)
    return len(h) == n and len(set(h.values())) == 1


def cap_text(path):
    """The pmcap1 text of a capability file (its cap: line)."""
    with open(path) as f:
        for line in f:
            if line.startswith("cap: "):
                return line[5:].strip()
    return ""


def make_cap(lab, agent, tenant, path):
    out = ctl(lab, agent, "tenant", "create", tenant)
    with open(path, "w") as f:
        f.write(out.stdout)
    return out


class FakeAgent(threading.Thread):
    """An admin socket that reads one request and answers @answer (or
    closes without a word when None): what meshctl sees of an agent that
    timed out or died after taking the request."""

    def __init__(self, path, answer):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.srv.settimeout(10)
        self.answer = answer

    def run(self):
        try:
            c, _ = self.srv.accept()
            c.settimeout(10)
            while not c.recv(4096).endswith(b"\n"):
                pass
            if self.answer is not None:
                c.sendall(self.answer.encode() + b"\0")
            c.close()
        except OSError:
            pass
        self.srv.close()


def check_unsure_create(lab):
    """A create whose fate is unknown keeps its key; a refused one not."""
    for answer, kept in ((None, True),
                         ("error: not enough replicas acknowledged in time "
                          "(MESH_ETIMEDOUT)", True),
                         ("error: tenant already exists (MESH_EEXIST)",
                          False)):
        d = tempfile.mkdtemp(prefix="fake-agent-", dir=lab.root)
        fake = FakeAgent(os.path.join(d, "meshd.sock"), answer)
        fake.start()
        out = subprocess.run([lab.meshctl, "--data-dir", d, "tenant",
                              "create", "zeta"], capture_output=True,
                             text=True, timeout=30)
        fake.join(10)
        has_key = "key: pmkey1." in out.stdout
        check("create answered %s: exit 1, key %s" % (
            answer or "nothing", "kept" if kept else "forgotten"),
            out.returncode == 1 and has_key == kept and
            (("may have been applied" in out.stderr) == kept),
            out.stderr.strip()[:160])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    with meshlab.Lab(args.bin, 5) as lab:
        lab.start_all()
        check("converge", lab.wait(lambda: lab.converged(5), 20) is not None)
        A = lab.agents
        acme = os.path.join(lab.root, "acme.cap")
        out = make_cap(lab, A[0], "acme", acme)
        check("create prints a capability file",
              out.returncode == 0 and "cap: pmcap1." in out.stdout and
              "key: pmkey1." in out.stdout, out.stderr.strip())
        again = ctl(lab, A[3], "tenant", "create", "acme")
        check("a second create is refused",
              again.returncode != 0 and "exists" in again.stderr,
              again.stderr.strip())
        same = ctl(lab, A[3], "tenant", "create", "acme", cap=acme)
        check("a create repeated with the tenant's own key is acknowledged",
              same.returncode == 0 and "key: pmkey1." in same.stdout,
              same.stderr.strip())
        check_unsure_create(lab)

        # Writes at every agent, reads at every agent.
        for i, a in enumerate(A):
            r = jctl(lab, a, "tenant", "put", "acme", "k%d" % i, "v%d" % i,
                     "--ack", "quorum", cap=acme)
            check("put at %s acked by a quorum" % a.name,
                  r.get("ok") and r["acks"] >= 2 and len(r["replicas"]) == 3,
                  str(r))
        r = jctl(lab, A[4], "tenant", "get", "acme", "k0", cap=acme)
        check("get anywhere sees a write made elsewhere",
              r.get("values") == ["v0"], str(r))
        for a in A:
            ctl(lab, a, "tenant", "inc", "acme", "hits", "2", cap=acme)
        r = jctl(lab, A[2], "tenant", "get", "acme", "hits", cap=acme)
        check("counter sums increments from every agent",
              r.get("value") == 10, str(r))
        r = jctl(lab, A[1], "tenant", "put", "acme", "owner", "ann", "--lww",
                 "--ack", "all", cap=acme)
        r = jctl(lab, A[3], "tenant", "get", "acme", "owner", cap=acme)
        check("put --lww reads back as an lww register",
              r.get("kind") == "lww" and r.get("values") == ["ann"], str(r))
        jctl(lab, A[2], "tenant", "put", "acme", "colour", "red", "--map",
             "prefs", "--ack", "all", cap=acme)
        r = jctl(lab, A[4], "tenant", "get", "acme", "colour", "--map",
                 "prefs", cap=acme)
        k = jctl(lab, A[0], "tenant", "keys", "acme", "--map", "prefs",
                 cap=acme)
        check("keys in a nested map", r.get("values") == ["red"] and
              k.get("keys") == ["colour"], "%s %s" % (r, k))
        check("replicas converge (equal digests)",
              lab.wait(lambda: converged(lab, "acme", 3), 15) is not None,
              str(holders(lab, "acme")))

        # Kill -9 a replica: quorum writes go on; it catches up on restart.
        reps = r["replicas"]
        victim = next(a for a in A if a.name == reps[0])
        others = [a for a in A if a is not victim]
        victim.kill9()
        acked = []
        for i in range(20):
            a = others[i % len(others)]
            w = jctl(lab, a, "tenant", "put", "acme", "q%d" % i, "x%d" % i,
                     "--ack", "quorum", cap=acme)
            if w.get("ok"):
                acked.append(i)
        check("quorum writes succeed with one replica down",
              len(acked) == 20, "%d of 20" % len(acked))
        victim.start()
        victim.wait_socket()
        check("restarted replica catches up (equal digests)",
              lab.wait(lambda: converged(lab, "acme", 3), 30) is not None,
              str(holders(lab, "acme")))
        lost = [i for i in acked
                if jctl(lab, victim, "tenant", "get", "acme", "q%d" % i,
                        cap=acme).get("values") != ["x%d" % i]]
        check("no quorum-acked write lost", not lost, str(lost))

        # Isolation: another tenant's capability opens nothing of acme.
        globex = os.path.join(lab.root, "globex.cap")
        make_cap(lab, A[1], "globex", globex)
        jctl(lab, A[1], "tenant", "put", "globex", "g", "globex-only",
             "--ack", "all", cap=globex)
        # Straight to the admin socket: meshctl itself already refuses a
        # capability of another tenant, the agent must too.
        gtext = cap_text(globex)
        ops = [("get", "acme", "k0"), ("put", "acme", "k0", "evil"),
               ("inc", "acme", "hits"), ("add", "acme", "s", "e"),
               ("rm", "acme", "k0"), ("keys", "acme"), ("digest", "acme")]
        leaks = []
        for a in A:
            for op in ops:
                ans = meshlab.ask(a.dir, ["tenant"] + list(op) +
                                  ["--cap", gtext, "--json"])
                if not ans.startswith("error: capability is for another "
                                      "tenant"):
                    leaks.append((a.name, op[0], ans[:60]))
        check("every operation with globex's capability on acme refused "
              "by every agent", not leaks, str(leaks[:3]))
        o = ctl(lab, A[0], "tenant", "get", "acme", "k0", cap=globex)
        check("meshctl refuses it too", o.returncode != 0, o.stderr.strip())
        r = jctl(lab, A[0], "tenant", "get", "acme", "k0", cap=acme)
        check("acme's data untouched", r.get("values") == ["v0"], str(r))

        # Read-only grant, expiry, bad input.
        ro = os.path.join(lab.root, "ro.cap")
        g = subprocess.run([lab.meshctl, "tenant", "grant", "acme",
                            "--rights", "read", "--ttl", "1h", "--cap", acme],
                           capture_output=True, text=True)
        with open(ro, "w") as f:
            f.write(g.stdout)
        check("grant derives a read-only capability", g.returncode == 0,
              g.stderr.strip())
        check("read-only capability reads",
              ctl(lab, A[2], "tenant", "get", "acme", "k1",
                  cap=ro).returncode == 0)
        w = ctl(lab, A[2], "tenant", "put", "acme", "k1", "no", cap=ro)
        check("read-only capability cannot write",
              w.returncode != 0 and "lacks write" in w.stderr,
              w.stderr.strip())
        nocap = ctl(lab, A[0], "tenant", "get", "acme", "k0")
        check("no capability: clear error",
              nocap.returncode != 0 and "capability" in nocap.stderr,
              nocap.stderr.strip())
        junk = meshlab.ask(A[0].dir, ["tenant", "get", "acme", "k0",
                                      "--cap", "pmcap1.!!!"])
        check("garbage capability text refused",
              junk.startswith("error:"), junk.strip())
        bad = meshlab.ask(A[0].dir, ["tenant", "put", "acme"])
        check("missing arguments refused",
              bad.startswith("error: bad arguments"), bad.strip())
        bad = meshlab.ask(A[0].dir, ["tenant", "get", "no such tenant!",
                                     "k", "--cap", cap_text(acme)])
        check("bad tenant id refused", bad.startswith("error:"), bad.strip())
        binary = bytes(range(1, 256))
        key_b = b"bin\x00key"
        # --ack all: read-your-write at another node needs every replica
        # to hold it (with the default --ack one it is a race).
        w = meshlab.ask(A[3].dir, ["tenant", "put", "acme", key_b, binary,
                                   "--ack", "all", "--cap", cap_text(acme),
                                   "--json"])
        r = meshlab.ask(A[4].dir, ["tenant", "get", "acme", key_b,
                                   "--cap", cap_text(acme), "--json"])
        check("binary keys and values round-trip",
              w.startswith("{") and
              json.loads(r).get("values", [None])[0] ==
              binary.decode("latin-1"), r[:80])

        # Drain a replica: the tenant moves, nothing is lost.
        reps = jctl(lab, A[0], "tenant", "digest", "acme",
                    cap=acme)["replicas"]
        drained = next(a for a in A if a.name == reps[1])
        ctl(lab, drained, "drain")
        check("after drain, three other replicas converge",
              lab.wait(lambda: converged(lab, "acme", 3) and
                       drained.name not in holders(lab, "acme"), 30)
              is not None, str(holders(lab, "acme")))
        check("drained node handed the tenant over and dropped it",
              lab.wait(lambda: not any(
                  t["tenant"] == "acme" for t in
                  jctl(lab, drained, "tenant", "ls")["tenants"]), 20)
              is not None)
        r = jctl(lab, A[0], "tenant", "get", "acme", "q7", cap=acme)
        check("data intact after handoff", r.get("values") == ["x7"], str(r))

    # An unlucky operator: a tiny map fills up; a bigger one fixes it.
    with meshlab.Lab(args.bin, 1) as lab:
        a = lab.agents[0]
        a.start(join=[], extra=["--tenant-replicas", "1",
                                "--store-max-mb", "1"])
        a.wait_socket()
        cap = os.path.join(lab.root, "t.cap")
        make_cap(lab, a, "full", cap)
        big = "x" * 60000
        err = None
        for i in range(100):
            o = ctl(lab, a, "tenant", "put", "full", "k%d" % i, big, cap=cap)
            if o.returncode != 0:
                err = o.stderr.strip()
                break
        check("full map: clear error", err is not None and
              "store is full" in err, str(err))
        r = ctl(lab, a, "tenant", "get", "full", "k0", cap=cap)
        check("full map: reads go on", r.returncode == 0 and
              r.stdout.strip() == big)
        check("full map: the agent is still alive", a.alive())
        a.term()
        a.start(join=[], extra=["--tenant-replicas", "1",
                                "--store-max-mb", "64"])
        a.wait_socket()
        o = ctl(lab, a, "tenant", "put", "full", "more", big, cap=cap)
        check("bigger map on restart takes writes", o.returncode == 0,
              o.stderr.strip())
        r = ctl(lab, a, "tenant", "get", "full", "k0", cap=cap)
        check("data survives the restart", r.stdout.strip() == big)
        a.term()
        # A truncated data file is refused with a message, not SIGBUS.
        path = os.path.join(a.dir, "mesh.mdb")
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size // 3)
        a.start(join=[], extra=["--tenant-replicas", "1"])
        try:
            rc = a.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        # docs/storage.md: status 3, the data file is damaged.
        check("truncated data file refused at start",
              rc == 3 and "corrupt" in a.tail(3), "rc=%s %s" % (rc, a.tail(2)))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
