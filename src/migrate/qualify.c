/*
 * qualify: the destination's checks before a migration (see qualify.h and
 * docs/qualification.md); what QEMU on the host offers is found by
 * qualify-caps.c.
 *
 * Three parts, in file order:
 *
 *  - facts: what the source says about the VM and itself.  They arrive
 *    over the network, so every member is type-checked before use.
 *
 *  - checks: a table of independent checks, each appending zero or more
 *    blockers, so one call reports everything that stands in the way.
 *    The order of the table is the order of the report, and the first
 *    blocker is the one an XAPI call raises.
 *
 *  - options: one table of migrate_send's options and their values,
 *    used by the source's parser and the destination's check alike.
 *
 * CPU features.  A model gives the guest the boolean properties that are
 * true in QEMU's "full" expansion of it, minus the features the model
 * lacks on the host (QEMU filters those out; the guest never sees them).
 * So the source sends what the guest has, and the destination offers its
 * own expansion of the same model minus its own unavailable features,
 * and, when other_config:cpu_model_max is set, only what that model's
 * expansion has too.  Missing = needed - offered.
 */
#include "migrate/qualify-int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/valid.h"
#include "common/xerr.h"
#include "qemu/driver.h"

#define QUALIFY_MIB (1024 * 1024)
#define QUALIFY_HEAD_BYTES QUALIFY_MIB     /* hashed part of each file */
#define QUALIFY_MAX_FILES 18  /* kernel, initrd and 16 disks */
#define QUALIFY_BANDWIDTH_MAX_MIB 1e6   /* as VM.migrate_set_bandwidth */
#define QUALIFY_MAX_DURATION_MAX_S 604800 /* one week */

/* ---- Facts (the source side) ---------------------------------------- */

/* Size and SHA-256 of the first QUALIFY_HEAD_BYTES of PATH, a regular
 * file (valid_open_regular: a FIFO, a device or a symbolic link is never
 * opened for reading, so a path a peer names cannot block the main loop).
 * FALSE with *WHY set when it cannot be read. */
