/*
 * driver: QEMU processes for VMs (see driver.h).
 *
 * NOTES ON THE DESIGN
 *
 * 1. QEMU is started with -daemonize: the process we spawn exits once QEMU
 *    has set itself up (status 0) or failed (status 1, QEMU's reason on
 *    stderr), and the real QEMU lives on in its own session, outside
 *    ternd's process group, so stopping ternd stops no VM.
 * 2. QEMU always starts with -S.  The driver connects QMP first and only
 *    then lets the guest run, so no event and no console line is missed.
 * 3. The QMP connection is the liveness signal: QEMU's death closes the
 *    socket and the closed callback marks the VM Halted at once, with the
 *    reason in other_config["last_halt_reason"].
 * 4. When ternd starts, every VM whose record says it runs here is checked:
 *    a live QEMU (pidfile, /proc/<pid>/cmdline naming the VM's uuid) is
 *    re-attached over QMP and its real state read; a missing one makes
 *    the VM Halted with the reason.
 */
#include "qemu/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/valid.h"
#include "common/xerr.h"
#include "qemu/confine.h"

#define MiB (1024 * 1024)
#define QEMU_CONNECT_MS 5000

/* A waiter owns its DATA through DESTROY (if any): freed once, after
 * DONE ran or when the VM is dropped without DONE (stop_wait_free). */
typedef struct {
	QemuDoneFn done;
	gpointer data;
	GDestroyNotify destroy;
} StopWait;

static void
stop_wait_free(gpointer p)
{
	StopWait *w = p;

	if (w != NULL && w->destroy != NULL)
		w->destroy(w->data);
	g_free(w);
}

struct QemuVm {
	QemuDriver *drv;
	char *ref;
	char *uuid;
	char *dir;
	int pid;
	Qmp *qmp;
	gboolean shutdown_seen;    /* the guest asked to power off */
	gboolean stopping;         /* we asked QEMU to quit */
	QmpEventFn hook;
	gpointer hook_data;
	GList *stop_waiters;       /* StopWait: called when QEMU is gone */
	StopWait *reboot_waiter;   /* set while a clean reboot is asked */
	guint kill_id;
	gpointer start;            /* the Start in progress, if any */
	gboolean orphaned;        /* freed during its QMP connect: see
				   * qemu_vm_free() */
};

typedef struct {
	void (*fn)(Api *api, gpointer data);
	gpointer data;
} ReadyWait;

struct QemuDriver {
	Api *api;
	GHashTable *vms;           /* ref -> QemuVm */
	char *accel;
	guint reattaching;         /* re-attaches still under way */
	GList *ready_waiters;      /* ReadyWait */
	guint console_id;          /* qemu_console_check */
};

static QemuDriver *qemu_drv(Api *api);

static void
qemu_driver_reattached(QemuDriver *drv)
{
	if (drv->reattaching > 0 && --drv->reattaching > 0)
		return;
	GList *ws = g_steal_pointer(&drv->ready_waiters);
	for (GList *l = ws; l; l = l->next) {
		ReadyWait *w = l->data;
		w->fn(drv->api, w->data);
	}
	g_list_free_full(ws, g_free);
}

void
qemu_driver_when_ready(Api *api, void (*fn)(Api *api, gpointer data),
		       gpointer data)
{
	QemuDriver *drv = qemu_drv(api);
	ReadyWait *w = g_new0(ReadyWait, 1);

	w->fn = fn;
	w->data = data;
	drv->ready_waiters = g_list_append(drv->ready_waiters, w);
	if (drv->reattaching == 0)
		qemu_driver_reattached(drv);
}

static void qemu_vm_gone(QemuVm *qv, const char *reason);

static QemuDriver *
qemu_drv(Api *api)
{
	return api->qemu;
}

static void
qemu_vm_free(QemuVm *qv)
{
	if (qv->kill_id)
		g_source_remove(qv->kill_id);
	qv->kill_id = 0;
	if (qv->start != NULL) {
		/* Removed (killed, forgotten) while its QMP connect is under
		 * way, whose callback has QV as its data: start_connected()
		 * frees it then.  Freed now, the callback, and the closed
		 * handler of the connection it makes, would use freed memory
		 * (a migration aborted while its destination QEMU starts). */
		qv->orphaned = TRUE;
		return;
	}
	if (qv->qmp) {
		qmp_close(qv->qmp);
		qmp_unref(qv->qmp);
	}
	g_list_free_full(qv->stop_waiters, stop_wait_free);
	stop_wait_free(qv->reboot_waiter);
	g_free(qv->ref);
	g_free(qv->uuid);
	g_free(qv->dir);
	g_free(qv);
}

