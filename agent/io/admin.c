/*
 * admin.c - the admin socket: pipelined, percent-encoded request lines in,
 * NUL-terminated answers out, in request order (admin.h has the protocol).
 *
 * Per connection: one input buffer that grows up to one longest line
 * (ADMIN_LINE_MAX) only when a line needs it, and a queue of requests in
 * arrival order. A request's answer goes to the socket once it and every
 * request before it are done; a request stays counted in `pending` until
 * its write completed, so a client that sends without reading ends up
 * with its reads stopped rather than with unbounded answers in memory.
 *
 * Everything re-enters through admin__pump(): a handler that finishes
 * synchronously calls admin_req_done() inside the pump, which only flags
 * another round, so a long pipeline of synchronous requests runs in a loop
 * rather than in recursion.
 *
 * Accepting is ours (a uv_poll_t on the listening socket) rather than
 * uv_listen()'s: at EMFILE libuv accepts and closes every pending client,
 * which locks the operator out exactly when a flood of connections has
 * taken every descriptor. We keep a spare descriptor instead and give its
 * place to one client at a time (admin.h).
 */
#include "admin.h"

#include "mesh_err.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* First size of a connection's input buffer: every command but a tenant
 * write with a big value fits, so most connections never grow it. */
#define ADMIN_IN_FIRST 4096
/* Largest input buffer: one line of ADMIN_LINE_MAX, its '\n' and a spare
 * byte for the NUL after an unterminated last line. */
#define ADMIN_IN_MAX (ADMIN_LINE_MAX + 2)
/* Answer bytes a connection may have in flight before the agent stops
 * taking its requests: ADMIN_PENDING_MAX bounds the count, this the size
 * (a client pipelining `status --json` on a big cluster without reading
 * would otherwise pin thousands of large answers). */
#define ADMIN_WRITE_BYTES_MAX (8u << 20)
/* Clients taken per wake-up of the listener: bounded work per callback. */
#define ADMIN_ACCEPT_BATCH 16
/* Listen backlog: clients wait here while accepting is paused. */
#define ADMIN_BACKLOG 64

static const char admin_fallback[] =
    "error: agent could not build the answer\n";
static const char admin_nul_answer[] =
    "error: agent answer contained a NUL byte\n";

struct admin_req {
	uv_write_t write; /* the answer on its way out */
	struct admin_req *next;
	struct admin_client *client; /* NULL: the client is gone (orphan) */
	struct admin_buf out;
	const char *wire; /* what is written: out.data or a static text */
	size_t wire_len;
	bool done;
};

struct admin_client {
	uv_pipe_t pipe;
	struct admin *admin;
	struct admin_client *prev, *next; /* admin->clients */
	char *in;
	size_t in_off; /* start of bytes not yet consumed */
	size_t in_len; /* end of bytes read */
	size_t in_cap;
	size_t scanned; /* [in_off, scanned) holds no '\n' */
	bool skipping;	/* dropping the rest of a too-long line */
	/* Requests not yet handed to uv_write, oldest first. */
	struct admin_req *head, **tailp;
	size_t pending; /* requests from their line to their write's end */
	size_t writes;	/* writes in flight */
	size_t wbytes;	/* their bytes */
	bool reading, eof, closing;
	bool in_pump, again;
	bool spare; /* holds the place of the admin's spare descriptor */
};

/* ---- answers ------------------------------------------------------------ */

static bool
admin__reserve(struct admin_buf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->cap - b->len > n)
		return true;
	size_t ncap = b->cap ? b->cap : 4096;
	while (ncap - b->len <= n) {
		if (ncap > SIZE_MAX / 2) {
			b->failed = 1;
			return false;
		}
		ncap *= 2;
	}
	char *p = realloc(b->data, ncap);
	if (p == NULL) {
		b->failed = 1;
		return false;
	}
	b->data = p;
	b->cap = ncap;
	return true;
}

void
admin_printf(struct admin_buf *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n =
		    vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		if (!admin__reserve(b, (size_t)n))
			return;
	}
}

static void
admin__json_bytes(struct admin_buf *b, const unsigned char *s, size_t len)
{
	/* Worst case 6 bytes out per byte in, and the quotes. */
	if (len > (SIZE_MAX - 3) / 6 || !admin__reserve(b, len * 6 + 3))
		return;
	static const char hex[] = "0123456789abcdef";
	char *o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < 0x20 || c > 0x7e) {
			memcpy(o, "\\u00", 4);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			o += 6;
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	*o = 0;
	b->len = (size_t)(o - b->data);
}

