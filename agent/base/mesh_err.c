#include "mesh_err.h"

const char *
mesh_strerror(int err)
{
	switch (err) {
	case MESH_OK:
		return "success";
#define MESH__ERR_CASE(name, msg)                                              \
	case MESH_E##name:                                                     \
		return msg;
		MESH_ERRNO_MAP(MESH__ERR_CASE)
#undef MESH__ERR_CASE
	default:
		return "unknown error";
	}
}

const char *
mesh_errname(int err)
{
	switch (err) {
	case MESH_OK:
		return "MESH_OK";
#define MESH__ERR_NAME(name, msg)                                              \
	case MESH_E##name:                                                     \
		return "MESH_E" #name;
		MESH_ERRNO_MAP(MESH__ERR_NAME)
#undef MESH__ERR_NAME
	default:
		return "MESH_E?";
	}
}
