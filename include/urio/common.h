/* SPDX-License-Identifier: MIT */
/*
 * urio/common.h - export macro, version and the few types every header shares.
 */
#ifndef URIO_COMMON_H
#define URIO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(UR_BUILDING_LIBRARY) && defined(__GNUC__)
#define UR_EXPORT __attribute__((visibility("default")))
#else
#define UR_EXPORT
#endif

#define UR_VERSION_MAJOR 0
#define UR_VERSION_MINOR 1
#define UR_VERSION_PATCH 0

/* Handy duration multipliers: every urio duration is in nanoseconds. */
#define UR_USEC UINT64_C(1000)
#define UR_MSEC UINT64_C(1000000)
#define UR_SEC  UINT64_C(1000000000)

/*
 * "No deadline", wherever a duration bounds a wait (ur_future_set_deadline(), ur_deadline(),
 * streams). A duration of 0 is a deadline that has already passed: the operation expires at once
 * unless it completes when issued.
 */
#define UR_NO_DEADLINE UINT64_MAX

#ifdef __cplusplus
extern "C" {
#endif

struct ur_loop;
struct ur_future;

/* Returns the library's version as "MAJOR.MINOR.PATCH"; a static string. */
UR_EXPORT const char *ur_version(void);

#ifdef __cplusplus
}
#endif

#endif
