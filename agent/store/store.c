#include "store_impl.h"

#include "mesh.pb-c.h"
#include "mesh_err.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_KEY_IDENTITY "identity"
#define STORE_KEY_INCARNATION "incarnation"

struct store {
	MDB_env *env;
	MDB_dbi meta;
	const struct mesh_env *menv;
	struct store__kv kv;
	char dir[4096];
	char path[4096 + 16]; /* dir/mesh.mdb */
};

int
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
	case MDB_PAGE_NOTFOUND:
	case MDB_INCOMPATIBLE: /* "meta" or "tenant" is not our database */
		return MESH_ECORRUPT;
	default:
		return MESH_EIO;
	}
}

/*
 * Size of the map to ask LMDB for. 0 gives STORE_MAP_DEFAULT_BYTES, 1 GiB:
 * the map only reserves address space and bounds the file; LMDB writes
 * pages with pwrite() (no MDB_WRITEMAP) so mesh.mdb grows with the data and
 * untouched parts of the map cost neither disk nor RAM. So the size is only
 * a cap, and the cap should not be what stops a node: tenant state lives
 * here, which the old fixed 64 MiB was never meant for. 1 GiB still fits
 * in a 32-bit address space. Rounded up to whole OS pages as LMDB wants.
 */
static int
store__map_size(uint64_t map_bytes, size_t *out)
{
	if (map_bytes == 0)
		map_bytes = STORE_MAP_DEFAULT_BYTES;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t p = page > 0 ? (uint64_t)page : 4096;
	if (map_bytes > SIZE_MAX - p)
		return MESH_EINVAL;
	map_bytes = (map_bytes + p - 1) / p * p;
	*out = (size_t)map_bytes;
	return 0;
}

/* "... check its permissions ..." for an errno of opening a file. */
static const char *
store__open_hint(int e)
{
	switch (e) {
	case EROFS:
		return ": meshd writes its data directory, mount it read-write";
	case EACCES:
	case EPERM:
		return ": meshd writes its data directory, give its user write "
		       "access to it";
	case ENOSPC:
	case EDQUOT:
		return ": free space on that filesystem";
	default:
		return "";
	}
}

static int
store__create_env(const char *path, size_t map, MDB_env **env)
{
	int rc = mdb_env_create(env);
	if (rc == 0)
		rc = mdb_env_set_mapsize(*env, map);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(*env, 8);
	if (rc == 0)
		rc = mdb_env_open(*env, path, MDB_NOSUBDIR, 0600);
	return rc;
}

/*
 * Makes a new, empty store at @s->path, whole or not at all. LMDB writes a
 * new file in steps (meta pages, then the first commit), and a first start
 * that stopped between them (a full disk, kill -9) left a file that every
 * later start refused: an empty mesh.mdb opened as a new store, a 4 KiB
 * one as "not an LMDB file". So it is made under another name and renamed
 * into place once its first commit is synced. Then a mesh.mdb of any size
 * that does not check out is damage, never a first start cut short.
 */
static int
store__create(struct store *s, const char *dir, size_t map)
{
	char tmp[4200], tmplock[4210];
	snprintf(tmp, sizeof(tmp), "%s.new", s->path);
	snprintf(tmplock, sizeof(tmplock), "%s-lock", tmp);
	unlink(tmp);
	int err = store__lock_prepare(tmplock, s->menv);
	if (err != 0) {
		unlink(tmplock);
		return err;
	}
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	int rc = store__create_env(tmp, map, &env);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "tenant", MDB_CREATE, &dbi);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	if (rc == 0 && rename(tmp, s->path) != 0)
		rc = errno;
	if (rc == 0) {
		/* The rename is durable once the directory is synced. */
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0)
			rc = errno;
		if (dfd >= 0)
			close(dfd);
	}
	unlink(tmplock);
	if (rc == 0)
		return 0;
	unlink(tmp);
	bool full = store__disk_full(rc, -1, dir);
	MESH_LOG(s->menv, MESH_LOG_ERROR,
		 "store: cannot create %s: %s%s; nothing was left behind",
		 s->path, mdb_strerror(rc),
		 full ? " (the disk is full): free space on that filesystem "
			"and start again"
		      : store__open_hint(rc));
	return full ? MESH_ENOSPC : store__err(rc);
}

/*
 * Checks the existing @s->path before LMDB maps it: a regular file, which
 * meshd can write, and which store__verify() accepts.
 */
