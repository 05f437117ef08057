"""faults: how each fault is made on this kernel, and how it is undone.

Every fault is an `apply` that returns an undo record and an `undo` that
takes it back; the scenario engine calls undo when the fault's duration is
over, and `chaos/lab heal` / `down` undo everything if the engine died.

    crash      kill -9 of the agent's PID; undo restarts it on the same data
               dir (so it rejoins with a higher incarnation)
    kill       the same kill -9, never undone: the node stays dead to the end
               of the run (the lab state lists it under "killed", so the
               checker does not count it as an agent that died by itself)
    restart    SIGTERM: the agent leaves gracefully (meshd announces its
               leave and exits within 3 s); the engine waits for the exit
               (still_running), kills it after EXIT_MAX_S, and undo starts
               it again on the same data dir
    pause      SIGSTOP; undo SIGCONT
    partition  nftables in the hub namespace, bridge family, forward hook:
               drop IPv4 from every group to every other group (ARP still
               passes, so undo is instant)
    oneway     the same, only from the first group to the second
    loss       nftables in the node's namespace, output hook on eth0:
               `numgen random mod 1000 < P*10 drop` (egress, like netem)
    dup        the same place: `numgen random ... dup to ip daddr device
               eth0` sends a second copy of P % of the packets
    delay      no netem and no nft `queue` on this kernel: the node's hub
               port is taken off the bridge and a user-space relay
               (delaybox.py) is spliced in, holding frames from the node for
               delay +/- jitter ms (uniform); undo kills the relay by PID and
               puts the port back on the bridge

Each fault with rules gets its own nftables chain `fID` in a table named
after the lab, so overlapping faults add up and undo deletes exactly one.
"""
import os
import signal
import sys
import time

from chaoslab import LabError, SUBNET, run, signal_pid, reap, proc_is

# Base chain priorities: drop before duplicating, so a lost packet is not
# copied.
PRIO_LOSS = -10
PRIO_DUP = 0


def _addrs(lab, names):
    return ", ".join(lab.node(n)["addr"] for n in names)


def _nft_chain(lab, ns, family, hook, prio, fid, rules):
    script = ("add table %s %s\n"
              "add chain %s %s f%d { type filter hook %s priority %d; "
              "policy accept; }\n" % (family, lab.prefix, family, lab.prefix,
                                      fid, hook, prio))
    for r in rules:
        script += "add rule %s %s f%d %s\n" % (family, lab.prefix, fid, r)
    lab.nft(ns, script)


def _nft_drop_chain(lab, ns, family, fid):
    lab.nft(ns, "delete chain %s %s f%d\n" % (family, lab.prefix, fid),
            check=False)


