/*
 * sr: storage repositories (XAPI's SR class) over the file driver of
 * src/storage/.
 *
 * An SR is a record; where it lives on this host is its PBD's
 * device_config:location, and whether this host uses it now is the PBD's
 * currently_attached.  The directory describes itself (.tern-sr.json and
 * .meta/), so the records can always be rebuilt from it: SR.scan makes
 * VDI records for the files it finds and drops the records of files that
 * went, SR.introduce + PBD.create + PBD.plug attach a directory another
 * host formatted (a shared SR), SR.forget drops the records and leaves
 * the files, SR.destroy removes both.
 *
 * Two SRs are made on first start (sr_init): "Local storage" in
 * <state_dir>/sr/local, the pool's default_SR, and the boot SR in
 * [storage] boot_dir, content_type "kernel", whose raw files are what
 * PV_kernel and PV_ramdisk may name (docs/storage.md).
 */
#include "api/api.h"

#include <string.h>

#include "common/valid.h"
#include "common/xerr.h"
#include "storage/storage.h"

static const Field sr_fields[] = {
	{ "uuid", FT_STRING },
	{ "name_label", FT_STRING, TRUE },
	{ "name_description", FT_STRING, TRUE },
	{ "type", FT_STRING },
	{ "content_type", FT_STRING },
	{ "shared", FT_BOOL, TRUE },
	{ "physical_size", FT_INT },
	{ "physical_utilisation", FT_INT },
	{ "virtual_allocation", FT_INT },
	{ "sm_config", FT_MAP, TRUE },
	{ "other_config", FT_MAP, TRUE },
	{ "tags", FT_SET, TRUE },
	{ "VDIs", FT_SET },
	{ "PBDs", FT_SET },
	{ "allowed_operations", FT_SET },
	{ "current_operations", FT_MAP },
	{ NULL }
};

void
sr_link(Api *api, StoreObj *o, const char *field, const char *ref,
	gboolean add)
{
	JsonObject *rec = store_obj_dup(o);
	JsonArray *old = json_object_get_array_member(rec, field);
	JsonArray *a = json_array_new();

	for (guint i = 0; old && i < json_array_get_length(old); i++) {
		const char *s = json_array_get_string_element(old, i);
		if (g_strcmp0(s, ref) != 0)
			json_array_add_string_element(a, s);
	}
	if (add)
		json_array_add_string_element(a, ref);
	json_object_set_array_member(rec, field, a);
	store_replace(api->store, o, rec, NULL);
}

/* This host's PBD of SR, or NULL. */
static StoreObj *
sr_pbd(Api *api, StoreObj *sr)
{
	g_autoptr(GPtrArray) pbds = store_list(api->store, "PBD");

	for (guint i = 0; i < pbds->len; i++) {
		StoreObj *p = pbds->pdata[i];
		if (g_strcmp0(json_object_get_string_member_with_default(
				      p->rec, "SR", ""), sr->ref) == 0 &&
		    g_strcmp0(json_object_get_string_member_with_default(
				      p->rec, "host", ""), api->host_ref) == 0)
			return p;
	}
	return NULL;
}

static const char *
sr_pbd_location(StoreObj *pbd)
{
	JsonObject *dc = json_object_get_object_member(pbd->rec,
						       "device_config");

	return dc ? json_object_get_string_member_with_default(dc, "location",
							       NULL)
		  : NULL;
}

const char *
sr_dir(Api *api, StoreObj *sr, GError **error)
{
	StoreObj *pbd = sr_pbd(api, sr);

	if (pbd == NULL || !json_object_get_boolean_member_with_default(
				   pbd->rec, "currently_attached", FALSE) ||
	    sr_pbd_location(pbd) == NULL) {
		xerr_set(error, "SR_NO_PBDS", sr->ref, NULL);
		return NULL;
	}
	return sr_pbd_location(pbd);
}

StoreObj *
sr_boot(Api *api)
{
	g_autofree char *uuid = store_meta_get(api->store, "boot_sr_uuid");

	return uuid ? store_get_by_uuid(api->store, "SR", uuid) : NULL;
}

