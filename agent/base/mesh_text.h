/*
 * mesh_text.h - the checks every layer applies to names and tags it is
 * handed, so that a name membership accepts is a name placement accepts.
 */
#ifndef MESH_TEXT_H
#define MESH_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/** True when @s is 1..@max bytes of [A-Za-z0-9._-]. NULL is false. */
bool mesh_name_is_valid(const char *s, size_t max);

/**
 * True when @s is at most @max printable ASCII bytes (0x20..0x7e), and not
 * empty unless @allow_empty. NULL is false.
 */
bool mesh_text_is_printable(const char *s, size_t max, bool allow_empty);

#endif
