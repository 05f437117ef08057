/*
 * hook.c - the runner of pack hook programs (hook.h).
 *
 * A run owns up to three handles: a timer (the timeout, then the SIGKILL
 * grace), the process and the read end of its output pipe. The pipe is made
 * here with uv_pipe() rather than by uv_spawn(), so that the child gets one
 * write end as both stdout and stderr and the tail keeps their interleaving.
 * A run is over when all of its handles are closed: that is where done() is
 * called, so a spawn error, found inside hook_run() or the queue pump, is
 * reported from a close callback like everything else and never from
 * inside hook_run().
 *
 * The run ends on the hook's exit, not on end-of-file: a background process
 * started by a hook may hold the write end for days. Once the hook is
 * reaped, everything it wrote is in the pipe (a write to a pipe returns
 * once the bytes are in the pipe buffer, and the hook cannot exit while
 * blocked in one), so a non-blocking drain after the exit loses nothing of
 * the hook's own output.
 */
#include "hook.h"

#include "mesh_err.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

enum hook_stage {
	HOOK_WAITING,	/* timer: the timeout, if any */
	HOOK_TERM_SENT, /* timer: the SIGKILL grace */
	HOOK_KILL_SENT,
};

struct hook_job {
	struct hook_job *next, *prev; /* queue (next only) or running list */
	struct hook_runner *h;
	uint64_t id;
	bool urgent;
	char *argv[4];
	uv_timer_t timer;
	uv_process_t proc;
	uv_pipe_t out;
	unsigned open; /* handles not closed yet */
	bool spawned, exited, reading;
	enum hook_stage stage;
	/* the byte before res.tail[0], once bytes are dropped */
	char tail_prev;
	uint64_t start_ns;
	struct hook_result res;
	size_t nvars;
	char *var[]; /* nvars "KEY=VALUE", then the strings themselves */
};

struct hook_runner {
	uv_loop_t *loop;
	char *exec;
	unsigned max_parallel;
	uint32_t timeout_ms;
	hook_done_fn *done;
	hook_closed_fn *closed;
	void *ctx;
	struct hook_job *running; /* doubly linked */
	size_t nrunning;
	struct hook_job *qhead, *qtail;
	struct hook_job *qfirst; /* last urgent job queued, or NULL */
	size_t nqueued;
	struct hook_stats stats;
	bool closing, defer_closed;
	uv_timer_t defer; /* exists from hook_runner_close() on, only so
			     that @closed comes from a close callback */
	char rbuf[65536]; /* read buffer; reads complete one at a time */
};

static void hook__pump(struct hook_runner *h);

static int
hook__err(int uverr)
{
	switch (uverr) {
	case UV_ENOENT:
		return MESH_ENOENT;
	case UV_ENOMEM:
		return MESH_ENOMEM;
	case UV_EMFILE:
	case UV_ENFILE:
	case UV_EAGAIN:
		return MESH_EAGAIN;
	default:
		return MESH_EIO;
	}
}

/* Keeps the last HOOK_TAIL_MAX bytes of everything added. */
static void
hook__tail_add(struct hook_job *job, const char *data, size_t len)
{
	struct hook_result *r = &job->res;
	if (len == 0)
		return;
	if (len >= HOOK_TAIL_MAX) {
		if (len > HOOK_TAIL_MAX) {
			job->tail_prev = data[len - HOOK_TAIL_MAX - 1];
			r->tail_truncated = true;
		} else if (r->tail_len > 0) {
			job->tail_prev = r->tail[r->tail_len - 1];
			r->tail_truncated = true;
		}
		memcpy(r->tail, data + len - HOOK_TAIL_MAX, HOOK_TAIL_MAX);
		r->tail_len = HOOK_TAIL_MAX;
		return;
	}
	if (r->tail_len + len > HOOK_TAIL_MAX) {
		size_t drop = r->tail_len + len - HOOK_TAIL_MAX;
		job->tail_prev = r->tail[drop - 1];
		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
		r->tail_truncated = true;
	}
	memcpy(r->tail + r->tail_len, data, len);
	r->tail_len += len;
}