void
sr_refresh(Api *api, StoreObj *sr)
{
	const char *dir = sr_dir(api, sr, NULL);
	gint64 total = 0, used = 0, avail = 0, virt = 0;

	if (dir == NULL || !storage_sr_sizes(dir, &total, &used, &avail, NULL))
		return;
	JsonArray *vdis = json_object_get_array_member(sr->rec, "VDIs");
	for (guint i = 0; vdis && i < json_array_get_length(vdis); i++) {
		StoreObj *v = store_get_typed(api->store, "VDI",
			json_array_get_string_element(vdis, i));
		if (v != NULL)
			virt += json_object_get_int_member_with_default(
				v->rec, "virtual_size", 0);
	}
	if (json_object_get_int_member_with_default(sr->rec, "physical_size",
						    -1) == total &&
	    json_object_get_int_member_with_default(
		    sr->rec, "physical_utilisation", -1) == used &&
	    json_object_get_int_member_with_default(
		    sr->rec, "virtual_allocation", -1) == virt)
		return;
	JsonObject *rec = store_obj_dup(sr);
	json_object_set_int_member(rec, "physical_size", total);
	json_object_set_int_member(rec, "physical_utilisation", used);
	json_object_set_int_member(rec, "virtual_allocation", virt);
	store_replace(api->store, sr, rec, NULL);
}

static JsonObject *
sr_new_record(const char *uuid, const char *name, const char *desc,
	      const char *type, const char *content_type, gboolean shared,
	      JsonObject *sm_config)
{
	JsonObject *r = json_object_new();

	json_object_set_string_member(r, "uuid", uuid);
	json_object_set_string_member(r, "name_label", name);
	json_object_set_string_member(r, "name_description", desc);
	json_object_set_string_member(r, "type", type);
	json_object_set_string_member(r, "content_type", content_type);
	json_object_set_boolean_member(r, "shared", shared);
	json_object_set_int_member(r, "physical_size", 0);
	json_object_set_int_member(r, "physical_utilisation", 0);
	json_object_set_int_member(r, "virtual_allocation", 0);
	json_object_set_object_member(r, "sm_config", sm_config
		? json_object_ref(sm_config) : json_object_new());
	json_object_set_object_member(r, "other_config", json_object_new());
	json_object_set_array_member(r, "tags", json_array_new());
	json_object_set_array_member(r, "VDIs", json_array_new());
	json_object_set_array_member(r, "PBDs", json_array_new());
	JsonArray *ops = json_array_new();
	for (const char *const *op = (const char *const[]){ "scan", "destroy",
		"forget", "vdi_create", "vdi_destroy", "plug", "unplug",
		NULL }; *op; op++)
		json_array_add_string_element(ops, *op);
	json_object_set_array_member(r, "allowed_operations", ops);
	json_object_set_object_member(r, "current_operations",
				      json_object_new());
	return r;
}

/* A PBD of SR on this host at LOCATION (pbd.c's record shape). */
static StoreObj *
sr_add_pbd(Api *api, StoreObj *sr, const char *location, gboolean attached,
	   GError **error)
{
	JsonObject *r = json_object_new();
	JsonObject *dc = json_object_new();
	g_autofree char *uuid = store_new_uuid();

	json_object_set_string_member(dc, "location", location);
	json_object_set_string_member(r, "uuid", uuid);
	json_object_set_string_member(r, "host", api->host_ref);
	json_object_set_string_member(r, "SR", sr->ref);
	json_object_set_object_member(r, "device_config", dc);
	json_object_set_boolean_member(r, "currently_attached", attached);
	json_object_set_object_member(r, "other_config", json_object_new());
	StoreObj *p = store_add(api->store, "PBD", r, error);
	if (p != NULL)
		sr_link(api, sr, "PBDs", p->ref, TRUE);
	return p;
}

/* The sm_config of a VDI found on disk: its format and its parent. */
static JsonObject *
sr_vdi_sm_config(StorageVdi *v)
{
	JsonObject *sm = json_object_new();
	const char *parent = json_object_get_string_member_with_default(
		v->meta, "parent", "");

	json_object_set_string_member(sm, "image-format", v->format);
	if (*parent)
		json_object_set_string_member(sm, "vhd-parent", parent);
	return sm;
}

