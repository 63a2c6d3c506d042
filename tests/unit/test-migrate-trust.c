/*
 * Unit tests for the p2p destination check (src/migrate/trust.c): a
 * pinned fingerprint wins and is normalised, a known_hosts line pins its
 * host:port only, an unknown https destination without trust on first use
 * is refused, and plain http is accepted for loopback only.  No network is
 * used: every case here is decided before a connection.
 */
#include <glib/gstdio.h>

#include "common/xerr.h"
#include "migrate/trust.h"

#define FP_A "ab:CD:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:" \
	     "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"
#define FP_A_NORM "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
		  "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

static void
test_normalise(void)
{
	g_autofree char *a = trust_fingerprint_normalise(FP_A);
	g_autofree char *b = trust_fingerprint_normalise(
		"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");

	g_assert_cmpstr(a, ==, FP_A_NORM);
	g_assert_cmpstr(b, ==, FP_A_NORM);
	g_assert_null(trust_fingerprint_normalise("AB:CD"));
	g_assert_null(trust_fingerprint_normalise("zz"));
	g_assert_null(trust_fingerprint_normalise(NULL));
}

static void
test_decisions(void)
{
	g_autofree char *dir = g_dir_make_tmp("test-trust-XXXXXX", NULL);
	g_autofree char *kh = g_build_filename(dir, "known_hosts", NULL);
	g_autoptr(GError) e = NULL;
	char *pin = NULL;

	/* Pinned by the caller. */
	g_assert_true(trust_p2p_pin(dir, "https://192.0.2.1:8443", FP_A,
				    FALSE, &pin, &e));
	g_assert_cmpstr(pin, ==, FP_A_NORM);
	g_clear_pointer(&pin, g_free);
	g_assert_false(trust_p2p_pin(dir, "https://192.0.2.1:8443", "AB:CD",
				     FALSE, &pin, &e));
	g_assert_true(xerr_is(e, "SSL_VERIFY_ERROR"));
	g_clear_error(&e);

	/* Neither pinned nor known, no first use: refused, nothing made. */
	g_assert_false(trust_p2p_pin(dir, "https://192.0.2.1:8443", "", FALSE,
				     &pin, &e));
	g_assert_true(xerr_is(e, "SSL_VERIFY_ERROR"));
	g_assert_null(pin);
	g_assert_false(g_file_test(kh, G_FILE_TEST_EXISTS));
	g_clear_error(&e);

	/* Known: pinned to its line, for that host:port only. */
	g_assert_true(g_file_set_contents(kh, "# comment\n192.0.2.1:8443 "
					  FP_A "\n", -1, NULL));
	g_assert_true(trust_p2p_pin(dir, "https://192.0.2.1:8443/", NULL,
				    FALSE, &pin, &e));
	g_assert_cmpstr(pin, ==, FP_A_NORM);
	g_clear_pointer(&pin, g_free);
	g_assert_false(trust_p2p_pin(dir, "https://192.0.2.1:9443", NULL,
				     FALSE, &pin, &e));
	g_clear_error(&e);

	/* Plain http: loopback only. */
	g_assert_true(trust_p2p_pin(dir, "http://127.0.0.1:8080", NULL, FALSE,
				    &pin, &e));
	g_assert_null(pin);
	g_assert_true(trust_p2p_pin(dir, "http://[::1]:8080", NULL, FALSE,
				    &pin, &e));
	g_assert_false(trust_p2p_pin(dir, "http://192.0.2.1:8080", FP_A, TRUE,
				     &pin, &e));
	g_assert_true(xerr_is(e, "SSL_VERIFY_ERROR"));
	g_clear_error(&e);
	g_assert_false(trust_p2p_pin(dir, "ftp://192.0.2.1", NULL, TRUE, &pin,
				     &e));
	g_clear_error(&e);

	g_unlink(kh);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/migrate-trust/normalise", test_normalise);
	g_test_add_func("/migrate-trust/decisions", test_decisions);
	return g_test_run();
}
