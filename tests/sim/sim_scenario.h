/*
 * sim_scenario.h - the named scenarios of meshsim and what they measure.
 *
 * Scenarios (docs/simulator.md has the full definitions):
 *   join        seeds n0..n2 start at t = 0, every other node at a random
 *               moment in the join window, all joining through the seeds.
 *   crash1      converged mesh; one random non-seed node crashes at
 *               fault_at.
 *   crash10pct  converged mesh; 10% of the nodes (non-seeds first) crash
 *               at once at fault_at.
 *   partition   converged mesh; nodes split 50/50 at fault_at (both
 *               directions, or one with one_way), healed partition_ms later.
 *   slow1       converged mesh; one random node turns slow at fault_at.
 * "Converged mesh" is built with swim_add_known(): every node knows every
 * other alive, nothing is gossiped, so 10,000 nodes start in seconds.
 */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include "sim_world.h"

#include <stdio.h>

struct sim_opts {
	const char *scenario;
	uint32_t nodes;
	uint64_t seed;
	struct sim_net_params net;
	uint64_t fault_at_ms;	   /* when the fault starts */
	uint64_t duration_ms;	   /* run length after the fault (cap for
				      join and partition heal) */
	uint64_t partition_ms;	   /* partition length before the heal */
	bool one_way;		   /* partition: block only side A -> B */
	uint64_t restart_after_ms; /* crash*: restart victims; 0 = never */
	uint64_t join_window_ms;   /* join: start times spread over this */
	uint64_t check_ms;	   /* how often views are compared */
	enum mesh_log_level log_level;
	struct swim_config base; /* every node's config (defaults) */
};

/** Mean and largest value over the nodes. */
struct sim_spread {
	double mean, max;
};

/** What a run measured; times are ms, -1 when it did not happen. */
struct sim_result {
	uint64_t trace_hash;
	int64_t first_suspect_ms; /* from the fault */
	int64_t first_dead_ms;	  /* first target pair seen dead */
	int64_t dead_50pct_ms, dead_99pct_ms, dead_100pct_ms;
	int64_t converged_ms; /* from join start, heal or restart */
	uint64_t false_suspect, false_dead;
	uint32_t victims;
	uint64_t target_pairs, dead_pairs;
	struct sim_spread msgs, bytes; /* per node per probe period */
	struct sim_spread steady_msgs; /* before the fault */
	struct sim_spread steady_bytes;
	struct sim_spread stream_bytes; /* push-pull frames */
	uint32_t slow_node;
	unsigned slow_max_health;
	uint64_t slow_suspected;  /* suspect events about the slow node */
	uint64_t slow_suspicions; /* probes failed into suspicion by it */
	uint64_t drop_events, drop_outbox_full, refutations;
	double setup_bytes_per_member;
	uint64_t end_ms;
	struct sim_counters counters;
	size_t queue_peak;
	uint64_t setup_wall_ms, wall_ms, peak_rss_kb;
};

/** Fills @o with the defaults (crash1, 100 nodes, seed 1, no loss). */
void sim_opts_default(struct sim_opts *o);

/** True when @name is a known scenario. */
bool sim_scenario_is_known(const char *name);

/**
 * Runs the scenario of @o and fills @r. Returns 0, MESH_EINVAL (unknown
 * scenario or bad numbers) or the first error of the world.
 */
int sim_run(const struct sim_opts *o, struct sim_result *r);

/** Prints @r as one JSON object and a newline. */
void sim_result_json(const struct sim_opts *o, const struct sim_result *r,
		     FILE *f);

/** Prints @r for a person. */
void sim_result_text(const struct sim_opts *o, const struct sim_result *r,
		     FILE *f);

#endif
