/*
 * pack_svc.h - meshd's pack service: the pack core (agent/core/pack.h)
 * fed from the system tenant and the ring, its hooks run by the hook
 * runner (hook.h), its run states written back into the system tenant,
 * its moves kept in the node's history, and the `pack ...` admin commands.
 */
#ifndef PACK_SVC_H
#define PACK_SVC_H

#include "admin.h"
#include "hook.h"
#include "pack.h"
#include "tenant_svc.h"

#include <uv.h>

/* Moves kept per pack in the history; older ones are dropped. */
#define PACK_SVC_HISTORY_MAX 100

struct pack_svc {
	struct pack *pk;
	struct tenant_svc *tsvc;
	struct hook_runner *hooks; /* NULL: no --pack-hook */
	const struct mesh_env *env;
	uv_timer_t timer;
	bool dirty;		 /* desired packs changed: place again */
	const struct ring *ring; /* the last view, borrowed from place */
	uint64_t ring_digest;
	char name[RING_NAME_MAX + 1];
	uint32_t seq; /* history keys made in the same ms */
	/* --packs FILE: names added once the system tenant had time to
	 * arrive from the replicas (they are not added twice). */
	char **boot;
	size_t nboot;
	uint64_t boot_at_ms;
};

/**
 * Starts the service on @tsvc (which must outlive it). @hook_exec NULL: no
 * hook, packs are only placed. Returns 0, MESH_EINVAL or MESH_ENOMEM.
 */
int pack_svc_start(struct pack_svc *s, uv_loop_t *loop, struct tenant_svc *tsvc,
		   const struct pack_config *cfg, const char *hook_exec,
		   uint32_t hook_timeout_ms, const struct mesh_env *env);

/** Stops it; running hooks are signalled (the loop finishes them). */
void pack_svc_stop(struct pack_svc *s);

/**
 * The view may have changed: @ring (borrowed until the next call) replaces
 * the last one; every pack is placed again when its digest differs.
 */
void pack_svc_set_view(struct pack_svc *s, const struct ring *ring);

/**
 * A field of the system tenant changed (tenant_svc_watch(); the driver
 * passes every change on): pack/ and run/ fields are ours, others ignored.
 */
void pack_svc_changed(struct pack_svc *s, const uint8_t *key, size_t len);

/**
 * Pack names to add as default packs when absent (meshd --packs FILE);
 * @names is taken over (freed with free()).
 */
void pack_svc_bootstrap(struct pack_svc *s, char **names, size_t n);

/** Handles `pack ...` (argv[0] is "pack"). */
void pack_svc_admin(struct pack_svc *s, struct admin_req *req, size_t argc,
		    const struct admin_arg *argv);

/** `place NAME`: the owners of a desired pack (false: not one). */
bool pack_svc_place(struct pack_svc *s, const char *name, bool json,
		    struct admin_buf *b);

/** `packs`: the packs this node owns. */
void pack_svc_owned(struct pack_svc *s, bool json, struct admin_buf *b);

/** The pack lines of `status` / its "packs" JSON member. */
void pack_svc_status_text(struct pack_svc *s, struct admin_buf *b);
void pack_svc_status_json(struct pack_svc *s, struct admin_buf *b);

#endif