/* When the start was cut, drops the partial first line, unless that line
 * is all there is. */
static void
hook__tail_finish(struct hook_job *job)
{
	struct hook_result *r = &job->res;
	if (r->tail_truncated && job->tail_prev != '\n' && r->tail_len > 1) {
		const char *nl = memchr(r->tail, '\n', r->tail_len - 1);
		if (nl != NULL) {
			size_t skip = (size_t)(nl - r->tail) + 1;
			memmove(r->tail, r->tail + skip, r->tail_len - skip);
			r->tail_len -= skip;
		}
	}
	r->tail[r->tail_len] = '\0';
}

static size_t
hook__keylen(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq != NULL ? (size_t)(eq - kv) : strlen(kv);
}

static bool
hook__same_key(const char *a, const char *b)
{
	size_t n = hook__keylen(a);
	return n == hook__keylen(b) && memcmp(a, b, n) == 0;
}

/* environ without what the vars override, then the vars, later ones
 * winning. The strings are borrowed: uv_spawn() copies them into the
 * child before it returns. */
static char **
hook__env(const struct hook_job *job)
{
	size_t n = 0;
	for (char **e = environ; e != NULL && *e != NULL; e++)
		n++;
	char **env = malloc((n + job->nvars + 1) * sizeof(*env));
	if (env == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool over = false;
		for (size_t v = 0; v < job->nvars && !over; v++)
			over = hook__same_key(environ[i], job->var[v]);
		if (!over)
			env[k++] = environ[i];
	}
	for (size_t v = 0; v < job->nvars; v++) {
		bool later = false;
		for (size_t w = v + 1; w < job->nvars && !later; w++)
			later = hook__same_key(job->var[v], job->var[w]);
		if (!later)
			env[k++] = job->var[v];
	}
	env[k] = NULL;
	return env;
}

static void
hook__running_unlink(struct hook_runner *h, struct hook_job *job)
{
	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		h->running = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	job->next = job->prev = NULL;
	h->nrunning--;
}

static void
hook__maybe_gone(struct hook_runner *h)
{
	if (!h->closing || !h->defer_closed || h->nrunning > 0)
		return;
	hook_closed_fn *closed = h->closed;
	void *ctx = h->ctx;
	free(h->exec);
	free(h);
	if (closed != NULL)
		closed(ctx);
}

static void
hook__defer_closed(uv_handle_t *handle)
{
	struct hook_runner *h = handle->data;
	h->defer_closed = true;
	hook__maybe_gone(h);
}

/* All handles of the run are closed: report it and free it. */
static void
hook__finish(struct hook_job *job)
{
	struct hook_runner *h = job->h;
	struct hook_result *r = &job->res;
	hook__running_unlink(h, job);
	hook__tail_finish(job);
	if (r->spawn_error != 0)
		h->stats.spawn_errors++;
	else if (r->timed_out)
		h->stats.timed_out++;
	else if (r->exit_status == 0 && r->term_signal == 0)
		h->stats.ok++;
	else
		h->stats.failed++;
	if (!h->closing && h->done != NULL)
		h->done(h->ctx, job->id, r);
	free(job);
	hook__pump(h);
	hook__maybe_gone(h);
}

static void
hook__handle_closed(uv_handle_t *handle)
{
	struct hook_job *job = handle->data;
	if (--job->open == 0)
		hook__finish(job);
}

static void
hook__close(struct hook_job *job, uv_handle_t *handle)
{
	handle->data = job;
	uv_close(handle, hook__handle_closed);
}

/* Signals the hook's process group; only while the hook is not reaped, so
 * the group id cannot name someone else's group. */
