/*
 * hook.h - runs pack hook programs on the agent's libuv loop.
 *
 * meshd's --pack-hook EXEC is run as `EXEC ACTION NAME` (start, stop,
 * check) when a pack arrives on this node, leaves it, and periodically. This
 * module only runs them: it spawns each run with stdin from /dev/null and
 * stdout and stderr on one pipe, keeps the last HOOK_TAIL_MAX bytes of that
 * output, kills a run that takes too long, caps how many run at once and
 * queues the rest in order. Deciding what to run when is the caller's job.
 *
 * Process group: each run is made the leader of its own session and process
 * group (UV_PROCESS_DETACHED), so that a timeout or hook_runner_close()
 * signals the whole group: a shell script and the `sleep` it waits for die
 * together. A run's result does not wait for its group: when the hook
 * process itself exits, what it wrote is already in the pipe; the runner
 * reads what is readable at that moment (at most HOOK_DRAIN_MAX bytes),
 * closes its end of the pipe and reports. So a hook that leaves a
 * background process behind finishes when the hook exits, even if that
 * process still holds the hook's stdout; such a process then writes into
 * a pipe with no reader (EPIPE/SIGPIPE) and should redirect its output, as
 * scripts/pack-hook does. The runner never signals a group after its leader
 * has exited, so a background process that left the group (setsid) or
 * outlived a successful hook is left alone.
 */
#ifndef HOOK_H
#define HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Bytes of output kept per run: the last lines of stdout and stderr, enough
 * for an error message and a few lines of context in a log or a status
 * answer, small enough to keep per pack. */
#define HOOK_TAIL_MAX 1024
/* After the timeout the group gets SIGTERM, and SIGKILL this much later if
 * the hook is still running: time for a script to clean up, short enough
 * that a wedged hook does not hold a run slot for long. */
#define HOOK_KILL_GRACE_MS 2000
/* Runs waiting for a slot beyond which hook_run() refuses with MESH_EFULL:
 * a check per pack per period on a node with thousands of packs fits, a
 * runaway caller does not grow memory without end. */
#define HOOK_QUEUE_MAX 4096
/* Bytes read from the pipe once the hook has exited: everything the hook
 * wrote fits in a pipe buffer (at most 1 MiB on Linux), and a background
 * process that keeps writing cannot keep the runner reading. */
#define HOOK_DRAIN_MAX ((size_t)1 << 20)

/** An environment variable for one run: "KEY=VALUE", passed as is. */
struct hook_var {
	const char *key, *value;
};

/** What a run came to. */
struct hook_result {
	int exit_status; /* 0..255 when it exited; 0 when killed */
	int term_signal; /* signal that ended it, 0 if none */
	bool timed_out;	 /* signalled because it ran past the timeout */
	int spawn_error; /* not 0: could not start (a MESH_E... code), the
			    reason in tail; the other fields are 0 */
	uint64_t duration_ms;
	bool tail_truncated; /* older output was dropped */
	size_t tail_len;
	char tail[HOOK_TAIL_MAX + 1]; /* last lines of stdout+stderr, NUL-
					 terminated (output may hold NULs) */
};

/** Run counters since hook_runner_new(). */
struct hook_stats {
	uint64_t started;      /* taken out of the queue, spawn errors too */
	uint64_t ok;	       /* exited 0 within the timeout */
	uint64_t failed;       /* exited non-zero or by a signal, in time */
	uint64_t timed_out;    /* ran past the timeout */
	uint64_t spawn_errors; /* could not be started */
};

/**
 * Called once per run that hook_run() accepted, from the loop (never from
 * inside hook_run()), after every handle of the run is closed. @res is
 * borrowed for the call. May call hook_run() and hook_runner_close().
 */
typedef void hook_done_fn(void *ctx, uint64_t id,
			  const struct hook_result *res);

/** Called once, from the loop, when a closed runner is gone. */
typedef void hook_closed_fn(void *ctx);

struct hook_runner;

/**
 * Creates a runner of @exec on @loop. @exec is copied; @loop, @done and
 * @ctx are borrowed until the runner is gone (see hook_runner_close()).
 * At most @max_parallel (at least 1) runs at once; a run still going after
 * @timeout_ms is killed (0: no timeout). Handles exist only while runs
 * are going, so an idle runner does not keep the loop alive. Returns 0,
 * MESH_EINVAL or MESH_ENOMEM.
 */
int hook_runner_new(uv_loop_t *loop, const char *exec, unsigned max_parallel,
		    uint32_t timeout_ms, hook_done_fn *done, void *ctx,
		    struct hook_runner **out);

/**
 * Runs `exec @action @name` with the agent's environment (environ, read
 * when the run starts) plus @vars, which override variables of the same
 * name (a later var overrides an earlier one). Starts it now if fewer than
 * max_parallel runs are going, else queues it behind the others. Every
 * string is copied. @id is the caller's, echoed to done(). A program that
 * cannot be started is reported through done() like any run, with
 * spawn_error set. Returns 0; MESH_EINVAL (empty @action or @name, a key
 * that is empty or holds '='), MESH_EFULL (HOOK_QUEUE_MAX runs waiting),
 * MESH_ESTATE (runner closing) or MESH_ENOMEM; then done() is not called.
 */
int hook_run(struct hook_runner *h, uint64_t id, const char *action,
	     const char *name, const struct hook_var *vars, size_t nvars);

/* Runs beyond max_parallel that urgent runs may use. */
#define HOOK_URGENT_SLOTS 4

/**
 * hook_run(), but the run waits only behind other urgent runs, ahead of the
 * rest of the queue, and may use HOOK_URGENT_SLOTS more slots than
 * max_parallel: meshd stops packs that left the node this way, so that
 * after a partition heals the duplicates stop without waiting for routine
 * checks to end.
 */
int hook_run_urgent(struct hook_runner *h, uint64_t id, const char *action,
		    const char *name, const struct hook_var *vars,
		    size_t nvars);

/** Runs going now (spawned, or reporting a spawn error). */
size_t hook_running(const struct hook_runner *h);

/** Runs waiting for a slot. */
size_t hook_queued(const struct hook_runner *h);

/** The counters; @h is only read. */
struct hook_stats hook_runner_stats(const struct hook_runner *h);

/**
 * Closes the runner: queued runs are dropped, the process group of every
 * running hook gets SIGTERM (SIGKILL HOOK_KILL_GRACE_MS later), and done()
 * is never called again, not even for those. When every hook has exited
 * and every handle is closed, the runner frees itself and calls
 * @closed(ctx) (may be NULL) from the loop, never from inside this call;
 * until then the runner's handles keep the loop running, so uv_run() in
 * the default mode returns only after that, and the caller must run the
 * loop for it to happen. @h must not be used after this call. May be
 * called from done().
 */
void hook_runner_close(struct hook_runner *h, hook_closed_fn *closed);

#endif
