/*
 * driver: one QEMU process per running VM.
 *
 * The driver builds QEMU's command line from the VM record, starts it
 * daemonized in its own session so it outlives ternd (pidfile, QMP socket
 * and console log in <run_dir>/vms/<uuid>/), keeps a QMP connection to it,
 * turns QMP events into power_state, notices a QEMU that dies within the
 * QMP hang-up, and re-attaches to its QEMUs when ternd starts again.
 * Policy that spans calls (one operation at a time, allowed_operations)
 * lives in src/api/vm-power.c; migration drives the same QEMUs through
 * qemu_vm_qmp and the event hook.
 */
#pragma once

#include "api/api.h"
#include "qemu/confine.h"
#include "qemu/disk.h"
#include "qemu/nic.h"
#include "qemu/qmp.h"

typedef struct QemuDriver QemuDriver;
typedef struct QemuVm QemuVm;

QemuDriver *qemu_driver_new(Api *api);
/* Calls FN once every VM found running at start has been re-attached (or
 * found gone); at once when there was none. */
void qemu_driver_when_ready(Api *api, void (*fn)(Api *api, gpointer data),
			    gpointer data);
void qemu_driver_free(QemuDriver *drv);

/* The accelerator VMs get, resolved from the configuration ("auto"
 * becomes kvm only where the probe says it works). */
const char *qemu_driver_accel(Api *api);

/* Borrowed by qemu_vm_start, which is done with them when it returns. */
typedef struct {
	gboolean paused;          /* stay paused after start */
	gboolean incoming;        /* -incoming defer: a migration target */
	const char *console_name; /* console log file name (default) */
	const char *kernel;       /* -kernel, resolved and checked by the */
	const char *initrd;       /* caller (api/vm-storage.c); NULL: none */
	GPtrArray *disks;         /* QemuDisk (disk.h); NULL: none */
	GPtrArray *nics;          /* QemuNic (nic.h); their fds are passed
				   * to QEMU (duplicated); NULL: none */
} QemuStartOpts;

/* DONE is called once; on success the VM's QEMU runs (or waits). */
typedef void (*QemuDoneFn)(Api *api, const char *vm_ref, const GError *error,
			   gpointer user_data);

void qemu_vm_start(Api *api, StoreObj *vm, const QemuStartOpts *opts,
		   QemuDoneFn done, gpointer user_data);
/* Sends a command to the VM's QEMU; fails with HANDLE_INVALID-like errors
 * when the VM has no QEMU. */
void qemu_vm_call(Api *api, const char *vm_ref, const char *cmd,
		  JsonObject *args, QmpReplyFn fn, gpointer user_data);
/* Asks QEMU to quit, then kills it; DONE once it is gone and the record
 * is Halted.  REASON is kept in other_config["last_halt_reason"]. */
void qemu_vm_stop(Api *api, const char *vm_ref, const char *reason,
		  QemuDoneFn done, gpointer user_data);
/* Calls DONE when the VM's QEMU goes away (the guest powered off). */
void qemu_vm_on_exit(QemuVm *qv, QemuDoneFn done, gpointer user_data);
/* Likewise, and DESTROY frees USER_DATA exactly once: after DONE, or when
 * the VM is forgotten without going away (killed, driver freed), or at
 * once when QV is NULL. */
void qemu_vm_on_exit_full(QemuVm *qv, QemuDoneFn done, gpointer user_data,
			  GDestroyNotify destroy);
/* Makes the guest's next power-off a reset instead (QEMU's set-action
 * shutdown=pause, then system_reset and cont); DONE is called after the
 * reset, or when the VM goes away. */
void qemu_vm_reboot_on_shutdown(QemuVm *qv, QemuDoneFn done,
				gpointer user_data);
/* Kills QEMU at once (SIGKILL) and forgets it; no record change. */
void qemu_vm_kill(Api *api, const char *vm_ref);
/* Forgets a VM's runtime directory (when the record goes away). */
void qemu_driver_forget(Api *api, StoreObj *vm);

QemuVm *qemu_vm_lookup(Api *api, const char *vm_ref);
Qmp *qemu_vm_qmp(QemuVm *qv);
int qemu_vm_pid(QemuVm *qv);
const char *qemu_vm_dir(QemuVm *qv);
char *qemu_vm_console_path(Api *api, StoreObj *vm);
/* Where the console's older part goes once console.log passes its cap. */
char *qemu_vm_console_old_path(Api *api, StoreObj *vm);

/* While a hook is set, every QMP event of the VM goes to it too, and the
 * driver leaves power_state alone (the migration owns it). */
void qemu_vm_set_hook(QemuVm *qv, QmpEventFn fn, gpointer user_data);
/* Moves a QemuVm from one record to another (a migration that arrives
 * under a new ref keeps its QEMU). */
void qemu_vm_rebind(Api *api, const char *old_ref, const char *new_ref);

/* The confinement settings (confine.h) of API's configuration. */
ConfineConf qemu_confine_conf(Api *api);
