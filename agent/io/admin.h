/*
 * admin.h - the local admin socket (DIR/meshd.sock) that meshctl talks to.
 *
 * Protocol: the client writes one command line (at most ADMIN_LINE_MAX
 * bytes, ending in '\n'); the agent writes the answer and closes. An answer
 * that starts with "error: " is a failure. The socket file is created with
 * mode 0600: only the agent's user may ask.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include <stddef.h>
#include <uv.h>

#define ADMIN_LINE_MAX 256
#define ADMIN_SOCKET_NAME "meshd.sock"

/** A growable text buffer for answers. */
struct admin_buf {
	char *data;
	size_t len, cap;
	int failed; /* out of memory once: the answer is incomplete */
};

/** Appends formatted text. */
void admin_printf(struct admin_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Appends @s as a JSON string literal, quotes included. */
void admin_json_str(struct admin_buf *b, const char *s);

/**
 * Answers one command line (without '\n', NUL-terminated) into @out.
 * Called on the loop thread.
 */
typedef void admin_handler_fn(void *ctx, const char *line,
			      struct admin_buf *out);

struct admin {
	uv_pipe_t pipe;
	admin_handler_fn *handler;
	void *ctx;
	char path[4096];
};

/**
 * Listens on DIR/meshd.sock, replacing a stale socket file. Returns 0,
 * MESH_EINVAL (path too long) or MESH_EIO.
 */
int admin_start(struct admin *a, uv_loop_t *loop, const char *dir,
		admin_handler_fn *handler, void *ctx);

/** Stops listening and removes the socket file. */
void admin_stop(struct admin *a);

#endif
