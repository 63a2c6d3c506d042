/*
 * vdi: virtual disk images (XAPI's VDI class): records over the files of
 * src/storage/file.c.
 *
 * A VDI's file is <SR dir>/<location>.qcow2 (raw files in the boot SR
 * are <SR dir>/<location>); ternd chooses both, a client never names a
 * path.  create, resize, snapshot and clone run qemu-img off the main
 * loop: the handler answers from its callback.  A snapshot or a clone of
 * a VDI that a running VM uses is refused (VDI_IN_USE): the chain renames
 * the file QEMU has open (see file.c), which only a halted VM allows.
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/valid.h"

#include "common/xerr.h"
#include "storage/storage.h"

static const Field vdi_fields[] = {
	{ "uuid", FT_STRING },
	{ "name_label", FT_STRING, TRUE },
	{ "name_description", FT_STRING, TRUE },
	{ "SR", FT_REF },
	{ "VBDs", FT_SET },
	{ "virtual_size", FT_INT },
	{ "physical_utilisation", FT_INT },
	{ "type", FT_STRING },
	{ "sharable", FT_BOOL, TRUE },
	{ "read_only", FT_BOOL, TRUE },
	{ "location", FT_STRING },
	{ "managed", FT_BOOL },
	{ "missing", FT_BOOL },
	{ "sm_config", FT_MAP },
	{ "other_config", FT_MAP, TRUE },
	{ "tags", FT_SET, TRUE },
	{ "is_a_snapshot", FT_BOOL },
	{ "snapshot_of", FT_REF },
	{ "snapshots", FT_SET },
	{ "snapshot_time", FT_DATETIME },
	{ "allowed_operations", FT_SET },
	{ "current_operations", FT_MAP },
	{ NULL }
};

static const char *const vdi_types[] = {
	"user", "system", "suspend", "crashdump", "ha_statefile", "metadata",
	"redo_log", "rrd", "pvs_cache", "cbt_metadata", NULL
};

static StoreObj *
vdi_sr(Api *api, StoreObj *vdi)
{
	return store_get_typed(api->store, "SR",
		json_object_get_string_member_with_default(vdi->rec, "SR", ""));
}

static const char *
vdi_format(StoreObj *vdi)
{
	JsonObject *sm = json_object_get_object_member(vdi->rec, "sm_config");

	return sm ? json_object_get_string_member_with_default(sm,
		"image-format", "qcow2") : "qcow2";
}

char *
vdi_path(Api *api, StoreObj *vdi, GError **error)
{
	StoreObj *sr = vdi_sr(api, vdi);
	const char *dir = sr ? sr_dir(api, sr, error) : NULL;
	const char *loc = json_object_get_string_member_with_default(vdi->rec,
		"location", "");
	struct stat st;

	if (dir == NULL) {
		if (sr == NULL)
			xerr_set(error, "HANDLE_INVALID", "SR", "", NULL);
		return NULL;
	}
	g_autofree char *path = storage_vdi_path(dir, loc, vdi_format(vdi));
	if (path == NULL || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		xerr_set(error, "VDI_MISSING", sr->ref, vdi->ref, NULL);
		return NULL;
	}
	/* QEMU opens what the image's header names: only its SR's files. */
	g_autoptr(GError) e = NULL;
	if (!storage_vdi_chain_ok(dir, loc, vdi_format(vdi), &e)) {
		xerr_set(error, "SR_BACKEND_FAILURE", "", e->message, NULL);
		return NULL;
	}
	return g_steal_pointer(&path);
}

gboolean
vdi_attached(Api *api, StoreObj *vdi)
{
	JsonArray *vbds = json_object_get_array_member(vdi->rec, "VBDs");

	for (guint i = 0; vbds && i < json_array_get_length(vbds); i++) {
		StoreObj *b = store_get_typed(api->store, "VBD",
			json_array_get_string_element(vbds, i));
		StoreObj *vm = b ? store_get_typed(api->store, "VM",
			json_object_get_string_member_with_default(b->rec,
				"VM", "")) : NULL;
		if (vm != NULL && strcmp(vm_power_state(vm), "Halted") != 0)
			return TRUE;
	}
	return FALSE;
}

