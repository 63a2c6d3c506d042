/*
 * test-jsonscan: the scan run before json-glib parses a peer's JSON.  It
 * must let through everything strict JSON nested within the limit, count
 * only brackets outside strings (escaped quotes included), and refuse
 * what nests deeper or what json-glib would read differently from it
 * (single quotes, comments).
 */
#include <string.h>

#include "common/jsonscan.h"

static const char *
scan(const char *s, int max)
{
	return jsonscan_check(s, strlen(s), max);
}

static void
test_depth(void)
{
	g_autoptr(GString) deep = g_string_new(NULL);

	g_assert_null(scan("{\"a\": [1, {\"b\": []}]}", 4));
	g_assert_nonnull(scan("{\"a\": [1, {\"b\": []}]}", 3));
	for (int i = 0; i < 500000; i++)
		g_string_append_c(deep, '[');
	g_assert_nonnull(jsonscan_check(deep->str, deep->len, 64));
	/* Siblings do not add up. */
	g_assert_null(scan("[[1], [2], [3], {\"x\": 4}]", 2));
}

static void
test_strings(void)
{
	g_assert_null(scan("{\"a\": \"[[[[{{{{\"}", 1));
	g_assert_null(scan("{\"a\": \"\\\"[[[[\"}", 1));
	g_assert_null(scan("{\"a\": \"it's / fine\"}", 1));
	g_assert_nonnull(scan("{\"a\": \"\\\\\"[[[[", 1));
}

static void
test_not_strict(void)
{
	g_assert_nonnull(scan("{'a': 1}", 8));
	g_assert_nonnull(scan("{\"a\": 1 /* [[[[ */}", 8));
	g_assert_nonnull(scan("// x\n{}", 8));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/jsonscan/depth", test_depth);
	g_test_add_func("/jsonscan/strings", test_strings);
	g_test_add_func("/jsonscan/not-strict", test_not_strict);
	return g_test_run();
}
