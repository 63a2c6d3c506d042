/*
 * mac: the pure rules of host networking: which interface and bridge
 * names are acceptable, the tap name of a VIF, and MAC addresses
 * (canonical form, and the derivation of a VIF's MAC when the client
 * leaves it empty).  No netlink here, so the unit tests need no root.
 */
#include "net/net.h"

#include <string.h>

gboolean
net_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > NET_NAME_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return FALSE;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= ' ' || c >= 0x7f || c == '/' || c == ':')
			return FALSE;
	}
	return TRUE;
}

gboolean
net_bridge_name_allowed(const char *name)
{
	static const char *const reserved[] = { "xen", "xapi", "vif", "tap",
						"eth", NULL };

	if (!net_name_valid(name))
		return FALSE;
	for (guint i = 0; reserved[i]; i++)
		if (g_str_has_prefix(name, reserved[i]))
			return FALSE;
	return TRUE;
}

char *
net_tap_name(const char *uuid)
{
	GString *s = g_string_new(NET_TAP_PREFIX);

	for (const char *p = uuid; *p && s->len < NET_NAME_MAX; p++)
		if (g_ascii_isxdigit(*p))
			g_string_append_c(s, g_ascii_tolower(*p));
	return g_string_free(s, FALSE);
}

char *
net_owner(const char *host_uuid)
{
	return g_strconcat(NET_ALIAS_PREFIX, host_uuid, NULL);
}

gboolean
net_mac_unicast(const char *canon)
{
	unsigned first = (unsigned)g_ascii_strtoull(canon, NULL, 16);

	return (first & 1) == 0 && strcmp(canon, "00:00:00:00:00:00") != 0;
}

char *
net_mac_canonical(const char *mac)
{
	guint8 b[6];

	if (mac == NULL || strlen(mac) != 17)
		return NULL;
	for (int i = 0; i < 6; i++) {
		const char *p = mac + 3 * i;
		if (!g_ascii_isxdigit(p[0]) || !g_ascii_isxdigit(p[1]))
			return NULL;
		if (i < 5 && p[2] != ':' && p[2] != '-')
			return NULL;
		if (i < 5 && p[2] != mac[2])
			return NULL; /* one separator throughout */
		b[i] = (guint8)(g_ascii_xdigit_value(p[0]) << 4 |
				g_ascii_xdigit_value(p[1]));
	}
	return g_strdup_printf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1],
			       b[2], b[3], b[4], b[5]);
}

/* SHA-256 of "SEED/DEVICE", first six bytes, with the multicast bit
 * cleared and the locally administered bit set (XAPI derives its MACs
 * from the VM's other_config:mac_seed the same way, with its own hash). */
char *
net_mac_derive(const char *seed, const char *device)
{
	g_autofree char *in = g_strdup_printf("%s/%s", seed, device);
	g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);
	guint8 d[32];
	gsize n = sizeof d;

	g_checksum_update(ck, (const guchar *)in, strlen(in));
	g_checksum_get_digest(ck, d, &n);
	d[0] = (guint8)((d[0] & 0xfc) | 0x02);
	return g_strdup_printf("%02x:%02x:%02x:%02x:%02x:%02x", d[0], d[1],
			       d[2], d[3], d[4], d[5]);
}
