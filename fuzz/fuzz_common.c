/*
 * fuzz_common.c - shared harness code; see fuzz_common.h.
 *
 * Failures of the harness itself (a config the core refuses, no memory
 * while setting up) abort with a message: they are bugs here, not findings
 * in the code under test.
 */
#include "fuzz_common.h"

#include "hash_sig.h"
#include "mem_kv.h"
#include "tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t *
fuzz__find_sep(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + FUZZ_SEP_LEN <= n; i++) {
		const uint8_t *q = memchr(p + i, FUZZ_SEP[0], n - i);
		if (q == NULL)
			return NULL;
		i = (size_t)(q - p);
		if (i + FUZZ_SEP_LEN <= n &&
		    memcmp(q, FUZZ_SEP, FUZZ_SEP_LEN) == 0)
			return q;
	}
	return NULL;
}

bool
fuzz_next_chunk(const uint8_t **data, size_t *size, struct fuzz_chunk *c)
{
	while (*size > 0) {
		const uint8_t *p = *data;
		size_t n = *size, len = n;
		size_t skip = n;
		const uint8_t *sep = fuzz__find_sep(p, n);
		if (sep != NULL) {
			len = (size_t)(sep - p);
			skip = len + FUZZ_SEP_LEN;
		}
		*data += skip;
		*size -= skip;
		if (len == 0)
			continue;
		c->ctrl = p[0];
		c->data = p + 1;
		c->len = len - 1;
		return true;
	}
	return false;
}

unsigned
fuzz_ctrl_from(uint8_t ctrl)
{
	/* Four values for four senders: peers 1..3 and the stranger. */
	return 1u + (ctrl & 3u);
}

uint32_t
fuzz_ctrl_advance_ms(uint8_t ctrl)
{
	/* 0..7 steps of 125 ms, then x16 when bit 6 is set: up to 14 s, past
	 * probe timeouts, suspicion and anti-entropy periods. */
	uint32_t ms = ((ctrl >> 2) & 7u) * 125u;
	return (ctrl & 0x40) ? ms * 16u : ms;
}

bool
fuzz_ctrl_tick(uint8_t ctrl)
{
	return (ctrl & 0x20) != 0;
}

uint8_t
fuzz_ctrl(unsigned from, uint32_t advance_ms, bool tick)
{
	uint8_t c = (uint8_t)((from - 1u) & 3u);
	uint32_t steps = advance_ms / 125u;
	if (steps > 7) {
		c |= 0x40;
		steps = advance_ms / 2000u;
		if (steps > 7)
			steps = 7;
	}
	c |= (uint8_t)(steps << 2);
	if (tick)
		c |= 0x20;
	return c;
}

