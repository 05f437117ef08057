/*
 * test_net.c - the tenant channel of agent/io/net over real loopback
 * sockets.
 *
 * Two or three nets share one uv loop on 127.0.0.1 with free ports, each
 * with its own swim and a fake tenant service behind struct
 * net_tenant_ops: the fake hands out the frames a test queues and records
 * the frames it receives (a sequence number and a pattern check each).
 * Raw blocking sockets play hostile peers. Every loop run is bounded by a
 * guard timer, so a failing test fails instead of hanging. Timeouts are
 * shortened through struct net_tunables.
 *
 * This is the one unit test with real sockets: what it checks (framing on
 * a shared port, coalesced writes, reconnects, and what strangers can make
 * a node hold: caps, budget, deadlines, the descriptor limit) is libuv and
 * kernel behaviour that a fake network would only restate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_err.h"
#include "net.h"
#include "test_env.h"
#include "test_ident.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *KEY_A = "4Cc9KCXH4Bv7EWKp5YeLjD+0m5ibP9Gpkd9wQPeW0Bw=";
static const char *KEY_B = "5zvYmZ3q0pcdKm0pJ3a5F0q6m1Sg3Jt3cN1QK8rYk2M=";

/* ---- the fake tenant service --------------------------------------------- */

struct fake_frame {
	char to[SWIM_NAME_MAX + 1];
	struct swim_addr addr;
	uint8_t *data;
	size_t len;
};

struct fake_svc {
	struct fake_frame *out;
	size_t out_head, out_count, out_cap;
	uint8_t *lent; /* data of the last frame polled, freed on next poll */
	size_t nrecv, bytes_recv;
	uint64_t last_seq;
	size_t disorder, gaps, bad;
	int recv_rc;
	uint64_t deadline;
	unsigned ticks;
};

static uint8_t
fake_pattern(uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 31 + i * 7);
}

static int
fake_recv(void *svc, uint64_t now_ms, const uint8_t *data, size_t len)
{
	struct fake_svc *s = svc;
	(void)now_ms;
	s->nrecv++;
	s->bytes_recv += len;
	if (len < 8) {
		s->bad++;
		return s->recv_rc;
	}
	uint64_t seq = 0;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | data[i];
	for (size_t i = 8; i < len; i++) {
		if (data[i] != fake_pattern(seq, i)) {
			s->bad++;
			break;
		}
	}
	if (s->nrecv > 1 && seq <= s->last_seq)
		s->disorder++;
	if (s->nrecv > 1 && seq != s->last_seq + 1)
		s->gaps++;
	s->last_seq = seq;
	return s->recv_rc;
}

static void
fake_tick(void *svc, uint64_t now_ms)
{
	struct fake_svc *s = svc;
	(void)now_ms;
	s->ticks++;
	s->deadline = UINT64_MAX;
}

static uint64_t
fake_next_deadline(const void *svc)
{
	const struct fake_svc *s = svc;
	return s->deadline;
}

static bool
fake_poll_output(void *svc, struct tenant_output *o)
{
	struct fake_svc *s = svc;
	free(s->lent);
	s->lent = NULL;
	if (s->out_head == s->out_count) {
		s->out_head = s->out_count = 0;
		return false;
	}
	struct fake_frame *f = &s->out[s->out_head++];
	o->to = f->to;
	o->addr = f->addr;
	o->data = f->data;
	o->len = f->len;
	/* The frame's number is its first 8 bytes (fake_queue); net counts
	 * and reports lost frames by it. */
	o->seq = 0;
	for (size_t i = 0; i < 8 && i < f->len; i++)
		o->seq = o->seq << 8 | f->data[i];
	s->lent = f->data;
	return true;
}

static const struct net_tenant_ops fake_ops = {
    .recv = fake_recv,
    .tick = fake_tick,
    .next_deadline = fake_next_deadline,
    .poll_output = fake_poll_output,
};

/* Queues a frame of @len bytes (at least 8) numbered @seq for @to. */
static void
fake_queue(struct fake_svc *s, const char *to, const struct swim_addr *addr,
	   uint64_t seq, size_t len)
{
	if (s->out_count == s->out_cap) {
		s->out_cap = s->out_cap ? s->out_cap * 2 : 64;
		s->out = realloc(s->out, s->out_cap * sizeof(*s->out));
		assert_non_null(s->out);
	}
	struct fake_frame *f = &s->out[s->out_count++];
	snprintf(f->to, sizeof(f->to), "%s", to);
	f->addr = *addr;
	f->len = len;
	f->data = malloc(len);
	assert_non_null(f->data);
	for (int i = 0; i < 8; i++)
		f->data[i] = (uint8_t)(seq >> (56 - 8 * i));
	for (size_t i = 8; i < len; i++)
		f->data[i] = fake_pattern(seq, i);
}

static void
fake_free(struct fake_svc *s)
{
	for (size_t i = s->out_head; i < s->out_count; i++)
		free(s->out[i].data);
	free(s->out);
	free(s->lent);
	memset(s, 0, sizeof(*s));
}

/* ---- nodes and the loop -------------------------------------------------- */

struct node {
	char name[16];
	struct swim_addr addr;
	struct swim *swim;
	struct net net;
	struct fake_svc svc;
	struct test_ident id;
	bool up;
};