void
admin_json_str(struct admin_buf *b, const char *s)
{
	admin__json_bytes(b, (const unsigned char *)s, strlen(s));
}

void
admin_json_bytes(struct admin_buf *b, const void *data, size_t len)
{
	admin__json_bytes(b, data, len);
}

/* ---- tokens ------------------------------------------------------------- */

static bool
admin__plain(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '%';
}

size_t
admin_arg_encoded_len(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += admin__plain(p[i]) ? 1 : 3;
	return n;
}

static void
admin__encode(const unsigned char *p, size_t len, char *o)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		if (admin__plain(p[i])) {
			*o++ = (char)p[i];
		} else {
			*o++ = '%';
			*o++ = hex[p[i] >> 4];
			*o++ = hex[p[i] & 15];
		}
	}
	*o = 0;
}

int
admin_arg_encode(const void *data, size_t len, char *out, size_t cap)
{
	size_t n = admin_arg_encoded_len(data, len);
	if (n >= cap || n > INT_MAX)
		return MESH_ETOOBIG;
	admin__encode(data, len, out);
	return (int)n;
}

void
admin_arg_append(struct admin_buf *b, const void *data, size_t len)
{
	size_t n = admin_arg_encoded_len(data, len);
	if (n > SIZE_MAX - 2 || !admin__reserve(b, n + 2))
		return;
	if (b->len > 0)
		b->data[b->len++] = ' ';
	admin__encode(data, len, b->data + b->len);
	b->len += n;
}

static int
admin__hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
admin_line_split(char *line, size_t len, struct admin_arg *argv, size_t max,
		 size_t *argc, const char **why)
{
	size_t n = 0;
	if (len == 0) {
		*argc = 0;
		return 0;
	}
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (n == max) {
			*why = "too many tokens";
			return MESH_ERANGE;
		}
		/* Decoding only shrinks, so it runs in place; the NUL lands
		 * on the separator (or the spare byte after the line). */
		size_t w = start;
		for (size_t r = start; r < i; r++) {
			unsigned char c = (unsigned char)line[r];
			if (c == '%') {
				int hi =
				    r + 2 < i ? admin__hex(line[r + 1]) : -1;
				int lo =
				    r + 2 < i ? admin__hex(line[r + 2]) : -1;
				if (hi < 0 || lo < 0) {
					*why = "malformed %-escape";
					return MESH_EDECODE;
				}
				c = (unsigned char)(hi << 4 | lo);
				r += 2;
			} else if (c < 0x21 || c > 0x7e) {
				*why = "a byte outside 0x21..0x7e must be "
				       "%-encoded";
				return MESH_EDECODE;
			}
			line[w++] = (char)c;
		}
		line[w] = 0;
		argv[n].data = line + start;
		argv[n].len = w - start;
		n++;
		start = i + 1;
	}
	*argc = n;
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

static void admin__pump(struct admin_client *c);
static void admin__close(struct admin_client *c);
static void admin__spare_back(struct admin *a);

static void
admin__req_free(struct admin_req *req)
{
	free(req->out.data);
	free(req);
}

struct admin_buf *
admin_req_out(struct admin_req *req)
{
	return &req->out;
}

bool
admin_req_is_orphan(const struct admin_req *req)
{
	return req->client == NULL;
}

void
admin_req_done(struct admin_req *req)
{
	assert(!req->done);
	req->done = true;
	struct admin_client *c = req->client;
	if (c == NULL) {
		admin__req_free(req);
		return;
	}
	admin__pump(c);
}

/* Makes req->wire: the answer and its NUL, or a static error text. */
static void
admin__finish(struct admin_req *req)
{
	struct admin_buf *b = &req->out;
	if (b->failed || b->len == 0 || !admin__reserve(b, 1)) {
		req->wire = admin_fallback;
		req->wire_len = sizeof(admin_fallback); /* with its NUL */
		return;
	}
	if (memchr(b->data, 0, b->len) != NULL) {
		req->wire = admin_nul_answer;
		req->wire_len = sizeof(admin_nul_answer);
		return;
	}
	b->data[b->len] = 0;
	req->wire = b->data;
	req->wire_len = b->len + 1;
}

