/*
 * net.c - UDP and TCP transport for the swim and the tenant service, with
 * sealing.
 *
 * Datagrams go out with uv_udp_try_send() from a buffer inside struct net:
 * no allocation per packet. When the socket would block, a copy is queued
 * with uv_udp_send(). Swim streams are short-lived: one push-pull exchange
 * per connection, cut after NET_STREAM_TIMEOUT_MS.
 *
 * Tenant channel. The length word of a frame carries NET_TENANT_FLAG in its
 * top bit, so both kinds share the listener and a swim frame is unchanged
 * on the wire (net.h). Each node keeps one outgoing stream per peer name
 * (struct net_peer) and only writes on it; a peer's frames reach us on the
 * stream it opened. Frames are sealed straight into their own heap buffer
 * (no copy) and queued on the peer; at the end of each net_flush() every
 * peer with frames gets one uv_write() with one buffer per frame, so a
 * burst of writes costs one writev() per peer instead of one per frame.
 * Frames queued while connecting leave in one write on connect. What
 * cannot be sent (peer failing, queue over its cap) is dropped and counted:
 * the tenant core has timeouts and anti-entropy, so a lost frame costs a
 * retry, while waiting on a dead peer would cost memory. A failed stream
 * drops its queue and the peer is left alone for a backoff (200 ms
 * doubling to 5 s); the next frame after it reconnects.
 *
 * A stream that carried a tenant frame is long-lived: it is closed after
 * an idle time without a frame rather than NET_STREAM_TIMEOUT_MS after it
 * opened. Read buffers grow with the frame being read and shrink back once
 * a large frame is consumed, so an idle stream pins no more than 128 KiB.
 *
 * Strangers (net.h). Whole-frame sealing means a stream proves nothing
 * until a whole frame opens, so we bound what unproven streams can hold
 * rather than try to check them early. Options weighed: an authenticated
 * "hello" before every swim stream would let only key holders send big
 * frames, but changes the wire (an older agent would refuse the swim
 * hello) and is replayable anyway (sealed frames carry no freshness); a
 * handshake with a challenge would fix both at a round trip per
 * push-pull. Bounding needs neither, because a real stranger's first
 * frame is small: a join push-pull lists only the joiner, the periodic
 * exchange opens with a digest and sends full views only after that
 * digest opened, and the big answers travel on streams we opened. So:
 *
 * - a stranger's buffer is NET_FIRST_FRAME_SMALL until its length word
 *   announces more; growing past that draws on one budget shared by all
 *   strangers (NET_UNAUTH_BUDGET), and a stranger that would overdraw it
 *   is cut. Memory for strangers is at most inbound_max * small + budget;
 * - strangers are kept in accept order; a new stream over the per-source
 *   or the overall cap, or one that finds no descriptor left, replaces
 *   the oldest stranger (of its source, for the per-source cap). A real
 *   sender's first frame arrives with its connect and is read within a
 *   loop turn, so it is proven long before it becomes the oldest; an
 *   attacker's new streams push out its own old ones. Peers' streams are
 *   never cut for room, and when only they are left a new stream is
 *   refused;
 * - a stranger has NET_FIRST_FRAME_TIMEOUT_MS to prove itself, and any
 *   frame NET_FRAME_TIMEOUT_MS from its first byte to its last;
 * - we accept() ourselves (a uv_poll_t on the listening socket, at most
 *   NET__ACCEPT_BATCH per wake-up) rather than through uv_listen(): at
 *   EMFILE libuv would accept and close every pending connection, a
 *   joiner's included, before telling us. We cut the oldest stranger to
 *   free a descriptor; with none, we close a spare descriptor, accept and
 *   close the connection (its sender hears "no" at once), and reopen the
 *   spare; without a spare we stop accepting until the timer retries.
 */
#include "net.h"

#include "mesh_err.h"
#include "mesh_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Read buffers grow in steps of this and shrink back to twice this. */
#define NET__READ_CHUNK 65536
/* Connections taken per wake-up of the listener: bounded work per
 * callback, and a new stream's first frame is read before many more
 * strangers arrive to push it out. */
#define NET__ACCEPT_BATCH 16
/* Listen backlog, as before. */
#define NET__BACKLOG 128
/* Without a spare descriptor at EMFILE, accepting pauses this long. */
#define NET__ACCEPT_RETRY_MS 100
/* At most one warning about shedding streams per this long. */
#define NET__WARN_EVERY_MS 10000

/* A tenant frame waiting on its peer, or in a write: length word and
 * sealed bytes, ready for the wire. */
struct net_frame {
	struct net_frame *next;
	uint64_t seq; /* the tenant core's frame number, for frame_lost */
	size_t len;
	uint8_t data[];
};

/* One peer we send tenant frames to: its outgoing stream and its queue. */
struct net_peer {
	struct net_peer *next;	     /* hash chain */
	struct net_peer *dirty_next; /* on n->dirty */
	char name[SWIM_NAME_MAX + 1];
	struct swim_addr addr;
	struct net_conn *conn; /* NULL: no stream */
	bool connected;	       /* conn is up (else connecting) */
	bool dirty;
	struct net_frame *head, **tail; /* not yet handed to uv_write */
	size_t nqueued, queued_bytes;
	uint32_t backoff_ms; /* 0: the last stream did not fail */
	uint64_t retry_at;   /* frames before this are dropped */
	uint64_t up_since;   /* when conn connected */
	uint64_t last_used;  /* last frame queued, for reclaiming the peer */
};

/* One uv_write of a batch of tenant frames. */
struct net_twrite {
	uv_write_t req;
	struct net_frame *frames;
	size_t nframes, bytes;
	uv_buf_t bufs[];
};

struct net_conn {
	uv_tcp_t handle;
	uv_connect_t connect_req;
	struct net *net;
	struct net_conn *next, **pprev;
	struct swim_addr peer;
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *first; /* outgoing: the frame to write once connected */
	size_t first_len;
	uint64_t deadline_ms;
	uint64_t born_ms;
	uint64_t frame_ms; /* first byte of the frame being read; 0: none */
	/* A stranger's stream (inbound, not opened) is on n->strangers. */
	struct net_conn *snext, *sprev;
	size_t charged;	  /* of rcap, counted in n->unauth_bytes */
	uint64_t turn;	  /* n->turns when accepted */
	bool inbound;	  /* accepted by us */
	bool over_budget; /* its buffer could not grow: cut on ENOBUFS */
	bool closing;
	bool opened;		/* ours, or a frame on it opened with our key */
	bool tenant;		/* carried a tenant frame: idle rule applies */
	struct net_peer *tpeer; /* outgoing tenant stream of this peer */
	size_t inflight;	/* tenant bytes in writes not yet done */
	uint64_t progress_ms;	/* last write done while inflight > 0 */
};

struct net_write {
	uv_write_t req;
	uint8_t data[];
};

struct net_udp_send {
	uv_udp_send_t req;
	uint8_t data[];
};

uint64_t
net_now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static void
net__to_sockaddr(const struct swim_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->ip, 4);
		sin->sin_port = htons(a->port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->ip, 16);
		sin6->sin6_port = htons(a->port);
	}
}

