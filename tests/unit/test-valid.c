/*
 * Unit tests for src/common/valid.c: the checks a uuid, a ref or a path
 * from a peer or a client passes before it touches the filesystem.  The
 * file tests use a real FIFO, directory and symbolic link in a temporary
 * directory; an alarm turns a blocking open into a failed test instead of
 * a hang.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/valid.h"

static void
test_uuid(void)
{
	g_assert_true(valid_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"));
	g_assert_true(valid_uuid("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"));
	static const char *const bad[] = {
		"", "../../x", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",
		"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f00",
		"0f1e2d3c4b5a-6978-8796-a5b4c3d2e1f0-",
		"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1g0",
		"../../../../../../../../../tmp/xxxxx",
		"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e/f0",
		"{0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0}",
	};
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(valid_uuid(bad[i]));
	g_assert_false(valid_uuid(NULL));
	g_assert_true(valid_ref("OpaqueRef:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"));
	g_assert_false(valid_ref("OpaqueRef:../../x"));
	g_assert_false(valid_ref("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"));
	g_assert_false(valid_ref("OpaqueRef:NULL"));
}

static void
test_path(void)
{
	g_assert_null(valid_path_problem("/var/lib/tern/vmlinuz"));
	static const char *const bad[] = {
		"", "vmlinuz", "./vmlinuz", "/var/../etc/shadow", "/var/./x",
		"/var//x", "/var/x/", "/var/x,format=qcow2", "/var/x\n",
	};
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_nonnull(valid_path_problem(bad[i]));
	g_autofree char *longp = g_strnfill(VALID_PATH_MAX + 1, 'a');
	longp[0] = '/';
	g_assert_nonnull(valid_path_problem(longp));
}

static void
test_files(void)
{
	g_autoptr(GError) e = NULL;
	g_autofree char *dir = g_dir_make_tmp("tern-valid-XXXXXX", &e);
	g_assert_no_error(e);
	g_autofree char *reg = g_build_filename(dir, "reg", NULL);
	g_autofree char *fifo = g_build_filename(dir, "fifo", NULL);
	g_autofree char *link = g_build_filename(dir, "link", NULL);
	g_autofree char *none = g_build_filename(dir, "none", NULL);
	const char *why = NULL;

	g_file_set_contents(reg, "kernel", -1, &e);
	g_assert_no_error(e);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	g_assert_cmpint(symlink(reg, link), ==, 0);

	/* A FIFO with no writer: opening it for reading would block. */
	alarm(10);
	g_assert_true(valid_regular_file(reg, &why));
	g_assert_false(valid_regular_file(fifo, &why));
	g_assert_cmpstr(why, ==, "is a FIFO, not a regular file");
	g_assert_false(valid_regular_file(link, &why));
	g_assert_nonnull(strstr(why, "symbolic link"));
	g_assert_false(valid_regular_file(dir, &why));
	g_assert_nonnull(strstr(why, "directory"));
	g_assert_false(valid_regular_file(none, &why));
	g_assert_cmpstr(why, ==, "does not exist");
	g_assert_false(valid_regular_file("/dev/null", &why));
	g_assert_nonnull(strstr(why, "device"));
	alarm(0);

	g_unlink(reg);
	g_unlink(fifo);
	g_unlink(link);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/valid/uuid", test_uuid);
	g_test_add_func("/valid/path", test_path);
	g_test_add_func("/valid/files", test_files);
	return g_test_run();
}
