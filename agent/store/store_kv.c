/*
 * store_kv.c - the tenant core's key-value store (tenant_kv.h) in LMDB.
 *
 * One named database, "tenant", in the store's environment, with LMDB's
 * default key order, which is the order tenant_kv.h promises (memcmp, then
 * the shorter key first). No transaction outlives a call: a read transaction
 * held between calls would pin its snapshot and keep LMDB from reusing the
 * pages that later commits free, so the file would grow without bound. That
 * is why get() copies the value out instead of lending LMDB's pointer.
 * commit() is one write transaction; LMDB syncs it before returning (the
 * environment is opened without MDB_NOSYNC), which gives the durability the
 * interface asks for, and a failed transaction is aborted whole, which gives
 * the atomicity.
 *
 * A batch is the exception, and the reason it exists: a synced commit costs
 * about 1 ms, so one per write caps a node near 1000 writes/s. The batch is
 * one write transaction held from batch_begin() to batch_end(), which syncs
 * once. Each commit() inside it is a nested (child) transaction: LMDB merges
 * a child into its parent on commit, in memory and without a sync, and
 * discards it on abort, restoring the parent's page lists, so a commit that
 * fails (map full included) is dropped whole and the batch goes on. A
 * failed child must be aborted, never committed: committing it would mark
 * the parent failed too. Reads go through the parent, which sees what the
 * batch merged; a read transaction of its own would be refused, as LMDB
 * allows one top-level transaction per thread. The snapshot pinned by the
 * batch lasts one loop iteration, not the unbounded time that made us copy
 * values out above.
 */
#include "store_impl.h"

#include "mesh_err.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

/* LMDB's compiled-in limit; the interface's limit must not exceed it. */
_Static_assert(TENANT_KV_KEY_MAX <= 511, "LMDB keys are at most 511 bytes");

static bool
store__kv_key_ok(const void *key, size_t klen)
{
	return key != NULL && klen > 0 && klen <= TENANT_KV_KEY_MAX;
}

int
store__kv_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n > 0 ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/*
 * tenant_kv.h names the codes each call may return; fold the rest into
 * MESH_EIO so the core handles a closed set.
 */
static int
store__kv_err(struct store__kv *kv, int rc, bool commit)
{
	int err = commit ? store__write_err(kv, rc) : store__err(rc);
	switch (err) {
	case 0:
		return 0;
	case MESH_ECORRUPT:
	case MESH_ENOENT:
		return commit ? MESH_EIO : err;
	case MESH_ENOSPC:
		return commit ? err : MESH_EIO;
	default:
		return MESH_EIO;
	}
}

static int
store__kv_get(void *ctx, const void *key, size_t klen, const void **val,
	      size_t *vlen)
{
	struct store__kv *kv = ctx;
	/* Such a key can never have been committed. */
	if (!store__kv_key_ok(key, klen))
		return MESH_ENOENT;
	MDB_txn *txn;
	int rc = store__read_begin(kv, &txn);
	if (rc != 0)
		return store__kv_err(kv, rc, false);
	MDB_val k = {klen, (void *)key};
	MDB_val v;
	rc = mdb_get(txn, kv->dbi, &k, &v);
	if (rc != 0) {
		store__read_end(kv, txn);
		return store__kv_err(kv, rc, false);
	}
	if (v.mv_size > kv->cap) {
		/* Grow geometrically so a run of growing values stays linear.
		 */
		size_t cap = kv->cap > v.mv_size / 2 ? 2 * kv->cap : v.mv_size;
		void *buf = realloc(kv->buf, cap);
		if (buf == NULL) {
			store__read_end(kv, txn);
			return MESH_EIO; /* the interface has no ENOMEM */
		}
		kv->buf = buf;
		kv->cap = cap;
	}
	if (v.mv_size > 0)
		memcpy(kv->buf, v.mv_data, v.mv_size);
	store__read_end(kv, txn);
	static const char empty;
	*val = kv->buf != NULL ? kv->buf : &empty;
	*vlen = v.mv_size;
	return 0;
}

