#include "mesh_log.h"

#include <stdarg.h>
#include <stdio.h>

void
mesh__log(const struct mesh_env *env, enum mesh_log_level level,
	  const char *fmt, ...)
{
	/* Lines longer than this are cut; a log line is for a person. */
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	env->log_fn(env->log_ctx, level, line);
}

const char *
mesh_log_level_name(enum mesh_log_level level)
{
	switch (level) {
	case MESH_LOG_DEBUG:
		return "debug";
	case MESH_LOG_INFO:
		return "info";
	case MESH_LOG_WARN:
		return "warn";
	case MESH_LOG_ERROR:
		return "error";
	default:
		return "off";
	}
}
