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

/** Appends the tenant section of `status --json` (a JSON member). */
void tenant_svc_status_json(struct tenant_svc *s, struct admin_buf *b);

/** Appends the tenant lines of `status`. */
void tenant_svc_status_text(struct tenant_svc *s, struct admin_buf *b);

#endif
