/*
 * crdt_cc.c - causal contexts and the hybrid logical clock.
 *
 * A causal context is the set of dots a replica has seen. Stored as in the
 * delta-state paper: a version vector for the gap-free prefix of each
 * replica plus a "dot cloud" for dots beyond a gap. Gaps arise because
 * deltas arrive out of order or are lost; once the missing dots arrive the
 * cloud collapses into the vector (compaction), so a replica that has caught
 * up holds one entry per replica whatever the history was.
 *
 * HLC (Kulkarni et al., "Logical Physical Clocks", 2014): a stamp is
 * (wall_ms, logical) where wall_ms is the largest physical time known to the
 * causal past; we add the replica id as the last tie-breaker so that stamps
 * of different replicas never compare equal. The caller passes physical time
 * in; nothing here reads a clock.
 */
#include "crdt_impl.h"

#include "mesh_err.h"

#include <string.h>

int
crdt__bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n == 0 ? 0 : memcmp(a, b, n);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

uint8_t *
crdt__dup(const struct mesh_allocator *a, const void *p, size_t len)
{
	uint8_t *d = mesh_malloc(a, len == 0 ? 1 : len);
	if (d != NULL && len != 0)
		memcpy(d, p, len);
	return d;
}

int
crdt_dot_compare(const struct crdt_dot *a, const struct crdt_dot *b)
{
	if (a->replica != b->replica)
		return a->replica < b->replica ? -1 : 1;
	if (a->counter != b->counter)
		return a->counter < b->counter ? -1 : 1;
	return 0;
}

void
crdt__cc_init(struct crdt_cc *cc, const struct mesh_allocator *a)
{
	memset(cc, 0, sizeof(*cc));
	cc->a = a;
}

void
crdt__cc_destroy(struct crdt_cc *cc)
{
	mesh_free(cc->a, cc->vv);
	mesh_free(cc->a, cc->cloud);
	cc->vv = cc->cloud = NULL;
	cc->nvv = cc->cap_vv = cc->ncloud = cc->cap_cloud = 0;
}

struct crdt_cc *
crdt_cc_new(const struct mesh_allocator *a)
{
	struct crdt_cc *cc = mesh_malloc(a, sizeof(*cc));
	if (cc != NULL)
		crdt__cc_init(cc, a);
	return cc;
}

void
crdt_cc_free(struct crdt_cc *cc)
{
	if (cc == NULL)
		return;
	crdt__cc_destroy(cc);
	mesh_free(cc->a, cc);
}

void
crdt_cc_clear(struct crdt_cc *cc)
{
	cc->nvv = cc->ncloud = 0;
}

