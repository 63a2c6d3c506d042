/*
 * test-migrate-relay: the source's TLS-PSK relay of tunnelled, secure
 * migrations.  The relay encrypts what "QEMU" writes to its socketpair end
 * onto a connection whose other end is a GnuTLS PSK server set up the way
 * QEMU's tls-creds-psk server is (MIGRATE_TLS_PRIORITY plus QEMU's PSK key
 * exchanges), reading 32 KiB at a time as QEMU's loader does.  Bytes must
 * arrive intact and in order; a server with another key must refuse the
 * relay without a byte passing; a server that hangs up without a TLS
 * goodbye after the whole stream (as QEMU does) is a clean end, and so is
 * one that goes silent without hanging up, after a few seconds.
 */
#include <gnutls/gnutls.h>
#include <signal.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/migrate-int.h"

#define KEY_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

typedef struct {
	int ended;
	int failed;
} Ends;

static void
on_done(const char *error, guint64 bytes, gpointer data)
{
	Ends *e = data;

	e->ended++;
	if (error != NULL)
		e->failed++;
}

static void
run_until(Ends *e, int n)
{
	gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

	while (e->ended < n && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpint(e->ended, ==, n);
}

/* The destination QEMU's part: a TLS-PSK server that reads everything. */
typedef struct {
	int fd;
	guint8 key[32];
	gboolean bye;            /* answer the goodbye, or just close */
	gboolean hold;           /* or neither: keep the connection open */
	GByteArray *got;
	int handshake;           /* GnuTLS's result */
} Server;

static int
server_key(gnutls_session_t s, const char *user, gnutls_datum_t *key)
{
	Server *sv = gnutls_session_get_ptr(s);

	if (strcmp(user, "tern") != 0)
		return -1;
	key->data = gnutls_malloc(sizeof sv->key);
	memcpy(key->data, sv->key, sizeof sv->key);
	key->size = sizeof sv->key;
	return 0;
}

static gpointer
server_run(gpointer data)
{
	Server *sv = data;
	gnutls_session_t s;
	gnutls_psk_server_credentials_t cred;
	guint8 buf[32 * 1024];

	g_assert_cmpint(gnutls_init(&s, GNUTLS_SERVER), ==, 0);
	g_assert_cmpint(gnutls_psk_allocate_server_credentials(&cred), ==, 0);
	gnutls_psk_set_server_credentials_function(cred, server_key);
	gnutls_credentials_set(s, GNUTLS_CRD_PSK, cred);
	g_assert_cmpint(gnutls_priority_set_direct(s, MIGRATE_TLS_PRIORITY
		":+ECDHE-PSK:+DHE-PSK:+PSK", NULL), ==, 0);
	gnutls_session_set_ptr(s, sv);
	gnutls_transport_set_int(s, sv->fd);
	do
		sv->handshake = gnutls_handshake(s);
	while (sv->handshake < 0 && !gnutls_error_is_fatal(sv->handshake));
	while (sv->handshake == 0) {
		ssize_t n = gnutls_record_recv(s, buf, sizeof buf);
		if (n <= 0)
			break;
		g_byte_array_append(sv->got, buf, n);
	}
	if (sv->handshake == 0 && sv->bye)
		gnutls_bye(s, GNUTLS_SHUT_WR);
	if (!sv->hold)
		close(sv->fd);
	gnutls_deinit(s);
	gnutls_psk_free_server_credentials(cred);
	return NULL;
}

typedef struct {
	int fd;
	const guint8 *buf;
	gsize n;
} Writer;

static gpointer
writer_run(gpointer data)
{
	Writer *w = data;

	for (gsize off = 0; off < w->n;) {
		ssize_t k = write(w->fd, w->buf + off, MIN(w->n - off, 65536));
		if (k <= 0)
			break;
		off += k;
	}
	close(w->fd);
	return NULL;
}

/* QEMU -> relay -> net -> server; returns the server (joined) and how
 * the relay ended. */
static void
stream(const char *relay_key, const char *server_key_hex, gboolean bye,
       const guint8 *out, gsize n, Server *sv, Ends *ends)
{
	int net[2], q[2];
	GError *e = NULL;
	size_t len;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, net), ==, 0);
	g_assert_true(relay_socketpair(q, &e));
	g_assert_cmpint(sodium_hex2bin(sv->key, sizeof sv->key, server_key_hex,
				       64, NULL, &len, NULL), ==, 0);
	sv->fd = net[1];
	sv->bye = bye;
	sv->got = g_byte_array_new();
	GThread *st = g_thread_new("server", server_run, sv);
	g_assert_true(relay_start(q[1], net[0], relay_key, on_done, ends, &e));
	Writer w = { q[0], out, n };
	GThread *wt = g_thread_new("writer", writer_run, &w);
	g_thread_join(wt);
	g_thread_join(st);
	run_until(ends, 1);
}

