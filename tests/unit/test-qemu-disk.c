/*
 * test-qemu-disk: a VM's disks in QEMU's vocabulary (src/qemu/disk.c).
 *
 * The first tests check the -blockdev JSON and the -device arguments as
 * QEMU will read them (node names, read-only, cache.direct, discard, the
 * CD drive, the boot order).  The rest run the hot-plug sequences against
 * real QEMU with tern's test guest (guest/README.md) booted from a qcow2
 * root disk that qemu_disk_argv() attached, and read the guest's console
 * to see what the guest saw: a hot-plugged disk appears in its TERN-DISKS
 * line and goes again on detach, a CD inserted into the empty drive is
 * mounted and its label read (TERN-CD), an eject empties the drive, a
 * failed step leaves no block node behind, a guest that does not let a
 * device go (the VM is paused) runs into the detach deadline.  Without
 * qemu-system-x86_64, the guest build (tools/guest/build.sh) or
 * genisoimage, those tests are skipped.  Every wait polls a real condition
 * with a deadline.
 */
#include "qemu/disk.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "common/xerr.h"

#define BOOT_DEADLINE_MS 60000
#define STEP_DEADLINE_MS 30000

/* ---- The argv and the JSON ------------------------------------------ */

static JsonObject *
parse_object(const char *text, JsonParser *p)
{
	g_autoptr(GError) err = NULL;

	g_assert_true(json_parser_load_from_data(p, text, -1, &err));
	g_assert_no_error(err);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)));
	return json_node_get_object(json_parser_get_root(p));
}

static void
test_disk_blockdev_rw(void)
{
	g_autoptr(QemuDisk) d = qemu_disk_new("vbd0", "/sr/a,b.qcow2", NULL);
	g_autoptr(JsonParser) p = json_parser_new();
	g_autofree char *json = qemu_disk_blockdev_json(d);
	JsonObject *o = parse_object(json, p);
	JsonObject *f = json_object_get_object_member(o, "file");

	g_assert_cmpstr(json_object_get_string_member(o, "driver"), ==, "qcow2");
	g_assert_cmpstr(json_object_get_string_member(o, "node-name"), ==, "vbd0");
	g_assert_false(json_object_get_boolean_member(o, "read-only"));
	g_assert_cmpstr(json_object_get_string_member(o, "discard"), ==, "unmap");
	g_assert_cmpstr(json_object_get_string_member(o, "detect-zeroes"), ==,
			"unmap");
	g_assert_nonnull(f);
	g_assert_cmpstr(json_object_get_string_member(f, "driver"), ==, "file");
	g_assert_cmpstr(json_object_get_string_member(f, "node-name"), ==,
			"f-vbd0");
	/* JSON, not QemuOpts: a comma in a path needs no escaping. */
	g_assert_cmpstr(json_object_get_string_member(f, "filename"), ==,
			"/sr/a,b.qcow2");
	g_assert_false(json_object_get_boolean_member(
		json_object_get_object_member(f, "cache"), "direct"));
	g_assert_cmpstr(json_object_get_string_member(f, "discard"), ==, "unmap");
}

static void
test_disk_blockdev_ro_direct(void)
{
	g_autoptr(QemuDisk) d = qemu_disk_new("vbd2", "/sr/base.img", "raw");
	g_autoptr(JsonParser) p = json_parser_new();
	g_autofree char *json = NULL;
	JsonObject *o, *f;

	d->read_only = TRUE;
	d->cache_direct = TRUE;
	json = qemu_disk_blockdev_json(d);
	o = parse_object(json, p);
	f = json_object_get_object_member(o, "file");
	g_assert_cmpstr(json_object_get_string_member(o, "driver"), ==, "raw");
	g_assert_true(json_object_get_boolean_member(o, "read-only"));
	g_assert_true(json_object_get_boolean_member(f, "read-only"));
	/* A read-only node must not ask for discard (QEMU refuses it). */
	g_assert_false(json_object_has_member(o, "discard"));
	g_assert_false(json_object_has_member(o, "detect-zeroes"));
	g_assert_false(json_object_has_member(f, "discard"));
	g_assert_true(json_object_get_boolean_member(
		json_object_get_object_member(f, "cache"), "direct"));
}

