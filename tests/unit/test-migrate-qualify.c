/*
 * Unit tests for src/migrate/qualify.c: the destination's checks.
 *
 * One Api on a temporary store plays both sides: the facts come from
 * qualify_src_facts on a VM of this host, and are then edited to stand for
 * what one machine cannot produce (another architecture, a newer QEMU on
 * the source, another source host).  The host's capabilities are probed
 * from the real QEMU; a smaller destination CPU is simulated with the
 * host's other_config:cpu_model_max, as docs/qualification.md describes.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "common/xerr.h"
#include "migrate/qualify.h"

#define MiB (1024 * 1024)

typedef struct {
	char *dir;
	Store *store;
	Api *api;
	char *kernel;    /* a file the VM boots from */
} Fixture;

/* The boot-SR name of the kernel (PV_kernel). */
#define KNAME "vmlinuz"

/* Removes DIR and everything under it (the SRs api_new made). */
static void
rm_rf(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) e = NULL;
	ApiConfig cfg = { 0 };

	f->dir = g_dir_make_tmp("tern-qualify-XXXXXX", &e);
	g_assert_no_error(e);
	g_autofree char *db = g_build_filename(f->dir, "tern.db", NULL);
	f->store = store_open(db, &e);
	g_assert_no_error(e);
	cfg.state_dir = f->dir;
	cfg.run_dir = f->dir;
	cfg.accel = (char *)"tcg";
	cfg.cpu_model = (char *)"qemu64";
	cfg.qemu_binary = (char *)"qemu-system-x86_64";
	cfg.memory_reserve = 0;
	f->api = api_new(f->store, &cfg, &e);
	g_assert_no_error(e);
	g_assert_nonnull(f->api);

	/* The boot SR api_new made ([storage] boot_dir's default). */
	f->kernel = g_build_filename(f->dir, "boot", KNAME, NULL);
	g_autofree char *text = g_strnfill(4096, 'k');
	g_file_set_contents(f->kernel, text, -1, &e);
	g_assert_no_error(e);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	qualify_caps_forget();
	api_free(f->api);
	store_close(f->store);
	rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->kernel);
}

/* Sets other_config[KEY] of this host (NULL removes it). */
static void
host_set_other(Fixture *f, const char *key, const char *value)
{
	StoreObj *h = api_host(f->api);
	JsonObject *rec = store_obj_dup(h);
	JsonObject *oc = json_object_get_object_member(rec, "other_config");
	g_autoptr(GError) e = NULL;

	if (value)
		json_object_set_string_member(oc, key, value);
	else if (json_object_has_member(oc, key))
		json_object_remove_member(oc, key);
	store_replace(f->api->store, h, rec, &e);
	g_assert_no_error(e);
}

/* A VM in POWER with CPU model CPU (NULL: the default) booting F's kernel,
 * on a host that offers 8 GiB. */
static StoreObj *
make_vm(Fixture *f, const char *power, const char *cpu, gint64 memory)
{
	JsonObject *rec = vm_default_record();
	g_autoptr(GError) e = NULL;

	host_set_other(f, "memory_total", "8589934592");
	json_object_set_string_member(rec, "name_label", "vm1");
	json_object_set_string_member(rec, "power_state", power);
	json_object_set_string_member(rec, "PV_kernel", KNAME);
	json_object_set_int_member(rec, "memory_static_max", memory);
	if (cpu)
		json_object_set_string_member(
			json_object_get_object_member(rec, "platform"), "cpu",
			cpu);
	StoreObj *vm = vm_add(f->api, rec, &e);
	g_assert_no_error(e);
	return vm;
}

/* Facts of VM as if it ran on another host "hostA". */
static JsonObject *
facts_from_a(Fixture *f, StoreObj *vm, gboolean live)
{
	JsonObject *facts = qualify_src_facts(f->api, vm, live);
	g_autofree char *uuid = store_new_uuid();

	json_object_set_string_member(facts, "host_uuid", uuid);
	json_object_set_string_member(facts, "host_name", "hostA");
	return facts;
}

static JsonObject *
find_check(JsonArray *blockers, const char *check)
{
	for (guint i = 0; i < json_array_get_length(blockers); i++) {
		JsonObject *b = json_array_get_object_element(blockers, i);
		if (strcmp(json_object_get_string_member(b, "check"), check) ==
		    0)
			return b;
	}
	return NULL;
}

