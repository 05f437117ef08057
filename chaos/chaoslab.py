"""chaoslab: N real meshd agents, each in its own network namespace.

Layout of one lab (PREFIX defaults to "pmlab"):

    PREFIX-hub        a namespace holding only the bridge br0 and one veth
                      port pI per node; partitions are nftables rules here
    PREFIX-nI         one namespace per node: lo, eth0 = 198.18.0.I/24,
                      meshd bound to 198.18.0.I:7946; loss and duplication
                      are nftables rules on its output here

Nothing is created in the host's own namespace: no link, no address, no
route, no nftables table. The lab subnet 198.18.0.0/24 (inside the
benchmarking range 198.18.0.0/15) exists only on the veths inside the lab
namespaces, and those namespaces have no route anywhere else, so no packet
can leave the lab.

Everything the lab owns is written to STATE_DIR/state.json *before* it is
made (namespace names, agent PIDs with their start times, helper PIDs), and
every name carries the prefix, so `down` can undo a half-made lab or one
whose controlling script was killed. Processes are stopped only by PID, and
only PIDs that the state file recorded or that live inside the lab's own
namespaces.
"""
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "proc"))
import meshlab  # noqa: E402  (shared admin-socket client)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PREFIX = os.environ.get("CHAOS_PREFIX", "pmlab")
STATE_ROOT = os.environ.get("CHAOS_STATE_DIR", "/tmp/packmesh-chaos")
GOSSIP_PORT = 7946
SUBNET = "198.18.0"  # /24 inside 198.18.0.0/15; node I is SUBNET.I
MAX_NODES = 250      # keeps every node in one /24
SEEDS = 3            # agents 1..3 are everyone's --join list
# Default SWIM protocol period (probe interval) of meshd, see
# agent/core/swim_config.c; the reconvergence bound is counted in these.
PERIOD_MS = 800


class LabError(Exception):
    """A lab step failed; the message says what to do."""


def run(argv, check=True, input=None):
    """Runs a short command; raises LabError with its stderr if it fails."""
    p = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise LabError("%s: %s" % (" ".join(argv), p.stderr.strip()))
    return p


def default_bin():
    return os.environ.get("MESH_BIN") or os.path.join(REPO, "build")


# ---- processes, always by PID ---------------------------------------------

def proc_stat(pid):
    """(state letter, start time in clock ticks) of pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[19])


def proc_is(pid, start):
    """True when pid still is the process we started (not a reused PID)."""
    st = proc_stat(pid) if pid else None
    return st is not None and st[1] == start and st[0] not in "ZX"


def reap(pid):
    """Collects pid's exit status if it is our child, so it leaves no zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def signal_pid(pid, start, sig):
    if proc_is(pid, start):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        return True
    return False


def kill_and_wait(pids, timeout=5.0):
    """SIGKILLs each (pid, start) and waits until all are gone."""
    for pid, start in pids:
        signal_pid(pid, start, signal.SIGKILL)
    end = time.time() + timeout
    while time.time() < end:
        for pid, _ in pids:
            reap(pid)
        if not any(proc_is(p, s) for p, s in pids):
            return True
        time.sleep(0.05)
    return False


# ---- admin socket ----------------------------------------------------------

def ask(data_dir, line, timeout=1.0):
    """One admin command to the agent of @data_dir (meshlab.ask). The socket
    is a path on the host file system, so it is reachable from the host
    namespace although the agent lives in its own network namespace. A
    paused agent accepts the connection but never answers, hence the short
    timeout."""
    return meshlab.ask(data_dir, line, timeout)


def view_of(data_dir, timeout=1.0):
    """{name: member} as the agent on data_dir sees them, or None."""
    try:
        return {m["name"]: m for m in
                json.loads(ask(data_dir, "members --json", timeout))["members"]}
    except (OSError, ValueError, KeyError):
        return None


# ---- the lab ---------------------------------------------------------------

