/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_resolve.c - the resolver: numeric hosts, localhost, names that do not exist,
 * the cache, cancellation and deadlines. Nothing here leaves the machine: "localhost" comes from
 * /etc/hosts, ".invalid" is refused without a query, and the rest uses a lookup function.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>

/* enomem also refuses spawns and stacks (core/fault.h): ur_run itself may then fail. */
#define T_FAULT_UNSAFE_FILE "enomem"
#define T_FAULT_UNSAFE_WHY  "each test asserts its ur_run succeeds"
#include "../helpers.h"

static bool is_loopback(const struct ur_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24 == 127;
	if (a->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	return false;
}

Test(resolve, numeric_hosts_need_no_task_and_no_thread)
{
	struct ur_addr a[4];
	char buf[64];
	struct ur_resolve_stats st;

	ASSERT_RES(ur_resolve("127.0.0.1", 8080, NULL, a, 4), 1);
	cr_assert_eq(a[0].ss.ss_family, AF_INET);
	cr_assert_eq(a[0].len, sizeof(struct sockaddr_in));
	cr_assert_str_eq(ur_addr_format(&a[0], buf, sizeof(buf)), "127.0.0.1:8080");
	ASSERT_RES(ur_resolve("::1", 443, NULL, a, 4), 1);
	cr_assert_eq(a[0].ss.ss_family, AF_INET6);
	cr_assert_str_eq(ur_addr_format(&a[0], buf, sizeof(buf)), "[::1]:443");
	ASSERT_RES(ur_resolve("[2001:db8::5]", 1, NULL, a, 4), 1);
	cr_assert_str_eq(ur_addr_format(&a[0], buf, sizeof(buf)), "[2001:db8::5]:1");
	cr_assert_eq(ur_addr_port(&a[0]), 1);
	ASSERT_RES(ur_resolve("fe80::1%1", 7, NULL, a, 4), 1);
	cr_assert_eq(((struct sockaddr_in6 *)&a[0].ss)->sin6_scope_id, 1);

	/* a numeric host of the other family than asked is not found, still without a thread */
	struct ur_resolve_opts v6 = {.family = AF_INET6};
	ASSERT_RES(ur_resolve("10.0.0.1", 1, &v6, a, 4), UR_ENONAME);

	ur_resolve_stats(&st);
	cr_assert_eq(st.lookups, 0);
	cr_assert_eq(st.misses, 0);
}

Test(resolve, bad_arguments)
{
	struct ur_addr a;
	ASSERT_RES(ur_resolve("", 1, NULL, &a, 1), -EINVAL);
	ASSERT_RES(ur_resolve(NULL, 1, NULL, &a, 1), -EINVAL);
	ASSERT_RES(ur_resolve("127.0.0.1", 1, NULL, &a, 0), -EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ASSERT_RES(ur_resolve(longname, 1, NULL, &a, 1), -EINVAL);
	struct ur_resolve_opts bad = {.family = AF_UNIX};
	ASSERT_RES(ur_resolve("localhost", 1, &bad, &a, 1), UR_EFAMILY);
	/* a name (not numeric) needs a task */
	ASSERT_RES(ur_resolve("localhost", 1, NULL, &a, 1), UR_ENOTASK);
	ASSERT_RES(ur_addr_numeric("localhost", 1, &a), -EINVAL);
	ASSERT_RES(ur_addr_numeric("1.2.3", 1, &a), -EINVAL);
	ASSERT_RES(ur_addr_numeric("[::1", 1, &a), -EINVAL);
	ASSERT_RES(ur_addr_numeric("::1%", 1, &a), -EINVAL);
}

struct lookup {
	const char *host;
	struct ur_resolve_opts o;
	struct ur_addr a[UR_RESOLVE_MAX];
	int res[2];
};

static int resolve_twice(void *arg)
{
	struct lookup *k = arg;
	k->res[0] = ur_resolve(k->host, 5000, &k->o, k->a, UR_RESOLVE_MAX);
	k->res[1] = ur_resolve(k->host, 5001, &k->o, k->a, UR_RESOLVE_MAX);
	return 0;
}

Test(resolve, localhost_then_from_the_cache)
{
	struct lookup k = {.host = "localhost"};
	struct ur_loop *l = t_loop();
	struct ur_resolve_stats st;

	ASSERT_RES(ur_run(l, resolve_twice, &k, NULL), 0);
	cr_assert_geq(k.res[0], 1, "%s", ur_strerror(k.res[0]));
	cr_assert_eq(k.res[1], k.res[0]);
	for (int i = 0; i < k.res[1]; i++) {
		cr_assert(is_loopback(&k.a[i]));
		cr_assert_eq(ur_addr_port(&k.a[i]),
		             5001); /* the port is the caller's, not the cache's */
	}
	ur_resolve_stats(&st);
	cr_assert_eq(st.lookups, 2);
	cr_assert_eq(st.misses, 1);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.failures, 0);
	t_loop_done(&l);
}

Test(resolve, a_name_that_does_not_exist)
{
	struct lookup k = {.host = "no-such-host.urio-test.invalid"};
	struct ur_loop *l = t_loop();
	struct ur_resolve_stats st;

	ASSERT_RES(ur_run(l, resolve_twice, &k, NULL), 0);
	ASSERT_RES(k.res[0], UR_ENONAME);
	ASSERT_RES(k.res[1], UR_ENONAME);
	cr_assert_str_eq(ur_strerror(k.res[0]), "name not found");
	cr_assert_str_eq(ur_strerror_name(k.res[0]), "UR_ENONAME");
	ur_resolve_stats(&st);
	cr_assert_eq(st.failures, 2);
	cr_assert_eq(st.entries, 0); /* failures are not cached */
	t_loop_done(&l);
}

/* A lookup function: answers "a.test" and "b.test" with two addresses, fails the rest. */
static atomic_int fake_calls;
static int fake(const char *host, int family, struct ur_addr *out, size_t max, void *arg)
{
	(void)family;
	(void)max;
	atomic_fetch_add(&fake_calls, 1);
	if (strcmp(host, "a.test") == 0 || strcmp(host, "b.test") == 0) {
		ur_addr_numeric("::1", 0, &out[0]);
		ur_addr_numeric("127.0.0.2", 0, &out[1]);
		return 2;
	}
	return (int)(intptr_t)arg;
}

static int resolve_names(void *arg)
{
	struct lookup *k = arg;
	static const char *names[] = {"a.test", "b.test", "a.test", "b.test"};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ur_resolve(names[i], 1, &k->o, k->a, UR_RESOLVE_MAX), 2);
	return 0;
}

