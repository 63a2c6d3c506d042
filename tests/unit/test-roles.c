/*
 * Unit tests for the role table and its enforcement in dispatch
 * (src/api/dispatch.c): the six XAPI roles in order, their names, and what
 * api_dispatch does with a read-only session: getters pass, VM.destroy and
 * VM.create are refused with RBAC_PERMISSION_DENIED worded as XAPI words
 * it.  The API runs on a temporary store without a QEMU driver; logins go
 * through the real Argon2id path (a worker thread), so the tests spin the
 * main loop until each reply arrives.
 */
#include <string.h>

#include <glib/gstdio.h>
#include <sodium.h>

#include "api/api.h"
#include "common/xerr.h"

static void
test_order(void)
{
	g_assert_cmpint(ROLE_READ_ONLY, <, ROLE_VM_OPERATOR);
	g_assert_cmpint(ROLE_VM_OPERATOR, <, ROLE_VM_ADMIN);
	g_assert_cmpint(ROLE_VM_ADMIN, <, ROLE_VM_POWER_ADMIN);
	g_assert_cmpint(ROLE_VM_POWER_ADMIN, <, ROLE_POOL_OPERATOR);
	g_assert_cmpint(ROLE_POOL_OPERATOR, <, ROLE_POOL_ADMIN);
	g_assert_cmpint(ROLE_COUNT, ==, 6);
}

static void
test_names(void)
{
	static const char *const names[] = {
		"read-only", "vm-operator", "vm-admin", "vm-power-admin",
		"pool-operator", "pool-admin",
	};

	for (int r = 0; r < ROLE_COUNT; r++) {
		Role got = ROLE_COUNT;

		g_assert_cmpstr(role_name(r), ==, names[r]);
		g_assert_true(role_parse(names[r], &got));
		g_assert_cmpint(got, ==, r);
	}
	Role got = ROLE_COUNT;
	g_assert_true(role_parse("Pool-Admin", &got));
	g_assert_cmpint(got, ==, ROLE_POOL_ADMIN);
	g_assert_false(role_parse("root", &got));
	g_assert_false(role_parse("", &got));
	g_assert_false(role_parse("read-only ", &got));
	g_assert_cmpstr(role_name(ROLE_COUNT), !=, "pool-admin");
}

/* ---- dispatch with roles ---- */

typedef struct {
	char *dir;
	Store *store;
	Api *api;
} Fixture;

typedef struct {
	gboolean done;
	JsonNode *value;
	char *code;
	char **params;
} Reply;

static void
reply_fn(JsonNode *value, const GError *error, gpointer data)
{
	Reply *r = data;

	r->done = TRUE;
	if (error) {
		xerr_split(error, &r->code, &r->params);
	} else {
		r->value = value ? json_node_copy(value) : NULL;
	}
}

static void
reply_clear(Reply *r)
{
	if (r->value)
		json_node_unref(r->value);
	g_free(r->code);
	g_strfreev(r->params);
	memset(r, 0, sizeof(*r));
}

static void
call(Fixture *f, Reply *r, gboolean root, const char *method,
     JsonArray *args /* takes */)
{
	CallOrigin origin = { .local = root, .root = root, .peer = "test" };
	gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

	memset(r, 0, sizeof(*r));
	api_dispatch(f->api, method, args, &origin, reply_fn, r);
	while (!r->done && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_assert_true(r->done);
	json_array_unref(args);
}

static JsonArray *
args_strings(const char *first, ...)
{
	JsonArray *a = json_array_new();
	va_list ap;

	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *))
		json_array_add_string_element(a, s);
	va_end(ap);
	return a;
}

static char *
login(Fixture *f, const char *user, const char *pw, gboolean root)
{
	Reply r;

	call(f, &r, root, "session.login_with_password",
	     args_strings(user, pw, "1.0", "test", NULL));
	g_assert_null(r.code);
	char *ref = g_strdup(json_node_get_string(r.value));
	reply_clear(&r);
	return ref;
}

