/*
 * host and pool: this machine, and the pool of one it forms.
 *
 * As in XAPI, a standalone host is the master of a pool of one.  Both
 * records are made at first start and kept; the facts about the machine
 * (CPU, memory, QEMU version) are read again at every start, since the
 * machine or its QEMU may have changed while ternd was down.  memory_free
 * is computed on read: what the host has, minus what it keeps for itself,
 * minus the memory of every VM that runs here.
 */
#include "api/api.h"

#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/xerr.h"
#include "migrate/migrate.h"

#define TERN_API_MAJOR 2
#define TERN_API_MINOR 21

StoreObj *
api_host(Api *api)
{
	return store_get(api->store, api->host_ref);
}

char *
api_now_datetime(void)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();

	return g_date_time_format(now, "%Y%m%dT%H:%M:%SZ");
}

/* Reads "key : value" lines of /proc/cpuinfo for the first CPU. */
static JsonObject *
host_cpu_info(void)
{
	g_autofree char *text = NULL;
	JsonObject *ci = json_object_new();
	struct utsname un;
	int count = 0;

	uname(&un);
	json_object_set_string_member(ci, "arch", un.machine);
	if (g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL)) {
		g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
		for (guint i = 0; lines[i]; i++) {
			g_auto(GStrv) kv = g_strsplit(lines[i], ":", 2);
			if (kv[0] == NULL || kv[1] == NULL)
				continue;
			char *k = g_strstrip(kv[0]), *v = g_strstrip(kv[1]);
			if (strcmp(k, "processor") == 0)
				count++;
			else if (count == 1 && strcmp(k, "vendor_id") == 0)
				json_object_set_string_member(ci, "vendor", v);
			else if (count == 1 && strcmp(k, "model name") == 0)
				json_object_set_string_member(ci, "modelname",
							      v);
			else if (count == 1 && strcmp(k, "flags") == 0)
				json_object_set_string_member(ci, "flags", v);
		}
	}
	g_autofree char *n = g_strdup_printf("%d", count ? count : 1);
	json_object_set_string_member(ci, "cpu_count", n);
	return ci;
}

static gint64
host_meminfo(const char *key)
{
	g_autofree char *text = NULL;
	gint64 kib = 0;

	if (!g_file_get_contents("/proc/meminfo", &text, NULL, NULL))
		return 0;
	const char *p = strstr(text, key);
	if (p != NULL)
		kib = g_ascii_strtoll(p + strlen(key) + 1, NULL, 10);
	return kib * 1024;
}

/* "QEMU emulator version 7.2.22 (Debian ...)" -> "7.2.22". */
char *
host_qemu_version(const char *binary)
{
	g_autofree char *out = NULL;
	const char *argv[] = { binary, "--version", NULL };

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH |
			  G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
			  NULL, NULL) || out == NULL)
		return g_strdup("");
	const char *p = strstr(out, "version ");
	if (p == NULL)
		return g_strdup("");
	p += strlen("version ");
	return g_strndup(p, strcspn(p, " \n("));
}

static gint64
host_memory_total(Api *api)
{
	StoreObj *h = api_host(api);
	JsonObject *oc = h ? json_object_get_object_member(h->rec,
							  "other_config")
			   : NULL;
	const char *override = oc ? json_object_get_string_member_with_default(
					    oc, "memory_total", NULL)
				  : NULL;

	/* A host may be told to offer less than the machine has (tests,
	 * or memory kept for something else). */
	if (override != NULL && g_ascii_strtoll(override, NULL, 10) > 0)
		return g_ascii_strtoll(override, NULL, 10);
	return host_meminfo("MemTotal:");
}

void
host_refresh(Api *api, StoreObj *o)
{
	gint64 total = host_memory_total(api);
	gint64 used = api->cfg.memory_reserve;
	g_autoptr(GPtrArray) vms = store_list(api->store, "VM");
	JsonArray *resident = json_array_new();

	for (guint i = 0; i < vms->len; i++) {
		StoreObj *vm = vms->pdata[i];
		const char *ps = json_object_get_string_member_with_default(
			vm->rec, "power_state", "Halted");
		if (strcmp(ps, "Halted") == 0)
			continue;
		used += json_object_get_int_member_with_default(
			vm->rec, "memory_static_max", 0);
		json_array_add_string_element(resident, vm->ref);
	}
	gint64 free_ = MAX(total - used, 0);
	JsonArray *old = json_object_has_member(o->rec, "resident_VMs")
		? json_object_get_array_member(o->rec, "resident_VMs") : NULL;
	if (json_object_get_int_member_with_default(o->rec, "memory_free",
						    -1) == free_ &&
	    json_object_get_int_member_with_default(o->rec, "memory_total",
						    -1) == total &&
	    old && json_array_get_length(old) ==
			   json_array_get_length(resident)) {
		json_array_unref(resident);
		return;
	}
	JsonObject *rec = store_obj_dup(o);
	json_object_set_int_member(rec, "memory_total", total);
	json_object_set_int_member(rec, "memory_free", free_);
	json_object_set_array_member(rec, "resident_VMs", resident);
	store_replace(api->store, o, rec, NULL);
}

static JsonObject *
host_software_version(Api *api)
{
	JsonObject *sv = json_object_new();
	g_autofree char *qemu = host_qemu_version(api->cfg.qemu_binary);

	json_object_set_string_member(sv, "product_brand", "tern");
	json_object_set_string_member(sv, "product_version", PACKAGE_VERSION);
	json_object_set_string_member(sv, "platform_name", "tern");
	json_object_set_string_member(sv, "qemu", qemu);
	json_object_set_string_member(sv, "xapi", "2.21");
	return sv;
}

