/*
 * store_check.c - checks mesh.mdb with pread() before LMDB maps it.
 *
 * LMDB trusts its data file. It reads pages through a shared mapping and
 * follows every page number, node offset and size it finds there, so a file
 * damaged on disk does not give an error: it kills the process. Tried on
 * LMDB 0.9.24: a page size of 0 in the meta page raises SIGFPE, a huge one
 * SIGBUS; a root page number of 0 or 1 trips an assert() (SIGABRT); a root
 * that names a free page trips another inside the first write; node offsets
 * overwritten in a leaf read past the end of the file (SIGBUS); a root of
 * P_INVALID opens as an empty database, so a node silently made a new
 * identity. None of these can be caught once LMDB runs.
 *
 * So before mdb_env_open() this file walks what LMDB would: both meta
 * pages, then every tree of the newest one (the free list, the main
 * database and each named database in it), with pread() into private
 * buffers. A page is accepted only if everything LMDB will follow from it
 * stays inside the page and the file: header bounds, each node's offset and
 * size, child and overflow page numbers within the pages in use, the type
 * each page must have at its place, keys in order. Every page may be used
 * once, by one tree or by the free list, never both: a page both live and
 * free would be handed out again and overwritten. Each tree's counts
 * (entries, branch, leaf and overflow pages, depth) must equal what its
 * record says, which catches subtrees that are cut off. A page neither
 * used nor free is only a leak and is logged, not refused.
 *
 * Cost: one pread() per branch or leaf page and one small read per
 * overflow value (its header, not its data), once per start. Values are
 * not checked: LMDB has no checksums, and whoever decodes a value must
 * check it (store_identity_load() and the tenant core do).
 *
 * This parses LMDB 0.9's format (MDB_DATA_VERSION 1, native byte order,
 * size_t page numbers); the #if below stops the build on another LMDB.
 * The layouts mirror mdb.c's MDB_page, MDB_node, MDB_db and MDB_meta.
 */
#include "store_impl.h"

#include "mesh_err.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if MDB_VERSION_MAJOR != 0 || MDB_VERSION_MINOR != 9
#error "store_check.c parses LMDB 0.9's file format; check it against this LMDB"
#endif

#define STORE__MAGIC 0xBEEFC0DEu
#define STORE__DATA_VERSION 1u
#define STORE__P_INVALID (~(size_t)0)
#define STORE__NUM_METAS 2
#define STORE__CURSOR_STACK 32 /* LMDB's deepest tree */
#define STORE__KEY_MAX 511
#define STORE__PSIZE_MIN 512
#define STORE__PSIZE_MAX 32768 /* node offsets are 16 bits, PAGEBASE 0 */

/*
 * mp_flags. On disk a page has exactly its type: LMDB clears P_DIRTY
 * before it writes a page and never writes one marked P_LOOSE or P_KEEP.
 * Those two matter: a page read with either would be skipped when the
 * next commit writes its copy, so that commit would lose it.
 */
#define STORE__P_BRANCH 0x01
#define STORE__P_LEAF 0x02
#define STORE__P_OVERFLOW 0x04
#define STORE__P_META 0x08
#define STORE__P_LEAF2 0x20
#define STORE__P_SUBP 0x40
#define STORE__P_TYPE                                                          \
	(STORE__P_BRANCH | STORE__P_LEAF | STORE__P_OVERFLOW | STORE__P_META | \
	 STORE__P_LEAF2 | STORE__P_SUBP)
/* mn_flags of a leaf node */
#define STORE__F_BIGDATA 0x01
#define STORE__F_SUBDATA 0x02
#define STORE__F_DUPDATA 0x04
/* md_flags that change how pages are laid out or keys compared */
#define STORE__DB_DUPS                                                         \
	(MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP)
#define STORE__DB_KEYS (MDB_REVERSEKEY | MDB_INTEGERKEY)

struct store__mdb_db {
	uint32_t pad; /* the free DB's holds the page size */
	uint16_t flags;
	uint16_t depth;
	size_t branch_pages;
	size_t leaf_pages;
	size_t overflow_pages;
	size_t entries;
	size_t root;
};

struct store__mdb_meta {
	uint32_t magic;
	uint32_t version;
	uintptr_t address;
	size_t mapsize;
	struct store__mdb_db dbs[2]; /* free list, main */
	size_t last_pg;
	size_t txnid;
};

