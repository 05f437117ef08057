#!/usr/bin/env python3
"""Process-level test of key handling (issue 16, finding 4).

Five agents on loopback, membership traffic flowing and a light tenant
write load through meshctl. The cluster key is rotated in the documented
three steps (docs/operations.md, "Keys and rotation"): add the new key as
a secondary and reload every agent, make it primary and reload (one agent
by SIGHUP), remove the old key and reload. Over the whole run: no
suspicion raised, no datagram or frame dropped for a wrong key, every
tenant write acked, and the same PIDs (no restart).

Then the edges: `meshctl keygen --out` creates the file 0600 and does not
overwrite one; `meshctl keygen > FILE` leaves no readable key; meshd
refuses a 0644 keyring naming the path, the mode and the chmod fix; a
reload of a garbage or loose file keeps the keys in use and answers with
the error and its line; SIGHUP does not end meshd.
"""
import argparse
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meshlab  # noqa: E402

check = meshlab.Checks()


ctl = meshlab.ctl


def keyring_list(lab, agent):
    """The agent's `keyring list --json`; no keys when it cannot answer
    (an agent without the command, or a dead one), so checks fail rather
    than the test."""
    out = ctl(lab, agent, "keyring", "list", "--json")
    try:
        if out.returncode == 0:
            return json.loads(out.stdout)
    except ValueError:
        pass
    return {"keys": [{"fingerprint": "", "opened": 0}] * 2, "reloads": -1,
            "error": out.stderr.strip()}


def keys_of(path):
    with open(path) as f:
        return [ln.strip() for ln in f
                if ln.strip() and not ln.lstrip().startswith("#")]


def fingerprint(key_b64):
    import base64
    import hashlib
    raw = base64.b64decode(key_b64)
    return hashlib.blake2b(raw, digest_size=32).hexdigest()[:8]


