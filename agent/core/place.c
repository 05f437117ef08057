/*
 * place.c - the ring follows the membership view.
 *
 * Every node rebuilds its ring from its own view after each membership
 * change; nodes with equal views build equal rings (ring.c guarantees the
 * same owners for the same members in any order), so no coordinator is
 * needed. Suspects stay eligible on purpose: Lifeguard refutes most false
 * suspicions within a second, and moving packs back and forth for them
 * would cost more than a short wait for the dead verdict.
 *
 * Flap damping, after BGP route-flap damping (RFC 2439). A node in a crash
 * loop, or behind a link that comes and goes, would otherwise move its
 * packs away and back on every flap, and each move is real work (state
 * transfer, restarts) for the nodes that take them. So every member has a
 * score: each departure (to dead or left, as seen between two
 * place_update() calls) adds the penalty, capped at max; the
 * score halves every half-life. When it reaches suppress the member is
 * damped: kept in the ring but not eligible, as if dead, even while alive,
 * until the score has decayed below reuse. A member that goes alive ->
 * suspect -> dead pays once: it never came back in between. Coming back
 * (to alive) costs nothing; the departure was already paid for. A
 * suspicion alone is no departure: it moves no pack (suspects stay
 * eligible), and on a lossy network refuted suspicions are common, so
 * counting them would damp healthy nodes and move their packs for
 * nothing.
 *
 * Deviation from the paper: RFC 2439 damps routes a router hears; here each
 * node damps from its own observations, so two nodes may disagree for a
 * while: they see the same departures within a gossip delay and so damp at
 * the same flap, but readmit up to that delay apart, and a node that
 * joined after the flaps has no history and places the member at once.
 * ring_digest() shows such a difference; it heals when the score decays,
 * within place_next_deadline() of the last flap.
 *
 * The default numbers (score unit: one penalty = 1000):
 * - penalty 1000 < suppress 1500: one restart, upgrade or false death is
 *   not damped; its packs move away and back as without damping.
 * - A second departure dt after the first gives 1000 * 2^(-dt / 60 s) +
 *   1000, which reaches 1500 while dt <= one half-life: two flaps within a
 *   minute damp. A member that flaps 5 times in a minute thus moves its
 *   packs away and back at flap 1, away at flap 2 (it was down anyway), and
 *   then nothing: its returns and flaps 3..5 find it damped.
 * - reuse 500 = suppress - penalty: a readmitted member is like one that
 *   has just flapped once: one more flap is tolerated, two close together
 *   damp it again. After two flaps within a minute (score 1500..2000) it is
 *   readmitted after 60 s * log2(score / 500) = 95..120 s of calm.
 * - max 6000: the longest a member stays out once it stops flapping is
 *   60 s * log2(6000 / 500) = 215 s, however long it flapped before (RFC
 *   2439's maximum suppress time).
 * - half-life 60 s: long against a restart (seconds) so that a crash loop
 *   is caught at its second turn, short enough that a node repaired by an
 *   operator is back in a few minutes without anyone resetting it.
 */
#include "place.h"

#include "mesh_err.h"
#include "mesh_sort.h"
#include "mesh_text.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PLACE_FLAP_PENALTY 1000
#define PLACE_FLAP_SUPPRESS 1500
#define PLACE_FLAP_REUSE 500
#define PLACE_FLAP_MAX 6000
#define PLACE_FLAP_HALF_LIFE_MS 60000
/* A score below this counts as none: the record of an alive or vanished
 * member is then dropped, which bounds the table by the members that were
 * down or flapped within the last few minutes (reuse >= 1 keeps every
 * damped member's record). */
#define PLACE__FLAP_FLOOR 1.0

/* The flap record of one member, kept by name. */
struct place__flap {
	char name[SWIM_NAME_MAX + 1];
	double score;  /* as of t_ms */
	uint64_t t_ms; /* when score was last decayed */
	bool up;       /* alive at the last place_update() */
	bool present;  /* in the view at the last place_update() */
	bool damped;
	int8_t note; /* changed at this update: +1 damped, -1 readmitted */
};

