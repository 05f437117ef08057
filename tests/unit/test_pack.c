/*
 * test_pack.c - the pack core: specs, agreement between nodes, memory as a
 * hard capacity, the hook state machine, failover, reports and history.
 */
#include "mesh_err.h"
#include "pack.h"
#include "pack.pb-c.h"
#include "test_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NODES 6

static struct test_env env;
static char names[NODES][8];
static const char *zones[] = {"z0", "z1", "z2"};

/* A ring of the NODES nodes; @down: not alive, @drain: draining; @mem: MiB
 * of each node (0 unlimited). */
static struct ring *
mk_ring(uint32_t down, uint32_t drain, uint32_t mem, bool reverse)
{
	struct ring_member m[NODES];
	memset(m, 0, sizeof(m));
	for (int i = 0; i < NODES; i++) {
		int k = reverse ? NODES - 1 - i : i;
		snprintf(names[k], sizeof(names[k]), "n%d", k);
		m[i].name = names[k];
		m[i].zone = zones[k % 3];
		m[i].alive = !(down & (1u << k));
		m[i].draining = (drain & (1u << k)) != 0;
		m[i].mem = mem;
	}
	struct ring *r;
	assert_int_equal(ring_new(&env.env, NULL, m, NODES, &r), 0);
	return r;
}

static void
spec_bytes(unsigned mem, unsigned replicas, const char *zone, uint8_t **out,
	   size_t *len)
{
	struct pack_spec s = {.tenant = "",
			      .mem_mib = mem,
			      .replicas = replicas,
			      .zone = zone,
			      .region = ""};
	assert_int_equal(pack_spec_encode(&s, out, len, NULL), 0);
}

static void
add(struct pack *pk, const char *name, unsigned mem, unsigned replicas,
    const char *zone)
{
	uint8_t *b;
	size_t len;
	spec_bytes(mem, replicas, zone, &b, &len);
	assert_int_equal(pack_set_spec(pk, name, b, len), 0);
	free(b);
}

static struct pack *
mk_pack(int node, bool hook)
{
	struct pack_config cfg;
	pack_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "n%d", node);
	cfg.hook = hook;
	struct pack *pk;
	assert_int_equal(pack_new(&cfg, &env.env, &pk), 0);
	return pk;
}

static int
setup(void **state)
{
	(void)state;
	test_env_init(&env);
	return 0;
}

static void
test_pack_names_and_specs(void **state)
{
	(void)state;
	char big[PACK_NAME_MAX + 2];
	memset(big, 'a', sizeof(big));
	big[PACK_NAME_MAX] = 0;
	assert_true(pack_name_ok("web-1"));
	assert_true(pack_name_ok("db:main@eu"));
	assert_true(pack_name_ok(big));
	big[PACK_NAME_MAX] = 'a';
	big[PACK_NAME_MAX + 1] = 0;
	assert_false(pack_name_ok(big));
	assert_false(pack_name_ok(""));
	assert_false(pack_name_ok("a/b"));
	assert_false(pack_name_ok(".hidden"));
	assert_false(pack_name_ok("-x"));
	assert_false(pack_name_ok("with space"));

	const char *k[] = {"CMD", "team"}, *v[] = {"sleep 9", "blue"};
	struct pack_spec s = {.tenant = "acme",
			      .mem_mib = 256,
			      .replicas = 2,
			      .zone = "z1",
			      .region = "r1",
			      .nlabels = 2,
			      .created_unix_ms = 42};
	memcpy(s.label_key, k, sizeof(k));
	memcpy(s.label_value, v, sizeof(v));
	uint8_t *b;
	size_t len;
	assert_int_equal(pack_spec_encode(&s, &b, &len, NULL), 0);
	struct pack_spec d;
	void *buf;
	assert_int_equal(pack_spec_decode(b, len, &d, &buf, NULL), 0);
	assert_string_equal(d.tenant, "acme");
	assert_int_equal(d.mem_mib, 256);
	assert_int_equal(d.replicas, 2);
	assert_string_equal(d.region, "r1");
	assert_int_equal(d.nlabels, 2);
	assert_string_equal(d.label_value[0], "sleep 9");
	pack_spec_release(buf);
	free(b);

	const char *why = NULL;
	s.replicas = 9;
	assert_int_equal(pack_spec_encode(&s, &b, &len, &why), MESH_EINVAL);
	assert_non_null(strstr(why, "replicas"));
	s.replicas = 1;
	s.zone = "";
	assert_int_equal(pack_spec_encode(&s, &b, &len, &why), MESH_EINVAL);
	assert_non_null(strstr(why, "zone"));
	s.zone = "z1";
	k[1] = "bad-key";
	memcpy(s.label_key, k, sizeof(k));
	assert_int_equal(pack_spec_encode(&s, &b, &len, &why), MESH_EINVAL);
	const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
	assert_int_equal(pack_spec_decode(junk, sizeof(junk), &d, &buf, &why),
			 MESH_EDECODE);
	struct pack *pk = mk_pack(0, false);
	assert_int_equal(pack_set_spec(pk, "x", junk, sizeof(junk)),
			 MESH_EDECODE);
	assert_int_equal(pack_set_spec(pk, "a/b", junk, 0), MESH_EINVAL);
	assert_int_equal(pack_count(pk), 0);
	pack_free(pk);
}

