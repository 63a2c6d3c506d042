/*
 * predict: a migration's expected duration, passes and downtime, and
 * whether it converges (see predict.c for the model).
 */
#pragma once

#include "migrate/migrate-int.h"

typedef struct {
	double memory_bytes;      /* first pass: non-zero guest memory */
	double dirty_bps;         /* guest dirty rate */
	double rate_bps;          /* stream rate expected */
	double cap_bps;           /* bandwidth option, 0 = none */
	double downtime_ms;       /* limit, 0 = QEMU's 300 ms */
	double setup_s;           /* before the stream: handshake, QEMU start */
	double zero_scan_s;       /* skipping untouched pages */
} PredictIn;

typedef struct {
	gboolean converges;
	int iterations;
	double total_s;           /* INFINITY when it does not converge */
	double downtime_ms;
	double rate_bps;
} PredictOut;

/* The model alone: pure, for tests and for the bench. */
void predict_model(const PredictIn *in, PredictOut *out);

/* Measures VM's dirty rate (one second) and memory, and calls DONE with
 * the prediction as a map {converges, iterations, total_s, downtime_ms,
 * rate_mib_s, dirty_mib_s, memory_mib, probe_mib_s, verdict} (borrowed).
 * PROBE_BPS is the channel probe's result, 0 when none was run. */
typedef void (*PredictFn)(JsonObject *prediction, gpointer data);
void predict_measure(Api *api, StoreObj *vm, const MigrateOptions *o,
		     double probe_bps, PredictFn done, gpointer data);

/* Learns from a finished migration: QEMU's stream rate for this mode,
 * its ratio to the probe, the setup time. */
void predict_learn(Api *api, const MigrateOptions *o, JsonObject *stats,
		   gint64 total_ms, double probe_bps);