/* Makes or refreshes the record of file V of SR.  Returns it. */
static StoreObj *
sr_scan_vdi(Api *api, StoreObj *sr, StorageVdi *v, GError **error)
{
	JsonObject *m = v->meta;
	const char *uuid = json_object_get_string_member_with_default(m,
		"uuid", "");
	StoreObj *o = store_get_by_uuid(api->store, "VDI", uuid);
	JsonObject *r = o ? store_obj_dup(o) : json_object_new();

	if (o == NULL) {
		json_object_set_string_member(r, "uuid", uuid);
		json_object_set_string_member(r, "SR", sr->ref);
		json_object_set_array_member(r, "VBDs", json_array_new());
		json_object_set_array_member(r, "snapshots", json_array_new());
		json_object_set_object_member(r, "other_config",
					      json_object_new());
		json_object_set_array_member(r, "tags", json_array_new());
		json_object_set_boolean_member(r, "is_a_snapshot",
			json_object_get_boolean_member_with_default(m,
				"is_a_snapshot", FALSE));
		const char *of = json_object_get_string_member_with_default(
			m, "snapshot_of", "");
		StoreObj *orig = *of ? store_get_by_uuid(api->store, "VDI", of)
				     : NULL;
		json_object_set_string_member(r, "snapshot_of",
			orig ? orig->ref : "OpaqueRef:NULL");
		json_object_set_string_member(r, "snapshot_time",
			json_object_get_string_member_with_default(m,
				"snapshot_time", "19700101T00:00:00Z"));
		json_object_set_array_member(r, "allowed_operations",
					     json_array_new());
		json_object_set_object_member(r, "current_operations",
					      json_object_new());
		for (const char *const *k = (const char *const[]){
			"name_label", "name_description", "type", NULL };
		     *k; k++)
			json_object_set_string_member(r, *k,
				json_object_get_string_member_with_default(
					m, *k, ""));
		json_object_set_boolean_member(r, "sharable",
			json_object_get_boolean_member_with_default(m,
				"sharable", FALSE));
		json_object_set_boolean_member(r, "read_only",
			json_object_get_boolean_member_with_default(m,
				"read_only", FALSE));
	}
	json_object_set_string_member(r, "location", v->location);
	json_object_set_int_member(r, "virtual_size", v->virtual_size);
	json_object_set_int_member(r, "physical_utilisation",
				   v->physical_utilisation);
	json_object_set_boolean_member(r, "managed", TRUE);
	json_object_set_boolean_member(r, "missing", FALSE);
	json_object_set_object_member(r, "sm_config", sr_vdi_sm_config(v));
	if (o != NULL) {
		if (!store_replace(api->store, o, r, error))
			return NULL;
		return o;
	}
	if ((o = store_add(api->store, "VDI", r, error)) == NULL)
		return NULL;
	sr_link(api, sr, "VDIs", o->ref, TRUE);
	StoreObj *orig = store_get_typed(api->store, "VDI",
		json_object_get_string_member(o->rec, "snapshot_of"));
	if (orig != NULL)
		sr_link(api, orig, "snapshots", o->ref, TRUE);
	return o;
}

/* Drops VDI's record and its links (the file is the caller's). */
static void
sr_forget_vdi(Api *api, StoreObj *vdi)
{
	StoreObj *sr = store_get_typed(api->store, "SR",
		json_object_get_string_member_with_default(vdi->rec, "SR", ""));
	StoreObj *orig = store_get_typed(api->store, "VDI",
		json_object_get_string_member_with_default(vdi->rec,
			"snapshot_of", ""));

	if (sr != NULL)
		sr_link(api, sr, "VDIs", vdi->ref, FALSE);
	if (orig != NULL)
		sr_link(api, orig, "snapshots", vdi->ref, FALSE);
	store_remove(api->store, vdi, NULL);
}

