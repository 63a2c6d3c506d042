/*
 * vm: VM records: create with defaults, destroy, clone, and the field
 * table the generated getters and setters come from.
 *
 * The power operations (start, shutdown, pause, ...) live in vm-power.c,
 * next to the QEMU driver they call; migration lives in src/migrate/.
 * allowed_operations is derived from power_state and current_operations
 * by vm_update_operations after every change of either, so a client can
 * read what it may do next.
 */
#include "api/api.h"

#include <string.h>

#include "common/xerr.h"
#include "migrate/migrate.h"
#include "qemu/driver.h"

#define MiB (1024 * 1024)

static const Field vm_fields[] = {
	{ "uuid", FT_STRING },
	{ "name_label", FT_STRING, TRUE },
	{ "name_description", FT_STRING, TRUE },
	{ "power_state", FT_STRING },
	{ "user_version", FT_INT, TRUE },
	{ "is_a_template", FT_BOOL, TRUE },
	{ "is_control_domain", FT_BOOL },
	{ "resident_on", FT_REF },
	{ "memory_static_max", FT_INT, TRUE },
	{ "memory_static_min", FT_INT, TRUE },
	{ "memory_dynamic_max", FT_INT, TRUE },
	{ "memory_dynamic_min", FT_INT, TRUE },
	{ "VCPUs_max", FT_INT, TRUE },
	{ "VCPUs_at_startup", FT_INT, TRUE },
	{ "actions_after_shutdown", FT_STRING, TRUE },
	{ "actions_after_reboot", FT_STRING, TRUE },
	{ "actions_after_crash", FT_STRING, TRUE },
	/* Not generated: set_PV_kernel checks the name (vm_set_boot_file). */
	{ "PV_kernel", FT_STRING },
	{ "PV_ramdisk", FT_STRING },
	{ "PV_args", FT_STRING, TRUE },
	{ "PV_bootloader", FT_STRING, TRUE },
	{ "HVM_boot_policy", FT_STRING, TRUE },
	{ "platform", FT_MAP, TRUE },
	{ "other_config", FT_MAP, TRUE },
	{ "tags", FT_SET, TRUE },
	{ "blocked_operations", FT_MAP, TRUE },
	{ "allowed_operations", FT_SET },
	{ "current_operations", FT_MAP },
	{ "domid", FT_INT },
	{ "VBDs", FT_SET },
	{ "VIFs", FT_SET },
	{ NULL }
};

JsonObject *
vm_default_record(void)
{
	JsonObject *r = json_object_new();

	json_object_set_string_member(r, "name_label", "");
	json_object_set_string_member(r, "name_description", "");
	json_object_set_string_member(r, "power_state", "Halted");
	json_object_set_int_member(r, "user_version", 1);
	json_object_set_boolean_member(r, "is_a_template", FALSE);
	json_object_set_boolean_member(r, "is_control_domain", FALSE);
	json_object_set_string_member(r, "resident_on", "OpaqueRef:NULL");
	json_object_set_int_member(r, "memory_static_max", 256 * MiB);
	json_object_set_int_member(r, "memory_static_min", 256 * MiB);
	json_object_set_int_member(r, "memory_dynamic_max", 256 * MiB);
	json_object_set_int_member(r, "memory_dynamic_min", 256 * MiB);
	json_object_set_int_member(r, "VCPUs_max", 1);
	json_object_set_int_member(r, "VCPUs_at_startup", 1);
	json_object_set_string_member(r, "actions_after_shutdown", "destroy");
	json_object_set_string_member(r, "actions_after_reboot", "restart");
	json_object_set_string_member(r, "actions_after_crash", "destroy");
	json_object_set_string_member(r, "PV_kernel", "");
	json_object_set_string_member(r, "PV_ramdisk", "");
	json_object_set_string_member(r, "PV_args", "");
	json_object_set_string_member(r, "PV_bootloader", "");
	json_object_set_string_member(r, "HVM_boot_policy", "");
	json_object_set_object_member(r, "platform", json_object_new());
	json_object_set_object_member(r, "other_config", json_object_new());
	json_object_set_array_member(r, "tags", json_array_new());
	json_object_set_object_member(r, "blocked_operations",
				      json_object_new());
	json_object_set_array_member(r, "allowed_operations",
				     json_array_new());
	json_object_set_object_member(r, "current_operations",
				      json_object_new());
	json_object_set_int_member(r, "domid", -1);
	json_object_set_array_member(r, "VBDs", json_array_new());
	json_object_set_array_member(r, "VIFs", json_array_new());
	return r;
}

