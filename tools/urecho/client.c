/* SPDX-License-Identifier: MIT */
/*
 * tools/urecho/client.c - urecho-client: C connections, each sending N messages of S bytes and
 * reading each echo back (ping-pong), on one loop; prints round trips per second.
 *
 *	urecho-client [-c CONNS] [-n ROUNDS] [-s SIZE] [-d SECONDS] [--tls] [--insecure]
 *	              [--unix PATH] HOST PORT
 *
 * The asyncio equivalent: open_connection() per client, writer.write + reader.readexactly in a
 * loop, gather() over the clients.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urio.h>
#include <urio/net.h>
#include <urio/tls.h>

struct cfg {
	const char *host, *unix_path;
	uint16_t port;
	unsigned conns;
	unsigned long rounds;
	size_t size;
	double seconds; /* run for a time instead of a count */
	struct ur_tls_ctx *tls;
	uint64_t end_ns;
	unsigned long long done;
	int err;
};

static int client(void *arg)
{
	struct cfg *c = arg;
	struct ur_stream s;
	int r = c->unix_path ? ur_unix_connect(&s, c->unix_path, NULL)
	                     : ur_tcp_connect(&s, c->host, c->port, NULL);
	if (r < 0)
		goto out;
	if (c->tls && (r = ur_tls_client(&s, c->tls, c->host)) < 0) {
		fprintf(stderr, "urecho-client: TLS: %s\n", ur_tls_error_text(&s));
		goto close;
	}
	char *msg = malloc(c->size), *got = malloc(c->size);
	memset(msg, 'x', c->size);
	for (unsigned long i = 0; c->seconds > 0 || i < c->rounds; i++) {
		if (c->seconds > 0 && (i & 15) == 0 && ur_now_ns() >= c->end_ns)
			break;
		ssize_t n = ur_stream_write_all(&s, msg, c->size);
		if (n >= 0)
			n = ur_stream_read_exactly(&s, got, c->size);
		if (n < 0) {
			r = (int)n;
			break;
		}
		c->done++;
	}
	free(msg);
	free(got);
	if (r >= 0)
		ur_stream_shutdown(&s);
close:
	ur_stream_close(&s);
out:
	if (r < 0 && !c->err)
		c->err = r;
	return r;
}

static int run(void *arg)
{
	struct cfg *c = arg;
	struct ur_task **t = calloc(c->conns, sizeof(*t));
	struct ur_future **fs = calloc(c->conns, sizeof(*fs));
	c->end_ns = ur_now_ns() + (uint64_t)(c->seconds * 1e9);
	for (unsigned i = 0; i < c->conns; i++) {
		int r = ur_spawn(ur_current_loop(), &t[i], client, c, NULL);
		if (r < 0)
			return r;
		fs[i] = ur_task_future(t[i]);
	}
	ur_gather(fs, c->conns, 0);
	for (unsigned i = 0; i < c->conns; i++)
		ur_join(t[i]);
	free(fs);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c = {.conns = 1, .rounds = 1000, .size = 64};
	bool tls = false, insecure = false;
	static const struct option longs[] = {{"tls", no_argument, NULL, 'T'},
	                                      {"insecure", no_argument, NULL, 'k'},
	                                      {"unix", required_argument, NULL, 'u'},
	                                      {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "c:n:s:d:", longs, NULL)) != -1) {
		switch (o) {
		case 'c':
			c.conns = (unsigned)atoi(optarg);
			break;
		case 'n':
			c.rounds = strtoul(optarg, NULL, 10);
			break;
		case 's':
			c.size = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			c.seconds = atof(optarg);
			break;
		case 'T':
			tls = true;
			break;
		case 'k':
			insecure = true;
			break;
		case 'u':
			c.unix_path = optarg;
			break;
		default:
			fprintf(stderr,
			        "usage: urecho-client [-c CONNS] [-n ROUNDS] [-s SIZE] "
			        "[-d SECONDS] [--tls] [--insecure] [--unix PATH] HOST PORT\n");
			return 2;
		}
	}
	if (!c.unix_path && argc - optind != 2) {
		fprintf(stderr, "urecho-client: HOST and PORT expected\n");
		return 2;
	}
	if (!c.unix_path) {
		c.host = argv[optind];
		c.port = (uint16_t)atoi(argv[optind + 1]);
	}
	if (c.size == 0 || c.conns == 0)
		return 2;
	if (tls) {
		struct ur_tls_opts to = {.flags = insecure ? UR_TLS_INSECURE : 0, .alpn = ""};
		int r = ur_tls_ctx_new(&c.tls, UR_TLS_CLIENT, &to);
		if (r < 0) {
			fprintf(stderr, "urecho-client: TLS: %s\n", ur_strerror(r));
			return 1;
		}
	}
	uint64_t t0 = ur_now_ns();
	int res = 0;
	int r = ur_run(NULL, run, &c, &res);
	double secs = (double)(ur_now_ns() - t0) / 1e9;
	ur_tls_ctx_free(c.tls);
	if (r < 0 || c.err) {
		fprintf(stderr, "urecho-client: %s\n", ur_strerror(r < 0 ? r : c.err));
		return 1;
	}
	printf("%llu round trips of %zu bytes over %u connections in %.3f s: %.0f round trips/s\n",
	       c.done, c.size, c.conns, secs, (double)c.done / secs);
	return 0;
}
