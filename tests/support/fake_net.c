/*
 * fake_net.c - in-memory network and virtual clock for swim tests.
 *
 * Everything the nodes send is copied at once into the net's own queue
 * (plain malloc, not the nodes' counting allocators), because what swim
 * lends out is only valid until the next call into that node. The queue is
 * short (a few packets per node in flight), so picking the next delivery is
 * a linear scan.
 */
#include "fake_net.h"

#include "mesh_err.h"
#include "mesh_hash.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rounds of work at one instant before the harness calls it a livelock:
 * real work at one instant is a handful of packets per node. */
#define FAKE_NET_INSTANT_LIMIT 100000
/* Frames in one stream exchange; push-pull needs at most three. */
#define FAKE_NET_STREAM_FRAMES 16

struct fake_net_node {
	struct fake_net *net;
	size_t idx;
	char name[24];
	struct swim_addr addr;
	struct swim_config cfg;
	struct test_env env;
	struct test_ident ident;
	struct swim *swim;
	bool down;
	uint32_t generation;
};

struct fake_net_pending {
	enum swim_out_kind kind;
	size_t from;
	size_t to;
	uint64_t at;
	uint64_t seq;
	uint8_t *data;
	size_t len;
};

struct fake_net {
	uint64_t seed;
	uint32_t latency_ms;
	uint64_t now;
	size_t n;
	struct fake_net_node nodes[FAKE_NET_MAX_NODES];
	bool blocked[FAKE_NET_MAX_NODES][FAKE_NET_MAX_NODES];

	struct fake_net_pending *pending;
	size_t npending, pending_cap;
	uint64_t next_seq;

	fake_net_drop_fn *drop_fn;
	void *drop_ctx;
	fake_net_event_fn *event_fn;
	void *event_ctx;

	uint64_t events[SWIM_EV_JOINED + 1];
	uint64_t trace;
	struct fake_net_counters counters;
};

/* ---- helpers ----------------------------------------------------------- */

static void
fake_net__trace(struct fake_net *net, uint64_t a, uint64_t b, uint64_t c,
		const char *str)
{
	uint64_t h = net->trace;
	h = mesh_mix64(h ^ a);
	h = mesh_mix64(h ^ b);
	h = mesh_mix64(h ^ c);
	for (const char *p = str; p != NULL && *p; p++)
		h = mesh_mix64(h ^ (uint8_t)*p);
	net->trace = h;
}

static void
fake_net__log(void *ctx, enum mesh_log_level level, const char *line)
{
	struct fake_net_node *node = ctx;
	struct test_env *t = &node->env;
	snprintf(t->last_line, sizeof(t->last_line), "%s", line);
	t->lines++;
	if (t->echo)
		fprintf(stderr, "[%8" PRIu64 " %s %s] %s\n", node->net->now,
			node->name, mesh_log_level_name(level), line);
}

static uint64_t
fake_net__node_seed(const struct fake_net *net, size_t i, uint32_t gen)
{
	return mesh_mix64(
	    net->seed ^ mesh_mix64(((uint64_t)gen << 32) | (uint64_t)(i + 1)));
}

static int
fake_net__spawn(struct fake_net *net, size_t i)
{
	struct fake_net_node *node = &net->nodes[i];
	node->cfg.seed = fake_net__node_seed(net, i, node->generation);
	struct swim *s = NULL;
	int rc = swim_new(&node->cfg, &node->env.env, net->now, &s);
	if (rc != 0)
		return rc;
	node->swim = s;
	node->down = false;
	return 0;
}

static void fake_net__fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
fake_net__fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg("fake_net: %s", msg);
}

/* ---- life cycle -------------------------------------------------------- */

