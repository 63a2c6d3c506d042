/*
 * tls: the API listener's certificate.
 *
 * When no certificate is configured, ternd makes a self-signed one at
 * first start (ECDSA P-256, ten years, the host name and loopback as
 * subject alternative names) and keeps it in the state directory, key mode
 * 0600.  Peers do not need a certificate authority: the SHA-256 fingerprint
 * is published (host.migrate_receive hands it to the source) and pinned.
 */
#include "daemon/daemon.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static gboolean
tls_gnutls_error(GError **error, const char *what, int rc)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what,
		    gnutls_strerror(rc));
	return FALSE;
}

static gboolean
tls_write(const char *path, const gnutls_datum_t *d, int mode, GError **error)
{
	if (!g_file_set_contents_full(path, (const char *)d->data, d->size,
				      G_FILE_SET_CONTENTS_CONSISTENT, mode,
				      error))
		return FALSE;
	return TRUE;
}

static gboolean
tls_generate(const char *cert_path, const char *key_path, GError **error)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t out = { 0 };
	char host[256] = "localhost";
	guint8 serial[16];
	time_t now = time(NULL);
	gboolean ok = FALSE;
	int rc;

	gethostname(host, sizeof host - 1);
	gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
	serial[0] &= 0x7f;
	if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
	    (rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
	    (rc = gnutls_x509_crt_init(&crt)) < 0 ||
	    (rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
	    (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (rc = gnutls_x509_crt_set_expiration_time(crt,
			now + 10L * 365 * 86400)) < 0 ||
	    (rc = gnutls_x509_crt_set_dn_by_oid(crt,
			GNUTLS_OID_X520_COMMON_NAME, 0, host,
			strlen(host))) < 0 ||
	    (rc = gnutls_x509_crt_set_subject_alt_name(crt,
			GNUTLS_SAN_DNSNAME, host, strlen(host),
			GNUTLS_FSAN_APPEND)) < 0 ||
	    (rc = gnutls_x509_crt_set_subject_alt_name(crt,
			GNUTLS_SAN_DNSNAME, "localhost", 9,
			GNUTLS_FSAN_APPEND)) < 0 ||
	    (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (rc = gnutls_x509_crt_set_key_usage(crt,
			GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (rc = gnutls_x509_crt_set_key_purpose_oid(crt,
			GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256,
					0)) < 0) {
		tls_gnutls_error(error, "generating the certificate", rc);
		goto out;
	}
	if ((rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM,
					      &out)) < 0) {
		tls_gnutls_error(error, "exporting the key", rc);
		goto out;
	}
	ok = tls_write(key_path, &out, 0600, error);
	gnutls_memset(out.data, 0, out.size);
	gnutls_free(out.data);
	out.data = NULL;
	if (!ok)
		goto out;
	ok = FALSE;
	if ((rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out)) < 0) {
		tls_gnutls_error(error, "exporting the certificate", rc);
		goto out;
	}
	ok = tls_write(cert_path, &out, 0644, error);
	gnutls_free(out.data);
	g_info("tls: made a self-signed certificate %s", cert_path);
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return ok;
}

char *
tls_fingerprint(GTlsCertificate *cert)
{
	g_autoptr(GByteArray) der = NULL;

	g_object_get(cert, "certificate", &der, NULL);
	if (der == NULL)
		return NULL;
	g_autofree char *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
							   der->data, der->len);
	GString *s = g_string_new(NULL);
	for (guint i = 0; hex[i]; i += 2)
		g_string_append_printf(s, "%s%c%c", i ? ":" : "",
				       g_ascii_toupper(hex[i]),
				       g_ascii_toupper(hex[i + 1]));
	return g_string_free(s, FALSE);
}

GTlsCertificate *
tls_load(const char *state_dir, const char *cert_path, const char *key_path,
	 GError **error)
{
	g_autofree char *dir = g_build_filename(state_dir, "tls", NULL);
	g_autofree char *c = NULL, *k = NULL;

	if (cert_path == NULL || key_path == NULL) {
		c = g_build_filename(dir, "cert.pem", NULL);
		k = g_build_filename(dir, "key.pem", NULL);
		if (!g_file_test(c, G_FILE_TEST_EXISTS) ||
		    !g_file_test(k, G_FILE_TEST_EXISTS)) {
			if (g_mkdir_with_parents(dir, 0700) != 0) {
				g_set_error(error, G_IO_ERROR,
					    G_IO_ERROR_FAILED, "mkdir %s", dir);
				return NULL;
			}
			if (!tls_generate(c, k, error))
				return NULL;
		}
		cert_path = c;
		key_path = k;
	}
	return g_tls_certificate_new_from_files(cert_path, key_path, error);
}
