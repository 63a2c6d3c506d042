/*
 * net: the host's networking, through netlink (libnl-route-3).
 *
 * A tern network is a Linux bridge; a VIF is a tap on it whose fd ternd
 * opens and hands to QEMU; a PIF is a host interface enslaved to the
 * bridge.  This folder does that and nothing else: it knows links,
 * bridges and taps by name and never reads an API record.
 *
 * What ternd creates it can find again: taps are named NET_TAP_PREFIX
 * plus a short id ("tvif" + 11 hex digits, 15 characters), and taps and
 * bridges carry the interface alias OWNER, "tern:<host uuid>" (see
 * net_owner), so that two ternds sharing a network namespace (tests,
 * a migration on one machine) never remove each other's links.  Taps are
 * not persistent, so a tap goes away by itself when its last holder
 * (QEMU, or ternd between opening it and handing it over) closes it; the
 * reconciliation at start removes persistent leftovers.
 *
 * Every call opens its own netlink socket: these are rare, short
 * operations on the main loop, and a socket per call keeps no state.
 */
#pragma once

#include <glib.h>

#define NET_NAME_MAX 15            /* IFNAMSIZ - 1 */
#define NET_TAP_PREFIX "tvif"
#define NET_ALIAS_PREFIX "tern:"

typedef struct {
	char *name;
	int ifindex;
	char *kind;        /* "bridge", "veth", "tun", ... ; "" for a NIC */
	char *mac;         /* "aa:bb:cc:dd:ee:ff", "" when none */
	char *alias;       /* "" when none */
	int mtu;
	int master;        /* ifindex of the bridge, 0 for none */
	gboolean up;
} NetLink;

void net_link_free(NetLink *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NetLink, net_link_free)

/* ---- names and MACs (mac.c: pure functions) ------------------------- */

/* A valid interface name: 1..15 characters, no '/', ':', space or
 * control characters, not "." or "..". */
gboolean net_name_valid(const char *name);
/* A bridge name a client may choose: valid, and not starting with
 * xen, xapi, vif, tap or eth (XAPI's reserved prefixes). */
gboolean net_bridge_name_allowed(const char *name);
/* The tap of VIF UUID: "tvif" + the first 11 hex digits. */
char *net_tap_name(const char *uuid);
/* Parses "aa:bb:cc:dd:ee:ff" (or with '-'), any case, into the
 * canonical lower-case form; NULL when it is not a MAC. */
char *net_mac_canonical(const char *mac);
/* The alias that marks the links of the ternd of host HOST_UUID. */
char *net_owner(const char *host_uuid);
/* Whether CANON (canonical form) is a unicast MAC other than all zeros,
 * as a NIC's must be. */
gboolean net_mac_unicast(const char *canon);
/* A locally administered unicast MAC derived from SEED and DEVICE:
 * the same inputs always give the same MAC. */
char *net_mac_derive(const char *seed, const char *device);

/* ---- links (link.c) -------------------------------------------------- */

/* Every link of the network namespace ternd runs in (NetLink, owned). */
GPtrArray *net_link_list(GError **error);
/* The link NAME, or NULL (no error) when there is none. */
NetLink *net_link_get(const char *name, GError **error);
gboolean net_link_exists(const char *name);
gboolean net_link_set_up(const char *name, gboolean up, GError **error);
gboolean net_link_set_mtu(const char *name, int mtu, GError **error);
/* Sets NAME's MTU (when > 0) and its alias (when not NULL) at once. */
gboolean net_link_setup(const char *name, int mtu, const char *alias,
			GError **error);
/* Enslaves NAME to BRIDGE (NULL: releases it from its bridge). */
gboolean net_link_set_master(const char *name, const char *bridge,
			     GError **error);
/* NAME's first IPv4 address: *ADDR "a.b.c.d" and *PREFIX; FALSE (no
 * error) when it has none. */
gboolean net_link_ipv4(const char *name, char **addr, int *prefix,
		       GError **error);
/* The dotted netmask of PREFIX (0..32). */
char *net_netmask(int prefix);
/* Deletes NAME; no error when it is already gone. */
gboolean net_link_delete(const char *name, GError **error);

/* Makes sure bridge NAME exists and is up with MTU (0: left alone).
 * *CREATED (may be NULL) says whether this call made it, marked with the
 * alias OWNER. */
gboolean net_bridge_ensure(const char *name, int mtu, const char *owner,
			   gboolean *created, GError **error);
/* Deletes bridge NAME if OWNER made it (its alias); TRUE when it is gone
 * or was never OWNER's. */
gboolean net_bridge_delete_own(const char *name, const char *owner,
			       GError **error);

/* ---- taps (tap.c) ---------------------------------------------------- */

/* Opens tap NAME (created by the open, not persistent, IFF_VNET_HDR),
 * sets its MTU and the alias OWNER, enslaves it to BRIDGE and brings it
 * up.  Returns the fd (O_CLOEXEC; the caller owns it) or -1. */
int net_tap_open(const char *name, int mtu, const char *bridge,
		 const char *owner, GError **error);
