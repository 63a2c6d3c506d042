/*
 * test-migrate-predict: the pre-copy model of src/migrate/predict.c on
 * cases worked out by hand: an idle guest, a guest that converges in a
 * few passes, a guest that dirties faster than the link, and a bandwidth
 * cap that turns a converging migration into one that does not.
 */
#include <math.h>

#include "migrate/predict.h"

#define MiB (1024.0 * 1024.0)

static void
test_idle(void)
{
	PredictIn in = { .memory_bytes = 100 * MiB, .rate_bps = 100 * MiB,
			 .downtime_ms = 300, .setup_s = 0.5 };
	PredictOut out;

	predict_model(&in, &out);
	g_assert_true(out.converges);
	/* One full pass of 1 s, nothing dirtied, then the switchover. */
	g_assert_cmpint(out.iterations, ==, 2);
	g_assert_cmpfloat_with_epsilon(out.total_s, 1.5, 1e-6);
	g_assert_cmpfloat_with_epsilon(out.downtime_ms, 0, 1e-6);
}

static void
test_converges(void)
{
	/* 100 MiB at 100 MiB/s with 20 MiB/s dirtied: passes of 100, 20, 4
	 * MiB (1 s, 0.2 s, 0.04 s); 0.8 MiB left = 8 ms of downtime. */
	PredictIn in = { .memory_bytes = 100 * MiB, .dirty_bps = 20 * MiB,
			 .rate_bps = 100 * MiB, .downtime_ms = 30 };
	PredictOut out;

	predict_model(&in, &out);
	g_assert_true(out.converges);
	g_assert_cmpint(out.iterations, ==, 4);
	g_assert_cmpfloat_with_epsilon(out.downtime_ms, 8, 1e-6);
	g_assert_cmpfloat_with_epsilon(out.total_s, 1.0 + 0.2 + 0.04 + 0.008,
				       1e-6);
}

static void
test_diverges(void)
{
	PredictIn in = { .memory_bytes = 100 * MiB, .dirty_bps = 150 * MiB,
			 .rate_bps = 100 * MiB, .downtime_ms = 300 };
	PredictOut out;

	predict_model(&in, &out);
	g_assert_false(out.converges);
	g_assert_true(isinf(out.total_s));
}

static void
test_cap(void)
{
	PredictIn in = { .memory_bytes = 100 * MiB, .dirty_bps = 20 * MiB,
			 .rate_bps = 1000 * MiB, .cap_bps = 10 * MiB,
			 .downtime_ms = 300 };
	PredictOut out;

	predict_model(&in, &out);
	/* The cap, not the link, decides: 20 MiB/s dirtied > 10 MiB/s. */
	g_assert_cmpfloat_with_epsilon(out.rate_bps, 10 * MiB, 1e-6);
	g_assert_false(out.converges);

	in.cap_bps = 0;
	predict_model(&in, &out);
	g_assert_true(out.converges);
}

static void
test_no_rate(void)
{
	PredictIn in = { .memory_bytes = 100 * MiB };
	PredictOut out;

	predict_model(&in, &out);
	g_assert_false(out.converges);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/predict/idle", test_idle);
	g_test_add_func("/predict/converges", test_converges);
	g_test_add_func("/predict/diverges", test_diverges);
	g_test_add_func("/predict/cap", test_cap);
	g_test_add_func("/predict/no-rate", test_no_rate);
	return g_test_run();
}