static gboolean
has_object(JsonObject *b, const char *name)
{
	JsonArray *o = json_object_get_array_member(b, "objects");

	for (guint i = 0; i < json_array_get_length(o); i++)
		if (strcmp(json_array_get_string_element(o, i), name) == 0)
			return TRUE;
	return FALSE;
}

static void
dump(JsonArray *blockers)
{
	for (guint i = 0; i < json_array_get_length(blockers); i++) {
		JsonObject *b = json_array_get_object_element(blockers, i);
		g_test_message("%s [%s]: %s. Fix: %s",
			       json_object_get_string_member(b, "code"),
			       json_object_get_string_member(b, "check"),
			       json_object_get_string_member(b, "message"),
			       json_object_get_string_member(b, "fix"));
	}
}

/* Every blocker has its four members filled. */
static void
assert_well_formed(JsonArray *blockers)
{
	for (guint i = 0; i < json_array_get_length(blockers); i++) {
		JsonObject *b = json_array_get_object_element(blockers, i);
		g_assert_cmpstr(json_object_get_string_member(b, "code"), !=,
				"");
		g_assert_cmpstr(json_object_get_string_member(b, "message"),
				!=, "");
		g_assert_cmpstr(json_object_get_string_member(b, "fix"), !=,
				"");
		g_assert_nonnull(json_object_get_array_member(b, "objects"));
	}
}

static void
test_caps(Fixture *f, gconstpointer data)
{
	gint64 t0 = g_get_monotonic_time();
	HostCaps *caps = qualify_caps_probe(f->api);
	gint64 ms = (g_get_monotonic_time() - t0) / 1000;

	g_test_message("probe took %" G_GINT64_FORMAT " ms", ms);
	g_assert_cmpint(ms, <, 2000);
	qualify_caps_apply(f->api, caps);
	qualify_caps_free(caps);

	StoreObj *h = api_host(f->api);
	JsonObject *ci = json_object_get_object_member(h->rec, "cpu_info");
	JsonObject *sv = json_object_get_object_member(h->rec,
						       "software_version");
	g_autofree char *ver = host_qemu_version("qemu-system-x86_64");
	g_assert_nonnull(strstr(json_object_get_string_member(ci,
			 "qemu_models"), "qemu64"));
	g_assert_cmpstr(json_object_get_string_member(ci, "cpu_model_max"),
			==, "");
	g_assert_nonnull(strstr(json_object_get_string_member(sv, "machines"),
				"pc=pc-i440fx-"));
	g_assert_cmpstr(json_object_get_string_member(sv, "qemu"), ==, ver);
	JsonArray *cap = json_object_get_array_member(h->rec, "capabilities");
	gboolean tcg = FALSE;
	for (guint i = 0; i < json_array_get_length(cap); i++)
		tcg = tcg || strcmp(json_array_get_string_element(cap, i),
				    "accel-tcg") == 0;
	g_assert_true(tcg);
}

static void
test_facts(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = qualify_src_facts(f->api, vm, TRUE);

	g_assert_cmpstr(json_object_get_string_member(facts, "cpu_model"), ==,
			"qemu64");
	/* "pc" is resolved to the versioned machine type QEMU runs. */
	g_assert_true(g_str_has_prefix(json_object_get_string_member(facts,
				       "machine"), "pc-i440fx-"));
	JsonArray *feat = json_object_get_array_member(facts, "cpu_features");
	gboolean lm = FALSE, alias = FALSE;
	for (guint i = 0; i < json_array_get_length(feat); i++) {
		const char *n = json_array_get_string_element(feat, i);
		lm = lm || strcmp(n, "lm") == 0;
		alias = alias || strcmp(n, "lahf_lm") == 0 ||
			strcmp(n, "i64") == 0;
		if (i > 0)
			g_assert_cmpstr(json_array_get_string_element(feat,
					i - 1), <, n);
	}
	g_assert_true(lm);
	g_assert_false(alias);
	JsonObject *k = json_object_get_object_member(
		json_object_get_object_member(facts, "files"), KNAME);
	g_assert_nonnull(k);
	g_assert_cmpint(json_object_get_int_member(k, "size"), ==, 4096);
	g_assert_cmpint(strlen(json_object_get_string_member(k,
			"sha256_head")), ==, 64);
	g_assert_cmpint(json_object_get_int_member(facts, "memory"), ==,
			256 * MiB);
}

