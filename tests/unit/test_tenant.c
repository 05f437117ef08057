/*
 * test_tenant.c - the tenant core over an in-process cluster
 * (tests/support/tenant_cluster.c): operations, replication, acks,
 * anti-entropy, handoff, isolation, quotas, store failures, bad frames.
 */
#include "tenant_cluster.h"

#include "mesh_err.h"
#include "tenant_cap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static struct tc *
tc_new(size_t n, unsigned replicas)
{
	static struct tc c;
	tc_init(&c, n, replicas);
	return &c;
}

static const struct tc_reply *
op(struct tc *c, size_t node, enum tenant_op o, const char *key,
   const char *value, int64_t n, enum tenant_ack ack)
{
	uint64_t id =
	    tc_submit(c, node, o, "acme", key, value, n, ack, NULL, 0);
	assert_true(id != 0);
	tc_run(c, 50);
	const struct tc_reply *r = tc_find(c, id);
	assert_non_null(r);
	return r;
}

/* Replicas of "acme" as node indexes, from the nodes that hold it. */
static size_t
holders(struct tc *c, size_t *out)
{
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++)
		if (tc_digest(c, i, "acme") != 0)
			out[k++] = i;
	return k;
}

/* Asserts that exactly three nodes replicate "acme" and hold it with one
 * digest; fills @h with them and returns the digest. */
static uint64_t
converged3(struct tc *c, size_t *h)
{
	assert_int_equal(holders(c, h), 3);
	uint64_t d = tc_digest(c, h[0], "acme");
	assert_true(d != 0);
	assert_int_equal(tc_digest(c, h[1], "acme"), d);
	assert_int_equal(tc_digest(c, h[2], "acme"), d);
	return d;
}

static void
test_tenant_put_get_anywhere(void **state)
{
	(void)state;
	struct tc *c = tc_new(5, 3);
	const struct tc_reply *r = tc_create(c, 0, "acme");
	assert_non_null(r);
	assert_int_equal(r->rc, 0);
	r = op(c, 1, TENANT_OP_PUT, "colour", "blue", 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->acks, 1);
	/* Every node answers, replica or not. */
	for (size_t i = 0; i < c->n; i++) {
		r = op(c, i, TENANT_OP_GET, "colour", NULL, 0, TENANT_ACK_ONE);
		assert_int_equal(r->rc, 0);
		assert_int_equal(r->kind, CRDT_MV);
		assert_int_equal(r->nvalues, 1);
		assert_string_equal(r->values[0], "blue");
	}
	size_t h[TC_NODES_MAX];
	assert_int_equal(holders(c, h), 3);
	r = op(c, 2, TENANT_OP_GET, "nothing", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, MESH_ENOENT);
	tc_destroy(c);
}

static void
test_tenant_replicas_converge_concurrent(void **state)
{
	(void)state;
	struct tc *c = tc_new(6, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	tc_run(c, 500);
	size_t h[TC_NODES_MAX];
	assert_int_equal(holders(c, h), 3);
	/* Two replicas write the same key before hearing of each other. */
	uint64_t a = tc_submit(c, h[0], TENANT_OP_PUT, "acme", "k", "x", 0,
			       TENANT_ACK_ONE, NULL, 0);
	uint64_t b = tc_submit(c, h[1], TENANT_OP_PUT, "acme", "k", "y", 0,
			       TENANT_ACK_ONE, NULL, 0);
	for (int i = 0; i < 50; i++)
		tc_submit(c, h[i % 3], TENANT_OP_INC, "acme", "hits", NULL, 2,
			  TENANT_ACK_ONE, NULL, 0);
	tc_run(c, 1000);
	assert_int_equal(tc_find(c, a)->rc, 0);
	assert_int_equal(tc_find(c, b)->rc, 0);
	converged3(c, h);
	const struct tc_reply *r =
	    op(c, h[2], TENANT_OP_GET, "k", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->nvalues, 2); /* both concurrent values */
	r = op(c, h[1], TENANT_OP_GET, "hits", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->kind, CRDT_PNCOUNTER);
	assert_int_equal(r->counter, 100);
	/* A later write replaces both. */
	op(c, h[2], TENANT_OP_PUT, "k", "z", 0, TENANT_ACK_ALL);
	r = op(c, h[0], TENANT_OP_GET, "k", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->nvalues, 1);
	assert_string_equal(r->values[0], "z");
	tc_destroy(c);
}

static void
test_tenant_ack_levels(void **state)
{
	(void)state;
	struct tc *c = tc_new(5, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	tc_run(c, 500);
	const struct tc_reply *r =
	    op(c, 4, TENANT_OP_PUT, "a", "1", 0, TENANT_ACK_ALL);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->acks, 3);
	size_t h[TC_NODES_MAX];
	assert_int_equal(holders(c, h), 3);
	/* One replica down: quorum still answers, all times out with 2. */
	tc_crash(c, h[2]);
	size_t other = h[0];
	r = op(c, other, TENANT_OP_PUT, "b", "2", 0, TENANT_ACK_QUORUM);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->acks, 2);
	uint64_t id = tc_submit(c, other, TENANT_OP_PUT, "acme", "c", "3", 0,
				TENANT_ACK_ALL, NULL, 0);
	tc_run(c, 600);
	r = tc_find(c, id);
	assert_non_null(r);
	assert_int_equal(r->rc, MESH_ETIMEDOUT);
	assert_int_equal(r->acks, 2);
	/* Back up: anti-entropy brings it what it missed. */
	tc_restart(c, h[2]);
	tc_run(c, 1500);
	assert_int_equal(tc_digest(c, h[2], "acme"),
			 tc_digest(c, h[0], "acme"));
	r = op(c, h[2], TENANT_OP_GET, "c", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, 0);
	assert_string_equal(r->values[0], "3");
	/* Compared and equal: nobody is behind, nothing is unacked. */
	tc_run(c, 600);
	for (size_t k = 0; k < 3; k++) {
		struct tenant_info ti;
		assert_int_equal(
		    tenant_info_at(c->node[h[k]].t, c->now, 0, &ti), 0);
		assert_int_equal(ti.behind, 0);
	}
	tc_destroy(c);
}

