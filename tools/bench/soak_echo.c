/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/soak_echo.c - load: 10,000 concurrent connections held open against urecho for a
 * minute, with traffic, from one loop. Not a test.
 *
 *	soak_echo URECHO [-c CONNS] [-d SECONDS] [-t LOOPS]      (default 10000, 60, 2)
 *
 * Raises RLIMIT_NOFILE to its hard limit (urecho, started here on a port from the kernel,
 * inherits it), takes urecho's descriptors (/proc/PID/fd) and VmRSS once it listens, opens every
 * connection, then each sends 64 bytes, reads the echo back and sleeps 0-1 s, until the time is
 * up; every 10 s it prints the connections open, round trips and urecho's descriptors and RSS.
 * Then it closes everything and waits (up to 10 s) for urecho's descriptors to come back to the
 * baseline. Exits 1 if a connection failed, an echo differed or urecho kept descriptors.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <urio.h>
#include <urio/net.h>

#define MSG 64

struct soak {
	uint16_t port;
	unsigned conns;
	uint64_t end_ns;
	unsigned open, peak_open, connected, failed_connect, failed_io, wrong;
	int first_err;
	unsigned long long rounds;
	pid_t server;
	bool all_open; /* every connection is up: traffic starts together */
};

static int count_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

struct conn_arg {
	struct soak *s;
	unsigned id;
};

static void fail(struct soak *s, unsigned *counter, int err)
{
	if (!s->failed_connect && !s->failed_io && !s->wrong)
		s->first_err = err;
	(*counter)++;
}

static int conn(void *arg)
{
	struct conn_arg *ca = arg;
	struct soak *s = ca->s;
	struct ur_stream st;
	struct ur_connect_opts o = {.timeout_ns = 30 * UR_SEC};
	int r = ur_tcp_connect(&st, "127.0.0.1", s->port, &o);
	if (r < 0) {
		fail(s, &s->failed_connect, r);
		return r;
	}
	s->connected++;
	if (++s->open > s->peak_open)
		s->peak_open = s->open;
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)ca->id << 20 | 1);
	char msg[MSG], got[MSG];
	while (!s->all_open && ur_now_ns() < s->end_ns)
		ur_sleep(50 * UR_MSEC);
	while (ur_now_ns() < s->end_ns) {
		for (int i = 0; i < MSG; i++)
			msg[i] = (char)rnd(&x);
		ur_stream_set_timeout(&st, 30 * UR_SEC); /* a lost echo fails, never hangs */
		ssize_t n = ur_stream_write_all(&st, msg, MSG);
		if (n >= 0)
			n = ur_stream_read_exactly(&st, got, MSG);
		if (n < 0) {
			fail(s, &s->failed_io, (int)n);
			break;
		}
		if (memcmp(msg, got, MSG) != 0) {
			fail(s, &s->wrong, 0);
			break;
		}
		s->rounds++;
		ur_sleep(rnd(&x) % UR_SEC);
	}
	s->open--;
	return ur_stream_close(&st);
}

static int reporter(void *arg)
{
	struct soak *s = arg;
	uint64_t t0 = ur_now_ns();
	unsigned long long last = 0;
	while (ur_now_ns() < s->end_ns) {
		if (ur_sleep(10 * UR_SEC) < 0)
			break;
		printf("%5.0f s  open %u  round trips %llu (%.0f/s)  urecho: fds %d, RSS %ld KiB\n",
		       (double)(ur_now_ns() - t0) / 1e9, s->open, s->rounds,
		       (double)(s->rounds - last) / 10.0, count_fds(s->server), rss_kib(s->server));
		fflush(stdout);
		last = s->rounds;
	}
	return 0;
}

static int soak_main(void *arg)
{
	struct soak *s = arg;
	struct ur_task **t = calloc(s->conns, sizeof(*t));
	struct conn_arg *ca = calloc(s->conns, sizeof(*ca));
	struct ur_task *rep;
	int r = 0;
	uint64_t t0 = ur_now_ns();
	/* connect in waves of 500, so urecho's backlog is never the question */
	for (unsigned i = 0; i < s->conns; i++) {
		ca[i] = (struct conn_arg){s, i};
		if ((r = ur_spawn(ur_current_loop(), &t[i], conn, &ca[i], NULL)) < 0) {
			fprintf(stderr, "soak_echo: spawn: %s\n", ur_strerror(r));
			s->conns = i;
			break;
		}
		if (i % 500 == 499)
			while (s->connected + s->failed_connect < i + 1)
				ur_sleep(UR_MSEC);
	}
	while (s->connected + s->failed_connect < s->conns)
		ur_sleep(UR_MSEC);
	printf("%u connections open in %.2f s (%u failed); urecho: fds %d, RSS %ld KiB\n",
	       s->connected, (double)(ur_now_ns() - t0) / 1e9, s->failed_connect,
	       count_fds(s->server), rss_kib(s->server));
	fflush(stdout);
	s->end_ns = ur_now_ns() + (s->end_ns - t0); /* the minute starts with everyone open */
	s->all_open = true;
	ur_spawn(ur_current_loop(), &rep, reporter, s, NULL);
	for (unsigned i = 0; i < s->conns; i++)
		ur_join(t[i]);
	ur_task_cancel(rep);
	ur_join(rep);
	free(t);
	free(ca);
	return 0;
}

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("soak_echo: port");
		exit(1);
	}
	close(fd);
	return ntohs(a.sin_port);
}