/* SR_FULL when NEED more bytes do not fit in SR's free space. */
static gboolean
vdi_check_room(Api *api, const char *dir, gint64 need, GError **error)
{
	gint64 total = 0, used = 0, avail = 0;

	if (!storage_sr_sizes(dir, &total, &used, &avail, NULL) ||
	    need <= avail)
		return TRUE;
	g_autofree char *n = g_strdup_printf("%" G_GINT64_FORMAT, need);
	g_autofree char *a = g_strdup_printf("%" G_GINT64_FORMAT, avail);
	xerr_set(error, "SR_FULL", n, a, NULL);
	return FALSE;
}

/* The record of a VDI just made in SR from its metadata META. */
static StoreObj *
vdi_add(Api *api, StoreObj *sr, const char *dir, const char *location,
	const char *format, JsonObject *meta, JsonObject *other_config,
	GError **error)
{
	JsonObject *r = json_object_new();
	JsonObject *sm = json_object_new();
	g_autofree char *path = storage_vdi_path(dir, location, format);
	gint64 vsize = 0, phys = 0;

	storage_vdi_sizes(path, format, &vsize, &phys, NULL);
	json_object_set_string_member(sm, "image-format", format);
	const char *parent = json_object_get_string_member_with_default(meta,
		"parent", "");
	if (*parent)
		json_object_set_string_member(sm, "vhd-parent", parent);
	for (const char *const *k = (const char *const[]){ "uuid",
		"name_label", "name_description", "type", NULL }; *k; k++)
		json_object_set_string_member(r, *k,
			json_object_get_string_member_with_default(meta, *k,
								   ""));
	json_object_set_string_member(r, "SR", sr->ref);
	json_object_set_array_member(r, "VBDs", json_array_new());
	json_object_set_int_member(r, "virtual_size", vsize);
	json_object_set_int_member(r, "physical_utilisation", phys);
	json_object_set_boolean_member(r, "sharable",
		json_object_get_boolean_member_with_default(meta, "sharable",
							    FALSE));
	json_object_set_boolean_member(r, "read_only",
		json_object_get_boolean_member_with_default(meta, "read_only",
							    FALSE));
	json_object_set_string_member(r, "location", location);
	json_object_set_boolean_member(r, "managed", TRUE);
	json_object_set_boolean_member(r, "missing", FALSE);
	json_object_set_object_member(r, "sm_config", sm);
	json_object_set_object_member(r, "other_config", other_config
		? json_object_ref(other_config) : json_object_new());
	json_object_set_array_member(r, "tags", json_array_new());
	json_object_set_boolean_member(r, "is_a_snapshot",
		json_object_get_boolean_member_with_default(meta,
			"is_a_snapshot", FALSE));
	json_object_set_string_member(r, "snapshot_of", "OpaqueRef:NULL");
	json_object_set_array_member(r, "snapshots", json_array_new());
	json_object_set_string_member(r, "snapshot_time",
		json_object_get_string_member_with_default(meta,
			"snapshot_time", "19700101T00:00:00Z"));
	json_object_set_array_member(r, "allowed_operations",
				     json_array_new());
	json_object_set_object_member(r, "current_operations",
				      json_object_new());
	StoreObj *o = store_add(api->store, "VDI", r, error);
	if (o != NULL)
		sr_link(api, sr, "VDIs", o->ref, TRUE);
	return o;
}

