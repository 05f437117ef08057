/*
 * store.h - the node's own data in LMDB: identity and incarnation.
 *
 * One LMDB environment per data directory (file DIR/mesh.mdb). Every write is
 * one committed transaction before the function returns, so what a caller was
 * told is stored survives kill -9. Later issues add tenant state and the audit
 * log as further named databases in the same environment.
 */
#ifndef STORE_H
#define STORE_H

#include "mesh_log.h"

#include <stdbool.h>
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

/**
 * Opens (creating if needed) the store in directory @dir, which must exist.
 * On success *@out is owned by the caller; free it with store_close().
 * @env is borrowed and must outlive the store.
 * Returns 0, MESH_EIO (cannot open), MESH_ENOSPC, MESH_ENOMEM.
 */
int store_open(const char *dir, const struct mesh_env *env, struct store **out);

/** Closes the store; NULL is fine. */
void store_close(struct store *s);

/**
 * Loads the node identity, creating an Ed25519 key pair at first start.
 * The identity is bound to @name: a data directory made for another name is
 * refused with MESH_ECONFLICT, so two nodes never share one identity by
 * accident. Other errors: MESH_ECORRUPT, MESH_ENOSPC, MESH_EIO.
 */
int store_identity_load(struct store *s, const char *name,
			struct store_identity *id);

/**
 * Reads the last incarnation, adds one, commits and returns it in *@inc.
 * Called at every start, so a restarted node always outbids what the mesh
 * remembers of its previous life. Errors: MESH_ENOSPC, MESH_EIO,
 * MESH_ECORRUPT, MESH_ERANGE (the counter would wrap).
 */
int store_incarnation_next(struct store *s, uint32_t *inc);

/**
 * Records @inc as the current incarnation if it is higher than the stored
 * one (the core raised it to refute a suspicion). Errors as above.
 */
int store_incarnation_save(struct store *s, uint32_t inc);

/**
 * Stores a named on/off setting of this node (e.g. "draining") so that it
 * survives restarts. @name is at most 64 bytes. Errors: MESH_EINVAL,
 * MESH_ENOSPC, MESH_EIO.
 */
int store_flag_set(struct store *s, const char *name, bool on);

/** Reads a setting stored with store_flag_set(); false when never set. */
int store_flag_get(struct store *s, const char *name, bool *on);

#endif