static void
admin__written(uv_write_t *w, int status)
{
	struct admin_req *req = (struct admin_req *)w;
	struct admin_client *c = req->client;
	c->wbytes -= req->wire_len;
	admin__req_free(req);
	c->writes--;
	c->pending--;
	if (c->closing)
		return;
	if (status < 0)
		admin__close(c);
	else
		admin__pump(c);
}

/* Writes the answers at the head of the queue that are done. */
static void
admin__flush(struct admin_client *c)
{
	while (!c->closing && c->head != NULL && c->head->done) {
		struct admin_req *req = c->head;
		c->head = req->next;
		if (c->head == NULL)
			c->tailp = &c->head;
		admin__finish(req);
		uv_buf_t buf =
		    uv_buf_init((char *)req->wire, (unsigned)req->wire_len);
		if (uv_write(&req->write, (uv_stream_t *)&c->pipe, &buf, 1,
			     admin__written) != 0) {
			admin__req_free(req);
			c->pending--;
			admin__close(c);
			return;
		}
		c->writes++;
		c->wbytes += req->wire_len;
	}
}

/* Queues a request for the line at c->in + off (len bytes, NUL-able at
 * off + len) and hands it to the handler, or answers @error at once. */
static void
admin__request(struct admin_client *c, size_t off, size_t len,
	       const char *error)
{
	struct admin_req *req = calloc(1, sizeof(*req));
	if (req == NULL) {
		/* Without a request there is no answer to keep in order. */
		admin__close(c);
		return;
	}
	req->client = c;
	*c->tailp = req;
	c->tailp = &req->next;
	c->pending++;
	if (error != NULL) {
		admin_printf(&req->out, "error: %s\n", error);
		admin_req_done(req);
		return;
	}
	struct admin_arg argv[ADMIN_ARGS_MAX];
	size_t argc;
	const char *why;
	if (admin_line_split(c->in + off, len, argv, ADMIN_ARGS_MAX, &argc,
			     &why) != 0) {
		admin_printf(&req->out, "error: bad request: %s\n", why);
		admin_req_done(req);
		return;
	}
	c->admin->handler(c->admin->ctx, req, argc, argv);
}

/*
 * Takes the next line out of the input buffer and makes it a request.
 * Returns true when it consumed something (call again), false when it
 * needs more input.
 */
static bool
admin__next_line(struct admin_client *c)
{
	size_t avail = c->in_len - c->in_off;
	if (avail == 0)
		return false;
	char *start = c->in + c->in_off;
	if (c->skipping) {
		char *nl = memchr(start, '\n', avail);
		if (nl == NULL) {
			c->in_off = c->scanned = c->in_len;
			return false;
		}
		c->in_off += (size_t)(nl - start) + 1;
		c->scanned = c->in_off;
		c->skipping = false;
		return true;
	}
	if (c->scanned < c->in_off)
		c->scanned = c->in_off;
	char *nl = memchr(c->in + c->scanned, '\n', c->in_len - c->scanned);
	size_t len, used;
	if (nl != NULL) {
		len = (size_t)(nl - start);
		used = len + 1;
	} else if (avail > ADMIN_LINE_MAX) {
		admin__request(c, 0, 0,
			       "request line longer than 262144 bytes");
		c->in_off = c->scanned = c->in_len;
		c->skipping = true;
		return true;
	} else if (c->eof) {
		/* The unterminated last line; the buffer keeps a spare
		 * byte past in_len for its NUL. */
		len = used = avail;
	} else {
		c->scanned = c->in_len;
		return false;
	}
	if (len > ADMIN_LINE_MAX) {
		admin__request(c, 0, 0,
			       "request line longer than 262144 bytes");
	} else {
		if (len > 0 && start[len - 1] == '\r')
			len--; /* a raw CR is never part of a token */
		admin__request(c, c->in_off, len, NULL);
	}
	c->in_off += used;
	c->scanned = c->in_off;
	return true;
}

static void admin__read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void
admin__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct admin_client *c = h->data;
	(void)suggested;
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->scanned -= c->in_off;
		c->in_off = 0;
	}
	/* Grow when less than a quarter is free, never past one line. */
	if (c->in_cap < ADMIN_IN_MAX &&
	    (c->in_cap - c->in_len) * 4 <= c->in_cap) {
		size_t ncap = c->in_cap ? c->in_cap * 2 : ADMIN_IN_FIRST;
		if (ncap > ADMIN_IN_MAX)
			ncap = ADMIN_IN_MAX;
		char *p = realloc(c->in, ncap);
		if (p != NULL) {
			c->in = p;
			c->in_cap = ncap;
		}
	}
	/* Keep one byte spare for the NUL of an unterminated last line. */
	size_t room = c->in_cap > c->in_len ? c->in_cap - c->in_len - 1 : 0;
	*buf = uv_buf_init(room ? c->in + c->in_len : NULL, (unsigned)room);
}

