/*
 * ring-bench - the placement figures of issue 5.
 *
 * For N = 10, 100, 1000 members and V = 16, 64, 256 vnodes it places K pack
 * ids (1,000,000 by default) and prints: max/mean load, keys moved when one
 * member joins and when one leaves against the minimum (K/(N+1) for a join,
 * K/N for a leave), lookup time (median of several runs), ring build time
 * (median) and memory; then the same with bounded loads: max/mean, packs
 * displaced from their unbounded owner and moves on the same join.
 *
 * Every table is printed for classic consistent hashing (1 probe) and for
 * the multi-probe lookup packmesh uses, so the gain is measured, not
 * claimed. Usage:
 *
 *   ring-bench [--keys K] [--probes P] [--eps MILLI] [--runs R] [--quick]
 *
 * --quick: 100,000 keys and N = 10, 100 only (a smoke run).
 */
#include "mesh_err.h"
#include "ring_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ring_bench_opts {
	size_t keys;
	uint32_t probes;
	uint32_t eps_milli;
	unsigned runs;
	bool quick;
};

/* Counts the bytes the ring asks for, to cross-check ring_stats(). */
struct ring_bench_alloc {
	struct mesh_allocator base;
	size_t live;
	size_t peak;
};

static void *
ring_bench_alloc_fn(void *ctx, size_t size)
{
	struct ring_bench_alloc *a = ctx;
	size_t *p = malloc(size + sizeof(size_t) * 2);
	if (p == NULL)
		return NULL;
	p[0] = size;
	a->live += size;
	if (a->live > a->peak)
		a->peak = a->live;
	return p + 2;
}

static void *
ring_bench_realloc_fn(void *ctx, void *ptr, size_t size)
{
	struct ring_bench_alloc *a = ctx;
	size_t *old = ptr == NULL ? NULL : (size_t *)ptr - 2;
	size_t was = old == NULL ? 0 : old[0];
	size_t *p = realloc(old, size + sizeof(size_t) * 2);
	if (p == NULL)
		return NULL;
	p[0] = size;
	a->live = a->live - was + size;
	if (a->live > a->peak)
		a->peak = a->live;
	return p + 2;
}

static void
ring_bench_free_fn(void *ctx, void *ptr)
{
	struct ring_bench_alloc *a = ctx;
	if (ptr == NULL)
		return;
	size_t *p = (size_t *)ptr - 2;
	a->live -= p[0];
	free(p);
}

static struct ring_bench_alloc ring_bench_mem = {
    .base = {.alloc_fn = ring_bench_alloc_fn,
	     .realloc_fn = ring_bench_realloc_fn,
	     .free_fn = ring_bench_free_fn,
	     .ctx = &ring_bench_mem},
};

static struct mesh_env ring_bench_env = {
    .alloc = &ring_bench_mem.base,
    .log_fn = NULL,
    .log_level = MESH_LOG_OFF,
};

static double
ring_bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
ring_bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
ring_bench_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), ring_bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
ring_bench_die(const char *what, int rc)
{
	fprintf(stderr, "ring-bench: %s: %s\n", what, mesh_strerror(rc));
	exit(1);
}

/* Members node-0000.. spread over 3 zones, 2 regions each, 2 cells each. */
static char (*ring_bench_names)[32];

static void
ring_bench_members(struct ring_member *m, size_t n)
{
	static const char *zones[] = {"z0", "z1", "z2"};
	static const char *regions[] = {"r0", "r1"};
	static const char *cells[] = {"c0", "c1"};
	for (size_t i = 0; i < n; i++) {
		snprintf(ring_bench_names[i], sizeof(ring_bench_names[i]),
			 "node-%04zu", i);
		m[i] = (struct ring_member){
		    .name = ring_bench_names[i],
		    .zone = zones[i % 3],
		    .region = regions[(i / 3) % 2],
		    .cell = cells[(i / 6) % 2],
		    .alive = true,
		};
	}
}

static struct ring *
ring_bench_build(const struct ring_config *cfg, const struct ring_member *m,
		 size_t n)
{
	struct ring *r;
	int rc = ring_new(&ring_bench_env, cfg, m, n, &r);
	if (rc != 0)
		ring_bench_die("ring_new", rc);
	return r;
}

/* Primary owner of every key, as a node name pointer (stable per ring). */
static void
ring_bench_primaries(const struct ring *r, const uint64_t *ids, size_t k,
		     const char **who)
{
	for (size_t i = 0; i < k; i++) {
		uint32_t o;
		int rc = ring_lookup(r, ring_hash_id(r, ids[i]), 1, &o);
		if (rc != 1)
			ring_bench_die("ring_lookup",
				       rc < 0 ? rc : MESH_ENOENT);
		who[i] = ring_node(r, o)->name;
	}
}

static void
ring_bench_names_of(const struct ring *r, const uint32_t *own, size_t k,
		    const char **who)
{
	for (size_t i = 0; i < k; i++)
		who[i] = ring_node(r, own[i])->name;
}

