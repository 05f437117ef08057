/*
 * sim_world.c - nodes, virtual network and event loop (see sim_world.h).
 *
 * Each node has at most one live wakeup in the queue, marked by a token:
 * when its deadline moves, a new wakeup is queued and the old one is
 * skipped when it comes up (foca's stale-timer token). The queue therefore
 * also holds stale wakeups, at most one per call into a node.
 */
#include "sim_world.h"

#include "hash_sig.h"
#include "mesh_err.h"
#include "mesh_hash.h"
#include "mesh_rand.h"
#include "sim_alloc.h"
#include "sim_heap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Datagram buffer classes: 64, 128, ..., 2048 bytes (SWIM_DATAGRAM_MAX
 * fits the last). */
#define SIM_POOL_CLASSES 6
#define SIM_POOL_BLOCK (256 * 1024)
/* Frames in one stream exchange; push-pull needs at most three. */
#define SIM_STREAM_FRAMES 16
/* Ticks of one node at one instant before we call it a livelock. */
#define SIM_SAME_INSTANT_LIMIT 10000
/* swim_join() takes at most this many seeds (swim.h). */
#define SIM_JOIN_MAX 64

/* Trace record tags. */
enum {
	SIM_T_DGRAM = 1,
	SIM_T_DROP_DOWN,
	SIM_T_DROP_PART,
	SIM_T_LOST,
	SIM_T_FRAME,
	SIM_T_REFUSED,
	SIM_T_EVENT,
	SIM_T_START,
	SIM_T_CRASH,
};

struct sim_node {
	struct sim_world *w;
	struct swim *swim; /* NULL when stopped or crashed */
	struct sim_alloc alloc;
	struct mesh_env env;
	struct sim_traffic tx;
	uint64_t deadline; /* of the live wakeup; UINT64_MAX: none queued */
	uint64_t last_tick_at;
	uint32_t same_instant;
	uint32_t wake_token;
	uint64_t incarnation;
	uint8_t key[SWIM_KEY_BYTES]; /* see sim__sign */
	uint32_t generation;
	uint8_t group;
	bool slow;
};

struct sim_world {
	struct sim_world_opts o;
	struct swim_config base;
	uint64_t now;
	struct mesh_rand rng; /* the network's randomness */
	uint64_t link_salt, slow_salt;
	struct sim_arena arena;
	struct sim_node *nodes;
	char (*names)[12];
	bool blocked[SIM_MAX_GROUPS][SIM_MAX_GROUPS];
	struct sim_heap heap;
	uint8_t *pool[SIM_POOL_CLASSES];
	uint8_t **blocks;
	size_t nblocks, blocks_cap;
	uint64_t trace;
	struct sim_counters c;
};

/* ---- helpers ----------------------------------------------------------- */

void
sim_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "meshsim: fatal: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

uint64_t
sim_trace_mix(uint64_t h, uint64_t now, uint64_t tag, uint64_t a, uint64_t b,
	      uint64_t c)
{
	h = mesh_mix64(h ^ (now << 8 | tag));
	h = mesh_mix64(h ^ a);
	h = mesh_mix64(h ^ b);
	return mesh_mix64(h ^ c);
}

static void
sim__trace(struct sim_world *w, uint64_t tag, uint64_t a, uint64_t b,
	   uint64_t c)
{
	w->trace = sim_trace_mix(w->trace, w->now, tag, a, b, c);
}

static uint32_t
sim__idx(const struct sim_world *w, const struct sim_node *n)
{
	return (uint32_t)(n - w->nodes);
}

static void
sim__addr(uint32_t i, struct swim_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = 4;
	a->ip[0] = 198;
	a->ip[1] = (uint8_t)(18 + (i >> 16));
	a->ip[2] = (uint8_t)(i >> 8);
	a->ip[3] = (uint8_t)i;
	a->port = SIM_PORT;
}

static uint32_t
sim__addr_index(const struct sim_world *w, const struct swim_addr *a)
{
	if (a->family != 4 || a->port != SIM_PORT || a->ip[0] != 198 ||
	    a->ip[1] < 18 || a->ip[1] > 19)
		return SIM_NONE;
	uint32_t i = (uint32_t)(a->ip[1] - 18) << 16 | (uint32_t)a->ip[2] << 8 |
		     a->ip[3];
	return i < w->o.nodes ? i : SIM_NONE;
}

