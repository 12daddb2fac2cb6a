/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_splice.c - splice and tee (ur_splice_start, ur_tee_start and their task-style
 * calls): the bytes, zero length, cancellation, refused flags.
 */
#include "io_fixtures.h"

TestSuite(splice, .timeout = 30, .init = dir_setup, .fini = dir_teardown);

#define LEN 4096

Test(splice, file_to_pipe_to_file_moves_the_bytes)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SPLICE, "IORING_OP_SPLICE (5.7)");
	uint8_t data[LEN], back[LEN];
	fill_pattern(data, LEN, 5);
	int in = make_file("in", data, LEN);
	int out = make_file("out", "", 0);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	struct op o;

	START(&o, ur_splice_start(l, &o.f, in, 0, p[1], UR_OFF_CURRENT, LEN, 0));
	ASSERT_RES(op_wait(l, &o), LEN);
	START(&o, ur_splice_start(l, &o.f, p[0], UR_OFF_CURRENT, out, 0, LEN, 0));
	ASSERT_RES(op_wait(l, &o), LEN);
	cr_assert_eq(pread(out, back, LEN, 0), LEN);
	cr_assert_arr_eq(back, data, LEN);
	/* at end of the input file: 0 */
	START(&o, ur_splice_start(l, &o.f, in, LEN, p[1], UR_OFF_CURRENT, LEN, 0));
	ASSERT_RES(op_wait(l, &o), 0);

	close(in);
	close(out);
	close(p[0]);
	close(p[1]);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(splice, tee_duplicates_without_consuming)
{
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_TEE, "IORING_OP_TEE (5.8)");
	int a[2], b[2];
	cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(b, O_CLOEXEC), 0);
	cr_assert_eq(write(a[1], "hello", 5), 5);
	struct op o;
	START(&o, ur_tee_start(l, &o.f, a[0], b[1], 5, 0));
	ASSERT_RES(op_wait(l, &o), 5);
	char x[8] = {0}, y[8] = {0};
	cr_assert_eq(read(b[0], x, sizeof(x)), 5);
	cr_assert_eq(read(a[0], y, sizeof(y)), 5);
	cr_assert_str_eq(x, "hello");
	cr_assert_str_eq(y, "hello");
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
	}
	t_loop_done(&l);
}

Test(splice, zero_length_completes_with_zero)
{
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_TEE, "IORING_OP_TEE (5.8)");
	int a[2], b[2];
	cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(b, O_CLOEXEC), 0);
	cr_assert_eq(write(a[1], "x", 1), 1);
	struct op o;
	START(&o, ur_splice_start(l, &o.f, a[0], UR_OFF_CURRENT, b[1], UR_OFF_CURRENT, 0, 0));
	ASSERT_RES(op_wait(l, &o), 0);
	START(&o, ur_tee_start(l, &o.f, a[0], b[1], 0, 0));
	ASSERT_RES(op_wait(l, &o), 0);
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
	}
	t_loop_done(&l);
}

Test(splice, cancelled_while_waiting_for_input)
{
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SPLICE, "IORING_OP_SPLICE (5.7)");
	int a[2], b[2];
	cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(b, O_CLOEXEC), 0);
	struct op o;
	START(&o, ur_splice_start(l, &o.f, a[0], UR_OFF_CURRENT, b[1], UR_OFF_CURRENT, LEN, 0));
	settle(l);
	cr_assert_eq(o.calls, 0);
	cr_assert_eq(ur_cancel(&o.f), 0);
	int r = op_wait(l, &o);
	/* a blocking splice runs in io-wq, where cancellation interrupts it */
	cr_assert(r == -ECANCELED || r == -EINTR, "got %d (%s)", r, ur_strerror_name(r));
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
	}
	t_loop_done(&l);
}

Test(splice, fixed_input_is_refused_and_never_completes)
{
	struct ur_loop *l = t_loop();
	struct op o;
	op_init(&o);
	ASSERT_RES(ur_splice_start(l, &o.f, 0, 0, 1, 0, 1, SPLICE_F_FD_IN_FIXED), -EINVAL);
	ASSERT_RES(ur_tee_start(l, &o.f, 0, 1, 1, SPLICE_F_FD_IN_FIXED), -EINVAL);
	settle(l);
	cr_assert_eq(o.calls, 0);
	t_loop_done(&l);
}

static int task_splice(void *arg)
{
	(void)arg;
	int a[2], b[2];
	cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(b, O_CLOEXEC), 0);
	cr_assert_eq(write(a[1], "abcdef", 6), 6);
	ASSERT_RES((int)ur_tee(a[0], b[1], 6, 0), 6);
	ASSERT_RES((int)ur_splice(a[0], UR_OFF_CURRENT, b[1], UR_OFF_CURRENT, 6, 0), 6);
	char x[16] = {0};
	cr_assert_eq(read(b[0], x, sizeof(x)), 12);
	cr_assert_str_eq(x, "abcdefabcdef");
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
	}
	return 0;
}

Test(splice, task_style_calls)
{
	int result = -1;
	cr_assert_eq(t_run(task_splice, NULL, &result), 0);
	cr_assert_eq(result, 0);
}
