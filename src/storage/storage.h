/*
 * storage: SR drivers and VDI files, below the API.
 *
 * One driver today, `file` (a directory of qcow2 images, like XAPI's
 * FileSR); a shared SR is the same layout in a directory several hosts
 * see.  The directory describes itself, so that SR.introduce and SR.scan
 * can rebuild the records from it alone:
 *
 *   <dir>/.tern-sr.json           {"sr_uuid": ..., "format_version": 1}
 *   <dir>/<vdi-uuid>.qcow2        a qcow2 VDI; its location is <vdi-uuid>
 *   <dir>/<name>                  a raw VDI (boot files); location <name>
 *   <dir>/.meta/<location>.json   uuid, name, type, parent, ...
 *
 * This layer knows files and qemu-img only; it never reads an api/ record.
 * The API (src/api/sr.c, vdi.c) turns what it returns into records.
 * qemu-img runs as a child process off the main loop (storage_img_run)
 * with a deadline; the few calls that run before the main loop (the
 * startup fix-up) use storage_img_run_sync.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#define STORAGE_SR_FILE ".tern-sr.json"
#define STORAGE_META_DIR ".meta"
#define STORAGE_FORMAT_VERSION 1
/* A qemu-img call that takes longer than this is killed. */
#define STORAGE_IMG_TIMEOUT_S 120

/* ---- qemu-img (img.c) --------------------------------------------------- */

/* Called once with qemu-img's stdout (NULL on error) or the error. */
typedef void (*StorageImgFn)(const char *out, const GError *error,
			     gpointer data);
/* Runs ARGV (qemu-img and its arguments) asynchronously; DONE runs from
 * the main loop.  A non-zero exit is an error with qemu-img's stderr. */
void storage_img_run(const char *const *argv, guint timeout_s,
		     StorageImgFn done, gpointer data);
/* The same, blocking: for startup only.  Returns stdout or NULL. */
char *storage_img_run_sync(const char *const *argv, GError **error);

/* ---- SR directories (file.c) ------------------------------------------- */

/* Makes DIR an SR of SR_UUID: creates it and .meta, writes the identity.
 * Fails when DIR already belongs to another SR. */
gboolean storage_sr_format(const char *dir, const char *sr_uuid,
			   GError **error);
/* The SR uuid DIR's identity file names, or NULL (with ERROR). */
char *storage_sr_read_uuid(const char *dir, GError **error);
/* statvfs of DIR: total bytes, bytes used and bytes free to us. */
gboolean storage_sr_sizes(const char *dir, gint64 *total, gint64 *used,
			  gint64 *avail, GError **error);
/* Removes every VDI file, the metadata and the identity of DIR, then DIR
 * itself if it is left empty. */
gboolean storage_sr_wipe(const char *dir, GError **error);

/* ---- VDIs (file.c) ----------------------------------------------------- */

typedef struct {
	char *location;     /* <uuid> for qcow2, the file name for raw */
	char *format;       /* "qcow2" or "raw" */
	JsonObject *meta;   /* .meta/<location>.json (made if missing) */
	gint64 virtual_size;
	gint64 physical_utilisation;
} StorageVdi;
void storage_vdi_free(StorageVdi *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StorageVdi, storage_vdi_free)

/* The image file of LOCATION in DIR (a new string), or NULL when
 * LOCATION is not a plain file name (no '/', not "." or "..", no leading
 * '.'). */
char *storage_vdi_path(const char *dir, const char *location,
		       const char *format);
gboolean storage_location_ok(const char *location);
/* The metadata of LOCATION, or NULL when it has none. */
JsonObject *storage_meta_read(const char *dir, const char *location);
gboolean storage_meta_write(const char *dir, const char *location,
			    JsonObject *meta, GError **error);
/* Every VDI file of DIR (StorageVdi), hidden bases included (their meta
 * says "hidden": true).  A file without metadata gets some, with a new
 * uuid (qcow2 files keep the uuid of their name), and is written back. */
GPtrArray *storage_scan(const char *dir, GError **error);
/* The sizes of one VDI file: virtual size (qcow2 header or file size) and
 * allocated bytes (st_blocks). */
gboolean storage_vdi_sizes(const char *path, const char *format,
			   gint64 *virtual_size, gint64 *physical,
			   GError **error);

/* Whether the image of LOCATION may be given to QEMU: a qcow2's backing
 * chain must stay inside DIR (each backing file a plain "<name>.qcow2"
 * there, at most 64 deep) and use no external data file, since QEMU
 * opens whatever an image's header names.  Raw files always pass. */
gboolean storage_vdi_chain_ok(const char *dir, const char *location,
			      const char *format, GError **error);
/* Creates <dir>/<uuid>.qcow2 of SIZE bytes (qemu-img create, compat=1.1,
 * cluster_size=64k) and its metadata META (not taken). */
void storage_vdi_create(const char *dir, const char *uuid, gint64 size,
			JsonObject *meta, StorageImgFn done, gpointer data);
/* Grows a VDI to SIZE (qemu-img resize, or truncate for raw). */
void storage_vdi_resize(const char *dir, const char *location,
			const char *format, gint64 size, StorageImgFn done,
			gpointer data);
/* Snapshot and clone: LOCATION's file becomes the hidden read-only base
 * BASE_UUID, LOCATION gets a fresh overlay on it (its location stays)
 * and NEW_UUID another overlay, with NEW_META (not taken).  On failure
 * the original file is put back. */
void storage_vdi_chain(const char *dir, const char *location,
		       const char *base_uuid, const char *new_uuid,
		       JsonObject *new_meta, StorageImgFn done,
		       gpointer data);
/* Removes LOCATION's file and metadata, then every hidden base no VDI
 * leans on any more. */
gboolean storage_vdi_delete(const char *dir, const char *location,
			    const char *format, GError **error);