gboolean
sr_scan(Api *api, StoreObj *sr, GError **error)
{
	const char *dir = sr_dir(api, sr, error);

	if (dir == NULL)
		return FALSE;
	g_autoptr(GPtrArray) files = storage_scan(dir, error);
	if (files == NULL)
		return FALSE;
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash,
		g_str_equal, g_free, NULL);
	store_begin(api->store, NULL);
	/* Originals before their snapshots, so snapshot_of resolves. */
	for (int pass = 0; pass < 2; pass++) {
		for (guint i = 0; i < files->len; i++) {
			StorageVdi *v = files->pdata[i];
			gboolean snap = json_object_get_boolean_member_with_default(
				v->meta, "is_a_snapshot", FALSE);
			if (json_object_get_boolean_member_with_default(
				    v->meta, "hidden", FALSE) ||
			    snap != (pass == 1))
				continue;
			StoreObj *o = sr_scan_vdi(api, sr, v, error);
			if (o == NULL) {
				store_end(api->store, NULL);
				return FALSE;
			}
			g_hash_table_add(seen, g_strdup(o->ref));
		}
	}
	/* Records whose file went: dropped, or marked missing while a VBD
	 * still names them. */
	JsonArray *vdis = json_array_ref(json_object_get_array_member(
		sr->rec, "VDIs"));
	for (guint i = 0; i < json_array_get_length(vdis); i++) {
		StoreObj *v = store_get_typed(api->store, "VDI",
			json_array_get_string_element(vdis, i));
		if (v == NULL || g_hash_table_contains(seen, v->ref))
			continue;
		JsonArray *vbds = json_object_get_array_member(v->rec, "VBDs");
		if (vbds && json_array_get_length(vbds) > 0) {
			JsonObject *r = store_obj_dup(v);
			json_object_set_boolean_member(r, "missing", TRUE);
			store_replace(api->store, v, r, NULL);
		} else {
			sr_forget_vdi(api, v);
		}
	}
	json_array_unref(vdis);
	sr_refresh(api, sr);
	store_end(api->store, NULL);
	event_notify(api);
	return TRUE;
}

/* ---- SR.create, introduce, scan, destroy, forget ------------------- */

static gboolean
sr_check_location(JsonObject *dc, const char **out, GError **error)
{
	const char *loc = json_object_get_string_member_with_default(dc,
		"location", "");

	if (valid_path_problem(loc) != NULL) {
		xerr_set(error, "INVALID_VALUE", "device_config:location",
			 loc, NULL);
		return FALSE;
	}
	*out = loc;
	return TRUE;
}

static gboolean
sr_check_type(const char *type, GError **error)
{
	if (g_strcmp0(type, "file") == 0)
		return TRUE;
	xerr_set(error, "SR_UNKNOWN_DRIVER", type, NULL);
	return FALSE;
}

/* Makes the SR record UUID at DIR with a plugged PBD and scans it. */
static StoreObj *
sr_make(Api *api, const char *uuid, const char *dir, JsonObject *rec,
	GError **error)
{
	GError *e = NULL;

	if (!storage_sr_format(dir, uuid, &e)) {
		xerr_set(error, "SR_DEVICE_IN_USE", dir, e->message, NULL);
		g_error_free(e);
		json_object_unref(rec);
		return NULL;
	}
	StoreObj *sr = store_add(api->store, "SR", rec, error);
	if (sr == NULL || sr_add_pbd(api, sr, dir, TRUE, error) == NULL ||
	    !sr_scan(api, sr, error))
		return NULL;
	return sr;
}