static JsonArray *
host_capabilities(void)
{
	JsonArray *a = json_array_new();
	struct utsname un;

	uname(&un);
	g_autofree char *hvm = g_strdup_printf("hvm-3.0-%s", un.machine);
	json_array_add_string_element(a, hvm);
	json_array_add_string_element(a, "tern-migrate-1");
	json_array_add_string_element(a, "accel-tcg");
	if (access("/dev/kvm", R_OK | W_OK) == 0)
		json_array_add_string_element(a, "accel-kvm");
	return a;
}

static JsonObject *
host_new_record(const char *uuid)
{
	JsonObject *rec = json_object_new();
	char hostname[256] = "localhost";

	gethostname(hostname, sizeof hostname - 1);
	json_object_set_string_member(rec, "uuid", uuid);
	json_object_set_string_member(rec, "name_label", hostname);
	json_object_set_string_member(rec, "name_description", "");
	json_object_set_object_member(rec, "other_config", json_object_new());
	json_object_set_array_member(rec, "tags", json_array_new());
	json_object_set_boolean_member(rec, "enabled", TRUE);
	return rec;
}

static gboolean
pool_init(Api *api, GError **error)
{
	g_autoptr(GPtrArray) pools = store_list(api->store, "pool");
	StoreObj *p;

	if (pools->len > 0) {
		p = pools->pdata[0];
	} else {
		JsonObject *rec = json_object_new();
		g_autofree char *uuid = store_new_uuid();
		json_object_set_string_member(rec, "uuid", uuid);
		json_object_set_string_member(rec, "name_label", "");
		json_object_set_string_member(rec, "name_description", "");
		json_object_set_string_member(rec, "master", api->host_ref);
		json_object_set_string_member(rec, "default_SR",
					      "OpaqueRef:NULL");
		json_object_set_object_member(rec, "other_config",
					      json_object_new());
		json_object_set_array_member(rec, "tags", json_array_new());
		if ((p = store_add(api->store, "pool", rec, error)) == NULL)
			return FALSE;
	}
	api->pool_ref = g_strdup(p->ref);
	return TRUE;
}

gboolean
host_init(Api *api, GError **error)
{
	g_autofree char *uuid = store_meta_get(api->store, "host_uuid");
	StoreObj *h = uuid ? store_get_by_uuid(api->store, "host", uuid)
			   : NULL;
	char hostname[256] = "localhost";

	if (h == NULL) {
		g_free(uuid);
		uuid = store_new_uuid();
		if (!store_meta_set(api->store, "host_uuid", uuid, error) ||
		    (h = store_add(api->store, "host", host_new_record(uuid),
				   error)) == NULL)
			return FALSE;
		g_info("host: new identity %s", uuid);
	}
	api->host_ref = g_strdup(h->ref);

	gethostname(hostname, sizeof hostname - 1);
	JsonObject *rec = store_obj_dup(h);
	json_object_set_string_member(rec, "hostname", hostname);
	json_object_set_string_member(rec, "address",
		api->cfg.migrate_url ? api->cfg.migrate_url : "");
	json_object_set_int_member(rec, "API_version_major", TERN_API_MAJOR);
	json_object_set_int_member(rec, "API_version_minor", TERN_API_MINOR);
	json_object_set_string_member(rec, "API_version_vendor", "tern");
	json_object_set_object_member(rec, "software_version",
				      host_software_version(api));
	json_object_set_object_member(rec, "cpu_info", host_cpu_info());
	json_object_set_array_member(rec, "capabilities", host_capabilities());
	if (!store_replace(api->store, h, rec, error))
		return FALSE;
	host_refresh(api, h);
	return pool_init(api, error);
}

static void
host_get_servertime(Call *call)
{
	GError *e = NULL;

	if (call_arg_obj(call, 1, "host", &e) == NULL)
		return call_fail(call, e);
	g_autofree char *now = api_now_datetime();
	call_return_string(call, now);
}

static const Method host_methods[] = {
	{ .name = "get_servertime", .fn = host_get_servertime, .nargs = 2 },
	{ .name = "migrate_receive", .fn = migrate_dst_receive, .nargs = 4,
	  .role = ROLE_VM_POWER_ADMIN },
	{ NULL }
};

static const Field host_fields[] = {
	{ "uuid", FT_STRING },
	{ "name_label", FT_STRING, TRUE },
	{ "name_description", FT_STRING, TRUE },
	{ "hostname", FT_STRING },
	{ "address", FT_STRING },
	{ "API_version_major", FT_INT },
	{ "API_version_minor", FT_INT },
	{ "API_version_vendor", FT_STRING },
	{ "software_version", FT_MAP },
	{ "cpu_info", FT_MAP },
	{ "memory_total", FT_INT },
	{ "memory_free", FT_INT },
	{ "capabilities", FT_SET },
	{ "enabled", FT_BOOL },
	{ "resident_VMs", FT_SET },
	{ "other_config", FT_MAP, TRUE },
	{ "tags", FT_SET, TRUE },
	{ NULL }
};

const ClassDef host_class = {
	.name = "host",
	.fields = host_fields,
	.methods = host_methods,
	.set_role = ROLE_POOL_OPERATOR,
	.named = TRUE,
	.refresh = host_refresh,
};

static const Field pool_fields[] = {
	{ "uuid", FT_STRING },
	{ "name_label", FT_STRING, TRUE },
	{ "name_description", FT_STRING, TRUE },
	{ "master", FT_REF },
	{ "default_SR", FT_REF },
	{ "other_config", FT_MAP, TRUE },
	{ "tags", FT_SET, TRUE },
	{ NULL }
};

const ClassDef pool_class = {
	.name = "pool",
	.fields = pool_fields,
	.set_role = ROLE_POOL_OPERATOR,
	.named = TRUE,
};
