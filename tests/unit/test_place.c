/* test_place.c - the ring follows the membership view (agent/core/place). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh.pb-c.h"
#include "mesh_err.h"
#include "place.h"
#include "swim_impl.h"
#include "test_env.h"
#include "test_ident.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NPACKS 300

struct fixture {
	struct test_env t;
	struct swim *s;
	struct place *p;
	struct place *twin; /* a second placement, when a test wants one */
	uint64_t packs[NPACKS];
	uint64_t inc[6]; /* incarnation of n0..n5 as the view has it */
	struct test_ident id[6];
};

/* Node n@i's alive record at @inc, signed by its key. */
static void
sign_alive(struct fixture *f, int i, uint64_t inc, const struct swim_addr *a,
	   const struct swim_meta *m, uint8_t sig[SWIM_SIG_BYTES])
{
	char name[8];
	uint8_t rec[SWIM_RECORD_MAX];
	snprintf(name, sizeof(name), "n%d", i);
	size_t n = swim_record_bytes(name, inc, false, a, m, rec);
	test_ident_sign(&f->id[i], rec, n, sig);
}

static struct swim_addr
addr_of(int i)
{
	struct swim_addr a = {.family = 4, .ip = {127, 0, 0, 1}};
	a.port = (uint16_t)(7000 + i);
	return a;
}

static int
setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	test_env_init(&f.t);
	struct swim_config cfg;
	swim_config_default(&cfg);
	strcpy(cfg.name, "n0");
	strcpy(cfg.meta.zone, "z0");
	cfg.addr = addr_of(0);
	cfg.incarnation = 1;
	for (int i = 0; i < 6; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%d", i);
		test_ident_make(&f.id[i], name);
	}
	test_ident_apply(&f.id[0], &cfg);
	if (swim_new(&cfg, &f.t.env, 0, &f.s) != 0)
		return -1;
	for (int i = 1; i < 6; i++) {
		char name[8];
		struct swim_meta m = {0};
		uint8_t sig[SWIM_SIG_BYTES];
		snprintf(name, sizeof(name), "n%d", i);
		snprintf(m.zone, sizeof(m.zone), "z%d", i % 3);
		if (swim_add_known(f.s, 0, name, &(struct swim_addr){0}, 1, &m,
				   f.id[i].pk, sig) != MESH_EINVAL)
			return -1; /* an address is required */
		struct swim_addr a = addr_of(i);
		sign_alive(&f, i, 1, &a, &m, sig);
		if (swim_add_known(f.s, 0, name, &a, 1, &m, f.id[i].pk, sig) !=
		    0)
			return -1;
		f.inc[i] = 1;
	}
	for (int i = 0; i < NPACKS; i++)
		f.packs[i] = 5000 + (uint64_t)i;
	if (place_new(&f.t.env, 3, &f.p) != 0 ||
	    place_set_packs(f.p, f.packs, NPACKS) != 0)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	place_free(f->p);
	place_free(f->twin);
	swim_free(f->s);
	return f->t.alloc.live == 0 ? 0 : -1;
}

/* Sum over members of the packs each owns. */
static size_t
total_owned(struct fixture *f, const char *skip)
{
	uint64_t out[NPACKS];
	size_t total = 0;
	for (size_t i = 0; i < swim_member_count(f->s); i++) {
		struct swim_member_info mi;
		size_t n = 0;
		swim_member_at(f->s, i, &mi);
		if (skip != NULL && strcmp(mi.name, skip) == 0)
			continue;
		int rc = place_owned(f->p, mi.name, out, &n);
		assert_int_equal(rc, 0);
		total += n;
	}
	return total;
}

static void
test_place_every_pack_has_replicas(void **state)
{
	struct fixture *f = *state;
	uint64_t out[NPACKS];
	size_t n;
	assert_int_equal(place_owned(f->p, "n0", out, &n), MESH_ESTATE);
	assert_int_equal(place_update(f->p, f->s, 0, NULL), 0);
	assert_int_equal(total_owned(f, NULL), 3 * NPACKS);
	assert_int_equal(place_owned(f->p, "nobody", out, &n), MESH_ENOENT);
}

