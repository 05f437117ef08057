/*
 * fake_net.h - an in-memory network and a manual virtual clock driving N
 * struct swim instances, for unit tests. No sockets, no sleeps, no wall
 * clock: time moves only when the test steps the net, always to the next
 * moment something is due (a swim deadline or a packet arrival).
 *
 * The net owns its nodes. Node i is named "n<i>", listens on
 * 127.0.0.1:(FAKE_NET_PORT_BASE + i), has its own counting allocator and log
 * sink (struct test_env) and a PRNG seed derived from the net's seed, the
 * node index and how often the node was restarted. The same seed and the
 * same calls give the same run, event for event.
 *
 * Delivery model:
 * - A SWIM_OUT_DATAGRAM arrives after the fixed latency unless the sender or
 *   the receiver is down at arrival, a blocked link or the drop hook refuses
 *   it, or nobody has the address.
 * - A SWIM_OUT_STREAM is a TCP connection: it opens only when both nodes are
 *   up and neither direction of the link is blocked, then the frames go back
 *   and forth through swim_recv_stream() until one side has no reply. It
 *   runs at the moment it was sent (no latency).
 * - Ties are broken by order of sending, then by node index.
 *
 * Errors inside the harness (a node that keeps asking for work at the same
 * instant, out of memory) fail the running cmocka test.
 */
#ifndef FAKE_NET_H
#define FAKE_NET_H

#include "swim.h"
#include "test_env.h"
#include "test_ident.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_NET_PORT_BASE 7000
#define FAKE_NET_MAX_NODES 64

struct fake_net;

/** One message on its way, as shown to the drop hook. */
struct fake_net_msg {
	enum swim_out_kind kind;
	size_t from, to;     /* node indices */
	uint64_t at_ms;	     /* delivery time */
	const uint8_t *data; /* borrowed for the hook call */
	size_t len;
	bool stream_reply; /* a stream frame answering the previous one */
};

/**
 * Per-link rule: return true to drop @msg. Called for every datagram before
 * delivery and for every stream frame (a dropped frame resets the stream).
 * Also a convenient tap: return false to only observe.
 */
typedef bool fake_net_drop_fn(void *ctx, const struct fake_net_msg *msg);

/** Called for every event a node emits, in order, at virtual time @now_ms. */
typedef void fake_net_event_fn(void *ctx, size_t node, uint64_t now_ms,
			       const struct swim_event *ev);

struct fake_net_opts {
	size_t nodes;	     /* 1..FAKE_NET_MAX_NODES */
	uint64_t seed;	     /* master seed */
	uint32_t latency_ms; /* one-way datagram latency */
	/* Config every node starts from (name, addr, seed are overwritten);
	 * NULL means swim_config_default(). Copied. */
	const struct swim_config *base;
	uint64_t start_ms; /* virtual time at creation */
};

/**
 * Creates a net and its nodes, not yet joined to one another. *@out is owned
 * by the caller (fake_net_free). Returns 0, MESH_EINVAL or MESH_ENOMEM, or the
 * error of swim_new().
 */
int fake_net_new(const struct fake_net_opts *opts, struct fake_net **out);

/** Frees the net and every node; NULL is fine. */
void fake_net_free(struct fake_net *net);

/** Number of nodes. */
size_t fake_net_size(const struct fake_net *net);

/** Current virtual time. */
uint64_t fake_net_now(const struct fake_net *net);

/** Node @i's swim, borrowed until it is restarted or the net is freed. */
struct swim *fake_net_node(struct fake_net *net, size_t i);

/** Node @i's environment (allocator counters, last log line). */
struct test_env *fake_net_env(struct fake_net *net, size_t i);

/** Node @i's name ("n<i>"), static for the net's life. */
const char *fake_net_name(const struct fake_net *net, size_t i);

/** Node @i's address. */
const struct swim_addr *fake_net_addr(const struct fake_net *net, size_t i);

/** Node index owning @addr, or -1. */
int fake_net_find(const struct fake_net *net, const struct swim_addr *addr);

/**
 * Makes node @i join through the nodes listed in @seeds (@n of them, tried
 * in that order). Returns swim_join()'s result.
 */