static void
test_all_good(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);
	g_autoptr(JsonObject) opts = json_object_new();

	json_object_set_string_member(opts, "mode", "direct");
	json_object_set_string_member(opts, "secure", "true");
	json_object_set_string_member(opts, "bandwidth", "125.5");
	json_object_set_string_member(opts, "downtime", "300");
	json_object_set_string_member(opts, "dest_name", "vm1-b");
	json_object_set_string_member(opts, "parallel", "4");
	json_object_set_string_member(opts, "compress", "false");
	json_object_set_string_member(opts, "max_duration", "60");
	json_object_set_string_member(opts, "control", "p2p");
	json_object_set_string_member(opts, "vm", vm->ref);
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, opts);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 0);
	g_assert_null(qualify_error(b, vm->ref));
}

static void
test_other_arch(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);

	json_object_set_string_member(facts, "arch", "aarch64");
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
	JsonObject *x = find_check(b, "arch");
	g_assert_nonnull(x);
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"VM_INCOMPATIBLE_WITH_THIS_HOST");
	const char *msg = json_object_get_string_member(x, "message");
	g_assert_nonnull(strstr(msg, "aarch64"));
	g_assert_nonnull(strstr(msg, "x86_64"));
}

static void
test_older_qemu(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);

	json_object_set_string_member(facts, "qemu_version", "99.0.0");
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
	JsonObject *x = find_check(b, "qemu_version");
	g_assert_nonnull(x);
	g_assert_nonnull(strstr(json_object_get_string_member(x, "message"),
				"99.0.0"));
	g_assert_true(has_object(x, "99.0.0"));

	/* An older source is fine. */
	json_object_set_string_member(facts, "qemu_version", "6.0.0");
	g_autoptr(JsonArray) b2 = qualify_check(f->api, facts, NULL);
	g_assert_cmpuint(json_array_get_length(b2), ==, 0);
}

static void
test_unknown_machine_and_model(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);

	json_object_set_string_member(facts, "machine", "pc-i440fx-99.0");
	json_object_set_string_member(facts, "cpu_model", "NoSuchCPU-v9");
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 2);
	JsonObject *m = find_check(b, "machine");
	g_assert_nonnull(m);
	g_assert_true(has_object(m, "pc-i440fx-99.0"));
	g_assert_nonnull(strstr(json_object_get_string_member(m, "message"),
				"pc-i440fx-99.0"));
	JsonObject *c = find_check(b, "cpu");
	g_assert_nonnull(c);
	g_assert_nonnull(strstr(json_object_get_string_member(c, "message"),
				"NoSuchCPU-v9"));
}

static void
test_missing_cpu_features(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", "Skylake-Client", 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);

	/* Without a limit, this host gives the model what it gave it. */
	g_autoptr(JsonArray) b0 = qualify_check(f->api, facts, NULL);
	dump(b0);
	g_assert_cmpuint(json_array_get_length(b0), ==, 0);

	host_set_other(f, "cpu_model_max", "qemu64");
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
	JsonObject *x = find_check(b, "cpu");
	g_assert_nonnull(x);
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"VM_INCOMPATIBLE_WITH_THIS_HOST");
	g_assert_true(has_object(x, "Skylake-Client"));
	g_assert_true(has_object(x, "avx2"));
	g_assert_true(has_object(x, "sse4.1"));
	g_assert_false(has_object(x, "sse4_1"));   /* aliases folded */
	g_assert_false(has_object(x, "lm"));       /* qemu64 has it */
	const char *msg = json_object_get_string_member(x, "message");
	g_assert_nonnull(strstr(msg, "avx, avx2,"));  /* sorted */
	g_assert_nonnull(strstr(msg, "qemu64"));
	g_assert_nonnull(strstr(json_object_get_string_member(x, "fix"),
				"qemu64"));

	/* A VM on qemu64 fits the limited host. */
	StoreObj *vm2 = make_vm(f, "Running", "qemu64", 256 * MiB);
	g_autoptr(JsonObject) facts2 = facts_from_a(f, vm2, TRUE);
	g_autoptr(JsonArray) b2 = qualify_check(f->api, facts2, NULL);
	g_assert_cmpuint(json_array_get_length(b2), ==, 0);

	/* A limit QEMU does not know is reported, not ignored. */
	host_set_other(f, "cpu_model_max", "NoSuchCPU");
	g_autoptr(JsonArray) b3 = qualify_check(f->api, facts2, NULL);
	dump(b3);
	g_assert_nonnull(find_check(b3, "cpu"));
}

