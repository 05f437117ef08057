/*
 * admin.h - the local admin socket (DIR/meshd.sock) that meshctl talks to.
 *
 * Protocol (version 2):
 *
 * - A connection carries any number of requests. A request is one line
 *   ending in '\n', at most ADMIN_LINE_MAX bytes before the '\n'; an
 *   unterminated last line before the client's EOF is a request too, so
 *   `printf status | socat - UNIX:meshd.sock` works.
 * - A line is tokens separated by single spaces (an empty line has none;
 *   two spaces in a row enclose an empty token). Each token is
 *   percent-encoded: a byte outside 0x21..0x7e, and '%' itself, is written
 *   %XX (uppercase hex; the agent also reads lowercase). So a token decodes
 *   to any byte string, NUL included. At most ADMIN_ARGS_MAX tokens.
 * - Every request gets exactly one answer, in request order, followed by
 *   one NUL byte. An answer that starts with "error: " is a failure; a
 *   malformed line gets one without reaching the handler. Answers never
 *   contain NUL themselves.
 * - The agent answers requests in order but may work on several at once:
 *   a handler can finish later (admin_req_done from another loop
 *   callback). With ADMIN_PENDING_MAX answers outstanding on a connection
 *   (or 8 MiB of answers the client has not read yet) the agent stops
 *   reading from it until they drain.
 * - After the client's EOF the agent writes the remaining answers and
 *   closes.
 *
 * The socket file is created with mode 0600: only the agent's user may ask.
 *
 * The agent answers even when the process is out of file descriptors: it
 * keeps one spare descriptor, and at EMFILE closes it to accept one client
 * in its place, taking it back when that client goes. Meanwhile further
 * clients wait in the listen backlog (accepting pauses and is retried every
 * ADMIN_ACCEPT_RETRY_MS), they are not refused.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Longest request line, '\n' excluded: a 64 KiB tenant value encodes to
 * at most 192 KiB, which leaves room for the command, key and capability. */
#define ADMIN_LINE_MAX 262144
/* Tokens in one request. */
#define ADMIN_ARGS_MAX 32
/* Answers a connection may have outstanding before the agent stops reading
 * from it: bounds the memory one client can pin. */
#define ADMIN_PENDING_MAX 4096
#define ADMIN_SOCKET_NAME "meshd.sock"
/* At the descriptor limit with the spare in use, accepting pauses this
 * long before it is tried again. */
#define ADMIN_ACCEPT_RETRY_MS 100

/** A growable text buffer for answers. */
struct admin_buf {
	char *data;
	size_t len, cap;
	int failed; /* out of memory once: the answer is incomplete */
};

/** One decoded token: @len bytes at @data, NUL-terminated after them. */
struct admin_arg {
	const char *data;
	size_t len;
};

/** One request of a connection, from its line until admin_req_done(). */
struct admin_req;

/**
 * Appends formatted text to @b. On out of memory sets b->failed and
 * appends nothing more; the answer is then replaced by an error.
 */
void admin_printf(struct admin_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Appends @s (NUL-terminated) as a JSON string literal, quotes included. */
void admin_json_str(struct admin_buf *b, const char *s);

/**
 * Appends @len bytes at @data (any bytes, NUL included) as a JSON string
 * literal: printable ASCII as is, '"' and '\\' escaped, every other byte
 * as \u00XX. A reader gets back one code point per byte.
 */
void admin_json_bytes(struct admin_buf *b, const void *data, size_t len);

/**
 * Answers one request: @argv[0..@argc) are its decoded tokens (@argc may be
 * 0 for an empty line), borrowed for the call only. The handler writes the
 * answer into admin_req_out(@req) and calls admin_req_done(@req), now or
 * later from another callback on the loop thread. Until then @req stays
 * valid, even if the client goes away.
 */
typedef void admin_handler_fn(void *ctx, struct admin_req *req, size_t argc,
			      const struct admin_arg *argv);

/**
 * The buffer for @req's answer; owned by @req, valid until
 * admin_req_done(@req).
 */
struct admin_buf *admin_req_out(struct admin_req *req);

/**
 * Finishes @req: its answer is sent once every earlier answer of the
 * connection is, or discarded when the client is gone. An empty answer, or
 * one that ran out of memory or contains a NUL byte, is replaced by an
 * "error: ..." line. Frees @req: do not use it afterwards. Loop thread.
 */
void admin_req_done(struct admin_req *req);

/**
 * True when @req's client has gone (or the socket was stopped): the answer
 * will be discarded, so a slow handler may skip the work. It must still
 * call admin_req_done().
 */
bool admin_req_is_orphan(const struct admin_req *req);

/**
 * The length of the percent-encoding of @len bytes at @data, NUL not
 * counted.
 */
size_t admin_arg_encoded_len(const void *data, size_t len);

/**
 * Percent-encodes @len bytes at @data as one token into @out (capacity
 * @cap), NUL-terminated. Returns the token's length (>= 0) or MESH_ETOOBIG
 * when @cap < admin_arg_encoded_len() + 1 or the length exceeds INT_MAX.
 */
int admin_arg_encode(const void *data, size_t len, char *out, size_t cap);

/**
 * Appends @len bytes at @data as one encoded token to @b, preceded by a
 * space unless @b is empty. Out of memory sets b->failed.
 */
void admin_arg_append(struct admin_buf *b, const void *data, size_t len);

/**
 * Splits the request line @line (@len bytes, no '\n') into tokens and
 * decodes them in place: argv[i].data point into @line, each followed by a
 * NUL written over its separator, so @line needs one writable byte after
 * @len. Returns 0 with *@argc set, MESH_EDECODE (a byte that should have
 * been %-encoded, or a malformed %-escape) or MESH_ERANGE (more than @max
 * tokens). On error *@why (not NULL) says why, for people.
 */
int admin_line_split(char *line, size_t len, struct admin_arg *argv, size_t max,
		     size_t *argc, const char **why);

struct admin_client;

struct admin {
	uv_poll_t listener; /* the listening socket: accepts are ours */
	uv_timer_t retry;   /* resumes accepting after a pause */
	int fd;		    /* the listening socket */
	int spare_fd;	    /* -1 while a client holds its place */
	bool paused;
	admin_handler_fn *handler;
	void *ctx;
	struct admin_client *clients; /* open connections */
	bool started;
	char path[4096];
};

/**
 * Listens on DIR/meshd.sock, replacing a stale socket file, and opens the
 * spare descriptor (/dev/null). @a is caller storage that must stay put
 * until admin_stop() and the loop has run the close callbacks; @dir is
 * copied. Returns 0, MESH_EINVAL (path too long) or MESH_EIO.
 */
int admin_start(struct admin *a, uv_loop_t *loop, const char *dir,
		admin_handler_fn *handler, void *ctx);

/**
 * Stops listening, closes every connection (requests not yet done become
 * orphans: admin_req_done() frees them later) and removes the socket file.
 */
void admin_stop(struct admin *a);

#endif
