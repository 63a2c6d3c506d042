/*
 * file: the `file` SR driver: a directory of VDI files (see storage.h
 * for the layout).
 *
 * Chains.  A snapshot or a clone of VDI V must not move V's file: a
 * VDI's location is stable, since VBDs and other hosts name it.  So V's
 * image is renamed to a new hidden base B (read-only from then on), V
 * gets a fresh empty overlay on B under its old name, and the snapshot
 * (or clone) S another overlay on B:
 *
 *     before:  V.qcow2                 after:  B.qcow2 (hidden, 0400)
 *                                               ^            ^
 *                                            V.qcow2      S.qcow2
 *
 * The backing file is named relative to the directory, so a shared SR
 * mounted elsewhere on another host still resolves.  A base is deleted
 * with the last VDI that leans on it (storage_vdi_delete).
 *
 * Sizes come from the files: a qcow2's virtual size from its header (the
 * number qemu-img info reports, read without a process per file, which a
 * scan of many VDIs would need), the allocated bytes from st_blocks, the
 * SR's from statvfs.
 */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static GError *
storage_errno(const char *what, const char *path)
{
	int err = errno;

	return g_error_new(G_IO_ERROR, g_io_error_from_errno(err), "%s %s: %s",
			   what, path, g_strerror(err));
}

/* ---- SR identity ---------------------------------------------------- */

static char *
storage_sr_id_path(const char *dir)
{
	return g_build_filename(dir, STORAGE_SR_FILE, NULL);
}

char *
storage_sr_read_uuid(const char *dir, GError **error)
{
	g_autofree char *path = storage_sr_id_path(dir);
	g_autoptr(JsonParser) p = json_parser_new();

	if (!json_parser_load_from_file(p, path, error))
		return NULL;
	JsonNode *root = json_parser_get_root(p);
	const char *uuid = root && JSON_NODE_HOLDS_OBJECT(root)
		? json_object_get_string_member_with_default(
			json_node_get_object(root), "sr_uuid", NULL)
		: NULL;
	if (uuid == NULL || !g_uuid_string_is_valid(uuid)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "%s names no SR uuid", path);
		return NULL;
	}
	return g_strdup(uuid);
}

static gboolean
storage_write_json(const char *path, JsonObject *o, GError **error)
{
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), o);
	g_autofree char *text = json_to_string(n, TRUE);

	return g_file_set_contents_full(path, text, -1,
		G_FILE_SET_CONTENTS_CONSISTENT, 0644, error);
}

gboolean
storage_sr_format(const char *dir, const char *sr_uuid, GError **error)
{
	g_autofree char *meta = g_build_filename(dir, STORAGE_META_DIR, NULL);
	g_autofree char *id = storage_sr_id_path(dir);

	/* A VM's disk is its owner's: the SR is root's alone (QEMU opens its
	 * images before it drops to [qemu] user). */
	if (g_mkdir_with_parents(meta, 0700) != 0) {
		g_propagate_error(error, storage_errno("cannot make", meta));
		return FALSE;
	}
	if (g_file_test(id, G_FILE_TEST_EXISTS)) {
		g_autofree char *have = storage_sr_read_uuid(dir, error);
		if (have == NULL)
			return FALSE;
		if (g_ascii_strcasecmp(have, sr_uuid) == 0)
			return TRUE;
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
			    "%s already holds the SR %s", dir, have);
		return FALSE;
	}
	g_autoptr(JsonObject) o = json_object_new();
	json_object_set_string_member(o, "sr_uuid", sr_uuid);
	json_object_set_int_member(o, "format_version",
				   STORAGE_FORMAT_VERSION);
	return storage_write_json(id, o, error);
}

gboolean
storage_sr_sizes(const char *dir, gint64 *total, gint64 *used,
		 gint64 *avail, GError **error)
{
	struct statvfs st;

	if (statvfs(dir, &st) != 0) {
		g_propagate_error(error, storage_errno("statvfs", dir));
		return FALSE;
	}
	*total = (gint64)st.f_blocks * st.f_frsize;
	*used = (gint64)(st.f_blocks - st.f_bfree) * st.f_frsize;
	*avail = (gint64)st.f_bavail * st.f_frsize;
	return TRUE;
}

