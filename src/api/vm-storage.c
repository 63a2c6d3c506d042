/*
 * vm-storage: what a VM boots from and writes to, resolved for QEMU.
 *
 * The QEMU driver takes a kernel, an initrd and a list of QemuDisks; it
 * never reads a path from a record.  This file is where the API decides
 * those paths from the VM's record, and checks them before QEMU, which
 * runs with the authority to open them, ever sees one: regular files
 * only (no FIFO, device or symbolic link).
 *
 * Today the kernel and initrd are PV_kernel/PV_ramdisk and the disks the
 * raw files of other_config:disks; the storage classes (SR, VDI, VBD)
 * replace both with files inside ternd's SRs.
 */
#include "api/api.h"

#include <string.h>

#include "common/valid.h"
#include "common/xerr.h"
#include "qemu/disk.h"

static const char *
vm_storage_map_get(JsonObject *rec, const char *map, const char *key)
{
	JsonObject *m = json_object_get_object_member(rec, map);

	return m ? json_object_get_string_member_with_default(m, key, "") : "";
}

gboolean
vm_storage_resolve(Api *api, StoreObj *vm, VmStorage *out, GError **error)
{
	static const char *const fields[] = { "PV_kernel", "PV_ramdisk" };
	char **dst[] = { &out->kernel, &out->initrd };
	const char *why = NULL;

	memset(out, 0, sizeof(*out));
	out->disks = g_ptr_array_new_with_free_func(
		(GDestroyNotify)qemu_disk_free);
	for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
		const char *p = json_object_get_string_member_with_default(
			vm->rec, fields[i], "");
		if (!*p)
			continue;
		if (!valid_regular_file(p, &why)) {
			g_autofree char *msg = g_strdup_printf("%s %s %s",
				fields[i], p, why);
			xerr_set(error, "BOOTLOADER_FAILED", vm->ref, msg,
				 NULL);
			vm_storage_clear(out);
			return FALSE;
		}
		*dst[i] = g_strdup(p);
	}
	g_auto(GStrv) dl = g_strsplit(
		vm_storage_map_get(vm->rec, "other_config", "disks"), ",", -1);
	for (guint i = 0; dl[i]; i++) {
		if (!*dl[i])
			continue;
		if (!valid_regular_file(dl[i], &why)) {
			g_autofree char *msg = g_strdup_printf(
				"other_config:disks: %s %s", dl[i], why);
			xerr_set(error, "VM_FILE_MISSING", dl[i], "disk", msg,
				 NULL);
			vm_storage_clear(out);
			return FALSE;
		}
		g_autofree char *id = g_strdup_printf("vbd%u", i);
		QemuDisk *d = qemu_disk_new(id, dl[i], "raw");
		d->cache_direct = TRUE;
		g_ptr_array_add(out->disks, d);
	}
	return TRUE;
}

void
vm_storage_clear(VmStorage *s)
{
	g_clear_pointer(&s->kernel, g_free);
	g_clear_pointer(&s->initrd, g_free);
	g_clear_pointer(&s->disks, g_ptr_array_unref);
}
