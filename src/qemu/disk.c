/*
 * disk: -blockdev and -device arguments for a VM's disks (see disk.h).
 *
 * -blockdev takes JSON, so a path needs no comma escaping; json-glib
 * writes it.  discard=unmap and detect-zeroes=unmap keep a thin qcow2
 * thin (a guest's TRIM frees clusters; a written zero cluster stays
 * unallocated, which also keeps a mirrored copy sparse: STORAGE.md).
 *
 * Hot-plug is a short sequence of QMP commands per operation (the
 * sequences are below, at qemu_disk_attach() and its siblings), run by one
 * small engine, QemuDiskOp: each step is a QMP call, and a step that
 * succeeded may leave an undo step behind, so that when a later step fails
 * the ones before it are undone in reverse order (an attach whose
 * device_add fails does not leave its block node behind).  Every QMP call
 * has the client's deadline (qmp_set_timeout()); the one wait that depends
 * on the guest, for a device_del'd disk to go, polls qom-list with its own
 * deadline rather than listening for DEVICE_DELETED, because the driver's
 * event table belongs to migration.  Checked on QEMU 7.2:
 *
 *  - blockdev-del of the format node also deletes the file node that was
 *    created inline with it ("f-<id>"), which cannot be deleted by itself
 *    ("Failed to find node"); so each disk is one blockdev-del.
 *  - An ide-cd drive defined without a medium has an empty BlockBackend,
 *    so blockdev-open-tray (force: a guest may have locked the tray by
 *    mounting the disc), blockdev-insert-medium, blockdev-close-tray work
 *    with a node of our own name; blockdev-remove-medium on an empty drive
 *    succeeds.  blockdev-change-medium is not used: it opens the image
 *    itself with node names of QEMU's choosing.
 *  - A hot-plugged image is opened by ternd, not by QEMU: QEMU runs as
 *    [qemu] user, which may not open files of the SR.  The descriptor goes
 *    to an fdset of its own (add-fd with SCM_RIGHTS), blockdev-add names
 *    it "/dev/fdset/<n>" (QEMU dups a descriptor of the set with the same
 *    access mode), and remove-fd right after leaves QEMU only the dup,
 *    which blockdev-del closes.  Disks given at start are opened by QEMU
 *    before it drops to that user.
 */
#include "qemu/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "common/xerr.h"

QemuDisk *
qemu_disk_new(const char *id, const char *path, const char *format)
{
	QemuDisk *d = g_new0(QemuDisk, 1);

	d->id = g_strdup(id);
	d->path = g_strdup(path);
	d->format = g_strdup(format ? format : "qcow2");
	return d;
}

void
qemu_disk_free(QemuDisk *d)
{
	if (d == NULL)
		return;
	g_free(d->id);
	g_free(d->path);
	g_free(d->format);
	g_free(d);
}

/* -blockdev's (or blockdev-add's) JSON for D; its file node opens FILENAME
 * when not NULL (an fdset), else D's path. */
static JsonObject *
qemu_disk_blockdev_at(const QemuDisk *d, const char *filename)
{
	JsonObject *file = json_object_new();
	JsonObject *cache = json_object_new();
	JsonObject *fmt = json_object_new();
	g_autofree char *file_node = g_strdup_printf("f-%s", d->id);

	json_object_set_string_member(file, "driver", "file");
	json_object_set_string_member(file, "node-name", file_node);
	json_object_set_string_member(file, "filename",
				      filename ? filename : d->path);
	json_object_set_boolean_member(cache, "direct", d->cache_direct);
	json_object_set_object_member(file, "cache", cache);
	json_object_set_boolean_member(file, "read-only", d->read_only);
	if (!d->read_only)
		json_object_set_string_member(file, "discard", "unmap");

	json_object_set_string_member(fmt, "driver", d->format);
	json_object_set_string_member(fmt, "node-name", d->id);
	json_object_set_object_member(fmt, "file", file);
	json_object_set_boolean_member(fmt, "read-only", d->read_only);
	if (!d->read_only) {
		json_object_set_string_member(fmt, "discard", "unmap");
		json_object_set_string_member(fmt, "detect-zeroes", "unmap");
	}
	return fmt;
}