static void
test_place_duplicate_packs_refused(void **state)
{
	struct fixture *f = *state;
	uint64_t dup[3] = {1, 2, 1};
	assert_int_equal(place_set_packs(f->p, dup, 3), MESH_EEXIST);
	assert_int_equal(place_pack_count(f->p), NPACKS);
}

static void
test_place_drain_moves_packs_away(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(place_update(f->p, f->s, 0, NULL), 0);
	uint64_t out[NPACKS];
	size_t before = 0, after = 0, moves = 0;
	assert_int_equal(place_owned(f->p, "n0", out, &before), 0);
	assert_true(before > 0);
	struct swim_meta m = {0};
	strcpy(m.zone, "z0");
	m.kv_count = 1;
	strcpy(m.kv[0].key, PLACE_TAG_DRAIN);
	strcpy(m.kv[0].value, "1");
	assert_true(place_meta_is_draining(&m));
	assert_int_equal(swim_set_meta(f->s, 1, &m), 0);
	assert_int_equal(place_update(f->p, f->s, 0, &moves), 0);
	assert_int_equal(place_owned(f->p, "n0", out, &after), 0);
	assert_int_equal(after, 0);
	/* Exactly the drained node's copies moved, and all are still held. */
	assert_int_equal(moves, before);
	assert_int_equal(total_owned(f, NULL), 3 * NPACKS);
}

static void
test_place_capacity_weights_load(void **state)
{
	struct fixture *f = *state;
	struct swim_meta m = {0};
	strcpy(m.zone, "z0");
	m.kv_count = 1;
	strcpy(m.kv[0].key, PLACE_TAG_CAPACITY);
	strcpy(m.kv[0].value, "400");
	assert_int_equal(place_update(f->p, f->s, 0, NULL), 0);
	uint64_t out[NPACKS];
	size_t plain = 0, heavy = 0;
	assert_int_equal(place_owned(f->p, "n0", out, &plain), 0);
	assert_int_equal(swim_set_meta(f->s, 1, &m), 0);
	assert_int_equal(place_update(f->p, f->s, 0, NULL), 0);
	assert_int_equal(place_owned(f->p, "n0", out, &heavy), 0);
	assert_true(heavy > plain);
}

/* ---- flap damping ------------------------------------------------------ */

/* Tells the view, as gossip from n5 would, that n@node is in @st: alive
 * comes with a new incarnation (a restart or a refutation) signed by the
 * node, the others at the current one. Goes through the wire path, as
 * meshd would. */
static void
gossip_one(struct fixture *f, uint64_t now, int node, Mesh__MemberState st)
{
	uint8_t sig[SWIM_SIG_BYTES];
	char name[8], zone[8];
	uint8_t ip[4] = {127, 0, 0, 1};
	snprintf(name, sizeof(name), "n%d", node);
	snprintf(zone, sizeof(zone), "z%d", node % 3);
	Mesh__Update u = MESH__UPDATE__INIT;
	Mesh__Meta meta = MESH__META__INIT;
	Mesh__Update *ups[1] = {&u};
	u.name = name;
	u.state = st;
	if (st == MESH__MEMBER_STATE__MEMBER_ALIVE) {
		u.incarnation = ++f->inc[node];
		u.ip.data = ip;
		u.ip.len = 4;
		u.port = 7000 + (uint32_t)node;
		meta.zone = zone;
		u.meta = &meta;
		struct swim_addr a = addr_of(node);
		struct swim_meta m = {0};
		strcpy(m.zone, zone);
		sign_alive(f, node, u.incarnation, &a, &m, sig);
		u.key.data = f->id[node].pk;
		u.key.len = SWIM_KEY_BYTES;
		u.sig.data = sig;
		u.sig.len = SWIM_SIG_BYTES;
	} else {
		u.incarnation = f->inc[node];
		u.from = "n5";
	}
	Mesh__Packet pkt = MESH__PACKET__INIT;
	pkt.protocol_version = SWIM_PROTOCOL_VERSION;
	pkt.n_updates = 1;
	pkt.updates = ups;
	uint8_t buf[512];
	assert_true(mesh__packet__get_packed_size(&pkt) <= sizeof(buf));
	size_t len = mesh__packet__pack(&pkt, buf);
	struct swim_addr from = addr_of(5);
	assert_int_equal(swim_recv_datagram(f->s, now, &from, buf, len), 0);
	struct swim_member_info mi;
	assert_int_equal(swim_member_find(f->s, name, &mi), 0);
	assert_int_equal(mi.state, (enum swim_state)st);
}