static void
test_disk_argv(void)
{
	g_autoptr(GPtrArray) disks = g_ptr_array_new_with_free_func(
		(GDestroyNotify)qemu_disk_free);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	QemuDisk *root = qemu_disk_new("vbd0", "/sr/root.qcow2", "qcow2");
	QemuDisk *empty = qemu_disk_new("vbd3", NULL, "raw");
	QemuDisk *iso = qemu_disk_new("vbd4", "/sr/cd.iso", "raw");
	g_autoptr(JsonParser) p = json_parser_new();

	root->bootindex = 1;
	empty->cdrom = TRUE;
	iso->cdrom = TRUE;
	iso->read_only = TRUE;
	g_ptr_array_add(disks, root);
	g_ptr_array_add(disks, empty);
	g_ptr_array_add(disks, iso);
	qemu_disk_argv(disks, argv);

	g_assert_cmpuint(argv->len, ==, 10);
	g_assert_cmpstr(argv->pdata[0], ==, "-blockdev");
	g_assert_cmpstr(json_object_get_string_member(
		parse_object(argv->pdata[1], p), "node-name"), ==, "vbd0");
	g_assert_cmpstr(argv->pdata[2], ==, "-device");
	g_assert_cmpstr(argv->pdata[3], ==,
			"virtio-blk-pci,id=dev-vbd0,drive=vbd0,bootindex=1");
	/* An empty CD drive: a device and no block node. */
	g_assert_cmpstr(argv->pdata[4], ==, "-device");
	g_assert_cmpstr(argv->pdata[5], ==, "ide-cd,id=dev-vbd3");
	g_assert_cmpstr(argv->pdata[6], ==, "-blockdev");
	g_assert_true(json_object_get_boolean_member(
		parse_object(argv->pdata[7], p), "read-only"));
	/* And the ide-cd with its disc. */
	g_assert_cmpstr(argv->pdata[9], ==, "ide-cd,id=dev-vbd4,drive=vbd4");

	g_ptr_array_set_size(argv, 0);
	qemu_disk_argv(NULL, argv);
	g_assert_cmpuint(argv->len, ==, 0);
}

/* ---- Waiting ---------------------------------------------------------- */

typedef struct {
	gboolean done;
	GError *error;
	JsonNode *ret;
} Result;

static void
result_clear(Result *r)
{
	g_clear_error(&r->error);
	g_clear_pointer(&r->ret, json_node_unref);
	r->done = FALSE;
}

static gboolean
wait_expired(gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Runs the main loop until *FLAG is set or MS pass; returns *FLAG. */
static gboolean
wait_for(const gboolean *flag, guint ms)
{
	gboolean expired = FALSE;
	GSource *t = g_timeout_source_new(ms);

	g_source_set_callback(t, wait_expired, &expired, NULL);
	g_source_attach(t, NULL);
	while (!*flag && !expired)
		g_main_context_iteration(NULL, TRUE);
	g_source_destroy(t);
	g_source_unref(t);
	return *flag;
}

static void
op_done(const GError *error, gpointer data)
{
	Result *r = data;

	g_assert_false(r->done);
	r->done = TRUE;
	r->error = error ? g_error_copy(error) : NULL;
}

static void
call_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Result *r = data;

	(void)qmp;
	r->done = TRUE;
	r->error = error ? g_error_copy(error) : NULL;
	r->ret = ret ? json_node_ref(ret) : NULL;
}

/* ---- The guest -------------------------------------------------------- */

typedef struct {
	char *dir;
	char *console;
	GSubprocess *proc;
	Qmp *qmp;
	gsize seen;         /* console bytes already matched */
	char *root_line;    /* the boot's TERN-GUEST-ROOT line */
	char *disks_line;   /* ...its first TERN-DISKS line */
	gboolean have_iso;  /* genisoimage is there */
} Guest;

