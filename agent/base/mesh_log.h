/*
 * mesh_log.h - one logging macro, one injected sink.
 *
 * Core code never writes to stderr itself. It formats through MESH_LOG into
 * the sink of its struct mesh_env; meshd's sink writes timestamped lines, the
 * simulator's prefixes virtual time and node index, tests capture lines.
 */
#ifndef MESH_LOG_H
#define MESH_LOG_H

#include "mesh_alloc.h"

enum mesh_log_level {
	MESH_LOG_DEBUG = 0,
	MESH_LOG_INFO = 1,
	MESH_LOG_WARN = 2,
	MESH_LOG_ERROR = 3,
	MESH_LOG_OFF = 4,
};

/** A log sink. @line is NUL-terminated, without newline, valid for the call. */
typedef void mesh_log_fn(void *ctx, enum mesh_log_level level,
			 const char *line);

/**
 * What every layer is handed by its driver: how to allocate and where to log.
 * The driver owns it and keeps it alive longer than anything using it.
 */
struct mesh_env {
	const struct mesh_allocator *alloc;
	mesh_log_fn *log_fn;
	void *log_ctx;
	enum mesh_log_level log_level;
};

/** Formats and sends one line to @env's sink. Use MESH_LOG instead. */
void mesh__log(const struct mesh_env *env, enum mesh_log_level level,
	       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Short name of a level ("debug", "info", ...). */
const char *mesh_log_level_name(enum mesh_log_level level);

#define MESH_LOG(env, level, ...)                                              \
	do {                                                                   \
		const struct mesh_env *mesh__e = (env);                        \
		if (mesh__e != NULL && mesh__e->log_fn != NULL &&              \
		    (level) >= mesh__e->log_level)                             \
			mesh__log(mesh__e, (level), __VA_ARGS__);              \
	} while (0)

#endif
