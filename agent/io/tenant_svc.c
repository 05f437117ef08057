/*
 * tenant_svc.c - the tenant core in meshd: batches, admin commands and
 * their rendering. The core answers in structured form (struct
 * tenant_reply); this file turns that into text or JSON, so that every
 * command renders the same way whichever node served it.
 */
#include "tenant_svc.h"

#include "capfile.h"
#include "mesh_err.h"
#include "tenant_cap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tenant_svc__req {
	uint64_t id;
	struct admin_req *req;
	enum tenant_op op;
	bool json;
	char tenant[TENANT_ID_MAX + 1];
	char key[TENANT_KEY_MAX + 1];
	const char *note; /* not NULL: the answer to a success (system) */
};

/* ---- the core behind the net, with group commit -------------------------- */

static void
tenant_svc__open(struct tenant_svc *s)
{
	if (!s->batch) {
		tenant_batch_begin(s->t);
		s->batch = true;
	}
}

static int
tenant_svc__recv(void *svc, uint64_t now_ms, const uint8_t *data, size_t len)
{
	struct tenant_svc *s = svc;
	if (s->before != NULL)
		s->before(s->before_ctx);
	tenant_svc__open(s);
	return tenant_recv(s->t, now_ms, data, len);
}

static void
tenant_svc__tick(void *svc, uint64_t now_ms)
{
	struct tenant_svc *s = svc;
	tenant_svc__open(s);
	tenant_tick(s->t, now_ms);
}

static uint64_t
tenant_svc__deadline(const void *svc)
{
	const struct tenant_svc *s = svc;
	return tenant_next_deadline(s->t);
}

static bool
tenant_svc__poll(void *svc, struct tenant_output *out)
{
	struct tenant_svc *s = svc;
	return tenant_poll_output(s->t, out);
}

static void
tenant_svc__lost(void *svc, uint64_t now_ms, const char *name, uint64_t seq)
{
	struct tenant_svc *s = svc;
	tenant_svc__open(s);
	tenant_frame_lost(s->t, now_ms, name, seq);
}

static const struct net_tenant_ops tenant_svc__ops = {
    tenant_svc__recv, tenant_svc__tick, tenant_svc__deadline,
    tenant_svc__poll, tenant_svc__lost,
};

static void tenant_svc__answers(struct tenant_svc *s);

/* The store, passed through; commit() marks the batch as having writes. */
static int
tenant_svc__kv_get(void *ctx, const void *key, size_t klen, const void **val,
		   size_t *vlen)
{
	struct tenant_svc *s = ctx;
	return s->kv.get(s->kv.ctx, key, klen, val, vlen);
}

static int
tenant_svc__kv_scan(void *ctx, const void *prefix, size_t plen,
		    const void *from, size_t flen, tenant_kv_visit_fn *fn,
		    void *arg)
{
	struct tenant_svc *s = ctx;
	return s->kv.scan(s->kv.ctx, prefix, plen, from, flen, fn, arg);
}

static int
tenant_svc__kv_commit(void *ctx, const struct tenant_kv_write *w, size_t n)
{
	struct tenant_svc *s = ctx;
	int rc = s->kv.commit(s->kv.ctx, w, n);
	if (rc == 0 && n > 0)
		s->dirty = true;
	return rc;
}

static int
tenant_svc__kv_begin(void *ctx)
{
	struct tenant_svc *s = ctx;
	return s->kv.batch_begin(s->kv.ctx);
}

static int
tenant_svc__kv_end(void *ctx, bool keep)
{
	struct tenant_svc *s = ctx;
	return s->kv.batch_end(s->kv.ctx, keep);
}

/* Commits the open batch (and any a send reopens), answers, sends. */
static void
tenant_svc__commit(struct tenant_svc *s)
{
	/* Sending may open a new batch (a frame that could not leave sends
	 * its requests to the next replica): end that one too. Each round
	 * moves a request on to a further replica, so this stops. */
	for (int round = 0; s->batch && round < 2 * RING_REPLICAS_MAX;
	     round++) {
		s->batch = false;
		s->dirty = false;
		tenant_batch_end(s->t, net_now_ms());
		tenant_svc__answers(s);
		struct tenant_change ch;
		while (tenant_poll_change(s->t, &ch))
			if (s->watch != NULL)
				s->watch(s->watch_ctx, ch.key, ch.len);
		net_flush(s->net);
	}
	s->last_commit_ns = uv_hrtime();
}

