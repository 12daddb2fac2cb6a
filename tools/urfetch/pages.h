/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/pages.h - the pages urfetch's own server serves (pages.c), shared by the demo,
 * --serve and the benchmarks.
 */
#ifndef URFETCH_PAGES_H
#define URFETCH_PAGES_H

#include <stdbool.h>
#include <stddef.h>

#include <urio/http_server.h>

#define UF_PAGE_MAX 4096

struct uf_pages {
	int dirfd; /* /static/NAME is served from here; -1 for none */
};

/* The page for @path: writes it to @out (UF_PAGE_MAX bytes) and returns its length (512..1535). */
size_t uf_page(const char *path, size_t path_len, char *out);
/* True if @body is exactly the page of @path. */
bool uf_page_check(const char *path, size_t path_len, const char *body, size_t len);

/*
 * The handler (@arg: a struct uf_pages, or NULL). Routes: /status/N (that status), /bytes/N (N
 * bytes), /redirect/N (302 to /page/N), /echo (the request body back), /delay/MS (a page after
 * MS ms), /static/NAME (a file of the directory), anything else: its page.
 */
int uf_pages_handler(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs,
                     void *arg);

#endif
