/*
 * test-migrate-channel: the migration channel's deadlines and keepalive
 * (channel.c).  A Chan on one end of a socketpair, the test on the other:
 * a peer that says nothing fails the channel with G_IO_ERROR_TIMED_OUT
 * once the deadline has passed (not before), bytes from the peer push the
 * deadline back, a paused channel has none, and with keepalive on a PING
 * is answered PONG without reaching the handler.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/migrate-int.h"

typedef struct {
	int calls;
	int ended;
	gboolean timed_out;
	char *last_verb;
	gint64 ended_us;
} Seen;

static void
on_msg(Chan *c, const char *verb, JsonObject *msg, const GError *error,
       gpointer data)
{
	Seen *s = data;

	s->calls++;
	if (verb == NULL) {
		s->ended++;
		s->ended_us = g_get_monotonic_time();
		s->timed_out = g_error_matches(error, G_IO_ERROR,
					       G_IO_ERROR_TIMED_OUT);
		chan_free(c);
		return;
	}
	g_free(s->last_verb);
	s->last_verb = g_strdup(verb);
}

static Chan *
make_chan(int *peer, Seen *s)
{
	int sv[2];
	GError *e = NULL;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
	GSocket *sock = g_socket_new_from_fd(sv[0], &e);
	g_assert_no_error(e);
	GSocketConnection *conn = g_socket_connection_factory_create_connection(
		sock);
	Chan *c = chan_new(G_IO_STREAM(conn), on_msg, s);
	g_object_unref(conn);
	g_object_unref(sock);
	*peer = sv[1];
	return c;
}

static gboolean
quit_at(gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Runs the loop until COND or SECONDS. */
#define RUN_UNTIL(cond, seconds)                                           \
	do {                                                               \
		gboolean late_ = FALSE;                                    \
		guint id_ = g_timeout_add_seconds(seconds, quit_at, &late_); \
		while (!(cond) && !late_)                                  \
			g_main_context_iteration(NULL, TRUE);              \
		if (!late_)                                                \
			g_source_remove(id_);                              \
	} while (0)

static void
test_silent_peer_times_out(void)
{
	Seen s = { 0 };
	int peer;
	Chan *c = make_chan(&peer, &s);
	gint64 t0 = g_get_monotonic_time();

	chan_set_deadline(c, 2);
	RUN_UNTIL(s.ended, 6);
	g_assert_cmpint(s.ended, ==, 1);
	g_assert_true(s.timed_out);
	/* Not before the deadline; within a tick after it. */
	g_assert_cmpint(s.ended_us - t0, >=, 2 * G_USEC_PER_SEC);
	g_assert_cmpint(s.ended_us - t0, <, 4 * G_USEC_PER_SEC);
	close(peer);
}

static gboolean
send_line(gpointer data)
{
	int fd = GPOINTER_TO_INT(data);

	g_assert_cmpint(write(fd, "HELLO {}\n", 9), ==, 9);
	return G_SOURCE_CONTINUE;
}

static void
test_bytes_push_the_deadline_back(void)
{
	Seen s = { 0 };
	int peer;
	Chan *c = make_chan(&peer, &s);
	gboolean done = FALSE;

	chan_set_deadline(c, 2);
	guint talk = g_timeout_add(700, send_line, GINT_TO_POINTER(peer));
	g_timeout_add_seconds(5, quit_at, &done);
	RUN_UNTIL(done || s.ended, 7);
	g_assert_cmpint(s.ended, ==, 0);
	g_assert_cmpstr(s.last_verb, ==, "HELLO");
	/* Silence now: it fails. */
	g_source_remove(talk);
	RUN_UNTIL(s.ended, 6);
	g_assert_true(s.timed_out);
	g_free(s.last_verb);
	close(peer);
}

static void
test_paused_has_no_deadline(void)
{
	Seen s = { 0 };
	int peer;
	Chan *c = make_chan(&peer, &s);
	gboolean done = FALSE;

	chan_set_deadline(c, 1);
	chan_pause(c);
	g_timeout_add_seconds(3, quit_at, &done);
	RUN_UNTIL(done, 5);
	g_assert_cmpint(s.calls, ==, 0);
	chan_free(c);
	close(peer);
}

static void
test_ping_answered_not_delivered(void)
{
	Seen s = { 0 };
	int peer;
	Chan *c = make_chan(&peer, &s);
	char buf[64] = { 0 };
	gsize got = 0;

	chan_set_keepalive(c);
	g_assert_cmpint(write(peer, "PING {}\nNEXT {}\n", 16), ==, 16);
	RUN_UNTIL(s.last_verb != NULL, 5);
	g_assert_cmpstr(s.last_verb, ==, "NEXT");
	g_assert_cmpint(s.calls, ==, 1);
	while (got < 8) {
		RUN_UNTIL(FALSE, 1);
		ssize_t n = recv(peer, buf + got, sizeof buf - 1 - got,
				 MSG_DONTWAIT);
		if (n > 0)
			got += n;
	}
	g_assert_cmpstr(buf, ==, "PONG {}\n");
	chan_free(c);
	g_free(s.last_verb);
	close(peer);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/channel/silent-peer-times-out",
			test_silent_peer_times_out);
	g_test_add_func("/channel/bytes-push-the-deadline-back",
			test_bytes_push_the_deadline_back);
	g_test_add_func("/channel/paused-has-no-deadline",
			test_paused_has_no_deadline);
	g_test_add_func("/channel/ping-answered-not-delivered",
			test_ping_answered_not_delivered);
	return g_test_run();
}
