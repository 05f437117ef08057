/*
 * store_disk.c - disk space and the faults LMDB can only answer with a
 * signal.
 *
 * LMDB writes the data file with pwrite() (we never use MDB_WRITEMAP), so a
 * full disk there is an error it returns: ENOSPC, or EIO when a write of
 * several pages got only part of its way. Two things still went wrong on a
 * full disk. The lock file is written through a shared mapping, and LMDB
 * makes it with ftruncate(), which allocates nothing: on a full disk the
 * first store to it raised SIGBUS inside mdb_env_open(). And a node whose
 * disk filled with tenant data could no longer save its own incarnation,
 * so after a refutation it restarted below its previous life.
 *
 * So the lock file is made by us, with every block allocated, before LMDB
 * opens it; and before each write the store keeps a reserve allocated past
 * the end of the data file (fallocate with FALLOC_FL_KEEP_SIZE: the file's
 * length, which the truncation check reads, does not change). LMDB writes
 * new pages at the end of the file, into that reserve, so the node's own
 * small records commit on a full disk. Tenant writes also need headroom
 * on the filesystem beyond the reserve; without it they are refused with
 * MESH_ENOSPC before LMDB is asked, so they cannot eat the reserve.
 *
 * What no check can prevent, a page of the map that the disk cannot read
 * (an I/O error, or a file shortened while meshd runs), still raises SIGBUS;
 * and LMDB aborts on an assert() when it meets an inconsistency.
 * store_guard_faults() turns both into a message and an exit status.
 */
#define _GNU_SOURCE /* fallocate(), FALLOC_FL_KEEP_SIZE */

#include "store_impl.h"

#include "mesh_err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <unistd.h>

/*
 * Tunables.
 *
 * STORE__RESERVE_BYTES: what the node's own records may need when the disk
 * is full. An incarnation or flag write copies the leaf of "meta", the root
 * of the main database and the free-list pages it updates: a handful of
 * pages, a few dozen when the free list is long after heavy tenant churn.
 * 1 MiB is 256 pages of 4 KiB, ample, and nothing on any disk meshd runs on.
 *
 * STORE__HEADROOM_BYTES: free space the filesystem must still have for a
 * tenant write to be tried. It must exceed what one tenant commit or batch
 * adds to the file, or a last large batch could eat the reserve: a batch is
 * one loop iteration, and its largest input, a tenant frame, is 16 MiB
 * (NET_TENANT_FRAME_MAX). 32 MiB covers that twice over.
 *
 * STORE__LOCK_BYTES: the lock file's size. LMDB needs (readers - 1) * 64
 * bytes plus its header, 8 KiB to 8.3 KiB for its default 126 readers
 * depending on the size of a mutex; a larger file only gives more reader
 * slots.
 */
#define STORE__RESERVE_BYTES ((uint64_t)1 << 20)
#define STORE__HEADROOM_BYTES ((uint64_t)32 << 20)
#define STORE__LOCK_BYTES 16384