/* Every node computes the same owners from the same view, whatever order
 * it learned the packs in: each pack has exactly its replicas, memory
 * never exceeds a node's capacity. */
static void
test_pack_nodes_agree(void **state)
{
	(void)state;
	struct pack *pk[NODES];
	/* 38,400 MiB asked for, 60,000 there: bounded loads leave room. */
	struct ring *r = mk_ring(0, 0, 10000, false);
	struct ring *rr = mk_ring(0, 0, 10000, true);
	for (int i = 0; i < NODES; i++) {
		pk[i] = mk_pack(i, false);
		for (int j = 0; j < 400; j++) {
			int p = i % 2 ? 399 - j : j; /* two orders */
			char name[32];
			snprintf(name, sizeof(name), "pack-%d", p);
			add(pk[i], name, 16 + (p % 7) * 16, 1 + p % 2, "");
		}
		assert_int_equal(pack_update(pk[i], 1000, i % 2 ? rr : r), 0);
	}
	unsigned owned[400] = {0};
	uint64_t mem[NODES] = {0};
	for (int i = 0; i < NODES; i++) {
		struct pack_counts c;
		pack_counts(pk[i], &c);
		assert_int_equal(c.desired, 400);
		assert_int_equal(c.placed, 400);
		assert_int_equal(c.unplaceable, 0);
		mem[i] = c.mem_mib_here;
		for (size_t k = 0; k < pack_count(pk[i]); k++) {
			struct pack_info in, other;
			assert_int_equal(pack_info_at(pk[i], k, &in), 0);
			assert_int_equal(pack_info(pk[0], in.name, &other), 0);
			assert_int_equal(in.nowners, other.nowners);
			for (unsigned o = 0; o < in.nowners; o++)
				assert_string_equal(in.owners[o],
						    other.owners[o]);
			int p = atoi(in.name + 5);
			assert_int_equal(in.nowners, 1 + p % 2);
			if (in.here)
				owned[p]++;
		}
	}
	uint64_t total = 0;
	for (int p = 0; p < 400; p++) {
		assert_int_equal(owned[p], 1 + p % 2);
		total += (uint64_t)(16 + (p % 7) * 16) * (1 + p % 2);
	}
	uint64_t sum = 0;
	for (int i = 0; i < NODES; i++) {
		assert_true(mem[i] <= 10000);
		sum += mem[i];
	}
	assert_int_equal(sum, total);
	for (int i = 0; i < NODES; i++)
		pack_free(pk[i]);
	ring_free(r);
	ring_free(rr);
}

