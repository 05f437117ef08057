/*
 * sim_world.h - N membership cores on a virtual network, in virtual time.
 *
 * A world owns N nodes. Node i is named "n<i>" and lives at
 * 198.18.0.0/15 + i, port 7946 (the benchmarking range of DESIGN.md, never
 * a real socket). Every node runs the real struct swim from agent/core with
 * its own allocator (sim_alloc.h), its own log sink and a PRNG seed derived
 * from the world's seed, the node index and how often it was restarted.
 *
 * Time moves only through sim_world_run_until(). Everything that happens
 * is an event in one priority queue (sim_heap.h): datagram deliveries,
 * stream frames and each node's next wakeup (swim_next_deadline()). Events
 * run in (time, scheduling order), so the same seed and the same calls give
 * the same run, event for event; sim_world_trace() hashes all of it.
 *
 * Fault model (all decided with the world's own PRNG, in event order):
 * - Each link has a base one-way latency, fixed per unordered pair, in
 *   [latency_ms, latency_ms + latency_spread_ms]; each datagram adds a
 *   uniform jitter in [0, jitter_ms]. Jitter reorders datagrams.
 * - A datagram is lost with probability `loss` when sent and, if not, is
 *   delivered twice with probability `dup` (independent latencies).
 * - Nodes belong to groups (0 by default); a blocked (from group, to
 *   group) pair drops every datagram at delivery time. Blocking one
 *   direction only gives a one-way partition.
 * - A crashed node's swim is freed: it is not ticked and whatever reaches
 *   it is dropped. A restart is a new swim with a higher incarnation that
 *   joins through seeds, as a restarted meshd does.
 * - A slow node processes late: every delivery to it and each of its ticks
 *   is delayed by slow_factor times a fresh draw of link latency (the
 *   delay of a tick depends only on the deadline, so rescheduling does not
 *   redraw it). Its timers and its view of acks both lag, as for a process
 *   starved of CPU.
 * - Streams (push-pull) are reliable: the first frame arrives after three
 *   one-way latencies (connection set-up, then data), every reply after
 *   one. A stream is refused or reset when either end is down or either
 *   direction between their groups is blocked when a frame arrives.
 *   Sealing is skipped; everything else is the wire encoding.
 *
 * Datagram buffers come from the world's own pool (no heap traffic per
 * message); stream frames, rare and up to megabytes, use malloc.
 * Running out of memory for the event queue is fatal (the program aborts
 * with a message): a simulation that lost an event would be wrong.
 */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include "swim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_NODES 131072 /* addresses in 198.18.0.0/15 */
#define SIM_MAX_GROUPS 8
#define SIM_PORT 7946
#define SIM_NONE UINT32_MAX

struct sim_world;

struct sim_net_params {
	double loss;		    /* per datagram sent */
	double dup;		    /* per datagram not lost */
	uint32_t latency_ms;	    /* smallest base link latency */
	uint32_t latency_spread_ms; /* base latency spread over the links */
	uint32_t jitter_ms;	    /* per datagram, uniform */
	uint32_t slow_factor;	    /* slow node lag in link latencies */
};

/**
 * Called for every membership event a node emits, in order. @subject is
 * the index of the member the event is about (SIM_NONE if not a node).
 */
typedef void sim_member_event_fn(void *ctx, uint32_t node, uint64_t now_ms,
				 const struct swim_event *ev, uint32_t subject);

struct sim_world_opts {
	uint32_t nodes; /* 1..SIM_MAX_NODES */
	uint64_t seed;
	struct sim_net_params net;
	/* Config each node starts from (name, addr, seed and incarnation
	 * are set per node); NULL means swim_config_default(). Copied. */
	const struct swim_config *base;
	enum mesh_log_level log_level; /* MESH_LOG_OFF: silent */
	sim_member_event_fn *event_fn;
	void *event_ctx;
};

/** Traffic a node sent (datagrams before loss; stream frames). */
struct sim_traffic {
	uint64_t dgrams, dgram_bytes;
	uint64_t frames, frame_bytes;
};