static Guest guest;       /* one boot for every hot-plug test */
static gboolean guest_tried;
static char *guest_skip;  /* why the hot-plug tests are skipped */

static void
qemu_child_setup(gpointer data)
{
	(void)data;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Runs tools/guest/build.sh (a no-op when it is up to date); fills
 * KERNEL, INITRD and ROOTFS, or returns FALSE. */
static gboolean
guest_build(char **kernel, char **initrd, char **rootfs)
{
	g_autofree char *script = g_test_build_filename(G_TEST_DIST, "..", "..",
		"tools", "guest", "build.sh", NULL);
	g_autofree char *out = NULL;
	g_auto(GStrv) lines = NULL;
	int status = 0;
	const char *argv[] = { script, NULL };

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
			  NULL, NULL, &out, NULL, &status, NULL) ||
	    !g_spawn_check_wait_status(status, NULL))
		return FALSE;
	lines = g_strsplit(out, "\n", -1);
	for (char **l = lines; *l; l++) {
		if (g_str_has_prefix(*l, "TERN_GUEST_KERNEL="))
			*kernel = g_strdup(*l + 18);
		else if (g_str_has_prefix(*l, "TERN_GUEST_INITRD="))
			*initrd = g_strdup(*l + 18);
		else if (g_str_has_prefix(*l, "TERN_GUEST_ROOTFS="))
			*rootfs = g_strdup(*l + 18);
	}
	return *kernel && *initrd && *rootfs &&
	       g_file_test(*rootfs, G_FILE_TEST_EXISTS);
}

static gboolean
run_tool(const char *const *argv)
{
	int status = 0;

	return g_spawn_sync(NULL, (char **)argv, NULL,
			    G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
			    G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
			    &status, NULL) &&
	       g_spawn_check_wait_status(status, NULL);
}

static char *
guest_path(const char *name)
{
	return g_build_filename(guest.dir, name, NULL);
}

/* An ISO9660 image whose tern-cd.txt holds LABEL. */
static char *
guest_make_iso(const char *label)
{
	g_autofree char *tree = guest_path(label);
	g_autofree char *txt = g_build_filename(tree, "tern-cd.txt", NULL);
	g_autofree char *line = g_strdup_printf("%s\n", label);
	char *iso = g_strdup_printf("%s/%s.iso", guest.dir, label);
	const char *argv[] = { "genisoimage", "-quiet", "-r", "-J", "-o", iso,
			       tree, NULL };

	g_assert_cmpint(g_mkdir(tree, 0755), ==, 0);
	g_assert_true(g_file_set_contents(txt, line, -1, NULL));
	g_assert_true(run_tool(argv));
	return iso;
}

static void
connected(Qmp *qmp, const GError *error, gpointer data)
{
	Result *r = data;

	r->done = TRUE;
	r->error = error ? g_error_copy(error) : NULL;
	guest.qmp = qmp;
}

/* Boots the guest from an overlay of rootfs.qcow2 with an empty CD drive,
 * both from qemu_disk_argv(), and connects to its monitor. */
