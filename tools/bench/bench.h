/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/bench.h - what the benchmarks share: statistics over repeated runs.
 */
#ifndef UR_BENCH_H
#define UR_BENCH_H

#include <stdlib.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of @v[0..n); sorts @v in place (ascending). */
static inline double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
