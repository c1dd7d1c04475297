/* Upscales one raw RGB24 frame with libsavl.a.
 *
 *   upscale WIDTH HEIGHT IN.rgb OUT.rgb [MODEL.onnx]
 *
 * Build (from the repository root):
 *   cargo build --release -p savl-capi
 *   cc examples/c/upscale.c -Icapi/include target/release/libsavl.a -lpthread -ldl -lm -o upscale
 *
 * The output is byte-identical to `savl upscale --raw WIDTHxHEIGHT < IN.rgb > OUT.rgb`.
 * Before upscaling it checks that the library reports bad arguments and caught panics as
 * error codes, so a linking program can rely on that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "savl.h"

static int fail(const char *what, SavlStatus st) {
    fprintf(stderr, "upscale: %s: %s: %s\n", what, savl_status_str(st), savl_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s WIDTH HEIGHT IN.rgb OUT.rgb [MODEL.onnx]\n", argv[0]);
        return 2;
    }
    uint32_t w = (uint32_t)strtoul(argv[1], NULL, 10), h = (uint32_t)strtoul(argv[2], NULL, 10);
    if (w == 0 || h == 0) {
        fprintf(stderr, "upscale: bad size %sx%s\n", argv[1], argv[2]);
        return 2;
    }

    /* The error contract: a panic inside the library comes back as a status, not an abort. */
    SavlStatus st = savl_debug_trigger_panic();
    if (st != SAVL_STATUS_PANIC || strlen(savl_last_error()) == 0) {
        fprintf(stderr, "upscale: a panic did not come back as SAVL_STATUS_PANIC (got %d)\n", (int)st);
        return 1;
    }
    printf("panic check: %s (%s)\n", savl_status_str(st), savl_last_error());
    st = savl_upscaler_new(NULL, NULL);
    if (st != SAVL_STATUS_INVALID_ARGUMENT) {
        fprintf(stderr, "upscale: NULL out-pointer not rejected (got %d)\n", (int)st);
        return 1;
    }
    printf("null check: %s (%s)\n", savl_status_str(st), savl_last_error());

    size_t in_len = (size_t)w * h * 3;
    uint8_t *src = malloc(in_len);
    FILE *f = fopen(argv[3], "rb");
    if (!src || !f || fread(src, 1, in_len, f) != in_len) {
        fprintf(stderr, "upscale: %s: cannot read %zu bytes of RGB24\n", argv[3], in_len);
        return 1;
    }
    fclose(f);

    SavlOptions opts = savl_options_default();
    opts.model_path = argc > 5 ? argv[5] : NULL; /* NULL: the embedded default model */
    opts.threads = 1;
    SavlUpscaler *up = NULL;
    if ((st = savl_upscaler_new(&opts, &up)) != SAVL_STATUS_OK) return fail("savl_upscaler_new", st);

    uint32_t ow, oh;
    if ((st = savl_upscaler_output_size(up, w, h, &ow, &oh)) != SAVL_STATUS_OK)
        return fail("savl_upscaler_output_size", st);
    size_t out_stride = (size_t)ow * 3, out_len = out_stride * oh;
    uint8_t *dst = malloc(out_len);
    if (!dst) return 1;
    if ((st = savl_upscaler_run(up, src, (size_t)w * 3 * h, w, h, (size_t)w * 3, dst, out_stride, out_len)) != SAVL_STATUS_OK)
        return fail("savl_upscaler_run", st);
    savl_upscaler_free(&up);
    if (up != NULL) return 1; /* free must null the caller's pointer */

    f = fopen(argv[4], "wb");
    if (!f || fwrite(dst, 1, out_len, f) != out_len) {
        fprintf(stderr, "upscale: %s: cannot write\n", argv[4]);
        return 1;
    }
    fclose(f);
    printf("upscaled %ux%u -> %ux%u into %s\n", w, h, ow, oh, argv[4]);
    free(src);
    free(dst);
    return 0;
}
