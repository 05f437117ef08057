/*
 * ring.c - consistent hashing with virtual nodes, multi-probe lookup,
 * zone-aware replicas, bounded loads, memory limits and zone constraints.
 *
 * The ring (Karger et al. 1997; virtual nodes as in Dynamo): every eligible
 * member puts vnodes(weight) points on a 64-bit circle, at SipHash-2-4 of
 * its name and the point number. Nothing else decides a token, so a member's
 * points never move when others come or go.
 *
 * Where we deviate from Dynamo: a key is not simply given to the successor
 * of its hash. It is hashed to `probes` points and goes to the successor
 * that is closest over all of them (multi-probe consistent hashing, Appleton
 * and O'Reilly 2015). With one probe a vnode's share is its gap, which is
 * exponentially distributed, so V vnodes per member leave a spread of about
 * 1/sqrt(V) and max/mean of 1.7 to 1.9 at V = 16. With k probes a vnode's
 * share is about 1 - exp(-k * gap / mean gap): long gaps stop paying, and
 * the spread shrinks by roughly sqrt(2k + 1). Like the classic ring it is
 * monotone: a joining member only takes keys (its points become the closest
 * for some probes), a leaving member only gives its own keys away. So moves
 * stay at the minimum, which schemes that pick tokens by looking at other
 * members' tokens cannot promise. The price is k index lookups per key.
 *
 * Replicas: each replica slot is a multi-probe choice of its own among the
 * nodes that fit it (not chosen yet; in a zone not used yet, or failing
 * that a new (zone, region) pair, then a new cell, then any node): every
 * probe walks clockwise to the first point of a fitting node and the
 * closest wins. Dynamo instead walks on from the primary; with several
 * probes that would make a joiner that wins the primary drag the whole
 * replica list to another part of the circle. Chosen per slot, the winner
 * of a set is also the winner of any subset holding it, so a joiner only
 * takes the slots it wins and a leaver's slots go to the next best: the
 * moves stay minimal for every replica, not only the first.
 *
 * Bounded loads (Mirrokni, Thorup, Zadimoghaddam 2017): packs are placed one
 * at a time in order of (hash, id); a node whose load reached
 * ceil((1 + ε) · average · its share) no longer fits, so every probe walks
 * on clockwise past it. The paper places keys in arrival order and walks
 * from one point; we fix the order by hash so that every node computes the
 * same assignment from the same set, and keep the probes so that the
 * overflow spreads like the keys do.
 *
 * Memory and domains (ring_assign_fit()): a node's memory is a hard limit,
 * not a weight. Weights decide where packs go; memory only says where they
 * cannot. So a pack whose need does not fit is treated like a node at its
 * bounded-load cap: every probe walks on past it. That keeps what the ring
 * promises (the owners are ring_lookup()'s when nothing is short, a joiner
 * only takes what it wins) and lets a full node spill onto its ring
 * neighbours instead of onto one overflow node. The catch is that "room"
 * now depends on the pack, so the per-domain counts of open nodes that
 * bounded loads use cannot say when to give up on a level. A max segment
 * tree over the nodes in domain order (every zone, region and cell is one
 * range) answers "does any node of these domains have this much free" in
 * O(log n), so a walk starts only when it will find a node, and a pack that
 * fits nowhere costs a few tree reads, not a walk around the ring. A pack
 * confined to a zone or region walks that domain's points only (a sub-ring
 * with its own index), so its cost does not grow as the domain shrinks.
 * Packs are placed in the caller's order, as bounded loads are in hash
 * order: first come, first served is the only rule every node can apply
 * alike without a coordinator.
 *
 * Determinism: nodes are sorted by name before anything is derived from
 * them, tokens are sorted with a stable radix sort (equal tokens keep name
 * order), the hash reads bytes as little-endian and there is no floating
 * point in any placement decision.
 */
#include "ring_impl.h"

#include "mesh_err.h"
#include "mesh_sort.h"
#include "mesh_text.h"

#include <stdlib.h>
#include <string.h>

/*
 * Tunables. docs/placement.md has the measurements behind them.
 *
 * 64 vnodes with 8 probes keeps max/mean near 1.1 for 100 and 1,000
 * members (1,000 keys per member cannot do much better: their own Poisson
 * noise is 3%), a primary lookup costs about 80 ns and a ring of 1,000
 * members holds 64,000 points in 1.2 MiB and builds in 4 ms. Fewer probes
 * cost balance (4 probes: 1.27 at V = 16, N = 100), more cost time.
 */
#define RING_VNODES_DEFAULT 64
#define RING_PROBES_DEFAULT 8
/* Any fixed key works as long as the whole mesh uses the same one. These
 * are the ASCII bytes of "packmesh-ring-v1", read little-endian. */
#define RING_KEY0_DEFAULT 0x6873656d6b636170ull
#define RING_KEY1_DEFAULT 0x31762d676e69722dull
/* The lookup index has 2^bits slots for about as many points: one or two
 * points per slot, so a probe is one slot read plus a short scan. */
#define RING_INDEX_BITS_MAX 24

/* Tokens read at once per probe; the token array carries this many
 * UINT64_MAX after its end so that the reads stay inside it. */
#define RING__SCAN 4

#if defined(__GNUC__) || defined(__clang__)
#define RING__PREFETCH(p) __builtin_prefetch(p)
#define RING__INLINE inline __attribute__((always_inline))
#else
#define RING__PREFETCH(p) ((void)(p))
#define RING__INLINE inline
#endif

/* ---- hashing ----------------------------------------------------------- */

static uint64_t
ring__rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t
ring__le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void
ring__put_le64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
ring__put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* One SipRound: add-rotate-xor over the four lanes. */
#define RING__SIPROUND(v0, v1, v2, v3)                                         \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ring__rotl(v1, 13);                                       \
		v1 ^= v0;                                                      \
		v0 = ring__rotl(v0, 32);                                       \
		v2 += v3;                                                      \
		v3 = ring__rotl(v3, 16);                                       \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = ring__rotl(v3, 21);                                       \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = ring__rotl(v1, 17);                                       \
		v1 ^= v2;                                                      \
		v2 = ring__rotl(v2, 32);                                       \
	} while (0)

