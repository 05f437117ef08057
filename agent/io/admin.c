#include "admin.h"

#include "mesh_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct admin_client {
	uv_pipe_t pipe;
	struct admin *admin;
	char line[ADMIN_LINE_MAX + 1];
	size_t len;
	int answered;
};

struct admin_write {
	uv_write_t req;
	char *data;
};

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
		size_t ncap = b->cap ? b->cap * 2 : 4096;
		while (ncap - b->len <= (size_t)n)
			ncap *= 2;
		char *p = realloc(b->data, ncap);
		if (p == NULL) {
			b->failed = 1;
			return;
		}
		b->data = p;
		b->cap = ncap;
	}
}

void
admin_json_str(struct admin_buf *b, const char *s)
{
	admin_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			admin_printf(b, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			admin_printf(b, "\\u%04x", c);
		else
			admin_printf(b, "%c", c);
	}
	admin_printf(b, "\"");
}

static void
admin__closed(uv_handle_t *h)
{
	free(h->data);
}

static void
admin__written(uv_write_t *req, int status)
{
	struct admin_write *w = (struct admin_write *)req;
	(void)status;
	uv_close((uv_handle_t *)req->handle, admin__closed);
	free(w->data);
	free(w);
}

static void
admin__answer(struct admin_client *c)
{
	c->answered = 1;
	uv_read_stop((uv_stream_t *)&c->pipe);
	struct admin_buf out = {0};
	c->line[c->len] = 0;
	c->admin->handler(c->admin->ctx, c->line, &out);
	if (out.failed || out.len == 0) {
		free(out.data);
		out = (struct admin_buf){0};
		admin_printf(&out, "error: agent could not build the answer\n");
	}
	struct admin_write *w = malloc(sizeof(*w));
	if (w == NULL || out.failed) {
		free(w);
		free(out.data);
		uv_close((uv_handle_t *)&c->pipe, admin__closed);
		return;
	}
	w->data = out.data;
	uv_buf_t buf = uv_buf_init(out.data, (unsigned)out.len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1,
		     admin__written) != 0) {
		free(w->data);
		free(w);
		uv_close((uv_handle_t *)&c->pipe, admin__closed);
	}
}

static void
admin__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct admin_client *c = h->data;
	(void)suggested;
	*buf =
	    uv_buf_init(c->line + c->len, (unsigned)(ADMIN_LINE_MAX - c->len));
}

static void
admin__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct admin_client *c = s->data;
	(void)buf;
	if (c->answered)
		return;
	if (nread < 0) {
		if (c->len > 0 && nread == UV_EOF) {
			admin__answer(c);
			return;
		}
		uv_close((uv_handle_t *)s, admin__closed);
		return;
	}
	c->len += (size_t)nread;
	char *nl = memchr(c->line, '\n', c->len);
	if (nl != NULL) {
		c->len = (size_t)(nl - c->line);
		admin__answer(c);
	} else if (c->len == ADMIN_LINE_MAX) {
		/* A line this long is not a command we know. */
		c->len = 0;
		strcpy(c->line, "\x01too-long");
		admin__answer(c);
	}
}

static void
admin__connection(uv_stream_t *server, int status)
{
	struct admin *a = server->data;
	if (status < 0)
		return;
	struct admin_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->admin = a;
	uv_pipe_init(server->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, admin__alloc, admin__read) !=
		0)
		uv_close((uv_handle_t *)&c->pipe, admin__closed);
}

int
admin_start(struct admin *a, uv_loop_t *loop, const char *dir,
	    admin_handler_fn *handler, void *ctx)
{
	a->handler = handler;
	a->ctx = ctx;
	int n =
	    snprintf(a->path, sizeof(a->path), "%s/%s", dir, ADMIN_SOCKET_NAME);
	/* sun_path holds 108 bytes on Linux. */
	if (n < 0 || n >= 108)
		return MESH_EINVAL;
	unlink(
	    a->path); /* stale from a crash; the data-dir lock says we own it */
	uv_pipe_init(loop, &a->pipe, 0);
	a->pipe.data = a;
	mode_t old = umask(0077);
	int rc = uv_pipe_bind(&a->pipe, a->path);
	umask(old);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&a->pipe, 16, admin__connection);
	return rc == 0 ? 0 : MESH_EIO;
}

void
admin_stop(struct admin *a)
{
	uv_close((uv_handle_t *)&a->pipe, NULL);
	unlink(a->path);
}
