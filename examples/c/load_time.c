/* Start-up cost of the embedded default model through the C ABI, in milliseconds (median of
 * RUNS): `savl_upscaler_new` (parse, type and simplify the model), the first
 * `savl_upscaler_run` on a SIZE×SIZE frame (plan for that tile shape plus one run) and a second
 * run (plan cached). One thread.
 *
 *   load_time [SIZE] [RUNS]          defaults 128 and 5
 *
 * Build against a shared library (from the repository root), for example the shipped one:
 *   cc -O2 examples/c/load_time.c -Icapi/include -Ltarget/dist/ship -lsavl -o load_time
 *   LD_LIBRARY_PATH=target/dist/ship ./load_time */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "savl.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp);
    return v[n / 2];
}

int main(int argc, char **argv) {
    uint32_t size = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 128;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (size == 0 || runs < 1 || runs > 100) {
        fprintf(stderr, "usage: %s [SIZE] [RUNS]\n", argv[0]);
        return 2;
    }
    size_t in_len = (size_t)size * size * 3, out_len = in_len * 16;
    uint8_t *src = malloc(in_len), *dst = malloc(out_len);
    if (!src || !dst) return 1;
    for (size_t i = 0; i < in_len; i++) src[i] = (uint8_t)(i * 7 + i / 3);
    double load[100], first[100], second[100];
    for (int r = 0; r < runs; r++) {
        SavlOptions opts = savl_options_default();
        opts.threads = 1;
        SavlUpscaler *up = NULL;
        double t0 = now_ms();
        SavlStatus st = savl_upscaler_new(&opts, &up);
        double t1 = now_ms();
        if (st == SAVL_STATUS_OK)
            st = savl_upscaler_run(up, src, size, size, (size_t)size * 3, dst, (size_t)size * 12, out_len);
        double t2 = now_ms();
        if (st == SAVL_STATUS_OK)
            st = savl_upscaler_run(up, src, size, size, (size_t)size * 3, dst, (size_t)size * 12, out_len);
        double t3 = now_ms();
        if (st != SAVL_STATUS_OK) {
            fprintf(stderr, "load_time: %s: %s\n", savl_status_str(st), savl_last_error());
            return 1;
        }
        savl_upscaler_free(&up);
        load[r] = t1 - t0;
        first[r] = t2 - t1;
        second[r] = t3 - t2;
    }
    double l = median(load, runs), f = median(first, runs), s = median(second, runs);
    printf("embedded model, %ux%u, 1 thread, median of %d: load %.1f ms, first run %.1f ms, "
           "second run %.1f ms, load + first %.1f ms\n", size, size, runs, l, f, s, l + f);
    return 0;
}