static void
tenant_svc__commit_timer(uv_timer_t *h)
{
	tenant_svc__commit(h->data);
}

/*
 * Once per loop iteration, before it waits: one durable commit for all
 * that happened, then answers and frames. Adaptive group commit: when the
 * last commit was less than TENANT_SVC_COMMIT_GAP_US ago, wait out the
 * rest of that gap (gathering what arrives meanwhile) instead of syncing
 * again at once. An idle agent commits at once; a busy one syncs at most
 * once per gap, so eight agents on one disk do not queue their syncs
 * behind each other.
 */
static void
tenant_svc__prepare(uv_prepare_t *h)
{
	struct tenant_svc *s = h->data;
	if (!s->batch)
		return;
	uint64_t now = uv_hrtime();
	uint64_t gap = (uint64_t)TENANT_SVC_COMMIT_GAP_US * 1000;
	/* A batch that wrote nothing (acks, reads, digests) costs no sync:
	 * end it at once. */
	if (!s->dirty || now - s->last_commit_ns >= gap) {
		tenant_svc__commit(s);
		return;
	}
	if (!uv_is_active((uv_handle_t *)&s->commit_timer)) {
		uint64_t wait_ms =
		    (s->last_commit_ns + gap - now + 999999) / 1000000;
		uv_timer_start(&s->commit_timer, tenant_svc__commit_timer,
			       wait_ms, 0);
	}
}

int
tenant_svc_start(struct tenant_svc *s, uv_loop_t *loop, struct net *net,
		 struct store *store, const struct tenant_config *cfg,
		 const struct mesh_env *env, uint64_t now_ms)
{
	memset(s, 0, sizeof(*s));
	struct tenant_config c = *cfg;
	store_kv(store, &s->kv);
	/* The core commits through us, so we know when a batch has writes
	 * to sync. */
	c.kv = s->kv;
	c.kv.ctx = s;
	c.kv.get = tenant_svc__kv_get;
	c.kv.scan = tenant_svc__kv_scan;
	c.kv.commit = tenant_svc__kv_commit;
	c.kv.batch_begin = tenant_svc__kv_begin;
	c.kv.batch_end = tenant_svc__kv_end;
	c.verify = capfile_verify;
	s->net = net;
	s->env = env;
	s->replicas = c.replicas;
	int rc = tenant_new(&c, env, now_ms, &s->t);
	if (rc != 0)
		return rc;
	uv_prepare_init(loop, &s->prepare);
	s->prepare.data = s;
	uv_timer_init(loop, &s->commit_timer);
	s->commit_timer.data = s;
	uv_prepare_start(&s->prepare, tenant_svc__prepare);
	net_set_tenant(net, &tenant_svc__ops, s);
	return 0;
}

void
tenant_svc_stop(struct tenant_svc *s)
{
	if (s->t == NULL)
		return;
	if (s->batch) {
		s->batch = false;
		tenant_batch_end(s->t, net_now_ms());
		tenant_svc__answers(s);
	}
	for (size_t i = s->head; i < s->nreqs; i++) {
		if (s->reqs[i].req == NULL)
			continue;
		admin_printf(admin_req_out(s->reqs[i].req),
			     "error: the agent is stopping\n");
		admin_req_done(s->reqs[i].req);
	}
	free(s->reqs);
	s->reqs = NULL;
	s->nreqs = s->head = 0;
	net_set_tenant(s->net, NULL, NULL);
	uv_close((uv_handle_t *)&s->prepare, NULL);
	uv_close((uv_handle_t *)&s->commit_timer, NULL);
	tenant_free(s->t);
	s->t = NULL;
}

void
tenant_svc_set_view(struct tenant_svc *s, const struct ring *ring,
		    const struct swim *swim)
{
	tenant_svc__open(s);
	tenant_set_view(s->t, net_now_ms(), ring, swim);
}

/* ---- rendering --------------------------------------------------------- */

/* Bytes for people: printable ASCII as is, the rest as \xNN. */
static void
tenant_svc__text_bytes(struct admin_buf *b, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			admin_printf(b, "%c", p[i]);
		else
			admin_printf(b, "\\x%02x", p[i]);
	}
}