static JsonObject *
vdi_meta_new(const char *uuid, JsonObject *given, const char *type)
{
	JsonObject *m = json_object_new();

	json_object_set_string_member(m, "uuid", uuid);
	json_object_set_string_member(m, "name_label",
		json_object_get_string_member_with_default(given, "name_label",
							   ""));
	json_object_set_string_member(m, "name_description",
		json_object_get_string_member_with_default(given,
			"name_description", ""));
	json_object_set_string_member(m, "type", type);
	json_object_set_boolean_member(m, "sharable",
		json_object_get_boolean_member_with_default(given, "sharable",
							    FALSE));
	json_object_set_boolean_member(m, "read_only",
		json_object_get_boolean_member_with_default(given, "read_only",
							    FALSE));
	json_object_set_boolean_member(m, "hidden", FALSE);
	json_object_set_string_member(m, "parent", "");
	return m;
}

/* ---- VDI.create ------------------------------------------------------ */

typedef struct {
	Call *call;
	char *sr_ref;
	char *dir;
	char *location;
	char *format;
	JsonObject *meta;
	JsonObject *other_config;
	char *vdi_ref;           /* resize, chain: the VDI */
	gint64 size;
} VdiOp;

/* The VDIs a qemu-img operation works on now (refs): one at a time, so
 * that two snapshots never rename the same file under each other.  In
 * memory only: nothing runs across a restart. */
static GHashTable *vdi_busy;

static gboolean
vdi_busy_take(StoreObj *vdi, const char *op, GError **error)
{
	if (vdi_busy == NULL)
		vdi_busy = g_hash_table_new_full(g_str_hash, g_str_equal,
						 g_free, NULL);
	if (g_hash_table_contains(vdi_busy, vdi->ref)) {
		xerr_set(error, "OTHER_OPERATION_IN_PROGRESS", "VDI", vdi->ref,
			 op, NULL);
		return FALSE;
	}
	g_hash_table_add(vdi_busy, g_strdup(vdi->ref));
	return TRUE;
}

static void
vdi_op_free(VdiOp *op)
{
	if (op->vdi_ref != NULL && vdi_busy != NULL)
		g_hash_table_remove(vdi_busy, op->vdi_ref);
	call_unref(op->call);
	g_free(op->sr_ref);
	g_free(op->dir);
	g_free(op->location);
	g_free(op->format);
	if (op->meta)
		json_object_unref(op->meta);
	if (op->other_config)
		json_object_unref(op->other_config);
	g_free(op->vdi_ref);
	g_free(op);
}

static GError *
vdi_backend_error(const GError *error)
{
	return xerr_new("SR_BACKEND_FAILURE", "", error->message, NULL);
}

static void
vdi_create_done(const char *out, const GError *error, gpointer data)
{
	VdiOp *op = data;
	Api *api = op->call->api;
	StoreObj *sr = store_get_typed(api->store, "SR", op->sr_ref);
	GError *e = NULL;

	if (error != NULL) {
		call_fail(op->call, vdi_backend_error(error));
	} else if (sr == NULL) {
		call_fail(op->call, xerr_new("HANDLE_INVALID", "SR",
					     op->sr_ref, NULL));
	} else {
		StoreObj *o = vdi_add(api, sr, op->dir, op->location,
				      op->format, op->meta, op->other_config,
				      &e);
		if (o == NULL) {
			call_fail(op->call, e);
		} else {
			sr_refresh(api, sr);
			event_notify(api);
			call_return_string(op->call, o->ref);
		}
	}
	vdi_op_free(op);
}

/* A raw VDI of the boot SR: an empty file named for its name_label (what
 * PV_kernel names), filled by PUT /import_raw_vdi. */
static gboolean
vdi_create_raw(VdiOp *op, gint64 size, GError **error)
{
	const char *name = json_object_get_string_member_with_default(op->meta,
		"name_label", "");

	if (!storage_location_ok(name)) {
		xerr_set(error, "INVALID_VALUE", "name_label", name, NULL);
		return FALSE;
	}
	g_autofree char *path = storage_vdi_path(op->dir, name, "raw");
	FILE *f = fopen(path, "wx");
	if (f == NULL) {
		xerr_set(error, "INVALID_VALUE", "name_label", name, NULL);
		return FALSE;
	}
	gboolean ok = ftruncate(fileno(f), size) == 0;
	fclose(f);
	if (!ok || !storage_meta_write(op->dir, name, op->meta, error)) {
		remove(path);
		if (error && *error == NULL)
			xerr_set(error, "SR_BACKEND_FAILURE", "", path, NULL);
		return FALSE;
	}
	op->location = g_strdup(name);
	op->format = g_strdup("raw");
	return TRUE;
}