/* MDB_page up to mp_ptrs: page number, pad, flags, lower/upper or pages. */
#define STORE__HDR (sizeof(size_t) + 2 * sizeof(uint16_t) + sizeof(uint32_t))
#define STORE__NODE 8 /* offsetof(MDB_node, mn_data) */

struct store__page {
	size_t pgno;
	uint16_t flags;
	uint16_t lower;
	uint16_t upper;
	uint32_t pages; /* overflow pages: the same bytes as lower, upper */
};

enum store__tree_kind { STORE__TREE_FREE, STORE__TREE_MAIN, STORE__TREE_NAMED };

/* What one walk of a tree counted, to compare with its MDB_db. */
struct store__tree {
	enum store__tree_kind kind;
	const char *name; /* for messages */
	size_t branch, leaf, overflow, entries;
	unsigned depth; /* of its leaves, all equal */
	unsigned base;	/* page buffers in use below this tree's root */
	bool ordered;	/* keys compare with memcmp, shorter first */
	uint8_t last[STORE__KEY_MAX];
	size_t last_len;
	bool have_last;
};

struct store__check {
	int fd;
	const char *path;
	const struct mesh_env *menv;
	uint64_t file_size;
	size_t psize;
	size_t last_pg;
	uint8_t *used; /* bit per page: taken by a tree or overflow value */
	uint8_t *free; /* bit per page: listed in the free list */
	/* A page buffer per level: a named database's tree is walked from a
	 * leaf of the main one, whose buffer must stay. */
	uint8_t *level[2 * STORE__CURSOR_STACK + 1];
	int err; /* first error, logged */
};

static bool
store__bit(const uint8_t *map, size_t i)
{
	return (map[i / 8] >> (i % 8)) & 1;
}

static void
store__bit_set(uint8_t *map, size_t i)
{
	map[i / 8] |= (uint8_t)(1u << (i % 8));
}

/*
 * Records the first error, with one log line that names the file, the
 * fault and what to do. Returns @err so callers can return it.
 */
static int store__fail(struct store__check *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
store__fail(struct store__check *c, int err, const char *fmt, ...)
{
	if (c->err != 0)
		return c->err;
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	c->err = err;
	if (err == MESH_ECORRUPT)
		MESH_LOG(
		    c->menv, MESH_LOG_ERROR,
		    "store: %s is damaged: %s. It is not opened (LMDB "
		    "would crash on it or lose data): " STORE__CORRUPT_HOWTO,
		    c->path, what);
	else
		MESH_LOG(c->menv, MESH_LOG_ERROR, "store: cannot check %s: %s",
			 c->path, what);
	return err;
}

/* Reads exactly @len bytes at @off; a short read means the file is short. */
static int
store__read(struct store__check *c, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(c->fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return store__fail(c, MESH_EIO,
					   "read of %zu bytes at offset %llu: "
					   "%s (is the disk failing?)",
					   len, (unsigned long long)off,
					   strerror(errno));
		if (n == 0)
			return store__fail(c, MESH_ECORRUPT,
					   "it ends at byte %llu, inside data "
					   "it says it holds (truncated)",
					   (unsigned long long)(off + done));
		done += (size_t)n;
	}
	return 0;
}

static uint16_t
store__u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static size_t
store__word(const uint8_t *p)
{
	size_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static void
store__page_header(const uint8_t *b, struct store__page *h)
{
	h->pgno = store__word(b);
	h->flags = store__u16(b + sizeof(size_t) + 2);
	h->lower = store__u16(b + sizeof(size_t) + 4);
	h->upper = store__u16(b + sizeof(size_t) + 6);
	memcpy(&h->pages, b + sizeof(size_t) + 4, sizeof(h->pages));
}

/* A node's fields; mn_lo and mn_hi swap places on big-endian machines. */
struct store__node {
	size_t lohi; /* data size of a leaf node, page number of a branch one */
	uint16_t flags;
	uint16_t ksize;
};

static void
store__node_read(const uint8_t *p, struct store__node *n)
{
	uint16_t a = store__u16(p), b = store__u16(p + 2);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	uint16_t lo = b, hi = a;
#else
	uint16_t lo = a, hi = b;
#endif
	n->flags = store__u16(p + 4);
	n->ksize = store__u16(p + 6);
	n->lohi = (size_t)lo | (size_t)hi << 16;
}

static size_t
store__node_pgno(const struct store__node *n)
{
	size_t pgno = n->lohi;
	/* A branch node keeps the high bits of a 64-bit page number in
	 * mn_flags. */
	if (sizeof(size_t) > 4)
		pgno |= (size_t)n->flags << 16 << 16;
	return pgno;
}

/* Pages taken by an overflow value of @size bytes: OVPAGES() in mdb.c. */
static size_t
store__ovpages(const struct store__check *c, size_t size)
{
	return (STORE__HDR - 1 + size) / c->psize + 1;
}

static int
store__key_order(struct store__check *c, struct store__tree *t, size_t pgno,
		 const uint8_t *key, size_t klen)
{
	if (t->kind == STORE__TREE_FREE) {
		/* Integer keys: the transaction ids, ascending. */
		if (klen != sizeof(size_t))
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: a free-list key of %zu "
					   "bytes",
					   pgno, klen);
		if (t->have_last && store__word(key) <= store__word(t->last))
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: free-list keys out of "
					   "order",
					   pgno);
	} else if (t->ordered && t->have_last &&
		   store__kv_cmp(t->last, t->last_len, key, klen) >= 0) {
		return store__fail(c, MESH_ECORRUPT,
				   "page %zu: keys of database '%s' out of "
				   "order",
				   pgno, t->name);
	}
	memcpy(t->last, key, klen);
	t->last_len = klen;
	t->have_last = true;
	return 0;
}