uint32_t
sim_world_index(const struct sim_world *w, const char *name)
{
	if (name[0] != 'n' || name[1] < '0' || name[1] > '9' ||
	    (name[1] == '0' && name[2] != 0))
		return SIM_NONE;
	uint64_t v = 0;
	for (const char *p = name + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > SIM_MAX_NODES)
			return SIM_NONE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v < w->o.nodes ? (uint32_t)v : SIM_NONE;
}

/* ---- buffers ----------------------------------------------------------- */

static int
sim__pool_class(size_t len)
{
	for (int c = 0; c < SIM_POOL_CLASSES; c++)
		if (len <= (size_t)64 << c)
			return c;
	return -1;
}

static uint8_t *
sim__buf_get(struct sim_world *w, size_t len)
{
	int c = sim__pool_class(len);
	if (c < 0) {
		uint8_t *p = malloc(len);
		if (p == NULL)
			sim_fatal("out of memory for a %zu-byte frame", len);
		return p;
	}
	if (w->pool[c] == NULL) {
		size_t sz = (size_t)64 << c;
		if (w->nblocks == w->blocks_cap) {
			size_t cap = w->blocks_cap ? w->blocks_cap * 2 : 64;
			uint8_t **b = realloc(w->blocks, cap * sizeof(*b));
			if (b == NULL)
				sim_fatal("out of memory for buffers");
			w->blocks = b;
			w->blocks_cap = cap;
		}
		uint8_t *blk = malloc(SIM_POOL_BLOCK);
		if (blk == NULL)
			sim_fatal("out of memory for buffers");
		w->blocks[w->nblocks++] = blk;
		for (size_t off = 0; off + sz <= SIM_POOL_BLOCK; off += sz) {
			memcpy(blk + off, &w->pool[c], sizeof(void *));
			w->pool[c] = blk + off;
		}
	}
	uint8_t *p = w->pool[c];
	memcpy(&w->pool[c], p, sizeof(void *));
	return p;
}

static void
sim__buf_put(struct sim_world *w, uint8_t *p, size_t len)
{
	if (p == NULL)
		return;
	int c = sim__pool_class(len);
	if (c < 0) {
		free(p);
		return;
	}
	memcpy(p, &w->pool[c], sizeof(void *));
	w->pool[c] = p;
}

/* ---- network model ----------------------------------------------------- */

static uint64_t
sim__link_base(const struct sim_world *w, uint32_t a, uint32_t b)
{
	uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
	uint64_t r = mesh_mix64(w->link_salt ^ (lo << 32 | hi));
	return w->o.net.latency_ms +
	       r % ((uint64_t)w->o.net.latency_spread_ms + 1);
}

static uint64_t
sim__slow_lag(const struct sim_world *w, uint64_t r)
{
	uint64_t range =
	    (uint64_t)w->o.net.latency_spread_ms + w->o.net.jitter_ms + 1;
	return (uint64_t)w->o.net.slow_factor *
	       (w->o.net.latency_ms + r % range);
}

/* One-way delay of a datagram or frame from @a to @b sent now. */
static uint64_t
sim__delay(struct sim_world *w, uint32_t a, uint32_t b)
{
	uint64_t d = sim__link_base(w, a, b);
	if (w->o.net.jitter_ms > 0)
		d += mesh_rand_below(&w->rng, w->o.net.jitter_ms + 1);
	if (w->nodes[b].slow)
		d += sim__slow_lag(w, mesh_rand_next(&w->rng));
	return d;
}

static void
sim__push(struct sim_world *w, struct sim_event *ev)
{
	if (sim_heap_push(&w->heap, ev) != 0)
		sim_fatal("out of memory for the event queue (%zu queued)",
			  w->heap.n);
}