/* The table place_update() builds, sized beforehand. */
struct place__tab {
	struct place__flap *v;
	size_t n, cap;
};

struct place;
static bool place__shared_damped(const struct place *p, const char *name,
				 uint64_t now);

struct place {
	const struct mesh_env *env;
	struct ring *ring;
	struct ring_place opt;
	uint64_t *packs;
	size_t npacks;

	struct place_flap flap;
	struct place__flap *flaps; /* sorted by name */
	size_t nflaps;
	/* flaps describes the view p->ring was built from: a member of that
	 * view without a record was alive. False before the first update and
	 * after damping was turned on again. */
	bool flap_history;
	size_t ndamped;
	uint64_t flap_deadline;
	/* Damping shared by the mesh: name -> damped until (monotonic ms),
	 * from our own scores and from other nodes' (place_damp_until()).
	 * It alone keeps members out of the ring, so that every node, the
	 * damped one included, builds the same ring once the decisions have
	 * spread. */
	struct place__shared {
		char name[SWIM_NAME_MAX + 1];
		uint64_t until_ms;
		bool announce; /* ours, not told to the driver yet */
	} * shared;
	size_t nshared, capshared;
};

int
place_new(const struct mesh_env *env, unsigned replicas, struct place **out)
{
	if (replicas == 0 || replicas > RING_REPLICAS_MAX)
		return MESH_EINVAL;
	struct place *p = mesh_calloc(env->alloc, 1, sizeof(*p));
	if (p == NULL)
		return MESH_ENOMEM;
	p->env = env;
	p->opt.replicas = replicas;
	place_flap_default(&p->flap);
	p->flap_deadline = UINT64_MAX;
	*out = p;
	return 0;
}

void
place_free(struct place *p)
{
	if (p == NULL)
		return;
	ring_free(p->ring);
	mesh_free(p->env->alloc, p->shared);
	mesh_free(p->env->alloc, p->packs);
	mesh_free(p->env->alloc, p->flaps);
	mesh_free(p->env->alloc, p);
}

static int
place__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int
place_set_packs(struct place *p, const uint64_t *ids, size_t n)
{
	if (n > PLACE_PACKS_MAX)
		return MESH_ERANGE;
	uint64_t *copy = NULL;
	if (n > 0) {
		copy = mesh_malloc(p->env->alloc, n * sizeof(*copy));
		if (copy == NULL)
			return MESH_ENOMEM;
		memcpy(copy, ids, n * sizeof(*copy));
		mesh_sort(copy, n, sizeof(*copy), place__cmp_u64);
		for (size_t i = 1; i < n; i++)
			if (copy[i] == copy[i - 1]) {
				mesh_free(p->env->alloc, copy);
				return MESH_EEXIST;
			}
	}
	mesh_free(p->env->alloc, p->packs);
	p->packs = copy;
	p->npacks = n;
	return 0;
}

static const char *
place__tag(const struct swim_meta *m, const char *key)
{
	for (unsigned i = 0; i < m->kv_count; i++)
		if (strcmp(m->kv[i].key, key) == 0)
			return m->kv[i].value;
	return NULL;
}

bool
place_meta_is_draining(const struct swim_meta *meta)
{
	const char *v = place__tag(meta, PLACE_TAG_DRAIN);
	return v != NULL && strcmp(v, "1") == 0;
}

/* A number tag in 1..@max; 0 when absent or bad (a bad tag counts as the
 * default rather than excluding a node). */
static uint32_t
place__number(const struct swim_meta *m, const char *key, unsigned long max)
{
	const char *v = place__tag(m, key);
	if (v == NULL)
		return 0;
	char *end;
	unsigned long w = strtoul(v, &end, 10);
	return *v != 0 && *end == 0 && w >= 1 && w <= max ? (uint32_t)w : 0;
}

