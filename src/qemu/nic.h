/*
 * nic: QEMU's vocabulary for a VM's network interfaces.
 *
 * The API layer opens each VIF's tap (src/net/) and hands this file a
 * QemuNic: an id, the tap's fd, a MAC and an MTU.  At start the fds are
 * inherited by QEMU (the driver maps NIC i to fd QEMU_NIC_FIRST_FD + i in
 * the child) and named by "-netdev tap,fd=N"; on a running VM the fd
 * travels over QMP (getfd).  Each NIC is one netdev ("net-<id>") and one
 * virtio-net-pci device ("<id>").
 */
#pragma once

#include <glib.h>

#include "qemu/qmp.h"

#define QEMU_NIC_FIRST_FD 3

typedef struct QemuNic {
	char *id;              /* "vif<device>": the device's name */
	int fd;                /* the tap's queue; owned, closed by free */
	char *mac;             /* "aa:bb:cc:dd:ee:ff" */
	int mtu;               /* host_mtu= when not 1500 (0: default) */
} QemuNic;

/* Takes ownership of FD. */
QemuNic *qemu_nic_new(const char *id, int fd, const char *mac, int mtu);
void qemu_nic_free(QemuNic *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuNic, qemu_nic_free)

/* Appends -netdev and -device for each NIC, NIC i naming the child's fd
 * QEMU_NIC_FIRST_FD + i. */
void qemu_nic_argv(GPtrArray *nics, GPtrArray *argv);

/* The -device (and device_add) text of N without the netdev. */
char *qemu_nic_device_str(const QemuNic *n);

/* Hot-plug on a running QEMU.  DONE gets NULL, or the error (an XAPI
 * code: INTERNAL_ERROR with QEMU's message, or the deadline passed) once
 * QEMU has finished.  attach = getfd + netdev_add + device_add (N->fd is
 * sent, not consumed); detach = device_del, then qom-list of
 * /machine/peripheral until the device is gone (the guest has let go of
 * it; within DEADLINE_MS), then netdev_del. */
typedef void (*QemuNicDoneFn)(const GError *error, gpointer data);
void qemu_nic_attach(Qmp *qmp, const QemuNic *n, QemuNicDoneFn done,
		     gpointer data);
void qemu_nic_detach(Qmp *qmp, const char *id, guint deadline_ms,
		     QemuNicDoneFn done, gpointer data);