static int
net__from_sockaddr(const struct sockaddr *sa, struct swim_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		a->family = 4;
		memcpy(a->ip, &sin->sin_addr, 4);
		a->port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		a->family = 6;
		memcpy(a->ip, &sin6->sin6_addr, 16);
		a->port = ntohs(sin6->sin6_port);
		return 0;
	}
	return MESH_EINVAL;
}

int
net_parse_addr(const char *text, uint16_t default_port, struct swim_addr *out)
{
	char host[256];
	const char *port_s = NULL;
	size_t len = strlen(text);
	if (len == 0 || len >= sizeof(host))
		return MESH_EINVAL;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (end == NULL)
			return MESH_EINVAL;
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = 0;
		if (end[1] == ':')
			port_s = end + 2;
		else if (end[1] != 0)
			return MESH_EINVAL;
	} else {
		const char *colon = strrchr(text, ':');
		size_t hl = colon ? (size_t)(colon - text) : len;
		memcpy(host, text, hl);
		host[hl] = 0;
		if (colon != NULL)
			port_s = colon + 1;
	}
	unsigned long port = default_port;
	if (port_s != NULL) {
		char *endp;
		port = strtoul(port_s, &endp, 10);
		if (*port_s == 0 || *endp != 0 || port == 0 || port > 65535)
			return MESH_EINVAL;
	}
	if (host[0] == 0)
		return MESH_EINVAL;
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
		return MESH_EINVAL;
	int rc = net__from_sockaddr(res->ai_addr, out);
	freeaddrinfo(res);
	if (rc == 0)
		out->port = (uint16_t)port;
	return rc;
}

/* ---- sending ------------------------------------------------------------- */

static void
net__put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
net__get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void
net__udp_sent(uv_udp_send_t *req, int status)
{
	struct net_udp_send *s = (struct net_udp_send *)req;
	struct net *n = req->handle->data;
	if (status < 0)
		n->c.send_errors++;
	free(s);
}

static void
net__send_datagram(struct net *n, const struct swim_output *o)
{
	size_t len;
	if (seal_seal(n->ring, o->data, o->len, n->sealed, sizeof(n->sealed),
		      &len) != 0) {
		n->c.send_errors++;
		return;
	}
	struct sockaddr_storage ss;
	net__to_sockaddr(&o->to, &ss);
	uv_buf_t buf = uv_buf_init((char *)n->sealed, (unsigned)len);
	int rc = uv_udp_try_send(&n->udp, &buf, 1, (struct sockaddr *)&ss);
	if (rc == UV_EAGAIN) {
		struct net_udp_send *s = malloc(sizeof(*s) + len);
		if (s == NULL) {
			n->c.send_errors++;
			return;
		}
		memcpy(s->data, n->sealed, len);
		buf = uv_buf_init((char *)s->data, (unsigned)len);
		rc = uv_udp_send(&s->req, &n->udp, &buf, 1,
				 (struct sockaddr *)&ss, net__udp_sent);
		if (rc < 0)
			free(s);
	}
	if (rc < 0) {
		n->c.send_errors++;
		return;
	}
	n->c.udp_sent++;
	n->c.udp_sent_bytes += len;
}

/* ---- strangers ----------------------------------------------------------- */

/*
 * Charges @c's read buffer of @cap bytes to the strangers' budget: a
 * stranger's buffer larger than the small first frame counts whole, any
 * other buffer not at all. Returns false, changing nothing, when that
 * would overdraw the budget.
 */
static bool
net__charge(struct net_conn *c, size_t cap)
{
	struct net *n = c->net;
	size_t charge = !c->opened && cap > n->tune.first_frame_small ? cap : 0;
	size_t others = n->unauth_bytes - c->charged;
	if (charge > c->charged && (others > n->tune.unauth_budget ||
				    charge > n->tune.unauth_budget - others))
		return false;
	n->unauth_bytes = others + charge;
	c->charged = charge;
	return true;
}

static bool
net__is_stranger(const struct net_conn *c)
{
	return c->inbound && !c->opened;
}

static void
net__stranger_add(struct net_conn *c)
{
	struct net *n = c->net;
	c->snext = NULL;
	c->sprev = n->strangers_tail;
	if (n->strangers_tail != NULL)
		n->strangers_tail->snext = c;
	else
		n->strangers = c;
	n->strangers_tail = c;
	n->nstrangers++;
}

static void
net__stranger_remove(struct net_conn *c)
{
	struct net *n = c->net;
	if (c->sprev != NULL)
		c->sprev->snext = c->snext;
	else
		n->strangers = c->snext;
	if (c->snext != NULL)
		c->snext->sprev = c->sprev;
	else
		n->strangers_tail = c->sprev;
	c->snext = c->sprev = NULL;
	n->nstrangers--;
}

/* A frame on @c opened with our key: from now on it is a peer's stream,
 * with no first-frame rules and nothing charged to the budget. */
static void
net__conn_trust(struct net_conn *c)
{
	if (c->opened)
		return;
	if (c->inbound)
		net__stranger_remove(c);
	c->opened = true;
	net__charge(c, c->rcap);
}

/* Whether @a and @b count as one source for the per-source cap: the same
 * IPv4 address, or the same /64 for IPv6; an IPv4-mapped IPv6 address
 * (a dual-stack listener) counts by its IPv4 address. */
static bool
net__same_source(const struct swim_addr *a, const struct swim_addr *b)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
					   0, 0, 0, 0, 0xff, 0xff};
	if (a->family != b->family)
		return false;
	if (a->family == 4)
		return memcmp(a->ip, b->ip, 4) == 0;
	if (memcmp(a->ip, mapped, 12) == 0 || memcmp(b->ip, mapped, 12) == 0)
		return memcmp(a->ip, b->ip, 16) == 0;
	return memcmp(a->ip, b->ip, 8) == 0;
}

/* Why streams are shed, for net__warn_shedding(). */
enum net__shed {
	NET__SHED_BUDGET,
	NET__SHED_SOURCE,
	NET__SHED_TOTAL,
	NET__SHED_FDS,
};

static const char *const net__shed_why[] = {
    [NET__SHED_BUDGET] = "strangers' first frames over the budget",
    [NET__SHED_SOURCE] = "too many unproven streams from one source",
    [NET__SHED_TOTAL] = "inbound streams at their cap",
    [NET__SHED_FDS] = "out of file descriptors (RLIMIT_NOFILE)",
};

/* Warns that streams are being shed, at most once per NET__WARN_EVERY_MS
 * and reason: under attack the counters tell how many, the log only that
 * it began. */
static void
net__warn_shedding(struct net *n, enum net__shed why)
{
	uint64_t now = net_now_ms();
	uint64_t *last = &n->warned_ms[why];
	if (*last != 0 && now - *last < NET__WARN_EVERY_MS)
		return;
	*last = now;
	MESH_LOG(n->env, MESH_LOG_WARN,
		 "net: shedding inbound streams: %s (%zu inbound, %zu of them "
		 "unproven, %zu bytes held for them)",
		 net__shed_why[why], n->ninbound, n->nstrangers,
		 n->unauth_bytes);
}

/* ---- streams: open and close --------------------------------------------- */

static void
net__conn_closed(uv_handle_t *h)
{
	struct net_conn *c = h->data;
	free(c->rbuf);
	free(c->first);
	free(c);
}