struct fixture {
	uv_loop_t loop;
	struct test_env t;
	struct seal_keyring ring, other;
	struct node a, b, c;
	struct rlimit nofile; /* restored by teardown */
};

struct guard {
	uv_timer_t timer;
	bool fired;
};

static void
guard_fired(uv_timer_t *t)
{
	((struct guard *)t->data)->fired = true;
}

static void
guard_start(struct fixture *f, struct guard *g, uint64_t ms)
{
	g->fired = false;
	uv_timer_init(&f->loop, &g->timer);
	g->timer.data = g;
	uv_timer_start(&g->timer, guard_fired, ms, 0);
}

static void
guard_stop(struct fixture *f, struct guard *g)
{
	uv_close((uv_handle_t *)&g->timer, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Runs the loop until @cond holds or @ms pass; evaluates to @cond. */
#define RUN_UNTIL(f, cond, ms)                                                 \
	do {                                                                   \
		struct guard g_;                                               \
		guard_start((f), &g_, (ms));                                   \
		while (!(cond) && !g_.fired)                                   \
			uv_run(&(f)->loop, UV_RUN_ONCE);                       \
		guard_stop((f), &g_);                                          \
	} while (0)

static void
ring_of(struct seal_keyring *r, const char *key)
{
	char text[128];
	snprintf(text, sizeof(text), "%s\n", key);
	assert_int_equal(seal_keyring_parse(r, text, strlen(text), NULL), 0);
}

static uint16_t
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void
node_init(struct node *nd, const char *name)
{
	snprintf(nd->name, sizeof(nd->name), "%s", name);
	char text[32];
	snprintf(text, sizeof(text), "127.0.0.1:%u", free_port());
	assert_int_equal(net_parse_addr(text, 0, &nd->addr), 0);
}

static void
node_stop(struct fixture *f, struct node *nd)
{
	if (!nd->up)
		return;
	net_stop(&nd->net);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	swim_free(nd->swim);
	nd->swim = NULL;
	nd->up = false;
}

/* Starts @nd on its address with the fake service (unless @no_svc). */
static void
node_start(struct fixture *f, struct node *nd, struct seal_keyring *r,
	   bool no_svc)
{
	struct swim_config cfg;
	swim_config_default(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", nd->name);
	cfg.addr = nd->addr;
	cfg.seed = (uint64_t)nd->name[0];
	test_ident_make(&nd->id, nd->name);
	test_ident_apply(&nd->id, &cfg);
	assert_int_equal(swim_new(&cfg, &f->t.env, net_now_ms(), &nd->swim), 0);
	memset(&nd->net, 0, sizeof(nd->net));
	assert_int_equal(net_start(&nd->net, &f->loop, &nd->addr, nd->swim, r,
				   &f->t.env, NULL, NULL),
			 0);
	nd->net.tune.tick_max_ms = 10;
	nd->net.tune.tenant_backoff_min_ms = 50;
	nd->net.tune.tenant_backoff_max_ms = 400;
	if (!no_svc)
		net_set_tenant(&nd->net, &fake_ops, &nd->svc);
	nd->up = true;
}

/* Queues @count frames of @len bytes from @from to @to, from @seq on. */
static void
send_frames(struct node *from, const struct node *to, uint64_t seq,
	    size_t count, size_t len)
{
	for (size_t i = 0; i < count; i++)
		fake_queue(&from->svc, to->name, &to->addr, seq + i, len);
	net_flush(&from->net);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL || uv_loop_init(&f->loop) != 0 || seal_init() != 0)
		return -1;
	test_env_init(&f->t);
	if (getrlimit(RLIMIT_NOFILE, &f->nofile) != 0)
		return -1;
	ring_of(&f->ring, KEY_A);
	ring_of(&f->other, KEY_B);
	do {
		node_init(&f->a, "a");
		node_init(&f->b, "b");
		node_init(&f->c, "c");
	} while (f->a.addr.port == f->b.addr.port ||
		 f->b.addr.port == f->c.addr.port ||
		 f->a.addr.port == f->c.addr.port);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	setrlimit(RLIMIT_NOFILE, &f->nofile);
	node_stop(f, &f->a);
	node_stop(f, &f->b);
	node_stop(f, &f->c);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(&f->loop);
	fake_free(&f->a.svc);
	fake_free(&f->b.svc);
	fake_free(&f->c.svc);
	assert_int_equal(f->t.alloc.live, 0);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* Connects @fd to @nd; blocking, the kernel accepts for the loop. */
static void
raw_connect_fd(int fd, const struct node *nd)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	memcpy(&sin.sin_addr, nd->addr.ip, 4);
	sin.sin_port = htons(nd->addr.port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
}

/* A raw client socket to @nd from the loopback address @src (NULL: let
 * the kernel choose, 127.0.0.1). */
static int
raw_connect_from(const struct node *nd, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	if (src != NULL) {
		struct sockaddr_in sin = {.sin_family = AF_INET};
		assert_int_equal(inet_pton(AF_INET, src, &sin.sin_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)),
				 0);
	}
	raw_connect_fd(fd, nd);
	return fd;
}

static int
raw_connect(const struct node *nd)
{
	return raw_connect_from(nd, NULL);
}

static void
raw_send(int fd, const void *data, size_t len)
{
	assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void
raw_header(int fd, uint32_t word)
{
	uint8_t h[4] = {(uint8_t)(word >> 24), (uint8_t)(word >> 16),
			(uint8_t)(word >> 8), (uint8_t)word};
	raw_send(fd, h, 4);
}

/* True once the other end has closed @fd. */
static bool
raw_closed(int fd)
{
	uint8_t b[256];
	ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Sends a tenant stream's hello (an empty sealed tenant frame) on @fd:
 * proof of the key, the stream is a peer's from then on. */
static void
raw_hello(struct fixture *f, int fd)
{
	uint8_t sealed[SEAL_OVERHEAD];
	size_t len;
	assert_int_equal(seal_seal(&f->ring, (const uint8_t *)"", 0, sealed,
				   sizeof(sealed), &len),
			 0);
	raw_header(fd, NET_TENANT_FLAG | (uint32_t)len);
	raw_send(fd, sealed, len);
}

/* Sends @len junk bytes on @fd without blocking; returns how many went. */
static size_t
raw_junk(int fd, size_t len)
{
	static uint8_t junk[4096];
	size_t sent = 0;
	memset(junk, 0xa5, sizeof(junk));
	while (sent < len) {
		size_t k =
		    len - sent < sizeof(junk) ? len - sent : sizeof(junk);
		ssize_t r = send(fd, junk, k, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r <= 0)
			break;
		sent += (size_t)r;
	}
	return sent;
}

/* The lowest descriptor number not in use: with RLIMIT_NOFILE set to it,
 * the next socket(), accept() or open() fails with EMFILE. */
static rlim_t
lowest_free_fd(void)
{
	int fd = dup(0);
	assert_true(fd >= 0);
	close(fd);
	return (rlim_t)fd;
}

static void
set_nofile(struct fixture *f, rlim_t soft)
{
	struct rlimit rl = {soft, f->nofile.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_net_tenant_both_ways_in_order(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	f->a.svc.deadline = 0; /* due at once: the timer must tick it */
	net_flush(&f->a.net);
	send_frames(&f->a, &f->b, 1, 50, 200);
	send_frames(&f->b, &f->a, 1, 40, 3000);
	RUN_UNTIL(f, f->b.svc.nrecv == 50 && f->a.svc.nrecv == 40, 5000);
	assert_int_equal(f->b.svc.nrecv, 50);
	assert_int_equal(f->a.svc.nrecv, 40);
	assert_int_equal(f->b.svc.last_seq, 50);
	assert_int_equal(f->a.svc.last_seq, 40);
	assert_int_equal(f->b.svc.disorder + f->b.svc.gaps + f->b.svc.bad, 0);
	assert_int_equal(f->a.svc.disorder + f->a.svc.gaps + f->a.svc.bad, 0);
	assert_int_equal(f->b.svc.bytes_recv, 50 * 200);
	assert_true(f->a.svc.ticks >= 1);
	/* One stream each way; nothing dropped. */
	RUN_UNTIL(f, f->a.net.c.tenant_frames_sent == 50, 2000);
	assert_int_equal(f->a.net.c.tenant_frames_sent, 50);
	assert_int_equal(f->a.net.c.tenant_connects, 1);
	assert_int_equal(f->b.net.c.tenant_connects, 1);
	assert_int_equal(f->b.net.c.tenant_frames_recv, 50);
	assert_int_equal(f->b.net.c.tenant_bytes_recv,
			 50 * (4 + 200 + SEAL_OVERHEAD));
	assert_int_equal(f->a.net.c.tenant_bytes_sent,
			 50 * (4 + 200 + SEAL_OVERHEAD));
	assert_int_equal(f->a.net.c.stream_errors + f->b.net.c.stream_errors,
			 0);
	assert_int_equal(f->a.net.c.tenant_drop_down, 0);
	/* Swim traffic is untouched: no swim frame went either way. */
	assert_int_equal(f->b.net.c.tcp_frames_recv, 0);
}

static void
test_net_tenant_frames_coalesced(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	/* Queued while connecting: one write on connect. */
	send_frames(&f->a, &f->b, 1, 1000, 100);
	RUN_UNTIL(f, f->b.svc.nrecv == 1000, 5000);
	assert_int_equal(f->b.svc.nrecv, 1000);
	assert_int_equal(f->a.net.c.tenant_writes, 1);
	/* Produced by one flush on a live stream: one more write. */
	send_frames(&f->a, &f->b, 1001, 3000, 100);
	assert_int_equal(f->a.net.c.tenant_writes, 2);
	RUN_UNTIL(f, f->b.svc.nrecv == 4000, 5000);
	assert_int_equal(f->b.svc.nrecv, 4000);
	assert_int_equal(f->b.svc.disorder + f->b.svc.gaps + f->b.svc.bad, 0);
	RUN_UNTIL(f, f->a.net.c.tenant_frames_sent == 4000, 2000);
	assert_int_equal(f->a.net.c.tenant_frames_sent, 4000);
	assert_int_equal(f->a.net.c.tenant_connects, 1);
}

static void
test_net_tenant_peer_down_then_up(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	/* b is not listening: the connect fails, the frame is dropped. */
	send_frames(&f->a, &f->b, 1, 1, 64);
	RUN_UNTIL(f, f->a.net.c.stream_errors == 1, 2000);
	assert_int_equal(f->a.net.c.stream_errors, 1);
	assert_int_equal(f->a.net.c.tenant_drop_down, 1);
	/* In the backoff: dropped at once, no new connect. */
	send_frames(&f->a, &f->b, 2, 3, 64);
	assert_int_equal(f->a.net.c.tenant_drop_down, 4);
	assert_int_equal(f->a.net.c.tenant_connects, 1);

	node_start(f, &f->b, &f->ring, false);
	RUN_UNTIL(f, false, 80); /* past the 50 ms backoff */
	send_frames(&f->a, &f->b, 10, 2, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 2, 2000);
	assert_int_equal(f->b.svc.nrecv, 2);
	assert_int_equal(f->b.svc.last_seq, 11);

	/* b goes away: a sees its stream end, counts it, drops what
	 * follows during the backoff, and reaches the new b after it. */
	node_stop(f, &f->b);
	RUN_UNTIL(f, f->a.net.c.stream_errors == 2, 2000);
	assert_int_equal(f->a.net.c.stream_errors, 2);
	size_t down = f->a.net.c.tenant_drop_down;
	send_frames(&f->a, &f->b, 20, 1, 64);
	assert_int_equal(f->a.net.c.tenant_drop_down, down + 1);
	fake_free(&f->b.svc);
	node_start(f, &f->b, &f->ring, false);
	RUN_UNTIL(f, false, 120);
	send_frames(&f->a, &f->b, 30, 5, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 5, 2000);
	assert_int_equal(f->b.svc.nrecv, 5);
	assert_int_equal(f->b.svc.last_seq, 34);
	assert_int_equal(f->b.svc.gaps, 0);
}

static void
test_net_tenant_address_change_reconnects(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	/* "b" first at c's address, where nobody listens ... */
	fake_queue(&f->a.svc, "b", &f->c.addr, 1, 64);
	net_flush(&f->a.net);
	RUN_UNTIL(f, f->a.net.c.stream_errors == 1, 2000);
	assert_int_equal(f->a.net.c.stream_errors, 1);
	/* ... then at its own: a new address is tried at once. */
	send_frames(&f->a, &f->b, 2, 1, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 1, 2000);
	assert_int_equal(f->b.svc.nrecv, 1);
	assert_int_equal(f->a.net.c.tenant_connects, 2);
}

static void
test_net_tenant_garbage_counted_and_closed(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->b, &f->ring, false);
	uint8_t junk[100];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 13 + 5);

	junk[0] = SEAL_VERSION; /* looks sealed, opens with no key */
	int fd = raw_connect(&f->b);
	raw_header(fd, NET_TENANT_FLAG | sizeof(junk));
	raw_send(fd, junk, sizeof(junk));
	RUN_UNTIL(f, raw_closed(fd), 2000);
	assert_true(raw_closed(fd));
	close(fd);
	assert_int_equal(f->b.net.c.drop_auth, 1);

	junk[0] = 9; /* unknown seal version */
	fd = raw_connect(&f->b);
	raw_header(fd, NET_TENANT_FLAG | sizeof(junk));
	raw_send(fd, junk, sizeof(junk));
	RUN_UNTIL(f, raw_closed(fd), 2000);
	close(fd);
	assert_int_equal(f->b.net.c.drop_seal_version, 1);

	fd = raw_connect(&f->b); /* shorter than the overhead */
	raw_header(fd, NET_TENANT_FLAG | 10);
	raw_send(fd, junk, 10);
	RUN_UNTIL(f, raw_closed(fd), 2000);
	close(fd);
	assert_int_equal(f->b.net.c.drop_truncated, 1);

	fd = raw_connect(&f->b); /* over the limit: cut at the header */
	raw_header(fd, NET_TENANT_FLAG | (NET_TENANT_FRAME_MAX + 1));
	RUN_UNTIL(f, raw_closed(fd), 2000);
	close(fd);
	assert_int_equal(f->b.net.c.drop_oversize, 1);

	/* A stranger's first frame may not be big: it is cut at the header,
	 * before anything is buffered, and counted. */
	fd = raw_connect(&f->b);
	raw_header(fd, NET_TENANT_FLAG | (NET_FIRST_FRAME_MAX + 1));
	RUN_UNTIL(f, raw_closed(fd), 2000);
	assert_true(raw_closed(fd));
	close(fd);
	assert_int_equal(f->b.net.c.drop_first_oversize, 1);

	assert_int_equal(f->b.svc.nrecv, 0);
	assert_int_equal(f->b.net.c.tenant_frames_recv, 0);
}

static void
test_net_tenant_wrong_key_is_drop_auth(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->b, &f->ring, false);
	node_start(f, &f->c, &f->other, false);
	send_frames(&f->c, &f->b, 1, 1, 128);
	RUN_UNTIL(f, f->b.net.c.drop_auth == 1 && f->c.net.c.stream_errors == 1,
		  2000);
	assert_int_equal(f->b.net.c.drop_auth, 1);
	assert_int_equal(f->b.svc.nrecv, 0);
	/* c sees b close its stream: a failure, then a backoff. */
	assert_int_equal(f->c.net.c.stream_errors, 1);
}

static void
test_net_tenant_partial_frame_then_eof(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->b, &f->ring, false);
	int fd = raw_connect(&f->b);
	uint8_t part[10] = {SEAL_VERSION};
	raw_header(fd, NET_TENANT_FLAG | 100);
	raw_send(fd, part, sizeof(part));
	RUN_UNTIL(f, f->b.net.c.tcp_recv_bytes == 14, 2000);
	close(fd);
	RUN_UNTIL(f, f->b.net.c.drop_partial == 1, 2000);
	assert_int_equal(f->b.net.c.drop_partial, 1);
	assert_int_equal(f->b.svc.nrecv, 0);
}

static void
test_net_tenant_no_service_drops(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, true);
	send_frames(&f->a, &f->b, 1, 1, 64);
	RUN_UNTIL(f, f->b.net.c.tenant_drop_nosvc == 1, 2000);
	assert_int_equal(f->b.net.c.tenant_drop_nosvc, 1);
	RUN_UNTIL(f, f->a.net.c.stream_errors == 1, 2000);
	assert_int_equal(f->a.net.c.stream_errors, 1);
	/* Set later, b takes tenant frames. */
	net_set_tenant(&f->b.net, &fake_ops, &f->b.svc);
	RUN_UNTIL(f, false, 80);
	send_frames(&f->a, &f->b, 2, 1, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 1, 2000);
	assert_int_equal(f->b.svc.nrecv, 1);
}

static void
test_net_tenant_core_refusal_keeps_stream(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	f->b.svc.recv_rc = MESH_EDECODE;
	send_frames(&f->a, &f->b, 1, 3, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 3, 2000);
	send_frames(&f->a, &f->b, 4, 3, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 6, 2000);
	assert_int_equal(f->b.net.c.tenant_drop_core, 6);
	assert_int_equal(f->a.net.c.tenant_connects, 1);
	assert_int_equal(f->a.net.c.stream_errors, 0);
}

static void
test_net_tenant_idle_streams_close(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	f->a.net.tune.stream_timeout_ms = f->b.net.tune.stream_timeout_ms = 100;
	f->a.net.tune.tenant_idle_ms = f->b.net.tune.tenant_idle_ms = 400;
	send_frames(&f->a, &f->b, 1, 1, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 1, 2000);
	/* Past the stream timeout, a tenant stream lives on. */
	RUN_UNTIL(f, false, 250);
	send_frames(&f->a, &f->b, 2, 1, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 2, 2000);
	assert_int_equal(f->a.net.c.tenant_connects, 1);
	assert_int_equal(f->a.net.c.tenant_idle_closes, 0);
	/* Silent for the idle time: the sender closes, b follows on EOF. */
	RUN_UNTIL(f,
		  f->a.net.c.tenant_idle_closes == 1 && f->b.net.conns == NULL,
		  2000);
	assert_int_equal(f->a.net.c.tenant_idle_closes, 1);
	assert_null(f->b.net.conns);
	assert_int_equal(f->a.net.c.stream_errors + f->b.net.c.stream_errors,
			 0);
	/* The next frame reconnects at once. */
	send_frames(&f->a, &f->b, 3, 1, 64);
	RUN_UNTIL(f, f->b.svc.nrecv == 3, 2000);
	assert_int_equal(f->a.net.c.tenant_connects, 2);

	/* A stream that never sends a whole frame is cut at the stream
	 * timeout, tenant flag or not. */
	int fd = raw_connect(&f->b);
	raw_header(fd, NET_TENANT_FLAG | 100);
	RUN_UNTIL(f, raw_closed(fd), 2000);
	assert_true(raw_closed(fd));
	close(fd);
	assert_int_equal(f->b.net.c.stream_errors, 1);

	/* A sender that goes silent after a frame: b holds the stream past
	 * the stream timeout and closes it after the idle time. */
	uint8_t frame[4 + 64 + SEAL_OVERHEAD], plain[64] = {0};
	plain[7] = 4;
	for (size_t i = 8; i < sizeof(plain); i++)
		plain[i] = fake_pattern(4, i);
	size_t len;
	assert_int_equal(seal_seal(&f->ring, plain, sizeof(plain), frame + 4,
				   sizeof(frame) - 4, &len),
			 0);
	fd = raw_connect(&f->b);
	raw_header(fd, NET_TENANT_FLAG | (uint32_t)len);
	raw_send(fd, frame + 4, len);
	RUN_UNTIL(f, f->b.svc.nrecv == 4, 2000);
	assert_int_equal(f->b.svc.nrecv, 4);
	RUN_UNTIL(f, false, 250);
	assert_false(raw_closed(fd));
	RUN_UNTIL(f, raw_closed(fd), 2000);
	assert_true(raw_closed(fd));
	close(fd);
	assert_int_equal(f->b.net.c.tenant_idle_closes, 1);
	assert_int_equal(f->b.net.c.stream_errors, 1);
}

static void
test_net_tenant_queue_cap(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	size_t wire = 4 + 2000 + SEAL_OVERHEAD;
	f->a.net.tune.tenant_queue_max = 10 * wire;
	send_frames(&f->a, &f->b, 1, 25, 2000);
	assert_int_equal(f->a.net.c.tenant_drop_queue, 15);
	RUN_UNTIL(f, f->b.svc.nrecv == 10, 2000);
	assert_int_equal(f->b.svc.nrecv, 10);
	assert_int_equal(f->b.svc.last_seq, 10);
}

static void
test_net_tenant_largest_frame(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	/* 16 MiB: the limit on the wire less the overhead it allows for. */
	size_t max = NET_TENANT_FRAME_MAX - SEAL_OVERHEAD_MAX;
	/* The largest frame as the first of a new stream: the stream's hello
	 * lifts the receiver's first-frame limit before it arrives. */
	send_frames(&f->a, &f->b, 1, 1, max);
	send_frames(&f->a, &f->b, 2, 1, max + 1);
	assert_int_equal(f->a.net.c.tenant_send_errors, 1);
	send_frames(&f->a, &f->b, 2, 10, 100);
	RUN_UNTIL(f, f->b.svc.nrecv == 11, 20000);
	assert_int_equal(f->b.svc.nrecv, 11);
	assert_int_equal(f->b.svc.bytes_recv, max + 10 * 100);
	assert_int_equal(f->b.net.c.drop_first_oversize, 0);
	assert_int_equal(f->b.svc.bad + f->b.svc.disorder, 0);
	assert_int_equal(f->b.net.c.drop_oversize, 0);
}

static void
test_net_swim_push_pull_beside_tenant(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	assert_int_equal(swim_join(f->a.swim, net_now_ms(), &f->b.addr, 1), 0);
	net_flush(&f->a.net);
	send_frames(&f->a, &f->b, 1, 20, 500);
	send_frames(&f->b, &f->a, 1, 20, 500);
	RUN_UNTIL(f,
		  swim_member_count(f->a.swim) == 2 &&
		      swim_member_count(f->b.swim) == 2 &&
		      f->a.svc.nrecv == 20 && f->b.svc.nrecv == 20,
		  5000);
	assert_int_equal(swim_member_count(f->a.swim), 2);
	assert_int_equal(swim_member_count(f->b.swim), 2);
	assert_true(swim_is_joined(f->a.swim));
	assert_true(f->b.net.c.tcp_frames_recv >= 1);
	assert_int_equal(f->a.svc.nrecv, 20);
	assert_int_equal(f->b.svc.nrecv, 20);
	assert_int_equal(f->a.net.c.drop_core + f->b.net.c.drop_core, 0);
}

/*
 * A stranger's first frame gets a small buffer; growing it draws on the
 * shared budget, and a stranger that would overdraw it is cut. Today's
 * code read all of it (and would have read 4 MiB per stream).
 */
static void
test_net_stranger_first_frame_budget(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->b, &f->ring, false);
	struct net *n = &f->b.net;
	n->tune.unauth_budget = 0;
	/* A swim frame of 1 MiB is allowed (under NET_FIRST_FRAME_MAX),
	 * but 1 MiB of a stranger is not held without budget. */
	int fd = raw_connect(&f->b);
	raw_header(fd, 1u << 20);
	size_t sent = raw_junk(fd, 32768);
	assert_true(sent > NET_FIRST_FRAME_SMALL);
	RUN_UNTIL(f, raw_closed(fd), 2000);
	assert_true(raw_closed(fd));
	close(fd);
	assert_int_equal(n->c.drop_first_budget, 1);
	/* What was read is the small buffer, not a byte more. */
	assert_int_equal(n->c.tcp_recv_bytes, NET_FIRST_FRAME_SMALL);
	assert_int_equal(n->unauth_bytes, 0);

	/* With a budget: one stranger may grow into it, the next that
	 * would overdraw it is cut; what is held never passes the budget. */
	n->tune.unauth_budget = 300000;
	int s1 = raw_connect_from(&f->b, "127.0.0.2");
	raw_header(s1, 1u << 20);
	raw_junk(s1, 150000);
	RUN_UNTIL(f, n->c.tcp_recv_bytes >= NET_FIRST_FRAME_SMALL + 150004,
		  2000);
	assert_true(n->unauth_bytes > 150000);
	assert_true(n->unauth_bytes <= 300000);
	int s2 = raw_connect_from(&f->b, "127.0.0.3");
	raw_header(s2, 1u << 20);
	raw_junk(s2, 150000);
	RUN_UNTIL(f, raw_closed(s2), 2000);
	assert_true(raw_closed(s2));
	assert_false(raw_closed(s1));
	assert_int_equal(n->c.drop_first_budget, 2);
	assert_true(n->unauth_bytes <= 300000);
	/* The holder goes: its charge comes back. */
	close(s1);
	close(s2);
	RUN_UNTIL(f, n->conns == NULL, 2000);
	assert_null(n->conns);
	assert_int_equal(n->unauth_bytes, 0);
	assert_int_equal(n->nstrangers, 0);
	assert_int_equal(n->ninbound, 0);
	assert_int_equal(f->b.svc.nrecv, 0);
}

