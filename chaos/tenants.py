"""tenants: a tenant workload for the chaos lab, and the checks after it.

A scenario with a line `tenants N [writers W] [rate R]` gets:

  setup    before t=0, on the healthy mesh: `meshctl tenant create tI
           --json` for I = 1..N at a running agent. The capabilities stay
           with the checker (STATE_DIR/caps/tI.cap, gone with `lab down`);
           the replica set the mesh named at creation is what a fault
           target `replica:tI[:K]` means (the K-th, default the first).
  writers  W threads, each with its own seeded PRNG, from t=0 until the
           last fault ends; then they stop by themselves (every request
           has a socket timeout, so they are bounded). About R operations
           a second each, every one at a random running agent through its
           admin socket, with the capability of its tenant:
             put tI kW-S "tI|W-S" [--ack quorum (3/4) | one (1/4)]
             inc tI ctr 1..3      [same split]
             add tI set "tI|W-S"  [same split]
           S counts per writer and tenant, so every tenant has the same
           key names (k1-1, k1-2, ..., ctr, set) and only the value
           prefix "tI|" tells whose a value is: an agent that confused two
           tenants would hand out a value with the wrong prefix.
           Every write is recorded with its answer: acked (ok, acks,
           acked_by, replicas), failed (an "error: " answer, which may
           still say "acknowledged by 1 of 3") or unanswered (the agent
           died under it or the socket timed out): its effect is unknown.
  probe    every PROBE_EVERY_S seconds during the run and once after it:
           with tI's capability, get/put/inc/add/rm/keys/digest on tJ
           (J = I+1, cyclic) at every running agent. Every answer must be
           an error; one that is not counts as a cross-tenant access.

Checks after heal (check()):

  replicas agree  within --tenant-timeout s (default 30): for every
                  tenant, the agents that hold it with replica=true in
                  `tenant ls --json` are min(RF, running agents) and all
                  report one digest. The time it took is printed.
  quorum writes   every put/add/inc acknowledged at quorum is there:
                  `tenant keys` at every running agent lists every acked
                  key; GET of every written key (at agents in turn)
                  returns exactly its value; GET set at every agent holds
                  every acked element; the counter at every agent is >= the
                  sum of quorum-acked incs. Acked-one writes that are gone
                  are reported (a note, not a failure).
  no overcount    every counter <= the sum of all incs tried (acked,
                  failed or unanswered): an inc applied twice is a bug.
  honest acks     no "ok" to a quorum write with fewer acks than a
                  majority of the replicas it names.
  cross-tenant 0  no probe answered with anything but an error, and no
                  value read under tI's name (GET, set, keys) that is not
                  tI's (wrong prefix, or a key nobody wrote to tI).
"""
import json
import os
import random
import socket
import subprocess
import threading
import time

from chaoslab import LabError, ask
import meshlab  # noqa: E402  (on the path through chaoslab)

PROBE_EVERY_S = 5.0
# A write waits at most request_timeout_ms (2 s) for acks in meshd, a
# forwarded one a hop more; 10 s leaves room for a busy loop and still
# bounds a writer stuck on a paused agent.
REQ_TIMEOUT_S = 10.0
# Requests sent down one admin connection at once; answers come back in
# order. Far below ADMIN_PENDING_MAX (4096), so the agent keeps reading.
BATCH = 400
ACK_ONE_SHARE = 0.25


def ask_many(data_dir, reqs, timeout=REQ_TIMEOUT_S):
    """Sends every request (a list of raw tokens each) down one admin
    connection and returns their answers in order; a request that got no
    answer (the agent closed or timed out) has None."""
    out = []
    for i in range(0, len(reqs), BATCH):
        part = reqs[i:i + BATCH]
        text = "".join(" ".join(meshlab.encode_token(t) for t in r) + "\n"
                       for r in part)
        got = []
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(os.path.join(data_dir, "meshd.sock"))
            s.sendall(text.encode())
            s.shutdown(socket.SHUT_WR)
            buf = b""
            while len(got) < len(part):
                b = s.recv(1 << 16)
                if not b:
                    break
                buf += b
                *done, buf = buf.split(b"\0")
                got.extend(x.decode(errors="replace") for x in done)
        except OSError:
            pass
        finally:
            s.close()
        out.extend(got[:len(part)] + [None] * (len(part) - len(got)))
    return out


