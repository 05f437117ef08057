"""meshlab: start, query, kill and restart real meshd agents on loopback.

Shared by the process tests (tests/proc), the benchmark (bench/) and the
demo (scripts/demo.py). Agents listen on 127.0.0.1 only; every process it
starts is stopped by its PID when the lab is closed.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (\w+)\s+(.*)$")


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
            return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_base(n, lo=10000, hi=None):
    """A base port such that base+1..base+n are free for UDP and TCP.

    The range stays below the kernel's ephemeral ports: an outgoing
    connection of one agent could otherwise take the port a killed agent
    needs back when it restarts."""
    import random
    if hi is None:
        hi = min(ephemeral_range()[0], 32768)
    rnd = random.Random(os.getpid() ^ int(time.time()))
    for _ in range(200):
        base = rnd.randrange(lo, hi - n - 1)
        ok = True
        for p in range(base + 1, base + n + 1):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                finally:
                    s.close()
                if not ok:
                    break
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError("no free port range")


def encode_token(b):
    """Percent-encodes one admin token (bytes or str): bytes outside
    0x21..0x7e and '%' become %XX (agent/io/admin.h)."""
    if isinstance(b, str):
        b = b.encode()
    return "".join(chr(c) if 0x21 <= c <= 0x7e and c != 0x25 else "%%%02X" % c
                   for c in b)


def ask(data_dir, line, timeout=5.0):
    """Sends one admin command; returns the answer text.

    @line is the request line (tokens already encoded, as typed), or a
    list of raw tokens (str or bytes) to encode. The answer ends at the
    NUL byte the agent writes after it, or when the agent closes."""
    if isinstance(line, (list, tuple)):
        line = " ".join(encode_token(t) for t in line)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(os.path.join(data_dir, "meshd.sock"))
        s.sendall((line + "\n").encode())
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            nul = b.find(b"\0")
            if nul >= 0:
                chunks.append(b[:nul])
                break
            chunks.append(b)
    finally:
        s.close()
    return b"".join(chunks).decode()


def ctl(lab, agent, *args, cap=None):
    """Runs meshctl against @agent with @args (and --cap @cap), without a
    MESH_CAP from our environment; returns the CompletedProcess."""
    env = dict(os.environ)
    env.pop("MESH_CAP", None)
    cmd = [lab.meshctl, "--data-dir", agent.dir] + list(args)
    if cap:
        cmd += ["--cap", cap]
    return subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=30)


def log_time(ts):
    """Seconds since the epoch of a meshd log timestamp (UTC)."""
    import calendar
    base, ms = ts.split(".")
    t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return t + int(ms) / 1000.0


class Checks:
    """Named pass/fail checks that print as they go and end with the
    'N passed, N failed' line test runners read."""

    def __init__(self):
        self.results = []

    def __call__(self, name, cond, detail=""):
        self.results.append((name, bool(cond)))
        print("%s %s%s" % ("ok  " if cond else "FAIL", name,
                           (": " + detail) if detail else ""), flush=True)
        return cond

    def summary(self):
        """Prints the summary line; returns the process exit code."""
        failed = sum(1 for _, ok in self.results if not ok)
        print("%d passed, %d failed" % (len(self.results) - failed, failed))
        return 1 if failed else 0


class Agent:
    def __init__(self, lab, idx):
        self.lab = lab
        self.idx = idx
        self.name = "n%d" % idx
        self.port = lab.base_port + idx
        self.addr = "127.0.0.1:%d" % self.port
        self.dir = os.path.join(lab.root, self.name)
        self.log = os.path.join(lab.root, self.name + ".log")
        self.proc = None
        self.keyring = lab.keyring

    def start(self, join=None, extra=(), env=None):
        join = self.lab.seeds() if join is None else join
        args = [self.lab.meshd, "--name", self.name, "--bind", self.addr,
                "--data-dir", self.dir, "--keyring", self.keyring,
                "--zone", "z%d" % (self.idx % 3),
                "--region", "r%d" % (self.idx % 2), "--cell", "c1"]
        if join:
            args += ["--join", ",".join(join)]
        args += list(extra)
        self.logf = open(self.log, "a")
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        self.proc = subprocess.Popen(args, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=full_env)
        self.lab.started.append(self.proc)
        return self

    def wait_socket(self, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.name,
                                                      self.tail()))
            try:
                self.status()
                return
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("%s: admin socket not up" % self.name)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def status(self):
        return json.loads(ask(self.dir, "status --json"))

    def members(self):
        """{name: member dict} as this agent sees them."""
        st = self.status()
        return {m["name"]: m for m in st["members"]}

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return time.time()

    def term(self, timeout=10.0):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_s(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick

    def log_lines(self):
        out = []
        try:
            with open(self.log) as f:
                for line in f:
                    m = LOG_RE.match(line.rstrip("\n"))
                    if m:
                        out.append((log_time(m.group(1)), m.group(2),
                                    m.group(3)))
        except FileNotFoundError:
            pass
        return out

    def tail(self, n=5):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except FileNotFoundError:
            return ""


class Lab:
    """N agents named n1..nN on 127.0.0.1, the first three are seeds."""

    def __init__(self, bin_dir, n, root=None, keep=False):
        self.meshd = os.path.join(bin_dir, "meshd")
        self.meshctl = os.path.join(bin_dir, "meshctl")
        for b in (self.meshd, self.meshctl):
            if not os.access(b, os.X_OK):
                raise RuntimeError("missing %s: build first" % b)
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="meshlab-")
        os.makedirs(self.root, exist_ok=True)
        self.keep = keep
        self.base_port = free_port_base(n + 4)
        self.keyring = os.path.join(self.root, "keyring")
        self.make_keyring(self.keyring)
        self.started = []
        self.agents = [Agent(self, i) for i in range(1, n + 1)]

    def make_keyring(self, path):
        text = subprocess.run([self.meshctl, "keygen"], check=True,
                              capture_output=True, text=True).stdout
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)

    def seeds(self):
        return [a.addr for a in self.agents[:3]]

    def start_all(self):
        for a in self.agents:
            a.start()
        for a in self.agents:
            a.wait_socket()

    def live(self):
        return [a for a in self.agents if a.alive()]

    def wait(self, pred, timeout, step=0.1):
        """Polls pred() until true; returns seconds taken or None."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                if pred():
                    return time.time() - t0
            except (OSError, ValueError):
                pass
            time.sleep(step)
        return None

    def all_see(self, name, state, agents=None, min_inc=0):
        for a in agents or self.live():
            if a.name == name:
                continue
            m = a.members().get(name)
            if m is None or m["state"] != state or m["incarnation"] < min_inc:
                return False
        return True

    def converged(self, n_alive):
        for a in self.live():
            st = a.status()
            if st["counts"]["alive"] != n_alive:
                return False
        return True

    def close(self):
        for p in self.started:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        for a in self.agents:
            if getattr(a, "logf", None):
                a.logf.close()
        if self.own_root and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