int
store__lock_prepare(const char *lock, const struct mesh_env *menv)
{
	struct stat st;
	if (lstat(lock, &st) == 0) {
		if (S_ISREG(st.st_mode) && st.st_size >= STORE__LOCK_BYTES &&
		    (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size)
			return 0;
		if (S_ISDIR(st.st_mode)) {
			MESH_LOG(menv, MESH_LOG_ERROR,
				 "store: LMDB's lock file %s is a directory; "
				 "remove it (the lock file holds no data)",
				 lock);
			return MESH_EIO;
		}
	} else if (errno != ENOENT) {
		MESH_LOG(menv, MESH_LOG_ERROR, "store: %s: %s", lock,
			 strerror(errno));
		return MESH_EIO;
	}
	/* Made aside and renamed, so a failure leaves the old one alone. */
	char tmp[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.new", lock) >= (int)sizeof(tmp))
		return MESH_EINVAL;
	unlink(tmp);
	int err = 0;
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
	} else {
		err = posix_fallocate(fd, 0, STORE__LOCK_BYTES);
		if (close(fd) != 0 && err == 0)
			err = errno;
		if (err == 0 && rename(tmp, lock) != 0)
			err = errno;
		if (err != 0)
			unlink(tmp);
	}
	if (err == 0)
		return 0;
	bool full = err == ENOSPC || err == EDQUOT || err == EFBIG;
	MESH_LOG(menv, MESH_LOG_ERROR,
		 "store: cannot make LMDB's lock file %s: %s%s", lock,
		 strerror(err),
		 full ? "; free space on that filesystem and start again" : "");
	return full ? MESH_ENOSPC : MESH_EIO;
}

/* Allocates bytes [@from, @to) of the data file, keeping its length. */
static int
store__allocate(struct store__kv *kv, uint64_t from, uint64_t to)
{
	if (fallocate(kv->fd, FALLOC_FL_KEEP_SIZE, (off_t)from,
		      (off_t)(to - from)) == 0)
		return 0;
	return errno;
}

static uint64_t
store__fs_free(const struct store__kv *kv)
{
	struct statvfs vfs;
	if (fstatvfs(kv->fd, &vfs) != 0)
		return UINT64_MAX; /* cannot tell: let the write say */
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

static void
store__space_state(struct store__kv *kv, bool low, uint64_t free_bytes,
		   uint64_t need)
{
	if (low == kv->space_low)
		return;
	kv->space_low = low;
	if (low)
		MESH_LOG(kv->menv, MESH_LOG_ERROR,
			 "store: %s: disk nearly full (%llu bytes free, "
			 "tenant writes need %llu): tenant writes are refused "
			 "with MESH_ENOSPC and the space left is kept for the "
			 "node's own records; free space on that filesystem",
			 kv->path, (unsigned long long)free_bytes,
			 (unsigned long long)need);
	else
		MESH_LOG(kv->menv, MESH_LOG_INFO,
			 "store: %s: disk space is back, tenant writes are "
			 "accepted again",
			 kv->path);
}

int
store__space_check(struct store__kv *kv, bool tenant, uint64_t pending)
{
	MDB_envinfo info;
	if (kv->fd < 0 || kv->psize == 0 || mdb_env_info(kv->env, &info) != 0)
		return 0;
	uint64_t used = ((uint64_t)info.me_last_pgno + 1) * kv->psize;
	uint64_t map = info.me_mapsize;
	/* Beyond the map LMDB writes nothing: no need to hold space there. */
	uint64_t want = used + STORE__RESERVE_BYTES;
	if (want > map)
		want = map > used ? map : used;
	int err = 0;
	if (want > used && want > kv->alloc_end) {
		err = store__allocate(kv, used, want);
		if (err == 0) {
			kv->alloc_end = want;
		} else if (err == EOPNOTSUPP || err == ENOSYS ||
			   err == EINVAL) {
			/* No preallocation here (ZFS, some network file
			 * systems): only the headroom check below is left. */
			MESH_LOG(kv->menv, MESH_LOG_INFO,
				 "store: %s: the filesystem cannot reserve "
				 "space ahead (%s): the node's own records are "
				 "not guaranteed room on a full disk",
				 kv->path, strerror(err));
			kv->alloc_end = UINT64_MAX;
			err = 0;
		}
	}
	if (!tenant)
		return 0;
	/* A full map is LMDB's MDB_MAP_FULL, not a matter of the disk. */
	uint64_t room = map > used ? map - used : 0;
	uint64_t need =
	    STORE__HEADROOM_BYTES < room ? STORE__HEADROOM_BYTES : room;
	uint64_t free_bytes = store__fs_free(kv);
	bool low = err != 0 || free_bytes < need || free_bytes - need < pending;
	store__space_state(kv, low, free_bytes, need);
	return low ? MESH_ENOSPC : 0;
}

bool
store__disk_full(int rc, int fd, const char *dir)
{
	if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG)
		return true;
	if (rc != EIO)
		return false;
	/* LMDB calls a short write EIO: on a full disk it is that. */
	struct statvfs vfs;
	int r = -1;
	if (fd >= 0)
		r = fstatvfs(fd, &vfs);
	else if (dir != NULL)
		r = statvfs(dir, &vfs);
	return r == 0 &&
	       (uint64_t)vfs.f_bavail * vfs.f_frsize < STORE__HEADROOM_BYTES;
}

int
store__write_err(struct store__kv *kv, int rc)
{
	if (store__disk_full(rc, kv->fd, NULL)) {
		if (!kv->space_low)
			MESH_LOG(kv->menv, MESH_LOG_ERROR,
				 "store: %s: write failed, the disk is full "
				 "(%s); nothing of this write was kept; free "
				 "space on that filesystem",
				 kv->path, strerror(rc));
		kv->space_low = true;
		return MESH_ENOSPC;
	}
	switch (rc) {
	case 0:
		return 0;
	case EIO:
		MESH_LOG(kv->menv, MESH_LOG_ERROR,
			 "store: %s: write failed: %s (the disk may be "
			 "failing: check the kernel log); nothing of this "
			 "write was kept",
			 kv->path, strerror(rc));
		return MESH_EIO;
	case EROFS:
	case EACCES:
	case EPERM:
		MESH_LOG(kv->menv, MESH_LOG_ERROR,
			 "store: %s: write failed: %s (was the filesystem "
			 "remounted read-only? check the kernel log)",
			 kv->path, strerror(rc));
		return MESH_EIO;
	default:
		return store__err(rc);
	}
}

/*
 * The fault guard: process-wide, because a signal is. It holds what the
 * handler needs, prepared beforehand, since a handler may only call
 * async-signal-safe functions (write, _exit). LMDB maps two files, the
 * data file and its lock file; both are guarded.
 */
#define STORE__GUARD_MAPS 4

static struct {
	uintptr_t lo[STORE__GUARD_MAPS], hi[STORE__GUARD_MAPS];
	size_t n;   /* 0: nothing guarded */
	int status; /* for SIGBUS */
	char msg[640];
	size_t len;
} store__guard;

static bool
store__guarded(uintptr_t a)
{
	for (size_t i = 0; i < store__guard.n; i++)
		if (a >= store__guard.lo[i] && a < store__guard.hi[i])
			return true;
	return false;
}

static void
store__sigbus(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	/* Only a fault has an address: a SIGBUS sent with kill() (si_code
	 * <= 0) carries a pid there, and gets the default action. */
	if (si->si_code > 0 && store__guarded((uintptr_t)si->si_addr)) {
		ssize_t n =
		    write(STDERR_FILENO, store__guard.msg, store__guard.len);
		(void)n;
		_exit(store__guard.status);
	}
	/* Not ours: the default action, when the access is retried; a
	 * signal that was sent is not retried, so it is raised again. */
	signal(sig, SIG_DFL);
	if (si->si_code <= 0)
		raise(sig);
}

static void
store__assert(MDB_env *env, const char *msg)
{
	struct store__kv *kv = mdb_env_get_userctx(env);
	if (kv == NULL)
		return;
	MESH_LOG(kv->menv, MESH_LOG_ERROR,
		 "store: %s: LMDB found the data file inconsistent (%s); "
		 "the store cannot go on: " STORE__CORRUPT_HOWTO,
		 kv->path, msg);
	if (kv->fault_status > 0)
		_exit(kv->fault_status);
}

void
store__assert_hook(struct store__kv *kv)
{
	mdb_env_set_userctx(kv->env, kv);
	mdb_env_set_assert(kv->env, store__assert);
}

/*
 * Finds where the files with inodes @ino[0..1] of device @dev are mapped:
 * LMDB does not say (mdb_env_info()'s me_mapaddr is only the address asked
 * for with MDB_FIXEDMAP), so /proc/self/maps is read. Returns how many
 * ranges were found.
 */
static size_t
store__find_maps(dev_t dev, const ino_t ino[2], uintptr_t *lo, uintptr_t *hi)
{
	FILE *fp = fopen("/proc/self/maps", "re");
	if (fp == NULL)
		return 0;
	char line[512];
	size_t n = 0;
	while (n < STORE__GUARD_MAPS && fgets(line, sizeof(line), fp) != NULL) {
		unsigned long a, b, off, inode;
		unsigned maj, min;
		char perm[8];
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &a, &b, perm,
			   &off, &maj, &min, &inode) != 7)
			continue;
		if (makedev(maj, min) != dev ||
		    (inode != ino[0] && inode != ino[1]))
			continue;
		lo[n] = a;
		hi[n] = b;
		n++;
	}
	fclose(fp);
	return n;
}

