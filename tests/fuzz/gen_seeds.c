/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/gen_seeds.c - writes the framing table (tests/proto/http1_cases.h) as seed files for
 * the response and request targets. Not built by meson; run by hand after changing the table:
 *   cc -Iinclude tests/fuzz/gen_seeds.c proto/http1.c -o /tmp/gen && /tmp/gen tests/fuzz/corpus
 */
#include <stdio.h>

#include "../proto/http1_cases.h"

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	for (size_t i = 0; i < H1_NCASES; i++) {
		const struct h1_case *c = &h1_cases[i];
		char path[512];
		snprintf(path, sizeof(path), "%s/%s/table-%s", argv[1],
		         c->request ? "request" : "response", c->name);
		FILE *f = fopen(path, "wb");
		if (!f)
			return 1;
		unsigned char m = 0;
		if (c->method && !strcmp(c->method, "HEAD"))
			m = 1;
		else if (c->method && !strcmp(c->method, "CONNECT"))
			m = 2;
		unsigned char pre[3] = {m, (unsigned char)(7 * i + 3), (unsigned char)(13 * i + 5)};
		fwrite(pre, 1, 3, f);
		fwrite(c->in, 1, h1_len(c), f);
		fclose(f);
	}
	return 0;
}