uint64_t
ring__siphash(const uint64_t k[2], const void *msg, size_t len)
{
	const uint8_t *m = msg;
	/* The initial lanes are the key xored with "somepseudorandomlygenerat
	 * edbytes", as the specification says. */
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ull;
	uint64_t v1 = k[1] ^ 0x646f72616e646f6dull;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ull;
	uint64_t v3 = k[1] ^ 0x7465646279746573ull;
	size_t full = len - len % 8;

	for (size_t i = 0; i < full; i += 8) {
		uint64_t w = ring__le64(m + i);
		v3 ^= w;
		RING__SIPROUND(v0, v1, v2, v3);
		RING__SIPROUND(v0, v1, v2, v3);
		v0 ^= w;
	}
	/* Last word: the remaining bytes and the length mod 256 on top. */
	uint64_t last = (uint64_t)(len & 0xff) << 56;
	for (size_t i = full; i < len; i++)
		last |= (uint64_t)m[i] << (8 * (i - full));
	v3 ^= last;
	RING__SIPROUND(v0, v1, v2, v3);
	RING__SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	for (unsigned i = 0; i < 4; i++)
		RING__SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * The probes of one key. SipHash runs once per key; the probes are derived
 * from its output with the splitmix64 finaliser, a bijection that mixes
 * every input bit into every output bit, so probe j of one key says nothing
 * about probe j of another.
 */
static uint64_t
ring__probe(uint64_t h, uint32_t j)
{
	uint64_t z = h + (uint64_t)(j + 1) * 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t
ring__token(const struct ring_config *cfg, const char *name, uint32_t v)
{
	uint8_t buf[RING_NAME_MAX + 4];
	size_t n = strlen(name);
	/* Names have a fixed 4-byte suffix and no NUL, so (name, v) pairs map
	 * to distinct messages. */
	memcpy(buf, name, n);
	ring__put_le32(buf + n, v);
	return ring__siphash(cfg->key, buf, n + 4);
}

uint64_t
ring_hash_id(const struct ring *r, uint64_t id)
{
	uint8_t buf[8];
	ring__put_le64(buf, id);
	return ring__siphash(r->cfg.key, buf, sizeof(buf));
}

uint64_t
ring_hash_key(const struct ring *r, const void *key, size_t len)
{
	return ring__siphash(r->cfg.key, len == 0 ? "" : key, len);
}

/* ---- sorting ----------------------------------------------------------- */

/*
 * Stable LSD radix sort of (key, val) pairs by key, 8 bits a pass, using
 * @tk/@tv as scratch of the same size. Stability is what makes equal keys
 * keep the order they were generated in (by node name). Passes whose digit
 * is the same for every key are skipped.
 */
static void
ring__radix_sort(uint64_t *key, uint32_t *val, uint64_t *tk, uint32_t *tv,
		 size_t n)
{
	uint64_t *sk = key, *dk = tk;
	uint32_t *sv = val, *dv = tv;
	size_t count[256];

	for (unsigned shift = 0; shift < 64; shift += 8) {
		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[(sk[i] >> shift) & 0xff]++;
		if (count[(sk[0] >> shift) & 0xff] == n)
			continue;
		size_t sum = 0;
		for (unsigned d = 0; d < 256; d++) {
			size_t c = count[d];
			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++) {
			size_t at = count[(sk[i] >> shift) & 0xff]++;
			dk[at] = sk[i];
			dv[at] = sv[i];
		}
		uint64_t *xk = sk;
		sk = dk;
		dk = xk;
		uint32_t *xv = sv;
		sv = dv;
		dv = xv;
	}
	if (sk != key) {
		memcpy(key, sk, n * sizeof(*key));
		memcpy(val, sv, n * sizeof(*val));
	}
}

/* ---- input checks ------------------------------------------------------ */

static bool
ring__name_ok(const char *name)
{
	return mesh_name_is_valid(name, RING_NAME_MAX);
}

static bool
ring__tag_ok(const char *tag)
{
	return tag == NULL || mesh_text_is_printable(tag, RING_TAG_MAX, true);
}

void
ring_config_default(struct ring_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vnodes = RING_VNODES_DEFAULT;
	cfg->probes = RING_PROBES_DEFAULT;
	cfg->key[0] = RING_KEY0_DEFAULT;
	cfg->key[1] = RING_KEY1_DEFAULT;
}

int
ring_config_check(const struct ring_config *cfg, const char **why)
{
	const char *dummy;
	if (why == NULL)
		why = &dummy;
	*why = "ok";
	if (cfg == NULL) {
		*why = "no config";
		return MESH_EINVAL;
	}
	if (cfg->vnodes < 1 || cfg->vnodes > RING_VNODES_MAX) {
		*why = "vnodes must be 1..1024";
		return MESH_ERANGE;
	}
	if (cfg->probes < 1 || cfg->probes > RING_PROBES_MAX) {
		*why = "probes must be 1..32";
		return MESH_ERANGE;
	}
	return 0;
}

static uint32_t
ring__weight(const struct ring_member *m)
{
	return m->weight == 0 ? RING_WEIGHT_DEFAULT : m->weight;
}

/* Points for a member: proportional to weight, rounded, at least one. */
static uint32_t
ring__vnodes(uint32_t weight, uint32_t vnodes)
{
	uint64_t v = ((uint64_t)vnodes * weight + RING_WEIGHT_DEFAULT / 2) /
		     RING_WEIGHT_DEFAULT;
	return v == 0 ? 1 : (uint32_t)v;
}

static int
ring__member_check(const struct mesh_env *env, const struct ring_member *m,
		   size_t i)
{
	if (!ring__name_ok(m->name)) {
		MESH_LOG(env, MESH_LOG_WARN,
			 "ring: member %zu: name must be 1..%d bytes of "
			 "[A-Za-z0-9._-]",
			 i, RING_NAME_MAX);
		return MESH_EINVAL;
	}
	if (!ring__tag_ok(m->zone) || !ring__tag_ok(m->region) ||
	    !ring__tag_ok(m->cell)) {
		MESH_LOG(env, MESH_LOG_WARN,
			 "ring: member %s: zone, region and cell are at most "
			 "%d printable bytes",
			 m->name, RING_TAG_MAX);
		return MESH_EINVAL;
	}
	if (m->weight > RING_WEIGHT_MAX) {
		MESH_LOG(env, MESH_LOG_WARN,
			 "ring: member %s: weight %u above %u", m->name,
			 m->weight, RING_WEIGHT_MAX);
		return MESH_ERANGE;
	}
	return 0;
}

static int
ring__cmp_member(const void *a, const void *b)
{
	const struct ring_member *const *x = a;
	const struct ring_member *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

/* ---- building ---------------------------------------------------------- */

static void *
ring__alloc(struct ring *r, size_t n, size_t size)
{
	void *p = mesh_calloc(r->alloc, n, size);
	if (p != NULL)
		r->bytes += n * size;
	return p;
}

static int
ring__cmp_zone(const void *a, const void *b)
{
	const struct ring__node *const *x = a;
	const struct ring__node *const *y = b;
	return strcmp((*x)->zone, (*y)->zone);
}

static int
ring__cmp_region(const void *a, const void *b)
{
	const struct ring__node *const *x = a;
	const struct ring__node *const *y = b;
	int c = ring__cmp_zone(a, b);
	return c != 0 ? c : strcmp((*x)->region, (*y)->region);
}

static int
ring__cmp_cell(const void *a, const void *b)
{
	const struct ring__node *const *x = a;
	const struct ring__node *const *y = b;
	int c = ring__cmp_region(a, b);
	return c != 0 ? c : strcmp((*x)->cell, (*y)->cell);
}

/*
 * Numbers the distinct zones, (zone, region) pairs and (zone, region, cell)
 * triples in byte order, so equal members give equal numbers.
 */
static void
ring__number_domains(struct ring *r, struct ring__node **by)
{
	int (*const cmp[RING__LEVELS])(const void *, const void *) = {
	    ring__cmp_zone, ring__cmp_region, ring__cmp_cell};

	for (unsigned L = 0; L < RING__LEVELS; L++) {
		mesh_sort(by, r->nnodes, sizeof(*by), cmp[L]);
		uint32_t id = 0;
		bool elig = false;
		for (uint32_t i = 0; i < r->nnodes; i++) {
			if (i > 0 && cmp[L](&by[i - 1], &by[i]) != 0) {
				r->ndom_elig[L] += elig;
				elig = false;
				id++;
			}
			by[i]->dom[L] = id;
			elig = elig || by[i]->info.eligible;
		}
		r->ndom_elig[L] += elig;
		r->ndom[L] = id + 1;
	}
}

static void
ring__build_index(struct ring *r, unsigned bits)
{
	uint32_t slots = 1u << bits;
	uint32_t j = 0;
	r->ix_shift = 64 - bits;
	for (uint32_t b = 0; b < slots; b++) {
		while (j < r->npoints && (r->tok[j] >> r->ix_shift) < b)
			j++;
		r->ix[b] = j;
	}
	r->ix[slots] = r->npoints;
}

static uint64_t
ring__compute_digest(const struct ring *r)
{
	uint8_t buf[8 + RING_NAME_MAX + 3 * RING_TAG_MAX + 4 + 4 + 4];
	/* The key takes part through SipHash itself; vnodes and probes are
	 * the first message. Then every eligible member, in name order. */
	ring__put_le32(buf, r->cfg.vnodes);
	ring__put_le32(buf + 4, r->cfg.probes);
	uint64_t d = ring__siphash(r->cfg.key, buf, 8);
	for (uint32_t i = 0; i < r->nnodes; i++) {
		const struct ring__node *nd = &r->nodes[i];
		if (!nd->info.eligible)
			continue;
		size_t at = 0;
		ring__put_le64(buf, d);
		at += 8;
		const char *parts[4] = {nd->name, nd->zone, nd->region,
					nd->cell};
		for (unsigned p = 0; p < 4; p++) {
			size_t n = strlen(parts[p]);
			memcpy(buf + at, parts[p], n + 1);
			at += n + 1;
		}
		ring__put_le32(buf + at, nd->info.vnodes);
		at += 4;
		/* Memory only when given: a ring without it keeps the digest it
		 * had before memory existed, and the length alone tells a
		 * message with memory from one without. */
		if (nd->info.mem != 0) {
			ring__put_le32(buf + at, nd->info.mem);
			at += 4;
		}
		d = ring__siphash(r->cfg.key, buf, at);
	}
	return d;
}

static void
ring__copy_tag(char *dst, const char *src)
{
	size_t n = src == NULL ? 0 : strnlen(src, RING_TAG_MAX);
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * Lays the nodes out in domain order. Cells are numbered in (zone, region,
 * cell) byte order, so a stable counting sort by cell number orders every
 * level at once and keeps name order inside a cell.
 */
static int
ring__domain_order(struct ring *r)
{
	uint32_t nn = r->nnodes;
	size_t words = 3 * (size_t)nn + 1;
	for (unsigned L = 0; L < RING__LEVELS; L++)
		words += r->ndom[L] + 1;
	uint32_t *b = ring__alloc(r, words, sizeof(*b));
	if (b == NULL)
		return MESH_ENOMEM;
	r->dblk = b;
	r->dorder = b;
	r->dpos = b + nn;
	r->delig = b + 2 * (size_t)nn;
	b += 3 * (size_t)nn + 1;
	for (unsigned L = 0; L < RING__LEVELS; L++) {
		r->dstart[L] = b;
		b += r->ndom[L] + 1;
	}

	uint32_t *at = r->dstart[RING__CELL]; /* counts, then cursors */
	for (uint32_t i = 0; i < nn; i++)
		at[r->nodes[i].dom[RING__CELL] + 1]++;
	for (uint32_t d = 0; d < r->ndom[RING__CELL]; d++)
		at[d + 1] += at[d];
	for (uint32_t i = 0; i < nn; i++)
		r->dorder[at[r->nodes[i].dom[RING__CELL]]++] = i;
	for (unsigned L = 0; L < RING__LEVELS; L++) {
		for (uint32_t p = nn; p-- > 0;)
			r->dstart[L][r->nodes[r->dorder[p]].dom[L]] = p;
		r->dstart[L][r->ndom[L]] = nn;
	}
	for (uint32_t p = 0; p < nn; p++) {
		r->dpos[r->dorder[p]] = p;
		r->delig[p + 1] =
		    r->delig[p] + r->nodes[r->dorder[p]].info.eligible;
	}
	return 0;
}

static int
ring__fill(struct ring *r, const struct ring_member **ord)
{
	for (uint32_t i = 0; i < r->nnodes; i++) {
		const struct ring_member *m = ord[i];
		struct ring__node *nd = &r->nodes[i];
		memcpy(nd->name, m->name, strlen(m->name) + 1);
		ring__copy_tag(nd->zone, m->zone);
		ring__copy_tag(nd->region, m->region);
		ring__copy_tag(nd->cell, m->cell);
		nd->info.name = nd->name;
		nd->info.zone = nd->zone;
		nd->info.region = nd->region;
		nd->info.cell = nd->cell;
		nd->info.weight = ring__weight(m);
		nd->info.mem = m->mem;
		nd->info.alive = m->alive;
		nd->info.draining = m->draining;
		nd->info.eligible = m->alive && !m->draining;
		nd->info.vnodes =
		    nd->info.eligible
			? ring__vnodes(nd->info.weight, r->cfg.vnodes)
			: 0;
		if (nd->info.eligible)
			r->neligible++;
	}

	struct ring__node **by = mesh_calloc(r->alloc, r->nnodes, sizeof(*by));
	if (by == NULL)
		return MESH_ENOMEM;
	for (uint32_t i = 0; i < r->nnodes; i++)
		by[i] = &r->nodes[i];
	ring__number_domains(r, by);
	mesh_free(r->alloc, by);
	for (uint32_t i = 0; i < r->nnodes; i++)
		for (unsigned L = 0; L < RING__LEVELS; L++)
			r->dom[i * RING__LEVELS + L] = r->nodes[i].dom[L];
	if (ring__domain_order(r) != 0)
		return MESH_ENOMEM;

	if (r->npoints == 0)
		return 0;
	uint64_t *tk = mesh_calloc(r->alloc, r->npoints, sizeof(*tk));
	uint32_t *tv = mesh_calloc(r->alloc, r->npoints, sizeof(*tv));
	if (tk == NULL || tv == NULL) {
		mesh_free(r->alloc, tk);
		mesh_free(r->alloc, tv);
		return MESH_ENOMEM;
	}
	uint32_t p = 0;
	for (uint32_t i = 0; i < r->nnodes; i++)
		for (uint32_t v = 0; v < r->nodes[i].info.vnodes; v++) {
			r->tok[p] = ring__token(&r->cfg, r->nodes[i].name, v);
			r->own[p] = i;
			p++;
		}
	ring__radix_sort(r->tok, r->own, tk, tv, r->npoints);
	for (uint32_t c = 0; c < RING__SCAN; c++)
		r->tok[r->npoints + c] = UINT64_MAX;
	mesh_free(r->alloc, tk);
	mesh_free(r->alloc, tv);
	return 0;
}

int
ring_new(const struct mesh_env *env, const struct ring_config *cfg,
	 const struct ring_member *members, size_t count, struct ring **out)
{
	if (out != NULL)
		*out = NULL;
	if (env == NULL || env->alloc == NULL || members == NULL ||
	    out == NULL) {
		MESH_LOG(env, MESH_LOG_WARN, "ring: NULL argument");
		return MESH_EINVAL;
	}
	if (count == 0) {
		MESH_LOG(env, MESH_LOG_WARN, "ring: no members");
		return MESH_EINVAL;
	}
	if (count > RING_MEMBERS_MAX) {
		MESH_LOG(env, MESH_LOG_WARN, "ring: %zu members, at most %u",
			 count, RING_MEMBERS_MAX);
		return MESH_ERANGE;
	}
	struct ring_config c;
	if (cfg == NULL)
		ring_config_default(&c);
	else
		c = *cfg;
	const char *why;
	int rc = ring_config_check(&c, &why);
	if (rc != 0) {
		MESH_LOG(env, MESH_LOG_WARN, "ring: bad config: %s", why);
		return MESH_EINVAL;
	}
	for (size_t i = 0; i < count; i++) {
		rc = ring__member_check(env, &members[i], i);
		if (rc != 0)
			return rc;
	}

	const struct ring_member **ord =
	    mesh_calloc(env->alloc, count, sizeof(*ord));
	if (ord == NULL)
		return MESH_ENOMEM;
	for (size_t i = 0; i < count; i++)
		ord[i] = &members[i];
	mesh_sort(ord, count, sizeof(*ord), ring__cmp_member);
	uint64_t points = 0;
	for (size_t i = 0; i < count; i++) {
		if (i > 0 && strcmp(ord[i - 1]->name, ord[i]->name) == 0) {
			MESH_LOG(env, MESH_LOG_WARN,
				 "ring: member %s given twice", ord[i]->name);
			mesh_free(env->alloc, ord);
			return MESH_EEXIST;
		}
		if (ord[i]->alive && !ord[i]->draining)
			points += ring__vnodes(ring__weight(ord[i]), c.vnodes);
	}
	if (points > RING_POINTS_MAX) {
		MESH_LOG(env, MESH_LOG_WARN,
			 "ring: %llu points, at most %u; lower vnodes or "
			 "weights",
			 (unsigned long long)points, RING_POINTS_MAX);
		mesh_free(env->alloc, ord);
		return MESH_ETOOBIG;
	}

	struct ring *r = mesh_calloc(env->alloc, 1, sizeof(*r));
	if (r == NULL) {
		mesh_free(env->alloc, ord);
		return MESH_ENOMEM;
	}
	r->alloc = env->alloc;
	r->bytes = sizeof(*r);
	r->cfg = c;
	r->nnodes = (uint32_t)count;
	r->npoints = (uint32_t)points;
	unsigned bits = 1;
	while (bits < RING_INDEX_BITS_MAX && (1ull << bits) < points)
		bits++;
	r->nodes = ring__alloc(r, count, sizeof(*r->nodes));
	r->dom = ring__alloc(r, count * RING__LEVELS, sizeof(*r->dom));
	if (r->nodes == NULL || r->dom == NULL)
		goto nomem;
	if (points > 0) {
		r->tok = ring__alloc(r, points + RING__SCAN, sizeof(*r->tok));
		r->own = ring__alloc(r, points, sizeof(*r->own));
		r->ix = ring__alloc(r, (1u << bits) + 1, sizeof(*r->ix));
		if (r->tok == NULL || r->own == NULL || r->ix == NULL)
			goto nomem;
	}
	if (ring__fill(r, ord) != 0)
		goto nomem;
	if (points > 0)
		ring__build_index(r, bits);
	r->digest = ring__compute_digest(r);
	mesh_free(env->alloc, ord);
	*out = r;
	return 0;
nomem:
	mesh_free(env->alloc, ord);
	ring_free(r);
	return MESH_ENOMEM;
}

void
ring_free(struct ring *r)
{
	if (r == NULL)
		return;
	const struct mesh_allocator *a = r->alloc;
	mesh_free(a, r->nodes);
	mesh_free(a, r->dom);
	mesh_free(a, r->tok);
	mesh_free(a, r->own);
	mesh_free(a, r->ix);
	mesh_free(a, r->dblk);
	mesh_free(a, r);
}

uint32_t
ring_node_count(const struct ring *r)
{
	return r->nnodes;
}

const struct ring_node_info *
ring_node(const struct ring *r, uint32_t idx)
{
	if (r == NULL || idx >= r->nnodes)
		return NULL;
	return &r->nodes[idx].info;
}

int
ring_find(const struct ring *r, const char *name)
{
	if (r == NULL || name == NULL)
		return MESH_EINVAL;
	uint32_t lo = 0, hi = r->nnodes;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->nodes[mid].name, name);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return MESH_ENOENT;
}

void
ring_stats(const struct ring *r, struct ring_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->nodes = r->nnodes;
	st->eligible = r->neligible;
	st->points = r->npoints;
	st->zones = r->ndom_elig[RING__ZONE];
	st->regions = r->ndom_elig[RING__REGION];
	st->cells = r->ndom_elig[RING__CELL];
	st->bytes = r->bytes;
	st->digest = r->digest;
}

uint64_t
ring_digest(const struct ring *r)
{
	return r->digest;
}

/* Compares node @n's tags with @zone (and @region at RING__REGION). */
static int
ring__cmp_dom(const struct ring *r, uint32_t n, unsigned level,
	      const char *zone, const char *region)
{
	int c = strcmp(r->nodes[n].zone, zone);
	if (c != 0 || level == RING__ZONE)
		return c;
	return strcmp(r->nodes[n].region, region);
}

/* Binary search of the domain order: the id of a domain with an eligible
 * member, or MESH_ENOENT. */
static int
ring__dom_id(const struct ring *r, unsigned level, const char *zone,
	     const char *region)
{
	if (r == NULL)
		return MESH_EINVAL;
	zone = zone == NULL ? "" : zone;
	region = region == NULL ? "" : region;
	uint32_t lo = 0, hi = r->nnodes;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (ring__cmp_dom(r, r->dorder[mid], level, zone, region) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == r->nnodes ||
	    ring__cmp_dom(r, r->dorder[lo], level, zone, region) != 0)
		return MESH_ENOENT;
	uint32_t d = r->nodes[r->dorder[lo]].dom[level];
	const uint32_t *st = r->dstart[level];
	if (r->delig[st[d + 1]] == r->delig[st[d]])
		return MESH_ENOENT;
	return (int)d;
}

int
ring_zone_id(const struct ring *r, const char *zone)
{
	return ring__dom_id(r, RING__ZONE, zone, NULL);
}

int
ring_region_id(const struct ring *r, const char *zone, const char *region)
{
	return ring__dom_id(r, RING__REGION, zone, region);
}

/* ---- lookup ------------------------------------------------------------ */

void
ring__probes(const struct ring *r, uint64_t h, struct ring__probes *ps)
{
	uint32_t k = r->cfg.probes;
	uint32_t slot[RING_PROBES_MAX];

	/* Three rounds over all probes instead of one probe after the other:
	 * the index reads of every probe are then in flight together, which
	 * hides most of their cache misses. */
	ps->k = k;
	for (uint32_t j = 0; j < k; j++) {
		ps->p[j] = ring__probe(h, j);
		slot[j] = r->ix[ps->p[j] >> r->ix_shift];
	}
	for (uint32_t j = 0; j < k; j++)
		RING__PREFETCH(&r->tok[slot[j]]);
	for (uint32_t j = 0; j < k; j++) {
		/* The successor is the first token >= p from slot[j] on. The
		 * tokens are sorted and padded with UINT64_MAX, so counting
		 * how many of the next RING__SCAN are below p finds it
		 * without a branch whenever it is that close, which it almost
		 * always is: a slot holds one point on average. */
		const uint64_t *t = r->tok + slot[j];
		uint32_t off = 0;
		for (uint32_t c = 0; c < RING__SCAN; c++)
			off += t[c] < ps->p[j];
		uint32_t i = slot[j] + off;
		if (off == RING__SCAN)
			while (r->tok[i] < ps->p[j])
				i++;
		ps->at[j] = i >= r->npoints ? 0 : i;
	}
}

static uint32_t
ring__closest(const struct ring *r, const struct ring__probes *ps)
{
	uint32_t best = UINT32_MAX;
	uint64_t best_d = UINT64_MAX;
	for (uint32_t j = 0; j < ps->k; j++) {
		uint32_t i = ps->at[j];
		uint64_t d = r->tok[i] - ps->p[j]; /* clockwise, mod 2^64 */
		bool better = d < best_d || (d == best_d && i < best);
		best = better ? i : best;
		best_d = better ? d : best_d;
	}
	return best;
}

uint32_t
ring__winner(const struct ring *r, uint64_t h)
{
	struct ring__probes ps;
	ring__probes(r, h, &ps);
	return ring__closest(r, &ps);
}

/*
 * Load state of bounded placement. A node is open while its load is below
 * its cap; the per-domain counts of open nodes tell when no unused domain
 * with room is left, so that a slot moves on to the next level instead of
 * walking the whole ring in vain.
 */
struct ring__caps {
	uint32_t *load;
	uint32_t *cap;
	uint32_t *dom_open[RING__LEVELS];
	uint32_t open_dom[RING__LEVELS];
	uint32_t open_nodes;
};

static bool
ring__open(const struct ring__caps *c, uint32_t n)
{
	return c == NULL || c->load[n] < c->cap[n];
}

/*
 * What one pack asks of a node besides a domain not used yet. NULL asks
 * nothing more (ring_lookup()); ring_assign() sets only @c. ring_assign_fit()
 * sets @room instead: a max segment tree over the domain order whose leaf
 * of a node is the memory it has free (INT64_MAX when unlimited), or -1
 * when it takes nothing (not eligible, or at its cap). One range maximum
 * then says whether any node of a set of domains can take the pack.
 */
struct ring__ask {
	const struct ring__caps *c;
	const int64_t *room; /* [2 * tsize], leaves at tsize + position */
	uint32_t tsize;
	int64_t need;	 /* MiB the pack needs */
	unsigned top;	 /* widest level to spread over */
	uint32_t lo, hi; /* positions of the pack's domain */
	/* A pack confined to a domain walks that domain's points only, so a
	 * small zone costs no more than a large one. NULL: the whole ring. */
	const uint32_t *sub; /* point indices, ascending */
	uint32_t nsub;
	const uint32_t *start; /* [probes] first sub index of each probe */
};

static bool
ring__has(const uint32_t *out, unsigned have, uint32_t n)
{
	for (unsigned i = 0; i < have; i++)
		if (out[i] == n)
			return true;
	return false;
}

static bool
ring__dom_used(const struct ring *r, const uint32_t *out, unsigned have,
	       unsigned level, uint32_t dom)
{
	for (unsigned i = 0; i < have; i++)
		if (r->dom[out[i] * RING__LEVELS + level] == dom)
			return true;
	return false;
}

static uint32_t
ring__dom_distinct(const struct ring *r, const uint32_t *out, unsigned have,
		   unsigned level)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < have; i++)
		if (!ring__dom_used(r, out, i, level,
				    r->dom[out[i] * RING__LEVELS + level]))
			n++;
	return n;
}

/* Largest leaf of the tree @t over positions [lo, hi); -1 when empty. */
static int64_t
ring__room_max(const int64_t *t, uint32_t size, uint32_t lo, uint32_t hi)
{
	int64_t m = -1;
	for (lo += size, hi += size; lo < hi; lo >>= 1, hi >>= 1) {
		if (lo & 1) {
			m = t[lo] > m ? t[lo] : m;
			lo++;
		}
		if (hi & 1) {
			hi--;
			m = t[hi] > m ? t[hi] : m;
		}
	}
	return m;
}

/*
 * ring__level() for ring_assign_fit(). Memory makes "has room" a question
 * of the pack, so no count of open domains can answer it. Instead: the
 * domains used by @out are at most RING_REPLICAS_MAX ranges of the domain
 * order; the pack's domain minus those ranges is a few gaps, and one range
 * maximum per gap says whether a node there has room. If one has, the
 * walks are sure to meet one of its points; if none has, the level is
 * skipped without walking at all.
 */
static unsigned
ring__fit_level(const struct ring *r, const struct ring__ask *a,
		const uint32_t *out, unsigned have)
{
	for (unsigned L = a->top; L <= RING__LEVELS; L++) {
		uint32_t xlo[RING_REPLICAS_MAX], xhi[RING_REPLICAS_MAX];
		unsigned nx = 0;
		for (unsigned i = 0; i < have; i++) {
			uint32_t lo = r->dpos[out[i]], hi = lo + 1;
			if (L < RING__LEVELS) {
				uint32_t d = r->dom[out[i] * RING__LEVELS + L];
				lo = r->dstart[L][d];
				hi = r->dstart[L][d + 1];
			}
			unsigned k = nx++;
			for (; k > 0 && xlo[k - 1] > lo; k--) {
				xlo[k] = xlo[k - 1];
				xhi[k] = xhi[k - 1];
			}
			xlo[k] = lo;
			xhi[k] = hi;
		}
		uint32_t at = a->lo;
		for (unsigned k = 0; k <= nx; k++) {
			uint32_t end =
			    k < nx && xlo[k] < a->hi ? xlo[k] : a->hi;
			if (at < end && ring__room_max(a->room, a->tsize, at,
						       end) >= a->need)
				return L;
			if (k < nx && xhi[k] > at)
				at = xhi[k];
		}
	}
	return RING__LEVELS + 1;
}

/* The widest level at which some domain with room is not used yet by
 * @out; RING__LEVELS means "any new node", above it: nothing is left. */
static unsigned
ring__level(const struct ring *r, const struct ring__caps *c,
	    const uint32_t *out, unsigned have)
{
	for (unsigned L = 0; L < RING__LEVELS; L++) {
		uint32_t total = c != NULL ? c->open_dom[L] : r->ndom_elig[L];
		if (ring__dom_distinct(r, out, have, L) < total)
			return L;
	}
	uint32_t total = c != NULL ? c->open_nodes : r->neligible;
	uint32_t used = 0;
	for (unsigned i = 0; i < have; i++)
		used += ring__open(c, out[i]);
	return used < total ? RING__LEVELS : RING__LEVELS + 1;
}

/* @fit: @a is ring_assign_fit()'s (room, domain); else @a->c or NULL. */
static RING__INLINE bool
ring__fits(const struct ring *r, const struct ring__ask *a, bool fit,
	   const uint32_t *out, unsigned have, unsigned level, uint32_t n)
{
	if (fit) {
		uint32_t p = r->dpos[n];
		if (a->room[a->tsize + p] < a->need ||
		    p - a->lo >= a->hi - a->lo)
			return false;
	} else if (!ring__open(a != NULL ? a->c : NULL, n)) {
		return false;
	}
	if (ring__has(out, have, n))
		return false;
	return level >= RING__LEVELS ||
	       !ring__dom_used(r, out, have, level,
			       r->dom[n * RING__LEVELS + level]);
}

/*
 * Appends owners to @out[@have..@want). Each slot is a multi-probe choice
 * of its own among the nodes that fit it: every probe walks clockwise to
 * the first point of a fitting node, and the closest of those wins. A node
 * fits when it is not chosen yet, has room (@a) and lies in a domain not
 * used yet at the widest level where one is left (zone, then region, then
 * cell, then any node).
 *
 * Choosing each slot this way, and not by walking on from the primary,
 * keeps moves minimal for replicas too: if the winner among a set of nodes
 * is also in a smaller set, it wins there as well, so a joining node only
 * ever takes the slot it wins and pushes the others down, and a leaving
 * node's slot goes to the next best.
 *
 * One body for both kinds of @a: @fit is a constant at each of the two
 * callers below, so lookups pay nothing for memory and domains.
 */
static RING__INLINE unsigned
ring__pick_in(const struct ring *r, const struct ring__probes *ps,
	      unsigned want, const struct ring__ask *a, bool fit, uint32_t *out,
	      unsigned have)
{
	const uint32_t *sub = fit ? a->sub : NULL;
	uint32_t len = sub != NULL ? a->nsub : r->npoints;
	const uint32_t *start = sub != NULL ? a->start : ps->at;
	uint32_t cur[RING_PROBES_MAX];
	unsigned cur_level = RING__LEVELS + 2;

	/* Nothing excluded yet: every successor fits. */
	if (have == 0 && want > 0 && a == NULL)
		out[have++] = r->own[ring__closest(r, ps)];
	while (have < want) {
		unsigned L =
		    fit ? ring__fit_level(r, a, out, have)
			: ring__level(r, a != NULL ? a->c : NULL, out, have);
		if (L > RING__LEVELS)
			break;
		/* Within one level each slot's fitting set is a subset of the
		 * last one's, so the walks go on from where they stopped. */
		if (L != cur_level) {
			memcpy(cur, start, ps->k * sizeof(*cur));
			cur_level = L;
		}
		uint32_t best = RING_NONE;
		uint64_t best_d = UINT64_MAX;
		for (uint32_t j = 0; j < ps->k; j++) {
			uint32_t i = cur[j];
			uint32_t pt = sub != NULL ? sub[i] : i;
			uint32_t steps = 0;
			uint64_t d = r->tok[pt] - ps->p[j];
			/* The distance only grows along the walk: once it
			 * passes the best so far this probe cannot win, and
			 * the points behind stay skipped for later slots. */
			while (d <= best_d && !ring__fits(r, a, fit, out, have,
							  L, r->own[pt])) {
				if (++i == len)
					i = 0;
				if (++steps == len)
					break;
				pt = sub != NULL ? sub[i] : i;
				d = r->tok[pt] - ps->p[j];
			}
			cur[j] = i;
			if (steps == len || d > best_d)
				continue;
			/* A sub-ring keeps the ring's order, so point
			 * indices break ties the same with or without it. */
			if (d < best_d || (d == best_d && pt < best)) {
				best = pt;
				best_d = d;
			}
		}
		if (best == RING_NONE)
			break; /* not reached: the level said a node fits */
		out[have++] = r->own[best];
	}
	return have;
}

/* ring__pick_in() for ring_lookup() and ring_assign(): @c may be NULL. */
static unsigned
ring__pick(const struct ring *r, const struct ring__probes *ps, unsigned want,
	   const struct ring__caps *c, uint32_t *out, unsigned have)
{
	struct ring__ask a = {.c = c};
	return ring__pick_in(r, ps, want, c != NULL ? &a : NULL, false, out,
			     have);
}

/* ring__pick_in() for ring_assign_fit(): @a has room and domain set. */
static unsigned
ring__pick_fit(const struct ring *r, const struct ring__probes *ps,
	       unsigned want, const struct ring__ask *a, uint32_t *out,
	       unsigned have)
{
	return ring__pick_in(r, ps, want, a, true, out, have);
}

int
ring_lookup(const struct ring *r, uint64_t hash, unsigned replicas,
	    uint32_t *owners)
{
	if (r == NULL || owners == NULL || replicas == 0 ||
	    replicas > RING_REPLICAS_MAX)
		return MESH_EINVAL;
	if (r->neligible == 0)
		return MESH_ENOENT;
	if (replicas == 1) {
		owners[0] = r->own[ring__winner(r, hash)];
		return 1;
	}
	unsigned want = replicas < r->neligible ? replicas : r->neligible;
	struct ring__probes ps;
	ring__probes(r, hash, &ps);
	return (int)ring__pick(r, &ps, want, NULL, owners, 0);
}

/* ---- placing sets of packs --------------------------------------------- */

static int
ring__place_check(const struct ring *r, const uint64_t *ids, size_t n,
		  const struct ring_place *opt)
{
	if (r == NULL || opt == NULL || (ids == NULL && n > 0))
		return MESH_EINVAL;
	if (opt->replicas == 0 || opt->replicas > RING_REPLICAS_MAX)
		return MESH_EINVAL;
	if (opt->bounded &&
	    (opt->eps_milli < RING_EPS_MIN || opt->eps_milli > RING_EPS_MAX))
		return MESH_EINVAL;
	if (n > RING_ASSIGN_MAX)
		return MESH_ERANGE;
	return 0;
}

static void
ring__caps_free(const struct ring *r, struct ring__caps *c)
{
	mesh_free(r->alloc, c->load);
	mesh_free(r->alloc, c->cap);
	for (unsigned L = 0; L < RING__LEVELS; L++)
		mesh_free(r->alloc, c->dom_open[L]);
}

/*
 * Sets every eligible node's cap to ceil((1000 + eps) · slots · vnodes /
 * (1000 · points)): its weighted share of the slots, plus ε. Integer only,
 * so every platform gets the same caps. The product stays below 2^64:
 * 11,000 · 2^27 slots · 2^17 vnodes < 2^62.
 */
static int
ring__caps_init(const struct ring *r, struct ring__caps *c, uint64_t slots,
		uint32_t eps_milli)
{
	memset(c, 0, sizeof(*c));
	c->load = mesh_calloc(r->alloc, r->nnodes, sizeof(*c->load));
	c->cap = mesh_calloc(r->alloc, r->nnodes, sizeof(*c->cap));
	for (unsigned L = 0; L < RING__LEVELS; L++)
		c->dom_open[L] =
		    mesh_calloc(r->alloc, r->ndom[L], sizeof(uint32_t));
	if (c->load == NULL || c->cap == NULL || c->dom_open[0] == NULL ||
	    c->dom_open[1] == NULL || c->dom_open[2] == NULL) {
		ring__caps_free(r, c);
		return MESH_ENOMEM;
	}
	uint64_t den = 1000ull * r->npoints;
	for (uint32_t i = 0; i < r->nnodes; i++) {
		const struct ring__node *nd = &r->nodes[i];
		if (!nd->info.eligible)
			continue;
		uint64_t num = (1000ull + eps_milli) * slots * nd->info.vnodes;
		c->cap[i] = (uint32_t)((num + den - 1) / den);
		c->open_nodes++;
		for (unsigned L = 0; L < RING__LEVELS; L++)
			c->dom_open[L][nd->dom[L]]++;
	}
	for (unsigned L = 0; L < RING__LEVELS; L++)
		c->open_dom[L] = r->ndom_elig[L];
	return 0;
}

static void
ring__caps_take(const struct ring *r, struct ring__caps *c, uint32_t n)
{
	/* Only the step onto the cap closes a node; loads past it (see
	 * over_cap) change nothing more. */
	if (++c->load[n] != c->cap[n])
		return;
	c->open_nodes--;
	for (unsigned L = 0; L < RING__LEVELS; L++)
		if (--c->dom_open[L][r->dom[n * RING__LEVELS + L]] == 0)
			c->open_dom[L]--;
}

/* Sorts positions of @ids by (hash, id) into @pos; 0 or MESH_EEXIST. */
static int
ring__order(const struct ring *r, const uint64_t *ids, size_t n, uint64_t *hash,
	    uint32_t *pos, uint64_t *tk, uint32_t *tv)
{
	for (size_t i = 0; i < n; i++) {
		hash[i] = ring_hash_id(r, ids[i]);
		pos[i] = (uint32_t)i;
	}
	ring__radix_sort(hash, pos, tk, tv, n);
	/* Equal hashes are all but impossible; order them by id all the same
	 * so that the input order never matters. */
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0 && hash[j - 1] == hash[j]; j--) {
			uint64_t a = ids[pos[j - 1]], b = ids[pos[j]];
			if (a == b)
				return MESH_EEXIST;
			if (a < b)
				break;
			uint32_t x = pos[j - 1];
			pos[j - 1] = pos[j];
			pos[j] = x;
		}
	}
	return 0;
}