/*
 * A real first frame bigger than the small buffer (an unjoined node's
 * view) gets through on the budget, and a stream proven by its first frame
 * owes the budget nothing afterwards.
 */
static void
test_net_stranger_large_first_frame_within_budget(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->b, &f->ring, false);
	struct net *n = &f->b.net;
	n->tune.unauth_budget = 256 << 10;
	size_t plen = 100000;
	uint8_t *plain = malloc(plen), *frame = malloc(plen + SEAL_OVERHEAD);
	assert_non_null(plain);
	assert_non_null(frame);
	memset(plain, 0, 8);
	plain[7] = 1; /* seq 1 */
	for (size_t i = 8; i < plen; i++)
		plain[i] = fake_pattern(1, i);
	size_t len;
	assert_int_equal(
	    seal_seal(&f->ring, plain, plen, frame, plen + SEAL_OVERHEAD, &len),
	    0);
	int fd = raw_connect(&f->b);
	raw_header(fd, NET_TENANT_FLAG | (uint32_t)len);
	raw_send(fd, frame, len);
	RUN_UNTIL(f, f->b.svc.nrecv == 1, 2000);
	assert_int_equal(f->b.svc.nrecv, 1);
	assert_int_equal(f->b.svc.bad, 0);
	assert_int_equal(n->unauth_bytes, 0);
	assert_int_equal(n->nstrangers, 0);
	assert_int_equal(n->ninbound, 1);
	assert_int_equal(n->c.drop_first_budget + n->c.drop_first_oversize, 0);
	close(fd);
	free(plain);
	free(frame);
}

