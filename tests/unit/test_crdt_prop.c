/*
 * test_crdt_prop.c - randomized property tests of every CRDT in crdt/.
 *
 * For each type: join is commutative, associative and idempotent; deltas
 * applied in any order, duplicated, equal the full state; five replicas with
 * random operations and a network that reorders, duplicates and loses
 * (losses repaired by retransmission) converge; encode -> decode is the
 * identity; mutated encodings are either refused or decode to a state that
 * re-encodes to the same bytes.
 *
 * Seeded: MESH_SEED=<n> replays a run; a failure prints the seed, the type,
 * the property and the case. CASES below sets the size of a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crdt.h"
#include "mesh_err.h"
#include "mesh_rand.h"
#include "test_env.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cases per type and property; the five properties make > 10,000 random
 * cases per type (the convergence runs count each delivered op). */
#define CASES_LAWS 3000
#define CASES_DELTA 3000
#define CASES_CODEC 3000
#define CASES_FUZZ 3000
#define RUNS_CONVERGE 200
#define NREP 5

static uint64_t prop_seed;
static const char *prop_type, *prop_name;
static size_t prop_case;

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			print_error("%s:%d: %s failed: type %s, property %s, " \
				    "case %zu; replay with MESH_SEED=%" PRIu64 \
				    "\n",                                      \
				    __FILE__, __LINE__, #c, prop_type,         \
				    prop_name, prop_case, prop_seed);          \
			fail();                                                \
		}                                                              \
	} while (0)

struct rep {
	uint64_t id;
	struct crdt_hlc_clock clock;
	uint64_t skew; /* added to the shared physical time */
};

/* The replicas of one world: extreme ids on purpose. */
static const uint64_t rep_ids[NREP] = {1, 2, 0xdeadbeefcafeULL, UINT64_MAX - 1,
				       UINT64_MAX};

/* One CRDT type behind a uniform face. */
struct ty {
	const char *name;
	void *(*mk)(const struct mesh_allocator *a);
	void (*fr)(void *x);
	int (*join)(void *d, const void *s);
	bool (*eq)(const void *a, const void *b);
	int (*enc)(const void *x, uint8_t **b, size_t *n);
	int (*dec)(const struct mesh_allocator *a, const uint8_t *b, size_t n,
		   void **out);
	/* A random mutation by @r at physical time @now. */
	int (*op)(void *x, struct rep *r, uint64_t now, struct mesh_rand *g,
		  void *delta);
};

#define TY_WRAP(T)                                                             \
	static void *T##_mk(const struct mesh_allocator *a)                    \
	{                                                                      \
		return crdt_##T##_new(a);                                      \
	}                                                                      \
	static void T##_fr(void *x)                                            \
	{                                                                      \
		crdt_##T##_free(x);                                            \
	}                                                                      \
	static int T##_join(void *d, const void *s)                            \
	{                                                                      \
		return crdt_##T##_join(d, s);                                  \
	}                                                                      \
	static bool T##_eq(const void *a, const void *b)                       \
	{                                                                      \
		return crdt_##T##_equal(a, b);                                 \
	}                                                                      \
	static int T##_enc(const void *x, uint8_t **b, size_t *n)              \
	{                                                                      \
		return crdt_##T##_encode(x, b, n);                             \
	}                                                                      \
	static int T##_dec(const struct mesh_allocator *a, const uint8_t *b,   \
			   size_t n, void **out)                               \
	{                                                                      \
		struct crdt_##T *x = NULL;                                     \
		int rc = crdt_##T##_decode(a, b, n, &x);                       \
		*out = x;                                                      \
		return rc;                                                     \
	}

TY_WRAP(cc)
TY_WRAP(gcounter)
TY_WRAP(pncounter)
TY_WRAP(lww)
TY_WRAP(mvreg)
TY_WRAP(orset)
TY_WRAP(ormap)

/* Causal context: the replica's next dot, or one beyond a gap (as when
 * deltas are lost), so that compaction gets exercised. */
static int
cc_op(void *x, struct rep *r, uint64_t now, struct mesh_rand *g, void *delta)
{
	(void)now;
	struct crdt_dot d = crdt_cc_next_dot(x, r->id);
	d.counter += mesh_rand_below(g, 3);
	int rc = crdt_cc_add(x, &d);
	if (rc == 0 && delta != NULL)
		rc = crdt_cc_add(delta, &d);
	return rc;
}