static int
ring__assign_bounded(const struct ring *r, const uint64_t *ids, size_t n,
		     const struct ring_place *opt, unsigned want,
		     uint32_t *owners, struct ring_assign_stats *st)
{
	struct ring__caps c;
	int rc = ring__caps_init(r, &c, (uint64_t)n * want, opt->eps_milli);
	if (rc != 0)
		return rc;
	uint64_t *hash = mesh_calloc(r->alloc, n, sizeof(*hash));
	uint64_t *tk = mesh_calloc(r->alloc, n, sizeof(*tk));
	uint32_t *pos = mesh_calloc(r->alloc, n, sizeof(*pos));
	uint32_t *tv = mesh_calloc(r->alloc, n, sizeof(*tv));
	if (hash == NULL || tk == NULL || pos == NULL || tv == NULL) {
		rc = MESH_ENOMEM;
		goto out;
	}
	rc = ring__order(r, ids, n, hash, pos, tk, tv);
	if (rc != 0)
		goto out;
	for (size_t k = 0; k < n; k++) {
		uint32_t *o = owners + (size_t)pos[k] * opt->replicas;
		struct ring__probes ps;
		ring__probes(r, hash[k], &ps);
		unsigned got = ring__pick(r, &ps, want, &c, o, 0);
		if (got < want) {
			/* Too few nodes with room for distinct owners: only
			 * possible when replicas come close to the member
			 * count with skewed weights. Fill up ignoring caps. */
			st->over_cap += want - got;
			got = ring__pick(r, &ps, want, NULL, o, got);
		}
		st->displaced += o[0] != r->own[ring__winner(r, hash[k])];
		for (unsigned j = 0; j < got; j++)
			ring__caps_take(r, &c, o[j]);
		st->placed += got;
	}
	for (uint32_t i = 0; i < r->nnodes; i++) {
		if (c.load[i] > st->max_load)
			st->max_load = c.load[i];
		if (c.cap[i] > st->max_cap)
			st->max_cap = c.cap[i];
	}
out:
	mesh_free(r->alloc, hash);
	mesh_free(r->alloc, tk);
	mesh_free(r->alloc, pos);
	mesh_free(r->alloc, tv);
	ring__caps_free(r, &c);
	return rc;
}