static int
store__check_file(struct store *s)
{
	struct stat st;
	if (stat(s->path, &st) != 0) {
		int e = errno;
		MESH_LOG(s->menv, MESH_LOG_ERROR, "store: %s: %s%s", s->path,
			 strerror(e),
			 e == ENOENT ? " (a link to a file that is not there: "
				       "is its filesystem mounted?)"
				     : "");
		return MESH_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		MESH_LOG(s->menv, MESH_LOG_ERROR,
			 "store: %s is a %s, not a data file; move it aside "
			 "and start again",
			 s->path,
			 S_ISDIR(st.st_mode)	? "directory"
			 : S_ISFIFO(st.st_mode) ? "FIFO"
			 : S_ISSOCK(st.st_mode) ? "socket"
						: "device");
		return MESH_ECORRUPT;
	}
	int fd = open(s->path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		MESH_LOG(s->menv, MESH_LOG_ERROR,
			 "store: cannot open %s for writing: %s%s", s->path,
			 strerror(e), store__open_hint(e));
		return MESH_EIO;
	}
	int err = store__verify(fd, s->path, s->menv);
	close(fd);
	return err;
}

/* Opens the checked environment of @s and its named databases. */
static int
store__open_env(struct store *s, size_t map)
{
	int rc = store__create_env(s->path, map, &s->env);
	if (rc != 0) {
		bool full = store__disk_full(rc, -1, s->dir);
		MESH_LOG(s->menv, MESH_LOG_ERROR, "store: open %s: %s%s",
			 s->path, mdb_strerror(rc),
			 full ? ": free space on that filesystem"
			      : store__open_hint(rc));
		return full ? MESH_ENOSPC : store__err(rc);
	}
	MDB_stat st;
	s->kv.env = s->env;
	s->kv.menv = s->menv;
	s->kv.path = s->path;
	if (mdb_env_get_fd(s->env, &s->kv.fd) != 0 ||
	    mdb_env_stat(s->env, &st) != 0)
		return MESH_EIO;
	s->kv.psize = st.ms_psize;
	store__assert_hook(&s->kv);
	store__space_check(&s->kv, false, 0);
	MDB_txn *txn = NULL;
	rc = store__write_begin(&s->kv, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "tenant", MDB_CREATE, &s->kv.dbi);
	if (txn != NULL) {
		int end = store__write_end(&s->kv, txn, rc == 0);
		if (rc == 0)
			rc = end;
	}
	if (rc != 0) {
		int err = store__write_err(&s->kv, rc);
		MESH_LOG(s->menv, MESH_LOG_ERROR, "store: open %s: %s", s->path,
			 mdb_strerror(rc));
		return err;
	}
	/*
	 * LMDB never maps less than the pages in use, so a smaller size than
	 * last time opens but leaves less room than asked for; say so.
	 */
	MDB_envinfo info;
	if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize != map)
		MESH_LOG(s->menv, MESH_LOG_WARN,
			 "store: %s: map is %zu bytes, not the %zu asked for: "
			 "the data already uses more",
			 s->path, info.me_mapsize, map);
	return 0;
}

