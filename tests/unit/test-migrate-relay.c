/*
 * test-migrate-relay: the TLS-PSK relay of tunnelled, secure migrations.
 * Two relays face each other over a socketpair standing in for the TCP
 * connection; bytes written at one QEMU end must come out at the other,
 * intact and in order, and relays with different keys must refuse each
 * other without passing a byte.
 */
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

/* src QEMU end -> [relay client] -> net -> [relay server] -> dst QEMU end */
static void
relay_pair(const char *ka, const char *kb, int *src_qemu, int *dst_qemu,
	   Ends *ends)
{
	int net[2], a[2], b[2];
	GError *e = NULL;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, net), ==, 0);
	g_assert_true(relay_socketpair(a, &e));
	g_assert_true(relay_socketpair(b, &e));
	g_assert_true(relay_start(a[1], net[0], FALSE, ka, on_done, ends, &e));
	g_assert_true(relay_start(b[1], net[1], TRUE, kb, on_done, ends, &e));
	*src_qemu = a[0];
	*dst_qemu = b[0];
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
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

static void
test_carries_bytes(void)
{
	Ends ends = { 0 };
	int src, dst;
	gsize n = 8 * 1024 * 1024, got = 0;
	g_autofree guint8 *out = g_malloc(n), *in = g_malloc0(n + 1);

	for (gsize i = 0; i < n; i++)
		out[i] = (guint8)(i * 7 + (i >> 12));
	relay_pair(KEY_A, KEY_A, &src, &dst, &ends);

	/* QEMU's side is played by a writer thread and by this one. */
	Writer w = { src, out, n };
	GThread *t = g_thread_new("writer", writer_run, &w);
	for (;;) {
		ssize_t m = read(dst, in + got, n + 1 - got);
		g_assert_cmpint(m, >=, 0);
		if (m == 0)
			break;
		got += m;
	}
	g_thread_join(t);
	g_assert_cmpuint(got, ==, n);
	g_assert_cmpmem(in, n, out, n);
	close(dst);
	close(src);
	run_until(&ends, 2);
	g_assert_cmpint(ends.failed, ==, 0);
}

static void
test_wrong_key(void)
{
	Ends ends = { 0 };
	int src, dst;
	char buf[16];

	relay_pair(KEY_A, KEY_B, &src, &dst, &ends);
	(void)!write(src, "secret bytes", 12);
	/* The handshake fails: the destination's QEMU sees the stream end
	 * without a byte. */
	g_assert_cmpint(read(dst, buf, sizeof buf), <=, 0);
	run_until(&ends, 2);
	g_assert_cmpint(ends.failed, ==, 2);
	close(src);
	close(dst);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/relay/carries-bytes", test_carries_bytes);
	g_test_add_func("/relay/wrong-key", test_wrong_key);
	return g_test_run();
}