int
ring_assign(const struct ring *r, const uint64_t *ids, size_t n,
	    const struct ring_place *opt, uint32_t *owners,
	    struct ring_assign_stats *st)
{
	struct ring_assign_stats dummy;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	int rc = ring__place_check(r, ids, n, opt);
	if (rc != 0)
		return rc;
	if (owners == NULL && n > 0)
		return MESH_EINVAL;
	for (size_t i = 0; i < n * opt->replicas; i++)
		owners[i] = RING_NONE;
	unsigned want =
	    opt->replicas < r->neligible ? opt->replicas : r->neligible;
	st->owners = want;
	if (want == 0 || n == 0)
		return 0;
	if (opt->bounded)
		return ring__assign_bounded(r, ids, n, opt, want, owners, st);

	uint32_t *load = mesh_calloc(r->alloc, r->nnodes, sizeof(*load));
	if (load == NULL)
		return MESH_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint32_t *o = owners + i * opt->replicas;
		struct ring__probes ps;
		ring__probes(r, ring_hash_id(r, ids[i]), &ps);
		unsigned got = ring__pick(r, &ps, want, NULL, o, 0);
		for (unsigned j = 0; j < got; j++)
			if (++load[o[j]] > st->max_load)
				st->max_load = load[o[j]];
		st->placed += got;
	}
	mesh_free(r->alloc, load);
	return 0;
}