int
fake_net_new(const struct fake_net_opts *opts, struct fake_net **out)
{
	if (opts->nodes == 0 || opts->nodes > FAKE_NET_MAX_NODES)
		return MESH_EINVAL;
	struct fake_net *net = calloc(1, sizeof(*net));
	if (net == NULL)
		return MESH_ENOMEM;
	net->seed = opts->seed;
	net->latency_ms = opts->latency_ms;
	net->now = opts->start_ms;
	net->n = opts->nodes;
	for (size_t i = 0; i < net->n; i++) {
		struct fake_net_node *node = &net->nodes[i];
		node->net = net;
		node->idx = i;
		snprintf(node->name, sizeof(node->name), "n%zu", i);
		node->addr.family = 4;
		node->addr.ip[0] = 127;
		node->addr.ip[3] = 1;
		node->addr.port = (uint16_t)(FAKE_NET_PORT_BASE + i);
		if (opts->base != NULL)
			node->cfg = *opts->base;
		else
			swim_config_default(&node->cfg);
		memcpy(node->cfg.name, node->name, strlen(node->name) + 1);
		node->cfg.addr = node->addr;
		test_ident_make(&node->ident, node->name);
		test_ident_apply(&node->ident, &node->cfg);
		test_env_init(&node->env);
		node->env.env.log_fn = fake_net__log;
		node->env.env.log_ctx = node;
		int rc = fake_net__spawn(net, i);
		if (rc != 0) {
			fake_net_free(net);
			return rc;
		}
	}
	*out = net;
	return 0;
}

void
fake_net_free(struct fake_net *net)
{
	if (net == NULL)
		return;
	for (size_t i = 0; i < net->n; i++)
		swim_free(net->nodes[i].swim);
	for (size_t i = 0; i < net->npending; i++)
		free(net->pending[i].data);
	free(net->pending);
	free(net);
}

size_t
fake_net_size(const struct fake_net *net)
{
	return net->n;
}

uint64_t
fake_net_now(const struct fake_net *net)
{
	return net->now;
}

struct swim *
fake_net_node(struct fake_net *net, size_t i)
{
	return net->nodes[i].swim;
}

struct test_env *
fake_net_env(struct fake_net *net, size_t i)
{
	return &net->nodes[i].env;
}

const char *
fake_net_name(const struct fake_net *net, size_t i)
{
	return net->nodes[i].name;
}

const struct swim_addr *
fake_net_addr(const struct fake_net *net, size_t i)
{
	return &net->nodes[i].addr;
}

int
fake_net_find(const struct fake_net *net, const struct swim_addr *addr)
{
	for (size_t i = 0; i < net->n; i++)
		if (swim_addr_equal(&net->nodes[i].addr, addr))
			return (int)i;
	return -1;
}

int
fake_net_join(struct fake_net *net, size_t i, const size_t *seeds, size_t n)
{
	struct swim_addr addrs[FAKE_NET_MAX_NODES];
	if (n > FAKE_NET_MAX_NODES)
		return MESH_EINVAL;
	for (size_t k = 0; k < n; k++)
		addrs[k] = net->nodes[seeds[k]].addr;
	int rc = swim_join(net->nodes[i].swim, net->now, addrs, n);
	fake_net_flush(net, i);
	return rc;
}

void
fake_net_join_all(struct fake_net *net, size_t seed)
{
	for (size_t i = 0; i < net->n; i++)
		if (i != seed && fake_net_join(net, i, &seed, 1) != 0)
			fake_net__fail("join of n%zu failed", i);
}

void
fake_net_set_down(struct fake_net *net, size_t i, bool down)
{
	net->nodes[i].down = down;
	fake_net__trace(net, net->now, i, down ? 0xd0 : 0x0b, "down");
}

bool
fake_net_is_down(const struct fake_net *net, size_t i)
{
	return net->nodes[i].down;
}

const struct test_ident *
fake_net_ident(const struct fake_net *net, size_t i)
{
	return &net->nodes[i].ident;
}

int
fake_net_restart(struct fake_net *net, size_t i, uint64_t incarnation)
{
	struct fake_net_node *node = &net->nodes[i];
	swim_free(node->swim);
	node->swim = NULL;
	node->generation++;
	node->cfg.incarnation = incarnation;
	fake_net__trace(net, net->now, i, incarnation, "restart");
	int rc = fake_net__spawn(net, i);
	if (rc != 0)
		fake_net__fail("restart of n%zu: %s", i, mesh_strerror(rc));
	return rc;
}

