/* test_gate.c - the platform's share of the FUSE workers (fs/gate.c):
 * slots, a bounded queue, a bounded wait, and EAGAIN beyond them. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "gate.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct waiter {
	struct gate *g;
	int r;
	double took;
};

static void *wait_for_slot(void *v)
{
	struct waiter *w = v;
	double t0 = now();

	w->r = gate_enter(w->g);
	w->took = now() - t0;
	return NULL;
}

static void wait_until_waiting(struct gate *g, unsigned n)
{
	struct gate_stats st;

	for (int i = 0; i < 2000; i++) {
		gate_stats(g, &st);
		if (st.waiting >= n)
			return;
		usleep(1000);
	}
}

int main(void)
{
	struct gate *g = gate_new(2, 1, 1);
	struct gate_stats st;
	struct waiter w = { .g = g }, late = { .g = g };
	pthread_t t;
	double t0;

	CHECK(gate_enter(g) == 0, "first slot");
	CHECK(gate_enter(g) == 0, "second slot");
	gate_stats(g, &st);
	CHECK(st.busy == 2 && st.waiting == 0, "busy %u waiting %u", st.busy, st.waiting);

	/* one may wait; a second finds the queue full and is refused at once */
	pthread_create(&t, NULL, wait_for_slot, &w);
	wait_until_waiting(g, 1);
	t0 = now();
	CHECK(gate_enter(g) == -EAGAIN, "a full queue refuses");
	CHECK(now() - t0 < 0.5, "refused at once, not after %.2f s", now() - t0);
	/* a slot left: the waiter takes it */
	gate_leave(g);
	pthread_join(t, NULL);
	CHECK(w.r == 0, "the waiter got the freed slot: %d", w.r);
	CHECK(w.took < 0.9, "the waiter waited %.2f s", w.took);

	/* no slot frees: the waiter gives up after wait_s */
	pthread_create(&t, NULL, wait_for_slot, &late);
	pthread_join(t, NULL);
	CHECK(late.r == -EAGAIN, "a wait without a slot ends in EAGAIN: %d", late.r);
	CHECK(late.took >= 0.9 && late.took < 3, "gave up after %.2f s", late.took);
	gate_stats(g, &st);
	CHECK(st.busy == 2 && st.waiting == 0 && st.refused == 2, "busy %u waiting %u refused %llu",
	      st.busy, st.waiting, (unsigned long long)st.refused);
	gate_leave(g);
	gate_leave(g);
	gate_stats(g, &st);
	CHECK(st.busy == 0, "all left: busy %u", st.busy);
	gate_free(g);
	return failures != 0;
}