static void
sr_create(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	gint64 size = 0;
	gboolean shared = FALSE;
	const char *loc = NULL;
	StoreObj *host = call_arg_obj(call, 1, "host", &e);
	JsonObject *dc = host ? call_arg_map(call, 2, &e) : NULL;
	const char *name = NULL, *desc = NULL, *type = NULL, *ct = NULL;
	JsonObject *sm = NULL;

	if (dc == NULL || !call_arg_int(call, 3, &size, &e) ||
	    (name = call_arg_string(call, 4, &e)) == NULL ||
	    (desc = call_arg_string(call, 5, &e)) == NULL ||
	    (type = call_arg_string(call, 6, &e)) == NULL ||
	    (ct = call_arg_string(call, 7, &e)) == NULL ||
	    !call_arg_bool(call, 8, &shared, &e) ||
	    (sm = call_arg_map(call, 9, &e)) == NULL ||
	    !sr_check_type(type, &e) || !sr_check_location(dc, &loc, &e))
		return call_fail(call, e);
	if (g_strcmp0(host->ref, api->host_ref) != 0)
		return call_fail(call, xerr_new("HANDLE_INVALID", "host",
						host->ref, NULL));
	/* A new SR takes an empty (or new) directory: SR.destroy removes
	 * every file of its directory, so it must never hold others'. */
	g_autoptr(GDir) d = g_dir_open(loc, 0, NULL);
	if (d != NULL && g_dir_read_name(d) != NULL)
		return call_fail(call, xerr_new("SR_DEVICE_IN_USE", loc,
			"the directory is not empty (SR.introduce attaches an "
			"existing SR)", NULL));
	g_autofree char *uuid = store_new_uuid();
	StoreObj *sr = sr_make(api, uuid, loc, sr_new_record(uuid, name, desc,
		type, ct, shared, sm), &e);
	if (sr == NULL)
		return call_fail(call, e);
	call_return_string(call, sr->ref);
}

static void
sr_introduce(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	gboolean shared = FALSE;
	const char *uuid = call_arg_string(call, 1, &e);
	const char *name = NULL, *desc = NULL, *type = NULL, *ct = NULL;
	JsonObject *sm = NULL;

	if (uuid == NULL || (name = call_arg_string(call, 2, &e)) == NULL ||
	    (desc = call_arg_string(call, 3, &e)) == NULL ||
	    (type = call_arg_string(call, 4, &e)) == NULL ||
	    (ct = call_arg_string(call, 5, &e)) == NULL ||
	    !call_arg_bool(call, 6, &shared, &e) ||
	    (sm = call_arg_map(call, 7, &e)) == NULL ||
	    !sr_check_type(type, &e))
		return call_fail(call, e);
	if (!valid_uuid(uuid))
		return call_fail(call, xerr_new("UUID_INVALID", "SR", uuid,
						NULL));
	g_autofree char *lower = g_ascii_strdown(uuid, -1);
	if (store_get_by_uuid(api->store, "SR", lower) != NULL)
		return call_fail(call, xerr_new("SR_UUID_EXISTS", lower,
						NULL));
	StoreObj *sr = store_add(api->store, "SR", sr_new_record(lower, name,
		desc, type, ct, shared, sm), &e);
	if (sr == NULL)
		return call_fail(call, e);
	event_notify(api);
	call_return_string(call, sr->ref);
}

static void
sr_scan_call(Call *call)
{
	GError *e = NULL;
	StoreObj *sr = call_arg_obj(call, 1, "SR", &e);

	if (sr == NULL || !sr_scan(call->api, sr, &e))
		return call_fail(call, e);
	call_return(call, NULL);
}

/* SR_HAS_PBD while a PBD is attached; VDI_IN_USE while a VBD names one
 * of its VDIs. */
static gboolean
sr_check_detached(Api *api, StoreObj *sr, GError **error)
{
	JsonArray *pbds = json_object_get_array_member(sr->rec, "PBDs");
	JsonArray *vdis = json_object_get_array_member(sr->rec, "VDIs");

	for (guint i = 0; pbds && i < json_array_get_length(pbds); i++) {
		StoreObj *p = store_get_typed(api->store, "PBD",
			json_array_get_string_element(pbds, i));
		if (p && json_object_get_boolean_member_with_default(p->rec,
				"currently_attached", FALSE)) {
			xerr_set(error, "SR_HAS_PBD", sr->ref, NULL);
			return FALSE;
		}
	}
	for (guint i = 0; vdis && i < json_array_get_length(vdis); i++) {
		StoreObj *v = store_get_typed(api->store, "VDI",
			json_array_get_string_element(vdis, i));
		JsonArray *vbds = v ? json_object_get_array_member(v->rec,
								   "VBDs")
				    : NULL;
		if (vbds && json_array_get_length(vbds) > 0) {
			xerr_set(error, "VDI_IN_USE", v->ref, "destroy", NULL);
			return FALSE;
		}
	}
	return TRUE;
}

