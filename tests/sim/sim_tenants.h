/*
 * sim_tenants.h - meshsim's `tenants` scenario: the real tenant core
 * (agent/core/tenant.c) on every node, each with its own in-memory store
 * (tests/support/mem_kv.h), tenant frames on a virtual stream network, a
 * client workload of creates, puts, increments and set adds, and crashes,
 * restarts and a partition during the writes. After the heal it lets
 * anti-entropy run until the replicas stop changing, then checks that
 * every tenant's replicas agree and that no acknowledged write is missing.
 *
 * Membership is an oracle, not SWIM: one shared view (a ring over the live
 * nodes) that drops a crashed node detect_ms after the crash, takes a
 * restarted node back rejoin_ms after its restart, and reaches each node
 * with a small random spread. During a partition the minority keeps the
 * view it had (stale) while the majority drops it after detect_ms. This
 * keeps N = 1,000 cheap and makes view changes a controlled input;
 * docs/tenants-sim.md explains the model and the measured results.
 *
 * Deterministic: the same options give the same run, and the result
 * carries a hash of every frame, drop, view change and answer.
 */
#ifndef SIM_TENANTS_H
#define SIM_TENANTS_H

#include "mesh_log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct simt_opts {
	uint32_t nodes;	  /* 2..SIM_MAX_NODES */
	uint32_t tenants; /* 1.. */
	uint64_t seed;
	uint32_t writes;   /* client writes after the creates */
	unsigned replicas; /* RF, 1..RING_REPLICAS_MAX */
	/* Network: per-pair base latency in [latency, latency + spread],
	 * plus jitter per frame; a stream keeps frames in order. */
	uint32_t latency_ms, latency_spread_ms, jitter_ms;
	double loss;	 /* per TCP segment: costs a retransmit, not a frame */
	uint32_t rto_ms; /* first retransmission timeout (doubles) */
	/* Faults during the write phase. */
	uint64_t write_ms;     /* length of the write phase */
	double crash_frac;     /* nodes crashed during the writes */
	double restart_frac;   /* of those, restarted later */
	double partition_frac; /* nodes cut off (the minority), 0: none */
	uint64_t partition_ms; /* ends when the writes end */
	/* Oracle membership. */
	uint64_t detect_ms;	 /* crash or cut -> dropped from the view */
	uint64_t rejoin_ms;	 /* restart or heal -> back in the view */
	uint64_t view_spread_ms; /* a view reaches nodes over this long */
	/* Tenant core overrides; 0 keeps tenant_config_default(). */
	uint32_t anti_entropy_ms, request_timeout_ms;
	uint64_t settle_max_ms; /* after the heal: give up converging */
	uint64_t check_ms;	/* how often convergence is checked */
	enum mesh_log_level log_level;
	bool explain; /* details of every failed check on stderr */
};

/* Writes by ack level: [0] one, [1] quorum. */
struct simt_ack {
	uint64_t submitted, acked, failed, unanswered, refused;
	uint64_t lost;	    /* acked, found on no final replica */
	uint64_t lost_dead; /* of those: every node that acked it is dead */
	uint64_t partial;   /* acked, on some final replicas, not all */
};

struct simt_result {
	uint64_t trace_hash;
	uint32_t crashed, restarted, cut_off;
	uint64_t views; /* views the oracle built */
	uint64_t creates, create_retries;
	struct simt_ack ack[2];
	uint64_t puts, incs, adds; /* submitted */
	uint32_t tenants_converged, tenants_total;
	uint32_t values_differ; /* replicas read different counters or sets */
	uint32_t stray_copies;	/* held by a node that is not a replica */
	uint32_t counter_low;	/* counter below the acked increments */
	uint32_t counter_high;	/* counter above everything submitted */
	uint64_t unreadable;	/* reads that found no tenant or no answer */
	int64_t converge_ms;	/* heal -> every replica equal, -1: never */
	int64_t handoff_ms;	/* heal -> no stray copies either */
	uint64_t heal_at_ms, end_ms;
	/* Network. */
	uint64_t frames, frame_bytes; /* handed out by the cores */
	uint64_t delivered;	      /* fed to tenant_recv */
	uint64_t dropped_broken;      /* on a stream that broke */
	uint64_t refused;	      /* no stream: peer down or cut off */
	uint64_t connects, misaddressed;
	/* Summed core counters, over every life of every node. */
	uint64_t deltas_sent, deltas_applied, ae_pulls_sent, ae_pulls_served;
	uint64_t handoffs_done, timeouts, denied, store_errors, drop_output;
	uint64_t drop_decode, drop_bad_delta;
	uint64_t core_peak_bytes; /* largest peak of one node's core heap */
	uint64_t core_bytes_end;  /* all cores' heap at the end */
	uint64_t kv_bytes_end;	  /* keys + values in all stores */
	size_t queue_peak;
	uint64_t wall_ms, peak_rss_kb;
};

/** Fills @o with the defaults (1,000 nodes, 100 tenants, 20,000 writes). */
void simt_opts_default(struct simt_opts *o);

/**
 * Runs the scenario and fills @r. Returns 0, MESH_EINVAL (bad options),
 * MESH_ENOMEM, MESH_ETIMEDOUT (the tenants could not be created) or the
 * first error of a tenant core or ring that is not part of the test.
 */
int simt_run(const struct simt_opts *o, struct simt_result *r);

/** True when nothing diverged, no acked write is missing (but those
 * whose every acking node died for good) and the counters add up. */
bool simt_result_ok(const struct simt_result *r);

/** Prints @r as one JSON object and a newline. */
void simt_result_json(const struct simt_opts *o, const struct simt_result *r,
		      FILE *f);

/** Prints @r for a person. */
void simt_result_text(const struct simt_opts *o, const struct simt_result *r,
		      FILE *f);

#endif
