/*
 * store.h - the node's own data in LMDB: identity and incarnation.
 *
 * One LMDB environment per data directory (file DIR/mesh.mdb). Every write is
 * one committed transaction before the function returns, so what a caller was
 * told is stored survives kill -9 - except while a batch of store_kv() is
 * open (see there): then a write of any function here joins the batch and
 * is durable only once the batch is kept, and is lost with it if not.
 * Named databases in the one environment: "meta" (identity, incarnation,
 * flags) and "tenant" (the tenant core's ordered key-value store,
 * store_kv()); the audit log will be another.
 *
 * A store is used from one thread at a time, and a batch is begun and
 * ended in the same thread (LMDB ties a write transaction to its thread).
 */
#ifndef STORE_H
#define STORE_H

#include "mesh_log.h"
#include "tenant_kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_PUBKEY_BYTES 32
#define STORE_SECKEY_BYTES 64
/* Node id: the first 8 bytes of the Ed25519 public key, as 16 hex digits. */
#define STORE_NODE_ID_HEX 16

struct store;

struct store_identity {
	uint8_t public_key[STORE_PUBKEY_BYTES];
	uint8_t secret_key[STORE_SECKEY_BYTES];
	char node_id[STORE_NODE_ID_HEX + 1];
	int created; /* 1 when made by this call (first start) */
};

/* Map size when store_open() is given 0; store.c says why 1 GiB. */
#define STORE_MAP_DEFAULT_BYTES ((uint64_t)1 << 30)

/**
 * Opens (creating if needed) the store in directory @dir, which must exist.
 * @map_bytes caps the data file (0: STORE_MAP_DEFAULT_BYTES); writes beyond
 * it fail with MESH_ENOSPC. It may differ from the last open: a larger size
 * grows the map, a smaller one is raised by LMDB to the size already in use.
 *
 * A new store is made whole or not at all (under another name, renamed
 * into place), so a first start cut short leaves nothing behind. An
 * existing data file is checked with pread() before LMDB maps it
 * (store_check.c): LMDB crashes on damaged pages instead of returning an
 * error, so a file that is truncated, empty, not LMDB, or damaged in any
 * page LMDB would follow is refused. LMDB's lock file is made with its
 * blocks allocated, so a full disk is MESH_ENOSPC, not SIGBUS. Every
 * failure is logged through @env with the file, the fault and what to do.
 *
 * On success *@out is owned by the caller; free it with store_close().
 * @env is borrowed and must outlive the store.
 * Returns 0, MESH_EIO (cannot open or read; read-only), MESH_EINVAL (path
 * too long or @map_bytes beyond the address space), MESH_ECORRUPT (the
 * data file is damaged, not LMDB, or not a file), MESH_ENOSPC (the disk is
 * full), MESH_ENOMEM.
 */
int store_open(const char *dir, uint64_t map_bytes, const struct mesh_env *env,
	       struct store **out);

/**
 * Closes the store; NULL is fine. A batch still open is dropped, as by
 * batch_end(false).
 */
void store_close(struct store *s);

/**
 * Turns the two faults of the open store @s that LMDB can only answer by
 * killing the process into a message on stderr and _exit(): SIGBUS on its
 * maps (the disk failed to read a page, or the file was shortened while
 * the process ran) exits with @io_status, an assert() inside LMDB (it met
 * an inconsistent page) with @corrupt_status, after a log line through the
 * store's mesh_env. Process-wide: it installs a SIGBUS handler, which
 * passes any other SIGBUS on to the default action; call it from main(),
 * for one store at a time. store_close() stops guarding @s. The statuses
 * are 1..255. Returns 0, MESH_EINVAL or MESH_EIO.
 */
int store_guard_faults(struct store *s, int io_status, int corrupt_status);

/**
 * Loads the node identity, creating an Ed25519 key pair at first start.
 * The identity is bound to @name: a data directory made for another name is
 * refused with MESH_ECONFLICT, so two nodes never share one identity by
 * accident. Other errors: MESH_ECORRUPT, MESH_ENOSPC, MESH_EIO.
 */
int store_identity_load(struct store *s, const char *name,
			struct store_identity *id);

/**
 * Reads the boot counter, adds one, commits and returns it in *@inc.
 * Called at every start before the node speaks: its incarnations are
 * (boot << 32) + raises within the life, so a restarted node always
 * outbids what the mesh remembers of its previous life and nothing needs
 * saving while it runs. Errors: MESH_ENOSPC, MESH_EIO, MESH_ECORRUPT,
 * MESH_ERANGE (the counter would wrap). During a batch the new value is
 * durable only once the batch is kept: announce it after. This write,
 * store_identity_load() and store_flag_set() may use the space the store
 * keeps allocated past the end of its file (store_disk.c), which tenant
 * writes may not: on a disk that tenant data filled they still succeed.
 */
int store_incarnation_next(struct store *s, uint32_t *inc);

/**
 * Stores a named on/off setting of this node (e.g. "draining") so that it
 * survives restarts. @name is at most 64 bytes. Errors: MESH_EINVAL,
 * MESH_ENOSPC, MESH_EIO.
 */
int store_flag_set(struct store *s, const char *name, bool on);

/**
 * Reads a setting stored with store_flag_set() (during a batch, as the
 * batch left it); false when never set. Errors: MESH_EINVAL, MESH_ECORRUPT,
 * MESH_EIO.
 */
int store_flag_get(struct store *s, const char *name, bool *on);

/**
 * Fills *@out with the tenant core's key-value store (tenant_kv.h), kept in
 * the named database "tenant" of @s. @s is borrowed: it must outlive every
 * use of *@out, and *@out must be used from the thread that uses @s.
 * get() copies the value into a buffer of @s that the next call through
 * *@out reuses.
 *
 * Outside a batch, each get() and scan() runs in its own short read
 * transaction and each commit() in one write transaction that is synced
 * before it returns, so no transaction is held between calls.
 *
 * batch_begin() opens a write transaction that @s keeps until batch_end():
 * each commit() runs as a child transaction of it (merged when it
 * succeeds, dropped whole when it fails, so the batch goes on), get() and
 * scan() read through it, and batch_end(true) commits it with one sync.
 * Meanwhile it holds the environment's writer lock, so other processes'
 * writers wait: keep a batch to one event-loop iteration. The other
 * functions of this header may be called during a batch; their writes
 * join it (see the top of this file). Returns 0 (it cannot fail today).
 */
int store_kv(struct store *s, struct tenant_kv *out);

#endif