static void
guest_start(void)
{
	g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
	g_autofree char *kernel = NULL, *initrd = NULL, *rootfs = NULL;
	g_autofree char *overlay = NULL, *sock = NULL, *serial = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(GPtrArray) disks = g_ptr_array_new_with_free_func(
		(GDestroyNotify)qemu_disk_free);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GSocket) listener = NULL;
	g_autoptr(GSocketAddress) addr = NULL;
	g_autoptr(GSubprocessLauncher) l = NULL;
	QemuDisk *root, *cd;
	Result c = { 0 };

	g_autofree char *qemu_img = g_find_program_in_path("qemu-img");

	guest_tried = TRUE;
	if (qemu == NULL || qemu_img == NULL) {
		guest_skip = g_strdup("QEMU is not installed");
		return;
	}
	if (!guest_build(&kernel, &initrd, &rootfs)) {
		guest_skip = g_strdup("no guest build (tools/guest/build.sh)");
		return;
	}
	guest.dir = g_dir_make_tmp("test-qemu-disk-XXXXXX", &err);
	g_assert_no_error(err);
	overlay = guest_path("root.qcow2");
	{
		const char *a[] = { "qemu-img", "create", "-q", "-f", "qcow2",
				    "-b", rootfs, "-F", "qcow2", overlay, NULL };
		g_assert_true(run_tool(a));
	}
	g_autofree char *iso_tool = g_find_program_in_path("genisoimage");
	guest.have_iso = iso_tool != NULL;

	root = qemu_disk_new("vbd0", overlay, "qcow2");
	root->bootindex = 1;
	cd = qemu_disk_new("vbd3", NULL, "raw");
	cd->cdrom = TRUE;
	g_ptr_array_add(disks, root);
	g_ptr_array_add(disks, cd);

	sock = guest_path("qmp.sock");
	guest.console = guest_path("console.log");
	serial = g_strdup_printf("file:%s", guest.console);
	listener = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
				G_SOCKET_PROTOCOL_DEFAULT, &err);
	g_assert_no_error(err);
	addr = g_unix_socket_address_new(sock);
	g_assert_true(g_socket_bind(listener, addr, TRUE, &err));
	g_assert_true(g_socket_listen(listener, &err));

	const char *fixed[] = { qemu, "-machine", "pc", "-accel", "tcg",
		"-m", "256", "-nodefaults", "-no-reboot", "-display", "none",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet memcheck.mib=0 tern.root=/dev/vda",
		"-serial", serial,
		"-chardev", "socket,id=mon,fd=3,server=on,wait=off",
		"-mon", "chardev=mon,mode=control", NULL };
	for (const char **a = fixed; *a; a++)
		g_ptr_array_add(argv, g_strdup(*a));
	qemu_disk_argv(disks, argv);
	g_ptr_array_add(argv, NULL);

	l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_take_fd(l, dup(g_socket_get_fd(listener)), 3);
	g_subprocess_launcher_set_child_setup(l, qemu_child_setup, NULL, NULL);
	guest.proc = g_subprocess_launcher_spawnv(l,
		(const char *const *)argv->pdata, &err);
	g_assert_no_error(err);
	g_socket_close(listener, NULL);

	qmp_connect(sock, 10000, NULL, NULL, &c, connected);
	g_assert_true(wait_for(&c.done, 15000));
	g_assert_no_error(c.error);
	g_assert_nonnull(guest.qmp);
}

static void
guest_stop(void)
{
	if (guest.qmp != NULL) {
		qmp_close(guest.qmp);
		qmp_unref(guest.qmp);
	}
	if (guest.proc != NULL) {
		g_subprocess_force_exit(guest.proc);
		g_subprocess_wait(guest.proc, NULL, NULL);
		g_object_unref(guest.proc);
	}
	if (guest.dir != NULL) {
		const char *argv[] = { "rm", "-rf", guest.dir, NULL };

		run_tool(argv);
	}
	g_free(guest.dir);
	g_free(guest.console);
	g_free(guest.root_line);
	g_free(guest.disks_line);
}

static char *guest_wait_line(const char *needle, guint ms);

/* TRUE when the guest is up (the first test boots it and waits for the
 * watcher's first report), else skips. */
static gboolean
guest_ready(void)
{
	if (!guest_tried) {
		guest_start();
		if (guest_skip == NULL) {
			guest.root_line = guest_wait_line("TERN-GUEST-ROOT",
							  BOOT_DEADLINE_MS);
			guest.disks_line = guest_wait_line("TERN-DISKS",
							   BOOT_DEADLINE_MS);
			g_free(guest_wait_line("TERN-CD dev=sr0 size=0 label=none",
					       BOOT_DEADLINE_MS));
		}
	}
	if (guest_skip != NULL) {
		g_test_skip(guest_skip);
		return FALSE;
	}
	return TRUE;
}

/*
 * Waits for a console line holding NEEDLE that starts after everything
 * matched so far (so "vdb appears, then goes" is checked in that order);
 * returns that line.  Fails the test at the deadline with the console's
 * tail.
 */
