/*
 * test_env.h - shared fakes for unit tests: a counting allocator that can
 * fail the n-th allocation, and a log sink that keeps the last lines.
 */
#ifndef TEST_ENV_H
#define TEST_ENV_H

#include "mesh_log.h"

#include <stddef.h>

struct test_alloc {
	struct mesh_allocator base;
	size_t allocs;	/* successful alloc/realloc calls so far */
	size_t frees;	/* free calls with a non-NULL pointer */
	size_t live;	/* allocations not yet freed */
	size_t fail_at; /* 1-based index of the allocation to fail; 0 = never */
};

struct test_env {
	struct mesh_env env;
	struct test_alloc alloc;
	char last_line[512];
	size_t lines;
	int echo; /* print lines to stderr (MESH_TEST_LOG=1 sets it) */
};

/** Sets up @t with a counting allocator and a capturing log sink. */
void test_env_init(struct test_env *t);

#endif