char *
qemu_disk_blockdev_json(const QemuDisk *d)
{
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(),
						      qemu_disk_blockdev_at(d, NULL));
	json_object_unref(json_node_get_object(n));
	return json_to_string(n, FALSE);
}

void
qemu_disk_argv(GPtrArray *disks, GPtrArray *argv)
{
	for (guint i = 0; disks && i < disks->len; i++) {
		const QemuDisk *d = disks->pdata[i];
		GString *dev = g_string_new(NULL);

		if (d->path != NULL) {
			g_ptr_array_add(argv, g_strdup("-blockdev"));
			g_ptr_array_add(argv, qemu_disk_blockdev_json(d));
		}
		g_string_append(dev, d->cdrom ? "ide-cd" : "virtio-blk-pci");
		g_string_append_printf(dev, ",id=dev-%s", d->id);
		if (d->path != NULL)
			g_string_append_printf(dev, ",drive=%s", d->id);
		if (d->bootindex > 0)
			g_string_append_printf(dev, ",bootindex=%d",
					       d->bootindex);
		g_ptr_array_add(argv, g_strdup("-device"));
		g_ptr_array_add(argv, g_string_free(dev, FALSE));
	}
}

/* ---- Hot-plug: the step engine ------------------------------------- */

/* How often a detach looks whether the guest let the device go. */
#define QEMU_DISK_POLL_MS 100

typedef enum {
	QEMU_DISK_STEP_CALL,      /* COMMAND (ARGS) */
	QEMU_DISK_STEP_WAIT_GONE, /* until op->device leaves /machine/peripheral */
	QEMU_DISK_STEP_FIND_MEDIUM, /* op->node := the node in op->device */
	QEMU_DISK_STEP_DEL_MEDIUM,  /* blockdev-del op->node, if any */
	QEMU_DISK_STEP_ADD_FD,    /* add-fd ARGS with PATH opened (FLAGS) */
} QemuDiskStepKind;

typedef struct QemuDiskStep {
	QemuDiskStepKind kind;
	const char *command;
	JsonObject *args;         /* owned; NULL: none */
	char *path;               /* ADD_FD: the file to open */
	int flags;                /* ADD_FD: open(2) flags */
	struct QemuDiskStep *undo; /* owned: queued once this step succeeded */
} QemuDiskStep;

typedef struct {
	Qmp *qmp;                 /* a reference */
	char *what;               /* "attach vbd1": the messages' subject */
	char *device;             /* "dev-<id>" */
	char *node;               /* FIND_MEDIUM's result, or NULL */
	GPtrArray *steps;         /* QemuDiskStep, run in order */
	guint next;
	GPtrArray *undo;          /* QemuDiskStep, run last first on failure */
	gboolean undoing;
	GError *error;            /* the first failure: what DONE gets */
	guint timeout_ms;         /* WAIT_GONE's deadline */
	gint64 deadline;          /* monotonic us, set when WAIT_GONE starts */
	GSource *timer;
	GMainContext *ctx;
	QemuDiskDoneFn done;
	gpointer data;
} QemuDiskOp;

static void qemu_disk_op_next(QemuDiskOp *op);

static void
qemu_disk_step_free(QemuDiskStep *st)
{
	if (st == NULL)
		return;
	if (st->args != NULL)
		json_object_unref(st->args);
	g_free(st->path);
	qemu_disk_step_free(st->undo);
	g_free(st);
}

/* A new step; takes ownership of ARGS. */
static QemuDiskStep *
qemu_disk_step_new(QemuDiskStepKind kind, const char *command,
		   JsonObject *args)
{
	QemuDiskStep *st = g_new0(QemuDiskStep, 1);

	st->kind = kind;
	st->command = command;
	st->args = args;
	return st;
}

