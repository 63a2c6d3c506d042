/*
 * tap: a VIF's tap device, opened by ternd for QEMU.
 *
 * /dev/net/tun with TUNSETIFF creates the tap NAME and returns its queue
 * as an fd; the tap is not made persistent, so it lives exactly as long
 * as someone holds that fd (ternd until QEMU has inherited it or received
 * it over QMP, then QEMU).  IFF_VNET_HDR lets virtio-net pass offloaded
 * (checksum, segmentation) frames without copying.  The link side (MTU,
 * bridge, up) goes through netlink (link.c).
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/xerr.h"

int
net_tap_open(const char *name, int mtu, const char *bridge,
	     const char *owner, GError **error)
{
	struct ifreq ifr;
	int fd;

	if (!net_name_valid(name)) {
		xerr_set(error, "INTERNAL_ERROR", "tap: invalid name", name,
			 NULL);
		return -1;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		g_autofree char *msg = g_strdup_printf(
			"tap %s: /dev/net/tun: %s", name, g_strerror(errno));
		xerr_set(error, "INTERNAL_ERROR", msg, NULL);
		return -1;
	}
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	g_strlcpy(ifr.ifr_name, name, sizeof ifr.ifr_name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 ||
	    ioctl(fd, TUNSETPERSIST, 0) < 0) {
		g_autofree char *msg = g_strdup_printf("tap %s: TUNSETIFF: %s",
						       name, g_strerror(errno));
		close(fd);
		xerr_set(error, "INTERNAL_ERROR", msg, NULL);
		return -1;
	}
	if (!net_link_setup(name, mtu, owner, error) ||
	    (bridge != NULL && !net_link_set_master(name, bridge, error)) ||
	    !net_link_set_up(name, TRUE, error)) {
		close(fd); /* not persistent: the tap goes with the fd */
		return -1;
	}
	return fd;
}
