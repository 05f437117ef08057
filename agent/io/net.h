/*
 * net.h - the libuv driver of the membership core.
 *
 * One struct net binds UDP and TCP on the same address, seals and opens
 * every datagram and frame with the keyring, feeds what it receives to the
 * swim, sends what the swim hands out, and keeps one timer armed at
 * swim_next_deadline(). Everything the network gets wrong is dropped and
 * counted here (sealing, framing) or in the swim (decoding, protocol).
 *
 * TCP frame: 4-byte big-endian length, then a sealed PushPull.
 */
#ifndef NET_H
#define NET_H

#include "seal.h"
#include "swim.h"

#include <uv.h>

/* Largest sealed frame we read; larger lengths close the stream. */
#define NET_FRAME_MAX ((4u << 20) + SEAL_OVERHEAD)
/* A push-pull stream that takes longer than this is cut. */
#define NET_STREAM_TIMEOUT_MS 10000

struct net_counters {
	uint64_t udp_sent, udp_sent_bytes, udp_recv, udp_recv_bytes;
	uint64_t tcp_frames_sent, tcp_sent_bytes, tcp_frames_recv,
	    tcp_recv_bytes;
	uint64_t drop_truncated;    /* shorter than the sealing overhead */
	uint64_t drop_auth;	    /* no key opens it: wrong key, garbage */
	uint64_t drop_seal_version; /* unknown sealing format */
	uint64_t drop_oversize;	    /* datagram or frame over the limit */
	uint64_t drop_core;	    /* opened but refused by the core */
	uint64_t send_errors;
	uint64_t stream_errors; /* connect/read/write failures, timeouts */
};

struct net_conn;

/** Called after every call into the swim, once its outputs are sent. */
typedef void net_after_fn(void *ctx);

struct net {
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct swim *swim;
	const struct seal_keyring *ring;
	const struct mesh_env *env;
	struct net_counters c;
	struct net_conn *conns;
	net_after_fn *after_fn;
	void *after_ctx;
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
 * Binds UDP and TCP on @bind and starts driving @swim. Everything is
 * borrowed and must outlive the net. Returns 0, MESH_EINVAL or MESH_EIO
 * (bind failed: the log says why).
 */
int net_start(struct net *n, uv_loop_t *loop, const struct swim_addr *bind,
	      struct swim *swim, const struct seal_keyring *ring,
	      const struct mesh_env *env, net_after_fn *after, void *ctx);

/** Sends what the swim has queued and re-arms the timer. */
void net_flush(struct net *n);

/** Closes every handle; the loop must then run to let them finish. */
void net_stop(struct net *n);

#endif