/* Closes @c, and with it its descriptor (uv_close() closes a stream's
 * descriptor at once; only the memory waits for the callback); an
 * outgoing tenant stream is detached from its peer, whose queue stays for
 * the next stream. */
static void
net__conn_close(struct net_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (net__is_stranger(c))
		net__stranger_remove(c);
	if (c->inbound)
		c->net->ninbound--;
	c->net->unauth_bytes -= c->charged;
	c->charged = 0;
	if (c->tpeer != NULL) {
		c->tpeer->conn = NULL;
		c->tpeer->connected = false;
		c->tpeer = NULL;
	}
	*c->pprev = c->next;
	if (c->next != NULL)
		c->next->pprev = c->pprev;
	uv_close((uv_handle_t *)&c->handle, net__conn_closed);
}

static void
net__written(uv_write_t *req, int status)
{
	struct net_conn *c = req->handle->data;
	if (status < 0) {
		c->net->c.stream_errors++;
		net__conn_close(c);
	}
	free(req);
}

/* Seals @len bytes and writes them as one swim frame. */
static int
net__write_frame(struct net_conn *c, const uint8_t *data, size_t len)
{
	size_t cap = len + SEAL_OVERHEAD;
	struct net_write *w = malloc(sizeof(*w) + 4 + cap);
	if (w == NULL)
		return MESH_ENOMEM;
	size_t sealed_len;
	int rc =
	    seal_seal(c->net->ring, data, len, w->data + 4, cap, &sealed_len);
	if (rc != 0) {
		free(w);
		return rc;
	}
	net__put_be32(w->data, (uint32_t)sealed_len);
	uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)(4 + sealed_len));
	rc =
	    uv_write(&w->req, (uv_stream_t *)&c->handle, &buf, 1, net__written);
	if (rc < 0) {
		free(w);
		return MESH_EIO;
	}
	c->net->c.tcp_frames_sent++;
	c->net->c.tcp_sent_bytes += 4 + sealed_len;
	return 0;
}

/* Opens a sealed datagram or frame; what fails is counted by reason. */
static int
net__open(struct net *n, const uint8_t *sealed, size_t len, uint8_t *out,
	  size_t cap, size_t *out_len)
{
	int rc = seal_open(n->ring, sealed, len, out, cap, out_len);
	if (rc == MESH_ETRUNC)
		n->c.drop_truncated++;
	else if (rc == MESH_EVERSION)
		n->c.drop_seal_version++;
	else if (rc != 0)
		n->c.drop_auth++;
	if (rc != 0)
		MESH_LOG(n->env, MESH_LOG_DEBUG, "net: dropped %zu bytes: %s",
			 len, mesh_strerror(rc));
	return rc;
}

/* ---- tenant peers -------------------------------------------------------- */

static struct net_conn *net__conn_new(struct net *n);
static void net__conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void net__conn_read(uv_stream_t *stream, ssize_t nread,
			   const uv_buf_t *buf);
static void net__connected(uv_connect_t *req, int status);

/* Frees a list of frames; returns how many there were. */
static size_t
net__frames_free(struct net_frame *f)
{
	/* Counts the core's frames; a stream's hello (seq 0) is net's own. */
	size_t count = 0;
	while (f != NULL) {
		struct net_frame *next = f->next;
		count += f->seq != 0;
		free(f);
		f = next;
	}
	return count;
}

/* Tells the tenant core that frames it made for @name never left: they
 * were not written to any socket, so what they carried was not seen. */
static void
net__frames_lost(struct net *n, const char *name, const struct net_frame *f)
{
	for (; f != NULL; f = f->next)
		if (n->tenant_ops != NULL && n->tenant_ops->frame_lost != NULL)
			n->tenant_ops->frame_lost(n->tenant, net_now_ms(), name,
						  f->seq);
}

static void
net__peer_drop_queue(struct net *n, struct net_peer *p)
{
	net__frames_lost(n, p->name, p->head);
	n->c.tenant_drop_down += net__frames_free(p->head);
	p->head = NULL;
	p->tail = &p->head;
	p->nqueued = 0;
	p->queued_bytes = 0;
}

/*
 * The stream to @p failed: close it, drop what waits for it and leave the
 * peer alone for a while. The backoff doubles while streams keep failing
 * and starts over when the last one had stayed up for longer than the
 * longest backoff, so a peer that accepts and then drops every stream
 * (a wrong key) costs a connect per 5 s, not per frame.
 */
static void
net__peer_fail(struct net *n, struct net_peer *p, uint64_t now, const char *why)
{
	n->c.stream_errors++;
	MESH_LOG(n->env, MESH_LOG_DEBUG, "net: tenant stream to %s: %s",
		 p->name, why);
	bool stayed_up =
	    p->connected && now - p->up_since >= n->tune.tenant_backoff_max_ms;
	if (p->conn != NULL)
		net__conn_close(p->conn);
	net__peer_drop_queue(n, p);
	if (p->backoff_ms == 0 || stayed_up)
		p->backoff_ms = n->tune.tenant_backoff_min_ms;
	else if (p->backoff_ms < n->tune.tenant_backoff_max_ms / 2)
		p->backoff_ms *= 2;
	else
		p->backoff_ms = n->tune.tenant_backoff_max_ms;
	p->retry_at = now + p->backoff_ms;
}

static size_t
net__peer_bucket(const char *name, size_t len)
{
	return (size_t)(mesh_hash_bytes(name, len, 0) % NET_PEER_BUCKETS);
}

static struct net_peer *
net__peer_get(struct net *n, const char *name, size_t len)
{
	size_t b = net__peer_bucket(name, len);
	for (struct net_peer *p = n->peers[b]; p != NULL; p = p->next)
		if (memcmp(p->name, name, len) == 0 && p->name[len] == 0)
			return p;
	struct net_peer *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	memcpy(p->name, name, len);
	p->tail = &p->head;
	p->next = n->peers[b];
	n->peers[b] = p;
	return p;
}

/* Frees every peer; their streams must be closed already or are closed
 * here, their queues count as dropped. */
static void
net__peers_free(struct net *n)
{
	for (size_t b = 0; b < NET_PEER_BUCKETS; b++) {
		while (n->peers[b] != NULL) {
			struct net_peer *p = n->peers[b];
			n->peers[b] = p->next;
			if (p->conn != NULL)
				net__conn_close(p->conn);
			net__peer_drop_queue(n, p);
			free(p);
		}
	}
	n->dirty = NULL;
}

/* Forgets peers we have not sent to for an idle time and have nothing
 * for: the table follows the peers the tenant core talks to. */
static void
net__peers_reclaim(struct net *n, uint64_t now)
{
	for (size_t b = 0; b < NET_PEER_BUCKETS; b++) {
		struct net_peer **pp = &n->peers[b];
		while (*pp != NULL) {
			struct net_peer *p = *pp;
			if (p->conn == NULL && p->head == NULL && !p->dirty &&
			    now >= p->retry_at &&
			    now - p->last_used >= n->tune.tenant_idle_ms) {
				*pp = p->next;
				free(p);
			} else {
				pp = &p->next;
			}
		}
	}
}

