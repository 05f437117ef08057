/*
 * gen_corpus.c - writes the seed corpora of fuzz/ from real encoded
 * messages: it runs the real cores (swim, tenant, pack, crdt), with the
 * identities the targets use (fuzz_common.c), between nodes in one process,
 * and records what node fz0 receives, in each target's input format.
 *
 *   gen_corpus DIR      writes DIR/<target>/<hash> (DIR is fuzz/corpus)
 *
 * The runs are deterministic but for the nonces of sealing and of
 * capabilities (libsodium randomness), so most files are the same from one
 * run to the next. `make fuzz-corpus` runs it.
 */
#include "fuzz_common.h"

#include "admin.h"
#include "capfile.h"
#include "crdt.h"
#include "mem_kv.h"
#include "mesh_err.h"
#include "net.h"
#include "pack.h"
#include "seal.h"
#include "tenant.h"
#include "tenant_cap.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GEN_MAX_FILES 400

static const char *gen_dir;

struct gen_target {
	const char *name;
	unsigned files;
};

static struct gen_target gen_targets[] = {
    {"swim_datagram", 0}, {"swim_stream", 0}, {"net_frame", 0}, {"crdt", 0},
    {"tenant", 0},	  {"pack", 0},	      {"admin", 0},
};

enum {
	GEN_DGRAM,
	GEN_STREAM,
	GEN_FRAME,
	GEN_CRDT,
	GEN_TENANT,
	GEN_PACK,
	GEN_ADMIN,
};

static _Noreturn void
gen_die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s\n", what);
	exit(1);
}

/* Writes one input of target @t, named by its hash (duplicates collapse). */
static void
gen_write(int t, const void *data, size_t len)
{
	struct gen_target *g = &gen_targets[t];
	if (len == 0 || g->files >= GEN_MAX_FILES)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", gen_dir, g->name);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		gen_die("mkdir");
	uint64_t h = fuzz_fnv(0xcbf29ce484222325ull, data, len);
	snprintf(path, sizeof(path), "%s/%s/%016llx", gen_dir, g->name,
		 (unsigned long long)h);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		gen_die(path);
	g->files++;
}

/* A growable byte string. */
struct gen_buf {
	uint8_t *p;
	size_t len, cap;
};

static void
gen_put(struct gen_buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL)
			gen_die("out of memory");
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

/* Appends one chunk (separator first unless @b is empty). */
static void
gen_chunk(struct gen_buf *b, uint8_t ctrl, const void *data, size_t len)
{
	if (b->len > 0)
		gen_put(b, FUZZ_SEP, FUZZ_SEP_LEN);
	gen_put(b, &ctrl, 1);
	gen_put(b, data, len);
}

/* Writes a single-chunk input. */
static void
gen_one(int t, uint8_t ctrl, const void *data, size_t len)
{
	struct gen_buf b = {0};
	gen_chunk(&b, ctrl, data, len);
	gen_write(t, b.p, b.len);
	free(b.p);
}

/* ---- the stream format of net_frame ------------------------------------ */

#define GEN_SEAL_FLAG 0x40000000u

static struct seal_keyring gen_keys;

static void
gen_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Appends a frame: plaintext for the harness to seal, or sealed here with
 * key @key (0 or 1) as net.c writes it. */
static void
gen_frame(struct gen_buf *b, bool tenant, bool seal_here_in_harness, int key,
	  const uint8_t *plain, size_t len)
{
	uint8_t word[4];
	uint32_t flag = tenant ? NET_TENANT_FLAG : 0;
	if (seal_here_in_harness) {
		gen_be32(word, GEN_SEAL_FLAG | flag | (uint32_t)len);
		gen_put(b, word, 4);
		gen_put(b, plain, len);
		return;
	}
	/* Built afresh, not copied: a copy of a keyring that has sealed
	 * would repeat its nonces (seal.h). */
	struct seal_keyring one = {.count = 1};
	memcpy(one.keys[0], gen_keys.keys[key], SEAL_KEY_BYTES);
	uint8_t *s = malloc(len + SEAL_OVERHEAD);
	size_t slen;
	if (s == NULL ||
	    seal_seal(&one, plain, len, s, len + SEAL_OVERHEAD, &slen) != 0)
		gen_die("seal");
	gen_be32(word, flag | (uint32_t)slen);
	gen_put(b, word, 4);
	gen_put(b, s, slen);
	free(s);
}

