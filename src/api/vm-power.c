/*
 * vm-power: the VM power operations, XAPI's way.
 *
 * The power state machine (XAPI's, without Suspended):
 *
 *            start                 pause
 *   Halted ---------> Running <------------> Paused
 *      ^     (start_paused: -> Paused)  unpause  |
 *      |                 |                       |
 *      +-- hard_shutdown, clean_shutdown, QEMU exit
 *
 * power_state itself follows QEMU: the driver sets it from QMP events
 * (STOP, RESUME, the monitor's hang-up), so it is true even when the
 * guest or a signal changes it.  What this file adds is the policy: each
 * operation checks the state it needs (VM_BAD_POWER_STATE), takes the VM's
 * one operation slot in current_operations (OTHER_OPERATION_IN_PROGRESS),
 * and releases it when QEMU has answered.
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xerr.h"
#include "qemu/driver.h"

#define VM_CLEAN_TIMEOUT_S 60

gboolean
vm_set(Api *api, StoreObj *vm, GError **error, ...)
{
	JsonObject *rec = store_obj_dup(vm);
	const char *field;
	va_list ap;

	va_start(ap, error);
	while ((field = va_arg(ap, const char *)) != NULL)
		json_object_set_member(rec, field, va_arg(ap, JsonNode *));
	va_end(ap);
	return store_replace(api->store, vm, rec, error);
}

gboolean
vm_op_idle(StoreObj *vm, GError **error)
{
	JsonObject *cur = json_object_get_object_member(vm->rec,
							"current_operations");
	g_autoptr(GList) ops = cur ? json_object_get_values(cur) : NULL;

	if (ops == NULL)
		return TRUE;
	xerr_set(error, "OTHER_OPERATION_IN_PROGRESS", "VM", vm->ref,
		 json_node_get_string(ops->data), NULL);
	return FALSE;
}

gboolean
vm_op_begin(Api *api, StoreObj *vm, const char *op, GError **error)
{
	if (!vm_op_idle(vm, error))
		return FALSE;
	JsonObject *rec = store_obj_dup(vm);
	JsonObject *cur = json_object_get_object_member(rec,
							"current_operations");
	g_autofree char *id = store_new_uuid();
	json_object_set_string_member(cur, id, op);
	if (!store_replace(api->store, vm, rec, error))
		return FALSE;
	vm_update_operations(api, vm, NULL);
	event_notify(api);
	return TRUE;
}

void
vm_op_end(Api *api, const char *vm_ref)
{
	StoreObj *vm = store_get_typed(api->store, "VM", vm_ref);

	if (vm == NULL)
		return;
	JsonObject *rec = store_obj_dup(vm);
	json_object_set_object_member(rec, "current_operations",
				      json_object_new());
	store_replace(api->store, vm, rec, NULL);
	vm_update_operations(api, vm, NULL);
	event_notify(api);
}

/* Every operation: check the VM and its state, take its slot. */
static StoreObj *
vm_power_begin(Call *call, const char *states, const char *op)
{
	GError *e = NULL;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);

	if (vm == NULL || !vm_check_power(vm, states, &e) ||
	    !vm_op_begin(call->api, vm, op, &e)) {
		call_fail(call, e);
		return NULL;
	}
	return vm;
}

static void
vm_power_done(Api *api, const char *vm_ref, const GError *error,
	      gpointer data)
{
	Call *call = data;

	vm_op_end(api, vm_ref);
	if (error)
		call_fail(call, g_error_copy(error));
	else
		call_return(call, NULL);
	call_unref(call);
}

static GError *
vm_qmp_error(const char *cmd, const GError *e)
{
	g_autofree char *msg = g_strdup_printf("QMP %s: %s", cmd, e->message);

	return xerr_new("INTERNAL_ERROR", msg, NULL);
}

/* ---- start ---------------------------------------------------------- */

static void vm_power_start_done(Api *api, const char *vm_ref,
				const GError *error, gpointer data);