/* Unlinks every entry of DIR that KEEP does not keep. */
static gboolean
storage_unlink_all(const char *dir, gboolean (*keep)(const char *name),
		   GError **error)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d)) != NULL) {
		if (keep && keep(name))
			continue;
		g_autofree char *p = g_build_filename(dir, name, NULL);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		if (g_unlink(p) != 0 && errno != ENOENT) {
			g_propagate_error(error, storage_errno("cannot remove",
							       p));
			return FALSE;
		}
	}
	return TRUE;
}

static char *storage_meta_path(const char *dir, const char *location);

/* The directory being wiped, for storage_keep_unknown (one wipe at a
 * time: the main loop's). */
static const char *storage_wiping;

/* Kept: dot files, and files that are not VDIs of the SR (no metadata:
 * never scanned), which are not the SR's to remove. */
static gboolean
storage_keep_unknown(const char *name)
{
	if (name[0] == '.')
		return TRUE;
	g_autofree char *loc = g_str_has_suffix(name, ".qcow2")
		? g_strndup(name, strlen(name) - 6) : g_strdup(name);
	g_autofree char *m = storage_meta_path(storage_wiping, loc);
	return !g_file_test(m, G_FILE_TEST_EXISTS);
}

gboolean
storage_sr_wipe(const char *dir, GError **error)
{
	g_autofree char *meta = g_build_filename(dir, STORAGE_META_DIR, NULL);
	g_autofree char *id = storage_sr_id_path(dir);

	storage_wiping = dir;
	gboolean ok = storage_unlink_all(dir, storage_keep_unknown, error);
	storage_wiping = NULL;
	if (!ok || !storage_unlink_all(meta, NULL, error))
		return FALSE;
	g_rmdir(meta);
	if (g_unlink(id) != 0 && errno != ENOENT) {
		g_propagate_error(error, storage_errno("cannot remove", id));
		return FALSE;
	}
	g_rmdir(dir); /* only when nothing else is left there */
	return TRUE;
}

/* ---- VDI files ------------------------------------------------------ */

void
storage_vdi_free(StorageVdi *v)
{
	if (v == NULL)
		return;
	g_free(v->location);
	g_free(v->format);
	if (v->meta)
		json_object_unref(v->meta);
	g_free(v);
}

gboolean
storage_location_ok(const char *location)
{
	gsize n = location ? strlen(location) : 0;

	if (n == 0 || n > 200 || location[0] == '.')
		return FALSE;
	for (const char *p = location; *p; p++)
		if (*p == '/' || *p == ',' || g_ascii_iscntrl(*p))
			return FALSE;
	return TRUE;
}

char *
storage_vdi_path(const char *dir, const char *location, const char *format)
{
	if (!storage_location_ok(location))
		return NULL;
	if (g_strcmp0(format, "raw") == 0)
		return g_build_filename(dir, location, NULL);
	g_autofree char *name = g_strconcat(location, ".qcow2", NULL);
	return g_build_filename(dir, name, NULL);
}

static char *
storage_meta_path(const char *dir, const char *location)
{
	g_autofree char *name = g_strconcat(location, ".json", NULL);

	return g_build_filename(dir, STORAGE_META_DIR, name, NULL);
}

JsonObject *
storage_meta_read(const char *dir, const char *location)
{
	g_autofree char *path = storage_meta_path(dir, location);
	g_autoptr(JsonParser) p = json_parser_new();

	if (!json_parser_load_from_file(p, path, NULL))
		return NULL;
	JsonNode *root = json_parser_get_root(p);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
		return NULL;
	return json_object_ref(json_node_get_object(root));
}

gboolean
storage_meta_write(const char *dir, const char *location, JsonObject *meta,
		   GError **error)
{
	g_autofree char *path = storage_meta_path(dir, location);

	return storage_write_json(path, meta, error);
}