static int
net__peer_connect(struct net *n, struct net_peer *p, uint64_t now)
{
	struct net_conn *c = net__conn_new(n);
	if (c == NULL)
		return MESH_ENOMEM;
	c->tpeer = p;
	c->opened = true;
	c->peer = p->addr;
	c->deadline_ms = now + n->tune.stream_timeout_ms;
	p->conn = c;
	p->connected = false;
	n->c.tenant_connects++;
	/* A new stream opens with an empty sealed frame: it proves our key
	 * to the peer, so that the peer lifts its small first-frame limit
	 * (NET_FIRST_FRAME_MAX) before our real frames, however big. */
	struct net_frame *hello = malloc(sizeof(*hello) + 4 + SEAL_OVERHEAD);
	size_t hlen;
	if (hello != NULL &&
	    seal_seal(n->ring, (const uint8_t *)"", 0, hello->data + 4,
		      SEAL_OVERHEAD, &hlen) == 0) {
		net__put_be32(hello->data, (uint32_t)hlen | NET_TENANT_FLAG);
		hello->len = 4 + hlen;
		hello->seq = 0;
		hello->next = p->head;
		if (p->head == NULL)
			p->tail = &hello->next;
		p->head = hello;
		p->nqueued++; /* not in queued_bytes: it is not the core's */
	} else {
		free(hello);
	}
	struct sockaddr_storage ss;
	net__to_sockaddr(&p->addr, &ss);
	c->connect_req.data = c;
	if (uv_tcp_connect(&c->connect_req, &c->handle, (struct sockaddr *)&ss,
			   net__connected) < 0)
		return MESH_EIO;
	return 0;
}

static void
net__twritten(uv_write_t *req, int status)
{
	struct net_twrite *w = (struct net_twrite *)req;
	struct net_conn *c = req->handle->data;
	struct net *n = c->net;
	uint64_t now = net_now_ms();
	c->inflight -= w->bytes;
	c->progress_ms = now;
	if (status == 0) {
		for (const struct net_frame *x = w->frames; x != NULL;
		     x = x->next)
			n->c.tenant_frames_sent += x->seq != 0;
		n->c.tenant_bytes_sent += w->bytes;
	} else {
		n->c.tenant_drop_down += w->nframes;
		/* Cancelled: the stream is being closed already. */
		if (status != UV_ECANCELED && c->tpeer != NULL)
			net__peer_fail(n, c->tpeer, now, uv_strerror(status));
	}
	net__frames_free(w->frames);
	free(w);
}

/* Hands everything queued for @p to one uv_write, if its stream is up. */
static void
net__peer_kick(struct net *n, struct net_peer *p, uint64_t now)
{
	if (!p->connected || p->head == NULL)
		return;
	struct net_conn *c = p->conn;
	struct net_twrite *w =
	    malloc(sizeof(*w) + p->nqueued * sizeof(uv_buf_t));
	if (w == NULL)
		return; /* the frames wait for the next flush */
	size_t i = 0;
	for (struct net_frame *f = p->head; f != NULL; f = f->next)
		w->bufs[i++] = uv_buf_init((char *)f->data, (unsigned)f->len);
	w->frames = p->head;
	w->nframes = p->nqueued;
	w->bytes = p->queued_bytes;
	p->head = NULL;
	p->tail = &p->head;
	p->nqueued = 0;
	p->queued_bytes = 0;
	if (c->inflight == 0)
		c->progress_ms = now;
	c->inflight += w->bytes;
	int rc = uv_write(&w->req, (uv_stream_t *)&c->handle, w->bufs,
			  (unsigned)w->nframes, net__twritten);
	if (rc < 0) {
		c->inflight -= w->bytes;
		net__frames_lost(n, p->name, w->frames);
		n->c.tenant_drop_down += net__frames_free(w->frames);
		free(w);
		net__peer_fail(n, p, now, uv_strerror(rc));
		return;
	}
	n->c.tenant_writes++;
	c->deadline_ms = now + n->tune.tenant_idle_ms;
}

static void
net__peers_kick(struct net *n)
{
	uint64_t now = net_now_ms();
	while (n->dirty != NULL) {
		struct net_peer *p = n->dirty;
		n->dirty = p->dirty_next;
		p->dirty = false;
		p->dirty_next = NULL;
		net__peer_kick(n, p, now);
	}
}

/* Our stream to a peer connected, or did not. */
static void
net__peer_connected(struct net_conn *c, int status)
{
	struct net *n = c->net;
	struct net_peer *p = c->tpeer;
	uint64_t now = net_now_ms();
	if (status < 0) {
		net__peer_fail(n, p, now, uv_strerror(status));
		return;
	}
	/* We only write, but read to see the peer close and to take
	 * tenant frames if it ever answers on this stream. */
	int rc = uv_read_start((uv_stream_t *)&c->handle, net__conn_alloc,
			       net__conn_read);
	if (rc != 0) {
		net__peer_fail(n, p, now, uv_strerror(rc));
		return;
	}
	/* Small frames (acks) must not wait for Nagle; big batches are
	 * written in one go anyway. */
	uv_tcp_nodelay(&c->handle, 1);
	p->connected = true;
	p->up_since = now;
	c->deadline_ms = now + n->tune.tenant_idle_ms;
	net__peer_kick(n, p, now);
}

/* Seals a tenant output into a frame on its peer's queue. */
static void
net__tenant_send(struct net *n, const struct tenant_output *o, uint64_t now)
{
	size_t name_len = o->to != NULL ? strnlen(o->to, SWIM_NAME_MAX + 1) : 0;
	/* The plaintext bound is 16 MiB, what a receiving tenant core takes,
	 * so it subtracts the overhead the limit added (SEAL_OVERHEAD_MAX),
	 * not the smaller one we seal with. */
	if (name_len == 0 || name_len > SWIM_NAME_MAX ||
	    (o->addr.family != 4 && o->addr.family != 6) ||
	    o->len > NET_TENANT_FRAME_MAX - SEAL_OVERHEAD_MAX) {
		n->c.tenant_send_errors++;
		return;
	}
	struct net_peer *p = net__peer_get(n, o->to, name_len);
	if (p == NULL) {
		n->c.tenant_send_errors++;
		return;
	}
	p->last_used = now;
	if (!swim_addr_equal(&p->addr, &o->addr)) {
		/* It moved: what waits goes to the new address, what was
		 * written to the old one is lost; a new address gets a fresh
		 * start. */
		if (p->conn != NULL)
			net__conn_close(p->conn);
		p->addr = o->addr;
		p->backoff_ms = 0;
		p->retry_at = 0;
	}
	struct net_frame lost = {NULL, o->seq, 0};
	if (p->conn == NULL) {
		if (now < p->retry_at) {
			n->c.tenant_drop_down++;
			net__frames_lost(n, p->name, &lost);
			return;
		}
		if (net__peer_connect(n, p, now) != 0) {
			net__peer_fail(n, p, now, "cannot connect");
			n->c.tenant_drop_down++;
			net__frames_lost(n, p->name, &lost);
			return;
		}
	}
	size_t cap = o->len + SEAL_OVERHEAD;
	if (p->queued_bytes + p->conn->inflight + 4 + cap >
	    n->tune.tenant_queue_max) {
		n->c.tenant_drop_queue++;
		net__frames_lost(n, p->name, &lost);
		return;
	}
	struct net_frame *f = malloc(sizeof(*f) + 4 + cap);
	size_t sealed_len;
	if (f == NULL || seal_seal(n->ring, o->data, o->len, f->data + 4, cap,
				   &sealed_len) != 0) {
		free(f);
		n->c.tenant_send_errors++;
		return;
	}
	net__put_be32(f->data, (uint32_t)sealed_len | NET_TENANT_FLAG);
	f->len = 4 + sealed_len;
	f->seq = o->seq;
	f->next = NULL;
	*p->tail = f;
	p->tail = &f->next;
	p->nqueued++;
	p->queued_bytes += f->len;
	if (!p->dirty) {
		p->dirty = true;
		p->dirty_next = n->dirty;
		n->dirty = p;
	}
}