void
vm_power_start(Call *call)
{
	GError *e = NULL;
	Api *api = call->api;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);
	gboolean paused = FALSE, force = FALSE;
	g_auto(VmStorage) st = { 0 };
	g_autoptr(GPtrArray) nics = NULL;

	if (vm == NULL || !call_arg_bool(call, 2, &paused, &e) ||
	    !call_arg_bool(call, 3, &force, &e) ||
	    !vm_check_power(vm, "Halted", &e) || !vm_op_idle(vm, &e) ||
	    !vm_storage_resolve(api, vm, &st, &e) ||
	    (nics = vm_net_resolve(api, vm, &e)) == NULL)
		return call_fail(call, e);

	StoreObj *host = api_host(api);
	host_refresh(api, host);
	gint64 need = json_object_get_int_member(vm->rec, "memory_static_max");
	gint64 have = json_object_get_int_member(host->rec, "memory_free");
	if (need > have) {
		g_autofree char *n = g_strdup_printf("%" G_GINT64_FORMAT, need);
		g_autofree char *h = g_strdup_printf("%" G_GINT64_FORMAT, have);
		return call_fail(call, xerr_new("HOST_NOT_ENOUGH_FREE_MEMORY",
						n, h, NULL));
	}
	if (!vm_op_begin(api, vm, "start", &e))
		return call_fail(call, e);
	/* Claim the memory now, so that two starts cannot both fit. */
	vm_set(api, vm, NULL, "power_state",
	       json_node_init_string(json_node_alloc(), "Paused"),
	       "resident_on", json_node_init_string(json_node_alloc(),
						     api->host_ref), NULL);
	QemuStartOpts o = { .paused = paused, .kernel = st.kernel,
			    .initrd = st.initrd, .disks = st.disks,
			    .nics = nics };
	qemu_vm_start(api, vm, &o, vm_power_start_done, call_ref(call));
}

static void
vm_power_start_done(Api *api, const char *vm_ref, const GError *error,
		    gpointer data)
{
	StoreObj *vm = store_get_typed(api->store, "VM", vm_ref);

	if (vm != NULL && error != NULL) {
		vm_set(api, vm, NULL, "power_state",
		       json_node_init_string(json_node_alloc(), "Halted"),
		       "resident_on", json_node_init_string(json_node_alloc(),
							     "OpaqueRef:NULL"),
		       NULL);
	} else if (vm != NULL) {
		QemuVm *qv = qemu_vm_lookup(api, vm_ref);
		Call *call = data;
		gboolean paused = FALSE;
		call_arg_bool(call, 2, &paused, NULL);
		g_autofree char *now = api_now_datetime();
		JsonObject *oc = json_object_get_object_member(
			vm->rec, "other_config");
		JsonObject *noc = json_object_new();
		GList *keys = json_object_get_members(oc);
		for (GList *l = keys; l; l = l->next)
			if (strcmp(l->data, "last_halt_reason") != 0)
				json_object_set_string_member(noc, l->data,
					json_object_get_string_member(oc,
								      l->data));
		g_list_free(keys);
		json_object_set_string_member(noc, "start_time", now);
		vm_set(api, vm, NULL, "power_state",
		       json_node_init_string(json_node_alloc(),
					     paused ? "Paused" : "Running"),
		       "domid", json_node_init_int(json_node_alloc(),
						   qv ? qemu_vm_pid(qv) : -1),
		       "other_config", json_node_init_object(json_node_alloc(),
							     noc),
		       NULL);
		json_object_unref(noc);
	}
	vm_power_done(api, vm_ref, error, data);
}

/* ---- shutdown ------------------------------------------------------- */

/* As in XAPI, a hard operation overrides a clean one that the guest is
 * taking its time over: the clean one's slot is released first (its call
 * still ends when the VM halts). */
static void
vm_power_preempt_clean(Call *call)
{
	StoreObj *vm = store_get_typed(call->api->store, "VM",
				       call_arg_string(call, 1, NULL));
	JsonObject *cur = vm ? json_object_get_object_member(
		vm->rec, "current_operations") : NULL;
	g_autoptr(GList) ops = cur ? json_object_get_values(cur) : NULL;

	if (ops != NULL && g_str_has_prefix(json_node_get_string(ops->data),
					    "clean_"))
		vm_op_end(call->api, vm->ref);
}

void
vm_power_hard_shutdown(Call *call)
{
	vm_power_preempt_clean(call);
	StoreObj *vm = vm_power_begin(call, "Running|Paused", "hard_shutdown");

	if (vm == NULL)
		return;
	qemu_vm_stop(call->api, vm->ref, "hard_shutdown", vm_power_done,
		     call_ref(call));
}