/* ---- placing under memory and domain constraints ----------------------- */

/*
 * The points of every domain of one level, each domain's in ring order: a
 * sub-ring that a pack confined to the domain walks instead of the ring.
 * Each has a lookup index like the ring's (2^bits slots for its points,
 * keyed by the top bits of a token), so a probe enters it in O(1).
 */
struct ring__subs {
	uint32_t *pt;	  /* [npoints] point indices, grouped by domain */
	uint32_t *start;  /* [ndom + 1] first pt of each domain */
	uint32_t *ix;	  /* per domain: 2^bits + 1 slots, first pt >= slot */
	uint32_t *ixat;	  /* [ndom] first slot of each domain in ix */
	uint32_t *ixbits; /* [ndom] bits of each domain's index */
};

/*
 * Scratch of ring_assign_fit(), one allocation from the ring's allocator:
 * O(members) for the trees and counters, O(points) per constraint level
 * for the sub-rings, nothing per pack.
 */
struct ring__fit {
	int64_t *room;	/* caps and memory, see struct ring__ask */
	int64_t *mroom; /* memory alone, for the over-cap fill; else room */
	uint32_t tsize;
	uint64_t *used;		    /* [nnodes] MiB placed */
	uint32_t *load;		    /* [nnodes] slots placed */
	uint32_t *cap;		    /* [nnodes] bounded: slot cap; else NULL */
	struct ring__subs *subs[2]; /* zone, region: NULL when unused */
	void *blk;
};

