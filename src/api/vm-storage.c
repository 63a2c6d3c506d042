/*
 * vm-storage: what a VM boots from and writes to, resolved for QEMU.
 *
 * The QEMU driver takes a kernel, an initrd and a list of QemuDisks; it
 * never reads a path from a record.  This file is where the API decides
 * those paths, always inside ternd's SRs and never a path a client
 * names, and checks them before QEMU, which runs with the authority to
 * open them, ever sees one: regular files only (no FIFO, device or
 * symbolic link).
 *
 *   PV_kernel, PV_ramdisk   a file of the boot SR, by name ("vmlinuz") or
 *                           as a VDI uuid or ref in it
 *   disks                   the VM's VBDs -> VDIs -> <SR dir>/<location>
 *
 * vm_storage_upgrade moves databases from before the storage classes:
 * absolute PV_kernel/PV_ramdisk paths become files of the boot SR, and
 * the raw files of other_config:disks qcow2 VDIs of the local SR.  It runs
 * once per database (store meta "storage_upgraded"): a path written into
 * a record later (other_config is a client's map; a peer sends records)
 * must never make ternd read a host file into an SR.
 */
#include "api/api.h"

#include <glib/gstdio.h>
#include <string.h>

#include "common/valid.h"
#include "common/xerr.h"
#include "qemu/disk.h"
#include "storage/storage.h"

gboolean
vm_storage_boot_name_ok(const char *field, const char *name, GError **error)
{
	if (*name == 0 || (storage_location_ok(name) &&
			   strstr(name, "..") == NULL))
		return TRUE;
	xerr_set(error, "INVALID_VALUE", field, name, NULL);
	return FALSE;
}

char *
vm_storage_boot_path(Api *api, const char *name, const char **why)
{
	StoreObj *sr = sr_boot(api);
	const char *dir = sr ? sr_dir(api, sr, NULL) : NULL;
	const char *loc = name;

	if (dir == NULL) {
		*why = "cannot be found: the boot SR is not attached";
		return NULL;
	}
	/* A VDI of the boot SR by ref or uuid. */
	StoreObj *vdi = store_get_typed(api->store, "VDI", name);
	if (vdi == NULL && valid_uuid(name))
		vdi = store_get_by_uuid(api->store, "VDI", name);
	if (vdi != NULL && g_strcmp0(json_object_get_string_member_with_default(
			vdi->rec, "SR", ""), sr->ref) == 0)
		loc = json_object_get_string_member(vdi->rec, "location");
	if (!storage_location_ok(loc) || strstr(loc, "..") != NULL) {
		*why = "is not a file name of the boot SR (no '/', no '..')";
		return NULL;
	}
	g_autofree char *path = g_build_filename(dir, loc, NULL);
	if (!valid_regular_file(path, why))
		return NULL;
	return g_steal_pointer(&path);
}

gpointer
vm_storage_vbd_disk(Api *api, StoreObj *vbd, GError **error)
{
	const char *ud = json_object_get_string_member_with_default(vbd->rec,
		"userdevice", "0");
	gboolean cd = g_strcmp0(json_object_get_string_member_with_default(
		vbd->rec, "type", "Disk"), "CD") == 0;
	g_autofree char *id = g_strdup_printf("vbd%s", ud);

	if (cd && json_object_get_boolean_member_with_default(vbd->rec,
			"empty", FALSE)) {
		QemuDisk *d = qemu_disk_new(id, NULL, "raw");
		d->cdrom = TRUE;
		d->read_only = TRUE;
		return d;
	}
	const char *vdi_ref = json_object_get_string_member_with_default(
		vbd->rec, "VDI", "");
	StoreObj *vdi = store_get_typed(api->store, "VDI", vdi_ref);
	if (vdi == NULL) {
		xerr_set(error, "HANDLE_INVALID", "VDI", vdi_ref, NULL);
		return NULL;
	}
	g_autofree char *path = vdi_path(api, vdi, error);
	if (path == NULL)
		return NULL;
	JsonObject *sm = json_object_get_object_member(vdi->rec, "sm_config");
	StoreObj *sr = store_get_typed(api->store, "SR",
		json_object_get_string_member(vdi->rec, "SR"));
	QemuDisk *d = qemu_disk_new(id, path, sm
		? json_object_get_string_member_with_default(sm,
			"image-format", "qcow2") : "qcow2");
	d->cdrom = cd;
	d->read_only = cd || g_strcmp0(json_object_get_string_member(vbd->rec,
		"mode"), "RO") == 0 ||
		json_object_get_boolean_member_with_default(vdi->rec,
			"read_only", FALSE);
	/* A shared SR: no host page cache that another host cannot see. */
	d->cache_direct = sr && json_object_get_boolean_member_with_default(
		sr->rec, "shared", FALSE);
	return d;
}

