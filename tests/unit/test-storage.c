/*
 * test-storage: the file SR driver (src/storage/) on a temporary
 * directory: the layout an SR describes itself with, scan (qcow2 files,
 * raw boot files, what is skipped), the qemu-img operations run from a
 * main loop (create, resize, snapshot chains), deleting a chain's last
 * VDI with its hidden bases, and reading an SR's identity back as
 * SR.introduce does.
 */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"

#define MiB (1024 * 1024)

typedef struct {
	char *dir;
} Fixture;

static void
rm_rf(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
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
	g_autofree char *tmp = g_dir_make_tmp("tern-storage-XXXXXX", &e);

	g_assert_no_error(e);
	f->dir = g_build_filename(tmp, "sr", NULL);
	g_assert_true(storage_sr_format(f->dir, "11111111-2222-4333-8444-555555555555",
					&e));
	g_assert_no_error(e);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	g_autofree char *parent = g_path_get_dirname(f->dir);

	rm_rf(parent);
	g_free(f->dir);
}

/* Runs the main loop until an operation's callback has run. */
typedef struct {
	gboolean done;
	GError *error;
} Wait;

static void
wait_done(const char *out, const GError *error, gpointer data)
{
	Wait *w = data;

	w->done = TRUE;
	if (error)
		w->error = g_error_copy(error);
}