struct sim_counters {
	uint64_t delivered;	    /* datagrams handed to a swim */
	uint64_t lost;		    /* datagrams lost when sent */
	uint64_t duplicated;	    /* extra copies scheduled */
	uint64_t dropped_down;	    /* arrived at a crashed node */
	uint64_t dropped_partition; /* arrived over a blocked link */
	uint64_t misaddressed;	    /* sent to an address nobody has */
	uint64_t streams;	    /* streams opened */
	uint64_t frames;	    /* stream frames delivered */
	uint64_t streams_refused;   /* refused or reset */
	uint64_t ticks;
	uint64_t events; /* membership events seen */
};

/**
 * Creates a world of stopped nodes at virtual time 0. *@out is owned by the
 * caller (sim_world_free). Returns 0, MESH_EINVAL or MESH_ENOMEM.
 */
int sim_world_new(const struct sim_world_opts *opts, struct sim_world **out);

/** Frees the world and every node; NULL is fine. */
void sim_world_free(struct sim_world *w);

/**
 * Starts node @i (stopped or crashed) as a fresh swim at @incarnation, at
 * the current time. Returns 0 or swim_new()'s error.
 */
int sim_world_start(struct sim_world *w, uint32_t i, uint64_t incarnation);

/**
 * Makes every running node know every other running node, alive at its
 * incarnation, through swim_add_known(): a converged mesh without gossip.
 * Returns 0 or swim_add_known()'s error.
 */
int sim_world_add_all_known(struct sim_world *w);

/**
 * Node @i joins through the nodes in @seeds (@n of them, in that order).
 * Returns swim_join()'s result, or MESH_ESTATE if @i is not running.
 */
int sim_world_join(struct sim_world *w, uint32_t i, const uint32_t *seeds,
		   size_t n);

/** Crashes node @i: its swim is freed and it stops answering. */
void sim_world_crash(struct sim_world *w, uint32_t i);

/**
 * Restarts crashed node @i with an incarnation above any it had, joining
 * through @seeds. Returns 0 or the error of sim_world_start/join.
 */
int sim_world_restart(struct sim_world *w, uint32_t i, const uint32_t *seeds,
		      size_t n);

/** Puts node @i into group @g (< SIM_MAX_GROUPS). */
void sim_world_set_group(struct sim_world *w, uint32_t i, unsigned g);

/** Blocks (or unblocks) datagrams and streams from group @gf to @gt. */
void sim_world_block(struct sim_world *w, unsigned gf, unsigned gt,
		     bool blocked);

/** Makes node @i slow (or normal again). */
void sim_world_set_slow(struct sim_world *w, uint32_t i, bool slow);

/** Runs every event due up to @t_ms, then sets the time to @t_ms. */
void sim_world_run_until(struct sim_world *w, uint64_t t_ms);

/** Current virtual time. */
uint64_t sim_world_now(const struct sim_world *w);

/** Number of nodes. */
uint32_t sim_world_size(const struct sim_world *w);

/** Node @i's swim, or NULL when it is stopped or crashed. Borrowed. */
struct swim *sim_world_swim(struct sim_world *w, uint32_t i);

/** True when node @i runs. */
bool sim_world_is_up(const struct sim_world *w, uint32_t i);

/** Node @i's name ("n<i>"), valid for the world's life. */
const char *sim_world_name(const struct sim_world *w, uint32_t i);

/** Node index of @name, or SIM_NONE. */
uint32_t sim_world_index(const struct sim_world *w, const char *name);

/** Latest incarnation node @i had (its own view of itself). */
uint64_t sim_world_incarnation(const struct sim_world *w, uint32_t i);

/** What node @i sent so far, in all its lives. */
const struct sim_traffic *sim_world_traffic(const struct sim_world *w,
					    uint32_t i);

/** Bytes node @i's allocator holds now. */
uint64_t sim_world_live_bytes(const struct sim_world *w, uint32_t i);

/** Hash of everything so far: deliveries, drops and membership events. */
uint64_t sim_world_trace(const struct sim_world *w);

/** World-wide counters. */
const struct sim_counters *sim_world_counters(const struct sim_world *w);

/** Largest number of events queued at once. */
size_t sim_world_queue_peak(const struct sim_world *w);

/** Prints "meshsim: fatal: ..." and aborts: a simulator invariant broke. */
void sim_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/**
 * Folds one traced event (virtual time @now, @tag, three values) into the
 * trace hash @h and returns the new hash: the same events in the same order
 * give the same hash, in every scenario.
 */
uint64_t sim_trace_mix(uint64_t h, uint64_t now, uint64_t tag, uint64_t a,
		       uint64_t b, uint64_t c);

#endif
