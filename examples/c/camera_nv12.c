/* Camera-style use of libsavl: a sequence of NV12 frames (as phone cameras and hardware
 * decoders hand them out: a Y plane and an interleaved UV plane, each with its own stride) is
 * upscaled x4 straight into NV12 output buffers, with a progress callback, printing the time of
 * each frame. The frames are synthesised in memory (a moving gradient) so the program needs no
 * camera.
 *
 *   camera_nv12 [WIDTH HEIGHT FRAMES [OUT.nv12]]     (default 64 48 4)
 *
 * OUT.nv12, when given, receives the output frames one after the other, each packed (Y rows of
 * 4*WIDTH bytes, then UV rows). BT.601 limited range, the default of a zeroed SavlImage.
 *
 * Build (from the repository root):
 *   cargo build --release -p savl-capi
 *   cc examples/c/camera_nv12.c -Icapi/include target/release/libsavl.a -lpthread -ldl -lm \
 *     -o camera_nv12
 * or, with the dist folder's pkg-config file:
 *   cc examples/c/camera_nv12.c $(pkg-config --cflags --libs --static savl) -o camera_nv12 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "savl.h"

/* A frame in camera memory: rows padded to a multiple of 64 bytes, as many drivers do. */
typedef struct {
    uint32_t w, h;
    size_t y_stride, uv_stride;
    uint8_t *y, *uv;
} Nv12Frame;

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

static int frame_alloc(Nv12Frame *f, uint32_t w, uint32_t h) {
    f->w = w;
    f->h = h;
    f->y_stride = align64(w);
    f->uv_stride = align64(2 * ((w + 1) / 2));
    f->y = calloc(f->y_stride, h);
    f->uv = calloc(f->uv_stride, (h + 1) / 2);
    return f->y != NULL && f->uv != NULL;
}

static SavlImage frame_image(const Nv12Frame *f) {
    SavlImage img = savl_image_default(); /* BT.601, limited range */
    img.format = SAVL_PIXEL_FORMAT_NV12;
    img.width = f->w;
    img.height = f->h;
    img.planes[0] = f->y;
    img.strides[0] = f->y_stride;
    img.lengths[0] = f->y_stride * f->h;
    img.planes[1] = f->uv;
    img.strides[1] = f->uv_stride;
    img.lengths[1] = f->uv_stride * ((f->h + 1) / 2);
    return img;
}

/* Frame n of the synthetic sequence: a diagonal gradient moving 3 pixels a frame, with a
 * chroma pattern moving the other way. */
static void synthesise(Nv12Frame *f, uint32_t n) {
    for (uint32_t y = 0; y < f->h; y++)
        for (uint32_t x = 0; x < f->w; x++)
            f->y[y * f->y_stride + x] = (uint8_t)(16 + (x * 5 + y * 3 + n * 3) % 220);
    for (uint32_t y = 0; y < (f->h + 1) / 2; y++)
        for (uint32_t x = 0; x < (f->w + 1) / 2; x++) {
            f->uv[y * f->uv_stride + 2 * x] = (uint8_t)(64 + (x * 7 + n * 5) % 128);
            f->uv[y * f->uv_stride + 2 * x + 1] = (uint8_t)(64 + (y * 9 + 200 - n * 5 % 200) % 128);
        }
}

typedef struct {
    unsigned calls;
    uint32_t done, total;
} Progress;

/* Called on this thread after each band of output rows; returning non-zero would cancel. */
static int on_progress(void *user, uint32_t done, uint32_t total) {
    Progress *p = user;
    p->calls++;
    p->done = done;
    p->total = total;
    return 0;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int fail(const char *what, SavlStatus st) {
    fprintf(stderr, "camera_nv12: %s: %s: %s\n", what, savl_status_str(st), savl_last_error());
    return 1;
}

int main(int argc, char **argv) {
    uint32_t w = 64, h = 48, frames = 4;
    const char *out_path = NULL;
    if (argc >= 4) {
        w = (uint32_t)strtoul(argv[1], NULL, 10);
        h = (uint32_t)strtoul(argv[2], NULL, 10);
        frames = (uint32_t)strtoul(argv[3], NULL, 10);
    }
    if (argc >= 5) out_path = argv[4];
    if (w == 0 || h == 0 || (argc != 1 && argc != 4 && argc != 5)) {
        fprintf(stderr, "usage: %s [WIDTH HEIGHT FRAMES [OUT.nv12]]\n", argv[0]);
        return 2;
    }
    if (savl_abi_version() < SAVL_ABI_VERSION) {
        fprintf(stderr, "camera_nv12: libsavl ABI %u is older than the header's %u\n",
                savl_abi_version(), SAVL_ABI_VERSION);
        return 1;
    }
    printf("libsavl %s (ABI %u)\n", savl_version(), savl_abi_version());

    SavlOptions opts = savl_options_default(); /* embedded model */
    SavlUpscaler *up = NULL;
    SavlStatus st = savl_upscaler_new(&opts, &up);
    if (st != SAVL_STATUS_OK) return fail("loading the model", st);
    uint32_t ow, oh;
    st = savl_upscaler_output_size(up, w, h, &ow, &oh);
    if (st != SAVL_STATUS_OK) return fail("output size", st);

    Nv12Frame in, out;
    if (!frame_alloc(&in, w, h) || !frame_alloc(&out, ow, oh)) {
        fprintf(stderr, "camera_nv12: out of memory\n");
        return 1;
    }
    FILE *sink = out_path ? fopen(out_path, "wb") : NULL;
    if (out_path && !sink) {
        perror(out_path);
        return 1;
    }
    SavlImage src = frame_image(&in), dst = frame_image(&out);
    for (uint32_t n = 0; n < frames; n++) {
        synthesise(&in, n);
        Progress p = {0, 0, 0};
        double t0 = now_ms();
        st = savl_upscaler_run_image(up, &src, &dst, on_progress, &p);
        double ms = now_ms() - t0;
        if (st != SAVL_STATUS_OK) return fail("upscaling", st);
        printf("frame %u: %ux%u NV12 -> %ux%u NV12 in %.1f ms (%u progress calls, %u/%u rows)\n",
               n, w, h, ow, oh, ms, p.calls, p.done, p.total);
        if (sink) {
            for (uint32_t y = 0; y < oh; y++) fwrite(out.y + y * out.y_stride, 1, ow, sink);
            for (uint32_t y = 0; y < (oh + 1) / 2; y++)
                fwrite(out.uv + y * out.uv_stride, 1, 2 * ((ow + 1) / 2), sink);
        }
    }
    if (sink && fclose(sink) != 0) {
        perror(out_path);
        return 1;
    }
    free(in.y);
    free(in.uv);
    free(out.y);
    free(out.uv);
    savl_upscaler_free(&up);
    return 0;
}
