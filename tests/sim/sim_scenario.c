/*
 * sim_scenario.c - scenario scripts and their measurements.
 *
 * Detection is measured over "target pairs" (observer, subject): for the
 * crash scenarios every live node paired with every crashed node, for the
 * partition every node paired with every node on the other side. dead_X%
 * is the time from the fault until X% of those pairs have seen the
 * SWIM_EV_MEMBER_DEAD event. A suspicion or death of any other live node
 * is false: false_suspect and false_dead count the distinct nodes
 * concerned. Views are compared every check_ms through
 * swim_state_counts() (O(1) per node), so the check stays cheap at
 * 10,000 nodes.
 */
#include "sim_scenario.h"

#include "mesh_err.h"
#include "mesh_hash.h"
#include "mesh_rand.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum sim_mode {
	SIM_MODE_JOIN,
	SIM_MODE_CRASH,
	SIM_MODE_PARTITION,
	SIM_MODE_SLOW,
};

#define SIM_SEEDS 3

struct sim_metrics {
	const struct sim_opts *o;
	struct sim_result *r;
	struct sim_world *w;
	enum sim_mode mode;
	uint32_t n;
	uint64_t fault_at;
	bool fault_started;
	uint8_t *victim;     /* crashed (or slow) node */
	uint64_t *crash_inc; /* incarnation of the crashed life */
	uint8_t *side;	     /* partition side */
	uint8_t *dead_seen;  /* bitmap of target pairs seen dead */
	uint8_t *false_susp; /* per node: suspected while innocent */
	uint8_t *false_dead; /* per node: declared dead while innocent */
};

static const char *const sim__scenarios[] = {
    "join", "crash1", "crash10pct", "partition", "slow1", NULL,
};

bool
sim_scenario_is_known(const char *name)
{
	for (int i = 0; sim__scenarios[i] != NULL; i++)
		if (strcmp(name, sim__scenarios[i]) == 0)
			return true;
	return false;
}

void
sim_opts_default(struct sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->scenario = "crash1";
	o->nodes = 100;
	o->seed = 1;
	/* A regional network: 1..10 ms per link, 0..5 ms jitter. */
	o->net.latency_ms = 1;
	o->net.latency_spread_ms = 9;
	o->net.jitter_ms = 5;
	/* A slow node processes 100 link latencies late: 0.1 .. 1.5 s, so
	 * some of its acks miss even the end of the prober's period. */
	o->net.slow_factor = 100;
	/* Ten probe periods of quiet load before the fault. */
	o->fault_at_ms = 10000;
	o->duration_ms = 30000;
	o->partition_ms = 30000;
	o->join_window_ms = 2000;
	o->check_ms = 100;
	o->log_level = MESH_LOG_OFF;
	swim_config_default(&o->base);
}

static uint64_t
sim__wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- metrics ------------------------------------------------------------ */

static bool
sim__is_target(const struct sim_metrics *m, uint32_t v, uint32_t u,
	       uint64_t inc)
{
	switch (m->mode) {
	case SIM_MODE_CRASH:
		/* About the crashed life of u, seen by a node that never
		 * crashed. */
		return m->victim[u] && !m->victim[v] && inc <= m->crash_inc[u];
	case SIM_MODE_PARTITION:
		return m->fault_started && m->side[u] != m->side[v];
	default:
		return false;
	}
}