/*
 * The domain @p is confined to: its level (RING__LEVELS: none), number and
 * positions [*lo, *hi). False when @p names a domain this ring does not
 * have, or a region outside the zone it also names.
 */
static bool
ring__pack_domain(const struct ring *r, const struct ring_pack *p,
		  unsigned *level, uint32_t *dom, uint32_t *lo, uint32_t *hi)
{
	*level = RING__LEVELS;
	*dom = 0;
	*lo = 0;
	*hi = r->nnodes;
	if (p->region != RING_ANY) {
		if (p->region >= r->ndom[RING__REGION])
			return false;
		*level = RING__REGION;
		*dom = p->region;
	} else if (p->zone != RING_ANY) {
		if (p->zone >= r->ndom[RING__ZONE])
			return false;
		*level = RING__ZONE;
		*dom = p->zone;
	} else {
		return true;
	}
	*lo = r->dstart[*level][*dom];
	*hi = r->dstart[*level][*dom + 1];
	return p->zone == RING_ANY ||
	       r->nodes[r->dorder[*lo]].dom[RING__ZONE] == p->zone;
}

/* Leaf of node @n: free MiB, INT64_MAX unlimited, -1 takes nothing. */
static int64_t
ring__room_of(const struct ring *r, const struct ring__fit *f, uint32_t n,
	      bool caps)
{
	const struct ring_node_info *in = &r->nodes[n].info;
	if (!in->eligible || (caps && f->load[n] >= f->cap[n]))
		return -1;
	return in->mem == 0 ? INT64_MAX
			    : (int64_t)in->mem - (int64_t)f->used[n];
}

static void
ring__room_build(const struct ring *r, const struct ring__fit *f, int64_t *t,
		 bool caps)
{
	for (uint32_t p = 0; p < f->tsize; p++)
		t[f->tsize + p] = p < r->nnodes
				      ? ring__room_of(r, f, r->dorder[p], caps)
				      : -1;
	for (uint32_t i = f->tsize; i-- > 1;)
		t[i] = t[2 * i] > t[2 * i + 1] ? t[2 * i] : t[2 * i + 1];
}

static void
ring__room_set(int64_t *t, uint32_t size, uint32_t pos, int64_t v)
{
	uint32_t i = size + pos;
	t[i] = v;
	/* Once a parent keeps its value, none above it changes. */
	for (i >>= 1; i > 0; i >>= 1) {
		int64_t m = t[2 * i] > t[2 * i + 1] ? t[2 * i] : t[2 * i + 1];
		if (t[i] == m)
			break;
		t[i] = m;
	}
}