static void
vdi_create(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	JsonObject *given = call_arg_map(call, 1, &e);
	gint64 size = 0;

	if (given == NULL)
		return call_fail(call, e);
	const char *sr_ref = json_object_get_string_member_with_default(given,
		"SR", "");
	StoreObj *sr = store_get_typed(api->store, "SR", sr_ref);
	if (sr == NULL)
		return call_fail(call, xerr_new("HANDLE_INVALID", "SR", sr_ref,
						NULL));
	JsonNode *vs = json_object_get_member(given, "virtual_size");
	static const Field size_field = { "virtual_size", FT_INT };
	if (vs == NULL || !api_field_check(&size_field, vs, &e))
		return call_fail(call, e ? e : xerr_new("FIELD_TYPE_ERROR",
			"virtual_size", NULL));
	g_autoptr(JsonNode) vsn = api_field_normalise(&size_field, vs);
	size = json_node_get_int(vsn);
	const char *type = json_object_get_string_member_with_default(given,
		"type", "user");
	if (size < 0 || size > ((gint64)1 << 50))
		return call_fail(call, xerr_new("INVALID_VALUE",
			"virtual_size", json_node_get_string(vs) ?
			json_node_get_string(vs) : "", NULL));
	if (!g_strv_contains(vdi_types, type))
		return call_fail(call, xerr_new("INVALID_VALUE", "type", type,
						NULL));
	static const char *const bools[] = { "sharable", "read_only" };
	for (guint i = 0; i < G_N_ELEMENTS(bools); i++) {
		static const Field bf = { "bool", FT_BOOL };
		JsonNode *b = json_object_get_member(given, bools[i]);
		if (b != NULL && !api_field_check(&bf, b, NULL))
			return call_fail(call, xerr_new("FIELD_TYPE_ERROR",
							bools[i], NULL));
	}
	JsonObject *oc = json_object_has_member(given, "other_config") &&
		JSON_NODE_HOLDS_OBJECT(json_object_get_member(given,
							      "other_config"))
		? json_object_get_object_member(given, "other_config") : NULL;
	const char *dir = sr_dir(api, sr, &e);
	if (dir == NULL || !vdi_check_room(api, dir, size, &e))
		return call_fail(call, e);

	VdiOp *op = g_new0(VdiOp, 1);
	g_autofree char *uuid = store_new_uuid();
	op->call = call_ref(call);
	op->sr_ref = g_strdup(sr->ref);
	op->dir = g_strdup(dir);
	op->other_config = oc ? json_object_ref(oc) : NULL;
	if (g_strcmp0(json_object_get_string_member_with_default(sr->rec,
			"content_type", ""), "kernel") == 0) {
		op->meta = vdi_meta_new(uuid, given, "system");
		if (!vdi_create_raw(op, size, &e)) {
			call_fail(call, e);
			vdi_op_free(op);
			return;
		}
		vdi_create_done("", NULL, op);
		return;
	}
	op->meta = vdi_meta_new(uuid, given, type);
	op->location = g_strdup(uuid);
	op->format = g_strdup("qcow2");
	storage_vdi_create(dir, uuid, size, op->meta, vdi_create_done, op);
}

/* ---- destroy, resize ------------------------------------------------- */

static gboolean
vdi_check_unused(StoreObj *vdi, const char *op, GError **error)
{
	JsonArray *vbds = json_object_get_array_member(vdi->rec, "VBDs");

	if (vbds == NULL || json_array_get_length(vbds) == 0)
		return TRUE;
	xerr_set(error, "VDI_IN_USE", vdi->ref, op, NULL);
	return FALSE;
}

