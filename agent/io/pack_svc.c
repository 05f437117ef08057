/*
 * pack_svc.c - the pack core driven by meshd. See pack_svc.h.
 *
 * Data flow: a `pack add` becomes a write of "pack/NAME" in the system
 * tenant; once it is durable on any node (there directly, elsewhere when
 * anti-entropy brought it), tenant_svc reports the changed field, we read
 * it and hand it to the core, and place again. Hooks the core asks for run
 * in the hook runner with the spec in the environment; what they did goes
 * back into the system tenant as "run/NAME" -> {node: Run}.
 */
#include "pack_svc.h"

#include "mesh_err.h"
#include "pack.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Desired packs that change in a burst (a pull brings thousands) are
 * placed once, this long after the first change. */
#define PACK_SVC_SETTLE_MS 20
/* --packs FILE waits this long for the desired packs to arrive from the
 * replicas before it adds the ones still missing. */
#define PACK_SVC_BOOT_WAIT_MS 5000
/* History record keys: 'h', the name's length, the name, 8-byte ms and a
 * 4-byte sequence number, big-endian, so one pack's moves scan in order. */
#define PACK_SVC_HIST_TAG 'h'

static int64_t
pack_svc__wall_offset(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return wall - (int64_t)net_now_ms();
}

static uint64_t
pack_svc__wall_ms(void)
{
	return (uint64_t)((int64_t)net_now_ms() + pack_svc__wall_offset());
}

/* ---- the system tenant ------------------------------------------------- */

struct pack_svc__spec_read {
	uint8_t *data;
	size_t len;
};

static void
pack_svc__spec_visit(void *ctx, const uint8_t *sub, size_t sublen,
		     const uint8_t *val, size_t len)
{
	struct pack_svc__spec_read *r = ctx;
	(void)sublen;
	if (sub != NULL || r->data != NULL)
		return;
	r->data = malloc(len ? len : 1);
	if (r->data != NULL) {
		memcpy(r->data, val, len);
		r->len = len;
	}
}

/* The encoded spec of @name here; *@data freed by the caller. */
static int
pack_svc__spec(struct pack_svc *s, const char *name, uint8_t **data,
	       size_t *len)
{
	char key[sizeof(PACK_SPEC_PREFIX) + PACK_NAME_MAX];
	snprintf(key, sizeof(key), "%s%s", PACK_SPEC_PREFIX, name);
	struct pack_svc__spec_read r = {NULL, 0};
	int rc = tenant_system_read(s->tsvc->t, (const uint8_t *)key,
				    strlen(key), pack_svc__spec_visit, &r);
	if (rc == 0 && r.data == NULL)
		rc = MESH_ENOENT;
	*data = r.data;
	*len = r.len;
	return rc;
}

struct pack_svc__run_read {
	struct pack_svc *s;
	const char *name;
	struct admin_buf *b; /* pack show: render instead */
	bool json;
	size_t n;
};

static void
pack_svc__run_visit(void *ctx, const uint8_t *sub, size_t sublen,
		    const uint8_t *val, size_t len)
{
	struct pack_svc__run_read *r = ctx;
	char node[RING_NAME_MAX + 1];
	if (sub == NULL || sublen == 0 || sublen > RING_NAME_MAX)
		return;
	memcpy(node, sub, sublen);
	node[sublen] = 0;
	if (r->b == NULL) {
		pack_report(r->s->pk, r->name, node, val, len);
		return;
	}
	Pack__Run *m = pack__run__unpack(NULL, len, val);
	if (m == NULL)
		return;
	const char *st = pack_state_name((enum pack_state)m->state);
	if (r->json) {
		admin_printf(r->b, "%s{\"node\":", r->n ? "," : "");
		admin_json_str(r->b, node);
		admin_printf(r->b,
			     ",\"state\":\"%s\",\"since_unix_ms\":%llu,"
			     "\"exit\":%d,\"attempts\":%u,\"detail\":",
			     st, (unsigned long long)m->since_unix_ms, m->exit,
			     m->attempts);
		admin_json_str(r->b, m->detail);
		admin_printf(r->b, "}");
	} else {
		uint64_t age = pack_svc__wall_ms() > m->since_unix_ms
				   ? pack_svc__wall_ms() - m->since_unix_ms
				   : 0;
		admin_printf(r->b, "  %-20s %-9s for %llu s, last exit %d",
			     node, st, (unsigned long long)(age / 1000),
			     m->exit);
		if (m->attempts > 0)
			admin_printf(r->b, ", %u failed starts", m->attempts);
		admin_printf(r->b, "\n");
		if (m->detail[0] != 0)
			admin_printf(r->b, "    output: %.200s\n", m->detail);
	}
	r->n++;
	pack__run__free_unpacked(m, NULL);
}

static void pack_svc__arm(struct pack_svc *s);