static void
sim__on_event(void *ctx, uint32_t v, uint64_t now, const struct swim_event *ev,
	      uint32_t u)
{
	struct sim_metrics *m = ctx;
	struct sim_result *r = m->r;
	if (u == SIM_NONE || u == v)
		return;
	if (ev->kind != SWIM_EV_MEMBER_SUSPECT &&
	    ev->kind != SWIM_EV_MEMBER_DEAD)
		return;
	if (m->mode == SIM_MODE_SLOW && m->victim[u] &&
	    ev->kind == SWIM_EV_MEMBER_SUSPECT)
		r->slow_suspected++;
	if (!sim__is_target(m, v, u, ev->incarnation)) {
		/* A crashed node's old life is not innocent. */
		if (m->victim[u] && m->mode == SIM_MODE_CRASH &&
		    ev->incarnation <= m->crash_inc[u])
			return;
		uint8_t *flags = ev->kind == SWIM_EV_MEMBER_SUSPECT
				     ? m->false_susp
				     : m->false_dead;
		if (!flags[u]) {
			flags[u] = 1;
			if (ev->kind == SWIM_EV_MEMBER_SUSPECT)
				r->false_suspect++;
			else
				r->false_dead++;
		}
		/* With --log, every innocent death is named, with who saw it
		 * and on whose word: where to start reading the log. */
		if (ev->kind == SWIM_EV_MEMBER_DEAD &&
		    m->o->log_level != MESH_LOG_OFF)
			fprintf(stderr,
				"%8.3f sim: false death of n%u (inc=%" PRIu64
				") seen by n%u, declared by %s\n",
				(double)now / 1000.0, u, ev->incarnation, v,
				ev->from[0] ? ev->from : "?");
		return;
	}
	int64_t since = (int64_t)(now - m->fault_at);
	if (ev->kind == SWIM_EV_MEMBER_SUSPECT) {
		if (r->first_suspect_ms < 0)
			r->first_suspect_ms = since;
		return;
	}
	uint64_t bit = (uint64_t)v * m->n + u;
	if (m->dead_seen[bit >> 3] & (1u << (bit & 7)))
		return;
	m->dead_seen[bit >> 3] |= (uint8_t)(1u << (bit & 7));
	r->dead_pairs++;
	if (r->first_dead_ms < 0)
		r->first_dead_ms = since;
	if (r->first_suspect_ms < 0)
		r->first_suspect_ms = since; /* heard of the death first */
	if (r->dead_50pct_ms < 0 && r->dead_pairs * 2 >= r->target_pairs)
		r->dead_50pct_ms = since;
	if (r->dead_99pct_ms < 0 && r->dead_pairs * 100 >= r->target_pairs * 99)
		r->dead_99pct_ms = since;
	if (r->dead_100pct_ms < 0 && r->dead_pairs == r->target_pairs)
		r->dead_100pct_ms = since;
}

/* True when every running node sees exactly @alive members alive and
 * @dead dead, nothing suspect. */
static bool
sim__views_are(struct sim_world *w, size_t alive, size_t dead)
{
	for (uint32_t i = 0; i < sim_world_size(w); i++) {
		struct swim *s = sim_world_swim(w, i);
		if (s == NULL)
			continue;
		size_t c[4];
		swim_state_counts(s, c);
		if (c[SWIM_ALIVE] != alive || c[SWIM_SUSPECT] != 0 ||
		    c[SWIM_DEAD] != dead || c[SWIM_LEFT] != 0)
			return false;
	}
	return true;
}

static void
sim__spread(struct sim_world *w, const uint8_t *skip, const uint64_t *from,
	    const uint64_t *to, double periods, struct sim_spread *out)
{
	double sum = 0, max = 0;
	uint32_t cnt = 0;
	for (uint32_t i = 0; i < sim_world_size(w); i++) {
		if (skip != NULL && skip[i])
			continue;
		double v = (double)(to[i] - (from ? from[i] : 0)) / periods;
		sum += v;
		if (v > max)
			max = v;
		cnt++;
	}
	out->mean = cnt ? sum / cnt : 0;
	out->max = max;
}

/* ---- the run ------------------------------------------------------------ */

struct sim_snap {
	uint64_t *dgrams, *bytes, *frame_bytes;
};

