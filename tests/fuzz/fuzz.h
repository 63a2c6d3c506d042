/*
 * fuzz: what every libFuzzer target in tests/fuzz shares.
 *
 * Each fuzz-<target>.c feeds the bytes libFuzzer makes to one of tern's
 * decoders of network or QEMU input, the way the daemon would, and checks
 * what the decoder promises beyond "does not crash" (a decoded request
 * encodes back to a well-formed reply, an error is set exactly when nothing
 * is returned).  A broken promise aborts, which libFuzzer reports as a
 * crash and keeps the input.  Built only with meson -Dfuzz=true and clang
 * (tests/fuzz/meson.build); run by tools/fuzz.sh.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with WHAT when COND is false, in every build type. */
#define FUZZ_CHECK(cond, what) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz check failed: %s (%s)\n", what, #cond); \
		abort();						\
	}								\
} while (0)