static void
place__log_moves(struct place *p, const struct ring *old,
		 const struct ring_move *mv, size_t n)
{
	/* A large mesh change can move many packs; the log names the first
	 * few and counts the rest. */
	size_t shown = n < 20 ? n : 20;
	if (n > shown)
		MESH_LOG(p->env, MESH_LOG_INFO,
			 "place: %zu moves (first %zu listed)", n, shown);
	for (size_t i = 0; i < shown; i++) {
		const struct ring_node_info *from =
		    mv[i].from == RING_NONE ? NULL : ring_node(old, mv[i].from);
		const struct ring_node_info *to =
		    mv[i].to == RING_NONE ? NULL : ring_node(p->ring, mv[i].to);
		MESH_LOG(
		    p->env, MESH_LOG_INFO, "place: pack %llu moves %s -> %s",
		    (unsigned long long)mv[i].pack,
		    from ? from->name : "(none)", to ? to->name : "(none)");
	}
}

/* ---- flap damping ------------------------------------------------------ */

void
place_flap_default(struct place_flap *cfg)
{
	cfg->penalty = PLACE_FLAP_PENALTY;
	cfg->suppress = PLACE_FLAP_SUPPRESS;
	cfg->reuse = PLACE_FLAP_REUSE;
	cfg->max_score = PLACE_FLAP_MAX;
	cfg->half_life_ms = PLACE_FLAP_HALF_LIFE_MS;
}

int
place_set_flap(struct place *p, const struct place_flap *cfg)
{
	if (cfg == NULL)
		return MESH_EINVAL;
	if (cfg->half_life_ms != 0 &&
	    (cfg->penalty == 0 || cfg->reuse == 0 ||
	     cfg->reuse >= cfg->suppress || cfg->suppress > cfg->max_score))
		return MESH_EINVAL;
	if (cfg->half_life_ms == 0) {
		mesh_free(p->env->alloc, p->flaps);
		p->flaps = NULL;
		p->nflaps = 0;
		p->flap_history = false;
		p->ndamped = 0;
		p->flap_deadline = UINT64_MAX;
	}
	p->flap = *cfg;
	return 0;
}

/* @score, taken at @from, decayed to @to; time going backwards counts as
 * none passing. */
static double
place__decay(const struct place *p, double score, uint64_t from, uint64_t to)
{
	if (to <= from || score == 0)
		return score;
	return score *
	       exp2(-(double)(to - from) / (double)p->flap.half_life_ms);
}

static int
place__flap_cmp(const void *a, const void *b)
{
	return strcmp(((const struct place__flap *)a)->name,
		      ((const struct place__flap *)b)->name);
}

