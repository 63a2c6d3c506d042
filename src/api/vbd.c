/*
 * vbd: a VDI attached to a VM (XAPI's VBD class): a disk or a CD drive.
 *
 * A halted VM's VBDs are records only; at start every VBD becomes a
 * QemuDisk (vm-storage.c) and currently_attached.  On a running VM,
 * plug/unplug hot-plug a disk and insert/eject change a CD's medium
 * through the calls of src/qemu/disk.h; the record changes only when
 * QEMU has said yes.
 */
#include "api/api.h"

#include <string.h>

#include "common/xerr.h"
#include "qemu/disk.h"
#include "qemu/driver.h"

#define VBD_MAX_USERDEVICE 15

static const Field vbd_fields[] = {
	{ "uuid", FT_STRING },
	{ "VM", FT_REF },
	{ "VDI", FT_REF },
	{ "device", FT_STRING },
	{ "userdevice", FT_STRING, TRUE },
	{ "bootable", FT_BOOL, TRUE },
	{ "mode", FT_STRING },
	{ "type", FT_STRING },
	{ "empty", FT_BOOL },
	{ "unpluggable", FT_BOOL, TRUE },
	{ "currently_attached", FT_BOOL },
	{ "storage_lock", FT_BOOL },
	{ "status_code", FT_INT },
	{ "status_detail", FT_STRING },
	{ "other_config", FT_MAP, TRUE },
	{ "qos_algorithm_type", FT_STRING, TRUE },
	{ "qos_algorithm_params", FT_MAP, TRUE },
	{ "allowed_operations", FT_SET },
	{ "current_operations", FT_MAP },
	{ NULL }
};

static StoreObj *
vbd_vm(Api *api, StoreObj *vbd)
{
	return store_get_typed(api->store, "VM",
		json_object_get_string_member_with_default(vbd->rec, "VM", ""));
}

static void
vbd_set(Api *api, StoreObj *vbd, const char *field, JsonNode *v /* takes */)
{
	JsonObject *r = store_obj_dup(vbd);

	json_object_set_member(r, field, v);
	store_replace(api->store, vbd, r, NULL);
	event_notify(api);
}

void
vbd_mark_attached(Api *api, StoreObj *vm, gboolean attached)
{
	JsonArray *vbds = json_object_get_array_member(vm->rec, "VBDs");

	for (guint i = 0; vbds && i < json_array_get_length(vbds); i++) {
		StoreObj *b = store_get_typed(api->store, "VBD",
			json_array_get_string_element(vbds, i));
		if (b == NULL || json_object_get_boolean_member_with_default(
				b->rec, "currently_attached", FALSE) == attached)
			continue;
		vbd_set(api, b, "currently_attached",
			json_node_init_boolean(json_node_alloc(), attached));
	}
}

/* A halted VM's VBDs are not attached, whatever the record last said. */
static void
vbd_refresh(Api *api, StoreObj *o)
{
	StoreObj *vm = vbd_vm(api, o);

	if (vm != NULL && strcmp(vm_power_state(vm), "Halted") == 0 &&
	    json_object_get_boolean_member_with_default(o->rec,
			"currently_attached", FALSE))
		vbd_set(api, o, "currently_attached",
			json_node_init_boolean(json_node_alloc(), FALSE));
}

/* "0".."15", or "autodetect": the lowest free one. */
static gboolean
vbd_userdevice(Api *api, StoreObj *vm, const char *given, char **out,
	       GError **error)
{
	gboolean used[VBD_MAX_USERDEVICE + 1] = { FALSE };
	JsonArray *vbds = json_object_get_array_member(vm->rec, "VBDs");
	guint64 n = 0;

	for (guint i = 0; vbds && i < json_array_get_length(vbds); i++) {
		StoreObj *b = store_get_typed(api->store, "VBD",
			json_array_get_string_element(vbds, i));
		guint64 u;
		if (b && g_ascii_string_to_unsigned(
				json_object_get_string_member_with_default(
					b->rec, "userdevice", ""), 10, 0,
				VBD_MAX_USERDEVICE, &u, NULL))
			used[u] = TRUE;
	}
	if (g_strcmp0(given, "autodetect") == 0 || *given == 0) {
		for (n = 0; n <= VBD_MAX_USERDEVICE && used[n]; n++)
			;
		if (n > VBD_MAX_USERDEVICE) {
			xerr_set(error, "OPERATION_NOT_ALLOWED",
				 "the VM has 16 VBDs already", NULL);
			return FALSE;
		}
	} else if (!g_ascii_string_to_unsigned(given, 10, 0,
					       VBD_MAX_USERDEVICE, &n, NULL)) {
		xerr_set(error, "INVALID_VALUE", "userdevice", given, NULL);
		return FALSE;
	} else if (used[n]) {
		xerr_set(error, "DEVICE_ALREADY_EXISTS", given, NULL);
		return FALSE;
	}
	*out = g_strdup_printf("%" G_GUINT64_FORMAT, n);
	return TRUE;
}