void
fake_net_block(struct fake_net *net, size_t from, size_t to, bool blocked)
{
	net->blocked[from][to] = blocked;
}

void
fake_net_block_pair(struct fake_net *net, size_t a, size_t b, bool blocked)
{
	net->blocked[a][b] = blocked;
	net->blocked[b][a] = blocked;
}

void
fake_net_set_drop_fn(struct fake_net *net, fake_net_drop_fn *fn, void *ctx)
{
	net->drop_fn = fn;
	net->drop_ctx = ctx;
}

void
fake_net_set_event_fn(struct fake_net *net, fake_net_event_fn *fn, void *ctx)
{
	net->event_fn = fn;
	net->event_ctx = ctx;
}

/* ---- moving packets ---------------------------------------------------- */

static void
fake_net__enqueue(struct fake_net *net, enum swim_out_kind kind, size_t from,
		  size_t to, uint64_t at, const uint8_t *data, size_t len)
{
	if (net->npending == net->pending_cap) {
		size_t cap = net->pending_cap ? net->pending_cap * 2 : 64;
		void *p = realloc(net->pending, cap * sizeof(*net->pending));
		if (p == NULL)
			fake_net__fail("out of memory");
		net->pending = p;
		net->pending_cap = cap;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (copy == NULL)
		fake_net__fail("out of memory");
	memcpy(copy, data, len);
	struct fake_net_pending *p = &net->pending[net->npending++];
	p->kind = kind;
	p->from = from;
	p->to = to;
	p->at = at;
	p->seq = net->next_seq++;
	p->data = copy;
	p->len = len;
}

void
fake_net_flush(struct fake_net *net, size_t i)
{
	struct fake_net_node *node = &net->nodes[i];
	/* Every call into a node ends here: its bookkeeping must agree with
	 * its view after each one. */
	const char *why;
	if (swim_self_check(node->swim, &why) != 0)
		fake_net__fail("node %zu: %s", i, why);
	struct swim_output o;
	while (swim_poll_output(node->swim, &o)) {
		int to = fake_net_find(net, &o.to);
		if (to < 0) {
			/* Nobody listens there: lost. */
			net->counters.dropped++;
			fake_net__trace(net, net->now, i, o.len, "nowhere");
			continue;
		}
		uint64_t at = o.kind == SWIM_OUT_DATAGRAM
				  ? net->now + net->latency_ms
				  : net->now;
		fake_net__enqueue(net, o.kind, i, (size_t)to, at, o.data,
				  o.len);
	}
	struct swim_event ev;
	while (swim_poll_event(node->swim, &ev)) {
		if ((unsigned)ev.kind <= SWIM_EV_JOINED)
			net->events[ev.kind]++;
		fake_net__trace(net, net->now, i,
				mesh_mix64(ev.kind) ^ ev.incarnation, ev.name);
		fake_net__trace(net, 0, 0, 0, ev.from);
		if (net->event_fn != NULL)
			net->event_fn(net->event_ctx, i, net->now, &ev);
	}
}

static bool
fake_net__dropped(struct fake_net *net, const struct fake_net_msg *m)
{
	if (net->nodes[m->from].down || net->nodes[m->to].down ||
	    net->blocked[m->from][m->to])
		return true;
	return net->drop_fn != NULL && net->drop_fn(net->drop_ctx, m);
}

static void
fake_net__deliver_datagram(struct fake_net *net, struct fake_net_pending *p)
{
	struct fake_net_msg m = {
	    .kind = SWIM_OUT_DATAGRAM,
	    .from = p->from,
	    .to = p->to,
	    .at_ms = net->now,
	    .data = p->data,
	    .len = p->len,
	};
	bool drop = fake_net__dropped(net, &m);
	fake_net__trace(net, net->now, p->from << 8 | p->to, p->len << 1 | drop,
			"dgram");
	if (drop) {
		net->counters.dropped++;
		return;
	}
	net->counters.delivered++;
	swim_recv_datagram(net->nodes[p->to].swim, net->now,
			   &net->nodes[p->from].addr, p->data, p->len);
	fake_net_flush(net, p->to);
}

/* One TCP connection: frames go back and forth until a side is done. */
static void
fake_net__run_stream(struct fake_net *net, struct fake_net_pending *p)
{
	size_t a = p->from, b = p->to;
	if (net->nodes[a].down || net->nodes[b].down || net->blocked[a][b] ||
	    net->blocked[b][a]) {
		net->counters.streams_refused++;
		fake_net__trace(net, net->now, a << 8 | b, 0, "refused");
		return;
	}
	uint8_t *cur = p->data;
	size_t len = p->len;
	p->data = NULL; /* ours now */
	size_t sender = a, receiver = b;
	bool is_reply = false;
	for (int frames = 0; frames < FAKE_NET_STREAM_FRAMES; frames++) {
		struct fake_net_msg m = {
		    .kind = SWIM_OUT_STREAM,
		    .from = sender,
		    .to = receiver,
		    .at_ms = net->now,
		    .data = cur,
		    .len = len,
		    .stream_reply = is_reply,
		};
		bool drop = fake_net__dropped(net, &m);
		fake_net__trace(net, net->now, sender << 8 | receiver,
				len << 1 | drop, "frame");
		if (drop)
			break; /* connection reset */
		net->counters.stream_frames++;
		const uint8_t *reply = NULL;
		size_t reply_len = 0;
		swim_recv_stream(net->nodes[receiver].swim, net->now,
				 &net->nodes[sender].addr, cur, len, &reply,
				 &reply_len);
		free(cur);
		cur = NULL;
		if (reply != NULL) {
			cur = malloc(reply_len ? reply_len : 1);
			if (cur == NULL)
				fake_net__fail("out of memory");
			memcpy(cur, reply, reply_len);
			len = reply_len;
		}
		fake_net_flush(net, receiver);
		if (cur == NULL)
			break;
		size_t t = sender;
		sender = receiver;
		receiver = t;
		is_reply = true;
	}
	free(cur);
}

/* Index of the next pending delivery due at or before @t, or -1. */
static ptrdiff_t
fake_net__next_pending(const struct fake_net *net, uint64_t t)
{
	ptrdiff_t best = -1;
	for (size_t i = 0; i < net->npending; i++) {
		const struct fake_net_pending *p = &net->pending[i];
		if (p->at > t)
			continue;
		if (best < 0 || p->at < net->pending[best].at ||
		    (p->at == net->pending[best].at &&
		     p->seq < net->pending[best].seq))
			best = (ptrdiff_t)i;
	}
	return best;
}

static bool
fake_net__deliver_one(struct fake_net *net)
{
	ptrdiff_t i = fake_net__next_pending(net, net->now);
	if (i < 0)
		return false;
	struct fake_net_pending p = net->pending[i];
	/* Keep the queue in sending order for equal times: shift, no swap. */
	memmove(&net->pending[i], &net->pending[i + 1],
		(net->npending - (size_t)i - 1) * sizeof(p));
	net->npending--;
	if (p.kind == SWIM_OUT_DATAGRAM)
		fake_net__deliver_datagram(net, &p);
	else
		fake_net__run_stream(net, &p);
	free(p.data);
	return true;
}

/* ---- time -------------------------------------------------------------- */

static uint64_t
fake_net__next_due(const struct fake_net *net)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < net->n; i++) {
		if (net->nodes[i].down)
			continue;
		uint64_t d = swim_next_deadline(net->nodes[i].swim);
		if (d < next)
			next = d;
	}
	for (size_t i = 0; i < net->npending; i++)
		if (net->pending[i].at < next)
			next = net->pending[i].at;
	return next;
}