static void
tenant_svc__names_json(struct admin_buf *b, const char *const *names,
		       unsigned n)
{
	admin_printf(b, "[");
	for (unsigned i = 0; i < n; i++) {
		admin_printf(b, i ? "," : "");
		admin_json_str(b, names[i]);
	}
	admin_printf(b, "]");
}

static void
tenant_svc__names_text(struct admin_buf *b, const char *const *names,
		       unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		admin_printf(b, "%s%s", i ? ", " : "", names[i]);
}

static const char *
tenant_svc__kind_name(enum crdt_kind k)
{
	switch (k) {
	case CRDT_MV:
		return "register";
	case CRDT_LWW:
		return "lww";
	case CRDT_PNCOUNTER:
		return "counter";
	case CRDT_ORSET:
		return "set";
	default:
		return "none";
	}
}

static void
tenant_svc__render(const struct tenant_svc__req *q,
		   const struct tenant_reply *r, struct admin_buf *b)
{
	bool write = q->op == TENANT_OP_PUT || q->op == TENANT_OP_INC ||
		     q->op == TENANT_OP_ADD || q->op == TENANT_OP_RM ||
		     q->op == TENANT_OP_CREATE;
	if (r->rc != 0) {
		admin_printf(b, "error: %s (%s)", r->error,
			     mesh_errname(r->rc));
		if (write && r->nreplicas > 0) {
			admin_printf(b, "; acknowledged by %u of %u", r->acks,
				     r->nreplicas);
			if (r->acks > 0) {
				admin_printf(b, " (");
				tenant_svc__names_text(b, r->acked_by, r->acks);
				admin_printf(b, ")");
			}
		}
		admin_printf(b, "\n");
		return;
	}
	if (q->note != NULL) {
		if (q->json) {
			admin_printf(b, "{\"ok\":true,\"note\":");
			admin_json_str(b, q->note);
			admin_printf(b, "}\n");
		} else {
			admin_printf(b, "%s\n", q->note);
		}
		return;
	}
	if (q->json) {
		admin_printf(b, "{\"tenant\":");
		admin_json_str(b, q->tenant);
		if (q->key[0] != 0) {
			admin_printf(b, ",\"key\":");
			admin_json_str(b, q->key);
		}
		if (write) {
			admin_printf(
			    b,
			    ",\"ok\":true,\"acks\":%u,\"acked_by\":", r->acks);
			tenant_svc__names_json(b, r->acked_by, r->acks);
		}
		if (q->op == TENANT_OP_GET) {
			admin_printf(b, ",\"kind\":\"%s\"",
				     tenant_svc__kind_name(r->kind));
			if (r->kind == CRDT_PNCOUNTER)
				admin_printf(b, ",\"value\":%" PRId64,
					     r->counter);
		}
		if (q->op == TENANT_OP_GET || q->op == TENANT_OP_KEYS) {
			admin_printf(b, q->op == TENANT_OP_KEYS
					    ? ",\"keys\":["
					    : ",\"values\":[");
			for (size_t i = 0; i < r->nvalues; i++) {
				admin_printf(b, i ? "," : "");
				admin_json_bytes(b, r->values[i].data,
						 r->values[i].len);
			}
			admin_printf(b, "]");
		}
		if (q->op == TENANT_OP_DIGEST)
			admin_printf(b, ",\"digest\":\"%016" PRIx64 "\"",
				     r->digest);
		admin_printf(b, ",\"replicas\":");
		tenant_svc__names_json(b, r->replicas, r->nreplicas);
		admin_printf(b, ",\"served_by\":");
		admin_json_str(b, r->served_by ? r->served_by : "");
		admin_printf(b, "}\n");
		return;
	}
	if (write) {
		admin_printf(b, "ok: acknowledged by %u of %u replicas (",
			     r->acks, r->nreplicas);
		tenant_svc__names_text(b, r->acked_by, r->acks);
		admin_printf(b, ")\n");
		return;
	}
	if (q->op == TENANT_OP_DIGEST) {
		admin_printf(b, "%016" PRIx64 "\n", r->digest);
		return;
	}
	if (q->op == TENANT_OP_GET && r->kind == CRDT_PNCOUNTER) {
		admin_printf(b, "%" PRId64 "\n", r->counter);
		return;
	}
	for (size_t i = 0; i < r->nvalues; i++) {
		tenant_svc__text_bytes(b, r->values[i].data, r->values[i].len);
		admin_printf(b, "\n");
	}
	if (r->nvalues == 0)
		admin_printf(b, "(none)\n");
}