static const char *
vbd_given_str(JsonObject *given, const char *k, const char *def)
{
	JsonNode *n = json_object_get_member(given, k);

	return n && JSON_NODE_HOLDS_VALUE(n) &&
	       json_node_get_value_type(n) == G_TYPE_STRING
		? json_node_get_string(n) : def;
}

static gboolean
vbd_given_bool(JsonObject *given, const char *k, gboolean def,
	       gboolean *out, GError **error)
{
	JsonNode *n = json_object_get_member(given, k);

	*out = def;
	if (n == NULL)
		return TRUE;
	if (JSON_NODE_HOLDS_VALUE(n) &&
	    json_node_get_value_type(n) == G_TYPE_BOOLEAN) {
		*out = json_node_get_boolean(n);
		return TRUE;
	}
	xerr_set(error, "FIELD_TYPE_ERROR", k, NULL);
	return FALSE;
}

typedef struct {
	StoreObj *vm;
	StoreObj *vdi;            /* NULL: an empty CD drive */
	const char *userdevice;
	const char *type;         /* "Disk" or "CD" */
	const char *mode;         /* "RW" or "RO" */
	gboolean bootable, empty, unpluggable;
	JsonObject *other_config; /* NULL: empty */
} VbdNew;

static StoreObj *
vbd_new(Api *api, const VbdNew *n, GError **error)
{
	JsonObject *r = json_object_new();
	g_autofree char *uuid = store_new_uuid();
	gboolean cd = strcmp(n->type, "CD") == 0;
	g_autofree char *device = g_strdup_printf("%s%c", cd ? "hd" : "vd",
		'a' + (int)g_ascii_strtoll(n->userdevice, NULL, 10));

	json_object_set_string_member(r, "uuid", uuid);
	json_object_set_string_member(r, "VM", n->vm->ref);
	json_object_set_string_member(r, "VDI", n->vdi ? n->vdi->ref
						       : "OpaqueRef:NULL");
	json_object_set_string_member(r, "device", device);
	json_object_set_string_member(r, "userdevice", n->userdevice);
	json_object_set_boolean_member(r, "bootable", n->bootable);
	json_object_set_string_member(r, "mode", cd ? "RO" : n->mode);
	json_object_set_string_member(r, "type", n->type);
	json_object_set_boolean_member(r, "empty", n->empty);
	json_object_set_boolean_member(r, "unpluggable", n->unpluggable);
	json_object_set_boolean_member(r, "currently_attached", FALSE);
	json_object_set_boolean_member(r, "storage_lock", FALSE);
	json_object_set_int_member(r, "status_code", 0);
	json_object_set_string_member(r, "status_detail", "");
	json_object_set_object_member(r, "other_config", n->other_config
		? json_object_ref(n->other_config) : json_object_new());
	json_object_set_string_member(r, "qos_algorithm_type", "");
	json_object_set_object_member(r, "qos_algorithm_params",
				      json_object_new());
	json_object_set_array_member(r, "allowed_operations",
				     json_array_new());
	json_object_set_object_member(r, "current_operations",
				      json_object_new());
	StoreObj *o = store_add(api->store, "VBD", r, error);
	if (o == NULL)
		return NULL;
	sr_link(api, n->vm, "VBDs", o->ref, TRUE);
	if (n->vdi != NULL)
		sr_link(api, n->vdi, "VBDs", o->ref, TRUE);
	event_notify(api);
	return o;
}