QemuVm *
qemu_vm_lookup(Api *api, const char *vm_ref)
{
	return qemu_drv(api) ? g_hash_table_lookup(qemu_drv(api)->vms, vm_ref)
			     : NULL;
}

Qmp *
qemu_vm_qmp(QemuVm *qv)
{
	return qv->qmp;
}

int
qemu_vm_pid(QemuVm *qv)
{
	return qv->pid;
}

const char *
qemu_vm_dir(QemuVm *qv)
{
	return qv->dir;
}

void
qemu_vm_set_hook(QemuVm *qv, QmpEventFn fn, gpointer user_data)
{
	qv->hook = fn;
	qv->hook_data = user_data;
}

/* The run directory of the VM UUID.  A uuid that is not one (a record
 * written by an older daemon, a bug) never becomes a path of its own:
 * qemu_vm_start refuses it, and the rest look in "invalid", which is
 * never made. */
static char *
qemu_vm_dir_for(Api *api, const char *uuid)
{
	return g_build_filename(api->cfg.run_dir, "vms",
				valid_uuid(uuid) ? uuid : "invalid", NULL);
}

char *
qemu_vm_console_path(Api *api, StoreObj *vm)
{
	g_autofree char *dir = qemu_vm_dir_for(api, vm->uuid);

	return g_build_filename(dir, "console.log", NULL);
}

/* ---- The console log's cap ------------------------------------------ */

/* QEMU writes the guest's serial console to console.log itself (a file
 * chardev, append=on), so QEMU cannot bound it; ternd looks every
 * QEMU_CONSOLE_CHECK_S and, past cfg.console_log_max, moves the newest
 * max bytes to console.log.old and empties console.log.  A file on disk
 * (not a pipe through ternd) keeps the console writing while ternd is
 * down; the price is that bytes QEMU writes between the copy and the
 * truncation are lost, and that the file may pass the cap by what the
 * guest writes in one period. */
#define QEMU_CONSOLE_CHECK_S 2
#define QEMU_CONSOLE_LOG "console.log"
#define QEMU_CONSOLE_OLD "console.log.old"

static void
qemu_console_reset(const char *dir, const char *name)
{
	g_autofree char *path = g_build_filename(dir, name ? name
						 : QEMU_CONSOLE_LOG, NULL);
	g_autofree char *old = g_build_filename(dir, QEMU_CONSOLE_OLD, NULL);

	/* append=on keeps what was there: a new boot starts a new log. */
	if (truncate(path, 0) != 0 && errno != ENOENT)
		g_warning("qemu: cannot empty %s: %s", path, g_strerror(errno));
	g_unlink(old);
}

static void
qemu_console_cap(const char *dir, gint64 max)
{
	g_autofree char *path = g_build_filename(dir, QEMU_CONSOLE_LOG, NULL);
	g_autofree char *old = g_build_filename(dir, QEMU_CONSOLE_OLD, NULL);
	g_autoptr(GError) e = NULL;
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= max) {
		close(fd);
		return;
	}
	g_autofree char *buf = g_malloc(max);
	ssize_t n = pread(fd, buf, max, st.st_size - max);
	if (n < 0 ||
	    !g_file_set_contents_full(old, buf, n,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      &e) ||
	    ftruncate(fd, 0) != 0)
		g_warning("qemu: cannot rotate %s: %s", path,
			  e ? e->message : g_strerror(errno));
	close(fd);
}

static gboolean
qemu_console_check(gpointer data)
{
	QemuDriver *drv = data;
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, drv->vms);
	while (g_hash_table_iter_next(&it, NULL, &v))
		qemu_console_cap(((QemuVm *)v)->dir,
				 drv->api->cfg.console_log_max);
	return G_SOURCE_CONTINUE;
}

char *
qemu_vm_console_old_path(Api *api, StoreObj *vm)
{
	g_autofree char *dir = qemu_vm_dir_for(api, vm->uuid);

	return g_build_filename(dir, QEMU_CONSOLE_OLD, NULL);
}

/* ---- power_state from QMP events ------------------------------------ */