/* ---- streams ------------------------------------------------------------- */

/*
 * The read buffer @c needs before the next read. A peer's grows by
 * doubling, but never past the frame being read plus one chunk: a 16 MiB
 * frame needs 16 MiB, not 32. A stranger's is NET_FIRST_FRAME_SMALL until
 * its length word announces more, then grows the same way up to that frame
 * and not beyond (what follows waits in the kernel until the frame opens).
 * Growth follows the bytes that arrive, never the length a peer announces,
 * so four bytes from a stranger cannot make us allocate 4 MiB.
 */
static size_t
net__conn_want(const struct net_conn *c)
{
	size_t flen = 0;  /* the frame being read, length word included */
	if (c->rlen >= 4) /* the header was checked against the limits */
		flen = 4 + (net__get_be32(c->rbuf) & ~NET_TENANT_FLAG);
	if (!c->opened) {
		size_t small = c->net->tune.first_frame_small;
		if (flen <= small)
			return c->rcap > small ? c->rcap : small;
		/* The small buffer is filled before any growth is charged;
		 * a charged one keeps a chunk of room, as a peer's does. */
		size_t room = c->rcap > small ? NET__READ_CHUNK : 1;
		if (c->rcap >= flen || c->rcap - c->rlen >= room)
			return c->rcap;
		/* By a quarter, not double: the budget is charged by
		 * capacity, so slack here is budget others cannot have. */
		size_t step = c->rlen / 4 > NET__READ_CHUNK ? c->rlen / 4
							    : NET__READ_CHUNK;
		size_t ncap = c->rlen + step;
		return ncap < flen ? ncap : flen;
	}
	if (c->rcap - c->rlen >= NET__READ_CHUNK)
		return c->rcap;
	size_t need = c->rlen + NET__READ_CHUNK;
	size_t ncap = c->rcap ? c->rcap : NET__READ_CHUNK;
	while (ncap < need)
		ncap *= 2;
	size_t fit = flen > need ? flen : need;
	return ncap < fit || flen == 0 ? ncap : fit;
}

/*
 * libuv asks for a buffer. A stranger's buffer that would overdraw the
 * budget is not grown: the empty buffer makes libuv report UV_ENOBUFS, and
 * the read callback cuts the stream.
 */
static void
net__conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct net_conn *c = h->data;
	(void)suggested;
	size_t ncap = net__conn_want(c);
	if (ncap > c->rcap) {
		if (!net__charge(c, ncap)) {
			c->over_budget = true;
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		uint8_t *p = realloc(c->rbuf, ncap);
		if (p == NULL) {
			net__charge(c, c->rcap);
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->rbuf = p;
		c->rcap = ncap;
	}
	*buf = uv_buf_init((char *)c->rbuf + c->rlen,
			   (unsigned)(c->rcap - c->rlen));
}

/* After a large frame: give the memory back, keep a small buffer. */
static void
net__conn_shrink(struct net_conn *c)
{
	if (c->rcap <= 2 * NET__READ_CHUNK || c->rlen > NET__READ_CHUNK)
		return;
	if (c->rlen == 0) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	} else {
		uint8_t *p = realloc(c->rbuf, 2 * NET__READ_CHUNK);
		if (p != NULL) {
			c->rbuf = p;
			c->rcap = 2 * NET__READ_CHUNK;
		}
	}
	net__charge(c, c->rcap); /* smaller: always succeeds */
}

/* Handles one complete sealed swim frame. Returns false to close. */
static bool
net__conn_frame(struct net_conn *c, const uint8_t *frame, size_t len)
{
	struct net *n = c->net;
	/* The plaintext of any seal version is shorter than the frame. */
	size_t cap = len > 0 ? len : 1;
	uint8_t *plain = malloc(cap);
	if (plain == NULL)
		return false;
	size_t plain_len;
	int rc = net__open(n, frame, len, plain, cap, &plain_len);
	if (rc != 0) {
		free(plain);
		return false;
	}
	net__conn_trust(c);
	n->c.tcp_frames_recv++;
	const uint8_t *reply;
	size_t reply_len;
	rc = swim_recv_stream(n->swim, net_now_ms(), &c->peer, plain, plain_len,
			      &reply, &reply_len);
	free(plain);
	if (rc != 0)
		n->c.drop_core++;
	bool keep = rc == 0 && reply != NULL &&
		    net__write_frame(c, reply, reply_len) == 0;
	net_flush(n);
	return keep;
}

/* Sends what the cores have queued; the writes wait for the next kick. */
static void net__drain(struct net *n);

/*
 * Handles one complete sealed tenant frame. Returns false to close. The
 * outputs of the tenant are drained after each frame (its outbox is
 * bounded) but written once the whole read is handled.
 */
static bool
net__conn_tenant_frame(struct net_conn *c, const uint8_t *frame, size_t len)
{
	struct net *n = c->net;
	uint8_t *plain = n->plain;
	size_t cap = sizeof(n->plain);
	if (len > cap) {
		plain = malloc(len);
		cap = len;
		if (plain == NULL) {
			n->c.stream_errors++;
			return false;
		}
	}
	size_t plain_len;
	int rc = net__open(n, frame, len, plain, cap, &plain_len);
	if (rc == 0) {
		uint64_t now = net_now_ms();
		net__conn_trust(c);
		if (plain_len > 0) {
			n->c.tenant_frames_recv++;
			n->c.tenant_bytes_recv += 4 + len;
		}
		/*
		 * An accepted stream waits an eighth longer than the sender's
		 * idle time: the sender sees the silence first and closes, so
		 * a frame it writes is never lost to a close from this side.
		 */
		c->tenant = true;
		c->deadline_ms = now + n->tune.tenant_idle_ms;
		if (c->tpeer == NULL)
			c->deadline_ms += n->tune.tenant_idle_ms / 8;
		/* An empty frame is a new stream's hello: nothing for the
		 * core (net__peer_connect). */
		if (plain_len > 0 &&
		    n->tenant_ops->recv(n->tenant, now, plain, plain_len) != 0)
			n->c.tenant_drop_core++;
	}
	if (plain != n->plain)
		free(plain);
	if (rc != 0)
		return false;
	net__drain(n);
	return true;
}

/* Closes @c after an error; an outgoing tenant stream backs off. */
static void
net__conn_fail(struct net_conn *c, const char *why)
{
	if (c->tpeer != NULL)
		net__peer_fail(c->net, c->tpeer, net_now_ms(), why);
	else
		net__conn_close(c);
}