static unsigned gen_frames;

/* A swim or tenant frame that reached fz0: three stream inputs. */
static void
gen_net_frame(bool tenant, const uint8_t *plain, size_t len)
{
	if (gen_frames++ % 3 != 0)
		return; /* a third of them is plenty */
	struct gen_buf b = {0};
	gen_frame(&b, tenant, true, 0, plain, len);
	gen_write(GEN_FRAME, b.p, b.len);
	b.len = 0;
	if (tenant) /* a new stream opens with an empty sealed hello */
		gen_frame(&b, true, false, 0, NULL, 0);
	gen_frame(&b, tenant, false, gen_frames % 2, plain, len);
	gen_write(GEN_FRAME, b.p, b.len);
	free(b.p);
}

/* ---- membership ---------------------------------------------------------- */

struct gen_swim {
	struct swim *s[FUZZ_NODES];
	bool up[FUZZ_NODES];
	uint64_t now, last_dgram, last_stream;
	struct gen_buf seq_dgram, seq_stream;
	unsigned nseq_dgram, nseq_stream;
};

static int
gen_swim_index(const struct swim_addr *a)
{
	for (unsigned i = 0; i < FUZZ_NODES; i++) {
		struct swim_addr b;
		fuzz_addr(i, &b);
		if (swim_addr_equal(a, &b))
			return (int)i;
	}
	return -1;
}

static void
gen_seq_flush(int t, struct gen_buf *b, unsigned *n)
{
	if (*n > 0)
		gen_write(t, b->p, b->len);
	b->len = 0;
	*n = 0;
}

/* Records a datagram or frame that reached fz0 from node @from. */
static void
gen_swim_record(struct gen_swim *g, bool stream, unsigned from,
		const uint8_t *data, size_t len)
{
	uint64_t *last = stream ? &g->last_stream : &g->last_dgram;
	uint32_t gap = (uint32_t)(g->now - *last);
	*last = g->now;
	uint8_t ctrl = fuzz_ctrl(from, gap, true);
	int t = stream ? GEN_STREAM : GEN_DGRAM;
	gen_one(t, fuzz_ctrl(from, 0, false), data, len);
	struct gen_buf *b = stream ? &g->seq_stream : &g->seq_dgram;
	unsigned *n = stream ? &g->nseq_stream : &g->nseq_dgram;
	gen_chunk(b, ctrl, data, len);
	if (++*n == 12)
		gen_seq_flush(t, b, n);
	if (stream)
		gen_net_frame(false, data, len);
}

static void gen_swim_drain(struct gen_swim *g, unsigned i);

/* A push-pull from @i to @j over a stream, with its answer. */
static void
gen_swim_stream(struct gen_swim *g, unsigned i, unsigned j, const uint8_t *data,
		size_t len)
{
	struct swim_addr from;
	fuzz_addr(i, &from);
	uint8_t *copy = malloc(len);
	memcpy(copy, data, len);
	if (j == 0)
		gen_swim_record(g, true, i, copy, len);
	const uint8_t *reply = NULL;
	size_t rlen = 0;
	(void)swim_recv_stream(g->s[j], g->now, &from, copy, len, &reply,
			       &rlen);
	free(copy);
	if (reply != NULL) {
		uint8_t *r = malloc(rlen);
		memcpy(r, reply, rlen);
		struct swim_addr to;
		fuzz_addr(j, &to);
		if (i == 0)
			gen_swim_record(g, true, j, r, rlen);
		const uint8_t *r2;
		size_t r2len;
		(void)swim_recv_stream(g->s[i], g->now, &to, r, rlen, &r2,
				       &r2len);
		free(r);
		gen_swim_drain(g, i);
	}
	gen_swim_drain(g, j);
}

static void
gen_swim_drain(struct gen_swim *g, unsigned i)
{
	struct swim_output o;
	while (swim_poll_output(g->s[i], &o)) {
		int j = gen_swim_index(&o.to);
		if (j < 0 || !g->up[j] || !g->up[i])
			continue;
		uint8_t *copy = malloc(o.len);
		memcpy(copy, o.data, o.len);
		size_t len = o.len;
		if (o.kind == SWIM_OUT_DATAGRAM) {
			struct swim_addr from;
			fuzz_addr(i, &from);
			if (j == 0)
				gen_swim_record(g, false, i, copy, len);
			(void)swim_recv_datagram(g->s[j], g->now, &from, copy,
						 len);
			gen_swim_drain(g, (unsigned)j);
		} else {
			gen_swim_stream(g, i, (unsigned)j, copy, len);
		}
		free(copy);
	}
	struct swim_event ev;
	while (swim_poll_event(g->s[i], &ev)) {
	}
}

