/*
 * pack-bench - the pack core's figures of the packs issue: "100,000 packs:
 * recompute after a membership change <= 50 ms, <= 256 bytes of agent
 * memory per pack".
 *
 * For N = 32 and N = 1000 nodes (3 zones, "node-0001".., this agent is
 * node-0001) it loads K packs ("pack-000001".., 64..512 MiB each from a
 * fixed pseudo-random sequence) into a pack core and measures:
 *
 * - load_ms: the K pack_set_spec() calls (specs encoded beforehand);
 * - first_ms: the first pack_update(), which places every pack;
 * - update_ms: the median of R pack_update() calls, each right after a
 *   membership change: node N/2 goes down (alive = false), comes back, goes
 *   down... ring_ms is the median time of the ring_new() before each;
 * - leave / join: packs whose owners changed (pack_counts().moves delta)
 *   per change, as a fraction of K; a leave moves at least 1/N;
 * - bytes/pack: the heap the pack core holds after loading and one update
 *   (queues drained), divided by K. "heap" is the bytes the core asked for;
 *   "malloc" is what glibc spends on those blocks, its 8-byte chunk header,
 *   16-byte rounding and 32-byte minimum included (malloc_usable_size() of
 *   every block). peak/pack is the largest heap during pack_update().
 *   The ring is built with a separate allocator and not counted.
 *
 * Memory per node is set so that the packs fill 70% of the mesh ("70%"),
 * or is unlimited ("unl"); "70%+r2" gives 20% of the packs 2 replicas.
 * The core runs as meshd runs it without a hook: pack_config_default(),
 * bounded loads on. Usage:
 *
 *   pack-bench [--packs K] [--runs R] [--fill PCT] [--quick] [--json]
 *
 * --fill: how full the limited rows make the mesh (70 by default).
 * --quick: 20,000 packs, 3 runs (a smoke run for CI).
 */
#include "mesh_err.h"
#include "pack.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PACK_BENCH_RUNS_MAX 64

struct pack_bench_opts {
	size_t packs;
	unsigned runs;
	unsigned fill; /* percent of the mesh's memory the packs take */
	bool quick;
	bool json;
};

/* Counts what is asked for (@live, @peak) and what glibc spends on it
 * (@chunk): each block carries a 16-byte header with both sizes. */
struct pack_bench_alloc {
	struct mesh_allocator base;
	size_t live, peak;
	size_t chunk, chunk_peak;
	size_t blocks;
};

#define PACK_BENCH_HDR (2 * sizeof(size_t))

/* The chunk plain malloc(@size) would take, from the block malloc gave us
 * for @size + PACK_BENCH_HDR: same rounding (the header is 16 bytes), 8
 * bytes of chunk header on top of the usable size, 32 bytes at least. */
static size_t
pack_bench_chunk(void *block)
{
	size_t u = malloc_usable_size(block) + 8 - PACK_BENCH_HDR;
	return u < 32 ? 32 : u;
}

static void
pack_bench_account(struct pack_bench_alloc *a, size_t *p, size_t size)
{
	p[0] = size;
	p[1] = pack_bench_chunk(p);
	a->live += p[0];
	a->chunk += p[1];
	a->blocks++;
	if (a->live > a->peak)
		a->peak = a->live;
	if (a->chunk > a->chunk_peak)
		a->chunk_peak = a->chunk;
}

static void
pack_bench_unaccount(struct pack_bench_alloc *a, const size_t *p)
{
	a->live -= p[0];
	a->chunk -= p[1];
	a->blocks--;
}

static void *
pack_bench_alloc_fn(void *ctx, size_t size)
{
	size_t *p = malloc(size + PACK_BENCH_HDR);
	if (p == NULL)
		return NULL;
	pack_bench_account(ctx, p, size);
	return (char *)p + PACK_BENCH_HDR;
}

static void *
pack_bench_realloc_fn(void *ctx, void *ptr, size_t size)
{
	if (ptr == NULL)
		return pack_bench_alloc_fn(ctx, size);
	size_t *old = (size_t *)((char *)ptr - PACK_BENCH_HDR);
	size_t was[2] = {old[0], old[1]};
	size_t *p = realloc(old, size + PACK_BENCH_HDR);
	if (p == NULL)
		return NULL;
	pack_bench_unaccount(ctx, was);
	pack_bench_account(ctx, p, size);
	return (char *)p + PACK_BENCH_HDR;
}

static void
pack_bench_free_fn(void *ctx, void *ptr)
{
	if (ptr == NULL)
		return;
	size_t *p = (size_t *)((char *)ptr - PACK_BENCH_HDR);
	pack_bench_unaccount(ctx, p);
	free(p);
}