/* Handles everything due at net->now: arrivals, then ticks, repeated until
 * the instant is quiet. */
static void
fake_net__run_instant(struct fake_net *net)
{
	for (unsigned rounds = 0;; rounds++) {
		if (rounds > FAKE_NET_INSTANT_LIMIT) {
			for (size_t i = 0; i < net->n; i++)
				if (!net->nodes[i].down &&
				    swim_next_deadline(net->nodes[i].swim) <=
					net->now)
					fake_net__fail("n%zu keeps asking for "
						       "a tick at t=%" PRIu64,
						       i, net->now);
			fake_net__fail("livelock at t=%" PRIu64, net->now);
		}
		bool progress = false;
		while (fake_net__deliver_one(net))
			progress = true;
		for (size_t i = 0; i < net->n; i++) {
			struct fake_net_node *node = &net->nodes[i];
			if (node->down ||
			    swim_next_deadline(node->swim) > net->now)
				continue;
			swim_tick(node->swim, net->now);
			fake_net_flush(net, i);
			progress = true;
		}
		if (!progress)
			return;
	}
}

uint64_t
fake_net_step(struct fake_net *net)
{
	uint64_t next = fake_net__next_due(net);
	if (next == UINT64_MAX)
		fake_net__fail("nothing will ever happen");
	if (next > net->now)
		net->now = next;
	fake_net__run_instant(net);
	return net->now;
}

