#include "test_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *
test__alloc(void *ctx, size_t size)
{
	struct test_alloc *a = ctx;
	if (a->fail_at != 0 && a->allocs + 1 == a->fail_at) {
		a->fail_at = 0;
		return NULL;
	}
	void *p = malloc(size);
	if (p != NULL) {
		a->allocs++;
		a->live++;
	}
	return p;
}

static void *
test__realloc(void *ctx, void *ptr, size_t size)
{
	struct test_alloc *a = ctx;
	if (a->fail_at != 0 && a->allocs + 1 == a->fail_at) {
		a->fail_at = 0;
		return NULL;
	}
	void *p = realloc(ptr, size);
	if (p != NULL) {
		a->allocs++;
		if (ptr == NULL)
			a->live++;
	}
	return p;
}

static void
test__free(void *ctx, void *ptr)
{
	struct test_alloc *a = ctx;
	if (ptr == NULL)
		return;
	a->frees++;
	a->live--;
	free(ptr);
}

static void
test__log(void *ctx, enum mesh_log_level level, const char *line)
{
	struct test_env *t = ctx;
	snprintf(t->last_line, sizeof(t->last_line), "%s", line);
	t->lines++;
	if (t->echo)
		fprintf(stderr, "[%s] %s\n", mesh_log_level_name(level), line);
}

void
test_env_init(struct test_env *t)
{
	memset(t, 0, sizeof(*t));
	t->alloc.base.alloc_fn = test__alloc;
	t->alloc.base.realloc_fn = test__realloc;
	t->alloc.base.free_fn = test__free;
	t->alloc.base.ctx = &t->alloc;
	t->env.alloc = &t->alloc.base;
	t->env.log_fn = test__log;
	t->env.log_ctx = t;
	const char *echo = getenv("MESH_TEST_LOG");
	t->echo = echo != NULL && echo[0] == '1';
	t->env.log_level = t->echo ? MESH_LOG_DEBUG : MESH_LOG_INFO;
}
