/*
 * Unit tests for src/qemu/nic.c's command line: each NIC's -netdev names
 * the fd the driver maps it to in the child (QEMU_NIC_FIRST_FD + i), and
 * its virtio-net-pci device carries the MAC, and host_mtu only when the
 * MTU is not 1500.  (Hot-plug runs against real QEMU in
 * tests/system/test_net_hotplug.py.)
 */
#include <glib.h>
#include <unistd.h>

#include "qemu/nic.h"

static void
test_argv(void)
{
	g_autoptr(GPtrArray) nics = g_ptr_array_new_with_free_func(
		(GDestroyNotify)qemu_nic_free);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(nics, qemu_nic_new("vif0", dup(0), "02:00:00:00:00:01",
					   1500));
	g_ptr_array_add(nics, qemu_nic_new("vif3", -1, "02:00:00:00:00:02",
					   9000));
	qemu_nic_argv(nics, argv);
	g_assert_cmpuint(argv->len, ==, 8);
	g_assert_cmpstr(argv->pdata[0], ==, "-netdev");
	g_assert_cmpstr(argv->pdata[1], ==, "tap,id=net-vif0,fd=3");
	g_assert_cmpstr(argv->pdata[2], ==, "-device");
	g_assert_cmpstr(argv->pdata[3], ==,
			"virtio-net-pci,netdev=net-vif0,id=vif0,"
			"mac=02:00:00:00:00:01");
	g_assert_cmpstr(argv->pdata[5], ==, "tap,id=net-vif3,fd=4");
	g_assert_cmpstr(argv->pdata[7], ==,
			"virtio-net-pci,netdev=net-vif3,id=vif3,"
			"mac=02:00:00:00:00:02,host_mtu=9000");
}

static void
test_none(void)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);

	qemu_nic_argv(NULL, argv);
	g_assert_cmpuint(argv->len, ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qemu-nic/argv", test_argv);
	g_test_add_func("/qemu-nic/none", test_none);
	return g_test_run();
}