static void
qemu_vm_set_state(QemuVm *qv, const char *state)
{
	Api *api = qv->drv->api;
	StoreObj *vm = store_get_typed(api->store, "VM", qv->ref);

	if (vm == NULL || strcmp(vm_power_state(vm), state) == 0)
		return;
	vm_set(api, vm, NULL, "power_state",
	       json_node_init_string(json_node_alloc(), state), NULL);
	vm_update_operations(api, vm, NULL);
	event_notify(api);
}

static void
qemu_ignore_reply(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	if (error != NULL)
		g_info("qemu: %s: %s", (const char *)data, error->message);
}

static JsonObject *
qemu_action(const char *shutdown)
{
	JsonObject *a = json_object_new();

	json_object_set_string_member(a, "shutdown", shutdown);
	return a;
}

/* The guest shut down while a clean reboot was asked: QEMU paused it
 * (shutdown=pause); reset, run, and restore the normal action. */
static void
qemu_vm_reboot_now(QemuVm *qv)
{
	StopWait *w = g_steal_pointer(&qv->reboot_waiter);
	g_autoptr(JsonObject) a = qemu_action("poweroff");

	qmp_call(qv->qmp, "system_reset", NULL, qemu_ignore_reply,
		 "system_reset");
	qmp_call(qv->qmp, "cont", NULL, qemu_ignore_reply, "cont");
	qmp_call(qv->qmp, "set-action", a, qemu_ignore_reply, "set-action");
	w->done(qv->drv->api, qv->ref, NULL, w->data);
	stop_wait_free(w);
}

void
qemu_vm_on_exit_full(QemuVm *qv, QemuDoneFn done, gpointer user_data,
		     GDestroyNotify destroy)
{
	StopWait *w;

	if (qv == NULL) {
		if (destroy != NULL)
			destroy(user_data);
		return;
	}
	w = g_new0(StopWait, 1);
	w->done = done;
	w->data = user_data;
	w->destroy = destroy;
	qv->stop_waiters = g_list_append(qv->stop_waiters, w);
}

void
qemu_vm_on_exit(QemuVm *qv, QemuDoneFn done, gpointer user_data)
{
	qemu_vm_on_exit_full(qv, done, user_data, NULL);
}

void
qemu_vm_reboot_on_shutdown(QemuVm *qv, QemuDoneFn done, gpointer user_data)
{
	g_autoptr(JsonObject) a = qemu_action("pause");

	if (qv == NULL || qv->reboot_waiter != NULL)
		return;
	qv->reboot_waiter = g_new0(StopWait, 1);
	qv->reboot_waiter->done = done;
	qv->reboot_waiter->data = user_data;
	qmp_call(qv->qmp, "set-action", a, qemu_ignore_reply, "set-action");
}

static void
qemu_on_event(Qmp *qmp, const char *event, JsonObject *data, gint64 ts,
	      gpointer user_data)
{
	QemuVm *qv = user_data;

	g_debug("qemu: %s: event %s", qv->uuid, event);
	if (strcmp(event, "SHUTDOWN") == 0 && qv->reboot_waiter != NULL) {
		qemu_vm_reboot_now(qv);
		return;
	}
	if (strcmp(event, "SHUTDOWN") == 0)
		qv->shutdown_seen = TRUE;
	if (qv->hook) {
		qv->hook(qmp, event, data, ts, qv->hook_data);
		return;
	}
	if (strcmp(event, "STOP") == 0)
		qemu_vm_set_state(qv, "Paused");
	else if (strcmp(event, "RESUME") == 0)
		qemu_vm_set_state(qv, "Running");
}

static const QmpEventHandler qemu_events[] = {
	{ "*", qemu_on_event },
	{ NULL }
};

static void
qemu_on_closed(Qmp *qmp, const GError *reason, gpointer user_data)
{
	QemuVm *qv = user_data;

	qemu_vm_gone(qv, qv->stopping ? "stopped by ternd"
			 : qv->shutdown_seen ? "the guest shut down"
					     : "the QEMU process exited");
}

/* ---- The command line ----------------------------------------------- */

/*
 * QEMU before 9.0 loses guest writes during a TCG migration: the fast path
 * of cpu_physical_memory_sync_dirty_bitmap(), taken when a RAM block's
 * size is a multiple of 64 pages, clears the migration dirty bits without
 * resetting TCG's TLB, so later stores through the TLB go unrecorded and
 * the destination gets stale pages (QEMU commit "physmem: Fix migration
 * dirty bitmap coherency with TCG memory access").  memcheck shows it: a
 * guest migrated under TCG at a limited rate resumes with old memory or
 * panics.  Giving the guest 8 KiB less than a multiple of 256 KiB keeps
 * QEMU on the slow path, which does reset the TLB.  KVM is not affected.
 */
