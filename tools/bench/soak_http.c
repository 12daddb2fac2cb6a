/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/soak_http.c - soak: a million requests from urio's HTTP client (urio/http.h)
 * against a loopback nginx it starts itself, one process, one loop. Not a test.
 *
 *	soak_http [-n REQUESTS] [-c CONCURRENCY]      (default 1000000, 16)
 *
 * Every 100,000 responses it prints requests/s over the interval, CPU per request, the open
 * descriptors (entries of /proc/self/fd) and the resident set (VmRSS): both must stay flat once
 * the pool is warm. Every body is checked byte for byte against the file nginx serves. Exits 1
 * on any failed request, wrong body, or descriptors that grew after the first interval.
 * nginx: one worker, its own config in a temp dir, a port from the kernel; stopped at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <urio.h>
#include <urio/http.h>

#define BODY_LEN 1024
#define EVERY    100000

static char body[BODY_LEN];

struct soak {
	struct ur_http_client c;
	char url[64];
	unsigned long total, next, done, failed, wrong;
	int first_err;
	uint64_t t_mark;
	double cpu_mark;
	int fds_first;
	long rss_first;
	int fds_last;
	long rss_last;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the DIR's own descriptor */
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void report(struct soak *s)
{
	uint64_t now = ur_now_ns();
	double cpu = cpu_seconds();
	double secs = (double)(now - s->t_mark) / 1e9;
	int fds = count_fds();
	long rss = rss_kib();
	printf("%9lu requests  %8.0f req/s  %5.1f us CPU/req  fds %d  RSS %ld KiB\n", s->done,
	       EVERY / secs, (cpu - s->cpu_mark) / EVERY * 1e6, fds, rss);
	fflush(stdout);
	if (s->done == EVERY) {
		s->fds_first = fds;
		s->rss_first = rss;
	}
	s->fds_last = fds;
	s->rss_last = rss;
	s->t_mark = now;
	s->cpu_mark = cpu;
}

static int worker(void *arg)
{
	struct soak *s = arg;
	struct ur_http_response r;
	while (s->next < s->total) {
		s->next++;
		ur_http_response_init(&r);
		int ret = ur_http_get(&s->c, s->url, &r);
		if (ret < 0) {
			if (!s->failed++)
				s->first_err = ret;
		} else if (r.status != 200 || r.body_len != BODY_LEN ||
		           memcmp(r.body, body, BODY_LEN) != 0) {
			s->wrong++;
		}
		ur_http_response_free(&r);
		if (++s->done % EVERY == 0)
			report(s);
	}
	return 0;
}

/* --- nginx ------------------------------------------------------------------------------------ */

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("soak_http: port");
		exit(1);
	}
	close(fd);
	return ntohs(a.sin_port);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror(path);
		exit(1);
	}
	close(fd);
}

static pid_t nginx_start(char *dir, uint16_t port)
{
	static const char *const bins[] = {"/usr/sbin/nginx", "/usr/bin/nginx",
	                                   "/usr/local/sbin/nginx"};
	const char *bin = NULL;
	for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]) && !bin; i++)
		if (access(bins[i], X_OK) == 0)
			bin = bins[i];
	if (!bin) {
		fprintf(stderr,
		        "soak_http: nginx is not installed (apt-get install nginx-light)\n");
		exit(1);
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	chmod(dir, 0755); /* nginx's workers run as another user when started by root */
	char path[256], conf[2048];
	snprintf(path, sizeof(path), "%s/www", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/www/1k.bin", dir);
	write_file(path, body, BODY_LEN);
	int len = snprintf(conf, sizeof(conf),
	                   "worker_processes 1;\n"
	                   "pid %s/nginx.pid;\n"
	                   "error_log %s/error.log warn;\n"
	                   "events { worker_connections 1024; }\n"
	                   "http {\n"
	                   "  access_log off;\n"
	                   "  client_body_temp_path %s/body; proxy_temp_path %s/proxy;\n"
	                   "  fastcgi_temp_path %s/fastcgi; uwsgi_temp_path %s/uwsgi;\n"
	                   "  scgi_temp_path %s/scgi;\n"
	                   "  keepalive_requests 1000000; keepalive_timeout 60s;\n"
	                   "  sendfile on; open_file_cache max=16;\n"
	                   "  server { listen 127.0.0.1:%u backlog=4096; root %s/www; }\n"
	                   "}\n",
	                   dir, dir, dir, dir, dir, dir, dir, port, dir);
	snprintf(path, sizeof(path), "%s/nginx.conf", dir);
	write_file(path, conf, (size_t)len);
	char errpath[256], pidpath[256];
	snprintf(errpath, sizeof(errpath), "%s/error.log", dir);
	snprintf(pidpath, sizeof(pidpath), "%s/nginx.pid", dir);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the soak */
		if (getppid() != parent)
			_exit(1);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		execl(bin, "nginx", "-p", dir, "-c", path, "-e", errpath, "-g", "daemon off;",
		      (char *)NULL);
		_exit(127);
	}
	/* nginx writes its pid file once it listens */
	for (int i = 0; access(pidpath, F_OK) != 0; i++) {
		int st;
		if (pid < 0 || waitpid(pid, &st, WNOHANG) != 0 || i > 10000) {
			fprintf(stderr, "soak_http: nginx did not start; see %s\n", errpath);
			exit(1);
		}
		usleep(1000);
	}
	return pid;
}

