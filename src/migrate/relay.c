/*
 * relay: the encryption of a tunnelled, secure migration, on the source.
 *
 * QEMU's own TLS sends one TLS record, and one system call, per guest page
 * (it hands GnuTLS the QEMUFile's iovec a page at a time), which caps it at
 * a fraction of the link here; its receiving side has no such problem (it
 * reads 32 KiB at a time).  So the source daemon gives its QEMU one end of
 * a socketpair and encrypts what comes out of the other end onto the
 * connection to the destination in a thread of its own, with GnuTLS:
 * full-size records, corked so that one write carries many, TLS 1.3 with
 * the migration's pre-shared key (MIGRATE_TLS_PRIORITY), so no certificate
 * is involved and a peer without the key cannot connect.  The destination
 * daemon hands the connection to its QEMU, whose TLS server
 * (tls-creds-psk, same key, same priority) decrypts.
 *
 * The thread owns both descriptors and the TLS session; the main loop only
 * starts it and hears, once, that it ended (relay_reap on the main loop via
 * the done callback).  A relay that fails closes both ends, so QEMU sees
 * the stream break and the migration's own failure path runs.
 */
#include "migrate/migrate-int.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xerr.h"

#define RELAY_BUF (512 * 1024)
#define RELAY_RECORD (16 * 1024)
/* Once QEMU has sent everything, how long the peer has to hang up. */
#define RELAY_GOODBYE_MS 5000
/* How long sent data may go unacknowledged before the peer counts as
 * gone (TCP_USER_TIMEOUT): a dead destination must not hold the relay,
 * and through it the source's stream, forever. */
#define RELAY_STALL_MS 60000
/* The pre-shared key with ECDHE for forward secrecy, as QEMU's server
 * offers it. */
#define RELAY_PRIORITY MIGRATE_TLS_PRIORITY ":+ECDHE-PSK:+PSK"

typedef struct {
	int local;                 /* QEMU's socketpair end */
	int net;                   /* TCP to the peer */
	guint8 key[32];
	RelayDoneFn done;
	gpointer data;
	GThread *thread;
	char *error;               /* set by the thread on failure */
	guint64 bytes;             /* plaintext bytes relayed */
} Relay;

static void
relay_set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static gboolean
relay_write_all(int fd, const guint8 *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return FALSE;
		p += w;
		n -= w;
	}
	return TRUE;
}

static gboolean
relay_fail(Relay *r, const char *what, int rc)
{
	r->error = g_strdup_printf("%s: %s", what, rc < 0 ? gnutls_strerror(rc)
						      : g_strerror(errno));
	return FALSE;
}

/* Both directions until both have ended: the stream QEMU -> peer, and
 * whatever the peer's QEMU sends back (a return path, for the
 * capabilities that use one).  However the peer hangs up (the
 * destination's QEMU closes its socket, without a TLS goodbye, once it has
 * loaded the stream) ends that direction only: the relay has failed if,
 * and only if, it could not deliver what QEMU sent.  Whether the
 * migration worked is for the migration's own messages to say. */
static gboolean
relay_pump(Relay *r, gnutls_session_t s)
{
	g_autofree guint8 *buf = g_malloc(RELAY_BUF);
	gboolean local_open = TRUE, net_open = TRUE;

	while (local_open || net_open) {
		struct pollfd p[2] = {
			{ .fd = local_open ? r->local : -1, .events = POLLIN },
			{ .fd = net_open ? r->net : -1, .events = POLLIN },
		};
		int wait_ms = local_open ? -1 : RELAY_GOODBYE_MS;
		int ready = 1;
		if (!(net_open && gnutls_record_check_pending(s) > 0) &&
		    (ready = poll(p, 2, wait_ms)) < 0) {
			if (errno == EINTR)
				continue;
			return relay_fail(r, "poll", 0);
		}
		if (ready == 0) {
			g_debug("migrate: relay: no goodbye from the peer");
			break;
		}
		if (local_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(r->local, buf, RELAY_BUF);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* QEMU is done sending: say so to the peer. */
				local_open = FALSE;
				gnutls_bye(s, GNUTLS_SHUT_WR);
			} else {
				gnutls_record_cork(s);
				for (ssize_t off = 0; off < n;
				     off += RELAY_RECORD) {
					ssize_t len = MIN(RELAY_RECORD, n - off);
					ssize_t rc = gnutls_record_send(
						s, buf + off, len);
					if (rc < 0)
						return relay_fail(r, "send",
								  (int)rc);
				}
				int rc = gnutls_record_uncork(s,
					GNUTLS_RECORD_WAIT);
				if (rc < 0)
					return relay_fail(r, "send", rc);
				r->bytes += n;
			}
		}
		if (net_open && ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) ||
				 gnutls_record_check_pending(s) > 0)) {
			ssize_t n = gnutls_record_recv(s, buf, RELAY_BUF);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n < 0)
				g_debug("migrate: relay: the peer hung up: %s",
					gnutls_strerror((int)n));
			if (n <= 0) {
				net_open = FALSE;
				shutdown(r->local, SHUT_WR);
			} else {
				if (!relay_write_all(r->local, buf, n))
					return relay_fail(r, "write to QEMU",
							  0);
				r->bytes += n;
			}
		}
	}
	return TRUE;
}