/* Counts keys whose owner changed, and of those how many broke the
 * expected rule (moved to someone other than @only_to, or away from
 * someone other than @only_from). */
static size_t
ring_bench_moved(const char **a, const char **b, size_t k,
		 const char *only_from, const char *only_to, size_t *stray)
{
	size_t moved = 0;
	*stray = 0;
	for (size_t i = 0; i < k; i++) {
		if (strcmp(a[i], b[i]) == 0)
			continue;
		moved++;
		if ((only_to != NULL && strcmp(b[i], only_to) != 0) ||
		    (only_from != NULL && strcmp(a[i], only_from) != 0))
			(*stray)++;
	}
	return moved;
}

static double
ring_bench_max_over_mean(const struct ring *r, const char **who, size_t k)
{
	/* Loads by node, names resolved with ring_find (names are sorted). */
	uint32_t n = ring_node_count(r);
	uint32_t *load = calloc(n, sizeof(*load));
	uint32_t elig = 0;
	for (uint32_t i = 0; i < n; i++)
		elig += ring_node(r, i)->eligible;
	for (size_t i = 0; i < k; i++)
		load[ring_find(r, who[i])]++;
	uint32_t max = 0;
	for (uint32_t i = 0; i < n; i++)
		if (load[i] > max)
			max = load[i];
	free(load);
	return (double)max / ((double)k / elig);
}

static void
ring_bench_one(const struct ring_bench_opts *o, size_t n, uint32_t vnodes,
	       uint32_t probes, const uint64_t *ids, const char **w0,
	       const char **w1, const char **w2, uint32_t *own)
{
	size_t k = o->keys;
	struct ring_config cfg;
	ring_config_default(&cfg);
	cfg.vnodes = vnodes;
	cfg.probes = probes;

	struct ring_member *m = calloc(n + 1, sizeof(*m));
	ring_bench_members(m, n + 1);

	/* Build time: median of several builds of the n-member ring. */
	double t[16];
	unsigned runs = o->runs;
	struct ring *r = NULL;
	for (unsigned i = 0; i < runs; i++) {
		ring_free(r);
		double t0 = ring_bench_now_ns();
		r = ring_bench_build(&cfg, m, n);
		t[i] = ring_bench_now_ns() - t0;
	}
	double build_ms = ring_bench_median(t, runs) / 1e6;
	struct ring_stats st;
	ring_stats(r, &st);

	/* Lookup time: hash + primary lookup of every key, median of runs. */
	volatile uint32_t sink = 0;
	for (unsigned i = 0; i < runs; i++) {
		double t0 = ring_bench_now_ns();
		for (size_t j = 0; j < k; j++) {
			uint32_t ow;
			ring_lookup(r, ring_hash_id(r, ids[j]), 1, &ow);
			sink += ow;
		}
		t[i] = (ring_bench_now_ns() - t0) / (double)k;
	}
	double lookup_ns = ring_bench_median(t, runs);
	/* Three zone-spread owners, one run. */
	double t0 = ring_bench_now_ns();
	size_t spread_bad = 0;
	for (size_t j = 0; j < k; j++) {
		uint32_t ow[3];
		ring_lookup(r, ring_hash_id(r, ids[j]), 3, ow);
		const char *z0 = ring_node(r, ow[0])->zone;
		const char *z1 = ring_node(r, ow[1])->zone;
		const char *z2 = ring_node(r, ow[2])->zone;
		spread_bad += strcmp(z0, z1) == 0 || strcmp(z0, z2) == 0 ||
			      strcmp(z1, z2) == 0;
	}
	double lookup3_ns = (ring_bench_now_ns() - t0) / (double)k;
	(void)sink;

	/* Load, join (member n joins), leave (member n/2 leaves). */
	ring_bench_primaries(r, ids, k, w0);
	double mm = ring_bench_max_over_mean(r, w0, k);
	struct ring *rj = ring_bench_build(&cfg, m, n + 1);
	ring_bench_primaries(rj, ids, k, w1);
	size_t stray_j, stray_l;
	size_t mj = ring_bench_moved(w0, w1, k, NULL, m[n].name, &stray_j);
	struct ring_member gone = m[n / 2];
	m[n / 2] = m[n - 1];
	struct ring *rl = ring_bench_build(&cfg, m, n - 1);
	m[n - 1] = m[n / 2];
	m[n / 2] = gone;
	ring_bench_primaries(rl, ids, k, w2);
	size_t ml = ring_bench_moved(w0, w2, k, gone.name, NULL, &stray_l);
	double opt_j = (double)k / (double)(n + 1);
	double opt_l = (double)k / (double)n;

	/* Bounded loads on the same ring and the same join. */
	struct ring_place pl = {
	    .replicas = 1, .bounded = true, .eps_milli = o->eps_milli};
	struct ring_assign_stats as, asj;
	int rc = ring_assign(r, ids, k, &pl, own, &as);
	if (rc != 0)
		ring_bench_die("ring_assign", rc);
	ring_bench_names_of(r, own, k, w0);
	double bmm = (double)as.max_load / ((double)k / (double)n);
	rc = ring_assign(rj, ids, k, &pl, own, &asj);
	if (rc != 0)
		ring_bench_die("ring_assign", rc);
	ring_bench_names_of(rj, own, k, w1);
	size_t stray_b;
	size_t bj = ring_bench_moved(w0, w1, k, NULL, NULL, &stray_b);

	printf("%-6u %5zu %4u %8.3f %8.3f %8.3f %5zu %7.1f %7.1f %8.2f "
	       "%8zu  | %8.3f %8.3f %9.2f%% %8.3f %8.3f%s\n",
	       probes, n, vnodes, mm, (double)mj / opt_j, (double)ml / opt_l,
	       stray_j + stray_l, lookup_ns, lookup3_ns, build_ms,
	       st.bytes / 1024, bmm, (double)as.max_cap / ((double)k / n),
	       100.0 * (double)as.displaced / (double)k, (double)bj / opt_j,
	       (double)(bj - mj) / opt_j,
	       spread_bad != 0 ? "  ZONE-SPREAD FAILED" : "");
	fflush(stdout);
	ring_free(r);
	ring_free(rj);
	ring_free(rl);
	free(m);
}