static void
hook__kill(struct hook_job *job, int sig)
{
	if (!job->spawned || job->exited)
		return;
	if (uv_kill(-job->proc.pid, sig) != 0)
		uv_process_kill(&job->proc, sig);
}

static void
hook__timer_cb(uv_timer_t *t)
{
	struct hook_job *job = t->data;
	if (job->stage == HOOK_WAITING) {
		job->res.timed_out = true;
		job->stage = HOOK_TERM_SENT;
		hook__kill(job, SIGTERM);
		uv_timer_start(&job->timer, hook__timer_cb, HOOK_KILL_GRACE_MS,
			       0);
	} else if (job->stage == HOOK_TERM_SENT) {
		job->stage = HOOK_KILL_SENT;
		hook__kill(job, SIGKILL);
	}
}

static void
hook__stop_reading(struct hook_job *job)
{
	if (!job->reading)
		return;
	job->reading = false;
	uv_read_stop((uv_stream_t *)&job->out);
	hook__close(job, (uv_handle_t *)&job->out);
}

static void
hook__alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct hook_job *job = handle->data;
	(void)suggested;
	buf->base = job->h->rbuf;
	buf->len = sizeof(job->h->rbuf);
}

static void
hook__read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct hook_job *job = stream->data;
	if (nread > 0)
		hook__tail_add(job, buf->base, (size_t)nread);
	else if (nread < 0)
		hook__stop_reading(job); /* EOF: every writer is gone */
}

/* Reads what is in the pipe now, without waiting for writers that are
 * still around (see the top of the file). */
static void
hook__drain(struct hook_job *job)
{
	uv_os_fd_t fd;
	if (!job->reading || uv_fileno((uv_handle_t *)&job->out, &fd) != 0)
		return;
	char *buf = job->h->rbuf;
	size_t total = 0;
	while (total < HOOK_DRAIN_MAX) {
		ssize_t n = read(fd, buf, sizeof(job->h->rbuf));
		if (n > 0) {
			hook__tail_add(job, buf, (size_t)n);
			total += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			break; /* EOF, EAGAIN (a writer is left) or an error */
		}
	}
}

static void
hook__exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
	struct hook_job *job = proc->data;
	job->exited = true;
	job->res.exit_status = (int)exit_status;
	job->res.term_signal = term_signal;
	job->res.duration_ms = (uv_hrtime() - job->start_ns) / 1000000;
	hook__drain(job);
	hook__stop_reading(job);
	uv_timer_stop(&job->timer);
	hook__close(job, (uv_handle_t *)&job->timer);
	hook__close(job, (uv_handle_t *)proc);
}

/* The run could not start: the reason goes to done() once the handles
 * made so far (the timer, and the process when @proc_init) are closed. */
static void
hook__spawn_failed(struct hook_job *job, bool proc_init, const char *what,
		   int uverr)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "cannot run %s: %s%s\n", job->argv[0], what,
		 uv_strerror(uverr));
	job->res.spawn_error = hook__err(uverr);
	hook__tail_add(job, msg, strlen(msg));
	hook__close(job, (uv_handle_t *)&job->timer);
	if (proc_init)
		hook__close(job, (uv_handle_t *)&job->proc);
}

