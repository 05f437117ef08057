/*
 * tenant_kv.h - the ordered key-value store the tenant core reads and
 * commits through.
 *
 * The tenant core performs no I/O, yet its state lives in the store, not in
 * RAM: a write is acknowledged only after its commit succeeded, and a read
 * looks one field up instead of loading a tenant. So the driver injects this
 * small interface, as it injects the allocator: meshd backs it with LMDB
 * (agent/store/store_kv.c), the simulator and the unit tests with an
 * in-memory sorted map (tests/support/mem_kv.c). Every implementation must
 * give the same answers for the same calls.
 *
 * Keys and values are byte strings. Keys are compared with memcmp, shorter
 * first on a common prefix (LMDB's default order).
 *
 * Batches exist because a durable commit costs a disk sync (about 1 ms
 * here): the driver opens one, runs every operation that arrived in one
 * loop iteration, and closes it, so thousands of writes share one sync
 * and none is acknowledged before it.
 */
#ifndef TENANT_KV_H
#define TENANT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest key the core makes: tag, tenant id, kind, user key. */
#define TENANT_KV_KEY_MAX 511

/** One change of a commit: a put, or a delete when @del. */
struct tenant_kv_write {
	const void *key;
	size_t klen;
	const void *val; /* ignored when @del */
	size_t vlen;
	bool del;
};

/**
 * Called by scan() for each key in order; @key and @val are borrowed for
 * the duration of the call. Return 0 to go on, anything else to stop
 * (scan() then returns that value).
 */
typedef int tenant_kv_visit_fn(void *arg, const void *key, size_t klen,
			       const void *val, size_t vlen);

struct tenant_kv {
	void *ctx;
	/**
	 * Looks @key up. On 0, *@val and *@vlen point at the value, borrowed
	 * until the next call on this store. Returns 0, MESH_ENOENT,
	 * MESH_EIO or MESH_ECORRUPT.
	 */
	int (*get)(void *ctx, const void *key, size_t klen, const void **val,
		   size_t *vlen);
	/**
	 * Visits, in key order, every key that starts with @prefix and is
	 * >= @from (@from NULL: from the first key with the prefix). Returns
	 * 0 when all were visited, the visitor's non-zero value when it
	 * stopped, or MESH_EIO / MESH_ECORRUPT. The visitor must not call the
	 * store.
	 */
	int (*scan)(void *ctx, const void *prefix, size_t plen,
		    const void *from, size_t flen, tenant_kv_visit_fn *fn,
		    void *arg);
	/**
	 * Applies @n writes atomically and durably: when it returns 0 every
	 * one of them survives a crash; otherwise none was applied. Deleting
	 * a missing key is not an error. Returns 0, MESH_ENOSPC (map or disk
	 * full: the store is unchanged and still readable), MESH_EINVAL (a
	 * key over TENANT_KV_KEY_MAX or empty) or MESH_EIO.
	 */
	int (*commit)(void *ctx, const struct tenant_kv_write *w, size_t n);
	/**
	 * Opens a batch (group commit). Until batch_end(), each commit()
	 * is still all-or-nothing on its own (a failed one leaves the batch
	 * as it was and the batch goes on), get() and scan() see what the
	 * batch wrote, and nothing is durable yet. Returns 0, MESH_ESTATE (a
	 * batch is already open) or MESH_EIO.
	 */
	int (*batch_begin)(void *ctx);
	/**
	 * Closes the batch. With @keep, makes every write of it durable at
	 * once: one sync for many operations. Without @keep, or when that
	 * fails, none of the batch's writes happened. Returns 0, MESH_ENOSPC
	 * or MESH_EIO (then nothing of the batch was kept), MESH_ESTATE (no
	 * batch open).
	 */
	int (*batch_end)(void *ctx, bool keep);
};

#endif
