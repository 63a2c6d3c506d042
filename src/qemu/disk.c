/*
 * disk: -blockdev and -device arguments for a VM's disks (see disk.h).
 *
 * -blockdev takes JSON, so a path needs no comma escaping; json-glib
 * writes it.  discard=unmap and detect-zeroes=unmap keep a thin qcow2
 * thin (a guest's TRIM frees clusters; a written zero cluster stays
 * unallocated, which also keeps a mirrored copy sparse: STORAGE.md).
 */
#include "qemu/disk.h"

#include <json-glib/json-glib.h>

#include "common/xerr.h"

QemuDisk *
qemu_disk_new(const char *id, const char *path, const char *format)
{
	QemuDisk *d = g_new0(QemuDisk, 1);

	d->id = g_strdup(id);
	d->path = g_strdup(path);
	d->format = g_strdup(format ? format : "qcow2");
	return d;
}

void
qemu_disk_free(QemuDisk *d)
{
	if (d == NULL)
		return;
	g_free(d->id);
	g_free(d->path);
	g_free(d->format);
	g_free(d);
}

static JsonObject *
qemu_disk_blockdev(const QemuDisk *d)
{
	JsonObject *file = json_object_new();
	JsonObject *cache = json_object_new();
	JsonObject *fmt = json_object_new();
	g_autofree char *file_node = g_strdup_printf("f-%s", d->id);

	json_object_set_string_member(file, "driver", "file");
	json_object_set_string_member(file, "node-name", file_node);
	json_object_set_string_member(file, "filename", d->path);
	json_object_set_boolean_member(cache, "direct", d->cache_direct);
	json_object_set_object_member(file, "cache", cache);
	json_object_set_boolean_member(file, "read-only", d->read_only);
	if (!d->read_only)
		json_object_set_string_member(file, "discard", "unmap");

	json_object_set_string_member(fmt, "driver", d->format);
	json_object_set_string_member(fmt, "node-name", d->id);
	json_object_set_object_member(fmt, "file", file);
	json_object_set_boolean_member(fmt, "read-only", d->read_only);
	if (!d->read_only) {
		json_object_set_string_member(fmt, "discard", "unmap");
		json_object_set_string_member(fmt, "detect-zeroes", "unmap");
	}
	return fmt;
}

char *
qemu_disk_blockdev_json(const QemuDisk *d)
{
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(),
						      qemu_disk_blockdev(d));
	json_object_unref(json_node_get_object(n));
	return json_to_string(n, FALSE);
}

void
qemu_disk_argv(GPtrArray *disks, GPtrArray *argv)
{
	for (guint i = 0; disks && i < disks->len; i++) {
		const QemuDisk *d = disks->pdata[i];
		GString *dev = g_string_new(NULL);

		if (d->path != NULL) {
			g_ptr_array_add(argv, g_strdup("-blockdev"));
			g_ptr_array_add(argv, qemu_disk_blockdev_json(d));
		}
		g_string_append(dev, d->cdrom ? "ide-cd" : "virtio-blk-pci");
		g_string_append_printf(dev, ",id=dev-%s", d->id);
		if (d->path != NULL)
			g_string_append_printf(dev, ",drive=%s", d->id);
		if (d->bootindex > 0)
			g_string_append_printf(dev, ",bootindex=%d",
					       d->bootindex);
		g_ptr_array_add(argv, g_strdup("-device"));
		g_ptr_array_add(argv, g_string_free(dev, FALSE));
	}
}

/* ---- Hot-plug (to be written: h/disk) ------------------------------- */

static void
qemu_disk_not_yet(QemuDiskDoneFn done, gpointer data)
{
	g_autoptr(GError) e = xerr_new("NOT_IMPLEMENTED", "disk hot-plug",
				       NULL);
	done(e, data);
}

void
qemu_disk_attach(Qmp *qmp, const QemuDisk *d, QemuDiskDoneFn done,
		 gpointer data)
{
	qemu_disk_not_yet(done, data);
}

void
qemu_disk_detach(Qmp *qmp, const char *id, QemuDiskDoneFn done,
		 gpointer data)
{
	qemu_disk_not_yet(done, data);
}

void
qemu_disk_cd_insert(Qmp *qmp, const QemuDisk *d, QemuDiskDoneFn done,
		    gpointer data)
{
	qemu_disk_not_yet(done, data);
}

void
qemu_disk_cd_eject(Qmp *qmp, const char *id, QemuDiskDoneFn done,
		   gpointer data)
{
	qemu_disk_not_yet(done, data);
}
