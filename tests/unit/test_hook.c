/*
 * test_hook.c - agent/io/hook: running pack hook programs on a real libuv
 * loop.
 *
 * Each test gets its own loop and a mkdtemp() directory, writes small
 * /bin/sh hooks there and runs the loop until the runner reports. Every
 * wait is bounded by a guard timer, so a broken runner fails a test rather
 * than hanging it. Processes a hook leaves behind on purpose have their
 * pid written to a file; the test kills them by that pid, and the teardown
 * kills any a failed test left.
 *
 * Real processes and real time: what is tested (pipes, process groups,
 * signals) is the kernel's and libuv's behaviour, which a fake would only
 * restate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hook.h"
#include "mesh_err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef MESH_SOURCE_DIR
#define MESH_SOURCE_DIR "."
#endif

#define T_MAX_DONE 16
#define T_MAX_PIDS 16

struct t_done {
	uint64_t id;
	uint64_t at_ms; /* since the fixture started */
	struct hook_result res;
};

struct fx {
	uv_loop_t loop;
	uv_timer_t guard;
	bool guard_fired;
	struct hook_runner *h;
	char dir[256];
	char path[512]; /* scratch for t_path() */
	uint64_t t0_ns;
	struct t_done done[T_MAX_DONE];
	size_t ndone;
	bool in_run;		/* inside hook_run() */
	size_t reentrant;	/* done() called inside hook_run() */
	bool close_in_done;	/* done() closes the runner */
	bool closed;		/* closed() was called */
	pid_t pids[T_MAX_PIDS]; /* to kill in the teardown */
	size_t npids;
};

/* ---- helpers ------------------------------------------------------------- */

static uint64_t
t_ms(const struct fx *fx)
{
	return (uv_hrtime() - fx->t0_ns) / 1000000;
}

static void
t_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *
t_path(struct fx *fx, const char *name)
{
	snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, name);
	return fx->path;
}

/* Writes a /bin/sh script @name with @body into the test directory, with
 * @mode; returns its path (a copy the caller keeps in @out). */
static void
t_script(struct fx *fx, const char *name, const char *body, mode_t mode,
	 char *out, size_t outcap)
{
	snprintf(out, outcap, "%s/%s", fx->dir, name);
	FILE *f = fopen(out, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(out, mode), 0);
}

static bool
t_file_exists(struct fx *fx, const char *name)
{
	struct stat st;
	return stat(t_path(fx, name), &st) == 0 && st.st_size > 0;
}

/* Reads a whole small file into @buf; returns its length or -1. */
static long
t_read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (long)n;
}

static pid_t
t_read_pid(struct fx *fx, const char *name)
{
	char buf[64];
	if (t_read_file(t_path(fx, name), buf, sizeof(buf)) <= 0)
		return -1;
	return (pid_t)atol(buf);
}

static void
t_track_pid(struct fx *fx, pid_t pid)
{
	if (pid > 0 && fx->npids < T_MAX_PIDS)
		fx->pids[fx->npids++] = pid;
}

/* Exists and is not a zombie: an orphan killed here waits for init to
 * reap it, and init may be slow. */
static bool
t_alive(pid_t pid)
{
	if (pid <= 0 || kill(pid, 0) != 0)
		return false;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (t_read_file(path, buf, sizeof(buf)) <= 0)
		return kill(pid, 0) == 0; /* no /proc */
	const char *rp = strrchr(buf, ')');
	return rp == NULL || rp[1] != ' ' || rp[2] != 'Z';
}

static bool
t_wait_dead(pid_t pid, unsigned ms)
{
	for (unsigned i = 0; i < ms / 10 && t_alive(pid); i++)
		t_sleep_ms(10);
	return !t_alive(pid);
}