gboolean
storage_vdi_sizes(const char *path, const char *format, gint64 *virtual_size,
		  gint64 *physical, GError **error)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		g_propagate_error(error, storage_errno("cannot stat", path));
		return FALSE;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE,
			    "%s is not a regular file", path);
		return FALSE;
	}
	*physical = (gint64)st.st_blocks * 512;
	*virtual_size = st.st_size;
	if (g_strcmp0(format, "qcow2") != 0)
		return TRUE;
	/* The header: magic "QFI\xfb" at 0, the size (big-endian) at 24. */
	guint8 h[32];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t got = fd >= 0 ? pread(fd, h, sizeof h, 0) : -1;
	if (fd >= 0)
		close(fd);
	if (got != (ssize_t)sizeof h || memcmp(h, "QFI\xfb", 4) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "%s is not a qcow2 image", path);
		return FALSE;
	}
	guint64 size = 0;
	for (int i = 24; i < 32; i++)
		size = size << 8 | h[i];
	*virtual_size = (gint64)size;
	return TRUE;
}

#define STORAGE_CHAIN_MAX 64

static guint64
storage_be(const guint8 *p, int n)
{
	guint64 v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The backing file name of the qcow2 at PATH ("" for none), or NULL with
 * ERROR for an image tern does not hand to QEMU. */
static char *
storage_qcow2_backing(const char *path, GError **error)
{
	guint8 h[80] = { 0 };
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t got = fd >= 0 ? pread(fd, h, sizeof h, 0) : -1;
	char *name = NULL;

	if (got < 72 || memcmp(h, "QFI\xfb", 4) != 0)
		goto bad;
	guint64 version = storage_be(h + 4, 4);
	guint64 off = storage_be(h + 8, 8);
	guint64 len = storage_be(h + 16, 4);
	/* Incompatible feature bit 2: an external data file. */
	if (version >= 3 && (got < 80 || (storage_be(h + 72, 8) & 4))) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
			    "%s has an external data file", path);
		close(fd);
		return NULL;
	}
	if (len == 0) {
		close(fd);
		return g_strdup("");
	}
	if (len > 1023)
		goto bad;
	name = g_malloc0(len + 1);
	if (pread(fd, name, len, (off_t)off) != (ssize_t)len)
		goto bad;
	close(fd);
	return name;
bad:
	if (fd >= 0)
		close(fd);
	g_free(name);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		    "%s is not a qcow2 image tern can use", path);
	return NULL;
}

gboolean
storage_vdi_chain_ok(const char *dir, const char *location,
		     const char *format, GError **error)
{
	g_autofree char *loc = g_strdup(location);

	if (g_strcmp0(format, "qcow2") != 0)
		return TRUE;
	for (int depth = 0; depth < STORAGE_CHAIN_MAX; depth++) {
		g_autofree char *path = storage_vdi_path(dir, loc, "qcow2");
		if (path == NULL) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "bad VDI location %s", loc);
			return FALSE;
		}
		g_autofree char *backing = storage_qcow2_backing(path, error);
		if (backing == NULL)
			return FALSE;
		if (*backing == 0)
			return TRUE;
		gsize n = strlen(backing);
		if (!g_str_has_suffix(backing, ".qcow2") || n <= 6) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "%s leans on %s, which is not an image of "
				    "its SR", path, backing);
			return FALSE;
		}
		g_free(loc);
		loc = g_strndup(backing, n - 6);
		if (!storage_location_ok(loc)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "%s leans on %s, which is not an image of "
				    "its SR", path, backing);
			return FALSE;
		}
	}
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		    "the chain of %s is more than %d images deep", location,
		    STORAGE_CHAIN_MAX);
	return FALSE;
}

static JsonObject *
storage_meta_new(const char *uuid, const char *name, const char *type)
{
	JsonObject *m = json_object_new();

	json_object_set_string_member(m, "uuid", uuid);
	json_object_set_string_member(m, "name_label", name);
	json_object_set_string_member(m, "name_description", "");
	json_object_set_string_member(m, "type", type);
	json_object_set_boolean_member(m, "sharable", FALSE);
	json_object_set_boolean_member(m, "read_only", FALSE);
	json_object_set_boolean_member(m, "hidden", FALSE);
	json_object_set_string_member(m, "parent", "");
	return m;
}