static void
net__conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct net_conn *c = stream->data;
	struct net *n = c->net;
	(void)buf;
	if (c->closing)
		return;
	if (nread == UV_ENOBUFS && c->over_budget) {
		/* Only a stranger's buffer is refused (net__conn_alloc). */
		n->c.drop_first_budget++;
		net__warn_shedding(n, NET__SHED_BUDGET);
		net__conn_close(c);
		return;
	}
	if (nread < 0) {
		if (c->rlen > 0)
			n->c.drop_partial++;
		if (c->tpeer != NULL) {
			/* Our tenant stream: the peer closing it is a failure
			 * (the idle close is ours to make). */
			net__peer_fail(n, c->tpeer, net_now_ms(),
				       uv_strerror((int)nread));
			return;
		}
		if (nread != UV_EOF)
			n->c.stream_errors++;
		net__conn_close(c);
		return;
	}
	c->rlen += (size_t)nread;
	n->c.tcp_recv_bytes += (size_t)nread;
	size_t off = 0;
	bool tenant = false;
	while (!c->closing && c->rlen - off >= 4) {
		const uint8_t *h = c->rbuf + off;
		uint32_t word = net__get_be32(h);
		bool is_tenant = (word & NET_TENANT_FLAG) != 0;
		size_t flen = word & ~NET_TENANT_FLAG;
		if (is_tenant && n->tenant_ops == NULL) {
			n->c.tenant_drop_nosvc++;
			net__conn_close(c);
			return;
		}
		if (flen > (is_tenant ? NET_TENANT_FRAME_MAX : NET_FRAME_MAX)) {
			n->c.drop_oversize++;
			net__conn_fail(c, "frame over the limit");
			return;
		}
		if (!c->opened && flen > NET_FIRST_FRAME_MAX) {
			n->c.drop_first_oversize++;
			net__conn_fail(c, "first frame over the limit");
			return;
		}
		if (!is_tenant && c->tpeer != NULL) {
			/* Swim frames have no business on a tenant stream
			 * we opened: the peer is confused. */
			net__conn_fail(c, "swim frame on a tenant stream");
			return;
		}
		if (c->rlen - off < 4 + flen)
			break;
		bool keep = is_tenant ? net__conn_tenant_frame(c, h + 4, flen)
				      : net__conn_frame(c, h + 4, flen);
		off += 4 + flen;
		tenant |= is_tenant;
		if (!keep && !c->closing) {
			/* Nothing more to say, or nothing more to hear. */
			uv_read_stop(stream);
			net__conn_fail(c, "frame refused");
		}
	}
	if (!c->closing) {
		/* One move per read, not one per frame: a read of many small
		 * frames must not cost a move of the rest for each. */
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
		/* The frame now being read started with this read, unless it
		 * had started before and none ended here. */
		if (off > 0 || c->frame_ms == 0)
			c->frame_ms = c->rlen > 0 ? net_now_ms() : 0;
		net__conn_shrink(c);
	}
	if (tenant)
		net_flush(n);
}

static struct net_conn *
net__conn_new(struct net *n)
{
	struct net_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->net = n;
	c->born_ms = net_now_ms();
	c->deadline_ms = c->born_ms + n->tune.stream_timeout_ms;
	uv_tcp_init(n->loop, &c->handle);
	c->handle.data = c;
	c->next = n->conns;
	if (n->conns != NULL)
		n->conns->pprev = &c->next;
	c->pprev = &n->conns;
	n->conns = c;
	return c;
}

static void
net__connected(uv_connect_t *req, int status)
{
	struct net_conn *c = req->data;
	if (c->closing)
		return;
	if (c->tpeer != NULL) {
		net__peer_connected(c, status);
		return;
	}
	if (status < 0) {
		c->net->c.stream_errors++;
		MESH_LOG(c->net->env, MESH_LOG_DEBUG, "net: connect: %s",
			 uv_strerror(status));
		swim_stream_failed(c->net->swim, net_now_ms(), &c->peer);
		net__conn_close(c);
		net_flush(c->net);
		return;
	}
	if (net__write_frame(c, c->first, c->first_len) != 0 ||
	    uv_read_start((uv_stream_t *)&c->handle, net__conn_alloc,
			  net__conn_read) != 0) {
		c->net->c.stream_errors++;
		net__conn_close(c);
	}
	free(c->first);
	c->first = NULL;
}

static void
net__open_stream(struct net *n, const struct swim_output *o)
{
	struct net_conn *c = net__conn_new(n);
	if (c == NULL) {
		n->c.stream_errors++;
		return;
	}
	c->peer = o->to;
	c->opened = true; /* we chose the peer */
	c->first = malloc(o->len ? o->len : 1);
	if (c->first == NULL) {
		net__conn_close(c);
		return;
	}
	memcpy(c->first, o->data, o->len);
	c->first_len = o->len;
	struct sockaddr_storage ss;
	net__to_sockaddr(&o->to, &ss);
	c->connect_req.data = c;
	if (uv_tcp_connect(&c->connect_req, &c->handle, (struct sockaddr *)&ss,
			   net__connected) < 0) {
		n->c.stream_errors++;
		net__conn_close(c);
	}
}

/* ---- accepting ----------------------------------------------------------- */

static void
net__turn(uv_check_t *h)
{
	((struct net *)h->data)->turns++;
}

/*
 * Whether stranger @c may be cut to make room. Not before it has had a
 * whole loop turn: a stream accepted in turn t is watched from turn t + 1
 * on, and a real sender's first frame is already waiting then, so it is
 * read (and proven) in turn t + 1 at the latest. Cutting it sooner, for
 * the next stranger in the same accept batch, would let a flood push out
 * every real stream before its first read.
 */
static bool
net__may_cut(const struct net *n, const struct net_conn *c)
{
	return n->turns - c->turn >= 2;
}

/* The oldest stranger that may be cut for room, or NULL. */
static struct net_conn *
net__victim(struct net *n)
{
	struct net_conn *c = n->strangers;
	return c != NULL && net__may_cut(n, c) ? c : NULL;
}

/* At the overall cap with no stranger to cut: the inbound peer stream
 * nearest its idle deadline (the one quiet longest), unless it is in the
 * middle of a frame. Refusing instead let replayed hellos (a sealed frame
 * proves nothing fresh) hold every slot for minutes. */
static struct net_conn *
net__idle_peer(struct net *n)
{
	struct net_conn *best = NULL;
	for (struct net_conn *c = n->conns; c != NULL; c = c->next)
		if (c->inbound && c->opened && !c->closing &&
		    c->frame_ms == 0 &&
		    (best == NULL || c->deadline_ms < best->deadline_ms))
			best = c;
	return best;
}

/* Counts the strangers from @from's source into *@count and returns the
 * oldest of them that may be cut, or NULL. */
static struct net_conn *
net__victim_from(struct net *n, const struct swim_addr *from, size_t *count)
{
	struct net_conn *oldest = NULL;
	*count = 0;
	for (struct net_conn *c = n->strangers; c != NULL; c = c->snext) {
		if (!net__same_source(&c->peer, from))
			continue;
		if (oldest == NULL && net__may_cut(n, c))
			oldest = c;
		++*count;
	}
	return oldest;
}

/* Whether a connection waits in the backlog. At the descriptor limit
 * accept() fails with EMFILE whether one waits or not, so this is asked
 * before cutting anything for it. */