/* Memory is a hard capacity: what does not fit is unplaceable, with a
 * reason; a zone nobody is in is reported too. */
static void
test_pack_capacity_and_constraints(void **state)
{
	(void)state;
	struct ring *r = mk_ring(0, 0, 1000, false);
	struct pack *pk = mk_pack(0, false);
	for (int j = 0; j < 10; j++) {
		char name[16];
		snprintf(name, sizeof(name), "big-%d", j);
		add(pk, name, 700, 1, ""); /* one per node at most */
	}
	add(pk, "huge", 5000, 1, "");
	add(pk, "in-z1", 10, 2, "z1");
	add(pk, "nowhere", 10, 1, "z9");
	assert_int_equal(pack_update(pk, 0, r), 0);
	struct pack_counts c;
	pack_counts(pk, &c);
	assert_int_equal(c.desired, 13);
	/* 6 of the big ones, in-z1 with both its replicas. */
	assert_int_equal(c.placed, 7);
	assert_int_equal(c.unplaceable, 6);
	struct pack_info in;
	assert_int_equal(pack_info(pk, "huge", &in), 0);
	assert_int_equal(in.nowners, 0);
	assert_int_equal(in.fit, RING_FIT_MEM);
	assert_non_null(strstr(in.why, "5000 MiB"));
	assert_int_equal(pack_info(pk, "nowhere", &in), 0);
	assert_int_equal(in.fit, RING_FIT_DOMAIN);
	assert_non_null(strstr(in.why, "zone z9"));
	assert_int_equal(pack_info(pk, "in-z1", &in), 0);
	assert_int_equal(in.nowners, 2);
	for (unsigned o = 0; o < 2; o++) /* n1 and n4 are in z1 */
		assert_true(strcmp(in.owners[o], "n1") == 0 ||
			    strcmp(in.owners[o], "n4") == 0);
	pack_free(pk);
	ring_free(r);
}

/* Hooks: drain the queue, answering each run with @status. Returns how
 * many of @action ran. */
static int
run_hooks(struct pack *pk, uint64_t now, enum pack_action action, int status,
	  char *last, size_t cap)
{
	struct pack_hook h;
	int n = 0;
	uint64_t ids[64];
	int acts[64];
	int k = 0;
	while (pack_poll_hook(pk, &h)) {
		assert_true(k < 64);
		ids[k] = h.id;
		acts[k++] = h.action;
		if (h.action == action) {
			n++;
			if (last)
				snprintf(last, cap, "%s", h.name);
		}
	}
	for (int i = 0; i < k; i++)
		pack_hook_done(pk, now, ids[i],
			       acts[i] == (int)action ? status : 0,
			       status ? "boom\n" : "");
	return n;
}

/* Events: count those of @kind; the last move's reason into @reason. */
static int
events(struct pack *pk, enum pack_event_kind kind, char *reason, size_t cap)
{
	struct pack_event ev;
	int n = 0;
	while (pack_poll_event(pk, &ev)) {
		if (ev.kind != kind)
			continue;
		n++;
		if (kind == PACK_EV_MOVE && reason != NULL) {
			Pack__Move *m =
			    pack__move__unpack(NULL, ev.len, ev.data);
			assert_non_null(m);
			snprintf(reason, cap, "%s %s->%s", m->reason, m->from,
				 m->to);
			pack__move__free_unpacked(m, NULL);
		}
	}
	return n;
}

/* Which node owns @name. */
static int
owner_of(struct pack *pk, const char *name)
{
	struct pack_info in;
	assert_int_equal(pack_info(pk, name, &in), 0);
	assert_int_equal(in.nowners, 1);
	return atoi(in.owners[0] + 1);
}

/* The owner's hook starts the pack; when the owner goes down the next
 * owner starts it; when the owner is drained it stops it there. Moves
 * involving a node are recorded there, with their reason. */
