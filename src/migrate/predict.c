/*
 * predict: how long will this migration take, and will it converge?
 *
 * Three measured inputs feed the classic pre-copy model:
 *
 *   memory   what the first pass must send: the resident anonymous
 *            memory of the VM's QEMU (pages the guest never touched are
 *            not resident and cost QEMU almost nothing to skip);
 *   dirty    the guest's dirty rate, from QEMU's calc-dirty-rate (page
 *            sampling, one second);
 *   rate     what the stream will carry: the channel probe (bytes pushed
 *            through the destination's port) scaled by what this host's
 *            QEMU achieved on earlier migrations of the same mode, capped
 *            by the bandwidth option.
 *
 * Pass i sends S(i) bytes in S(i)/rate seconds, during which the guest
 * dirties dirty * S(i)/rate bytes: S(i+1).  QEMU switches over once
 * S(i)/rate fits in the downtime limit.  If S never shrinks, the
 * migration does not converge without the policy's help.
 *
 * What QEMU achieved is learned after each migration (predict_learn) and
 * kept in the store's meta table, so predictions improve with use and
 * survive restarts.
 */
#include "migrate/predict.h"

#include <math.h>
#include <string.h>

#include "common/xerr.h"
#include "qemu/driver.h"

#define MiB (1024.0 * 1024.0)
#define PREDICT_MAX_PASSES 30

void
predict_model(const PredictIn *in, PredictOut *out)
{
	double rate = in->rate_bps;
	double limit_s = (in->downtime_ms > 0 ? in->downtime_ms : 300) / 1000.0;
	double sent_s = 0, s = in->memory_bytes;
	int pass = 0;

	memset(out, 0, sizeof *out);
	if (in->cap_bps > 0 && (rate <= 0 || in->cap_bps < rate))
		rate = in->cap_bps;
	out->rate_bps = rate;
	if (rate <= 0) {
		out->converges = FALSE;
		return;
	}
	/* The first pass also walks every page QEMU skips as zero. */
	sent_s += in->zero_scan_s;
	for (pass = 1; pass <= PREDICT_MAX_PASSES; pass++) {
		double t = s / rate;
		if (t <= limit_s && pass > 1)
			break;
		sent_s += t;
		double next = in->dirty_bps * t;
		if (next > in->memory_bytes)
			next = in->memory_bytes;
		if (pass > 2 && next >= s * 0.98) {
			out->converges = FALSE;
			out->iterations = pass;
			out->total_s = INFINITY;
			return;
		}
		s = next;
	}
	out->converges = pass <= PREDICT_MAX_PASSES;
	out->iterations = pass;
	out->downtime_ms = s / rate * 1000.0;
	out->total_s = in->setup_s + sent_s + s / rate;
}

/* ---- Learned figures ------------------------------------------------ */

static char *
predict_key(const MigrateOptions *o, const char *what)
{
	return g_strdup_printf("predict.%s.%s.%s", what,
			       o->direct ? "direct" : "tunnelled",
			       o->secure ? "secure" : "plain");
}

static double
predict_meta(Api *api, const char *key, double def)
{
	g_autofree char *v = store_meta_get(api->store, key);

	return v ? g_ascii_strtod(v, NULL) : def;
}

static void
predict_meta_ewma(Api *api, const char *key, double sample)
{
	g_autofree char *old = store_meta_get(api->store, key);
	double v = old ? 0.5 * g_ascii_strtod(old, NULL) + 0.5 * sample
		       : sample;
	char buf[G_ASCII_DTOSTR_BUF_SIZE];

	store_meta_set(api->store, key, g_ascii_dtostr(buf, sizeof buf, v),
		       NULL);
}

