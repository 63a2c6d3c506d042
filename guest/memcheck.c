/*
 * memcheck: the memory workload and integrity checker of tern's test guest.
 *
 * It runs inside a small Linux guest (see guest/README.md) while the host
 * migrates, snapshots or balloons the VM, and answers two questions: is the
 * guest still running (a status line every interval, the heartbeat), and did
 * its memory survive intact.
 *
 * Every 4 KiB page of a buffer carries a pattern derived from the page's
 * index and a per-page generation number: word i of page p holds
 * seed(p, gen[p]) + i * MEMCHECK_WORD_STEP.  The expected generations live in
 * a separate array.  Pages are rewritten at a configured rate, bumping their
 * generation, so that live migration has dirty pages to chase; a page the
 * migration forgot to resend still holds an older generation and is reported,
 * as is a page that was copied wrongly or zeroed.  Verification walks the
 * whole buffer round-robin, a few pages at a time, checking every word.
 *
 * The program is single-threaded on purpose: rewriting and verifying never
 * race, so any mismatch is a real corruption.  The clock is read after every
 * small chunk of work so the heartbeat stays on time.
 *
 * It is a static binary for a busybox initramfs, so it uses libc only and
 * parses its own parameters (the kernel command line, or argv on the host).
 * The output lines are a contract parsed by tests: see guest/README.md before
 * changing any of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MEMCHECK_PAGE_SIZE 4096u
#define MEMCHECK_WORDS_PER_PAGE (MEMCHECK_PAGE_SIZE / sizeof(uint64_t))
#define MEMCHECK_PAGES_PER_MIB (1024u * 1024u / MEMCHECK_PAGE_SIZE)
#define MEMCHECK_WORD_STEP UINT64_C(0x9e3779b97f4a7c15)

/* Pages verified between two looks at the clock (64 KiB). */
#define MEMCHECK_VERIFY_CHUNK 16u
/* Most pages rewritten between two looks at the clock. */
#define MEMCHECK_REWRITE_BATCH 64u

/* Byte flipped by the corrupt test mode, in the middle of a page. */
#define MEMCHECK_CORRUPT_OFFSET (MEMCHECK_PAGE_SIZE / 2 + 3)

struct memcheck_config {
	uint64_t mib;		/* buffer size */
	uint64_t rate;		/* MiB/s rewritten; 0 = never */
	uint64_t interval_ms;	/* between status lines */
	uint64_t corrupt;	/* flip a byte after this many lines; 0 = off */
	int64_t lines;		/* exit after this many lines; -1 = never */
};

struct memcheck_state {
	struct memcheck_config cfg;
	uint64_t *mem;
	uint32_t *gen;		/* expected generation of every page */
	size_t npages;
	size_t verify_next;	/* next page the verifier checks */
	uint64_t rng;		/* xorshift state picking pages to rewrite */
	uint64_t credit;	/* rewrite credit, in thousandths of a page */
	uint64_t last_ms;	/* when credit was last topped up */
	uint64_t next_status_ms;
	uint64_t seq;		/* status lines printed so far */
	uint64_t verified;
	uint64_t errors;
	uint64_t rewritten;
};

