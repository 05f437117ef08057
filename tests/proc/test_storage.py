#!/usr/bin/env python3
"""Process-level test of storage faults (issue 16, finding 3).

Starts a real meshd against data directories damaged as an attacker or an
unlucky operator would: the data file truncated, overwritten in its meta
pages or in the pages of its trees, replaced by something that is not
LMDB; the lock file damaged; the data file or directory read-only; the
data directory a file. Each must end in a named error on stderr and an
exit status, never a signal. A damaged lock file, which holds no data,
must not stop the node. Moving a damaged directory aside must give a
node that starts.

As root it also mounts small tmpfs filesystems: a first start on a full
disk (SIGBUS inside mdb_env_open() before), and a disk that tenant writes
fill while the node runs: tenant writes are refused with MESH_ENOSPC, the
node stays up, and a restart on the full disk still saves a higher
incarnation. Not root: those checks are skipped, with the reason printed.

Storage faults have their own exit statuses (docs/storage.md: 3 damaged,
4 disk full, 5 cannot read or write): each case must end with exactly its
status, never with a signal.
"""
import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meshlab  # noqa: E402

check = meshlab.Checks()

CORRUPT, NOSPC, IO = 3, 4, 5
CLASS_NAME = {CORRUPT: "damaged", NOSPC: "disk full", IO: "I/O"}

# LMDB 0.9's file, 64-bit: a page header of 16 bytes, then MDB_meta.
PG_HDR = 16
META_PSIZE = PG_HDR + 24
META_FREE_ROOT = PG_HDR + 24 + 40
META_MAIN_ROOT = PG_HDR + 72 + 40
META_TXNID = PG_HDR + 128
P_INVALID = 2 ** 64 - 1


class Node:
    """Runs meshd, one start at a time, on one port."""

    def __init__(self, lab, meshd):
        self.lab = lab
        self.meshd = meshd
        self.port = lab.base_port + 1

    def start(self, data_dir, log):
        args = [self.meshd, "--name", "n1", "--bind",
                "127.0.0.1:%d" % self.port, "--data-dir", data_dir,
                "--keyring", self.lab.keyring, "--tenant-replicas", "1"]
        f = open(log, "w")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT)
        f.close()
        self.lab.started.append(p)
        return p

    def up(self, p, data_dir, timeout=10.0):
        """Waits until @p answers on its admin socket (True) or exits."""
        end = time.time() + timeout
        while time.time() < end:
            if p.poll() is not None:
                return False
            try:
                meshlab.ask(data_dir, "status --json", timeout=1)
                return True
            except (OSError, ValueError):
                time.sleep(0.05)
        return False

    def once(self, data_dir, log):
        """Starts meshd on @data_dir. Returns (exit status or None if it
        came up and was stopped, its output)."""
        p = self.start(data_dir, log)
        rc = None
        if self.up(p, data_dir):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        else:
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
        with open(log) as f:
            return rc, f.read()

    def status_ok(self, rc, cls):
        if rc is None or rc <= 0:
            return False
        return rc == cls


def describe(rc):
    if rc is None:
        return "it started"
    if rc < 0:
        return "killed by signal %d (%s)" % (-rc, signal.Signals(-rc).name)
    return "exit status %d" % rc


def ctl(lab, data_dir, *args, cap=None):
    cmd = [lab.meshctl, "--data-dir", data_dir] + list(args)
    if cap:
        cmd += ["--cap", cap]
    env = dict(os.environ)
    env.pop("MESH_CAP", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                          env=env)


def make_base(lab, node, root):
    """A data directory with an identity, a tenant and some data, values
    large enough for overflow pages, and overwrites (a free list)."""
    base = os.path.join(root, "base")
    p = node.start(base, os.path.join(root, "base.log"))
    if not node.up(p, base):
        raise RuntimeError("meshd did not start on an empty directory")
    cap = os.path.join(root, "acme.cap")
    out = ctl(lab, base, "tenant", "create", "acme")
    with open(cap, "w") as f:
        f.write(out.stdout)
    for i in range(40):
        v = ("v%d" % i) * (1 + (1500 if i % 5 == 0 else 10))
        ctl(lab, base, "tenant", "put", "acme", "k%d" % (i % 25), v, cap=cap)
    p.send_signal(signal.SIGTERM)
    p.wait(15)
    return base, cap