static int
t_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void
t_rm_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			char sub[1024];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			struct stat st;
			if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
				t_rm_tree(sub);
			else
				unlink(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

static void
t_done_cb(void *ctx, uint64_t id, const struct hook_result *res)
{
	struct fx *fx = ctx;
	if (fx->in_run)
		fx->reentrant++;
	assert_true(fx->ndone < T_MAX_DONE);
	struct t_done *d = &fx->done[fx->ndone++];
	d->id = id;
	d->at_ms = t_ms(fx);
	d->res = *res;
	if (fx->close_in_done && fx->h != NULL) {
		hook_runner_close(fx->h, NULL);
		fx->h = NULL;
	}
}

static void
t_closed_cb(void *ctx)
{
	struct fx *fx = ctx;
	fx->closed = true;
}

static void
t_guard_cb(uv_timer_t *t)
{
	struct fx *fx = t->data;
	fx->guard_fired = true;
}

/* Runs the loop until @n runs are reported or @ms pass. */
static bool
t_run_until(struct fx *fx, size_t n, uint64_t ms)
{
	fx->guard_fired = false;
	uv_timer_start(&fx->guard, t_guard_cb, ms, 0);
	while (fx->ndone < n && !fx->guard_fired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_timer_stop(&fx->guard);
	return fx->ndone >= n;
}

/* Runs the loop without waiting until @name exists or @ms pass. */
static bool
t_run_until_file(struct fx *fx, const char *name, unsigned ms)
{
	for (unsigned i = 0; i < ms / 10; i++) {
		uv_run(&fx->loop, UV_RUN_NOWAIT);
		if (t_file_exists(fx, name))
			return true;
		t_sleep_ms(10);
	}
	return false;
}

static int
t_run(struct fx *fx, uint64_t id, const char *action, const char *name,
      const struct hook_var *vars, size_t nvars)
{
	fx->in_run = true;
	int rc = hook_run(fx->h, id, action, name, vars, nvars);
	fx->in_run = false;
	return rc;
}

static const struct t_done *
t_find(const struct fx *fx, uint64_t id)
{
	for (size_t i = 0; i < fx->ndone; i++)
		if (fx->done[i].id == id)
			return &fx->done[i];
	fail_msg("no result for run %llu", (unsigned long long)id);
	return NULL;
}

static int
t_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	uv_timer_init(&fx->loop, &fx->guard);
	fx->guard.data = fx;
	const char *tmp = getenv("TMPDIR");
	snprintf(fx->dir, sizeof(fx->dir), "%s/test_hook.XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	fx->t0_ns = uv_hrtime();
	*state = fx;
	return 0;
}

static void
t_walk_close(uv_handle_t *handle, void *arg)
{
	(void)arg;
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

static int
t_teardown(void **state)
{
	struct fx *fx = *state;
	if (fx->h != NULL) {
		hook_runner_close(fx->h, NULL);
		fx->h = NULL;
	}
	uv_close((uv_handle_t *)&fx->guard, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	uv_walk(&fx->loop, t_walk_close, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(&fx->loop);
	for (size_t i = 0; i < fx->npids; i++)
		if (t_alive(fx->pids[i]))
			kill(fx->pids[i], SIGKILL);
	t_rm_tree(fx->dir);
	free(fx);
	return rc == 0 ? 0 : -1;
}

static void
t_new(struct fx *fx, const char *exec, unsigned max_parallel,
      uint32_t timeout_ms)
{
	assert_int_equal(hook_runner_new(&fx->loop, exec, max_parallel,
					 timeout_ms, t_done_cb, fx, &fx->h),
			 0);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_hook_exit_status(void **state)
{
	struct fx *fx = *state;
	char exec[512];
	t_script(fx, "hook", "echo out; echo err >&2; exit \"$HOOK_EXIT\"",
		 0755, exec, sizeof(exec));
	t_new(fx, exec, 4, 10000);
	struct hook_var ok = {"HOOK_EXIT", "0"}, bad = {"HOOK_EXIT", "3"};
	assert_int_equal(t_run(fx, 1, "check", "p", &ok, 1), 0);
	assert_int_equal(t_run(fx, 2, "check", "p", &bad, 1), 0);
	assert_int_equal(hook_running(fx->h), 2);
	assert_true(t_run_until(fx, 2, 5000));
	const struct t_done *d1 = t_find(fx, 1), *d2 = t_find(fx, 2);
	assert_int_equal(d1->res.exit_status, 0);
	assert_int_equal(d2->res.exit_status, 3);
	for (int i = 0; i < 2; i++) {
		const struct hook_result *r = &fx->done[i].res;
		assert_int_equal(r->term_signal, 0);
		assert_false(r->timed_out);
		assert_int_equal(r->spawn_error, 0);
		assert_false(r->tail_truncated);
		assert_string_equal(r->tail, "out\nerr\n");
		assert_int_equal(r->tail_len, 8);
	}
	struct hook_stats st = hook_runner_stats(fx->h);
	assert_int_equal(st.started, 2);
	assert_int_equal(st.ok, 1);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.timed_out + st.spawn_errors, 0);
	assert_int_equal(hook_running(fx->h), 0);
	assert_int_equal(fx->reentrant, 0);
	/* bad input is refused and reported by nobody */
	struct hook_var eq = {"A=B", "x"}, empty = {"", "x"};
	assert_int_equal(t_run(fx, 3, "", "p", NULL, 0), MESH_EINVAL);
	assert_int_equal(t_run(fx, 3, "check", "", NULL, 0), MESH_EINVAL);
	assert_int_equal(t_run(fx, 3, "check", "p", &eq, 1), MESH_EINVAL);
	assert_int_equal(t_run(fx, 3, "check", "p", &empty, 1), MESH_EINVAL);
	assert_int_equal(hook_running(fx->h) + hook_queued(fx->h), 0);
}

static void
test_hook_tail_keeps_last_lines(void **state)
{
	struct fx *fx = *state;
	char exec[512];
	t_script(fx, "hook",
		 "if [ \"$1\" = lines ]; then\n"
		 "  i=0; while [ $i -lt 10000 ]; do echo \"line $i\" >&$(( i % "
		 "2 + 1 )); i=$((i + 1)); done\n"
		 "else\n"
		 "  head -c 100000 /dev/zero | tr '\\0' x\n"
		 "fi",
		 0755, exec, sizeof(exec));
	t_new(fx, exec, 2, 30000);
	assert_int_equal(t_run(fx, 1, "lines", "p", NULL, 0), 0);
	assert_int_equal(t_run(fx, 2, "oneline", "p", NULL, 0), 0);
	assert_true(t_run_until(fx, 2, 20000));

	const struct hook_result *r = &t_find(fx, 1)->res;
	assert_int_equal(r->exit_status, 0);
	assert_true(r->tail_truncated);
	assert_true(r->tail_len <= HOOK_TAIL_MAX);
	assert_true(r->tail_len > HOOK_TAIL_MAX - 16); /* one line dropped */
	assert_int_equal(strlen(r->tail), r->tail_len);
	/* whole consecutive lines, from stdout and stderr, up to the last */
	const char *p = r->tail;
	long prev = -1;
	while (*p != '\0') {
		int n = -1, used = 0;
		assert_int_equal(sscanf(p, "line %d\n%n", &n, &used), 1);
		assert_true(used > 0);
		if (prev >= 0)
			assert_int_equal(n, prev + 1);
		prev = n;
		p += used;
	}
	assert_int_equal(prev, 9999);

	/* one endless line: no line boundary to cut at, the last bytes */
	r = &t_find(fx, 2)->res;
	assert_int_equal(r->exit_status, 0);
	assert_true(r->tail_truncated);
	assert_int_equal(r->tail_len, HOOK_TAIL_MAX);
	for (size_t i = 0; i < r->tail_len; i++)
		assert_int_equal(r->tail[i], 'x');
	assert_int_equal(r->tail[HOOK_TAIL_MAX], '\0');
}

static void
test_hook_env_and_argv(void **state)
{
	struct fx *fx = *state;
	char exec[512];
	t_script(fx, "hook",
		 "printf '%s|%s|%s|%s|%s|%s\\n' \"$1\" \"$2\" \"$#\" "
		 "\"$HOOK_T_OVER\" \"$HOOK_T_KEEP\" \"$HOOK_T_NEW\"\n"
		 "env | grep -c '^HOOK_T_OVER='",
		 0755, exec, sizeof(exec));
	assert_int_equal(setenv("HOOK_T_OVER", "agent", 1), 0);
	assert_int_equal(setenv("HOOK_T_KEEP", "kept", 1), 0);
	t_new(fx, exec, 1, 10000);
	struct hook_var vars[] = {
	    {"HOOK_T_OVER", "first"},
	    {"HOOK_T_NEW", " a b=c $X 'q' "},
	    {"HOOK_T_OVER", "hook"}, /* the later one wins */
	};
	assert_int_equal(t_run(fx, 7, "start", "pack one", vars, 3), 0);
	assert_true(t_run_until(fx, 1, 5000));
	unsetenv("HOOK_T_OVER");
	unsetenv("HOOK_T_KEEP");
	const struct hook_result *r = &t_find(fx, 7)->res;
	assert_int_equal(r->exit_status, 0);
	assert_string_equal(r->tail,
			    "start|pack one|2|hook|kept| a b=c $X 'q' \n1\n");
}

static void
test_hook_timeout_kills_group(void **state)
{
	struct fx *fx = *state;
	char exec[512];
	t_script(fx, "hook",
		 "sleep 30 & echo $! > \"$HOOK_DIR/child.pid\"\n"
		 "echo waiting\nwait",
		 0755, exec, sizeof(exec));
	t_new(fx, exec, 1, 300);
	struct hook_var v = {"HOOK_DIR", fx->dir};
	assert_int_equal(t_run(fx, 1, "start", "p", &v, 1), 0);
	assert_true(t_run_until(fx, 1, 5000));
	pid_t child = t_read_pid(fx, "child.pid");
	t_track_pid(fx, child);
	const struct t_done *d = t_find(fx, 1);
	assert_true(d->res.timed_out);
	assert_int_equal(d->res.term_signal, SIGTERM);
	assert_int_equal(d->res.spawn_error, 0);
	assert_string_equal(d->res.tail, "waiting\n");
	assert_true(d->res.duration_ms >= 290);
	assert_true(d->at_ms >= 290 && d->at_ms < 1500);
	/* the signal went to the group: the hook's own child is gone too */
	assert_true(child > 0);
	assert_true(t_wait_dead(child, 2000));
	struct hook_stats st = hook_runner_stats(fx->h);
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.ok + st.failed + st.spawn_errors, 0);
}

static void
test_hook_timeout_then_sigkill(void **state)
{
	struct fx *fx = *state;
	char exec[512];
	/* TERM ignored by the hook and, inherited, by its child */
	t_script(fx, "hook",
		 "trap '' TERM\n"
		 "sleep 30 & echo $! > \"$HOOK_DIR/child.pid\"\nwait",
		 0755, exec, sizeof(exec));
	t_new(fx, exec, 1, 200);
	struct hook_var v = {"HOOK_DIR", fx->dir};
	assert_int_equal(t_run(fx, 1, "start", "p", &v, 1), 0);
	assert_true(t_run_until(fx, 1, 8000));
	t_track_pid(fx, t_read_pid(fx, "child.pid"));
	const struct t_done *d = t_find(fx, 1);
	assert_true(d->res.timed_out);
	assert_int_equal(d->res.term_signal, SIGKILL);
	assert_true(d->at_ms >= 200 + HOOK_KILL_GRACE_MS - 10);
	assert_true(d->at_ms < 200 + HOOK_KILL_GRACE_MS + 1500);
	assert_true(t_wait_dead(fx->pids[0], 2000));
}

static void
test_hook_spawn_error_async(void **state)
{
	struct fx *fx = *state;
	char missing[512], noexec[512], want[700];
	snprintf(missing, sizeof(missing), "%s/no/such/hook", fx->dir);
	t_new(fx, missing, 1, 1000);
	assert_int_equal(t_run(fx, 1, "start", "p", NULL, 0), 0);
	assert_int_equal(t_run(fx, 2, "stop", "p", NULL, 0), 0);
	assert_int_equal(fx->ndone, 0); /* never from inside hook_run() */
	assert_int_equal(hook_running(fx->h), 1);
	assert_int_equal(hook_queued(fx->h), 1);
	assert_true(t_run_until(fx, 2, 5000));
	assert_int_equal(fx->reentrant, 0);
	assert_int_equal(fx->done[0].id, 1);
	assert_int_equal(fx->done[1].id, 2);
	const struct hook_result *r = &fx->done[0].res;
	assert_int_equal(r->spawn_error, MESH_ENOENT);
	assert_int_equal(r->exit_status, 0);
	assert_int_equal(r->term_signal, 0);
	snprintf(want, sizeof(want),
		 "cannot run %s: no such file or directory\n", missing);
	assert_string_equal(r->tail, want);
	struct hook_stats st = hook_runner_stats(fx->h);
	assert_int_equal(st.started, 2);
	assert_int_equal(st.spawn_errors, 2);
	hook_runner_close(fx->h, NULL);
	fx->h = NULL;

	/* a file without the execute bit */
	t_script(fx, "noexec", "exit 0", 0644, noexec, sizeof(noexec));
	t_new(fx, noexec, 1, 1000);
	assert_int_equal(t_run(fx, 3, "start", "p", NULL, 0), 0);
	assert_int_equal(fx->ndone, 2);
	assert_true(t_run_until(fx, 3, 5000));
	r = &fx->done[2].res;
	assert_int_not_equal(r->spawn_error, 0);
	snprintf(want, sizeof(want), "cannot run %s: permission denied\n",
		 noexec);
	assert_string_equal(r->tail, want); /* root too: no x bit at all */
}

static void
test_hook_queue_runs_in_order(void **state)
{
	struct fx *fx = *state;
	char exec[512], log[512], got[256];
	t_script(fx, "hook",
		 "echo \"start $2\" >> \"$HOOK_LOG\"\nsleep 0.2\n"
		 "echo \"end $2\" >> \"$HOOK_LOG\"",
		 0755, exec, sizeof(exec));
	snprintf(log, sizeof(log), "%s/order.log", fx->dir);
	t_new(fx, exec, 1, 10000);
	struct hook_var v = {"HOOK_LOG", log};
	assert_int_equal(t_run(fx, 1, "start", "a", &v, 1), 0);
	assert_int_equal(t_run(fx, 2, "start", "b", &v, 1), 0);
	assert_int_equal(t_run(fx, 3, "start", "c", &v, 1), 0);
	assert_int_equal(hook_running(fx->h), 1);
	assert_int_equal(hook_queued(fx->h), 2);
	assert_true(t_run_until(fx, 3, 10000));
	assert_int_equal(hook_running(fx->h) + hook_queued(fx->h), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(fx->done[i].id, i + 1);
		assert_int_equal(fx->done[i].res.exit_status, 0);
		assert_true(fx->done[i].res.duration_ms >= 190);
		if (i > 0)
			assert_true(fx->done[i].at_ms >=
				    fx->done[i - 1].at_ms + 190);
	}
	assert_true(t_read_file(log, got, sizeof(got)) > 0);
	assert_string_equal(got, "start a\nend a\nstart b\nend b\n"
				 "start c\nend c\n");
	assert_int_equal(hook_runner_stats(fx->h).ok, 3);
}

/* Urgent runs pass the waiting ones, in their own order. */
static void
test_hook_urgent_runs_first(void **state)
{
	struct fx *fx = *state;
	char exec[512], log[512], got[256];
	t_script(fx, "hook", "echo \"$2\" >> \"$HOOK_LOG\"\nsleep 0.1", 0755,
		 exec, sizeof(exec));
	snprintf(log, sizeof(log), "%s/order.log", fx->dir);
	t_new(fx, exec, 1, 10000);
	struct hook_var v = {"HOOK_LOG", log};
	assert_int_equal(t_run(fx, 1, "check", "a", &v, 1), 0); /* runs */
	assert_int_equal(t_run(fx, 2, "check", "b", &v, 1), 0);
	assert_int_equal(t_run(fx, 3, "check", "c", &v, 1), 0);
	fx->in_run = true;
	assert_int_equal(hook_run_urgent(fx->h, 4, "stop", "x", &v, 1), 0);
	assert_int_equal(hook_run_urgent(fx->h, 5, "stop", "y", &v, 1), 0);
	fx->in_run = false;
	assert_int_equal(t_run(fx, 6, "check", "d", &v, 1), 0);
	/* x and y start at once in the urgent slots; b, c, d wait. */
	assert_int_equal(hook_running(fx->h), 3);
	assert_int_equal(hook_queued(fx->h), 3);
	assert_true(t_run_until(fx, 6, 10000));
	assert_true(t_read_file(log, got, sizeof(got)) > 0);
	/* a, x and y ran together (in any order), the rest after them. */
	assert_int_equal(strlen(got), 12);
	assert_string_equal(got + 6, "b\nc\nd\n");
	assert_non_null(memchr(got, 'a', 6));
	assert_non_null(memchr(got, 'x', 6));
	assert_non_null(memchr(got, 'y', 6));
}

static void
test_hook_background_child_holding_pipe(void **state)
{
	struct fx *fx = *state;
	char exec[512];
	t_script(fx, "hook",
		 "sleep 30 & echo $! > \"$HOOK_DIR/bg.pid\"\necho started",
		 0755, exec, sizeof(exec));
	t_new(fx, exec, 1, 10000);
	struct hook_var v = {"HOOK_DIR", fx->dir};
	assert_int_equal(t_run(fx, 1, "start", "p", &v, 1), 0);
	bool reported = t_run_until(fx, 1, 5000);
	pid_t bg = t_read_pid(fx, "bg.pid");
	t_track_pid(fx, bg);
	assert_true(reported);
	const struct t_done *d = t_find(fx, 1);
	assert_true(d->at_ms < 1000);
	assert_int_equal(d->res.exit_status, 0);
	assert_false(d->res.timed_out);
	assert_string_equal(d->res.tail, "started\n");
	/* ended by the hook's exit, without touching what it left running */
	assert_true(t_alive(bg));
	assert_int_equal(hook_running(fx->h), 0);
	assert_int_equal(kill(bg, SIGKILL), 0);
	assert_true(t_wait_dead(bg, 2000));
}

static void
test_hook_close_kills_and_closes(void **state)
{
	struct fx *fx = *state;
	char exec[512];
	t_script(fx, "hook",
		 "if [ \"$1\" = quick ]; then exit 0; fi\n"
		 "sleep 30 & echo $! > \"$HOOK_DIR/child.$2\"\n"
		 "echo $$ > \"$HOOK_DIR/hook.$2\"\nwait",
		 0755, exec, sizeof(exec));
	t_new(fx, exec, 2, 60000);
	struct hook_var v = {"HOOK_DIR", fx->dir};
	/* one run first, so that what libuv opens once per loop is open */
	assert_int_equal(t_run(fx, 1, "quick", "q", &v, 1), 0);
	assert_true(t_run_until(fx, 1, 5000));
	int fds = t_open_fds();

	assert_int_equal(t_run(fx, 2, "start", "a", &v, 1), 0);
	assert_int_equal(t_run(fx, 3, "start", "b", &v, 1), 0);
	assert_int_equal(t_run(fx, 4, "start", "c", &v, 1), 0); /* queued */
	assert_int_equal(hook_queued(fx->h), 1);
	bool up = t_run_until_file(fx, "hook.a", 5000) &&
		  t_run_until_file(fx, "hook.b", 5000) &&
		  t_run_until_file(fx, "child.a", 5000) &&
		  t_run_until_file(fx, "child.b", 5000);
	pid_t pids[4] = {t_read_pid(fx, "hook.a"), t_read_pid(fx, "hook.b"),
			 t_read_pid(fx, "child.a"), t_read_pid(fx, "child.b")};
	for (int i = 0; i < 4; i++)
		t_track_pid(fx, pids[i]);
	assert_true(up);
	for (int i = 0; i < 4; i++)
		assert_true(t_alive(pids[i]));

	hook_runner_close(fx->h, t_closed_cb);
	fx->h = NULL;
	assert_false(fx->closed); /* never from inside the call */
	/* a runner that leaves a handle active hangs here (the guard timer
	 * is stopped) */
	alarm(20);
	int more = uv_run(&fx->loop, UV_RUN_DEFAULT);
	alarm(0);
	assert_int_equal(more, 0);
	assert_true(fx->closed);
	assert_int_equal(fx->ndone, 1); /* neither killed nor dropped runs */
	for (int i = 0; i < 4; i++)
		assert_true(t_wait_dead(pids[i], 2000));
	assert_false(t_file_exists(fx, "hook.c"));
	assert_int_equal(t_open_fds(), fds);
}

static void
test_hook_close_idle_and_from_done(void **state)
{
	struct fx *fx = *state;
	char exec[512];
	/* idle: closed() comes from the loop */
	t_new(fx, "/bin/true", 1, 1000);
	hook_runner_close(fx->h, t_closed_cb);
	fx->h = NULL;
	assert_false(fx->closed);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_true(fx->closed);

	/* from done(): the queued run is dropped, nothing else reported */
	t_script(fx, "hook", "exit 0", 0755, exec, sizeof(exec));
	t_new(fx, exec, 1, 1000);
	fx->close_in_done = true;
	assert_int_equal(t_run(fx, 1, "check", "a", NULL, 0), 0);
	assert_int_equal(t_run(fx, 2, "check", "b", NULL, 0), 0);
	assert_true(t_run_until(fx, 1, 5000));
	assert_null(fx->h);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(fx->ndone, 1);
	assert_int_equal(fx->done[0].id, 1);
	assert_int_equal(
	    hook_runner_new(&fx->loop, exec, 0, 0, t_done_cb, fx, &fx->h),
	    MESH_EINVAL);
	assert_null(fx->h);
}

/* scripts/pack-hook start/check/stop on one pack. */
static void
test_hook_pack_hook_script(void **state)
{
	struct fx *fx = *state;
	char exec[512], hookdir[512], logpath[512], pidfile[600], buf[4096];
	snprintf(exec, sizeof(exec), "%s/scripts/pack-hook", MESH_SOURCE_DIR);
	snprintf(hookdir, sizeof(hookdir), "%s/hooks", fx->dir);
	snprintf(logpath, sizeof(logpath), "%s/hook.log", fx->dir);
	snprintf(pidfile, sizeof(pidfile), "%s/p1.pid", hookdir);
	t_new(fx, exec, 1, 20000);
	struct hook_var vars[] = {
	    {"MESH_HOOK_DIR", hookdir},
	    {"MESH_HOOK_LOG", logpath},
	    {"MESH_NODE", "n1"},
	    {"MESH_PACK", "p1"},
	    {"MESH_PACK_LABEL_CMD", "sleep 300"},
	};
	size_t nv = sizeof(vars) / sizeof(vars[0]);

	assert_int_equal(t_run(fx, 1, "start", "p1", vars, nv), 0);
	assert_true(t_run_until(fx, 1, 10000));
	pid_t pid = t_read_pid(fx, "hooks/p1.pid");
	t_track_pid(fx, pid);
	assert_int_equal(fx->done[0].res.exit_status, 0);
	assert_true(pid > 0);
	assert_true(t_alive(pid));
	/* survives the hook, in a session of its own: the hook exits once
	 * the pidfile is written, which can be before the child's setsid()
	 * has run, so give it a moment (bounded) */
	for (int i = 0; i < 200 && getsid(pid) != pid; i++)
		usleep(10000);
	assert_int_equal(getsid(pid), pid);

	assert_int_equal(t_run(fx, 2, "start", "p1", vars, nv), 0);
	assert_int_equal(t_run(fx, 3, "check", "p1", vars, nv), 0);
	assert_true(t_run_until(fx, 3, 10000));
	assert_int_equal(fx->done[1].res.exit_status, 0); /* idempotent */
	assert_int_equal(t_read_pid(fx, "hooks/p1.pid"), pid);
	assert_int_equal(fx->done[2].res.exit_status, 0);

	assert_int_equal(t_run(fx, 4, "stop", "p1", vars, nv), 0);
	assert_int_equal(t_run(fx, 5, "check", "p1", vars, nv), 0);
	assert_int_equal(t_run(fx, 6, "stop", "p1", vars, nv), 0);
	assert_int_equal(t_run(fx, 7, "start", "../p1", vars, nv), 0);
	assert_int_equal(t_run(fx, 8, "start", "a/b", vars, nv), 0);
	assert_true(t_run_until(fx, 8, 20000));
	assert_int_equal(fx->done[3].res.exit_status, 0);
	assert_int_equal(fx->done[4].res.exit_status, 1); /* not running */
	assert_int_equal(fx->done[5].res.exit_status, 0); /* not running: ok */
	assert_int_equal(fx->done[6].res.exit_status, 2);
	assert_non_null(strstr(fx->done[6].res.tail, "unsafe pack name"));
	assert_int_equal(fx->done[7].res.exit_status, 2);
	assert_int_not_equal(access(pidfile, F_OK), 0);
	assert_true(t_wait_dead(pid, 2000));

	/* one line per accepted action: "<ms> <action> <name> <node>" */
	assert_true(t_read_file(logpath, buf, sizeof(buf)) > 0);
	const char *want[] = {"start", "start", "check",
			      "stop",  "check", "stop"};
	char *save = NULL, *line = strtok_r(buf, "\n", &save);
	for (size_t i = 0; i < 6; i++) {
		assert_non_null(line);
		unsigned long long ms = 0;
		char act[16], name[16], node[16];
		assert_int_equal(
		    sscanf(line, "%llu %15s %15s %15s", &ms, act, name, node),
		    4);
		assert_true(ms > 1600000000000ull);
		assert_string_equal(act, want[i]);
		assert_string_equal(name, "p1");
		assert_string_equal(node, "n1");
		line = strtok_r(NULL, "\n", &save);
	}
	assert_null(line);
}

int
main(void)
{
	/* a hook that dies before reading would otherwise kill the test */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hook_exit_status, t_setup,
					    t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_tail_keeps_last_lines,
					    t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_env_and_argv, t_setup,
					    t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_timeout_kills_group,
					    t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_timeout_then_sigkill,
					    t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_spawn_error_async,
					    t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_urgent_runs_first,
					    t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_queue_runs_in_order,
					    t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(
		test_hook_background_child_holding_pipe, t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_close_kills_and_closes,
					    t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_close_idle_and_from_done,
					    t_setup, t_teardown),
	    cmocka_unit_test_setup_teardown(test_hook_pack_hook_script, t_setup,
					    t_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