def apply(lab, ev, fid, seed=1):
    """Makes fault ev (a parsed scenario event) with id fid; returns the
    record that undo() needs."""
    kind = ev["kind"]
    rec = {"fid": fid, "kind": kind}
    if kind in ("crash", "kill"):
        if kind == "kill":
            with lab.state() as st:
                st.setdefault("killed", [])
                st["killed"] += [x for x in ev["targets"]
                                 if x not in st["killed"]]
        rec["victims"] = []
        for name in ev["targets"]:
            nd = lab.node(name)
            if signal_pid(nd["pid"], nd["start"], signal.SIGKILL):
                rec["victims"].append(name)
                # Reap it if we are its parent so it is seen as gone.
                for _ in range(100):
                    reap(nd["pid"])
                    if not proc_is(nd["pid"], nd["start"]):
                        break
                    time.sleep(0.01)
    elif kind == "pause":
        rec["victims"] = []
        for name in ev["targets"]:
            nd = lab.node(name)
            if signal_pid(nd["pid"], nd["start"], signal.SIGSTOP):
                rec["victims"].append((name, nd["pid"], nd["start"]))
    elif kind == "restart":
        rec["victims"] = []
        for name in ev["targets"]:
            nd = lab.node(name)
            # A paused agent would never act on SIGTERM.
            signal_pid(nd["pid"], nd["start"], signal.SIGCONT)
            signal_pid(nd["pid"], nd["start"], signal.SIGTERM)
            rec["victims"].append((name, nd["pid"], nd["start"]))
    elif kind in ("partition", "oneway"):
        groups = ev["groups"]
        pairs = [(0, 1)] if kind == "oneway" else [
            (i, j) for i in range(len(groups)) for j in range(len(groups))
            if i != j]
        rules = ["ip saddr { %s } ip daddr { %s } drop" % (
            _addrs(lab, groups[i]), _addrs(lab, groups[j])) for i, j in pairs]
        _nft_chain(lab, lab.hub, "bridge", "forward", 0, fid, rules)
    elif kind == "loss":
        for name in ev["targets"]:
            _nft_chain(lab, lab.node(name)["ns"], "ip", "output", PRIO_LOSS,
                       fid, ['oifname "eth0" numgen random mod 1000 < %d drop'
                             % round(ev["pct"] * 10)])
    elif kind == "dup":
        for name in ev["targets"]:
            _nft_chain(lab, lab.node(name)["ns"], "ip", "output", PRIO_DUP,
                       fid, ['oifname "eth0" ip daddr %s.0/24 numgen random '
                             'mod 1000 < %d dup to ip daddr device "eth0"'
                             % (SUBNET, round(ev["pct"] * 10))])
    elif kind == "delay":
        hub = ["ip", "-n", lab.hub]
        box = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "delaybox.py")
        # Every relay first, then every splice: the delay starts on all
        # targets within a moment (one by one it began 6 s late on the
        # last of 24 agents).
        for name in ev["targets"]:
            nd = lab.node(name)
            i = nd["index"]
            relay, bridge_side = "d%d" % i, "q%d" % i
            run(hub + ["link", "add", relay, "type", "veth", "peer", "name",
                       bridge_side])
            run(hub + ["link", "set", relay, "up"])
            lab.start_helper(
                ["ip", "netns", "exec", lab.hub, sys.executable, box,
                 "--node-port", nd["port"], "--relay-port", relay,
                 "--delay-ms", str(ev["delay_ms"]), "--jitter-ms",
                 str(ev["jitter_ms"]), "--seed", str(seed + i),
                 # Bounded: outlives the fault by a margin, then exits even
                 # if nobody undoes it.
                 "--duration", str(ev["dur"] + 5)], "f%d" % fid)
        # The relays must be listening before the ports leave the bridge.
        time.sleep(0.2 + 0.02 * len(ev["targets"]))
        for name in ev["targets"]:
            nd = lab.node(name)
            run(hub + ["link", "set", nd["port"], "nomaster"])
            run(hub + ["link", "set", "q%d" % nd["index"], "master", "br0",
                       "up"])
    else:
        raise LabError("unknown fault kind %s" % kind)
    return rec


def still_running(rec):
    """The targets of a restart that have not exited yet (reaped if they
    have)."""
    left = []
    for name, pid, start in rec["victims"]:
        reap(pid)
        if proc_is(pid, start):
            left.append(name)
    return left


def kill_now(lab, rec):
    """kill -9 of the targets of a restart that did not leave in time."""
    for name, pid, start in rec["victims"]:
        signal_pid(pid, start, signal.SIGKILL)
    for _ in range(100):
        if not still_running(rec):
            return
        time.sleep(0.01)


def undo(lab, ev, rec):
    kind = rec["kind"]
    fid = rec["fid"]
    if kind == "crash":
        for name in rec["victims"]:
            lab.start_agent(name)
    elif kind == "kill":
        pass  # stays dead
    elif kind == "restart":
        for name, _, _ in rec["victims"]:
            lab.start_agent(name)
    elif kind == "pause":
        for name, pid, start in rec["victims"]:
            signal_pid(pid, start, signal.SIGCONT)
    elif kind in ("partition", "oneway"):
        _nft_drop_chain(lab, lab.hub, "bridge", fid)
    elif kind in ("loss", "dup"):
        for name in ev["targets"]:
            _nft_drop_chain(lab, lab.node(name)["ns"], "ip", fid)
    elif kind == "delay":
        hub = ["ip", "-n", lab.hub]
        for name in ev["targets"]:
            nd = lab.node(name)
            run(hub + ["link", "set", nd["port"], "master", "br0"],
                check=False)
            run(hub + ["link", "del", "d%d" % nd["index"]], check=False)
        lab.stop_helpers("f%d" % fid)