static void
wait_run(Wait *w)
{
	while (!w->done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_no_error(w->error);
}

static JsonObject *
meta(const char *uuid, const char *name)
{
	JsonObject *m = json_object_new();

	json_object_set_string_member(m, "uuid", uuid);
	json_object_set_string_member(m, "name_label", name);
	json_object_set_string_member(m, "type", "user");
	json_object_set_string_member(m, "parent", "");
	return m;
}

static StorageVdi *
find(GPtrArray *vdis, const char *location)
{
	for (guint i = 0; i < vdis->len; i++) {
		StorageVdi *v = vdis->pdata[i];
		if (strcmp(v->location, location) == 0)
			return v;
	}
	return NULL;
}

static void
test_layout(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) e = NULL;
	g_autofree char *id = g_build_filename(f->dir, STORAGE_SR_FILE, NULL);
	g_autofree char *metadir = g_build_filename(f->dir, STORAGE_META_DIR,
						    NULL);

	g_assert_true(g_file_test(id, G_FILE_TEST_IS_REGULAR));
	g_assert_true(g_file_test(metadir, G_FILE_TEST_IS_DIR));
	/* introduce: the identity reads back. */
	g_autofree char *uuid = storage_sr_read_uuid(f->dir, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(uuid, ==, "11111111-2222-4333-8444-555555555555");
	/* The same SR again is fine; another SR is refused. */
	g_assert_true(storage_sr_format(f->dir, uuid, &e));
	g_assert_false(storage_sr_format(f->dir,
		"99999999-2222-4333-8444-555555555555", &e));
	g_assert_error(e, G_IO_ERROR, G_IO_ERROR_EXISTS);
	g_clear_error(&e);
	gint64 total, used, avail;
	g_assert_true(storage_sr_sizes(f->dir, &total, &used, &avail, &e));
	g_assert_cmpint(total, >, 0);
	g_assert_cmpint(avail, <=, total);

	g_assert_true(storage_location_ok("vmlinuz"));
	g_assert_true(storage_location_ok("11111111-2222-4333-8444-555555555555"));
	for (const char *const *bad = (const char *const[]){ "", ".", "..",
		".meta", "a/b", "/abs", "x,y", "tab\t", NULL }; *bad; bad++)
		g_assert_false(storage_location_ok(*bad));
	g_assert_null(storage_vdi_path(f->dir, "../x", "raw"));
	g_autofree char *p = storage_vdi_path(f->dir, "abc", "qcow2");
	g_assert_true(g_str_has_suffix(p, "/sr/abc.qcow2"));
}

static void
test_scan(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) e = NULL;
	const char *uuid = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
	g_autofree char *q = storage_vdi_path(f->dir, uuid, "qcow2");
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", q,
			       "5M", NULL };
	g_autofree char *out = storage_img_run_sync(argv, &e);
	g_assert_no_error(e);
	g_autofree char *raw = g_build_filename(f->dir, "vmlinuz", NULL);
	g_file_set_contents(raw, "kernel bytes", -1, &e);
	g_assert_no_error(e);
	/* Not VDIs: a FIFO, a symbolic link, a dot file. */
	g_autofree char *fifo = g_build_filename(f->dir, "fifo", NULL);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	g_autofree char *link = g_build_filename(f->dir, "link", NULL);
	g_assert_cmpint(symlink(raw, link), ==, 0);
	g_autofree char *dot = g_build_filename(f->dir, ".import-x", NULL);
	g_file_set_contents(dot, "x", -1, &e);
	/* Nor a qcow2 that leans on a file outside the SR: QEMU would open
	 * it (here /etc/passwd as a raw backing file). */
	g_autofree char *evil = g_build_filename(f->dir,
		"bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb.qcow2", NULL);
	const char *evil_argv[] = { "qemu-img", "create", "-q", "-f", "qcow2",
		"-b", "/etc/passwd", "-F", "raw", "-u", evil, "1M", NULL };
	g_autofree char *out2 = storage_img_run_sync(evil_argv, &e);
	g_assert_no_error(e);
	g_assert_false(storage_vdi_chain_ok(f->dir,
		"bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "qcow2", &e));
	g_assert_nonnull(strstr(e->message, "/etc/passwd"));
	g_clear_error(&e);

	g_autoptr(GPtrArray) vdis = storage_scan(f->dir, &e);
	g_assert_no_error(e);
	g_assert_cmpuint(vdis->len, ==, 2);
	StorageVdi *v = find(vdis, uuid);
	g_assert_nonnull(v);
	g_assert_cmpstr(v->format, ==, "qcow2");
	g_assert_cmpint(v->virtual_size, ==, 5 * MiB);
	g_assert_cmpstr(json_object_get_string_member(v->meta, "uuid"), ==,
			uuid);
	StorageVdi *k = find(vdis, "vmlinuz");
	g_assert_nonnull(k);
	g_assert_cmpstr(k->format, ==, "raw");
	g_assert_cmpint(k->virtual_size, ==, strlen("kernel bytes"));
	g_assert_cmpstr(json_object_get_string_member(k->meta, "type"), ==,
			"system");
	/* The metadata made for it is written back: the uuid stays. */
	const char *kuuid = json_object_get_string_member(k->meta, "uuid");
	g_assert_true(g_uuid_string_is_valid(kuuid));
	g_autoptr(JsonObject) again = storage_meta_read(f->dir, "vmlinuz");
	g_assert_cmpstr(json_object_get_string_member(again, "uuid"), ==,
			kuuid);
}

static void
test_chain(Fixture *f, gconstpointer data)
{
	const char *v = "00000000-0000-4000-8000-000000000001";
	const char *b = "00000000-0000-4000-8000-0000000000b0";
	const char *s = "00000000-0000-4000-8000-000000000002";
	g_autoptr(JsonObject) mv = meta(v, "orig");
	g_autoptr(JsonObject) ms = meta(s, "snap");
	g_autoptr(GError) e = NULL;
	Wait w1 = { 0 }, w2 = { 0 }, w3 = { 0 };

	storage_vdi_create(f->dir, v, 8 * MiB, mv, wait_done, &w1);
	wait_run(&w1);
	g_autofree char *vp = storage_vdi_path(f->dir, v, "qcow2");
	gint64 vs = 0, phys = 0;
	g_assert_true(storage_vdi_sizes(vp, "qcow2", &vs, &phys, &e));
	g_assert_cmpint(vs, ==, 8 * MiB);
	g_assert_cmpint(phys, <, MiB);

	storage_vdi_resize(f->dir, v, "qcow2", 16 * MiB, wait_done, &w2);
	wait_run(&w2);
	g_assert_true(storage_vdi_sizes(vp, "qcow2", &vs, &phys, &e));
	g_assert_cmpint(vs, ==, 16 * MiB);

	json_object_set_string_member(ms, "parent", b);
	json_object_set_boolean_member(ms, "is_a_snapshot", TRUE);
	storage_vdi_chain(f->dir, v, b, s, ms, wait_done, &w3);
	wait_run(&w3);
	/* The original keeps its file; the base is hidden and read-only. */
	g_autofree char *bp = storage_vdi_path(f->dir, b, "qcow2");
	struct stat st;
	g_assert_cmpint(stat(bp, &st), ==, 0);
	g_assert_false(st.st_mode & 0222);
	g_autoptr(GPtrArray) vdis = storage_scan(f->dir, &e);
	g_assert_cmpuint(vdis->len, ==, 3);
	g_assert_true(json_object_get_boolean_member(find(vdis, b)->meta,
						     "hidden"));
	g_assert_cmpstr(json_object_get_string_member(find(vdis, v)->meta,
						      "parent"), ==, b);
	g_assert_cmpstr(json_object_get_string_member(find(vdis, s)->meta,
						      "parent"), ==, b);
	g_assert_cmpint(find(vdis, s)->virtual_size, ==, 16 * MiB);
	const char *info[] = { "qemu-img", "info", "-U", "--output=json", vp,
			       NULL };
	g_autofree char *out = storage_img_run_sync(info, &e);
	g_assert_no_error(e);
	g_autofree char *want = g_strdup_printf("\"backing-filename\": \"%s.qcow2\"",
						b);
	g_assert_nonnull(strstr(out, want));

	/* The base goes with the last VDI that leans on it. */
	g_assert_true(storage_vdi_delete(f->dir, s, "qcow2", &e));
	g_assert_true(g_file_test(bp, G_FILE_TEST_EXISTS));
	g_assert_true(storage_vdi_delete(f->dir, v, "qcow2", &e));
	g_assert_false(g_file_test(bp, G_FILE_TEST_EXISTS));
	g_autoptr(GPtrArray) left = storage_scan(f->dir, &e);
	g_assert_cmpuint(left->len, ==, 0);
}

static void
test_errors(Fixture *f, gconstpointer data)
{
	const char *v = "00000000-0000-4000-8000-000000000009";
	g_autoptr(JsonObject) m = meta(v, "x");
	Wait w1 = { 0 }, w2 = { 0 };
	g_autofree char *p = storage_vdi_path(f->dir, v, "qcow2");

	/* A file already there is never overwritten. */
	g_file_set_contents(p, "precious", -1, NULL);
	storage_vdi_create(f->dir, v, MiB, m, wait_done, &w1);
	while (!w1.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_nonnull(w1.error);
	g_clear_error(&w1.error);
	g_autofree char *text = NULL;
	g_file_get_contents(p, &text, NULL, NULL);
	g_assert_cmpstr(text, ==, "precious");
	/* qemu-img's own failure comes back with its message. */
	storage_vdi_resize(f->dir, v, "qcow2", 2 * MiB, wait_done, &w2);
	while (!w2.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_nonnull(w2.error);
	g_assert_nonnull(strstr(w2.error->message, "qemu-img resize"));
	g_clear_error(&w2.error);
	/* A wipe removes the SR's VDIs (files it has metadata for) and its
	 * identity; a file it never made a VDI of stays, and so does the
	 * directory then. */
	g_autoptr(GError) e = NULL;
	g_autofree char *raw = g_build_filename(f->dir, "vmlinuz", NULL);
	g_file_set_contents(raw, "k", -1, NULL);
	g_autoptr(GPtrArray) vdis = storage_scan(f->dir, &e);
	g_assert_cmpuint(vdis->len, ==, 1);
	g_assert_true(storage_sr_wipe(f->dir, &e));
	g_assert_no_error(e);
	g_assert_false(g_file_test(raw, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(p, G_FILE_TEST_EXISTS));
	g_autofree char *id = g_build_filename(f->dir, STORAGE_SR_FILE, NULL);
	g_assert_false(g_file_test(id, G_FILE_TEST_EXISTS));
	/* Empty, it goes with the wipe. */
	g_unlink(p);
	g_assert_true(storage_sr_format(f->dir,
		"11111111-2222-4333-8444-555555555555", &e));
	g_assert_true(storage_sr_wipe(f->dir, &e));
	g_assert_false(g_file_test(f->dir, G_FILE_TEST_EXISTS));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, \
				 fixture_tear_down)
	ADD("/storage/layout", test_layout);
	ADD("/storage/scan", test_scan);
	ADD("/storage/chain", test_chain);
	ADD("/storage/errors", test_errors);
	return g_test_run();
}