static void
test_pack_failover_runs_hooks(void **state)
{
	(void)state;
	struct pack *pk[NODES];
	struct ring *r = mk_ring(0, 0, 0, false);
	for (int i = 0; i < NODES; i++) {
		pk[i] = mk_pack(i, true);
		add(pk[i], "web", 64, 1, "");
		assert_int_equal(pack_update(pk[i], 100, r), 0);
	}
	int a = owner_of(pk[0], "web");
	for (int i = 0; i < NODES; i++) {
		char name[64] = "";
		assert_int_equal(
		    run_hooks(pk[i], 110, PACK_START, 0, name, sizeof(name)),
		    i == a ? 1 : 0);
		if (i == a) {
			assert_string_equal(name, "web");
			char why[64];
			assert_int_equal(
			    events(pk[i], PACK_EV_MOVE, why, sizeof(why)), 1);
			assert_non_null(strstr(why, "start"));
		}
	}
	struct pack_info in;
	assert_int_equal(pack_info(pk[a], "web", &in), 0);
	assert_true(in.here);
	assert_int_equal(in.state, PACK_RUNNING);
	assert_int_equal(in.last_exit, 0);
	/* The owner dies. */
	struct ring *r2 = mk_ring(1u << a, 0, 0, false);
	for (int i = 0; i < NODES; i++)
		if (i != a)
			assert_int_equal(pack_update(pk[i], 5000, r2), 0);
	int b = owner_of(pk[(a + 1) % NODES], "web");
	assert_int_not_equal(a, b);
	for (int i = 0; i < NODES; i++) {
		if (i == a)
			continue;
		assert_int_equal(run_hooks(pk[i], 5010, PACK_START, 0, NULL, 0),
				 i == b ? 1 : 0);
		char why[64] = "";
		int moves = events(pk[i], PACK_EV_MOVE, why, sizeof(why));
		assert_int_equal(moves, i == b ? 1 : 0);
		if (i == b) {
			char want[64];
			snprintf(want, sizeof(want), "down n%d->n%d", a, b);
			assert_string_equal(why, want);
		}
	}
	/* Now b is drained while alive: it stops the pack, and publishes
	 * that its run entry is gone once the stop succeeded. */
	struct ring *r3 = mk_ring(1u << a, 1u << b, 0, false);
	assert_int_equal(pack_update(pk[b], 9000, r3), 0);
	char why[64] = "";
	assert_int_equal(events(pk[b], PACK_EV_MOVE, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "drained"));
	assert_int_equal(run_hooks(pk[b], 9010, PACK_STOP, 0, NULL, 0), 1);
	assert_int_equal(events(pk[b], PACK_EV_UNRUN, NULL, 0), 1);
	assert_int_equal(pack_info(pk[b], "web", &in), 0);
	assert_false(in.here);
	for (int i = 0; i < NODES; i++)
		pack_free(pk[i]);
	ring_free(r);
	ring_free(r2);
	ring_free(r3);
}

/* A failing start is retried with backoff 1 s, 2 s, 4 s; a failing check
 * makes the pack failed and starts it again; the state is published. */
