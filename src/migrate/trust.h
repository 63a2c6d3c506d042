/*
 * trust: whether a peer-to-peer migration may send its password to a
 * destination, and which certificate it must see there first.
 *
 * The source logs in to the destination with a password (the dest map's
 * user and password), so the destination must be proven before the
 * password leaves: by the fingerprint the caller pins (dest
 * "fingerprint", the CLI's --to-fingerprint), or by this daemon's
 * known-hosts file, <state_dir>/known_hosts, as ssh's.  A destination that
 * is in neither is refused, unless the caller asks for trust on first use
 * (dest "trust_on_first_use": "true"): then its certificate is read in a
 * TLS handshake that carries no request, recorded, and pinned for the
 * login.  A recorded destination whose certificate changed is refused
 * until its line is removed.  Plain http carries the password unprotected
 * and proves nothing, so it is allowed to loopback addresses only (one
 * machine's test hosts).
 */
#pragma once

#include <glib.h>

/* Decides how to reach URL (https://host:port or http://host:port).  On
 * success *PIN is the fingerprint the login must pin ("AB:CD:..."), or
 * NULL for plain http to a loopback address.  GIVEN is the caller's pinned
 * fingerprint (or "" / NULL).  Blocks (the first-use handshake): call it
 * from a worker thread.  Errors are SSL_VERIFY_ERROR [reason]. */
gboolean trust_p2p_pin(const char *state_dir, const char *url,
		       const char *given, gboolean first_use, char **pin,
		       GError **error);

/* "AB:CD:..." upper case from any "abcd..." / "AB:cd:..." spelling; NULL
 * when TEXT is not 32 hex bytes. */
char *trust_fingerprint_normalise(const char *text);
