/*
 * policy: every migration converges or ends cleanly within max_duration.
 *
 * A migration that has not reached the switchover climbs a ladder, one
 * rung at a fixed share of max_duration, each rung recorded in the task
 * (other_config "policy" and "policy_steps", so an event too):
 *
 *   50%   lift-bandwidth   the user's cap goes up to the host's limit
 *   75%   auto-converge    QEMU throttles the vCPUs harder and harder
 *                          (the capability is on from the start with a
 *                          trigger no migration reaches, so it can be
 *                          armed now: QEMU cannot change capabilities
 *                          while a migration runs)
 *   100%  abort            the VM goes on running on the source
 *
 * Post-copy would be the rung before abort, but tern refuses it: a
 * failure during post-copy loses the VM (migrate-qemu.c).  With
 * escalate=false only the last rung remains.
 */
#include "migrate/migrate-int.h"

#include "qemu/driver.h"

#define MiB (1024.0 * 1024.0)

typedef enum {
	RUNG_LIFT,
	RUNG_THROTTLE,
	RUNG_ABORT,
	RUNG_COUNT,
} Rung;

static const struct {
	const char *name;
	double at;                /* share of max_duration */
} policy_rungs[RUNG_COUNT] = {
	[RUNG_LIFT] = { "lift-bandwidth", 0.50 },
	[RUNG_THROTTLE] = { "auto-converge", 0.75 },
	[RUNG_ABORT] = { "abort", 1.00 },
};

struct Policy {
	Api *api;
	char *vm_ref;
	Call *call;
	gboolean escalate;
	guint timers[RUNG_COUNT];
	GString *steps;
};

static void
policy_record(Policy *p, Rung r)
{
	g_autoptr(JsonObject) kv = json_object_new();

	g_string_append_printf(p->steps, "%s%s", p->steps->len ? "," : "",
			       policy_rungs[r].name);
	json_object_set_string_member(kv, "policy", policy_rungs[r].name);
	json_object_set_string_member(kv, "policy_steps", p->steps->str);
	if (p->call)
		call_task_update_many(p->call, kv);
	g_info("migrate: policy for VM %s: %s", p->vm_ref,
	       policy_rungs[r].name);
}

static void
policy_lift(Policy *p)
{
	g_autoptr(JsonObject) a = json_object_new();

	json_object_set_int_member(a, "max-bandwidth",
				   (gint64)(100000.0 * MiB));
	qemu_vm_call(p->api, p->vm_ref, "migrate-set-parameters", a,
		     migrate_ignore_reply, NULL);
}

static void
policy_throttle(Policy *p)
{
	g_autoptr(JsonObject) a = json_object_new();

	/* Trigger at once, start hard, climb fast. */
	json_object_set_int_member(a, "throttle-trigger-threshold", 1);
	json_object_set_int_member(a, "cpu-throttle-initial", 60);
	json_object_set_int_member(a, "cpu-throttle-increment", 20);
	qemu_vm_call(p->api, p->vm_ref, "migrate-set-parameters", a,
		     migrate_ignore_reply, NULL);
}

typedef struct {
	Policy *p;
	Rung r;
} Tick;

static gboolean
policy_tick(gpointer data)
{
	Tick *t = data;
	Policy *p = t->p;

	p->timers[t->r] = 0;
	policy_record(p, t->r);
	switch (t->r) {
	case RUNG_LIFT:
		policy_lift(p);
		break;
	case RUNG_THROTTLE:
		policy_throttle(p);
		break;
	default: {
		g_autofree char *why = g_strdup_printf(
			"the migration did not converge within max_duration "
			"(%s); the VM runs on the source", p->steps->str);
		/* Aborting frees the migration and this policy with it. */
		migrate_src_abort_vm(p->api, p->vm_ref, why);
		break;
	}
	}
	return G_SOURCE_REMOVE;
}

Policy *
policy_new(Api *api, const char *vm_ref, Call *call, const MigrateOptions *o)
{
	Policy *p = g_new0(Policy, 1);

	p->api = api;
	p->vm_ref = g_strdup(vm_ref);
	p->call = call ? call_ref(call) : NULL;
	p->escalate = o->escalate;
	p->steps = g_string_new(NULL);
	for (int r = 0; r < RUNG_COUNT; r++) {
		if (!p->escalate && r != RUNG_ABORT)
			continue;
		if (r == RUNG_LIFT && o->bandwidth_mib <= 0)
			continue; /* no cap to lift */
		/* 64-bit, and clamped: max_duration is at most a week
		 * (qualify.c), but a timeout's guint is never overrun. */
		gint64 ms64 = (gint64)((double)o->max_duration_s * 1000.0 *
				       policy_rungs[r].at);
		guint ms = (guint)CLAMP(ms64, 0, (gint64)G_MAXUINT);
		Tick *t = g_new0(Tick, 1);
		t->p = p;
		t->r = r;
		p->timers[r] = g_timeout_add_full(G_PRIORITY_DEFAULT, ms,
						  policy_tick, t, g_free);
	}
	return p;
}

void
policy_free(Policy *p)
{
	if (p == NULL)
		return;
	for (int r = 0; r < RUNG_COUNT; r++)
		if (p->timers[r])
			g_source_remove(p->timers[r]);
	if (p->call)
		call_unref(p->call);
	g_string_free(p->steps, TRUE);
	g_free(p->vm_ref);
	g_free(p);
}

/* Stops the ladder (the switchover has started: nothing to escalate). */
void
policy_stop(Policy *p)
{
	if (p == NULL)
		return;
	for (int r = 0; r < RUNG_COUNT; r++)
		if (p->timers[r]) {
			g_source_remove(p->timers[r]);
			p->timers[r] = 0;
		}
}
