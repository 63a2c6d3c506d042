/*
 * disk: QEMU's vocabulary for a VM's disks and CD drives.
 *
 * The API layer resolves a VM's VBDs, VDIs and SRs into QemuDisks (paths
 * ternd chose inside its SRs, never a client's); this file turns them into
 * -blockdev/-device arguments at start and into QMP objects to hot-plug
 * on a running VM.  Each disk is two block nodes, the protocol ("f-<id>",
 * a file) and the format ("<id>", qcow2 or raw), and one device
 * ("dev-<id>": virtio-blk-pci, or ide-cd for a CD drive).
 */
#pragma once

#include <glib.h>

#include "qemu/qmp.h"

typedef struct {
	char *id;              /* "vbd<userdevice>": node and device names */
	char *path;            /* the image; NULL for an empty CD drive */
	char *format;          /* "qcow2" or "raw" */
	gboolean read_only;
	gboolean cdrom;        /* an ide-cd drive rather than virtio-blk */
	gboolean cache_direct; /* a shared SR: O_DIRECT, no host page cache */
	int bootindex;         /* > 0: boot order; 0: not bootable */
} QemuDisk;

QemuDisk *qemu_disk_new(const char *id, const char *path,
			const char *format);
void qemu_disk_free(QemuDisk *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuDisk, qemu_disk_free)

/* Appends each disk's -blockdev and -device arguments to ARGV. */
void qemu_disk_argv(GPtrArray *disks, GPtrArray *argv);

/* The JSON text of -blockdev's argument for D's format node (with its
 * file node inline): also blockdev-add's arguments, as an object. */
char *qemu_disk_blockdev_json(const QemuDisk *d);

/* Hot-plug on a running QEMU.  DONE gets NULL, or the error (with an XAPI
 * code: INTERNAL_ERROR with the step and QEMU's message, INVALID_VALUE
 * [field, value] for a bad argument, DEVICE_DETACH_TIMEOUT), from the main
 * loop, once QEMU has finished: attach = blockdev-add + device_add
 * virtio-blk-pci; detach = device_del, the device gone from
 * /machine/peripheral (polled, within QEMU_DISK_DETACH_TIMEOUT_MS),
 * blockdev-del; a CD's insert and eject change the medium of an existing
 * ide-cd drive (dev-<D->id>; the inserted node is named D->id).  A step
 * that fails undoes the steps before it.  The sequences, and what QEMU 7.2
 * showed about them, are in disk.c. */
typedef void (*QemuDiskDoneFn)(const GError *error, gpointer data);
void qemu_disk_attach(Qmp *qmp, const QemuDisk *d, QemuDiskDoneFn done,
		      gpointer data);
void qemu_disk_detach(Qmp *qmp, const char *id, QemuDiskDoneFn done,
		      gpointer data);
void qemu_disk_cd_insert(Qmp *qmp, const QemuDisk *d, QemuDiskDoneFn done,
			 gpointer data);
/* detach with its own deadline for the guest to let the device go (the
 * QMP calls keep the client's); past it, DONE gets DEVICE_DETACH_TIMEOUT
 * [VBD, <id>] and the disk stays attached (QEMU may still remove the
 * device later, when the guest answers; the block node stays). */
#define QEMU_DISK_DETACH_TIMEOUT_MS 30000
void qemu_disk_detach_full(Qmp *qmp, const char *id, guint timeout_ms,
			   QemuDiskDoneFn done, gpointer data);
void qemu_disk_cd_eject(Qmp *qmp, const char *id, QemuDiskDoneFn done,
			gpointer data);