/* Hands every answer the core has to its admin request. */
static void
tenant_svc__answers(struct tenant_svc *s)
{
	struct tenant_reply r;
	while (tenant_poll_reply(s->t, &r)) {
		/* Ids grow with each request: a binary search over the
		 * waiting ones; answered slots stay as holes until the
		 * oldest is answered. */
		size_t lo = s->head, hi = s->nreqs;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (s->reqs[mid].id < r.id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == s->nreqs || s->reqs[lo].id != r.id ||
		    s->reqs[lo].req == NULL)
			continue;
		struct tenant_svc__req *q = &s->reqs[lo];
		tenant_svc__render(q, &r, admin_req_out(q->req));
		admin_req_done(q->req);
		q->req = NULL;
		while (s->head < s->nreqs && s->reqs[s->head].req == NULL)
			s->head++;
		if (s->head == s->nreqs)
			s->head = s->nreqs = 0;
	}
}

/* ---- commands ---------------------------------------------------------- */

static void
tenant_svc__ls(struct tenant_svc *s, bool json, struct admin_buf *b)
{
	uint64_t now = net_now_ms();
	size_t n = tenant_count(s->t);
	if (json)
		admin_printf(b, "{\"tenants\":[");
	else
		admin_printf(b, "%-24s %8s %10s %-16s %7s %6s\n", "TENANT",
			     "KEYS", "BYTES", "DIGEST", "ROLE", "BEHIND");
	for (size_t i = 0; i < n; i++) {
		struct tenant_info ti;
		if (tenant_info_at(s->t, now, i, &ti) != 0)
			break;
		if (json) {
			admin_printf(b, "%s{\"tenant\":", i ? "," : "");
			admin_json_str(b, ti.tenant);
			admin_printf(b,
				     ",\"keys\":%" PRIu64 ",\"bytes\":%" PRIu64
				     ",\"digest\":\"%016" PRIx64
				     "\",\"replica\":%s,\"behind\":%u,"
				     "\"oldest_unacked_ms\":%" PRIu64 "}",
				     ti.keys, ti.bytes, ti.digest,
				     ti.replica ? "true" : "false", ti.behind,
				     ti.oldest_unacked_ms);
		} else {
			admin_printf(b,
				     "%-24s %8" PRIu64 " %10" PRIu64
				     " %016" PRIx64 " %7s %6u\n",
				     ti.tenant, ti.keys, ti.bytes, ti.digest,
				     ti.replica ? "replica" : "handoff",
				     ti.behind);
		}
	}
	if (json)
		admin_printf(b, "]}\n");
}

static bool
tenant_svc__is(const struct admin_arg *a, const char *s)
{
	return strlen(s) == a->len && memcmp(a->data, s, a->len) == 0;
}

static bool
tenant_svc__parse_n(const struct admin_arg *a, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(a->data, &end, 10);
	if (a->len == 0 || *end != 0 || errno != 0)
		return false;
	*out = v;
	return true;
}

static void tenant_svc__submit(struct tenant_svc *s, struct tenant_request *rq,
			       struct tenant_svc__req *q,
			       struct admin_req *req);