static void
vbd_create(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	JsonObject *given = call_arg_map(call, 1, &e);
	gboolean bootable, empty, unpluggable;
	g_autofree char *userdevice = NULL;

	if (given == NULL ||
	    !vbd_given_bool(given, "bootable", FALSE, &bootable, &e) ||
	    !vbd_given_bool(given, "empty", FALSE, &empty, &e) ||
	    !vbd_given_bool(given, "unpluggable", TRUE, &unpluggable, &e))
		return call_fail(call, e);
	const char *vm_ref = vbd_given_str(given, "VM", "");
	const char *vdi_ref = vbd_given_str(given, "VDI", "OpaqueRef:NULL");
	const char *mode = vbd_given_str(given, "mode", "RW");
	const char *type = vbd_given_str(given, "type", "Disk");
	StoreObj *vm = store_get_typed(api->store, "VM", vm_ref);
	StoreObj *vdi = store_get_typed(api->store, "VDI", vdi_ref);

	if (vm == NULL)
		return call_fail(call, xerr_new("HANDLE_INVALID", "VM", vm_ref,
						NULL));
	if (strcmp(mode, "RW") != 0 && strcmp(mode, "RO") != 0)
		return call_fail(call, xerr_new("INVALID_VALUE", "mode", mode,
						NULL));
	if (strcmp(type, "Disk") != 0 && strcmp(type, "CD") != 0)
		return call_fail(call, xerr_new("INVALID_VALUE", "type", type,
						NULL));
	gboolean cd = strcmp(type, "CD") == 0;
	if (empty && !cd)
		return call_fail(call, xerr_new("VBD_NOT_REMOVABLE_MEDIA",
						"OpaqueRef:NULL", NULL));
	if (!empty && vdi == NULL)
		return call_fail(call, xerr_new("HANDLE_INVALID", "VDI",
						vdi_ref, NULL));
	if (vdi != NULL && strcmp(mode, "RW") == 0 &&
	    json_object_get_boolean_member_with_default(vdi->rec, "read_only",
							FALSE))
		return call_fail(call, xerr_new("VDI_READONLY", vdi->ref,
						NULL));
	if (vdi != NULL && strcmp(mode, "RW") == 0 &&
	    !json_object_get_boolean_member_with_default(vdi->rec, "sharable",
							 FALSE) &&
	    vdi_attached(api, vdi))
		return call_fail(call, xerr_new("VDI_IN_USE", vdi->ref,
						"VBD.create", NULL));
	if (!vbd_userdevice(api, vm, vbd_given_str(given, "userdevice",
			    "autodetect"), &userdevice, &e))
		return call_fail(call, e);

	JsonObject *oc = json_object_has_member(given, "other_config") &&
		JSON_NODE_HOLDS_OBJECT(json_object_get_member(given,
							      "other_config"))
		? json_object_get_object_member(given, "other_config") : NULL;
	VbdNew n = { vm, empty ? NULL : vdi, userdevice, type, mode, bootable,
		     empty || vdi == NULL, unpluggable, oc };
	StoreObj *o = vbd_new(api, &n, &e);
	if (o == NULL)
		return call_fail(call, e);
	call_return_string(call, o->ref);
}

StoreObj *
vbd_add(Api *api, StoreObj *vm, StoreObj *vdi, const char *userdevice,
	gboolean bootable, GError **error)
{
	VbdNew n = { vm, vdi, userdevice, "Disk", "RW", bootable, FALSE, TRUE,
		     NULL };

	return vbd_new(api, &n, error);
}

static void
vbd_destroy(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vbd = call_arg_obj(call, 1, "VBD", &e);

	if (vbd == NULL)
		return call_fail(call, e);
	vbd_refresh(api, vbd);
	if (json_object_get_boolean_member(vbd->rec, "currently_attached"))
		return call_fail(call, xerr_new("DEVICE_ALREADY_ATTACHED",
						vbd->ref, NULL));
	StoreObj *vm = vbd_vm(api, vbd);
	StoreObj *vdi = store_get_typed(api->store, "VDI",
		json_object_get_string_member(vbd->rec, "VDI"));
	if (vm != NULL)
		sr_link(api, vm, "VBDs", vbd->ref, FALSE);
	if (vdi != NULL)
		sr_link(api, vdi, "VBDs", vbd->ref, FALSE);
	store_remove(api->store, vbd, NULL);
	event_notify(api);
	call_return(call, NULL);
}

/* ---- Hot-plug -------------------------------------------------------- */

typedef struct {
	Call *call;
	char *vbd_ref;
	char *vdi_ref;           /* insert: the new medium */
	int op;
} VbdOp;