class Image:
    """The data file in memory, and where LMDB's structures are."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.b = bytearray(f.read())
        self.psize = struct.unpack_from("<I", self.b, META_PSIZE)[0]
        t0 = struct.unpack_from("<Q", self.b, META_TXNID)[0]
        t1 = struct.unpack_from("<Q", self.b, self.psize + META_TXNID)[0]
        self.meta = self.psize if t1 > t0 else 0

    def word(self, off):
        return struct.unpack_from("<Q", self.b, off)[0]

    def set_word(self, off, v):
        struct.pack_into("<Q", self.b, off, v)

    def set_meta(self, field, v, width=8):
        fmt = {8: "<Q", 4: "<I", 2: "<H"}[width]
        struct.pack_into(fmt, self.b, self.meta + field, v)

    def root(self, field):
        return self.word(self.meta + field)

    def a_free_page(self):
        """The first page of the first free-list record."""
        pg = self.root(META_FREE_ROOT) * self.psize
        ptr = struct.unpack_from("<H", self.b, pg + PG_HDR)[0]
        ksize = struct.unpack_from("<H", self.b, pg + ptr + 6)[0]
        return self.word(pg + ptr + 8 + ksize + 8)


def case_dir(root, base, name):
    d = os.path.join(root, "case-" + name)
    shutil.copytree(base, d, symlinks=True)
    for junk in ("meshd.sock",):
        try:
            os.unlink(os.path.join(d, junk))
        except FileNotFoundError:
            pass
    return d


def write_image(d, img):
    with open(os.path.join(d, "mesh.mdb"), "wb") as f:
        f.write(img.b)


def last_lines(out, n=2):
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-400:]


def expect_refused(node, root, name, d, cls, pattern):
    rc, out = node.once(d, d + ".log")
    ok = node.status_ok(rc, cls) and re.search(pattern, out) is not None
    check("%s: %s error, no signal" % (name, CLASS_NAME[cls]), ok,
          "%s: %s" % (describe(rc), last_lines(out)))
    return rc


def damage_cases(node, root, base):
    img0 = Image(os.path.join(base, "mesh.mdb"))
    size = len(img0.b)
    ps = img0.psize

    def truncated(n):
        def f(d):
            os.truncate(os.path.join(d, "mesh.mdb"), n)
        return f

    def meta(field, v, width=8):
        def f(d):
            img = Image(os.path.join(d, "mesh.mdb"))
            img.set_meta(field, v if v is not None else img.a_free_page(),
                         width)
            write_image(d, img)
        return f

    def page(field, at, data):
        def f(d):
            img = Image(os.path.join(d, "mesh.mdb"))
            off = img.root(field) * img.psize + at
            img.b[off:off + len(data)] = data
            write_image(d, img)
        return f

    def replaced(data):
        def f(d):
            with open(os.path.join(d, "mesh.mdb"), "wb") as fp:
                fp.write(data)
        return f

    trunc = r"is damaged: .*(truncated|too short|empty)"
    cases = [
        ("data file emptied", truncated(0), r"is damaged: it is empty"),
        ("data file cut to 1 byte", truncated(1), trunc),
        ("data file cut to 4095 bytes", truncated(ps - 1), trunc),
        ("data file cut in the middle", truncated(size // 2), trunc),
        ("data file one page short", truncated(size - ps), trunc),
        ("data file random bytes", replaced(os.urandom(size)),
         r"no LMDB header"),
        ("data file a text file", replaced(b"hello, not a database\n" * 500),
         r"no LMDB header"),
        # SIGFPE, SIGBUS, SIGABRT x3 before; a new identity, silently.
        ("meta page size 0", meta(META_PSIZE, 0, 4), r"page size of 0"),
        ("meta page size 2^31-1", meta(META_PSIZE, 2 ** 31 - 1, 4),
         r"page size"),
        ("meta main root 0", meta(META_MAIN_ROOT, 0), r"outside pages"),
        ("meta main root 1", meta(META_MAIN_ROOT, 1), r"outside pages"),
        ("meta main root a free page", meta(META_MAIN_ROOT, None),
         r"in use and also listed free"),
        ("meta main root P_INVALID", meta(META_MAIN_ROOT, P_INVALID),
         r"part of it is lost"),
        # SIGBUS before.
        ("main leaf node offsets", page(META_MAIN_ROOT, PG_HDR,
                                        struct.pack("<H", ps + 4000)),
         r"outside the page's node area"),
        ("free-list leaf node offsets", page(META_FREE_ROOT, PG_HDR,
                                             struct.pack("<H", 0xfff1)),
         r"outside the page's node area"),
        # The next commit lost the tenant database before.
        ("main leaf marked loose", page(META_MAIN_ROOT, 10,
                                        struct.pack("<H", 0x4002)),
         r"not a tree page"),
    ]
    for name, damage, pattern in cases:
        d = case_dir(root, base, re.sub(r"\W+", "-", name))
        damage(d)
        expect_refused(node, root, name, d, CORRUPT, pattern)


def file_cases(node, root, base, lab):
    # A garbage lock file holds no data: the node starts.
    d = case_dir(root, base, "lock-garbage")
    with open(os.path.join(d, "mesh.mdb-lock"), "wb") as f:
        f.write(os.urandom(8192))
    rc, out = node.once(d, d + ".log")
    check("garbage lock file: the node starts", rc is None,
          "%s: %s" % (describe(rc), last_lines(out)))

    d = case_dir(root, base, "lock-dir")
    os.unlink(os.path.join(d, "mesh.mdb-lock"))
    os.mkdir(os.path.join(d, "mesh.mdb-lock"))
    expect_refused(node, root, "lock file a directory", d, IO,
                   r"lock file .* is a directory")

    d = case_dir(root, base, "data-dir")
    os.unlink(os.path.join(d, "mesh.mdb"))
    os.mkdir(os.path.join(d, "mesh.mdb"))
    expect_refused(node, root, "data file a directory", d, CORRUPT,
                   r"is a directory, not a data file")

    d = os.path.join(root, "dir-is-a-file")
    with open(d, "w") as f:
        f.write("x")
    expect_refused(node, root, "data directory a file", d, IO,
                   r"Not a directory")

    d = case_dir(root, base, "ro-file")
    path = os.path.join(d, "mesh.mdb")
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", path, path], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", path], check=True)
    else:
        os.chmod(path, 0o400)
    try:
        expect_refused(node, root, "data file read-only", d, IO,
                       r"cannot open .*mesh\.mdb for writing")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", path])

    d = case_dir(root, base, "ro-dir")
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", d, d], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", d], check=True)
    else:
        os.chmod(d, 0o500)
    try:
        expect_refused(node, root, "data directory read-only", d, IO,
                       r"Read-only file system|Permission denied")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", d])
        os.chmod(d, 0o700)


def recovery_case(node, root, base):
    """docs/storage.md's recovery: move the directory aside, start."""
    d = case_dir(root, base, "recover")
    os.truncate(os.path.join(d, "mesh.mdb"), 4096)
    rc1, _ = node.once(d, d + ".log")
    os.rename(d, d + ".damaged")
    rc2, out = node.once(d, d + ".log2")
    check("recovery: moved aside, the node starts with a new identity",
          rc1 is not None and rc1 > 0 and rc2 is None and
          "new identity" in out, "%s then %s" % (describe(rc1),
                                                  describe(rc2)))