static void
vdi_destroy(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vdi = call_arg_obj(call, 1, "VDI", &e);
	StoreObj *sr = vdi ? vdi_sr(api, vdi) : NULL;
	const char *dir = sr ? sr_dir(api, sr, &e) : NULL;

	if (vdi != NULL && vdi_busy != NULL &&
	    g_hash_table_contains(vdi_busy, vdi->ref))
		return call_fail(call, xerr_new("OTHER_OPERATION_IN_PROGRESS",
			"VDI", vdi->ref, "destroy", NULL));
	if (vdi == NULL || !vdi_check_unused(vdi, "destroy", &e) ||
	    dir == NULL)
		return call_fail(call, e ? e : xerr_new("HANDLE_INVALID", "SR",
							"", NULL));
	if (!storage_vdi_delete(dir, json_object_get_string_member(vdi->rec,
				"location"), vdi_format(vdi), &e)) {
		GError *x = vdi_backend_error(e);
		g_error_free(e);
		return call_fail(call, x);
	}
	sr_link(api, sr, "VDIs", vdi->ref, FALSE);
	StoreObj *orig = store_get_typed(api->store, "VDI",
		json_object_get_string_member(vdi->rec, "snapshot_of"));
	if (orig != NULL)
		sr_link(api, orig, "snapshots", vdi->ref, FALSE);
	store_remove(api->store, vdi, NULL);
	sr_refresh(api, sr);
	event_notify(api);
	call_return(call, NULL);
}

static void
vdi_resize_done(const char *out, const GError *error, gpointer data)
{
	VdiOp *op = data;
	Api *api = op->call->api;
	StoreObj *vdi = store_get_typed(api->store, "VDI", op->vdi_ref);

	if (error != NULL) {
		call_fail(op->call, vdi_backend_error(error));
	} else if (vdi != NULL) {
		JsonObject *r = store_obj_dup(vdi);
		g_autofree char *path = vdi_path(api, vdi, NULL);
		gint64 vs = op->size, phys = 0;
		if (path)
			storage_vdi_sizes(path, op->format, &vs, &phys, NULL);
		json_object_set_int_member(r, "virtual_size", vs);
		json_object_set_int_member(r, "physical_utilisation", phys);
		store_replace(api->store, vdi, r, NULL);
		StoreObj *sr = vdi_sr(api, vdi);
		if (sr)
			sr_refresh(api, sr);
		event_notify(api);
		call_return(op->call, NULL);
	} else {
		call_fail(op->call, xerr_new("HANDLE_INVALID", "VDI",
					     op->vdi_ref, NULL));
	}
	vdi_op_free(op);
}

static void
vdi_resize(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vdi = call_arg_obj(call, 1, "VDI", &e);
	gint64 size = 0;

	if (vdi == NULL || !call_arg_int(call, 2, &size, &e))
		return call_fail(call, e);
	gint64 cur = json_object_get_int_member_with_default(vdi->rec,
		"virtual_size", 0);
	StoreObj *sr = vdi_sr(api, vdi);
	const char *dir = sr ? sr_dir(api, sr, &e) : NULL;
	if (dir == NULL)
		return call_fail(call, e);
	if (vdi_attached(api, vdi))
		return call_fail(call, xerr_new("VDI_IN_USE", vdi->ref,
						"resize", NULL));
	if (size < cur) {
		g_autofree char *c = g_strdup_printf("%" G_GINT64_FORMAT, cur);
		return call_fail(call, xerr_new("VDI_TOO_SMALL", vdi->ref, c,
						NULL));
	}
	if (size > ((gint64)1 << 50) ||
	    !vdi_check_room(api, dir, size - cur, &e))
		return call_fail(call, e ? e : xerr_new("INVALID_VALUE",
			"size", "", NULL));
	if (!vdi_busy_take(vdi, "resize", &e))
		return call_fail(call, e);
	VdiOp *op = g_new0(VdiOp, 1);
	op->call = call_ref(call);
	op->vdi_ref = g_strdup(vdi->ref);
	op->format = g_strdup(vdi_format(vdi));
	op->size = size;
	storage_vdi_resize(dir, json_object_get_string_member(vdi->rec,
		"location"), op->format, size, vdi_resize_done, op);
}