void
pack_svc_changed(struct pack_svc *s, const uint8_t *key, size_t len)
{
	char name[PACK_NAME_MAX + 1];
	size_t sp = strlen(PACK_SPEC_PREFIX), rp = strlen(PACK_RUN_PREFIX);
	if (len > sp && len - sp <= PACK_NAME_MAX &&
	    memcmp(key, PACK_SPEC_PREFIX, sp) == 0) {
		memcpy(name, key + sp, len - sp);
		name[len - sp] = 0;
		uint8_t *data;
		size_t dlen;
		int rc = pack_svc__spec(s, name, &data, &dlen);
		if (rc == MESH_ENOENT)
			rc = pack_del(s->pk, name) == MESH_ENOENT ? 1 : 0;
		else if (rc == 0)
			rc = pack_set_spec(s->pk, name, data, dlen);
		free(data);
		if (rc < 0)
			MESH_LOG(s->env, MESH_LOG_WARN,
				 "pack: ignoring the spec of %s: %s", name,
				 mesh_strerror(rc));
		else if (rc == 0)
			s->dirty = true;
	} else if (len > rp && len - rp <= PACK_NAME_MAX &&
		   memcmp(key, PACK_RUN_PREFIX, rp) == 0) {
		memcpy(name, key + rp, len - rp);
		name[len - rp] = 0;
		pack_report(s->pk, name, NULL, NULL, 0);
		struct pack_svc__run_read r = {s, name, NULL, false, 0};
		tenant_system_read(s->tsvc->t, key, len, pack_svc__run_visit,
				   &r);
	}
	pack_svc__arm(s);
}

/* Keys found by a scan, read after it: the store allows no read inside
 * its own scan. */
struct pack_svc__keys {
	char **k;
	size_t n, cap;
	bool failed;
};

static void
pack_svc__scanned(void *ctx, const uint8_t *key, size_t len)
{
	struct pack_svc__keys *ks = ctx;
	if (ks->n == ks->cap) {
		size_t ncap = ks->cap ? ks->cap * 2 : 256;
		char **g = realloc(ks->k, ncap * sizeof(*g));
		if (g == NULL) {
			ks->failed = true;
			return;
		}
		ks->k = g;
		ks->cap = ncap;
	}
	char *c = malloc(len + 1);
	if (c == NULL) {
		ks->failed = true;
		return;
	}
	memcpy(c, key, len);
	c[len] = 0;
	ks->k[ks->n++] = c;
}

/* ---- history ----------------------------------------------------------- */

static size_t
pack_svc__hist_prefix(uint8_t *k, const char *name)
{
	size_t n = strlen(name);
	k[0] = PACK_SVC_HIST_TAG;
	k[1] = (uint8_t)n;
	memcpy(k + 2, name, n);
	return n + 2;
}

struct pack_svc__hist {
	struct admin_buf *b;
	bool json;
	size_t n, total;
	uint8_t oldest[2 + PACK_NAME_MAX + 12];
	size_t oldest_len;
};