static JsonObject *
qemu_disk_args(const char *key, const char *value, ...)
{
	JsonObject *o = json_object_new();
	va_list ap;

	va_start(ap, value);
	while (key != NULL) {
		json_object_set_string_member(o, key, value);
		key = va_arg(ap, const char *);
		if (key != NULL)
			value = va_arg(ap, const char *);
	}
	va_end(ap);
	return o;
}

/* Appends a QMP call; takes ownership of ARGS.  Returns the step, so
 * that an undo can be hung on it. */
static QemuDiskStep *
qemu_disk_op_call(QemuDiskOp *op, const char *command, JsonObject *args)
{
	QemuDiskStep *st = qemu_disk_step_new(QEMU_DISK_STEP_CALL, command,
					      args);

	g_ptr_array_add(op->steps, st);
	return st;
}

static QemuDiskOp *
qemu_disk_op_new(Qmp *qmp, const char *verb, const char *id,
		 QemuDiskDoneFn done, gpointer data)
{
	QemuDiskOp *op = g_new0(QemuDiskOp, 1);

	op->qmp = qmp != NULL ? qmp_ref(qmp) : NULL;
	op->what = g_strdup_printf("%s %s", verb, id ? id : "(null)");
	op->device = g_strdup_printf("dev-%s", id ? id : "");
	op->steps = g_ptr_array_new_with_free_func(
		(GDestroyNotify)qemu_disk_step_free);
	op->undo = g_ptr_array_new();
	op->ctx = g_main_context_ref_thread_default();
	op->done = done;
	op->data = data;
	return op;
}

static void
qemu_disk_op_free(QemuDiskOp *op)
{
	if (op->timer != NULL) {
		g_source_destroy(op->timer);
		g_source_unref(op->timer);
	}
	g_clear_pointer(&op->qmp, qmp_unref);
	g_free(op->what);
	g_free(op->device);
	g_free(op->node);
	g_ptr_array_unref(op->undo); /* borrowed from STEPS */
	g_ptr_array_unref(op->steps);
	g_clear_error(&op->error);
	g_main_context_unref(op->ctx);
	g_free(op);
}

/* Records the operation's first failure (later ones, from undo steps, are
 * dropped: the caller needs the cause). */
static void
qemu_disk_op_fail(QemuDiskOp *op, const char *code, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	if (op->error != NULL)
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	op->error = xerr_new(code, msg, NULL);
}

static gboolean
qemu_disk_op_idle(gpointer user_data)
{
	QemuDiskOp *op = user_data;

	g_source_unref(op->timer);
	op->timer = NULL;
	qemu_disk_op_next(op);
	return G_SOURCE_REMOVE;
}

/* Runs qemu_disk_op_next() from the main loop after DELAY_MS, so that DONE
 * is never called from inside the call that started the operation. */
static void
qemu_disk_op_later(QemuDiskOp *op, guint delay_ms)
{
	op->timer = delay_ms ? g_timeout_source_new(delay_ms)
			     : g_idle_source_new();
	g_source_set_callback(op->timer, qemu_disk_op_idle, op, NULL);
	g_source_attach(op->timer, op->ctx);
}

static void
qemu_disk_op_finish(QemuDiskOp *op)
{
	op->done(op->error, op->data);
	qemu_disk_op_free(op);
}

static gboolean
qemu_disk_peripheral_has(JsonNode *ret, const char *device)
{
	JsonArray *a;

	if (ret == NULL || !JSON_NODE_HOLDS_ARRAY(ret))
		return FALSE;
	a = json_node_get_array(ret);
	for (guint i = 0; i < json_array_get_length(a); i++) {
		JsonNode *n = json_array_get_element(a, i);
		const char *name;

		if (!JSON_NODE_HOLDS_OBJECT(n))
			continue;
		name = json_object_get_string_member_with_default(
			json_node_get_object(n), "name", NULL);
		if (g_strcmp0(name, device) == 0)
			return TRUE;
	}
	return FALSE;
}

/* query-block's entry for DEVICE (its "qdev" is the id, or a QOM path
 * ending in it), or NULL. */
