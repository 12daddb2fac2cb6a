/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_nginx.c - the HTTP client against a real nginx on loopback: files of every
 * size fetched over HTTP and HTTPS arrive byte for byte (SHA-256), gzip from nginx decodes to the
 * file, and 10,000 requests ride on the pool's few keep-alive connections, as nginx's own access
 * log ($connection) counts them.
 *
 * Each test writes a configuration into a fresh temporary directory, starts
 * `nginx -p DIR -c DIR/nginx.conf -e DIR/error.log -g 'daemon off;'` on free ports (its master
 * dies with the test process: PR_SET_PDEATHSIG), waits for its pid file (written once it
 * listens), and stops it at the end. Skipped when nginx is not installed (tools/dev.sh installs
 * nginx-light).
 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define T_FAULT_UNSAFE_FILE "enomem,reset"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts the exact result of its requests; a refused start or a reset "          \
	"connection ends one with ENOMEM or ECONNRESET instead"
#include "../helpers.h"

TestSuite(nginx, .timeout = 240);

struct nginx {
	char dir[64];
	uint16_t http_port, https_port;
	pid_t pid;
	struct ur_tls_cert cert;
	char base[64], sbase[64];
};

static const char *nginx_bin(void)
{
	static const char *const paths[] = {"/usr/sbin/nginx", "/usr/bin/nginx",
	                                    "/usr/local/sbin/nginx"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

static uint16_t free_port(void)
{
	uint16_t port;
	int fd = t_listen_tcp(&port);
	close(fd);
	return port;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		cr_assert_gt(n, 0);
		off += (size_t)n;
	}
	close(fd);
}

/* Deterministic bytes that do not compress (xorshift64). */
static void fill_random(char *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (char)(x >> 32);
	}
}

static const size_t sizes[] = {0, 1, 1024, 1 << 20, 64u << 20};