void
fake_net_run_until(struct fake_net *net, uint64_t t_ms)
{
	for (;;) {
		uint64_t next = fake_net__next_due(net);
		if (next > t_ms) {
			if (net->now < t_ms)
				net->now = t_ms;
			return;
		}
		fake_net_step(net);
	}
}

void
fake_net_run_for(struct fake_net *net, uint64_t ms)
{
	fake_net_run_until(net, net->now + ms);
}

bool
fake_net_run_while_not(struct fake_net *net,
		       bool (*pred)(struct fake_net *net, void *ctx), void *ctx,
		       uint64_t max_ms)
{
	uint64_t end = net->now + max_ms;
	while (!pred(net, ctx)) {
		uint64_t next = fake_net__next_due(net);
		if (next > end) {
			net->now = end;
			return pred(net, ctx);
		}
		fake_net_step(net);
	}
	return true;
}

int
fake_net_inject(struct fake_net *net, size_t to, const struct swim_addr *from,
		const uint8_t *buf, size_t len)
{
	int rc =
	    swim_recv_datagram(net->nodes[to].swim, net->now, from, buf, len);
	fake_net__trace(net, net->now, to, len, "inject");
	fake_net_flush(net, to);
	return rc;
}

/* ---- views ------------------------------------------------------------- */

int
fake_net_state(struct fake_net *net, size_t viewer, size_t subject)
{
	struct swim_member_info info;
	if (swim_member_find(net->nodes[viewer].swim, net->nodes[subject].name,
			     &info) != 0)
		return -1;
	return (int)info.state;
}

uint64_t
fake_net_incarnation(struct fake_net *net, size_t viewer, size_t subject)
{
	struct swim_member_info info;
	if (swim_member_find(net->nodes[viewer].swim, net->nodes[subject].name,
			     &info) != 0)
		return 0;
	return info.incarnation;
}

bool
fake_net_all_see(struct fake_net *net, size_t subject, enum swim_state state,
		 uint64_t incarnation)
{
	for (size_t v = 0; v < net->n; v++) {
		if (v == subject || net->nodes[v].down)
			continue;
		if (fake_net_state(net, v, subject) != (int)state)
			return false;
		if (incarnation != 0 &&
		    fake_net_incarnation(net, v, subject) != incarnation)
			return false;
	}
	return true;
}

bool
fake_net_converged(struct fake_net *net)
{
	for (size_t v = 0; v < net->n; v++) {
		if (net->nodes[v].down)
			continue;
		for (size_t u = 0; u < net->n; u++)
			if (u != v && !net->nodes[u].down &&
			    fake_net_state(net, v, u) != SWIM_ALIVE)
				return false;
	}
	return true;
}

uint64_t
fake_net_event_count(const struct fake_net *net, enum swim_event_kind kind)
{
	return (unsigned)kind <= SWIM_EV_JOINED ? net->events[kind] : 0;
}

uint64_t
fake_net_trace_hash(const struct fake_net *net)
{
	return net->trace;
}

const struct fake_net_counters *
fake_net_counters(const struct fake_net *net)
{
	return &net->counters;
}