static void
sim__schedule(struct sim_world *w, uint32_t i)
{
	struct sim_node *n = &w->nodes[i];
	if (n->swim == NULL)
		return;
	uint64_t d = swim_next_deadline(n->swim);
	if (d == n->deadline)
		return;
	n->deadline = d;
	n->wake_token++;
	uint64_t at = d > w->now ? d : w->now;
	if (n->slow)
		at += sim__slow_lag(
		    w, mesh_mix64(w->slow_salt ^
				  mesh_mix64(d ^ (uint64_t)i << 44)));
	struct sim_event ev = {
	    .at = at, .to = i, .aux = n->wake_token, .kind = SIM_EV_WAKE};
	sim__push(w, &ev);
}

/* Drains node @i's outputs into the network and its events into the trace
 * and the observer. */
static void
sim__flush(struct sim_world *w, uint32_t i)
{
	struct sim_node *n = &w->nodes[i];
	struct swim_output o;
	while (swim_poll_output(n->swim, &o)) {
		uint32_t j = sim__addr_index(w, &o.to);
		if (j == SIM_NONE) {
			w->c.misaddressed++;
			continue;
		}
		if (o.kind == SWIM_OUT_STREAM) {
			n->tx.frames++;
			n->tx.frame_bytes += o.len;
			w->c.streams++;
			uint8_t *buf = sim__buf_get(w, o.len);
			memcpy(buf, o.data, o.len);
			/* Connection set-up (a round trip), then the frame. */
			uint64_t d =
			    sim__delay(w, i, j) + 2 * sim__link_base(w, i, j);
			struct sim_event ev = {.at = w->now + d,
					       .buf = buf,
					       .len = (uint32_t)o.len,
					       .from = i,
					       .to = j,
					       .aux = 0,
					       .kind = SIM_EV_FRAME};
			sim__push(w, &ev);
			continue;
		}
		n->tx.dgrams++;
		n->tx.dgram_bytes += o.len;
		if (w->o.net.loss > 0 &&
		    mesh_rand_unit(&w->rng) < w->o.net.loss) {
			w->c.lost++;
			sim__trace(w, SIM_T_LOST, i, j, o.len);
			continue;
		}
		int copies = 1;
		if (w->o.net.dup > 0 &&
		    mesh_rand_unit(&w->rng) < w->o.net.dup) {
			copies = 2;
			w->c.duplicated++;
		}
		for (int k = 0; k < copies; k++) {
			uint8_t *buf = sim__buf_get(w, o.len);
			memcpy(buf, o.data, o.len);
			struct sim_event ev = {.at =
						   w->now + sim__delay(w, i, j),
					       .buf = buf,
					       .len = (uint32_t)o.len,
					       .from = i,
					       .to = j,
					       .kind = SIM_EV_DATAGRAM};
			sim__push(w, &ev);
		}
	}
	struct swim_event ev;
	while (swim_poll_event(n->swim, &ev)) {
		uint32_t subj = sim_world_index(w, ev.name);
		w->c.events++;
		if (ev.kind == SWIM_EV_SELF_INCARNATION &&
		    ev.incarnation > n->incarnation)
			n->incarnation = ev.incarnation;
		sim__trace(w, SIM_T_EVENT, (uint64_t)i << 32 | subj,
			   mesh_mix64(ev.kind) ^ ev.incarnation,
			   ev.from[0] ? sim_world_index(w, ev.from) : SIM_NONE);
		if (w->o.event_fn != NULL)
			w->o.event_fn(w->o.event_ctx, i, w->now, &ev, subj);
	}
}

/* ---- deliveries -------------------------------------------------------- */

static bool
sim__blocked(const struct sim_world *w, uint32_t a, uint32_t b)
{
	return w->blocked[w->nodes[a].group][w->nodes[b].group];
}

static void
sim__deliver_datagram(struct sim_world *w, const struct sim_event *ev)
{
	struct sim_node *n = &w->nodes[ev->to];
	if (n->swim == NULL) {
		w->c.dropped_down++;
		sim__trace(w, SIM_T_DROP_DOWN, ev->from, ev->to, ev->len);
		return;
	}
	if (sim__blocked(w, ev->from, ev->to)) {
		w->c.dropped_partition++;
		sim__trace(w, SIM_T_DROP_PART, ev->from, ev->to, ev->len);
		return;
	}
	w->c.delivered++;
	sim__trace(w, SIM_T_DGRAM, (uint64_t)ev->from << 32 | ev->to, ev->len,
		   mesh_hash_bytes(ev->buf, ev->len, 0));
	struct swim_addr from;
	sim__addr(ev->from, &from);
	swim_recv_datagram(n->swim, w->now, &from, ev->buf, ev->len);
	sim__flush(w, ev->to);
	sim__schedule(w, ev->to);
}