/*
 * Over the per-source cap a new stream replaces that source's oldest
 * stranger; over the overall cap, the oldest stranger of any source. A
 * member joining through a node full of strangers gets in; streams proven
 * by a frame are never cut for room, and when only they are left a new
 * stream is refused.
 */
static void
test_net_inbound_caps_replace_oldest_stranger(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->a, &f->ring, false);
	node_start(f, &f->b, &f->ring, false);
	struct net *n = &f->b.net;
	n->tune.inbound_source_max = 2;
	n->tune.inbound_max = 4;
	int s1 = raw_connect_from(&f->b, "127.0.0.2");
	int s2 = raw_connect_from(&f->b, "127.0.0.2");
	RUN_UNTIL(f, n->nstrangers == 2, 2000);
	/* A stranger is cut for room only after a loop turn to speak. */
	RUN_UNTIL(f, false, 50);
	int s3 = raw_connect_from(&f->b, "127.0.0.2");
	RUN_UNTIL(f, raw_closed(s1), 2000);
	assert_true(raw_closed(s1));
	assert_int_equal(n->c.drop_cap_source, 1);
	assert_int_equal(n->nstrangers, 2);
	int t1 = raw_connect_from(&f->b, "127.0.0.3");
	int t2 = raw_connect_from(&f->b, "127.0.0.4");
	RUN_UNTIL(f, n->ninbound == 4, 2000);
	assert_int_equal(n->ninbound, 4);
	assert_int_equal(n->c.drop_cap_total, 0);
	RUN_UNTIL(f, false, 50);
	/* Full: a's join replaces the oldest stranger (s2) and gets in. */
	assert_int_equal(swim_join(f->a.swim, net_now_ms(), &f->b.addr, 1), 0);
	net_flush(&f->a.net);
	RUN_UNTIL(
	    f, swim_is_joined(f->a.swim) && swim_member_count(f->b.swim) == 2,
	    3000);
	assert_true(swim_is_joined(f->a.swim));
	assert_int_equal(swim_member_count(f->b.swim), 2);
	assert_true(raw_closed(s2));
	assert_false(raw_closed(s3));
	assert_false(raw_closed(t1));
	assert_int_equal(n->c.drop_cap_total, 1);
	assert_int_equal(n->c.drop_cap_source, 1);
	close(s1);
	close(s2);
	close(s3);
	close(t1);
	close(t2);
	RUN_UNTIL(f, n->ninbound == 0, 2000);
	assert_int_equal(n->ninbound, 0);

	/* Only peers' streams (replayed hellos would do): the one quiet
	 * longest makes room, so new streams still get in. */
	n->tune.inbound_max = 2;
	int p1 = raw_connect_from(&f->b, "127.0.0.5");
	raw_hello(f, p1);
	RUN_UNTIL(f, n->ninbound == 1 && n->nstrangers == 0, 2000);
	RUN_UNTIL(f, false, 20);
	int p2 = raw_connect_from(&f->b, "127.0.0.5");
	raw_hello(f, p2);
	RUN_UNTIL(f, n->ninbound == 2 && n->nstrangers == 0, 2000);
	assert_int_equal(n->nstrangers, 0);
	int s4 = raw_connect_from(&f->b, "127.0.0.6");
	RUN_UNTIL(f, raw_closed(p1), 2000);
	assert_true(raw_closed(p1));
	assert_int_equal(n->c.drop_cap_total, 2);
	RUN_UNTIL(f, false, 50);
	assert_false(raw_closed(s4));
	assert_false(raw_closed(p2));
	close(s4);
	close(p1);
	close(p2);
}