static int
pack_svc__hist_visit(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct pack_svc__hist *h = arg;
	if (h->total++ == 0 && klen <= sizeof(h->oldest)) {
		memcpy(h->oldest, key, klen);
		h->oldest_len = klen;
	}
	if (h->b == NULL)
		return 0;
	Pack__Move *m = pack__move__unpack(NULL, vlen, val);
	if (m == NULL)
		return 0;
	if (h->json) {
		admin_printf(h->b,
			     "%s{\"unix_ms\":%llu,\"from\":", h->n ? "," : "",
			     (unsigned long long)m->unix_ms);
		admin_json_str(h->b, m->from);
		admin_printf(h->b, ",\"to\":");
		admin_json_str(h->b, m->to);
		admin_printf(h->b, ",\"reason\":");
		admin_json_str(h->b, m->reason);
		admin_printf(h->b, "}");
	} else {
		time_t t = (time_t)(m->unix_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		admin_printf(h->b,
			     "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ  %-16s -> "
			     "%-16s %s\n",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			     tm.tm_hour, tm.tm_min, tm.tm_sec,
			     (unsigned)(m->unix_ms % 1000),
			     m->from[0] ? m->from : "(none)",
			     m->to[0] ? m->to : "(none)", m->reason);
	}
	h->n++;
	pack__move__free_unpacked(m, NULL);
	return 0;
}

static void
pack_svc__put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Appends an encoded Move of @name; drops the oldest beyond the cap. */
static void
pack_svc__history_add(struct pack_svc *s, const char *name, const uint8_t *data,
		      size_t len)
{
	uint8_t k[2 + PACK_NAME_MAX + 12];
	size_t plen = pack_svc__hist_prefix(k, name);
	pack_svc__put_be(k + plen, pack_svc__wall_ms(), 8);
	pack_svc__put_be(k + plen + 8, ++s->seq, 4);
	struct pack_svc__hist h = {0};
	tenant_svc_local_scan(s->tsvc, k, plen, pack_svc__hist_visit, &h);
	struct tenant_kv_write w[2] = {{k, plen + 12, data, len, false},
				       {h.oldest, h.oldest_len, NULL, 0, true}};
	size_t n = h.total >= PACK_SVC_HISTORY_MAX ? 2 : 1;
	int rc = tenant_svc_local_commit(s->tsvc, w, n);
	if (rc != 0)
		MESH_LOG(s->env, MESH_LOG_ERROR,
			 "pack: cannot record a move of %s: %s", name,
			 mesh_strerror(rc));
}

/* ---- what our hooks started -------------------------------------------
 *
 * 'p' + name: a start was asked and no successful stop since. The pack's
 * processes outlive a kill -9 of the agent; the next life adopts them
 * (pack_adopt) and stops those it does not own. */
#define PACK_SVC_STARTED_TAG 'p'

static void
pack_svc__started(struct pack_svc *s, const char *name, bool on)
{
	uint8_t k[1 + PACK_NAME_MAX];
	size_t n = strlen(name);
	k[0] = PACK_SVC_STARTED_TAG;
	memcpy(k + 1, name, n);
	struct tenant_kv_write w = {k, n + 1, (const uint8_t *)"", 0, !on};
	int rc = tenant_svc_local_commit(s->tsvc, &w, 1);
	if (rc != 0)
		MESH_LOG(s->env, MESH_LOG_ERROR,
			 "pack: cannot record that %s %s: %s", name,
			 on ? "started" : "stopped", mesh_strerror(rc));
}

static int
pack_svc__started_visit(void *arg, const void *key, size_t klen,
			const void *val, size_t vlen)
{
	(void)val;
	(void)vlen;
	if (klen > 1 && klen <= 1 + PACK_NAME_MAX)
		pack_svc__scanned(arg, (const uint8_t *)key + 1, klen - 1);
	return 0;
}

/* ---- hooks and events -------------------------------------------------- */

static void pack_svc__pump(struct pack_svc *s);

static void
pack_svc__hook_done(void *ctx, uint64_t id, const struct hook_result *res)
{
	struct pack_svc *s = ctx;
	int status =
	    res->spawn_error != 0 || res->timed_out || res->term_signal != 0
		? -1
		: res->exit_status;
	char detail[PACK_DETAIL_MAX + 1];
	/* The last lines: what fits of the tail's end. */
	const char *t = res->tail;
	if (res->tail_len > PACK_DETAIL_MAX)
		t += res->tail_len - PACK_DETAIL_MAX;
	size_t at = 0;
	if (res->timed_out)
		at = (size_t)snprintf(detail, sizeof(detail), "timed out; ");
	else if (res->term_signal != 0)
		at =
		    (size_t)snprintf(detail, sizeof(detail),
				     "killed by signal %d; ", res->term_signal);
	size_t tl = strlen(t);
	if (tl > sizeof(detail) - 1 - at)
		t += tl - (sizeof(detail) - 1 - at);
	memcpy(detail + at, t, strlen(t) + 1);
	pack_hook_done(s->pk, net_now_ms(), id, status, detail);
	pack_svc__pump(s);
}

static const char *
pack_svc__action(enum pack_action a)
{
	return a == PACK_START ? "start" : a == PACK_STOP ? "stop" : "check";
}

static void
pack_svc__run_hook(struct pack_svc *s, const struct pack_hook *h)
{
	struct hook_var v[8 + PACK_LABELS_MAX];
	char mem[16], reps[16], lkey[PACK_LABELS_MAX][PACK_LABEL_MAX + 24];
	size_t nv = 0;
	v[nv++] = (struct hook_var){"MESH_NODE", s->name};
	v[nv++] = (struct hook_var){"MESH_PACK", h->name};
	uint8_t *data = NULL;
	size_t len = 0;
	struct pack_spec sp;
	void *buf = NULL;
	if (pack_svc__spec(s, h->name, &data, &len) == 0 &&
	    pack_spec_decode(data, len, &sp, &buf, NULL) == 0) {
		snprintf(mem, sizeof(mem), "%u", sp.mem_mib);
		snprintf(reps, sizeof(reps), "%u", sp.replicas);
		v[nv++] = (struct hook_var){"MESH_PACK_MEM", mem};
		v[nv++] = (struct hook_var){"MESH_PACK_REPLICAS", reps};
		v[nv++] = (struct hook_var){"MESH_PACK_TENANT", sp.tenant};
		v[nv++] = (struct hook_var){"MESH_PACK_ZONE", sp.zone};
		v[nv++] = (struct hook_var){"MESH_PACK_REGION", sp.region};
		for (size_t i = 0; i < sp.nlabels; i++) {
			snprintf(lkey[i], sizeof(lkey[i]), "MESH_PACK_LABEL_%s",
				 sp.label_key[i]);
			v[nv++] = (struct hook_var){lkey[i], sp.label_value[i]};
		}
	}
	/* A pack that left us may run elsewhere now: stop it first. */
	int rc = (h->action == PACK_STOP ? hook_run_urgent : hook_run)(
	    s->hooks, h->id, pack_svc__action(h->action), h->name, v, nv);
	pack_spec_release(buf);
	free(data);
	if (rc != 0) {
		char why[96];
		snprintf(why, sizeof(why), "the hook could not be queued: %s",
			 mesh_strerror(rc));
		pack_hook_done(s->pk, net_now_ms(), h->id, -1, why);
	}
}

static void
pack_svc__event(struct pack_svc *s, const struct pack_event *ev)
{
	char map[sizeof(PACK_RUN_PREFIX) + PACK_NAME_MAX];
	snprintf(map, sizeof(map), "%s%s", PACK_RUN_PREFIX, ev->name);
	switch (ev->kind) {
	case PACK_EV_RUN:
		tenant_svc_system(s->tsvc, NULL, false, NULL, TENANT_OP_PUT,
				  s->name, ev->data, ev->len, map);
		if (ev->state == PACK_STARTING)
			pack_svc__started(s, ev->name, true);
		break;
	case PACK_EV_UNRUN:
		tenant_svc_system(s->tsvc, NULL, false, NULL, TENANT_OP_RM,
				  ev->node, NULL, 0, map);
		if (strcmp(ev->node, s->name) == 0)
			pack_svc__started(s, ev->name, false);
		break;
	case PACK_EV_SWEEP: {
		pack_report(s->pk, ev->name, NULL, NULL, 0);
		struct pack_svc__run_read r = {s, ev->name, NULL, false, 0};
		tenant_system_read(s->tsvc->t, (const uint8_t *)map,
				   strlen(map), pack_svc__run_visit, &r);
		break;
	}
	case PACK_EV_MOVE: {
		Pack__Move *m = pack__move__unpack(NULL, ev->len, ev->data);
		if (m != NULL) {
			MESH_LOG(s->env, MESH_LOG_INFO,
				 "pack: %s moves %s -> %s (%s)", m->pack,
				 m->from[0] ? m->from : "(none)",
				 m->to[0] ? m->to : "(none)", m->reason);
			pack__move__free_unpacked(m, NULL);
		}
		pack_svc__history_add(s, ev->name, ev->data, ev->len);
		break;
	}
	}
}

/* Hands what the core wants done to the hook runner and the store. */
static void
pack_svc__pump(struct pack_svc *s)
{
	/* Events may report again (a sweep), which may queue events: loop
	 * until both queues are empty. */
	for (int round = 0; round < 4; round++) {
		bool any = false;
		struct pack_hook h;
		while (pack_poll_hook(s->pk, &h)) {
			any = true;
			if (s->hooks != NULL)
				pack_svc__run_hook(s, &h);
			else
				pack_hook_done(s->pk, net_now_ms(), h.id, 0,
					       "");
		}
		struct pack_event ev;
		while (pack_poll_event(s->pk, &ev)) {
			any = true;
			pack_svc__event(s, &ev);
		}
		if (!any)
			break;
	}
	pack_svc__arm(s);
}

static void
pack_svc__update(struct pack_svc *s)
{
	s->dirty = false;
	pack_update(s->pk, net_now_ms(), s->ring);
	pack_svc__pump(s);
}

static void
pack_svc__bootstrap_now(struct pack_svc *s)
{
	size_t added = 0;
	for (size_t i = 0; i < s->nboot; i++) {
		struct pack_info in;
		if (pack_info(s->pk, s->boot[i], &in) != 0) {
			struct pack_spec sp = {.tenant = "",
					       .replicas = 1,
					       .zone = "",
					       .region = "",
					       .created_unix_ms =
						   pack_svc__wall_ms()};
			uint8_t *data;
			size_t len;
			char key[sizeof(PACK_SPEC_PREFIX) + PACK_NAME_MAX];
			snprintf(key, sizeof(key), "%s%s", PACK_SPEC_PREFIX,
				 s->boot[i]);
			if (pack_spec_encode(&sp, &data, &len, NULL) == 0) {
				tenant_svc_system(s->tsvc, NULL, false, NULL,
						  TENANT_OP_PUT, key, data, len,
						  NULL);
				free(data);
				added++;
			}
		}
		free(s->boot[i]);
	}
	if (s->nboot > 0)
		MESH_LOG(s->env, MESH_LOG_INFO,
			 "pack: --packs: %zu of %zu packs were new and are "
			 "added",
			 added, s->nboot);
	free(s->boot);
	s->boot = NULL;
	s->nboot = 0;
}

static void
pack_svc__timer(uv_timer_t *t)
{
	struct pack_svc *s = t->data;
	uint64_t now = net_now_ms();
	if (s->boot != NULL && now >= s->boot_at_ms)
		pack_svc__bootstrap_now(s);
	if (s->dirty)
		pack_svc__update(s);
	pack_tick(s->pk, now);
	pack_svc__pump(s);
}

static void
pack_svc__arm(struct pack_svc *s)
{
	uint64_t now = net_now_ms(), next = pack_next_deadline(s->pk);
	if (s->dirty && now + PACK_SVC_SETTLE_MS < next)
		next = now + PACK_SVC_SETTLE_MS;
	if (s->boot != NULL && s->boot_at_ms < next)
		next = s->boot_at_ms;
	if (next == UINT64_MAX) {
		uv_timer_stop(&s->timer);
		return;
	}
	/* A settle timer already running is not pushed back. */
	if (uv_is_active((uv_handle_t *)&s->timer) &&
	    uv_timer_get_due_in(&s->timer) <= (next > now ? next - now : 0))
		return;
	uv_timer_start(&s->timer, pack_svc__timer, next > now ? next - now : 0,
		       0);
}

/* ---- life -------------------------------------------------------------- */

int
pack_svc_start(struct pack_svc *s, uv_loop_t *loop, struct tenant_svc *tsvc,
	       const struct pack_config *cfg, const char *hook_exec,
	       uint32_t hook_timeout_ms, const struct mesh_env *env)
{
	memset(s, 0, sizeof(*s));
	struct pack_config c = *cfg;
	c.hook = hook_exec != NULL;
	c.wall_offset_ms = pack_svc__wall_offset();
	s->tsvc = tsvc;
	s->env = env;
	snprintf(s->name, sizeof(s->name), "%s", cfg->name);
	int rc = pack_new(&c, env, &s->pk);
	if (rc != 0)
		return rc;
	/* Hooks run at most 4 at once: a node taking over many packs
	 * starts them in waves instead of forking them all at once. */
	if (hook_exec != NULL &&
	    (rc = hook_runner_new(loop, hook_exec, 4, hook_timeout_ms,
				  pack_svc__hook_done, s, &s->hooks)) != 0) {
		pack_free(s->pk);
		s->pk = NULL;
		return rc;
	}
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	/* What the store holds already (a restart): nothing will report it
	 * as changed. */
	struct pack_svc__keys ks = {0};
	if ((rc = tenant_system_scan(tsvc->t, PACK_SPEC_PREFIX,
				     pack_svc__scanned, &ks)) != 0 ||
	    (rc = tenant_system_scan(tsvc->t, PACK_RUN_PREFIX,
				     pack_svc__scanned, &ks)) != 0 ||
	    ks.failed)
		MESH_LOG(env, MESH_LOG_ERROR,
			 "pack: cannot read the desired packs: %s",
			 mesh_strerror(rc ? rc : MESH_ENOMEM));
	for (size_t i = 0; i < ks.n; i++) {
		pack_svc_changed(s, (const uint8_t *)ks.k[i], strlen(ks.k[i]));
		free(ks.k[i]);
	}
	/* What our hooks left running in the last life. */
	ks.n = 0;
	uint8_t tag = PACK_SVC_STARTED_TAG;
	if (c.hook)
		tenant_svc_local_scan(tsvc, &tag, 1, pack_svc__started_visit,
				      &ks);
	for (size_t i = 0; i < ks.n; i++) {
		if (pack_adopt(s->pk, net_now_ms(), ks.k[i]) == 0)
			MESH_LOG(env, MESH_LOG_INFO,
				 "pack: %s was started here before the "
				 "agent restarted: checked if ours, stopped "
				 "if not",
				 ks.k[i]);
		free(ks.k[i]);
	}
	free(ks.k);
	return 0;
}

void
pack_svc_stop(struct pack_svc *s)
{
	if (s->pk == NULL)
		return;
	if (s->hooks != NULL)
		hook_runner_close(s->hooks, NULL);
	uv_close((uv_handle_t *)&s->timer, NULL);
	for (size_t i = 0; i < s->nboot; i++)
		free(s->boot[i]);
	free(s->boot);
	pack_free(s->pk);
	s->pk = NULL;
}

void
pack_svc_set_view(struct pack_svc *s, const struct ring *ring)
{
	/* The ring is new each time (the old one is freed), but placing
	 * every pack costs a pass over all: only when what placement
	 * depends on changed. */
	bool changed = s->ring == NULL || ring == NULL ||
		       ring_digest(ring) != s->ring_digest;
	s->ring = ring;
	s->ring_digest = ring != NULL ? ring_digest(ring) : 0;
	if (changed)
		pack_svc__update(s);
}

void
pack_svc_bootstrap(struct pack_svc *s, char **names, size_t n)
{
	s->boot = names;
	s->nboot = n;
	s->boot_at_ms = net_now_ms() + PACK_SVC_BOOT_WAIT_MS;
	pack_svc__arm(s);
}

/* ---- commands ---------------------------------------------------------- */

static bool
pack_svc__is(const struct admin_arg *a, const char *s)
{
	return a->len == strlen(s) && memcmp(a->data, s, a->len) == 0;
}

static bool
pack_svc__uint(const struct admin_arg *a, uint32_t max, uint32_t *out)
{
	char *end;
	if (a->len == 0 || a->len > 10 || a->data[0] < '0' || a->data[0] > '9')
		return false;
	unsigned long v = strtoul(a->data, &end, 10);
	if ((size_t)(end - a->data) != a->len || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static void
pack_svc__owners_json(struct admin_buf *b, const struct pack_info *in)
{
	admin_printf(b, "[");
	for (unsigned i = 0; i < in->nowners; i++) {
		admin_printf(b, "%s", i ? "," : "");
		admin_json_str(b, in->owners[i]);
	}
	admin_printf(b, "]");
}

/* The members of a pack's JSON object, braces left to the caller. */
static void
pack_svc__info_json(struct admin_buf *b, const struct pack_info *in)
{
	admin_printf(b, "\"name\":");
	admin_json_str(b, in->name);
	admin_printf(b,
		     ",\"mem_mib\":%u,\"replicas\":%u,\"zone\":", in->mem_mib,
		     in->replicas);
	admin_json_str(b, in->zone);
	admin_printf(b, ",\"region\":");
	admin_json_str(b, in->region);
	admin_printf(b, ",\"owners\":");
	pack_svc__owners_json(b, in);
	admin_printf(b, ",\"state\":\"%s\",\"why\":",
		     in->nowners == 0 ? "unplaceable"
		     : in->reported == PACK_NONE
			 ? "placed"
			 : pack_state_name(in->reported));
	admin_json_str(b, in->why);
	if (in->here) {
		admin_printf(b,
			     ",\"here\":{\"state\":\"%s\",\"since_unix_ms\":"
			     "%llu,\"last_exit\":%d,\"attempts\":%u,"
			     "\"detail\":",
			     pack_state_name(in->state),
			     (unsigned long long)in->since_unix_ms,
			     in->last_exit, in->attempts);
		admin_json_str(b, in->detail);
		admin_printf(b, "}");
	}
}

static void
pack_svc__info_text(struct admin_buf *b, const struct pack_info *in)
{
	admin_printf(b, "%-24s %5u MiB  x%u  %-10s ", in->name, in->mem_mib,
		     in->replicas,
		     in->nowners == 0 ? "unplaced"
		     : in->reported == PACK_NONE
			 ? "placed"
			 : pack_state_name(in->reported));
	for (unsigned i = 0; i < in->nowners; i++)
		admin_printf(b, "%s%s", i ? "," : "", in->owners[i]);
	if (in->why[0] != 0)
		admin_printf(b, "  (%s)", in->why);
	admin_printf(b, "\n");
}

/* ,"runs":[...] : the run states published for @name. */
static void
pack_svc__runs_json(struct pack_svc *s, const char *name, struct admin_buf *b)
{
	char map[sizeof(PACK_RUN_PREFIX) + PACK_NAME_MAX];
	snprintf(map, sizeof(map), "%s%s", PACK_RUN_PREFIX, name);
	struct pack_svc__run_read r = {s, name, b, true, 0};
	admin_printf(b, ",\"runs\":[");
	tenant_system_read(s->tsvc->t, (const uint8_t *)map, strlen(map),
			   pack_svc__run_visit, &r);
	admin_printf(b, "]");
}

static void
pack_svc__ls(struct pack_svc *s, bool json, struct admin_buf *b)
{
	size_t n = pack_count(s->pk);
	if (json)
		admin_printf(b, "{\"packs\":[");
	else if (n == 0)
		admin_printf(b, "no packs (add one: meshctl pack add NAME)\n");
	else
		admin_printf(b, "%-24s %9s %3s  %-10s owners\n", "pack", "mem",
			     "rep", "state");
	for (size_t i = 0; i < n; i++) {
		struct pack_info in;
		if (pack_info_at(s->pk, i, &in) != 0)
			break;
		if (json) {
			admin_printf(b, "%s{", i ? "," : "");
			pack_svc__info_json(b, &in);
			/* Each owner's own word: state, since, last exit. */
			pack_svc__runs_json(s, in.name, b);
			admin_printf(b, "}");
		} else {
			pack_svc__info_text(b, &in);
		}
	}
	if (json)
		admin_printf(b, "]}\n");
}

static void
pack_svc__show(struct pack_svc *s, const char *name, bool json,
	       struct admin_buf *b)
{
	struct pack_info in;
	if (pack_info(s->pk, name, &in) != 0) {
		admin_printf(b,
			     "error: no pack '%s' (meshctl pack ls lists "
			     "them)\n",
			     name);
		return;
	}
	char map[sizeof(PACK_RUN_PREFIX) + PACK_NAME_MAX];
	snprintf(map, sizeof(map), "%s%s", PACK_RUN_PREFIX, name);
	struct pack_svc__run_read r = {s, name, b, json, 0};
	if (json) {
		admin_printf(b, "{\"pack\":{");
		pack_svc__info_json(b, &in);
		admin_printf(b, "}");
		pack_svc__runs_json(s, name, b);
		admin_printf(b, "}\n");
		return;
	}
	admin_printf(b, "pack %s: %u MiB, %u replica%s", in.name, in.mem_mib,
		     in.replicas, in.replicas == 1 ? "" : "s");
	if (in.zone[0] != 0)
		admin_printf(b, ", zone %s%s%s", in.zone,
			     in.region[0] ? " region " : "", in.region);
	admin_printf(b, "\nowners (primary first): ");
	for (unsigned i = 0; i < in.nowners; i++)
		admin_printf(b, "%s%s", i ? ", " : "", in.owners[i]);
	admin_printf(b, "%s\n", in.nowners == 0 ? "none" : "");
	if (in.why[0] != 0)
		admin_printf(b, "not fully placed: %s\n", in.why);
	admin_printf(b, "run states published by nodes:\n");
	tenant_system_read(s->tsvc->t, (const uint8_t *)map, strlen(map),
			   pack_svc__run_visit, &r);
	if (r.n == 0)
		admin_printf(b, "  none (no hook has reported yet, or no node "
				"runs hooks)\n");
}

static void
pack_svc__history(struct pack_svc *s, const char *name, bool json,
		  struct admin_buf *b)
{
	uint8_t k[2 + PACK_NAME_MAX];
	size_t plen = pack_svc__hist_prefix(k, name);
	struct pack_svc__hist h = {b, json, 0, 0, {0}, 0};
	if (json) {
		admin_printf(b, "{\"pack\":");
		admin_json_str(b, name);
		admin_printf(b, ",\"node\":");
		admin_json_str(b, s->name);
		admin_printf(b, ",\"moves\":[");
	}
	tenant_svc_local_scan(s->tsvc, k, plen, pack_svc__hist_visit, &h);
	if (json)
		admin_printf(b, "]}\n");
	else if (h.n == 0)
		admin_printf(b,
			     "no moves of '%s' seen by %s (each node keeps the "
			     "moves that involve it)\n",
			     name, s->name);
}

/* pack add NAME [--mem M] [--replicas R] [--zone Z] [--region R]
 * [--tenant T] [--label K=V]... */
static const char *
pack_svc__add(struct pack_svc *s, struct admin_req *req, const char *name,
	      size_t argc, const struct admin_arg *argv, bool json)
{
	static char keys[PACK_LABELS_MAX][PACK_LABEL_MAX + 1];
	struct pack_spec sp = {.tenant = "",
			       .replicas = 1,
			       .zone = "",
			       .region = "",
			       .created_unix_ms = pack_svc__wall_ms()};
	for (size_t i = 0; i < argc; i++) {
		const struct admin_arg *a = &argv[i];
		if (pack_svc__is(a, "--json"))
			continue;
		if (i + 1 == argc)
			return "an option needs a value";
		const struct admin_arg *v = &argv[++i];
		if (strlen(v->data) != v->len)
			return "a value holds a NUL byte";
		uint32_t u;
		if (pack_svc__is(a, "--mem")) {
			if (!pack_svc__uint(v, 1u << 30, &u))
				return "--mem takes MiB, a whole number";
			sp.mem_mib = u;
		} else if (pack_svc__is(a, "--replicas")) {
			if (!pack_svc__uint(v, RING_REPLICAS_MAX, &u) || u == 0)
				return "--replicas must be 1..8";
			sp.replicas = u;
		} else if (pack_svc__is(a, "--zone")) {
			sp.zone = v->data;
		} else if (pack_svc__is(a, "--region")) {
			sp.region = v->data;
		} else if (pack_svc__is(a, "--tenant")) {
			sp.tenant = v->data;
		} else if (pack_svc__is(a, "--label")) {
			const char *eq = strchr(v->data, '=');
			if (eq == NULL || eq == v->data ||
			    (size_t)(eq - v->data) > PACK_LABEL_MAX)
				return "--label takes KEY=VALUE";
			if (sp.nlabels == PACK_LABELS_MAX)
				return "at most 32 labels";
			memcpy(keys[sp.nlabels], v->data,
			       (size_t)(eq - v->data));
			keys[sp.nlabels][eq - v->data] = 0;
			sp.label_key[sp.nlabels] = keys[sp.nlabels];
			sp.label_value[sp.nlabels++] = eq + 1;
		} else {
			return "unknown option (pack add NAME [--mem MiB] "
			       "[--replicas R] [--zone Z] [--region R] "
			       "[--tenant T] [--label K=V]...)";
		}
	}
	uint8_t *data;
	size_t len;
	const char *why = NULL;
	int rc = pack_spec_encode(&sp, &data, &len, &why);
	if (rc != 0)
		return why ? why : "out of memory";
	char key[sizeof(PACK_SPEC_PREFIX) + PACK_NAME_MAX];
	snprintf(key, sizeof(key), "%s%s", PACK_SPEC_PREFIX, name);
	struct pack_info in;
	const char *note =
	    pack_info(s->pk, name, &in) == 0
		? "pack updated; its owners follow the new spec within a few "
		  "seconds (meshctl pack show NAME)"
		: "pack added; every node learns it within a few seconds "
		  "(meshctl pack show NAME)";
	tenant_svc_system(s->tsvc, req, json, note, TENANT_OP_PUT, key, data,
			  len, NULL);
	free(data);
	return NULL;
}

void
pack_svc_admin(struct pack_svc *s, struct admin_req *req, size_t argc,
	       const struct admin_arg *argv)
{
	struct admin_buf *out = admin_req_out(req);
	bool json = false;
	for (size_t i = 1; i < argc; i++)
		json |= pack_svc__is(&argv[i], "--json");
	const char *bad = NULL;
	const struct admin_arg *sub = argc > 1 ? &argv[1] : NULL;
	const char *name = argc > 2 ? argv[2].data : NULL;
	if (sub == NULL) {
		bad = "usage: pack add|rm|ls|show|history ...";
	} else if (pack_svc__is(sub, "ls")) {
		if (argc > 2 + (size_t)json)
			bad = "usage: pack ls [--json]";
		else
			pack_svc__ls(s, json, out);
	} else if (!pack_svc__is(sub, "add") && !pack_svc__is(sub, "rm") &&
		   !pack_svc__is(sub, "show") &&
		   !pack_svc__is(sub, "history")) {
		bad = "unknown pack command (add, rm, ls, show, history)";
	} else if (name == NULL || strlen(name) != argv[2].len ||
		   !pack_name_ok(name)) {
		bad = "a pack name is 1..128 printable bytes, no spaces or "
		      "'/', not starting with '.' or '-'";
	} else if (pack_svc__is(sub, "add")) {
		bad = pack_svc__add(s, req, name, argc - 3, argv + 3, json);
		if (bad == NULL)
			return; /* answered when the write is durable */
	} else if (argc > 3 + (size_t)json) {
		bad = "too many arguments";
	} else if (pack_svc__is(sub, "rm")) {
		struct pack_info in;
		if (pack_info(s->pk, name, &in) != 0) {
			bad = "no such pack here (meshctl pack ls)";
		} else {
			char key[sizeof(PACK_SPEC_PREFIX) + PACK_NAME_MAX];
			snprintf(key, sizeof(key), "%s%s", PACK_SPEC_PREFIX,
				 name);
			tenant_svc_system(s->tsvc, req, json,
					  "pack removed; its owners stop it",
					  TENANT_OP_RM, key, NULL, 0, NULL);
			return;
		}
	} else if (pack_svc__is(sub, "show")) {
		pack_svc__show(s, name, json, out);
	} else {
		pack_svc__history(s, name, json, out);
	}
	if (bad != NULL)
		admin_printf(out, "error: %s\n", bad);
	admin_req_done(req);
}

bool
pack_svc_place(struct pack_svc *s, const char *name, bool json,
	       struct admin_buf *b)
{
	struct pack_info in;
	if (!pack_name_ok(name) || pack_info(s->pk, name, &in) != 0)
		return false;
	if (json) {
		admin_printf(b, "{\"pack\":");
		admin_json_str(b, name);
		admin_printf(b, ",\"desired\":true,\"owners\":");
		pack_svc__owners_json(b, &in);
		admin_printf(b, ",\"why\":");
		admin_json_str(b, in.why);
		admin_printf(b, "}\n");
	} else {
		admin_printf(b, "pack %s owners (primary first): ", name);
		for (unsigned i = 0; i < in.nowners; i++)
			admin_printf(b, "%s%s", i ? ", " : "", in.owners[i]);
		admin_printf(b, "%s\n", in.nowners ? "" : "none");
		if (in.why[0] != 0)
			admin_printf(b, "  %s\n", in.why);
	}
	return true;
}

void
pack_svc_owned(struct pack_svc *s, bool json, struct admin_buf *b)
{
	size_t n = pack_count(s->pk), shown = 0;
	if (json)
		admin_printf(b, "{\"node\":");
	if (json) {
		admin_json_str(b, s->name);
		admin_printf(b, ",\"packs\":[");
	}
	for (size_t i = 0; i < n; i++) {
		struct pack_info in;
		if (pack_info_at(s->pk, i, &in) != 0)
			break;
		if (!in.here)
			continue;
		if (json) {
			admin_printf(b, "%s{", shown ? "," : "");
			pack_svc__info_json(b, &in);
			admin_printf(b, "}");
		} else {
			admin_printf(b, "%-24s %-9s last exit %d\n", in.name,
				     pack_state_name(in.state), in.last_exit);
		}
		shown++;
	}
	if (json)
		admin_printf(b, "]}\n");
	else
		admin_printf(b, "%zu of %zu packs here\n", shown, n);
}

void
pack_svc_status_text(struct pack_svc *s, struct admin_buf *b)
{
	struct pack_counts c;
	pack_counts(s->pk, &c);
	admin_printf(b,
		     "packs        %zu desired, %zu placed, %zu running, %zu "
		     "starting, %zu failed, %zu unplaceable",
		     c.desired, c.placed + c.short_owned, c.running, c.starting,
		     c.failed, c.unplaceable);
	if (c.short_owned > 0)
		admin_printf(b, ", %zu short of replicas", c.short_owned);
	admin_printf(b, "; here %zu (%llu MiB)%s\n", c.mine,
		     (unsigned long long)c.mem_mib_here,
		     s->hooks == NULL ? ", no hook: placed only" : "");
}

void
pack_svc_status_json(struct pack_svc *s, struct admin_buf *b)
{
	struct pack_counts c;
	pack_counts(s->pk, &c);
	admin_printf(
	    b,
	    "\"packs\":{\"desired\":%zu,\"placed\":%zu,\"short\":%zu,"
	    "\"running\":%zu,\"starting\":%zu,\"failed\":%zu,"
	    "\"unplaceable\":%zu,\"here\":%zu,\"mem_mib_here\":%llu,"
	    "\"moves\":%llu,\"hook\":%s,\"hooks_run\":%llu,"
	    "\"hooks_failed\":%llu}",
	    c.desired, c.placed, c.short_owned, c.running, c.starting, c.failed,
	    c.unplaceable, c.mine, (unsigned long long)c.mem_mib_here,
	    (unsigned long long)c.moves, s->hooks != NULL ? "true" : "false",
	    (unsigned long long)c.hooks_run,
	    (unsigned long long)c.hooks_failed);
}