enum { VBD_PLUG, VBD_UNPLUG, VBD_INSERT, VBD_EJECT };

static void
vbd_op_done(const GError *error, gpointer data)
{
	VbdOp *op = data;
	Api *api = op->call->api;
	StoreObj *vbd = store_get_typed(api->store, "VBD", op->vbd_ref);

	if (error != NULL) {
		call_fail(op->call, g_error_copy(error));
	} else if (vbd == NULL) {
		call_fail(op->call, xerr_new("HANDLE_INVALID", "VBD",
					     op->vbd_ref, NULL));
	} else {
		StoreObj *old = store_get_typed(api->store, "VDI",
			json_object_get_string_member(vbd->rec, "VDI"));
		StoreObj *vdi = store_get_typed(api->store, "VDI",
						op->vdi_ref ? op->vdi_ref : "");
		JsonObject *r = store_obj_dup(vbd);
		switch (op->op) {
		case VBD_PLUG:
		case VBD_UNPLUG:
			json_object_set_boolean_member(r, "currently_attached",
						       op->op == VBD_PLUG);
			break;
		case VBD_INSERT:
			json_object_set_string_member(r, "VDI", op->vdi_ref);
			json_object_set_boolean_member(r, "empty", FALSE);
			if (vdi != NULL)
				sr_link(api, vdi, "VBDs", vbd->ref, TRUE);
			break;
		case VBD_EJECT:
			json_object_set_string_member(r, "VDI",
						      "OpaqueRef:NULL");
			json_object_set_boolean_member(r, "empty", TRUE);
			if (old != NULL)
				sr_link(api, old, "VBDs", vbd->ref, FALSE);
			break;
		}
		store_replace(api->store, vbd, r, NULL);
		event_notify(api);
		call_return(op->call, NULL);
	}
	call_unref(op->call);
	g_free(op->vbd_ref);
	g_free(op->vdi_ref);
	g_free(op);
}

/* The running VM's QMP, or an error (VM_BAD_POWER_STATE). */
static Qmp *
vbd_qmp(Api *api, StoreObj *vm, GError **error)
{
	if (vm == NULL || !vm_check_power(vm, "Running|Paused", error))
		return NULL;
	QemuVm *qv = qemu_vm_lookup(api, vm->ref);
	Qmp *qmp = qv ? qemu_vm_qmp(qv) : NULL;
	if (qmp == NULL)
		xerr_set(error, "VM_BAD_POWER_STATE", vm->ref, "Running",
			 vm_power_state(vm), NULL);
	return qmp;
}

static VbdOp *
vbd_op_new(Call *call, StoreObj *vbd, int kind, const char *vdi_ref)
{
	VbdOp *op = g_new0(VbdOp, 1);

	op->call = call_ref(call);
	op->vbd_ref = g_strdup(vbd->ref);
	op->vdi_ref = g_strdup(vdi_ref);
	op->op = kind;
	return op;
}

static void
vbd_plug(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vbd = call_arg_obj(call, 1, "VBD", &e);
	StoreObj *vm = vbd ? vbd_vm(api, vbd) : NULL;
	Qmp *qmp = vbd ? vbd_qmp(api, vm, &e) : NULL;

	if (qmp == NULL)
		return call_fail(call, e);
	if (json_object_get_boolean_member(vbd->rec, "currently_attached"))
		return call_fail(call, xerr_new("DEVICE_ALREADY_ATTACHED",
						vbd->ref, NULL));
	g_autoptr(QemuDisk) d = vm_storage_vbd_disk(api, vbd, &e);
	if (d == NULL)
		return call_fail(call, e);
	qemu_disk_attach(qmp, d, vbd_op_done, vbd_op_new(call, vbd, VBD_PLUG,
							 NULL));
}

static void
vbd_unplug(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vbd = call_arg_obj(call, 1, "VBD", &e);
	StoreObj *vm = vbd ? vbd_vm(api, vbd) : NULL;
	Qmp *qmp = vbd ? vbd_qmp(api, vm, &e) : NULL;

	if (qmp == NULL)
		return call_fail(call, e);
	if (!json_object_get_boolean_member(vbd->rec, "currently_attached"))
		return call_fail(call, xerr_new("DEVICE_ALREADY_DETACHED",
						vbd->ref, NULL));
	if (!json_object_get_boolean_member(vbd->rec, "unpluggable"))
		return call_fail(call, xerr_new("VBD_NOT_UNPLUGGABLE",
						vbd->ref, NULL));
	g_autofree char *id = g_strdup_printf("vbd%s",
		json_object_get_string_member(vbd->rec, "userdevice"));
	qemu_disk_detach(qmp, id, vbd_op_done, vbd_op_new(call, vbd,
							  VBD_UNPLUG, NULL));
}