/* 32-bit words ring__subs_build() needs for @level. Each domain's index
 * has fewer than 2 slots per point plus one (empty domains get none). */
static size_t
ring__subs_words(const struct ring *r, unsigned level)
{
	return 3 * (size_t)r->npoints + 4 * (size_t)r->ndom[level] + 1;
}

/* Groups the points by their domain at @level with a stable counting sort,
 * so each domain's list is ascending, and indexes each list. */
static void
ring__subs_build(const struct ring *r, unsigned level, struct ring__subs *sb,
		 uint32_t *w)
{
	uint32_t nd = r->ndom[level];
	sb->pt = w;
	sb->start = w + r->npoints;
	sb->ixat = sb->start + nd + 1;
	sb->ixbits = sb->ixat + nd;
	sb->ix = sb->ixbits + nd;
	uint32_t *st = sb->start;
	for (uint32_t i = 0; i < r->npoints; i++)
		st[r->dom[r->own[i] * RING__LEVELS + level] + 1]++;
	for (uint32_t d = 0; d < nd; d++)
		st[d + 1] += st[d];
	for (uint32_t i = 0; i < r->npoints; i++)
		sb->pt[st[r->dom[r->own[i] * RING__LEVELS + level]]++] = i;
	/* Each st[d] now holds the start of d + 1. */
	for (uint32_t d = nd; d > 0; d--)
		st[d] = st[d - 1];
	st[0] = 0;

	uint32_t at = 0;
	for (uint32_t d = 0; d < nd; d++) {
		const uint32_t *pt = sb->pt + st[d];
		uint32_t n = st[d + 1] - st[d], bits = 1;
		sb->ixat[d] = at;
		if (n == 0)
			continue;
		while ((1u << bits) < n)
			bits++;
		sb->ixbits[d] = bits;
		uint32_t q = 0;
		for (uint32_t b = 0; b < (1u << bits); b++) {
			while (q < n && (r->tok[pt[q]] >> (64 - bits)) < b)
				q++;
			sb->ix[at + b] = q;
		}
		sb->ix[at + (1u << bits)] = n;
		at += (1u << bits) + 1;
	}
}

/*
 * Where a probe at @p enters the sub-ring of domain @d: the index of its
 * first point with a token >= @p, wrapping to 0. Those are exactly the
 * points of the domain at or after the probe's successor on the ring, so
 * the sub-ring walk meets the same points as a ring walk that skips the
 * others.
 */
static uint32_t
ring__subs_enter(const struct ring *r, const struct ring__subs *sb, uint32_t d,
		 uint64_t p)
{
	const uint32_t *pt = sb->pt + sb->start[d];
	uint32_t n = sb->start[d + 1] - sb->start[d];
	uint32_t q = sb->ix[sb->ixat[d] + (p >> (64 - sb->ixbits[d]))];
	while (q < n && r->tok[pt[q]] < p)
		q++;
	return q == n ? 0 : q;
}

static void
ring__fit_free(const struct ring *r, struct ring__fit *f)
{
	mesh_free(r->alloc, f->blk);
}

/*
 * Allocates and fills the scratch. Caps as in ring__caps_init(), over
 * @slots; sub-rings only for the levels in @subs that some pack uses.
 */
static int
ring__fit_init(const struct ring *r, struct ring__fit *f, bool bounded,
	       uint64_t slots, uint32_t eps_milli, const bool subs[2])
{
	memset(f, 0, sizeof(*f));
	uint32_t ts = 1;
	while (ts < r->nnodes)
		ts <<= 1;
	size_t w64 = 2 * (size_t)ts * (bounded ? 2 : 1) + r->nnodes;
	w64 += 2 * (sizeof(struct ring__subs) + 7) / 8;
	size_t w32 = (size_t)r->nnodes * (bounded ? 2 : 1);
	for (unsigned L = 0; L < 2; L++)
		if (subs[L])
			w32 += ring__subs_words(r, L);
	uint64_t *b = mesh_calloc(r->alloc, w64 + (w32 + 1) / 2, sizeof(*b));
	if (b == NULL)
		return MESH_ENOMEM;
	f->blk = b;
	f->tsize = ts;
	f->room = (int64_t *)b;
	b += 2 * (size_t)ts;
	f->mroom = f->room;
	if (bounded) {
		f->mroom = (int64_t *)b;
		b += 2 * (size_t)ts;
	}
	f->used = b;
	b += r->nnodes;
	for (unsigned L = 0; L < 2; L++) {
		f->subs[L] = subs[L] ? (struct ring__subs *)b : NULL;
		b += (sizeof(struct ring__subs) + 7) / 8;
	}
	uint32_t *c = (uint32_t *)b;
	f->load = c;
	c += r->nnodes;
	if (bounded) {
		f->cap = c;
		c += r->nnodes;
		/* Only eligible nodes hold points, so den > 0 for them. */
		uint64_t den = 1000ull * r->npoints;
		for (uint32_t i = 0; i < r->nnodes; i++) {
			if (!r->nodes[i].info.eligible)
				continue;
			uint64_t num = (1000ull + eps_milli) * slots *
				       r->nodes[i].info.vnodes;
			f->cap[i] = (uint32_t)((num + den - 1) / den);
		}
	}
	for (unsigned L = 0; L < 2; L++) {
		if (!subs[L])
			continue;
		ring__subs_build(r, L, f->subs[L], c);
		c += ring__subs_words(r, L);
	}
	ring__room_build(r, f, f->room, bounded);
	if (bounded)
		ring__room_build(r, f, f->mroom, false);
	return 0;
}

/* Books a copy of @need MiB on node @n; only leaves that change are set. */
static void
ring__fit_take(const struct ring *r, struct ring__fit *f, uint32_t n,
	       uint32_t need)
{
	f->used[n] += need;
	f->load[n]++;
	bool mem = need > 0 && r->nodes[n].info.mem != 0;
	bool closes = f->cap != NULL && f->load[n] == f->cap[n];
	if (mem || closes)
		ring__room_set(f->room, f->tsize, r->dpos[n],
			       ring__room_of(r, f, n, f->cap != NULL));
	if (mem && f->mroom != f->room)
		ring__room_set(f->mroom, f->tsize, r->dpos[n],
			       ring__room_of(r, f, n, false));
}

/* Places one pack into @o; returns its enum ring_fit. */
static uint8_t
ring__fit_one(const struct ring *r, struct ring__fit *f,
	      const struct ring_pack *p, uint32_t *o,
	      struct ring_assign_stats *st)
{
	unsigned level;
	uint32_t dom, lo, hi;
	if (!ring__pack_domain(r, p, &level, &dom, &lo, &hi))
		return RING_FIT_DOMAIN;
	uint32_t elig = r->delig[hi] - r->delig[lo];
	if (elig == 0)
		return level < RING__LEVELS ? RING_FIT_DOMAIN : RING_FIT_NODES;
	unsigned want = p->replicas < elig ? p->replicas : elig;
	struct ring__probes ps;
	ring__probes(r, p->hash, &ps);
	unsigned got;
	if (p->mem == 0 && level == RING__LEVELS && f->cap == NULL) {
		/* Asks nothing of a node: exactly ring_lookup(). */
		got = ring__pick(r, &ps, want, NULL, o, 0);
	} else {
		uint32_t start[RING_PROBES_MAX];
		struct ring__ask a = {
		    .room = f->room,
		    .tsize = f->tsize,
		    .need = p->mem,
		    .top = level < RING__LEVELS ? level + 1 : RING__ZONE,
		    .lo = lo,
		    .hi = hi,
		};
		if (level < RING__LEVELS) {
			const struct ring__subs *sb = f->subs[level];
			a.sub = sb->pt + sb->start[dom];
			a.nsub = sb->start[dom + 1] - sb->start[dom];
			a.start = start;
			for (uint32_t j = 0; j < ps.k; j++)
				start[j] =
				    ring__subs_enter(r, sb, dom, ps.p[j]);
		}
		got = ring__pick_fit(r, &ps, want, &a, o, 0);
		if (got < want && f->cap != NULL) {
			/* As ring_assign(): too few nodes below their cap;
			 * fill up over it, but never over memory. */
			a.room = f->mroom;
			unsigned more =
			    ring__pick_fit(r, &ps, want, &a, o, got);
			st->over_cap += more - got;
			got = more;
		}
	}
	st->displaced += got == 0 || o[0] != r->own[ring__closest(r, &ps)];
	st->placed += got;
	for (unsigned j = 0; j < got; j++)
		ring__fit_take(r, f, o[j], p->mem);
	if (got < want)
		return RING_FIT_MEM;
	return want < p->replicas ? RING_FIT_NODES : RING_FIT_OK;
}

