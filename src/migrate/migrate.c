/*
 * migrate: what both sides share: opening the control channel over TLS,
 * and recovery from the journal at start.
 *
 * The control channel starts in plain text ("TERN-TLS/1 {}", answered
 * "TLS {}") and then becomes TLS on the same connection, with the
 * destination's API certificate.  The source pins it to the fingerprint
 * host.migrate_receive returned, so no certificate authority is needed:
 * the client learned the fingerprint over its own authenticated
 * connection to the destination.
 */
#include "migrate/migrate-int.h"

#include <string.h>

#include "common/xerr.h"
#include "qemu/driver.h"

typedef struct {
	char *fingerprint;
	ChanFn fn;
	gpointer data;
	ChanConnectFn done;
	gboolean tls;
	GCancellable *cancel;     /* the handshake's, on its deadline */
	guint deadline_id;
} Open;

static void
open_free(Open *o)
{
	if (o->deadline_id)
		g_source_remove(o->deadline_id);
	g_clear_object(&o->cancel);
	g_free(o->fingerprint);
	g_free(o);
}

static gboolean
open_handshake_late(gpointer data)
{
	Open *o = data;

	o->deadline_id = 0;
	g_cancellable_cancel(o->cancel);
	return G_SOURCE_REMOVE;
}

static gboolean
open_hex_equal(const char *a, const char *b)
{
	/* Compare hex digits only: colons and case are presentation. */
	for (;;) {
		while (*a == ':')
			a++;
		while (*b == ':')
			b++;
		if (*a == 0 || *b == 0)
			return *a == *b;
		if (g_ascii_tolower(*a) != g_ascii_tolower(*b))
			return FALSE;
		a++;
		b++;
	}
}

static gboolean
open_accept_cert(GTlsConnection *conn, GTlsCertificate *cert,
		 GTlsCertificateFlags errors, gpointer data)
{
	Open *o = data;
	g_autoptr(GByteArray) der = NULL;

	if (o->fingerprint == NULL || *o->fingerprint == 0) {
		g_warning("migrate: the destination's certificate is not "
			  "pinned (no fingerprint given); accepting it");
		return TRUE;
	}
	g_object_get(cert, "certificate", &der, NULL);
	g_autofree char *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
							   der->data, der->len);
	gboolean ok = open_hex_equal(hex, o->fingerprint);
	if (!ok)
		g_warning("migrate: the destination's certificate does not "
			  "match the expected fingerprint");
	return ok;
}

static void
open_handshake_done(GObject *src, GAsyncResult *res, gpointer data)
{
	Open *o = data;
	GError *e = NULL;
	GTlsConnection *tls = G_TLS_CONNECTION(src);

	if (!g_tls_connection_handshake_finish(tls, res, &e)) {
		if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			g_clear_error(&e);
			e = g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				"the TLS handshake took more than %d s",
				CHAN_DEADLINE_S);
		}
		o->done(NULL, e, o->data);
		g_error_free(e);
	} else {
		o->done(chan_new(G_IO_STREAM(tls), o->fn, o->data), NULL,
			o->data);
	}
	g_object_unref(tls);
	open_free(o);
}

static void
open_on_line(Chan *c, const char *verb, JsonObject *msg, const GError *error,
	     gpointer data)
{
	Open *o = data;
	GError *e = NULL;

	if (verb == NULL || strcmp(verb, "TLS") != 0) {
		chan_free(c);
		g_autoptr(GError) fail = xerr_new("INTERNAL_ERROR",
			"the destination did not start TLS on the migration "
			"channel", NULL);
		o->done(NULL, error ? error : fail, o->data);
		open_free(o);
		return;
	}
	g_autoptr(GIOStream) base = chan_steal_stream(c);
	GIOStream *tls = g_tls_client_connection_new(base, NULL, &e);
	if (tls == NULL) {
		o->done(NULL, e, o->data);
		g_error_free(e);
		open_free(o);
		return;
	}
	g_signal_connect(tls, "accept-certificate",
			 G_CALLBACK(open_accept_cert), o);
	o->cancel = g_cancellable_new();
	o->deadline_id = g_timeout_add_seconds(CHAN_DEADLINE_S,
					       open_handshake_late, o);
	g_tls_connection_handshake_async(G_TLS_CONNECTION(tls),
					 G_PRIORITY_DEFAULT, o->cancel,
					 open_handshake_done, o);
}

static void
open_connected(Chan *c, const GError *error, gpointer data)
{
	Open *o = data;

	if (error != NULL) {
		o->done(NULL, error, o->data);
		open_free(o);
		return;
	}
	if (!o->tls) {
		migrate_chan_set_handler(c, o->fn, o->data);
		o->done(c, NULL, o->data);
		open_free(o);
		return;
	}
	/* Written synchronously (a few bytes on a fresh socket): a queued
	 * write still pending when TLS takes the stream over would clash
	 * with the handshake. */
	chan_set_deadline(c, CHAN_DEADLINE_S);
	GOutputStream *out = chan_output(c);
	GError *e = NULL;
	if (!g_output_stream_write_all(out, "TERN-TLS/1 {}\n", 14, NULL, NULL,
				       &e)) {
		chan_free(c);
		o->done(NULL, e, o->data);
		g_error_free(e);
		open_free(o);
	}
}

void
migrate_src_open(const char *url, const char *fingerprint, ChanFn fn,
		 gpointer data, ChanConnectFn done)
{
	Open *o = g_new0(Open, 1);

	o->fingerprint = g_strdup(fingerprint);
	o->fn = fn;
	o->data = data;
	o->done = done;
	o->tls = g_str_has_prefix(url, "https:");
	chan_connect(url, open_on_line, o, open_connected);
}

/* ---- Recovery ------------------------------------------------------- */

static void
migrate_recover_now(Api *api, gpointer data)
{
	g_autoptr(GPtrArray) rows = store_journal_list(api->store);

	for (guint i = 0; i < rows->len; i++) {
		StoreJournal *j = rows->pdata[i];
		g_info("migrate: recovery: %s migration %s of VM %s was in "
		       "phase %s", j->side, j->id, j->vm_uuid, j->phase);
		if (strcmp(j->side, "src") == 0)
			migrate_src_recover(api, j);
		else
			migrate_dst_recover(api, j);
	}
}

void
migrate_recover(Api *api)
{
	/* Recovery needs the VMs' QEMUs re-attached first. */
	qemu_driver_when_ready(api, migrate_recover_now, NULL);
}