static void
sim__deliver_frame(struct sim_world *w, const struct sim_event *ev)
{
	uint32_t a = ev->from, b = ev->to;
	if (w->nodes[a].swim == NULL || w->nodes[b].swim == NULL ||
	    sim__blocked(w, a, b) || sim__blocked(w, b, a)) {
		w->c.streams_refused++;
		sim__trace(w, SIM_T_REFUSED, (uint64_t)a << 32 | b, ev->aux,
			   ev->len);
		return;
	}
	w->c.frames++;
	sim__trace(w, SIM_T_FRAME, (uint64_t)a << 32 | b, ev->aux,
		   mesh_hash_bytes(ev->buf, ev->len, 0));
	struct swim_addr from;
	sim__addr(a, &from);
	const uint8_t *reply = NULL;
	size_t reply_len = 0;
	struct sim_node *nb = &w->nodes[b];
	swim_recv_stream(nb->swim, w->now, &from, ev->buf, ev->len, &reply,
			 &reply_len);
	if (reply != NULL && ev->aux + 1 < SIM_STREAM_FRAMES) {
		nb->tx.frames++;
		nb->tx.frame_bytes += reply_len;
		uint8_t *buf = sim__buf_get(w, reply_len ? reply_len : 1);
		memcpy(buf, reply, reply_len);
		struct sim_event r = {.at = w->now + sim__delay(w, b, a),
				      .buf = buf,
				      .len = (uint32_t)reply_len,
				      .from = b,
				      .to = a,
				      .aux = ev->aux + 1,
				      .kind = SIM_EV_FRAME};
		sim__push(w, &r);
	}
	sim__flush(w, b);
	sim__schedule(w, b);
}

static void
sim__wake(struct sim_world *w, const struct sim_event *ev)
{
	struct sim_node *n = &w->nodes[ev->to];
	if (n->swim == NULL || ev->aux != n->wake_token)
		return; /* stale */
	if (n->last_tick_at == w->now) {
		if (++n->same_instant > SIM_SAME_INSTANT_LIMIT)
			sim_fatal("n%u keeps asking for a tick at t=%" PRIu64
				  " ms",
				  ev->to, w->now);
	} else {
		n->last_tick_at = w->now;
		n->same_instant = 0;
	}
	w->c.ticks++;
	n->deadline = UINT64_MAX; /* this wakeup is used up */
	swim_tick(n->swim, w->now);
	sim__flush(w, ev->to);
	sim__schedule(w, ev->to);
}

void
sim_world_run_until(struct sim_world *w, uint64_t t_ms)
{
	struct sim_event ev;
	while (sim_heap_next_at(&w->heap) <= t_ms) {
		sim_heap_pop(&w->heap, &ev);
		w->now = ev.at;
		switch (ev.kind) {
		case SIM_EV_DATAGRAM:
			sim__deliver_datagram(w, &ev);
			sim__buf_put(w, ev.buf, ev.len);
			break;
		case SIM_EV_FRAME:
			sim__deliver_frame(w, &ev);
			sim__buf_put(w, ev.buf, ev.len ? ev.len : 1);
			break;
		case SIM_EV_WAKE:
			sim__wake(w, &ev);
			break;
		}
	}
	if (w->now < t_ms)
		w->now = t_ms;
}

/* ---- identities ------------------------------------------------------- */

/* Signatures are keyed hashes (tests/support/hash_sig.h): the simulator has
 * no attacker and its nodes check N^2 records between them. */
static void
sim__sign(void *ctx, const uint8_t *msg, size_t len,
	  uint8_t sig[SWIM_SIG_BYTES])
{
	const struct sim_node *n = ctx;
	hash_sig(n->key, msg, len, sig);
}

/* ---- nodes ------------------------------------------------------------- */

static void
sim__log(void *ctx, enum mesh_log_level level, const char *line)
{
	struct sim_node *n = ctx;
	uint64_t t = n->w->now;
	fprintf(stderr, "%6" PRIu64 ".%03u n%u %s: %s\n", t / 1000,
		(unsigned)(t % 1000), sim__idx(n->w, n),
		mesh_log_level_name(level), line);
}