/*
 * Slowloris: a stranger that sends nothing, or trickles its first frame,
 * is cut at the first-frame deadline; a peer that trickles a frame is cut
 * at the frame deadline. Today's code held both until the stream timeout
 * (10 s) or, once a hello had opened the stream, for the idle time (135 s).
 */
static void
test_net_frame_deadlines(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->b, &f->ring, false);
	struct net *n = &f->b.net;
	n->tune.first_frame_timeout_ms = 300;
	n->tune.frame_timeout_ms = 400;
	uint64_t t0 = net_now_ms();
	int silent = raw_connect_from(&f->b, "127.0.0.2");
	int slow = raw_connect_from(&f->b, "127.0.0.3");
	raw_header(slow, NET_TENANT_FLAG | 100);
	/* One byte per 50 ms: progress, but never a whole frame. */
	for (int i = 0; i < 16 && !raw_closed(slow); i++) {
		uint8_t b = SEAL_VERSION;
		send(slow, &b, 1, MSG_NOSIGNAL);
		RUN_UNTIL(f, false, 50);
	}
	RUN_UNTIL(f, raw_closed(slow) && raw_closed(silent), 2000);
	assert_true(raw_closed(slow));
	assert_true(raw_closed(silent));
	assert_true(net_now_ms() - t0 < 1500);
	assert_int_equal(n->c.drop_deadline, 2);
	close(silent);
	close(slow);

	/* A peer's stream (proven by its hello) that starts a frame and
	 * stops: cut at the frame deadline, not the idle time. */
	int peer = raw_connect(&f->b);
	raw_hello(f, peer);
	RUN_UNTIL(f, n->nstrangers == 0 && n->ninbound == 1, 2000);
	RUN_UNTIL(f, false, 400); /* past the first-frame deadline: kept */
	assert_false(raw_closed(peer));
	raw_header(peer, NET_TENANT_FLAG | 100);
	uint8_t part[10] = {SEAL_VERSION};
	raw_send(peer, part, sizeof(part));
	RUN_UNTIL(f, raw_closed(peer), 2000);
	assert_true(raw_closed(peer));
	assert_int_equal(n->c.drop_deadline, 3);
	assert_int_equal(n->c.tenant_idle_closes, 0);
	close(peer);
	assert_int_equal(f->b.svc.nrecv, 0);
}