static bool
net__pending(const struct net *n)
{
	struct pollfd p = {.fd = n->listen_fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * Makes room for one more inbound stream from @from, cutting the oldest
 * stranger that must go for it. Returns false when the new stream must be
 * refused instead: no stranger may be cut (all are peers' streams, or
 * strangers too new to cut). Either way one stream is counted.
 */
static bool
net__make_room(struct net *n, const struct swim_addr *from)
{
	size_t same;
	struct net_conn *old = net__victim_from(n, from, &same);
	if (same >= n->tune.inbound_source_max) {
		n->c.drop_cap_source++;
		net__warn_shedding(n, NET__SHED_SOURCE);
		if (old == NULL)
			return false;
		net__conn_close(old);
	}
	if (n->ninbound >= n->tune.inbound_max) {
		n->c.drop_cap_total++;
		net__warn_shedding(n, NET__SHED_TOTAL);
		old = net__victim(n);
		if (old == NULL)
			old = net__idle_peer(n);
		if (old == NULL)
			return false;
		net__conn_close(old);
	}
	return true;
}

/* Takes the accepted descriptor @fd from @ss as a stranger's stream. */
static void
net__take(struct net *n, int fd, const struct sockaddr_storage *ss)
{
	struct swim_addr from;
	if (net__from_sockaddr((const struct sockaddr *)ss, &from) != 0 ||
	    !net__make_room(n, &from)) {
		close(fd);
		return;
	}
	struct net_conn *c = net__conn_new(n);
	if (c == NULL) {
		close(fd);
		return;
	}
	c->inbound = true;
	c->peer = from;
	c->turn = n->turns;
	n->ninbound++;
	net__stranger_add(c);
	if (uv_tcp_open(&c->handle, fd) != 0) {
		close(fd);
		net__conn_close(c);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->handle, net__conn_alloc,
			  net__conn_read) != 0)
		net__conn_close(c);
}

/* accept(), with the new descriptor closed on exec (hooks are spawned
 * from this process); uv_tcp_open() makes it non-blocking. */
static int
net__accept(int listen_fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	int fd = accept(listen_fd, (struct sockaddr *)ss, &len);
	if (fd >= 0)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* Stops accepting until the timer calls net__accept_resume(). */
static void
net__accept_pause(struct net *n)
{
	if (n->accept_paused)
		return;
	uv_poll_stop(&n->listener);
	n->accept_paused = true;
}

/*
 * accept() failed with EMFILE or ENFILE. If a connection waits, frees a
 * descriptor for it by cutting the oldest stranger, or else sheds it
 * through the spare descriptor. Returns true when accept() is worth
 * another try.
 */
static bool
net__out_of_fds(struct net *n)
{
	if (!net__pending(n))
		return false;
	net__warn_shedding(n, NET__SHED_FDS);
	struct net_conn *old = net__victim(n);
	if (old != NULL) {
		n->c.drop_emfile++;
		net__conn_close(old);
		return true;
	}
	if (n->spare_fd < 0) {
		net__accept_pause(n);
		return false;
	}
	close(n->spare_fd);
	struct sockaddr_storage ss;
	int fd = net__accept(n->listen_fd, &ss);
	int err = errno;
	if (fd >= 0) {
		close(fd);
		n->c.drop_emfile++;
	}
	n->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (n->spare_fd < 0 || (fd < 0 && (err == EMFILE || err == ENFILE))) {
		/* Another thread took the descriptor: wait, do not spin. */
		net__accept_pause(n);
		return false;
	}
	return fd >= 0;
}

static void
net__accept_io(uv_poll_t *p, int status, int events)
{
	struct net *n = p->data;
	(void)events;
	if (status < 0) {
		/* libuv stopped the poll; try again after a pause. */
		n->accept_paused = false;
		net__accept_pause(n);
		net_flush(n);
		return;
	}
	for (int i = 0; i < NET__ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		int fd = net__accept(n->listen_fd, &ss);
		if (fd >= 0) {
			net__take(n, fd, &ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE) {
			if (net__out_of_fds(n))
				continue;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			/* ENOBUFS, ENOMEM...: the listener stays readable,
			 * so wait a moment rather than spin on it. */
			MESH_LOG(n->env, MESH_LOG_WARN, "net: accept: %s",
				 strerror(errno));
			net__accept_pause(n);
		}
		break;
	}
	net_flush(n); /* the timer must run while streams are open */
}

/* Called by the timer while accepting is paused: tries for a spare
 * descriptor again and accepts again either way (a descriptor may have
 * been freed; if not, the next EMFILE pauses again). */
static void
net__accept_resume(struct net *n)
{
	if (!n->accept_paused)
		return;
	if (n->spare_fd < 0)
		n->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	n->accept_paused = false;
	uv_poll_start(&n->listener, UV_READABLE, net__accept_io);
}

/* Opens the TCP listening socket on @ss; returns 0 or a negative errno. */
static int
net__listen(struct net *n, const struct sockaddr_storage *ss)
{
	socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6);
	int fd = socket(ss->ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int on = 1, off = 0;
	/* As uv_tcp_bind() does: a restarted agent rebinds at once, and an
	 * IPv6 address also takes IPv4 (dual stack), like the UDP socket. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) !=
		 0) ||
	    bind(fd, (const struct sockaddr *)ss, len) != 0 ||
	    listen(fd, NET__BACKLOG) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	int rc = uv_poll_init_socket(n->loop, &n->listener, fd);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	n->listen_fd = fd; /* net_stop() closes both */
	n->listener.data = n;
	return uv_poll_start(&n->listener, UV_READABLE, net__accept_io);
}

/* ---- datagrams and timer ------------------------------------------------- */

static void
net__udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct net *n = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)n->rbuf, sizeof(n->rbuf));
}

static void
net__udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
	      const struct sockaddr *addr, unsigned flags)
{
	struct net *n = h->data;
	struct swim_addr from;
	if (nread <= 0 || addr == NULL || net__from_sockaddr(addr, &from) != 0)
		return;
	n->c.udp_recv++;
	n->c.udp_recv_bytes += (size_t)nread;
	/* SEAL_OVERHEAD_MAX: a full datagram sealed with version 1 is 12
	 * bytes longer than with version 2, and is still taken. */
	if ((flags & UV_UDP_PARTIAL) ||
	    (size_t)nread > SWIM_DATAGRAM_MAX + SEAL_OVERHEAD_MAX) {
		n->c.drop_oversize++;
		return;
	}
	size_t len;
	if (net__open(n, (const uint8_t *)buf->base, (size_t)nread, n->plain,
		      sizeof(n->plain), &len) != 0)
		return;
	if (swim_recv_datagram(n->swim, net_now_ms(), &from, n->plain, len) !=
	    0)
		n->c.drop_core++;
	net_flush(n);
}

/* Cuts streams past their deadline: a stranger's without a first frame
 * that opened in time, any stream with a frame not whole in time, swim
 * streams after the stream timeout, tenant streams when idle, our tenant
 * streams also when a connect or a write makes no progress. */