static void
test_pack_retry_and_check(void **state)
{
	(void)state;
	struct ring *r = mk_ring(0, 0, 0, false);
	int self = -1;
	struct pack *pk = NULL;
	for (int i = 0; i < NODES && self < 0; i++) {
		pk = mk_pack(i, true);
		add(pk, "job", 0, 1, "");
		pack_update(pk, 0, r);
		struct pack_info in;
		pack_info(pk, "job", &in);
		if (in.here)
			self = i;
		else
			pack_free(pk);
	}
	assert_true(self >= 0);
	assert_int_equal(run_hooks(pk, 10, PACK_START, 3, NULL, 0), 1);
	struct pack_info in;
	pack_info(pk, "job", &in);
	assert_int_equal(in.state, PACK_FAILED);
	assert_int_equal(in.last_exit, 3);
	assert_string_equal(in.detail, "boom\n");
	assert_int_equal(pack_next_deadline(pk), 10 + 1000);
	pack_tick(pk, 500); /* not yet */
	assert_int_equal(run_hooks(pk, 500, PACK_START, 3, NULL, 0), 0);
	pack_tick(pk, 1010);
	assert_int_equal(run_hooks(pk, 1010, PACK_START, 3, NULL, 0), 1);
	assert_int_equal(pack_next_deadline(pk), 1010 + 2000);
	pack_tick(pk, 3010);
	assert_int_equal(run_hooks(pk, 3010, PACK_START, 3, NULL, 0), 1);
	assert_int_equal(pack_next_deadline(pk), 3010 + 4000);
	pack_tick(pk, 7010);
	assert_int_equal(run_hooks(pk, 7010, PACK_START, 0, NULL, 0), 1);
	pack_info(pk, "job", &in);
	assert_int_equal(in.state, PACK_RUNNING);
	assert_int_equal(in.attempts, 0);
	/* Published: starting, failed (x3 with starting between), running. */
	struct pack_event ev;
	enum pack_state last = PACK_NONE;
	int runs = 0;
	while (pack_poll_event(pk, &ev))
		if (ev.kind == PACK_EV_RUN) {
			Pack__Run *m = pack__run__unpack(NULL, ev.len, ev.data);
			assert_non_null(m);
			last = (enum pack_state)m->state;
			pack__run__free_unpacked(m, NULL);
			runs++;
		}
	assert_int_equal(last, PACK_RUNNING);
	assert_int_equal(runs, 8);
	/* Checks every 10 s; a failed check restarts after 1 s. */
	assert_int_equal(pack_next_deadline(pk), 7010 + 10000);
	pack_tick(pk, 17010);
	assert_int_equal(run_hooks(pk, 17010, PACK_CHECK, 1, NULL, 0), 1);
	pack_info(pk, "job", &in);
	assert_int_equal(in.state, PACK_FAILED);
	pack_tick(pk, 18010);
	assert_int_equal(run_hooks(pk, 18010, PACK_START, 0, NULL, 0), 1);
	pack_info(pk, "job", &in);
	assert_int_equal(in.state, PACK_RUNNING);
	/* Removed from the desired packs: stopped, entry unpublished. */
	assert_int_equal(pack_del(pk, "job"), 0);
	assert_int_equal(pack_update(pk, 20000, r), 0);
	assert_int_equal(run_hooks(pk, 20010, PACK_STOP, 0, NULL, 0), 1);
	assert_int_equal(events(pk, PACK_EV_UNRUN, NULL, 0), 1);
	assert_int_equal(pack_count(pk), 0);
	pack_free(pk);
	ring_free(r);
}

/* A pack that leaves while its start is still running is stopped when
 * the start ends; one that comes back while stopping starts again. */
static void
test_pack_leave_while_starting(void **state)
{
	(void)state;
	struct ring *r = mk_ring(0, 0, 0, false);
	struct pack *pk = mk_pack(0, true);
	for (int j = 0; j < 40; j++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", j);
		add(pk, name, 0, 1, "");
	}
	pack_update(pk, 0, r);
	struct pack_counts c;
	pack_counts(pk, &c);
	assert_true(c.mine > 0);
	size_t mine = c.mine;
	struct pack_hook h[64];
	size_t nh = 0;
	while (nh < 64 && pack_poll_hook(pk, &h[nh]))
		nh++;
	assert_int_equal(nh, mine);
	/* n0 is drained before any start answered. */
	struct ring *r2 = mk_ring(0, 1u, 0, false);
	pack_update(pk, 100, r2);
	struct pack_hook x;
	assert_false(pack_poll_hook(pk, &x)); /* nothing while busy */
	for (size_t i = 0; i < nh; i++)
		pack_hook_done(pk, 200, h[i].id, 0, "");
	assert_int_equal(run_hooks(pk, 300, PACK_STOP, 0, NULL, 0), mine);
	pack_counts(pk, &c);
	assert_int_equal(c.mine, 0);
	pack_free(pk);
	ring_free(r);
	ring_free(r2);
}