typedef struct {
	Call *call;
	char *vm_ref;
	guint timeout_id;
	gboolean reboot;
	gulong cancel_id;
	guint cancel_idle_id;
} Clean;

static void
clean_free(Clean *c)
{
	if (c->timeout_id)
		g_source_remove(c->timeout_id);
	if (c->cancel_id)
		g_cancellable_disconnect(c->call->cancel, c->cancel_id);
	if (c->cancel_idle_id)
		g_source_remove(c->cancel_idle_id);
	call_unref(c->call);
	g_free(c->vm_ref);
	g_free(c);
}

static void
clean_stopped(Api *api, const char *vm_ref, const GError *error,
	      gpointer data)
{
	Clean *c = data;

	if (c->timeout_id == 0) {
		/* The timeout already answered. */
		clean_free(c);
		return;
	}
	vm_power_done(api, vm_ref, error, call_ref(c->call));
	clean_free(c);
}

static gboolean
clean_timeout(gpointer data)
{
	Clean *c = data;
	Api *api = c->call->api;
	g_autofree char *msg = g_strdup_printf(
		"the guest did not %s within %d s of the ACPI request",
		c->reboot ? "reboot" : "shut down", VM_CLEAN_TIMEOUT_S);

	c->timeout_id = 0;
	vm_op_end(api, c->vm_ref);
	call_fail(c->call, xerr_new("VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT",
				    c->vm_ref, msg, NULL));
	/* clean_stopped still owns C: the driver calls it when the VM
	 * halts or reboots, or when it goes away. */
	return G_SOURCE_REMOVE;
}

/* task.cancel: stop waiting for the guest; the VM is left as it is. */
static gboolean
clean_cancel_idle(gpointer data)
{
	Clean *c = data;
	Api *api = c->call->api;

	c->cancel_idle_id = 0;
	if (c->timeout_id == 0)
		return G_SOURCE_REMOVE; /* answered already */
	g_source_remove(c->timeout_id);
	c->timeout_id = 0;
	vm_op_end(api, c->vm_ref);
	g_autofree char *task = g_strdup(c->call->task_ref);
	call_fail(c->call, xerr_new("TASK_CANCELLED", task, NULL));
	return G_SOURCE_REMOVE;
}

static void
clean_cancelled(GCancellable *cancel, gpointer data)
{
	Clean *c = data;

	/* Not inside the signal emission: go round the main loop once. */
	if (c->cancel_idle_id == 0)
		c->cancel_idle_id = g_idle_add(clean_cancel_idle, c);
}

static void
clean_powerdown_sent(Qmp *qmp, JsonNode *ret, const GError *error,
		     gpointer data)
{
	Clean *c = data;

	if (error == NULL)
		return;
	g_source_remove(c->timeout_id);
	c->timeout_id = 0;
	vm_op_end(c->call->api, c->vm_ref);
	call_fail(c->call, vm_qmp_error("system_powerdown", error));
}

void
vm_power_clean_shutdown(Call *call)
{
	StoreObj *vm = vm_power_begin(call, "Running", "clean_shutdown");

	if (vm == NULL)
		return;
	Clean *c = g_new0(Clean, 1);
	c->call = call_ref(call);
	c->vm_ref = g_strdup(vm->ref);
	c->timeout_id = g_timeout_add_seconds(VM_CLEAN_TIMEOUT_S,
					      clean_timeout, c);
	if (call->cancel)
		c->cancel_id = g_cancellable_connect(call->cancel,
			G_CALLBACK(clean_cancelled), c, NULL);
	/* The guest's power-off ends QEMU; the hang-up completes the call. */
	qemu_vm_on_exit(qemu_vm_lookup(call->api, vm->ref), clean_stopped, c);
	qemu_vm_call(call->api, vm->ref, "system_powerdown", NULL,
		     clean_powerdown_sent, c);
}