/* ---- snapshot, clone ------------------------------------------------- */

static void
vdi_chain_done(const char *out, const GError *error, gpointer data)
{
	VdiOp *op = data;
	Api *api = op->call->api;
	StoreObj *vdi = store_get_typed(api->store, "VDI", op->vdi_ref);
	StoreObj *sr = store_get_typed(api->store, "SR", op->sr_ref);
	GError *e = NULL;

	if (error != NULL || vdi == NULL || sr == NULL) {
		call_fail(op->call, error ? vdi_backend_error(error)
			  : xerr_new("HANDLE_INVALID", "VDI", op->vdi_ref,
				     NULL));
		vdi_op_free(op);
		return;
	}
	const char *base = json_object_get_string_member(op->meta, "parent");
	JsonObject *r = store_obj_dup(vdi);
	JsonObject *sm = json_object_get_object_member(r, "sm_config");
	json_object_set_string_member(sm, "vhd-parent", base);
	store_replace(api->store, vdi, r, NULL);
	StoreObj *o = vdi_add(api, sr, op->dir, op->location, "qcow2",
			      op->meta, NULL, &e);
	if (o == NULL) {
		call_fail(op->call, e);
		vdi_op_free(op);
		return;
	}
	if (json_object_get_boolean_member(op->meta, "is_a_snapshot")) {
		JsonObject *sr2 = store_obj_dup(o);
		json_object_set_string_member(sr2, "snapshot_of", vdi->ref);
		store_replace(api->store, o, sr2, NULL);
		sr_link(api, vdi, "snapshots", o->ref, TRUE);
	}
	sr_refresh(api, sr);
	event_notify(api);
	call_return_string(op->call, o->ref);
	vdi_op_free(op);
}

static void
vdi_chain(Call *call, gboolean snapshot)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vdi = call_arg_obj(call, 1, "VDI", &e);
	/* driver_params: optional, and unused by the file driver. */
	gboolean params_ok = vdi && (json_array_get_length(call->args) < 3 ||
				     call_arg_map(call, 2, &e) != NULL);
	StoreObj *sr = params_ok ? vdi_sr(api, vdi) : NULL;
	const char *dir = sr ? sr_dir(api, sr, &e) : NULL;

	if (dir == NULL)
		return call_fail(call, e ? e : xerr_new("HANDLE_INVALID", "SR",
							"", NULL));
	if (g_strcmp0(vdi_format(vdi), "qcow2") != 0)
		return call_fail(call, xerr_new("OPERATION_NOT_ALLOWED",
			"only qcow2 VDIs have snapshots and clones", NULL));
	if (vdi_attached(api, vdi))
		return call_fail(call, xerr_new("VDI_IN_USE", vdi->ref,
			snapshot ? "snapshot" : "clone", NULL));
	if (!vdi_busy_take(vdi, snapshot ? "snapshot" : "clone", &e))
		return call_fail(call, e);
	g_autofree char *base = store_new_uuid();
	g_autofree char *uuid = store_new_uuid();
	g_autoptr(JsonObject) given = json_object_new();
	json_object_set_string_member(given, "name_label",
		json_object_get_string_member(vdi->rec, "name_label"));
	json_object_set_string_member(given, "name_description",
		json_object_get_string_member(vdi->rec, "name_description"));
	VdiOp *op = g_new0(VdiOp, 1);
	op->call = call_ref(call);
	op->sr_ref = g_strdup(sr->ref);
	op->dir = g_strdup(dir);
	op->vdi_ref = g_strdup(vdi->ref);
	op->location = g_strdup(uuid);
	op->meta = vdi_meta_new(uuid, given,
		json_object_get_string_member(vdi->rec, "type"));
	json_object_set_string_member(op->meta, "parent", base);
	json_object_set_boolean_member(op->meta, "is_a_snapshot", snapshot);
	if (snapshot) {
		g_autofree char *now = api_now_datetime();
		json_object_set_string_member(op->meta, "snapshot_of",
					      vdi->uuid);
		json_object_set_string_member(op->meta, "snapshot_time", now);
		json_object_set_boolean_member(op->meta, "read_only", FALSE);
	}
	storage_vdi_chain(dir, json_object_get_string_member(vdi->rec,
		"location"), base, uuid, op->meta, vdi_chain_done, op);
}