def runtime_sigbus_case(node, root, base, lab, cap):
    """The data file shortened under a running node: SIGBUS on the map,
    which meshd turns into a message and status 5."""
    d = case_dir(root, base, "shrink-live")
    p = node.start(d, d + ".log")
    if not node.up(p, d):
        check("shortened while running: starts first", False)
        return
    os.truncate(os.path.join(d, "mesh.mdb"), 8192)
    for i in range(5):
        ctl(lab, d, "tenant", "get", "acme", "k%d" % i, cap=cap)
        if p.poll() is not None:
            break
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    with open(d + ".log") as f:
        out = f.read()
    check("file shortened while running: I/O error, no signal",
          rc == IO and "SIGBUS reading" in out,
          "%s: %s" % (describe(rc), last_lines(out)))


class Tmpfs:
    def __init__(self, size):
        self.dir = tempfile.mkdtemp(prefix="fullfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=%s,mode=0700" % size, "tmpfs", self.dir],
                           capture_output=True, text=True)
        self.ok = r.returncode == 0
        self.why = r.stderr.strip()

    def fill(self, name="filler"):
        """Takes every byte left, in a file named @name."""
        fd = os.open(os.path.join(self.dir, name),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (65536, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)

    def close(self):
        if self.ok:
            subprocess.run(["umount", "-l", self.dir])
        shutil.rmtree(self.dir, ignore_errors=True)


def full_disk_first_start(node, root):
    fs = Tmpfs("256k")
    try:
        if not fs.ok:
            print("skipped: full disk at first start: cannot mount a "
                  "tmpfs: %s" % fs.why)
            return
        d = os.path.join(fs.dir, "d")
        os.mkdir(d)
        fs.fill()
        rc, out = node.once(d, os.path.join(root, "full-first.log"))
        leftover = [n for n in os.listdir(d)
                    if n.startswith("mesh.mdb") and n != "mesh.mdb-lock"]
        ok = node.status_ok(rc, NOSPC) and re.search(
            r"[Nn]o space|disk is full", out) is not None
        check("first start on a full disk: disk-full error, no signal", ok,
              "%s: %s" % (describe(rc), last_lines(out)))
        check("first start on a full disk: no partial data file",
              leftover == [], str(leftover))
        os.unlink(os.path.join(fs.dir, "filler"))
        rc, out = node.once(d, os.path.join(root, "full-first2.log"))
        check("then with room: the node starts", rc is None,
              "%s: %s" % (describe(rc), last_lines(out)))
    finally:
        fs.close()


def full_disk_while_running(node, root, lab):
    fs = Tmpfs("40m")
    try:
        if not fs.ok:
            print("skipped: disk filling while running: cannot mount a "
                  "tmpfs: %s" % fs.why)
            return
        d = os.path.join(fs.dir, "d")
        log = os.path.join(root, "full-run.log")
        p = node.start(d, log)
        if not node.up(p, d):
            check("full disk while running: starts", False, last_lines(
                open(log).read()))
            return
        cap = os.path.join(root, "full.cap")
        with open(cap, "w") as f:
            f.write(ctl(lab, d, "tenant", "create", "full").stdout)
        small = "s" * 3000
        inc0 = json.loads(meshlab.ask(d, "status --json"))["incarnation"]
        # Something else takes the whole disk while the node runs.
        fs.fill()
        for i in range(30):
            out = ctl(lab, d, "tenant", "put", "full", "b%d" % i, small,
                      cap=cap)
        check("disk full: tenant writes refused with MESH_ENOSPC, node up",
              out.returncode != 0 and "MESH_ENOSPC" in out.stderr and
              p.poll() is None, out.stderr.strip())
        out = ctl(lab, d, "tenant", "ls")
        check("disk full: reads go on", out.returncode == 0 and
              "full" in out.stdout, out.stderr.strip())
        p.send_signal(signal.SIGTERM)
        p.wait(15)
        # Before: MESH_ENOSPC, the start could not save its incarnation.
        p = node.start(d, log + "2")
        started = node.up(p, d)
        inc1 = json.loads(meshlab.ask(d, "status --json"))[
            "incarnation"] if started else -1
        with open(log + "2") as f:
            out2 = f.read()
        check("restart on the full disk: starts with a higher incarnation",
              started and inc1 > inc0, "%s, incarnation %s -> %s: %s" % (
                  "up" if started else describe(p.poll()), inc0, inc1,
                  last_lines(out2)))
        if not started:
            return
        # Room again; then tenant data fills the disk, and is refused
        # before the disk is full.
        os.unlink(os.path.join(fs.dir, "filler"))
        value = "x" * 60000
        err = None
        for i in range(2000):
            out = ctl(lab, d, "tenant", "put", "full", "k%d" % i, value,
                      cap=cap)
            if out.returncode != 0:
                err = out.stderr.strip()
                break
        free = os.statvfs(fs.dir)
        check("tenant data fills the disk: MESH_ENOSPC with room to spare, "
              "node up", err is not None and "MESH_ENOSPC" in err and
              p.poll() is None and free.f_bavail * free.f_frsize > (1 << 20),
              "after %d writes, %d KiB free: %s" % (
                  i, free.f_bavail * free.f_frsize >> 10, err))
        # Free space (the filesystem grows): writes are accepted again.
        subprocess.run(["mount", "-o", "remount,size=96m", fs.dir],
                       check=True)
        ok = False
        for _ in range(20):
            out = ctl(lab, d, "tenant", "put", "full", "more", "y", cap=cap)
            if out.returncode == 0:
                ok = True
                break
            time.sleep(0.2)
        check("space freed: tenant writes accepted again", ok,
              out.stderr.strip())
        p.send_signal(signal.SIGTERM)
        p.wait(15)
    finally:
        fs.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--meshd", help="meshd to test (default: BIN/meshd)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    with meshlab.Lab(args.bin, 1, keep=args.keep) as lab:
        node = Node(lab, args.meshd or lab.meshd)
        root = lab.root
        if args.keep:
            print("info: logs and data directories kept in %s" % root)
        base, cap = make_base(lab, node, root)
        damage_cases(node, root, base)
        file_cases(node, root, base, lab)
        recovery_case(node, root, base)
        runtime_sigbus_case(node, root, base, lab, cap)
        if os.geteuid() != 0:
            print("skipped: full-disk checks need root to mount a tmpfs")
        else:
            full_disk_first_start(node, root)
            full_disk_while_running(node, root, lab)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