static gboolean
qemu_tcg_dirty_workaround(Api *api)
{
	static int major = -1;

	if (strcmp(qemu_driver_accel(api), "tcg") != 0)
		return FALSE;
	if (major < 0) {
		g_autofree char *v = host_qemu_version(api->cfg.qemu_binary);
		major = (int)g_ascii_strtoll(v, NULL, 10);
	}
	return major < 9;
}

static const char *
qemu_map_get(JsonObject *rec, const char *map, const char *key,
	     const char *def)
{
	JsonObject *m = json_object_get_object_member(rec, map);

	return m ? json_object_get_string_member_with_default(m, key, def)
		 : def;
}

static GPtrArray *
qemu_argv(Api *api, StoreObj *vm, const char *dir, const QemuStartOpts *o,
	  const ConfineUser *user)
{
	JsonObject *r = vm->rec;
	GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
	gint64 mem = json_object_get_int_member(r, "memory_static_max") / MiB;
	gint64 vcpus = json_object_get_int_member(r, "VCPUs_at_startup");
	gint64 maxv = json_object_get_int_member(r, "VCPUs_max");
	const char *kernel = o->kernel;
	const char *initrd = o->initrd;
	const char *args = json_object_get_string_member(r, "PV_args");
	const char *machine = qemu_map_get(r, "platform", "machine", "pc");
	const char *cpu = qemu_map_get(r, "platform", "cpu",
				       api->cfg.cpu_model);
	const char *console = o->console_name ? o->console_name
					      : "console.log";

#define ADD(...) g_ptr_array_add(a, g_strdup_printf(__VA_ARGS__))
	ADD("%s", api->cfg.qemu_binary);
	ADD("-name");
	ADD("guest=tern-%s", vm->uuid);
	ADD("-uuid");
	ADD("%s", vm->uuid);
	ADD("-machine");
	ADD("%s", machine);
	ADD("-accel");
	ADD("%s", qemu_driver_accel(api));
	ADD("-cpu");
	ADD("%s", cpu);
	ADD("-m");
	if (qemu_tcg_dirty_workaround(api))
		ADD("%" G_GINT64_FORMAT "K", mem * 1024 - 8);
	else
		ADD("%" G_GINT64_FORMAT, mem);
	ADD("-smp");
	ADD("%" G_GINT64_FORMAT ",maxcpus=%" G_GINT64_FORMAT, vcpus, maxv);
	ADD("-nodefaults");
	ADD("-no-user-config");
	ADD("-display");
	ADD("none");
	if (kernel && *kernel) {
		ADD("-kernel");
		ADD("%s", kernel);
		if (initrd && *initrd) {
			ADD("-initrd");
			ADD("%s", initrd);
		}
		ADD("-append");
		ADD("%s", args ? args : "");
	}
	qemu_disk_argv(o->disks, a);
	qemu_nic_argv(o->nics, a);
	/* append=on: QEMU writes at the end whatever the file's length, so
	 * qemu_console_cap may truncate it under QEMU's feet. */
	ADD("-chardev");
	ADD("file,id=serial0,path=%s/%s,append=on", dir, console);
	ADD("-serial");
	ADD("chardev:serial0");
	ADD("-qmp");
	ADD("unix:%s/qmp.sock,server=on,wait=off", dir);
	ADD("-pidfile");
	ADD("%s/qemu.pid", dir);
	ADD("-daemonize");
	ADD("-S");
	if (o->incoming) {
		ADD("-incoming");
		ADD("defer");
	}
#undef ADD
	ConfineConf cf = qemu_confine_conf(api);
	confine_argv(&cf, user, a);
	g_ptr_array_add(a, NULL);
	return a;
}

/* ---- Starting ------------------------------------------------------- */

typedef struct {
	Api *api;
	char *ref;
	QemuVm *qv;
	gboolean paused;
	QemuDoneFn done;
	gpointer data;
} Start;

static void
start_finish(Start *s, GError *error)
{
	if (error != NULL && s->qv != NULL) {
		/* Leave no QEMU behind a failed start. */
		qemu_vm_kill(s->api, s->ref);
	}
	s->done(s->api, s->ref, error, s->data);
	g_clear_error(&error);
	g_free(s->ref);
	g_free(s);
}