static void
admin__read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct admin_client *c = s->data;
	(void)buf;
	if (c->closing)
		return;
	if (nread == UV_EOF) {
		c->eof = true;
		c->reading = false;
		uv_read_stop(s);
		admin__pump(c);
		return;
	}
	if (nread < 0) {
		/* Reset, or no buffer (cannot happen: reading stops before
		 * the buffer fills). Either way the client is gone. */
		admin__close(c);
		return;
	}
	c->in_len += (size_t)nread;
	admin__pump(c);
}

/* Drops a large input buffer once it is empty: an idle connection
 * should not keep a 256 KiB line's worth of memory. */
static void
admin__trim(struct admin_client *c)
{
	if (c->in_off == c->in_len && c->in_cap > ADMIN_IN_FIRST) {
		free(c->in);
		c->in = NULL;
		c->in_cap = c->in_len = c->in_off = c->scanned = 0;
	}
}

/* Backpressure: whether the connection may have another request. */
static bool
admin__may_take(const struct admin_client *c)
{
	return c->pending < ADMIN_PENDING_MAX &&
	       c->wbytes < ADMIN_WRITE_BYTES_MAX;
}

static void
admin__pump(struct admin_client *c)
{
	if (c->in_pump) {
		c->again = true;
		return;
	}
	c->in_pump = true;
	do {
		c->again = false;
		admin__flush(c);
		if (c->closing)
			break;
		if (admin__may_take(c) && admin__next_line(c))
			c->again = true;
	} while (c->again && !c->closing);
	c->in_pump = false;
	if (c->closing)
		return;
	admin__trim(c);
	bool want = !c->eof && admin__may_take(c);
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->pipe, admin__alloc,
				  admin__read_cb) != 0) {
			admin__close(c);
			return;
		}
		c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->reading = false;
	}
	/* Half-closed and everything answered: done. */
	if (c->eof && c->pending == 0 &&
	    (c->in_off == c->in_len || c->skipping))
		admin__close(c);
}

/* ---- connections -------------------------------------------------------- */

static void
admin__closed(uv_handle_t *h)
{
	struct admin_client *c = h->data;
	assert(c->writes == 0);
	free(c->in);
	free(c);
}

static void
admin__close(struct admin_client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->admin->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	/* Finished answers nobody will read go now; unfinished requests
	 * live on as orphans until their handler is done with them. */
	struct admin_req *req = c->head;
	while (req != NULL) {
		struct admin_req *next = req->next;
		c->pending--;
		if (req->done) {
			admin__req_free(req);
		} else {
			req->client = NULL;
			req->next = NULL;
		}
		req = next;
	}
	c->head = NULL;
	c->tailp = &c->head;
	/* Writes in flight are cancelled; their callbacks run before
	 * admin__closed. */
	uv_close((uv_handle_t *)&c->pipe, admin__closed);
	/* uv_close() has closed the descriptor: take its place back for
	 * the spare before anything else can. */
	if (c->spare)
		admin__spare_back(c->admin);
}

static void admin__accept_io(uv_poll_t *p, int status, int events);

static void
admin__resume(uv_timer_t *t)
{
	struct admin *a = t->data;
	if (!a->started || !a->paused)
		return;
	if (a->spare_fd < 0)
		a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	a->paused = false;
	uv_poll_start(&a->listener, UV_READABLE, admin__accept_io);
}

/* Stops accepting for ADMIN_ACCEPT_RETRY_MS: the listener would stay
 * readable and the loop would spin on it. */
static void
admin__pause(struct admin *a)
{
	if (a->paused)
		return;
	a->paused = true;
	uv_poll_stop(&a->listener);
	uv_timer_start(&a->retry, admin__resume, ADMIN_ACCEPT_RETRY_MS, 0);
}

/* The client that held the spare's place is gone. */
static void
admin__spare_back(struct admin *a)
{
	if (a->spare_fd < 0)
		a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (a->started && a->paused) {
		uv_timer_stop(&a->retry);
		admin__resume(&a->retry);
	}
}

