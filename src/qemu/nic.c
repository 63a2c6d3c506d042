/*
 * nic: -netdev/-device arguments and QMP hot-plug of a VM's NICs (see
 * nic.h).
 *
 * Attach and detach are short chains of QMP calls; one NicOp carries a
 * chain from step to step and holds a reference on the Qmp so that a
 * QEMU going away mid-chain only fails the next call.  A failed step
 * undoes the steps before it (netdev_del after a failed device_add,
 * closefd after a failed netdev_add), so QEMU keeps nothing half made.
 */
#include "qemu/nic.h"

#include <string.h>
#include <unistd.h>

#include "common/xerr.h"

#define QEMU_NIC_POLL_MS 100

QemuNic *
qemu_nic_new(const char *id, int fd, const char *mac, int mtu)
{
	QemuNic *n = g_new0(QemuNic, 1);

	n->id = g_strdup(id);
	n->fd = fd;
	n->mac = g_strdup(mac);
	n->mtu = mtu;
	return n;
}

void
qemu_nic_free(QemuNic *n)
{
	if (n == NULL)
		return;
	if (n->fd >= 0)
		close(n->fd);
	g_free(n->id);
	g_free(n->mac);
	g_free(n);
}

char *
qemu_nic_device_str(const QemuNic *n)
{
	GString *s = g_string_new(NULL);

	g_string_append_printf(s, "virtio-net-pci,netdev=net-%s,id=%s,mac=%s",
			       n->id, n->id, n->mac);
	if (n->mtu > 0 && n->mtu != 1500)
		g_string_append_printf(s, ",host_mtu=%d", n->mtu);
	return g_string_free(s, FALSE);
}

void
qemu_nic_argv(GPtrArray *nics, GPtrArray *argv)
{
	for (guint i = 0; nics && i < nics->len; i++) {
		const QemuNic *n = nics->pdata[i];

		g_ptr_array_add(argv, g_strdup("-netdev"));
		g_ptr_array_add(argv, g_strdup_printf("tap,id=net-%s,fd=%u",
			n->id, QEMU_NIC_FIRST_FD + i));
		g_ptr_array_add(argv, g_strdup("-device"));
		g_ptr_array_add(argv, qemu_nic_device_str(n));
	}
}

/* ---- Hot-plug ------------------------------------------------------- */

typedef struct {
	Qmp *qmp;
	char *id;
	char *mac;
	int mtu;
	GError *error;            /* the first failure, while undoing */
	gint64 deadline_us;
	guint poll_id;
	QemuNicDoneFn done;
	gpointer data;
} NicOp;

static NicOp *
nic_op_new(Qmp *qmp, const char *id, QemuNicDoneFn done, gpointer data)
{
	NicOp *op = g_new0(NicOp, 1);

	op->qmp = qmp_ref(qmp);
	op->id = g_strdup(id);
	op->done = done;
	op->data = data;
	return op;
}

static void
nic_op_finish(NicOp *op, GError *error /* takes */)
{
	if (error == NULL)
		error = g_steal_pointer(&op->error);
	op->done(error, op->data);
	g_clear_error(&error);
	g_clear_error(&op->error);
	qmp_unref(op->qmp);
	g_free(op->id);
	g_free(op->mac);
	g_free(op);
}

static GError *
nic_qmp_error(const char *cmd, const char *id, const GError *e)
{
	g_autofree char *msg = g_strdup_printf("QMP %s %s: %s", cmd, id,
					       e->message);

	return xerr_new("INTERNAL_ERROR", msg, NULL);
}

static JsonObject *
nic_args(const char *key, const char *value)
{
	JsonObject *o = json_object_new();

	json_object_set_string_member(o, key, value);
	return o;
}

static void
nic_call(NicOp *op, const char *cmd, JsonObject *args /* takes */,
	 QmpReplyFn fn)
{
	qmp_call(op->qmp, cmd, args, fn, op);
	if (args)
		json_object_unref(args);
}

/* The end of an undo step: the error reported is the step's that failed
 * (op->error), whatever the undo's own outcome. */
static void
nic_undo_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	nic_op_finish(data, NULL);
}

static void
nic_device_add_done(Qmp *qmp, JsonNode *ret, const GError *error,
		    gpointer data)
{
	NicOp *op = data;
	g_autofree char *netdev = g_strdup_printf("net-%s", op->id);

	if (error == NULL)
		return nic_op_finish(op, NULL);
	op->error = nic_qmp_error("device_add", op->id, error);
	nic_call(op, "netdev_del", nic_args("id", netdev), nic_undo_done);
}

