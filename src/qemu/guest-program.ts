/**
 * The test VM's guest program, kept as C source so `livemig qemu testvm` can build it with gcc -static wherever
 * livemig runs (dist/ carries no .c files). What it does and prints is described in its header comment.
 */
export const DIRTIER_C = String.raw`
/*
 * livemig test-VM guest program: dirties memory at a set rate and pattern and checks its own memory.
 *
 * Memory: MIB MiB of 4 KiB pages plus one version counter per page. Every 64-bit word i of page p holds
 * word(p, v, i), where v is the page's version for the first BYTES bytes and 0 for the rest, so a write changes
 * exactly BYTES bytes of a page (what XBZRLE sees). Each 10 ms tick writes RATE/100 random pages (version + 1) and
 * verifies a slice of the pages, so the whole region is checked about every two seconds. After each full sweep it
 * prints one line to the console:
 *   LIVEMIG sweep=N dirtied=D corrupt=C uptime_ms=T
 * and for every bad page, once: LIVEMIG CORRUPT page=P word=I
 * Parameters come from the kernel command line as environment of init: lm_mib, lm_rate (pages/s), lm_bytes, lm_hot
 * (pages of a hot set that takes 90% of the writes; 0 = writes spread uniformly).
 * Any corrupt page after a migration means the migration lost or mangled a write.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096u
#define WORDS (PAGE / 8u)

static inline uint64_t word(uint64_t page, uint64_t version, uint64_t i) {
  uint64_t x = (page << 20) ^ (version << 40) ^ i ^ 0x9e3779b97f4a7c15ull;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  return x;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t env(const char *name, uint64_t fallback) {
  const char *v = getenv(name);
  return v && *v ? strtoull(v, NULL, 10) : fallback;
}

int main(void) {
  uint64_t mib = env("lm_mib", 64), rate = env("lm_rate", 2000), bytes = env("lm_bytes", PAGE), hot = env("lm_hot", 0);
  if (bytes == 0 || bytes > PAGE) bytes = PAGE;
  uint64_t pages = mib * 256u, changed = (bytes + 7u) / 8u;
  if (hot > pages) hot = pages;
  uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  uint32_t *version = calloc(pages, sizeof(uint32_t));
  uint8_t *reported = calloc(pages, 1);
  if (mem == MAP_FAILED || !version || !reported) {
    printf("LIVEMIG FAILED out of memory\n");
    return 1;
  }
  for (uint64_t p = 0; p < pages; p++)
    for (uint64_t i = 0; i < WORDS; i++) mem[p * WORDS + i] = word(p, 0, i);
  printf("LIVEMIG ready mib=%llu rate=%llu bytes=%llu hot=%llu pages=%llu\n", (unsigned long long)mib,
         (unsigned long long)rate, (unsigned long long)bytes, (unsigned long long)hot, (unsigned long long)pages);
  fflush(stdout);

  uint64_t rng = 88172645463325252ull, dirtied = 0, corrupt = 0, sweep = 0, cursor = 0;
  uint64_t start = now_ms(), next = start, credit = 0;
  const uint64_t verify_per_tick = pages / 200u + 1u; /* whole region every ~2 s */
  for (;;) {
    credit += rate; /* pages owed this tick, in hundredths */
    for (; credit >= 100u; credit -= 100u) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      /* The hot set is spread over the region (every pages/hot-th page), as a real program's hot data is. */
      uint64_t p = hot && rng % 10u != 0 ? ((rng >> 8) % hot) * (pages / hot) : rng % pages, v = ++version[p];
      for (uint64_t i = 0; i < changed; i++) mem[p * WORDS + i] = word(p, v, i);
      dirtied++;
    }
    for (uint64_t n = 0; n < verify_per_tick; n++) {
      uint64_t p = cursor, v = version[p];
      for (uint64_t i = 0; i < WORDS; i++) {
        if (mem[p * WORDS + i] != word(p, i < changed ? v : 0, i)) {
          corrupt++;
          if (!reported[p]) {
            reported[p] = 1;
            printf("LIVEMIG CORRUPT page=%llu word=%llu\n", (unsigned long long)p, (unsigned long long)i);
          }
          break;
        }
      }
      if (++cursor == pages) {
        cursor = 0;
        sweep++;
        printf("LIVEMIG sweep=%llu dirtied=%llu corrupt=%llu uptime_ms=%llu\n", (unsigned long long)sweep,
               (unsigned long long)dirtied, (unsigned long long)corrupt, (unsigned long long)(now_ms() - start));
        fflush(stdout);
      }
    }
    next += 10;
    uint64_t t = now_ms();
    if (next > t) {
      struct timespec ts = {0, (long)(next - t) * 1000000L};
      nanosleep(&ts, NULL);
    } else if (t - next > 1000) {
      next = t; /* paused (switch-over, throttling): do not try to catch up a backlog */
    }
  }
}
`;
