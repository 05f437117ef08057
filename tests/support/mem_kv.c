#include "mem_kv.h"

#include "mesh_err.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

/* Any fixed non-zero seed: the map must not depend on the caller's PRNG. */
#define MEM_KV__SEED 0x9e3779b97f4a7c15ull

struct mem_kv__node {
	size_t klen;
	size_t vlen;
	unsigned int level;
	/* @level links, then the key bytes, then the value bytes. */
	struct mem_kv__node *next[];
};

static unsigned char *
mem_kv__key(struct mem_kv__node *n)
{
	return (unsigned char *)&n->next[n->level];
}

static unsigned char *
mem_kv__val(struct mem_kv__node *n)
{
	return mem_kv__key(n) + n->klen;
}

/* memcmp, then the shorter first: LMDB's default order. */
static int
mem_kv__cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n > 0 ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static bool
mem_kv__key_ok(const void *key, size_t klen)
{
	return key != NULL && klen > 0 && klen <= TENANT_KV_KEY_MAX;
}

/* Height of a new tower: 1, then one more with probability 1/4 each. */
static unsigned int
mem_kv__level(struct mem_kv *m)
{
	/* xorshift64* */
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	uint64_t r = m->rng * 2685821657736338717ull;
	unsigned int level = 1;
	while (level < MEM_KV_LEVELS && (r & 3) == 0) {
		level++;
		r >>= 2;
	}
	return level;
}

/*
 * Returns the first node whose key is >= @key (NULL: none). When @prev is
 * not NULL, prev[i] receives the level-i link that points at or past it,
 * which is where a node for @key is linked in or unlinked from.
 */
static struct mem_kv__node *
mem_kv__seek(struct mem_kv *m, const void *key, size_t klen,
	     struct mem_kv__node ***prev)
{
	struct mem_kv__node **links = m->head;
	for (int i = MEM_KV_LEVELS - 1; i >= 0; i--) {
		while (links[i] != NULL &&
		       mem_kv__cmp(mem_kv__key(links[i]), links[i]->klen, key,
				   klen) < 0)
			links = links[i]->next;
		if (prev != NULL)
			prev[i] = &links[i];
	}
	return links[0];
}

/*
 * One change of a batch: @added was linked in, @removed taken out (either
 * may be NULL, not both). Undoing it unlinks and frees @added and links
 * @removed back; keeping the batch frees @removed.
 */
struct mem_kv__undo {
	struct mem_kv__node *added;
	struct mem_kv__node *removed;
};

static bool
mem_kv__is(struct mem_kv__node *n, const void *key, size_t klen)
{
	return n != NULL && n->klen == klen &&
	       memcmp(mem_kv__key(n), key, klen) == 0;
}

/* Takes @n out of the lists; @prev as mem_kv__seek() gave it for @n. */
static void
mem_kv__detach(struct mem_kv *m, struct mem_kv__node *n,
	       struct mem_kv__node ***prev)
{
	for (unsigned int i = 0; i < n->level; i++)
		*prev[i] = n->next[i];
	m->count--;
	m->bytes -= n->klen + n->vlen;
}

/* Links @n in where mem_kv__seek() for its key, which is absent, said. */
static void
mem_kv__attach(struct mem_kv *m, struct mem_kv__node *n,
	       struct mem_kv__node ***prev)
{
	for (unsigned int i = 0; i < n->level; i++) {
		n->next[i] = *prev[i];
		*prev[i] = n;
	}
	m->count++;
	m->bytes += n->klen + n->vlen;
}

static int
mem_kv__get(void *ctx, const void *key, size_t klen, const void **val,
	    size_t *vlen)
{
	struct mem_kv *m = ctx;
	if (!mem_kv__key_ok(key, klen))
		return MESH_ENOENT;
	struct mem_kv__node *n = mem_kv__seek(m, key, klen, NULL);
	if (!mem_kv__is(n, key, klen))
		return MESH_ENOENT;
	*val = mem_kv__val(n);
	*vlen = n->vlen;
	return 0;
}