static JsonObject *
qemu_disk_block_entry(JsonNode *ret, const char *device)
{
	g_autofree char *suffix = g_strdup_printf("/%s", device);
	JsonArray *a;

	if (ret == NULL || !JSON_NODE_HOLDS_ARRAY(ret))
		return NULL;
	a = json_node_get_array(ret);
	for (guint i = 0; i < json_array_get_length(a); i++) {
		JsonNode *n = json_array_get_element(a, i);
		const char *qdev;

		if (!JSON_NODE_HOLDS_OBJECT(n))
			continue;
		qdev = json_object_get_string_member_with_default(
			json_node_get_object(n), "qdev", NULL);
		if (qdev != NULL && (strcmp(qdev, device) == 0 ||
				     g_str_has_suffix(qdev, suffix)))
			return json_node_get_object(n);
	}
	return NULL;
}

static void
qemu_disk_op_reply(Qmp *qmp, JsonNode *ret, const GError *error,
		   gpointer user_data)
{
	QemuDiskOp *op = user_data;
	QemuDiskStep *st;

	(void)qmp;
	if (op->undoing) {
		/* An undo that fails is not the cause; go on undoing. */
		qemu_disk_op_next(op);
		return;
	}
	st = op->steps->pdata[op->next];
	if (error != NULL && st->command != NULL &&
	    strcmp(st->command, "blockdev-del") == 0 &&
	    strstr(error->message, "is in use") != NULL &&
	    op->deadline != 0 && g_get_monotonic_time() < op->deadline) {
		/* The device left /machine/peripheral, but QEMU lets go of
		 * its block backend a moment later (seen under ASan): ask
		 * again, within the detach's deadline. */
		qemu_disk_op_later(op, QEMU_DISK_POLL_MS);
		return;
	}
	if (error != NULL) {
		qemu_disk_op_fail(op, "INTERNAL_ERROR", "%s: %s: %s", op->what,
				  st->command ? st->command : "query",
				  error->message);
		op->undoing = TRUE;
		qemu_disk_op_next(op);
		return;
	}
	switch (st->kind) {
	case QEMU_DISK_STEP_WAIT_GONE:
		if (qemu_disk_peripheral_has(ret, op->device)) {
			if (g_get_monotonic_time() >= op->deadline) {
				/* XAPI's DEVICE_DETACH_TIMEOUT [type, ref];
				 * the caller knows the ref, this layer
				 * gives the disk's id. */
				op->error = xerr_new("DEVICE_DETACH_TIMEOUT",
						     "VBD", op->device + 4,
						     NULL);
				op->undoing = TRUE;
				qemu_disk_op_next(op);
				return;
			}
			qemu_disk_op_later(op, QEMU_DISK_POLL_MS);
			return;
		}
		break;
	case QEMU_DISK_STEP_FIND_MEDIUM: {
		JsonObject *e = qemu_disk_block_entry(ret, op->device);
		JsonObject *ins;
		JsonNode *n;
		const char *name;

		if (e == NULL) {
			qemu_disk_op_fail(op, "INTERNAL_ERROR",
					  "%s: QEMU has no drive %s", op->what,
					  op->device);
			op->undoing = TRUE;
			qemu_disk_op_next(op);
			return;
		}
		n = json_object_get_member(e, "inserted");
		ins = n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n)
						     : NULL;
		name = ins ? json_object_get_string_member_with_default(
			ins, "node-name", NULL) : NULL;
		op->node = g_strdup(name);
		break;
	}
	default:
		break;
	}
	if (st->undo != NULL)
		g_ptr_array_add(op->undo, st->undo);
	op->next++;
	qemu_disk_op_next(op);
}

