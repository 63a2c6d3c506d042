/*
 * guard: the limits of the TCP port before authentication.  How many
 * connections there may be (in all and per peer address), and how long an
 * HTTP connection may take over its headers, its body and the wait for its
 * next request; requests refused from their headers are answered without
 * reading their bodies.  docs/configuration.md, "Limits before
 * authentication", lists the settings and their defaults.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

typedef struct {
	guint max_conns;          /* open TCP connections in all; 0: no cap */
	guint max_per_addr;       /* from one peer address; 0: no cap */
	guint header_s;           /* request line and headers; 0: none */
	guint body_s;             /* the body, once the headers are in */
	guint idle_s;             /* between requests on a kept-alive one */
} GuardLimits;

typedef struct Guard Guard;

Guard *guard_new(const GuardLimits *lim);
void guard_free(Guard *g);

/* Counts CONN, a connection just accepted, until it is finalized.  FALSE
 * when a cap is reached: the caller drops CONN unread.  On TRUE, *REMOTE
 * is CONN's peer address (a new reference): pass that very object to
 * soup_server_accept_iostream, as the deadlines find the connection of a
 * message through it. */
gboolean guard_admit(Guard *g, GSocketConnection *conn,
		     GSocketAddress **remote);
/* Follows SERVER's requests to move each connection's deadline. */
void guard_watch(Guard *g, SoupServer *server);
/* From the early handler: the headers are in, the body's deadline runs. */
void guard_got_headers(SoupServerMessage *msg);
/* Answers MSG with STATUS and REASON (an HTTP reason phrase) from its
 * headers, without reading its body, and closes the connection. */
void guard_refuse(SoupServerMessage *msg, guint status, const char *reason);