static void
test_files(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);
	g_autoptr(GError) e = NULL;

	/* Same size, other bytes. */
	g_autofree char *other = g_strnfill(4096, 'x');
	g_file_set_contents(f->kernel, other, -1, &e);
	g_assert_no_error(e);
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
	JsonObject *x = find_check(b, "files");
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"VM_FILE_DIFFERS");
	g_assert_true(has_object(x, KNAME));

	/* Another size. */
	g_file_set_contents(f->kernel, "short", -1, &e);
	g_assert_no_error(e);
	g_autoptr(JsonArray) b2 = qualify_check(f->api, facts, NULL);
	g_assert_nonnull(strstr(json_object_get_string_member(
		find_check(b2, "files"), "message"), "5 bytes here"));

	/* Gone. */
	g_unlink(f->kernel);
	g_autoptr(JsonArray) b3 = qualify_check(f->api, facts, NULL);
	dump(b3);
	x = find_check(b3, "files");
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"VM_FILE_MISSING");
	g_assert_nonnull(strstr(json_object_get_string_member(x, "message"),
				"kernel"));
}

static void
test_memory(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);

	json_object_set_int_member(facts, "memory", G_GINT64_CONSTANT(1) << 40);
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
	JsonObject *x = find_check(b, "memory");
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"HOST_NOT_ENOUGH_FREE_MEMORY");
	JsonArray *o = json_object_get_array_member(x, "objects");
	g_assert_cmpstr(json_array_get_string_element(o, 0), ==,
			"1099511627776");
	/* 8 GiB offered, minus the running VM itself (same store). */
	g_assert_cmpstr(json_array_get_string_element(o, 1), ==,
			"8321499136");
}

static void
test_same_host(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = qualify_src_facts(f->api, vm, TRUE);
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);

	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
	JsonObject *x = find_check(b, "same_host");
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"OPERATION_NOT_ALLOWED");
}

static void
test_power_state(Fixture *f, gconstpointer data)
{
	static const struct {
		const char *power;
		gboolean live;
		gboolean ok;
	} cases[] = {
		{ "Running", TRUE, TRUE }, { "Paused", TRUE, TRUE },
		{ "Halted", TRUE, FALSE }, { "Suspended", TRUE, FALSE },
		{ "Running", FALSE, FALSE }, { "Paused", FALSE, TRUE },
		{ "Halted", FALSE, TRUE }, { "Suspended", FALSE, FALSE },
	};
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(JsonObject) facts = facts_from_a(f, vm,
							   cases[i].live);
		json_object_set_string_member(facts, "power_state",
					      cases[i].power);
		g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
		dump(b);
		JsonObject *x = find_check(b, "power_state");
		g_assert_true((x == NULL) == cases[i].ok);
		if (x != NULL) {
			g_assert_cmpstr(json_object_get_string_member(x,
					"code"), ==, "VM_BAD_POWER_STATE");
			g_assert_true(has_object(x, cases[i].power));
		}
	}
}