static int
gcounter_op(void *x, struct rep *r, uint64_t now, struct mesh_rand *g,
	    void *delta)
{
	(void)now;
	return crdt_gcounter_inc(x, r->id, 1 + mesh_rand_below(g, 5), delta);
}

static int
pncounter_op(void *x, struct rep *r, uint64_t now, struct mesh_rand *g,
	     void *delta)
{
	(void)now;
	int64_t n = (int64_t)mesh_rand_below(g, 11) - 5;
	return crdt_pncounter_add(x, r->id, n, delta);
}

static const char *const vals[] = {"", "a", "bb", "ccc", "dddd", "e"};

static int
lww_op(void *x, struct rep *r, uint64_t now, struct mesh_rand *g, void *delta)
{
	const char *v = vals[mesh_rand_below(g, 6)];
	return crdt_lww_set(x, &r->clock, now + r->skew, v, strlen(v), delta);
}

static int
mvreg_op(void *x, struct rep *r, uint64_t now, struct mesh_rand *g, void *delta)
{
	(void)now;
	const char *v = vals[mesh_rand_below(g, 6)];
	return crdt_mvreg_set(x, r->id, v, strlen(v), delta);
}

static int
orset_op(void *x, struct rep *r, uint64_t now, struct mesh_rand *g, void *delta)
{
	(void)now;
	const char *v = vals[mesh_rand_below(g, 5)];
	if (mesh_rand_below(g, 3) == 0)
		return crdt_orset_remove(x, v, strlen(v), delta);
	return crdt_orset_add(x, r->id, v, strlen(v), delta);
}

static int
ormap_op(void *x, struct rep *r, uint64_t now, struct mesh_rand *g, void *delta)
{
	static const struct crdt_key keys[] = {
	    {"a", 1}, {"b", 1}, {"", 0}, {"n", 1}};
	struct crdt_key path[3];
	size_t depth = 1 + mesh_rand_below(g, 3);
	for (size_t i = 0; i < depth; i++)
		path[i] = i + 1 < depth ? keys[3] : keys[mesh_rand_below(g, 3)];
	const char *v = vals[mesh_rand_below(g, 5)];
	switch (mesh_rand_below(g, 8)) {
	case 0:
		return crdt_ormap_counter_add(x, r->id, path, depth,
					      CRDT_GCOUNTER,
					      1 + mesh_rand_below(g, 3), delta);
	case 1:
		return crdt_ormap_counter_add(
		    x, r->id, path, depth, CRDT_PNCOUNTER,
		    (int64_t)mesh_rand_below(g, 7) - 3, delta);
	case 2:
		return crdt_ormap_lww_set(x, &r->clock, now + r->skew, path,
					  depth, v, strlen(v), delta);
	case 3:
		return crdt_ormap_mv_set(x, r->id, path, depth, v, strlen(v),
					 delta);
	case 4:
		return crdt_ormap_orset_add(x, r->id, path, depth, v, strlen(v),
					    delta);
	case 5:
		return crdt_ormap_orset_remove(x, path, depth, v, strlen(v),
					       delta);
	case 6:
		/* Remove a whole nested map or one field. */
		if (depth > 1)
			return crdt_ormap_remove(x, path, depth - 1, CRDT_ORMAP,
						 delta);
		return crdt_ormap_remove(
		    x, path, depth, (enum crdt_kind)(1 + mesh_rand_below(g, 5)),
		    delta);
	default:
		return crdt_ormap_orset_add(x, r->id, path, depth, "z", 1,
					    delta);
	}
}

#define TY_ENTRY(T)                                                            \
	{                                                                      \
#T, T##_mk, T##_fr, T##_join, T##_eq, T##_enc, T##_dec, T##_op \
	}

