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
	void *buf;  /* get()'s copy of the last value */
	size_t cap; /* bytes allocated at @buf */
};

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

#endif