static void
hook__start(struct hook_runner *h, struct hook_job *job)
{
	job->next = h->running;
	job->prev = NULL;
	if (h->running != NULL)
		h->running->prev = job;
	h->running = job;
	h->nrunning++;
	h->stats.started++;
	job->start_ns = uv_hrtime();

	uv_timer_init(h->loop, &job->timer);
	job->timer.data = job;
	job->open = 1;

	uv_file fds[2];
	int rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
	if (rc != 0) {
		hook__spawn_failed(job, false, "pipe: ", rc);
		return;
	}
	char **env = hook__env(job);
	if (env == NULL) {
		close(fds[0]);
		close(fds[1]);
		hook__spawn_failed(job, false, "", UV_ENOMEM);
		return;
	}
	uv_stdio_container_t stdio[3];
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = fds[1];
	stdio[2] = stdio[1];
	uv_process_options_t opts;
	memset(&opts, 0, sizeof(opts));
	opts.exit_cb = hook__exit_cb;
	opts.file = job->argv[0];
	opts.args = job->argv;
	opts.env = env;
	/* Own session and process group: see hook.h. */
	opts.flags = UV_PROCESS_DETACHED;
	opts.stdio_count = 3;
	opts.stdio = stdio;
	/* uv_spawn() initialises the handle even when it fails. */
	rc = uv_spawn(h->loop, &job->proc, &opts);
	job->proc.data = job;
	job->open++;
	close(fds[1]);
	free(env);
	if (rc != 0) {
		close(fds[0]);
		hook__spawn_failed(job, true, "", rc);
		return;
	}
	job->spawned = true;

	uv_pipe_init(h->loop, &job->out, 0);
	job->out.data = job;
	job->open++;
	if (uv_pipe_open(&job->out, fds[0]) != 0 ||
	    uv_read_start((uv_stream_t *)&job->out, hook__alloc_cb,
			  hook__read_cb) != 0) {
		/* Not attached when uv_pipe_open() fails; the output is lost,
		 * the run goes on. */
		int fd;
		if (uv_fileno((uv_handle_t *)&job->out, &fd) != 0)
			close(fds[0]);
		hook__close(job, (uv_handle_t *)&job->out);
	} else {
		job->reading = true;
	}
	if (h->timeout_ms > 0)
		uv_timer_start(&job->timer, hook__timer_cb, h->timeout_ms, 0);
}

static void
hook__pump(struct hook_runner *h)
{
	/* Urgent runs also have slots of their own: a stop does not wait
	 * for slow checks to end. */
	while (!h->closing && h->qhead != NULL &&
	       h->nrunning < h->max_parallel +
				 (h->qhead->urgent ? HOOK_URGENT_SLOTS : 0)) {
		struct hook_job *job = h->qhead;
		h->qhead = job->next;
		if (h->qhead == NULL)
			h->qtail = NULL;
		if (h->qfirst == job)
			h->qfirst = NULL;
		h->nqueued--;
		hook__start(h, job);
	}
}

int
hook_runner_new(uv_loop_t *loop, const char *exec, unsigned max_parallel,
		uint32_t timeout_ms, hook_done_fn *done, void *ctx,
		struct hook_runner **out)
{
	if (out == NULL)
		return MESH_EINVAL;
	*out = NULL;
	if (loop == NULL || exec == NULL || exec[0] == '\0' ||
	    max_parallel == 0)
		return MESH_EINVAL;
	struct hook_runner *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return MESH_ENOMEM;
	h->exec = strdup(exec);
	if (h->exec == NULL) {
		free(h);
		return MESH_ENOMEM;
	}
	h->loop = loop;
	h->max_parallel = max_parallel;
	h->timeout_ms = timeout_ms;
	h->done = done;
	h->ctx = ctx;
	*out = h;
	return 0;
}

/* Copies @len bytes of @s and a NUL to *@p; returns the copy. */
static char *
hook__put(char **p, const char *s, size_t len)
{
	char *at = *p;
	memcpy(at, s, len);
	at[len] = '\0';
	*p += len + 1;
	return at;
}