static void
vdi_snapshot(Call *call)
{
	vdi_chain(call, TRUE);
}

static void
vdi_clone(Call *call)
{
	vdi_chain(call, FALSE);
}

/* ---- PUT /import_raw_vdi --------------------------------------------- */

struct VdiImport {
	int fd;
	gint64 cap;
	gint64 written;
	char *vdi_ref;
	char *path;              /* the VDI's file */
	char *tmp;               /* qcow2: the raw bytes, converted at the end */
	char *dir;
};

void
vdi_import_free(VdiImport *imp)
{
	if (imp == NULL)
		return;
	if (imp->fd >= 0)
		close(imp->fd);
	if (imp->tmp)
		unlink(imp->tmp);
	g_free(imp->vdi_ref);
	g_free(imp->path);
	g_free(imp->tmp);
	g_free(imp->dir);
	g_free(imp);
}

VdiImport *
vdi_import_open(Api *api, const char *session_ref, const char *vdi_ref,
		gint64 length, guint *status, GError **error)
{
	Session *s = session_lookup(api, session_ref ? session_ref : "");
	StoreObj *vdi = store_get_typed(api->store, "VDI",
					vdi_ref ? vdi_ref : "");

	*status = 403;
	if (s == NULL) {
		xerr_set(error, "SESSION_INVALID", "", NULL);
		return NULL;
	}
	if (s->role < ROLE_VM_ADMIN) {
		xerr_set(error, "RBAC_PERMISSION_DENIED", "http_put_import_raw_vdi",
			 "No permission in user session.", NULL);
		return NULL;
	}
	*status = 404;
	if (vdi == NULL && vdi_ref && valid_uuid(vdi_ref))
		vdi = store_get_by_uuid(api->store, "VDI", vdi_ref);
	if (vdi == NULL) {
		xerr_set(error, "HANDLE_INVALID", "VDI", vdi_ref ? vdi_ref : "",
			 NULL);
		return NULL;
	}
	*status = 409;
	if (vdi_attached(api, vdi)) {
		xerr_set(error, "VDI_IN_USE", vdi->ref, "import", NULL);
		return NULL;
	}
	gint64 cap = json_object_get_int_member_with_default(vdi->rec,
		"virtual_size", 0);
	*status = 413;
	if (length < 0 || length > cap) {
		xerr_set(error, "VDI_TOO_SMALL", vdi->ref, "", NULL);
		return NULL;
	}
	*status = 500;
	g_autofree char *path = vdi_path(api, vdi, error);
	if (path == NULL)
		return NULL;
	VdiImport *imp = g_new0(VdiImport, 1);
	imp->fd = -1;
	imp->cap = cap;
	imp->vdi_ref = g_strdup(vdi->ref);
	imp->path = g_steal_pointer(&path);
	imp->dir = g_path_get_dirname(imp->path);
	gboolean raw = g_strcmp0(vdi_format(vdi), "raw") == 0;
	if (!raw)
		imp->tmp = g_strdup_printf("%s/.import-%s", imp->dir,
					   vdi->uuid);
	imp->fd = open(raw ? imp->path : imp->tmp, O_WRONLY | O_CREAT |
		       O_NOFOLLOW | O_CLOEXEC | (raw ? 0 : O_TRUNC), 0644);
	if (imp->fd < 0) {
		xerr_set(error, "SR_BACKEND_FAILURE", "", g_strerror(errno),
			 NULL);
		vdi_import_free(imp);
		return NULL;
	}
	*status = 200;
	return imp;
}

