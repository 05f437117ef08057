/*
 * mesh_err.h - the one error table of packmesh.
 *
 * Every function that can fail returns 0 or a negative MESH_E... code. The
 * codes come from one X-macro so that the enum and mesh_strerror() can never
 * drift apart. io/ and store/ translate libuv, LMDB and errno values into
 * these at the boundary; nothing above them sees a foreign code.
 */
#ifndef MESH_ERR_H
#define MESH_ERR_H

#define MESH_ERRNO_MAP(X)                                                      \
	X(NOMEM, "out of memory")                                              \
	X(INVAL, "invalid argument")                                           \
	X(RANGE, "value out of range")                                         \
	X(DECODE, "malformed message")                                         \
	X(VERSION, "unsupported protocol version")                             \
	X(TOOBIG, "message too large")                                         \
	X(TRUNC, "truncated input")                                            \
	X(AUTH, "authentication failed (wrong key or tampered data)")          \
	X(NOENT, "not found")                                                  \
	X(EXIST, "already exists")                                             \
	X(FULL, "queue or table full")                                         \
	X(AGAIN, "try again later")                                            \
	X(IO, "input/output error")                                            \
	X(NOSPC, "no space left (disk or map full)")                           \
	X(STATE, "operation not allowed in this state")                        \
	X(CONNREFUSED, "connection refused")                                   \
	X(TIMEDOUT, "timed out")                                               \
	X(CORRUPT, "stored data is corrupt")                                   \
	X(CONFLICT, "identity conflict")

enum mesh_errno {
	MESH_OK = 0,
#define MESH__ERR_ENUM(name, msg) MESH_E##name,
	MESH__ERR_FIRST_ = -1000,
	MESH_ERRNO_MAP(MESH__ERR_ENUM)
#undef MESH__ERR_ENUM
	    MESH__ERR_LAST_
};

/**
 * mesh_strerror - a static, human-readable text for an error code.
 * @err: 0 or a negative MESH_E... code; anything else gives "unknown error".
 * Returns a string with static storage duration; never NULL.
 */
const char *mesh_strerror(int err);

/**
 * mesh_errname - the symbolic name ("MESH_EAUTH") of an error code.
 * Returns a string with static storage duration; never NULL.
 */
const char *mesh_errname(int err);

#endif