/* Drops SR's VDI and PBD records and SR's own. */
static void
sr_drop_records(Api *api, StoreObj *sr)
{
	JsonArray *pbds = json_array_ref(json_object_get_array_member(
		sr->rec, "PBDs"));
	JsonArray *vdis = json_array_ref(json_object_get_array_member(
		sr->rec, "VDIs"));

	store_begin(api->store, NULL);
	for (guint i = 0; i < json_array_get_length(vdis); i++) {
		StoreObj *v = store_get_typed(api->store, "VDI",
			json_array_get_string_element(vdis, i));
		if (v != NULL)
			store_remove(api->store, v, NULL);
	}
	for (guint i = 0; i < json_array_get_length(pbds); i++) {
		StoreObj *p = store_get_typed(api->store, "PBD",
			json_array_get_string_element(pbds, i));
		if (p != NULL)
			store_remove(api->store, p, NULL);
	}
	store_remove(api->store, sr, NULL);
	store_end(api->store, NULL);
	json_array_unref(pbds);
	json_array_unref(vdis);
	event_notify(api);
}

static gboolean
sr_check_not_default(Api *api, StoreObj *sr, GError **error)
{
	if (sr != sr_boot(api))
		return TRUE;
	xerr_set(error, "OPERATION_NOT_ALLOWED",
		 "the boot SR is ternd's own ([storage] boot_dir)", NULL);
	return FALSE;
}

static void
sr_destroy(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *sr = call_arg_obj(call, 1, "SR", &e);

	if (sr == NULL || !sr_check_not_default(api, sr, &e) ||
	    !sr_check_detached(api, sr, &e))
		return call_fail(call, e);
	StoreObj *pbd = sr_pbd(api, sr);
	const char *dir = pbd ? sr_pbd_location(pbd) : NULL;
	if (dir == NULL)
		return call_fail(call, xerr_new("SR_NO_PBDS", sr->ref, NULL));
	g_autofree char *owner = storage_sr_read_uuid(dir, NULL);
	/* Never wipe a directory that is not this SR's. */
	if (owner != NULL && g_ascii_strcasecmp(owner, sr->uuid) == 0 &&
	    !storage_sr_wipe(dir, &e))
		return call_fail(call, xerr_new("SR_BACKEND_FAILURE", "",
						e->message, NULL));
	StoreObj *pool = store_get(api->store, api->pool_ref);
	if (pool && g_strcmp0(json_object_get_string_member_with_default(
			pool->rec, "default_SR", ""), sr->ref) == 0) {
		JsonObject *r = store_obj_dup(pool);
		json_object_set_string_member(r, "default_SR",
					      "OpaqueRef:NULL");
		store_replace(api->store, pool, r, NULL);
	}
	sr_drop_records(api, sr);
	call_return(call, NULL);
}

static void
sr_forget(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *sr = call_arg_obj(call, 1, "SR", &e);

	if (sr == NULL || !sr_check_not_default(api, sr, &e) ||
	    !sr_check_detached(api, sr, &e))
		return call_fail(call, e);
	sr_drop_records(api, sr);
	call_return(call, NULL);
}

static void
sr_refresh_class(Api *api, StoreObj *o)
{
	sr_refresh(api, o);
}

/* ---- First start ---------------------------------------------------- */

/* The SR kept under store meta KEY at DIR: made when missing, its PBD
 * plugged and its directory scanned. */
