/*
 * diskcheck: the disk workload and integrity checker of tern's test guest.
 *
 * memcheck's sibling for a block device (see guest/README.md).  While the
 * host migrates the VM with its disk, mirrors it or hot-plugs around it, it
 * answers: is the guest still writing (a status line every interval), and
 * did every write the device acknowledged survive.
 *
 * The first diskcheck.mib MiB of the device are 4 KiB blocks.  Block b at
 * generation g holds a 16-byte header (a magic word xored with b, then g)
 * followed by memcheck's pattern: word i holds seed(b, g) + i * STEP.  The
 * expected generation of every block lives in memory (so it migrates with
 * the RAM).  At start every block is written at generation 1; then blocks
 * picked at random are rewritten at diskcheck.rate blocks per second, each
 * with the next generation, and the verifier rereads the whole area
 * round-robin at diskcheck.verify_rate blocks per second.  A block that
 * reads back with an older generation is a lost write; any other mismatch is
 * a corruption.  Both are errors, reported once (the block is then rewritten
 * at a new generation).
 *
 * All I/O is O_DIRECT with aligned buffers, so reads come from the device,
 * never from the guest's page cache; a write counts once pwrite() returned,
 * that is, once the device acknowledged it.  Single-threaded, like memcheck:
 * a rewrite and a verification never race, so a mismatch is real.
 *
 * Every console line is one write(2), so lines never interleave with
 * memcheck's, which shares the console.  The lines are a contract parsed by
 * tests: see guest/README.md before changing any of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DISKCHECK_BLOCK_SIZE 4096u
#define DISKCHECK_WORDS (DISKCHECK_BLOCK_SIZE / sizeof(uint64_t))
#define DISKCHECK_BLOCKS_PER_MIB (1024u * 1024u / DISKCHECK_BLOCK_SIZE)
#define DISKCHECK_WORD_STEP UINT64_C(0x9e3779b97f4a7c15)
#define DISKCHECK_MAGIC UINT64_C(0x5445524e4449534b)	/* "TERNDISK" */

/* Blocks read by one verification pread (64 KiB), and written at once by
 * the initial fill (1 MiB). */
#define DISKCHECK_VERIFY_CHUNK 16u
#define DISKCHECK_FILL_CHUNK 256u

struct diskcheck_config {
	char dev[256];
	uint64_t mib;		/* area checked, from offset 0 */
	uint64_t rate;		/* blocks/s rewritten; 0 = never */
	uint64_t verify_rate;	/* blocks/s reread */
	uint64_t interval_ms;	/* between status lines */
	int64_t lines;		/* exit after this many lines; -1 = never */
};

struct diskcheck_state {
	struct diskcheck_config cfg;
	int fd;
	uint32_t *gen;		/* expected generation of every block */
	uint64_t *buf;		/* DISKCHECK_FILL_CHUNK aligned blocks: reads */
	uint64_t *wbuf;		/* one aligned block: rewrites */
	size_t nblocks;
	size_t verify_next;
	uint64_t rng;
	uint64_t write_credit;	/* in thousandths of a block */
	uint64_t verify_credit;
	uint64_t last_ms;
	uint64_t next_status_ms;
	uint64_t seq;
	uint64_t written;
	uint64_t verified;
	uint64_t errors;
};

/* Prints one console line with a single write(2). */
static void __attribute__((format(printf, 1, 2)))
diskcheck_say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDOUT_FILENO, line, (size_t)n);
}

