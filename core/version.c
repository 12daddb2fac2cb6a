/* SPDX-License-Identifier: MIT */
#include "internal.h"

#define UR_STR_(x) #x
#define UR_STR(x)  UR_STR_(x)

const char *ur_version(void)
{
	return UR_STR(UR_VERSION_MAJOR) "." UR_STR(UR_VERSION_MINOR) "." UR_STR(UR_VERSION_PATCH);
}