void
predict_learn(Api *api, const MigrateOptions *o, JsonObject *stats,
	      gint64 total_ms, double probe_bps)
{
	if (stats == NULL || o->bandwidth_mib > 0)
		return; /* a capped migration says nothing about the link */
	JsonObject *ram = json_object_has_member(stats, "ram")
		? json_object_get_object_member(stats, "ram") : NULL;
	gint64 qemu_ms = json_object_get_int_member_with_default(stats,
		"total-time", 0);
	gint64 setup_ms = json_object_get_int_member_with_default(stats,
		"setup-time", 0);
	double bytes = ram ? json_object_get_double_member_with_default(ram,
		"transferred", 0) : 0;

	if (ram == NULL || qemu_ms - setup_ms <= 0 || bytes <= 0)
		return;
	g_autofree char *kt = predict_key(o, "s_per_gib");
	g_autofree char *ks = predict_key(o, "setup");
	/* QEMU's stream rate over the whole stream.  Not its "mbps", which
	 * is the last 100 ms window's: after a short final pass into deep
	 * socket buffers it overstated the rate twofold. */
	double rate = bytes / ((qemu_ms - setup_ms) / 1000.0);
	if (probe_bps > 0) {
		g_autofree char *ke = predict_key(o, "efficiency");
		predict_meta_ewma(api, ke, rate / probe_bps);
	}
	/* What is averaged is the time a GiB takes, not the rate: a time
	 * is what is predicted, and the mean of rates overstates the rate
	 * (one fast migration would pull every prediction short). */
	predict_meta_ewma(api, kt, 1024 * MiB / rate);
	/* Everything but the stream itself: tern's handshake and QEMU's
	 * own setup (which the stream rate above leaves out). */
	predict_meta_ewma(api, ks,
			  MAX(total_ms - (qemu_ms - setup_ms), 0) / 1000.0);
}

/* ---- Measuring ------------------------------------------------------ */

typedef struct {
	Api *api;
	char *vm_ref;
	MigrateOptions opts;
	double probe_bps;
	double memory_bytes;
	double ram_bytes;
	int polls;
	PredictFn done;
	gpointer data;
} Measure;

static double
predict_qemu_anon(Api *api, const char *vm_ref)
{
	QemuVm *qv = qemu_vm_lookup(api, vm_ref);
	g_autofree char *path = NULL, *text = NULL;

	if (qv == NULL)
		return 0;
	path = g_strdup_printf("/proc/%d/status", qemu_vm_pid(qv));
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	const char *p = strstr(text, "RssAnon:");
	return p ? g_ascii_strtod(p + 8, NULL) * 1024.0 : 0;
}

static void
measure_finish(Measure *m, double dirty_bps)
{
	Api *api = m->api;
	const MigrateOptions *o = &m->opts;
	g_autofree char *kt = predict_key(o, "s_per_gib");
	g_autofree char *ke = predict_key(o, "efficiency");
	g_autofree char *ks = predict_key(o, "setup");
	double s_per_gib = predict_meta(api, kt, 0);
	double learned = s_per_gib > 0 ? 1024 * MiB / s_per_gib : 0;
	double eff = predict_meta(api, ke, o->secure ? 0.05 : 0.2);
	/* What QEMU reached here before, for this mode, is the best guess
	 * (the link cannot carry more than the probe saw); with no history,
	 * the probe scaled by a typical efficiency for the mode. */
	double rate = learned > 0 ? learned : m->probe_bps * eff;
	if (learned > 0 && m->probe_bps > 0 && m->probe_bps < rate)
		rate = m->probe_bps;
	PredictIn in = {
		.memory_bytes = m->memory_bytes,
		.dirty_bps = dirty_bps,
		.rate_bps = rate,
		.cap_bps = o->bandwidth_mib * MiB,
		.downtime_ms = o->downtime_ms,
		.setup_s = predict_meta(api, ks, 0.5),
		/* QEMU checks a zero page at about 4 GiB/s here. */
		.zero_scan_s = MAX(m->ram_bytes - m->memory_bytes, 0) /
			       (4096.0 * MiB),
	};
	PredictOut out;

	if (in.rate_bps <= 0)
		in.rate_bps = 100 * MiB;
	predict_model(&in, &out);

	JsonObject *r = json_object_new();
	json_object_set_boolean_member(r, "converges", out.converges);
	json_object_set_int_member(r, "iterations", out.iterations);
	json_object_set_double_member(r, "total_s",
				      out.converges ? out.total_s : -1);
	json_object_set_double_member(r, "downtime_ms", out.downtime_ms);
	json_object_set_double_member(r, "rate_mib_s", out.rate_bps / MiB);
	json_object_set_double_member(r, "dirty_mib_s", dirty_bps / MiB);
	json_object_set_double_member(r, "memory_mib", in.memory_bytes / MiB);
	json_object_set_double_member(r, "probe_mib_s", m->probe_bps / MiB);
	json_object_set_string_member(r, "verdict", out.converges
		? "converges"
		: "does not converge under these limits; the policy will lift "
		  "the cap, then throttle the guest, then abort at "
		  "max_duration");
	m->done(r, m->data);
	json_object_unref(r);
	migrate_options_clear(&m->opts);
	g_free(m->vm_ref);
	g_free(m);
}

