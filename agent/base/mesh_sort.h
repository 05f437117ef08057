/*
 * mesh_sort.h - qsort() for arrays that may be empty.
 *
 * An empty array is often a NULL pointer here (nothing was allocated), and
 * qsort()'s pointer is declared non-null: passing NULL, even with no
 * elements, is undefined behaviour (UBSan stops on it). Every sort in
 * agent/ and crdt/ goes through this.
 */
#ifndef MESH_SORT_H
#define MESH_SORT_H

#include <stddef.h>
#include <stdlib.h>

/** Sorts @n elements of @size bytes at @base with @cmp; @n may be 0. */
static inline void
mesh_sort(void *base, size_t n, size_t size,
	  int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

#endif