/* Starts urecho and waits until it accepts a connection. */
static pid_t urecho_start(const char *bin, uint16_t port, const char *loops)
{
	char p[16];
	snprintf(p, sizeof(p), "%u", port);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		execl(bin, "urecho", "-H", "127.0.0.1", "-p", p, "-t", loops, "--grace", "1",
		      (char *)NULL);
		_exit(127);
	}
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (int i = 0;; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			break;
		int st;
		if (pid < 0 || waitpid(pid, &st, WNOHANG) != 0 || i > 10000) {
			fprintf(stderr, "soak_echo: urecho did not start\n");
			exit(1);
		}
		usleep(1000);
	}
	return pid;
}

int main(int argc, char **argv)
{
	struct soak s = {.conns = 10000};
	unsigned secs = 60, nrounds = 1;
	const char *loops = "2";
	int opt;
	while ((opt = getopt(argc, argv, "c:d:t:r:")) != -1) {
		if (opt == 'c')
			s.conns = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'd')
			secs = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 't')
			loops = optarg;
		else if (opt == 'r')
			nrounds = (unsigned)strtoul(optarg, NULL, 10);
		else
			goto usage;
	}
	if (optind != argc - 1 || s.conns == 0 || nrounds == 0) {
	usage:
		fprintf(stderr,
		        "usage: soak_echo URECHO [-c CONNS] [-d SECONDS] [-t LOOPS] [-r ROUNDS]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < (rlim_t)s.conns + 64) {
		fprintf(stderr, "soak_echo: RLIMIT_NOFILE %llu is too low for %u connections\n",
		        (unsigned long long)rl.rlim_cur, s.conns);
		return 1;
	}
	s.port = free_port();
	s.server = urecho_start(argv[optind], s.port, loops);
	/* the probe connection above is gone once urecho's count settles back */
	int fds0;
	for (int i = 0; (fds0 = count_fds(s.server)) < 0 || i < 100; i++)
		usleep(1000);
	long rss0 = rss_kib(s.server);
	printf("soak_echo: %u connections for %u s against urecho -t %s (pid %d), RLIMIT_NOFILE "
	       "%llu; urecho: fds %d, RSS %ld KiB at start\n",
	       s.conns, secs, loops, (int)s.server, (unsigned long long)rl.rlim_cur, fds0, rss0);
	fflush(stdout);
	/* -r: rounds against the same urecho, to tell a high-water mark (RSS stays put after the
	 * first round) from a leak (it grows every round) */
	int r = 0, fds = -1;
	bool bad = false;
	for (unsigned round = 1; round <= nrounds && r >= 0; round++) {
		struct soak base = {.port = s.port, .conns = s.conns, .server = s.server};
		s = base;
		s.end_ns = ur_now_ns() + (uint64_t)secs * UR_SEC;
		int res = 0;
		r = ur_run(NULL, soak_main, &s, &res);

		for (int i = 0; i < 1000 && (fds = count_fds(s.server)) != fds0; i++)
			usleep(10000);
		long rss = rss_kib(s.server);
		printf("round %u done: %u connected (peak %u open at once), %llu round trips, %u "
		       "connect failures, %u I/O failures, %u wrong echoes\n",
		       round, s.connected, s.peak_open, s.rounds, s.failed_connect, s.failed_io,
		       s.wrong);
		if (s.failed_connect || s.failed_io)
			printf("first failure: %s\n", ur_strerror(s.first_err));
		printf("urecho after round %u: fds %d (baseline %d), RSS %ld KiB (baseline %ld "
		       "KiB)\n",
		       round, fds, fds0, rss, rss0);
		fflush(stdout);
		bad |= s.failed_connect || s.failed_io || s.wrong || fds != fds0;
	}
	kill(s.server, SIGTERM);
	int st;
	waitpid(s.server, &st, 0);
	if (r < 0) {
		fprintf(stderr, "soak_echo: %s\n", ur_strerror(r));
		return 1;
	}
	return bad ? 1 : 0;
}