static void measure_poll(Qmp *qmp, JsonNode *ret, const GError *error,
			 gpointer data);

static gboolean
measure_again(gpointer data)
{
	Measure *m = data;

	qemu_vm_call(m->api, m->vm_ref, "query-dirty-rate", NULL,
		     measure_poll, m);
	return G_SOURCE_REMOVE;
}

static void
measure_poll(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Measure *m = data;
	JsonObject *r = !error && JSON_NODE_HOLDS_OBJECT(ret)
				? json_node_get_object(ret) : NULL;
	const char *status = r ? json_object_get_string_member_with_default(
					 r, "status", "") : "";

	g_debug("predict: query-dirty-rate: status %s, %" G_GINT64_FORMAT
		" MiB/s", status, r ? json_object_get_int_member_with_default(
			r, "dirty-rate", -1) : -1);
	if (strcmp(status, "measured") == 0) {
		/* "dirty-rate" is in MiB/s. */
		double d = json_object_get_int_member_with_default(r,
			"dirty-rate", 0) * MiB;
		return measure_finish(m, d);
	}
	if (r == NULL || ++m->polls > 40)
		return measure_finish(m, 0);
	g_timeout_add(100, measure_again, m);
}

static void
measure_started(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Measure *m = data;

	if (error != NULL) {
		g_info("predict: calc-dirty-rate: %s", error->message);
		return measure_finish(m, 0);
	}
	g_timeout_add(1000, measure_again, m);
}

void
predict_measure(Api *api, StoreObj *vm, const MigrateOptions *o,
		double probe_bps, PredictFn done, gpointer data)
{
	Measure *m = g_new0(Measure, 1);
	g_autoptr(JsonObject) a = json_object_new();

	m->api = api;
	m->vm_ref = g_strdup(vm->ref);
	m->opts = *o;
	m->opts.dest_name = g_strdup(o->dest_name);
	m->probe_bps = probe_bps;
	m->done = done;
	m->data = data;
	m->ram_bytes = json_object_get_int_member_with_default(vm->rec,
		"memory_static_max", 0);
	/* QEMU's own heap (TCG's code cache, device state) is about 32 MiB
	 * of the anonymous memory; the rest is guest pages. */
	m->memory_bytes = CLAMP(predict_qemu_anon(api, vm->ref) - 32 * MiB,
				16 * MiB, MAX(m->ram_bytes, 16 * MiB));
	if (strcmp(vm_power_state(vm), "Running") != 0)
		return measure_finish(m, 0);
	/* Page sampling: the dirty-bitmap mode dereferences KVM's state and
	 * crashes QEMU 7.2 under TCG. */
	json_object_set_int_member(a, "calc-time", 1);
	json_object_set_int_member(a, "sample-pages", 4096);
	qemu_vm_call(api, vm->ref, "calc-dirty-rate", a, measure_started, m);
}
