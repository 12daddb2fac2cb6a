/* SPDX-License-Identifier: MIT */
/*
 * core/group.c - task groups (asyncio.TaskGroup): spawn into a group, wait for all, the first
 * failure cancels the rest.
 *
 * Members are ordinary tasks whose future's continuation is the group's: it records the first
 * error, cancels the other members at that moment, and frees the member (its result is dropped,
 * as for a detached task). The group's own future is a program-completed one (kind GROUP
 * in core/ops.h), begun when somebody starts waiting and completed (next turn, never
 * inline) once no member is left. Its cancellation, like a task future's, is a request to the
 * members: it completes only when they have all returned, so no member outlives the wait and the
 * memory it was given.
 */
#include <errno.h>

#include "internal.h"

enum {
	G_CANCELLED = 1u << 0, /* a member failed, or the group was cancelled */
	G_WAITED = 1u << 1,    /* the future is begun: the group finishes once it is empty */
	G_FINISHED = 1u << 2,  /* the future has been completed: no more members */
};

void ur_group_init(struct ur_task_group *g, struct ur_loop *loop)
{
	*g = (struct ur_task_group){.loop_ = loop};
	ur_future_init(&g->fut_, NULL, NULL);
}

static void cancel_members(struct ur_task_group *g)
{
	g->state_ |= G_CANCELLED;
	for (struct ur_task *t = g->members_; t; t = t->grp_next)
		ur_task_cancel(t); /* never completes a task inline, so the list holds */
}

static void maybe_finish(struct ur_task_group *g)
{
	if ((g->state_ & (G_WAITED | G_FINISHED)) != G_WAITED || g->live_)
		return;
	g->state_ |= G_FINISHED;
	ur__complete_local(g->loop_, &g->fut_, g->err_);
}

static void member_done(struct ur_future *f, void *arg)
{
	struct ur_task *t = (struct ur_task *)(void *)f; /* the future is the task's first member */
	struct ur_task_group *g = arg;
	int res = f->res;

	*t->grp_prev = t->grp_next;
	if (t->grp_next)
		t->grp_next->grp_prev = t->grp_prev;
	ur__task_free(t);
	g->live_--;
	if (res < 0 && !g->err_) {
		g->err_ = res;
		cancel_members(g);
	}
	maybe_finish(g);
}

int ur_group_spawn(struct ur_task_group *g, ur_task_fn *fn, void *arg,
                   const struct ur_task_opts *opts)
{
	struct ur_task *t;
	if (g->state_ & G_FINISHED)
		return -EINVAL;
	int r = ur_spawn(g->loop_, &t, fn, arg, opts);
	if (r < 0)
		return r;
	t->group = g;
	t->grp_next = g->members_;
	if (g->members_)
		g->members_->grp_prev = &t->grp_next;
	t->grp_prev = &g->members_;
	g->members_ = t;
	g->live_++;
	ur_future_set_callback(&t->fut, member_done, g);
	if (g->state_ & G_CANCELLED)
		ur_task_cancel(t); /* it never runs: completes with -ECANCELED */
	return 0;
}

int ur_group_cancel(struct ur_task_group *g)
{
	if (g->state_ & G_CANCELLED)
		return -EALREADY;
	if (!g->err_)
		g->err_ = -ECANCELED;
	cancel_members(g);
	return 0;
}

int ur__group_cancel_future(struct ur_future *f)
{
	return ur_group_cancel((struct ur_task_group *)(void *)f); /* fut_ is its first member */
}

struct ur_future *ur_group_future(struct ur_task_group *g)
{
	if (!(g->state_ & G_WAITED)) {
		g->state_ |= G_WAITED;
		ur__future_begin_local(g->loop_, &g->fut_, UR__OP_GROUP);
		maybe_finish(g);
	}
	return &g->fut_;
}

static int group_wait_call(struct ur_task_group *g)
{
	/* Outside a task the wait turns the loop, which a loop callback cannot do: refuse first. */
	if (!ur__task_self() && g->loop_->running)
		return -EBUSY;
	return ur_await(ur_group_future(g));
}

int ur_group_wait(struct ur_task_group *g)
{
	UR__DEADLINE_CALL(int, group_wait_call(g));
}