/* What each power state allows when no operation runs. */
static const struct {
	const char *state;
	const char *const ops[12];
} vm_allowed[] = {
	{ "Halted", { "start", "start_on", "destroy", "clone", "migrate_send",
		      "pool_migrate", NULL } },
	{ "Running", { "clean_shutdown", "hard_shutdown", "clean_reboot",
		       "hard_reboot", "pause", "migrate_send", "pool_migrate",
		       NULL } },
	{ "Paused", { "unpause", "hard_shutdown", "hard_reboot",
		      "migrate_send", "pool_migrate", NULL } },
};

static JsonArray *
vm_allowed_operations(JsonObject *rec)
{
	JsonArray *a = json_array_new();
	const char *ps = json_object_get_string_member_with_default(
		rec, "power_state", "Halted");
	JsonObject *cur = json_object_get_object_member(rec,
							"current_operations");

	/* One operation at a time: while one runs, nothing else is allowed. */
	if (cur != NULL && json_object_get_size(cur) > 0)
		return a;
	for (guint i = 0; i < G_N_ELEMENTS(vm_allowed); i++) {
		if (strcmp(vm_allowed[i].state, ps) != 0)
			continue;
		for (guint j = 0; vm_allowed[i].ops[j]; j++)
			json_array_add_string_element(a, vm_allowed[i].ops[j]);
	}
	return a;
}

gboolean
vm_update_operations(Api *api, StoreObj *vm, GError **error)
{
	JsonObject *rec = store_obj_dup(vm);

	json_object_set_array_member(rec, "allowed_operations",
				     vm_allowed_operations(rec));
	return store_replace(api->store, vm, rec, error);
}

/* The fields a client may give to VM.create; the rest are the daemon's. */
static gboolean
vm_create_field_ok(const Field *f)
{
	static const char *const own[] = {
		"uuid", "power_state", "resident_on", "allowed_operations",
		"current_operations", "domid", "VBDs", "VIFs",
		"is_control_domain", NULL
	};
	return !g_strv_contains(own, f->name);
}

static gboolean
vm_check_limits(JsonObject *rec, GError **error)
{
	gint64 mem = json_object_get_int_member(rec, "memory_static_max");
	gint64 vcpus = json_object_get_int_member(rec, "VCPUs_max");
	gint64 boot = json_object_get_int_member(rec, "VCPUs_at_startup");

	if (mem < 16 * MiB || mem > ((gint64)1 << 40)) {
		xerr_set(error, "FIELD_TYPE_ERROR", "memory_static_max", NULL);
		return FALSE;
	}
	if (vcpus < 1 || vcpus > 64 || boot < 1 || boot > vcpus) {
		xerr_set(error, "FIELD_TYPE_ERROR", "VCPUs_max", NULL);
		return FALSE;
	}
	return TRUE;
}

/* Fills a new VM record from a client's map: known fields are checked and
 * copied, unknown ones ignored (XAPI clients send whole records). */
