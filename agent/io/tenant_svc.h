/*
 * tenant_svc.h - meshd's tenant service: the tenant core (agent/core/
 * tenant.h) driven over the net's tenant streams and the LMDB store, the
 * `tenant ...` admin commands, and the tenant part of `meshctl status`.
 *
 * Group commit: every call into the core during one libuv loop iteration
 * joins one store batch; a uv_prepare handle (run once per iteration, just
 * before the loop waits for I/O) ends it with one durable commit, then
 * hands the answers to the admin clients and sends the frames. So nothing
 * is acknowledged or sent before it is on disk, and a burst of writes
 * costs one sync, not one each.
 */
#ifndef TENANT_SVC_H
#define TENANT_SVC_H

#include "admin.h"
#include "net.h"
#include "store.h"
#include "tenant.h"

#include <uv.h>

/* Least time between two durable commits of a busy agent (see
 * tenant_svc__prepare). */
#define TENANT_SVC_COMMIT_GAP_US 2000

struct tenant_svc__req;

/** A field of the system tenant changed (tenant_svc_watch). */
typedef void tenant_svc_change_fn(void *ctx, const uint8_t *key, size_t len);

struct tenant_svc {
	struct tenant *t;
	struct net *net;
	const struct mesh_env *env;
	uv_prepare_t prepare;
	uv_timer_t commit_timer;
	uint64_t last_commit_ns;
	bool dirty;	     /* the open batch has writes to sync */
	struct tenant_kv kv; /* the store's; the core gets ours around it */
	bool batch;
	/* Admin requests waiting for answers, by increasing id; [head, nreqs)
	 * are live, answered ones are holes (req NULL). */
	struct tenant_svc__req *reqs;
	size_t head, nreqs, capreqs;
	uint64_t next_id;
	unsigned replicas;
	tenant_svc_change_fn *watch;
	void *watch_ctx;
	void (*before)(void *ctx); /* tenant_svc_before() */
	void *before_ctx;
};

/**
 * Starts the service: the core over @store's key-value store, answers
 * through admin requests, frames through @net. @cfg is copied (its kv and
 * verify are filled here); everything else is borrowed and must outlive
 * the service. Returns 0 or the errors of tenant_new().
 */
int tenant_svc_start(struct tenant_svc *s, uv_loop_t *loop, struct net *net,
		     struct store *store, const struct tenant_config *cfg,
		     const struct mesh_env *env, uint64_t now_ms);

/** Stops it: pending admin requests get an error; the core is freed. */
void tenant_svc_stop(struct tenant_svc *s);

/** The view changed (call after the ring is rebuilt). */
void tenant_svc_set_view(struct tenant_svc *s, const struct ring *ring,
			 const struct swim *swim);

/**
 * Handles `tenant ...` (argv[0] is "tenant"). Answers through @req, now or
 * once replicas have answered.
 */
void tenant_svc_admin(struct tenant_svc *s, struct admin_req *req, size_t argc,
		      const struct admin_arg *argv);

/**
 * The agent's own write of TENANT_SYSTEM: @op (PUT: a LWW register; RM:
 * the field goes) on @key, or on @key inside nested map @map. With @req,
 * the answer goes there: @note on success, the error otherwise; without,
 * nobody waits (anti-entropy repairs what a failure leaves).
 */
void tenant_svc_system(struct tenant_svc *s, struct admin_req *req, bool json,
		       const char *note, enum tenant_op op, const char *key,
		       const uint8_t *value, size_t vlen, const char *map);

/**
 * Calls @fn for each field of TENANT_SYSTEM that changed, once the change
 * is durable here (read it with tenant_system_read(s->t, ...)).
 */
void tenant_svc_watch(struct tenant_svc *s, tenant_svc_change_fn *fn,
		      void *ctx);

/**
 * A peer's copy of TENANT_SYSTEM differs from ours (its SWIM ack said so):
 * offer ours to it now (tenant_follow()).
 */
void tenant_svc_follow(struct tenant_svc *s, const char *peer);

/**
 * Calls @fn before each message from a peer reaches the core: the owner
 * brings the ring up to date with the view there (meshd_fresh()).
 */
void tenant_svc_before(struct tenant_svc *s, void (*fn)(void *ctx), void *ctx);

/**
 * The node's own records next to the tenants' (prefixes the tenant core
 * does not use, e.g. the pack history's 'h'): writes join the open batch
 * and are durable when it ends; scans read the store.
 */
int tenant_svc_local_commit(struct tenant_svc *s,
			    const struct tenant_kv_write *w, size_t n);
int tenant_svc_local_scan(struct tenant_svc *s, const void *prefix, size_t plen,
			  tenant_kv_visit_fn *fn, void *arg);

/** Appends the tenant section of `status --json` (a JSON member). */
void tenant_svc_status_json(struct tenant_svc *s, struct admin_buf *b);

/** Appends the tenant lines of `status`. */
void tenant_svc_status_text(struct tenant_svc *s, struct admin_buf *b);

#endif