static uint64_t
diskcheck_clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* splitmix64's finaliser, as memcheck_seed(). */
static uint64_t
diskcheck_seed(uint64_t block, uint32_t gen)
{
	uint64_t z = (block << 32 | gen) + DISKCHECK_WORD_STEP;

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void
diskcheck_fill(uint64_t *w, size_t block, uint32_t gen)
{
	uint64_t v = diskcheck_seed(block, gen) + 2 * DISKCHECK_WORD_STEP;

	w[0] = DISKCHECK_MAGIC ^ block;
	w[1] = gen;
	for (size_t i = 2; i < DISKCHECK_WORDS; i++, v += DISKCHECK_WORD_STEP)
		w[i] = v;
}

/* The first word of W that differs from block BLOCK at generation GEN, or
 * DISKCHECK_WORDS if none. */
static size_t
diskcheck_mismatch(const uint64_t *w, size_t block, uint32_t gen,
    uint64_t *expected)
{
	uint64_t v = diskcheck_seed(block, gen) + 2 * DISKCHECK_WORD_STEP;

	if (w[0] != (DISKCHECK_MAGIC ^ block)) {
		*expected = DISKCHECK_MAGIC ^ block;
		return 0;
	}
	if (w[1] != gen) {
		*expected = gen;
		return 1;
	}
	for (size_t i = 2; i < DISKCHECK_WORDS; i++, v += DISKCHECK_WORD_STEP)
		if (w[i] != v) {
			*expected = v;
			return i;
		}
	return DISKCHECK_WORDS;
}

static bool
diskcheck_io(struct diskcheck_state *s, bool write_op, void *buf,
    size_t block, size_t count)
{
	size_t len = count * DISKCHECK_BLOCK_SIZE;
	off_t off = (off_t)block * DISKCHECK_BLOCK_SIZE;
	ssize_t n;

	do {
		n = write_op ? pwrite(s->fd, buf, len, off) : pread(s->fd, buf, len, off);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return true;
	s->errors++;
	diskcheck_say("DISKCHECK-IOERROR op=%s block=%zu count=%zu error=%s",
	    write_op ? "write" : "read", block, count,
	    n < 0 ? strerror(errno) : "short");
	return false;
}

static void
diskcheck_rewrite(struct diskcheck_state *s, size_t block)
{
	s->gen[block]++;
	diskcheck_fill(s->wbuf, block, s->gen[block]);
	diskcheck_io(s, true, s->wbuf, block, 1);
}

/*
 * Checks one block read into W.  A bad block is reported (its first bad
 * word; found_gen is the generation its header claims when the rest of the
 * block is that generation's pattern, else -1) and rewritten at a new
 * generation, so that one corruption counts once.
 */
static void
diskcheck_verify_block(struct diskcheck_state *s, const uint64_t *w,
    size_t block)
{
	uint32_t gen = s->gen[block];
	uint64_t expected, dummy;
	size_t word;
	int64_t found = -1;

	s->verified++;
	word = diskcheck_mismatch(w, block, gen, &expected);
	if (word == DISKCHECK_WORDS)
		return;
	s->errors++;
	if (w[1] <= UINT32_MAX &&
	    diskcheck_mismatch(w, block, (uint32_t)w[1], &dummy) == DISKCHECK_WORDS)
		found = (int64_t)w[1];
	diskcheck_say("DISKCHECK-ERROR block=%zu gen=%" PRIu32 " found_gen=%" PRId64
	    " kind=%s word=%zu expected=0x%016" PRIx64 " actual=0x%016" PRIx64,
	    block, gen, found, found >= 0 && found < gen ? "lost-write" : "corrupt",
	    word, expected, w[word]);
	diskcheck_rewrite(s, block);
}

static void
diskcheck_verify_chunk(struct diskcheck_state *s)
{
	size_t first = s->verify_next;
	size_t count = DISKCHECK_VERIFY_CHUNK;

	if (count > s->nblocks - first)
		count = s->nblocks - first;
	if (diskcheck_io(s, false, s->buf, first, count))
		for (size_t i = 0; i < count; i++)
			diskcheck_verify_block(s,
			    s->buf + i * DISKCHECK_WORDS, first + i);
	s->verify_next = first + count == s->nblocks ? 0 : first + count;
}

static size_t
diskcheck_random_block(struct diskcheck_state *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return (size_t)(s->rng % s->nblocks);
}

/* Adds the credit earned since the last step, capped at one second's worth
 * so a paused guest does not catch up in a burst. */
static void
diskcheck_earn(uint64_t *credit, uint64_t per_sec, uint64_t elapsed_ms)
{
	*credit += elapsed_ms * per_sec;
	if (*credit > per_sec * 1000u)
		*credit = per_sec * 1000u;
}

static void
diskcheck_status(struct diskcheck_state *s)
{
	diskcheck_say("DISKCHECK seq=%" PRIu64 " uptime_ms=%" PRIu64
	    " blocks=%zu written=%" PRIu64 " verified=%" PRIu64
	    " errors=%" PRIu64, s->seq, diskcheck_clock_ms(CLOCK_BOOTTIME),
	    s->nblocks, s->written, s->verified, s->errors);
	s->seq++;
}

static int
diskcheck_setup(struct diskcheck_state *s)
{
	off_t size;

	s->fd = open(s->cfg.dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (s->fd < 0) {
		diskcheck_say("DISKCHECK-FAILED dev=%s error=%s", s->cfg.dev,
		    strerror(errno));
		return -1;
	}
	size = lseek(s->fd, 0, SEEK_END);
	if (size < 0 || (uint64_t)size < s->cfg.mib * 1024u * 1024u) {
		diskcheck_say("DISKCHECK-FAILED dev=%s error=smaller than %" PRIu64
		    " MiB", s->cfg.dev, s->cfg.mib);
		return -1;
	}
	s->nblocks = (size_t)s->cfg.mib * DISKCHECK_BLOCKS_PER_MIB;
	s->gen = calloc(s->nblocks, sizeof(*s->gen));
	if (s->gen == NULL || posix_memalign((void **)&s->buf,
	    DISKCHECK_BLOCK_SIZE, DISKCHECK_FILL_CHUNK * DISKCHECK_BLOCK_SIZE) != 0 ||
	    posix_memalign((void **)&s->wbuf, DISKCHECK_BLOCK_SIZE,
	    DISKCHECK_BLOCK_SIZE) != 0) {
		diskcheck_say("DISKCHECK-FAILED dev=%s error=out of memory",
		    s->cfg.dev);
		return -1;
	}
	for (size_t b = 0; b < s->nblocks; b += DISKCHECK_FILL_CHUNK) {
		size_t n = s->nblocks - b < DISKCHECK_FILL_CHUNK ?
		    s->nblocks - b : DISKCHECK_FILL_CHUNK;

		for (size_t i = 0; i < n; i++) {
			s->gen[b + i] = 1;
			diskcheck_fill(s->buf + i * DISKCHECK_WORDS, b + i, 1);
		}
		if (!diskcheck_io(s, true, s->buf, b, n))
			return -1;
	}
	if (fdatasync(s->fd) < 0) {
		diskcheck_say("DISKCHECK-FAILED dev=%s error=fdatasync: %s",
		    s->cfg.dev, strerror(errno));
		return -1;
	}
	s->rng = UINT64_C(0x9e3779b97f4a7c15);
	return 0;
}

static int
diskcheck_run(struct diskcheck_state *s)
{
	uint64_t now;

	if (diskcheck_setup(s) < 0)
		return 1;
	diskcheck_say("DISKCHECK-START dev=%s mib=%" PRIu64 " rate=%" PRIu64
	    " verify_rate=%" PRIu64 " interval_ms=%" PRIu64, s->cfg.dev,
	    s->cfg.mib, s->cfg.rate, s->cfg.verify_rate, s->cfg.interval_ms);

	now = diskcheck_clock_ms(CLOCK_MONOTONIC);
	s->last_ms = now;
	s->next_status_ms = now;
	for (;;) {
		bool idle = true;

		now = diskcheck_clock_ms(CLOCK_MONOTONIC);
		if (now >= s->next_status_ms) {
			if (s->cfg.lines >= 0 && s->seq == (uint64_t)s->cfg.lines)
				break;
			diskcheck_status(s);
			s->next_status_ms += s->cfg.interval_ms;
			if (s->next_status_ms <= now)
				s->next_status_ms = now + s->cfg.interval_ms;
		}
		diskcheck_earn(&s->verify_credit, s->cfg.verify_rate, now - s->last_ms);
		diskcheck_earn(&s->write_credit, s->cfg.rate, now - s->last_ms);
		s->last_ms = now;
		/* Verify before rewriting, as memcheck does. */
		if (s->verify_credit >= DISKCHECK_VERIFY_CHUNK * 1000u) {
			diskcheck_verify_chunk(s);
			s->verify_credit -= DISKCHECK_VERIFY_CHUNK * 1000u;
			idle = false;
		}
		if (s->write_credit >= 1000u) {
			diskcheck_rewrite(s, diskcheck_random_block(s));
			s->written++;
			s->write_credit -= 1000u;
			idle = false;
		}
		if (idle)
			usleep(2000);
	}
	return s->errors == 0 ? 0 : 1;
}

static bool
diskcheck_parse_u64(const char *v, uint64_t *out)
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

/* Sets one parameter by its name as it appears after "diskcheck.". */
static bool
diskcheck_set(struct diskcheck_config *cfg, const char *name, const char *v)
{
	uint64_t n;

	if (strcmp(name, "dev") == 0) {
		if (v[0] != '/' || strlen(v) >= sizeof(cfg->dev))
			return false;
		strcpy(cfg->dev, v);
		return true;
	}
	if (!diskcheck_parse_u64(v, &n))
		return false;
	if (strcmp(name, "mib") == 0 && n > 0 && n <= 1024u * 1024u)
		cfg->mib = n;
	else if (strcmp(name, "rate") == 0 && n <= 1000000u)
		cfg->rate = n;
	else if (strcmp(name, "verify_rate") == 0 && n > 0 && n <= 1000000u)
		cfg->verify_rate = n;
	else if (strcmp(name, "interval_ms") == 0 && n > 0 && n <= 3600000u)
		cfg->interval_ms = n;
	else if (strcmp(name, "lines") == 0 && n <= INT64_MAX)
		cfg->lines = (int64_t)n;
	else
		return false;
	return true;
}

/* Takes diskcheck.NAME=VALUE words from the kernel command line. */
static void
diskcheck_parse_cmdline(struct diskcheck_config *cfg, const char *path)
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

		if (strncmp(tok, "diskcheck.", 10) != 0 ||
		    (eq = strchr(tok, '=')) == NULL)
			continue;
		*eq = '\0';
		if (!diskcheck_set(cfg, tok + 10, eq + 1))
			fprintf(stderr, "diskcheck: ignoring bad %s=%s\n", tok, eq + 1);
	}
}

static void
diskcheck_usage(void)
{
	fprintf(stderr, "usage: diskcheck --dev PATH [--mib N] [--rate BLOCKS_PER_S] "
	    "[--verify-rate BLOCKS_PER_S] [--interval-ms N] [--lines N]\n"
	    "Kernel command line diskcheck.NAME=V sets the same; argv wins.\n"
	    "It overwrites the first N MiB of PATH.\n");
}

static bool
diskcheck_parse_argv(struct diskcheck_config *cfg, int argc, char **argv)
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
		if (!diskcheck_set(cfg, name, argv[++i]))
			return false;
	}
	return true;
}

int
main(int argc, char **argv)
{
	static struct diskcheck_state s = {
		.cfg = {
			.mib = 64,
			.rate = 64,
			.verify_rate = 2048,
			.interval_ms = 500,
			.lines = -1,
		},
		.fd = -1,
	};

	diskcheck_parse_cmdline(&s.cfg, "/proc/cmdline");
	if (!diskcheck_parse_argv(&s.cfg, argc, argv) || s.cfg.dev[0] == '\0') {
		diskcheck_usage();
		return 2;
	}
	return diskcheck_run(&s);
}