static StorageVdi *
storage_scan_one(const char *dir, const char *name, GError **error)
{
	g_autoptr(StorageVdi) v = g_new0(StorageVdi, 1);
	gboolean qcow2 = g_str_has_suffix(name, ".qcow2") &&
			 strlen(name) > strlen(".qcow2");

	v->format = g_strdup(qcow2 ? "qcow2" : "raw");
	v->location = qcow2 ? g_strndup(name, strlen(name) - 6)
			    : g_strdup(name);
	if (!storage_location_ok(v->location))
		return NULL;
	g_autofree char *path = storage_vdi_path(dir, v->location, v->format);
	if (!storage_vdi_sizes(path, v->format, &v->virtual_size,
			       &v->physical_utilisation, error) ||
	    !storage_vdi_chain_ok(dir, v->location, v->format, error))
		return NULL;
	v->meta = storage_meta_read(dir, v->location);
	if (v->meta == NULL) {
		g_autofree char *uuid = qcow2 &&
			g_uuid_string_is_valid(v->location)
			? g_ascii_strdown(v->location, -1)
			: g_uuid_string_random();
		/* Raw files an admin drops in are boot files (system). */
		v->meta = storage_meta_new(uuid, v->location,
					   qcow2 ? "user" : "system");
		if (!storage_meta_write(dir, v->location, v->meta, error))
			return NULL;
	}
	return g_steal_pointer(&v);
}

GPtrArray *
storage_scan(const char *dir, GError **error)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, error);
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(
		(GDestroyNotify)storage_vdi_free);
	const char *name;

	if (d == NULL)
		return NULL;
	while ((name = g_dir_read_name(d)) != NULL) {
		GError *e = NULL;
		if (name[0] == '.')
			continue;
		StorageVdi *v = storage_scan_one(dir, name, &e);
		if (v != NULL)
			g_ptr_array_add(out, v);
		else if (e != NULL) {
			/* A FIFO or a broken image is not a VDI; say so once. */
			g_info("storage: %s/%s skipped: %s", dir, name,
			       e->message);
			g_error_free(e);
		}
	}
	return g_steal_pointer(&out);
}

/* ---- Operations through qemu-img ------------------------------------ */

/* One asynchronous operation: a list of qemu-img calls run in turn, then
 * FINISH (success) or UNDO (failure) on the file side, then DONE. */
typedef struct StorageOp StorageOp;
struct StorageOp {
	char *dir;
	GPtrArray *steps;        /* of GStrv */
	guint next;
	gboolean (*finish)(StorageOp *op, GError **error);
	void (*undo)(StorageOp *op);
	StorageImgFn done;
	gpointer data;
	char *location, *base, *fresh;
	JsonObject *meta;
};

static void
storage_op_free(StorageOp *op)
{
	g_free(op->dir);
	g_ptr_array_unref(op->steps);
	g_free(op->location);
	g_free(op->base);
	g_free(op->fresh);
	if (op->meta)
		json_object_unref(op->meta);
	g_free(op);
}

static StorageOp *
storage_op_new(const char *dir, StorageImgFn done, gpointer data)
{
	StorageOp *op = g_new0(StorageOp, 1);

	op->dir = g_strdup(dir);
	op->steps = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	op->done = done;
	op->data = data;
	return op;
}

static void storage_op_step(StorageOp *op);

static void
storage_op_stepped(const char *out, const GError *error, gpointer p)
{
	StorageOp *op = p;
	GError *e = NULL;

	if (error == NULL) {
		storage_op_step(op);
		return;
	}
	if (op->undo)
		op->undo(op);
	e = g_error_copy(error);
	op->done(NULL, e, op->data);
	g_error_free(e);
	storage_op_free(op);
}

static void
storage_op_step(StorageOp *op)
{
	GError *e = NULL;

	if (op->next < op->steps->len) {
		const char *const *argv = op->steps->pdata[op->next++];
		storage_img_run(argv, STORAGE_IMG_TIMEOUT_S,
				storage_op_stepped, op);
		return;
	}
	if (op->finish && !op->finish(op, &e)) {
		if (op->undo)
			op->undo(op);
		op->done(NULL, e, op->data);
		g_error_free(e);
	} else {
		op->done("", NULL, op->data);
	}
	storage_op_free(op);
}

/* Fails the operation at once, from an idle callback so DONE never runs
 * inside the caller. */
static gboolean
storage_op_fail_idle(gpointer p)
{
	StorageOp *op = p;
	GError *e = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_FAILED,
		op->fresh ? op->fresh : "storage operation failed");
	op->done(NULL, e, op->data);
	g_error_free(e);
	storage_op_free(op);
	return G_SOURCE_REMOVE;
}

