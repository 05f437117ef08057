/*
 * net.h - the libuv driver of the membership core and the tenant service.
 *
 * One struct net binds UDP and TCP on the same address, seals and opens
 * every datagram and frame with the keyring, feeds what it receives to the
 * swim (and to the tenant service, when one is set), sends what they hand
 * out, and keeps one timer armed at the earliest of their deadlines.
 * Everything the network gets wrong is dropped and counted here (sealing,
 * framing, queues) or in the cores (decoding, protocol).
 *
 * TCP frame: 4-byte big-endian length word, then sealed bytes. Two kinds
 * share the port:
 *
 *   top bit clear  a sealed PushPull for the swim, on a short-lived stream
 *                  (one exchange, cut after NET_STREAM_TIMEOUT_MS);
 *   top bit set    (NET_TENANT_FLAG) a sealed tenant frame, on a long-lived
 *                  stream: one outgoing connection per peer name, cut after
 *                  NET_TENANT_IDLE_MS without a frame.
 *
 * The kind rides in the length word rather than in a handshake so that one
 * listener serves both, streams need no greeting round trip, and swim
 * frames (at most NET_FRAME_MAX, far below 2^31) are byte for byte what
 * they were before the tenant channel existed. Both kinds are sealed with
 * the same keyring.
 */
#ifndef NET_H
#define NET_H

#include "seal.h"
#include "swim.h"
#include "tenant.h"

#include <stdbool.h>
#include <uv.h>

/* Largest sealed swim frame we read; larger lengths close the stream.
 * The limits on what we read add SEAL_OVERHEAD_MAX, so that what a node
 * sealing with version 1 sends still fits. */
#define NET_FRAME_MAX ((4u << 20) + SEAL_OVERHEAD_MAX)
/* A push-pull stream that takes longer than this is cut. Also bounds a
 * tenant connect and a tenant write that makes no progress. */
#define NET_STREAM_TIMEOUT_MS 10000

/* Length-word bit that marks a tenant frame. */
#define NET_TENANT_FLAG 0x80000000u
/* Largest sealed tenant frame: anti-entropy may move a whole tenant's
 * state (up to 16 MiB) in one frame. */
#define NET_TENANT_FRAME_MAX ((16u << 20) + SEAL_OVERHEAD_MAX)
/* Largest first frame on a connection someone else opened, before any
 * frame on it opened with the cluster key: a stranger without the key
 * makes us buffer at most this much per connection (what a push-pull frame
 * may weigh), not 16 MiB. The tenant core closes a frame once it passes
 * 1 MiB, and its largest message (a pull part: ~1 MiB of fields and at
 * most 20,000 events) keeps any frame well under this, so a first frame
 * that is a pull answer still gets through. */
#define NET_FIRST_FRAME_MAX ((4u << 20) + SEAL_OVERHEAD_MAX)

/*
 * Strangers. An inbound stream belongs to a stranger until a frame on it
 * opens with our key. A frame is sealed whole (one XChaCha20-Poly1305
 * message), and no prefix of an AEAD message can be checked: only a whole
 * frame tells whether its sender holds the key. So what strangers may make
 * us hold is bounded by counts, sizes and time instead (net.c, "strangers"):
 */
/* A stranger's first frame up to this size, length word included, is read
 * into a buffer of its own. Real first frames are small: a joiner's
 * push-pull lists only the joiner (69 bytes with a short name and three
 * short tags, 1,032 with a 64-byte name and every tag full, plus
 * SEAL_OVERHEAD), a digest push-pull and a tenant stream's hello take under
 * 150. 1,000 strangers pin 4 MiB this way. */
#define NET_FIRST_FRAME_SMALL 4096
/* Bytes all strangers together may hold beyond that, for the rare larger
 * first frame: a node that has not joined sends its whole view (1,000
 * members: 41 KiB with short names and tags, 1 MiB with every field full).
 * 16 MiB lets four of the largest (NET_FIRST_FRAME_MAX) arrive at once and
 * keeps what 1,000 hostile streams pin to 16 + 4 MiB of buffers (30-37 MiB
 * of RSS measured with the allocator's slack, docs/hardening-net.md). A
 * stranger whose frame would go over is cut (drop_first_budget); a real
 * sender's join goes on with its next seed or round. */
#define NET_UNAUTH_BUDGET ((size_t)16 << 20)
/* A stranger must deliver a first frame that opens with our key within
 * this long of its accept (silent and trickling streams are cut). Senders
 * write their first frame as soon as they connect, and a push-pull
 * exchange is cut after NET_STREAM_TIMEOUT_MS anyway; 5 s still moves the
 * largest 1,000-member first frame (1 MiB) at 1.7 Mbit/s. */
#define NET_FIRST_FRAME_TIMEOUT_MS 5000
/* On any stream, a frame whose first byte has arrived must be whole within
 * this: the largest tenant frame (16 MiB) at 2.3 Mbit/s. Holds a peer that
 * trickles bytes (or a replayed hello followed by a trickle) to a minute. */
