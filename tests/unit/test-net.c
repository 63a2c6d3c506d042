/*
 * Unit tests for src/net/mac.c: interface and bridge names, tap names,
 * MAC addresses and their derivation.
 */
#include "net/net.h"

#include <string.h>

static void
test_names(void)
{
	g_assert_true(net_name_valid("br0"));
	g_assert_true(net_name_valid("abcdefghijklmno"));   /* 15 */
	g_assert_false(net_name_valid("abcdefghijklmnop")); /* 16 */
	g_assert_false(net_name_valid(""));
	g_assert_false(net_name_valid(NULL));
	g_assert_false(net_name_valid("a b"));
	g_assert_false(net_name_valid("a/b"));
	g_assert_false(net_name_valid("a:1"));
	g_assert_false(net_name_valid(".."));
	g_assert_false(net_name_valid("a\tb"));

	g_assert_true(net_bridge_name_allowed("brtest"));
	g_assert_true(net_bridge_name_allowed("mynet0"));
	const char *bad[] = { "xenbr0", "xapi1", "vif1.0", "tap0", "eth0",
			      "abcdefghijklmnop", "", NULL };
	for (int i = 0; bad[i]; i++)
		g_assert_false(net_bridge_name_allowed(bad[i]));
}

static void
test_tap_name(void)
{
	g_autofree char *n = net_tap_name(
		"0A1b2c3d-4e5f-6789-abcd-ef0123456789");

	g_assert_cmpstr(n, ==, "tvif0a1b2c3d4e5");
	g_assert_cmpuint(strlen(n), ==, NET_NAME_MAX);
	g_assert_true(net_name_valid(n));
}

static void
test_mac_canonical(void)
{
	struct {
		const char *in, *out;
	} cases[] = {
		{ "AA:bb:CC:00:11:22", "aa:bb:cc:00:11:22" },
		{ "aa-bb-cc-00-11-22", "aa:bb:cc:00:11:22" },
		{ "aa:bb-cc:00:11:22", NULL },
		{ "aa:bb:cc:00:11", NULL },
		{ "aa:bb:cc:00:11:2g", NULL },
		{ "aabbcc001122", NULL },
		{ "aa:bb:cc:00:11:22:", NULL },
		{ "", NULL },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *c = net_mac_canonical(cases[i].in);
		g_assert_cmpstr(c, ==, cases[i].out);
	}
}

static void
test_mac_unicast(void)
{
	g_autofree char *owner = net_owner("0a1b");

	g_assert_true(net_mac_unicast("02:00:00:00:00:01"));
	g_assert_true(net_mac_unicast("aa:bb:cc:00:11:22"));
	g_assert_false(net_mac_unicast("01:00:5e:00:00:01"));
	g_assert_false(net_mac_unicast("ff:ff:ff:ff:ff:ff"));
	g_assert_false(net_mac_unicast("00:00:00:00:00:00"));
	g_assert_cmpstr(owner, ==, "tern:0a1b");
	const struct {
		int prefix;
		const char *mask;
	} masks[] = { { 0, "0.0.0.0" }, { 8, "255.0.0.0" },
		      { 24, "255.255.255.0" }, { 27, "255.255.255.224" },
		      { 32, "255.255.255.255" } };
	for (guint i = 0; i < G_N_ELEMENTS(masks); i++) {
		g_autofree char *m = net_netmask(masks[i].prefix);
		g_assert_cmpstr(m, ==, masks[i].mask);
	}
}

static void
test_mac_derive(void)
{
	g_autofree char *a = net_mac_derive("seed-1", "0");
	g_autofree char *b = net_mac_derive("seed-1", "0");
	g_autofree char *c = net_mac_derive("seed-1", "1");
	g_autofree char *d = net_mac_derive("seed-2", "0");
	g_autofree char *canon = net_mac_canonical(a);

	g_assert_cmpstr(a, ==, b);
	g_assert_cmpstr(a, !=, c);
	g_assert_cmpstr(a, !=, d);
	g_assert_cmpstr(canon, ==, a);
	/* Locally administered (bit 1), unicast (bit 0 clear), whatever
	 * the seed. */
	for (int i = 0; i < 256; i++) {
		g_autofree char *s = g_strdup_printf("vm-%d", i);
		g_autofree char *m = net_mac_derive(s, "3");
		unsigned first = (unsigned)g_ascii_strtoull(m, NULL, 16);
		g_assert_cmpuint(first & 0x03, ==, 0x02);
		g_assert_true(net_mac_unicast(m));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/net/names", test_names);
	g_test_add_func("/net/tap-name", test_tap_name);
	g_test_add_func("/net/mac-canonical", test_mac_canonical);
	g_test_add_func("/net/mac-unicast", test_mac_unicast);
	g_test_add_func("/net/mac-derive", test_mac_derive);
	return g_test_run();
}