static void
net__conns_expire(struct net *n, uint64_t now)
{
	for (struct net_conn *c = n->conns, *next; c != NULL; c = next) {
		next = c->next;
		struct net_peer *p = c->tpeer;
		if ((net__is_stranger(c) &&
		     now - c->born_ms >= n->tune.first_frame_timeout_ms) ||
		    (c->frame_ms != 0 &&
		     now - c->frame_ms >= n->tune.frame_timeout_ms)) {
			n->c.drop_deadline++;
			net__conn_fail(c, "frame not whole in time");
			continue;
		}
		if (p != NULL && c->inflight > 0 &&
		    now - c->progress_ms >= n->tune.stream_timeout_ms) {
			net__peer_fail(n, p, now, "write stalled");
			continue;
		}
		if (now < c->deadline_ms)
			continue;
		if (p != NULL && !p->connected) {
			net__peer_fail(n, p, now, "connect timed out");
		} else if (p != NULL || c->tenant) {
			n->c.tenant_idle_closes++;
			if (p != NULL)
				p->backoff_ms = 0;
			net__conn_close(c);
		} else {
			n->c.stream_errors++;
			net__conn_close(c);
		}
	}
}

static void
net__timer(uv_timer_t *t)
{
	struct net *n = t->data;
	uint64_t now = net_now_ms();
	net__accept_resume(n);
	net__conns_expire(n, now);
	net__peers_reclaim(n, now);
	swim_tick(n->swim, now);
	if (n->tenant_ops != NULL)
		n->tenant_ops->tick(n->tenant, now);
	net_flush(n);
}

static void
net__drain(struct net *n)
{
	struct swim_output o;
	while (swim_poll_output(n->swim, &o)) {
		if (o.kind == SWIM_OUT_DATAGRAM)
			net__send_datagram(n, &o);
		else
			net__open_stream(n, &o);
	}
	if (n->tenant_ops != NULL) {
		uint64_t now = net_now_ms();
		struct tenant_output to;
		while (n->tenant_ops->poll_output(n->tenant, &to))
			net__tenant_send(n, &to, now);
	}
	if (n->after_fn != NULL)
		n->after_fn(n->after_ctx);
}

void
net_flush(struct net *n)
{
	net__drain(n);
	net__peers_kick(n);
	uint64_t now = net_now_ms();
	uint64_t due = swim_next_deadline(n->swim);
	if (n->tenant_ops != NULL) {
		uint64_t td = n->tenant_ops->next_deadline(n->tenant);
		if (td < due)
			due = td;
	}
	uint64_t delay = due > now ? due - now : 0;
	/* Wake now and then to cut stalled and idle streams. */
	if (n->conns != NULL && delay > n->tune.tick_max_ms)
		delay = n->tune.tick_max_ms;
	if (n->accept_paused && delay > NET__ACCEPT_RETRY_MS)
		delay = NET__ACCEPT_RETRY_MS;
	uv_timer_start(&n->timer, net__timer, delay, 0);
}

void
net_set_tenant(struct net *n, const struct net_tenant_ops *ops, void *svc)
{
	if (ops == NULL)
		net__peers_free(n);
	n->tenant_ops = ops;
	n->tenant = ops != NULL ? svc : NULL;
	net_flush(n);
}

int
net_start(struct net *n, uv_loop_t *loop, const struct swim_addr *bind,
	  struct swim *swim, struct seal_keyring *ring,
	  const struct mesh_env *env, net_after_fn *after, void *ctx)
{
	memset(&n->c, 0, sizeof(n->c));
	n->tune = (struct net_tunables){
	    .stream_timeout_ms = NET_STREAM_TIMEOUT_MS,
	    .tenant_idle_ms = NET_TENANT_IDLE_MS,
	    .tenant_backoff_min_ms = NET_TENANT_BACKOFF_MIN_MS,
	    .tenant_backoff_max_ms = NET_TENANT_BACKOFF_MAX_MS,
	    .tick_max_ms = NET_TICK_MAX_MS,
	    .tenant_queue_max = NET_TENANT_QUEUE_MAX,
	    .first_frame_timeout_ms = NET_FIRST_FRAME_TIMEOUT_MS,
	    .frame_timeout_ms = NET_FRAME_TIMEOUT_MS,
	    .inbound_max = NET_INBOUND_MAX,
	    .inbound_source_max = NET_INBOUND_SOURCE_MAX,
	    .first_frame_small = NET_FIRST_FRAME_SMALL,
	    .unauth_budget = NET_UNAUTH_BUDGET,
	};
	/* Inbound streams get at most half the descriptors (net.h). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 2 < n->tune.inbound_max)
		n->tune.inbound_max =
		    rl.rlim_cur / 2 > 16 ? rl.rlim_cur / 2 : 16;
	n->loop = loop;
	n->swim = swim;
	n->ring = ring;
	n->env = env;
	n->conns = NULL;
	n->strangers = n->strangers_tail = NULL;
	n->ninbound = n->nstrangers = 0;
	n->unauth_bytes = 0;
	memset(n->warned_ms, 0, sizeof(n->warned_ms));
	n->accept_paused = false;
	n->listen_fd = -1;
	/* Taken now, while descriptors are plenty (net__out_of_fds). */
	n->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	n->after_fn = after;
	n->after_ctx = ctx;
	n->tenant_ops = NULL;
	n->tenant = NULL;
	memset(n->peers, 0, sizeof(n->peers));
	n->dirty = NULL;
	struct sockaddr_storage ss;
	net__to_sockaddr(bind, &ss);
	uv_udp_init(loop, &n->udp);
	uv_timer_init(loop, &n->timer);
	uv_check_init(loop, &n->turn);
	n->udp.data = n->listener.data = n->timer.data = n->turn.data = n;
	n->turns = 0;
	uv_check_start(&n->turn, net__turn);
	uv_unref((uv_handle_t *)&n->turn); /* keeps no loop alive */
	int rc = uv_udp_bind(&n->udp, (struct sockaddr *)&ss, 0);
	const char *what = "udp bind";
	if (rc == 0) {
		what = "tcp listen";
		rc = net__listen(n, &ss);
	}
	if (rc == 0) {
		what = "udp recv";
		rc = uv_udp_recv_start(&n->udp, net__udp_alloc, net__udp_recv);
	}
	if (rc != 0) {
		char a[64];
		MESH_LOG(env, MESH_LOG_ERROR, "net: %s %s: %s", what,
			 swim_addr_format(bind, a, sizeof(a)), uv_strerror(rc));
		return MESH_EIO;
	}
	net_flush(n);
	return 0;
}

void
net_stop(struct net *n)
{
	while (n->conns != NULL)
		net__conn_close(n->conns);
	net__peers_free(n);
	n->tenant_ops = NULL;
	n->tenant = NULL;
	uv_timer_stop(&n->timer);
	uv_close((uv_handle_t *)&n->timer, NULL);
	uv_close((uv_handle_t *)&n->udp, NULL);
	uv_close((uv_handle_t *)&n->turn, NULL);
	if (n->listen_fd >= 0) {
		/* Closing a poll handle stops it at once: the descriptor
		 * may go now. */
		uv_close((uv_handle_t *)&n->listener, NULL);
		close(n->listen_fd);
		n->listen_fd = -1;
	}
	if (n->spare_fd >= 0)
		close(n->spare_fd);
	n->spare_fd = -1;
	n->accept_paused = false;
}