static void
storage_op_fail(StorageOp *op, const char *msg)
{
	g_free(op->fresh);
	op->fresh = g_strdup(msg);
	op->undo = NULL;
	g_idle_add(storage_op_fail_idle, op);
}

static char **
storage_qcow2_create_argv(const char *path, const char *backing,
			  gint64 size)
{
	GPtrArray *a = g_ptr_array_new();

	g_ptr_array_add(a, g_strdup("qemu-img"));
	g_ptr_array_add(a, g_strdup("create"));
	g_ptr_array_add(a, g_strdup("-q"));
	g_ptr_array_add(a, g_strdup("-f"));
	g_ptr_array_add(a, g_strdup("qcow2"));
	g_ptr_array_add(a, g_strdup("-o"));
	g_ptr_array_add(a, g_strdup("compat=1.1,cluster_size=64k"));
	if (backing != NULL) {
		g_ptr_array_add(a, g_strdup("-b"));
		g_ptr_array_add(a, g_strdup(backing));
		g_ptr_array_add(a, g_strdup("-F"));
		g_ptr_array_add(a, g_strdup("qcow2"));
	}
	g_ptr_array_add(a, g_strdup(path));
	if (size >= 0)
		g_ptr_array_add(a, g_strdup_printf("%" G_GINT64_FORMAT, size));
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

static gboolean
storage_create_finish(StorageOp *op, GError **error)
{
	g_autofree char *path = storage_vdi_path(op->dir, op->location,
						 "qcow2");

	g_chmod(path, 0600);
	return storage_meta_write(op->dir, op->location, op->meta, error);
}

static void
storage_create_undo(StorageOp *op)
{
	g_autofree char *path = storage_vdi_path(op->dir, op->location,
						 "qcow2");
	g_unlink(path);
}

void
storage_vdi_create(const char *dir, const char *uuid, gint64 size,
		   JsonObject *meta, StorageImgFn done, gpointer data)
{
	StorageOp *op = storage_op_new(dir, done, data);
	g_autofree char *path = storage_vdi_path(dir, uuid, "qcow2");

	op->location = g_strdup(uuid);
	op->meta = json_object_ref(meta);
	if (path == NULL || g_file_test(path, G_FILE_TEST_EXISTS))
		return storage_op_fail(op, "the VDI's file already exists");
	g_ptr_array_add(op->steps, storage_qcow2_create_argv(path, NULL,
							     size));
	op->finish = storage_create_finish;
	op->undo = storage_create_undo;
	storage_op_step(op);
}

void
storage_vdi_resize(const char *dir, const char *location, const char *format,
		   gint64 size, StorageImgFn done, gpointer data)
{
	StorageOp *op = storage_op_new(dir, done, data);
	g_autofree char *path = storage_vdi_path(dir, location, format);

	if (path == NULL)
		return storage_op_fail(op, "bad VDI location");
	if (g_strcmp0(format, "raw") == 0) {
		if (truncate(path, size) != 0)
			return storage_op_fail(op, g_strerror(errno));
		storage_op_step(op);
		return;
	}
	g_autofree char *sz = g_strdup_printf("%" G_GINT64_FORMAT, size);
	const char *argv[] = { "qemu-img", "resize", "-q", "-f", "qcow2", path,
			       sz, NULL };
	g_ptr_array_add(op->steps, g_strdupv((char **)argv));
	storage_op_step(op);
}

/* Chain: the file moves to the base, two overlays are made on it. */
static void
storage_chain_undo(StorageOp *op)
{
	g_autofree char *path = storage_vdi_path(op->dir, op->location,
						 "qcow2");
	g_autofree char *base = storage_vdi_path(op->dir, op->base, "qcow2");
	g_autofree char *fresh = storage_vdi_path(op->dir, op->fresh,
						  "qcow2");
	g_autofree char *bmeta = storage_meta_path(op->dir, op->base);

	g_unlink(fresh);
	g_unlink(path);
	g_chmod(base, 0600);
	if (g_rename(base, path) != 0)
		g_warning("storage: cannot put %s back as %s: %s", base, path,
			  g_strerror(errno));
	g_unlink(bmeta);
}

static gboolean
storage_chain_finish(StorageOp *op, GError **error)
{
	g_autoptr(JsonObject) m = storage_meta_read(op->dir, op->location);

	if (m == NULL)
		m = storage_meta_new(op->location, op->location, "user");
	json_object_set_string_member(m, "parent", op->base);
	g_autofree char *path = storage_vdi_path(op->dir, op->location,
						 "qcow2");
	g_autofree char *fresh = storage_vdi_path(op->dir, op->fresh, "qcow2");
	g_chmod(path, 0600);
	g_chmod(fresh, 0600);
	return storage_meta_write(op->dir, op->location, m, error) &&
	       storage_meta_write(op->dir, op->fresh, op->meta, error);
}

void
storage_vdi_chain(const char *dir, const char *location,
		  const char *base_uuid, const char *new_uuid,
		  JsonObject *new_meta, StorageImgFn done, gpointer data)
{
	StorageOp *op = storage_op_new(dir, done, data);
	g_autofree char *path = storage_vdi_path(dir, location, "qcow2");
	g_autofree char *base = storage_vdi_path(dir, base_uuid, "qcow2");
	g_autofree char *fresh = storage_vdi_path(dir, new_uuid, "qcow2");
	g_autofree char *rel = g_strconcat(base_uuid, ".qcow2", NULL);
	GError *e = NULL;

	op->location = g_strdup(location);
	op->base = g_strdup(base_uuid);
	op->fresh = g_strdup(new_uuid);
	op->meta = json_object_ref(new_meta);
	if (path == NULL || base == NULL || fresh == NULL)
		return storage_op_fail(op, "bad VDI location");
	/* The base's metadata: the original's, hidden and read-only. */
	g_autoptr(JsonObject) bm = storage_meta_read(dir, location);
	if (bm == NULL)
		bm = storage_meta_new(location, location, "user");
	json_object_set_string_member(bm, "uuid", base_uuid);
	json_object_set_boolean_member(bm, "hidden", TRUE);
	json_object_set_boolean_member(bm, "read_only", TRUE);
	if (g_rename(path, base) != 0) {
		g_autofree char *msg = g_strdup_printf("rename %s: %s", path,
						       g_strerror(errno));
		return storage_op_fail(op, msg);
	}
	g_chmod(base, 0400);
	op->undo = storage_chain_undo;
	if (!storage_meta_write(dir, base_uuid, bm, &e)) {
		storage_chain_undo(op);
		storage_op_fail(op, e->message);
		g_error_free(e);
		return;
	}
	g_ptr_array_add(op->steps, storage_qcow2_create_argv(path, rel, -1));
	g_ptr_array_add(op->steps, storage_qcow2_create_argv(fresh, rel, -1));
	op->finish = storage_chain_finish;
	storage_op_step(op);
}

/* Deletes hidden bases that nothing leans on, until none is left. */
static void
storage_gc_bases(const char *dir)
{
	gboolean again = TRUE;

	while (again) {
		again = FALSE;
		g_autoptr(GPtrArray) all = storage_scan(dir, NULL);
		g_autoptr(GHashTable) used = g_hash_table_new(g_str_hash,
							      g_str_equal);
		for (guint i = 0; all && i < all->len; i++) {
			StorageVdi *v = all->pdata[i];
			const char *p = json_object_get_string_member_with_default(
				v->meta, "parent", "");
			if (*p)
				g_hash_table_add(used, (char *)p);
		}
		for (guint i = 0; all && i < all->len; i++) {
			StorageVdi *v = all->pdata[i];
			const char *uuid = json_object_get_string_member_with_default(
				v->meta, "uuid", "");
			if (!json_object_get_boolean_member_with_default(
				    v->meta, "hidden", FALSE) ||
			    g_hash_table_contains(used, uuid))
				continue;
			if (storage_vdi_delete(dir, v->location, v->format,
					       NULL))
				again = TRUE;
		}
	}
}

gboolean
storage_vdi_delete(const char *dir, const char *location, const char *format,
		   GError **error)
{
	g_autofree char *path = storage_vdi_path(dir, location, format);
	g_autofree char *meta = NULL;

	if (path == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "bad VDI location %s", location);
		return FALSE;
	}
	meta = storage_meta_path(dir, location);
	if (g_unlink(path) != 0 && errno != ENOENT) {
		g_propagate_error(error, storage_errno("cannot remove", path));
		return FALSE;
	}
	g_unlink(meta);
	storage_gc_bases(dir);
	return TRUE;
}