static int
sim__snap_alloc(struct sim_snap *s, uint32_t n)
{
	s->dgrams = calloc(n, sizeof(uint64_t));
	s->bytes = calloc(n, sizeof(uint64_t));
	s->frame_bytes = calloc(n, sizeof(uint64_t));
	return s->dgrams && s->bytes && s->frame_bytes ? 0 : MESH_ENOMEM;
}

static void
sim__snap_take(struct sim_world *w, struct sim_snap *s)
{
	for (uint32_t i = 0; i < sim_world_size(w); i++) {
		const struct sim_traffic *t = sim_world_traffic(w, i);
		s->dgrams[i] = t->dgrams;
		s->bytes[i] = t->dgram_bytes;
		s->frame_bytes[i] = t->frames ? t->frame_bytes : 0;
	}
}

static void
sim__snap_free(struct sim_snap *s)
{
	free(s->dgrams);
	free(s->bytes);
	free(s->frame_bytes);
}

/* Picks @k distinct victims, non-seed nodes first, in a seeded order. */
static void
sim__pick_victims(struct sim_metrics *m, struct mesh_rand *rng, uint32_t k,
		  uint32_t *out)
{
	uint32_t n = m->n;
	uint32_t *idx = malloc((size_t)n * sizeof(*idx));
	if (idx == NULL)
		abort();
	for (uint32_t i = 0; i < n; i++)
		idx[i] = i;
	uint32_t lo = n > k + SIM_SEEDS ? SIM_SEEDS : 0;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t j = lo + i + mesh_rand_below(rng, n - lo - i);
		uint32_t t = idx[lo + i];
		idx[lo + i] = idx[j];
		idx[j] = t;
		out[i] = idx[lo + i];
	}
	free(idx);
}

/* Runs until @until, checking views every check_ms from @ref on; stops
 * early once converged if @stop. */
struct sim_goal {
	uint64_t ref; /* converged_ms counts from here */
	size_t alive, dead;
	bool active;
	bool stop;
};

static void
sim__run_checked(struct sim_metrics *m, uint64_t until, struct sim_goal *g)
{
	struct sim_world *w = m->w;
	while (sim_world_now(w) < until) {
		uint64_t next = sim_world_now(w) + m->o->check_ms;
		next -= next % m->o->check_ms;
		if (next > until)
			next = until;
		sim_world_run_until(w, next);
		if (m->mode == SIM_MODE_SLOW && m->fault_started) {
			for (uint32_t i = 0; i < m->n; i++) {
				struct swim *s = sim_world_swim(w, i);
				if (m->victim[i] && s != NULL &&
				    swim_health(s) > m->r->slow_max_health)
					m->r->slow_max_health = swim_health(s);
			}
		}
		if (g != NULL && g->active && m->r->converged_ms < 0 &&
		    sim_world_now(w) >= g->ref &&
		    sim__views_are(w, g->alive, g->dead)) {
			m->r->converged_ms =
			    (int64_t)(sim_world_now(w) - g->ref);
			if (g->stop)
				return;
		}
	}
}

static int
sim__setup(struct sim_metrics *m, bool converged)
{
	struct sim_world *w = m->w;
	if (!converged)
		return 0;
	for (uint32_t i = 0; i < m->n; i++) {
		int rc = sim_world_start(w, i, 1);
		if (rc != 0)
			return rc;
	}
	return sim_world_add_all_known(w);
}