static guint8 *
pattern(gsize n)
{
	guint8 *out = g_malloc(n);

	for (gsize i = 0; i < n; i++)
		out[i] = (guint8)(i * 7 + (i >> 12));
	return out;
}

static void
test_carries_bytes(void)
{
	Ends ends = { 0 };
	Server sv = { 0 };
	gsize n = 8 * 1024 * 1024;
	g_autofree guint8 *out = pattern(n);

	stream(KEY_A, KEY_A, TRUE, out, n, &sv, &ends);
	g_assert_cmpint(sv.handshake, ==, 0);
	g_assert_cmpuint(sv.got->len, ==, n);
	g_assert_cmpmem(sv.got->data, n, out, n);
	g_assert_cmpint(ends.failed, ==, 0);
	g_byte_array_unref(sv.got);
}

static void
test_hang_up_after_stream(void)
{
	Ends ends = { 0 };
	Server sv = { 0 };
	gsize n = 1024 * 1024;
	g_autofree guint8 *out = pattern(n);

	/* QEMU closes its socket once it has loaded the stream, without a
	 * TLS goodbye: the relay delivered everything, so it succeeded. */
	stream(KEY_A, KEY_A, FALSE, out, n, &sv, &ends);
	g_assert_cmpuint(sv.got->len, ==, n);
	g_assert_cmpint(ends.failed, ==, 0);
	g_byte_array_unref(sv.got);
}

static void
test_silent_peer(void)
{
	Ends ends = { 0 };
	Server sv = { .hold = TRUE };
	gsize n = 1024 * 1024;
	g_autofree guint8 *out = pattern(n);

	/* A destination that took the whole stream and then neither says
	 * goodbye nor hangs up does not hold the relay: it ends, cleanly,
	 * a few seconds later (run_until gives it 20). */
	stream(KEY_A, KEY_A, FALSE, out, n, &sv, &ends);
	g_assert_cmpuint(sv.got->len, ==, n);
	g_assert_cmpint(ends.failed, ==, 0);
	close(sv.fd);
	g_byte_array_unref(sv.got);
}

static void
test_wrong_key(void)
{
	Ends ends = { 0 };
	Server sv = { 0 };
	gsize n = 64 * 1024;
	g_autofree guint8 *out = pattern(n);

	stream(KEY_A, KEY_B, TRUE, out, n, &sv, &ends);
	g_assert_cmpint(sv.handshake, <, 0);
	g_assert_cmpuint(sv.got->len, ==, 0);
	g_assert_cmpint(ends.failed, ==, 1);
	g_byte_array_unref(sv.got);
}

int
main(int argc, char **argv)
{
	/* As in ternd: a closed peer is an error on the write, not death. */
	signal(SIGPIPE, SIG_IGN);
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/relay/carries-bytes", test_carries_bytes);
	g_test_add_func("/relay/hang-up-after-stream",
			test_hang_up_after_stream);
	g_test_add_func("/relay/silent-peer", test_silent_peer);
	g_test_add_func("/relay/wrong-key", test_wrong_key);
	return g_test_run();
}