/* Serves the accepted descriptor @fd; @spare: it took the spare's place. */
static void
admin__client_new(struct admin *a, int fd, bool spare)
{
	struct admin_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		if (spare)
			admin__spare_back(a);
		return;
	}
	c->admin = a;
	c->spare = spare;
	c->tailp = &c->head;
	uv_pipe_init(a->listener.loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = a->clients;
	if (a->clients != NULL)
		a->clients->prev = c;
	a->clients = c;
	if (uv_pipe_open(&c->pipe, fd) != 0) {
		close(fd);
		admin__close(c);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->pipe, admin__alloc,
			  admin__read_cb) != 0) {
		admin__close(c);
		return;
	}
	c->reading = true;
}

/* accept(), with the new descriptor closed on exec (hooks are spawned
 * from this process); uv_pipe_open() makes it non-blocking. */
static int
admin__accept(int fd)
{
	int cfd = accept(fd, NULL, NULL);
	if (cfd >= 0)
		(void)fcntl(cfd, F_SETFD, FD_CLOEXEC);
	return cfd;
}

static void
admin__accept_io(uv_poll_t *p, int status, int events)
{
	struct admin *a = p->data;
	(void)events;
	if (status < 0) {
		/* libuv stopped the poll; try again after a pause. */
		a->paused = false;
		admin__pause(a);
		return;
	}
	for (int i = 0; i < ADMIN_ACCEPT_BATCH; i++) {
		bool spare = false;
		int fd = admin__accept(a->fd);
		int err = errno;
		if (fd < 0 && (err == EMFILE || err == ENFILE) &&
		    a->spare_fd >= 0) {
			/* Out of descriptors: this client gets the spare's. */
			close(a->spare_fd);
			a->spare_fd = -1;
			fd = admin__accept(a->fd);
			err = errno;
			spare = fd >= 0;
			if (fd < 0)
				a->spare_fd =
				    open("/dev/null", O_RDONLY | O_CLOEXEC);
		}
		if (fd < 0) {
			if (err == EINTR || err == ECONNABORTED)
				continue;
			/* EMFILE with the spare in use, or worse: wait for
			 * the spare rather than spin. */
			if (err != EAGAIN && err != EWOULDBLOCK)
				admin__pause(a);
			return;
		}
		admin__client_new(a, fd, spare);
	}
}

int
admin_start(struct admin *a, uv_loop_t *loop, const char *dir,
	    admin_handler_fn *handler, void *ctx)
{
	a->handler = handler;
	a->ctx = ctx;
	a->clients = NULL;
	a->started = false;
	a->paused = false;
	a->fd = a->spare_fd = -1;
	int n =
	    snprintf(a->path, sizeof(a->path), "%s/%s", dir, ADMIN_SOCKET_NAME);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	/* sun_path holds 108 bytes on Linux. */
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return MESH_EINVAL;
	memcpy(sa.sun_path, a->path, (size_t)n + 1);
	/* Stale from a crash; the data-dir lock says we own it. */
	unlink(a->path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return MESH_EIO;
	mode_t old = umask(0077);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc == 0)
		rc = listen(fd, ADMIN_BACKLOG);
	if (rc == 0)
		rc = fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (rc == 0)
		rc = uv_poll_init_socket(loop, &a->listener, fd);
	if (rc != 0) {
		close(fd);
		unlink(a->path);
		return MESH_EIO;
	}
	a->fd = fd;
	a->listener.data = a;
	uv_timer_init(loop, &a->retry);
	a->retry.data = a;
	a->started = true;
	/* Taken now, while descriptors are plenty. */
	a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return uv_poll_start(&a->listener, UV_READABLE, admin__accept_io) == 0
		   ? 0
		   : MESH_EIO;
}

void
admin_stop(struct admin *a)
{
	if (!a->started)
		return;
	a->started = false;
	/* Answers already done go out first (uv_write hands them to the
	 * kernel at once when it can); the rest are dropped. */
	while (a->clients != NULL) {
		struct admin_client *c = a->clients;
		admin__flush(c);
		admin__close(c);
	}
	/* Closing a poll handle stops it at once: the descriptor may go. */
	uv_close((uv_handle_t *)&a->listener, NULL);
	uv_close((uv_handle_t *)&a->retry, NULL);
	close(a->fd);
	a->fd = -1;
	if (a->spare_fd >= 0)
		close(a->spare_fd);
	a->spare_fd = -1;
	unlink(a->path);
}
