/*
 * testhook: a test-only hold at a migration phase's entry, for the fault
 * matrix (tests/matrix/).  With TERN_TEST_HOLD=<dir> in ternd's
 * environment, reaching a hold point creates <dir>/<side>-<phase>.held
 * and the migration goes on only once the harness has removed that file
 * (or after TERN_TEST_HOLD_S seconds, 300 by default).  Without the
 * variable every hold is a no-op: the continuation runs at once.
 */
#pragma once

/* Continues the migration named ID; it looks ID up itself, because the
 * migration may have ended while it was held. */
typedef void (*TesthookFn)(const char *id);

/* Runs FN(ID) now, or, when holding, later from a main-loop timer (never
 * blocking the loop). */
void testhook_phase(const char *side, const char *phase, const char *id,
		    TesthookFn fn);

/* The same hold for a worker thread: blocks the calling thread (never
 * the main loop) until released. */
void testhook_phase_wait(const char *side, const char *phase);