static void
gen_swim(void)
{
	struct gen_swim g;
	memset(&g, 0, sizeof(g));
	g.now = FUZZ_T0;
	g.last_dgram = g.last_stream = g.now;
	/* fz0 exactly as the targets build it; fz1..fz3 know the others;
	 * fz4, the stranger, joins through fz0. */
	g.s[0] = fuzz_swim_target(g.now);
	for (unsigned i = 1; i < FUZZ_NODES; i++) {
		if (fuzz_swim_new(i, g.now, &g.s[i]) != 0)
			gen_die("swim_new");
		for (unsigned k = 0; k <= FUZZ_PEERS && i <= FUZZ_PEERS; k++)
			if (k != i)
				(void)fuzz_add_known(g.s[i], g.now, k);
	}
	for (unsigned i = 0; i < FUZZ_NODES; i++)
		g.up[i] = true;
	struct swim_addr seed;
	fuzz_addr(0, &seed);
	if (swim_join(g.s[4], g.now, &seed, 1) != 0)
		gen_die("swim_join");
	uint64_t end = g.now + 180000;
	bool meta_done = false, down_done = false, left_done = false;
	bool back_done = false;
	while (g.now < end) {
		uint64_t t = g.now - FUZZ_T0;
		if (t >= 8000 && !meta_done) {
			struct swim_meta m;
			memset(&m, 0, sizeof(m));
			snprintf(m.zone, sizeof(m.zone), "z1");
			snprintf(m.region, sizeof(m.region), "r0");
			snprintf(m.cell, sizeof(m.cell), "c7");
			m.kv_count = 2;
			snprintf(m.kv[0].key, sizeof(m.kv[0].key), "drain");
			snprintf(m.kv[0].value, sizeof(m.kv[0].value), "1");
			snprintf(m.kv[1].key, sizeof(m.kv[1].key), "mem");
			snprintf(m.kv[1].value, sizeof(m.kv[1].value), "4096");
			(void)swim_set_meta(g.s[2], g.now, &m);
			meta_done = true;
		}
		if (t >= 15000 && !down_done) {
			g.up[3] = false; /* crash: suspect, then dead */
			down_done = true;
		}
		if (t >= 40000 && !back_done) {
			g.up[3] =
			    true; /* back: refutes with a new incarnation */
			back_done = true;
		}
		if (t >= 45000 && !left_done) {
			swim_leave(g.s[4], g.now);
			left_done = true;
		}
		for (unsigned i = 0; i < FUZZ_NODES; i++) {
			if (!g.up[i])
				continue;
			if (swim_next_deadline(g.s[i]) <= g.now)
				swim_tick(g.s[i], g.now);
			gen_swim_drain(&g, i);
		}
		g.now += 5;
	}
	gen_seq_flush(GEN_DGRAM, &g.seq_dgram, &g.nseq_dgram);
	gen_seq_flush(GEN_STREAM, &g.seq_stream, &g.nseq_stream);
	free(g.seq_dgram.p);
	free(g.seq_stream.p);
	for (unsigned i = 0; i < FUZZ_NODES; i++)
		swim_free(g.s[i]);
}

/* ---- tenants ---------------------------------------------------------------
 */

#define GEN_T 4

struct gen_tenant {
	struct mem_kv kv[GEN_T];
	struct tenant *t[GEN_T];
	struct ring *ring;
	uint64_t now, last;
	struct gen_buf seq;
	unsigned nseq;
	uint64_t next_id;
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	uint8_t cap[TENANT_CAP_MAX];
	size_t cap_len;
};