static void
test_tenant_isolation_every_op(void **state)
{
	(void)state;
	struct tc *c = tc_new(4, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	/* A second tenant with its own key pair. */
	unsigned char pk2[32], sk2[64], pk1[32];
	crypto_sign_keypair(pk2, sk2);
	memcpy(pk1, c->pk, 32);
	memcpy(c->pk, pk2, 32);
	assert_int_equal(tc_create(c, 1, "globex")->rc, 0);
	memcpy(c->pk, pk1, 32);
	uint8_t gcap[512];
	size_t glen = tc_cap("globex", TENANT_READ | TENANT_WRITE, 0, pk2, sk2,
			     gcap, sizeof(gcap));
	op(c, 0, TENANT_OP_PUT, "secret", "acme-only", 0, TENANT_ACK_ALL);
	/* globex's capability on acme: refused for every operation. */
	enum tenant_op ops[] = {TENANT_OP_GET,	 TENANT_OP_PUT, TENANT_OP_INC,
				TENANT_OP_ADD,	 TENANT_OP_RM,	TENANT_OP_KEYS,
				TENANT_OP_DIGEST};
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		for (size_t i = 0; i < c->n; i++) {
			uint64_t id =
			    tc_submit(c, i, ops[k], "acme", "secret", "v", 1,
				      TENANT_ACK_ONE, gcap, glen);
			tc_run(c, 30);
			const struct tc_reply *r = tc_find(c, id);
			assert_non_null(r);
			assert_int_equal(r->rc, MESH_EAUTH);
			assert_int_equal(r->nvalues, 0);
		}
	/* A capability that names acme but is signed by globex's key. */
	uint8_t forged[512];
	size_t flen =
	    tc_cap("acme", TENANT_READ, 0, pk2, sk2, forged, sizeof(forged));
	uint64_t id = tc_submit(c, 2, TENANT_OP_GET, "acme", "secret", NULL, 0,
				TENANT_ACK_ONE, forged, flen);
	tc_run(c, 30);
	assert_int_equal(tc_find(c, id)->rc, MESH_EAUTH);
	/* Read-only, expired and garbage capabilities. */
	uint8_t ro[512], old[512];
	size_t rolen =
	    tc_cap("acme", TENANT_READ, 0, c->pk, c->sk, ro, sizeof(ro));
	size_t oldlen = tc_cap("acme", TENANT_READ | TENANT_WRITE, 1000, c->pk,
			       c->sk, old, sizeof(old));
	id = tc_submit(c, 0, TENANT_OP_PUT, "acme", "x", "1", 0, TENANT_ACK_ONE,
		       ro, rolen);
	tc_run(c, 30);
	assert_int_equal(tc_find(c, id)->rc, MESH_EAUTH);
	id = tc_submit(c, 0, TENANT_OP_GET, "acme", "secret", NULL, 0,
		       TENANT_ACK_ONE, ro, rolen);
	tc_run(c, 30);
	assert_int_equal(tc_find(c, id)->rc, 0);
	id = tc_submit(c, 0, TENANT_OP_GET, "acme", "secret", NULL, 0,
		       TENANT_ACK_ONE, old, oldlen);
	tc_run(c, 30);
	assert_int_equal(tc_find(c, id)->rc, MESH_ESTATE);
	id = tc_submit(c, 0, TENANT_OP_GET, "acme", "secret", NULL, 0,
		       TENANT_ACK_ONE, (const uint8_t *)"junk", 4);
	tc_run(c, 30);
	assert_int_equal(tc_find(c, id)->rc, MESH_EDECODE);
	/* A create repeated with acme's own key (a retry after a timeout)
	 * is acknowledged again; with another key it is refused, and the
	 * tenant keeps its key. */
	assert_int_equal(tc_create(c, 3, "acme")->rc, 0);
	unsigned char pk[32];
	memcpy(pk, c->pk, sizeof(pk));
	c->pk[0] ^= 1;
	assert_int_equal(tc_create(c, 3, "acme")->rc, MESH_EEXIST);
	memcpy(c->pk, pk, sizeof(pk));
	id = tc_submit(c, 3, TENANT_OP_GET, "acme", "secret", NULL, 0,
		       TENANT_ACK_ONE, NULL, 0);
	tc_run(c, 30);
	assert_int_equal(tc_find(c, id)->rc, 0);
	tc_destroy(c);
}

static void
test_tenant_sets_and_removes(void **state)
{
	(void)state;
	struct tc *c = tc_new(4, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	/* An empty tenant lists no keys (an empty list to sort: once UB). */
	const struct tc_reply *none =
	    op(c, 1, TENANT_OP_KEYS, NULL, NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(none->rc, 0);
	assert_int_equal(none->nvalues, 0);
	op(c, 1, TENANT_OP_ADD, "tags", "b", 0, TENANT_ACK_ALL);
	op(c, 2, TENANT_OP_ADD, "tags", "a", 0, TENANT_ACK_ALL);
	op(c, 3, TENANT_OP_ADD, "tags", "c", 0, TENANT_ACK_ALL);
	op(c, 0, TENANT_OP_RM, "tags", "b", 0, TENANT_ACK_ALL);
	const struct tc_reply *r =
	    op(c, 1, TENANT_OP_GET, "tags", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->kind, CRDT_ORSET);
	assert_int_equal(r->nvalues, 2);
	assert_string_equal(r->values[0], "a");
	assert_string_equal(r->values[1], "c");
	op(c, 0, TENANT_OP_PUT, "name", "v", 0, TENANT_ACK_ALL);
	r = op(c, 2, TENANT_OP_KEYS, NULL, NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->nvalues, 2);
	assert_string_equal(r->values[0], "name");
	assert_string_equal(r->values[1], "tags");
	/* Removing the key removes every kind under it, on every replica. */
	r = op(c, 3, TENANT_OP_RM, "tags", NULL, 0, TENANT_ACK_ALL);
	assert_int_equal(r->rc, 0);
	for (size_t i = 0; i < c->n; i++) {
		r = op(c, i, TENANT_OP_GET, "tags", NULL, 0, TENANT_ACK_ONE);
		assert_int_equal(r->rc, MESH_ENOENT);
	}
	tc_run(c, 600);
	size_t h[TC_NODES_MAX];
	converged3(c, h);
	tc_destroy(c);
}

static void
test_tenant_anti_entropy_brings_removals(void **state)
{
	(void)state;
	struct tc *c = tc_new(4, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	tc_run(c, 300);
	size_t h[TC_NODES_MAX];
	assert_int_equal(holders(c, h), 3);
	op(c, h[0], TENANT_OP_ADD, "s", "keep", 0, TENANT_ACK_ALL);
	op(c, h[0], TENANT_OP_ADD, "s", "drop", 0, TENANT_ACK_ALL);
	op(c, h[0], TENANT_OP_PUT, "gone", "x", 0, TENANT_ACK_ALL);
	/* h[2] is cut off while a remove and new writes happen. */
	c->node[h[2]].group = 1;
	op(c, h[0], TENANT_OP_RM, "s", "drop", 0, TENANT_ACK_ONE);
	op(c, h[1], TENANT_OP_RM, "gone", NULL, 0, TENANT_ACK_ONE);
	op(c, h[1], TENANT_OP_PUT, "new", "y", 0, TENANT_ACK_ONE);
	tc_run(c, 400);
	assert_true(tc_digest(c, h[2], "acme") != tc_digest(c, h[0], "acme"));
	c->node[h[2]].group = 0;
	tc_run(c, 1000);
	assert_int_equal(tc_digest(c, h[2], "acme"),
			 tc_digest(c, h[0], "acme"));
	const struct tc_reply *r =
	    op(c, h[2], TENANT_OP_GET, "s", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->nvalues, 1);
	assert_string_equal(r->values[0], "keep");
	r = op(c, h[2], TENANT_OP_GET, "gone", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, MESH_ENOENT);
	r = op(c, h[2], TENANT_OP_GET, "new", NULL, 0, TENANT_ACK_ONE);
	assert_string_equal(r->values[0], "y");
	tc_destroy(c);
}

static void
test_tenant_handoff_keeps_data(void **state)
{
	(void)state;
	struct tc *c = tc_new(8, 3);
	/* Start with 3 nodes in the view; the others join later. */
	for (size_t i = 3; i < c->n; i++)
		c->node[i].in_view = false;
	tc_view(c);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	for (int i = 0; i < 40; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		op(c, (size_t)i % 3, TENANT_OP_PUT, k, k, 0, TENANT_ACK_QUORUM);
	}
	op(c, 0, TENANT_OP_RM, "k7", NULL, 0, TENANT_ACK_ALL);
	for (size_t i = 3; i < c->n; i++)
		c->node[i].in_view = true;
	tc_view(c);
	tc_run(c, 3000);
	/* Exactly the three new owners hold it; every key is there. */
	size_t h[TC_NODES_MAX];
	converged3(c, h);
	for (int i = 0; i < 40; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		const struct tc_reply *r =
		    op(c, h[i % 3], TENANT_OP_GET, k, NULL, 0, TENANT_ACK_ONE);
		if (i == 7) {
			assert_int_equal(r->rc, MESH_ENOENT);
			continue;
		}
		assert_int_equal(r->rc, 0);
		assert_string_equal(r->values[0], k);
	}
	tc_destroy(c);
}

/* A state bigger than one pull answer moves in several parts; each part
 * must claim only what it carries, or the receiver would believe it has
 * seen the fields of parts still to come and drop them on arrival. */
static void
test_tenant_big_state_moves_in_parts(void **state)
{
	(void)state;
	struct tc *c = tc_new(4, 3);
	c->node[3].in_view = false;
	tc_view(c);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	enum { KEYS = 9000 };
	for (int i = 0; i < KEYS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "key%05d", i);
		tc_submit(c, (size_t)i % 3, TENANT_OP_PUT, "acme", k, k, 0,
			  TENANT_ACK_ONE, NULL, 0);
	}
	tc_run(c, 500);
	c->node[3].in_view = true;
	tc_view(c);
	tc_run(c, 3000);
	size_t h[TC_NODES_MAX];
	converged3(c, h);
	bool has3 = false;
	for (size_t i = 0; i < 3; i++)
		has3 |= h[i] == 3;
	assert_true(has3);
	struct tenant_info info;
	for (size_t k = 0; k < tenant_count(c->node[3].t); k++) {
		tenant_info_at(c->node[3].t, c->now, k, &info);
		if (strcmp(info.tenant, "acme") == 0)
			assert_int_equal(info.keys, KEYS + 1);
	}
	for (int i = 0; i < KEYS; i += 997) {
		char k[16];
		snprintf(k, sizeof(k), "key%05d", i);
		const struct tc_reply *r =
		    op(c, 3, TENANT_OP_GET, k, NULL, 0, TENANT_ACK_ONE);
		assert_int_equal(r->rc, 0);
		assert_string_equal(r->values[0], k);
	}
	tc_destroy(c);
}

/* Right after a view change the new replicas hold nothing yet; a request
 * forwarded to one of them goes on to the next replica, and a node whose
 * replicas are all new is told to retry, until one round has passed. */
static void
test_tenant_new_replica_passes_requests_on(void **state)
{
	(void)state;
	struct tc *c = tc_new(8, 3);
	/* A tenant whose primary in the full view is new (n3..n7) and whose
	 * second replica is an old holder (n0..n2). */
	struct ring_member m[8];
	for (size_t i = 0; i < 8; i++)
		m[i] = (struct ring_member){.name = c->node[i].name,
					    .alive = true};
	struct ring *full;
	assert_int_equal(ring_new(&c->te.env, NULL, m, 8, &full), 0);
	char name[16] = "";
	uint32_t idx[3];
	for (int k = 0; k < 1000 && name[0] == 0; k++) {
		char cand[16];
		snprintf(cand, sizeof(cand), "t%d", k);
		ring_lookup(full, ring_hash_key(full, cand, strlen(cand)), 3,
			    idx);
		if (idx[0] >= 3 && idx[1] < 3)
			snprintf(name, sizeof(name), "%s", cand);
	}
	ring_free(full);
	assert_true(name[0] != 0);
	uint8_t cap[512];
	size_t cap_len = tc_cap(name, TENANT_READ | TENANT_WRITE, 0, c->pk,
				c->sk, cap, sizeof(cap));
	for (size_t i = 3; i < c->n; i++)
		c->node[i].in_view = false;
	tc_view(c);
	assert_int_equal(tc_create(c, 0, name)->rc, 0);
	/* "acme" has only new replicas in the full view (n3, n5, n6). */
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	op(c, 2, TENANT_OP_PUT, "a", "old", 0, TENANT_ACK_ALL);
	uint64_t id = tc_submit(c, 1, TENANT_OP_PUT, name, "k", "v", 0,
				TENANT_ACK_ALL, cap, cap_len);
	tc_run(c, 50);
	assert_int_equal(tc_find(c, id)->rc, 0);
	for (size_t i = 3; i < c->n; i++)
		c->node[i].in_view = true;
	tc_view(c);
	/* At once, from every node: the new primary does not hold it yet,
	 * the second replica does and answers. */
	uint64_t ids[8];
	for (size_t i = 0; i < c->n; i++)
		ids[i] = tc_submit(c, i, TENANT_OP_GET, name, "k", NULL, 0,
				   TENANT_ACK_ONE, cap, cap_len);
	tc_run(c, 20);
	for (size_t i = 0; i < c->n; i++) {
		const struct tc_reply *r = tc_find(c, ids[i]);
		assert_non_null(r);
		assert_int_equal(r->rc, 0);
		assert_string_equal(r->values[0], "v");
	}
	/* A tenant whose replicas are all new: a node that still holds it
	 * serves it at once; others are told to retry until a round has
	 * passed. */
	for (size_t i = 0; i < c->n; i++)
		ids[i] = tc_submit(c, i, TENANT_OP_GET, "acme", "a", NULL, 0,
				   TENANT_ACK_ONE, NULL, 0);
	tc_run(c, 20);
	for (size_t i = 0; i < c->n; i++) {
		const struct tc_reply *r = tc_find(c, ids[i]);
		assert_non_null(r);
		if (i < 3) {
			assert_int_equal(r->rc, 0);
			assert_string_equal(r->values[0], "old");
		} else if (r->rc != 0) {
			assert_int_equal(r->rc, MESH_ENOENT);
			assert_non_null(strstr(r->error, "retry"));
		}
	}
	tc_run(c, 400);
	const struct tc_reply *ra =
	    op(c, 7, TENANT_OP_GET, "a", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(ra->rc, 0);
	for (size_t i = 0; i < c->n; i++) {
		id = tc_submit(c, i, TENANT_OP_GET, name, "k", NULL, 0,
			       TENANT_ACK_ONE, cap, cap_len);
		tc_run(c, 20);
		const struct tc_reply *r = tc_find(c, id);
		assert_non_null(r);
		assert_int_equal(r->rc, 0);
	}
	tc_destroy(c);
}

static void
test_tenant_store_full_refuses_cleanly(void **state)
{
	(void)state;
	struct tc *c = tc_new(3, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	op(c, 0, TENANT_OP_PUT, "a", "1", 0, TENANT_ACK_ALL);
	uint64_t before = tc_digest(c, 0, "acme");
	c->node[0].kv.fail_commits = 1;
	const struct tc_reply *r =
	    op(c, 0, TENANT_OP_PUT, "a", "2", 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, MESH_ENOSPC);
	assert_non_null(strstr(r->error, "nothing written"));
	assert_int_equal(tc_digest(c, 0, "acme"), before);
	r = op(c, 0, TENANT_OP_GET, "a", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, 0);
	assert_string_equal(r->values[0], "1");
	/* The next write works. */
	r = op(c, 0, TENANT_OP_PUT, "a", "3", 0, TENANT_ACK_ALL);
	assert_int_equal(r->rc, 0);
	tc_destroy(c);
}

static void
test_tenant_restart_keeps_dots(void **state)
{
	(void)state;
	struct tc *c = tc_new(3, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	op(c, 0, TENANT_OP_INC, "n", NULL, 5, TENANT_ACK_ALL);
	tc_crash(c, 0);
	tc_restart(c, 0);
	/* A restarted node continues its dots: its new increment must not
	 * be mistaken for the old one on the other replicas. */
	op(c, 0, TENANT_OP_INC, "n", NULL, 7, TENANT_ACK_ALL);
	const struct tc_reply *r =
	    op(c, 1, TENANT_OP_GET, "n", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->counter, 12);
	tc_destroy(c);
}

static void
test_tenant_quota_and_rate(void **state)
{
	(void)state;
	struct tc *c = tc_new(1, 1);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	/* Quotas are config: restart the node with them. The key field
	 * counts as one key, so three more fit. */
	tc_crash(c, 0);
	c->quota_keys = 4;
	c->quota_bytes = 1 << 20;
	tc_restart(c, 0);
	const struct tc_reply *r;
	for (int i = 0; i < 3; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%d", i);
		r = op(c, 0, TENANT_OP_PUT, k, "v", 0, TENANT_ACK_ONE);
		assert_int_equal(r->rc, 0);
	}
	uint64_t before = tc_digest(c, 0, "acme");
	r = op(c, 0, TENANT_OP_PUT, "k3", "v", 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, MESH_EFULL);
	assert_non_null(strstr(r->error, "quota"));
	assert_int_equal(tc_digest(c, 0, "acme"), before);
	/* Overwriting and removing still work over the quota. */
	r = op(c, 0, TENANT_OP_PUT, "k1", "w", 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, 0);
	r = op(c, 0, TENANT_OP_RM, "k0", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, 0);
	r = op(c, 0, TENANT_OP_PUT, "k3", "v", 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, 0);
	/* Rate: a burst of 3, then one per second. */
	tc_crash(c, 0);
	c->quota_keys = 0;
	c->rate_per_s = 1;
	c->rate_burst = 3;
	tc_restart(c, 0);
	int ok = 0, limited = 0;
	for (int i = 0; i < 6; i++) {
		uint64_t id = tc_submit(c, 0, TENANT_OP_INC, "acme", "n", NULL,
					1, TENANT_ACK_ONE, NULL, 0);
		const struct tc_reply *x = tc_find(c, id);
		assert_non_null(x);
		ok += x->rc == 0;
		limited += x->rc == MESH_EAGAIN;
	}
	assert_int_equal(ok, 3);
	assert_int_equal(limited, 3);
	tc_run(c, 1100);
	r = op(c, 0, TENANT_OP_INC, "n", NULL, 1, TENANT_ACK_ONE);
	assert_int_equal(r->rc, 0);
	r = op(c, 0, TENANT_OP_GET, "n", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->counter, 4);
	tc_destroy(c);
}

static void
test_tenant_hostile_frames(void **state)
{
	(void)state;
	struct tc *c = tc_new(3, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	struct tenant *t = c->node[1].t;
	uint64_t before = tc_digest(c, 1, "acme");
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02};
	assert_int_equal(tenant_recv(t, c->now, junk, sizeof(junk)),
			 MESH_EDECODE);
	/* protocol_version 2.0 */
	static const uint8_t v2[] = {0x08, 0x80, 0x04, 0x12, 0x02, 'n', '0'};
	assert_int_equal(tenant_recv(t, c->now, v2, sizeof(v2)), MESH_EVERSION);
	/* A delta with a map that is not an OR-map is counted, not
	 * applied: field 3 (deltas) { tenant "acme", map = garbage }. */
	static const uint8_t bad[] = {0x08, 0x80, 0x02, 0x12, 0x02, 'n', '0',
				      0x1a, 0x0b, 0x0a, 0x04, 'a',  'c', 'm',
				      'e',  0x1a, 0x03, 0xff, 0xff, 0xff};
	assert_int_equal(tenant_recv(t, c->now, bad, sizeof(bad)), 0);
	const struct tenant_stats *st = tenant_stats(t);
	assert_true(st->drop_decode >= 1);
	assert_true(st->drop_version >= 1);
	assert_true(st->drop_bad_delta >= 1);
	assert_int_equal(tc_digest(c, 1, "acme"), before);
	/* Every truncation of a real frame is refused or harmless. */
	tc_destroy(c);
}

/* A quorum is a majority of the configured replicas: a node that sees
 * only itself (just restarted) cannot acknowledge a quorum write alone. */
static void
test_tenant_quorum_needs_majority_of_rf(void **state)
{
	(void)state;
	struct tc *c = tc_new(3, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	op(c, 0, TENANT_OP_PUT, "a", "1", 0, TENANT_ACK_ALL);
	c->node[1].in_view = c->node[2].in_view = false;
	c->node[1].group = c->node[2].group = 1;
	tc_view(c);
	uint64_t id = tc_submit(c, 0, TENANT_OP_PUT, "acme", "b", "2", 0,
				TENANT_ACK_QUORUM, NULL, 0);
	tc_run(c, 600);
	const struct tc_reply *r = tc_find(c, id);
	assert_non_null(r);
	assert_int_equal(r->rc, MESH_ETIMEDOUT);
	assert_int_equal(r->acks, 1);
	/* `one` still works, and is honest about it. */
	r = op(c, 0, TENANT_OP_PUT, "c", "3", 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->acks, 1);
	tc_destroy(c);
}

/* A replica that lost its copy (or never had one) and takes no writes is
 * still filled: a pair digest mismatch makes it hear the tenant list even
 * though it has none of its own to send. */
static void
test_tenant_empty_replica_is_filled(void **state)
{
	(void)state;
	struct tc *c = tc_new(4, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	op(c, 0, TENANT_OP_PUT, "a", "1", 0, TENANT_ACK_ALL);
	tc_run(c, 300);
	size_t h[TC_NODES_MAX];
	assert_int_equal(holders(c, h), 3);
	tc_crash(c, h[0]);
	c->node[h[0]].in_view = false;
	tc_view(c);
	tc_run(c, 1000);
	converged3(c, h);
	tc_destroy(c);
}

/* Handoff ends even while the new replicas keep taking writes: an old
 * copy is dropped once every new replica has seen all it holds. */
static void
test_tenant_handoff_ends_under_writes(void **state)
{
	(void)state;
	struct tc *c = tc_new(8, 3);
	for (size_t i = 3; i < c->n; i++)
		c->node[i].in_view = false;
	tc_view(c);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	op(c, 0, TENANT_OP_PUT, "a", "1", 0, TENANT_ACK_ALL);
	for (size_t i = 3; i < c->n; i++)
		c->node[i].in_view = true;
	tc_view(c);
	uint64_t ids[200];
	for (int i = 0; i < 200; i++) {
		ids[i] = tc_submit(c, (size_t)i % c->n, TENANT_OP_INC, "acme",
				   "n", NULL, 1, TENANT_ACK_ONE, NULL, 0);
		tc_run(c, 10);
	}
	int64_t acked = 0;
	for (int i = 0; i < 200; i++) {
		const struct tc_reply *x = tc_find(c, ids[i]);
		assert_non_null(x);
		if (x->rc == 0)
			acked++;
		else
			assert_non_null(strstr(x->error, "retry"));
	}
	assert_true(acked > 150);
	tc_run(c, 600);
	size_t stale = 0, reps = 0;
	for (size_t i = 0; i < c->n; i++)
		for (size_t k = 0; k < tenant_count(c->node[i].t); k++) {
			struct tenant_info ti;
			tenant_info_at(c->node[i].t, c->now, k, &ti);
			stale += !ti.replica;
			reps += ti.replica;
		}
	assert_int_equal(stale, 0);
	assert_int_equal(reps, 3);
	const struct tc_reply *r =
	    op(c, 5, TENANT_OP_GET, "n", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->counter, acked);
	tc_destroy(c);
}

/* A create on the far side of a partition, where no replica holds the
 * tenant, succeeds there; at the heal the earlier create keeps the tenant
 * and the later one's capabilities stop working: no takeover. */
static void
test_tenant_create_in_split_cannot_take_over(void **state)
{
	(void)state;
	struct tc *c = tc_new(5, 3);
	uint32_t idx[3];
	assert_int_equal(
	    ring_lookup(c->ring, ring_hash_key(c->ring, "acme", 4), 3, idx), 3);
	/* The owner creates at the first replica, cut off from the others. */
	for (size_t i = 0; i < c->n; i++)
		c->node[i].group = i == idx[0] ? 0 : 1;
	assert_int_equal(tc_create(c, idx[0], "acme")->rc, 0);
	op(c, idx[0], TENANT_OP_PUT, "secret", "owner", 0, TENANT_ACK_ONE);
	tc_run(c, 100);
	/* A second create, later, on the side that holds nothing. */
	unsigned char pk1[32], sk1[64], pk2[32], sk2[64];
	memcpy(pk1, c->pk, 32);
	memcpy(sk1, c->sk, 64);
	crypto_sign_keypair(pk2, sk2);
	memcpy(c->pk, pk2, 32);
	assert_int_equal(tc_create(c, idx[1], "acme")->rc, 0);
	memcpy(c->pk, pk1, 32);
	uint8_t cap2[512];
	size_t cap2_len = tc_cap("acme", TENANT_READ | TENANT_WRITE, 0, pk2,
				 sk2, cap2, sizeof(cap2));
	for (size_t i = 0; i < c->n; i++)
		c->node[i].group = 0;
	tc_run(c, 1500);
	for (size_t k = 0; k < 3; k++) {
		uint64_t id =
		    tc_submit(c, idx[k], TENANT_OP_GET, "acme", "secret", NULL,
			      0, TENANT_ACK_ONE, cap2, cap2_len);
		tc_run(c, 20);
		assert_int_equal(tc_find(c, id)->rc, MESH_EAUTH);
		const struct tc_reply *r =
		    op(c, idx[k], TENANT_OP_GET, "secret", NULL, 0,
		       TENANT_ACK_ONE);
		assert_int_equal(r->rc, 0);
		assert_string_equal(r->values[0], "owner");
	}
	(void)sk1;
	tc_destroy(c);
}

/* An ack nobody waits for (ack=one) does not get a frame of its own: it
 * waits up to 250 ms for other traffic, then goes back as one cumulative
 * ack; a quorum write's ack goes at once. */
static void
test_tenant_lazy_acks(void **state)
{
	(void)state;
	struct tc *c = tc_new(3, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	tc_run(c, 1000);
	uint64_t frames[3];
	for (size_t i = 0; i < 3; i++)
		frames[i] = tenant_stats(c->node[i].t)->frames_sent;
	for (int k = 0; k < 5; k++)
		tc_submit(c, 0, TENANT_OP_INC, "acme", "n", NULL, 1,
			  TENANT_ACK_ONE, NULL, 0);
	tc_run(c, 20);
	/* Node 0 sent the deltas; the others answered nothing yet. */
	assert_true(tenant_stats(c->node[0].t)->frames_sent - frames[0] >= 2);
	assert_int_equal(tenant_stats(c->node[1].t)->frames_sent, frames[1]);
	assert_int_equal(tenant_stats(c->node[2].t)->frames_sent, frames[2]);
	struct tenant_info ti;
	tenant_info_at(c->node[0].t, c->now, 0, &ti);
	assert_true(ti.oldest_unacked_ms >= 10);
	tc_run(c, 300);
	tenant_info_at(c->node[0].t, c->now, 0, &ti);
	assert_int_equal(ti.oldest_unacked_ms, 0);
	/* A quorum write is answered within a few steps. */
	uint64_t id = tc_submit(c, 0, TENANT_OP_INC, "acme", "n", NULL, 1,
				TENANT_ACK_QUORUM, NULL, 0);
	tc_run(c, 5);
	assert_non_null(tc_find(c, id));
	assert_int_equal(tc_find(c, id)->rc, 0);
	tc_destroy(c);
}

/* Fields of a pull answer are sized by their records, not counted: 40
 * values of 60 KB (2.4 MB) go in parts of about 1 MB each. */
static void
test_tenant_big_values_move_in_parts(void **state)
{
	(void)state;
	struct tc *c = tc_new(4, 3);
	c->node[3].in_view = false;
	tc_view(c);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	static char big[60001];
	for (int i = 0; i < 40; i++) {
		char k[16];
		snprintf(k, sizeof(k), "big%02d", i);
		memset(big, 'a' + i % 26, sizeof(big) - 1);
		tc_submit(c, 0, TENANT_OP_PUT, "acme", k, big, 0,
			  TENANT_ACK_ONE, NULL, 0);
	}
	tc_run(c, 300);
	uint64_t frames = tenant_stats(c->node[0].t)->frames_sent +
			  tenant_stats(c->node[1].t)->frames_sent +
			  tenant_stats(c->node[2].t)->frames_sent;
	c->node[3].in_view = true;
	tc_view(c);
	tc_run(c, 2000);
	size_t h[TC_NODES_MAX];
	uint64_t d = converged3(c, h);
	assert_int_equal(tc_digest(c, 3, "acme"), d);
	uint64_t after = tenant_stats(c->node[0].t)->frames_sent +
			 tenant_stats(c->node[1].t)->frames_sent +
			 tenant_stats(c->node[2].t)->frames_sent;
	assert_true(after - frames >= 3); /* 2.4 MB took several frames */
	struct tenant_info ti;
	tenant_info_at(c->node[3].t, c->now, 0, &ti);
	assert_int_equal(ti.keys, 41);
	tc_destroy(c);
}

/* put --lww: concurrent writes leave one value, the same everywhere, and
 * it is the last one by the hybrid clock; a plain put keeps both. */
static void
test_tenant_lww_register(void **state)
{
	(void)state;
	struct tc *c = tc_new(3, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	c->lww = true;
	uint64_t a = tc_submit(c, 0, TENANT_OP_PUT, "acme", "k", "first", 0,
			       TENANT_ACK_ONE, NULL, 0);
	c->now += 5;
	uint64_t b = tc_submit(c, 1, TENANT_OP_PUT, "acme", "k", "second", 0,
			       TENANT_ACK_ONE, NULL, 0);
	c->lww = false;
	tc_run(c, 500);
	assert_int_equal(tc_find(c, a)->rc, 0);
	assert_int_equal(tc_find(c, b)->rc, 0);
	for (size_t i = 0; i < 3; i++) {
		const struct tc_reply *r =
		    op(c, i, TENANT_OP_GET, "k", NULL, 0, TENANT_ACK_ONE);
		assert_int_equal(r->rc, 0);
		assert_int_equal(r->kind, CRDT_LWW);
		assert_int_equal(r->nvalues, 1);
		assert_string_equal(r->values[0], "second");
	}
	assert_int_equal(tc_digest(c, 0, "acme"), tc_digest(c, 2, "acme"));
	tc_destroy(c);
}

/* Keys inside a nested map: every value type works there, the map is one
 * top-level key, removals inside it reach a replica that was cut off. */
static void
test_tenant_nested_map(void **state)
{
	(void)state;
	struct tc *c = tc_new(3, 3);
	assert_int_equal(tc_create(c, 0, "acme")->rc, 0);
	c->map = "prefs";
	op(c, 0, TENANT_OP_PUT, "colour", "blue", 0, TENANT_ACK_ALL);
	op(c, 1, TENANT_OP_INC, "n", NULL, 4, TENANT_ACK_ALL);
	op(c, 2, TENANT_OP_ADD, "tags", "x", 0, TENANT_ACK_ALL);
	op(c, 2, TENANT_OP_ADD, "tags", "y", 0, TENANT_ACK_ALL);
	const struct tc_reply *r =
	    op(c, 1, TENANT_OP_GET, "colour", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->kind, CRDT_MV);
	assert_string_equal(r->values[0], "blue");
	r = op(c, 2, TENANT_OP_GET, "n", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->counter, 4);
	r = op(c, 0, TENANT_OP_KEYS, NULL, NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->nvalues, 3);
	assert_string_equal(r->values[0], "colour");
	assert_string_equal(r->values[2], "tags");
	c->map = NULL;
	r = op(c, 0, TENANT_OP_KEYS, NULL, NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->nvalues, 1);
	assert_string_equal(r->values[0], "prefs");
	r = op(c, 0, TENANT_OP_GET, "colour", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, MESH_ENOENT);
	/* Node 2 is cut off while an element and a key are removed. */
	c->node[2].group = 1;
	c->map = "prefs";
	op(c, 0, TENANT_OP_RM, "tags", "x", 0, TENANT_ACK_ONE);
	op(c, 1, TENANT_OP_RM, "colour", NULL, 0, TENANT_ACK_ONE);
	tc_run(c, 300);
	c->node[2].group = 0;
	tc_run(c, 1500);
	assert_int_equal(tc_digest(c, 2, "acme"), tc_digest(c, 0, "acme"));
	r = op(c, 2, TENANT_OP_GET, "colour", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->rc, MESH_ENOENT);
	r = op(c, 2, TENANT_OP_GET, "tags", NULL, 0, TENANT_ACK_ONE);
	assert_int_equal(r->nvalues, 1);
	assert_string_equal(r->values[0], "y");
	c->map = NULL;
	tc_destroy(c);
}

/* What tenant_system_read() found: "value" or "sub=value;..." in order. */
struct sys_seen {
	char text[512];
};

static void
sys_visit(void *ctx, const uint8_t *sub, size_t sublen, const uint8_t *val,
	  size_t len)
{
	struct sys_seen *s = ctx;
	size_t at = strlen(s->text);
	if (sub != NULL)
		at += (size_t)snprintf(s->text + at, sizeof(s->text) - at,
				       "%.*s=", (int)sublen, (const char *)sub);
	snprintf(s->text + at, sizeof(s->text) - at, "%.*s;", (int)len,
		 (const char *)val);
}

static int
sys_read(struct tc *c, size_t i, const char *key, struct sys_seen *s)
{
	memset(s, 0, sizeof(*s));
	return tenant_system_read(c->node[i].t, (const uint8_t *)key,
				  strlen(key), sys_visit, s);
}

/* Whether node @i reported a change of @key since the last call. */
static bool
sys_changed(struct tc *c, size_t i, const char *key)
{
	bool seen = false;
	struct tenant_change ch;
	while (tenant_poll_change(c->node[i].t, &ch))
		seen |=
		    ch.len == strlen(key) && memcmp(ch.key, key, ch.len) == 0;
	return seen;
}

/* The system tenant: written without a capability by the driver, read
 * from every node's own copy (followers included), changes reported. */
static void
test_tenant_system_everywhere(void **state)
{
	(void)state;
	struct tc *c = tc_new(7, 3);
	c->system = true;
	c->lww = true;
	uint64_t id =
	    tc_submit(c, 6, TENANT_OP_PUT, TENANT_SYSTEM, "pack/a", "spec-1", 0,
		      TENANT_ACK_ONE, (const uint8_t *)"", 0);
	tc_run(c, 50);
	assert_int_equal(tc_find(c, id)->rc, 0);
	c->map = "run/a";
	tc_submit(c, 2, TENANT_OP_PUT, TENANT_SYSTEM, "n2", "running", 0,
		  TENANT_ACK_ONE, NULL, 0);
	tc_submit(c, 4, TENANT_OP_PUT, TENANT_SYSTEM, "n4", "starting", 0,
		  TENANT_ACK_ONE, NULL, 0);
	c->map = NULL;
	/* Followers ask one replica per anti-entropy round. */
	tc_run(c, 3 * 2000 + 500);
	unsigned replicas = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct sys_seen s;
		assert_int_equal(sys_read(c, i, "pack/a", &s), 0);
		assert_string_equal(s.text, "spec-1;");
		assert_int_equal(sys_read(c, i, "run/a", &s), 0);
		assert_string_equal(s.text, "n2=running;n4=starting;");
		assert_true(sys_changed(c, i, "pack/a"));
		assert_int_equal(tenant_count(c->node[i].t), 0);
		replicas += tenant_stats(c->node[i].t)->follow_served > 0;
	}
	assert_true(replicas >= 1);
	/* A remove reaches every copy and is reported as a change. */
	tc_submit(c, 5, TENANT_OP_RM, TENANT_SYSTEM, "pack/a", NULL, 0,
		  TENANT_ACK_ONE, NULL, 0);
	tc_run(c, 3 * 2000 + 500);
	for (size_t i = 0; i < c->n; i++) {
		struct sys_seen s;
		assert_int_equal(sys_read(c, i, "pack/a", &s), MESH_ENOENT);
		assert_true(sys_changed(c, i, "pack/a"));
		assert_false(sys_changed(c, i, "pack/a"));
	}
	tc_destroy(c);
}

/* With periodic offers rare (meshd's follow_rounds), a follower learns a
 * change of the system tenant once told that its copy differs
 * (tenant_follow(), from a SWIM ack in meshd); offers are rate limited. */
static void
test_tenant_follow_on_demand(void **state)
{
	(void)state;
	static struct tc cl;
	struct tc *c = &cl;
	tc_init_follow(c, 7, 3, 1000);
	c->system = true;
	c->lww = true;
	uint64_t id =
	    tc_submit(c, 6, TENANT_OP_PUT, TENANT_SYSTEM, "pack/a", "spec-1", 0,
		      TENANT_ACK_ONE, (const uint8_t *)"", 0);
	/* Five rounds: the replicas have it, followers were not offered. */
	tc_run(c, 5 * 200);
	assert_int_equal(tc_find(c, id)->rc, 0);
	size_t lacking = c->n, having = c->n;
	struct sys_seen s;
	for (size_t i = 0; i < c->n; i++) {
		if (sys_read(c, i, "pack/a", &s) == MESH_ENOENT)
			lacking = i < lacking ? i : lacking;
		else
			having = i;
	}
	assert_true(lacking < c->n && having < c->n);
	struct tenant *t = c->node[lacking].t;
	assert_int_not_equal(tenant_system_digest(t),
			     tenant_system_digest(c->node[having].t));
	tenant_follow(t, c->now, c->node[having].name);
	tenant_follow(t, c->now, c->node[having].name);
	assert_int_equal(tenant_stats(t)->follow_asked, 1);
	assert_int_equal(tenant_stats(t)->follow_skipped, 1);
	/* Two rounds at most there and back (tc sends a node's frames at its
	 * next tick; meshd sends at once), far fewer than follow_rounds. */
	tc_run(c, 2 * 200 + 10);
	assert_int_equal(sys_read(c, lacking, "pack/a", &s), 0);
	assert_string_equal(s.text, "spec-1;");
	assert_int_equal(tenant_system_digest(t),
			 tenant_system_digest(c->node[having].t));
	/* After the gap, another offer goes out. */
	tc_run(c, TENANT_FOLLOW_GAP_MS);
	tenant_follow(t, c->now, c->node[having].name);
	assert_int_equal(tenant_stats(t)->follow_asked, 2);
	tc_destroy(c);
}

/* A tenant held in a second life here (every node restarted before its
 * first commit: the system tenant is held again at epoch 2) still serves
 * its LWW writes to those that lack them: the write's dot is this life's
 * replica id, the one its event is indexed under. With the node's base id
 * (the clock's) pulls found nothing and followers never got the write. */
static void
test_tenant_lww_in_a_later_life(void **state)
{
	(void)state;
	struct tc *c = tc_new(7, 3);
	for (size_t i = 0; i < c->n; i++) {
		tc_crash(c, i);
		tc_restart(c, i);
	}
	c->system = true;
	c->lww = true;
	uint64_t id =
	    tc_submit(c, 6, TENANT_OP_PUT, TENANT_SYSTEM, "pack/a", "spec-1", 0,
		      TENANT_ACK_ONE, (const uint8_t *)"", 0);
	tc_run(c, 3 * 2000 + 500);
	assert_int_equal(tc_find(c, id)->rc, 0);
	for (size_t i = 0; i < c->n; i++) {
		struct sys_seen s;
		assert_int_equal(sys_read(c, i, "pack/a", &s), 0);
		assert_string_equal(s.text, "spec-1;");
	}
	tc_destroy(c);
}

/* Clients cannot touch the system tenant or any '_' id; the system flag
 * opens no other tenant. */
static void
test_tenant_system_reserved(void **state)
{
	(void)state;
	struct tc *c = tc_new(4, 3);
	c->lww = true;
	uint64_t a = tc_submit(c, 0, TENANT_OP_PUT, TENANT_SYSTEM, "pack/x",
			       "v", 0, TENANT_ACK_ONE, NULL, 0);
	uint64_t b = tc_submit(c, 0, TENANT_OP_CREATE, "_other", NULL, NULL, 0,
			       TENANT_ACK_ONE, NULL, 0);
	c->system = true;
	uint64_t d = tc_submit(c, 0, TENANT_OP_PUT, "acme", "k", "v", 0,
			       TENANT_ACK_ONE, NULL, 0);
	uint64_t e = tc_submit(c, 0, TENANT_OP_CREATE, TENANT_SYSTEM, NULL,
			       NULL, 0, TENANT_ACK_ONE, NULL, 0);
	tc_run(c, 50);
	assert_int_equal(tc_find(c, a)->rc, MESH_EINVAL);
	assert_non_null(strstr(tc_find(c, a)->error, "reserved"));
	assert_int_equal(tc_find(c, b)->rc, MESH_EINVAL);
	assert_int_equal(tc_find(c, d)->rc, MESH_EINVAL);
	assert_int_equal(tc_find(c, e)->rc, MESH_EINVAL);
	for (size_t i = 0; i < c->n; i++) {
		struct sys_seen s;
		assert_int_equal(sys_read(c, i, "pack/x", &s), MESH_ENOENT);
	}
	tc_destroy(c);
}

static void
test_tenant_system_late_view(void **state)
{
	(void)state;
	struct tc *c = tc_new(3, 3);
	c->node[1].in_view = false;
	c->node[2].in_view = false;
	tc_view(c);
	c->system = true;
	c->lww = true;
	tc_submit(c, 0, TENANT_OP_PUT, TENANT_SYSTEM, "pack/a", "spec-1", 0,
		  TENANT_ACK_ONE, NULL, 0);
	tc_run(c, 50);
	c->node[1].in_view = true;
	c->node[2].in_view = true;
	tc_view(c);
	tc_run(c, 3 * 2000 + 500);
	for (size_t i = 0; i < c->n; i++) {
		struct sys_seen s;
		assert_int_equal(sys_read(c, i, "pack/a", &s), 0);
	}
	tc_destroy(c);
}

static bool
never_verify(void *ctx, const uint8_t *pub, const uint8_t *msg, size_t len,
	     const uint8_t *sig)
{
	(void)ctx, (void)pub, (void)msg, (void)len, (void)sig;
	return false;
}

/* Each refusal of a bad tenant config names what is wrong. */
static void
test_tenant_config_refusals(void **state)
{
	(void)state;
	struct mem_kv kv;
	mem_kv_init(&kv, NULL);
	struct tenant_config good, c;
	tenant_config_default(&good);
	strcpy(good.name, "n1");
	good.replica_id = 7;
	good.verify = never_verify;
	mem_kv_bind(&kv, &good.kv);
	const char *why = "unset";
	assert_int_equal(tenant_config_check(&good, &why), 0);
	assert_null(why);
	const struct {
		const char *field;
		const char *in_why;
	} cases[] = {
	    {"name", "node name"},	{"replica_id", "replica id"},
	    {"replicas", "replicas"},	{"intervals", "10 ms"},
	    {"pending", "max_pending"}, {"burst", "burst"},
	    {"verify", "verifier"},	{"store", "no store"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = good;
		const char *f = cases[i].field;
		if (strcmp(f, "name") == 0)
			strcpy(c.name, "no spaces please");
		else if (strcmp(f, "replica_id") == 0)
			c.replica_id = 0;
		else if (strcmp(f, "replicas") == 0)
			c.replicas = 0;
		else if (strcmp(f, "intervals") == 0)
			c.request_timeout_ms = 5;
		else if (strcmp(f, "pending") == 0)
			c.max_pending = 0;
		else if (strcmp(f, "burst") == 0)
			c.rate_per_s = 10, c.rate_burst = 0;
		else if (strcmp(f, "verify") == 0)
			c.verify = NULL;
		else
			c.kv.commit = NULL;
		assert_int_equal(tenant_config_check(&c, &why), MESH_EINVAL);
		assert_non_null(strstr(why, cases[i].in_why));
	}
	mem_kv_destroy(&kv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tenant_put_get_anywhere),
	    cmocka_unit_test(test_tenant_config_refusals),
	    cmocka_unit_test(test_tenant_replicas_converge_concurrent),
	    cmocka_unit_test(test_tenant_ack_levels),
	    cmocka_unit_test(test_tenant_isolation_every_op),
	    cmocka_unit_test(test_tenant_sets_and_removes),
	    cmocka_unit_test(test_tenant_anti_entropy_brings_removals),
	    cmocka_unit_test(test_tenant_handoff_keeps_data),
	    cmocka_unit_test(test_tenant_big_state_moves_in_parts),
	    cmocka_unit_test(test_tenant_new_replica_passes_requests_on),
	    cmocka_unit_test(test_tenant_store_full_refuses_cleanly),
	    cmocka_unit_test(test_tenant_restart_keeps_dots),
	    cmocka_unit_test(test_tenant_quota_and_rate),
	    cmocka_unit_test(test_tenant_hostile_frames),
	    cmocka_unit_test(test_tenant_quorum_needs_majority_of_rf),
	    cmocka_unit_test(test_tenant_empty_replica_is_filled),
	    cmocka_unit_test(test_tenant_handoff_ends_under_writes),
	    cmocka_unit_test(test_tenant_create_in_split_cannot_take_over),
	    cmocka_unit_test(test_tenant_lazy_acks),
	    cmocka_unit_test(test_tenant_big_values_move_in_parts),
	    cmocka_unit_test(test_tenant_lww_register),
	    cmocka_unit_test(test_tenant_nested_map),
	    cmocka_unit_test(test_tenant_follow_on_demand),
	    cmocka_unit_test(test_tenant_lww_in_a_later_life),
	    cmocka_unit_test(test_tenant_system_everywhere),
	    cmocka_unit_test(test_tenant_system_reserved),
	    cmocka_unit_test(test_tenant_system_late_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