/* Sends the next step (or the next undo step, when undoing), or ends. */
static void
qemu_disk_op_next(QemuDiskOp *op)
{
	QemuDiskStep *st;

	if (op->undoing) {
		if (op->undo->len == 0) {
			qemu_disk_op_finish(op);
			return;
		}
		st = g_ptr_array_steal_index(op->undo, op->undo->len - 1);
		qmp_call(op->qmp, st->command, st->args, qemu_disk_op_reply, op);
		return;
	}
	if (op->next == op->steps->len) {
		qemu_disk_op_finish(op);
		return;
	}
	st = op->steps->pdata[op->next];
	switch (st->kind) {
	case QEMU_DISK_STEP_CALL:
		qmp_call(op->qmp, st->command, st->args, qemu_disk_op_reply, op);
		break;
	case QEMU_DISK_STEP_WAIT_GONE: {
		g_autoptr(JsonObject) a = qemu_disk_args("path",
			"/machine/peripheral", NULL);

		if (op->deadline == 0)
			op->deadline = g_get_monotonic_time() +
				       (gint64)op->timeout_ms * 1000;
		qmp_call(op->qmp, "qom-list", a, qemu_disk_op_reply, op);
		break;
	}
	case QEMU_DISK_STEP_FIND_MEDIUM:
		qmp_call(op->qmp, "query-block", NULL, qemu_disk_op_reply, op);
		break;
	case QEMU_DISK_STEP_DEL_MEDIUM: {
		g_autoptr(JsonObject) a = NULL;

		if (op->node == NULL) {
			op->next++;
			qemu_disk_op_next(op);
			return;
		}
		a = qemu_disk_args("node-name", op->node, NULL);
		qmp_call(op->qmp, "blockdev-del", a, qemu_disk_op_reply, op);
		break;
	}
	case QEMU_DISK_STEP_ADD_FD: {
		int fd = open(st->path, st->flags);

		if (fd < 0) {
			int err = errno;

			qemu_disk_op_fail(op, "INTERNAL_ERROR", "%s: open %s: %s",
					  op->what, st->path, g_strerror(err));
			op->undoing = TRUE;
			qemu_disk_op_next(op);
			return;
		}
		qmp_call_with_fd(op->qmp, "add-fd", st->args, fd,
				 qemu_disk_op_reply, op);
		close(fd);
		break;
	}
	}
}

/* A QEMU id as tern makes them ("vbd3"): a letter, then letters, digits,
 * '-', '_' or '.'; QEMU's own rule for -device and node names. */
static gboolean
qemu_disk_id_valid(const char *id)
{
	if (id == NULL || !g_ascii_isalpha(id[0]) || strlen(id) > 63)
		return FALSE;
	for (const char *p = id; *p; p++)
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
			return FALSE;
	return TRUE;
}

/* Starts OP unless a precondition failed, in which case DONE gets the
 * error from the main loop (never from inside the caller). */
static void
qemu_disk_op_start(QemuDiskOp *op)
{
	if (op->error == NULL && (op->qmp == NULL || !qmp_is_open(op->qmp)))
		qemu_disk_op_fail(op, "INTERNAL_ERROR",
				  "%s: no QMP connection to QEMU", op->what);
	if (op->error != NULL)
		op->undoing = TRUE; /* nothing to undo: finishes */
	qemu_disk_op_later(op, 0);
}

static void
qemu_disk_op_check_disk(QemuDiskOp *op, const QemuDisk *d, gboolean cdrom)
{
	if (d == NULL || !qemu_disk_id_valid(d->id))
		xerr_set(&op->error, "INVALID_VALUE", "id",
			 d && d->id ? d->id : "", NULL);
	else if (d->path == NULL || d->path[0] != '/')
		xerr_set(&op->error, "INVALID_VALUE", "path",
			 d->path ? d->path : "", NULL);
	else if (g_strcmp0(d->format, "qcow2") != 0 &&
		 g_strcmp0(d->format, "raw") != 0)
		xerr_set(&op->error, "INVALID_VALUE", "format",
			 d->format ? d->format : "", NULL);
	else if (!d->cdrom != !cdrom)
		xerr_set(&op->error, "INVALID_VALUE", "cdrom",
			 d->cdrom ? "true" : "false", NULL);
}

/* ---- Hot-plug: the sequences ---------------------------------------- */