/* As gossip_one(); a death comes after its suspicion, as in the mesh. */
static void
gossip(struct fixture *f, uint64_t now, int node, Mesh__MemberState st)
{
	char name[8];
	struct swim_member_info mi;
	snprintf(name, sizeof(name), "n%d", node);
	assert_int_equal(swim_member_find(f->s, name, &mi), 0);
	if (st == MESH__MEMBER_STATE__MEMBER_DEAD && mi.state == SWIM_ALIVE)
		gossip_one(f, now, node, MESH__MEMBER_STATE__MEMBER_SUSPECT);
	gossip_one(f, now, node, st);
}

static size_t
update(struct fixture *f, uint64_t now)
{
	size_t moves = 99999;
	assert_int_equal(place_update(f->p, f->s, now, &moves), 0);
	return moves;
}

static bool
eligible(const struct place *p, const char *name)
{
	const struct ring *r = place_ring(p);
	int idx = ring_find(r, name);
	assert_true(idx >= 0);
	return ring_node(r, (uint32_t)idx)->eligible;
}

static uint32_t
score_of(const struct place *p, const char *name, uint64_t now, bool *damped)
{
	uint32_t score = 12345;
	place_flap_info(p, name, now, &score, damped);
	return score;
}

static size_t
owned(const struct place *p, const char *name)
{
	uint64_t out[NPACKS];
	size_t n = 0;
	assert_int_equal(place_owned(p, name, out, &n), 0);
	return n;
}

/* What the score should be: RFC 2439's decay written out again. */
static double
decayed(double score, uint64_t from, uint64_t to)
{
	return score * exp2(-(double)(to - from) / 60000.0);
}

static void
test_place_flap_defaults(void **state)
{
	(void)state;
	struct place_flap c;
	place_flap_default(&c);
	assert_int_equal(c.penalty, 1000);
	assert_int_equal(c.suppress, 1500);
	assert_int_equal(c.reuse, 500);
	assert_int_equal(c.max_score, 6000);
	assert_int_equal(c.half_life_ms, 60000);
}