static char *
guest_wait_line(const char *needle, guint ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;

	for (;;) {
		g_autofree char *text = NULL;
		gsize len = 0;
		const char *hit, *eol;

		if (g_file_get_contents(guest.console, &text, &len, NULL) &&
		    len > guest.seen && (hit = strstr(text + guest.seen, needle)) &&
		    (eol = strchr(hit, '\n')) != NULL) {
			const char *bol = hit;

			while (bol > text + guest.seen && bol[-1] != '\n')
				bol--;
			guest.seen = (gsize)(eol + 1 - text);
			return g_strchomp(g_strndup(bol, (gsize)(eol - bol)));
		}
		if (g_get_monotonic_time() > deadline) {
			const char *tail = text && len > 1500 ? text + len - 1500
							      : text;

			g_error("no console line with \"%s\" within %u ms; "
				"console ends:\n%s", needle, ms,
				tail ? tail : "(empty)");
		}
		/* Let QMP callbacks run while the guest works. */
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(20000);
	}
}

static void
guest_qmp(const char *command, JsonObject *args, Result *r)
{
	result_clear(r);
	qmp_call(guest.qmp, command, args, call_done, r);
	g_assert_true(wait_for(&r->done, STEP_DEADLINE_MS));
}

/* TRUE when QEMU has a block node named NAME. */
static gboolean
guest_has_node(const char *name)
{
	g_autoptr(JsonObject) args = json_object_new();
	Result r = { 0 };
	gboolean found = FALSE;
	JsonArray *a;

	json_object_set_boolean_member(args, "flat", TRUE);
	guest_qmp("query-named-block-nodes", args, &r);
	g_assert_no_error(r.error);
	a = json_node_get_array(r.ret);
	for (guint i = 0; i < json_array_get_length(a); i++)
		if (g_strcmp0(json_object_get_string_member(
			json_array_get_object_element(a, i), "node-name"),
			name) == 0)
			found = TRUE;
	result_clear(&r);
	return found;
}

/* How many fdsets QEMU has (*FDS: how many descriptors they hold). */
static guint
guest_fdsets(guint *fds)
{
	Result r = { 0 };
	JsonArray *a;
	guint n;

	guest_qmp("query-fdsets", NULL, &r);
	g_assert_no_error(r.error);
	a = json_node_get_array(r.ret);
	n = json_array_get_length(a);
	*fds = 0;
	for (guint i = 0; i < n; i++)
		*fds += json_array_get_length(json_object_get_array_member(
			json_array_get_object_element(a, i), "fds"));
	result_clear(&r);
	return n;
}

static QemuDisk *
guest_new_disk(const char *id)
{
	g_autofree char *name = g_strdup_printf("%s.qcow2", id);
	g_autofree char *path = guest_path(name);
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2",
			       path, "16M", NULL };

	g_assert_true(run_tool(argv));
	return qemu_disk_new(id, path, "qcow2");
}

/* Runs OP's DONE to completion; checks it did not come synchronously. */
#define RUN_OP(r, call) do {                                              \
	result_clear(&(r));                                               \
	call;                                                             \
	g_assert_false((r).done);                                         \
	g_assert_true(wait_for(&(r).done, STEP_DEADLINE_MS + 5000));      \
} while (0)

/* ---- Hot-plug against real QEMU ------------------------------------- */

static void
test_disk_boot_from_qcow2(void)
{
	if (!guest_ready())
		return;
	/* The root disk qemu_disk_argv() attached is the guest's root. */
	g_assert_cmpstr(strstr(guest.root_line, "TERN-GUEST-ROOT"), ==,
			"TERN-GUEST-ROOT dev=/dev/vda type=ext4");
	g_assert_nonnull(strstr(guest.disks_line, "TERN-DISKS sr0 vda"));
	g_assert_null(strstr(guest.disks_line, "vdb"));
}

