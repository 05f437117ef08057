/*
 * sim_tenants.c - the `tenants` scenario of meshsim (see sim_tenants.h).
 *
 * What runs for real: struct tenant (agent/core/tenant.c) on every node,
 * with its own allocator (sim_alloc.h, so the heap of each core is
 * counted) and its own mem_kv. Frames are the bytes tenant_poll_output()
 * hands out, fed unchanged to tenant_recv(); answers come from
 * tenant_poll_reply(). Capabilities are real Ed25519 signatures
 * (libsodium), made from keys derived from the seed so that runs repeat.
 *
 * What is modelled:
 *
 * - Membership is an oracle, not SWIM. Running SWIM as well would cost
 *   N^2 member records and make every view change a product of gossip;
 *   here the view is an input. One shared ring (ring_new over every node,
 *   alive = in the oracle's view) is rebuilt whenever the oracle's view
 *   changes: detect_ms (3 s, what meshd measures for a crash) after a
 *   crash or a cut, rejoin_ms (1 s) after a restart or the heal. Each node
 *   gets the new ring after a further uniform spread (view_spread_ms,
 *   about what SWIM's dissemination takes), so for a moment nodes place
 *   tenants differently, as in a real mesh. During a partition the
 *   minority keeps the view it had (stale) and ignores new ones, while
 *   the majority drops the minority after detect_ms: writes land on both
 *   sides, and the heal makes the minority hand its copies back.
 *
 * - Streams. Tenant frames travel on TCP streams, reliable and ordered
 *   per pair: a frame arrives after the pair's base latency plus jitter,
 *   never before the previous frame of the same stream. A stream is
 *   opened on first use (one round trip before the first frame). It
 *   breaks when a frame arrives at a crashed or restarted node or across
 *   a cut: that frame and every later one of that stream are dropped,
 *   and the next frame opens a new stream, which fails (the frame is
 *   dropped) while the peer is down or cut off. Packet loss does not lose
 *   frames, it delays them: each of a frame's segments is retransmitted
 *   after rto_ms, doubling, while it keeps being lost (TCP's
 *   retransmission), and the frames behind it wait (head-of-line).
 *
 * - Crashes: tenant_free() (pending requests die unanswered); the node's
 *   mem_kv is its disk and survives. A restart is tenant_new() on the same
 *   mem_kv with the same node identity and a fresh PRNG seed.
 *
 * Events run from one queue (sim_heap.h) in (time, scheduling order);
 * the network and the scenario draw from their own PRNGs, each core from
 * mix(seed, node, life), so a seed replays the run exactly.
 */
#include "sim_tenants.h"

#include "mem_kv.h"
#include "mesh_err.h"
#include "mesh_hash.h"
#include "mesh_rand.h"
#include "ring.h"
#include "sim_alloc.h"
#include "sim_heap.h"
#include "sim_world.h"
#include "tenant.h"
#include "tenant_cap.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define SIMT_NONE UINT32_MAX
/* Ticks of one node at one instant before we call it a livelock. */
#define SIMT_SAME_INSTANT_LIMIT 10000
/* Segments of one frame whose loss is drawn (a 1 MiB frame has ~700;
 * beyond 64 the slowest one hardly changes). */
#define SIMT_SEGMENTS_MAX 64
#define SIMT_MSS 1448
/* Capability expiry is checked against now + this (a fixed "wall
 * clock" in 2023, so capabilities never expire in a run). */
#define SIMT_WALL_OFFSET_MS 1700000000000LL
/* Creates are retried this long before the run gives up. */
#define SIMT_CREATE_MAX_MS 60000
/* A run whose replicas have not changed for this long while views were
 * final is stuck: waiting more would not help. */
#define SIMT_STUCK_MS 20000
/* Request ids with this bit are read-back checks, not workload. */
#define SIMT_READ_BIT (1ull << 63)

enum simt__ev {
	SIMT_EV_FRAME = 1, /* buf: struct simt__frame */
	SIMT_EV_WAKE,	   /* tick `to` if aux is its token */
	SIMT_EV_VIEW,	   /* give node `to` view aux */
	SIMT_EV_OP,	   /* submit op aux */
	SIMT_EV_CRASH,	   /* crash node `to` */
	SIMT_EV_RESTART,   /* restart node `to` */
	SIMT_EV_DROP,	   /* oracle: `to` is dead (detect_ms after a crash) */
	SIMT_EV_ADD,	   /* oracle: `to` is back (rejoin_ms after restart) */
	SIMT_EV_CUT,	   /* partition starts */
	SIMT_EV_SIDE_DROP, /* oracle: the majority drops the minority */
	SIMT_EV_HEAL,	   /* partition ends */
	SIMT_EV_SIDE_ADD,  /* oracle: the minority is back */
};

/* Trace record tags. */
enum {
	SIMT_T_FRAME = 1,
	SIMT_T_BROKEN,
	SIMT_T_REFUSED,
	SIMT_T_REPLY,
	SIMT_T_VIEW,
	SIMT_T_SET_VIEW,
	SIMT_T_CRASH,
	SIMT_T_START,
	SIMT_T_SUBMIT,
	SIMT_T_CUT,
	SIMT_T_HEAL,
};

enum simt__kind {
	SIMT_CREATE,
	SIMT_PUT,
	SIMT_INC,
	SIMT_ADD,
};

enum simt__state {
	SIMT_PLANNED,
	SIMT_SUBMITTED,
	SIMT_ANSWERED,
	SIMT_REFUSED, /* tenant_submit said MESH_EFULL: no answer comes */
};

struct simt__frame {
	uint64_t conn;
	size_t len;
	uint8_t data[];
};

/* One direction of a stream between two nodes. */
struct simt__link {
	uint64_t key; /* from << 32 | to; 0 with !used */
	uint64_t conn;
	uint64_t last_at; /* arrival of the last frame sent on it */
	uint32_t gen_from, gen_to;
	bool used, up;
};

struct simt__view {
	struct ring *ring; /* NULL once freed */
	uint32_t refs;	   /* nodes using it + queued deliveries */
};

struct simt__op {
	uint64_t at;
	uint32_t tenant;
	uint32_t node; /* where it was submitted */
	uint8_t kind;  /* enum simt__kind */
	uint8_t ack;   /* enum tenant_ack */
	uint8_t state; /* enum simt__state */
	uint8_t attempt;
	uint8_t n; /* INC amount */
	uint8_t nacked;
	uint8_t present; /* final replicas where a read found it */
	int rc;
	uint32_t acked_by[RING_REPLICAS_MAX];
};

struct simt__world;

struct simt__node {
	struct simt__world *w;
	struct tenant *t; /* NULL when down */
	struct mem_kv kv; /* the node's disk: survives crashes */
	struct sim_alloc alloc;
	struct mesh_env env;
	uint32_t gen;  /* lives so far (crashes) */
	uint32_t view; /* index into views, SIMT_NONE */
	uint64_t deadline;
	uint32_t wake_token;
	uint64_t last_tick_at;
	uint32_t same_instant;
	bool side;    /* in the minority of the partition */
	bool victim;  /* crashes during the writes */
	bool revives; /* and comes back */
};

/* A read-back in progress (the answer of a local GET comes at once). */
struct simt__read {
	uint64_t id;
	bool got;
	int rc;
	int64_t counter;
	size_t nvalues;
	uint32_t tenant;
	uint64_t want; /* PUT: the op index whose value we look for */
	bool match;
};