void
store__guard_release(struct store__kv *kv)
{
	if (kv->fault_status > 0)
		store__guard.n = 0;
}

int
store_guard_faults(struct store *s, int io_status, int corrupt_status)
{
	struct store__kv *kv = store__kv_of(s);
	if (io_status <= 0 || io_status > 255 || corrupt_status <= 0 ||
	    corrupt_status > 255)
		return MESH_EINVAL;
	struct stat data, lock;
	char lock_path[4200];
	snprintf(lock_path, sizeof(lock_path), "%s-lock", kv->path);
	if (fstat(kv->fd, &data) != 0 || stat(lock_path, &lock) != 0)
		return MESH_EIO;
	ino_t ino[2] = {data.st_ino,
			lock.st_dev == data.st_dev ? lock.st_ino : data.st_ino};
	store__guard.n = 0;
	size_t maps = store__find_maps(data.st_dev, ino, store__guard.lo,
				       store__guard.hi);
	if (maps == 0) {
		MESH_LOG(kv->menv, MESH_LOG_WARN,
			 "store: %s: cannot find its memory map in "
			 "/proc/self/maps; a SIGBUS on it will not be named",
			 kv->path);
	}
	kv->fault_status = corrupt_status;
	int n = snprintf(store__guard.msg, sizeof(store__guard.msg),
			 "store: SIGBUS reading %s through its memory map: "
			 "the disk failed to read a page, or the file was "
			 "shortened while meshd ran. meshd stops (exit "
			 "status %d). Check the disk (dmesg); if the file is "
			 "damaged, move the data directory aside "
			 "(docs/storage.md)\n",
			 kv->path, io_status);
	if (n < 0)
		return MESH_EINVAL;
	store__guard.len = (size_t)n < sizeof(store__guard.msg)
			       ? (size_t)n
			       : sizeof(store__guard.msg) - 1;
	store__guard.status = io_status;
	store__guard.n = maps;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = store__sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) != 0)
		return MESH_EIO;
	return 0;
}