static void
gen_tenant_route(struct gen_tenant *g)
{
	bool moved = true;
	while (moved) {
		moved = false;
		for (unsigned i = 0; i < GEN_T; i++) {
			struct tenant_output o;
			while (tenant_poll_output(g->t[i], &o)) {
				unsigned j = 0;
				while (j < GEN_T && strcmp(o.to, fuzz_name(j)))
					j++;
				if (j == GEN_T)
					continue;
				uint8_t *copy = malloc(o.len);
				memcpy(copy, o.data, o.len);
				size_t len = o.len;
				if (j == 0) {
					uint32_t gap =
					    (uint32_t)(g->now - g->last);
					g->last = g->now;
					gen_one(GEN_TENANT,
						fuzz_ctrl(i, 0, false), copy,
						len);
					gen_chunk(&g->seq,
						  fuzz_ctrl(i, gap, true), copy,
						  len);
					if (++g->nseq == 10)
						gen_seq_flush(GEN_TENANT,
							      &g->seq,
							      &g->nseq);
					gen_net_frame(true, copy, len);
				}
				(void)tenant_recv(g->t[j], g->now, copy, len);
				free(copy);
				moved = true;
			}
			struct tenant_reply r;
			while (tenant_poll_reply(g->t[i], &r)) {
			}
			struct tenant_change ch;
			while (tenant_poll_change(g->t[i], &ch)) {
			}
		}
	}
}

static void
gen_tenant_run(struct gen_tenant *g, uint64_t ms)
{
	for (uint64_t end = g->now + ms; g->now < end; g->now += 10) {
		for (unsigned i = 0; i < GEN_T; i++)
			if (tenant_next_deadline(g->t[i]) <= g->now)
				tenant_tick(g->t[i], g->now);
		gen_tenant_route(g);
	}
}

static void
gen_submit(struct gen_tenant *g, unsigned at, enum tenant_op op,
	   const char *tenant, const char *key, const char *value, int64_t n,
	   const char *map, bool lww, bool system)
{
	struct tenant_request rq;
	memset(&rq, 0, sizeof(rq));
	rq.id = ++g->next_id;
	rq.op = op;
	rq.tenant = tenant;
	if (!system && op != TENANT_OP_CREATE) {
		rq.cap = g->cap;
		rq.cap_len = g->cap_len;
	}
	rq.system = system;
	if (key != NULL) {
		rq.key = (const uint8_t *)key;
		rq.key_len = strlen(key);
	}
	if (value != NULL) {
		rq.value = (const uint8_t *)value;
		rq.value_len = strlen(value);
		rq.has_value = true;
	}
	rq.n = n;
	rq.ack = TENANT_ACK_QUORUM;
	rq.lww = lww;
	if (op == TENANT_OP_CREATE)
		rq.tenant_key = g->pk;
	if (map != NULL) {
		rq.map = (const uint8_t *)map;
		rq.map_len = strlen(map);
	}
	(void)tenant_submit(g->t[at], g->now, &rq);
	gen_tenant_route(g);
	gen_tenant_run(g, 50);
}

