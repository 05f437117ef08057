/*
 * tenant_cluster.h - several tenant cores in one process for unit tests:
 * in-memory stores, one shared ring, a message queue in place of the
 * network (with drops and partitions), manual time, and capabilities
 * signed with libsodium.
 *
 * Nodes are named n0, n1, ...; every node sees the same ring (built from
 * the nodes that are "in the view"), so placement is what the test sets.
 */
#ifndef TENANT_CLUSTER_H
#define TENANT_CLUSTER_H

#include "mem_kv.h"
#include "tenant.h"
#include "test_env.h"

#include <stdbool.h>

#define TC_NODES_MAX 16
#define TC_REPLIES_MAX 4096

struct tc_reply {
	uint64_t id;
	int rc;
	char error[256];
	unsigned acks;
	unsigned nvalues;
	char values[8][128]; /* NUL-terminated copies (short values only) */
	enum crdt_kind kind;
	int64_t counter;
	uint64_t digest;
};

struct tc_msg;

struct tc_node {
	char name[24];
	struct mem_kv kv;
	struct tenant *t;
	bool up;      /* running (not crashed) */
	bool in_view; /* part of the ring */
	int group;    /* partition group: messages cross only within */
};

struct tc {
	struct test_env te;
	size_t n;
	struct tc_node node[TC_NODES_MAX];
	struct ring *ring;
	uint64_t now;
	unsigned replicas;
	struct tc_msg *head, *tail;
	uint64_t delivered, dropped;
	unsigned drop_pct; /* random loss in percent */
	/* Given to nodes started after they are set. */
	uint64_t quota_keys, quota_bytes;
	uint32_t rate_per_s, rate_burst;
	uint32_t follow_rounds; /* tc_init_follow() */
	bool lww;		/* tc_submit: puts are last-writer-wins */
	const char *map;	/* tc_submit: keys live in this nested map */
	bool system; /* tc_submit: the driver's own system operation */
	uint64_t rng;
	struct tc_reply replies[TC_REPLIES_MAX];
	size_t nreplies;
	uint64_t next_id;
	/* The test tenant's keys and a full capability. */
	unsigned char pk[32], sk[64];
	uint8_t cap[512];
	size_t cap_len;
};

/** Starts @n nodes (all in the view) with RF @replicas. */
void tc_init(struct tc *c, size_t n, unsigned replicas);
/* tc_init() with tenant_config.follow_rounds set (0: the default). */
void tc_init_follow(struct tc *c, size_t n, unsigned replicas,
		    uint32_t follow_rounds);
void tc_destroy(struct tc *c);

/** Rebuilds the shared ring from the nodes in the view. */
void tc_view(struct tc *c);

/** Crashes node @i (its store survives) / starts it again on its store. */
void tc_crash(struct tc *c, size_t i);
void tc_restart(struct tc *c, size_t i);

/** Submits an operation at node @i; returns its id (reply via tc_find). */
uint64_t tc_submit(struct tc *c, size_t i, enum tenant_op op,
		   const char *tenant, const char *key, const char *value,
		   int64_t n, enum tenant_ack ack, const uint8_t *cap,
		   size_t cap_len);

/** Runs @ms milliseconds of time in 1 ms steps, delivering messages. */
void tc_run(struct tc *c, uint64_t ms);

/** The reply to @id, or NULL when none came yet. */
const struct tc_reply *tc_find(const struct tc *c, uint64_t id);

/** Creates tenant @tenant at node @i with c->pk; returns the reply. */
const struct tc_reply *tc_create(struct tc *c, size_t i, const char *tenant);

/** Makes a capability for @tenant with @rights, signed by @sk/@pk. */
size_t tc_cap(const char *tenant, uint32_t rights, uint64_t expires,
	      const unsigned char *pk, const unsigned char *sk, uint8_t *out,
	      size_t cap);

/** Digest of @tenant at node @i (0 when not held). */
uint64_t tc_digest(const struct tc *c, size_t i, const char *tenant);

#endif
