#include "mesh_alloc.h"

#include "mesh_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *
mesh__std_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void *
mesh__std_realloc(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	return realloc(ptr, size);
}

static void
mesh__std_free(void *ctx, void *ptr)
{
	(void)ctx;
	free(ptr);
}

static const struct mesh_allocator mesh__std_allocator = {
    .alloc_fn = mesh__std_alloc,
    .realloc_fn = mesh__std_realloc,
    .free_fn = mesh__std_free,
    .ctx = NULL,
};

const struct mesh_allocator *
mesh_alloc_default(void)
{
	return &mesh__std_allocator;
}

void *
mesh_malloc(const struct mesh_allocator *a, size_t size)
{
	if (size == 0)
		return NULL;
	return a->alloc_fn(a->ctx, size);
}

void *
mesh_calloc(const struct mesh_allocator *a, size_t n, size_t size)
{
	if (n == 0 || size == 0 || n > SIZE_MAX / size)
		return NULL;
	void *p = a->alloc_fn(a->ctx, n * size);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

void *
mesh_realloc(const struct mesh_allocator *a, void *ptr, size_t size)
{
	if (size == 0)
		return NULL;
	return a->realloc_fn(a->ctx, ptr, size);
}

void
mesh_free(const struct mesh_allocator *a, void *ptr)
{
	if (ptr != NULL)
		a->free_fn(a->ctx, ptr);
}

int
mesh_grow(const struct mesh_allocator *a, void **v, size_t *cap, size_t need,
	  size_t size)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap < 4 ? 4 : *cap;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return MESH_ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / size)
		return MESH_ENOMEM;
	void *p = mesh_realloc(a, *v, ncap * size);
	if (p == NULL)
		return MESH_ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}