static void
gen_tenant(void)
{
	struct gen_tenant g;
	memset(&g, 0, sizeof(g));
	g.now = g.last = FUZZ_T0;
	g.ring = fuzz_ring();
	for (unsigned i = 0; i < GEN_T; i++)
		g.t[i] = fuzz_tenant_new(i, g.now, &g.kv[i], g.ring);
	unsigned char seed[crypto_sign_SEEDBYTES];
	memset(seed, 7, sizeof(seed));
	crypto_sign_seed_keypair(g.pk, g.sk, seed);
	struct tenant_cap c;
	memset(&c, 0, sizeof(c));
	snprintf(c.tenant, sizeof(c.tenant), "acme");
	c.rights = TENANT_READ | TENANT_WRITE | TENANT_ADMIN;
	memset(c.nonce, 1, sizeof(c.nonce));
	memcpy(c.tenant_key, g.pk, sizeof(g.pk));
	uint8_t body[TENANT_CAP_MAX], sig[TENANT_SIG_BYTES];
	size_t blen;
	if (tenant_cap_body_encode(&c, body, sizeof(body), &blen) != 0)
		gen_die("cap body");
	crypto_sign_detached(sig, NULL, body, blen, g.sk);
	if (tenant_cap_encode(body, blen, sig, g.cap, sizeof(g.cap),
			      &g.cap_len) != 0)
		gen_die("cap");
	/* Every kind of field, written at fz0 (which forwards or
	 * coordinates) and at its peers (which send fz0 deltas). */
	for (unsigned at = 0; at < 2; at++) {
		gen_submit(&g, at, TENANT_OP_CREATE, "acme", NULL, NULL, 0,
			   NULL, false, false);
		gen_submit(&g, at, TENANT_OP_PUT, "acme", "k1", "v1", 0, NULL,
			   false, false);
		gen_submit(&g, at, TENANT_OP_PUT, "acme", "k2", "v2", 0, NULL,
			   true, false);
		gen_submit(&g, at, TENANT_OP_INC, "acme", "hits", NULL, 5, NULL,
			   false, false);
		gen_submit(&g, at, TENANT_OP_INC, "acme", "hits", NULL, -2,
			   NULL, false, false);
		gen_submit(&g, at, TENANT_OP_ADD, "acme", "set", "e1", 0, NULL,
			   false, false);
		gen_submit(&g, at, TENANT_OP_ADD, "acme", "set", "e2", 0, NULL,
			   false, false);
		gen_submit(&g, at, TENANT_OP_RM, "acme", "set", "e1", 0, NULL,
			   false, false);
		gen_submit(&g, at, TENANT_OP_PUT, "acme", "f", "x", 0, "m",
			   true, false);
		gen_submit(&g, at, TENANT_OP_GET, "acme", "k1", NULL, 0, NULL,
			   false, false);
		gen_submit(&g, at, TENANT_OP_KEYS, "acme", NULL, NULL, 0, NULL,
			   false, false);
		gen_submit(&g, at, TENANT_OP_KEYS, "acme", NULL, NULL, 0, "m",
			   false, false);
		gen_submit(&g, at, TENANT_OP_DIGEST, "acme", NULL, NULL, 0,
			   NULL, false, false);
		gen_submit(&g, at, TENANT_OP_PUT, TENANT_SYSTEM, "pack/web",
			   "spec", 0, NULL, true, true);
		gen_submit(&g, at, TENANT_OP_PUT, TENANT_SYSTEM, "fz1", "run",
			   0, "run/web", true, true);
	}
	gen_submit(&g, 1, TENANT_OP_RM, "acme", "k1", NULL, 0, NULL, false,
		   false);
	gen_submit(&g, 2, TENANT_OP_PUT, "other", "k", "v", 0, NULL, false,
		   false); /* no such tenant: an error reply */
	/* Anti-entropy rounds: digests, pulls, follow. */
	gen_tenant_run(&g, 5000);
	/* A new view without fz3: handoff of what it held. */
	struct ring_member m[3];
	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i < 3; i++) {
		m[i].name = fuzz_name(i);
		m[i].alive = true;
	}
	struct ring *r3 = NULL;
	if (ring_new(fuzz_env(), NULL, m, 3, &r3) != 0)
		gen_die("ring");
	for (unsigned i = 0; i < GEN_T; i++)
		tenant_set_view(g.t[i], g.now, r3, NULL);
	gen_tenant_run(&g, 3000);
	for (unsigned i = 0; i < GEN_T; i++)
		tenant_set_view(g.t[i], g.now, g.ring, NULL);
	gen_tenant_run(&g, 3000);
	gen_seq_flush(GEN_TENANT, &g.seq, &g.nseq);
	free(g.seq.p);
	for (unsigned i = 0; i < GEN_T; i++) {
		tenant_free(g.t[i]);
		mem_kv_destroy(&g.kv[i]);
	}
	ring_free(r3);
	ring_free(g.ring);
}

/* ---- CRDTs ------------------------------------------------------------------
 */

static void
gen_crdt_out(uint8_t sel, uint8_t *buf, size_t len)
{
	struct gen_buf b = {0};
	gen_put(&b, &sel, 1);
	gen_put(&b, buf, len);
	gen_write(GEN_CRDT, b.p, b.len);
	free(b.p);
	free(buf);
}