gboolean
vdi_import_write(VdiImport *imp, const void *buf, gsize len, GError **error)
{
	const char *p = buf;

	if (imp->written + (gint64)len > imp->cap) {
		xerr_set(error, "VDI_TOO_SMALL", imp->vdi_ref, "", NULL);
		return FALSE;
	}
	while (len > 0) {
		ssize_t n = write(imp->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			xerr_set(error, "SR_BACKEND_FAILURE", "",
				 g_strerror(errno), NULL);
			return FALSE;
		}
		p += n;
		len -= n;
		imp->written += n;
	}
	return TRUE;
}

typedef struct {
	Api *api;
	VdiImport *imp;
	void (*done)(const GError *error, gpointer data);
	gpointer data;
} VdiImportEnd;

static void
vdi_import_sizes(Api *api, VdiImport *imp)
{
	StoreObj *vdi = store_get_typed(api->store, "VDI", imp->vdi_ref);
	gint64 vs = 0, phys = 0;

	if (vdi == NULL || !storage_vdi_sizes(imp->path, vdi_format(vdi), &vs,
					      &phys, NULL))
		return;
	JsonObject *r = store_obj_dup(vdi);
	json_object_set_int_member(r, "virtual_size", vs);
	json_object_set_int_member(r, "physical_utilisation", phys);
	store_replace(api->store, vdi, r, NULL);
	event_notify(api);
}

static void
vdi_import_converted(const char *out, const GError *error, gpointer data)
{
	VdiImportEnd *end = data;
	GError *e = error ? vdi_backend_error(error) : NULL;

	if (e == NULL)
		vdi_import_sizes(end->api, end->imp);
	end->done(e, end->data);
	g_clear_error(&e);
	vdi_import_free(end->imp);
	g_free(end);
}

void
vdi_import_finish(Api *api, VdiImport *imp,
		  void (*done)(const GError *error, gpointer data),
		  gpointer data)
{
	if (imp->tmp == NULL) {
		/* A raw VDI is exactly what was sent: a kernel, an initrd. */
		GError *e = NULL;
		if (ftruncate(imp->fd, imp->written) != 0)
			xerr_set(&e, "SR_BACKEND_FAILURE", "",
				 g_strerror(errno), NULL);
		else
			vdi_import_sizes(api, imp);
		done(e, data);
		g_clear_error(&e);
		vdi_import_free(imp);
		return;
	}
	close(imp->fd);
	imp->fd = -1;
	VdiImportEnd *end = g_new0(VdiImportEnd, 1);
	end->api = api;
	end->imp = imp;
	end->done = done;
	end->data = data;
	const char *argv[] = { "qemu-img", "convert", "-q", "-n", "-f", "raw",
		"-O", "qcow2", imp->tmp, imp->path, NULL };
	storage_img_run(argv, STORAGE_IMG_TIMEOUT_S, vdi_import_converted,
			end);
}

static const Method vdi_methods[] = {
	{ .name = "create", .fn = vdi_create, .nargs = 2,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ .name = "destroy", .fn = vdi_destroy, .nargs = 2,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ .name = "resize", .fn = vdi_resize, .nargs = 3,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ .name = "snapshot", .fn = vdi_snapshot, .nargs = 3, .nargs_min = 2,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ .name = "clone", .fn = vdi_clone, .nargs = 3, .nargs_min = 2,
	  .role = ROLE_VM_ADMIN, .async = TRUE },
	{ NULL }
};

const ClassDef vdi_class = {
	.name = "VDI",
	.fields = vdi_fields,
	.methods = vdi_methods,
	.set_role = ROLE_VM_ADMIN,
	.named = TRUE,
};