/* Marks @n pages from @pgno as used by a tree; each may be used once. */
static int
store__use(struct store__check *c, const struct store__tree *t, size_t pgno,
	   size_t n)
{
	if (pgno < STORE__NUM_METAS || pgno > c->last_pg ||
	    n > c->last_pg - pgno + 1)
		return store__fail(c, MESH_ECORRUPT,
				   "database '%s' points at page %zu%s, "
				   "outside pages 2..%zu in use",
				   t->name, pgno, n > 1 ? " and on" : "",
				   c->last_pg);
	for (size_t i = pgno; i < pgno + n; i++) {
		if (store__bit(c->used, i))
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu is used twice (database "
					   "'%s')",
					   i, t->name);
		store__bit_set(c->used, i);
	}
	return 0;
}

static int store__walk(struct store__check *c, struct store__tree *t,
		       size_t pgno, unsigned depth);
static int store__tree_check(struct store__check *c, const char *name,
			     enum store__tree_kind kind, unsigned base,
			     const struct store__mdb_db *db);

/* A free-list record: a count, then that many free page numbers. */
static int
store__free_ids(struct store__check *c, size_t pgno, const uint8_t *data,
		size_t dsize)
{
	size_t w = sizeof(size_t);
	size_t count = dsize >= w ? store__word(data) : 0;
	if (dsize < w || count > dsize / w - 1)
		return store__fail(c, MESH_ECORRUPT,
				   "page %zu: a free-list record of %zu bytes "
				   "claims %zu pages",
				   pgno, dsize, count);
	for (size_t i = 1; i <= count; i++) {
		size_t id = store__word(data + i * w);
		if (id < STORE__NUM_METAS || id > c->last_pg)
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: the free list names page "
					   "%zu, outside pages 2..%zu in use",
					   pgno, id, c->last_pg);
		if (store__bit(c->free, id))
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu is listed free twice", id);
		store__bit_set(c->free, id);
	}
	return 0;
}

/* A named database's record in the main database. */
static int
store__named(struct store__check *c, const struct store__tree *main,
	     size_t pgno, const uint8_t *key, size_t klen, const uint8_t *data,
	     size_t dsize)
{
	struct store__mdb_db db;
	if (dsize != sizeof(db))
		return store__fail(c, MESH_ECORRUPT,
				   "page %zu: a database record of %zu bytes",
				   pgno, dsize);
	memcpy(&db, data, sizeof(db));
	char name[64];
	size_t n = klen < sizeof(name) - 1 ? klen : sizeof(name) - 1;
	for (size_t i = 0; i < n; i++)
		name[i] = key[i] >= 0x20 && key[i] < 0x7f ? (char)key[i] : '?';
	name[n] = 0;
	return store__tree_check(c, name, STORE__TREE_NAMED, main->depth, &db);
}