static void
test_options(Fixture *f, gconstpointer data)
{
	static const struct {
		const char *key, *value, *code;
	} bad[] = {
		{ "mode", "fast", "INVALID_VALUE" },
		{ "secure", "yes", "INVALID_VALUE" },
		{ "bandwidth", "abc", "INVALID_VALUE" },
		{ "bandwidth", "-5", "INVALID_VALUE" },
		{ "downtime", "0", "INVALID_VALUE" },
		{ "downtime", "1.5", "INVALID_VALUE" },
		{ "dest_name", "", "INVALID_VALUE" },
		{ "paused", "1", "INVALID_VALUE" },
		{ "parallel", "9", "INVALID_VALUE" },
		{ "parallel", "2", "VALUE_NOT_SUPPORTED" }, /* not direct */
		{ "compress", "true", "VALUE_NOT_SUPPORTED" },
		{ "max_duration", "never", "INVALID_VALUE" },
		/* Whole seconds up to a week: 604801 s in milliseconds is
		 * still a guint, but 1e12 s was not (and overflowed). */
		{ "max_duration", "604801", "INVALID_VALUE" },
		{ "max_duration", "1e12", "INVALID_VALUE" },
		{ "max_duration", "4294968", "INVALID_VALUE" },
		{ "max_duration", "0", "INVALID_VALUE" },
		{ "max_duration", "0.5", "INVALID_VALUE" },
		{ "bandwidth", "1000001", "INVALID_VALUE" },
		{ "bandwidth", "1e300", "INVALID_VALUE" },
		{ "vm", "OpaqueRef:../../x", "INVALID_VALUE" },
		{ "control", "remote", "INVALID_VALUE" },
		{ "vm", "vm1", "INVALID_VALUE" },
		{ "frobnicate", "1", "INVALID_VALUE" },
	};
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(JsonObject) opts = json_object_new();
		json_object_set_string_member(opts, bad[i].key, bad[i].value);
		g_autoptr(JsonArray) b = qualify_check(f->api, facts, opts);
		dump(b);
		g_assert_cmpuint(json_array_get_length(b), ==, 1);
		JsonObject *x = find_check(b, "options");
		g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
				bad[i].code);
		JsonArray *o = json_object_get_array_member(x, "objects");
		g_assert_cmpstr(json_array_get_string_element(o, 0), ==,
				bad[i].key);
		g_assert_cmpstr(json_array_get_string_element(o, 1), ==,
				bad[i].value);
	}

	/* The boundaries themselves are good. */
	static const char *const good[][2] = {
		{ "max_duration", "604800" }, { "max_duration", "1" },
		{ "bandwidth", "1000000" }, { "bandwidth", "0.5" },
	};
	for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autoptr(JsonObject) o = json_object_new();
		json_object_set_string_member(o, good[i][0], good[i][1]);
		g_autoptr(JsonArray) b = qualify_check(f->api, facts, o);
		dump(b);
		g_assert_cmpuint(json_array_get_length(b), ==, 0);
	}

	/* A value of another JSON type is refused too. */
	g_autoptr(JsonObject) opts = json_object_new();
	json_object_set_boolean_member(opts, "secure", TRUE);
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, opts);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
}

static void
test_bad_facts(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);

	json_object_remove_member(facts, "arch");
	json_object_set_string_member(facts, "memory", "lots");
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 2);
	g_assert_true(has_object(json_array_get_object_element(b, 0),
				 "facts.arch"));
	g_assert_true(has_object(json_array_get_object_element(b, 1),
				 "facts.memory"));
}

/* Everything wrong at once comes back in one call, in the table order. */
static JsonArray *
everything_wrong(Fixture *f, StoreObj **vm_out)
{
	StoreObj *vm = make_vm(f, "Running", "Haswell-noTSX", 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);
	g_autoptr(JsonObject) opts = json_object_new();

	host_set_other(f, "cpu_model_max", "qemu64");
	json_object_set_string_member(facts, "arch", "aarch64");
	json_object_set_string_member(facts, "qemu_version", "99.0.0");
	json_object_set_string_member(facts, "machine", "virt-99.0");
	json_object_set_int_member(facts, "memory", G_GINT64_CONSTANT(1) << 40);
	json_object_set_boolean_member(facts, "live", FALSE);
	json_object_set_string_member(opts, "compress", "true");
	g_unlink(f->kernel);
	*vm_out = vm;
	return qualify_check(f->api, facts, opts);
}

static void
test_everything_at_once(Fixture *f, gconstpointer data)
{
	static const char *const order[] = {
		"power_state", "arch", "qemu_version", "machine", "cpu",
		"memory", "files", "options",
	};
	StoreObj *vm;
	g_autoptr(JsonArray) b = everything_wrong(f, &vm);

	dump(b);
	assert_well_formed(b);
	g_assert_cmpuint(json_array_get_length(b), ==, G_N_ELEMENTS(order));
	for (guint i = 0; i < G_N_ELEMENTS(order); i++)
		g_assert_cmpstr(json_object_get_string_member(
			json_array_get_object_element(b, i), "check"), ==,
			order[i]);
}