JsonObject *
vm_record_from_map(JsonObject *given, GError **error)
{
	g_autoptr(JsonObject) rec = vm_default_record();
	gboolean dyn_given = json_object_has_member(given,
						    "memory_dynamic_max");

	for (const Field *f = vm_fields; f->name; f++) {
		JsonNode *v = json_object_get_member(given, f->name);
		if (v == NULL || !vm_create_field_ok(f))
			continue;
		if (!api_field_check(f, v, error))
			return NULL;
		json_object_set_member(rec, f->name, api_field_normalise(f, v));
	}
	/* A record that names only memory_static_max means that much;
	 * whatever was given, keep XAPI's order static_min <= dynamic_min <=
	 * dynamic_max <= static_max by lowering what is above its bound. */
	gint64 smax = json_object_get_int_member(rec, "memory_static_max");
	if (!dyn_given) {
		json_object_set_int_member(rec, "memory_dynamic_max", smax);
		json_object_set_int_member(rec, "memory_dynamic_min", smax);
	}
	static const char *const order[] = { "memory_dynamic_max",
		"memory_dynamic_min", "memory_static_min" };
	gint64 bound = smax;
	for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
		gint64 v = json_object_get_int_member(rec, order[i]);
		if (v > bound)
			json_object_set_int_member(rec, order[i], bound);
		bound = MIN(v, bound);
	}
	if (!json_object_has_member(given, "VCPUs_at_startup"))
		json_object_set_int_member(rec, "VCPUs_at_startup",
			json_object_get_int_member(rec, "VCPUs_max"));
	if (!vm_check_limits(rec, error))
		return NULL;
	/* Boot files are names in the boot SR, never host paths. */
	for (const char *const *f = (const char *const[]){ "PV_kernel",
		"PV_ramdisk", NULL }; *f; f++)
		if (!vm_storage_boot_name_ok(*f,
			json_object_get_string_member(rec, *f), error))
			return NULL;
	return g_steal_pointer(&rec);
}

StoreObj *
vm_add(Api *api, JsonObject *rec /* takes */, GError **error)
{
	g_autofree char *uuid = store_new_uuid();

	if (!json_object_has_member(rec, "uuid"))
		json_object_set_string_member(rec, "uuid", uuid);
	json_object_set_array_member(rec, "allowed_operations",
				     vm_allowed_operations(rec));
	return store_add(api->store, "VM", rec, error);
}

static void
vm_create(Call *call)
{
	GError *e = NULL;
	JsonObject *given = call_arg_map(call, 1, &e);
	JsonObject *rec = given ? vm_record_from_map(given, &e) : NULL;
	StoreObj *o;

	if (rec == NULL || (o = vm_add(call->api, rec, &e)) == NULL)
		return call_fail(call, e);
	event_notify(call->api);
	call_return_string(call, o->ref);
}

const char *
vm_power_state(StoreObj *vm)
{
	return json_object_get_string_member_with_default(vm->rec,
							  "power_state",
							  "Halted");
}

gboolean
vm_check_power(StoreObj *vm, const char *expected, GError **error)
{
	const char *ps = vm_power_state(vm);
	g_auto(GStrv) ok = g_strsplit(expected, "|", -1);

	if (g_strv_contains((const char *const *)ok, ps))
		return TRUE;
	xerr_set(error, "VM_BAD_POWER_STATE", vm->ref, ok[0], ps, NULL);
	return FALSE;
}

static void
vm_destroy(Call *call)
{
	GError *e = NULL;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);

	if (vm == NULL || !vm_check_power(vm, "Halted", &e) ||
	    !vm_op_idle(vm, &e))
		return call_fail(call, e);
	qemu_driver_forget(call->api, vm);
	/* Its VBDs go with it (as in XAPI); the VDIs stay. */
	JsonArray *vbds = json_object_get_array_member(vm->rec, "VBDs");
	for (guint i = 0; vbds && i < json_array_get_length(vbds); i++) {
		StoreObj *b = store_get_typed(call->api->store, "VBD",
			json_array_get_string_element(vbds, i));
		StoreObj *vdi = b ? store_get_typed(call->api->store, "VDI",
			json_object_get_string_member(b->rec, "VDI")) : NULL;
		if (vdi != NULL)
			sr_link(call->api, vdi, "VBDs", b->ref, FALSE);
		if (b != NULL)
			store_remove(call->api->store, b, NULL);
	}
	if (!store_remove(call->api->store, vm, &e))
		return call_fail(call, e);
	vif_gc(call->api); /* its VIFs go with it, as in XAPI */
	event_notify(call->api);
	call_return(call, NULL);
}