static int
mem_kv__scan(void *ctx, const void *prefix, size_t plen, const void *from,
	     size_t flen, tenant_kv_visit_fn *fn, void *arg)
{
	struct mem_kv *m = ctx;
	if (from == NULL)
		flen = 0;
	const void *start = prefix;
	size_t slen = plen;
	if (flen > 0 && mem_kv__cmp(from, flen, prefix, plen) > 0) {
		start = from;
		slen = flen;
	}
	for (struct mem_kv__node *n = mem_kv__seek(m, start, slen, NULL);
	     n != NULL; n = n->next[0]) {
		const unsigned char *key = mem_kv__key(n);
		if (n->klen < plen ||
		    (plen > 0 && memcmp(key, prefix, plen) != 0))
			break;
		int rc = fn(arg, key, n->klen, mem_kv__val(n), n->vlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Frees a chain of prepared nodes linked through next[0]. */
static void
mem_kv__free_chain(struct mem_kv *m, struct mem_kv__node *n)
{
	while (n != NULL) {
		struct mem_kv__node *next = n->next[0];
		mesh_free(m->alloc, n);
		n = next;
	}
}

static struct mem_kv__node *
mem_kv__node_new(struct mem_kv *m, const struct tenant_kv_write *w)
{
	unsigned int level = mem_kv__level(m);
	size_t head =
	    sizeof(struct mem_kv__node) + level * sizeof(struct mem_kv__node *);
	if (w->vlen > SIZE_MAX - head - w->klen)
		return NULL;
	struct mem_kv__node *n =
	    mesh_malloc(m->alloc, head + w->klen + w->vlen);
	if (n == NULL)
		return NULL;
	n->klen = w->klen;
	n->vlen = w->vlen;
	n->level = level;
	memcpy(mem_kv__key(n), w->key, w->klen);
	if (w->vlen > 0)
		memcpy(mem_kv__val(n), w->val, w->vlen);
	return n;
}

/* Makes room in the undo log for @n more entries; false: out of memory. */
static bool
mem_kv__undo_reserve(struct mem_kv *m, size_t n)
{
	if (n <= m->undo_cap - m->undo_len)
		return true;
	if (n > SIZE_MAX / sizeof(*m->undo) - m->undo_len)
		return false;
	size_t need = m->undo_len + n;
	/* Doubling keeps a batch of many small commits linear. */
	size_t cap = m->undo_cap < 16 ? 16 : m->undo_cap;
	while (cap < need && cap <= SIZE_MAX / sizeof(*m->undo) / 2)
		cap *= 2;
	if (cap < need)
		cap = need;
	struct mem_kv__undo *undo =
	    mesh_realloc(m->alloc, m->undo, cap * sizeof(*undo));
	if (undo == NULL)
		return false;
	m->undo = undo;
	m->undo_cap = cap;
	return true;
}

static int
mem_kv__commit(void *ctx, const struct tenant_kv_write *w, size_t n)
{
	struct mem_kv *m = ctx;
	for (size_t i = 0; i < n; i++) {
		if (!mem_kv__key_ok(w[i].key, w[i].klen) ||
		    (!w[i].del && w[i].val == NULL && w[i].vlen > 0))
			return MESH_EINVAL;
	}
	if (m->fail_commits > 0) {
		m->fail_commits--;
		return MESH_ENOSPC;
	}
	/* At most one undo entry a write; reserve them before any change. */
	if (m->in_batch && !mem_kv__undo_reserve(m, n))
		return MESH_ENOSPC;
	/*
	 * Allocate every node first, chained in write order through next[0],
	 * so that a failure here leaves the map untouched.
	 */
	struct mem_kv__node *ready = NULL;
	struct mem_kv__node **tail = &ready;
	for (size_t i = 0; i < n; i++) {
		if (w[i].del)
			continue;
		struct mem_kv__node *node = mem_kv__node_new(m, &w[i]);
		if (node == NULL) {
			mem_kv__free_chain(m, ready);
			return MESH_ENOSPC;
		}
		node->next[0] = NULL;
		*tail = node;
		tail = &node->next[0];
	}
	/* From here on nothing can fail. */
	for (size_t i = 0; i < n; i++) {
		struct mem_kv__node **prev[MEM_KV_LEVELS];
		struct mem_kv__node *old =
		    mem_kv__seek(m, w[i].key, w[i].klen, prev);
		if (mem_kv__is(old, w[i].key, w[i].klen))
			mem_kv__detach(m, old, prev);
		else
			old = NULL;
		struct mem_kv__node *node = NULL;
		if (!w[i].del) {
			node = ready;
			ready = node->next[0];
			mem_kv__attach(m, node, prev);
		}
		if (!m->in_batch)
			mesh_free(m->alloc, old);
		else if (node != NULL || old != NULL)
			m->undo[m->undo_len++] = (struct mem_kv__undo){
			    .added = node, .removed = old};
	}
	if (!m->in_batch)
		m->commits++;
	return 0;
}

/* Puts the map back as it was at batch_begin(); allocates nothing. */
static void
mem_kv__rollback(struct mem_kv *m)
{
	struct mem_kv__node **prev[MEM_KV_LEVELS];
	while (m->undo_len > 0) {
		struct mem_kv__undo *u = &m->undo[--m->undo_len];
		if (u->added != NULL) {
			struct mem_kv__node *n = mem_kv__seek(
			    m, mem_kv__key(u->added), u->added->klen, prev);
			assert(n == u->added);
			mem_kv__detach(m, n, prev);
			mesh_free(m->alloc, n);
		}
		if (u->removed != NULL) {
			mem_kv__seek(m, mem_kv__key(u->removed),
				     u->removed->klen, prev);
			mem_kv__attach(m, u->removed, prev);
		}
	}
	m->rng = m->batch_rng;
}

static int
mem_kv__batch_begin(void *ctx)
{
	struct mem_kv *m = ctx;
	if (m->in_batch)
		return MESH_ESTATE;
	m->in_batch = true;
	m->batch_rng = m->rng;
	m->undo_len = 0;
	return 0;
}

static int
mem_kv__batch_end(void *ctx, bool keep)
{
	struct mem_kv *m = ctx;
	if (!m->in_batch)
		return MESH_ESTATE;
	m->in_batch = false;
	int rc = 0;
	if (keep && m->fail_batch_ends > 0) {
		m->fail_batch_ends--;
		keep = false;
		rc = MESH_ENOSPC;
	}
	if (!keep) {
		mem_kv__rollback(m);
		return rc;
	}
	for (size_t i = 0; i < m->undo_len; i++)
		mesh_free(m->alloc, m->undo[i].removed);
	m->undo_len = 0;
	m->commits++;
	return 0;
}

int
mem_kv_init(struct mem_kv *m, const struct mesh_allocator *a)
{
	memset(m, 0, sizeof(*m));
	m->alloc = a != NULL ? a : mesh_alloc_default();
	m->rng = MEM_KV__SEED;
	return 0;
}

void
mem_kv_destroy(struct mem_kv *m)
{
	if (m->in_batch) {
		mem_kv__rollback(m);
		m->in_batch = false;
	}
	mesh_free(m->alloc, m->undo);
	m->undo = NULL;
	m->undo_cap = 0;
	struct mem_kv__node *n = m->head[0];
	while (n != NULL) {
		struct mem_kv__node *next = n->next[0];
		mesh_free(m->alloc, n);
		n = next;
	}
	memset(m->head, 0, sizeof(m->head));
	m->count = 0;
	m->bytes = 0;
}

void
mem_kv_bind(struct mem_kv *m, struct tenant_kv *out)
{
	out->ctx = m;
	out->get = mem_kv__get;
	out->scan = mem_kv__scan;
	out->commit = mem_kv__commit;
	out->batch_begin = mem_kv__batch_begin;
	out->batch_end = mem_kv__batch_end;
}