int
sim_run(const struct sim_opts *o, struct sim_result *r)
{
	uint64_t wall0 = sim__wall_ms();
	memset(r, 0, sizeof(*r));
	r->first_suspect_ms = r->dead_50pct_ms = r->dead_99pct_ms = -1;
	r->first_dead_ms = -1;
	r->dead_100pct_ms = r->converged_ms = -1;
	r->slow_node = SIM_NONE;
	if (!sim_scenario_is_known(o->scenario) || o->check_ms == 0 ||
	    o->nodes < 2)
		return MESH_EINVAL;
	struct sim_metrics m = {.o = o, .r = r, .n = o->nodes};
	if (strcmp(o->scenario, "join") == 0)
		m.mode = SIM_MODE_JOIN;
	else if (strcmp(o->scenario, "partition") == 0)
		m.mode = SIM_MODE_PARTITION;
	else if (strcmp(o->scenario, "slow1") == 0)
		m.mode = SIM_MODE_SLOW;
	else
		m.mode = SIM_MODE_CRASH;
	uint32_t n = o->nodes;
	m.victim = calloc(n, 1);
	m.crash_inc = calloc(n, sizeof(uint64_t));
	m.side = calloc(n, 1);
	m.false_susp = calloc(n, 1);
	m.false_dead = calloc(n, 1);
	bool pairs = m.mode == SIM_MODE_CRASH || m.mode == SIM_MODE_PARTITION;
	m.dead_seen = pairs ? calloc(((uint64_t)n * n + 7) / 8, 1) : NULL;
	struct sim_snap s0 = {0}, s1 = {0}, s2 = {0};
	int rc = MESH_ENOMEM;
	uint32_t *victims = calloc(n, sizeof(uint32_t));
	if (!m.victim || !m.crash_inc || !m.side || !m.false_susp ||
	    !m.false_dead || (pairs && !m.dead_seen) || !victims ||
	    sim__snap_alloc(&s0, n) || sim__snap_alloc(&s1, n) ||
	    sim__snap_alloc(&s2, n))
		goto out;

	struct sim_world_opts wo = {
	    .nodes = n,
	    .seed = o->seed,
	    .net = o->net,
	    .base = &o->base,
	    .log_level = o->log_level,
	    .event_fn = sim__on_event,
	    .event_ctx = &m,
	};
	rc = sim_world_new(&wo, &m.w);
	if (rc != 0)
		goto out;
	struct sim_world *w = m.w;
	struct mesh_rand rng;
	mesh_rand_seed(&rng, mesh_mix64(o->seed ^ 0x7363656e6172696fULL));
	uint32_t seeds[SIM_SEEDS] = {0, 1, 2};
	size_t nseeds = n < SIM_SEEDS ? n : SIM_SEEDS;
	m.fault_at = o->fault_at_ms;
	uint64_t end = o->fault_at_ms + o->duration_ms;
	uint64_t steady_from = o->fault_at_ms / 5;
	struct sim_goal goal = {0};

	rc = sim__setup(&m, m.mode != SIM_MODE_JOIN);
	if (rc != 0)
		goto out;
	r->setup_wall_ms = sim__wall_ms() - wall0;
	{
		uint64_t live = 0;
		for (uint32_t i = 0; i < n; i++)
			live += sim_world_live_bytes(w, i);
		r->setup_bytes_per_member = (double)live / ((double)n * n);
	}

	if (m.mode == SIM_MODE_JOIN) {
		/* Seeds first, then everyone else at a random moment in the
		 * window, in start-time order. */
		uint64_t *at = malloc((size_t)n * sizeof(*at));
		uint32_t *order = malloc((size_t)n * sizeof(*order));
		if (at == NULL || order == NULL) {
			free(at);
			free(order);
			rc = MESH_ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < n; i++) {
			at[i] = i < nseeds || o->join_window_ms == 0
				    ? 0
				    : mesh_rand_below(
					  &rng, (uint32_t)o->join_window_ms);
			order[i] = i;
		}
		/* Counting sort by start time keeps index order on ties. */
		uint64_t win = o->join_window_ms + 1;
		uint32_t *cnt = calloc(win + 1, sizeof(*cnt));
		if (cnt == NULL) {
			free(at);
			free(order);
			rc = MESH_ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < n; i++)
			cnt[at[i] + 1]++;
		for (uint64_t t = 1; t <= win; t++)
			cnt[t] += cnt[t - 1];
		for (uint32_t i = 0; i < n; i++)
			order[cnt[at[i]]++] = i;
		free(cnt);
		m.fault_at = 0;
		goal = (struct sim_goal){
		    .ref = 0, .alive = n, .active = true, .stop = true};
		for (uint32_t k = 0; k < n && rc == 0; k++) {
			uint32_t i = order[k];
			sim__run_checked(&m, at[i], NULL);
			rc = sim_world_start(w, i, 1);
			if (rc == 0)
				rc = sim_world_join(w, i, seeds, nseeds);
		}
		free(at);
		free(order);
		if (rc != 0)
			goto out;
		end = o->join_window_ms + o->duration_ms;
		sim__snap_take(w, &s1);
		sim__run_checked(&m, end, &goal);
	} else {
		sim__run_checked(&m, steady_from, NULL);
		sim__snap_take(w, &s0);
		sim__run_checked(&m, o->fault_at_ms, NULL);
		sim__snap_take(w, &s1);
		m.fault_started = true;
		if (m.mode == SIM_MODE_CRASH) {
			uint32_t k =
			    strcmp(o->scenario, "crash1") == 0 ? 1 : n / 10;
			if (k == 0)
				k = 1;
			sim__pick_victims(&m, &rng, k, victims);
			r->victims = k;
			r->target_pairs = (uint64_t)(n - k) * k;
			for (uint32_t i = 0; i < k; i++) {
				m.victim[victims[i]] = 1;
				m.crash_inc[victims[i]] =
				    sim_world_incarnation(w, victims[i]);
				sim_world_crash(w, victims[i]);
			}
			goal = (struct sim_goal){.ref = o->fault_at_ms,
						 .alive = n - k,
						 .dead = k,
						 .active = true};
			if (o->restart_after_ms > 0) {
				uint64_t t =
				    o->fault_at_ms + o->restart_after_ms;
				sim__run_checked(&m, t, &goal);
				for (uint32_t i = 0; i < k && rc == 0; i++)
					rc = sim_world_restart(w, victims[i],
							       seeds, nseeds);
				if (rc != 0)
					goto out;
				r->converged_ms = -1;
				goal = (struct sim_goal){
				    .ref = t, .alive = n, .active = true};
			}
			sim__run_checked(&m, end, &goal);
		} else if (m.mode == SIM_MODE_PARTITION) {
			uint32_t half = n / 2;
			for (uint32_t i = half; i < n; i++) {
				m.side[i] = 1;
				sim_world_set_group(w, i, 1);
			}
			r->target_pairs = 2 * (uint64_t)half * (n - half);
			sim_world_block(w, 0, 1, true);
			if (!o->one_way)
				sim_world_block(w, 1, 0, true);
			uint64_t heal = o->fault_at_ms + o->partition_ms;
			sim__run_checked(&m, heal, NULL);
			sim_world_block(w, 0, 1, false);
			sim_world_block(w, 1, 0, false);
			goal = (struct sim_goal){.ref = heal,
						 .alive = n,
						 .active = true,
						 .stop = true};
			end = heal + o->duration_ms;
			sim__run_checked(&m, end, &goal);
		} else {
			sim__pick_victims(&m, &rng, 1, victims);
			r->slow_node = victims[0];
			m.victim[victims[0]] = 1;
			sim_world_set_slow(w, victims[0], true);
			sim__run_checked(&m, end, NULL);
			struct swim *s = sim_world_swim(w, victims[0]);
			if (s != NULL)
				r->slow_suspicions = swim_stats(s)->suspicions;
		}
	}
	r->end_ms = sim_world_now(w);

	/* Traffic of the nodes that never crashed. */
	sim__snap_take(w, &s2);
	{
		double per = (double)o->base.probe_interval_ms;
		double whole = (double)r->end_ms / per;
		const uint8_t *skip =
		    m.mode == SIM_MODE_CRASH ? m.victim : NULL;
		sim__spread(w, skip, NULL, s2.dgrams, whole, &r->msgs);
		sim__spread(w, skip, NULL, s2.bytes, whole, &r->bytes);
		sim__spread(w, skip, NULL, s2.frame_bytes, whole,
			    &r->stream_bytes);
		if (m.mode != SIM_MODE_JOIN) {
			double steady =
			    (double)(o->fault_at_ms - steady_from) / per;
			sim__spread(w, skip, s0.dgrams, s1.dgrams, steady,
				    &r->steady_msgs);
			sim__spread(w, skip, s0.bytes, s1.bytes, steady,
				    &r->steady_bytes);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct swim *s = sim_world_swim(w, i);
		if (s == NULL)
			continue;
		const struct swim_stats *st = swim_stats(s);
		r->drop_events += st->drop_events;
		r->drop_outbox_full += st->drop_outbox_full;
		r->refutations += st->refutations;
	}
	r->trace_hash = sim_world_trace(w);
	r->counters = *sim_world_counters(w);
	r->queue_peak = sim_world_queue_peak(w);
	rc = 0;
out:
	sim_world_free(m.w);
	sim__snap_free(&s0);
	sim__snap_free(&s1);
	sim__snap_free(&s2);
	free(victims);
	free(m.victim);
	free(m.crash_inc);
	free(m.side);
	free(m.false_susp);
	free(m.false_dead);
	free(m.dead_seen);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	r->peak_rss_kb = (uint64_t)ru.ru_maxrss;
	r->wall_ms = sim__wall_ms() - wall0;
	return rc;
}

/* ---- output ------------------------------------------------------------- */

static void
sim__json_ms(FILE *f, const char *key, int64_t v)
{
	if (v < 0)
		fprintf(f, "\"%s\":null,", key);
	else
		fprintf(f, "\"%s\":%" PRId64 ",", key, v);
}

static void
sim__json_spread(FILE *f, const char *key, const struct sim_spread *s)
{
	fprintf(f, "\"%s\":{\"mean\":%.3f,\"max\":%.3f},", key, s->mean,
		s->max);
}

void
sim_result_json(const struct sim_opts *o, const struct sim_result *r, FILE *f)
{
	const struct sim_counters *c = &r->counters;
	fprintf(f, "{\"scenario\":\"%s\",\"nodes\":%u,\"seed\":%" PRIu64 ",",
		o->scenario, o->nodes, o->seed);
	fprintf(f,
		"\"loss\":%g,\"dup\":%g,\"latency_ms\":[%u,%u],"
		"\"jitter_ms\":%u,",
		o->net.loss, o->net.dup, o->net.latency_ms,
		o->net.latency_ms + o->net.latency_spread_ms, o->net.jitter_ms);
	fprintf(f,
		"\"probe_interval_ms\":%u,\"fault_at_ms\":%" PRIu64
		",\"end_ms\":%" PRIu64 ",",
		o->base.probe_interval_ms, o->fault_at_ms, r->end_ms);
	fprintf(f, "\"trace_hash\":\"%016" PRIx64 "\",", r->trace_hash);
	sim__json_ms(f, "first_suspect_ms", r->first_suspect_ms);
	sim__json_ms(f, "first_dead_ms", r->first_dead_ms);
	sim__json_ms(f, "dead_50pct_ms", r->dead_50pct_ms);
	sim__json_ms(f, "dead_99pct_ms", r->dead_99pct_ms);
	sim__json_ms(f, "dead_100pct_ms", r->dead_100pct_ms);
	sim__json_ms(f, "converged_ms", r->converged_ms);
	fprintf(f,
		"\"victims\":%u,\"target_pairs\":%" PRIu64
		",\"dead_pairs\":%" PRIu64 ",",
		r->victims, r->target_pairs, r->dead_pairs);
	fprintf(f, "\"false_suspect\":%" PRIu64 ",\"false_dead\":%" PRIu64 ",",
		r->false_suspect, r->false_dead);
	sim__json_spread(f, "msgs_per_node_per_period", &r->msgs);
	sim__json_spread(f, "bytes_per_node_per_period", &r->bytes);
	sim__json_spread(f, "steady_msgs_per_node_per_period", &r->steady_msgs);
	sim__json_spread(f, "steady_bytes_per_node_per_period",
			 &r->steady_bytes);
	sim__json_spread(f, "stream_bytes_per_node_per_period",
			 &r->stream_bytes);
	if (r->slow_node != SIM_NONE)
		fprintf(f,
			"\"slow_node\":%u,\"slow_max_health\":%u,"
			"\"slow_suspected\":%" PRIu64
			",\"slow_suspicions\":%" PRIu64 ",",
			r->slow_node, r->slow_max_health, r->slow_suspected,
			r->slow_suspicions);
	fprintf(f,
		"\"refutations\":%" PRIu64 ",\"drop_events\":%" PRIu64
		",\"drop_outbox_full\":%" PRIu64 ",",
		r->refutations, r->drop_events, r->drop_outbox_full);
	fprintf(f,
		"\"net\":{\"delivered\":%" PRIu64 ",\"lost\":%" PRIu64
		",\"duplicated\":%" PRIu64 ",\"dropped_down\":%" PRIu64
		",\"dropped_partition\":%" PRIu64 ",\"streams\":%" PRIu64
		",\"frames\":%" PRIu64 ",\"streams_refused\":%" PRIu64
		",\"ticks\":%" PRIu64 ",\"events\":%" PRIu64
		",\"queue_peak\":%zu},",
		c->delivered, c->lost, c->duplicated, c->dropped_down,
		c->dropped_partition, c->streams, c->frames, c->streams_refused,
		c->ticks, c->events, r->queue_peak);
	fprintf(f, "\"setup_bytes_per_member\":%.1f,",
		r->setup_bytes_per_member);
	fprintf(f,
		"\"setup_wall_ms\":%" PRIu64 ",\"wall_ms\":%" PRIu64
		",\"peak_rss_kb\":%" PRIu64 "}\n",
		r->setup_wall_ms, r->wall_ms, r->peak_rss_kb);
}

static void
sim__text_ms(FILE *f, const char *what, int64_t v)
{
	if (v < 0)
		fprintf(f, "  %-28s -\n", what);
	else
		fprintf(f, "  %-28s %" PRId64 " ms\n", what, v);
}

void
sim_result_text(const struct sim_opts *o, const struct sim_result *r, FILE *f)
{
	fprintf(f, "meshsim %s: %u nodes, seed %" PRIu64 ", loss %g\n",
		o->scenario, o->nodes, o->seed, o->net.loss);
	fprintf(f, "  %-28s %016" PRIx64 "\n", "trace_hash", r->trace_hash);
	sim__text_ms(f, "first suspicion", r->first_suspect_ms);
	sim__text_ms(f, "first declares dead", r->first_dead_ms);
	sim__text_ms(f, "50% know dead", r->dead_50pct_ms);
	sim__text_ms(f, "99% know dead", r->dead_99pct_ms);
	sim__text_ms(f, "100% know dead", r->dead_100pct_ms);
	sim__text_ms(f, "converged", r->converged_ms);
	fprintf(f, "  %-28s %" PRIu64 " / %" PRIu64 "\n",
		"false suspect / dead", r->false_suspect, r->false_dead);
	fprintf(f, "  %-28s %.2f mean, %.2f max\n", "msgs per node per period",
		r->msgs.mean, r->msgs.max);
	fprintf(f, "  %-28s %.1f mean, %.1f max\n", "bytes per node per period",
		r->bytes.mean, r->bytes.max);
	fprintf(f,
		"  %-28s %" PRIu64 " ms (setup %" PRIu64 " ms), %" PRIu64
		" MiB peak RSS\n",
		"wall", r->wall_ms, r->setup_wall_ms, r->peak_rss_kb / 1024);
}