/* @all: every size (64 MiB written); else the 1 KiB file and the text only */
static void nginx_start(struct nginx *n, bool all)
{
	const char *bin = nginx_bin();
	if (!bin)
		cr_skip_test("nginx is not installed (tools/dev.sh installs nginx-light)");
	memset(n, 0, sizeof(*n));
	snprintf(n->dir, sizeof(n->dir), "/tmp/urio-nginx-XXXXXX");
	cr_assert_not_null(mkdtemp(n->dir));
	chmod(n->dir, 0755); /* nginx's workers run as another user when the test is root */
	char www[128];
	snprintf(www, sizeof(www), "%s/www", n->dir);
	cr_assert_eq(mkdir(www, 0755), 0);

	/* the files: random bytes of each size, and a compressible text */
	char *buf = malloc(64u << 20);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (!all && sizes[i] != 1024)
			continue;
		char name[32];
		fill_random(buf, sizes[i], i + 1);
		snprintf(name, sizeof(name), "f%zu.bin", sizes[i]);
		write_file(www, name, buf, sizes[i]);
	}
	size_t tl = 0;
	for (int i = 0; tl < (1u << 20) - 64; i++)
		tl += (size_t)sprintf(buf + tl, "line %d of a text that gzip likes\n", i);
	write_file(www, "text.txt", buf, tl);
	free(buf);

	/* a CA and a leaf for 127.0.0.1, made in memory */
	ASSERT_RES(ur_tls_cert_generate(&n->cert, NULL), 0);
	write_file(n->dir, "cert.pem", n->cert.cert_pem, strlen(n->cert.cert_pem));
	write_file(n->dir, "key.pem", n->cert.key_pem, strlen(n->cert.key_pem));

	n->http_port = free_port();
	n->https_port = free_port();
	char conf[4096];
	const char *d = n->dir;
	int len = snprintf(
	    conf, sizeof(conf),
	    "worker_processes 1;\n"
	    "pid %s/nginx.pid;\n"
	    "error_log %s/error.log warn;\n"
	    "events { worker_connections 1024; }\n"
	    "http {\n"
	    "  log_format conn '$connection $connection_requests $status $body_bytes_sent';\n"
	    "  access_log %s/access.log conn;\n"
	    "  client_body_temp_path %s/body; proxy_temp_path %s/proxy;\n"
	    "  fastcgi_temp_path %s/fastcgi; uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;\n"
	    "  keepalive_requests 1000000; keepalive_timeout 60s;\n"
	    "  sendfile on;\n"
	    "  types { text/plain txt; application/octet-stream bin; }\n"
	    "  gzip on; gzip_types text/plain; gzip_min_length 1;\n"
	    "  server {\n"
	    "    listen 127.0.0.1:%u;\n"
	    "    listen 127.0.0.1:%u ssl;\n"
	    "    ssl_certificate %s/cert.pem; ssl_certificate_key %s/key.pem;\n"
	    "    root %s/www;\n"
	    "  }\n"
	    "}\n",
	    d, d, d, d, d, d, d, d, n->http_port, n->https_port, d, d, d);
	cr_assert_lt(len, (int)sizeof(conf));
	write_file(d, "nginx.conf", conf, (size_t)len);

	char confpath[128], errpath[128], pidpath[128];
	snprintf(confpath, sizeof(confpath), "%s/nginx.conf", d);
	snprintf(errpath, sizeof(errpath), "%s/error.log", d);
	snprintf(pidpath, sizeof(pidpath), "%s/nginx.pid", d);
	pid_t parent = getpid();
	n->pid = fork();
	cr_assert_geq(n->pid, 0);
	if (n->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
		if (getppid() != parent)
			_exit(1);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		execl(bin, "nginx", "-p", d, "-c", confpath, "-e", errpath, "-g", "daemon off;",
		      (char *)NULL);
		_exit(127);
	}
	/* nginx writes its pid file after it has opened its listening sockets */
	for (int i = 0; access(pidpath, F_OK) != 0; i++) {
		int st;
		cr_assert_eq(waitpid(n->pid, &st, WNOHANG), 0, "nginx exited; see %s", errpath);
		cr_assert_lt(i, 10000, "nginx did not start within 10 s");
		usleep(1000);
	}
	snprintf(n->base, sizeof(n->base), "http://127.0.0.1:%u", n->http_port);
	snprintf(n->sbase, sizeof(n->sbase), "https://127.0.0.1:%u", n->https_port);
}

static void rm_tree(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static void nginx_stop(struct nginx *n)
{
	int st;
	kill(n->pid, SIGTERM);
	cr_assert_eq(waitpid(n->pid, &st, 0), n->pid);
	ur_tls_cert_free(&n->cert);
	rm_tree(n->dir);
}

static void sha256(const void *p, size_t len, unsigned char out[32])
{
	unsigned int n = 32;
	cr_assert_eq(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL), 1);
}

static void sha256_file(const char *path, unsigned char out[32])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	struct stat st;
	fstat(fd, &st);
	char *b = malloc((size_t)st.st_size + 1);
	cr_assert_eq(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	sha256(b, (size_t)st.st_size, out);
	free(b);
}

/* --- every size, both schemes, memory and file sinks ------------------------------------------ */

struct sizes_run {
	struct nginx *n;
	struct ur_tls_ctx *tls;
	int failures;
};