static StoreObj *
sr_init_one(Api *api, const char *key, const char *dir, const char *name,
	    const char *content_type, GError **error)
{
	g_autofree char *uuid = store_meta_get(api->store, key);
	StoreObj *sr = uuid ? store_get_by_uuid(api->store, "SR", uuid) : NULL;

	if (sr == NULL) {
		/* A directory that already says which SR it is keeps it. */
		g_free(uuid);
		uuid = storage_sr_read_uuid(dir, NULL);
		if (uuid == NULL || store_get_by_uuid(api->store, "SR", uuid))
			uuid = (g_free(uuid), store_new_uuid());
		sr = sr_make(api, uuid, dir, sr_new_record(uuid, name, "",
			"file", content_type, FALSE, NULL), error);
		if (sr == NULL || !store_meta_set(api->store, key, uuid, error))
			return NULL;
		g_info("storage: made the SR %s (%s) in %s", name, uuid, dir);
		return sr;
	}
	StoreObj *pbd = sr_pbd(api, sr);
	/* Its PBD was destroyed: this host's own SRs get one again. */
	if (pbd == NULL && (pbd = sr_add_pbd(api, sr, dir, TRUE, error)) == NULL)
		return NULL;
	const char *loc = sr_pbd_location(pbd);
	if (g_strcmp0(loc, dir) != 0) {
		/* [storage] boot_dir moved: the SR follows it. */
		JsonObject *r = store_obj_dup(pbd);
		JsonObject *dc = json_object_new();
		json_object_set_string_member(dc, "location", dir);
		json_object_set_object_member(r, "device_config", dc);
		store_replace(api->store, pbd, r, NULL);
		pbd = sr_pbd(api, sr);
	}
	if (!storage_sr_format(dir, sr->uuid, error))
		return NULL;
	if (!json_object_get_boolean_member_with_default(pbd->rec,
			"currently_attached", FALSE)) {
		JsonObject *r = store_obj_dup(pbd);
		json_object_set_boolean_member(r, "currently_attached", TRUE);
		store_replace(api->store, pbd, r, NULL);
	}
	if (!sr_scan(api, sr, error))
		return NULL;
	return sr;
}

/* Every other attached SR of this host is scanned again too: its files
 * may have changed while ternd was down. */
static void
sr_init_rescan(Api *api)
{
	g_autoptr(GPtrArray) srs = store_list(api->store, "SR");

	for (guint i = 0; i < srs->len; i++) {
		GError *e = NULL;
		StoreObj *sr = srs->pdata[i];
		if (sr_dir(api, sr, NULL) == NULL || sr_scan(api, sr, &e))
			continue;
		g_warning("storage: SR %s: %s", sr->uuid, e->message);
		g_error_free(e);
	}
}

gboolean
sr_init(Api *api, GError **error)
{
	g_autofree char *local = g_build_filename(api->cfg.state_dir, "sr",
						  "local", NULL);
	g_autofree char *boot = g_strdup(api->cfg.boot_dir
		? api->cfg.boot_dir
		: NULL);

	if (boot == NULL)
		boot = g_build_filename(api->cfg.state_dir, "boot", NULL);
	sr_init_rescan(api);
	StoreObj *sr = sr_init_one(api, "local_sr_uuid", local,
				   "Local storage", "user", error);
	if (sr == NULL || sr_init_one(api, "boot_sr_uuid", boot,
				      "Boot files", "kernel", error) == NULL)
		return FALSE;
	StoreObj *pool = store_get(api->store, api->pool_ref);
	const char *def = json_object_get_string_member_with_default(
		pool->rec, "default_SR", "OpaqueRef:NULL");
	if (store_get_typed(api->store, "SR", def) == NULL) {
		JsonObject *r = store_obj_dup(pool);
		json_object_set_string_member(r, "default_SR", sr->ref);
		store_replace(api->store, pool, r, NULL);
	}
	return TRUE;
}

static const Method sr_methods[] = {
	{ .name = "create", .fn = sr_create, .nargs = 10,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "introduce", .fn = sr_introduce, .nargs = 8,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "scan", .fn = sr_scan_call, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "destroy", .fn = sr_destroy, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ .name = "forget", .fn = sr_forget, .nargs = 2,
	  .role = ROLE_POOL_OPERATOR, .async = TRUE },
	{ NULL }
};

const ClassDef sr_class = {
	.name = "SR",
	.fields = sr_fields,
	.methods = sr_methods,
	.set_role = ROLE_POOL_OPERATOR,
	.named = TRUE,
	.refresh = sr_refresh_class,
};