void
tenant_svc_admin(struct tenant_svc *s, struct admin_req *req, size_t argc,
		 const struct admin_arg *argv)
{
	struct admin_buf *out = admin_req_out(req);
	const struct admin_arg *pos[8];
	size_t npos = 0;
	bool json = false, lww = false;
	const struct admin_arg *cap = NULL, *ack = NULL, *key = NULL;
	const struct admin_arg *map = NULL;
	const char *bad = NULL;
	for (size_t i = 1; i < argc && bad == NULL; i++) {
		const struct admin_arg *a = &argv[i];
		if (tenant_svc__is(a, "--json")) {
			json = true;
		} else if (tenant_svc__is(a, "--lww")) {
			lww = true;
		} else if (tenant_svc__is(a, "--map")) {
			if (i + 1 == argc) {
				bad = "an option needs a value";
				break;
			}
			map = &argv[++i];
		} else if (tenant_svc__is(a, "--cap") ||
			   tenant_svc__is(a, "--ack") ||
			   tenant_svc__is(a, "--key")) {
			if (i + 1 == argc) {
				bad = "an option needs a value";
				break;
			}
			const struct admin_arg **dst = a->data[2] == 'c' ? &cap
						       : a->data[2] == 'a'
							   ? &ack
							   : &key;
			*dst = &argv[++i];
		} else if (npos < 8) {
			pos[npos++] = a;
		} else {
			bad = "too many arguments";
		}
	}
	if (bad == NULL && npos == 0)
		bad = "usage: tenant create|ls|put|get|inc|add|rm|keys|digest "
		      "...";
	if (bad != NULL) {
		admin_printf(out, "error: %s\n", bad);
		admin_req_done(req);
		return;
	}
	const struct admin_arg *sub = pos[0];
	if (tenant_svc__is(sub, "ls")) {
		tenant_svc__ls(s, json, out);
		admin_req_done(req);
		return;
	}
	static const struct {
		const char *name;
		enum tenant_op op;
		size_t min, max; /* positionals after the tenant */
	} cmds[] = {
	    {"create", TENANT_OP_CREATE, 0, 0},
	    {"put", TENANT_OP_PUT, 2, 2},
	    {"get", TENANT_OP_GET, 1, 1},
	    {"inc", TENANT_OP_INC, 1, 2},
	    {"add", TENANT_OP_ADD, 2, 2},
	    {"rm", TENANT_OP_RM, 1, 2},
	    {"keys", TENANT_OP_KEYS, 0, 0},
	    {"digest", TENANT_OP_DIGEST, 0, 0},
	};
	size_t c = 0;
	while (c < sizeof(cmds) / sizeof(cmds[0]) &&
	       !tenant_svc__is(sub, cmds[c].name))
		c++;
	if (c == sizeof(cmds) / sizeof(cmds[0])) {
		admin_printf(out, "error: unknown tenant command '%.*s'\n",
			     (int)(sub->len > 32 ? 32 : sub->len), sub->data);
		admin_req_done(req);
		return;
	}
	size_t nargs = npos >= 2 ? npos - 2 : 0;
	if (npos < 2 || nargs < cmds[c].min || nargs > cmds[c].max) {
		admin_printf(out, "error: bad arguments for 'tenant %s'\n",
			     cmds[c].name);
		admin_req_done(req);
		return;
	}
	struct tenant_request rq = {0};
	struct tenant_svc__req q = {0};
	uint8_t capbuf[TENANT_CAP_MAX], pub[TENANT_PUBKEY_BYTES];
	rq.op = cmds[c].op;
	rq.tenant = pos[1]->data;
	rq.lww = lww;
	if (map != NULL) {
		rq.map = (const uint8_t *)map->data;
		rq.map_len = map->len;
	}
	if (lww && rq.op != TENANT_OP_PUT)
		bad = "--lww is for put only";
	if (pos[1]->len > TENANT_ID_MAX || strlen(rq.tenant) != pos[1]->len)
		bad = "tenant id must be 1..128 bytes of [A-Za-z0-9._-]";
	if (nargs >= 1) {
		rq.key = (const uint8_t *)pos[2]->data;
		rq.key_len = pos[2]->len;
	}
	if (nargs == 2) {
		if (rq.op == TENANT_OP_INC) {
			if (!tenant_svc__parse_n(pos[3], &rq.n))
				bad = "N must be a whole number";
		} else {
			rq.value = (const uint8_t *)pos[3]->data;
			rq.value_len = pos[3]->len;
			rq.has_value = true;
		}
	} else if (rq.op == TENANT_OP_INC) {
		rq.n = 1;
	}
	if (ack != NULL) {
		if (tenant_svc__is(ack, "one"))
			rq.ack = TENANT_ACK_ONE;
		else if (tenant_svc__is(ack, "quorum"))
			rq.ack = TENANT_ACK_QUORUM;
		else if (tenant_svc__is(ack, "all"))
			rq.ack = TENANT_ACK_ALL;
		else
			bad = "--ack must be one, quorum or all";
	}
	if (rq.op == TENANT_OP_CREATE) {
		if (key == NULL ||
		    capfile_decode_pubkey(key->data, key->len, pub) != 0)
			bad = "tenant create needs --key with the tenant's "
			      "public key (meshctl makes it)";
		rq.tenant_key = pub;
	} else if (cap == NULL) {
		bad = "no capability: give --cap FILE or set MESH_CAP";
	} else if (capfile_decode_cap_text(cap->data, cap->len, capbuf,
					   sizeof(capbuf), &rq.cap_len) != 0) {
		bad = "the capability is not pmcap1 text";
	} else {
		rq.cap = capbuf;
	}
	if (bad != NULL) {
		admin_printf(out, "error: %s\n", bad);
		admin_req_done(req);
		return;
	}
	q.op = rq.op;
	q.json = json;
	tenant_svc__submit(s, &rq, &q, req);
}