static int sizes_main(void *arg)
{
	struct sizes_run *s = arg;
	struct ur_http_client_opts o = {.tls = s->tls};
	struct ur_http_client c;
	ASSERT_RES(ur_http_client_init(&c, ur_current_loop(), &o), 0);
	for (int scheme = 0; scheme < 2; scheme++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			char url[128], path[256];
			snprintf(url, sizeof(url), "%s/f%zu.bin", scheme ? s->n->sbase : s->n->base,
			         sizes[i]);
			snprintf(path, sizeof(path), "%s/www/f%zu.bin", s->n->dir, sizes[i]);
			unsigned char want[32], got[32];
			sha256_file(path, want);

			struct ur_http_response r;
			ur_http_response_init(&r);
			int ret = ur_http_get(&c, url, &r);
			ASSERT_RES(ret, 0);
			cr_assert_eq(r.status, 200, "%s: %d", url, r.status);
			cr_assert_eq(r.body_len, sizes[i], "%s", url);
			sha256(r.body ? r.body : "", r.body_len, got);
			cr_assert_arr_eq(got, want, 32, "%s: the bytes differ", url);
			ur_http_response_free(&r);

			/* the same into a file, written through the ring */
			char out[256];
			snprintf(out, sizeof(out), "%s/out.bin", s->n->dir);
			int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			cr_assert_geq(fd, 0);
			ur_http_response_init(&r);
			r.sink = UR_HTTP_SINK_FILE;
			r.body_fd = fd;
			ASSERT_RES(ur_http_get(&c, url, &r), 0);
			cr_assert(r.stats.reused, "%s: the second GET reuses the connection", url);
			close(fd);
			sha256_file(out, got);
			cr_assert_arr_eq(got, want, 32, "%s: the file's bytes differ", url);
			ur_http_response_free(&r);
		}
	}
	ASSERT_RES(ur_http_client_close(&c), 0);
	return 0;
}

static struct ur_tls_ctx *trusting(const struct nginx *n)
{
	struct ur_tls_ctx *ctx;
	struct ur_tls_opts o = {.ca_pem = n->cert.ca_pem};
	ASSERT_RES(ur_tls_ctx_new(&ctx, UR_TLS_CLIENT, &o), 0);
	return ctx;
}

Test(nginx, files_of_every_size_over_http_and_https)
{
	struct nginx n;
	nginx_start(&n, true);
	int fds = t_count_fds();
	struct sizes_run s = {.n = &n, .tls = trusting(&n)};
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, sizes_main, &s, NULL), 0);
	t_loop_done(&l);
	ur_tls_ctx_free(s.tls);
	cr_assert_eq(t_count_fds(), fds);
	nginx_stop(&n);
}

/* --- gzip from nginx ------------------------------------------------------------------------- */

struct gzip_run {
	struct nginx *n;
	char *text;
	size_t text_len;
	bool decoded;
	uint64_t wire;
};

static int gzip_main(void *arg)
{
	struct gzip_run *g = arg;
	struct ur_http_client_opts o = {.flags = UR_HTTP_COMPRESSED};
	struct ur_http_client c;
	ASSERT_RES(ur_http_client_init(&c, ur_current_loop(), &o), 0);
	char url[128];
	snprintf(url, sizeof(url), "%s/text.txt", g->n->base);
	struct ur_http_response r;
	ur_http_response_init(&r);
	ASSERT_RES(ur_http_get(&c, url, &r), 0);
	cr_assert_str_eq(ur_http_response_header(&r, "content-encoding"), "gzip");
	g->decoded = r.decoded;
	g->wire = r.stats.bytes_received;
	cr_assert_eq(r.body_len, g->text_len);
	cr_assert_arr_eq(r.body, g->text, g->text_len);
	ur_http_response_free(&r);
	ASSERT_RES(ur_http_client_close(&c), 0);
	return 0;
}

Test(nginx, gzip_body_decodes_to_the_file)
{
	struct nginx n;
	nginx_start(&n, false);
	struct gzip_run g = {.n = &n};
	char path[256];
	snprintf(path, sizeof(path), "%s/www/text.txt", n.dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	fstat(fd, &st);
	g.text_len = (size_t)st.st_size;
	g.text = malloc(g.text_len);
	cr_assert_eq(read(fd, g.text, g.text_len), (ssize_t)g.text_len);
	close(fd);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, gzip_main, &g, NULL), 0);
	t_loop_done(&l);
	cr_assert(g.decoded);
	cr_assert_lt(g.wire, g.text_len / 4, "gzip made it smaller on the wire");
	free(g.text);
	nginx_stop(&n);
}