int
ring_assign_fit(const struct ring *r, const struct ring_pack *packs, size_t n,
		unsigned stride, const struct ring_place *opt, uint32_t *owners,
		uint8_t *why, uint64_t *mem_used, struct ring_assign_stats *st)
{
	struct ring_assign_stats dummy;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (r == NULL || ((packs == NULL || owners == NULL) && n > 0))
		return MESH_EINVAL;
	if (stride == 0 || stride > RING_REPLICAS_MAX)
		return MESH_EINVAL;
	bool bounded = opt != NULL && opt->bounded;
	if (bounded &&
	    (opt->eps_milli < RING_EPS_MIN || opt->eps_milli > RING_EPS_MAX))
		return MESH_EINVAL;
	if (n > RING_ASSIGN_MAX)
		return MESH_ERANGE;
	/* Check every pack before writing anything; count the slots the
	 * caps are shared out over and the sub-rings that will be walked. */
	uint64_t slots = 0;
	bool subs[2] = {false, false};
	for (size_t k = 0; k < n; k++) {
		const struct ring_pack *p = &packs[k];
		if (p->replicas == 0 || p->replicas > stride)
			return MESH_EINVAL;
		unsigned level;
		uint32_t dom, lo, hi;
		if (!ring__pack_domain(r, p, &level, &dom, &lo, &hi))
			continue;
		uint32_t elig = r->delig[hi] - r->delig[lo];
		slots += p->replicas < elig ? p->replicas : elig;
		if (level < RING__LEVELS && elig > 0)
			subs[level] = true;
	}
	struct ring__fit f;
	int rc = ring__fit_init(r, &f, bounded, slots,
				bounded ? opt->eps_milli : 0, subs);
	if (rc != 0)
		return rc;
	st->owners = stride < r->neligible ? stride : r->neligible;
	for (size_t i = 0; i < n * stride; i++)
		owners[i] = RING_NONE;
	for (size_t k = 0; k < n; k++) {
		uint8_t w =
		    ring__fit_one(r, &f, &packs[k], owners + k * stride, st);
		if (why != NULL)
			why[k] = w;
	}
	for (uint32_t i = 0; i < r->nnodes; i++) {
		if (f.load[i] > st->max_load)
			st->max_load = f.load[i];
		if (f.cap != NULL && f.cap[i] > st->max_cap)
			st->max_cap = f.cap[i];
	}
	if (mem_used != NULL)
		memcpy(mem_used, f.used, r->nnodes * sizeof(*mem_used));
	ring__fit_free(r, &f);
	return 0;
}

int
ring_moves(const struct ring *old, const struct ring *cur, const uint64_t *ids,
	   size_t n, const struct ring_place *opt, struct ring_move *moves,
	   size_t cap, size_t *count)
{
	if (count != NULL)
		*count = 0;
	int rc = ring__place_check(cur, ids, n, opt);
	if (rc != 0)
		return rc;
	if (old == NULL || count == NULL || (moves == NULL && cap > 0))
		return MESH_EINVAL;
	const struct mesh_allocator *a = cur->alloc;
	unsigned R = opt->replicas;
	uint32_t *ao = mesh_calloc(a, n * R + 1, sizeof(*ao));
	uint32_t *bo = mesh_calloc(a, n * R + 1, sizeof(*bo));
	uint32_t *map = mesh_calloc(a, old->nnodes, sizeof(*map));
	if (ao == NULL || bo == NULL || map == NULL) {
		rc = MESH_ENOMEM;
		goto out;
	}
	rc = ring_assign(old, ids, n, opt, ao, NULL);
	if (rc == 0)
		rc = ring_assign(cur, ids, n, opt, bo, NULL);
	if (rc != 0)
		goto out;
	/* Both node tables are sorted by name: one merge maps old to new. */
	for (uint32_t i = 0, j = 0; i < old->nnodes; i++) {
		map[i] = RING_NONE;
		while (j < cur->nnodes &&
		       strcmp(cur->nodes[j].name, old->nodes[i].name) < 0)
			j++;
		if (j < cur->nnodes &&
		    strcmp(cur->nodes[j].name, old->nodes[i].name) == 0)
			map[i] = j;
	}
	size_t nm = 0;
	for (size_t i = 0; i < n; i++) {
		const uint32_t *A = ao + i * R, *B = bo + i * R;
		uint32_t gone[RING_REPLICAS_MAX], came[RING_REPLICAS_MAX];
		uint32_t mapped[RING_REPLICAS_MAX];
		unsigned ng = 0, nc = 0;
		for (unsigned j = 0; j < R; j++)
			mapped[j] = A[j] == RING_NONE ? RING_NONE : map[A[j]];
		for (unsigned j = 0; j < R; j++) {
			if (A[j] != RING_NONE && (mapped[j] == RING_NONE ||
						  !ring__has(B, R, mapped[j])))
				gone[ng++] = A[j];
			if (B[j] != RING_NONE && !ring__has(mapped, R, B[j]))
				came[nc++] = B[j];
		}
		for (unsigned k = 0; k < ng || k < nc; k++, nm++) {
			if (nm >= cap)
				continue;
			moves[nm].pack = ids[i];
			moves[nm].from = k < ng ? gone[k] : RING_NONE;
			moves[nm].to = k < nc ? came[k] : RING_NONE;
		}
	}
	*count = nm;
	if (nm > cap)
		rc = MESH_EFULL;
out:
	mesh_free(a, ao);
	mesh_free(a, bo);
	mesh_free(a, map);
	return rc;
}

int
ring_owned(const struct ring *r, uint32_t node, const uint64_t *ids, size_t n,
	   const struct ring_place *opt, uint64_t *out, size_t *count)
{
	if (count != NULL)
		*count = 0;
	int rc = ring__place_check(r, ids, n, opt);
	if (rc != 0)
		return rc;
	if (count == NULL || (out == NULL && n > 0))
		return MESH_EINVAL;
	if (node >= r->nnodes)
		return MESH_ENOENT;
	unsigned R = opt->replicas;
	uint32_t *o = mesh_calloc(r->alloc, n * R + 1, sizeof(*o));
	if (o == NULL)
		return MESH_ENOMEM;
	rc = ring_assign(r, ids, n, opt, o, NULL);
	size_t k = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (ring__has(o + i * R, R, node))
			out[k++] = ids[i];
	*count = k;
	mesh_free(r->alloc, o);
	return rc;
}

/* ---- formatting -------------------------------------------------------- */

struct ring__buf {
	char *p;
	size_t size;
	size_t len; /* as if there were room */
};

static void
ring__put(struct ring__buf *b, const char *s, bool escape)
{
	for (; *s != '\0'; s++) {
		bool esc = escape && (*s == '"' || *s == '\\');
		for (int k = esc ? 0 : 1; k < 2; k++) {
			char ch = k == 0 ? '\\' : *s;
			if (b->len + 1 < b->size)
				b->p[b->len] = ch;
			b->len++;
		}
	}
}

int
ring_format_owners(const struct ring *r, const uint32_t *owners, unsigned n,
		   bool json, char *buf, size_t size)
{
	if (r == NULL || buf == NULL || size == 0 || (owners == NULL && n > 0))
		return MESH_EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (owners[i] >= r->nnodes)
			return MESH_EINVAL;
	struct ring__buf b = {.p = buf, .size = size, .len = 0};
	if (json)
		ring__put(&b, "[", false);
	for (unsigned i = 0; i < n; i++) {
		const struct ring__node *nd = &r->nodes[owners[i]];
		if (json) {
			ring__put(&b, i > 0 ? ",{\"name\":\"" : "{\"name\":\"",
				  false);
			ring__put(&b, nd->name, true);
			ring__put(&b, "\",\"zone\":\"", false);
			ring__put(&b, nd->zone, true);
			ring__put(&b, "\",\"region\":\"", false);
			ring__put(&b, nd->region, true);
			ring__put(&b, "\",\"cell\":\"", false);
			ring__put(&b, nd->cell, true);
			ring__put(&b, "\",\"draining\":", false);
			ring__put(&b, nd->info.draining ? "true}" : "false}",
				  false);
		} else {
			ring__put(&b, nd->name, false);
			ring__put(&b, " zone=", false);
			ring__put(&b, nd->zone, false);
			ring__put(&b, " region=", false);
			ring__put(&b, nd->region, false);
			ring__put(&b, " cell=", false);
			ring__put(&b, nd->cell, false);
			ring__put(&b, nd->info.draining ? " draining\n" : "\n",
				  false);
		}
	}
	if (json)
		ring__put(&b, "]", false);
	buf[b.len < size ? b.len : size - 1] = '\0';
	if (b.len >= size || b.len > (size_t)INT32_MAX)
		return MESH_ETOOBIG;
	return (int)b.len;
}