/* Submits @rq; its answer goes to @req (NULL: nobody waits for it),
 * rendered as @q says. */
static void
tenant_svc__submit(struct tenant_svc *s, struct tenant_request *rq,
		   struct tenant_svc__req *q, struct admin_req *req)
{
	struct admin_buf *out = req != NULL ? admin_req_out(req) : NULL;
	q->id = rq->id = ++s->next_id;
	q->req = req;
	snprintf(q->tenant, sizeof(q->tenant), "%s", rq->tenant);
	if (rq->key_len > 0 && rq->key_len <= TENANT_KEY_MAX &&
	    memchr(rq->key, 0, rq->key_len) == NULL)
		snprintf(q->key, sizeof(q->key), "%.*s", (int)rq->key_len,
			 (const char *)rq->key);
	tenant_svc__open(s);
	if (req == NULL) {
		if (tenant_submit(s->t, net_now_ms(), rq) != 0)
			MESH_LOG(s->env, MESH_LOG_WARN,
				 "tenant: too many requests waiting: a "
				 "system write is dropped");
		return;
	}
	if (s->head > 0 && s->nreqs == s->capreqs) {
		memmove(s->reqs, s->reqs + s->head,
			(s->nreqs - s->head) * sizeof(*s->reqs));
		s->nreqs -= s->head;
		s->head = 0;
	}
	if (s->nreqs == s->capreqs) {
		size_t ncap = s->capreqs ? s->capreqs * 2 : 64;
		struct tenant_svc__req *p = realloc(s->reqs, ncap * sizeof(*p));
		if (p == NULL) {
			admin_printf(out, "error: out of memory\n");
			admin_req_done(req);
			return;
		}
		s->reqs = p;
		s->capreqs = ncap;
	}
	s->reqs[s->nreqs++] = *q;
	if (tenant_submit(s->t, net_now_ms(), rq) != 0) {
		s->nreqs--;
		if (s->head > s->nreqs)
			s->head = s->nreqs;
		admin_printf(out, "error: too many requests waiting; try "
				  "again\n");
		admin_req_done(req);
	}
	/* The answer comes when the batch ends (tenant_svc__prepare). */
}

void
tenant_svc_system(struct tenant_svc *s, struct admin_req *req, bool json,
		  const char *note, enum tenant_op op, const char *key,
		  const uint8_t *value, size_t vlen, const char *map)
{
	struct tenant_request rq = {0};
	struct tenant_svc__req q = {0};
	rq.op = op;
	rq.tenant = TENANT_SYSTEM;
	rq.system = true;
	rq.lww = op == TENANT_OP_PUT;
	rq.key = (const uint8_t *)key;
	rq.key_len = strlen(key);
	rq.value = value;
	rq.value_len = vlen;
	rq.has_value = op == TENANT_OP_PUT;
	if (map != NULL) {
		rq.map = (const uint8_t *)map;
		rq.map_len = strlen(map);
	}
	q.op = op;
	q.json = json;
	q.note = note;
	tenant_svc__submit(s, &rq, &q, req);
}

void
tenant_svc_watch(struct tenant_svc *s, tenant_svc_change_fn *fn, void *ctx)
{
	s->watch = fn;
	s->watch_ctx = ctx;
}

void
tenant_svc_follow(struct tenant_svc *s, const char *peer)
{
	tenant_svc__open(s);
	tenant_follow(s->t, net_now_ms(), peer);
}

void
tenant_svc_before(struct tenant_svc *s, void (*fn)(void *ctx), void *ctx)
{
	s->before = fn;
	s->before_ctx = ctx;
}

int
tenant_svc_local_commit(struct tenant_svc *s, const struct tenant_kv_write *w,
			size_t n)
{
	tenant_svc__open(s);
	return tenant_svc__kv_commit(s, w, n);
}

int
tenant_svc_local_scan(struct tenant_svc *s, const void *prefix, size_t plen,
		      tenant_kv_visit_fn *fn, void *arg)
{
	return s->kv.scan(s->kv.ctx, prefix, plen, NULL, 0, fn, arg);
}