int
sim_world_new(const struct sim_world_opts *opts, struct sim_world **out)
{
	if (opts->nodes == 0 || opts->nodes > SIM_MAX_NODES ||
	    !(opts->net.loss >= 0 && opts->net.loss <= 1) ||
	    !(opts->net.dup >= 0 && opts->net.dup <= 1))
		return MESH_EINVAL;
	struct sim_world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return MESH_ENOMEM;
	w->o = *opts;
	if (opts->base != NULL)
		w->base = *opts->base;
	else
		swim_config_default(&w->base);
	w->o.base = NULL;
	mesh_rand_seed(&w->rng, mesh_mix64(opts->seed ^ 0x6e6574776f726bULL));
	w->link_salt = mesh_mix64(opts->seed ^ 0x6c696e6bULL);
	w->slow_salt = mesh_mix64(opts->seed ^ 0x736c6f77ULL);
	w->nodes = calloc(opts->nodes, sizeof(*w->nodes));
	w->names = calloc(opts->nodes, sizeof(*w->names));
	if (w->nodes == NULL || w->names == NULL) {
		sim_world_free(w);
		return MESH_ENOMEM;
	}
	/* Without the arena every block comes from malloc: slower, bigger,
	 * still correct. */
	(void)sim_arena_init(&w->arena);
	for (uint32_t i = 0; i < opts->nodes; i++) {
		struct sim_node *n = &w->nodes[i];
		snprintf(w->names[i], sizeof(w->names[i]), "n%u", i);
		n->w = w;
		hash_sig_key(w->names[i], n->key);
		n->deadline = UINT64_MAX;
		sim_alloc_init(&n->alloc, &w->arena);
		n->env.alloc = &n->alloc.base;
		n->env.log_fn = sim__log;
		n->env.log_ctx = n;
		n->env.log_level = opts->log_level;
	}
	*out = w;
	return 0;
}

void
sim_world_free(struct sim_world *w)
{
	if (w == NULL)
		return;
	struct sim_event ev;
	while (sim_heap_pop(&w->heap, &ev))
		if (ev.kind != SIM_EV_WAKE && ev.buf != NULL &&
		    sim__pool_class(ev.len ? ev.len : 1) < 0)
			free(ev.buf);
	sim_heap_destroy(&w->heap);
	if (w->nodes != NULL)
		for (uint32_t i = 0; i < w->o.nodes; i++)
			swim_free(w->nodes[i].swim);
	for (size_t i = 0; i < w->nblocks; i++)
		free(w->blocks[i]);
	free(w->blocks);
	sim_arena_destroy(&w->arena);
	free(w->nodes);
	free(w->names);
	free(w);
}

int
sim_world_start(struct sim_world *w, uint32_t i, uint64_t incarnation)
{
	struct sim_node *n = &w->nodes[i];
	if (n->swim != NULL)
		return MESH_ESTATE;
	struct swim_config cfg = w->base;
	snprintf(cfg.name, sizeof(cfg.name), "%s", w->names[i]);
	sim__addr(i, &cfg.addr);
	cfg.incarnation = incarnation;
	memcpy(cfg.key, n->key, SWIM_KEY_BYTES);
	cfg.crypto.sign = sim__sign;
	cfg.crypto.verify = hash_sig_verify;
	cfg.crypto.ctx = n;
	cfg.seed = mesh_mix64(
	    w->o.seed ^ mesh_mix64((uint64_t)n->generation << 32 | (i + 1)));
	int rc = swim_new(&cfg, &n->env, w->now, &n->swim);
	if (rc != 0)
		return rc;
	n->incarnation = incarnation;
	n->deadline = UINT64_MAX;
	sim__trace(w, SIM_T_START, i, incarnation, n->generation);
	sim__schedule(w, i);
	return 0;
}