static void
test_disk_attach_detach(void)
{
	g_autoptr(QemuDisk) d = NULL;
	g_autofree char *line = NULL;
	Result r = { 0 };

	if (!guest_ready())
		return;
	d = guest_new_disk("vbd1");
	RUN_OP(r, qemu_disk_attach(guest.qmp, d, op_done, &r));
	g_assert_no_error(r.error);
	g_assert_true(guest_has_node("vbd1"));
	g_assert_true(guest_has_node("f-vbd1"));
	/* ternd opened the image: QEMU keeps only its dup of the fdset's
	 * descriptor, the set itself holds none. */
	guint fds;
	g_assert_cmpuint(guest_fdsets(&fds), ==, 1);
	g_assert_cmpuint(fds, ==, 0);
	line = guest_wait_line("TERN-DISKS", STEP_DEADLINE_MS);
	g_assert_nonnull(strstr(line, "TERN-DISKS sr0 vda vdb"));

	RUN_OP(r, qemu_disk_detach(guest.qmp, "vbd1", op_done, &r));
	g_assert_no_error(r.error);
	/* Gone from QEMU (both nodes: the file node went with its parent)
	 * and from the guest. */
	g_assert_false(guest_has_node("vbd1"));
	g_assert_false(guest_has_node("f-vbd1"));
	g_assert_cmpuint(guest_fdsets(&fds), ==, 0);
	g_free(line);
	line = guest_wait_line("TERN-DISKS", STEP_DEADLINE_MS);
	g_assert_nonnull(strstr(line, "TERN-DISKS sr0 vda"));
	g_assert_null(strstr(line, "vdb"));

	/* Detaching what is not there is QEMU's error, with its message. */
	RUN_OP(r, qemu_disk_detach(guest.qmp, "vbd1", op_done, &r));
	g_assert_true(xerr_is(r.error, "INTERNAL_ERROR"));
	g_assert_nonnull(strstr(r.error->message, "device_del"));
	g_assert_nonnull(strstr(r.error->message, "not found"));
	result_clear(&r);
}

static void
test_disk_attach_undo(void)
{
	g_autoptr(QemuDisk) d = NULL;
	Result r = { 0 };

	if (!guest_ready())
		return;
	/* dev-vbd3 is the CD drive: blockdev-add vbd3 works, device_add
	 * dev-vbd3 fails, and the node must be deleted again. */
	d = guest_new_disk("vbd3");
	RUN_OP(r, qemu_disk_attach(guest.qmp, d, op_done, &r));
	g_assert_true(xerr_is(r.error, "INTERNAL_ERROR"));
	g_assert_nonnull(strstr(r.error->message, "device_add"));
	g_assert_false(guest_has_node("vbd3"));
	g_assert_false(guest_has_node("f-vbd3"));

	/* A missing image fails when ternd opens it for QEMU. */
	g_free(d->path);
	d->path = guest_path("missing.qcow2");
	g_free(d->id);
	d->id = g_strdup("vbd5");
	RUN_OP(r, qemu_disk_attach(guest.qmp, d, op_done, &r));
	g_assert_true(xerr_is(r.error, "INTERNAL_ERROR"));
	g_assert_nonnull(strstr(r.error->message, "open"));
	g_assert_nonnull(strstr(r.error->message, "No such file"));

	/* Bad arguments never reach QEMU. */
	g_free(d->id);
	d->id = g_strdup("bad id");
	RUN_OP(r, qemu_disk_attach(guest.qmp, d, op_done, &r));
	g_assert_true(xerr_is(r.error, "INVALID_VALUE"));
	g_free(d->id);
	d->id = g_strdup("vbd5");
	d->cdrom = TRUE;
	RUN_OP(r, qemu_disk_attach(guest.qmp, d, op_done, &r));
	g_assert_true(xerr_is(r.error, "INVALID_VALUE"));
	RUN_OP(r, qemu_disk_cd_eject(guest.qmp, "-x", op_done, &r));
	g_assert_true(xerr_is(r.error, "INVALID_VALUE"));
	result_clear(&r);
}