/* --- 10,000 requests over keep-alive ---------------------------------------------------------- */

#define NREQ 10000

struct many_run {
	const char *base;
	struct ur_tls_ctx *tls;
	struct ur_http_request rq[NREQ];
	struct ur_http_response r[NREQ];
	struct ur_future f[NREQ];
	struct ur_future *fp[NREQ];
	char url[128];
	struct ur_http_client_stats st;
	int ret;
};

static int many_main(void *arg)
{
	struct many_run *m = arg;
	struct ur_http_client_opts o = {.tls = m->tls}; /* 8 per host */
	struct ur_http_client c;
	ASSERT_RES(ur_http_client_init(&c, ur_current_loop(), &o), 0);
	snprintf(m->url, sizeof(m->url), "%s/f1024.bin", m->base);
	for (int i = 0; i < NREQ; i++) {
		m->rq[i] = (struct ur_http_request){.url = m->url};
		ur_http_response_init(&m->r[i]);
		ur_future_init(&m->f[i], NULL, NULL);
		ASSERT_RES(ur_http_request_start(&c, &m->rq[i], &m->r[i], &m->f[i]), 0);
		m->fp[i] = &m->f[i];
	}
	m->ret = ur_gather(m->fp, NREQ, 0);
	for (int i = 0; i < NREQ; i++) {
		ASSERT_RES(m->f[i].res, 0);
		cr_assert_eq(m->r[i].status, 200);
		cr_assert_eq(m->r[i].body_len, 1024);
		ur_http_response_free(&m->r[i]);
	}
	ur_http_client_stats(&c, &m->st);
	ASSERT_RES(ur_http_client_close(&c), 0);
	return 0;
}

/* Distinct $connection values and lines of nginx's access log. */
static void count_log(const struct nginx *n, int *conns, int *lines)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/access.log", n->dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	static long seen[NREQ];
	int ns = 0;
	long c, k, status, bytes;
	*lines = 0;
	while (fscanf(f, "%ld %ld %ld %ld", &c, &k, &status, &bytes) == 4) {
		(*lines)++;
		cr_assert_eq(status, 200);
		int j = 0;
		while (j < ns && seen[j] != c)
			j++;
		if (j == ns && ns < NREQ)
			seen[ns++] = c;
	}
	fclose(f);
	*conns = ns;
}

static void many_over(struct nginx *n, bool tls)
{
	struct many_run *m = calloc(1, sizeof(*m));
	m->base = tls ? n->sbase : n->base;
	m->tls = tls ? trusting(n) : NULL;
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, many_main, m, NULL), 0);
	t_loop_done(&l);
	ASSERT_RES(m->ret, 0);
	cr_assert_eq(m->st.requests, NREQ);
	cr_assert_leq(m->st.connections, UR_HTTP_MAX_PER_HOST_DEFAULT);
	/* nginx logs a request after sending its response: wait for the last lines */
	int conns, lines;
	for (int i = 0;; i++) {
		count_log(n, &conns, &lines);
		if (lines >= NREQ || i == 5000)
			break;
		usleep(1000);
	}
	cr_assert_eq(lines, NREQ, "nginx logged every request");
	cr_assert_leq(conns, UR_HTTP_MAX_PER_HOST_DEFAULT, "nginx saw %d connections", conns);
	cr_assert_eq((uint64_t)conns, m->st.connections);
	ur_tls_ctx_free(m->tls);
	free(m);
}

Test(nginx, ten_thousand_requests_over_keep_alive)
{
	struct nginx n;
	nginx_start(&n, false);
	int fds = t_count_fds();
	many_over(&n, false);
	cr_assert_eq(t_count_fds(), fds);
	nginx_stop(&n);
}

Test(nginx, ten_thousand_requests_over_tls_keep_alive)
{
	struct nginx n;
	nginx_start(&n, false);
	int fds = t_count_fds();
	many_over(&n, true);
	cr_assert_eq(t_count_fds(), fds);
	nginx_stop(&n);
}