/* The value of a leaf node: in the page, or in its overflow pages. */
static int
store__leaf_value(struct store__check *c, struct store__tree *t, size_t pgno,
		  const uint8_t *b, size_t at, const struct store__node *n,
		  const uint8_t *key)
{
	size_t dsize = n->lohi;
	const uint8_t *data = b + at;
	uint8_t *big = NULL;
	if (n->flags & STORE__F_BIGDATA) {
		size_t ov = store__word(b + at);
		if (ov < STORE__NUM_METAS || ov > c->last_pg)
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: a value stored at page "
					   "%zu, outside pages 2..%zu in use",
					   pgno, ov, c->last_pg);
		uint8_t hb[STORE__HDR];
		if (store__read(c, hb, sizeof(hb), (uint64_t)ov * c->psize))
			return c->err;
		struct store__page h;
		store__page_header(hb, &h);
		if (h.pgno != ov || h.flags != STORE__P_OVERFLOW)
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu should hold a value of "
					   "page %zu but is not an overflow "
					   "page",
					   ov, pgno);
		if (h.pages < store__ovpages(c, dsize))
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: a value of %zu bytes in "
					   "%u pages",
					   ov, dsize, h.pages);
		if (store__use(c, t, ov, h.pages) != 0)
			return c->err;
		t->overflow += h.pages;
		if (t->kind != STORE__TREE_FREE)
			return 0;
		/* The free list's own records are read whole. */
		big = malloc(dsize > 0 ? dsize : 1);
		if (big == NULL)
			return store__fail(c, MESH_ENOMEM, "out of memory");
		if (store__read(c, big, dsize,
				(uint64_t)ov * c->psize + STORE__HDR)) {
			free(big);
			return c->err;
		}
		data = big;
	}
	int rc = 0;
	if (t->kind == STORE__TREE_FREE)
		rc = store__free_ids(c, pgno, data, dsize);
	else if (t->kind == STORE__TREE_MAIN && (n->flags & STORE__F_SUBDATA))
		rc = store__named(c, t, pgno, key, n->ksize, data, dsize);
	free(big);
	return rc;
}

/*
 * Checks the nodes of page @pgno (in @b, already known to be a branch or a
 * leaf page at @depth) and walks on into its children.
 */
static int
store__nodes(struct store__check *c, struct store__tree *t, size_t pgno,
	     const uint8_t *b, const struct store__page *h, unsigned depth)
{
	bool branch = h->flags == STORE__P_BRANCH;
	size_t nkeys = (h->lower - STORE__HDR) / 2;
	size_t packed = 0;
	for (size_t i = 0; i < nkeys; i++) {
		size_t at = store__u16(b + STORE__HDR + 2 * i);
		if (at < h->upper || (at & 1) || at + STORE__NODE > c->psize)
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: node %zu at offset %zu, "
					   "outside the page's node area",
					   pgno, i, at);
		struct store__node n;
		store__node_read(b + at, &n);
		size_t key = at + STORE__NODE;
		if (n.ksize > STORE__KEY_MAX || key + n.ksize > c->psize)
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: node %zu has a key of "
					   "%u bytes",
					   pgno, i, n.ksize);
		size_t size = STORE__NODE + n.ksize;
		if (branch) {
			/*
			 * Separator keys are only compared, never followed;
			 * the order of keys is checked on the leaves, which
			 * the walk visits in order.
			 */
			if (store__walk(c, t, store__node_pgno(&n), depth + 1))
				return c->err;
			packed += (size + 1) & ~(size_t)1;
			continue;
		}
		if (n.flags &
			~(unsigned)(STORE__F_BIGDATA | STORE__F_SUBDATA) ||
		    ((n.flags & STORE__F_SUBDATA) &&
		     t->kind != STORE__TREE_MAIN))
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: node %zu has flags 0x%x",
					   pgno, i, n.flags);
		size_t dlen =
		    (n.flags & STORE__F_BIGDATA) ? sizeof(size_t) : n.lohi;
		if (dlen > c->psize - key - n.ksize)
			return store__fail(c, MESH_ECORRUPT,
					   "page %zu: node %zu has a value of "
					   "%zu bytes",
					   pgno, i, n.lohi);
		size += dlen;
		packed += (size + 1) & ~(size_t)1;
		if (store__key_order(c, t, pgno, b + key, n.ksize) != 0 ||
		    store__leaf_value(c, t, pgno, b, key + n.ksize, &n,
				      b + key) != 0)
			return c->err;
		t->entries++;
	}
	/* LMDB keeps nodes packed from mp_upper to the end of the page. */
	if (packed != c->psize - h->upper)
		return store__fail(c, MESH_ECORRUPT,
				   "page %zu: nodes take %zu bytes, its header "
				   "says %zu",
				   pgno, packed, c->psize - h->upper);
	return 0;
}