static void nginx_stop(pid_t pid, const char *dir)
{
	int st;
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "soak_http: could not remove %s\n", dir);
}

/* --- main ------------------------------------------------------------------------------------- */

struct run {
	struct soak *s;
	unsigned conc;
};

static int run_main(void *arg)
{
	struct run *rn = arg;
	struct soak *s = rn->s;
	int r = ur_http_client_init(&s->c, ur_current_loop(), NULL);
	if (r < 0)
		return r;
	struct ur_task **t = calloc(rn->conc, sizeof(*t));
	s->t_mark = ur_now_ns();
	s->cpu_mark = cpu_seconds();
	for (unsigned i = 0; i < rn->conc; i++)
		if ((r = ur_spawn(ur_current_loop(), &t[i], worker, s, NULL)) < 0)
			break;
	for (unsigned i = 0; i < rn->conc && t[i]; i++)
		ur_join(t[i]);
	free(t);
	struct ur_http_client_stats st;
	ur_http_client_stats(&s->c, &st);
	printf("client: %llu requests on %llu connections\n", (unsigned long long)st.requests,
	       (unsigned long long)st.connections);
	int c = ur_http_client_close(&s->c);
	return r < 0 ? r : c;
}

int main(int argc, char **argv)
{
	unsigned long total = 1000000;
	unsigned conc = 16;
	int opt;
	while ((opt = getopt(argc, argv, "n:c:")) != -1) {
		if (opt == 'n')
			total = strtoul(optarg, NULL, 10);
		else if (opt == 'c')
			conc = (unsigned)strtoul(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: soak_http [-n REQUESTS] [-c CONCURRENCY]\n");
			return 2;
		}
	}
	if (conc == 0 || conc > 1024 || total == 0) {
		fprintf(stderr, "soak_http: -c 1..1024, -n > 0\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < BODY_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		body[i] = (char)(x >> 32);
	}
	char dir[] = "/tmp/urio-soak-XXXXXX";
	uint16_t port = free_port();
	pid_t ngx = nginx_start(dir, port);

	struct soak *s = calloc(1, sizeof(*s));
	s->total = total;
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u/1k.bin", port);
	printf("soak_http: %lu GETs of %s, %u in flight, nginx 1 worker (pid %d); fds %d, RSS %ld "
	       "KiB at start\n",
	       total, s->url, conc, (int)ngx, count_fds(), rss_kib());
	fflush(stdout);
	uint64_t t0 = ur_now_ns();
	double c0 = cpu_seconds();
	int res = 0;
	struct run rn = {s, conc};
	int r = ur_run(NULL, run_main, &rn, &res);
	double secs = (double)(ur_now_ns() - t0) / 1e9;
	nginx_stop(ngx, dir);
	printf("done: %lu requests in %.1f s (%.0f req/s, %.1f us CPU/req), %lu failed, %lu wrong "
	       "bodies; fds %d, RSS %ld KiB after the client closed\n",
	       s->done, secs, (double)s->done / secs, (cpu_seconds() - c0) / (double)s->done * 1e6,
	       s->failed, s->wrong, count_fds(), rss_kib());
	if (s->failed)
		printf("first failure: %s\n", ur_strerror(s->first_err));
	bool flat = s->done < 2 * EVERY || s->fds_last == s->fds_first;
	if (s->done >= 2 * EVERY)
		printf("from %d to %d requests: fds %d -> %d, RSS %ld -> %ld KiB\n", EVERY,
		       (int)s->done, s->fds_first, s->fds_last, s->rss_first, s->rss_last);
	bool bad = s->failed || s->wrong || !flat;
	free(s);
	if (r < 0 || res < 0) {
		fprintf(stderr, "soak_http: %s\n", ur_strerror(r < 0 ? r : res));
		return 1;
	}
	return bad ? 1 : 0;
}
