/*
 * testhook: holds a migration at a phase's entry while a test injects a
 * fault there (see testhook.h and docs/reliability.md).  The hold is a
 * file the harness removes; a 100 ms GLib timer polls for it, so the
 * daemon keeps serving the API (and can be frozen, killed or cut off)
 * while one migration waits.  Every hold has a deadline.
 */
#include "migrate/testhook.h"

#include <glib.h>
#include <glib/gstdio.h>

typedef struct {
	char *path;
	char *id;
	TesthookFn fn;
	gint64 until_us;
} Hold;

static const char *
testhook_dir(void)
{
	const char *dir = g_getenv("TERN_TEST_HOLD");

	return dir != NULL && *dir ? dir : NULL;
}

static gint64
testhook_deadline_us(void)
{
	const char *s = g_getenv("TERN_TEST_HOLD_S");
	gint64 secs = s ? g_ascii_strtoll(s, NULL, 10) : 0;

	return g_get_monotonic_time() + (secs > 0 ? secs : 300) * G_USEC_PER_SEC;
}

/* Creates the hold file; returns its path, or NULL when not holding. */
static char *
testhook_create(const char *side, const char *phase)
{
	const char *dir = testhook_dir();

	if (dir == NULL)
		return NULL;
	g_autofree char *name = g_strdup_printf("%s-%s.held", side, phase);
	char *path = g_build_filename(dir, name, NULL);
	if (!g_file_set_contents(path, "", 0, NULL)) {
		g_warning("testhook: cannot create %s", path);
		g_free(path);
		return NULL;
	}
	g_info("testhook: holding at %s-%s", side, phase);
	return path;
}

static gboolean
testhook_released(const char *path, gint64 until_us)
{
	if (!g_file_test(path, G_FILE_TEST_EXISTS))
		return TRUE;
	if (g_get_monotonic_time() < until_us)
		return FALSE;
	g_warning("testhook: %s not released in time; going on", path);
	g_unlink(path);
	return TRUE;
}

static gboolean
testhook_poll(gpointer data)
{
	Hold *h = data;

	if (!testhook_released(h->path, h->until_us))
		return G_SOURCE_CONTINUE;
	g_info("testhook: released %s", h->path);
	h->fn(h->id);
	g_free(h->path);
	g_free(h->id);
	g_free(h);
	return G_SOURCE_REMOVE;
}

void
testhook_phase(const char *side, const char *phase, const char *id,
	       TesthookFn fn)
{
	char *path = testhook_create(side, phase);

	if (path == NULL) {
		fn(id);
		return;
	}
	Hold *h = g_new0(Hold, 1);
	h->path = path;
	h->id = g_strdup(id);
	h->fn = fn;
	h->until_us = testhook_deadline_us();
	g_timeout_add(100, testhook_poll, h);
}

void
testhook_phase_wait(const char *side, const char *phase)
{
	g_autofree char *path = testhook_create(side, phase);
	gint64 until_us = testhook_deadline_us();

	while (path != NULL && !testhook_released(path, until_us))
		g_usleep(100 * 1000);
}