/* The undo of a blockdev-add: blockdev-del of the format node (its file
 * node goes with it). */
static QemuDiskStep *
qemu_disk_undo_add(const char *id)
{
	return qemu_disk_step_new(QEMU_DISK_STEP_CALL, "blockdev-del",
				  qemu_disk_args("node-name", id, NULL));
}

/* Appends D's blockdev-add, fed by a descriptor ternd opens (see the top
 * of the file): add-fd (undo: remove-fd), blockdev-add of /dev/fdset/<n>
 * (undo: blockdev-del), remove-fd. */
static void
qemu_disk_op_add_node(QemuDiskOp *op, const QemuDisk *d)
{
	/* One fdset per hot-plug, never reused: ids need only be unique
	 * within a QEMU, and removed sets are gone from it. */
	static gint64 next_fdset = 1000;
	gint64 set = next_fdset++; /* the main loop's thread only */
	g_autofree char *filename = g_strdup_printf("/dev/fdset/%" G_GINT64_FORMAT,
						    set);
	g_autofree char *opaque = g_strdup_printf("tern:%s", d->id);
	QemuDiskStep *st = qemu_disk_step_new(QEMU_DISK_STEP_ADD_FD, "add-fd",
					      qemu_disk_args("opaque", opaque,
							     NULL));
	JsonObject *rm;

	json_object_set_int_member(st->args, "fdset-id", set);
	st->path = g_strdup(d->path);
	st->flags = (d->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC |
		    (d->cache_direct ? O_DIRECT : 0);
	rm = json_object_new();
	json_object_set_int_member(rm, "fdset-id", set);
	st->undo = qemu_disk_step_new(QEMU_DISK_STEP_CALL, "remove-fd",
				      json_object_ref(rm));
	g_ptr_array_add(op->steps, st);
	st = qemu_disk_op_call(op, "blockdev-add",
			       qemu_disk_blockdev_at(d, filename));
	st->undo = qemu_disk_undo_add(d->id);
	qemu_disk_op_call(op, "remove-fd", rm);
}

/*
 * attach:  add-fd <the image, opened by ternd>               undo: remove-fd
 *          blockdev-add <format node with its file node>   undo: blockdev-del
 *          remove-fd
 *          device_add virtio-blk-pci id=dev-<id> drive=<id>
 */
void
qemu_disk_attach(Qmp *qmp, const QemuDisk *d, QemuDiskDoneFn done,
		 gpointer data)
{
	QemuDiskOp *op = qemu_disk_op_new(qmp, "attach", d ? d->id : NULL,
					  done, data);
	JsonObject *dev;

	qemu_disk_op_check_disk(op, d, FALSE);
	if (op->error == NULL) {
		qemu_disk_op_add_node(op, d);
		dev = qemu_disk_args("driver", "virtio-blk-pci",
				     "id", op->device, "drive", d->id, NULL);
		if (d->bootindex > 0)
			json_object_set_int_member(dev, "bootindex",
						   d->bootindex);
		qemu_disk_op_call(op, "device_add", dev);
	}
	qemu_disk_op_start(op);
}

/*
 * detach:  device_del dev-<id>
 *          qom-list /machine/peripheral until dev-<id> is gone (TIMEOUT_MS)
 *          blockdev-del <id>
 */
void
qemu_disk_detach_full(Qmp *qmp, const char *id, guint timeout_ms,
		      QemuDiskDoneFn done, gpointer data)
{
	QemuDiskOp *op = qemu_disk_op_new(qmp, "detach", id, done, data);

	op->timeout_ms = timeout_ms;
	if (!qemu_disk_id_valid(id))
		xerr_set(&op->error, "INVALID_VALUE", "id", id ? id : "", NULL);
	if (op->error == NULL) {
		qemu_disk_op_call(op, "device_del",
				  qemu_disk_args("id", op->device, NULL));
		g_ptr_array_add(op->steps, qemu_disk_step_new(
			QEMU_DISK_STEP_WAIT_GONE, "qom-list", NULL));
		qemu_disk_op_call(op, "blockdev-del",
				  qemu_disk_args("node-name", id, NULL));
	}
	qemu_disk_op_start(op);
}

void
qemu_disk_detach(Qmp *qmp, const char *id, QemuDiskDoneFn done,
		 gpointer data)
{
	qemu_disk_detach_full(qmp, id, QEMU_DISK_DETACH_TIMEOUT_MS, done,
			      data);
}

static JsonObject *
qemu_disk_tray_args(const char *device, gboolean force)
{
	JsonObject *o = qemu_disk_args("id", device, NULL);

	if (force)
		json_object_set_boolean_member(o, "force", TRUE);
	return o;
}

/*
 * cd_insert:  add-fd, blockdev-add <id> (read-only), remove-fd (as attach)
 *             blockdev-open-tray dev-<id> force      undo: blockdev-close-tray
 *             blockdev-insert-medium dev-<id> <id>   undo: blockdev-remove-medium
 *             blockdev-close-tray dev-<id>
 * A drive that holds a medium already fails at insert-medium (eject
 * first).
 */
void
qemu_disk_cd_insert(Qmp *qmp, const QemuDisk *d, QemuDiskDoneFn done,
		    gpointer data)
{
	QemuDiskOp *op = qemu_disk_op_new(qmp, "insert", d ? d->id : NULL,
					  done, data);
	QemuDiskStep *st;

	qemu_disk_op_check_disk(op, d, TRUE);
	if (op->error == NULL) {
		QemuDisk ro = *d;

		ro.read_only = TRUE; /* a CD, whatever the caller said */
		qemu_disk_op_add_node(op, &ro);
		st = qemu_disk_op_call(op, "blockdev-open-tray",
				       qemu_disk_tray_args(op->device, TRUE));
		st->undo = qemu_disk_step_new(QEMU_DISK_STEP_CALL,
			"blockdev-close-tray",
			qemu_disk_tray_args(op->device, FALSE));
		st = qemu_disk_op_call(op, "blockdev-insert-medium",
				       qemu_disk_args("id", op->device,
						      "node-name", d->id,
						      NULL));
		st->undo = qemu_disk_step_new(QEMU_DISK_STEP_CALL,
			"blockdev-remove-medium",
			qemu_disk_args("id", op->device, NULL));
		qemu_disk_op_call(op, "blockdev-close-tray",
				  qemu_disk_tray_args(op->device, FALSE));
	}
	qemu_disk_op_start(op);
}

/*
 * cd_eject:  query-block: the node in dev-<id>, if any
 *            blockdev-open-tray dev-<id> force
 *            blockdev-remove-medium dev-<id>
 *            blockdev-close-tray dev-<id>
 *            blockdev-del <that node>, if there was one
 * Ejecting an empty drive succeeds.
 */
void
qemu_disk_cd_eject(Qmp *qmp, const char *id, QemuDiskDoneFn done,
		   gpointer data)
{
	QemuDiskOp *op = qemu_disk_op_new(qmp, "eject", id, done, data);

	if (!qemu_disk_id_valid(id))
		xerr_set(&op->error, "INVALID_VALUE", "id", id ? id : "", NULL);
	if (op->error == NULL) {
		g_ptr_array_add(op->steps, qemu_disk_step_new(
			QEMU_DISK_STEP_FIND_MEDIUM, "query-block", NULL));
		qemu_disk_op_call(op, "blockdev-open-tray",
				  qemu_disk_tray_args(op->device, TRUE));
		qemu_disk_op_call(op, "blockdev-remove-medium",
				  qemu_disk_args("id", op->device, NULL));
		qemu_disk_op_call(op, "blockdev-close-tray",
				  qemu_disk_tray_args(op->device, FALSE));
		g_ptr_array_add(op->steps, qemu_disk_step_new(
			QEMU_DISK_STEP_DEL_MEDIUM, "blockdev-del", NULL));
	}
	qemu_disk_op_start(op);
}