/* Index of the first vv entry with replica >= @r. */
static size_t
crdt__vv_lower(const struct crdt_cc *cc, uint64_t r)
{
	size_t lo = 0, hi = cc->nvv;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cc->vv[mid].replica < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first cloud dot >= @d. */
static size_t
crdt__cloud_lower(const struct crdt_cc *cc, const struct crdt_dot *d)
{
	size_t lo = 0, hi = cc->ncloud;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (crdt_dot_compare(&cc->cloud[mid], d) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t
crdt_cc_vv(const struct crdt_cc *cc, uint64_t replica)
{
	size_t i = crdt__vv_lower(cc, replica);
	if (i < cc->nvv && cc->vv[i].replica == replica)
		return cc->vv[i].counter;
	return 0;
}

size_t
crdt_cc_cloud_size(const struct crdt_cc *cc)
{
	return cc->ncloud;
}

size_t
crdt_cc_vv_count(const struct crdt_cc *cc)
{
	return cc->nvv;
}

int
crdt_cc_vv_at(const struct crdt_cc *cc, size_t i, struct crdt_dot *out)
{
	if (i >= cc->nvv)
		return MESH_ENOENT;
	*out = cc->vv[i];
	return 0;
}

int
crdt_cc_cloud_at(const struct crdt_cc *cc, size_t i, struct crdt_dot *out)
{
	if (i >= cc->ncloud)
		return MESH_ENOENT;
	*out = cc->cloud[i];
	return 0;
}

bool
crdt_cc_contains(const struct crdt_cc *cc, const struct crdt_dot *dot)
{
	if (dot->counter <= crdt_cc_vv(cc, dot->replica))
		return true;
	if (cc->ncloud == 0)
		return false;
	size_t i = crdt__cloud_lower(cc, dot);
	return i < cc->ncloud && crdt_dot_compare(&cc->cloud[i], dot) == 0;
}

struct crdt_dot
crdt_cc_next_dot(const struct crdt_cc *cc, uint64_t replica)
{
	uint64_t top = crdt_cc_vv(cc, replica);
	/* The replica's own dots are contiguous in its own context, but a
	 * context rebuilt from others' deltas may hold some beyond a gap. */
	struct crdt_dot probe = {replica + 1, 0};
	if (replica != UINT64_MAX) {
		size_t i = crdt__cloud_lower(cc, &probe);
		if (i > 0 && cc->cloud[i - 1].replica == replica)
			top = cc->cloud[i - 1].counter;
	} else if (cc->ncloud > 0 &&
		   cc->cloud[cc->ncloud - 1].replica == replica) {
		top = cc->cloud[cc->ncloud - 1].counter;
	}
	return (struct crdt_dot){replica, top + 1};
}

int
crdt__cc_reserve(struct crdt_cc *cc, size_t n)
{
	int rc = mesh_grow(cc->a, (void **)&cc->vv, &cc->cap_vv, cc->nvv + n,
			   sizeof(*cc->vv));
	if (rc == 0)
		rc = mesh_grow(cc->a, (void **)&cc->cloud, &cc->cap_cloud,
			       cc->ncloud + n, sizeof(*cc->cloud));
	return rc;
}

int
crdt_cc_add(struct crdt_cc *cc, const struct crdt_dot *dot)
{
	if (dot->counter == 0)
		return MESH_EINVAL;
	size_t vi = crdt__vv_lower(cc, dot->replica);
	bool have = vi < cc->nvv && cc->vv[vi].replica == dot->replica;
	uint64_t top = have ? cc->vv[vi].counter : 0;
	if (dot->counter <= top)
		return 0;
	if (dot->counter > top + 1) {
		size_t ci = crdt__cloud_lower(cc, dot);
		if (ci < cc->ncloud &&
		    crdt_dot_compare(&cc->cloud[ci], dot) == 0)
			return 0;
		if (mesh_grow(cc->a, (void **)&cc->cloud, &cc->cap_cloud,
			      cc->ncloud + 1, sizeof(*cc->cloud)) != 0)
			return MESH_ENOMEM;
		memmove(&cc->cloud[ci + 1], &cc->cloud[ci],
			(cc->ncloud - ci) * sizeof(*cc->cloud));
		cc->cloud[ci] = *dot;
		cc->ncloud++;
		return 0;
	}
	if (!have) {
		if (mesh_grow(cc->a, (void **)&cc->vv, &cc->cap_vv, cc->nvv + 1,
			      sizeof(*cc->vv)) != 0)
			return MESH_ENOMEM;
		memmove(&cc->vv[vi + 1], &cc->vv[vi],
			(cc->nvv - vi) * sizeof(*cc->vv));
		cc->vv[vi] = (struct crdt_dot){dot->replica, 0};
		cc->nvv++;
	}
	cc->vv[vi].counter = dot->counter;
	/* Compaction: pull contiguous cloud dots of this replica into the
	 * vector. They sit right after (replica, counter) in the cloud. */
	if (cc->ncloud == 0)
		return 0;
	size_t ci = crdt__cloud_lower(cc, dot);
	size_t cj = ci;
	while (cj < cc->ncloud && cc->cloud[cj].replica == dot->replica &&
	       cc->cloud[cj].counter == cc->vv[vi].counter + 1) {
		cc->vv[vi].counter++;
		cj++;
	}
	if (cj > ci) {
		memmove(&cc->cloud[ci], &cc->cloud[cj],
			(cc->ncloud - cj) * sizeof(*cc->cloud));
		cc->ncloud -= cj - ci;
	}
	return 0;
}

int
crdt__cc_add_many(struct crdt_cc *cc, const struct crdt_dot *dots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = crdt_cc_add(cc, &dots[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
crdt_cc_join(struct crdt_cc *dst, const struct crdt_cc *src)
{
	if (src->nvv == 0 && src->ncloud == 0)
		return 0;
	const struct mesh_allocator *a = dst->a;
	size_t nvv_max = dst->nvv + src->nvv + src->ncloud + dst->ncloud;
	size_t ncl_max = dst->ncloud + src->ncloud;
	struct crdt_dot *vv = mesh_calloc(a, nvv_max, sizeof(*vv));
	struct crdt_dot *cl =
	    ncl_max ? mesh_calloc(a, ncl_max, sizeof(*cl)) : NULL;
	if (vv == NULL || (ncl_max != 0 && cl == NULL)) {
		mesh_free(a, vv);
		mesh_free(a, cl);
		return MESH_ENOMEM;
	}
	/* 1. Merge the vectors, keeping the larger counter. */
	size_t i = 0, j = 0, nv = 0;
	while (i < dst->nvv || j < src->nvv) {
		if (j == src->nvv ||
		    (i < dst->nvv && dst->vv[i].replica < src->vv[j].replica))
			vv[nv++] = dst->vv[i++];
		else if (i == dst->nvv ||
			 src->vv[j].replica < dst->vv[i].replica)
			vv[nv++] = src->vv[j++];
		else {
			vv[nv] = dst->vv[i];
			if (src->vv[j].counter > vv[nv].counter)
				vv[nv].counter = src->vv[j].counter;
			nv++, i++, j++;
		}
	}
	/* 2. Merge the clouds in order, folding each dot into the vector
	 * when it is contiguous with it. The clouds are sorted by (replica,
	 * counter), so one pass with a cursor into the vector suffices. */
	size_t nc = 0, k = 0;
	i = j = 0;
	while (i < dst->ncloud || j < src->ncloud) {
		struct crdt_dot d;
		if (j == src->ncloud ||
		    (i < dst->ncloud &&
		     crdt_dot_compare(&dst->cloud[i], &src->cloud[j]) < 0))
			d = dst->cloud[i++];
		else if (i == dst->ncloud ||
			 crdt_dot_compare(&src->cloud[j], &dst->cloud[i]) < 0)
			d = src->cloud[j++];
		else
			d = dst->cloud[i++], j++;
		while (k < nv && vv[k].replica < d.replica)
			k++;
		uint64_t top =
		    k < nv && vv[k].replica == d.replica ? vv[k].counter : 0;
		if (d.counter <= top)
			continue;
		if (d.counter == top + 1) {
			if (top == 0) {
				/* New vector entry: shift to make room. */
				memmove(&vv[k + 1], &vv[k],
					(nv - k) * sizeof(*vv));
				vv[k] = (struct crdt_dot){d.replica, 0};
				nv++;
			}
			vv[k].counter = d.counter;
			continue;
		}
		cl[nc++] = d;
	}
	mesh_free(a, dst->vv);
	mesh_free(a, dst->cloud);
	dst->vv = vv;
	dst->nvv = nv;
	dst->cap_vv = nvv_max;
	dst->cloud = cl;
	dst->ncloud = nc;
	dst->cap_cloud = ncl_max;
	return 0;
}

bool
crdt_cc_equal(const struct crdt_cc *a, const struct crdt_cc *b)
{
	return a->nvv == b->nvv && a->ncloud == b->ncloud &&
	       (a->nvv == 0 ||
		memcmp(a->vv, b->vv, a->nvv * sizeof(*a->vv)) == 0) &&
	       (a->ncloud == 0 ||
		memcmp(a->cloud, b->cloud, a->ncloud * sizeof(*a->cloud)) == 0);
}

size_t
crdt_cc_size(const struct crdt_cc *cc)
{
	return sizeof(*cc) + (cc->cap_vv + cc->cap_cloud) * sizeof(*cc->vv);
}

/* ------------------------------------------------------------------------ */

int
crdt_hlc_compare(const struct crdt_hlc *a, const struct crdt_hlc *b)
{
	if (a->wall_ms != b->wall_ms)
		return a->wall_ms < b->wall_ms ? -1 : 1;
	if (a->logical != b->logical)
		return a->logical < b->logical ? -1 : 1;
	if (a->replica != b->replica)
		return a->replica < b->replica ? -1 : 1;
	return 0;
}

void
crdt_hlc_init(struct crdt_hlc_clock *c, uint64_t replica,
	      uint64_t max_offset_ms)
{
	memset(c, 0, sizeof(*c));
	c->last.replica = replica;
	c->max_offset_ms = max_offset_ms;
}

int
crdt_hlc_now(struct crdt_hlc_clock *c, uint64_t now_ms, struct crdt_hlc *out)
{
	struct crdt_hlc t = c->last;
	if (now_ms > t.wall_ms) {
		t.wall_ms = now_ms;
		t.logical = 0;
	} else {
		/* Physical time has not moved past what we know: count. */
		if (t.logical == UINT32_MAX)
			return MESH_ERANGE;
		t.logical++;
	}
	c->last = t;
	if (out != NULL)
		*out = t;
	return 0;
}

int
crdt__hlc_observe(struct crdt_hlc_clock *c, uint64_t now_ms,
		  const struct crdt_hlc *remote)
{
	struct crdt_hlc t = c->last;
	uint64_t l = t.wall_ms;
	if (remote->wall_ms > l)
		l = remote->wall_ms;
	if (now_ms > l) {
		t.wall_ms = now_ms;
		t.logical = 0;
	} else {
		uint32_t lc = 0;
		if (l == t.wall_ms)
			lc = t.logical;
		if (l == remote->wall_ms && remote->logical > lc)
			lc = remote->logical;
		if (lc == UINT32_MAX)
			return MESH_ERANGE;
		t.wall_ms = l;
		t.logical = lc + 1;
	}
	c->last = t;
	return 0;
}

int
crdt_hlc_update(struct crdt_hlc_clock *c, uint64_t now_ms,
		const struct crdt_hlc *remote, struct crdt_hlc *out)
{
	if (c->max_offset_ms != 0 && remote->wall_ms > now_ms &&
	    remote->wall_ms - now_ms > c->max_offset_ms)
		return MESH_ERANGE;
	int rc = crdt__hlc_observe(c, now_ms, remote);
	if (rc == 0 && out != NULL)
		*out = c->last;
	return rc;
}