static int
store__walk(struct store__check *c, struct store__tree *t, size_t pgno,
	    unsigned depth)
{
	if (depth > STORE__CURSOR_STACK)
		return store__fail(c, MESH_ECORRUPT,
				   "database '%s' is deeper than %d levels",
				   t->name, STORE__CURSOR_STACK);
	if (store__use(c, t, pgno, 1) != 0)
		return c->err;
	unsigned at = t->base + depth;
	if (c->level[at] == NULL) {
		c->level[at] = malloc(c->psize);
		if (c->level[at] == NULL)
			return store__fail(c, MESH_ENOMEM, "out of memory");
	}
	uint8_t *b = c->level[at];
	if (store__read(c, b, c->psize, (uint64_t)pgno * c->psize) != 0)
		return c->err;
	struct store__page h;
	store__page_header(b, &h);
	unsigned type = h.flags;
	if (h.pgno != pgno ||
	    (type != STORE__P_BRANCH && type != STORE__P_LEAF))
		return store__fail(c, MESH_ECORRUPT,
				   "page %zu of database '%s' is not a tree "
				   "page (header: page %zu, flags 0x%x)",
				   pgno, t->name, h.pgno, h.flags);
	if (h.lower < STORE__HDR || ((h.lower - STORE__HDR) & 1) ||
	    h.lower > h.upper || h.upper > c->psize ||
	    (type == STORE__P_BRANCH && h.lower == STORE__HDR))
		return store__fail(c, MESH_ECORRUPT,
				   "page %zu: header bounds %u..%u do not fit "
				   "a page of %zu bytes",
				   pgno, h.lower, h.upper, c->psize);
	if (type == STORE__P_BRANCH) {
		t->branch++;
	} else {
		t->leaf++;
		if (t->depth == 0)
			t->depth = depth;
		if (t->depth != depth)
			return store__fail(c, MESH_ECORRUPT,
					   "database '%s' has leaves at depths "
					   "%u and %u",
					   t->name, t->depth, depth);
	}
	return store__nodes(c, t, pgno, b, &h, depth);
}

static int
store__tree_check(struct store__check *c, const char *name,
		  enum store__tree_kind kind, unsigned base,
		  const struct store__mdb_db *db)
{
	struct store__tree *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return store__fail(c, MESH_ENOMEM, "out of memory");
	t->kind = kind;
	t->name = name;
	t->base = base;
	t->ordered = kind != STORE__TREE_FREE && !(db->flags & STORE__DB_KEYS);
	int rc = 0;
	/* The free list's flags word holds the environment's flags. */
	if (kind != STORE__TREE_FREE && (db->flags & STORE__DB_DUPS))
		rc = store__fail(c, MESH_ECORRUPT,
				 "database '%s' has flags 0x%x: this store "
				 "never makes duplicate-key databases",
				 name, db->flags);
	if (rc == 0 && db->root != STORE__P_INVALID)
		rc = store__walk(c, t, db->root, 1);
	if (rc == 0 &&
	    (t->entries != db->entries || t->branch != db->branch_pages ||
	     t->leaf != db->leaf_pages || t->overflow != db->overflow_pages ||
	     t->depth != db->depth))
		rc = store__fail(
		    c, MESH_ECORRUPT,
		    "database '%s' holds %zu entries in %zu+%zu+%zu "
		    "pages, depth %u, but its record says %zu in "
		    "%zu+%zu+%zu, depth %u (part of it is lost)",
		    name, t->entries, t->branch, t->leaf, t->overflow, t->depth,
		    db->entries, db->branch_pages, db->leaf_pages,
		    db->overflow_pages, db->depth);
	free(t);
	return rc;
}