static gboolean
vbd_check_cd(StoreObj *vbd, gboolean want_empty, GError **error)
{
	if (g_strcmp0(json_object_get_string_member(vbd->rec, "type"),
		      "CD") != 0) {
		xerr_set(error, "VBD_NOT_REMOVABLE_MEDIA", vbd->ref, NULL);
		return FALSE;
	}
	gboolean empty = json_object_get_boolean_member(vbd->rec, "empty");
	if (want_empty && !empty) {
		xerr_set(error, "VBD_NOT_EMPTY", vbd->ref, NULL);
		return FALSE;
	}
	if (!want_empty && empty) {
		xerr_set(error, "VBD_IS_EMPTY", vbd->ref, NULL);
		return FALSE;
	}
	return TRUE;
}

static void
vbd_insert(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vbd = call_arg_obj(call, 1, "VBD", &e);
	StoreObj *vdi = vbd ? call_arg_obj(call, 2, "VDI", &e) : NULL;

	if (vdi == NULL || !vbd_check_cd(vbd, TRUE, &e))
		return call_fail(call, e);
	StoreObj *vm = vbd_vm(api, vbd);
	VbdOp *op = vbd_op_new(call, vbd, VBD_INSERT, vdi->ref);
	if (vm == NULL || strcmp(vm_power_state(vm), "Halted") == 0)
		return vbd_op_done(NULL, op);
	Qmp *qmp = vbd_qmp(api, vm, &e);
	if (qmp == NULL)
		return vbd_op_done(e, op), g_error_free(e);
	/* The medium's disk: this VBD's device with the new VDI's file. */
	g_autofree char *path = vdi_path(api, vdi, &e);
	if (path == NULL)
		return vbd_op_done(e, op), g_error_free(e);
	g_autofree char *id = g_strdup_printf("vbd%s",
		json_object_get_string_member(vbd->rec, "userdevice"));
	JsonObject *sm = json_object_get_object_member(vdi->rec, "sm_config");
	g_autoptr(QemuDisk) d = qemu_disk_new(id, path,
		sm ? json_object_get_string_member_with_default(sm,
			"image-format", "qcow2") : "qcow2");
	d->cdrom = TRUE;
	d->read_only = TRUE;
	qemu_disk_cd_insert(qmp, d, vbd_op_done, op);
}

static void
vbd_eject(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vbd = call_arg_obj(call, 1, "VBD", &e);

	if (vbd == NULL || !vbd_check_cd(vbd, FALSE, &e))
		return call_fail(call, e);
	StoreObj *vm = vbd_vm(api, vbd);
	VbdOp *op = vbd_op_new(call, vbd, VBD_EJECT, NULL);
	if (vm == NULL || strcmp(vm_power_state(vm), "Halted") == 0)
		return vbd_op_done(NULL, op);
	Qmp *qmp = vbd_qmp(api, vm, &e);
	if (qmp == NULL)
		return vbd_op_done(e, op), g_error_free(e);
	g_autofree char *id = g_strdup_printf("vbd%s",
		json_object_get_string_member(vbd->rec, "userdevice"));
	qemu_disk_cd_eject(qmp, id, vbd_op_done, op);
}

static const Method vbd_methods[] = {
	{ .name = "create", .fn = vbd_create, .nargs = 2,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ .name = "destroy", .fn = vbd_destroy, .nargs = 2,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ .name = "plug", .fn = vbd_plug, .nargs = 2,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ .name = "unplug", .fn = vbd_unplug, .nargs = 2,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ .name = "insert", .fn = vbd_insert, .nargs = 3,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ .name = "eject", .fn = vbd_eject, .nargs = 2,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ NULL }
};

const ClassDef vbd_class = {
	.name = "VBD",
	.fields = vbd_fields,
	.methods = vbd_methods,
	.set_role = ROLE_VM_ADMIN,
	.refresh = vbd_refresh,
};