static void
pack_bench_alloc_init(struct pack_bench_alloc *a)
{
	memset(a, 0, sizeof(*a));
	a->base.alloc_fn = pack_bench_alloc_fn;
	a->base.realloc_fn = pack_bench_realloc_fn;
	a->base.free_fn = pack_bench_free_fn;
	a->base.ctx = a;
}

static double
pack_bench_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
pack_bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
pack_bench_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), pack_bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
pack_bench_die(const char *what, int rc)
{
	fprintf(stderr, "pack-bench: %s: %s\n", what, mesh_strerror(rc));
	exit(1);
}

/* splitmix64: a fixed sequence, so every run places the same packs. */
static uint64_t
pack_bench_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The packs, encoded once: the same bytes go into every configuration. */
struct pack_bench_specs {
	size_t n;
	char (*name)[24];
	uint8_t **data;
	size_t *len;
	uint64_t mem_total; /* MiB over all replicas */
	bool mixed;	    /* 20% of the packs with 2 replicas */
};

static void
pack_bench_specs_make(struct pack_bench_specs *s, size_t n, bool mixed)
{
	s->n = n;
	s->name = calloc(n, sizeof(*s->name));
	s->data = calloc(n, sizeof(*s->data));
	s->len = calloc(n, sizeof(*s->len));
	s->mem_total = 0;
	s->mixed = mixed;
	if (s->name == NULL || s->data == NULL || s->len == NULL)
		pack_bench_die("setup", MESH_ENOMEM);
	uint64_t seed = 42;
	for (size_t i = 0; i < n; i++) {
		snprintf(s->name[i], sizeof(s->name[i]), "pack-%06u",
			 (unsigned)(i + 1));
		uint64_t x = pack_bench_next(&seed);
		struct pack_spec sp = {
		    .tenant = "",
		    .mem_mib = 64 + (uint32_t)(x % 449),
		    /* Every fifth pack: the 20% with two replicas. */
		    .replicas = mixed && (x >> 32) % 5 == 0 ? 2 : 1,
		    .zone = "",
		    .region = "",
		};
		s->mem_total += (uint64_t)sp.mem_mib * sp.replicas;
		const char *why = NULL;
		int rc = pack_spec_encode(&sp, &s->data[i], &s->len[i], &why);
		if (rc != 0)
			pack_bench_die(why ? why : "pack_spec_encode", rc);
	}
}

static void
pack_bench_specs_free(struct pack_bench_specs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->data[i]);
	free(s->name);
	free(s->data);
	free(s->len);
}

/* One row of the table. */
struct pack_bench_row {
	unsigned nodes;
	size_t packs;
	char memfill[16];
	uint32_t node_mem; /* MiB per node, 0: unlimited */
	double load_ms, first_ms, update_ms, update_max_ms, ring_ms;
	double leave, join; /* mean fraction of packs moved */
	double heap_pp, chunk_pp, peak_pp;
	size_t placed, unplaceable, mine, events;
	size_t ring_bytes;
};

static void
pack_bench_drain(struct pack *pk, size_t *events)
{
	struct pack_event ev;
	struct pack_hook h;
	while (pack_poll_event(pk, &ev))
		(*events)++;
	while (pack_poll_hook(pk, &h))
		(*events)++;
}

static struct ring *
pack_bench_ring(const struct mesh_env *env, struct ring_member *m,
		unsigned nodes, double *ms)
{
	struct ring *r;
	double t0 = pack_bench_now_ms();
	int rc = ring_new(env, NULL, m, nodes, &r);
	if (ms != NULL)
		*ms = pack_bench_now_ms() - t0;
	if (rc != 0)
		pack_bench_die("ring_new", rc);
	return r;
}

static void
pack_bench_one(const struct pack_bench_opts *o,
	       const struct pack_bench_specs *sp, unsigned nodes, bool limited,
	       struct pack_bench_row *row)
{
	static const char *zones[] = {"z0", "z1", "z2"};
	memset(row, 0, sizeof(*row));
	row->nodes = nodes;
	row->packs = sp->n;
	/* Packs fill o->fill percent of the mesh's memory: each node gets
	 * 1/N of the total the packs ask for, over the fill. */
	if (limited)
		row->node_mem =
		    (uint32_t)(sp->mem_total * 100 / o->fill / nodes + 1);
	if (limited)
		snprintf(row->memfill, sizeof(row->memfill), "%u%%%s", o->fill,
			 sp->mixed ? "+r2" : "");
	else
		snprintf(row->memfill, sizeof(row->memfill), "unl");

