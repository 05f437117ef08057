/*
 * store_impl.h - internals shared by store.c and store_kv.c; nothing outside
 * agent/store may include it.
 *
 * store.c opens the environment and owns this state inside struct store;
 * store_kv.c owns the copy buffer and opens and closes the batch. The batch
 * is the environment's, not only the "tenant" database's: LMDB has one
 * writer lock per environment and it is not recursive, and a thread with a
 * write transaction open may not begin a second top-level transaction of
 * any kind. So while a batch is open every read and write of the store, in
 * any database, goes through the helpers below, which use the batch's
 * transaction (reads) or a child of it (writes).
 */
#ifndef STORE_IMPL_H
#define STORE_IMPL_H

#include "store.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store__kv {
	MDB_env *env;		     /* the store's environment */
	MDB_dbi dbi;		     /* "tenant" */
	const struct mesh_env *menv; /* for log lines */
	/*
	 * The open batch's write transaction (NULL: no batch). Between calls
	 * it has no child and no open cursor.
	 */
	MDB_txn *batch;
	/*
	 * Non-zero (an LMDB code) once a child failed to merge into @batch:
	 * LMDB may then have marked @batch failed, and a failed transaction
	 * stays failed, so the batch can only be dropped.
	 */
	int batch_err;
	/* What the open batch's tenant commits may add to the file when it
	 * commits (store__kv_pending()): free space changes only then, so
	 * the headroom check counts it. */
	uint64_t batch_bytes;
	void *buf;  /* get()'s copy of the last value */
	size_t cap; /* bytes allocated at @buf */
	/* Disk space (store_disk.c). */
	int fd;		    /* the data file (LMDB's descriptor) */
	const char *path;   /* the data file, for messages */
	size_t psize;	    /* LMDB's page size */
	uint64_t alloc_end; /* bytes of the data file known to be allocated */
	bool space_low;	    /* tenant writes are refused for lack of space */
	int fault_status;   /* exit status after an LMDB assert; 0: abort */
};

/*
 * The end of every message about a damaged data file: what to do. Moving
 * the directory aside is the recovery docs/storage.md explains.
 */
#define STORE__CORRUPT_HOWTO                                                   \
	"stop meshd, move the data directory aside and start again with an "   \
	"empty one: the node comes back with a new identity and its tenant "   \
	"replicas are copied from the other nodes (docs/storage.md)"

/** The key-value state inside @s; lives as long as @s. */
struct store__kv *store__kv_of(struct store *s);

/** Translates an LMDB or errno code into a MESH_E... code (0 stays 0). */
int store__err(int rc);

/**
 * Begins the transaction for one write of the store into *@txn: a child of
 * the open batch, which makes the write durable only when the batch is
 * kept, or else a top-level one, synced by store__write_end(). Returns 0 or
 * an LMDB code (MDB_BAD_TXN when the batch can only be dropped).
 */
int store__write_begin(struct store__kv *kv, MDB_txn **txn);

/**
 * Ends @txn from store__write_begin(): commits it with @keep, else aborts
 * it. A failed write must not be kept: LMDB would mark the batch failed
 * too. @txn is freed either way. Returns 0 or the commit's LMDB code.
 */
int store__write_end(struct store__kv *kv, MDB_txn *txn, bool keep);

/**
 * Gives in *@txn a transaction to read in: the open batch's, which sees
 * what the batch wrote, or else a new read-only one. Returns 0 or an LMDB
 * code. Call store__read_end() with it before any other store call.
 */
int store__read_begin(struct store__kv *kv, MDB_txn **txn);

/** Ends @txn from store__read_begin(); the batch stays open. */
void store__read_end(struct store__kv *kv, MDB_txn *txn);

/** Drops the open batch, if any, and frees the copy buffer of @kv. */
void store__kv_destroy(struct store__kv *kv);

/**
 * Checks the LMDB data file open at @fd (named @path in messages) with
 * pread() only, so that LMDB will not crash on it: store_check.c says what
 * is checked. Logs one line through @menv naming the fault. Returns 0,
 * MESH_ECORRUPT, MESH_EIO (a read failed) or MESH_ENOMEM.
 */
int store__verify(int fd, const char *path, const struct mesh_env *menv);

/**
 * Makes LMDB's lock file @lock a regular file with all its blocks
 * allocated, replacing whatever is there if it is not: LMDB writes it
 * through a shared mapping, and a page of it that the disk cannot supply
 * raises SIGBUS. It holds no data (LMDB rebuilds it when it opens the
 * environment alone, which meshd's own lock guarantees). Returns 0,
 * MESH_ENOSPC or MESH_EIO, after a log line.
 */
int store__lock_prepare(const char *lock, const struct mesh_env *menv);

/** Compares keys as LMDB's default order does: memcmp, then shorter first. */
int store__kv_cmp(const void *a, size_t alen, const void *b, size_t blen);

/**
 * The write-ahead space check, before a write transaction of @kv. Keeps
 * STORE__RESERVE_BYTES allocated past the end of the data file, so the
 * node's own records (identity, incarnation, flags) can be written when
 * the disk is full. With @tenant, also requires STORE__HEADROOM_BYTES
 * plus @pending (what writes not yet on disk may add) free on the
 * filesystem, so tenant data stops short of that reserve. Returns 0 or
 * MESH_ENOSPC (only with @tenant; the node's own writes go on and fail, if
 * they must, when LMDB writes).
 */
int store__space_check(struct store__kv *kv, bool tenant, uint64_t pending);

/**
 * Whether @rc, the code of a failed write, means the disk is full: ENOSPC,
 * EDQUOT, EFBIG, or EIO (LMDB's name for a short write) while the
 * filesystem of @fd (or, if @fd < 0, of directory @dir) is nearly full.
 */
bool store__disk_full(int rc, int fd, const char *dir);

/**
 * Translates the LMDB or errno code of a failed write of @kv into a MESH_E
 * code, naming the fault in the log: ENOSPC, EDQUOT, EFBIG, and an EIO
 * from a short write on a nearly full disk, are MESH_ENOSPC.
 */
int store__write_err(struct store__kv *kv, int rc);

/**
 * Points LMDB's assert callback at store_disk.c, which names the fault in
 * the log and exits with the status given to store_guard_faults(), if any,
 * before LMDB would abort(). Call once the environment is open.
 */
void store__assert_hook(struct store__kv *kv);

/** Stops guarding the map of @kv, which is about to be unmapped. */
void store__guard_release(struct store__kv *kv);

#endif