def answer_json(a):
    """The JSON of a successful answer, or None (error, no answer)."""
    if a is None or a.startswith("error: ") or not a.strip():
        return None
    try:
        return json.loads(a)
    except ValueError:
        return None


def quorum_of(n):
    return n // 2 + 1


class Workload:
    def __init__(self, lab, spec, seed=1, log=print):
        self.lab = lab
        self.n_tenants = spec["tenants"]
        self.n_writers = spec["writers"]
        self.rate = spec["rate"]
        self.seed = seed
        self.log = log
        self.names = ["t%d" % i for i in range(1, self.n_tenants + 1)]
        self.caps = {}        # tenant: capability text (pmcap1...)
        self.placed = {}      # tenant: replicas named at creation
        self.writes = []      # one dict per write (list.append is atomic)
        self.probes = {"sent": 0, "refused": 0, "answered": 0,
                       "unanswered": 0, "leaks": []}
        self.threads = []
        self.halt = threading.Event()
        self.t0 = None
        self.rf = None
        self.figures = {}

    # -- setup -------------------------------------------------------------

    def running(self):
        return [nd for nd in self.lab.nodes() if self.lab.agent_running(nd)]

    @staticmethod
    def _write_cap(path, j):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("cap: %s\nkey: %s\n" % (j["cap"], j["key"]))

    def setup(self, timeout=20.0):
        st = self.lab.load()
        ctl = os.path.join(st["bin"], "meshctl")
        capdir = os.path.join(self.lab.dir, "caps")
        os.makedirs(capdir, mode=0o700, exist_ok=True)
        rnd = random.Random(self.seed)
        for t in self.names:
            end = time.time() + timeout
            why = ""
            path = os.path.join(capdir, t + ".cap")
            retry = []
            while True:
                nd = rnd.choice(self.running())
                p = subprocess.run([ctl, "--data-dir", nd["dir"], "tenant",
                                    "create", t, "--json"] + retry,
                                   capture_output=True, text=True,
                                   timeout=40)
                if p.returncode == 0:
                    break
                why = (p.stderr or p.stdout).strip()
                # A create that may have committed prints its key all the
                # same: retry with it, or the tenant would keep a key
                # nobody holds.
                try:
                    j = json.loads(p.stdout)
                    self._write_cap(path, j)
                    retry = ["--cap", path]
                except ValueError:
                    pass
                if time.time() > end:
                    raise LabError("tenant create %s at %s: %s"
                                   % (t, nd["name"], why))
                time.sleep(0.5)
            j = json.loads(p.stdout)
            self.caps[t] = j["cap"]
            self.placed[t] = j.get("replicas", [])
            self._write_cap(path, j)
        for nd in self.running():
            try:
                self.rf = json.loads(ask(nd["dir"], "status --json",
                                         2.0))["tenants"]["replicas"]
                break
            except (OSError, ValueError, KeyError):
                continue
        if self.rf is None:
            raise LabError("no agent says how many replicas a tenant has")
        self.log("tenants: %s created; replicas %s; RF %d" % (
            " ".join(self.names), "; ".join(
                "%s: %s" % (t, ",".join(self.placed[t]))
                for t in self.names), self.rf))

    def resolve(self, target):
        """`replica:tI[:K]` -> the K-th replica (1-based) the mesh named
        for tI when it was created."""
        parts = target.split(":")
        t = parts[1]
        k = int(parts[2]) if len(parts) > 2 else 1
        reps = self.placed.get(t)
        if not reps or not 1 <= k <= len(reps):
            raise LabError("%s: tenant %s has replicas %s" % (target, t,
                                                               reps))
        return reps[k - 1]

    # -- writers -------------------------------------------------------------

    def start(self, t0, t_stop):
        self.t0 = t0
        for w in range(1, self.n_writers + 1):
            th = threading.Thread(target=self._writer, args=(w, t0, t_stop),
                                  daemon=True)
            th.start()
            self.threads.append(th)
        th = threading.Thread(target=self._prober, args=(t0, t_stop),
                              daemon=True)
        th.start()
        self.threads.append(th)

    def stop(self, timeout=REQ_TIMEOUT_S + 5):
        """Waits for the writers (they stop by themselves at t_stop)."""
        end = time.time() + timeout
        for th in self.threads:
            th.join(max(0.1, end - time.time()))
        self.halt.set()
        for th in self.threads:
            th.join(1)

    def _writer(self, w, t0, t_stop):
        rnd = random.Random(self.seed * 7919 + w)
        seq = {t: 0 for t in self.names}
        period = 1.0 / self.rate
        nxt = max(time.time(), t0)
        while not self.halt.is_set():
            now = time.time()
            if now >= t_stop:
                return
            if now < nxt:
                self.halt.wait(nxt - now)
                continue
            nxt += period * rnd.uniform(0.5, 1.5)
            live = self.running()
            if not live:
                continue
            nd = rnd.choice(live)
            t = rnd.choice(self.names)
            seq[t] += 1
            tag = "%d-%d" % (w, seq[t])
            ack = "one" if rnd.random() < ACK_ONE_SHARE else "quorum"
            r = rnd.random()
            if r < 0.5:
                rec = {"op": "put", "key": "k" + tag, "value": t + "|" + tag}
                toks = ["put", t, rec["key"], rec["value"]]
            elif r < 0.75:
                rec = {"op": "inc", "key": "ctr", "n": rnd.randint(1, 3)}
                toks = ["inc", t, "ctr", str(rec["n"])]
            else:
                rec = {"op": "add", "key": "set", "value": t + "|" + tag}
                toks = ["add", t, "set", rec["value"]]
            rec.update({"w": w, "tenant": t, "ack": ack, "agent": nd["name"],
                        "t": round(time.time() - t0, 3)})
            a = ask_many(nd["dir"], [["tenant"] + toks + [
                "--ack", ack, "--cap", self.caps[t], "--json"]])[0]
            rec["ms"] = round((time.time() - t0 - rec["t"]) * 1000, 1)
            j = answer_json(a)
            if j is not None and j.get("ok"):
                rec.update({"outcome": "acked", "acks": j.get("acks", 0),
                            "acked_by": j.get("acked_by", []),
                            "replicas": j.get("replicas", [])})
            elif a is None or not a.strip():
                rec.update({"outcome": "unanswered"})
            else:
                rec.update({"outcome": "failed", "error": a.strip()[:200]})
            self.writes.append(rec)

    # -- cross-tenant probe --------------------------------------------------

    def probe_once(self):
        """With tI's capability, every operation on tJ at every running
        agent; every answer must be an error."""
        if len(self.names) < 2:
            return
        reqs, what = [], []
        for i, a in enumerate(self.names):
            b = self.names[(i + 1) % len(self.names)]
            cap = self.caps[a]
            for op in (["get", b, "ctr"], ["get", b, "k1-1"],
                       ["put", b, "k1-1", "X|probe"],
                       ["inc", b, "ctr", "1000000"],
                       ["add", b, "set", "X|probe"], ["rm", b, "set"],
                       ["keys", b], ["digest", b]):
                reqs.append(["tenant"] + op + ["--cap", cap, "--json"])
                what.append("%s with %s's capability: %s" % (
                    op[0], a, " ".join(op[1:])))
        for nd in self.running():
            answers = ask_many(nd["dir"], reqs, 5.0)
            for w, ans in zip(what, answers):
                self.probes["sent"] += 1
                if ans is None or not ans.strip():
                    self.probes["unanswered"] += 1
                elif ans.startswith("error: "):
                    self.probes["refused"] += 1
                else:
                    self.probes["answered"] += 1
                    self.probes["leaks"].append("%s at %s: %s" % (
                        w, nd["name"], ans.strip()[:160]))

    def _prober(self, t0, t_stop):
        nxt = t0 + 1.0
        while not self.halt.is_set() and time.time() < t_stop:
            if time.time() >= nxt:
                self.probe_once()
                nxt += PROBE_EVERY_S
            self.halt.wait(min(0.5, max(0.0, t_stop - time.time())))

    # -- checks --------------------------------------------------------------

    def holders(self):
        """{tenant: {agent: (replica, digest)}} from `tenant ls --json` on
        every running agent; None for an agent that did not answer."""
        out = {t: {} for t in self.names}
        silent = []
        for nd in self.running():
            try:
                ls = json.loads(ask(nd["dir"], "tenant ls --json", 2.0))
            except (OSError, ValueError):
                silent.append(nd["name"])
                continue
            for e in ls.get("tenants", []):
                if e["tenant"] in out:
                    out[e["tenant"]][nd["name"]] = (e["replica"],
                                                    e["digest"])
        return out, silent

    def agreement(self):
        """(all agree, {tenant: why not}, {tenant: handoff holders})."""
        h, silent = self.holders()
        want = min(self.rf, len(self.running()))
        bad, handoff = {}, {}
        for t in self.names:
            reps = {a: d for a, (r, d) in h[t].items() if r}
            handoff[t] = sorted(a for a, (r, _) in h[t].items() if not r)
            digests = set(reps.values())
            if silent:
                bad[t] = "no answer from %s" % ",".join(silent)
            elif len(reps) != want or len(digests) != 1:
                bad[t] = "%d replica holders (want %d), digests %s" % (
                    len(reps), want, " ".join(
                        "%s=%s" % (a, reps[a][:8]) for a in sorted(reps)))
        return not bad, bad, handoff

    def check(self, rep, t_last, timeout=30.0):
        """All tenant checks after heal, run once the membership has
        converged again; t_last is when the last fault ended."""
        f = self.figures
        ws = self.writes
        by = {}
        for w in ws:
            by.setdefault((w["outcome"], w["ack"]), 0)
            by[(w["outcome"], w["ack"])] += 1
        f["writes"] = len(ws)
        f["acked_quorum"] = by.get(("acked", "quorum"), 0)
        f["acked_one"] = by.get(("acked", "one"), 0)
        f["failed"] = sum(v for (o, _), v in by.items() if o == "failed")
        f["unanswered"] = sum(v for (o, _), v in by.items()
                              if o == "unanswered")
        errs = {}
        for w in ws:
            if w["outcome"] == "failed":
                e = w["error"].split(";")[0]
                errs[e] = errs.get(e, 0) + 1
        f["errors"] = dict(sorted(errs.items(), key=lambda x: -x[1])[:5])
        rep.log("tenants: %d tenants, %d writers at %g ops/s: %d writes "
                "(%d acked at quorum, %d acked at one, %d failed, %d "
                "unanswered)" % (self.n_tenants, self.n_writers, self.rate,
                                 f["writes"], f["acked_quorum"],
                                 f["acked_one"], f["failed"],
                                 f["unanswered"]))
        for e, n in f["errors"].items():
            rep.log("  %5d x %s" % (n, e))

        # (a) replicas agree, with a bounded wait.
        start = time.time()
        ok, bad, handoff = False, {}, {}
        while True:
            ok, bad, handoff = self.agreement()
            if ok or time.time() - start > timeout:
                break
            time.sleep(0.5)
        took = time.time() - start
        f["converge_s"] = round(took, 2) if ok else None
        f["converge_after_fault_s"] = (round(time.time() - t_last, 2)
                                       if ok else None)
        left = sum(len(v) for v in handoff.values())
        f["handoff_holders_left"] = left
        rep.add("tenant replicas agree (%d tenants, min(RF=%d, %d running) "
                "holders with replica=true, one digest each)"
                % (self.n_tenants, self.rf, len(self.running())), ok,
                "%.2f s after the mesh converged, %.2f s after the last "
                "fault; %d handoff copies still held" % (
                    took, time.time() - t_last, left) if ok else
                "not within %g s: %s" % (timeout, "; ".join(
                    "%s: %s" % kv for kv in sorted(bad.items()))))

        # (b) read everything back.
        self._read_back(rep)
        # (c) the probe once more on the healed mesh, then the figure.
        self.probe_once()
        p = self.probes
        f["probes"] = {k: v for k, v in p.items() if k != "leaks"}
        f["cross_tenant"] = p["answered"] + len(f["foreign"])
        rep.add("cross-tenant access 0 (probes: %d sent, %d refused, %d "
                "unanswered; %d values read back)" % (
                    p["sent"], p["refused"], p["unanswered"],
                    f["values_read"]),
                f["cross_tenant"] == 0 and p["sent"] > 0,
                "; ".join((p["leaks"] + f["foreign"])[:4]))

    def _read_back(self, rep):
        f = self.figures
        nodes = self.running()
        f["foreign"], f["values_read"] = [], 0
        lost_q, lost_one, wrong, thin = [], [], [], []
        inc_q, inc_all = {}, {}
        for w in self.writes:
            if w["op"] == "inc":
                inc_all[w["tenant"]] = inc_all.get(w["tenant"], 0) + w["n"]
                if w["outcome"] == "acked" and w["ack"] == "quorum":
                    inc_q[w["tenant"]] = inc_q.get(w["tenant"], 0) + w["n"]
            if w["outcome"] != "acked" or w["ack"] != "quorum":
                continue
            if (w["acks"] < quorum_of(len(w["replicas"])) or
                    not set(w["acked_by"]) <= set(w["replicas"])):
                wrong.append("%s %s %s at %s (t=%.1f): ok with %d acks (%s) "
                             "of replicas %s" % (
                                 w["op"], w["tenant"], w["key"], w["agent"],
                                 w["t"], w["acks"], ",".join(w["acked_by"]),
                                 ",".join(w["replicas"])))
            elif w["acks"] < quorum_of(self.rf):
                thin.append(w)

        def foreign(t, where, v):
            f["values_read"] += 1
            if not v.startswith(t + "|"):
                f["foreign"].append("%s: %r under %s" % (where, v, t))

        counters, sets, alike = {}, {}, {}
        ask_fail = []
        for t in self.names:
            cap = self.caps[t]
            written = {w["key"]: w for w in self.writes
                       if w["tenant"] == t and w["op"] == "put"}
            elems = {w["value"]: w for w in self.writes
                     if w["tenant"] == t and w["op"] == "add"}
            # keys, counter and set at every running agent.
            for nd in nodes:
                a = ask_many(nd["dir"], [
                    ["tenant", "keys", t, "--cap", cap, "--json"],
                    ["tenant", "get", t, "ctr", "--cap", cap, "--json"],
                    ["tenant", "get", t, "set", "--cap", cap, "--json"]])
                ks, ctr, st = (answer_json(x) for x in a)
                bad = [x for x, j in zip(a, (ks, ctr, st)) if j is None and
                       (x is None or "no such key" not in x)]
                if bad:
                    ask_fail.append("keys/ctr/set %s at %s: %s" % (
                        t, nd["name"], bad[0]))
                    continue
                keys = set(ks["keys"])
                for k in keys - set(written) - {"ctr", "set"}:
                    f["foreign"].append("keys %s at %s: %r nobody wrote"
                                        % (t, nd["name"], k))
                for k, w in written.items():
                    if k not in keys and w["outcome"] == "acked":
                        (lost_q if w["ack"] == "quorum" else lost_one).append(
                            (nd["name"], w))
                cval = ctr["value"] if ctr is not None else 0
                counters.setdefault(t, []).append((nd["name"], cval))
                vals = set(st["values"]) if st is not None else set()
                for v in vals:
                    foreign(t, "set at %s" % nd["name"], v)
                    if v not in elems:
                        f["foreign"].append("set %s at %s: %r nobody added"
                                            % (t, nd["name"], v))
                for v, w in elems.items():
                    if v not in vals and w["outcome"] == "acked":
                        (lost_q if w["ack"] == "quorum" else lost_one).append(
                            (nd["name"], w))
                sets.setdefault(t, []).append((nd["name"], len(vals)))
                # A replica serves its own reads: what it holds, as seen
                # by a client. Equal digests must mean equal answers.
                if ks.get("served_by") == nd["name"]:
                    alike.setdefault(t, {})[nd["name"]] = (
                        tuple(sorted(keys)), cval, tuple(sorted(vals)))
            # every key tried, read at the agents in turn.
            keys = sorted(written)
            for i, nd in enumerate(nodes):
                mine = keys[i::len(nodes)]
                ans = ask_many(nd["dir"], [
                    ["tenant", "get", t, k, "--cap", cap, "--json"]
                    for k in mine])
                for k, a in zip(mine, ans):
                    w = written[k]
                    j = answer_json(a)
                    if j is None:
                        if a is None or "no such key" not in a:
                            ask_fail.append("get %s %s at %s: %s" % (
                                t, k, nd["name"], a))
                        elif w["outcome"] == "acked":
                            (lost_q if w["ack"] == "quorum"
                             else lost_one).append((nd["name"], w))
                        continue
                    for v in j.get("values", []):
                        foreign(t, "get %s at %s" % (k, nd["name"]), v)
                    # One write ever touched this key: whatever its
                    # outcome, if it is there it holds that one value.
                    if j.get("values") != [w["value"]]:
                        wrong.append("get %s %s at %s: %s, wrote %r" % (
                            t, k, nd["name"], j.get("values"), w["value"]))
        # One lost write counts once, however many agents miss it.
        def uniq(lst):
            seen = {}
            for agent, w in lst:
                seen.setdefault((w["tenant"], w["op"], w["key"],
                                 w.get("value")), (agent, w))
            return list(seen.values())
        lost_q, lost_one = uniq(lost_q), uniq(lost_one)
        low = [(t, a, v) for t, cs in counters.items() for a, v in cs
               if v < inc_q.get(t, 0)]
        high = [(t, a, v, inc_all.get(t, 0)) for t, cs in counters.items()
                for a, v in cs if v > inc_all.get(t, 0)]
        f["counters"] = {t: {"read": dict(counters[t]),
                             "min_read": min(v for _, v in counters[t]),
                             "max_read": max(v for _, v in counters[t]),
                             "acked_quorum": inc_q.get(t, 0),
                             "tried": inc_all.get(t, 0)}
                         for t in counters}
        nq = {op: sum(1 for w in self.writes if w["op"] == op and
                      w["outcome"] == "acked" and w["ack"] == "quorum")
              for op in ("put", "inc", "add")}
        f["lost_quorum"] = len(lost_q) + len(low)
        f["lost_one"] = len(lost_one)
        f["unreadable"] = len(ask_fail)
        detail = ["%s %s %s %s at %s (t=%.1f, acked by %s); missing at %s"
                  % (w["op"], w["tenant"], w["key"], w.get("value", ""),
                     w["agent"], w["t"], ",".join(w["acked_by"]), a)
                  for a, w in lost_q[:3]]
        detail += ["counter %s at %s = %d < %d acked at quorum" % (
            t, a, v, inc_q.get(t, 0)) for t, a, v in low[:2]]
        detail += ask_fail[:2]
        rep.add("every quorum write present (%d puts, %d incs, %d adds; "
                "keys, counter and set read at %d agents)" % (
                    nq["put"], nq["inc"], nq["add"], len(nodes)),
                not lost_q and not low and not ask_fail,
                "; ".join(detail) if detail else
                "counters %s" % ", ".join(
                    "%s=%d..%d (acked %d, tried %d)" % (
                        t, c["min_read"], c["max_read"], c["acked_quorum"],
                        c["tried"]) for t, c in sorted(f["counters"].items())))
        rep.log("note acked-one writes lost: %d of %d%s" % (
            len(lost_one), self.figures["acked_one"], "".join(
                "; %s %s %s at %s (t=%.1f, acked by %s)" % (
                    w["op"], w["tenant"], w["key"], w["agent"], w["t"],
                    ",".join(w["acked_by"])) for _, w in lost_one[:3])))
        differ = []
        for t, reps in sorted(alike.items()):
            if len(set(reps.values())) > 1:
                base = max(set(reps.values()),
                           key=list(reps.values()).count)
                for a, v in sorted(reps.items()):
                    if v != base:
                        differ.append(
                            "%s at %s: %d keys, counter %d, %d elements; "
                            "the other replicas (%s): %d keys, counter %d, "
                            "%d elements" % (
                                t, a, len(v[0]), v[1], len(v[2]),
                                ",".join(x for x in sorted(reps)
                                         if reps[x] == base),
                                len(base[0]), base[1], len(base[2])))
        f["replicas_differ"] = differ
        rep.add("replicas read alike (keys, counter and set served by each "
                "replica itself: %s)" % ", ".join(
                    "%s %d" % (t, len(r)) for t, r in sorted(alike.items())),
                not differ, "; ".join(differ[:3]))
        rep.add("no counter above the incs tried (none applied twice)",
                not high, "; ".join("counter %s at %s = %d > %d tried" % x
                                    for x in high[:3]))
        f["wrong_answers"] = wrong
        rep.add("honest answers (a quorum ok has a majority of the replicas "
                "it names among its acks, and only them; a written key reads "
                "back its one value)", not wrong,
                "%d: %s" % (len(wrong), "; ".join(wrong[:3])) if wrong
                else "")
        # Honest by the answer's own replica set, but a set smaller than
        # RF: a node that sees too few members (say, just restarted and not
        # yet rejoined) takes its own commit as the quorum.
        f["quorum_acked_by_fewer_than_rf_quorum"] = len(thin)
        rep.log("note quorum writes acked with fewer than %d acks (the "
                "agent named fewer than RF=%d replicas): %d%s" % (
                    quorum_of(self.rf), self.rf, len(thin), "".join(
                        "; %s %s at %s t=%.1f replicas %s" % (
                            w["op"], w["tenant"], w["agent"], w["t"],
                            ",".join(w["replicas"])) for w in thin[:2])))

    def dump(self, path):
        with open(path, "w") as fh:
            json.dump({"tenants": self.names, "placed": self.placed,
                       "rf": self.rf, "figures": self.figures,
                       "probe_leaks": self.probes["leaks"],
                       "writes": self.writes}, fh, indent=0)