static int
hook__run(struct hook_runner *h, uint64_t id, const char *action,
	  const char *name, const struct hook_var *vars, size_t nvars,
	  bool urgent)
{
	if (h == NULL || action == NULL || action[0] == '\0' || name == NULL ||
	    name[0] == '\0' || (vars == NULL && nvars > 0))
		return MESH_EINVAL;
	if (h->closing)
		return MESH_ESTATE;
	if (h->nqueued >= HOOK_QUEUE_MAX)
		return MESH_EFULL;
	if (nvars > (SIZE_MAX / 2) / sizeof(char *))
		return MESH_EINVAL;
	size_t alen = strlen(action), nlen = strlen(name);
	size_t bytes = nvars * sizeof(char *) + alen + 1 + nlen + 1;
	for (size_t i = 0; i < nvars; i++) {
		if (vars[i].key == NULL || vars[i].value == NULL ||
		    vars[i].key[0] == '\0' || strchr(vars[i].key, '=') != NULL)
			return MESH_EINVAL;
		size_t kv = strlen(vars[i].key) + 1 + strlen(vars[i].value) + 1;
		if (kv > SIZE_MAX / 2 - bytes)
			return MESH_EINVAL;
		bytes += kv;
	}
	if (bytes > SIZE_MAX - sizeof(struct hook_job))
		return MESH_EINVAL;
	struct hook_job *job = calloc(1, sizeof(*job) + bytes);
	if (job == NULL)
		return MESH_ENOMEM;
	job->h = h;
	job->id = id;
	job->urgent = urgent;
	job->nvars = nvars;
	char *p = (char *)&job->var[nvars];
	job->argv[0] = h->exec;
	job->argv[1] = hook__put(&p, action, alen);
	job->argv[2] = hook__put(&p, name, nlen);
	job->argv[3] = NULL;
	for (size_t i = 0; i < nvars; i++) {
		size_t klen = strlen(vars[i].key);
		job->var[i] = hook__put(&p, vars[i].key, klen);
		p[-1] = '='; /* the value follows the key in place of its NUL */
		hook__put(&p, vars[i].value, strlen(vars[i].value));
	}
	/* Urgent jobs go behind the urgent ones already waiting, before
	 * the rest; others at the end. */
	struct hook_job *after = urgent ? h->qfirst : h->qtail;
	if (urgent && after == NULL) {
		job->next = h->qhead;
		h->qhead = job;
	} else {
		job->next = after != NULL ? after->next : NULL;
		if (after != NULL)
			after->next = job;
		else
			h->qhead = job;
	}
	if (job->next == NULL)
		h->qtail = job;
	if (urgent)
		h->qfirst = job;
	h->nqueued++;
	hook__pump(h);
	return 0;
}

int
hook_run(struct hook_runner *h, uint64_t id, const char *action,
	 const char *name, const struct hook_var *vars, size_t nvars)
{
	return hook__run(h, id, action, name, vars, nvars, false);
}

int
hook_run_urgent(struct hook_runner *h, uint64_t id, const char *action,
		const char *name, const struct hook_var *vars, size_t nvars)
{
	return hook__run(h, id, action, name, vars, nvars, true);
}

size_t
hook_running(const struct hook_runner *h)
{
	return h->nrunning;
}

size_t
hook_queued(const struct hook_runner *h)
{
	return h->nqueued;
}

struct hook_stats
hook_runner_stats(const struct hook_runner *h)
{
	return h->stats;
}

void
hook_runner_close(struct hook_runner *h, hook_closed_fn *closed)
{
	if (h == NULL || h->closing)
		return;
	h->closing = true;
	h->closed = closed;
	while (h->qhead != NULL) {
		struct hook_job *job = h->qhead;
		h->qhead = job->next;
		free(job);
	}
	h->qtail = NULL;
	h->qfirst = NULL;
	h->nqueued = 0;
	for (struct hook_job *job = h->running; job != NULL; job = job->next) {
		if (!job->spawned || job->exited || job->stage != HOOK_WAITING)
			continue;
		job->stage = HOOK_TERM_SENT;
		hook__kill(job, SIGTERM);
		uv_timer_start(&job->timer, hook__timer_cb, HOOK_KILL_GRACE_MS,
			       0);
	}
	uv_timer_init(h->loop, &h->defer);
	h->defer.data = h;
	uv_close((uv_handle_t *)&h->defer, hook__defer_closed);
}