Test(resolve, cache_size_limit_and_ttl)
{
	struct lookup k = {.o = {.fn = fake}};
	struct ur_loop *l = t_loop();
	struct ur_resolve_stats st;

	/* one entry: a, b, a, b all miss, each evicting the other */
	ASSERT_RES(ur_resolve_cache_config(1, 60 * UR_SEC), 0);
	ASSERT_RES(ur_run(l, resolve_names, &k, NULL), 0);
	ur_resolve_stats(&st);
	cr_assert_eq(st.misses, 4);
	cr_assert_eq(st.hits, 0);
	cr_assert_eq(st.evictions, 3);
	cr_assert_eq(st.entries, 1);

	/* two entries: the second round hits */
	ASSERT_RES(ur_resolve_cache_config(2, 60 * UR_SEC), 0);
	ur_resolve_cache_clear();
	ASSERT_RES(ur_run(l, resolve_names, &k, NULL), 0);
	ur_resolve_stats(&st);
	cr_assert_eq(st.misses, 6);
	cr_assert_eq(st.hits, 2);

	/* a TTL of 1 ns: everything has expired by the next lookup */
	ASSERT_RES(ur_resolve_cache_config(2, 1), 0);
	ur_resolve_cache_clear();
	ASSERT_RES(ur_run(l, resolve_names, &k, NULL), 0);
	ur_resolve_stats(&st);
	cr_assert_eq(st.misses, 10);
	cr_assert_eq(st.hits, 2);
	cr_assert_eq(atomic_load(&fake_calls), 10);

	/* caching off, and the per-call switch */
	ASSERT_RES(ur_resolve_cache_config(0, 60 * UR_SEC), 0);
	ASSERT_RES(ur_run(l, resolve_names, &k, NULL), 0);
	ur_resolve_stats(&st);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.misses, 14);
	ASSERT_RES(ur_resolve_cache_config(65537, 1), -EINVAL);
	t_loop_done(&l);
}

static int resolve_one(void *arg)
{
	struct lookup *k = arg;
	k->res[0] = ur_resolve(k->host, 1, &k->o, k->a, UR_RESOLVE_MAX);
	return 0;
}