static void
vm_clone(Call *call)
{
	GError *e = NULL;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);
	const char *name = vm ? call_arg_string(call, 2, &e) : NULL;

	if (name == NULL || !vm_check_power(vm, "Halted", &e))
		return call_fail(call, e);
	JsonArray *vbds = json_object_get_array_member(vm->rec, "VBDs");
	if (vbds && json_array_get_length(vbds) > 0)
		return call_fail(call, xerr_new("OPERATION_NOT_ALLOWED",
			"VM.clone of a VM with VBDs: clone its VDIs "
			"(VDI.clone) and make VBDs for the new VM", NULL));
	JsonObject *rec = store_obj_dup(vm);
	json_object_remove_member(rec, "uuid");
	json_object_set_string_member(rec, "name_label", name);
	StoreObj *o = vm_add(call->api, rec, &e);
	if (o == NULL)
		return call_fail(call, e);
	event_notify(call->api);
	call_return_string(call, o->ref);
}

/* set_PV_kernel, set_PV_ramdisk: a name in the boot SR only. */
static void
vm_set_boot_file(Call *call)
{
	GError *e = NULL;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);
	const char *v = vm ? call_arg_string(call, 2, &e) : NULL;
	const char *field = strcmp(call->method->name, "set_PV_kernel") == 0
		? "PV_kernel" : "PV_ramdisk";

	if (v == NULL || !vm_storage_boot_name_ok(field, v, &e) ||
	    !vm_set(call->api, vm, &e, field,
		    json_node_init_string(json_node_alloc(), v), NULL))
		return call_fail(call, e);
	event_notify(call->api);
	call_return(call, NULL);
}

static const Method vm_methods[] = {
	{ .name = "set_PV_kernel", .fn = vm_set_boot_file, .nargs = 3,
	  .role = ROLE_VM_ADMIN },
	{ .name = "set_PV_ramdisk", .fn = vm_set_boot_file, .nargs = 3,
	  .role = ROLE_VM_ADMIN },
	{ .name = "create", .fn = vm_create, .nargs = 2,
	  .role = ROLE_VM_POWER_ADMIN, .async = TRUE },
	{ .name = "destroy", .fn = vm_destroy, .nargs = 2,
	  .role = ROLE_VM_POWER_ADMIN, .async = TRUE },
	{ .name = "clone", .fn = vm_clone, .nargs = 3,
	  .role = ROLE_VM_POWER_ADMIN, .async = TRUE },
	{ .name = "start", .fn = vm_power_start, .nargs = 4,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ .name = "clean_shutdown", .fn = vm_power_clean_shutdown, .nargs = 2,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ .name = "hard_shutdown", .fn = vm_power_hard_shutdown, .nargs = 2,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ .name = "clean_reboot", .fn = vm_power_clean_reboot, .nargs = 2,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ .name = "hard_reboot", .fn = vm_power_hard_reboot, .nargs = 2,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ .name = "pause", .fn = vm_power_pause, .nargs = 2,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ .name = "unpause", .fn = vm_power_unpause, .nargs = 2,
	  .role = ROLE_VM_OPERATOR, .async = TRUE },
	{ .name = "get_console_log", .fn = vm_power_get_console_log,
	  .nargs = 3, .role = ROLE_VM_OPERATOR },
	{ .name = "migrate_send", .fn = migrate_src_send, .nargs = 7,
	  .role = ROLE_VM_POWER_ADMIN, .async = TRUE },
	{ .name = "assert_can_migrate", .fn = migrate_assert_can_migrate,
	  .nargs = 7, .role = ROLE_VM_POWER_ADMIN, .async = TRUE },
	{ .name = "migrate_check", .fn = migrate_check, .nargs = 4,
	  .role = ROLE_VM_POWER_ADMIN, .async = TRUE },
	{ .name = "migrate_set_bandwidth", .fn = migrate_set_bandwidth,
	  .nargs = 3, .role = ROLE_VM_POWER_ADMIN },
	{ NULL }
};

const ClassDef vm_class = {
	.name = "VM",
	.fields = vm_fields,
	.methods = vm_methods,
	.set_role = ROLE_VM_ADMIN,
	.named = TRUE,
};