void
vm_power_clean_reboot(Call *call)
{
	StoreObj *vm = vm_power_begin(call, "Running", "clean_reboot");

	if (vm == NULL)
		return;
	/* QEMU offers no guest-cooperative reboot without an agent; an ACPI
	 * power-button press with shutdown=pause lets us reset the machine
	 * when the guest has shut down.  See docs/vm-lifecycle.md. */
	Clean *c = g_new0(Clean, 1);
	c->call = call_ref(call);
	c->vm_ref = g_strdup(vm->ref);
	c->reboot = TRUE;
	c->timeout_id = g_timeout_add_seconds(VM_CLEAN_TIMEOUT_S,
					      clean_timeout, c);
	if (call->cancel)
		c->cancel_id = g_cancellable_connect(call->cancel,
			G_CALLBACK(clean_cancelled), c, NULL);
	qemu_vm_reboot_on_shutdown(qemu_vm_lookup(call->api, vm->ref),
				   clean_stopped, c);
	qemu_vm_call(call->api, vm->ref, "system_powerdown", NULL,
		     clean_powerdown_sent, c);
}

/* ---- reboot, pause, unpause: one QMP command each ------------------- */

typedef struct {
	Call *call;
	char *vm_ref;
	const char *cmd;
	const char *next;         /* a second command, or NULL */
} Simple;

static void
simple_reply(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Simple *s = data;
	Api *api = s->call->api;

	if (error == NULL && s->next != NULL) {
		s->cmd = s->next;
		s->next = NULL;
		qemu_vm_call(api, s->vm_ref, s->cmd, NULL, simple_reply, s);
		return;
	}
	g_autoptr(GError) e = error ? vm_qmp_error(s->cmd, error) : NULL;
	vm_power_done(api, s->vm_ref, e, s->call);
	g_free(s->vm_ref);
	g_free(s);
}

static void
vm_power_simple(Call *call, const char *states, const char *op,
		const char *cmd, const char *next)
{
	StoreObj *vm = vm_power_begin(call, states, op);

	if (vm == NULL)
		return;
	Simple *s = g_new0(Simple, 1);
	s->call = call_ref(call);
	s->vm_ref = g_strdup(vm->ref);
	s->cmd = cmd;
	s->next = next;
	qemu_vm_call(call->api, vm->ref, cmd, NULL, simple_reply, s);
}

void
vm_power_hard_reboot(Call *call)
{
	GError *e = NULL;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);

	if (vm == NULL)
		return call_fail(call, e);
	vm_power_preempt_clean(call);
	/* A reset keeps the QEMU process; a paused VM runs again after. */
	if (strcmp(vm_power_state(vm), "Paused") == 0)
		return vm_power_simple(call, "Paused", "hard_reboot",
				       "system_reset", "cont");
	vm_power_simple(call, "Running", "hard_reboot", "system_reset", NULL);
}

void
vm_power_pause(Call *call)
{
	vm_power_simple(call, "Running", "pause", "stop", NULL);
}

void
vm_power_unpause(Call *call)
{
	vm_power_simple(call, "Paused", "unpause", "cont", NULL);
}

/* ---- console -------------------------------------------------------- */

void
vm_power_get_console_log(Call *call)
{
	GError *e = NULL;
	StoreObj *vm = call_arg_obj(call, 1, "VM", &e);
	gint64 max = 0;

	if (vm == NULL || !call_arg_int(call, 2, &max, &e))
		return call_fail(call, e);
	if (max <= 0 || max > 16 * 1024 * 1024)
		max = 16 * 1024 * 1024;
	/* The newest MAX bytes of console.log.old then console.log (the
	 * driver's cap moves the older part aside). */
	g_autofree char *path = qemu_vm_console_path(call->api, vm);
	g_autofree char *old_path = qemu_vm_console_old_path(call->api, vm);
	g_autoptr(GByteArray) out = g_byte_array_new();
	const char *paths[] = { old_path, path };
	for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
		/* The run directory is ours, but QEMU writes the files: never
		 * follow a link or wait on a FIFO found there. */
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
					O_NONBLOCK);
		struct stat st;
		if (fd < 0)
			continue;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		off_t size = st.st_size;
		off_t from = size > max ? size - max : 0;
		guint at = out->len;
		g_byte_array_set_size(out, at + (size - from));
		ssize_t got = pread(fd, out->data + at, size - from, from);
		close(fd);
		g_byte_array_set_size(out, at + MAX(got, 0));
	}
	gsize skip = out->len > (gsize)max ? out->len - max : 0;
	const char *buf = (const char *)out->data + skip;
	gsize n = out->len - skip;
	/* The console is bytes; the wire wants UTF-8. */
	g_autofree char *text = g_utf8_make_valid(buf, n);
	call_return_string(call, text);
}