static GError *
qemu_qmp_error(const char *what, const GError *e)
{
	g_autofree char *msg = g_strdup_printf("%s: %s", what, e->message);

	return xerr_new("INTERNAL_ERROR", msg, NULL);
}

static void
start_cont_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Start *s = data;

	start_finish(s, error ? qemu_qmp_error("cont", error) : NULL);
}

static void
start_status_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Start *s = data;

	if (error)
		return start_finish(s, qemu_qmp_error("query-status", error));
	if (s->paused)
		return start_finish(s, NULL);
	qmp_call(qmp, "cont", NULL, start_cont_done, s);
}

static void
start_connected(Qmp *qmp, const GError *error, gpointer data)
{
	QemuVm *qv = data;
	Start *s = g_steal_pointer(&qv->start);

	if (qv->orphaned) {
		if (qmp != NULL) {
			qmp_close(qmp);
			qmp_unref(qmp);
		}
		qemu_vm_free(qv);
		s->qv = NULL; /* gone already: nothing for start_finish */
		return start_finish(s, xerr_new("INTERNAL_ERROR",
			"the VM was stopped while its QEMU started", NULL));
	}
	if (error)
		return start_finish(s, qemu_qmp_error("QMP connect", error));
	s->qv->qmp = qmp;
	qmp_call(qmp, "query-status", NULL, start_status_done, s);
}

static int
qemu_read_pid(const char *dir)
{
	g_autofree char *path = g_build_filename(dir, "qemu.pid", NULL);
	g_autofree char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	return (int)g_ascii_strtoll(text, NULL, 10);
}

static QemuVm *
qemu_vm_new(QemuDriver *drv, const char *ref, const char *uuid,
	    const char *dir)
{
	QemuVm *qv = g_new0(QemuVm, 1);

	qv->drv = drv;
	qv->ref = g_strdup(ref);
	qv->uuid = g_strdup(uuid);
	qv->dir = g_strdup(dir);
	g_hash_table_insert(drv->vms, qv->ref, qv);
	return qv;
}

static void
start_spawned(GObject *src, GAsyncResult *res, gpointer data)
{
	Start *s = data;
	GSubprocess *p = G_SUBPROCESS(src);
	g_autofree char *err_text = NULL;
	GError *e = NULL;

	if (!g_subprocess_communicate_utf8_finish(p, res, NULL, &err_text,
						  &e)) {
		g_object_unref(p);
		return start_finish(s, e);
	}
	if (!g_subprocess_get_if_exited(p) ||
	    g_subprocess_get_exit_status(p) != 0) {
		g_autofree char *code = g_strdup_printf(
			"%d", g_subprocess_get_if_exited(p)
				      ? g_subprocess_get_exit_status(p)
				      : -1);
		g_strstrip(err_text);
		g_object_unref(p);
		g_info("qemu: start failed: %s", err_text);
		return start_finish(s, xerr_new("DOMAIN_BUILDER_ERROR",
			"qemu", code, err_text, NULL));
	}
	g_object_unref(p);

	StoreObj *vm = store_get_typed(s->api->store, "VM", s->ref);
	g_autofree char *dir = qemu_vm_dir_for(s->api, vm ? vm->uuid : "");
	if (vm == NULL)
		return start_finish(s, xerr_new("HANDLE_INVALID", "VM", s->ref,
						NULL));
	s->qv = qemu_vm_new(qemu_drv(s->api), s->ref, vm->uuid, dir);
	s->qv->pid = qemu_read_pid(dir);
	g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
	s->qv->start = s;
	qmp_connect(sock, QEMU_CONNECT_MS, qemu_events, qemu_on_closed, s->qv,
		    start_connected);
}