def mode_of(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def keys_in(path):
    try:
        return keys_of(path)
    except OSError:
        return []


def write_keyring(path, keys):
    """Replaces @path at once with a 0600 file of @keys (first: primary),
    as an operator's `install -m 600` or `keygen --force` would."""
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# rotation step\n" + "".join(k + "\n" for k in keys))
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def counters(lab):
    """{name: (suspicions, wrong_key drops, seal_version drops)}."""
    res = {}
    for a in lab.agents:
        try:
            st = a.status()
            res[a.name] = (st["swim"]["suspicions"],
                           st["dropped"]["wrong_key"],
                           st["dropped"]["seal_version"])
        except (OSError, ValueError):
            res[a.name] = (-1, -1, -1)  # not answering: a failed check
    return res


class Writer(threading.Thread):
    """Tenant puts, acked by a quorum, round robin over the agents."""

    def __init__(self, lab, cap):
        super().__init__(daemon=True)
        self.lab, self.cap = lab, cap
        self.ok = self.failed = 0
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            a = self.lab.agents[i % len(self.lab.agents)]
            out = ctl(self.lab, a, "tenant", "put", "load", "k%d" % (i % 50),
                      "v%d" % i, "--ack", "quorum", cap=self.cap)
            if out.returncode == 0:
                self.ok += 1
            else:
                self.failed += 1
                self.errors.append(out.stderr.strip())
            i += 1
            self.stop.wait(0.1)


def rotate(lab, old, new, t_settle):
    """The three steps; returns True when every reload answered well."""
    agents = lab.agents
    fp_old, fp_new = fingerprint(old), fingerprint(new)
    ok = True

    # 1. The new key is accepted everywhere; the old one still seals.
    write_keyring(lab.keyring, [old, new])
    for a in agents:
        out = ctl(lab, a, "keyring", "reload")
        ok &= out.returncode == 0
    lists = [keyring_list(lab, a) for a in agents]
    check("step 1: every agent holds both keys, the old one primary",
          all([k["fingerprint"] for k in kl["keys"]] == [fp_old, fp_new]
              for kl in lists), str([kl["keys"] for kl in lists][:1]))
    time.sleep(t_settle)

    # 2. The new key seals everywhere; the last agent by SIGHUP.
    write_keyring(lab.keyring, [new, old])
    for a in agents[:-1]:
        out = ctl(lab, a, "keyring", "reload")
        ok &= out.returncode == 0 and ("primary " + fp_new) in out.stdout
    last = agents[-1]
    last.proc.send_signal(signal.SIGHUP)
    t = lab.wait(lambda: keyring_list(lab, last)["keys"][0]["fingerprint"]
                 == fp_new, 10)
    check("step 2: SIGHUP reloads the keyring (new key primary at %s)" %
          last.name, t is not None and last.alive(),
          "%.2f s" % t if t is not None else last.tail())
    lists = [keyring_list(lab, a) for a in agents]
    check("step 2: every agent seals with the new key, still opens the old",
          all([k["fingerprint"] for k in kl["keys"]] == [fp_new, fp_old]
              for kl in lists))
    time.sleep(t_settle)
    # Once every agent seals with the new key nothing opens with the old
    # one any more: what an operator checks before step 3.
    before = [keyring_list(lab, a)["keys"][1]["opened"] for a in agents]
    time.sleep(t_settle)
    after = [keyring_list(lab, a)["keys"][1]["opened"] for a in agents]
    new_opened = [keyring_list(lab, a)["keys"][0]["opened"] for a in agents]
    check("step 2 done: the old key opens nothing more, the new key opens "
          "traffic everywhere", before == after and all(new_opened),
          "old %s -> %s, new %s" % (before, after, new_opened))

    # 3. The old key goes.
    write_keyring(lab.keyring, [new])
    for a in agents:
        out = ctl(lab, a, "keyring", "reload")
        ok &= out.returncode == 0 and "1 removed" in out.stdout
    lists = [keyring_list(lab, a) for a in agents]
    check("step 3: every agent holds the new key only",
          all([k["fingerprint"] for k in kl["keys"]] == [fp_new]
              and kl["reloads"] == 3 for kl in lists))
    return ok


def edges(lab, args):
    a1 = lab.agents[0]
    root = lab.root
    old_umask = os.umask(0o022)
    try:
        # keygen --out: 0600 from creation, never overwrites without --force.
        path = os.path.join(root, "gen.keyring")
        out = subprocess.run([lab.meshctl, "keygen", "--out", path],
                             capture_output=True, text=True)
        mode = mode_of(path)
        check("keygen --out creates the keyring with mode 0600",
              out.returncode == 0 and mode == 0o600 and
              len(keys_in(path)) == 1, "mode %s, %s" % (
                  oct(mode) if mode is not None else None,
                  (out.stdout + out.stderr).strip()[:200]))
        first = keys_in(path)
        again = subprocess.run([lab.meshctl, "keygen", "--out", path],
                               capture_output=True, text=True)
        check("keygen --out refuses an existing file",
              again.returncode == 1 and "exists" in again.stderr and
              keys_in(path) == first and first, again.stderr.strip()[:200])
        if mode is not None:
            os.chmod(path, 0o644)
        forced = subprocess.run([lab.meshctl, "keygen", "--out", path,
                                 "--force"], capture_output=True, text=True)
        check("keygen --out --force replaces it, mode 0600",
              forced.returncode == 0 and keys_in(path) != first and
              mode_of(path) == 0o600, forced.stderr.strip()[:200])
        # keygen > FILE under umask 022: the key never sits readable.
        shell = os.path.join(root, "shell.keyring")
        with open(shell, "w") as f:
            r = subprocess.run([lab.meshctl, "keygen"], stdout=f,
                               stderr=subprocess.PIPE, text=True)
        check("keygen > FILE leaves the file 0600 and says so",
              r.returncode == 0 and mode_of(shell) == 0o600 and
              "0600" in r.stderr, r.stderr.strip())
        piped = subprocess.run([lab.meshctl, "keygen"], capture_output=True,
                               text=True)
        check("keygen to a pipe still prints a keyring",
              piped.returncode == 0 and piped.stderr == "" and
              len([ln for ln in piped.stdout.splitlines()
                   if ln and not ln.startswith("#")]) == 1)
    finally:
        os.umask(old_umask)

    # meshd refuses a keyring others may read, naming path, mode and fix.
    loose = os.path.join(root, "loose.keyring")
    with open(loose, "w") as f:
        f.write(open(lab.keyring).read())
    os.chmod(loose, 0o644)
    x = meshlab.Agent(lab, len(lab.agents) + 1)
    x.keyring = loose
    x.start(join=[a1.addr])
    try:
        x.proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    refused = x.proc.poll()
    log = open(x.log).read()
    check("meshd refuses a 0644 keyring with path, mode and chmod fix",
          refused == 1 and loose in log and "0644" in log and
          ("chmod 600 " + loose) in log, "exit %s: %s" % (refused,
                                                          log.strip()[-300:]))
    if refused is None:
        x.proc.kill()
        x.proc.wait()
    x.logf.close()

    # A bad file at reload keeps the keys in use and says why, with line.
    fp = keyring_list(lab, a1)["keys"][0]["fingerprint"]
    good = open(lab.keyring).read()
    write_keyring(lab.keyring, keys_of(lab.keyring) + ["not-a-key!!"])
    out = ctl(lab, a1, "keyring", "reload")
    kl = keyring_list(lab, a1)
    check("reload of a garbage file: error with its line, old keys kept",
          out.returncode == 1 and "line 3" in out.stderr and
          "keeping" in out.stderr and
          [k["fingerprint"] for k in kl["keys"]] == [fp],
          out.stderr.strip())
    os.chmod(lab.keyring, 0o644)
    out = ctl(lab, a1, "keyring", "reload")
    check("reload of a 0644 file is refused with the chmod fix",
          out.returncode == 1 and ("chmod 600 " + lab.keyring) in out.stderr
          and keyring_list(lab, a1)["keys"][0]["fingerprint"] == fp,
          out.stderr.strip())
    with open(lab.keyring, "w") as f:
        f.write(good)
    os.chmod(lab.keyring, 0o600)
    # SIGHUP with a garbage file: logged, agent stays.
    write_keyring(lab.keyring, ["garbage"])
    a2 = lab.agents[1]
    a2.proc.send_signal(signal.SIGHUP)
    t = lab.wait(lambda: any("reload by SIGHUP failed" in m
                             for _, _, m in a2.log_lines()), 5)
    time.sleep(0.5)
    check("SIGHUP with a bad file: logged, agent keeps running and its keys",
          t is not None and a2.alive() and
          keyring_list(lab, a2)["keys"][0]["fingerprint"] == fp,
          a2.tail(2))
    with open(lab.keyring, "w") as f:
        f.write(good)
    os.chmod(lab.keyring, 0o600)
    a2.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check("SIGHUP does not end meshd nor make it leave",
          all(a.alive() for a in lab.agents) and converged_quietly(lab))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds of traffic between rotation steps")
    args = ap.parse_args()
    with meshlab.Lab(args.bin, 5) as lab:
        lab.start_all()
        t = lab.wait(lambda: lab.converged(5), 20)
        check("five agents converge", t is not None,
              "%.2f s" % t if t else "")
        pids = {a.name: a.proc.pid for a in lab.agents}
        cap = os.path.join(lab.root, "load.cap")
        out = ctl(lab, lab.agents[0], "tenant", "create", "load")
        fd = os.open(cap, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(out.stdout)
        check("tenant for the write load", out.returncode == 0,
              out.stderr.strip())
        lab.wait(lambda: ctl(lab, lab.agents[4], "tenant", "put", "load",
                             "warm", "1", "--ack", "quorum",
                             cap=cap).returncode == 0, 15)
        c0 = counters(lab)
        writer = Writer(lab, cap)
        writer.start()
        time.sleep(args.settle)

        old = keys_of(lab.keyring)[0]
        newfile = os.path.join(lab.root, "new.keyring")
        gen = subprocess.run([lab.meshctl, "keygen", "--out", newfile],
                             capture_output=True, text=True)
        check("keygen --out for the new key", gen.returncode == 0,
              gen.stderr.strip()[:200])
        if gen.returncode == 0:
            new = keys_of(newfile)[0]
        else:  # go on with a key from stdout to try the rest
            text = subprocess.run([lab.meshctl, "keygen"],
                                  capture_output=True, text=True).stdout
            new = [ln for ln in text.splitlines()
                   if ln and not ln.startswith("#")][0]
        t0 = time.time()
        ok = rotate(lab, old, new, args.settle)
        check("every reload of the rotation answered without error", ok)
        time.sleep(args.settle)
        writer.stop.set()
        writer.join()
        c1 = counters(lab)
        sus = {n: c1[n][0] - c0[n][0] if c1[n][0] >= 0 else None
               for n in c1}
        wrong = {n: c1[n][1] for n in c1}
        print("rotation: %.1f s, suspicions %s, wrong_key drops %s, "
              "seal_version drops %s, tenant writes %d ok / %d failed" %
              (time.time() - t0, sus, wrong,
               {n: c1[n][2] for n in c1}, writer.ok, writer.failed))
        check("rotation: 0 suspicions raised on every agent",
              all(v == 0 for v in sus.values()), str(sus))
        check("rotation: 0 wrong-key drops on every agent",
              all(v == 0 for v in wrong.values()) and
              all(c1[n][2] == 0 for n in c1), str(wrong))
        check("rotation: every tenant write acked by a quorum",
              writer.ok > 0 and writer.failed == 0,
              "%d ok, %d failed %s" % (writer.ok, writer.failed,
                                       writer.errors[:2]))
        check("rotation: no restart (same PIDs), all five alive",
              {a.name: a.proc.pid for a in lab.agents} == pids and
              all(a.alive() for a in lab.agents) and converged_quietly(lab))

        edges(lab, args)

        c2 = counters(lab)
        check("whole run: 0 suspicions, 0 wrong-key drops, same PIDs",
              all(c2[n][0] == c0[n][0] and c2[n][1] == 0 for n in c2) and
              {a.name: a.proc.pid for a in lab.agents} == pids,
              str(c2))
    return check.summary()


def converged_quietly(lab):
    try:
        return lab.converged(5)
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