class Lab:
    def __init__(self, prefix=PREFIX, state_root=STATE_ROOT, bin_dir=None):
        if not prefix.replace("-", "").isalnum() or len(prefix) > 12:
            raise LabError("lab prefix must be 1-12 letters, digits or '-'")
        self.prefix = prefix
        self.dir = os.path.join(state_root, prefix)
        self.state_path = os.path.join(self.dir, "state.json")
        self.bin_dir = bin_dir or default_bin()
        self.hub = prefix + "-hub"

    # -- state file: the lab's memory, so a killed script can be cleaned up

    def load(self):
        try:
            with open(self.state_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def save(self, st):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f, indent=1)
        os.replace(tmp, self.state_path)

    @contextlib.contextmanager
    def state(self):
        """Read-modify-write of the state under a lock (lab, run and a
        manual `lab fault` may act on one lab at the same time)."""
        with open(os.path.join(self.dir, "lock"), "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            st = self.load()
            if st is None:
                raise LabError("no lab '%s' is up (run chaos/lab up N)"
                               % self.prefix)
            yield st
            self.save(st)

    def nodes(self):
        st = self.load()
        return st["nodes"] if st else []

    def node(self, name):
        for n in self.nodes():
            if n["name"] == name:
                return n
        raise LabError("no node %s in lab %s" % (name, self.prefix))

    def our_namespaces(self):
        """Lab namespaces that exist now, found by their prefix."""
        out = run(["ip", "netns", "list"], check=False).stdout
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        return [n for n in names if n.startswith(self.prefix + "-")]

    # -- up ----------------------------------------------------------------

    def preflight(self):
        if os.geteuid() != 0:
            raise LabError("the chaos lab needs root: creating network "
                           "namespaces, veths and nftables rules requires "
                           "CAP_SYS_ADMIN and CAP_NET_ADMIN")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise LabError("'%s' is not installed (Debian: apt-get "
                               "install %s)" % (tool, "iproute2" if tool ==
                                                "ip" else "nftables"))
        for b in ("meshd", "meshctl"):
            if not os.access(os.path.join(self.bin_dir, b), os.X_OK):
                raise LabError("missing %s/%s: run `make build` first"
                               % (self.bin_dir, b))

    def up(self, n, extra_args=(), log=print, pack_hook=None):
        """Creates the namespaces, the bridge and n agents; returns seconds
        spent. Raises LabError (after cleaning up) when something fails.

        @pack_hook (or $CHAOS_PACK_HOOK when None): an executable every
        agent gets as `--pack-hook`, with MESH_HOOK_LOG=DIR/nI.hook.log and
        MESH_HOOK_DIR=DIR/nI.hook in its environment (chaos/packs.py reads
        those logs). Without one the agents run as before."""
        if pack_hook is None:
            pack_hook = os.environ.get("CHAOS_PACK_HOOK") or None
        if pack_hook is not None:
            pack_hook = os.path.abspath(pack_hook)
            if not os.access(pack_hook, os.X_OK):
                raise LabError("pack hook %s is not executable" % pack_hook)
        if not 2 <= n <= MAX_NODES:
            raise LabError("N must be between 2 and %d" % MAX_NODES)
        self.preflight()
        if self.load() is not None or self.our_namespaces():
            raise LabError("lab '%s' is already up (or half made): run "
                           "chaos/lab down first" % self.prefix)
        t0 = time.time()
        os.makedirs(self.dir, exist_ok=True)
        nodes = []
        for i in range(1, n + 1):
            name = "n%d" % i
            nodes.append({
                "name": name, "index": i, "ns": "%s-%s" % (self.prefix, name),
                "addr": "%s.%d" % (SUBNET, i), "port": "p%d" % i,
                "dir": os.path.join(self.dir, name),
                "log": os.path.join(self.dir, name + ".log"),
                "pid": 0, "start": 0, "restarts": 0})
        # Written first: from here on `down` knows every name we may make.
        self.save({"prefix": self.prefix, "n": n, "hub": self.hub,
                   "bin": self.bin_dir, "extra_args": list(extra_args),
                   "created": t0, "nodes": nodes, "helpers": [],
                   "faults": [], "next_fault": 1,
                   "pack_hook": pack_hook})
        try:
            self._make_network(nodes, log)
            self._make_keyring()
            for nd in nodes:
                self.start_agent(nd["name"])
        except BaseException:
            self.down(log=lambda *_: None)
            raise
        return time.time() - t0

    def _make_network(self, nodes, log):
        try:
            run(["ip", "netns", "add", self.hub])
        except LabError as e:
            raise LabError("cannot create a network namespace (%s). The "
                           "chaos lab needs root and a kernel with network "
                           "namespaces; it does not skip." % e)
        hub = ["ip", "-n", self.hub]
        run(hub + ["link", "add", "br0", "type", "bridge"])
        run(hub + ["link", "set", "br0", "up"])
        for nd in nodes:
            ns = nd["ns"]
            run(["ip", "netns", "add", ns])
            # The veth is made inside the hub and its peer moved straight
            # into the node namespace: it never appears in the host.
            run(hub + ["link", "add", nd["port"], "type", "veth", "peer",
                       "name", "eth0", "netns", ns])
            run(hub + ["link", "set", nd["port"], "master", "br0", "up"])
            node = ["ip", "-n", ns]
            run(node + ["link", "set", "lo", "up"])
            run(node + ["addr", "add", nd["addr"] + "/24", "dev", "eth0"])
            run(node + ["link", "set", "eth0", "up"])
        log("lab %s: %d namespaces + hub, bridge up" % (self.prefix,
                                                       len(nodes)))

    def _make_keyring(self):
        ctl = os.path.join(self.bin_dir, "meshctl")
        text = run([ctl, "keygen"]).stdout
        path = os.path.join(self.dir, "keyring")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)

    # -- agents --------------------------------------------------------------

    def agent_argv(self, st, nd):
        seeds = ",".join("%s.%d:%d" % (SUBNET, i, GOSSIP_PORT)
                         for i in range(1, min(SEEDS, st["n"]) + 1))
        i = nd["index"]
        return (["ip", "netns", "exec", nd["ns"],
                 os.path.join(st["bin"], "meshd"), "--name", nd["name"],
                 "--bind", "%s:%d" % (nd["addr"], GOSSIP_PORT),
                 "--data-dir", nd["dir"],
                 "--keyring", os.path.join(self.dir, "keyring"),
                 "--join", seeds, "--zone", "z%d" % (i % 3),
                 "--region", "r%d" % (i % 2), "--cell", "c1"]
                + (["--pack-hook", st["pack_hook"]] if st.get("pack_hook")
                   else [])
                + st["extra_args"])

    def hook_log(self, nd):
        """The file the pack hook of node @nd appends its actions to."""
        return os.path.join(self.dir, nd["name"] + ".hook.log")

    def agent_env(self, st, nd):
        """The agent's environment: ours, plus where its pack hook logs."""
        if not st.get("pack_hook"):
            return None
        env = dict(os.environ)
        env["MESH_HOOK_LOG"] = self.hook_log(nd)
        env["MESH_HOOK_DIR"] = os.path.join(self.dir, nd["name"] + ".hook")
        return env

    def start_agent(self, name):
        """Starts (or restarts) one agent; its PID goes into the state."""
        with self.state() as st:
            nd = next(x for x in st["nodes"] if x["name"] == name)
            if proc_is(nd["pid"], nd["start"]):
                return nd["pid"]
            if name in st.get("killed", []):  # no longer killed for good
                st["killed"].remove(name)
            logf = open(nd["log"], "ab")
            # `ip netns exec` execs meshd in place, so the PID is meshd's.
            # A new session keeps the agent out of our terminal's signals.
            p = subprocess.Popen(self.agent_argv(st, nd),
                                 env=self.agent_env(st, nd),
                                 stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT,
                                 start_new_session=True)
            logf.close()
            stat = None
            for _ in range(100):
                stat = proc_stat(p.pid)
                if stat is not None:
                    break
                time.sleep(0.01)
            if stat is None:
                raise LabError("%s exited at once; see %s" % (name, nd["log"]))
            if nd["pid"]:
                nd["restarts"] += 1
            nd["pid"], nd["start"] = p.pid, stat[1]
            return p.pid

    def agent_running(self, nd):
        """Running and not stopped: an agent that can answer."""
        st = proc_stat(nd["pid"]) if nd["pid"] else None
        return st is not None and st[1] == nd["start"] and st[0] not in "ZXT"

    def wait_sockets(self, timeout=20.0):
        end = time.time() + timeout
        pending = {nd["name"]: nd for nd in self.nodes()}
        while pending and time.time() < end:
            for name, nd in list(pending.items()):
                if view_of(nd["dir"], 0.5) is not None:
                    del pending[name]
            time.sleep(0.05)
        if pending:
            raise LabError("agents not answering: %s" % " ".join(
                sorted(pending)))

    # -- helpers (delay relays) ------------------------------------------------

    def start_helper(self, argv, tag):
        """Starts a bounded helper process and records its PID."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.dir, "helpers.log"),
                                         "ab"), start_new_session=True)
        stat = proc_stat(p.pid)
        with self.state() as st:
            st["helpers"].append({"pid": p.pid, "start": stat[1] if stat
                                  else 0, "tag": tag})
        return p

    def stop_helpers(self, tag=None):
        with self.state() as st:
            keep, stop = [], []
            for h in st["helpers"]:
                (stop if tag is None or h["tag"] == tag else keep).append(h)
            st["helpers"] = keep
        for h in stop:
            signal_pid(h["pid"], h["start"], signal.SIGTERM)
        end = time.time() + 3
        while time.time() < end and any(proc_is(h["pid"], h["start"])
                                         for h in stop):
            for h in stop:
                reap(h["pid"])
            time.sleep(0.05)
        kill_and_wait([(h["pid"], h["start"]) for h in stop], 2)

    # -- nftables ------------------------------------------------------------

    def nft(self, ns, script, check=True):
        return run(["ip", "netns", "exec", ns, "nft", "-f", "-"],
                   check=check, input=script)

    # -- heal: undo every fault, whoever made it --------------------------------

    def heal(self, log=print):
        """Undoes all faults: continues paused agents, restarts dead ones,
        removes every fault rule and delay relay. Works without knowing
        which faults were active (e.g. after `chaos/run` was killed)."""
        self.stop_helpers()
        st = self.load()
        hub = ["ip", "-n", self.hub]
        self.nft(self.hub, "delete table bridge %s\n" % self.prefix, False)
        for nd in st["nodes"]:
            self.nft(nd["ns"], "delete table ip %s\n" % self.prefix, False)
            run(hub + ["link", "del", "d%d" % nd["index"]], check=False)
            run(hub + ["link", "set", nd["port"], "master", "br0"],
                check=False)
            signal_pid(nd["pid"], nd["start"], signal.SIGCONT)
            if not proc_is(nd["pid"], nd["start"]):
                reap(nd["pid"])
                self.start_agent(nd["name"])
                log("restarted %s" % nd["name"])
        with self.state() as st:
            st["faults"] = []
            st["killed"] = []

    # -- down ------------------------------------------------------------------

    def down(self, log=print):
        """Removes everything the lab made; safe to repeat. Returns True
        when nothing of the lab is left."""
        st = self.load() or {}
        namespaces = set(self.our_namespaces())
        for nd in st.get("nodes", []):
            namespaces.add(nd["ns"])
        if st:
            namespaces.add(st.get("hub", self.hub))
        existing = set(self.our_namespaces())
        # Processes: those the state recorded, and any process inside one
        # of our own namespaces (the lab started it there; this also finds
        # an agent started after the state file was lost).
        pids = {}
        for nd in st.get("nodes", []):
            if nd.get("pid"):
                pids[nd["pid"]] = nd["start"]
        for h in st.get("helpers", []):
            pids[h["pid"]] = h["start"]
        for ns in existing:
            for line in run(["ip", "netns", "pids", ns],
                            check=False).stdout.split():
                pid = int(line)
                stat = proc_stat(pid)
                if stat:
                    pids[pid] = stat[1]
        live = [(p, s) for p, s in pids.items() if proc_is(p, s)]
        if not kill_and_wait(live, 10):
            log("warning: some lab processes did not exit")
        # Deleting a namespace destroys its veths, bridge and nft tables.
        for ns in sorted(existing, key=lambda x: x == self.hub):
            run(["ip", "netns", "del", ns], check=False)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
        left = self.our_namespaces()
        if left:
            log("warning: namespaces left: %s" % " ".join(left))
        what = "%d processes, %d namespaces" % (len(live), len(existing))
        log("lab %s down: removed %s, state dir %s" % (
            self.prefix, what, "removed" if not os.path.exists(self.dir)
            else "LEFT"))
        return not left and not os.path.exists(self.dir)

    # -- views -------------------------------------------------------------------

    def views(self, timeout=1.0):
        """{agent name: its view or None} of every running agent."""
        out = {}
        for nd in self.nodes():
            if self.agent_running(nd):
                out[nd["name"]] = view_of(nd["dir"], timeout)
        return out
