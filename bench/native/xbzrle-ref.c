/*
 * Native yardstick for `npm run bench:codec`: the portable XBZRLE encoder as QEMU builds it (word-at-a-time
 * run scanning over `long`, gcc -O2), written here from the format, plus memcmp and memcpy per page.
 *
 *   xbzrle-ref FILE PAGES REPEATS
 * FILE holds PAGES old pages then PAGES new pages of 4096 bytes. Prints one JSON line with the best
 * time in nanoseconds of one pass over all pages for each of: encode, memcmp, memcpy.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096

static int put_uleb(uint8_t *out, uint32_t n)
{
    if (n < 0x80) {
        out[0] = n;
        return 1;
    }
    out[0] = (n & 0x7f) | 0x80;
    out[1] = n >> 7;
    return 2;
}

/* Same overflow rule as src/codec/xbzrle.ts; runs scanned bytewise up to a word boundary, then by words. */
static int encode(const uint8_t *old, const uint8_t *cur, int n, uint8_t *dst, int limit)
{
    int d = 0, i = 0;
    const uint64_t ones = 0x0101010101010101ULL;
    while (i < n) {
        int z = i, e, len;
        if (d + 2 > limit)
            return -1;
        while (z < n && (z & 7) && old[z] == cur[z])
            z++;
        if (z < n && !(z & 7)) {
            while (z + 8 <= n && *(const uint64_t *)(old + z) == *(const uint64_t *)(cur + z))
                z += 8;
            while (z < n && old[z] == cur[z])
                z++;
        }
        if (z == n)
            return d;
        d += put_uleb(dst + d, z - i);
        i = z;
        if (d + 2 > limit)
            return -1;
        e = i;
        while (e < n && (e & 7) && old[e] != cur[e])
            e++;
        if (e < n && !(e & 7)) {
            while (e + 8 <= n) {
                uint64_t x = *(const uint64_t *)(old + e) ^ *(const uint64_t *)(cur + e);
                if ((x - ones) & ~x & (ones << 7))
                    break;
                e += 8;
            }
            while (e < n && old[e] != cur[e])
                e++;
        }
        len = e - i;
        if (d + (len < 0x80 ? 1 : 2) + len > limit)
            return -1;
        d += put_uleb(dst + d, len);
        memcpy(dst + d, cur + i, len);
        d += len;
        i = e;
    }
    return d;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s FILE PAGES REPEATS\n", argv[0]);
        return 2;
    }
    long pages = atol(argv[2]);
    int repeats = atoi(argv[3]);
    size_t bytes = (size_t)pages * PAGE;
    uint8_t *buf = aligned_alloc(64, 2 * bytes);
    uint8_t *copy = aligned_alloc(64, bytes);
    uint8_t *out = aligned_alloc(64, bytes);
    FILE *f = fopen(argv[1], "rb");
    if (!buf || !copy || !out || !f || fread(buf, 1, 2 * bytes, f) != 2 * bytes) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    memset(copy, 0, bytes);
    memset(out, 0, bytes);
    const uint8_t *old = buf, *cur = buf + bytes;
    double best_enc = 1e30, best_cmp = 1e30, best_cpy = 1e30;
    long sink = 0, encoded = 0, overflow = 0;
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ns();
        encoded = overflow = 0;
        for (long p = 0; p < pages; p++) {
            int len = encode(old + p * PAGE, cur + p * PAGE, PAGE, out + p * PAGE, PAGE);
            if (len < 0)
                overflow++;
            else
                encoded += len;
        }
        double t1 = now_ns();
        for (long p = 0; p < pages; p++)
            sink += memcmp(old + p * PAGE, cur + p * PAGE, PAGE) != 0;
        double t2 = now_ns();
        for (long p = 0; p < pages; p++)
            memcpy(copy + p * PAGE, cur + p * PAGE, PAGE);
        double t3 = now_ns();
        if (t1 - t0 < best_enc) best_enc = t1 - t0;
        if (t2 - t1 < best_cmp) best_cmp = t2 - t1;
        if (t3 - t2 < best_cpy) best_cpy = t3 - t2;
    }
    printf("{\"encodeNs\":%.0f,\"memcmpNs\":%.0f,\"memcpyNs\":%.0f,\"encodedBytes\":%ld,\"overflowPages\":%ld,"
           "\"sink\":%ld}\n",
           best_enc, best_cmp, best_cpy, encoded, overflow, sink + copy[bytes / 2]);
    return 0;
}