static void
test_disk_cd(void)
{
	g_autofree char *iso1 = NULL, *iso2 = NULL, *line = NULL;
	g_autoptr(QemuDisk) cd = NULL;
	Result r = { 0 };

	if (!guest_ready())
		return;
	if (!guest.have_iso) {
		g_test_skip("genisoimage is not installed");
		return;
	}
	iso1 = guest_make_iso("tern-cd-one");
	iso2 = guest_make_iso("tern-cd-two");

	cd = qemu_disk_new("vbd3", iso1, "raw");
	cd->cdrom = TRUE;
	RUN_OP(r, qemu_disk_cd_insert(guest.qmp, cd, op_done, &r));
	g_assert_no_error(r.error);
	line = guest_wait_line("TERN-CD", STEP_DEADLINE_MS);
	g_assert_nonnull(strstr(line, "label=tern-cd-one"));

	/* A full drive refuses a second disc (its node name is taken). */
	g_free(cd->path);
	cd->path = g_strdup(iso2);
	RUN_OP(r, qemu_disk_cd_insert(guest.qmp, cd, op_done, &r));
	g_assert_true(xerr_is(r.error, "INTERNAL_ERROR"));
	g_assert_true(guest_has_node("vbd3"));

	RUN_OP(r, qemu_disk_cd_eject(guest.qmp, "vbd3", op_done, &r));
	g_assert_no_error(r.error);
	g_assert_false(guest_has_node("vbd3"));
	g_free(line);
	line = guest_wait_line("TERN-CD", STEP_DEADLINE_MS);
	g_assert_nonnull(strstr(line, "TERN-CD dev=sr0 size=0 label=none"));

	/* Ejecting an empty drive is fine; another disc goes in. */
	RUN_OP(r, qemu_disk_cd_eject(guest.qmp, "vbd3", op_done, &r));
	g_assert_no_error(r.error);
	RUN_OP(r, qemu_disk_cd_insert(guest.qmp, cd, op_done, &r));
	g_assert_no_error(r.error);
	g_free(line);
	line = guest_wait_line("TERN-CD", STEP_DEADLINE_MS);
	g_assert_nonnull(strstr(line, "label=tern-cd-two"));
	g_assert_true(guest_has_node("vbd3"));
	result_clear(&r);
}

static void
test_disk_detach_deadline(void)
{
	g_autoptr(QemuDisk) d = NULL;
	g_autofree char *line = NULL;
	Result r = { 0 };
	gint64 t0;

	if (!guest_ready())
		return;
	d = guest_new_disk("vbd2");
	RUN_OP(r, qemu_disk_attach(guest.qmp, d, op_done, &r));
	g_assert_no_error(r.error);
	line = guest_wait_line("TERN-DISKS", STEP_DEADLINE_MS);
	g_assert_nonnull(strstr(line, "vdb"));

	/* A paused guest cannot answer the unplug request. */
	guest_qmp("stop", NULL, &r);
	g_assert_no_error(r.error);
	t0 = g_get_monotonic_time();
	RUN_OP(r, qemu_disk_detach_full(guest.qmp, "vbd2", 1500, op_done, &r));
	g_assert_true(xerr_is(r.error, "DEVICE_DETACH_TIMEOUT"));
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 1500 * 1000);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 10000 * 1000);
	/* Nothing was deleted under a device QEMU still has. */
	g_assert_true(guest_has_node("vbd2"));
	guest_qmp("cont", NULL, &r);
	g_assert_no_error(r.error);
	result_clear(&r);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qemu-disk/blockdev-rw", test_disk_blockdev_rw);
	g_test_add_func("/qemu-disk/blockdev-ro-direct",
			test_disk_blockdev_ro_direct);
	g_test_add_func("/qemu-disk/argv", test_disk_argv);
	g_test_add_func("/qemu-disk/real/boot-from-qcow2",
			test_disk_boot_from_qcow2);
	g_test_add_func("/qemu-disk/real/attach-detach",
			test_disk_attach_detach);
	g_test_add_func("/qemu-disk/real/attach-undo", test_disk_attach_undo);
	g_test_add_func("/qemu-disk/real/cd", test_disk_cd);
	g_test_add_func("/qemu-disk/real/detach-deadline",
			test_disk_detach_deadline);
	rc = g_test_run();
	guest_stop();
	g_free(guest_skip);
	return rc;
}