/* ---- status ------------------------------------------------------------ */

static void
tenant_svc__summary(struct tenant_svc *s, uint64_t *behind, uint64_t *oldest_ms,
		    uint64_t *keys)
{
	uint64_t now = net_now_ms();
	*behind = *oldest_ms = *keys = 0;
	for (size_t i = 0; i < tenant_count(s->t); i++) {
		struct tenant_info ti;
		if (tenant_info_at(s->t, now, i, &ti) != 0)
			break;
		*behind += ti.behind;
		*keys += ti.keys;
		if (ti.oldest_unacked_ms > *oldest_ms)
			*oldest_ms = ti.oldest_unacked_ms;
	}
}

void
tenant_svc_status_json(struct tenant_svc *s, struct admin_buf *b)
{
	const struct tenant_stats *st = tenant_stats(s->t);
	uint64_t behind, oldest, keys;
	tenant_svc__summary(s, &behind, &oldest, &keys);
	admin_printf(
	    b,
	    "\"tenants\":{\"held\":%zu,\"keys\":%" PRIu64
	    ",\"replicas\":%u,\"replicas_behind\":%" PRIu64
	    ",\"oldest_unreplicated_ms\":%" PRIu64 ",\"ops\":%" PRIu64
	    ",\"ops_failed\":%" PRIu64 ",\"forwarded\":%" PRIu64
	    ",\"deltas_sent\":%" PRIu64 ",\"deltas_applied\":%" PRIu64
	    ",\"delta_bytes_sent\":%" PRIu64 ",\"frames_sent\":%" PRIu64
	    ",\"frame_bytes_sent\":%" PRIu64 ",\"ae_rounds\":%" PRIu64
	    ",\"ae_mismatches\":%" PRIu64 ",\"ae_pulls_sent\":%" PRIu64
	    ",\"ae_pulls_served\":%" PRIu64 ",\"ae_bytes_sent\":%" PRIu64
	    ",\"handoffs\":%" PRIu64 ",\"denied\":%" PRIu64
	    ",\"over_quota\":%" PRIu64 ",\"store_errors\":%" PRIu64
	    ",\"timeouts\":%" PRIu64 ",\"dropped\":{\"malformed\":%" PRIu64
	    ",\"protocol_version\":%" PRIu64 ",\"bad_delta\":%" PRIu64
	    ",\"output\":%" PRIu64 ",\"stranger\":%" PRIu64
	    "},\"ae_partial\":%" PRIu64 "}",
	    tenant_count(s->t), keys, s->replicas, behind, oldest, st->ops,
	    st->ops_failed, st->forwarded, st->deltas_sent, st->deltas_applied,
	    st->delta_bytes_sent, st->frames_sent, st->frame_bytes_sent,
	    st->ae_rounds, st->ae_digest_mismatch, st->ae_pulls_sent,
	    st->ae_pulls_served, st->ae_bytes_sent, st->handoffs_done,
	    st->denied, st->over_quota, st->store_errors, st->timeouts,
	    st->drop_decode, st->drop_version, st->drop_bad_delta,
	    st->drop_output, st->drop_stranger, st->ae_partial);
}

void
tenant_svc_status_text(struct tenant_svc *s, struct admin_buf *b)
{
	const struct tenant_stats *st = tenant_stats(s->t);
	uint64_t behind, oldest, keys;
	tenant_svc__summary(s, &behind, &oldest, &keys);
	admin_printf(b,
		     "tenants      %zu held (%" PRIu64
		     " keys), %u replicas each; %" PRIu64
		     " replica(s) behind, oldest unreplicated delta %" PRIu64
		     " ms\n",
		     tenant_count(s->t), keys, s->replicas, behind, oldest);
	admin_printf(b,
		     "anti-entropy %" PRIu64 " rounds, %" PRIu64
		     " mismatches, %" PRIu64 " pulls sent, %" PRIu64
		     " served, %" PRIu64 " B sent; %" PRIu64
		     " handoffs; tenant ops %" PRIu64 " (%" PRIu64
		     " failed, %" PRIu64 " denied)\n",
		     st->ae_rounds, st->ae_digest_mismatch, st->ae_pulls_sent,
		     st->ae_pulls_served, st->ae_bytes_sent, st->handoffs_done,
		     st->ops, st->ops_failed, st->denied);
}