static uint64_t
memcheck_clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* splitmix64's finaliser: a page's pattern seed from its index and generation. */
static uint64_t
memcheck_seed(uint64_t page, uint32_t gen)
{
	uint64_t z = (page << 32 | gen) + MEMCHECK_WORD_STEP;

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t *
memcheck_page(struct memcheck_state *s, size_t page)
{
	return s->mem + page * MEMCHECK_WORDS_PER_PAGE;
}

static void
memcheck_fill_page(struct memcheck_state *s, size_t page)
{
	uint64_t *w = memcheck_page(s, page);
	uint64_t v = memcheck_seed(page, s->gen[page]);

	for (size_t i = 0; i < MEMCHECK_WORDS_PER_PAGE; i++, v += MEMCHECK_WORD_STEP)
		w[i] = v;
}

static void
memcheck_rewrite_page(struct memcheck_state *s, size_t page)
{
	s->gen[page]++;
	memcheck_fill_page(s, page);
}

/*
 * Checks every word of one page.  A corrupt page is reported (first bad word
 * only) and repaired with a new generation, so that one corruption counts
 * once; repairs are not counted in "rewritten".
 */
static void
memcheck_verify_page(struct memcheck_state *s, size_t page)
{
	const uint64_t *w = memcheck_page(s, page);
	uint64_t v = memcheck_seed(page, s->gen[page]);

	s->verified++;
	for (size_t i = 0; i < MEMCHECK_WORDS_PER_PAGE; i++, v += MEMCHECK_WORD_STEP) {
		if (w[i] == v)
			continue;
		s->errors++;
		printf("MEMCHECK-ERROR page=%zu expected=0x%016" PRIx64
		    " actual=0x%016" PRIx64 " word=%zu\n", page, v, w[i], i);
		fflush(stdout);
		memcheck_rewrite_page(s, page);
		return;
	}
}

static void
memcheck_verify_chunk(struct memcheck_state *s)
{
	for (unsigned i = 0; i < MEMCHECK_VERIFY_CHUNK; i++) {
		memcheck_verify_page(s, s->verify_next);
		if (++s->verify_next == s->npages)
			s->verify_next = 0;
	}
}

static size_t
memcheck_random_page(struct memcheck_state *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return (size_t)(s->rng % s->npages);
}

/*
 * Rewrites the pages due at the configured rate.  Credit is capped at one
 * second's worth, so that after the guest was paused (migration downtime) it
 * does not rewrite in a long burst and miss its heartbeat.
 */
static void
memcheck_rewrite_due(struct memcheck_state *s, uint64_t now)
{
	uint64_t per_sec = s->cfg.rate * MEMCHECK_PAGES_PER_MIB;
	uint64_t cap = per_sec * 1000u;

	if (per_sec == 0)
		return;
	s->credit += (now - s->last_ms) * per_sec;
	s->last_ms = now;
	if (s->credit > cap)
		s->credit = cap;
	for (unsigned n = 0; n < MEMCHECK_REWRITE_BATCH && s->credit >= 1000; n++) {
		memcheck_rewrite_page(s, memcheck_random_page(s));
		s->rewritten++;
		s->credit -= 1000;
	}
}

/*
 * Flips one byte of the page the verifier checks next, without telling the
 * bookkeeping, so the very next chunk must report it (a rewrite cannot hide
 * it first, which keeps the test mode deterministic).
 */
static void
memcheck_corrupt(struct memcheck_state *s)
{
	size_t page = s->verify_next;
	unsigned char *b = (unsigned char *)memcheck_page(s, page);

	b[MEMCHECK_CORRUPT_OFFSET] ^= 0xff;
	printf("MEMCHECK-CORRUPT page=%zu word=%zu\n", page,
	    (size_t)(MEMCHECK_CORRUPT_OFFSET / sizeof(uint64_t)));
	fflush(stdout);
}

static void
memcheck_status(struct memcheck_state *s)
{
	printf("MEMCHECK seq=%" PRIu64 " uptime_ms=%" PRIu64 " verified=%" PRIu64
	    " errors=%" PRIu64 " rewritten=%" PRIu64 " mib=%" PRIu64 "\n",
	    s->seq, memcheck_clock_ms(CLOCK_BOOTTIME), s->verified, s->errors,
	    s->rewritten, s->cfg.mib);
	fflush(stdout);
	s->seq++;
	if (s->cfg.corrupt > 0 && s->seq == s->cfg.corrupt)
		memcheck_corrupt(s);
}

static int
memcheck_setup(struct memcheck_state *s)
{
	size_t bytes = (size_t)s->cfg.mib * 1024u * 1024u;

	s->npages = (size_t)s->cfg.mib * MEMCHECK_PAGES_PER_MIB;
	s->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->mem == MAP_FAILED) {
		fprintf(stderr, "memcheck: cannot map %" PRIu64 " MiB: %s\n",
		    s->cfg.mib, strerror(errno));
		return -1;
	}
	s->gen = calloc(s->npages, sizeof(*s->gen));
	if (s->gen == NULL) {
		fprintf(stderr, "memcheck: cannot allocate %zu generations\n",
		    s->npages);
		return -1;
	}
	/* Filling writes, hence touches, every page. */
	for (size_t p = 0; p < s->npages; p++)
		memcheck_fill_page(s, p);
	s->rng = UINT64_C(0x2545f4914f6cdd1d);
	return 0;
}