static int
store__kv_scan(void *ctx, const void *prefix, size_t plen, const void *from,
	       size_t flen, tenant_kv_visit_fn *fn, void *arg)
{
	struct store__kv *kv = ctx;
	if (from == NULL)
		flen = 0;
	/* Start at max(prefix, from): every key before it is skipped anyway. */
	MDB_val start = {plen, (void *)prefix};
	if (flen > 0 && store__kv_cmp(from, flen, prefix, plen) > 0) {
		start.mv_size = flen;
		start.mv_data = (void *)from;
	}
	MDB_txn *txn;
	int rc = store__read_begin(kv, &txn);
	if (rc != 0)
		return store__kv_err(kv, rc, false);
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, kv->dbi, &cur);
	if (rc != 0) {
		store__read_end(kv, txn);
		return store__kv_err(kv, rc, false);
	}
	MDB_val k = start;
	MDB_val v;
	/* LMDB refuses a zero-length search key; "" sorts first anyway. */
	rc = mdb_cursor_get(cur, &k, &v,
			    start.mv_size > 0 ? MDB_SET_RANGE : MDB_FIRST);
	int ret = 0;
	while (rc == 0) {
		if (k.mv_size < plen ||
		    (plen > 0 && memcmp(k.mv_data, prefix, plen) != 0))
			break;
		ret = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (ret != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
		ret = store__kv_err(kv, rc, false);
	/* A write transaction's cursor is not freed with it: close it. */
	mdb_cursor_close(cur);
	store__read_end(kv, txn);
	return ret;
}

/* What @n writes may add to the data file: their bytes twice (a page is
 * copied when written, and splits leave pages half full) plus a node
 * header each; deletions count nothing. An estimate on the high side. */
static uint64_t
store__kv_pending(const struct tenant_kv_write *w, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		if (!w[i].del)
			sum += 2 * ((uint64_t)w[i].klen + w[i].vlen) + 64;
	return sum;
}

static int
store__kv_commit(void *ctx, const struct tenant_kv_write *w, size_t n)
{
	struct store__kv *kv = ctx;
	/* Refuse a bad batch before anything is written. */
	for (size_t i = 0; i < n; i++) {
		if (!store__kv_key_ok(w[i].key, w[i].klen) ||
		    (!w[i].del && w[i].val == NULL && w[i].vlen > 0))
			return MESH_EINVAL;
	}
	if (n == 0)
		return 0;
	/* Tenant data stops short of the space kept for the node's own,
	 * counting what the open batch will add when it commits. */
	uint64_t add = store__kv_pending(w, n);
	int rc = store__space_check(
	    kv, true, kv->batch != NULL ? kv->batch_bytes + add : add);
	if (rc != 0)
		return rc;
	MDB_txn *txn;
	rc = store__write_begin(kv, &txn);
	if (rc != 0)
		return store__kv_err(kv, rc, true);
	for (size_t i = 0; i < n && rc == 0; i++) {
		MDB_val k = {w[i].klen, (void *)w[i].key};
		if (w[i].del) {
			rc = mdb_del(txn, kv->dbi, &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
		} else {
			MDB_val v = {w[i].vlen, (void *)w[i].val};
			rc = mdb_put(txn, kv->dbi, &k, &v, 0);
		}
	}
	/*
	 * A failed LMDB transaction stays failed: drop it whole. Inside a
	 * batch that drops this commit only.
	 */
	if (rc != 0)
		store__write_end(kv, txn, false);
	else
		rc = store__write_end(kv, txn, true);
	if (rc == 0 && kv->batch != NULL)
		kv->batch_bytes += add;
	int err = store__kv_err(kv, rc, true);
	if (err != 0 && err != MESH_ENOSPC)
		MESH_LOG(kv->menv, MESH_LOG_ERROR, "store: tenant commit: %s",
			 mdb_strerror(rc));
	return err;
}

static int
store__kv_batch_begin(void *ctx)
{
	struct store__kv *kv = ctx;
	if (kv->batch != NULL)
		return MESH_ESTATE;
	int rc = mdb_txn_begin(kv->env, NULL, 0, &kv->batch);
	if (rc != 0) {
		kv->batch = NULL;
		MESH_LOG(kv->menv, MESH_LOG_ERROR, "store: batch begin: %s",
			 mdb_strerror(rc));
		return MESH_EIO;
	}
	kv->batch_err = 0;
	kv->batch_bytes = 0;
	return 0;
}

static int
store__kv_batch_end(void *ctx, bool keep)
{
	struct store__kv *kv = ctx;
	if (kv->batch == NULL)
		return MESH_ESTATE;
	MDB_txn *txn = kv->batch;
	int rc = kv->batch_err;
	kv->batch = NULL;
	kv->batch_err = 0;
	if (!keep) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0)
		mdb_txn_abort(txn);
	else
		rc = mdb_txn_commit(txn); /* the one sync of the batch */
	int err = store__kv_err(kv, rc, true);
	if (err != 0)
		MESH_LOG(kv->menv, MESH_LOG_ERROR,
			 "store: tenant batch dropped: %s", mdb_strerror(rc));
	return err;
}

int
store_kv(struct store *s, struct tenant_kv *out)
{
	out->ctx = store__kv_of(s);
	out->get = store__kv_get;
	out->scan = store__kv_scan;
	out->commit = store__kv_commit;
	out->batch_begin = store__kv_batch_begin;
	out->batch_end = store__kv_batch_end;
	return 0;
}

void
store__kv_destroy(struct store__kv *kv)
{
	if (kv->batch != NULL) {
		mdb_txn_abort(kv->batch);
		kv->batch = NULL;
		kv->batch_err = 0;
	}
	free(kv->buf);
	kv->buf = NULL;
	kv->cap = 0;
}