static gpointer
relay_thread(gpointer data)
{
	Relay *r = data;
	gnutls_session_t s = NULL;
	gnutls_psk_client_credentials_t cc = NULL;
	gnutls_datum_t key = { r->key, sizeof r->key };
	int rc;

	relay_set_blocking(r->local);
	relay_set_blocking(r->net);
	unsigned int stall = RELAY_STALL_MS;
	/* Not a TCP socket (the unit tests' socketpair): no such timeout. */
	(void)setsockopt(r->net, IPPROTO_TCP, TCP_USER_TIMEOUT, &stall,
			 sizeof stall);
	rc = gnutls_init(&s, GNUTLS_CLIENT);
	if (rc == 0)
		rc = gnutls_psk_allocate_client_credentials(&cc);
	if (rc == 0)
		rc = gnutls_psk_set_client_credentials(cc, "tern", &key,
						       GNUTLS_PSK_KEY_RAW);
	if (rc == 0)
		rc = gnutls_credentials_set(s, GNUTLS_CRD_PSK, cc);
	if (rc == 0)
		rc = gnutls_priority_set_direct(s, RELAY_PRIORITY, NULL);
	if (rc == 0) {
		gnutls_transport_set_int(s, r->net);
		gnutls_handshake_set_timeout(s, 10000);
		do {
			rc = gnutls_handshake(s);
		} while (rc < 0 && !gnutls_error_is_fatal(rc));
	}
	if (rc < 0)
		relay_fail(r, "TLS", rc);
	else
		relay_pump(r, s);

	if (s)
		gnutls_deinit(s);
	if (cc)
		gnutls_psk_free_client_credentials(cc);
	sodium_memzero(r->key, sizeof r->key);
	close(r->local);
	close(r->net);
	r->local = r->net = -1;
	return NULL;
}

static gboolean
relay_reap(gpointer data)
{
	Relay *r = data;

	/* The thread has returned or is about to: join it here, on the
	 * main loop, then tell the owner. */
	g_thread_join(r->thread);
	if (r->error)
		g_info("migrate: relay ended: %s", r->error);
	else
		g_debug("migrate: relay carried %" G_GUINT64_FORMAT " bytes",
			r->bytes);
	r->done(r->error, r->bytes, r->data);
	g_free(r->error);
	g_free(r);
	return G_SOURCE_REMOVE;
}

static gpointer
relay_run(gpointer data)
{
	relay_thread(data);
	g_idle_add(relay_reap, data);
	return NULL;
}

gboolean
relay_start(int local_fd, int net_fd, const char *psk_hex, RelayDoneFn done,
	    gpointer data, GError **error)
{
	Relay *r = g_new0(Relay, 1);
	size_t len = 0;

	if (sodium_hex2bin(r->key, sizeof r->key, psk_hex, strlen(psk_hex),
			   NULL, &len, NULL) != 0 || len != sizeof r->key) {
		g_free(r);
		close(local_fd);
		close(net_fd);
		xerr_set(error, "INTERNAL_ERROR", "bad migration key", NULL);
		return FALSE;
	}
	r->local = local_fd;
	r->net = net_fd;
	r->done = done;
	r->data = data;
	r->thread = g_thread_new("tern-relay", relay_run, r);
	return TRUE;
}

gboolean
relay_socketpair(int sv[2], GError **error)
{
	int size = 4 * 1024 * 1024;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		xerr_set(error, "INTERNAL_ERROR", "socketpair",
			 g_strerror(errno), NULL);
		return FALSE;
	}
	/* Deep buffers keep QEMU writing while the relay encrypts. */
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	}
	return TRUE;
}