static int
memcheck_run(struct memcheck_state *s)
{
	uint64_t now;

	if (memcheck_setup(s) < 0)
		return 1;
	printf("MEMCHECK-START mib=%" PRIu64 " rate=%" PRIu64
	    " interval_ms=%" PRIu64 "\n", s->cfg.mib, s->cfg.rate,
	    s->cfg.interval_ms);
	fflush(stdout);

	now = memcheck_clock_ms(CLOCK_MONOTONIC);
	s->last_ms = now;
	s->next_status_ms = now;
	for (;;) {
		now = memcheck_clock_ms(CLOCK_MONOTONIC);
		if (now >= s->next_status_ms) {
			if (s->cfg.lines >= 0 && s->seq == (uint64_t)s->cfg.lines)
				break;
			memcheck_status(s);
			s->next_status_ms += s->cfg.interval_ms;
			/* Behind (e.g. the VM was paused): skip, do not burst. */
			if (s->next_status_ms <= now)
				s->next_status_ms = now + s->cfg.interval_ms;
		}
		/* Verify before rewriting: see memcheck_corrupt(). */
		memcheck_verify_chunk(s);
		memcheck_rewrite_due(s, now);
	}
	return s->errors == 0 ? 0 : 1;
}

static bool
memcheck_parse_u64(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = n;
	return true;
}

/* Sets one parameter by its name as it appears after "memcheck.". */
static bool
memcheck_set(struct memcheck_config *cfg, const char *name, const char *v)
{
	uint64_t n;

	if (!memcheck_parse_u64(v, &n))
		return false;
	if (strcmp(name, "mib") == 0 && n > 0 && n <= 1024u * 1024u)
		cfg->mib = n;
	else if (strcmp(name, "rate") == 0 && n <= 1024u * 1024u)
		cfg->rate = n;
	else if (strcmp(name, "interval_ms") == 0 && n > 0 && n <= 3600000u)
		cfg->interval_ms = n;
	else if (strcmp(name, "corrupt") == 0)
		cfg->corrupt = n;
	else if (strcmp(name, "lines") == 0 && n <= INT64_MAX)
		cfg->lines = (int64_t)n;
	else
		return false;
	return true;
}

/* Takes memcheck.NAME=VALUE words from the kernel command line. */
static void
memcheck_parse_cmdline(struct memcheck_config *cfg, const char *path)
{
	char buf[4096];
	size_t len;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';

	for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save);
	    tok != NULL; tok = strtok_r(NULL, " \t\n", &save)) {
		char *eq;

		if (strncmp(tok, "memcheck.", 9) != 0 ||
		    (eq = strchr(tok, '=')) == NULL)
			continue;
		*eq = '\0';
		if (!memcheck_set(cfg, tok + 9, eq + 1))
			fprintf(stderr, "memcheck: ignoring bad %s=%s\n", tok, eq + 1);
	}
}

static void
memcheck_usage(void)
{
	fprintf(stderr, "usage: memcheck [--mib N] [--rate MIB_PER_S] "
	    "[--interval-ms N] [--corrupt N] [--lines N]\n"
	    "Kernel command line memcheck.NAME=N sets the same; argv wins.\n");
}

/* Parses "--interval-ms N" as "interval_ms".  Returns false on bad usage. */
static bool
memcheck_parse_argv(struct memcheck_config *cfg, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char name[32];
		size_t n;

		if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc)
			return false;
		n = strlen(argv[i] + 2);
		if (n == 0 || n >= sizeof(name))
			return false;
		for (size_t k = 0; k <= n; k++)
			name[k] = argv[i][2 + k] == '-' ? '_' : argv[i][2 + k];
		if (!memcheck_set(cfg, name, argv[++i]))
			return false;
	}
	return true;
}

int
main(int argc, char **argv)
{
	static struct memcheck_state s = {
		.cfg = {
			.mib = 64,
			.rate = 8,
			.interval_ms = 500,
			.lines = -1,
		},
	};

	memcheck_parse_cmdline(&s.cfg, "/proc/cmdline");
	if (!memcheck_parse_argv(&s.cfg, argc, argv)) {
		memcheck_usage();
		return 2;
	}
	return memcheck_run(&s);
}