/*
 * At the descriptor limit the listener cuts the oldest stranger to take
 * the new stream; with no stranger left it takes the connection with its
 * spare descriptor and closes it at once, and does so again (the spare
 * comes back). A peer's stream is untouched, and accepting works as before
 * once descriptors are free. Today libuv accepted and closed the new
 * connection and kept the stranger.
 */
static void
test_net_emfile_sheds(void **state)
{
	struct fixture *f = *state;
	node_start(f, &f->b, &f->ring, false);
	struct net *n = &f->b.net;
	int s1 = raw_connect(&f->b);
	RUN_UNTIL(f, n->conns != NULL, 2000);
	assert_non_null(n->conns);
	RUN_UNTIL(f, false, 50); /* s1 has had its turns to speak */
	/* Sockets first: the clients need no descriptor after this. */
	int s2 = socket(AF_INET, SOCK_STREAM, 0);
	int s3 = socket(AF_INET, SOCK_STREAM, 0);
	int s4 = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s2 >= 0 && s3 >= 0 && s4 >= 0);
	set_nofile(f, lowest_free_fd());

	raw_connect_fd(s2, &f->b);
	RUN_UNTIL(f, raw_closed(s1) && n->ninbound == 1, 2000);
	assert_true(raw_closed(s1));
	assert_false(raw_closed(s2));
	assert_int_equal(n->c.drop_emfile, 1);
	assert_non_null(strstr(f->t.last_line, "out of file descriptors"));

	raw_hello(f, s2); /* a peer's stream now: never cut for room */
	RUN_UNTIL(f, n->nstrangers == 0, 2000);
	assert_int_equal(n->nstrangers, 0);
	raw_connect_fd(s3, &f->b);
	RUN_UNTIL(f, raw_closed(s3), 2000);
	assert_true(raw_closed(s3));
	assert_int_equal(n->c.drop_emfile, 2);
	raw_connect_fd(s4, &f->b);
	RUN_UNTIL(f, raw_closed(s4), 2000);
	assert_true(raw_closed(s4));
	assert_int_equal(n->c.drop_emfile, 3);
	assert_false(raw_closed(s2));
	assert_int_equal(n->ninbound, 1);

	setrlimit(RLIMIT_NOFILE, &f->nofile);
	int s5 = raw_connect(&f->b);
	RUN_UNTIL(f, n->ninbound == 2, 2000);
	assert_int_equal(n->ninbound, 2);
	assert_false(raw_closed(s5));
	assert_int_equal(n->c.drop_emfile, 3);
	close(s1);
	close(s2);
	close(s3);
	close(s4);
	close(s5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_net_tenant_both_ways_in_order,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net_tenant_frames_coalesced,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net_tenant_peer_down_then_up,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_tenant_address_change_reconnects, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_tenant_garbage_counted_and_closed, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_tenant_wrong_key_is_drop_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_tenant_partial_frame_then_eof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net_tenant_no_service_drops,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_tenant_core_refusal_keeps_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net_tenant_idle_streams_close,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net_tenant_queue_cap, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_net_tenant_largest_frame,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_swim_push_pull_beside_tenant, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_stranger_first_frame_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_stranger_large_first_frame_within_budget, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_net_inbound_caps_replace_oldest_stranger, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net_frame_deadlines, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_net_emfile_sheds, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