struct simt__world {
	const struct simt_opts *o;
	struct simt_result *r;
	uint64_t now;
	struct sim_heap heap;
	struct mesh_rand net_rng; /* latency, jitter, loss */
	struct mesh_rand rng;	  /* the scenario */
	uint64_t link_salt;
	struct sim_arena arena;
	struct mesh_env env; /* rings */
	uint32_t n;
	struct simt__node *nodes;
	char (*names)[12];
	struct ring_member *members;
	bool *in_view; /* the oracle's (majority's) view */
	struct simt__view *views;
	size_t nviews, capviews;
	uint32_t cur;	   /* the majority's latest view */
	uint32_t stale;	   /* the minority's view during a partition */
	uint64_t oracle_q; /* oracle and view events queued */
	bool cut;
	struct simt__link *links;
	size_t nlinks, caplinks;
	uint64_t next_conn;
	/* Tenants: id, public key, a read-write capability. */
	char (*tid)[16];
	uint8_t (*pk)[TENANT_PUBKEY_BYTES];
	uint8_t (*cap)[TENANT_CAP_MAX];
	size_t *cap_len;
	struct simt__op *ops; /* creates [0, tenants), then writes */
	size_t nops;
	struct simt__read *reading;
	uint64_t read_seq;
	uint64_t trace;
	struct tenant_stats dead_stats; /* of lives that ended */
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t
simt__wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
simt__trace(struct simt__world *w, uint64_t tag, uint64_t a, uint64_t b,
	    uint64_t c)
{
	w->trace = sim_trace_mix(w->trace, w->now, tag, a, b, c);
}

static void
simt__push(struct simt__world *w, uint64_t at, uint8_t kind, uint32_t to,
	   uint32_t aux, void *buf)
{
	struct sim_event ev = {
	    .at = at, .buf = buf, .to = to, .aux = aux, .kind = kind};
	if (sim_heap_push(&w->heap, &ev) != 0)
		sim_fatal("out of memory for the event queue (%zu queued)",
			  w->heap.n);
	if (kind == SIMT_EV_VIEW || kind == SIMT_EV_DROP ||
	    kind == SIMT_EV_ADD || kind == SIMT_EV_SIDE_DROP ||
	    kind == SIMT_EV_SIDE_ADD)
		w->oracle_q++;
}

/* "n<i>" -> i, SIMT_NONE when not one of ours. */
static uint32_t
simt__index(const struct simt__world *w, const char *name)
{
	if (name == NULL || name[0] != 'n' || name[1] < '0' || name[1] > '9' ||
	    (name[1] == '0' && name[2] != 0))
		return SIMT_NONE;
	uint64_t v = 0;
	for (const char *p = name + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > SIM_MAX_NODES)
			return SIMT_NONE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v < w->n ? (uint32_t)v : SIMT_NONE;
}

static void
simt__stats_add(struct tenant_stats *sum, const struct tenant_stats *s)
{
	sum->deltas_sent += s->deltas_sent;
	sum->deltas_applied += s->deltas_applied;
	sum->ae_pulls_sent += s->ae_pulls_sent;
	sum->ae_pulls_served += s->ae_pulls_served;
	sum->handoffs_done += s->handoffs_done;
	sum->timeouts += s->timeouts;
	sum->denied += s->denied;
	sum->store_errors += s->store_errors;
	sum->drop_output += s->drop_output;
	sum->drop_decode += s->drop_decode;
	sum->drop_bad_delta += s->drop_bad_delta;
}

/* ---- streams ------------------------------------------------------------ */

static struct simt__link *
simt__link(struct simt__world *w, uint32_t from, uint32_t to)
{
	if ((w->nlinks + 1) * 2 > w->caplinks) {
		size_t cap = w->caplinks ? w->caplinks * 2 : 4096;
		struct simt__link *v = calloc(cap, sizeof(*v));
		if (v == NULL)
			sim_fatal("out of memory for %zu streams", cap);
		for (size_t i = 0; i < w->caplinks; i++) {
			if (!w->links[i].used)
				continue;
			size_t j = mesh_mix64(w->links[i].key) & (cap - 1);
			while (v[j].used)
				j = (j + 1) & (cap - 1);
			v[j] = w->links[i];
		}
		free(w->links);
		w->links = v;
		w->caplinks = cap;
	}
	uint64_t key = (uint64_t)from << 32 | to;
	size_t j = mesh_mix64(key) & (w->caplinks - 1);
	while (w->links[j].used && w->links[j].key != key)
		j = (j + 1) & (w->caplinks - 1);
	if (!w->links[j].used) {
		memset(&w->links[j], 0, sizeof(w->links[j]));
		w->links[j].used = true;
		w->links[j].key = key;
		w->nlinks++;
	}
	return &w->links[j];
}

static uint64_t
simt__link_base(const struct simt__world *w, uint32_t a, uint32_t b)
{
	uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
	uint64_t r = mesh_mix64(w->link_salt ^ (lo << 32 | hi));
	return w->o->latency_ms + r % ((uint64_t)w->o->latency_spread_ms + 1);
}

static bool
simt__blocked(const struct simt__world *w, uint32_t a, uint32_t b)
{
	return w->cut && w->nodes[a].side != w->nodes[b].side;
}

/* One-way time of a frame of @len bytes: latency, jitter, and for every
 * segment that loss hits, TCP's retransmission timeouts (the slowest
 * segment decides). */
static uint64_t
simt__delay(struct simt__world *w, uint32_t a, uint32_t b, size_t len)
{
	uint64_t d = simt__link_base(w, a, b);
	if (w->o->jitter_ms > 0)
		d += mesh_rand_below(&w->net_rng, w->o->jitter_ms + 1);
	if (w->o->loss > 0) {
		size_t segs = (len + SIMT_MSS - 1) / SIMT_MSS;
		if (segs > SIMT_SEGMENTS_MAX)
			segs = SIMT_SEGMENTS_MAX;
		uint64_t worst = 0;
		for (size_t s = 0; s < segs; s++) {
			uint64_t rto = w->o->rto_ms, extra = 0;
			while (mesh_rand_unit(&w->net_rng) < w->o->loss &&
			       extra < 120000) {
				extra += rto;
				rto *= 2;
			}
			if (extra > worst)
				worst = extra;
		}
		d += worst;
	}
	return d;
}

static void
simt__send(struct simt__world *w, uint32_t i, const struct tenant_output *o)
{
	struct simt_result *r = w->r;
	r->frames++;
	r->frame_bytes += o->len;
	uint32_t j = simt__index(w, o->to);
	if (j == SIMT_NONE || j == i) {
		r->misaddressed++;
		return;
	}
	struct simt__node *a = &w->nodes[i], *b = &w->nodes[j];
	struct simt__link *l = simt__link(w, i, j);
	uint64_t setup = 0;
	if (!l->up || l->gen_from != a->gen || l->gen_to != b->gen) {
		if (b->t == NULL || simt__blocked(w, i, j)) {
			r->refused++;
			simt__trace(w, SIMT_T_REFUSED, (uint64_t)i << 32 | j,
				    o->len, 0);
			return;
		}
		/* A new connection: one round trip before the data. */
		l->up = true;
		l->conn = ++w->next_conn;
		l->gen_from = a->gen;
		l->gen_to = b->gen;
		setup = 2 * simt__link_base(w, i, j);
		r->connects++;
	}
	uint64_t at = w->now + setup + simt__delay(w, i, j, o->len);
	if (at < l->last_at)
		at = l->last_at; /* in order behind the previous frame */
	l->last_at = at;
	struct simt__frame *f = malloc(sizeof(*f) + (o->len ? o->len : 1));
	if (f == NULL)
		sim_fatal("out of memory for a %zu-byte frame", o->len);
	f->conn = l->conn;
	f->len = o->len;
	memcpy(f->data, o->data, o->len);
	struct sim_event ev = {.at = at,
			       .buf = (uint8_t *)f,
			       .from = i,
			       .to = j,
			       .kind = SIMT_EV_FRAME};
	if (sim_heap_push(&w->heap, &ev) != 0)
		sim_fatal("out of memory for the event queue");
}

/* ---- nodes -------------------------------------------------------------- */

static void simt__on_reply(struct simt__world *w, uint32_t i,
			   const struct tenant_reply *rp);

static void
simt__schedule(struct simt__world *w, uint32_t i)
{
	struct simt__node *nd = &w->nodes[i];
	if (nd->t == NULL)
		return;
	uint64_t d = tenant_next_deadline(nd->t);
	if (d == nd->deadline)
		return;
	nd->deadline = d;
	nd->wake_token++;
	simt__push(w, d > w->now ? d : w->now, SIMT_EV_WAKE, i, nd->wake_token,
		   NULL);
}

/* Moves node @i's frames into the network and its answers to the
 * workload, then queues its next wakeup. */
static void
simt__drain(struct simt__world *w, uint32_t i)
{
	struct simt__node *nd = &w->nodes[i];
	if (nd->t == NULL)
		return;
	struct tenant_output o;
	while (tenant_poll_output(nd->t, &o))
		simt__send(w, i, &o);
	struct tenant_reply rp;
	while (tenant_poll_reply(nd->t, &rp))
		simt__on_reply(w, i, &rp);
	simt__schedule(w, i);
}

static void
simt__log(void *ctx, enum mesh_log_level level, const char *line)
{
	struct simt__node *nd = ctx;
	uint64_t t = nd->w->now;
	fprintf(stderr, "%6" PRIu64 ".%03u n%u %s: %s\n", t / 1000,
		(unsigned)(t % 1000), (unsigned)(nd - nd->w->nodes),
		mesh_log_level_name(level), line);
}

static bool
simt__verify(void *ctx, const uint8_t *pub, const uint8_t *msg, size_t len,
	     const uint8_t *sig)
{
	(void)ctx;
	return crypto_sign_verify_detached(sig, msg, len, pub) == 0;
}

static void
simt__view_unref(struct simt__world *w, uint32_t v)
{
	if (v == SIMT_NONE)
		return;
	struct simt__view *vw = &w->views[v];
	if (vw->refs > 0)
		vw->refs--;
	if (vw->refs == 0 && v != w->cur && v != w->stale) {
		ring_free(vw->ring);
		vw->ring = NULL;
	}
}

static void
simt__set_view(struct simt__world *w, uint32_t i, uint32_t v)
{
	struct simt__node *nd = &w->nodes[i];
	if (nd->t == NULL || v == nd->view)
		return;
	uint32_t old = nd->view;
	w->views[v].refs++;
	nd->view = v;
	tenant_set_view(nd->t, w->now, w->views[v].ring, NULL);
	simt__trace(w, SIMT_T_SET_VIEW, i, v, 0);
	simt__view_unref(w, old);
	simt__drain(w, i);
}

static int
simt__start(struct simt__world *w, uint32_t i)
{
	struct simt__node *nd = &w->nodes[i];
	struct tenant_config cfg;
	tenant_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", w->names[i]);
	/* The node's identity: the same in every life, as meshd's is. */
	cfg.replica_id = (uint64_t)i + 1;
	cfg.seed =
	    mesh_mix64(w->o->seed ^ mesh_mix64((uint64_t)nd->gen << 32 | i));
	cfg.replicas = w->o->replicas;
	if (w->o->anti_entropy_ms > 0)
		cfg.anti_entropy_ms = w->o->anti_entropy_ms;
	if (w->o->request_timeout_ms > 0)
		cfg.request_timeout_ms = w->o->request_timeout_ms;
	cfg.wall_offset_ms = SIMT_WALL_OFFSET_MS;
	cfg.verify = simt__verify;
	mem_kv_bind(&nd->kv, &cfg.kv);
	int rc = tenant_new(&cfg, &nd->env, w->now, &nd->t);
	if (rc != 0)
		return rc;
	nd->deadline = UINT64_MAX;
	nd->view = SIMT_NONE;
	simt__trace(w, SIMT_T_START, i, nd->gen, 0);
	/* A starting node learns the view of its side from its seeds at
	 * once; the others take it back rejoin_ms later. */
	simt__set_view(w, i, w->cut && nd->side ? w->stale : w->cur);
	simt__drain(w, i);
	return 0;
}

static void
simt__crash(struct simt__world *w, uint32_t i)
{
	struct simt__node *nd = &w->nodes[i];
	if (nd->t == NULL)
		return;
	simt__stats_add(&w->dead_stats, tenant_stats(nd->t));
	tenant_free(nd->t);
	nd->t = NULL;
	nd->gen++;
	nd->wake_token++;
	nd->deadline = UINT64_MAX;
	simt__view_unref(w, nd->view);
	nd->view = SIMT_NONE;
	simt__trace(w, SIMT_T_CRASH, i, nd->gen, 0);
}

/* ---- the oracle --------------------------------------------------------- */

/* Builds a ring from the oracle's view and sends it to every node of the
 * majority, each after its own spread. */
static int
simt__rebuild(struct simt__world *w)
{
	for (uint32_t i = 0; i < w->n; i++)
		w->members[i].alive = w->in_view[i];
	struct ring *ring = NULL;
	int rc = ring_new(&w->env, NULL, w->members, w->n, &ring);
	if (rc != 0)
		return rc;
	if (w->nviews == w->capviews) {
		size_t cap = w->capviews ? w->capviews * 2 : 64;
		struct simt__view *v = realloc(w->views, cap * sizeof(*v));
		if (v == NULL) {
			ring_free(ring);
			return MESH_ENOMEM;
		}
		w->views = v;
		w->capviews = cap;
	}
	uint32_t v = (uint32_t)w->nviews++;
	w->views[v] = (struct simt__view){ring, 0};
	uint32_t old = w->cur;
	w->cur = v;
	w->r->views++;
	simt__trace(w, SIMT_T_VIEW, v, ring_digest(ring), 0);
	if (old != SIMT_NONE && w->views[old].refs == 0 && old != w->stale) {
		ring_free(w->views[old].ring);
		w->views[old].ring = NULL;
	}
	for (uint32_t i = 0; i < w->n; i++) {
		struct simt__node *nd = &w->nodes[i];
		if (nd->t == NULL || (w->cut && nd->side))
			continue;
		uint64_t d =
		    w->o->view_spread_ms
			? mesh_rand_below(&w->rng,
					  (uint32_t)w->o->view_spread_ms + 1)
			: 0;
		w->views[v].refs++;
		simt__push(w, w->now + d, SIMT_EV_VIEW, i, v, NULL);
	}
	return 0;
}

/* ---- the workload ------------------------------------------------------- */

static uint32_t
simt__live_node(struct simt__world *w)
{
	for (;;) {
		uint32_t i = mesh_rand_below(&w->rng, w->n);
		if (w->nodes[i].t != NULL)
			return i;
	}
}

static void
simt__submit(struct simt__world *w, size_t k)
{
	struct simt__op *op = &w->ops[k];
	uint32_t i = simt__live_node(w);
	struct simt__node *nd = &w->nodes[i];
	char key[32], val[32];
	struct tenant_request rq = {0};
	rq.id = (uint64_t)op->attempt << 32 | (uint64_t)(k + 1);
	rq.tenant = w->tid[op->tenant];
	rq.cap = w->cap[op->tenant];
	rq.cap_len = w->cap_len[op->tenant];
	rq.ack = (enum tenant_ack)op->ack;
	switch (op->kind) {
	case SIMT_CREATE:
		rq.op = TENANT_OP_CREATE;
		rq.tenant_key = w->pk[op->tenant];
		break;
	case SIMT_PUT:
		rq.op = TENANT_OP_PUT;
		snprintf(key, sizeof(key), "k%zu", k);
		snprintf(val, sizeof(val), "v%zu", k);
		break;
	case SIMT_INC:
		rq.op = TENANT_OP_INC;
		snprintf(key, sizeof(key), "ctr");
		rq.n = op->n;
		break;
	default:
		rq.op = TENANT_OP_ADD;
		snprintf(key, sizeof(key), "set");
		snprintf(val, sizeof(val), "e%zu", k);
		break;
	}
	if (op->kind != SIMT_CREATE) {
		rq.key = (const uint8_t *)key;
		rq.key_len = strlen(key);
	}
	if (op->kind == SIMT_PUT || op->kind == SIMT_ADD) {
		rq.value = (const uint8_t *)val;
		rq.value_len = strlen(val);
		rq.has_value = true;
	}
	op->node = i;
	op->state = SIMT_SUBMITTED;
	simt__trace(w, SIMT_T_SUBMIT, rq.id, i, 0);
	int rc = tenant_submit(nd->t, w->now, &rq);
	if (rc != 0) {
		op->state = SIMT_REFUSED;
		op->rc = rc;
	}
	simt__drain(w, i);
}

static void
simt__on_reply(struct simt__world *w, uint32_t i, const struct tenant_reply *rp)
{
	simt__trace(w, SIMT_T_REPLY, rp->id, (uint64_t)(uint32_t)rp->rc,
		    (uint64_t)i << 32 | rp->acks);
	if (rp->id & SIMT_READ_BIT) {
		struct simt__read *rd = w->reading;
		if (rd == NULL || rd->id != rp->id)
			return;
		rd->got = true;
		rd->rc = rp->rc;
		rd->counter = rp->counter;
		rd->nvalues = rp->nvalues;
		for (size_t k = 0; k < rp->nvalues; k++) {
			const struct tenant_bytes *b = &rp->values[k];
			char s[32];
			if (b->len == 0 || b->len >= sizeof(s))
				continue;
			memcpy(s, b->data, b->len);
			s[b->len] = 0;
			char *end;
			unsigned long long x = strtoull(s + 1, &end, 10);
			if (*end != 0 || x >= w->nops)
				continue;
			if (s[0] == 'v' && x == rd->want)
				rd->match = true;
			/* Set elements: every one found counts for its add. */
			if (s[0] == 'e' && rd->want == UINT64_MAX &&
			    w->ops[x].kind == SIMT_ADD &&
			    w->ops[x].tenant == rd->tenant)
				w->ops[x].present++;
		}
		return;
	}
	uint64_t k = (rp->id & 0xffffffffu) - 1;
	if (k >= w->nops)
		return;
	struct simt__op *op = &w->ops[k];
	if (op->attempt != rp->id >> 32 || op->state != SIMT_SUBMITTED)
		return;
	op->state = SIMT_ANSWERED;
	op->rc = rp->rc;
	op->nacked = 0;
	for (unsigned a = 0; a < rp->acks && a < RING_REPLICAS_MAX; a++) {
		uint32_t x = simt__index(w, rp->acked_by[a]);
		if (x != SIMT_NONE)
			op->acked_by[op->nacked++] = x;
	}
	if (op->kind == SIMT_CREATE && op->rc == MESH_EEXIST)
		op->rc = 0; /* an earlier attempt made it */
	if (op->kind == SIMT_CREATE && op->rc != 0) {
		/* Try again elsewhere in a moment. */
		op->attempt++;
		op->state = SIMT_PLANNED;
		w->r->create_retries++;
		simt__push(w, w->now + 500, SIMT_EV_OP, 0, (uint32_t)k, NULL);
	}
}

/* ---- the event loop ----------------------------------------------------- */

static void
simt__deliver(struct simt__world *w, const struct sim_event *ev)
{
	struct simt__frame *f = (struct simt__frame *)ev->buf;
	uint32_t a = ev->from, b = ev->to;
	struct simt__link *l = simt__link(w, a, b);
	struct simt__node *nb = &w->nodes[b];
	if (!l->up || l->conn != f->conn) {
		w->r->dropped_broken++;
		simt__trace(w, SIMT_T_BROKEN, (uint64_t)a << 32 | b, f->len, 0);
		return;
	}
	if (nb->t == NULL || nb->gen != l->gen_to ||
	    w->nodes[a].gen != l->gen_from || simt__blocked(w, a, b)) {
		l->up = false; /* reset: this frame and the rest are gone */
		w->r->dropped_broken++;
		simt__trace(w, SIMT_T_BROKEN, (uint64_t)a << 32 | b, f->len, 1);
		return;
	}
	w->r->delivered++;
	simt__trace(w, SIMT_T_FRAME, (uint64_t)a << 32 | b, f->len,
		    mesh_hash_bytes(f->data, f->len, 0));
	tenant_recv(nb->t, w->now, f->data, f->len);
	simt__drain(w, b);
}

static void
simt__wake(struct simt__world *w, const struct sim_event *ev)
{
	struct simt__node *nd = &w->nodes[ev->to];
	if (nd->t == NULL || ev->aux != nd->wake_token)
		return; /* stale */
	if (nd->last_tick_at == w->now) {
		if (++nd->same_instant > SIMT_SAME_INSTANT_LIMIT)
			sim_fatal("n%u keeps asking for a tick at t=%" PRIu64
				  " ms",
				  ev->to, w->now);
	} else {
		nd->last_tick_at = w->now;
		nd->same_instant = 0;
	}
	nd->deadline = UINT64_MAX;
	tenant_tick(nd->t, w->now);
	simt__drain(w, ev->to);
}

static int
simt__event(struct simt__world *w, const struct sim_event *ev)
{
	struct simt__node *nd = &w->nodes[ev->to];
	int rc = 0;
	switch (ev->kind) {
	case SIMT_EV_FRAME:
		simt__deliver(w, ev);
		free(ev->buf);
		break;
	case SIMT_EV_WAKE:
		simt__wake(w, ev);
		break;
	case SIMT_EV_VIEW:
		w->oracle_q--;
		/* The minority hears nothing of the majority's views. */
		if (nd->t != NULL &&
		    (nd->view == SIMT_NONE || ev->aux > nd->view) &&
		    !(w->cut && nd->side))
			simt__set_view(w, ev->to, ev->aux);
		simt__view_unref(w, ev->aux);
		break;
	case SIMT_EV_OP:
		simt__submit(w, ev->aux);
		break;
	case SIMT_EV_CRASH:
		simt__crash(w, ev->to);
		simt__push(w, w->now + w->o->detect_ms, SIMT_EV_DROP, ev->to, 0,
			   NULL);
		break;
	case SIMT_EV_RESTART:
		if (nd->t == NULL) {
			rc = simt__start(w, ev->to);
			w->r->restarted++;
			simt__push(w, w->now + w->o->rejoin_ms, SIMT_EV_ADD,
				   ev->to, 0, NULL);
		}
		break;
	case SIMT_EV_DROP:
		w->oracle_q--;
		if (nd->t == NULL && w->in_view[ev->to]) {
			w->in_view[ev->to] = false;
			rc = simt__rebuild(w);
		}
		break;
	case SIMT_EV_ADD:
		w->oracle_q--;
		if (nd->t != NULL && !w->in_view[ev->to] &&
		    !(w->cut && nd->side)) {
			w->in_view[ev->to] = true;
			rc = simt__rebuild(w);
		}
		break;
	case SIMT_EV_CUT:
		w->cut = true;
		w->stale = w->cur;
		simt__trace(w, SIMT_T_CUT, 0, 0, 0);
		simt__push(w, w->now + w->o->detect_ms, SIMT_EV_SIDE_DROP, 0, 0,
			   NULL);
		break;
	case SIMT_EV_SIDE_DROP: {
		w->oracle_q--;
		bool changed = false;
		for (uint32_t i = 0; i < w->n; i++)
			if (w->nodes[i].side && w->in_view[i]) {
				w->in_view[i] = false;
				changed = true;
			}
		if (changed)
			rc = simt__rebuild(w);
		break;
	}
	case SIMT_EV_HEAL:
		w->cut = false;
		w->r->heal_at_ms = w->now;
		simt__trace(w, SIMT_T_HEAL, 0, 0, 0);
		simt__push(w, w->now + w->o->rejoin_ms, SIMT_EV_SIDE_ADD, 0, 0,
			   NULL);
		break;
	case SIMT_EV_SIDE_ADD: {
		w->oracle_q--;
		bool changed = false;
		for (uint32_t i = 0; i < w->n; i++)
			if (w->nodes[i].t != NULL && !w->in_view[i]) {
				w->in_view[i] = true;
				changed = true;
			}
		uint32_t stale = w->stale;
		w->stale = SIMT_NONE;
		if (changed)
			rc = simt__rebuild(w);
		if (stale != SIMT_NONE && w->views[stale].refs == 0 &&
		    stale != w->cur) {
			ring_free(w->views[stale].ring);
			w->views[stale].ring = NULL;
		}
		break;
	}
	default:
		break;
	}
	return rc;
}

static int
simt__run_until(struct simt__world *w, uint64_t t)
{
	struct sim_event ev;
	while (sim_heap_next_at(&w->heap) <= t) {
		sim_heap_pop(&w->heap, &ev);
		w->now = ev.at;
		int rc = simt__event(w, &ev);
		if (rc != 0)
			return rc;
	}
	if (w->now < t)
		w->now = t;
	return 0;
}

/* ---- checks ------------------------------------------------------------- */

/* The final replicas of tenant @k (node indices) on the current view. */
static unsigned
simt__replicas(struct simt__world *w, uint32_t k, uint32_t *out)
{
	const struct ring *ring = w->views[w->cur].ring;
	uint32_t idx[RING_REPLICAS_MAX];
	int n =
	    ring_lookup(ring, ring_hash_key(ring, w->tid[k], strlen(w->tid[k])),
			w->o->replicas, idx);
	unsigned m = 0;
	for (int i = 0; i < n; i++) {
		uint32_t x = simt__index(w, ring_node(ring, idx[i])->name);
		if (x != SIMT_NONE)
			out[m++] = x;
	}
	return m;
}

/* Tenant index of id "t<k>", SIMT_NONE if not ours. */
static uint32_t
simt__tenant_index(const struct simt__world *w, const char *id)
{
	if (id[0] != 't')
		return SIMT_NONE;
	char *end;
	unsigned long k = strtoul(id + 1, &end, 10);
	return *end == 0 && k < w->o->tenants ? (uint32_t)k : SIMT_NONE;
}

/* Node @i's digest of tenant @k; false when it does not hold it. */
static bool
simt__digest(struct simt__world *w, uint32_t i, uint32_t k, uint64_t *out)
{
	struct tenant *t = w->nodes[i].t;
	if (t == NULL)
		return false;
	size_t n = tenant_count(t);
	for (size_t j = 0; j < n; j++) {
		struct tenant_info info;
		if (tenant_info_at(t, w->now, j, &info) == 0 &&
		    strcmp(info.tenant, w->tid[k]) == 0) {
			*out = info.digest;
			return true;
		}
	}
	return false;
}

struct simt__check {
	uint32_t converged; /* tenants equal on every final replica */
	uint32_t strays;    /* copies held by non-replicas */
	uint64_t state;	    /* hash of every (node, tenant, digest) */
};

static void
simt__check(struct simt__world *w, struct simt__check *c, bool explain)
{
	memset(c, 0, sizeof(*c));
	uint32_t reps[RING_REPLICAS_MAX];
	for (uint32_t k = 0; k < w->o->tenants; k++) {
		unsigned m = simt__replicas(w, k, reps);
		bool ok = m > 0;
		uint64_t first = 0;
		for (unsigned j = 0; j < m && ok; j++) {
			uint64_t d;
			if (!simt__digest(w, reps[j], k, &d))
				ok = false;
			else if (j == 0)
				first = d;
			else if (d != first)
				ok = false;
		}
		c->converged += ok;
		if (ok || !explain)
			continue;
		fprintf(stderr, "diverged: %s replicas", w->tid[k]);
		for (unsigned j = 0; j < m; j++) {
			uint64_t d = 0;
			bool held = simt__digest(w, reps[j], k, &d);
			fprintf(stderr, " n%u=%s%016" PRIx64, reps[j],
				w->nodes[reps[j]].t == NULL ? "(down)"
				: held			    ? ""
							    : "(none)",
				d);
		}
		fprintf(stderr, "\n");
	}
	for (uint32_t i = 0; i < w->n; i++) {
		struct tenant *t = w->nodes[i].t;
		if (t == NULL)
			continue;
		size_t n = tenant_count(t);
		for (size_t j = 0; j < n; j++) {
			struct tenant_info info;
			if (tenant_info_at(t, w->now, j, &info) != 0)
				continue;
			c->state =
			    mesh_mix64(c->state ^ mesh_mix64((uint64_t)i << 32 |
							     (uint64_t)j)) ^
			    info.digest;
			uint32_t k = simt__tenant_index(w, info.tenant);
			bool rep = false;
			if (k != SIMT_NONE) {
				unsigned m = simt__replicas(w, k, reps);
				for (unsigned x = 0; x < m; x++)
					rep |= reps[x] == i;
			}
			c->strays += !rep;
			if (!rep && explain)
				fprintf(
				    stderr,
				    "stray: n%u holds %s (digest %016" PRIx64
				    ", %u replicas differ) as a non-replica\n",
				    i, info.tenant, info.digest, info.behind);
		}
	}
}

/* A GET at node @i, answered by its own store (it holds the tenant). */
static void
simt__read(struct simt__world *w, uint32_t i, uint32_t k, const char *key,
	   struct simt__read *rd)
{
	rd->id = SIMT_READ_BIT | ++w->read_seq;
	rd->got = false;
	rd->match = false;
	rd->tenant = k;
	struct tenant_request rq = {0};
	rq.id = rd->id;
	rq.op = TENANT_OP_GET;
	rq.tenant = w->tid[k];
	rq.cap = w->cap[k];
	rq.cap_len = w->cap_len[k];
	rq.key = (const uint8_t *)key;
	rq.key_len = strlen(key);
	w->reading = rd;
	if (tenant_submit(w->nodes[i].t, w->now, &rq) == 0)
		simt__drain(w, i);
	w->reading = NULL;
	if (!rd->got || (rd->rc != 0 && rd->rc != MESH_ENOENT))
		w->r->unreadable++;
}

static bool
simt__dead_for_good(const struct simt__world *w, const struct simt__op *op)
{
	if (op->nacked == 0)
		return false;
	for (unsigned a = 0; a < op->nacked; a++)
		if (w->nodes[op->acked_by[a]].t != NULL)
			return false;
	return true;
}

/* Reads every acked write back at every final replica, and each
 * tenant's counter and set. */
static void
simt__verify_writes(struct simt__world *w)
{
	struct simt_result *r = w->r;
	uint32_t T = w->o->tenants;
	int64_t *low = calloc(T, sizeof(*low)),
		*high = calloc(T, sizeof(*high));
	uint32_t *reps = calloc((size_t)T * RING_REPLICAS_MAX, sizeof(*reps));
	unsigned *nreps = calloc(T, sizeof(*nreps));
	bool *holds = calloc((size_t)T * RING_REPLICAS_MAX, sizeof(*holds));
	if (!low || !high || !reps || !nreps || !holds)
		sim_fatal("out of memory for the checks");
	for (uint32_t k = 0; k < T; k++) {
		nreps[k] = simt__replicas(w, k, &reps[k * RING_REPLICAS_MAX]);
		for (unsigned j = 0; j < nreps[k]; j++) {
			uint64_t d;
			holds[k * RING_REPLICAS_MAX + j] = simt__digest(
			    w, reps[k * RING_REPLICAS_MAX + j], k, &d);
		}
	}
	struct simt__read rd;
	char key[32];
	for (size_t x = w->o->tenants; x < w->nops; x++) {
		struct simt__op *op = &w->ops[x];
		bool acked = op->state == SIMT_ANSWERED && op->rc == 0;
		if (op->kind == SIMT_INC) {
			high[op->tenant] += op->n;
			if (acked && !simt__dead_for_good(w, op))
				low[op->tenant] += op->n;
		}
		if (op->kind != SIMT_PUT || !acked)
			continue;
		uint32_t k = op->tenant;
		snprintf(key, sizeof(key), "k%zu", x);
		for (unsigned j = 0; j < nreps[k]; j++) {
			if (!holds[k * RING_REPLICAS_MAX + j]) {
				r->unreadable++;
				continue;
			}
			rd.want = x;
			simt__read(w, reps[k * RING_REPLICAS_MAX + j], k, key,
				   &rd);
			op->present += rd.match;
		}
	}
	for (uint32_t k = 0; k < T; k++) {
		bool low_ok = true, high_ok = true;
		int64_t vals[RING_REPLICAS_MAX] = {0};
		size_t elems[RING_REPLICAS_MAX] = {0};
		bool same = true;
		for (unsigned j = 0; j < nreps[k]; j++) {
			if (!holds[k * RING_REPLICAS_MAX + j])
				continue;
			uint32_t i = reps[k * RING_REPLICAS_MAX + j];
			rd.want = UINT64_MAX;
			simt__read(w, i, k, "set", &rd);
			elems[j] = rd.got && rd.rc == 0 ? rd.nvalues : 0;
			simt__read(w, i, k, "ctr", &rd);
			int64_t v = rd.got && rd.rc == 0 ? rd.counter : 0;
			vals[j] = v;
			low_ok &= v >= low[k];
			high_ok &= v <= high[k];
			same &= v == vals[0] && elems[j] == elems[0];
		}
		r->counter_low += !low_ok;
		r->counter_high += !high_ok;
		r->values_differ += !same;
		if ((low_ok && high_ok && same) || !w->o->explain)
			continue;
		fprintf(stderr, "counter: %s reads", w->tid[k]);
		for (unsigned j = 0; j < nreps[k]; j++)
			fprintf(stderr, " %" PRId64 " (set of %zu) at n%u",
				vals[j], elems[j],
				reps[k * RING_REPLICAS_MAX + j]);
		fprintf(stderr,
			"; acked increments sum to %" PRId64
			", all submitted to %" PRId64 "\n",
			low[k], high[k]);
	}
	for (size_t x = w->o->tenants; x < w->nops; x++) {
		struct simt__op *op = &w->ops[x];
		struct simt_ack *a = &r->ack[op->ack == TENANT_ACK_QUORUM];
		if (op->state == SIMT_REFUSED) {
			a->refused++;
			continue;
		}
		if (op->state != SIMT_ANSWERED) {
			a->unanswered++;
			continue;
		}
		if (op->rc != 0) {
			a->failed++;
			continue;
		}
		a->acked++;
		if (op->kind == SIMT_INC)
			continue; /* checked through the counter */
		unsigned m = nreps[op->tenant];
		if (op->present >= m)
			continue;
		if (op->present == 0) {
			a->lost++;
			if (simt__dead_for_good(w, op))
				a->lost_dead++;
		} else {
			a->partial++;
		}
		if (w->o->explain) {
			fprintf(stderr,
				"%s: op %zu %s on %s ack=%s at %" PRIu64
				" ms via n%u, acked by",
				op->present ? "partial" : "lost", x,
				op->kind == SIMT_PUT ? "put" : "add",
				w->tid[op->tenant],
				op->ack == TENANT_ACK_QUORUM ? "quorum" : "one",
				op->at, op->node);
			for (unsigned j = 0; j < op->nacked; j++)
				fprintf(stderr, " n%u%s", op->acked_by[j],
					w->nodes[op->acked_by[j]].t ? ""
								    : "(dead)");
			fprintf(stderr, "; on %u of %u final replicas\n",
				op->present, m);
		}
	}
	free(low);
	free(high);
	free(reps);
	free(nreps);
	free(holds);
}

/* ---- set-up and the run ------------------------------------------------- */

static int
simt__tenants_init(struct simt__world *w)
{
	uint32_t T = w->o->tenants;
	w->tid = calloc(T, sizeof(*w->tid));
	w->pk = calloc(T, sizeof(*w->pk));
	w->cap = calloc(T, sizeof(*w->cap));
	w->cap_len = calloc(T, sizeof(*w->cap_len));
	if (!w->tid || !w->pk || !w->cap || !w->cap_len)
		return MESH_ENOMEM;
	for (uint32_t k = 0; k < T; k++) {
		snprintf(w->tid[k], sizeof(w->tid[k]), "t%u", k);
		/* Keys and nonces from the seed: the same run every time. */
		uint8_t seed[crypto_sign_SEEDBYTES],
		    sk[crypto_sign_SECRETKEYBYTES];
		for (size_t b = 0; b < sizeof(seed); b += 8) {
			uint64_t v = mesh_mix64(
			    w->o->seed ^ mesh_mix64((uint64_t)k << 8 | b));
			memcpy(seed + b, &v, 8);
		}
		crypto_sign_seed_keypair(w->pk[k], sk, seed);
		struct tenant_cap c = {0};
		snprintf(c.tenant, sizeof(c.tenant), "%s", w->tid[k]);
		c.rights = TENANT_READ | TENANT_WRITE | TENANT_ADMIN;
		uint64_t nonce = mesh_mix64(w->o->seed ^ (0x6e6f6e6365ULL + k));
		memcpy(c.nonce, &nonce, sizeof(c.nonce));
		memcpy(c.tenant_key, w->pk[k], TENANT_PUBKEY_BYTES);
		uint8_t body[TENANT_CAP_MAX], sig[TENANT_SIG_BYTES];
		size_t blen;
		int rc = tenant_cap_body_encode(&c, body, sizeof(body), &blen);
		if (rc != 0)
			return rc;
		crypto_sign_detached(sig, NULL, body, blen, sk);
		rc = tenant_cap_encode(body, blen, sig, w->cap[k],
				       sizeof(w->cap[k]), &w->cap_len[k]);
		if (rc != 0)
			return rc;
		sodium_memzero(sk, sizeof(sk));
	}
	return 0;
}

/* The plan: ops, crashes, restarts, the partition. */
static int
simt__plan(struct simt__world *w, uint64_t w0)
{
	const struct simt_opts *o = w->o;
	uint64_t D = o->write_ms;
	/* Writes, evenly over the phase with a random offset each. */
	uint64_t slot = o->writes ? D / o->writes : 0;
	for (uint32_t j = 0; j < o->writes; j++) {
		struct simt__op *op = &w->ops[o->tenants + j];
		op->at =
		    w0 + (uint64_t)j * D / o->writes +
		    (slot > 1 ? mesh_rand_below(&w->rng, (uint32_t)slot) : 0);
		op->tenant = mesh_rand_below(&w->rng, o->tenants);
		uint32_t mix = mesh_rand_below(&w->rng, 100);
		op->kind = mix < 60 ? SIMT_PUT : mix < 80 ? SIMT_INC : SIMT_ADD;
		op->ack = mesh_rand_below(&w->rng, 2) ? TENANT_ACK_QUORUM
						      : TENANT_ACK_ONE;
		op->n = (uint8_t)(1 + mesh_rand_below(&w->rng, 9));
		if (op->kind == SIMT_PUT)
			w->r->puts++;
		else if (op->kind == SIMT_INC)
			w->r->incs++;
		else
			w->r->adds++;
		w->r->ack[op->ack == TENANT_ACK_QUORUM].submitted++;
		simt__push(w, op->at, SIMT_EV_OP, 0, o->tenants + j, NULL);
	}
	/* Crashes in the first 60% of the phase; the ones that come back
	 * return 10..25% of it later, before the partition heals. */
	uint32_t kc = (uint32_t)(o->crash_frac * w->n + 0.5);
	if (o->crash_frac > 0 && kc == 0)
		kc = 1;
	if (kc >= w->n)
		kc = w->n - 1;
	uint32_t kr = (uint32_t)(o->restart_frac * kc + 0.5);
	uint32_t *idx = malloc((size_t)w->n * sizeof(*idx));
	if (idx == NULL)
		return MESH_ENOMEM;
	for (uint32_t i = 0; i < w->n; i++)
		idx[i] = i;
	for (uint32_t c = 0; c < kc; c++) {
		uint32_t j = c + mesh_rand_below(&w->rng, w->n - c);
		uint32_t t = idx[c];
		idx[c] = idx[j];
		idx[j] = t;
		uint32_t v = idx[c];
		w->nodes[v].victim = true;
		uint64_t at =
		    w0 + D / 20 +
		    mesh_rand_below(&w->rng, (uint32_t)(D * 11 / 20) + 1);
		simt__push(w, at, SIMT_EV_CRASH, v, 0, NULL);
		if (c < kr) {
			w->nodes[v].revives = true;
			uint64_t back =
			    at + D / 10 +
			    mesh_rand_below(&w->rng,
					    (uint32_t)(D * 3 / 20) + 1);
			simt__push(w, back, SIMT_EV_RESTART, v, 0, NULL);
		}
	}
	w->r->crashed = kc;
	/* The partition: a random minority, cut for partition_ms, healed
	 * when the writes end. */
	uint32_t kp = (uint32_t)(o->partition_frac * w->n + 0.5);
	if (o->partition_frac > 0 && kp == 0)
		kp = 1;
	if (kp >= w->n)
		kp = w->n / 2;
	if (kp > 0 && o->partition_ms > 0) {
		for (uint32_t i = 0; i < w->n; i++)
			idx[i] = i;
		for (uint32_t c = 0; c < kp; c++) {
			uint32_t j = c + mesh_rand_below(&w->rng, w->n - c);
			uint32_t t = idx[c];
			idx[c] = idx[j];
			idx[j] = t;
			w->nodes[idx[c]].side = true;
		}
		uint64_t heal = w0 + D;
		uint64_t cut =
		    o->partition_ms < D ? heal - o->partition_ms : w0;
		simt__push(w, cut, SIMT_EV_CUT, 0, 0, NULL);
		simt__push(w, heal, SIMT_EV_HEAL, 0, 0, NULL);
		w->r->cut_off = kp;
	}
	free(idx);
	return 0;
}

void
simt_opts_default(struct simt_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nodes = 1000;
	o->tenants = 100;
	o->seed = 1;
	o->writes = 20000;
	o->replicas = 3;
	/* The membership scenarios' regional network: 1..10 ms, 5 ms jitter. */
	o->latency_ms = 1;
	o->latency_spread_ms = 9;
	o->jitter_ms = 5;
	/* Linux's smallest retransmission timeout. */
	o->rto_ms = 200;
	/* 500 writes/s for 40 s: long enough for crashes, restarts and a
	 * 10 s partition to overlap the writes. */
	o->write_ms = 40000;
	o->crash_frac = 0.05;
	o->restart_frac = 0.5;
	o->partition_frac = 0.3;
	o->partition_ms = 10000;
	/* meshd declares a crashed peer dead in about 3 s (docs/membership.md);
	 * a restarted one is alive again within a push-pull, ~1 s; SWIM
	 * spreads a change to every node in ~0.3 s (docs/simulator.md). */
	o->detect_ms = 3000;
	o->rejoin_ms = 1000;
	o->view_spread_ms = 300;
	o->settle_max_ms = 120000;
	o->check_ms = 100;
	o->log_level = MESH_LOG_OFF;
}

bool
simt_result_ok(const struct simt_result *r)
{
	for (int a = 0; a < 2; a++)
		if (r->ack[a].lost > r->ack[a].lost_dead || r->ack[a].partial)
			return false;
	return r->tenants_converged == r->tenants_total &&
	       r->values_differ == 0 && r->counter_low == 0 &&
	       r->counter_high == 0;
}

static void
simt__world_free(struct simt__world *w)
{
	struct sim_event ev;
	while (sim_heap_pop(&w->heap, &ev))
		if (ev.kind == SIMT_EV_FRAME)
			free(ev.buf);
	sim_heap_destroy(&w->heap);
	if (w->nodes != NULL)
		for (uint32_t i = 0; i < w->n; i++) {
			tenant_free(w->nodes[i].t);
			mem_kv_destroy(&w->nodes[i].kv);
		}
	for (size_t v = 0; v < w->nviews; v++)
		ring_free(w->views[v].ring);
	free(w->views);
	free(w->links);
	free(w->nodes);
	free(w->names);
	free(w->members);
	free(w->in_view);
	free(w->tid);
	free(w->pk);
	free(w->cap);
	free(w->cap_len);
	free(w->ops);
	sim_arena_destroy(&w->arena);
}

static int
simt__setup(struct simt__world *w)
{
	uint32_t n = w->n;
	w->nodes = calloc(n, sizeof(*w->nodes));
	w->names = calloc(n, sizeof(*w->names));
	w->members = calloc(n, sizeof(*w->members));
	w->in_view = calloc(n, sizeof(*w->in_view));
	w->nops = (size_t)w->o->tenants + w->o->writes;
	w->ops = calloc(w->nops, sizeof(*w->ops));
	if (!w->nodes || !w->names || !w->members || !w->in_view || !w->ops)
		return MESH_ENOMEM;
	(void)sim_arena_init(&w->arena);
	w->env.alloc = mesh_alloc_default();
	for (uint32_t i = 0; i < n; i++) {
		struct simt__node *nd = &w->nodes[i];
		snprintf(w->names[i], sizeof(w->names[i]), "n%u", i);
		w->members[i].name = w->names[i];
		w->in_view[i] = true;
		nd->w = w;
		nd->view = SIMT_NONE;
		nd->deadline = UINT64_MAX;
		sim_alloc_init(&nd->alloc, &w->arena);
		nd->env.alloc = &nd->alloc.base;
		nd->env.log_fn = simt__log;
		nd->env.log_ctx = nd;
		nd->env.log_level = w->o->log_level;
		mem_kv_init(&nd->kv, NULL);
	}
	return simt__tenants_init(w);
}

int
simt_run(const struct simt_opts *o, struct simt_result *r)
{
	uint64_t wall0 = simt__wall_ms();
	memset(r, 0, sizeof(*r));
	r->converge_ms = r->handoff_ms = -1;
	if (o->nodes < 2 || o->nodes > SIM_MAX_NODES || o->tenants < 1 ||
	    o->replicas < 1 || o->replicas > RING_REPLICAS_MAX ||
	    o->check_ms == 0 || o->write_ms == 0 || o->tenants > 1000000 ||
	    (uint64_t)o->tenants + o->writes >= (1u << 31) ||
	    !(o->loss >= 0 && o->loss < 1) ||
	    !(o->crash_frac >= 0 && o->crash_frac < 1) ||
	    !(o->restart_frac >= 0 && o->restart_frac <= 1) ||
	    !(o->partition_frac >= 0 && o->partition_frac < 0.5))
		return MESH_EINVAL;
	if (sodium_init() < 0)
		return MESH_ENOMEM;
	struct simt__world wb, *w = &wb;
	memset(w, 0, sizeof(*w));
	w->o = o;
	w->r = r;
	w->n = o->nodes;
	w->cur = w->stale = SIMT_NONE;
	mesh_rand_seed(&w->net_rng, mesh_mix64(o->seed ^ 0x6e6574776f726bULL));
	mesh_rand_seed(&w->rng, mesh_mix64(o->seed ^ 0x74656e616e7473ULL));
	w->link_salt = mesh_mix64(o->seed ^ 0x6c696e6bULL);
	int rc = simt__setup(w);
	if (rc != 0)
		goto out;
	/* Everyone in the view and up from t = 0 (no node is up while the
	 * first view is built, so none waits for it). */
	if ((rc = simt__rebuild(w)) != 0)
		goto out;
	for (uint32_t i = 0; i < w->n && rc == 0; i++)
		rc = simt__start(w, i);
	if (rc != 0)
		goto out;

	/* Creates, 10 ms apart, each at a random node; wait for all. */
	for (uint32_t k = 0; k < o->tenants; k++) {
		struct simt__op *op = &w->ops[k];
		op->kind = SIMT_CREATE;
		op->tenant = k;
		op->ack = TENANT_ACK_QUORUM;
		op->at = 1000 + (uint64_t)k * 10;
		simt__push(w, op->at, SIMT_EV_OP, 0, k, NULL);
	}
	r->creates = o->tenants;
	for (;;) {
		if ((rc = simt__run_until(w, w->now + 100)) != 0)
			goto out;
		uint32_t done = 0;
		for (uint32_t k = 0; k < o->tenants; k++)
			done += w->ops[k].state == SIMT_ANSWERED &&
				w->ops[k].rc == 0;
		if (done == o->tenants)
			break;
		if (w->now > SIMT_CREATE_MAX_MS) {
			rc = MESH_ETIMEDOUT;
			goto out;
		}
	}
	/* A quiet moment for the third copies, then the writes. */
	uint64_t w0 = (w->now / 1000 + 3) * 1000;
	if ((rc = simt__plan(w, w0)) != 0)
		goto out;
	uint64_t quiet = w0 + o->write_ms;
	if ((rc = simt__run_until(w, quiet)) != 0)
		goto out;
	if (r->heal_at_ms == 0)
		r->heal_at_ms = quiet;

	/* Settle: anti-entropy and handoff until every replica is equal and
	 * nothing is left on nodes that are no longer replicas, or until
	 * nothing changes any more, or settle_max_ms. */
	uint64_t last_change = w->now, last_state = 0;
	struct simt__check c;
	for (;;) {
		if ((rc = simt__run_until(w, w->now + o->check_ms)) != 0)
			goto out;
		simt__check(w, &c, false);
		bool final = w->oracle_q == 0;
		if (c.state != last_state || !final) {
			last_state = c.state;
			last_change = w->now;
		}
		int64_t since = (int64_t)(w->now - r->heal_at_ms);
		if (final && c.converged == o->tenants && r->converge_ms < 0)
			r->converge_ms = since;
		if (final && c.converged == o->tenants && c.strays == 0) {
			if (r->handoff_ms < 0)
				r->handoff_ms = since;
			/* Let answers of writes still waiting arrive. */
			bool waiting = false;
			for (size_t x = 0; x < w->nops && !waiting; x++)
				waiting = w->ops[x].state == SIMT_SUBMITTED &&
					  w->nodes[w->ops[x].node].t != NULL;
			if (!waiting)
				break;
		}
		if (w->now - last_change >= SIMT_STUCK_MS ||
		    w->now - quiet >= o->settle_max_ms)
			break;
	}
	if (o->explain)
		simt__check(w, &c, true);
	r->tenants_total = o->tenants;
	r->tenants_converged = c.converged;
	r->stray_copies = c.strays;
	simt__verify_writes(w);
	r->end_ms = w->now;

	struct tenant_stats st = w->dead_stats;
	for (uint32_t i = 0; i < w->n; i++) {
		struct simt__node *nd = &w->nodes[i];
		if (nd->t != NULL)
			simt__stats_add(&st, tenant_stats(nd->t));
		if (nd->alloc.peak_bytes > r->core_peak_bytes)
			r->core_peak_bytes = nd->alloc.peak_bytes;
		r->core_bytes_end += nd->alloc.live_bytes;
		r->kv_bytes_end += nd->kv.bytes;
	}
	r->deltas_sent = st.deltas_sent;
	r->deltas_applied = st.deltas_applied;
	r->ae_pulls_sent = st.ae_pulls_sent;
	r->ae_pulls_served = st.ae_pulls_served;
	r->handoffs_done = st.handoffs_done;
	r->timeouts = st.timeouts;
	r->denied = st.denied;
	r->store_errors = st.store_errors;
	r->drop_output = st.drop_output;
	r->drop_decode = st.drop_decode;
	r->drop_bad_delta = st.drop_bad_delta;
	r->queue_peak = w->heap.peak;
	r->trace_hash = w->trace;
	rc = 0;
out:
	simt__world_free(w);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	r->peak_rss_kb = (uint64_t)ru.ru_maxrss;
	r->wall_ms = simt__wall_ms() - wall0;
	return rc;
}

/* ---- output ------------------------------------------------------------- */

static void
simt__json_ack(FILE *f, const char *name, const struct simt_ack *a)
{
	fprintf(f,
		"\"%s\":{\"submitted\":%" PRIu64 ",\"acked\":%" PRIu64
		",\"failed\":%" PRIu64 ",\"unanswered\":%" PRIu64
		",\"refused\":%" PRIu64 ",\"lost\":%" PRIu64
		",\"lost_all_ackers_dead\":%" PRIu64 ",\"partial\":%" PRIu64
		"},",
		name, a->submitted, a->acked, a->failed, a->unanswered,
		a->refused, a->lost, a->lost_dead, a->partial);
}

static void
simt__json_ms(FILE *f, const char *key, int64_t v)
{
	if (v < 0)
		fprintf(f, "\"%s\":null,", key);
	else
		fprintf(f, "\"%s\":%" PRId64 ",", key, v);
}

void
simt_result_json(const struct simt_opts *o, const struct simt_result *r,
		 FILE *f)
{
	fprintf(f,
		"{\"scenario\":\"tenants\",\"nodes\":%u,\"tenants\":%u,"
		"\"seed\":%" PRIu64 ",\"writes\":%u,\"replicas\":%u,",
		o->nodes, o->tenants, o->seed, o->writes, o->replicas);
	fprintf(f,
		"\"loss\":%g,\"latency_ms\":[%u,%u],\"jitter_ms\":%u,"
		"\"write_ms\":%" PRIu64 ",\"partition_ms\":%" PRIu64 ",",
		o->loss, o->latency_ms, o->latency_ms + o->latency_spread_ms,
		o->jitter_ms, o->write_ms, o->partition_ms);
	fprintf(f, "\"trace_hash\":\"%016" PRIx64 "\",", r->trace_hash);
	fprintf(
	    f,
	    "\"crashed\":%u,\"restarted\":%u,\"cut_off\":%u,\"views\":%" PRIu64
	    ",",
	    r->crashed, r->restarted, r->cut_off, r->views);
	fprintf(f,
		"\"creates\":%" PRIu64 ",\"create_retries\":%" PRIu64
		",\"puts\":%" PRIu64 ",\"incs\":%" PRIu64 ",\"adds\":%" PRIu64
		",",
		r->creates, r->create_retries, r->puts, r->incs, r->adds);
	simt__json_ack(f, "one", &r->ack[0]);
	simt__json_ack(f, "quorum", &r->ack[1]);
	fprintf(f,
		"\"tenants_converged\":%u,\"tenants_total\":%u,"
		"\"values_differ\":%u,\"stray_copies\":%u,\"counter_low\":%u,"
		"\"counter_high\":%u,\"unreadable\":%" PRIu64 ",",
		r->tenants_converged, r->tenants_total, r->values_differ,
		r->stray_copies, r->counter_low, r->counter_high,
		r->unreadable);
	simt__json_ms(f, "converge_ms", r->converge_ms);
	simt__json_ms(f, "handoff_ms", r->handoff_ms);
	fprintf(f, "\"heal_at_ms\":%" PRIu64 ",\"end_ms\":%" PRIu64 ",",
		r->heal_at_ms, r->end_ms);
	fprintf(f,
		"\"net\":{\"frames\":%" PRIu64 ",\"bytes\":%" PRIu64
		",\"delivered\":%" PRIu64 ",\"dropped_broken\":%" PRIu64
		",\"refused\":%" PRIu64 ",\"connects\":%" PRIu64
		",\"misaddressed\":%" PRIu64 ",\"queue_peak\":%zu},",
		r->frames, r->frame_bytes, r->delivered, r->dropped_broken,
		r->refused, r->connects, r->misaddressed, r->queue_peak);
	fprintf(
	    f,
	    "\"core\":{\"deltas_sent\":%" PRIu64 ",\"deltas_applied\":%" PRIu64
	    ",\"ae_pulls_sent\":%" PRIu64 ",\"ae_pulls_served\":%" PRIu64
	    ",\"handoffs_done\":%" PRIu64 ",\"timeouts\":%" PRIu64
	    ",\"denied\":%" PRIu64 ",\"store_errors\":%" PRIu64
	    ",\"drop_output\":%" PRIu64 ",\"drop_decode\":%" PRIu64
	    ",\"drop_bad_delta\":%" PRIu64 ",\"peak_bytes_one_node\":%" PRIu64
	    ",\"bytes_all_nodes_end\":%" PRIu64 ",\"kv_bytes_end\":%" PRIu64
	    "},",
	    r->deltas_sent, r->deltas_applied, r->ae_pulls_sent,
	    r->ae_pulls_served, r->handoffs_done, r->timeouts, r->denied,
	    r->store_errors, r->drop_output, r->drop_decode, r->drop_bad_delta,
	    r->core_peak_bytes, r->core_bytes_end, r->kv_bytes_end);
	fprintf(
	    f,
	    "\"ok\":%s,\"wall_ms\":%" PRIu64 ",\"peak_rss_kb\":%" PRIu64 "}\n",
	    simt_result_ok(r) ? "true" : "false", r->wall_ms, r->peak_rss_kb);
}

static void
simt__text_ack(FILE *f, const char *name, const struct simt_ack *a)
{
	fprintf(f,
		"  %-28s %" PRIu64 " submitted, %" PRIu64 " acked, %" PRIu64
		" failed, %" PRIu64 " unanswered, %" PRIu64 " refused\n",
		name, a->submitted, a->acked, a->failed, a->unanswered,
		a->refused);
	fprintf(f,
		"  %-28s %" PRIu64 " lost (%" PRIu64
		" with every acking node dead), %" PRIu64 " partial\n",
		"", a->lost, a->lost_dead, a->partial);
}

void
simt_result_text(const struct simt_opts *o, const struct simt_result *r,
		 FILE *f)
{
	fprintf(f,
		"meshsim tenants: %u nodes, %u tenants, RF %u, seed %" PRIu64
		", loss %g\n",
		o->nodes, o->tenants, o->replicas, o->seed, o->loss);
	fprintf(f, "  %-28s %016" PRIx64 "\n", "trace_hash", r->trace_hash);
	fprintf(f,
		"  %-28s %u crashed (%u back), %u cut off, %" PRIu64 " views\n",
		"faults", r->crashed, r->restarted, r->cut_off, r->views);
	fprintf(f,
		"  %-28s %" PRIu64 " put, %" PRIu64 " inc, %" PRIu64 " add\n",
		"writes", r->puts, r->incs, r->adds);
	simt__text_ack(f, "ack=one", &r->ack[0]);
	simt__text_ack(f, "ack=quorum", &r->ack[1]);
	fprintf(f,
		"  %-28s %u / %u equal digests, %u with differing values, "
		"%u stray copies\n",
		"tenants converged", r->tenants_converged, r->tenants_total,
		r->values_differ, r->stray_copies);
	fprintf(f, "  %-28s %u low, %u high\n", "counters off", r->counter_low,
		r->counter_high);
	if (r->converge_ms < 0)
		fprintf(f, "  %-28s never\n", "converged after heal");
	else
		fprintf(f, "  %-28s %.1f s\n", "converged after heal",
			r->converge_ms / 1000.0);
	if (r->handoff_ms < 0)
		fprintf(f, "  %-28s never (%u copies left)\n",
			"handoff done after heal", r->stray_copies);
	else
		fprintf(f, "  %-28s %.1f s\n", "handoff done after heal",
			r->handoff_ms / 1000.0);
	fprintf(f,
		"  %-28s %" PRIu64 " frames, %.1f MiB; %" PRIu64
		" dropped on broken streams, %" PRIu64 " refused\n",
		"network", r->frames, r->frame_bytes / 1048576.0,
		r->dropped_broken, r->refused);
	fprintf(f, "  %-28s %" PRIu64 " ms, %" PRIu64 " MiB peak RSS\n", "wall",
		r->wall_ms, r->peak_rss_kb / 1024);
	fprintf(f, "  %-28s %s\n", "verdict",
		simt_result_ok(r) ? "ok" : "FAILED");
}