void
qemu_vm_start(Api *api, StoreObj *vm, const QemuStartOpts *opts,
	      QemuDoneFn done, gpointer user_data)
{
	g_autofree char *dir = qemu_vm_dir_for(api, vm->uuid);
	g_autoptr(ConfineUser) user = NULL;
	g_autoptr(GPtrArray) argv = NULL;
	Start *s = g_new0(Start, 1);
	GError *e = NULL;

	s->api = api;
	s->ref = g_strdup(vm->ref);
	s->paused = opts->paused || opts->incoming;
	s->done = done;
	s->data = user_data;

	if (!valid_uuid(vm->uuid))
		return start_finish(s, xerr_new("UUID_INVALID", "VM", vm->uuid,
						NULL));
	ConfineConf cf = qemu_confine_conf(api);
	if (!confine_user(&cf, &user, &e) || !confine_vm_dir(&cf, dir, &e))
		return start_finish(s, e);
	argv = qemu_argv(api, vm, dir, opts, user);
	g_autofree char *pidfile = g_build_filename(dir, "qemu.pid", NULL);
	g_unlink(pidfile);
	qemu_console_reset(dir, opts->console_name);
	g_autofree char *cmd = g_strjoinv(" ", (char **)argv->pdata);
	g_debug("qemu: %s", cmd);
	g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
		G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
		G_SUBPROCESS_FLAGS_STDERR_PIPE);
	/* Each NIC's tap: a copy for the child at the fd its -netdev names
	 * (nic.h); the caller keeps and closes its own. */
	for (guint i = 0; opts->nics && i < opts->nics->len; i++) {
		const QemuNic *n = opts->nics->pdata[i];
		int fd = fcntl(n->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			g_autofree char *msg = g_strdup_printf(
				"dup of %s's tap: %s", n->id,
				g_strerror(errno));
			return start_finish(s, xerr_new("INTERNAL_ERROR", msg,
							NULL));
		}
		g_subprocess_launcher_take_fd(l, fd,
					      QEMU_NIC_FIRST_FD + (int)i);
	}
	GSubprocess *p = g_subprocess_launcher_spawnv(l,
		(const char *const *)argv->pdata, &e);
	if (p == NULL)
		return start_finish(s, e);
	g_subprocess_communicate_utf8_async(p, NULL, NULL, start_spawned, s);
}

/* ---- Stopping ------------------------------------------------------- */

static void
qemu_vm_gone(QemuVm *qv, const char *reason)
{
	QemuDriver *drv = qv->drv;
	Api *api = drv->api;
	StoreObj *vm = store_get_typed(api->store, "VM", qv->ref);
	GList *waiters = g_steal_pointer(&qv->stop_waiters);

	if (qv->reboot_waiter != NULL)
		waiters = g_list_append(waiters,
					g_steal_pointer(&qv->reboot_waiter));
	g_autofree char *ref = g_strdup(qv->ref);

	g_info("qemu: VM %s halted: %s", qv->uuid, reason);
	if (qv->pid > 0)
		kill(qv->pid, SIGKILL); /* never leave a half-dead QEMU */
	/* Also when a migration holds the VM (qv->hook): its record must
	 * not claim a QEMU that is gone; the migration learns of the death
	 * on its own (QMP and the destination) and never revives it. */
	if (vm != NULL) {
		JsonObject *rec = store_obj_dup(vm);
		JsonObject *oc = json_object_get_object_member(rec,
							       "other_config");
		json_object_set_string_member(rec, "power_state", "Halted");
		json_object_set_string_member(rec, "resident_on",
					      "OpaqueRef:NULL");
		json_object_set_int_member(rec, "domid", -1);
		json_object_set_string_member(oc, "last_halt_reason", reason);
		store_replace(api->store, vm, rec, NULL);
		vm_update_operations(api, vm, NULL);
		event_notify(api);
	}
	g_hash_table_remove(drv->vms, ref); /* frees qv */
	for (GList *l = waiters; l; l = l->next) {
		StopWait *w = l->data;
		w->done(api, ref, NULL, w->data);
	}
	g_list_free_full(waiters, stop_wait_free);
}

static gboolean
qemu_vm_kill_late(gpointer data)
{
	QemuVm *qv = data;

	qv->kill_id = 0;
	g_info("qemu: VM %s did not quit, killing it", qv->uuid);
	if (qv->pid > 0)
		kill(qv->pid, SIGKILL);
	return G_SOURCE_REMOVE;
}

static void
stop_quit_done(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	/* Nothing to do: the hang-up that follows finishes the stop. */
}

void
qemu_vm_stop(Api *api, const char *vm_ref, const char *reason,
	     QemuDoneFn done, gpointer user_data)
{
	QemuVm *qv = qemu_vm_lookup(api, vm_ref);
	if (qv == NULL) {
		StoreObj *vm = store_get_typed(api->store, "VM", vm_ref);
		if (vm != NULL && strcmp(vm_power_state(vm), "Halted") != 0)
			vm_set(api, vm, NULL, "power_state",
			       json_node_init_string(json_node_alloc(),
						     "Halted"), NULL);
		done(api, vm_ref, NULL, user_data);
		return;
	}
	qemu_vm_on_exit(qv, done, user_data);
	if (qv->stopping)
		return;
	qv->stopping = TRUE;
	g_info("qemu: stopping VM %s: %s", qv->uuid, reason);
	if (qv->qmp != NULL && qmp_is_open(qv->qmp))
		qmp_call(qv->qmp, "quit", NULL, stop_quit_done, NULL);
	qv->kill_id = g_timeout_add(3000, qemu_vm_kill_late, qv);
	if (qv->qmp == NULL || !qmp_is_open(qv->qmp))
		qemu_vm_gone(qv, reason);
}

