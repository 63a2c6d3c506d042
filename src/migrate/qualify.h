/*
 * qualify: can this host run that VM?  Every blocker at once.
 *
 * The source describes the VM and itself (qualify_src_facts); the
 * destination checks that description against what it has
 * (qualify_check) and answers with the full list of blockers, each with a
 * code, the objects involved, a sentence for people and what would fix it.
 * Nothing here changes anything: it is safe to run before any state moves,
 * and it is what VM.assert_can_migrate, `tern vm-migrate --test` and the
 * first step of every migration run.  docs/qualification.md lists every
 * check with its code, parameters, message and fix.
 */
#pragma once

#include "api/api.h"

/* Host capabilities as QEMU sees them (a QEMU with -machine none answering
 * query-version, query-machines, query-cpu-definitions and
 * query-cpu-model-expansion): QEMU version, machine types with their
 * aliases, CPU models with their unavailable features, the accelerator,
 * the architecture, and a cache of full CPU model expansions (models not
 * expanded by the probe are expanded on demand by a second short QEMU
 * run).  A probe that fails still returns caps, marked as failed, so that
 * qualification can say why.  Every function accepts NULL caps to free. */
typedef struct HostCaps HostCaps;
HostCaps *qualify_caps_probe(Api *api);
void qualify_caps_free(HostCaps *caps);

/* The caps of API's host, probed at the first call and cached (one Api
 * at a time: a call with another Api probes again).  Borrowed. */
HostCaps *qualify_caps(Api *api);
/* Drops the cached caps (api_free, tests). */
void qualify_caps_forget(void);

/* Writes CAPS into this host's record: cpu_info["qemu_models"] (comma-
 * separated CPU model names) and cpu_info["cpu_model_max"] (from
 * other_config, "" when unset), software_version["machines"] (comma-
 * separated machine types, aliases as "pc=pc-i440fx-7.2") and
 * software_version["qemu"], and "accel-<name>" in capabilities. */
void qualify_caps_apply(Api *api, HostCaps *caps);

/* What the source sends with a migration: the VM record plus facts
 * about the source host and the VM's files:
 *   { "vm_uuid", "vm_name", "record": {the VM record},
 *     "host_uuid", "host_name", "arch", "qemu_version",
 *     "machine" (resolved: "pc" becomes "pc-i440fx-7.2"),
 *     "machine_requested" (as in platform:machine),
 *     "cpu_model" (platform:cpu or this host's default),
 *     "cpu_features": [sorted names the VM's CPU model gives the guest
 *                      here: the full expansion's true booleans minus the
 *                      model's unavailable features on this host],
 *     "files": { path: {"field": "PV_kernel"|"PV_ramdisk"|"disk",
 *                       "exists": bool, "size": n, "sha256_head": hex of
 *                       the first MiB} },
 *     "memory": bytes (memory_static_max), "power_state", "live": bool }
 * The destination must start QEMU with "machine" and "cpu_model" from
 * these facts, not with its own defaults, and creates the VM from
 * "record" (whose uuid must be a uuid: it names a run directory).  It
 * checks the files "record" names, never the paths "files" lists apart;
 * "files" only gives the source's size and hash of each.  Paths are
 * opened only when lstat finds a regular file (common/valid.h). */
JsonObject *qualify_src_facts(Api *api, StoreObj *vm, gboolean live);

/* Blockers: a new array of objects
 *   { "code": XAPI error code ("VM_INCOMPATIBLE_WITH_THIS_HOST",
 *             "HOST_NOT_ENOUGH_FREE_MEMORY", "VM_BAD_POWER_STATE",
 *             "OPERATION_NOT_ALLOWED", "INVALID_VALUE",
 *             "VALUE_NOT_SUPPORTED") or tern's ("VM_FILE_MISSING",
 *             "VM_FILE_DIFFERS"),
 *     "check": which check ("facts", "same_host", "power_state", "arch",
 *              "qemu_version", "machine", "cpu", "memory", "files",
 *              "options"; the order of the report),
 *     "objects": [strings: refs, names, values; per code in
 *                 docs/qualification.md],
 *     "message": a sentence naming the objects, "fix": what would fix it }
 * An empty array means the VM can come.  FACTS come from the network and
 * are type-checked here.  OPTIONS (may be NULL) are migrate_send's.  A
 * file of the record that is not a regular file here blocks a live
 * migration whatever the source has (the destination's QEMU starts with
 * it), an offline one only when the source has it.  Also "UUID_INVALID"
 * (check "facts", objects "VM", uuid). */
JsonArray *qualify_check(Api *api, JsonObject *facts, JsonObject *options);

/* Whether N is a well-formed value for migrate_send's option KEY (one
 * table, used by both sides: the source's parser and the destination's
 * check); EXPECT says what it must be. */
gboolean qualify_option_valid(const char *key, JsonNode *n,
			      const char **expect);

/* The first blocker as an XAPI error with that code's XAPI parameters,
 * followed by one parameter "CODE: message" per further blocker (for the
 * XAPI calls that can only raise one error).  VM_REF names the VM in the
 * parameters (the caller's ref; NULL gives OpaqueRef:NULL).  NULL when
 * BLOCKERS is empty. */
GError *qualify_error(JsonArray *blockers, const char *vm_ref);