int
sim_world_add_all_known(struct sim_world *w)
{
	for (uint32_t i = 0; i < w->o.nodes; i++) {
		struct sim_node *n = &w->nodes[i];
		if (n->swim == NULL)
			continue;
		for (uint32_t j = 0; j < w->o.nodes; j++) {
			if (j == i || w->nodes[j].swim == NULL)
				continue;
			struct swim_addr a;
			sim__addr(j, &a);
			uint8_t rec[SWIM_RECORD_MAX], sig[SWIM_SIG_BYTES];
			size_t len = swim_record_bytes(w->names[j],
						       w->nodes[j].incarnation,
						       false, &a, NULL, rec);
			hash_sig(w->nodes[j].key, rec, len, sig);
			int rc = swim_add_known(n->swim, w->now, w->names[j],
						&a, w->nodes[j].incarnation,
						NULL, w->nodes[j].key, sig);
			if (rc != 0)
				return rc;
		}
		sim__flush(w, i);
		n->deadline = UINT64_MAX;
		sim__schedule(w, i);
	}
	return 0;
}

int
sim_world_join(struct sim_world *w, uint32_t i, const uint32_t *seeds, size_t n)
{
	struct sim_node *node = &w->nodes[i];
	if (node->swim == NULL)
		return MESH_ESTATE;
	struct swim_addr addrs[SIM_JOIN_MAX];
	if (n == 0 || n > SIM_JOIN_MAX)
		return MESH_EINVAL;
	for (size_t k = 0; k < n; k++)
		sim__addr(seeds[k], &addrs[k]);
	int rc = swim_join(node->swim, w->now, addrs, n);
	sim__flush(w, i);
	sim__schedule(w, i);
	return rc;
}

void
sim_world_crash(struct sim_world *w, uint32_t i)
{
	struct sim_node *n = &w->nodes[i];
	if (n->swim == NULL)
		return;
	sim__trace(w, SIM_T_CRASH, i, n->incarnation, n->generation);
	swim_free(n->swim);
	n->swim = NULL;
	n->wake_token++;
	n->deadline = UINT64_MAX;
}

int
sim_world_restart(struct sim_world *w, uint32_t i, const uint32_t *seeds,
		  size_t n)
{
	struct sim_node *node = &w->nodes[i];
	sim_world_crash(w, i);
	node->generation++;
	int rc = sim_world_start(w, i, node->incarnation + 1);
	if (rc != 0)
		return rc;
	return sim_world_join(w, i, seeds, n);
}

void
sim_world_set_group(struct sim_world *w, uint32_t i, unsigned g)
{
	w->nodes[i].group = (uint8_t)(g % SIM_MAX_GROUPS);
}

void
sim_world_block(struct sim_world *w, unsigned gf, unsigned gt, bool blocked)
{
	w->blocked[gf % SIM_MAX_GROUPS][gt % SIM_MAX_GROUPS] = blocked;
}

void
sim_world_set_slow(struct sim_world *w, uint32_t i, bool slow)
{
	w->nodes[i].slow = slow;
	/* Re-place the wakeup with (or without) the lag. */
	w->nodes[i].deadline = UINT64_MAX;
	sim__schedule(w, i);
}

/* ---- views ------------------------------------------------------------- */

uint64_t
sim_world_now(const struct sim_world *w)
{
	return w->now;
}

uint32_t
sim_world_size(const struct sim_world *w)
{
	return w->o.nodes;
}

struct swim *
sim_world_swim(struct sim_world *w, uint32_t i)
{
	return w->nodes[i].swim;
}

bool
sim_world_is_up(const struct sim_world *w, uint32_t i)
{
	return w->nodes[i].swim != NULL;
}

const char *
sim_world_name(const struct sim_world *w, uint32_t i)
{
	return w->names[i];
}

uint64_t
sim_world_incarnation(const struct sim_world *w, uint32_t i)
{
	return w->nodes[i].incarnation;
}

const struct sim_traffic *
sim_world_traffic(const struct sim_world *w, uint32_t i)
{
	return &w->nodes[i].tx;
}

uint64_t
sim_world_live_bytes(const struct sim_world *w, uint32_t i)
{
	return w->nodes[i].alloc.live_bytes;
}

uint64_t
sim_world_trace(const struct sim_world *w)
{
	return w->trace;
}

const struct sim_counters *
sim_world_counters(const struct sim_world *w)
{
	return &w->c;
}

size_t
sim_world_queue_peak(const struct sim_world *w)
{
	return w->heap.peak;
}