	char(*names)[16] = calloc(nodes, sizeof(*names));
	struct ring_member *m = calloc(nodes, sizeof(*m));
	if (names == NULL || m == NULL)
		pack_bench_die("setup", MESH_ENOMEM);
	for (unsigned i = 0; i < nodes; i++) {
		snprintf(names[i], sizeof(names[i]), "node-%04u", i + 1);
		m[i] = (struct ring_member){.name = names[i],
					    .zone = zones[i % 3],
					    .mem = row->node_mem,
					    .alive = true};
	}

	/* The ring has an allocator of its own (ring_assign_fit()'s scratch
	 * comes from it too), so the pack core's count is the core's. */
	struct pack_bench_alloc ra, pa;
	pack_bench_alloc_init(&ra);
	pack_bench_alloc_init(&pa);
	struct mesh_env renv = {.alloc = &ra.base, .log_level = MESH_LOG_OFF};
	struct mesh_env penv = {.alloc = &pa.base, .log_level = MESH_LOG_OFF};

	struct pack_config cfg;
	pack_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", names[0]);
	cfg.hook = false;
	struct pack *pk;
	int rc = pack_new(&cfg, &penv, &pk);
	if (rc != 0)
		pack_bench_die("pack_new", rc);

	double t0 = pack_bench_now_ms();
	for (size_t i = 0; i < sp->n; i++) {
		rc = pack_set_spec(pk, sp->name[i], sp->data[i], sp->len[i]);
		if (rc != 0)
			pack_bench_die("pack_set_spec", rc);
	}
	row->load_ms = pack_bench_now_ms() - t0;

	struct ring *r = pack_bench_ring(&renv, m, nodes, NULL);
	struct ring_stats rs;
	ring_stats(r, &rs);
	row->ring_bytes = rs.bytes;
	uint64_t now = 1000;
	pa.peak = pa.live;
	t0 = pack_bench_now_ms();
	rc = pack_update(pk, now, r);
	row->first_ms = pack_bench_now_ms() - t0;
	if (rc != 0)
		pack_bench_die("pack_update", rc);
	size_t peak = pa.peak;
	pack_bench_drain(pk, &row->events);
	row->heap_pp = (double)pa.live / (double)sp->n;
	row->chunk_pp = (double)pa.chunk / (double)sp->n;

	struct pack_counts c;
	pack_counts(pk, &c);
	row->placed = c.placed;
	row->unplaceable = c.unplaceable;
	row->mine = c.mine;

	/* Membership changes: node N/2 (not us) leaves, comes back, ... */
	double tu[PACK_BENCH_RUNS_MAX], tr[PACK_BENCH_RUNS_MAX];
	unsigned leaves = 0, joins = 0;
	uint64_t moved_leave = 0, moved_join = 0;
	uint32_t victim = nodes / 2;
	for (unsigned i = 0; i < o->runs; i++) {
		m[victim].alive = i % 2 == 1;
		struct ring *nr = pack_bench_ring(&renv, m, nodes, &tr[i]);
		ring_free(r);
		r = nr;
		uint64_t before = c.moves;
		now += 1000;
		pa.peak = pa.live;
		t0 = pack_bench_now_ms();
		rc = pack_update(pk, now, r);
		tu[i] = pack_bench_now_ms() - t0;
		if (rc != 0)
			pack_bench_die("pack_update", rc);
		if (pa.peak > peak)
			peak = pa.peak;
		if (tu[i] > row->update_max_ms)
			row->update_max_ms = tu[i];
		pack_bench_drain(pk, &row->events);
		pack_counts(pk, &c);
		if (i % 2 == 0) {
			leaves++;
			moved_leave += c.moves - before;
		} else {
			joins++;
			moved_join += c.moves - before;
		}
	}
	row->update_ms = pack_bench_median(tu, o->runs);
	row->ring_ms = pack_bench_median(tr, o->runs);
	row->leave = leaves ? (double)moved_leave / leaves / (double)sp->n : 0;
	row->join = joins ? (double)moved_join / joins / (double)sp->n : 0;
	row->peak_pp = (double)peak / (double)sp->n;

	ring_free(r);
	pack_free(pk);
	if (pa.live != 0 || pa.blocks != 0 || ra.live != 0) {
		fprintf(stderr, "pack-bench: %zu bytes in %zu blocks leaked\n",
			pa.live + ra.live, pa.blocks + ra.blocks);
		exit(1);
	}
	free(names);
	free(m);
}