static void
add_user(Fixture *f, const char *name, const char *pw, const char *role)
{
	char hash[crypto_pwhash_STRBYTES];
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(crypto_pwhash_str(hash, pw, strlen(pw),
		crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN), ==, 0);
	StoreUser u = { .name = (char *)name, .hash = hash,
			.role = (char *)role };
	g_assert_true(store_user_put(f->store, &u, &error));
	g_assert_no_error(error);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	(void)data;
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(sodium_init(), >=, 0);
	f->dir = g_dir_make_tmp("test-roles-XXXXXX", NULL);
	g_autofree char *db = g_build_filename(f->dir, "state.db", NULL);
	f->store = store_open(db, &error);
	g_assert_no_error(error);
	ApiConfig cfg = {
		.state_dir = f->dir,
		.run_dir = f->dir,
		.accel = "tcg",
		.qemu_binary = "qemu-system-x86_64",
		.session_idle_s = 3600,
	};
	f->api = api_new(f->store, &cfg, &error);
	g_assert_no_error(error);
	g_assert_nonnull(f->api);
	add_user(f, "ro", "ropw", "read-only");
	add_user(f, "op", "oppw", "vm-operator");
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	(void)data;
	api_free(f->api);
	store_close(f->store);
	GDir *d = g_dir_open(f->dir, 0, NULL);
	const char *name;
	while (d && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(f->dir, name, NULL);
		g_unlink(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(f->dir);
	g_free(f->dir);
}

static char *
create_vm(Fixture *f, const char *session)
{
	Reply r;
	JsonArray *a = json_array_new();
	JsonObject *rec = json_object_new();

	json_object_set_string_member(rec, "name_label", "rbac");
	json_array_add_string_element(a, session);
	json_array_add_object_element(a, rec);
	call(f, &r, TRUE, "VM.create", a);
	g_assert_null(r.code);
	char *ref = g_strdup(json_node_get_string(r.value));
	reply_clear(&r);
	return ref;
}

static void
assert_denied(Reply *r, const char *perm)
{
	g_assert_cmpstr(r->code, ==, "RBAC_PERMISSION_DENIED");
	g_assert_nonnull(r->params);
	g_assert_cmpuint(g_strv_length(r->params), ==, 2);
	g_assert_cmpstr(r->params[0], ==, perm);
	g_assert_true(g_str_has_prefix(r->params[1],
		"No permission in user session. (Roles with this permission: "));
	g_assert_true(g_str_has_suffix(r->params[1], ")"));
}

static void
test_read_only_dispatch(Fixture *f, gconstpointer data)
{
	(void)data;
	g_autofree char *root = login(f, "root", "anything", TRUE);
	g_autofree char *vm = create_vm(f, root);
	g_autofree char *ro = login(f, "ro", "ropw", FALSE);
	Reply r;

	call(f, &r, FALSE, "VM.get_name_label", args_strings(ro, vm, NULL));
	g_assert_null(r.code);
	g_assert_cmpstr(json_node_get_string(r.value), ==, "rbac");
	reply_clear(&r);

	call(f, &r, FALSE, "VM.get_all_records", args_strings(ro, NULL));
	g_assert_null(r.code);
	reply_clear(&r);

	call(f, &r, FALSE, "VM.destroy", args_strings(ro, vm, NULL));
	assert_denied(&r, "vm.destroy");
	g_assert_nonnull(strstr(r.params[1], "pool-admin"));
	g_assert_null(strstr(r.params[1], "read-only"));
	g_assert_null(strstr(r.params[1], "vm-operator"));
	reply_clear(&r);

	call(f, &r, FALSE, "VM.set_name_label",
	     args_strings(ro, vm, "x", NULL));
	g_assert_cmpstr(r.code, ==, "RBAC_PERMISSION_DENIED");
	reply_clear(&r);

	/* The VM is untouched. */
	call(f, &r, FALSE, "VM.get_name_label", args_strings(ro, vm, NULL));
	g_assert_cmpstr(json_node_get_string(r.value), ==, "rbac");
	reply_clear(&r);
}

static void
test_vm_operator_dispatch(Fixture *f, gconstpointer data)
{
	(void)data;
	g_autofree char *op = login(f, "op", "oppw", FALSE);
	Reply r;
	JsonArray *a = json_array_new();

	json_array_add_string_element(a, op);
	json_array_add_object_element(a, json_object_new());
	call(f, &r, FALSE, "VM.create", a);
	assert_denied(&r, "vm.create");
	reply_clear(&r);
}

static void
test_bad_password(Fixture *f, gconstpointer data)
{
	(void)data;
	Reply r;

	call(f, &r, FALSE, "session.login_with_password",
	     args_strings("ro", "wrong", "1.0", "t", NULL));
	g_assert_cmpstr(r.code, ==, "SESSION_AUTHENTICATION_FAILED");
	reply_clear(&r);
	/* Root's any-password login holds only on the local socket. */
	call(f, &r, FALSE, "session.login_with_password",
	     args_strings("root", "anything", "1.0", "t", NULL));
	g_assert_cmpstr(r.code, ==, "SESSION_AUTHENTICATION_FAILED");
	reply_clear(&r);
}

static void
test_no_session(Fixture *f, gconstpointer data)
{
	(void)data;
	Reply r;

	call(f, &r, FALSE, "VM.get_all",
	     args_strings("OpaqueRef:nobody", NULL));
	g_assert_cmpstr(r.code, ==, "SESSION_INVALID");
	g_assert_cmpstr(r.params[0], ==, "OpaqueRef:nobody");
	reply_clear(&r);
}

#define FX(path, fn) \
	g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/roles/order", test_order);
	g_test_add_func("/roles/names", test_names);
	FX("/roles/read-only", test_read_only_dispatch);
	FX("/roles/vm-operator", test_vm_operator_dispatch);
	FX("/roles/bad-password", test_bad_password);
	FX("/roles/no-session", test_no_session);
	return g_test_run();
}