static void
test_error(Fixture *f, gconstpointer data)
{
	StoreObj *vm;
	g_autoptr(JsonArray) b = everything_wrong(f, &vm);
	g_autoptr(GError) e = qualify_error(b, vm->ref);
	g_autofree char *code = NULL;
	g_auto(GStrv) params = NULL;

	g_assert_nonnull(e);
	xerr_split(e, &code, &params);
	/* VM_BAD_POWER_STATE: vm, expected, actual; then one "CODE: message"
	 * per further blocker. */
	g_assert_cmpstr(code, ==, "VM_BAD_POWER_STATE");
	g_assert_cmpuint(g_strv_length(params), ==,
			 3 + json_array_get_length(b) - 1);
	g_assert_cmpstr(params[0], ==, vm->ref);
	g_assert_cmpstr(params[1], ==, "Halted");
	g_assert_cmpstr(params[2], ==, "Running");
	g_assert_true(g_str_has_prefix(params[3],
				       "VM_INCOMPATIBLE_WITH_THIS_HOST: host"));
	g_assert_true(g_str_has_prefix(params[8], "VM_FILE_MISSING: "));
	g_assert_true(g_str_has_prefix(params[9], "VALUE_NOT_SUPPORTED: "));

	/* Drop the first: VM_INCOMPATIBLE_WITH_THIS_HOST: vm, host, reason. */
	json_array_remove_element(b, 0);
	g_autoptr(GError) e2 = qualify_error(b, vm->ref);
	g_autofree char *code2 = NULL;
	g_auto(GStrv) p2 = NULL;
	xerr_split(e2, &code2, &p2);
	g_assert_cmpstr(code2, ==, "VM_INCOMPATIBLE_WITH_THIS_HOST");
	g_assert_cmpstr(p2[0], ==, vm->ref);
	g_assert_cmpstr(p2[1], ==, f->api->host_ref);
	g_assert_nonnull(strstr(p2[2], "aarch64"));

	/* HOST_NOT_ENOUGH_FREE_MEMORY: needed, available. */
	while (strcmp(json_object_get_string_member(
			json_array_get_object_element(b, 0), "check"),
		      "memory") != 0)
		json_array_remove_element(b, 0);
	g_autoptr(GError) e3 = qualify_error(b, vm->ref);
	g_autofree char *code3 = NULL;
	g_auto(GStrv) p3 = NULL;
	xerr_split(e3, &code3, &p3);
	g_assert_cmpstr(code3, ==, "HOST_NOT_ENOUGH_FREE_MEMORY");
	g_assert_cmpstr(p3[0], ==, "1099511627776");
	g_assert_cmpstr(p3[1], ==, "8321499136");
	g_assert_cmpuint(g_strv_length(p3), ==, 4);

	/* A tern code: vm, message. */
	json_array_remove_element(b, 0);
	g_autoptr(GError) e4 = qualify_error(b, NULL);
	g_autofree char *code4 = NULL;
	g_auto(GStrv) p4 = NULL;
	xerr_split(e4, &code4, &p4);
	g_assert_cmpstr(code4, ==, "VM_FILE_MISSING");
	g_assert_cmpstr(p4[0], ==, "OpaqueRef:NULL");
	g_assert_nonnull(strstr(p4[1], KNAME));

	/* INVALID_VALUE / VALUE_NOT_SUPPORTED: field, value (, reason). */
	json_array_remove_element(b, 0);
	g_autoptr(GError) e5 = qualify_error(b, vm->ref);
	g_autofree char *code5 = NULL;
	g_auto(GStrv) p5 = NULL;
	xerr_split(e5, &code5, &p5);
	g_assert_cmpstr(code5, ==, "VALUE_NOT_SUPPORTED");
	g_assert_cmpstr(p5[0], ==, "compress");
	g_assert_cmpstr(p5[1], ==, "true");
	g_assert_nonnull(strstr(p5[2], "not supported by tern"));
}

/* The record's files are checked, never paths a peer lists apart, and a
 * FIFO is refused without being opened (an open would block: no writer).
 * The alarm turns a blocked main loop into a failed test. */
static void
test_files_fifo(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);
	g_autofree char *fifo = g_build_filename(f->dir, "boot", "fifo",
						 NULL);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);

	/* Listed in the facts only, as a file the source has. */
	JsonObject *files = json_object_get_object_member(facts, "files");
	JsonObject *fake = json_object_new();
	json_object_set_string_member(fake, "field", "disk");
	json_object_set_boolean_member(fake, "exists", TRUE);
	json_object_set_int_member(fake, "size", 4096);
	json_object_set_string_member(fake, "sha256_head", "00");
	json_object_set_object_member(files, fifo, fake);
	alarm(20);
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 0);

	/* The kernel the record names is the FIFO. */
	JsonObject *rec = json_object_get_object_member(facts, "record");
	json_object_set_string_member(rec, "PV_kernel", "fifo");
	g_autoptr(JsonArray) b2 = qualify_check(f->api, facts, NULL);
	alarm(0);
	dump(b2);
	g_assert_cmpuint(json_array_get_length(b2), ==, 1);
	JsonObject *x = find_check(b2, "files");
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"VM_FILE_MISSING");
	g_assert_true(has_object(x, "fifo"));
	g_assert_nonnull(strstr(json_object_get_string_member(x, "message"),
				"FIFO"));
}