static void
fuzz__log(void *ctx, enum mesh_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

const struct mesh_env *
fuzz_env(void)
{
	static struct mesh_env env;
	if (env.alloc == NULL) {
		env.alloc = mesh_alloc_default();
		env.log_fn = fuzz__log;
		env.log_level = MESH_LOG_WARN;
	}
	return &env;
}

void
fuzz_env_level_for(size_t size)
{
	struct mesh_env *env = (struct mesh_env *)fuzz_env();
	env->log_level = size % 4 == 0 ? MESH_LOG_DEBUG : MESH_LOG_WARN;
}

const char *
fuzz_name(unsigned i)
{
	static const char *const names[FUZZ_NODES] = {"fz0", "fz1", "fz2",
						      "fz3", "fz4"};
	return names[i % FUZZ_NODES];
}

void
fuzz_addr(unsigned i, struct swim_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = 4;
	a->ip[0] = 198;
	a->ip[1] = 18;
	a->ip[2] = 0;
	a->ip[3] = (uint8_t)(1 + i % FUZZ_NODES);
	a->port = 7946;
}

/* Node identities: signatures are keyed hashes (tests/support/hash_sig.h),
 * so records the harness nodes make verify and the fuzzer's own do not. */
static void
fuzz__swim_sign(void *ctx, const uint8_t *msg, size_t len,
		uint8_t sig[SWIM_SIG_BYTES])
{
	uint8_t key[SWIM_KEY_BYTES];
	hash_sig_key(fuzz_name((unsigned)(uintptr_t)ctx), key);
	hash_sig(key, msg, len, sig);
}

int
fuzz_add_known(struct swim *s, uint64_t now_ms, unsigned k)
{
	struct swim_addr a;
	uint8_t key[SWIM_KEY_BYTES], sig[SWIM_SIG_BYTES];
	uint8_t rec[SWIM_RECORD_MAX];
	fuzz_addr(k, &a);
	hash_sig_key(fuzz_name(k), key);
	size_t n = swim_record_bytes(fuzz_name(k), 1, false, &a, NULL, rec);
	hash_sig(key, rec, n, sig);
	return swim_add_known(s, now_ms, fuzz_name(k), &a, 1, NULL, key, sig);
}

int
fuzz_swim_new(unsigned i, uint64_t now_ms, struct swim **out)
{
	struct swim_config cfg;
	swim_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", fuzz_name(i));
	fuzz_addr(i, &cfg.addr);
	snprintf(cfg.meta.zone, sizeof(cfg.meta.zone), "z%u", i % 2);
	snprintf(cfg.meta.region, sizeof(cfg.meta.region), "r0");
	cfg.incarnation = 1;
	cfg.seed = 0x66757a7a00ull + i;
	hash_sig_key(fuzz_name(i), cfg.key);
	cfg.crypto.sign = fuzz__swim_sign;
	cfg.crypto.verify = hash_sig_verify;
	cfg.crypto.ctx = (void *)(uintptr_t)i;
	return swim_new(&cfg, fuzz_env(), now_ms, out);
}

struct swim *
fuzz_swim_target(uint64_t now_ms)
{
	struct swim *s = NULL;
	if (fuzz_swim_new(0, now_ms, &s) != 0) {
		fprintf(stderr, "fuzz: swim_new refused the harness config\n");
		abort();
	}
	for (unsigned i = 1; i <= FUZZ_PEERS; i++) {
		if (fuzz_add_known(s, now_ms, i) != 0) {
			fprintf(stderr, "fuzz: swim_add_known failed\n");
			abort();
		}
	}
	return s;
}

void
fuzz_swim_drain(struct swim *s)
{
	/* The core's own bookkeeping (digest kept member by member, counts,
	 * suspect and gone lists) must agree with its view after any input. */
	const char *why;
	if (swim_self_check(s, &why) != 0) {
		fprintf(stderr, "fuzz: swim_self_check: %s\n", why);
		abort();
	}
	struct swim_output o;
	while (swim_poll_output(s, &o)) {
		/* The driver seals and sends these as they are: a datagram
		 * over the budget would not fit in one UDP packet. */
		if (o.kind == SWIM_OUT_DATAGRAM && o.len > SWIM_DATAGRAM_MAX) {
			fprintf(stderr, "fuzz: datagram of %zu bytes\n", o.len);
			abort();
		}
		if (o.len > 0 && o.data == NULL)
			abort();
	}
	struct swim_event ev;
	while (swim_poll_event(s, &ev)) {
		if (memchr(ev.name, 0, sizeof(ev.name)) == NULL)
			abort();
	}
}

uint64_t
fuzz_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t
fuzz_swim_view_hash(const struct swim *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t n = swim_member_count(s);
	h = fuzz_fnv(h, &n, sizeof(n));
	for (size_t i = 0; i < n; i++) {
		struct swim_member_info mi;
		swim_member_at(s, i, &mi);
		uint64_t inc = mi.incarnation;
		uint32_t st = (uint32_t)mi.state;
		h = fuzz_fnv(h, mi.name, strlen(mi.name) + 1);
		h = fuzz_fnv(h, &inc, sizeof(inc));
		h = fuzz_fnv(h, &st, sizeof(st));
		h = fuzz_fnv(h, &mi.addr.family, 1);
		h = fuzz_fnv(h, mi.addr.ip, sizeof(mi.addr.ip));
		h = fuzz_fnv(h, &mi.addr.port, sizeof(mi.addr.port));
		if (mi.meta != NULL) {
			h = fuzz_fnv(h, mi.meta->zone, strlen(mi.meta->zone));
			h = fuzz_fnv(h, mi.meta->region,
				     strlen(mi.meta->region));
			h = fuzz_fnv(h, mi.meta->cell, strlen(mi.meta->cell));
			for (unsigned k = 0; k < mi.meta->kv_count; k++) {
				h = fuzz_fnv(h, mi.meta->kv[k].key,
					     strlen(mi.meta->kv[k].key) + 1);
				h = fuzz_fnv(h, mi.meta->kv[k].value,
					     strlen(mi.meta->kv[k].value) + 1);
			}
		}
	}
	return h;
}

struct ring *
fuzz_ring(void)
{
	struct ring_member m[FUZZ_PEERS + 1];
	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i <= FUZZ_PEERS; i++) {
		m[i].name = fuzz_name(i);
		m[i].zone = i % 2 ? "z1" : "z0";
		m[i].region = "r0";
		m[i].mem = 4096;
		m[i].alive = true;
	}
	struct ring *r = NULL;
	if (ring_new(fuzz_env(), NULL, m, FUZZ_PEERS + 1, &r) != 0) {
		fprintf(stderr, "fuzz: ring_new failed\n");
		abort();
	}
	return r;
}

static bool
fuzz__verify(void *ctx, const uint8_t *pub, const uint8_t *msg, size_t len,
	     const uint8_t *sig)
{
	(void)ctx;
	(void)pub;
	(void)msg;
	(void)len;
	(void)sig;
	return true;
}

struct tenant *
fuzz_tenant_new(unsigned i, uint64_t now_ms, struct mem_kv *kv,
		const struct ring *ring)
{
	struct tenant_config cfg;
	tenant_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", fuzz_name(i));
	cfg.replica_id = 0x1000 + i;
	cfg.seed = 0x74656e00ull + i;
	cfg.replicas = 3;
	cfg.anti_entropy_ms = 500;
	cfg.request_timeout_ms = 1000;
	cfg.wall_offset_ms = 1700000000000LL;
	cfg.verify = fuzz__verify;
	mem_kv_init(kv, fuzz_env()->alloc);
	mem_kv_bind(kv, &cfg.kv);
	struct tenant *t = NULL;
	if (tenant_new(&cfg, fuzz_env(), now_ms, &t) != 0) {
		fprintf(stderr, "fuzz: tenant_new failed\n");
		abort();
	}
	tenant_set_view(t, now_ms, ring, NULL);
	return t;
}

void
fuzz_tenant_drain(struct tenant *t)
{
	struct tenant_output o;
	while (tenant_poll_output(t, &o)) {
		if (o.to == NULL || o.len == 0 || o.data == NULL)
			abort();
	}
	struct tenant_reply r;
	while (tenant_poll_reply(t, &r)) {
		if (r.error == NULL)
			abort();
	}
	struct tenant_change ch;
	while (tenant_poll_change(t, &ch)) {
	}
}