static void
pack_bench_print(const struct pack_bench_opts *o,
		 const struct pack_bench_row *row, bool first)
{
	if (o->json) {
		printf("%s\n    {\"nodes\": %u, \"packs\": %zu, \"memfill\": "
		       "\"%s\", \"node_mem_mib\": %u, \"load_ms\": %.1f, "
		       "\"first_ms\": %.2f, \"update_ms_p50\": %.2f, "
		       "\"update_ms_max\": %.2f, \"ring_ms_p50\": %.2f, "
		       "\"moves_per_leave\": %.5f, \"moves_per_join\": %.5f, "
		       "\"bytes_per_pack_heap\": %.1f, "
		       "\"bytes_per_pack_malloc\": %.1f, "
		       "\"peak_bytes_per_pack\": %.1f, \"placed\": %zu, "
		       "\"unplaceable\": %zu, \"mine\": %zu, "
		       "\"ring_bytes\": %zu}",
		       first ? "" : ",", row->nodes, row->packs, row->memfill,
		       row->node_mem, row->load_ms, row->first_ms,
		       row->update_ms, row->update_max_ms, row->ring_ms,
		       row->leave, row->join, row->heap_pp, row->chunk_pp,
		       row->peak_pp, row->placed, row->unplaceable, row->mine,
		       row->ring_bytes);
		return;
	}
	printf("%5u %7zu %-7s %8.0f %8.1f %9.2f %7.2f %7.2f %7.4f %7.4f "
	       "%7.1f %7.1f %7.1f %7zu\n",
	       row->nodes, row->packs, row->memfill, row->load_ms,
	       row->first_ms, row->update_ms, row->update_max_ms, row->ring_ms,
	       row->leave, row->join, row->heap_pp, row->chunk_pp, row->peak_pp,
	       row->unplaceable);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct pack_bench_opts o = {.packs = 100000, .runs = 7, .fill = 70};
	bool runs_set = false, packs_set = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--packs") == 0 && i + 1 < argc) {
			o.packs = strtoull(argv[++i], NULL, 10);
			packs_set = true;
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			o.runs = (unsigned)strtoul(argv[++i], NULL, 10);
			runs_set = true;
		} else if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc) {
			o.fill = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--quick") == 0) {
			o.quick = true;
		} else if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
		} else {
			fprintf(stderr, "usage: pack-bench [--packs K] "
					"[--runs R] [--fill PCT] [--quick] "
					"[--json]\n");
			return 2;
		}
	}
	if (o.quick) {
		if (!packs_set)
			o.packs = 20000;
		if (!runs_set)
			o.runs = 3;
	}
	if (o.runs < 1 || o.runs > PACK_BENCH_RUNS_MAX || o.packs < 100 ||
	    o.packs > PACK_PACKS_MAX || o.fill < 1 || o.fill > 100) {
		fprintf(stderr,
			"pack-bench: runs 1..%d, packs 100..%d, fill 1..100\n",
			PACK_BENCH_RUNS_MAX, PACK_PACKS_MAX);
		return 2;
	}

	struct pack_bench_specs one, mixed;
	pack_bench_specs_make(&one, o.packs, false);
	pack_bench_specs_make(&mixed, o.packs, true);

	if (o.json) {
		printf("{\"packs\": %zu, \"runs\": %u, \"fill\": %u, "
		       "\"rows\": [",
		       o.packs, o.runs, o.fill);
	} else {
		printf("pack-bench: K=%zu packs of 64..512 MiB, %u membership "
		       "changes (node N/2 down, up, ...), 3 zones,\n"
		       "bounded loads (eps 0.25), no hook, this agent is "
		       "node-0001; memfill: packs take %u%% of all memory "
		       "(unl: no limit, +r2: 20%% with 2 replicas)\n",
		       o.packs, o.runs, o.fill);
		printf("update: pack_update() after a change, p50 and max; "
		       "ring: ring_new() p50; leave/join: packs moved / K;\n"
		       "B/pack: heap of the pack core after one update (heap: "
		       "asked for, malloc: glibc chunks), peak: during "
		       "updates\n\n");
		printf("%5s %7s %-7s %8s %8s %9s %7s %7s %7s %7s %7s %7s %7s "
		       "%7s\n",
		       "nodes", "packs", "memfill", "load_ms", "first_ms",
		       "upd_p50", "upd_max", "ring_ms", "leave", "join",
		       "B/heap", "B/mallc", "B/peak", "unplcd");
	}
	static const unsigned ns[] = {32, 1000};
	bool first = true;
	for (unsigned a = 0; a < 2; a++) {
		struct pack_bench_row row;
		pack_bench_one(&o, &one, ns[a], false, &row);
		pack_bench_print(&o, &row, first);
		first = false;
		pack_bench_one(&o, &one, ns[a], true, &row);
		pack_bench_print(&o, &row, false);
		pack_bench_one(&o, &mixed, ns[a], true, &row);
		pack_bench_print(&o, &row, false);
	}
	if (o.json)
		printf("\n]}\n");
	pack_bench_specs_free(&one);
	pack_bench_specs_free(&mixed);
	return 0;
}
