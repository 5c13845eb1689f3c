// The traffic importer's scanner alone (issue 17), for timing changes to Sources/CLogScan/scan.c without a release
// build: scans a log held in memory (or mapped) with a host table made from a list of catalog hosts, as the importer
// does (1 MB longest line, 1,024 lines handed back a call), and prints the lines, requests and lines handed back, a
// checksum of what was handed back (equal for two versions of the scanner that agree) and the median processor time.
//
//   python3 scripts/logscan-corpus.py hosts Sources/InternetAccess/Resources/ai-apps.json > hosts.txt
//   python3 scripts/logscan-corpus.py squid 128 > squid.log      (or cef; the bench's shape of log)
//   clang -O2 -ISources/CLogScan/include -DSCAN_C='"../Sources/CLogScan/scan.c"' scripts/logscan-harness.c -o harness
//   taskset -c 1 ./harness squid squid.log hosts.txt 11 [instructions 0-4] [1: map the file]
//
// Environment: NOTABLE=1 scans without a table (every line handed back), CAP and MAXLINE change the call's capacity
// and the longest line (to compare two versions at chunk and capacity edges).
#define _GNU_SOURCE
#include SCAN_C
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

static uint64_t *H; static tessera_host_entry *E; static uint8_t T[1 << 16]; static size_t tlen, cnt, cap = 64;
static void store(uint64_t h, tessera_host_entry e) {
    uint64_t s = tessera_host_slot(h, cap - 1);
    while (H[s]) s = (s + 1) & (cap - 1);
    H[s] = h; E[s] = e;
}
static tessera_host_table table(void) { tessera_host_table t = {H, E, T, cap - 1}; return t; }
static void grow(void) {
    uint64_t *oh = H; tessera_host_entry *oe = E; size_t oc = cap;
    cap *= 2; H = calloc(cap, 8); E = calloc(cap, sizeof *E);
    for (size_t i = 0; i < oc; i++) if (oh[i]) store(oh[i], oe[i]);
}
static void place(size_t from, size_t to, int app) {
    tessera_host_table t = table();
    int64_t s = tessera_host_find(&t, T + from, to - from);
    if (s >= 0) { if (app >= 0) E[s].app = app; return; }
    if ((cnt + 1) * 8 > cap) grow();
    tessera_host_entry e = {(int32_t)from, (int32_t)(to - from), app};
    store(tessera_host_hash(T + from, to - from), e); cnt++;
}
static void insert(const char *h, int app) {
    size_t start = tlen, n = strlen(h);
    memcpy(T + tlen, h, n); tlen += n;
    for (size_t i = start; i < tlen; i++) if (T[i] == '.') place(i + 1, start + n, -1);
    place(start, start + n, app);
}
static double cpu(void) { struct timespec ts; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); return ts.tv_sec + ts.tv_nsec / 1e9; }
static int cmpd(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "harness squid|cef LOG HOSTS ROUNDS [instructions 0-4] [map 0-2]\n"); return 2; }
    tessera_log_format fmt = strcmp(argv[1], "cef") == 0 ? tessera_log_cef : tessera_log_squid;
    int rounds = atoi(argv[4]), isa = argc > 5 ? atoi(argv[5]) : 0, map = argc > 6 ? atoi(argv[6]) : 0;
    if (rounds < 1 || rounds > 64) rounds = 5;
    if (!tessera_log_scan_use(isa)) { fprintf(stderr, "isa missing\n"); return 2; }
    H = calloc(cap, 8); E = calloc(cap, sizeof *E);
    FILE *hf = fopen(argv[3], "r"); char hb[300]; int app;
    if (!hf) { perror(argv[3]); return 2; }
    while (fscanf(hf, "%299s %d", hb, &app) == 2) insert(hb, app);
    int fd = open(argv[2], O_RDONLY); struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror(argv[2]); return 2; }
    size_t len = st.st_size;
    uint8_t *data = NULL;
    if (!map) { data = malloc(len); size_t got = 0; while (got < len) got += read(fd, data + got, len - got); }
    tessera_log_line *out = malloc(1024 * sizeof *out);
    double times[64]; uint64_t sum = 0, back = 0, lines = 0, req = 0;
    tessera_host_table t = table();
    for (int r = 0; r < rounds; r++) {
        double c0 = cpu();
        uint8_t *d = data;
        if (map == 1) { d = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0); madvise(d, len, MADV_SEQUENTIAL); }
        if (map == 2) {
            // 2 MB aligned, MADV_HUGEPAGE (what the page cache's folios allow decides whether it maps 2 MB pages).
            uint8_t *r0 = mmap(NULL, len + (2 << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            uint8_t *al = (uint8_t *)(((uintptr_t)r0 + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
            d = mmap(al, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
            madvise(d, len, MADV_HUGEPAGE);
        }
        tessera_log_state state = {0};
        size_t from = 0; sum = 0; back = 0;
        for (;;) {
            size_t n = tessera_log_scan(fmt, d, len, &from, 1, getenv("MAXLINE") ? atoi(getenv("MAXLINE")) : 1 << 20, getenv("NOTABLE") ? NULL : &t, &state, out, getenv("CAP") ? atoi(getenv("CAP")) : 1024);
            for (size_t i = 0; i < n; i++) {
                tessera_log_line *l = &out[i];
                sum = sum * 31 + l->start * 7 + l->end * 11 + l->host_start * 13 + l->host_end * 17 + l->number * 3 + l->kind * 5 + (uint64_t)(int64_t)l->app;
            }
            back += n;
            if (n < (getenv("CAP") ? (size_t)atoi(getenv("CAP")) : 1024)) break;
        }
        if (map && r == 0) { char cmd[100]; snprintf(cmd, 100, "grep -E 'FilePmd|Rss' /proc/%d/smaps_rollup", getpid()); system(cmd); }
        if (map) munmap(d, len);
        times[r] = cpu() - c0; lines = state.lines; req = state.requests;
    }
    qsort(times, rounds, sizeof(double), cmpd);
    printf("%s isa=%d lines=%lu requests=%lu back=%lu sum=%016lx  median %.2f ms (min %.2f)  %.0f MB/s  %.1f ns/line\n",
           argv[1], isa, lines, req, back, sum, times[rounds / 2] * 1e3, times[0] * 1e3, len / 1e6 / times[rounds / 2],
           times[rounds / 2] * 1e9 / lines);
    return 0;
}