static const struct ty types[] = {
    TY_ENTRY(cc),    TY_ENTRY(gcounter), TY_ENTRY(pncounter), TY_ENTRY(lww),
    TY_ENTRY(mvreg), TY_ENTRY(orset),	 TY_ENTRY(ormap),
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

/* ------------------------------------------------------------------------ */

static const struct mesh_allocator *A;

static void *
clone_of(const struct ty *t, const void *x)
{
	void *c = t->mk(A);
	assert_non_null(c);
	assert_int_equal(t->join(c, x), 0);
	return c;
}

static void
reps_init(struct rep *r, struct mesh_rand *g)
{
	for (size_t i = 0; i < NREP; i++) {
		r[i].id = rep_ids[i];
		/* Clocks skewed by up to 5 s either way around 10^6 ms. */
		r[i].skew = 1000000 - 5000 + mesh_rand_below(g, 10001);
		crdt_hlc_init(&r[i].clock, r[i].id, 0);
	}
}

/* Three related states: a few ops and joins among three replicas. */
static void
gen_states(const struct ty *t, struct mesh_rand *g, struct rep *reps, void **x,
	   size_t nx)
{
	for (size_t i = 0; i < nx; i++)
		x[i] = t->mk(A);
	size_t steps = 2 + mesh_rand_below(g, 10);
	for (size_t s = 0; s < steps; s++) {
		size_t i = mesh_rand_below(g, (uint32_t)nx);
		if (mesh_rand_below(g, 4) == 0) {
			size_t j = mesh_rand_below(g, (uint32_t)nx);
			if (j != i)
				CHECK(t->join(x[i], x[j]) == 0);
		} else {
			CHECK(t->op(x[i], &reps[i], s * 3, g, NULL) == 0);
		}
	}
}

static void
seed_case(struct mesh_rand *g, const char *name, size_t c, size_t ti)
{
	prop_name = name;
	prop_case = c;
	mesh_rand_seed(g, prop_seed ^ (c * 0x9e3779b97f4a7c15ULL) ^
			      ((uint64_t)ti << 56) ^ (uint64_t)name[0] << 48);
}

static void
test_crdt_prop_join_laws(void **state)
{
	(void)state;
	for (size_t ti = 0; ti < NTYPES; ti++) {
		const struct ty *t = &types[ti];
		prop_type = t->name;
		for (size_t c = 0; c < CASES_LAWS; c++) {
			struct mesh_rand g;
			struct rep reps[NREP];
			void *x[3];
			seed_case(&g, "join-laws", c, ti);
			reps_init(reps, &g);
			gen_states(t, &g, reps, x, 3);
			/* commutative */
			void *ab = clone_of(t, x[0]), *ba = clone_of(t, x[1]);
			CHECK(t->join(ab, x[1]) == 0);
			CHECK(t->join(ba, x[0]) == 0);
			CHECK(t->eq(ab, ba));
			/* associative */
			void *ab_c = clone_of(t, ab);
			CHECK(t->join(ab_c, x[2]) == 0);
			void *bc = clone_of(t, x[1]);
			CHECK(t->join(bc, x[2]) == 0);
			void *a_bc = clone_of(t, x[0]);
			CHECK(t->join(a_bc, bc) == 0);
			CHECK(t->eq(ab_c, a_bc));
			/* idempotent, and an upper bound of both */
			void *aa = clone_of(t, x[0]);
			CHECK(t->join(aa, x[0]) == 0);
			CHECK(t->eq(aa, x[0]));
			void *abb = clone_of(t, ab);
			CHECK(t->join(abb, x[1]) == 0);
			CHECK(t->eq(abb, ab));
			void *all[] = {ab, ba,	ab_c, bc,   a_bc,
				       aa, abb, x[0], x[1], x[2]};
			for (size_t i = 0; i < 10; i++)
				t->fr(all[i]);
		}
	}
}

static void
test_crdt_prop_deltas(void **state)
{
	(void)state;
	for (size_t ti = 0; ti < NTYPES; ti++) {
		const struct ty *t = &types[ti];
		prop_type = t->name;
		for (size_t c = 0; c < CASES_DELTA; c++) {
			struct mesh_rand g;
			struct rep reps[NREP];
			void *base[2];
			seed_case(&g, "deltas", c, ti);
			reps_init(reps, &g);
			gen_states(t, &g, reps, base, 2);
			/* The source starts from base[0] joined with others'
			 * work, so its ops also remove what others did. */
			void *src = clone_of(t, base[0]);
			CHECK(t->join(src, base[1]) == 0);
			void *start = clone_of(t, src);
			void *group = t->mk(A);
			enum { MAXD = 12 };
			void *d[MAXD];
			size_t nd = 1 + mesh_rand_below(&g, MAXD);
			size_t who = mesh_rand_below(&g, 2);
			for (size_t i = 0; i < nd; i++) {
				d[i] = t->mk(A);
				CHECK(t->op(src, &reps[who], 100 + i, &g,
					    d[i]) == 0);
				CHECK(t->join(group, d[i]) == 0);
			}
			/* Shuffled, with duplicates. */
			void *dst = clone_of(t, start);
			size_t order[2 * MAXD], no = 0;
			for (size_t i = 0; i < nd; i++) {
				order[no++] = i;
				if (mesh_rand_below(&g, 3) == 0)
					order[no++] = i;
			}
			for (size_t i = no; i > 1; i--) {
				size_t j = mesh_rand_below(&g, (uint32_t)i);
				size_t tmp = order[i - 1];
				order[i - 1] = order[j];
				order[j] = tmp;
			}
			for (size_t i = 0; i < no; i++)
				CHECK(t->join(dst, d[order[i]]) == 0);
			CHECK(t->eq(dst, src));
			/* The delta group does the same in one join. */
			void *dst2 = clone_of(t, start);
			CHECK(t->join(dst2, group) == 0);
			CHECK(t->eq(dst2, src));
			/* A delta is never more than the state. */
			void *src2 = clone_of(t, src);
			CHECK(t->join(src2, group) == 0);
			CHECK(t->eq(src2, src));
			for (size_t i = 0; i < nd; i++)
				t->fr(d[i]);
			void *all[] = {src,  start, group,   dst,
				       dst2, src2,  base[0], base[1]};
			for (size_t i = 0; i < 8; i++)
				t->fr(all[i]);
		}
	}
}

/* A message in flight: a delta (owned) to a replica. */
struct msg {
	void *delta;
	size_t to;
};

static void
test_crdt_prop_converge(void **state)
{
	(void)state;
	for (size_t ti = 0; ti < NTYPES; ti++) {
		const struct ty *t = &types[ti];
		prop_type = t->name;
		for (size_t run = 0; run < RUNS_CONVERGE; run++) {
			struct mesh_rand g;
			struct rep reps[NREP];
			seed_case(&g, "converge", run, ti);
			reps_init(reps, &g);
			void *x[NREP];
			for (size_t i = 0; i < NREP; i++)
				x[i] = t->mk(A);
			enum { CAP = 4096 };
			struct msg *net = calloc(CAP, sizeof(*net));
			struct msg *lost = calloc(CAP, sizeof(*lost));
			size_t nnet = 0, nlost = 0;
			size_t steps = 60 + mesh_rand_below(&g, 60);
			for (size_t s = 0; s < steps; s++) {
				prop_case = run * 1000 + s;
				uint32_t what = mesh_rand_below(&g, 10);
				if (what < 5) {
					size_t i = mesh_rand_below(&g, NREP);
					void *d = t->mk(A);
					CHECK(t->op(x[i], &reps[i], s * 7, &g,
						    d) == 0);
					for (size_t j = 0; j < NREP; j++) {
						if (j == i)
							continue;
						uint32_t fate =
						    mesh_rand_below(&g, 10);
						int copies = fate < 2	? 0
							     : fate < 3 ? 2
									: 1;
						if (copies == 0 &&
						    nlost < CAP) {
							lost[nlost++] =
							    (struct msg){
								clone_of(t, d),
								j};
						}
						for (int k = 0;
						     k < copies && nnet < CAP;
						     k++)
							net[nnet++] =
							    (struct msg){
								clone_of(t, d),
								j};
					}
					t->fr(d);
				} else if (what < 9 && nnet > 0) {
					/* Deliver a random one: reorders. */
					size_t k =
					    mesh_rand_below(&g, (uint32_t)nnet);
					CHECK(t->join(x[net[k].to],
						      net[k].delta) == 0);
					t->fr(net[k].delta);
					net[k] = net[--nnet];
				} else {
					/* Anti-entropy: a full state. */
					size_t i = mesh_rand_below(&g, NREP);
					size_t j = mesh_rand_below(&g, NREP);
					if (i != j)
						CHECK(t->join(x[i], x[j]) == 0);
				}
			}
			/* Retransmit what was lost, then drain. */
			for (size_t k = 0; k < nlost; k++)
				net[nnet++] = lost[k];
			while (nnet > 0) {
				size_t k = mesh_rand_below(&g, (uint32_t)nnet);
				CHECK(t->join(x[net[k].to], net[k].delta) == 0);
				t->fr(net[k].delta);
				net[k] = net[--nnet];
			}
			for (size_t i = 1; i < NREP; i++)
				CHECK(t->eq(x[0], x[i]));
			for (size_t i = 0; i < NREP; i++)
				t->fr(x[i]);
			free(net);
			free(lost);
		}
	}
}

static void
test_crdt_prop_codec_roundtrip(void **state)
{
	(void)state;
	for (size_t ti = 0; ti < NTYPES; ti++) {
		const struct ty *t = &types[ti];
		prop_type = t->name;
		for (size_t c = 0; c < CASES_CODEC; c++) {
			struct mesh_rand g;
			struct rep reps[NREP];
			void *x[2];
			seed_case(&g, "codec", c, ti);
			reps_init(reps, &g);
			gen_states(t, &g, reps, x, 2);
			/* x[1] becomes a delta of one more op on x[0]. */
			void *d = t->mk(A);
			CHECK(t->op(x[0], &reps[0], 999, &g, d) == 0);
			void *objs[] = {x[0], x[1], d};
			for (size_t k = 0; k < 3; k++) {
				uint8_t *b = NULL, *b2 = NULL;
				size_t n = 0, n2 = 0;
				void *y = NULL;
				CHECK(t->enc(objs[k], &b, &n) == 0);
				CHECK(t->dec(A, b, n, &y) == 0);
				CHECK(y != NULL && t->eq(objs[k], y));
				CHECK(t->enc(y, &b2, &n2) == 0);
				CHECK(n == n2 &&
				      (n == 0 || memcmp(b, b2, n) == 0));
				mesh_free(A, b);
				mesh_free(A, b2);
				t->fr(y);
			}
			for (size_t k = 0; k < 3; k++)
				t->fr(objs[k]);
		}
	}
}

static void
test_crdt_prop_decode_mutated(void **state)
{
	(void)state;
	for (size_t ti = 0; ti < NTYPES; ti++) {
		const struct ty *t = &types[ti];
		prop_type = t->name;
		size_t refused = 0;
		for (size_t c = 0; c < CASES_FUZZ; c++) {
			struct mesh_rand g;
			struct rep reps[NREP];
			void *x[1];
			seed_case(&g, "decode-mutated", c, ti);
			reps_init(reps, &g);
			gen_states(t, &g, reps, x, 1);
			uint8_t *b = NULL;
			size_t n = 0;
			CHECK(t->enc(x[0], &b, &n) == 0);
			uint8_t *m = malloc(n + 16);
			memcpy(m, b, n);
			size_t mn = n;
			int nmut = 1 + (int)mesh_rand_below(&g, 3);
			for (int k = 0; k < nmut; k++) {
				uint32_t how = mesh_rand_below(&g, 4);
				if (how == 0 && mn > 0)
					mn = mesh_rand_below(&g, (uint32_t)mn);
				else if (how == 1 && mn > 0)
					m[mesh_rand_below(&g, (uint32_t)mn)] ^=
					    (uint8_t)(1u << mesh_rand_below(&g,
									    8));
				else if (how == 2 && mn > 0)
					m[mesh_rand_below(&g, (uint32_t)mn)] =
					    (uint8_t)mesh_rand_next(&g);
				else if (mn < n + 8) {
					size_t at = mesh_rand_below(
					    &g, (uint32_t)mn + 1);
					memmove(&m[at + 1], &m[at], mn - at);
					m[at] = (uint8_t)mesh_rand_next(&g);
					mn++;
				}
			}
			void *y = NULL;
			int rc = t->dec(A, m, mn, &y);
			if (rc != 0) {
				CHECK(y == NULL);
				CHECK(rc == MESH_EDECODE || rc == MESH_ETOOBIG);
				refused++;
			} else {
				/* Accepted: a valid state, stable under
				 * encode/decode and join. */
				uint8_t *b2 = NULL, *b3 = NULL;
				size_t n2 = 0, n3 = 0;
				void *z = NULL;
				CHECK(t->enc(y, &b2, &n2) == 0);
				CHECK(t->dec(A, b2, n2, &z) == 0);
				CHECK(t->eq(y, z));
				CHECK(t->enc(z, &b3, &n3) == 0);
				CHECK(n2 == n3 && memcmp(b2, b3, n2) == 0);
				CHECK(t->join(z, y) == 0);
				CHECK(t->eq(y, z));
				CHECK(t->join(z, x[0]) == 0);
				mesh_free(A, b2);
				mesh_free(A, b3);
				t->fr(z);
				t->fr(y);
			}
			free(m);
			mesh_free(A, b);
			t->fr(x[0]);
		}
		/* The mutations must actually exercise the checks. */
		CHECK(refused > CASES_FUZZ / 4);
	}
}

static int
setup(void **state)
{
	(void)state;
	const char *s = getenv("MESH_SEED");
	prop_seed = s != NULL ? strtoull(s, NULL, 0) : 20240611u;
	A = mesh_alloc_default();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crdt_prop_join_laws),
	    cmocka_unit_test(test_crdt_prop_deltas),
	    cmocka_unit_test(test_crdt_prop_converge),
	    cmocka_unit_test(test_crdt_prop_codec_roundtrip),
	    cmocka_unit_test(test_crdt_prop_decode_mutated),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