/* A live migration starts QEMU here with the kernel: missing here, it
 * blocks, even when the source lacks it too.  Offline, nothing starts. */
static void
test_files_missing_everywhere(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_unlink(f->kernel);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);
	JsonObject *k = json_object_get_object_member(
		json_object_get_object_member(facts, "files"), KNAME);
	g_assert_false(json_object_get_boolean_member(k, "exists"));

	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
	JsonObject *x = find_check(b, "files");
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"VM_FILE_MISSING");
	g_assert_true(has_object(x, KNAME));
	g_assert_nonnull(strstr(json_object_get_string_member(x, "message"),
				"lacks it too"));

	/* Dropping it from the facts changes nothing: the record names it. */
	json_object_remove_member(json_object_get_object_member(facts,
								"files"),
				  KNAME);
	g_autoptr(JsonArray) b2 = qualify_check(f->api, facts, NULL);
	g_assert_nonnull(find_check(b2, "files"));

	/* Offline (a Halted VM): only the definition moves. */
	json_object_set_string_member(facts, "power_state", "Halted");
	json_object_set_boolean_member(facts, "live", FALSE);
	g_autoptr(JsonArray) b3 = qualify_check(f->api, facts, NULL);
	dump(b3);
	g_assert_null(find_check(b3, "files"));
}

/* The record's uuid names a run directory: strictly a uuid. */
static void
test_bad_uuid(Fixture *f, gconstpointer data)
{
	StoreObj *vm = make_vm(f, "Running", NULL, 256 * MiB);
	g_autoptr(JsonObject) facts = facts_from_a(f, vm, TRUE);
	JsonObject *rec = json_object_get_object_member(facts, "record");

	json_object_set_string_member(rec, "uuid", "../../x");
	g_autoptr(JsonArray) b = qualify_check(f->api, facts, NULL);
	dump(b);
	g_assert_cmpuint(json_array_get_length(b), ==, 1);
	JsonObject *x = find_check(b, "facts");
	g_assert_cmpstr(json_object_get_string_member(x, "code"), ==,
			"UUID_INVALID");
	g_assert_true(has_object(x, "../../x"));
	g_autoptr(GError) e = qualify_error(b, vm->ref);
	g_autofree char *code = NULL;
	g_auto(GStrv) p = NULL;
	xerr_split(e, &code, &p);
	g_assert_cmpstr(code, ==, "UUID_INVALID");
	g_assert_cmpstr(p[0], ==, "VM");
	g_assert_cmpstr(p[1], ==, "../../x");
}

#define ADD(name, fn) \
	g_test_add(name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/migrate/qualify/caps", test_caps);
	ADD("/migrate/qualify/facts", test_facts);
	ADD("/migrate/qualify/all-good", test_all_good);
	ADD("/migrate/qualify/other-arch", test_other_arch);
	ADD("/migrate/qualify/older-qemu", test_older_qemu);
	ADD("/migrate/qualify/unknown-machine-and-model",
	    test_unknown_machine_and_model);
	ADD("/migrate/qualify/missing-cpu-features", test_missing_cpu_features);
	ADD("/migrate/qualify/files", test_files);
	ADD("/migrate/qualify/files-fifo", test_files_fifo);
	ADD("/migrate/qualify/files-missing-everywhere",
	    test_files_missing_everywhere);
	ADD("/migrate/qualify/bad-uuid", test_bad_uuid);
	ADD("/migrate/qualify/memory", test_memory);
	ADD("/migrate/qualify/same-host", test_same_host);
	ADD("/migrate/qualify/power-state", test_power_state);
	ADD("/migrate/qualify/options", test_options);
	ADD("/migrate/qualify/bad-facts", test_bad_facts);
	ADD("/migrate/qualify/everything-at-once", test_everything_at_once);
	ADD("/migrate/qualify/error", test_error);
	return g_test_run();
}