#define NET_FRAME_TIMEOUT_MS 60000
/* Inbound streams at once, strangers' and peers'. A new one over the cap
 * replaces the oldest stranger's, or is refused when all are peers'. 1,024
 * lets every member of a 1,000-node mesh hold a tenant stream to us; at
 * start it is lowered to half the descriptor limit (RLIMIT_NOFILE), which
 * leaves the other half to our own streams, LMDB, the admin socket and
 * hooks, so the flood hits this cap before the descriptor limit. */
#define NET_INBOUND_MAX 1024
/* Strangers' streams at once from one source address (an IPv6 one by its
 * /64, which one host usually holds whole); a new one over it replaces
 * that source's oldest. Peers' streams do not count: a lab runs 64 agents
 * behind 127.0.0.1, NAT puts many behind one address, and they are bounded
 * by NET_INBOUND_MAX. A real sender is a stranger only for the moment
 * until its first frame is read, so 32 covers a burst of joins through one
 * NAT; one attacking address can hold 32 slots, not all of them. */
#define NET_INBOUND_SOURCE_MAX 32
/* A tenant stream that carries no frame for this long is closed; the next
 * frame reconnects. Two minutes keeps streams to the replicas we talk to
 * open across anti-entropy rounds without pinning sockets to peers we no
 * longer talk to. */
#define NET_TENANT_IDLE_MS 120000
/* Bytes queued to one peer (waiting for connect, or written but not yet
 * taken by the kernel) beyond which new frames are dropped: four of the
 * largest frames, so one anti-entropy transfer never starves acks. */
#define NET_TENANT_QUEUE_MAX ((size_t)64 << 20)
/* After a failed tenant stream, frames to that peer are dropped for a
 * backoff that starts here and doubles while failures go on ... */
#define NET_TENANT_BACKOFF_MIN_MS 200
/* ... up to this: a dead peer costs at most one connect per 5 s. The
 * tenant core's timeouts and anti-entropy repair what is dropped. */
#define NET_TENANT_BACKOFF_MAX_MS 5000
/* The timer wakes at least this often while streams are open, to cut
 * stalled and idle ones. */
#define NET_TICK_MAX_MS 1000

struct net_counters {
	uint64_t udp_sent, udp_sent_bytes, udp_recv, udp_recv_bytes;
	/* swim frames; tcp_recv_bytes counts every byte read on any stream */
	uint64_t tcp_frames_sent, tcp_sent_bytes, tcp_frames_recv,
	    tcp_recv_bytes;
	uint64_t drop_truncated;    /* shorter than the sealing overhead */
	uint64_t drop_auth;	    /* no key opens it: wrong key, garbage */
	uint64_t drop_seal_version; /* unknown sealing format */
	uint64_t drop_oversize;	    /* datagram or frame over the limit */
	uint64_t drop_core;	    /* opened but refused by the swim */
	uint64_t drop_partial;	    /* stream ended in the middle of a frame */
	uint64_t drop_first_oversize; /* first frame of a stranger too big */
	/* Streams cut or refused to bound what strangers hold (net.h,
	 * "Strangers"); each is counted once, under its first reason. */
	uint64_t drop_first_budget; /* stranger's first frame over the budget */
	uint64_t drop_deadline;	  /* first frame or a frame not whole in time */
	uint64_t drop_cap_total;  /* over inbound_max */
	uint64_t drop_cap_source; /* over inbound_source_max for its source */
	uint64_t drop_emfile;	  /* out of descriptors at accept */
	uint64_t send_errors;
	uint64_t stream_errors; /* connect/read/write failures, timeouts */
	/* Tenant channel. Bytes are wire bytes (length word + sealed). Sent
	 * counts what the kernel took. */
	uint64_t tenant_frames_sent, tenant_bytes_sent;
	uint64_t tenant_frames_recv, tenant_bytes_recv;
	uint64_t tenant_writes;	  /* uv_write calls: frames / writes = batch */
	uint64_t tenant_connects; /* outgoing connections attempted */
	uint64_t tenant_idle_closes; /* streams closed for idleness */
	uint64_t tenant_drop_queue;  /* over NET_TENANT_QUEUE_MAX for a peer */
	uint64_t tenant_drop_down;   /* peer in backoff, or its stream failed
					with the frame queued or in flight */
	uint64_t tenant_drop_nosvc;  /* tenant frame but no tenant service */
	uint64_t tenant_drop_core;   /* opened but refused by the tenant */
	uint64_t tenant_send_errors; /* output we could not frame: no name,
					too big, no memory */
};

/**
 * How net reaches the tenant service: the functions of tenant.h, behind a
 * table so that net does not link the tenant core (meshd's tenant service
 * passes wrappers that also open its group-commit batch, tenant_svc.c;
 * tests pass a fake). @svc is what net_set_tenant()
 * was given. Same contracts as tenant_recv(), tenant_tick(),
 * tenant_next_deadline() and tenant_poll_output().
 */