/* Reads and checks meta page @i; fills *@m. */
static int
store__meta(struct store__check *c, int i, struct store__mdb_meta *m)
{
	uint8_t b[STORE__HDR + sizeof(*m)];
	uint64_t off = (uint64_t)i * c->psize;
	if (c->file_size < off + sizeof(b))
		return store__fail(c, MESH_ECORRUPT,
				   "it is %llu bytes, too short for LMDB's "
				   "meta page %d (truncated, or not an LMDB "
				   "file)",
				   (unsigned long long)c->file_size, i);
	if (store__read(c, b, sizeof(b), off) != 0)
		return c->err;
	struct store__page h;
	store__page_header(b, &h);
	memcpy(m, b + STORE__HDR, sizeof(*m));
	if ((h.flags & STORE__P_TYPE) != STORE__P_META ||
	    m->magic != STORE__MAGIC)
		return store__fail(c, MESH_ECORRUPT,
				   "meta page %d has no LMDB header (not an "
				   "LMDB file, or overwritten)",
				   i);
	if (m->version != STORE__DATA_VERSION)
		return store__fail(c, MESH_ECORRUPT,
				   "meta page %d has LMDB format version %u, "
				   "this LMDB reads %u",
				   i, m->version, STORE__DATA_VERSION);
	size_t psize = m->dbs[0].pad;
	if (psize < STORE__PSIZE_MIN || psize > STORE__PSIZE_MAX ||
	    (psize & (psize - 1)) != 0 || (i > 0 && psize != c->psize))
		return store__fail(c, MESH_ECORRUPT,
				   "meta page %d gives a page size of %zu", i,
				   psize);
	/* mdb_env_write_meta() writes transaction N to meta page N % 2. */
	if (m->txnid != 0 && (m->txnid & 1) != (size_t)i)
		return store__fail(c, MESH_ECORRUPT,
				   "meta page %d holds transaction %zu, which "
				   "belongs in the other one",
				   i, m->txnid);
	if (m->txnid > (~(size_t)0 >> 2))
		return store__fail(c, MESH_ECORRUPT,
				   "meta page %d holds transaction %zu", i,
				   m->txnid);
	c->psize = psize;
	return 0;
}

int
store__verify(int fd, const char *path, const struct mesh_env *menv)
{
	struct store__check c = {.fd = fd, .path = path, .menv = menv};
	struct stat st;
	if (fstat(fd, &st) != 0)
		return store__fail(&c, MESH_EIO, "stat: %s", strerror(errno));
	c.file_size = (uint64_t)st.st_size;
	if (c.file_size == 0)
		return store__fail(&c, MESH_ECORRUPT,
				   "it is empty (0 bytes), so the node's "
				   "identity and data are gone");
	struct store__mdb_meta m[STORE__NUM_METAS];
	c.psize = 0;
	if (store__meta(&c, 0, &m[0]) != 0 || store__meta(&c, 1, &m[1]) != 0)
		return c.err;
	/* Which one LMDB uses: mdb_env_pick_meta(). */
	const struct store__mdb_meta *cur = &m[m[0].txnid < m[1].txnid];
	uint64_t pages = c.file_size / c.psize;
	if (cur->last_pg < STORE__NUM_METAS - 1 || cur->last_pg >= pages)
		return store__fail(&c, MESH_ECORRUPT,
				   "it is %llu bytes but its meta page says "
				   "pages 0..%zu of %zu bytes are in use "
				   "(truncated)",
				   (unsigned long long)c.file_size,
				   cur->last_pg, c.psize);
	c.last_pg = cur->last_pg;
	size_t bytes = c.last_pg / 8 + 1;
	c.used = calloc(1, bytes);
	c.free = calloc(1, bytes);
	if (c.used == NULL || c.free == NULL) {
		store__fail(&c, MESH_ENOMEM, "out of memory");
	} else if (store__tree_check(&c, "(free list)", STORE__TREE_FREE, 0,
				     &cur->dbs[0]) == 0 &&
		   store__tree_check(&c, "(main)", STORE__TREE_MAIN, 0,
				     &cur->dbs[1]) == 0) {
		size_t leaked = 0;
		for (size_t p = STORE__NUM_METAS; p <= c.last_pg; p++) {
			bool u = store__bit(c.used, p);
			bool f = store__bit(c.free, p);
			if (u && f) {
				store__fail(&c, MESH_ECORRUPT,
					    "page %zu is in use and also "
					    "listed free",
					    p);
				break;
			}
			leaked += !u && !f;
		}
		if (c.err == 0 && leaked > 0)
			MESH_LOG(menv, MESH_LOG_WARN,
				 "store: %s: %zu of %zu pages are neither "
				 "used nor free (lost space only)",
				 path, leaked, c.last_pg + 1);
	}
	for (size_t i = 0; i < sizeof(c.level) / sizeof(c.level[0]); i++)
		free(c.level[i]);
	free(c.used);
	free(c.free);
	return c.err;
}