static void
test_place_flap_once_not_damped(void **state)
{
	struct fixture *f = *state;
	bool damped = true;
	update(f, 0);
	size_t had = owned(f->p, "n1");
	assert_true(had > 0);

	/* A restart: its packs move away and come back. */
	gossip(f, 1000, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
	assert_int_equal(update(f, 1000), had);
	assert_int_equal(score_of(f->p, "n1", 1000, &damped), 1000);
	assert_false(damped);
	gossip(f, 3000, 1, MESH__MEMBER_STATE__MEMBER_ALIVE);
	assert_int_equal(update(f, 3000), had);
	assert_true(eligible(f->p, "n1"));
	assert_int_equal(owned(f->p, "n1"), had);
	assert_int_equal(place_damped_count(f->p), 0);
	assert_true(place_next_deadline(f->p) == UINT64_MAX);

	/* alive -> suspect -> dead -> alive is one departure, not two. */
	gossip(f, 10000, 2, MESH__MEMBER_STATE__MEMBER_SUSPECT);
	assert_int_equal(update(f, 10000), 0); /* suspects keep their packs */
	/* A suspicion alone costs nothing: it moved nothing. */
	assert_int_equal(score_of(f->p, "n2", 10000, &damped), 0);
	gossip(f, 11000, 2, MESH__MEMBER_STATE__MEMBER_DEAD);
	assert_true(update(f, 11000) > 0);
	gossip(f, 12000, 2, MESH__MEMBER_STATE__MEMBER_ALIVE);
	assert_true(update(f, 12000) > 0);
	double want = decayed(1000, 11000, 12000);
	uint32_t got = score_of(f->p, "n2", 12000, &damped);
	assert_true(fabs(got - want) <= 1.0);
	assert_false(damped);
	assert_true(eligible(f->p, "n2"));
	/* Members that never flapped have no score; neither does self. */
	assert_int_equal(score_of(f->p, "n3", 12000, &damped), 0);
	assert_false(damped);
	assert_int_equal(score_of(f->p, "nobody", 12000, NULL), 0);
	assert_int_equal(total_owned(f, NULL), 3 * NPACKS);
}

static void
test_place_flap_five_times_moves_nothing_after_second(void **state)
{
	struct fixture *f = *state;
	/* A second placement fed the same view at the same times must come
	 * to the same ring: damping keeps placement deterministic. */
	assert_int_equal(place_new(&f->t.env, 3, &f->twin), 0);
	struct place *twin = f->twin;
	assert_int_equal(place_set_packs(twin, f->packs, NPACKS), 0);
	update(f, 0);
	assert_int_equal(place_update(twin, f->s, 0, NULL), 0);
	size_t had = owned(f->p, "n1");
	assert_true(had > 0);
	double want = 0;
	uint64_t last = 0;
	bool damped;
	for (int k = 0; k < 5; k++) {
		uint64_t down = 1000 + 10000 * (uint64_t)k, up = down + 5000;
		gossip(f, down, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
		size_t mv = update(f, down);
		assert_int_equal(place_update(twin, f->s, down, NULL), 0);
		want = decayed(want, last, down) + 1000;
		last = down;
		assert_true(fabs(score_of(f->p, "n1", down, &damped) - want) <=
			    1.0);
		/* Away at flaps 1 and 2 (down is down), then nothing. */
		assert_int_equal(mv, k < 2 ? had : 0);
		assert_int_equal(damped, k >= 1);
		assert_int_equal(place_damped_count(f->p), k >= 1 ? 1 : 0);

		gossip(f, up, 1, MESH__MEMBER_STATE__MEMBER_ALIVE);
		mv = update(f, up);
		assert_int_equal(mv, k < 1 ? had : 0);
		assert_int_equal(eligible(f->p, "n1"), k < 1);
		assert_int_equal(owned(f->p, "n1"), k < 1 ? had : 0);
		assert_int_equal(total_owned(f, NULL), 3 * NPACKS);
		assert_int_equal(place_update(twin, f->s, up, NULL), 0);
		assert_true(ring_digest(place_ring(twin)) ==
			    ring_digest(place_ring(f->p)));
	}
	assert_true(want < 6000);

	/* Readmission: when 2^(-dt / 60 s) * score = 500. */
	double at = (double)last + 60000.0 * log2(want / 500.0);
	uint64_t deadline = place_next_deadline(f->p);
	assert_true(fabs((double)deadline - at) <= 2.0);
	uint64_t before = deadline - 5;
	assert_int_equal(update(f, before), 0);
	assert_true(score_of(f->p, "n1", before, &damped) >= 500);
	assert_true(damped);
	assert_false(eligible(f->p, "n1"));
	assert_int_equal(place_next_deadline(f->p), deadline);

	size_t lines = f->t.lines;
	assert_int_equal(update(f, deadline), had);
	assert_true(f->t.lines > lines);
	assert_true(score_of(f->p, "n1", deadline, &damped) <= 500);
	assert_false(damped);
	assert_true(eligible(f->p, "n1"));
	assert_int_equal(owned(f->p, "n1"), had);
	assert_int_equal(place_damped_count(f->p), 0);
	assert_true(place_next_deadline(f->p) == UINT64_MAX);

	/* Readmitted is like one recent flap: one more is tolerated. */
	uint64_t t = deadline + 1000;
	gossip(f, t, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
	assert_int_equal(update(f, t), had);
	gossip(f, t + 1000, 1, MESH__MEMBER_STATE__MEMBER_ALIVE);
	assert_int_equal(update(f, t + 1000), had);
	assert_true(eligible(f->p, "n1"));
}

static void
test_place_flap_time_backwards(void **state)
{
	struct fixture *f = *state;
	bool damped;
	update(f, 100000);
	gossip(f, 100000, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
	update(f, 100000);
	gossip(f, 100000, 1, MESH__MEMBER_STATE__MEMBER_ALIVE);
	/* A clock that steps back counts as no time passed, not as growth. */
	update(f, 40000);
	assert_int_equal(score_of(f->p, "n1", 40000, &damped), 1000);
	assert_int_equal(score_of(f->p, "n1", 160000, NULL), 500);
	assert_false(damped);
}

static void
test_place_flap_off_never_damps(void **state)
{
	struct fixture *f = *state;
	struct place_flap c;
	place_flap_default(&c);
	c.half_life_ms = 0;
	assert_int_equal(place_set_flap(f->p, &c), 0);
	update(f, 0);
	size_t had = owned(f->p, "n1");
	for (int k = 0; k < 5; k++) {
		uint64_t t = 1000 + 2000 * (uint64_t)k;
		gossip(f, t, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
		assert_int_equal(update(f, t), had);
		gossip(f, t + 1000, 1, MESH__MEMBER_STATE__MEMBER_ALIVE);
		assert_int_equal(update(f, t + 1000), had);
		assert_true(eligible(f->p, "n1"));
	}
	bool damped = true;
	assert_int_equal(score_of(f->p, "n1", 11000, &damped), 0);
	assert_false(damped);
	assert_int_equal(place_damped_count(f->p), 0);
	assert_true(place_next_deadline(f->p) == UINT64_MAX);
}

static void
test_place_flap_bad_config_refused(void **state)
{
	struct fixture *f = *state;
	struct place_flap good, c;
	place_flap_default(&good);
	assert_int_equal(place_set_flap(f->p, NULL), MESH_EINVAL);
	c = good;
	c.penalty = 0;
	assert_int_equal(place_set_flap(f->p, &c), MESH_EINVAL);
	c = good;
	c.reuse = 0;
	assert_int_equal(place_set_flap(f->p, &c), MESH_EINVAL);
	c = good;
	c.reuse = c.suppress;
	assert_int_equal(place_set_flap(f->p, &c), MESH_EINVAL);
	c = good;
	c.max_score = c.suppress - 1;
	assert_int_equal(place_set_flap(f->p, &c), MESH_EINVAL);
	c = good;
	c.suppress = 400; /* below reuse */
	assert_int_equal(place_set_flap(f->p, &c), MESH_EINVAL);
	/* Off: the other numbers do not matter. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(place_set_flap(f->p, &c), 0);
	/* A refused config changed nothing: damping is still off. */
	c = good;
	c.penalty = 0;
	assert_int_equal(place_set_flap(f->p, &c), MESH_EINVAL);
	update(f, 0);
	for (int k = 0; k < 2; k++) {
		gossip(f, 1000, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
		update(f, 1000);
		gossip(f, 2000, 1, MESH__MEMBER_STATE__MEMBER_ALIVE);
		update(f, 2000);
	}
	assert_true(eligible(f->p, "n1"));
	/* A valid non-default config: one flap damps. */
	c = good;
	c.suppress = 1000;
	assert_int_equal(place_set_flap(f->p, &c), 0);
	update(f, 3000);
	gossip(f, 4000, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
	update(f, 4000);
	gossip(f, 5000, 1, MESH__MEMBER_STATE__MEMBER_ALIVE);
	update(f, 5000);
	assert_false(eligible(f->p, "n1"));
}

/* Our own view never has us down; move our record by hand to prove that
 * it would not count if it did. */
static void
set_self_state(struct fixture *f, enum swim_state st)
{
	struct swim_member *m = f->s->self;
	f->s->counts[m->state]--;
	f->s->counts[st]++;
	m->state = (uint8_t)st;
}

static void
test_place_flap_self_never_damped(void **state)
{
	struct fixture *f = *state;
	bool damped = true;
	update(f, 0);
	for (int k = 0; k < 4; k++) {
		uint64_t t = 1000 + 2000 * (uint64_t)k;
		set_self_state(f, k % 2 ? SWIM_SUSPECT : SWIM_DEAD);
		update(f, t);
		set_self_state(f, SWIM_ALIVE);
		update(f, t + 1000);
		assert_true(eligible(f->p, "n0"));
	}
	assert_int_equal(score_of(f->p, "n0", 9000, &damped), 0);
	assert_false(damped);
	assert_int_equal(place_damped_count(f->p), 0);
}

/* A failed update changes nothing, so a retry does not count a departure
 * twice; once the new ring is in place the score is too. */
static void
test_place_flap_failed_update_counts_once(void **state)
{
	struct fixture *f = *state;
	update(f, 0);
	gossip(f, 1000, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
	int rc, unchanged = 0;
	for (size_t k = 1; k < 100; k++) {
		f->t.alloc.fail_at = f->t.alloc.allocs + k;
		rc = place_update(f->p, f->s, 1000, NULL);
		f->t.alloc.fail_at = 0;
		uint32_t score = score_of(f->p, "n1", 1000, NULL);
		if (rc == 0)
			break;
		if (eligible(f->p, "n1")) {
			unchanged++;
			assert_int_equal(score, 0);
		} else {
			assert_int_equal(score, 1000);
		}
	}
	assert_int_equal(rc, 0);
	assert_true(unchanged > 0);
	assert_int_equal(score_of(f->p, "n1", 1000, NULL), 1000);
	assert_false(eligible(f->p, "n1"));
}

/* Damping is shared: our decision comes out once for the mesh, others'
 * decisions (about anyone, ourselves included) keep that member out of
 * our ring too, until they run out. */
static void
test_place_flap_shared(void **state)
{
	struct fixture *f = *state;
	struct place_damp d;
	update(f, 0);
	assert_false(place_poll_damp(f->p, &d));
	/* n1 flaps twice: we damp it and say so, once. */
	gossip(f, 1000, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
	update(f, 1000);
	gossip(f, 2000, 1, MESH__MEMBER_STATE__MEMBER_ALIVE);
	update(f, 2000);
	assert_false(place_poll_damp(f->p, &d)); /* one flap: nothing */
	gossip(f, 3000, 1, MESH__MEMBER_STATE__MEMBER_DEAD);
	update(f, 3000);
	assert_true(place_poll_damp(f->p, &d));
	assert_string_equal(d.name, "n1");
	assert_int_equal(d.until_ms, place_next_deadline(f->p));
	uint64_t until = d.until_ms;
	assert_false(place_poll_damp(f->p, &d));
	/* Another node's decision about us: we leave our own ring. */
	assert_true(eligible(f->p, "n0"));
	assert_int_equal(place_damp_until(f->p, "n0", 50000, 4000), 0);
	assert_int_equal(place_damp_until(f->p, "n0", 40000, 4000),
			 0); /* later wins */
	assert_int_equal(place_damp_until(f->p, "bad name", 1, 4000),
			 MESH_EINVAL);
	update(f, 4000);
	assert_false(eligible(f->p, "n0"));
	bool damped = false;
	score_of(f->p, "n0", 4000, &damped);
	assert_true(damped);
	assert_int_equal(place_damped_count(f->p), 2);
	assert_int_equal(owned(f->p, "n0"), 0);
	assert_false(place_poll_damp(f->p, &d)); /* not ours to tell */
	/* The ring is rebuilt when the first decision runs out. */
	assert_int_equal(place_next_deadline(f->p),
			 50000 < until ? 50000 : until);
	update(f, 50000);
	assert_true(eligible(f->p, "n0"));
	assert_true(owned(f->p, "n0") > 0);
	/* A decision far in the future (a lying member) is cut to the
	 * longest our rules allow: 60 s * log2(6000 / 500) = 215.1 s. */
	assert_int_equal(place_damp_until(f->p, "n3", UINT64_MAX / 2, 50000),
			 0);
	update(f, 50000);
	assert_false(eligible(f->p, "n3"));
	update(f, 50000 + 215000);
	assert_false(eligible(f->p, "n3"));
	update(f, 50000 + 215200);
	assert_true(eligible(f->p, "n3"));
	/* Damping off here: others' decisions are ignored too. */
	struct place_flap off;
	place_flap_default(&off);
	off.half_life_ms = 0;
	assert_int_equal(place_set_flap(f->p, &off), 0);
	assert_int_equal(place_damp_until(f->p, "n2", 900000, 4000), 0);
	update(f, 270000);
	assert_true(eligible(f->p, "n2"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_place_every_pack_has_replicas,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_duplicate_packs_refused,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_drain_moves_packs_away,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_capacity_weights_load,
					    setup, teardown),
	    cmocka_unit_test(test_place_flap_defaults),
	    cmocka_unit_test_setup_teardown(test_place_flap_shared, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_place_flap_once_not_damped,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_place_flap_five_times_moves_nothing_after_second, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_place_flap_time_backwards,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_flap_off_never_damps,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_flap_bad_config_refused,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_place_flap_self_never_damped,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_place_flap_failed_update_counts_once, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