static void
nic_netdev_add_done(Qmp *qmp, JsonNode *ret, const GError *error,
		    gpointer data)
{
	NicOp *op = data;
	g_autofree char *fdname = g_strdup_printf("fd-%s", op->id);
	g_autofree char *netdev = g_strdup_printf("net-%s", op->id);

	if (error != NULL) {
		op->error = nic_qmp_error("netdev_add", op->id, error);
		return nic_call(op, "closefd", nic_args("fdname", fdname),
				nic_undo_done);
	}
	JsonObject *a = json_object_new();
	json_object_set_string_member(a, "driver", "virtio-net-pci");
	json_object_set_string_member(a, "id", op->id);
	json_object_set_string_member(a, "netdev", netdev);
	json_object_set_string_member(a, "mac", op->mac);
	if (op->mtu > 0 && op->mtu != 1500)
		json_object_set_int_member(a, "host_mtu", op->mtu);
	nic_call(op, "device_add", a, nic_device_add_done);
}

static void
nic_getfd_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	NicOp *op = data;
	g_autofree char *fdname = g_strdup_printf("fd-%s", op->id);
	g_autofree char *netdev = g_strdup_printf("net-%s", op->id);

	if (error != NULL)
		return nic_op_finish(op, nic_qmp_error("getfd", op->id,
						       error));
	JsonObject *a = json_object_new();
	json_object_set_string_member(a, "type", "tap");
	json_object_set_string_member(a, "id", netdev);
	json_object_set_string_member(a, "fd", fdname);
	nic_call(op, "netdev_add", a, nic_netdev_add_done);
}

void
qemu_nic_attach(Qmp *qmp, const QemuNic *n, QemuNicDoneFn done,
		gpointer data)
{
	NicOp *op = nic_op_new(qmp, n->id, done, data);
	g_autofree char *fdname = g_strdup_printf("fd-%s", n->id);
	JsonObject *a = nic_args("fdname", fdname);

	op->mac = g_strdup(n->mac);
	op->mtu = n->mtu;
	qmp_call_with_fd(qmp, "getfd", a, n->fd, nic_getfd_done, op);
	json_object_unref(a);
}

/* Whether E says the device or netdev is not there (gone already). */
static gboolean
nic_not_found(const GError *e)
{
	return g_strcmp0(qmp_error_get_class(e), "DeviceNotFound") == 0;
}

static void
nic_netdev_del_done(Qmp *qmp, JsonNode *ret, const GError *error,
		    gpointer data)
{
	NicOp *op = data;

	if (error != NULL && !nic_not_found(error))
		return nic_op_finish(op, nic_qmp_error("netdev_del", op->id,
						       error));
	nic_op_finish(op, NULL);
}

static void nic_poll_done(Qmp *qmp, JsonNode *ret, const GError *error,
			  gpointer data);

static gboolean
nic_poll(gpointer data)
{
	NicOp *op = data;

	op->poll_id = 0;
	nic_call(op, "qom-list", nic_args("path", "/machine/peripheral"),
		 nic_poll_done);
	return G_SOURCE_REMOVE;
}

/* Whether /machine/peripheral (RET of qom-list) still holds ID. */
static gboolean
nic_peripheral_has(JsonNode *ret, const char *id)
{
	JsonArray *a = ret && JSON_NODE_HOLDS_ARRAY(ret)
			       ? json_node_get_array(ret)
			       : NULL;

	for (guint i = 0; a && i < json_array_get_length(a); i++) {
		JsonObject *o = json_array_get_object_element(a, i);
		if (o && g_strcmp0(json_object_get_string_member_with_default(
					   o, "name", ""), id) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
nic_poll_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	NicOp *op = data;
	g_autofree char *netdev = g_strdup_printf("net-%s", op->id);

	if (error != NULL)
		return nic_op_finish(op, nic_qmp_error("qom-list", op->id,
						       error));
	if (nic_peripheral_has(ret, op->id)) {
		if (g_get_monotonic_time() > op->deadline_us) {
			g_autofree char *msg = g_strdup_printf(
				"device_del %s: the guest did not release the "
				"device in time", op->id);
			return nic_op_finish(op, xerr_new("INTERNAL_ERROR",
							  msg, NULL));
		}
		op->poll_id = g_timeout_add(QEMU_NIC_POLL_MS, nic_poll, op);
		return;
	}
	nic_call(op, "netdev_del", nic_args("id", netdev),
		 nic_netdev_del_done);
}

static void
nic_device_del_done(Qmp *qmp, JsonNode *ret, const GError *error,
		    gpointer data)
{
	NicOp *op = data;

	/* A detach that timed out before (a paused or slow guest) left its
	 * device_del pending, or done: either way, wait for the device to be
	 * gone and remove the netdev, so that a second unplug finishes the
	 * first. */
	if (error != NULL && !nic_not_found(error) &&
	    !strstr(error->message, "in the process of unplug"))
		return nic_op_finish(op, nic_qmp_error("device_del", op->id,
						       error));
	nic_poll(op);
}

void
qemu_nic_detach(Qmp *qmp, const char *id, guint deadline_ms,
		QemuNicDoneFn done, gpointer data)
{
	NicOp *op = nic_op_new(qmp, id, done, data);

	op->deadline_us = g_get_monotonic_time() + (gint64)deadline_ms * 1000;
	nic_call(op, "device_del", nic_args("id", id), nic_device_del_done);
}
