/* SPDX-License-Identifier: MIT */
/*
 * tools/urecho/urecho.c - an echo server: the model of a service embedding urio.
 *
 *	urecho [-H HOST] [-p PORT] [-t LOOPS] [--unix PATH] [--tls CERT KEY] [--max-conns N]
 *	       [--grace SECONDS] [--pin]
 *
 * One loop per thread (the server helper, urio/server.h), a task per connection that reads what
 * arrives and writes it back. SIGINT/SIGTERM stop it gracefully: accepting stops, connections get
 * the grace period to finish, then they are cancelled. With --tls every connection is a TLS
 * server stream (urio/tls.h) over the same handler.
 */
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urio.h>
#include <urio/net.h>
#include <urio/server.h>
#include <urio/tls.h>

#define ECHO_BUF (16 * 1024)

static struct ur_tls_ctx *tls; /* NULL: plain TCP */

/* asyncio: async def handle(reader, writer): while data := await reader.read(n): writer.write */
static int echo(struct ur_stream *s, void *arg)
{
	(void)arg;
	char buf[ECHO_BUF];
	ssize_t n;

	if (tls) {
		ur_stream_set_timeout(s, 10 * UR_SEC); /* a handshake may not hang a task forever */
		if (ur_tls_server(s, tls) < 0)
			return -1;
		ur_stream_set_deadline(s, UR_NO_DEADLINE);
	}
	while ((n = ur_stream_read(s, buf, sizeof(buf))) > 0)
		if (ur_stream_write_all(s, buf, (size_t)n) < 0)
			return -1;
	if (n == 0)
		ur_stream_shutdown(s); /* a TLS peer gets close_notify */
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: urecho [-H HOST] [-p PORT] [-t LOOPS] [--unix PATH] [--tls CERT KEY]\n"
	      "              [--max-conns N] [--grace SECONDS] [--pin]\n"
	      "An echo server on urio: one loop per thread, a task per connection.\n"
	      "  -H HOST        numeric address to listen on (default: every address)\n"
	      "  -p PORT        port (default 7007; 0: the kernel chooses, printed)\n"
	      "  -t LOOPS       loops (threads); default: one per CPU\n"
	      "  --unix PATH    listen on a Unix socket instead ('@name': abstract)\n"
	      "  --tls CERT KEY serve TLS with this PEM certificate chain and key\n"
	      "  --max-conns N  connections per loop at most (others wait in the backlog)\n"
	      "  --grace SECS   on SIGINT/SIGTERM, time connections get to finish (default 5)\n"
	      "  --pin          pin loop i to CPU i\n",
	      f);
}

int main(int argc, char **argv)
{
	struct ur_server_opts o = {.port = 7007, .on_conn = echo};
	const char *cert = NULL, *key = NULL;
	double grace = 5;
	static const struct option longs[] = {{"unix", required_argument, NULL, 'u'},
	                                      {"tls", required_argument, NULL, 'T'},
	                                      {"max-conns", required_argument, NULL, 'm'},
	                                      {"grace", required_argument, NULL, 'g'},
	                                      {"pin", no_argument, NULL, 'P'},
	                                      {"help", no_argument, NULL, 'h'},
	                                      {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "H:p:t:h", longs, NULL)) != -1) {
		switch (c) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.port = (uint16_t)atoi(optarg);
			break;
		case 't':
			o.threads = (unsigned)atoi(optarg);
			break;
		case 'u':
			o.unix_path = optarg;
			break;
		case 'T':
			cert = optarg;
			if (optind >= argc) {
				usage(stderr);
				return 2;
			}
			key = argv[optind++];
			break;
		case 'm':
			o.max_conns = (unsigned)atoi(optarg);
			break;
		case 'g':
			grace = atof(optarg);
			break;
		case 'P':
			o.flags |= UR_SERVER_PIN_CPUS;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (cert) {
		char err[256] = "";
		struct ur_tls_opts to = {
		    .cert_file = cert, .key_file = key, .errbuf = err, .errlen = sizeof(err)};
		int r = ur_tls_ctx_new(&tls, UR_TLS_SERVER, &to);
		if (r < 0) {
			fprintf(stderr, "urecho: TLS: %s: %s\n", ur_strerror(r), err);
			return 1;
		}
	}

	/* the loops' threads inherit this mask: the signals come to sigwait() below only */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct ur_server *sv;
	int r = ur_server_start(&sv, &o);
	if (r < 0) {
		fprintf(stderr, "urecho: %s\n", ur_strerror(r));
		ur_tls_ctx_free(tls);
		return 1;
	}
	if (o.unix_path)
		printf("urecho: listening on unix:%s%s\n", o.unix_path, tls ? " (TLS)" : "");
	else
		printf("urecho: listening on %s port %u%s\n", o.host ? o.host : "*",
		       ur_server_port(sv), tls ? " (TLS)" : "");
	fflush(stdout);

	int sig;
	sigwait(&set, &sig);
	ur_server_stop(sv, (uint64_t)(grace * 1e9));
	ur_server_join(sv);
	struct ur_server_stats st;
	ur_server_stats(sv, &st);
	fprintf(stderr, "urecho: stopped: %llu connections, %llu cancelled at the deadline\n",
	        (unsigned long long)st.accepted, (unsigned long long)st.cancelled);
	ur_server_free(&sv);
	ur_tls_ctx_free(tls);
	return 0;
}
