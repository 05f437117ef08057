/*
 * net.c - UDP and TCP transport for the swim, with sealing.
 *
 * Datagrams go out with uv_udp_try_send() from a buffer inside struct net:
 * no allocation per packet. When the socket would block, a copy is queued
 * with uv_udp_send(). Streams are short-lived: one push-pull exchange per
 * connection, cut after NET_STREAM_TIMEOUT_MS.
 */
#include "net.h"

#include "mesh_err.h"

#include <stdlib.h>
#include <string.h>

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
	bool closing;
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

static void
net__conn_closed(uv_handle_t *h)
{
	struct net_conn *c = h->data;
	free(c->rbuf);
	free(c->first);
	free(c);
}

static void
net__conn_close(struct net_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
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

/* Seals @len bytes and writes them as one frame. */
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
	w->data[0] = (uint8_t)(sealed_len >> 24);
	w->data[1] = (uint8_t)(sealed_len >> 16);
	w->data[2] = (uint8_t)(sealed_len >> 8);
	w->data[3] = (uint8_t)sealed_len;
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

/* ---- streams ------------------------------------------------------------- */

static void
net__conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct net_conn *c = h->data;
	(void)suggested;
	if (c->rcap - c->rlen < 65536) {
		size_t ncap = c->rcap ? c->rcap * 2 : 65536;
		while (ncap - c->rlen < 65536)
			ncap *= 2;
		uint8_t *p = realloc(c->rbuf, ncap);
		if (p == NULL) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->rbuf = p;
		c->rcap = ncap;
	}
	*buf = uv_buf_init((char *)c->rbuf + c->rlen,
			   (unsigned)(c->rcap - c->rlen));
}

/* Handles one complete sealed frame. Returns false to close the stream. */
static bool
net__conn_frame(struct net_conn *c, const uint8_t *frame, size_t len)
{
	struct net *n = c->net;
	uint8_t *plain = malloc(len > SEAL_OVERHEAD ? len : 1);
	if (plain == NULL)
		return false;
	size_t plain_len;
	int rc = net__open(n, frame, len, plain, len, &plain_len);
	if (rc != 0) {
		free(plain);
		return false;
	}
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

static void
net__conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct net_conn *c = stream->data;
	struct net *n = c->net;
	(void)buf;
	if (nread < 0) {
		if (nread != UV_EOF)
			n->c.stream_errors++;
		net__conn_close(c);
		return;
	}
	c->rlen += (size_t)nread;
	n->c.tcp_recv_bytes += (size_t)nread;
	while (!c->closing && c->rlen >= 4) {
		size_t flen = (size_t)c->rbuf[0] << 24 |
			      (size_t)c->rbuf[1] << 16 |
			      (size_t)c->rbuf[2] << 8 | c->rbuf[3];
		if (flen > NET_FRAME_MAX) {
			n->c.drop_oversize++;
			net__conn_close(c);
			return;
		}
		if (c->rlen < 4 + flen)
			return;
		bool keep = net__conn_frame(c, c->rbuf + 4, flen);
		memmove(c->rbuf, c->rbuf + 4 + flen, c->rlen - 4 - flen);
		c->rlen -= 4 + flen;
		if (!keep) {
			/* Nothing more to say: close once writes are out.
			 * uv_close cancels pending writes, so shut down. */
			uv_read_stop(stream);
			net__conn_close(c);
		}
	}
}

static struct net_conn *
net__conn_new(struct net *n)
{
	struct net_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->net = n;
	c->deadline_ms = net_now_ms() + NET_STREAM_TIMEOUT_MS;
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

static void
net__accepted(uv_stream_t *server, int status)
{
	struct net *n = server->data;
	if (status < 0)
		return;
	struct net_conn *c = net__conn_new(n);
	if (c == NULL)
		return;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	if (uv_accept(server, (uv_stream_t *)&c->handle) != 0 ||
	    uv_tcp_getpeername(&c->handle, (struct sockaddr *)&ss, &len) != 0 ||
	    net__from_sockaddr((struct sockaddr *)&ss, &c->peer) != 0 ||
	    uv_read_start((uv_stream_t *)&c->handle, net__conn_alloc,
			  net__conn_read) != 0) {
		net__conn_close(c);
		return;
	}
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
	if ((flags & UV_UDP_PARTIAL) ||
	    (size_t)nread > SWIM_DATAGRAM_MAX + SEAL_OVERHEAD) {
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

static void
net__timer(uv_timer_t *t)
{
	struct net *n = t->data;
	uint64_t now = net_now_ms();
	for (struct net_conn *c = n->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (now >= c->deadline_ms) {
			n->c.stream_errors++;
			net__conn_close(c);
		}
	}
	swim_tick(n->swim, now);
	net_flush(n);
}

void
net_flush(struct net *n)
{
	struct swim_output o;
	while (swim_poll_output(n->swim, &o)) {
		if (o.kind == SWIM_OUT_DATAGRAM)
			net__send_datagram(n, &o);
		else
			net__open_stream(n, &o);
	}
	if (n->after_fn != NULL)
		n->after_fn(n->after_ctx);
	uint64_t now = net_now_ms();
	uint64_t due = swim_next_deadline(n->swim);
	uint64_t delay = due > now ? due - now : 0;
	/* Wake at least once a second to cut stalled streams. */
	if (n->conns != NULL && delay > 1000)
		delay = 1000;
	uv_timer_start(&n->timer, net__timer, delay, 0);
}

int
net_start(struct net *n, uv_loop_t *loop, const struct swim_addr *bind,
	  struct swim *swim, const struct seal_keyring *ring,
	  const struct mesh_env *env, net_after_fn *after, void *ctx)
{
	memset(&n->c, 0, sizeof(n->c));
	n->loop = loop;
	n->swim = swim;
	n->ring = ring;
	n->env = env;
	n->conns = NULL;
	n->after_fn = after;
	n->after_ctx = ctx;
	struct sockaddr_storage ss;
	net__to_sockaddr(bind, &ss);
	uv_udp_init(loop, &n->udp);
	uv_tcp_init(loop, &n->tcp);
	uv_timer_init(loop, &n->timer);
	n->udp.data = n->tcp.data = n->timer.data = n;
	int rc = uv_udp_bind(&n->udp, (struct sockaddr *)&ss, 0);
	const char *what = "udp bind";
	if (rc == 0) {
		what = "tcp bind";
		rc = uv_tcp_bind(&n->tcp, (struct sockaddr *)&ss, 0);
	}
	if (rc == 0) {
		what = "tcp listen";
		rc = uv_listen((uv_stream_t *)&n->tcp, 128, net__accepted);
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
	uv_timer_stop(&n->timer);
	uv_close((uv_handle_t *)&n->timer, NULL);
	uv_close((uv_handle_t *)&n->udp, NULL);
	uv_close((uv_handle_t *)&n->tcp, NULL);
}