Test(resolve, failure_texts_from_the_lookup)
{
	static const struct {
		int code;
		const char *text;
	} want[] = {
	    {UR_ENONAME, "name not found"},
	    {UR_ENAMETEMP, "temporary failure in name resolution"},
	    {UR_ENAMEFAIL, "non-recoverable failure in name resolution"},
	    {UR_ERESOLVE, "name resolution failed"},
	};
	struct ur_loop *l = t_loop();
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct lookup k = {.host = "c.test",
		                   .o = {.fn = fake, .fn_arg = (void *)(intptr_t)want[i].code}};
		ASSERT_RES(ur_run(l, resolve_one, &k, NULL), 0);
		ASSERT_RES(k.res[0], want[i].code);
		cr_assert_str_eq(ur_strerror(k.res[0]), want[i].text);
	}
	t_loop_done(&l);
}

/* A lookup that blocks until the test lets it go. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool release;
	atomic_bool started, finished;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false};

static int slow(const char *host, int family, struct ur_addr *out, size_t max, void *arg)
{
	(void)host, (void)family, (void)max, (void)arg;
	atomic_store(&gate.started, true);
	pthread_mutex_lock(&gate.lock);
	while (!gate.release)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
	ur_addr_numeric("127.0.0.1", 0, &out[0]);
	atomic_store(&gate.finished, true);
	return 1;
}

static void gate_open(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.release = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

static int cancel_mid_lookup(void *arg)
{
	struct lookup *k = arg;
	struct ur_task *t;
	ASSERT_RES(ur_spawn(ur_current_loop(), &t, resolve_one, k, NULL), 0);
	while (!atomic_load(&gate.started))
		ur_sleep(UR_MSEC); /* waiting for the worker to be inside the lookup */
	ASSERT_RES(ur_task_cancel(t), 0);
	ASSERT_RES(ur_join(t), 0);
	/* the task is back while the lookup still blocks on its thread */
	cr_assert_not(atomic_load(&gate.finished));
	ASSERT_RES(k->res[0], -ECANCELED);
	gate_open();
	return 0;
}

Test(resolve, cancel_mid_lookup_returns_at_once)
{
	t_skip_under_valgrind();
	struct lookup k = {.host = "slow.test", .o = {.fn = slow}};
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, cancel_mid_lookup, &k, NULL), 0);
	t_loop_done(&l); /* waits for the worker: nothing leaks (ASan) */
	cr_assert(atomic_load(&gate.finished));
}

static int lookup_with_deadline(void *arg)
{
	struct lookup *k = arg;
	ur_deadline(20 * UR_MSEC);
	k->res[0] = ur_resolve(k->host, 1, &k->o, k->a, UR_RESOLVE_MAX);
	cr_assert_not(atomic_load(&gate.finished));
	gate_open();
	return 0;
}

Test(resolve, deadline_mid_lookup)
{
	t_skip_under_valgrind();
	struct lookup k = {.host = "slow.test", .o = {.fn = slow}};
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, lookup_with_deadline, &k, NULL), 0);
	ASSERT_RES(k.res[0], -ETIMEDOUT);
	t_loop_done(&l);
}

static int never(const char *host, int family, struct ur_addr *out, size_t max, void *arg)
{
	(void)host, (void)family, (void)out, (void)max;
	atomic_store((atomic_bool *)arg, true);
	return 1;
}

static int lookup_past_deadline(void *arg)
{
	struct lookup *k = arg;
	ur_deadline(0); /* spent before the lookup could be queued: its job is freed (ASan) */
	k->res[0] = ur_resolve(k->host, 1, &k->o, k->a, UR_RESOLVE_MAX);
	return 0;
}

Test(resolve, deadline_already_past)
{
	atomic_bool ran = false;
	struct lookup k = {.host = "never.test", .o = {.fn = never, .fn_arg = &ran}};
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, lookup_past_deadline, &k, NULL), 0);
	ASSERT_RES(k.res[0], -ETIMEDOUT);
	cr_assert_not(atomic_load(&ran));
	t_loop_done(&l);
}

Test(resolve, format_unix_addresses)
{
	struct ur_addr a;
	char buf[64];
	ASSERT_RES(ur_addr_unix("/tmp/x.sock", &a), 0);
	cr_assert_str_eq(ur_addr_format(&a, buf, sizeof(buf)), "unix:/tmp/x.sock");
	ASSERT_RES(ur_addr_unix("@abstract", &a), 0);
	cr_assert_str_eq(ur_addr_format(&a, buf, sizeof(buf)), "unix:@abstract");
	char longp[200];
	memset(longp, 'p', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ASSERT_RES(ur_addr_unix(longp, &a), -ENAMETOOLONG);
}
