/* SPDX-License-Identifier: MIT */
/*
 * urio/error.h - error codes.
 *
 * Every urio call that can fail returns an int (or ssize_t): >= 0 is success and a negative value
 * is an error. Errors that the kernel reports come back unchanged as -errno (-ECONNRESET,
 * -ENOENT...). urio's own errors live in a reserved range, [UR_ERANGE_MIN, UR_ERANGE_MAX], far
 * below any errno value, split into one block of 100 per layer. ur_strerror() names every code.
 * urio never sets errno, never prints and never exits.
 */
#ifndef URIO_ERROR_H
#define URIO_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define UR_ERANGE_MAX (-30000)
#define UR_ERANGE_MIN (-30999)

enum ur_error {
	/* core: -30000 .. -30099 */
	UR_ELOOPCLOSED = -30001, /* the loop is being torn down; nothing new may start */
	UR_EWRONGLOOP = -30002,  /* the future belongs to another loop */
	UR_ENOTASK = -30003,     /* the call must be made from inside a task */
	/* resolver: -30100 .. -30199; TLS: -30200 ..; URL: -30300 ..; HTTP: -30400 .. */

	/* streams (urio/stream.h): -30500 .. -30599 */
	UR_EINCOMPLETE = -30500, /* the stream ended before the bytes asked for */
	UR_ELIMIT = -30501,      /* no delimiter within the limit; nothing was consumed */
};

/*
 * Returns a static, human-readable description of @code: "success" for code >= 0, the C library's
 * description for -errno values, urio's own text for codes in the reserved range, and
 * "unknown error" otherwise. Thread-safe; the string must not be freed.
 */
UR_EXPORT const char *ur_strerror(int code);

/* Returns the symbolic name of @code ("ECONNRESET", "UR_ELOOPCLOSED"), or "UNKNOWN". Thread-safe.
 */
UR_EXPORT const char *ur_strerror_name(int code);

#ifdef __cplusplus
}
#endif

#endif
