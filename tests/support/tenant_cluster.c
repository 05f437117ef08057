#include "tenant_cluster.h"

#include "mesh_err.h"
#include "tenant_cap.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tc_msg {
	struct tc_msg *next;
	size_t from, to;
	size_t len;
	uint8_t data[];
};

static bool
tc__verify(void *ctx, const uint8_t *pub, const uint8_t *msg, size_t len,
	   const uint8_t *sig)
{
	(void)ctx;
	return crypto_sign_verify_detached(sig, msg, len, pub) == 0;
}

static size_t
tc__index(const struct tc *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->node[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

static uint64_t
tc__rand(struct tc *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

/* Moves what node @i wants sent into the queue, and its answers out. */
static void
tc__drain(struct tc *c, size_t i)
{
	struct tc_node *nd = &c->node[i];
	if (!nd->up)
		return;
	struct tenant_output o;
	while (tenant_poll_output(nd->t, &o)) {
		size_t to = tc__index(c, o.to);
		if (to == SIZE_MAX) {
			c->dropped++;
			continue;
		}
		struct tc_msg *m = malloc(sizeof(*m) + o.len);
		m->next = NULL;
		m->from = i;
		m->to = to;
		m->len = o.len;
		memcpy(m->data, o.data, o.len);
		if (c->tail)
			c->tail->next = m;
		else
			c->head = m;
		c->tail = m;
	}
	struct tenant_reply r;
	while (tenant_poll_reply(nd->t, &r)) {
		/* A ring: the oldest answers make room. */
		struct tc_reply *x =
		    &c->replies[c->nreplies++ % TC_REPLIES_MAX];
		memset(x, 0, sizeof(*x));
		x->id = r.id;
		x->rc = r.rc;
		snprintf(x->error, sizeof(x->error), "%s",
			 r.error ? r.error : "");
		x->acks = r.acks;
		x->kind = r.kind;
		x->counter = r.counter;
		x->digest = r.digest;
		x->nvalues = (unsigned)(r.nvalues < 8 ? r.nvalues : 8);
		for (unsigned k = 0; k < x->nvalues; k++) {
			size_t len =
			    r.values[k].len < 127 ? r.values[k].len : 127;
			memcpy(x->values[k], r.values[k].data, len);
			x->values[k][len] = 0;
		}
	}
}

static void
tc__start(struct tc *c, size_t i)
{
	struct tc_node *nd = &c->node[i];
	struct tenant_config cfg;
	tenant_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", nd->name);
	cfg.replica_id = 0x1000 + i;
	cfg.seed = 77 + i;
	cfg.replicas = c->replicas;
	cfg.anti_entropy_ms = 200;
	cfg.request_timeout_ms = 500;
	cfg.wall_offset_ms = 1700000000000LL;
	cfg.verify = tc__verify;
	cfg.quota_keys = c->quota_keys;
	cfg.quota_bytes = c->quota_bytes;
	cfg.rate_per_s = c->rate_per_s;
	cfg.rate_burst = c->rate_burst;
	if (c->follow_rounds != 0)
		cfg.follow_rounds = c->follow_rounds;
	mem_kv_bind(&nd->kv, &cfg.kv);
	int rc = tenant_new(&cfg, &c->te.env, c->now, &nd->t);
	if (rc != 0) {
		fprintf(stderr, "tc: tenant_new %s: %s\n", nd->name,
			mesh_strerror(rc));
		abort();
	}
	nd->up = true;
	tenant_set_view(nd->t, c->now, c->ring, NULL);
}

void
tc_view(struct tc *c)
{
	struct ring_member m[TC_NODES_MAX];
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++) {
		memset(&m[k], 0, sizeof(m[k]));
		m[k].name = c->node[i].name;
		m[k].alive = c->node[i].in_view;
		k++;
	}
	struct ring *r = NULL;
	if (ring_new(&c->te.env, NULL, m, k, &r) != 0)
		abort();
	for (size_t i = 0; i < c->n; i++)
		if (c->node[i].up) {
			tenant_set_view(c->node[i].t, c->now, r, NULL);
			tc__drain(c, i);
		}
	ring_free(c->ring);
	c->ring = r;
}

void
tc_init(struct tc *c, size_t n, unsigned replicas)
{
	tc_init_follow(c, n, replicas, 0);
}

void
tc_init_follow(struct tc *c, size_t n, unsigned replicas,
	       uint32_t follow_rounds)
{
	memset(c, 0, sizeof(*c));
	c->follow_rounds = follow_rounds;
	test_env_init(&c->te);
	if (sodium_init() < 0)
		abort();
	c->n = n;
	c->replicas = replicas;
	c->now = 1000;
	c->rng = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < n; i++) {
		snprintf(c->node[i].name, sizeof(c->node[i].name), "n%zu", i);
		mem_kv_init(&c->node[i].kv, NULL);
		c->node[i].in_view = true;
	}
	tc_view(c);
	for (size_t i = 0; i < n; i++)
		tc__start(c, i);
	crypto_sign_keypair(c->pk, c->sk);
	c->cap_len = tc_cap("acme", TENANT_READ | TENANT_WRITE | TENANT_ADMIN,
			    0, c->pk, c->sk, c->cap, sizeof(c->cap));
}

void
tc_destroy(struct tc *c)
{
	while (c->head) {
		struct tc_msg *m = c->head;
		c->head = m->next;
		free(m);
	}
	for (size_t i = 0; i < c->n; i++) {
		if (c->node[i].up)
			tenant_free(c->node[i].t);
		mem_kv_destroy(&c->node[i].kv);
	}
	ring_free(c->ring);
}

void
tc_crash(struct tc *c, size_t i)
{
	if (!c->node[i].up)
		return;
	tenant_free(c->node[i].t);
	c->node[i].t = NULL;
	c->node[i].up = false;
}

void
tc_restart(struct tc *c, size_t i)
{
	if (!c->node[i].up)
		tc__start(c, i);
}

uint64_t
tc_submit(struct tc *c, size_t i, enum tenant_op op, const char *tenant,
	  const char *key, const char *value, int64_t n, enum tenant_ack ack,
	  const uint8_t *cap, size_t cap_len)
{
	struct tenant_request rq = {0};
	rq.id = ++c->next_id;
	rq.op = op;
	rq.tenant = tenant;
	rq.cap = cap ? cap : c->cap;
	rq.cap_len = cap ? cap_len : c->cap_len;
	rq.key = (const uint8_t *)key;
	rq.key_len = key ? strlen(key) : 0;
	rq.value = (const uint8_t *)value;
	rq.value_len = value ? strlen(value) : 0;
	rq.has_value = value != NULL;
	rq.n = n;
	rq.ack = ack;
	rq.tenant_key = c->pk;
	rq.lww = c->lww;
	rq.map = (const uint8_t *)c->map;
	rq.map_len = c->map ? strlen(c->map) : 0;
	rq.system = c->system;
	if (tenant_submit(c->node[i].t, c->now, &rq) != 0)
		return 0;
	tc__drain(c, i);
	return rq.id;
}

static void
tc__deliver(struct tc *c)
{
	/* Only what is queued now: answers made here go out next step. */
	struct tc_msg *m = c->head;
	c->head = c->tail = NULL;
	while (m != NULL) {
		struct tc_msg *next = m->next;
		struct tc_node *to = &c->node[m->to];
		bool lost = c->drop_pct > 0 && tc__rand(c) % 100 < c->drop_pct;
		if (!to->up || !c->node[m->from].up ||
		    to->group != c->node[m->from].group || lost) {
			c->dropped++;
		} else {
			tenant_recv(to->t, c->now, m->data, m->len);
			c->delivered++;
			tc__drain(c, m->to);
		}
		free(m);
		m = next;
	}
}

void
tc_run(struct tc *c, uint64_t ms)
{
	uint64_t end = c->now + ms;
	while (c->now < end) {
		c->now++;
		for (size_t i = 0; i < c->n; i++) {
			if (!c->node[i].up)
				continue;
			if (tenant_next_deadline(c->node[i].t) <= c->now) {
				tenant_tick(c->node[i].t, c->now);
				tc__drain(c, i);
			}
		}
		tc__deliver(c);
	}
}

const struct tc_reply *
tc_find(const struct tc *c, uint64_t id)
{
	size_t n = c->nreplies < TC_REPLIES_MAX ? c->nreplies : TC_REPLIES_MAX;
	for (size_t i = 0; i < n; i++)
		if (c->replies[i].id == id)
			return &c->replies[i];
	return NULL;
}

const struct tc_reply *
tc_create(struct tc *c, size_t i, const char *tenant)
{
	uint64_t id = tc_submit(c, i, TENANT_OP_CREATE, tenant, NULL, NULL, 0,
				TENANT_ACK_ONE, NULL, 0);
	tc_run(c, 20);
	return tc_find(c, id);
}

size_t
tc_cap(const char *tenant, uint32_t rights, uint64_t expires,
       const unsigned char *pk, const unsigned char *sk, uint8_t *out,
       size_t cap)
{
	struct tenant_cap tc = {0};
	snprintf(tc.tenant, sizeof(tc.tenant), "%s", tenant);
	tc.rights = rights;
	tc.expires_unix_s = expires;
	randombytes_buf(tc.nonce, sizeof(tc.nonce));
	memcpy(tc.tenant_key, pk, 32);
	uint8_t body[512], sig[64];
	size_t blen, len;
	if (tenant_cap_body_encode(&tc, body, sizeof(body), &blen) != 0)
		abort();
	crypto_sign_detached(sig, NULL, body, blen, sk);
	if (tenant_cap_encode(body, blen, sig, out, cap, &len) != 0)
		abort();
	return len;
}

uint64_t
tc_digest(const struct tc *c, size_t i, const char *tenant)
{
	const struct tc_node *nd = &c->node[i];
	if (!nd->up)
		return 0;
	for (size_t k = 0; k < tenant_count(nd->t); k++) {
		struct tenant_info info;
		tenant_info_at(nd->t, c->now, k, &info);
		if (strcmp(info.tenant, tenant) == 0)
			return info.digest;
	}
	return 0;
}