void
qemu_vm_kill(Api *api, const char *vm_ref)
{
	QemuVm *qv = qemu_vm_lookup(api, vm_ref);

	if (qv == NULL)
		return;
	if (qv->pid > 0)
		kill(qv->pid, SIGKILL);
	g_hash_table_remove(qemu_drv(api)->vms, vm_ref);
}

void
qemu_driver_forget(Api *api, StoreObj *vm)
{
	g_autofree char *dir = qemu_vm_dir_for(api, vm->uuid);
	static const char *const files[] = { "console.log", "console.log.old",
					     "qemu.pid",
					     "qmp.sock", "migrate-tls/keys.psk",
					     "migrate-tls/dh-params.pem",
					     "migrate-tls", NULL };

	qemu_vm_kill(api, vm->ref);
	for (guint i = 0; files[i]; i++) {
		g_autofree char *p = g_build_filename(dir, files[i], NULL);
		g_remove(p);
	}
	g_rmdir(dir);
}

void
qemu_vm_rebind(Api *api, const char *old_ref, const char *new_ref)
{
	QemuDriver *drv = qemu_drv(api);
	QemuVm *qv = g_hash_table_lookup(drv->vms, old_ref);

	if (qv == NULL)
		return;
	g_hash_table_steal(drv->vms, old_ref);
	g_free(qv->ref);
	qv->ref = g_strdup(new_ref);
	g_hash_table_insert(drv->vms, qv->ref, qv);
}

typedef struct {
	QmpReplyFn fn;
	gpointer data;
} CallNoVm;

static gboolean
qemu_call_no_vm(gpointer data)
{
	CallNoVm *c = data;
	g_autoptr(GError) e = g_error_new_literal(QMP_ERROR, QMP_ERROR_CLOSED,
						  "the VM has no QEMU");

	c->fn(NULL, NULL, e, c->data);
	g_free(c);
	return G_SOURCE_REMOVE;
}

void
qemu_vm_call(Api *api, const char *vm_ref, const char *cmd, JsonObject *args,
	     QmpReplyFn fn, gpointer user_data)
{
	QemuVm *qv = qemu_vm_lookup(api, vm_ref);

	if (qv == NULL || qv->qmp == NULL) {
		CallNoVm *c = g_new0(CallNoVm, 1);
		c->fn = fn;
		c->data = user_data;
		g_idle_add(qemu_call_no_vm, c);
		return;
	}
	qmp_call(qv->qmp, cmd, args, fn, user_data);
}

/* ---- Re-attaching at start ------------------------------------------ */

static gboolean
qemu_pid_is_vm(int pid, const char *uuid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", pid);
	g_autofree char *text = NULL;
	gsize len;

	if (pid <= 0 || !g_file_get_contents(path, &text, &len, NULL))
		return FALSE;
	for (gsize i = 0; i + 1 < len; i++)
		if (text[i] == 0)
			text[i] = ' ';
	return strstr(text, uuid) != NULL;
}

static void
reattach_status(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	QemuVm *qv = data;
	QemuDriver *drv = qv->drv;

	if (error != NULL || !JSON_NODE_HOLDS_OBJECT(ret)) {
		qemu_driver_reattached(drv);
		return;
	}
	gboolean running = json_object_get_boolean_member_with_default(
		json_node_get_object(ret), "running", FALSE);
	qemu_vm_set_state(qv, running ? "Running" : "Paused");
	qemu_driver_reattached(drv);
}

static void
reattach_done(Qmp *qmp, const GError *error, gpointer data)
{
	QemuVm *qv = data;

	if (error != NULL) {
		QemuDriver *drv = qv->drv;
		qemu_vm_gone(qv, "ternd could not reach the QEMU process "
			     "when it started");
		qemu_driver_reattached(drv);
		return;
	}
	qv->qmp = qmp;
	g_info("qemu: re-attached to VM %s (pid %d)", qv->uuid, qv->pid);
	qmp_call(qmp, "query-status", NULL, reattach_status, qv);
}