/* The primary clears run entries of owners that are down; the count of
 * running packs follows the primary's reports only. */
static void
test_pack_reports(void **state)
{
	(void)state;
	struct ring *r = mk_ring(0, 0, 0, false);
	struct pack *pk[NODES];
	for (int i = 0; i < NODES; i++) {
		pk[i] = mk_pack(i, true);
		add(pk[i], "svc", 0, 1, "");
		pack_update(pk[i], 0, r);
	}
	int a = owner_of(pk[0], "svc");
	int other = (a + 1) % NODES;
	Pack__Run run = PACK__RUN__INIT;
	run.state = PACK__STATE__STATE_RUNNING;
	uint8_t buf[64];
	size_t len = pack__run__pack(&run, buf);
	/* A report from a non-owner does not count as running. */
	pack_report(pk[other], "svc", names[other], buf, len);
	struct pack_counts c;
	pack_counts(pk[other], &c);
	assert_int_equal(c.running, 0);
	pack_report(pk[other], "svc", names[a], buf, len);
	pack_counts(pk[other], &c);
	assert_int_equal(c.running, 1);
	/* a dies: the new primary b sweeps and clears a's entry. */
	struct ring *r2 = mk_ring(1u << a, 0, 0, false);
	pack_update(pk[other], 1000, r2);
	int b = owner_of(pk[other], "svc");
	pack_update(pk[b], 1000, r2);
	struct pack_event ev;
	bool sweep = false;
	while (pack_poll_event(pk[b], &ev))
		sweep |=
		    ev.kind == PACK_EV_SWEEP && strcmp(ev.name, "svc") == 0;
	assert_true(sweep);
	pack_report(pk[b], "svc", names[a], buf, len);
	bool cleared = false;
	while (pack_poll_event(pk[b], &ev))
		cleared |=
		    ev.kind == PACK_EV_UNRUN && strcmp(ev.node, names[a]) == 0;
	assert_true(cleared);
	pack_counts(pk[other], &c);
	assert_int_equal(c.running, 0); /* a's report is not b's */
	/* Garbage reports change nothing. */
	const uint8_t junk[] = {0xff, 0xff};
	pack_report(pk[b], "svc", names[b], junk, sizeof(junk));
	pack_report(pk[b], "nope", names[b], buf, len);
	for (int i = 0; i < NODES; i++)
		pack_free(pk[i]);
	ring_free(r);
	ring_free(r2);
}

/* Packs a killed agent's hook left running: after the restart, those the
 * node does not own are stopped, those it owns are checked (not started
 * twice). */