int fake_net_join(struct fake_net *net, size_t i, const size_t *seeds,
		  size_t n);

/** Every node but @seed joins through @seed. */
void fake_net_join_all(struct fake_net *net, size_t seed);

/**
 * Crashes (@down true) or revives node @i. A down node is not ticked and
 * everything to or from it is lost. Reviving keeps its old state: use
 * fake_net_restart() for a fresh process.
 */
void fake_net_set_down(struct fake_net *net, size_t i, bool down);

/** True when node @i is down. */
bool fake_net_is_down(const struct fake_net *net, size_t i);

/** Node @i's identity: tests sign records as that node with it. */
const struct test_ident *fake_net_ident(const struct fake_net *net, size_t i);

/**
 * Replaces node @i by a fresh swim with the same name, address and
 * identity, the given incarnation and a new PRNG seed, and brings it up
 * (not joined). Returns 0 or swim_new()'s error.
 */
int fake_net_restart(struct fake_net *net, size_t i, uint64_t incarnation);

/** Blocks (or unblocks) the one-way link @from -> @to. */
void fake_net_block(struct fake_net *net, size_t from, size_t to, bool blocked);

/** Blocks (or unblocks) both directions between @a and @b. */
void fake_net_block_pair(struct fake_net *net, size_t a, size_t b,
			 bool blocked);

/** Installs the drop hook (NULL removes it). */
void fake_net_set_drop_fn(struct fake_net *net, fake_net_drop_fn *fn,
			  void *ctx);

/** Installs the event observer (NULL removes it). */
void fake_net_set_event_fn(struct fake_net *net, fake_net_event_fn *fn,
			   void *ctx);

/**
 * Moves time to the next moment anything is due and handles everything due
 * then: arrivals first, then ticks in node order, until nothing is left at
 * that instant. Returns the new time.
 */
uint64_t fake_net_step(struct fake_net *net);

/** Steps until the virtual time reaches @t_ms (and handles what is due). */
void fake_net_run_until(struct fake_net *net, uint64_t t_ms);

/** Steps for @ms of virtual time. */
void fake_net_run_for(struct fake_net *net, uint64_t ms);

/**
 * Steps until @pred returns true (checked before and after each step) or
 * @max_ms of virtual time pass. Returns whether @pred held.
 */
bool fake_net_run_while_not(struct fake_net *net,
			    bool (*pred)(struct fake_net *net, void *ctx),
			    void *ctx, uint64_t max_ms);

/**
 * Delivers @len bytes to node @to as a datagram from @from right now, as if
 * it came off the wire, then collects what the node sends and emits.
 * Returns swim_recv_datagram()'s result.
 */
int fake_net_inject(struct fake_net *net, size_t to,
		    const struct swim_addr *from, const uint8_t *buf,
		    size_t len);

/** Collects node @i's outputs and events after a direct call into it. */
void fake_net_flush(struct fake_net *net, size_t i);

/** State in which node @viewer sees node @subject; -1 when unknown. */
int fake_net_state(struct fake_net *net, size_t viewer, size_t subject);

/** Incarnation node @viewer knows for @subject; 0 when unknown. */
uint64_t fake_net_incarnation(struct fake_net *net, size_t viewer,
			      size_t subject);

/**
 * True when every up node but @subject sees @subject in @state (and, if
 * @incarnation is not 0, at that incarnation).
 */
bool fake_net_all_see(struct fake_net *net, size_t subject,
		      enum swim_state state, uint64_t incarnation);

/** True when every up node sees every up node alive. */
bool fake_net_converged(struct fake_net *net);

/** Events of @kind emitted by all nodes so far. */
uint64_t fake_net_event_count(const struct fake_net *net,
			      enum swim_event_kind kind);

/**
 * A hash of everything observable so far: every event with its time and
 * node, and the delivery of every message. Equal runs give equal hashes.
 */
uint64_t fake_net_trace_hash(const struct fake_net *net);

/** Datagrams delivered and dropped, stream frames exchanged. */
struct fake_net_counters {
	uint64_t delivered, dropped, stream_frames, streams_refused;
};

const struct fake_net_counters *fake_net_counters(const struct fake_net *net);

#endif
