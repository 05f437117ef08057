#include "store.h"

#include "mesh.pb-c.h"
#include "mesh_err.h"

#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Identity and counters are tiny; tenant state will want a larger map. */
#define STORE_MAP_BYTES (64u << 20)
#define STORE_KEY_IDENTITY "identity"
#define STORE_KEY_INCARNATION "incarnation"

struct store {
	MDB_env *env;
	MDB_dbi meta;
	const struct mesh_env *menv;
};

static int
store__err(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_MAP_FULL:
	case ENOSPC:
		return MESH_ENOSPC;
	case ENOMEM:
		return MESH_ENOMEM;
	case MDB_NOTFOUND:
		return MESH_ENOENT;
	case MDB_CORRUPTED:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return MESH_ECORRUPT;
	default:
		return MESH_EIO;
	}
}

int
store_open(const char *dir, const struct mesh_env *env, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return MESH_ENOMEM;
	s->menv = env;
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/mesh.mdb", dir) >=
	    (int)sizeof(path)) {
		free(s);
		return MESH_EINVAL;
	}
	int rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->env, STORE_MAP_BYTES);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, 8);
	if (rc == 0)
		rc = mdb_env_open(s->env, path, MDB_NOSUBDIR, 0600);
	MDB_txn *txn = NULL;
	if (rc == 0)
		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc != 0) {
		MESH_LOG(env, MESH_LOG_ERROR, "store: open %s: %s", path,
			 mdb_strerror(rc));
		if (txn != NULL)
			mdb_txn_abort(txn);
		if (s->env != NULL)
			mdb_env_close(s->env);
		free(s);
		return store__err(rc);
	}
	*out = s;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	mdb_env_close(s->env);
	free(s);
}

static void
store__node_id(struct store_identity *id)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < STORE_NODE_ID_HEX / 2; i++) {
		id->node_id[2 * i] = hex[id->public_key[i] >> 4];
		id->node_id[2 * i + 1] = hex[id->public_key[i] & 15];
	}
	id->node_id[STORE_NODE_ID_HEX] = '\0';
}

static int
store__decode_identity(const struct store *s, const MDB_val *v,
		       const char *name, struct store_identity *id)
{
	Mesh__StoredIdentity *rec =
	    mesh__stored_identity__unpack(NULL, v->mv_size, v->mv_data);
	if (rec == NULL)
		return MESH_ECORRUPT;
	int rc = 0;
	if (rec->public_key.len != STORE_PUBKEY_BYTES ||
	    rec->secret_key.len != STORE_SECKEY_BYTES)
		rc = MESH_ECORRUPT;
	else if (strcmp(rec->name, name) != 0)
		rc = MESH_ECONFLICT;
	if (rc == 0) {
		memcpy(id->public_key, rec->public_key.data,
		       STORE_PUBKEY_BYTES);
		memcpy(id->secret_key, rec->secret_key.data,
		       STORE_SECKEY_BYTES);
		store__node_id(id);
	}
	if (rc == MESH_ECONFLICT)
		MESH_LOG(s->menv, MESH_LOG_ERROR,
			 "store: data directory belongs to node '%s', not '%s'",
			 rec->name, name);
	sodium_memzero(rec->secret_key.data, rec->secret_key.len);
	mesh__stored_identity__free_unpacked(rec, NULL);
	return rc;
}

int
store_identity_load(struct store *s, const char *name,
		    struct store_identity *id)
{
	memset(id, 0, sizeof(*id));
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		return store__err(rc);
	MDB_val k = {strlen(STORE_KEY_IDENTITY), STORE_KEY_IDENTITY};
	MDB_val v;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0) {
		int err = store__decode_identity(s, &v, name, id);
		mdb_txn_abort(txn);
		return err;
	}
	if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return store__err(rc);
	}
	crypto_sign_keypair(id->public_key, id->secret_key);
	store__node_id(id);
	id->created = 1;
	Mesh__StoredIdentity rec = MESH__STORED_IDENTITY__INIT;
	rec.name = (char *)name;
	rec.public_key.data = id->public_key;
	rec.public_key.len = STORE_PUBKEY_BYTES;
	rec.secret_key.data = id->secret_key;
	rec.secret_key.len = STORE_SECKEY_BYTES;
	uint8_t buf[256];
	size_t n = mesh__stored_identity__get_packed_size(&rec);
	if (n > sizeof(buf)) {
		mdb_txn_abort(txn);
		return MESH_EINVAL;
	}
	mesh__stored_identity__pack(&rec, buf);
	v.mv_size = n;
	v.mv_data = buf;
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	sodium_memzero(buf, sizeof(buf));
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	return store__err(rc);
}

static int
store__incarnation_update(struct store *s, uint32_t want, int bump,
			  uint32_t *out)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		return store__err(rc);
	MDB_val k = {strlen(STORE_KEY_INCARNATION), STORE_KEY_INCARNATION};
	MDB_val v;
	uint32_t cur = 0;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0) {
		if (v.mv_size != sizeof(cur)) {
			mdb_txn_abort(txn);
			return MESH_ECORRUPT;
		}
		memcpy(&cur, v.mv_data, sizeof(cur));
	} else if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return store__err(rc);
	}
	uint32_t next = cur;
	if (bump) {
		if (cur == UINT32_MAX) {
			mdb_txn_abort(txn);
			return MESH_ERANGE;
		}
		next = cur + 1;
	} else if (want > cur) {
		next = want;
	}
	if (next == cur) {
		mdb_txn_abort(txn);
		*out = cur;
		return 0;
	}
	v.mv_size = sizeof(next);
	v.mv_data = &next;
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc == 0)
		*out = next;
	return store__err(rc);
}

int
store_incarnation_next(struct store *s, uint32_t *inc)
{
	return store__incarnation_update(s, 0, 1, inc);
}

int
store_incarnation_save(struct store *s, uint32_t inc)
{
	uint32_t ignored;
	return store__incarnation_update(s, inc, 0, &ignored);
}

static int
store__flag_key(const char *name, char *key, size_t cap)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64 || n + 6 > cap)
		return MESH_EINVAL;
	memcpy(key, "flag:", 5);
	memcpy(key + 5, name, n + 1);
	return 0;
}

int
store_flag_set(struct store *s, const char *name, bool on)
{
	char key[80];
	int rc = store__flag_key(name, key, sizeof(key));
	if (rc != 0)
		return rc;
	MDB_txn *txn;
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		return store__err(rc);
	uint8_t v8 = on ? 1 : 0;
	MDB_val k = {strlen(key), key};
	MDB_val v = {1, &v8};
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	return store__err(rc);
}

int
store_flag_get(struct store *s, const char *name, bool *on)
{
	char key[80];
	*on = false;
	int rc = store__flag_key(name, key, sizeof(key));
	if (rc != 0)
		return rc;
	MDB_txn *txn;
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return store__err(rc);
	MDB_val k = {strlen(key), key};
	MDB_val v;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0 && v.mv_size != 1)
		rc = MDB_CORRUPTED;
	if (rc == 0)
		*on = *(const uint8_t *)v.mv_data != 0;
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}