int
store_open(const char *dir, uint64_t map_bytes, const struct mesh_env *env,
	   struct store **out)
{
	*out = NULL;
	size_t map;
	if (store__map_size(map_bytes, &map) != 0)
		return MESH_EINVAL;
	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return MESH_ENOMEM;
	s->menv = env;
	s->kv.fd = -1;
	char lock[sizeof(s->path) + 8];
	int err = 0;
	if (snprintf(s->dir, sizeof(s->dir), "%s", dir) >=
		(int)sizeof(s->dir) ||
	    snprintf(s->path, sizeof(s->path), "%s/mesh.mdb", dir) >=
		(int)sizeof(s->path))
		err = MESH_EINVAL;
	struct stat st;
	if (err == 0 && lstat(s->path, &st) != 0) {
		if (errno == ENOENT) {
			err = store__create(s, dir, map);
		} else {
			MESH_LOG(env, MESH_LOG_ERROR, "store: %s: %s", s->path,
				 strerror(errno));
			err = MESH_EIO;
		}
	}
	if (err == 0)
		err = store__check_file(s);
	if (err == 0) {
		snprintf(lock, sizeof(lock), "%s-lock", s->path);
		err = store__lock_prepare(lock, env);
	}
	if (err == 0)
		err = store__open_env(s, map);
	if (err != 0) {
		if (s->env != NULL)
			mdb_env_close(s->env);
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	store__kv_destroy(&s->kv);
	store__guard_release(&s->kv);
	mdb_env_close(s->env);
	free(s);
}

struct store__kv *
store__kv_of(struct store *s)
{
	return &s->kv;
}

int
store__write_begin(struct store__kv *kv, MDB_txn **txn)
{
	*txn = NULL;
	if (kv->batch != NULL && kv->batch_err != 0)
		return MDB_BAD_TXN;
	/*
	 * Inside a batch a child transaction: the writer lock is the batch's
	 * already, and a failed write can be dropped without the batch.
	 */
	return mdb_txn_begin(kv->env, kv->batch, 0, txn);
}

int
store__write_end(struct store__kv *kv, MDB_txn *txn, bool keep)
{
	if (!keep) {
		mdb_txn_abort(txn);
		return 0;
	}
	int rc = mdb_txn_commit(txn);
	/*
	 * A child that fails to merge may already have changed its parent
	 * and then marks it failed (LMDB leaves no way to ask which), so the
	 * batch cannot be trusted any more. Only an allocation failure does
	 * that; a failed put never gets here.
	 */
	if (rc != 0 && kv->batch != NULL)
		kv->batch_err = rc;
	return rc;
}

int
store__read_begin(struct store__kv *kv, MDB_txn **txn)
{
	if (kv->batch != NULL) {
		*txn = kv->batch;
		return 0;
	}
	return mdb_txn_begin(kv->env, NULL, MDB_RDONLY, txn);
}

void
store__read_end(struct store__kv *kv, MDB_txn *txn)
{
	if (txn != kv->batch)
		mdb_txn_abort(txn);
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
	int rc = 0;
	if (rec == NULL || rec->public_key.len != STORE_PUBKEY_BYTES ||
	    rec->secret_key.len != STORE_SECKEY_BYTES) {
		MESH_LOG(s->menv, MESH_LOG_ERROR,
			 "store: %s: the node's identity record is damaged "
			 "(%zu bytes that do not decode to a key "
			 "pair): " STORE__CORRUPT_HOWTO,
			 s->path, v->mv_size);
		if (rec == NULL)
			return MESH_ECORRUPT;
		rc = MESH_ECORRUPT;
	} else if (strcmp(rec->name, name) != 0)
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
	store__space_check(&s->kv, false, 0);
	/* One write transaction, so two first starts cannot both create. */
	MDB_txn *txn;
	int rc = store__write_begin(&s->kv, &txn);
	if (rc != 0)
		return store__err(rc);
	MDB_val k = {strlen(STORE_KEY_IDENTITY), STORE_KEY_IDENTITY};
	MDB_val v;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0) {
		int err = store__decode_identity(s, &v, name, id);
		store__write_end(&s->kv, txn, false);
		return err;
	}
	if (rc != MDB_NOTFOUND) {
		store__write_end(&s->kv, txn, false);
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
		store__write_end(&s->kv, txn, false);
		sodium_memzero(id, sizeof(*id));
		return MESH_EINVAL;
	}
	mesh__stored_identity__pack(&rec, buf);
	v.mv_size = n;
	v.mv_data = buf;
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	sodium_memzero(buf, sizeof(buf));
	if (rc == 0)
		rc = store__write_end(&s->kv, txn, true);
	else
		store__write_end(&s->kv, txn, false);
	if (rc != 0)
		sodium_memzero(id, sizeof(*id));
	return store__write_err(&s->kv, rc);
}

static int
store__incarnation_update(struct store *s, uint32_t *out)
{
	store__space_check(&s->kv, false, 0);
	MDB_txn *txn;
	int rc = store__write_begin(&s->kv, &txn);
	if (rc != 0)
		return store__err(rc);
	MDB_val k = {strlen(STORE_KEY_INCARNATION), STORE_KEY_INCARNATION};
	MDB_val v;
	uint32_t cur = 0;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0) {
		if (v.mv_size != sizeof(cur)) {
			store__write_end(&s->kv, txn, false);
			MESH_LOG(s->menv, MESH_LOG_ERROR,
				 "store: %s: the incarnation record is "
				 "damaged (%zu bytes): " STORE__CORRUPT_HOWTO,
				 s->path, v.mv_size);
			return MESH_ECORRUPT;
		}
		memcpy(&cur, v.mv_data, sizeof(cur));
	} else if (rc != MDB_NOTFOUND) {
		store__write_end(&s->kv, txn, false);
		return store__err(rc);
	}
	if (cur == UINT32_MAX) {
		store__write_end(&s->kv, txn, false);
		return MESH_ERANGE;
	}
	uint32_t next = cur + 1;
	v.mv_size = sizeof(next);
	v.mv_data = &next;
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc == 0)
		rc = store__write_end(&s->kv, txn, true);
	else
		store__write_end(&s->kv, txn, false);
	if (rc == 0)
		*out = next;
	return store__write_err(&s->kv, rc);
}

int
store_incarnation_next(struct store *s, uint32_t *inc)
{
	return store__incarnation_update(s, inc);
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
	store__space_check(&s->kv, false, 0);
	MDB_txn *txn;
	rc = store__write_begin(&s->kv, &txn);
	if (rc != 0)
		return store__err(rc);
	uint8_t v8 = on ? 1 : 0;
	MDB_val k = {strlen(key), key};
	MDB_val v = {1, &v8};
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc == 0)
		rc = store__write_end(&s->kv, txn, true);
	else
		store__write_end(&s->kv, txn, false);
	return store__write_err(&s->kv, rc);
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
	rc = store__read_begin(&s->kv, &txn);
	if (rc != 0)
		return store__err(rc);
	MDB_val k = {strlen(key), key};
	MDB_val v;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0 && v.mv_size != 1)
		rc = MDB_CORRUPTED;
	if (rc == 0)
		*on = *(const uint8_t *)v.mv_data != 0;
	store__read_end(&s->kv, txn);
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}