int
main(int argc, char **argv)
{
	struct ring_bench_opts o = {
	    .keys = 1000000, .probes = 0, .eps_milli = 100, .runs = 5};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
			o.keys = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--probes") == 0 && i + 1 < argc)
			o.probes = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--eps") == 0 && i + 1 < argc)
			o.eps_milli = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			o.runs = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--quick") == 0)
			o.quick = true;
		else {
			fprintf(stderr,
				"usage: ring-bench [--keys K] [--probes P] "
				"[--eps MILLI] [--runs R] [--quick]\n");
			return 2;
		}
	}
	if (o.quick)
		o.keys = 100000;
	if (o.runs < 1 || o.runs > 16 || o.keys < 1000 ||
	    o.keys > RING_ASSIGN_MAX) {
		fprintf(stderr, "ring-bench: runs 1..16, keys 1000..%u\n",
			RING_ASSIGN_MAX);
		return 2;
	}
	struct ring_config def;
	ring_config_default(&def);
	if (o.probes == 0)
		o.probes = def.probes;

	uint64_t *ids = calloc(o.keys, sizeof(*ids));
	const char **w0 = calloc(o.keys, sizeof(*w0));
	const char **w1 = calloc(o.keys, sizeof(*w1));
	const char **w2 = calloc(o.keys, sizeof(*w2));
	uint32_t *own = calloc(o.keys, sizeof(*own));
	ring_bench_names = calloc(1001, sizeof(*ring_bench_names));
	if (ids == NULL || w0 == NULL || w1 == NULL || w2 == NULL ||
	    own == NULL || ring_bench_names == NULL)
		ring_bench_die("setup", MESH_ENOMEM);
	/* Pack ids as a mesh hands them out: consecutive numbers. */
	for (size_t i = 0; i < o.keys; i++)
		ids[i] = i + 1;

	printf("ring-bench: K=%zu keys, runs=%u, bounded eps=%.3f, members in "
	       "3 zones x 2 regions x 2 cells\n",
	       o.keys, o.runs, o.eps_milli / 1000.0);
	printf("join: vs K/(N+1); leave: vs K/N; stray: moved keys that did "
	       "not go to the joiner / come from the leaver\n");
	printf(
	    "lookup: hash + primary owner; lookup3: 3 zone-spread owners\n\n");
	printf("%-6s %5s %4s %8s %8s %8s %5s %7s %7s %8s %8s  | %8s %8s %10s "
	       "%8s %8s\n",
	       "probes", "N", "V", "max/mean", "join", "leave", "stray",
	       "lk ns", "lk3 ns", "build ms", "mem KiB", "b.max/mn", "b.cap/mn",
	       "displaced", "b.join", "b.extra");
	static const size_t ns[] = {10, 100, 1000};
	static const uint32_t vs[] = {16, 64, 256};
	uint32_t probes[2] = {1, o.probes};
	unsigned nn = o.quick ? 2 : 3;
	for (unsigned p = 0; p < 2; p++) {
		if (p == 1 && probes[1] == 1)
			break;
		for (unsigned a = 0; a < nn; a++)
			for (unsigned b = 0; b < 3; b++)
				ring_bench_one(&o, ns[a], vs[b], probes[p], ids,
					       w0, w1, w2, own);
		printf("\n");
	}
	printf("peak heap of the bench's rings and scratch: %.1f MiB\n",
	       ring_bench_mem.peak / 1048576.0);
	free(ids);
	free(w0);
	free(w1);
	free(w2);
	free(own);
	free(ring_bench_names);
	return 0;
}