#define GEN_ENC(sel, T, x)                                                     \
	do {                                                                   \
		uint8_t *e;                                                    \
		size_t l;                                                      \
		if (crdt_##T##_encode((x), &e, &l) != 0)                       \
			gen_die("encode " #T);                                 \
		gen_crdt_out((sel), e, l);                                     \
	} while (0)

static void
gen_crdt(void)
{
	const struct mesh_allocator *a = mesh_alloc_default();
	for (unsigned round = 1; round <= 4; round++) {
		struct crdt_cc *cc = crdt_cc_new(a);
		struct crdt_gcounter *gc = crdt_gcounter_new(a);
		struct crdt_pncounter *pn = crdt_pncounter_new(a);
		struct crdt_lww *lww = crdt_lww_new(a);
		struct crdt_mvreg *mv = crdt_mvreg_new(a);
		struct crdt_orset *os = crdt_orset_new(a);
		struct crdt_ormap *om = crdt_ormap_new(a);
		struct crdt_hlc_clock clk;
		crdt_hlc_init(&clk, 0x1001, 60000);
		for (unsigned r = 0; r < round; r++) {
			uint64_t rep = 0x1000 + r;
			struct crdt_dot d = {rep, 1 + r};
			(void)crdt_cc_add(cc, &d);
			struct crdt_dot gap = {rep,
					       5 + 2 * r}; /* a cloud dot */
			(void)crdt_cc_add(cc, &gap);
			(void)crdt_gcounter_inc(gc, rep, 3 + r, NULL);
			(void)crdt_pncounter_add(pn, rep, (int64_t)r - 2, NULL);
			(void)crdt_lww_set(lww, &clk, FUZZ_T0 + r, "value", 5,
					   NULL);
			(void)crdt_mvreg_set(mv, rep, "mv", 2 + (r & 1), NULL);
			char el[8];
			snprintf(el, sizeof(el), "e%u", r);
			(void)crdt_orset_add(os, rep, el, strlen(el), NULL);
			if (r == 2)
				(void)crdt_orset_remove(os, "e0", 2, NULL);
			struct crdt_key k1[2] = {{"ctr", 3}, {"x", 1}};
			struct crdt_key k2[1] = {{"set", 3}};
			struct crdt_key k3[1] = {{"reg", 3}};
			struct crdt_key k4[2] = {{"sub", 3}, {el, strlen(el)}};
			(void)crdt_ormap_counter_add(om, rep, k1, 1,
						     CRDT_PNCOUNTER, 4, NULL);
			(void)crdt_ormap_counter_add(om, rep, k1, 2,
						     CRDT_GCOUNTER, 1, NULL);
			(void)crdt_ormap_orset_add(om, rep, k2, 1, el,
						   strlen(el), NULL);
			(void)crdt_ormap_lww_set(om, &clk, FUZZ_T0 + r, k3, 1,
						 "v", 1, NULL);
			(void)crdt_ormap_mv_set(om, rep, k4, 2, "m", 1, NULL);
			if (r == 3)
				(void)crdt_ormap_remove(om, k2, 1, CRDT_ORSET,
							NULL);
		}
		GEN_ENC(0, cc, cc);
		GEN_ENC(1, gcounter, gc);
		GEN_ENC(2, pncounter, pn);
		GEN_ENC(3, lww, lww);
		GEN_ENC(4, mvreg, mv);
		GEN_ENC(5, orset, os);
		GEN_ENC(6, ormap, om);
		/* decode_parts: each top-level field alone, then the
		 * context. */
		struct gen_buf b = {0};
		uint8_t sel = 7;
		gen_put(&b, &sel, 1);
		size_t n = crdt_ormap_count(om, NULL, 0);
		for (size_t i = 0; i < n; i++) {
			enum crdt_kind kind;
			const void *key;
			size_t klen;
			uint8_t *f;
			size_t flen;
			if (crdt_ormap_field(om, NULL, 0, i, &kind, &key,
					     &klen) != 0 ||
			    crdt_ormap_field_encode(om, kind, key, klen, &f,
						    &flen) != 0)
				gen_die("field encode");
			gen_put(&b, f, flen);
			gen_put(&b, FUZZ_SEP, FUZZ_SEP_LEN);
			free(f);
		}
		uint8_t *e;
		size_t l;
		if (crdt_cc_encode(crdt_ormap_context(om), &e, &l) != 0)
			gen_die("cc encode");
		gen_put(&b, e, l);
		free(e);
		gen_write(GEN_CRDT, b.p, b.len);
		free(b.p);
		crdt_cc_free(cc);
		crdt_gcounter_free(gc);
		crdt_pncounter_free(pn);
		crdt_lww_free(lww);
		crdt_mvreg_free(mv);
		crdt_orset_free(os);
		crdt_ormap_free(om);
	}
}

/* ---- packs -----------------------------------------------------------------
 */

static uint8_t
gen_pack_ctrl(unsigned op, unsigned pack, unsigned node)
{
	return (uint8_t)(op | pack << 3 | node << 5);
}

static void
gen_pack(void)
{
	static const char *const zones[] = {"", "z0", "z1"};
	struct ring *ring = fuzz_ring();
	struct pack_config cfg;
	pack_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", fuzz_name(0));
	cfg.hook = true;
	cfg.wall_offset_ms = 1700000000000LL;
	struct pack *pk = NULL;
	if (pack_new(&cfg, fuzz_env(), &pk) != 0)
		gen_die("pack_new");
	uint64_t now = FUZZ_T0;
	struct gen_buf seq = {0};
	static const char *const names[4] = {"web", "db", "cache", "q.1"};
	for (unsigned p = 0; p < 4; p++) {
		struct pack_spec sp;
		memset(&sp, 0, sizeof(sp));
		sp.tenant = p == 1 ? "acme" : "";
		sp.mem_mib = 64u << p;
		sp.replicas = 1 + p % 3;
		sp.zone = zones[p % 3];
		sp.region = p == 2 ? "r0" : "";
		sp.nlabels = p;
		static const char *const lk[] = {"tier", "team", "port"};
		static const char *const lv[] = {"web", "blue", "8080"};
		for (unsigned k = 0; k < p; k++) {
			sp.label_key[k] = lk[k];
			sp.label_value[k] = lv[k];
		}
		sp.created_unix_ms = 1700000000000ull + p;
		uint8_t *e;
		size_t l;
		const char *why;
		if (pack_spec_encode(&sp, &e, &l, &why) != 0)
			gen_die(why);
		gen_one(GEN_PACK, gen_pack_ctrl(0, p, 0), e, l);
		gen_chunk(&seq, gen_pack_ctrl(0, p, 0), e, l);
		if (pack_set_spec(pk, names[p], e, l) != 0)
			gen_die("pack_set_spec");
		free(e);
	}
	uint8_t ok = 0, fail = 1;
	gen_chunk(&seq, gen_pack_ctrl(3, 0, 0), &ok, 1);
	(void)pack_update(pk, now, ring);
	/* Run the hooks: the first succeeds, the rest fail; record the Run
	 * records the core publishes as reports from each node. */
	for (unsigned round = 0; round < 3; round++) {
		struct pack_hook h;
		uint64_t ids[32];
		unsigned n = 0;
		while (pack_poll_hook(pk, &h) && n < 32)
			ids[n++] = h.id;
		for (unsigned i = 0; i < n; i++)
			pack_hook_done(pk, now, ids[i], i == 0 ? 0 : 1,
				       i == 0 ? "started"
					      : "exit 1: no such "
						"image");
		struct pack_event ev;
		while (pack_poll_event(pk, &ev)) {
			if (ev.kind != PACK_EV_RUN && ev.kind != PACK_EV_MOVE)
				continue;
			if (ev.data == NULL || ev.len == 0)
				continue;
			unsigned p = 0;
			while (p < 3 && strcmp(ev.name, names[p]))
				p++;
			for (unsigned node = 0; node < 4; node++) {
				uint8_t ctrl = gen_pack_ctrl(1, p, node);
				gen_one(GEN_PACK, ctrl, ev.data, ev.len);
				if (node == round)
					gen_chunk(&seq, ctrl, ev.data, ev.len);
			}
		}
		now += 2000;
		uint8_t step = 4;
		gen_chunk(&seq, gen_pack_ctrl(5, 0, 0), &step, 1);
		gen_chunk(&seq, gen_pack_ctrl(3, round, 0), round ? &fail : &ok,
			  1);
		pack_tick(pk, now);
	}
	gen_chunk(&seq, gen_pack_ctrl(4, 2, 0), NULL, 0);
	gen_chunk(&seq, gen_pack_ctrl(2, 1, 0), NULL, 0);
	gen_chunk(&seq, gen_pack_ctrl(7, 0, 0), NULL, 0);
	gen_chunk(&seq, gen_pack_ctrl(6, 0, 0), "new.pack", 8);
	gen_write(GEN_PACK, seq.p, seq.len);
	free(seq.p);
	pack_free(pk);
	ring_free(ring);
}

/* ---- admin -----------------------------------------------------------------
 */

static void
gen_admin_line(struct gen_buf *out, const char *const *tokens, size_t n)
{
	struct admin_buf b = {0};
	for (size_t i = 0; i < n; i++)
		admin_arg_append(&b, tokens[i], strlen(tokens[i]));
	gen_put(out, b.data, b.len);
	gen_put(out, "\n", 1);
	free(b.data);
}

static void
gen_admin(void)
{
	uint8_t seed[CAPFILE_SEED_BYTES], pub[TENANT_PUBKEY_BYTES];
	memset(seed, 9, sizeof(seed));
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_seed_keypair(pub, sk, seed);
	uint8_t cap[TENANT_CAP_MAX];
	size_t cap_len;
	if (capfile_make(seed, "acme", TENANT_READ | TENANT_WRITE, 0, cap,
			 sizeof(cap), &cap_len) != 0)
		gen_die("capfile_make");
	char captext[CAPFILE_TEXT_MAX], pubtext[128], keytext[128];
	if (capfile_encode_cap_text(cap, cap_len, captext, sizeof(captext)) <
		0 ||
	    capfile_encode_pubkey(pub, pubtext, sizeof(pubtext)) < 0 ||
	    capfile_encode_key_text(seed, keytext, sizeof(keytext)) < 0)
		gen_die("capfile text");
	const char *const l1[] = {"status"};
	const char *const l2[] = {"status", "--json"};
	const char *const l3[] = {"members", "--json"};
	const char *const l4[] = {"tenant", "create", "acme", "--key", pubtext};
	const char *const l5[] = {"tenant", "put",	"acme",
				  "k e y",  "v\n\001%", "--cap",
				  captext,  "--ack",	"quorum"};
	const char *const l6[] = {"tenant", "inc",   "acme", "hits",
				  "-3",	    "--cap", captext};
	const char *const l7[] = {"tenant", "get",    "acme",  "k",    "--map",
				  "m",	    "--json", "--cap", captext};
	const char *const l8[] = {"pack", "add",	"web",	   "--mem",
				  "128",  "--replicas", "2",	   "--zone",
				  "z0",	  "--label",	"tier=web"};
	const char *const l9[] = {"pack", "ls", "--json"};
	const char *const l10[] = {"drain"};
	const char *const l11[] = {"join", "198.18.0.2:7946", "[::1]:7946",
				   "host.example"};
	const char *const l12[] = {"tenant",	 "grant", "acme",
				   "read,write", "--key", keytext};
	const char *const l13[] = {"place", "web"};
	const char *const l14[] = {"keyring", "reload"};
	const char *const *lines[] = {l1, l2, l3,  l4,	l5,  l6,  l7,
				      l8, l9, l10, l11, l12, l13, l14};
	const size_t counts[] = {1, 2, 2, 5, 9, 7, 9, 11, 3, 1, 4, 6, 2, 2};
	struct gen_buf all = {0};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct gen_buf one = {0};
		gen_admin_line(&one, lines[i], counts[i]);
		gen_write(GEN_ADMIN, one.p, one.len);
		gen_put(&all, one.p, one.len);
		free(one.p);
	}
	gen_write(GEN_ADMIN, all.p, all.len);
	free(all.p);
	/* The file parsers: a keyring, a capability file. */
	char ring[256];
	if (seal_keyring_generate(ring, sizeof(ring)) != 0)
		gen_die("keyring");
	gen_write(GEN_ADMIN, ring, strlen(ring));
	char file[4096];
	if (capfile_format(cap, cap_len, seed, file, sizeof(file)) < 0)
		gen_die("capfile_format");
	gen_write(GEN_ADMIN, file, strlen(file));
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	gen_dir = argv[1];
	if (mkdir(gen_dir, 0755) != 0 && errno != EEXIST)
		gen_die("mkdir");
	if (seal_init() != 0)
		gen_die("seal_init");
	gen_keys.count = 2;
	for (unsigned k = 0; k < 2; k++)
		memset(gen_keys.keys[k], 0x5a + (int)k, SEAL_KEY_BYTES);
	gen_swim();
	gen_tenant();
	gen_crdt();
	gen_pack();
	gen_admin();
	for (size_t i = 0; i < sizeof(gen_targets) / sizeof(gen_targets[0]);
	     i++)
		printf("gen_corpus: %-14s %u inputs\n", gen_targets[i].name,
		       gen_targets[i].files);
	return 0;
}