struct net_tenant_ops {
	int (*recv)(void *svc, uint64_t now_ms, const uint8_t *data,
		    size_t len);
	void (*tick)(void *svc, uint64_t now_ms);
	uint64_t (*next_deadline)(const void *svc);
	bool (*poll_output)(void *svc, struct tenant_output *out);
	/* Frame @seq for @name was dropped before it reached any socket
	 * (peer down, backing off, queue full); may be NULL. */
	void (*frame_lost)(void *svc, uint64_t now_ms, const char *name,
			   uint64_t seq);
};

/**
 * Timeouts and caps, set to the NET_* defaults by net_start() (inbound_max
 * also by the descriptor limit). Tests shorten them; an embedder may change
 * them between net_start() and the next loop run; nothing else should need
 * to.
 */
struct net_tunables {
	uint32_t stream_timeout_ms;
	uint32_t tenant_idle_ms;
	uint32_t tenant_backoff_min_ms, tenant_backoff_max_ms;
	uint32_t tick_max_ms;
	size_t tenant_queue_max;
	uint32_t first_frame_timeout_ms, frame_timeout_ms;
	size_t inbound_max, inbound_source_max;
	size_t first_frame_small; /* at least 64 */
	size_t unauth_budget;
};

struct net_conn;
struct net_peer;

/* Peers are found by name through this many hash chains. */
#define NET_PEER_BUCKETS 64

/** Called after every call into the cores, once their outputs are sent. */
typedef void net_after_fn(void *ctx);

/** Caller storage; fields are private to net.c but c and tune (tests
 * also read conns, ninbound, nstrangers and unauth_bytes). */
struct net {
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_poll_t listener; /* the TCP listening socket: accepts are ours */
	int listen_fd;
	int spare_fd;	    /* kept open to shed a connection at EMFILE */
	bool accept_paused; /* at EMFILE with no spare: retried by the timer */
	uv_check_t turn;    /* counts loop turns in turns */
	uint64_t turns;
	uv_timer_t timer;
	struct swim *swim;
	struct seal_keyring *ring; /* seals move its nonce state */
	const struct mesh_env *env;
	struct net_counters c;
	struct net_tunables tune;
	struct net_conn *conns;
	/* Strangers' streams, oldest first: the next to go when room is
	 * needed. */
	struct net_conn *strangers, *strangers_tail;
	size_t ninbound, nstrangers;
	size_t unauth_bytes;   /* strangers' buffers charged to the budget */
	uint64_t warned_ms[4]; /* last warning about shedding, per reason */
	net_after_fn *after_fn;
	void *after_ctx;
	const struct net_tenant_ops *tenant_ops;
	void *tenant;
	struct net_peer *peers[NET_PEER_BUCKETS];
	struct net_peer *dirty; /* peers with frames queued since the flush */
	uint8_t rbuf[65536];
	uint8_t plain[65536];
	uint8_t sealed[65536];
};

/** Monotonic milliseconds for the core. */
uint64_t net_now_ms(void);

/**
 * Parses "HOST:PORT" ("1.2.3.4:7946", "[::1]:7946", "localhost:7946") into
 * @out, resolving names synchronously. @default_port is used when no port
 * is given. Returns 0 or MESH_EINVAL.
 */
int net_parse_addr(const char *text, uint16_t default_port,
		   struct swim_addr *out);

/**
 * Binds UDP and TCP on @bind and starts driving @swim, with no tenant
 * service. Everything is borrowed and must outlive the net. Resets the
 * counters and the tunables. Keeps one spare descriptor (/dev/null) to
 * shed connections at the descriptor limit. Returns 0, MESH_EINVAL or
 * MESH_EIO (bind failed: the log says why).
 */
int net_start(struct net *n, uv_loop_t *loop, const struct swim_addr *bind,
	      struct swim *swim, struct seal_keyring *ring,
	      const struct mesh_env *env, net_after_fn *after, void *ctx);

/**
 * Starts (or, with @ops NULL, stops) driving a tenant service after
 * net_start(): tenant frames received go to @ops->recv, its outputs are
 * sent on the tenant streams, its timer is run. @ops and @svc are borrowed
 * and must outlive the net or the next call. Without a service, tenant
 * frames received are counted in tenant_drop_nosvc and their stream is
 * closed; stopping also closes every outgoing tenant stream. Flushes.
 */
void net_set_tenant(struct net *n, const struct net_tenant_ops *ops, void *svc);

/**
 * Sends what the swim and the tenant service have queued (tenant frames to
 * one peer go out in one write), calls the after callback and re-arms the
 * timer.
 */
void net_flush(struct net *n);

/**
 * Closes every handle and stream and frees the tenant peers with their
 * queues (counted as dropped); the loop must then run to let the handles
 * finish, and @n must stay valid until it has.
 */
void net_stop(struct net *n);

#endif