static gint
vm_storage_by_userdevice(gconstpointer a, gconstpointer b)
{
	const QemuDisk *x = *(QemuDisk *const *)a, *y = *(QemuDisk *const *)b;

	return (int)g_ascii_strtoll(x->id + 3, NULL, 10) -
	       (int)g_ascii_strtoll(y->id + 3, NULL, 10);
}

static gboolean
vm_storage_boot_files(Api *api, StoreObj *vm, VmStorage *out, GError **error)
{
	static const char *const fields[] = { "PV_kernel", "PV_ramdisk" };
	char **dst[] = { &out->kernel, &out->initrd };

	for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
		const char *name = json_object_get_string_member_with_default(
			vm->rec, fields[i], "");
		const char *why = NULL;
		/* The driver passes an initrd only with a kernel. */
		if (!*name || (i == 1 && out->kernel == NULL))
			continue;
		*dst[i] = vm_storage_boot_path(api, name, &why);
		if (*dst[i] == NULL) {
			g_autofree char *msg = g_strdup_printf("%s %s %s",
				fields[i], name, why);
			xerr_set(error, "BOOTLOADER_FAILED", vm->ref, msg,
				 NULL);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
vm_storage_resolve(Api *api, StoreObj *vm, VmStorage *out, GError **error)
{
	g_autoptr(GHashTable) bootable = g_hash_table_new_full(g_str_hash,
		g_str_equal, g_free, NULL);
	JsonArray *vbds = json_object_get_array_member(vm->rec, "VBDs");

	memset(out, 0, sizeof(*out));
	out->disks = g_ptr_array_new_with_free_func(
		(GDestroyNotify)qemu_disk_free);
	if (!vm_storage_boot_files(api, vm, out, error))
		goto fail;
	for (guint i = 0; vbds && i < json_array_get_length(vbds); i++) {
		StoreObj *b = store_get_typed(api->store, "VBD",
			json_array_get_string_element(vbds, i));
		if (b == NULL)
			continue;
		QemuDisk *d = vm_storage_vbd_disk(api, b, error);
		if (d == NULL)
			goto fail;
		if (json_object_get_boolean_member_with_default(b->rec,
				"bootable", FALSE))
			g_hash_table_add(bootable, g_strdup(d->id));
		g_ptr_array_add(out->disks, d);
	}
	/* Boot order: the bootable VBDs by userdevice. */
	g_ptr_array_sort(out->disks, vm_storage_by_userdevice);
	int order = 1;
	for (guint i = 0; i < out->disks->len; i++) {
		QemuDisk *d = out->disks->pdata[i];
		if (g_hash_table_contains(bootable, d->id))
			d->bootindex = order++;
	}
	vbd_mark_attached(api, vm, TRUE);
	return TRUE;
fail:
	vm_storage_clear(out);
	return FALSE;
}

void
vm_storage_clear(VmStorage *s)
{
	g_clear_pointer(&s->kernel, g_free);
	g_clear_pointer(&s->initrd, g_free);
	g_clear_pointer(&s->disks, g_ptr_array_unref);
}

/* ---- Databases from before the storage classes ---------------------- */

/* Same size and same bytes. */
static gboolean
vm_storage_same_file(const char *a, const char *b)
{
	g_autofree char *x = NULL, *y = NULL;
	gsize nx = 0, ny = 0;

	return g_file_get_contents(a, &x, &nx, NULL) &&
	       g_file_get_contents(b, &y, &ny, NULL) && nx == ny &&
	       memcmp(x, y, nx) == 0;
}

/* The boot-SR name of the old absolute PATH: the file itself when it is
 * in the boot SR's directory already, else a copy made there. */
static char *
vm_storage_upgrade_boot(Api *api, const char *dir, StoreObj *vm,
			const char *path)
{
	g_autofree char *base = g_path_get_basename(path);
	g_autofree char *parent = g_path_get_dirname(path);
	const char *why = NULL;

	if (g_strcmp0(parent, dir) == 0 && storage_location_ok(base))
		return g_steal_pointer(&base);
	if (!valid_regular_file(path, &why)) {
		g_warning("storage: VM %s: %s %s; left as it is", vm->uuid,
			  path, why);
		return NULL;
	}
	g_autofree char *name = storage_location_ok(base)
		? g_strdup(base) : g_strdup_printf("%s-boot", vm->uuid);
	g_autofree char *dst = g_build_filename(dir, name, NULL);
	if (g_file_test(dst, G_FILE_TEST_EXISTS) &&
	    !vm_storage_same_file(path, dst)) {
		g_free(name);
		name = g_strdup_printf("%s-%s", vm->uuid, base);
		g_free(dst);
		dst = g_build_filename(dir, name, NULL);
	}
	g_autoptr(GFile) from = g_file_new_for_path(path);
	g_autoptr(GFile) to = g_file_new_for_path(dst);
	GError *e = NULL;
	if (!g_file_test(dst, G_FILE_TEST_EXISTS) &&
	    !g_file_copy(from, to, G_FILE_COPY_NONE, NULL, NULL, NULL, &e)) {
		g_warning("storage: VM %s: cannot copy %s into the boot SR: "
			  "%s", vm->uuid, path, e->message);
		g_error_free(e);
		return NULL;
	}
	g_info("storage: VM %s: %s is now %s in the boot SR", vm->uuid, path,
	       name);
	return g_steal_pointer(&name);
}

/* The raw files of other_config:disks become qcow2 VDIs of SR. */
static gboolean
vm_storage_upgrade_disks(Api *api, StoreObj *sr, const char *dir,
			 StoreObj *vm, const char *list, GError **error)
{
	g_auto(GStrv) paths = g_strsplit(list, ",", -1);
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; paths[i]; i++) {
		const char *why = NULL;
		if (!*paths[i])
			continue;
		if (!valid_regular_file(paths[i], &why)) {
			g_warning("storage: VM %s: disk %s %s; dropped",
				  vm->uuid, paths[i], why);
			continue;
		}
		char *uuid = store_new_uuid();
		g_autofree char *dst = storage_vdi_path(dir, uuid, "qcow2");
		const char *argv[] = { "qemu-img", "convert", "-q", "-f", "raw",
			"-O", "qcow2", "-o", "compat=1.1,cluster_size=64k",
			paths[i], dst, NULL };
		g_autofree char *out = storage_img_run_sync(argv, error);
		if (out == NULL) {
			g_free(uuid);
			return FALSE;
		}
		g_chmod(dst, 0600);
		g_autoptr(JsonObject) m = json_object_new();
		g_autofree char *label = g_path_get_basename(paths[i]);
		json_object_set_string_member(m, "uuid", uuid);
		json_object_set_string_member(m, "name_label", label);
		json_object_set_string_member(m, "name_description", paths[i]);
		json_object_set_string_member(m, "type", "user");
		json_object_set_string_member(m, "parent", "");
		if (!storage_meta_write(dir, uuid, m, error)) {
			g_free(uuid);
			return FALSE;
		}
		g_ptr_array_add(uuids, uuid);
		g_info("storage: VM %s: disk %s is now the VDI %s", vm->uuid,
		       paths[i], uuid);
	}
	if (!sr_scan(api, sr, error))
		return FALSE;
	for (guint i = 0; i < uuids->len; i++) {
		StoreObj *vdi = store_get_by_uuid(api->store, "VDI",
						  uuids->pdata[i]);
		g_autofree char *ud = g_strdup_printf("%u", i);
		if (vdi == NULL ||
		    vbd_add(api, vm, vdi, ud, i == 0, error) == NULL)
			return FALSE;
	}
	return TRUE;
}

gboolean
vm_storage_upgrade(Api *api, GError **error)
{
	StoreObj *boot = sr_boot(api);
	const char *boot_dir = boot ? sr_dir(api, boot, NULL) : NULL;
	g_autofree char *local_uuid = store_meta_get(api->store,
						     "local_sr_uuid");
	StoreObj *local = local_uuid ? store_get_by_uuid(api->store, "SR",
							 local_uuid) : NULL;
	const char *local_dir = local ? sr_dir(api, local, NULL) : NULL;
	g_autoptr(GPtrArray) vms = store_list(api->store, "VM");
	gboolean copied = FALSE;
	g_autofree char *done = store_meta_get(api->store, "storage_upgraded");

	if (done != NULL || boot_dir == NULL || local_dir == NULL)
		return TRUE;
	for (guint i = 0; i < vms->len; i++) {
		StoreObj *vm = vms->pdata[i];
		JsonObject *r = store_obj_dup(vm);
		gboolean changed = FALSE;
		for (const char *const *f = (const char *const[]){ "PV_kernel",
			"PV_ramdisk", NULL }; *f; f++) {
			const char *p = json_object_get_string_member_with_default(
				r, *f, "");
			if (*p != '/')
				continue;
			g_autofree char *name = vm_storage_upgrade_boot(api,
				boot_dir, vm, p);
			if (name == NULL)
				continue;
			json_object_set_string_member(r, *f, name);
			changed = copied = TRUE;
		}
		JsonObject *oc = json_object_get_object_member(r,
							       "other_config");
		g_autofree char *list = oc ? g_strdup(
			json_object_get_string_member_with_default(oc, "disks",
								   NULL))
			: NULL;
		if (changed && !store_replace(api->store, vm, r, error))
			return FALSE;
		if (!changed)
			json_object_unref(r);
		if (list == NULL)
			continue;
		if (!vm_storage_upgrade_disks(api, local, local_dir, vm, list,
					      error))
			return FALSE;
		JsonObject *r2 = store_obj_dup(vm);
		json_object_remove_member(json_object_get_object_member(r2,
			"other_config"), "disks");
		if (!store_replace(api->store, vm, r2, error))
			return FALSE;
	}
	if (copied && !sr_scan(api, boot, error))
		return FALSE;
	return store_meta_set(api->store, "storage_upgraded", "1", error);
}
