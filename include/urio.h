/* SPDX-License-Identifier: MIT */
/*
 * urio.h - the umbrella header: includes every public urio header (each of include/urio/'s
 * headers may also be included on its own). A program needs nothing else: <urio.h> alone gives
 * the loop, tasks, streams, TLS, the server helper, and the HTTP client and server.
 */
#ifndef URIO_H
#define URIO_H

/* Results are compared with errno values (-ENOENT, -ECANCELED...): every caller needs these. */
#include <errno.h>

#include "urio/common.h"
#include "urio/error.h"
#include "urio/future.h"
#include "urio/loop.h"
#include "urio/io.h"
#include "urio/timer.h"
#include "urio/bufring.h"
#include "urio/task.h"
#include "urio/stream.h"
#include "urio/url.h"
#include "urio/http1.h"
#include "urio/resolve.h"
#include "urio/net.h"
#include "urio/tls.h"
#include "urio/server.h"
#include "urio/http.h"
#include "urio/http_server.h"

#endif