static void
qemu_reattach(QemuDriver *drv, StoreObj *vm)
{
	Api *api = drv->api;
	g_autofree char *dir = qemu_vm_dir_for(api, vm->uuid);
	int pid = qemu_read_pid(dir);
	QemuVm *qv = qemu_vm_new(drv, vm->ref, vm->uuid, dir);

	qv->pid = pid;
	if (!qemu_pid_is_vm(pid, vm->uuid)) {
		qv->pid = 0;
		qemu_vm_gone(qv, "the QEMU process was gone when ternd "
			     "started");
		return;
	}
	drv->reattaching++;
	g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
	qmp_connect(sock, QEMU_CONNECT_MS, qemu_events, qemu_on_closed, qv,
		    reattach_done);
}

/* ---- The accelerator ------------------------------------------------ */

/* "auto" picks KVM only when /dev/kvm opens and QEMU itself reports KVM
 * present and enabled; docs/configuration.md explains why tcg remains the
 * default on machines where KVM guests are known to stall. */
static char *
qemu_probe_accel(Api *api)
{
	const char *argv[] = { api->cfg.qemu_binary, "-machine", "none",
			       "-accel", "kvm", "-nodefaults", "-display",
			       "none", "-qmp", "stdio", NULL };
	g_autofree char *out = NULL;
	int status = 0;

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		return g_strdup("tcg");
	/* Feed QMP on stdin: negotiate, ask, quit. */
	g_autoptr(GSubprocess) p = g_subprocess_newv(argv,
		G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
		G_SUBPROCESS_FLAGS_STDERR_SILENCE, NULL);
	if (p == NULL ||
	    !g_subprocess_communicate_utf8(p,
		"{\"execute\":\"qmp_capabilities\"}\n"
		"{\"execute\":\"query-kvm\"}\n{\"execute\":\"quit\"}\n",
		NULL, &out, NULL, NULL))
		return g_strdup("tcg");
	status = g_subprocess_get_exit_status(p);
	if (status == 0 && out &&
	    strstr(out, "\"enabled\": true") && strstr(out, "\"present\": true"))
		return g_strdup("kvm");
	return g_strdup("tcg");
}

const char *
qemu_driver_accel(Api *api)
{
	return qemu_drv(api) ? qemu_drv(api)->accel : api->cfg.accel;
}

QemuDriver *
qemu_driver_new(Api *api)
{
	QemuDriver *drv = g_new0(QemuDriver, 1);

	drv->api = api;
	drv->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					 (GDestroyNotify)qemu_vm_free);
	drv->accel = strcmp(api->cfg.accel, "auto") == 0
			     ? qemu_probe_accel(api)
			     : g_strdup(api->cfg.accel);
	g_info("qemu: guests use accel=%s", drv->accel);
	api->qemu = drv;
	{
		g_autoptr(ConfineUser) u = NULL;
		g_autoptr(GError) e = NULL;
		g_autofree char *code = NULL;
		g_auto(GStrv) params = NULL;
		ConfineConf cf = qemu_confine_conf(api);
		if (!confine_user(&cf, &u, &e)) {
			xerr_split(e, &code, &params);
			g_warning("qemu: VMs will not start: %s",
				  params[0] ? params[0] : code);
		}
		else if (u == NULL)
			g_warning("qemu: [qemu] user is empty: QEMU runs as "
				  "ternd's user");
	}
	if (api->cfg.console_log_max > 0)
		drv->console_id = g_timeout_add_seconds(QEMU_CONSOLE_CHECK_S,
							qemu_console_check,
							drv);

	g_autoptr(GPtrArray) vms = store_list(api->store, "VM");
	for (guint i = 0; i < vms->len; i++) {
		StoreObj *vm = vms->pdata[i];
		if (strcmp(vm_power_state(vm), "Halted") != 0)
			qemu_reattach(drv, vm);
	}
	return drv;
}

void
qemu_driver_free(QemuDriver *drv)
{
	if (drv == NULL)
		return;
	if (drv->console_id)
		g_source_remove(drv->console_id);
	/* Close our QMP connections but leave the QEMUs running. */
	g_hash_table_unref(drv->vms);
	g_list_free_full(drv->ready_waiters, g_free);
	g_free(drv->accel);
	g_free(drv);
}

ConfineConf
qemu_confine_conf(Api *api)
{
	return (ConfineConf){
		.user = api->cfg.qemu_user,
		.run_dir = api->cfg.run_dir,
		.sandbox = api->cfg.qemu_sandbox,
	};
}