static const struct place__flap *
place__flap_find(const struct place *p, const char *name)
{
	size_t lo = 0, hi = p->nflaps;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->flaps[mid].name, name);
		if (c == 0)
			return &p->flaps[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Damping or readmission by the score, then whether to keep the record. */
static bool
place__flap_judge(const struct place *p, struct place__flap *e)
{
	if (e->score > (double)p->flap.max_score)
		e->score = p->flap.max_score; /* the config may have changed */
	if (!e->damped && e->score >= (double)p->flap.suppress) {
		e->damped = true;
		e->note = 1;
	} else if (e->damped && e->score < (double)p->flap.reuse) {
		e->damped = false;
		e->note = -1;
	}
	return e->damped || !e->up || e->score >= PLACE__FLAP_FLOOR;
}

/* Brings the record of @mi up to @now: a departure from alive since the
 * last update costs the penalty. Appends it to @tab when it is worth
 * keeping. Returns whether @mi is damped. */
static bool
place__flap_see(const struct place *p, const struct swim_member_info *mi,
		uint64_t now, struct place__tab *tab)
{
	const struct place__flap *old = place__flap_find(p, mi->name);
	bool up = mi->state == SWIM_ALIVE || mi->state == SWIM_SUSPECT;
	struct place__flap e;
	if (old != NULL) {
		e = *old;
		e.score = place__decay(p, e.score, e.t_ms, now);
		if (now > e.t_ms)
			e.t_ms = now;
	} else {
		memset(&e, 0, sizeof(e));
		/* swim keeps names within SWIM_NAME_MAX. */
		memcpy(e.name, mi->name, strnlen(mi->name, SWIM_NAME_MAX));
		e.t_ms = now;
		/* No record: alive last time if it was in the last view; a
		 * member new to us has no departure we saw. */
		e.up = up ||
		       (p->flap_history && ring_find(p->ring, mi->name) >= 0);
	}
	if (e.up && !up) {
		e.score += p->flap.penalty;
		if (e.score > (double)p->flap.max_score)
			e.score = p->flap.max_score;
	}
	e.up = up;
	e.present = true;
	e.note = 0;
	if (place__flap_judge(p, &e)) {
		assert(tab->n < tab->cap);
		tab->v[tab->n++] = e;
	}
	return e.damped;
}

/* Members that left the view keep their record until it decays, so that
 * one removed and added again (reclaimed, then rejoined) is still known. */
static void
place__flap_gone(const struct place *p, const struct swim *s, uint64_t now,
		 struct place__tab *tab)
{
	for (size_t i = 0; i < p->nflaps; i++) {
		struct swim_member_info mi;
		if (swim_member_find(s, p->flaps[i].name, &mi) == 0)
			continue; /* seen by place__flap_see() */
		struct place__flap e = p->flaps[i];
		e.score = place__decay(p, e.score, e.t_ms, now);
		if (now > e.t_ms)
			e.t_ms = now;
		e.present = false;
		bool keep = place__flap_judge(p, &e);
		e.note = 0; /* not in the view: nothing to tell */
		if (keep && e.score >= PLACE__FLAP_FLOOR) {
			assert(tab->n < tab->cap);
			tab->v[tab->n++] = e;
		}
	}
}

/* When @e's score falls below reuse: the first whole millisecond after
 * score * 2^(-dt / half_life) = reuse. */
static uint64_t
place__readmit_at(const struct place *p, const struct place__flap *e)
{
	double dt = (double)p->flap.half_life_ms *
		    log2(e->score / (double)p->flap.reuse);
	if (!(dt > 0))
		dt = 0;
	double wait = floor(dt) + 1.0;
	if (wait >= (double)(UINT64_MAX - e->t_ms))
		return UINT64_MAX;
	return e->t_ms + (uint64_t)wait;
}

/* Takes @tab as the flap table and tells what changed. */
static void
place__flap_commit(struct place *p, struct place__flap *tab, size_t ntab)
{
	mesh_free(p->env->alloc, p->flaps);
	p->flaps = tab;
	p->nflaps = ntab;
	p->flap_history = p->flap.half_life_ms != 0;
	p->ndamped = 0;
	p->flap_deadline = UINT64_MAX;
	for (size_t i = 0; i < ntab; i++) {
		struct place__flap *e = &tab[i];
		if (e->note > 0)
			MESH_LOG(p->env, MESH_LOG_WARN,
				 "place: %s damped: flap score %u >= %u, "
				 "out of the ring until below %u",
				 e->name, (unsigned)e->score, p->flap.suppress,
				 p->flap.reuse);
		else if (e->note < 0)
			MESH_LOG(p->env, MESH_LOG_INFO,
				 "place: %s readmitted: flap score %u < %u",
				 e->name, (unsigned)e->score, p->flap.reuse);
		e->note = 0;
		if (e->present && e->damped) {
			p->ndamped++;
			uint64_t at = place__readmit_at(p, e);
			if (at < p->flap_deadline)
				p->flap_deadline = at;
		}
	}
}

void
place_flap_info(const struct place *p, const char *name, uint64_t now_ms,
		uint32_t *score, bool *damped)
{
	const struct place__flap *e =
	    p->flap.half_life_ms == 0 ? NULL : place__flap_find(p, name);
	if (score != NULL)
		*score =
		    e == NULL
			? 0
			: (uint32_t)floor(
			      place__decay(p, e->score, e->t_ms, now_ms) + 0.5);
	if (damped != NULL)
		*damped = p->flap.half_life_ms != 0 &&
			  place__shared_damped(p, name, now_ms);
}

uint64_t
place_next_deadline(const struct place *p)
{
	return p->flap_deadline;
}

size_t
place_damped_count(const struct place *p)
{
	return p->ndamped;
}

/* ---- shared damping ---------------------------------------------------- */

static struct place__shared *
place__shared_find(const struct place *p, const char *name)
{
	for (size_t i = 0; i < p->nshared; i++)
		if (strcmp(p->shared[i].name, name) == 0)
			return &p->shared[i];
	return NULL;
}

/* Damps @name until @until_ms at least; @ours: announce it. */
static int
place__share(struct place *p, const char *name, uint64_t until_ms, bool ours)
{
	struct place__shared *e = place__shared_find(p, name);
	if (e == NULL) {
		if (mesh_grow(p->env->alloc, (void **)&p->shared, &p->capshared,
			      p->nshared + 1, sizeof(*p->shared)) != 0)
			return MESH_ENOMEM;
		e = &p->shared[p->nshared++];
		memset(e, 0, sizeof(*e));
		memcpy(e->name, name, strnlen(name, SWIM_NAME_MAX));
	}
	if (until_ms > e->until_ms) {
		e->until_ms = until_ms;
		e->announce |= ours;
	}
	return 0;
}

int
place_damp_until(struct place *p, const char *name, uint64_t until_ms,
		 uint64_t now_ms)
{
	if (!mesh_name_is_valid(name, SWIM_NAME_MAX))
		return MESH_EINVAL;
	if (p->flap.half_life_ms == 0)
		return 0; /* damping off here: others' decisions too */
	/* No decision lasts longer than a maximal score takes to decay to
	 * reuse: a member with the cluster key that writes "damped for a
	 * year" keeps nobody out for longer than our own rules could. */
	double span = (double)p->flap.half_life_ms *
		      log2((double)p->flap.max_score / (double)p->flap.reuse);
	uint64_t cap = now_ms + (uint64_t)ceil(span > 0 ? span : 0);
	return place__share(p, name, until_ms < cap ? until_ms : cap, false);
}

bool
place_poll_damp(struct place *p, struct place_damp *out)
{
	for (size_t i = 0; i < p->nshared; i++) {
		struct place__shared *e = &p->shared[i];
		if (!e->announce)
			continue;
		e->announce = false;
		out->name = e->name;
		out->until_ms = e->until_ms;
		return true;
	}
	return false;
}

static bool
place__shared_damped(const struct place *p, const char *name, uint64_t now)
{
	const struct place__shared *e = place__shared_find(p, name);
	return e != NULL && e->until_ms > now;
}

/* Drops decisions that ran out (told ones only). */
static void
place__shared_prune(struct place *p, uint64_t now)
{
	size_t k = 0;
	for (size_t i = 0; i < p->nshared; i++)
		if (p->shared[i].until_ms > now || p->shared[i].announce)
			p->shared[k++] = p->shared[i];
	p->nshared = k;
}

/* ---- the ring ---------------------------------------------------------- */

int
place_update(struct place *p, const struct swim *s, uint64_t now_ms,
	     size_t *moves)
{
	size_t n = swim_member_count(s);
	struct ring_member *rm =
	    mesh_calloc(p->env->alloc, n ? n : 1, sizeof(*rm));
	if (rm == NULL)
		return MESH_ENOMEM;
	/* A record is kept for each old one and each member not alive now:
	 * one alive with no old record has no score and needs none. */
	bool damping = p->flap.half_life_ms != 0;
	struct place__tab tab = {0};
	if (damping) {
		size_t counts[4];
		swim_state_counts(s, counts);
		tab.cap = p->nflaps + n - counts[SWIM_ALIVE] + 1;
		tab.v = mesh_malloc(p->env->alloc, tab.cap * sizeof(*tab.v));
		if (tab.v == NULL) {
			mesh_free(p->env->alloc, rm);
			return MESH_ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct swim_member_info mi;
		swim_member_at(s, i, &mi);
		rm[i].name = mi.name;
		rm[i].zone = mi.meta->zone;
		rm[i].region = mi.meta->region;
		rm[i].cell = mi.meta->cell;
		rm[i].weight =
		    place__number(mi.meta, PLACE_TAG_CAPACITY, RING_WEIGHT_MAX);
		rm[i].mem = place__number(mi.meta, PLACE_TAG_MEM, UINT32_MAX);
		rm[i].alive =
		    mi.state == SWIM_ALIVE || mi.state == SWIM_SUSPECT;
		rm[i].draining = place_meta_is_draining(mi.meta);
		/* We never score ourselves: our own view of us is not a
		 * measurement of our reachability (others' scores of us
		 * reach us through place_damp_until()). */
		if (damping && !mi.is_self)
			place__flap_see(p, &mi, now_ms, &tab);
	}
	if (damping) {
		place__flap_gone(p, s, now_ms, &tab);
		mesh_sort(tab.v, tab.n, sizeof(*tab.v), place__flap_cmp);
		/* Our damping decisions join the shared ones, lasting until
		 * the score decays below reuse. */
		for (size_t i = 0; i < tab.n; i++)
			if (tab.v[i].damped && tab.v[i].present &&
			    place__share(p, tab.v[i].name,
					 place__readmit_at(p, &tab.v[i]),
					 true) != 0) {
				mesh_free(p->env->alloc, tab.v);
				mesh_free(p->env->alloc, rm);
				return MESH_ENOMEM;
			}
		place__shared_prune(p, now_ms);
		for (size_t i = 0; i < n; i++)
			if (place__shared_damped(p, rm[i].name, now_ms))
				rm[i].alive = false;
	}
	struct ring *fresh;
	int rc = ring_new(p->env, NULL, rm, n, &fresh);
	size_t ndamped = 0;
	for (size_t i = 0; i < n; i++)
		ndamped +=
		    damping && place__shared_damped(p, rm[i].name, now_ms);
	mesh_free(p->env->alloc, rm);
	if (rc != 0) {
		mesh_free(p->env->alloc, tab.v);
		return rc;
	}
	place__flap_commit(p, tab.v, tab.n);
	/* Out of the ring is what the shared decisions say; the ring must
	 * be built again when the first of them runs out. */
	p->ndamped = ndamped;
	p->flap_deadline = UINT64_MAX;
	for (size_t i = 0; i < p->nshared; i++)
		if (p->shared[i].until_ms > now_ms &&
		    p->shared[i].until_ms < p->flap_deadline)
			p->flap_deadline = p->shared[i].until_ms;
	struct ring *old = p->ring;
	p->ring = fresh;
	if (moves != NULL)
		*moves = 0;
	if (old == NULL || p->npacks == 0 ||
	    ring_digest(old) == ring_digest(fresh)) {
		ring_free(old);
		return 0;
	}
	size_t cap = RING_MOVES_MAX(p->npacks, p->opt.replicas), count = 0;
	struct ring_move *mv = mesh_malloc(p->env->alloc, cap * sizeof(*mv));
	rc = mv == NULL ? MESH_ENOMEM
			: ring_moves(old, fresh, p->packs, p->npacks, &p->opt,
				     mv, cap, &count);
	if (rc == 0) {
		place__log_moves(p, old, mv, count);
		if (moves != NULL)
			*moves = count;
	}
	mesh_free(p->env->alloc, mv);
	ring_free(old);
	return rc;
}

const struct ring *
place_ring(const struct place *p)
{
	return p->ring;
}

unsigned
place_replicas(const struct place *p)
{
	return p->opt.replicas;
}

size_t
place_pack_count(const struct place *p)
{
	return p->npacks;
}

int
place_owned(const struct place *p, const char *name, uint64_t *out,
	    size_t *count)
{
	*count = 0;
	if (p->ring == NULL)
		return MESH_ESTATE;
	int idx = ring_find(p->ring, name);
	if (idx < 0)
		return idx;
	if (p->npacks == 0)
		return 0;
	return ring_owned(p->ring, (uint32_t)idx, p->packs, p->npacks, &p->opt,
			  out, count);
}
