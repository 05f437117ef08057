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

/* Largest sealed swim frame we read; larger lengths close the stream. */
#define NET_FRAME_MAX ((4u << 20) + SEAL_OVERHEAD)
/* A push-pull stream that takes longer than this is cut. Also bounds a
 * tenant connect and a tenant write that makes no progress. */
#define NET_STREAM_TIMEOUT_MS 10000

/* Length-word bit that marks a tenant frame. */
#define NET_TENANT_FLAG 0x80000000u
/* Largest sealed tenant frame: anti-entropy may move a whole tenant's
 * state (up to 16 MiB) in one frame. */
#define NET_TENANT_FRAME_MAX ((16u << 20) + SEAL_OVERHEAD)
/* Largest first frame on a connection someone else opened, before any
 * frame on it opened with the cluster key: a stranger without the key
 * makes us buffer at most this much per connection (what a push-pull frame
 * may weigh), not 16 MiB. The tenant core closes a frame once it passes
 * 1 MiB, and its largest message (a pull part: ~1 MiB of fields and at
 * most 20,000 events) keeps any frame well under this, so a first frame
 * that is a pull answer still gets through. */
#define NET_FIRST_FRAME_MAX ((4u << 20) + SEAL_OVERHEAD)
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
 * Timeouts and caps, set to the NET_* defaults by net_start(). Tests
 * shorten them; nothing else should need to.
 */
struct net_tunables {
	uint32_t stream_timeout_ms;
	uint32_t tenant_idle_ms;
	uint32_t tenant_backoff_min_ms, tenant_backoff_max_ms;
	uint32_t tick_max_ms;
	size_t tenant_queue_max;
};

struct net_conn;
struct net_peer;

/* Peers are found by name through this many hash chains. */
#define NET_PEER_BUCKETS 64

/** Called after every call into the cores, once their outputs are sent. */
typedef void net_after_fn(void *ctx);

/** Caller storage; fields are private to net.c but c and tune (tests
 * also read conns to see streams gone). */
struct net {
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct swim *swim;
	const struct seal_keyring *ring;
	const struct mesh_env *env;
	struct net_counters c;
	struct net_tunables tune;
	struct net_conn *conns;
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
 * counters and the tunables. Returns 0, MESH_EINVAL or MESH_EIO (bind
 * failed: the log says why).
 */
int net_start(struct net *n, uv_loop_t *loop, const struct swim_addr *bind,
	      struct swim *swim, const struct seal_keyring *ring,
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