static gboolean
qualify_file_head(const char *path, gint64 *size, char **sha256,
		  const char **why)
{
	int fd = valid_open_regular(path, why);
	struct stat st;

	if (fd < 0)
		return FALSE;
	if (fstat(fd, &st) != 0) {
		*why = "cannot be read";
		close(fd);
		return FALSE;
	}
	*size = (gint64)st.st_size;
	g_autofree guchar *buf = g_malloc(QUALIFY_HEAD_BYTES);
	gsize got = 0;
	while (got < QUALIFY_HEAD_BYTES) {
		ssize_t n = pread(fd, buf + got, QUALIFY_HEAD_BYTES - got,
				  (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (gsize)n;
	}
	close(fd);
	*sha256 = g_compute_checksum_for_data(G_CHECKSUM_SHA256, buf, got);
	return TRUE;
}

/* The boot files QEMU needs to start the VM of record REC, in the order
 * of its command line: a new array of QualifyFile (names owned).  Each is
 * a name in the boot SR (PV_kernel/PV_ramdisk), resolved to a path on
 * each side by vm_storage_boot_path.  The source lists these in its facts
 * and the destination checks these, from the record it will start, never
 * names a peer lists apart.  Disks are VBDs (qualify_check_storage). */
typedef struct {
	char *path;          /* the boot-SR name, as the record has it */
	const char *field;   /* "PV_kernel" or "PV_ramdisk" */
} QualifyFile;

/* qualify_file_head of the boot file NAME as this host resolves it. */
static gboolean
qualify_boot_head(Api *api, const char *name, gint64 *size, char **sha256,
		  const char **why)
{
	g_autofree char *path = vm_storage_boot_path(api, name, why);

	return path != NULL && qualify_file_head(path, size, sha256, why);
}

static void
qualify_file_clear(gpointer p)
{
	g_free(((QualifyFile *)p)->path);
}

static GArray *
qualify_record_files(JsonObject *rec)
{
	GArray *a = g_array_new(FALSE, FALSE, sizeof(QualifyFile));
	static const char *const boot[] = { "PV_kernel", "PV_ramdisk" };
	const char *kernel = qualify_str(rec, "PV_kernel");

	g_array_set_clear_func(a, qualify_file_clear);
	for (guint i = 0; i < G_N_ELEMENTS(boot); i++) {
		const char *p = qualify_str(rec, boot[i]);
		/* The driver passes an initrd only with a kernel. */
		if (p && *p && kernel && *kernel) {
			QualifyFile f = { g_strdup(p), boot[i] };
			g_array_append_val(a, f);
		}
	}
	return a;
}

static void
qualify_facts_add_file(Api *api, JsonObject *files, const char *path,
		       const char *field)
{
	JsonObject *f = json_object_new();
	g_autofree char *hash = NULL;
	gint64 size = 0;

	const char *why = NULL;

	json_object_set_string_member(f, "field", field);
	if (qualify_boot_head(api, path, &size, &hash, &why)) {
		json_object_set_boolean_member(f, "exists", TRUE);
		json_object_set_int_member(f, "size", size);
		json_object_set_string_member(f, "sha256_head", hash);
	} else {
		json_object_set_boolean_member(f, "exists", FALSE);
	}
	json_object_set_object_member(files, path, f);
}

/* The features a guest of MODEL gets here, sorted: the full expansion
 * minus the model's unavailable features. */
static JsonArray *
qualify_model_features(Api *api, HostCaps *caps, const char *model)
{
	GHashTable *exp = qualify_caps_expansion(api, caps, model);
	QualifyModel *m = g_hash_table_lookup(caps->models, model);
	JsonArray *a = json_array_new();

	if (exp == NULL)
		return a;
	g_autoptr(GPtrArray) sorted = qualify_set_sorted(exp);
	for (guint i = 0; i < sorted->len; i++)
		if (m == NULL ||
		    !g_hash_table_contains(m->unavailable, sorted->pdata[i]))
			json_array_add_string_element(a, sorted->pdata[i]);
	return a;
}

JsonObject *
qualify_src_facts(Api *api, StoreObj *vm, gboolean live)
{
	HostCaps *caps = qualify_caps(api);
	StoreObj *host = api_host(api);
	JsonObject *r = vm->rec;
	JsonObject *f = json_object_new();
	const char *machine = qualify_map_get(r, "platform", "machine");
	const char *cpu = qualify_map_get(r, "platform", "cpu");
	const char *resolved;
	gint64 memory = 0;

	/* The defaults are the QEMU driver's (src/qemu/driver.c). */
	machine = machine ? machine : "pc";
	cpu = cpu ? cpu : api->cfg.cpu_model;
	resolved = g_hash_table_lookup(caps->machines, machine);

	json_object_set_string_member(f, "vm_uuid", vm->uuid);
	json_object_set_string_member(f, "vm_name",
		qualify_str(r, "name_label") ? qualify_str(r, "name_label")
					     : "");
	json_object_set_object_member(f, "record", store_obj_dup(vm));
	json_object_set_string_member(f, "host_uuid", host->uuid);
	json_object_set_string_member(f, "host_name",
		qualify_str(host->rec, "name_label")
			? qualify_str(host->rec, "name_label") : host->uuid);
	json_object_set_string_member(f, "arch", caps->arch);
	json_object_set_string_member(f, "qemu_version", caps->qemu_version);
	json_object_set_string_member(f, "machine",
				      resolved ? resolved : machine);
	json_object_set_string_member(f, "machine_requested", machine);
	json_object_set_string_member(f, "cpu_model", cpu);
	json_object_set_array_member(f, "cpu_features",
				     qualify_model_features(api, caps, cpu));

	JsonObject *files = json_object_new();
	g_autoptr(GArray) needed = qualify_record_files(r);
	for (guint i = 0; i < needed->len; i++) {
		QualifyFile *nf = &g_array_index(needed, QualifyFile, i);
		qualify_facts_add_file(api, files, nf->path, nf->field);
	}
	json_object_set_object_member(f, "files", files);
	/* The VDIs of the VM's VBDs, by uuid (qualify_check_storage). */
	JsonArray *vdis = json_array_new();
	JsonArray *vbds = json_object_get_array_member(r, "VBDs");
	for (guint i = 0; vbds && i < json_array_get_length(vbds); i++) {
		StoreObj *b = store_get_typed(api->store, "VBD",
			json_array_get_string_element(vbds, i));
		StoreObj *v = b ? store_get_typed(api->store, "VDI",
			qualify_str(b->rec, "VDI")) : NULL;
		if (v != NULL)
			json_array_add_string_element(vdis, v->uuid);
	}
	json_object_set_array_member(f, "vdis", vdis);

	qualify_int(r, "memory_static_max", &memory);
	json_object_set_int_member(f, "memory", memory);
	json_object_set_string_member(f, "power_state", vm_power_state(vm));
	json_object_set_boolean_member(f, "live", live);
	return f;
}

/* ---- Checks (the destination side) ---------------------------------- */

typedef struct {
	Api *api;
	HostCaps *caps;
	JsonObject *facts;
	JsonObject *options;
	StoreObj *host;
	const char *host_name;   /* this host, for messages */
	const char *src_name;    /* the source host */
	const char *vm_name;
	gboolean same_host;
	JsonArray *blockers;
} Qualify;

/* Appends a blocker.  OBJECTS is NULL-terminated; MESSAGE and FIX are
 * taken. */
static void
qualify_block(Qualify *q, const char *code, const char *check,
	      const char *const *objects, char *message, char *fix)
{
	JsonObject *b = json_object_new();
	JsonArray *o = json_array_new();

	for (guint i = 0; objects && objects[i]; i++)
		json_array_add_string_element(o, objects[i]);
	json_object_set_string_member(b, "code", code);
	json_object_set_string_member(b, "check", check);
	json_object_set_array_member(b, "objects", o);
	json_object_set_string_member(b, "message", message);
	json_object_set_string_member(b, "fix", fix);
	json_array_add_object_element(q->blockers, b);
	g_free(message);
	g_free(fix);
}

#define OBJS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define S(...) g_strdup_printf(__VA_ARGS__)

/* Facts the checks need, with their JSON types: a member that is missing
 * or of another type is a blocker of its own, and the checks that need it
 * skip it. */
static const struct {
	const char *member;
	JsonNodeType node;
	GType value;
} qualify_fact_types[] = {
	{ "host_uuid", JSON_NODE_VALUE, G_TYPE_STRING },
	{ "arch", JSON_NODE_VALUE, G_TYPE_STRING },
	{ "qemu_version", JSON_NODE_VALUE, G_TYPE_STRING },
	{ "machine", JSON_NODE_VALUE, G_TYPE_STRING },
	{ "cpu_model", JSON_NODE_VALUE, G_TYPE_STRING },
	{ "cpu_features", JSON_NODE_ARRAY, G_TYPE_INVALID },
	{ "files", JSON_NODE_OBJECT, G_TYPE_INVALID },
	{ "record", JSON_NODE_OBJECT, G_TYPE_INVALID },
	{ "memory", JSON_NODE_VALUE, G_TYPE_INT64 },
	{ "power_state", JSON_NODE_VALUE, G_TYPE_STRING },
	{ "live", JSON_NODE_VALUE, G_TYPE_BOOLEAN },
};

static void
qualify_check_facts(Qualify *q)
{
	for (guint i = 0; i < G_N_ELEMENTS(qualify_fact_types); i++) {
		JsonNode *n = qualify_member(q->facts,
					     qualify_fact_types[i].member);
		if (n != NULL &&
		    JSON_NODE_TYPE(n) == qualify_fact_types[i].node &&
		    (qualify_fact_types[i].value == G_TYPE_INVALID ||
		     json_node_get_value_type(n) ==
			     qualify_fact_types[i].value))
			continue;
		g_autofree char *field = g_strdup_printf(
			"facts.%s", qualify_fact_types[i].member);
		qualify_block(q, "INVALID_VALUE", "facts", OBJS(field, ""),
			S("the source host %s sent no valid %s for the VM %s",
			  q->src_name, qualify_fact_types[i].member,
			  q->vm_name),
			S("run the same tern version on host %s and host %s",
			  q->src_name, q->host_name));
	}
	/* The uuid names the VM's run directory here: strictly a uuid. */
	const char *uuid = qualify_str(qualify_obj(q->facts, "record"),
				       "uuid");
	if (uuid != NULL && !valid_uuid(uuid))
		qualify_block(q, "UUID_INVALID", "facts", OBJS("VM", uuid),
			S("the source host %s sent the VM %s with the uuid "
			  "\"%s\", which is not of the form "
			  "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", q->src_name,
			  q->vm_name, uuid),
			S("run the same tern version on host %s and host %s",
			  q->src_name, q->host_name));
}

static void
qualify_check_same_host(Qualify *q)
{
	if (!q->same_host)
		return;
	qualify_block(q, "OPERATION_NOT_ALLOWED", "same_host",
		OBJS(q->host->ref),
		S("the VM %s is already on host %s; a migration needs another "
		  "host as its destination", q->vm_name, q->host_name),
		S("choose a host other than %s as the destination",
		  q->host_name));
}

static void
qualify_check_power_state(Qualify *q)
{
	const char *ps = qualify_str(q->facts, "power_state");
	gboolean live = TRUE;

	if (ps == NULL || !qualify_bool(q->facts, "live", &live))
		return;
	if (live && (strcmp(ps, "Running") == 0 || strcmp(ps, "Paused") == 0))
		return;
	if (!live && (strcmp(ps, "Halted") == 0 || strcmp(ps, "Paused") == 0))
		return;

	const char *expected = live ? "Running" : "Halted";
	const char *fix;
	if (strcmp(ps, "Running") == 0)
		fix = "migrate it live (live=true), or shut it down or pause "
		      "it first";
	else if (strcmp(ps, "Halted") == 0)
		fix = "migrate it offline (live=false), or start it first";
	else
		fix = "resume or shut down the VM first";
	qualify_block(q, "VM_BAD_POWER_STATE", "power_state",
		OBJS(expected, ps),
		S("the VM %s is %s; a %s migration moves only a %s VM",
		  q->vm_name, ps, live ? "live" : "live=false (offline)",
		  live ? "Running or Paused" : "Halted or Paused"),
		g_strdup(fix));
}

static void
qualify_check_arch(Qualify *q)
{
	const char *arch = qualify_str(q->facts, "arch");

	if (arch == NULL || strcmp(arch, q->caps->arch) == 0)
		return;
	qualify_block(q, "VM_INCOMPATIBLE_WITH_THIS_HOST", "arch",
		OBJS(q->host->ref, arch, q->caps->arch),
		S("host %s is %s but the VM %s runs on %s (host %s)",
		  q->host_name, q->caps->arch, q->vm_name, arch, q->src_name),
		S("migrate the VM to a host whose architecture is %s", arch));
}

/* "7.2.22" -> 7, 2, 22 (missing parts are 0).  FALSE if not a version. */
static gboolean
qualify_version_parse(const char *s, gint64 v[3])
{
	g_auto(GStrv) parts = g_strsplit(s, ".", 3);

	v[0] = v[1] = v[2] = 0;
	for (guint i = 0; parts[i] && i < 3; i++) {
		guint64 n;
		if (!g_ascii_string_to_unsigned(parts[i], 10, 0, G_MAXINT, &n,
						NULL))
			return FALSE;
		v[i] = (gint64)n;
	}
	return parts[0] != NULL;
}

static int
qualify_version_cmp(const gint64 a[3], const gint64 b[3])
{
	for (guint i = 0; i < 3; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

/* A probe that failed blocks every check that needs QEMU's answers; it is
 * reported once, by the QEMU version check. */
static void
qualify_check_qemu_version(Qualify *q)
{
	const char *src = qualify_str(q->facts, "qemu_version");
	gint64 a[3], b[3];

	if (!q->caps->ok) {
		qualify_block(q, "VM_INCOMPATIBLE_WITH_THIS_HOST",
			"qemu_version", OBJS(q->host->ref),
			S("host %s cannot tell what its QEMU offers: %s",
			  q->host_name, q->caps->error),
			S("check qemu_binary in ternd's configuration on host "
			  "%s and that it runs", q->host_name));
		return;
	}
	if (src == NULL)
		return;
	if (!qualify_version_parse(src, a)) {
		qualify_block(q, "INVALID_VALUE", "facts",
			OBJS("facts.qemu_version", src),
			S("the source host %s sent the QEMU version \"%s\", "
			  "which is not a version", q->src_name, src),
			S("run the same tern version on host %s and host %s",
			  q->src_name, q->host_name));
		return;
	}
	if (!qualify_version_parse(q->caps->qemu_version, b) ||
	    qualify_version_cmp(b, a) >= 0)
		return;
	qualify_block(q, "VM_INCOMPATIBLE_WITH_THIS_HOST", "qemu_version",
		OBJS(q->host->ref, src, q->caps->qemu_version),
		S("host %s has QEMU %s, older than QEMU %s on host %s where "
		  "the VM %s runs; QEMU cannot load a migration stream from a "
		  "newer version", q->host_name, q->caps->qemu_version, src,
		  q->src_name, q->vm_name),
		S("upgrade QEMU on host %s to %s or later, or migrate to a "
		  "host that has it", q->host_name, src));
}

static void
qualify_check_machine(Qualify *q)
{
	const char *machine = qualify_str(q->facts, "machine");

	if (!q->caps->ok || machine == NULL ||
	    g_hash_table_contains(q->caps->machines, machine))
		return;
	qualify_block(q, "VM_INCOMPATIBLE_WITH_THIS_HOST", "machine",
		OBJS(q->host->ref, machine),
		S("host %s's QEMU %s has no machine type %s, which the VM %s "
		  "uses", q->host_name, q->caps->qemu_version, machine,
		  q->vm_name),
		S("upgrade QEMU on host %s, or start the VM with a machine "
		  "type host %s offers (e.g. %s)", q->host_name, q->host_name,
		  q->caps->default_machine ? q->caps->default_machine : "pc"));
}

/* A model to suggest in a fix: the host's limit, else its default. */
static const char *
qualify_suggest_model(Qualify *q)
{
	const char *max = qualify_host_model_max(q->api);

	return max ? max : q->api->cfg.cpu_model;
}

static void
qualify_check_cpu(Qualify *q)
{
	const char *model = qualify_str(q->facts, "cpu_model");
	JsonArray *needed = qualify_arr(q->facts, "cpu_features");
	const char *max = qualify_host_model_max(q->api);

	if (!q->caps->ok || model == NULL || needed == NULL)
		return;
	QualifyModel *m = g_hash_table_lookup(q->caps->models, model);
	GHashTable *offered = m ? qualify_caps_expansion(q->api, q->caps,
							 model) : NULL;
	if (offered == NULL) {
		qualify_block(q, "VM_INCOMPATIBLE_WITH_THIS_HOST", "cpu",
			OBJS(q->host->ref, model),
			S("host %s's QEMU %s does not know the CPU model %s "
			  "that the VM %s uses", q->host_name,
			  q->caps->qemu_version, model, q->vm_name),
			S("start the VM with a CPU model host %s offers (e.g. "
			  "%s), or upgrade QEMU on host %s", q->host_name,
			  qualify_suggest_model(q), q->host_name));
		return;
	}
	GHashTable *limit = max ? qualify_caps_expansion(q->api, q->caps, max)
				: NULL;
	if (max != NULL && limit == NULL) {
		qualify_block(q, "VM_INCOMPATIBLE_WITH_THIS_HOST", "cpu",
			OBJS(q->host->ref, max),
			S("host %s is limited to the CPU model %s "
			  "(other_config:cpu_model_max), which its QEMU does "
			  "not know", q->host_name, max),
			S("set other_config:cpu_model_max on host %s to a model "
			  "its QEMU knows (e.g. qemu64), or remove it",
			  q->host_name));
		return;
	}

	g_autoptr(GHashTable) missing = qualify_set_new();
	for (guint i = 0; i < json_array_get_length(needed); i++) {
		JsonNode *n = json_array_get_element(needed, i);
		if (!JSON_NODE_HOLDS_VALUE(n) ||
		    json_node_get_value_type(n) != G_TYPE_STRING)
			continue;
		g_autofree char *f = qualify_feature_name(
			json_node_get_string(n));
		if (!g_hash_table_contains(offered, f) ||
		    g_hash_table_contains(m->unavailable, f) ||
		    (limit && !g_hash_table_contains(limit, f)))
			g_hash_table_add(missing, g_steal_pointer(&f));
	}
	if (g_hash_table_size(missing) == 0)
		return;

	g_autoptr(GPtrArray) names = qualify_set_sorted(missing);
	g_autofree char *list = qualify_join(names, ", ");
	g_autofree char *why = max ? g_strdup_printf(
		" (host %s offers at most the CPU model %s: "
		"other_config:cpu_model_max)", q->host_name, max)
				   : g_strdup("");
	g_autoptr(GPtrArray) objs = g_ptr_array_new();
	g_ptr_array_add(objs, q->host->ref);
	g_ptr_array_add(objs, (gpointer)model);
	g_ptr_array_extend(objs, names, NULL, NULL);
	g_ptr_array_add(objs, NULL);
	qualify_block(q, "VM_INCOMPATIBLE_WITH_THIS_HOST", "cpu",
		(const char *const *)objs->pdata,
		S("host %s lacks the CPU features %s that the VM %s's CPU "
		  "model %s needs%s", q->host_name, list, q->vm_name, model,
		  why),
		S("start the VM with a CPU model host %s offers (e.g. %s), or "
		  "migrate it to a host whose CPU has %s", q->host_name,
		  qualify_suggest_model(q), list));
}

static void
qualify_check_memory(Qualify *q)
{
	gint64 needed = 0, avail = 0;

	/* On its own host the VM's memory is already counted as used. */
	if (q->same_host || !qualify_int(q->facts, "memory", &needed))
		return;
	host_refresh(q->api, q->host);
	qualify_int(q->host->rec, "memory_free", &avail);
	if (needed <= avail)
		return;
	g_autofree char *n = g_strdup_printf("%" G_GINT64_FORMAT, needed);
	g_autofree char *a = g_strdup_printf("%" G_GINT64_FORMAT, avail);
	qualify_block(q, "HOST_NOT_ENOUGH_FREE_MEMORY", "memory", OBJS(n, a),
		S("host %s has %" G_GINT64_FORMAT " MiB free but the VM %s "
		  "needs %" G_GINT64_FORMAT " MiB", q->host_name,
		  avail / QUALIFY_MIB, q->vm_name,
		  (needed + QUALIFY_MIB - 1) / QUALIFY_MIB),
		S("free memory on host %s (shut down or move VMs there), or "
		  "lower the VM's memory_static_max", q->host_name));
}

static const char *
qualify_file_role(const char *field)
{
	if (g_strcmp0(field, "PV_kernel") == 0)
		return "kernel";
	if (g_strcmp0(field, "PV_ramdisk") == 0)
		return "initrd";
	return "disk";
}

/* A file QEMU needs for the VM: PATH from the record as the destination
 * will start it, SRC what the source said of it (NULL: nothing).  For a
 * live migration the destination's QEMU starts with this file, so it must
 * be here as a regular file whatever the source has; an offline migration
 * starts nothing, and only a file the source had is missed. */
static void
qualify_check_one_file(Qualify *q, const char *path, const char *field,
		       JsonObject *src, gboolean live)
{
	const char *role = qualify_file_role(field);
	const char *src_hash = qualify_str(src, "sha256_head");
	const char *why = NULL;
	gboolean exists = FALSE;
	gint64 src_size = -1, size = 0;
	g_autofree char *hash = NULL;

	if (!qualify_bool(src, "exists", &exists))
		exists = FALSE;
	qualify_int(src, "size", &src_size);
	if (!qualify_boot_head(q->api, path, &size, &hash, &why)) {
		if (!live && !exists)
			return;
		const char *what = "a regular file of its boot SR ([storage] "
			"boot_dir)";
		qualify_block(q, "VM_FILE_MISSING", "files", OBJS(path, role),
			S("the VM %s's %s %s %s on host %s%s", q->vm_name, role,
			  path, why, q->host_name,
			  exists ? "" : " (the source lacks it too, but QEMU "
			  "cannot start here without it)"),
			exists ? S("copy %s from host %s to host %s, as %s "
				   "(SR.scan finds it), or upload it with PUT "
				   "/import_raw_vdi", path, q->src_name,
				   q->host_name, what)
			       : S("put %s on host %s as %s, or change the "
				   "VM's %s to a file that is", path,
				   q->host_name, what, field));
		return;
	}
	if (!exists ||
	    (size == src_size && g_strcmp0(hash, src_hash) == 0))
		return;
	g_autofree char *how = size != src_size
		? g_strdup_printf("%" G_GINT64_FORMAT " bytes here, %"
				  G_GINT64_FORMAT " on host %s", size,
				  src_size, q->src_name)
		: g_strdup("same size, but the first MiB differs");
	qualify_block(q, "VM_FILE_DIFFERS", "files", OBJS(path, role),
		S("the VM %s's %s %s on host %s differs from the one on host "
		  "%s (%s)", q->vm_name, role, path, q->host_name, q->src_name,
		  how),
		S("copy %s from host %s into the boot SR of host %s", path,
		  q->src_name, q->host_name));
}

/* The files of the record the destination will start, not the paths the
 * facts list: a peer cannot make this host look at a path the VM does
 * not use.  At most QUALIFY_MAX_FILES of them. */
static void
qualify_check_files(Qualify *q)
{
	JsonObject *rec = qualify_obj(q->facts, "record");
	JsonObject *files = qualify_obj(q->facts, "files");
	const char *ps = qualify_str(q->facts, "power_state");
	gboolean live = TRUE;

	if (rec == NULL)
		return;
	if (!qualify_bool(q->facts, "live", &live))
		live = TRUE;
	live = live && g_strcmp0(ps, "Halted") != 0;
	g_autoptr(GArray) needed = qualify_record_files(rec);
	if (needed->len > QUALIFY_MAX_FILES) {
		g_autofree char *n = g_strdup_printf("%u", needed->len);
		qualify_block(q, "INVALID_VALUE", "files",
			OBJS("PV_kernel", n),
			S("the VM %s names %u files; tern starts a VM with at "
			  "most %d", q->vm_name, needed->len,
			  QUALIFY_MAX_FILES),
			S("give the VM at most %d disks", QUALIFY_MAX_FILES - 2));
		return;
	}
	for (guint i = 0; i < needed->len; i++) {
		QualifyFile *f = &g_array_index(needed, QualifyFile, i);
		qualify_check_one_file(q, f->path, f->field,
				       qualify_obj(files, f->path), live);
	}
}

/* Disks: a VM with VBDs does not move yet (shared SRs and disk mirrors
 * come later, docs/storage.md); each of its VDIs is VDI_NOT_IN_MAP. */
static void
qualify_check_storage(Qualify *q)
{
	JsonObject *rec = qualify_obj(q->facts, "record");
	JsonNode *vn = qualify_member(q->facts, "vdis");
	JsonArray *vbds = rec ? json_object_get_array_member(rec, "VBDs")
			      : NULL;
	guint n = vbds ? json_array_get_length(vbds) : 0;

	if (vn != NULL && JSON_NODE_HOLDS_ARRAY(vn)) {
		JsonArray *vdis = json_node_get_array(vn);
		for (guint i = 0; i < json_array_get_length(vdis); i++) {
			JsonNode *e = json_array_get_element(vdis, i);
			const char *uuid = JSON_NODE_HOLDS_VALUE(e) &&
				json_node_get_value_type(e) == G_TYPE_STRING
				? json_node_get_string(e) : "";
			qualify_block(q, "VDI_NOT_IN_MAP", "storage",
				OBJS(uuid),
				S("the VM %s has the disk (VDI) %s, and tern "
				  "does not move disks yet", q->vm_name, uuid),
				S("detach the VM's disks (VBD.destroy) or "
				  "shut it down and copy them"));
		}
		if (json_array_get_length(vdis) > 0)
			return;
	}
	if (n > 0) {
		g_autofree char *count = g_strdup_printf("%u", n);
		qualify_block(q, "VDI_NOT_IN_MAP", "storage", OBJS(count),
			S("the VM %s has %u VBDs, and tern does not move disks "
			  "yet", q->vm_name, n),
			S("detach the VM's disks (VBD.destroy)"));
	}
}

/* NICs: a VM with VIFs does not move yet (vif_map, the destination's taps
 * and announce-self come later, docs/networking.md).  Refused here, before
 * anything stops: a destination QEMU without the NIC would fail to load
 * the device's state only at the switchover. */
static void
qualify_check_network(Qualify *q)
{
	JsonObject *rec = qualify_obj(q->facts, "record");
	JsonNode *vn = rec ? json_object_get_member(rec, "VIFs") : NULL;
	guint n = vn && JSON_NODE_HOLDS_ARRAY(vn)
			  ? json_array_get_length(json_node_get_array(vn))
			  : 0;

	if (n == 0)
		return;
	g_autofree char *count = g_strdup_printf("%u", n);
	qualify_block(q, "VIF_NOT_IN_MAP", "network", OBJS(count),
		S("the VM %s has %u VIFs, and tern does not move NICs yet",
		  q->vm_name, n),
		S("destroy the VM's VIFs (VIF.destroy) before the move"));
}

/* ---- Options -------------------------------------------------------- */

static gboolean
qualify_opt_bool(const char *v)
{
	return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
}

static gboolean
qualify_opt_mode(const char *v)
{
	return strcmp(v, "tunnelled") == 0 || strcmp(v, "direct") == 0;
}

static gboolean
qualify_opt_control(const char *v)
{
	return strcmp(v, "managed") == 0 || strcmp(v, "p2p") == 0;
}

/* A number in (LO, HI]: finite, so that it converts to an integer type
 * without overflow wherever it is used. */
static gboolean
qualify_opt_number(const char *v, double lo, double hi)
{
	char *end = NULL;
	double d = g_ascii_strtod(v, &end);

	return *v && end && *end == 0 && isfinite(d) && d > lo && d <= hi;
}

static gboolean
qualify_opt_bandwidth(const char *v)
{
	return qualify_opt_number(v, 0, QUALIFY_BANDWIDTH_MAX_MIB);
}

/* Whole seconds, 1 to QUALIFY_MAX_DURATION_MAX_S: its milliseconds fit a
 * GLib timeout (guint) with room to spare. */
static gboolean
qualify_opt_duration(const char *v)
{
	return g_ascii_string_to_unsigned(v, 10, 1, QUALIFY_MAX_DURATION_MAX_S,
					  NULL, NULL);
}

static gboolean
qualify_opt_positive_int(const char *v)
{
	return g_ascii_string_to_unsigned(v, 10, 1, G_MAXINT, NULL, NULL);
}

static gboolean
qualify_opt_parallel(const char *v)
{
	return g_ascii_string_to_unsigned(v, 10, 1, 8, NULL, NULL);
}

static gboolean
qualify_opt_name(const char *v)
{
	return *v != 0;
}

static gboolean
qualify_opt_vm(const char *v)
{
	return valid_ref(v) || valid_uuid(v);
}

/* migrate_send's options (MIGRATION.md) with what each value must be. */
static const struct {
	const char *key;
	gboolean (*valid)(const char *v);
	const char *expect;
} qualify_options[] = {
	{ "mode", qualify_opt_mode, "tunnelled or direct" },
	{ "secure", qualify_opt_bool, "true or false" },
	{ "bandwidth", qualify_opt_bandwidth,
	  "a positive number of MiB/s, at most 1000000" },
	{ "downtime", qualify_opt_positive_int,
	  "a positive whole number of milliseconds" },
	{ "dest_name", qualify_opt_name, "a non-empty name" },
	{ "paused", qualify_opt_bool, "true or false" },
	{ "compress", qualify_opt_bool, "true or false" },
	{ "parallel", qualify_opt_parallel, "a whole number from 1 to 8" },
	{ "auto_converge", qualify_opt_bool, "true or false" },
	{ "escalate", qualify_opt_bool, "true or false" },
	{ "postcopy", qualify_opt_bool, "true or false" },
	{ "max_duration", qualify_opt_duration,
	  "a whole number of seconds from 1 to 604800 (one week)" },
	{ "control", qualify_opt_control, "managed or p2p" },
	{ "vm", qualify_opt_vm, "a VM reference (OpaqueRef:...) or uuid" },
};

static char *
qualify_option_keys(void)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (guint i = 0; i < G_N_ELEMENTS(qualify_options); i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "",
				       qualify_options[i].key);
	return g_strdup(s->str);
}

/* One option's value as text, for messages (non-strings as JSON). */
static char *
qualify_option_text(JsonNode *n)
{
	if (JSON_NODE_HOLDS_VALUE(n) &&
	    json_node_get_value_type(n) == G_TYPE_STRING)
		return g_strdup(json_node_get_string(n));
	return json_to_string(n, FALSE);
}

gboolean
qualify_option_valid(const char *key, JsonNode *n, const char **expect)
{
	gboolean is_string = JSON_NODE_HOLDS_VALUE(n) &&
		json_node_get_value_type(n) == G_TYPE_STRING;

	for (guint i = 0; i < G_N_ELEMENTS(qualify_options); i++) {
		if (strcmp(key, qualify_options[i].key) != 0)
			continue;
		*expect = qualify_options[i].expect;
		return is_string &&
		       qualify_options[i].valid(json_node_get_string(n));
	}
	*expect = "a migration option tern knows";
	return FALSE;
}

static void
qualify_check_option(Qualify *q, const char *key, JsonNode *n)
{
	g_autofree char *v = qualify_option_text(n);
	gboolean is_string = JSON_NODE_HOLDS_VALUE(n) &&
		json_node_get_value_type(n) == G_TYPE_STRING;
	guint i;

	for (i = 0; i < G_N_ELEMENTS(qualify_options); i++)
		if (strcmp(key, qualify_options[i].key) == 0)
			break;
	if (i == G_N_ELEMENTS(qualify_options)) {
		g_autofree char *known = qualify_option_keys();
		qualify_block(q, "INVALID_VALUE", "options", OBJS(key, v),
			S("option %s is not a migration option tern knows",
			  key),
			S("remove %s; tern knows %s", key, known));
		return;
	}
	if (!is_string || !qualify_options[i].valid(v)) {
		qualify_block(q, "INVALID_VALUE", "options", OBJS(key, v),
			S("option %s=%s is not valid: %s must be %s", key, v,
			  key, qualify_options[i].expect),
			S("give %s %s, or leave it out", key,
			  qualify_options[i].expect));
		return;
	}
	if (strcmp(key, "compress") == 0 && strcmp(v, "true") == 0) {
		qualify_block(q, "VALUE_NOT_SUPPORTED", "options", OBJS(key, v),
			S("option compress=true is not supported by tern: "
			  "QEMU's compression costs more CPU than it saves on "
			  "the links tern targets"),
			S("leave compress out or set it to false"));
		return;
	}
	const char *mode = qualify_str(q->options, "mode");
	if (strcmp(key, "parallel") == 0 && strcmp(v, "1") != 0 &&
	    g_strcmp0(mode, "direct") != 0)
		qualify_block(q, "VALUE_NOT_SUPPORTED", "options", OBJS(key, v),
			S("option parallel=%s needs mode=direct: the tunnelled "
			  "stream is one connection", v),
			S("set mode=direct, or parallel=1"));
}

static void
qualify_check_options(Qualify *q)
{
	if (q->options == NULL)
		return;
	g_autoptr(GList) keys = json_object_get_members(q->options);
	keys = g_list_sort(keys, (GCompareFunc)strcmp);
	for (GList *l = keys; l; l = l->next)
		qualify_check_option(q, l->data,
				     json_object_get_member(q->options,
							    l->data));
}

/* The checks in the order of the report. */
static const struct {
	const char *name;
	void (*fn)(Qualify *q);
} qualify_checks[] = {
	{ "facts", qualify_check_facts },
	{ "same_host", qualify_check_same_host },
	{ "power_state", qualify_check_power_state },
	{ "arch", qualify_check_arch },
	{ "qemu_version", qualify_check_qemu_version },
	{ "machine", qualify_check_machine },
	{ "cpu", qualify_check_cpu },
	{ "memory", qualify_check_memory },
	{ "files", qualify_check_files },
	{ "storage", qualify_check_storage },
	{ "network", qualify_check_network },
	{ "options", qualify_check_options },
};

JsonArray *
qualify_check(Api *api, JsonObject *facts, JsonObject *options)
{
	Qualify q = { .api = api, .facts = facts, .options = options };
	const char *src_uuid = qualify_str(facts, "host_uuid");

	q.caps = qualify_caps(api);
	q.host = api_host(api);
	q.host_name = qualify_str(q.host->rec, "name_label");
	if (q.host_name == NULL || *q.host_name == 0)
		q.host_name = q.host->uuid;
	q.src_name = qualify_str(facts, "host_name");
	if (q.src_name == NULL || *q.src_name == 0)
		q.src_name = src_uuid ? src_uuid : "(unknown)";
	q.vm_name = qualify_str(facts, "vm_name");
	if (q.vm_name == NULL || *q.vm_name == 0)
		q.vm_name = qualify_str(facts, "vm_uuid");
	if (q.vm_name == NULL)
		q.vm_name = "(unnamed)";
	q.same_host = g_strcmp0(src_uuid, q.host->uuid) == 0;
	q.blockers = json_array_new();

	for (guint i = 0; i < G_N_ELEMENTS(qualify_checks); i++)
		qualify_checks[i].fn(&q);
	return q.blockers;
}

/* ---- The XAPI error ------------------------------------------------- */

/* Each code's XAPI parameters, from the blocker: "vm" (the caller's VM
 * ref), "message", or "0", "1", ... (that index of objects). */
static const struct {
	const char *code;
	const char *params[4];
} qualify_error_params[] = {
	{ "VM_INCOMPATIBLE_WITH_THIS_HOST", { "vm", "0", "message" } },
	{ "HOST_NOT_ENOUGH_FREE_MEMORY", { "0", "1" } },
	{ "VM_BAD_POWER_STATE", { "vm", "0", "1" } },
	{ "OPERATION_NOT_ALLOWED", { "message" } },
	{ "INVALID_VALUE", { "0", "1" } },
	{ "UUID_INVALID", { "0", "1" } },
	{ "VALUE_NOT_SUPPORTED", { "0", "1", "message" } },
};

static const char *const qualify_default_params[4] = { "vm", "message" };

GError *
qualify_error(JsonArray *blockers, const char *vm_ref)
{
	if (blockers == NULL || json_array_get_length(blockers) == 0)
		return NULL;
	JsonObject *first = json_array_get_object_element(blockers, 0);
	const char *code = qualify_str(first, "code");
	JsonArray *objects = qualify_arr(first, "objects");
	const char *const *tmpl = qualify_default_params;
	g_autoptr(GPtrArray) params = g_ptr_array_new_with_free_func(g_free);

	code = code ? code : "INTERNAL_ERROR";
	for (guint i = 0; i < G_N_ELEMENTS(qualify_error_params); i++)
		if (strcmp(code, qualify_error_params[i].code) == 0)
			tmpl = qualify_error_params[i].params;
	for (guint i = 0; i < 4 && tmpl[i]; i++) {
		const char *p = tmpl[i];
		const char *v = NULL;
		if (strcmp(p, "vm") == 0) {
			v = vm_ref ? vm_ref : "OpaqueRef:NULL";
		} else if (strcmp(p, "message") == 0) {
			v = qualify_str(first, "message");
		} else {
			guint idx = (guint)atoi(p);
			if (objects && idx < json_array_get_length(objects))
				v = json_array_get_string_element(objects, idx);
		}
		g_ptr_array_add(params, g_strdup(v ? v : ""));
	}
	for (guint i = 1; i < json_array_get_length(blockers); i++) {
		JsonObject *b = json_array_get_object_element(blockers, i);
		g_ptr_array_add(params, g_strdup_printf("%s: %s",
			qualify_str(b, "code"), qualify_str(b, "message")));
	}
	g_ptr_array_add(params, NULL);
	GError *e = NULL;
	xerr_setv(&e, code, (const char *const *)params->pdata);
	return e;
}