static void
test_pack_adopt_after_restart(void **state)
{
	(void)state;
	struct ring *r = mk_ring(0, 0, 0, false);
	struct pack *pk = mk_pack(0, true);
	char mine[16] = "", other[16] = "";
	for (int j = 0; j < 40; j++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", j);
		add(pk, name, 0, 1, "");
	}
	pack_update(pk, 0, r);
	for (int j = 0; j < 40; j++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", j);
		struct pack_info in;
		pack_info(pk, name, &in);
		snprintf(in.here ? mine : other, 16, "%s", name);
	}
	pack_free(pk);
	assert_true(mine[0] && other[0]);
	/* The next life: the same packs, two left running. */
	pk = mk_pack(0, true);
	for (int j = 0; j < 40; j++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", j);
		add(pk, name, 0, 1, "");
	}
	assert_int_equal(pack_adopt(pk, 5000, mine), 0);
	assert_int_equal(pack_adopt(pk, 5000, other), 0);
	assert_int_equal(pack_adopt(pk, 5000, "a/b"), MESH_EINVAL);
	pack_update(pk, 5000, r);
	struct pack_hook h;
	int starts_mine = 0, stops_other = 0;
	uint64_t ids[64];
	int k = 0;
	while (pack_poll_hook(pk, &h)) {
		starts_mine += h.action == PACK_START && !strcmp(h.name, mine);
		stops_other += h.action == PACK_STOP && !strcmp(h.name, other);
		ids[k++] = h.id;
	}
	assert_int_equal(starts_mine, 0);
	assert_int_equal(stops_other, 1);
	/* Ours is published as running again. */
	struct pack_event ev;
	bool published = false;
	while (pack_poll_event(pk, &ev))
		published |= ev.kind == PACK_EV_RUN && !strcmp(ev.name, mine) &&
			     ev.state == PACK_RUNNING;
	assert_true(published);
	for (int i = 0; i < k; i++)
		pack_hook_done(pk, 5010, ids[i], 0, "");
	struct pack_info in;
	pack_info(pk, other, &in);
	assert_false(in.here);
	pack_tick(pk, 5010); /* the adopted one of ours is checked now */
	int checks = 0;
	while (pack_poll_hook(pk, &h))
		checks += h.action == PACK_CHECK && !strcmp(h.name, mine);
	assert_int_equal(checks, 1);
	pack_info(pk, mine, &in);
	assert_true(in.here);
	assert_int_equal(in.state, PACK_RUNNING);
	pack_free(pk);
	ring_free(r);
}

/* Many packs added, most removed: every one left is still found by name
 * after the table is sorted and its index rebuilt, and new ones go in. */
static void
test_pack_index_after_removals(void **state)
{
	(void)state;
	struct ring *r = mk_ring(0, 0, 0, false);
	struct pack *pk = mk_pack(0, false);
	char name[32];
	for (int j = 0; j < 3000; j++) {
		snprintf(name, sizeof(name), "job-%d", j);
		add(pk, name, 0, 1, "");
	}
	pack_update(pk, 0, r);
	for (int j = 0; j < 3000; j++)
		if (j % 10 != 0) {
			snprintf(name, sizeof(name), "job-%d", j);
			assert_int_equal(pack_del(pk, name), 0);
		}
	pack_update(pk, 10, r); /* sorts, drops the deleted, reindexes */
	assert_int_equal(pack_count(pk), 300);
	struct pack_info in;
	for (int j = 0; j < 3000; j++) {
		snprintf(name, sizeof(name), "job-%d", j);
		assert_int_equal(pack_info(pk, name, &in),
				 j % 10 == 0 ? 0 : MESH_ENOENT);
	}
	add(pk, "late", 0, 1, "");
	assert_int_equal(pack_info(pk, "late", &in), 0);
	assert_int_equal(pack_info(pk, "job-0", &in), 0);
	pack_free(pk);
	ring_free(r);
}

/* Status and history print these names: one per state, none shared. */
static void
test_pack_state_names(void **state)
{
	(void)state;
	const char *want[] = {"unknown", "placed", "starting",
			      "running", "failed", "stopping"};
	for (int s = PACK_NONE; s <= PACK_STOPPING; s++)
		assert_string_equal(pack_state_name((enum pack_state)s),
				    want[s]);
	assert_string_equal(pack_state_name((enum pack_state)42), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_pack_names_and_specs, setup),
	    cmocka_unit_test(test_pack_state_names),
	    cmocka_unit_test_setup(test_pack_nodes_agree, setup),
	    cmocka_unit_test_setup(test_pack_capacity_and_constraints, setup),
	    cmocka_unit_test_setup(test_pack_failover_runs_hooks, setup),
	    cmocka_unit_test_setup(test_pack_retry_and_check, setup),
	    cmocka_unit_test_setup(test_pack_leave_while_starting, setup),
	    cmocka_unit_test_setup(test_pack_reports, setup),
	    cmocka_unit_test_setup(test_pack_adopt_after_restart, setup),
	    cmocka_unit_test_setup(test_pack_index_after_removals, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
