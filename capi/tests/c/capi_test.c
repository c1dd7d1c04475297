/* The C ABI contract checked from C, linked against libsavl.a (driven by tests/capi_c.rs).
 * Each check prints one line; the exit status is the number of failed checks. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "savl.h"

static int failures = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            printf("ok   ");                                               \
        } else {                                                           \
            printf("FAIL ");                                               \
            failures++;                                                    \
        }                                                                  \
        printf(__VA_ARGS__);                                               \
        printf(" [last error: %s]\n", savl_last_error());                 \
    } while (0)

#define W 20
#define H 13
static uint8_t src[W * H * 3];
static uint8_t expected[W * H * 3 * 16];
static SavlUpscaler *shared = NULL;

static void *worker(void *arg) {
    (void)arg;
    uint8_t *dst = malloc(sizeof expected);
    intptr_t bad = 0;
    for (int i = 0; i < 3; i++) {
        SavlStatus st = savl_upscaler_run(shared, src, sizeof src, W, H, W * 3, dst, W * 12,
                                          sizeof expected);
        if (st != SAVL_STATUS_OK || memcmp(dst, expected, sizeof expected) != 0) bad++;
    }
    free(dst);
    return (void *)bad;
}

/* ---- savl_upscaler_run_image ---- */

static int clamp255(double v) { return v < 0 ? 0 : v > 255 ? 255 : (int)v; }

/* BT.601/709 limited/full Y'CbCr -> RGB in closed form (double); *margin gets the smallest
 * distance of an unrounded channel from a rounding boundary (x.5). */
static void yuv_to_rgb_closed(int y, int cb, int cr, int bt709, int full, uint8_t out[3],
                              double *margin) {
    double kr = bt709 ? 0.2126 : 0.299, kb = bt709 ? 0.0722 : 0.114, kg = 1.0 - kr - kb;
    double yy = full ? y : (y - 16) * 255.0 / 219.0, c = full ? 1.0 : 255.0 / 224.0;
    double pb = (cb - 128) * c, pr = (cr - 128) * c;
    double r = yy + 2 * (1 - kr) * pr, b = yy + 2 * (1 - kb) * pb, g = (yy - kr * r - kb * b) / kg;
    double v[3] = {r, g, b};
    *margin = 1.0;
    for (int i = 0; i < 3; i++) {
        double f = v[i] - (double)(long)v[i];
        if (f < 0) f += 1.0;
        double d = f > 0.5 ? f - 0.5 : 0.5 - f;
        if ((v[i] > -0.5 && v[i] < 255.5) && d < *margin) *margin = d;
        out[i] = (uint8_t)clamp255(v[i] + 0.5);
    }
}

static SavlImage packed_image(SavlPixelFormat f, uint32_t w, uint32_t h, uint8_t *p, size_t stride,
                              size_t len) {
    SavlImage img = savl_image_default();
    img.format = f;
    img.width = w;
    img.height = h;
    img.planes[0] = p;
    img.strides[0] = stride;
    img.lengths[0] = len;
    return img;
}

typedef struct {
    int calls;
    uint32_t last_done, total;
    int cancel_after; /* cancel on this call (1-based); 0 never */
} Progress;

static int on_progress(void *user, uint32_t done, uint32_t total) {
    Progress *p = (Progress *)user;
    p->calls++;
    p->last_done = done;
    p->total = total;
    return p->cancel_after != 0 && p->calls >= p->cancel_after;
}

static uint8_t bgr[W * H * 3];
static void *image_worker(void *arg) {
    (void)arg;
    uint8_t *dst = malloc(sizeof expected);
    intptr_t bad = 0;
    for (int i = 0; i < 3; i++) {
        SavlImage s = packed_image(SAVL_PIXEL_FORMAT_BGR8, W, H, bgr, W * 3, sizeof bgr);
        SavlImage d = packed_image(SAVL_PIXEL_FORMAT_RGB8, W * 4, H * 4, dst, W * 12,
                                   sizeof expected);
        Progress p = {0, 0, 0, 0};
        SavlStatus st = savl_upscaler_run_image(shared, &s, &d, on_progress, &p);
        if (st != SAVL_STATUS_OK || memcmp(dst, expected, sizeof expected) != 0 ||
            p.last_done != H * 4 || p.total != H * 4)
            bad++;
    }
    free(dst);
    return (void *)bad;
}

/* Runs `fn` on four threads at once, all on the handle `up`; the sum of what they return (each
   its count of failed or differing calls). */
static intptr_t on_four_threads(SavlUpscaler *up, void *(*fn)(void *)) {
    shared = up;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, fn, NULL);
    intptr_t bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (intptr_t)r;
    }
    return bad;
}

static void run_image_checks(SavlUpscaler *up) {
    /* Versions. */
    CHECK(savl_abi_version() == SAVL_ABI_VERSION, "abi version %u", savl_abi_version());
    CHECK(savl_version() != NULL && strlen(savl_version()) > 0 && strchr(savl_version(), '.'),
          "version %s", savl_version());
    CHECK(strcmp(savl_status_str(SAVL_STATUS_CANCELLED), "cancelled") == 0, "status_str(CANCELLED)");

    uint8_t *dst = malloc(sizeof expected);

    /* BGR8 in: equal to swapping to RGB8 here, then savl_upscaler_run. */
    for (size_t i = 0; i < W * H; i++) {
        bgr[3 * i] = src[3 * i + 2];
        bgr[3 * i + 1] = src[3 * i + 1];
        bgr[3 * i + 2] = src[3 * i];
    }
    SavlImage s = packed_image(SAVL_PIXEL_FORMAT_BGR8, W, H, bgr, W * 3, sizeof bgr);
    SavlImage d = packed_image(SAVL_PIXEL_FORMAT_RGB8, W * 4, H * 4, dst, W * 12, sizeof expected);
    Progress p = {0, 0, 0, 0};
    SavlStatus st = savl_upscaler_run_image(up, &s, &d, on_progress, &p);
    CHECK(st == SAVL_STATUS_OK && memcmp(dst, expected, sizeof expected) == 0,
          "BGR8 in = RGB8 through savl_upscaler_run");
    CHECK(p.calls >= 2 && p.last_done == H * 4 && p.total == H * 4, "progress: %d calls, %u/%u",
          p.calls, p.last_done, p.total);

    /* RGB8 in, BGRA8 out: the colour swapped, alpha 255. */
    uint8_t *bgra = malloc(W * H * 16 * 4);
    d = packed_image(SAVL_PIXEL_FORMAT_BGRA8, W * 4, H * 4, bgra, W * 16, W * H * 16 * 4);
    s = packed_image(SAVL_PIXEL_FORMAT_RGB8, W, H, src, W * 3, sizeof src);
    int same = savl_upscaler_run_image(up, &s, &d, NULL, NULL) == SAVL_STATUS_OK;
    for (size_t i = 0; same && i < W * H * 16; i++)
        same = bgra[4 * i] == expected[3 * i + 2] && bgra[4 * i + 1] == expected[3 * i + 1] &&
               bgra[4 * i + 2] == expected[3 * i] && bgra[4 * i + 3] == 255;
    CHECK(same, "RGB8 in, BGRA8 out: swapped, opaque");
    free(bgra);

    /* NV12 and I420, BT.601 limited and BT.709 full, in: equal to converting here in closed
     * form (double precision), then savl_upscaler_run. */
    for (int variant = 0; variant < 4; variant++) {
        int bt709 = variant & 1, full = variant & 1, i420 = variant >> 1;
        static uint8_t yp[W * H], u[(W / 2) * ((H + 1) / 2)], v[(W / 2) * ((H + 1) / 2)];
        static uint8_t uv[W * ((H + 1) / 2)], rgb[W * H * 3];
        const int cw = W / 2, ch = (H + 1) / 2;
        for (int i = 0; i < cw * ch; i++) {
            u[i] = (uint8_t)(60 + (i * 23) % 130);
            v[i] = (uint8_t)(70 + (i * 41) % 120);
            uv[2 * i] = u[i];
            uv[2 * i + 1] = v[i];
        }
        /* Luma samples are nudged off rounding boundaries (and, where the chroma alone puts a
         * channel on one whatever the luma, as full range can, the block's chroma too). */
        for (int pass = 0; pass < 2; pass++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int c = (y / 2) * cw + x / 2, yv = 30 + (x * 13 + y * 29) % 190, found = 0;
                    double margin;
                    for (int k = 0; k < 30 && !found; k++) {
                        yuv_to_rgb_closed(yv + k, u[c], v[c], bt709, full, &rgb[(y * W + x) * 3],
                                          &margin);
                        if (margin > 0.01) {
                            found = 1;
                            yp[y * W + x] = (uint8_t)(yv + k);
                        }
                    }
                    if (!found && pass == 0) {
                        u[c]++;
                        v[c]++;
                        uv[2 * c] = u[c];
                        uv[2 * c + 1] = v[c];
                        x = -1; /* the block's chroma changed: start the row again */
                        y = y / 2 * 2;
                    }
                    if (!found && pass == 1) CHECK(0, "no luma off a rounding boundary at %d,%d", x, y);
                }
        static uint8_t want[W * H * 3 * 16];
        savl_upscaler_run(up, rgb, sizeof rgb, W, H, W * 3, want, W * 12, sizeof want);
        SavlImage y = savl_image_default();
        y.width = W;
        y.height = H;
        y.matrix = bt709 ? SAVL_MATRIX_BT709 : SAVL_MATRIX_BT601;
        y.range = full ? SAVL_RANGE_FULL : SAVL_RANGE_LIMITED;
        y.planes[0] = yp;
        y.strides[0] = W;
        y.lengths[0] = sizeof yp;
        if (!i420) {
            y.format = SAVL_PIXEL_FORMAT_NV12;
            y.planes[1] = uv;
            y.strides[1] = W;
            y.lengths[1] = sizeof uv;
        } else {
            y.format = SAVL_PIXEL_FORMAT_I420;
            y.planes[1] = u;
            y.planes[2] = v;
            y.strides[1] = y.strides[2] = cw;
            y.lengths[1] = y.lengths[2] = sizeof u;
        }
        d = packed_image(SAVL_PIXEL_FORMAT_RGB8, W * 4, H * 4, dst, W * 12, sizeof expected);
        st = savl_upscaler_run_image(up, &y, &d, NULL, NULL);
        CHECK(st == SAVL_STATUS_OK && memcmp(dst, want, sizeof want) == 0,
              "%s %s in = closed-form RGB8 through savl_upscaler_run", i420 ? "I420" : "NV12",
              bt709 ? "BT.709 full" : "BT.601 limited");
        if (variant == 0) {
            /* Descriptor errors name the plane. */
            SavlImage bad = y;
            bad.strides[1] = W - 1;
            CHECK(savl_upscaler_run_image(up, &bad, &d, NULL, NULL) == SAVL_STATUS_INVALID_ARGUMENT &&
                      strstr(savl_last_error(), "src plane 1 (UV)") != NULL,
                  "short UV stride");
            bad = y;
            bad.lengths[0] = sizeof yp - 1;
            CHECK(savl_upscaler_run_image(up, &bad, &d, NULL, NULL) == SAVL_STATUS_INVALID_ARGUMENT &&
                      strstr(savl_last_error(), "src plane 0 (Y)") != NULL,
                  "short Y length");
            bad = y;
            bad.planes[1] = NULL;
            CHECK(savl_upscaler_run_image(up, &bad, &d, NULL, NULL) == SAVL_STATUS_INVALID_ARGUMENT &&
                      strstr(savl_last_error(), "NULL") != NULL,
                  "NULL UV plane");
            bad = y;
            bad.strides[0] = SIZE_MAX / 4;
            bad.lengths[0] = SIZE_MAX;
            CHECK(savl_upscaler_run_image(up, &bad, &d, NULL, NULL) == SAVL_STATUS_INVALID_ARGUMENT &&
                      strstr(savl_last_error(), "overflows") != NULL,
                  "overflowing Y stride");
            SavlImage badd = d;
            badd.lengths[0] = sizeof expected - 1;
            CHECK(savl_upscaler_run_image(up, &y, &badd, NULL, NULL) == SAVL_STATUS_INVALID_ARGUMENT &&
                      strstr(savl_last_error(), "dst plane 0") != NULL,
                  "short dst length");
        }
    }

    /* Cancel after the first band of a tall picture: CANCELLED, rows after it untouched. */
    enum { TW = 16, TH = 80 };
    uint8_t *tall = malloc(TW * TH * 3), *big = malloc(TW * TH * 48);
    for (size_t i = 0; i < TW * TH * 3; i++) tall[i] = (uint8_t)(i * 13 % 256);
    memset(big, 0x55, TW * TH * 48);
    s = packed_image(SAVL_PIXEL_FORMAT_RGB8, TW, TH, tall, TW * 3, TW * TH * 3);
    d = packed_image(SAVL_PIXEL_FORMAT_RGB8, TW * 4, TH * 4, big, TW * 12, TW * TH * 48);
    Progress c = {0, 0, 0, 2};
    st = savl_upscaler_run_image(up, &s, &d, on_progress, &c);
    int untouched = 1;
    for (size_t i = (size_t)c.last_done * TW * 12; i < (size_t)TW * TH * 48; i++)
        untouched &= big[i] == 0x55;
    CHECK(st == SAVL_STATUS_CANCELLED && c.calls == 2 && c.last_done > 0 && c.last_done < TH * 4 &&
              untouched,
          "cancel after %u of %u rows: CANCELLED, later rows untouched", c.last_done, c.total);
    CHECK(strstr(savl_last_error(), "cancelled") != NULL, "the message says cancelled");
    free(tall);
    free(big);

    /* One handle, four threads running run_image at once, each with its own progress. */
    intptr_t bad = on_four_threads(up, image_worker);
    CHECK(bad == 0, "4 threads x 3 run_image calls on one handle: %ld differ or fail", (long)bad);
    free(dst);
}

int main(void) {
    /* savl_status_str: every integer gives a valid string. */
    CHECK(strcmp(savl_status_str(SAVL_STATUS_MODEL), "model error") == 0, "status_str(MODEL)");
    CHECK(strcmp(savl_status_str(-1), "unknown status") == 0, "status_str(-1)");
    CHECK(strcmp(savl_status_str(9), "unknown status") == 0, "status_str(9)");
    CHECK(strcmp(savl_status_str(123456), "unknown status") == 0, "status_str(123456)");

    /* A panic inside the library comes back as a status. */
    CHECK(savl_debug_trigger_panic() == SAVL_STATUS_PANIC, "panic is caught");

    /* Null out-pointer. */
    CHECK(savl_upscaler_new(NULL, NULL) == SAVL_STATUS_INVALID_ARGUMENT, "new(NULL, NULL)");

    /* A missing model is MODEL, and *out is NULLed. */
    SavlOptions opts = savl_options_default();
    opts.model_path = "/nonexistent/dir/model.onnx";
    SavlUpscaler *up = (SavlUpscaler *)&opts; /* garbage that must be overwritten */
    CHECK(savl_upscaler_new(&opts, &up) == SAVL_STATUS_MODEL && up == NULL, "missing model");
    CHECK(strstr(savl_last_error(), "/nonexistent/dir/model.onnx") != NULL,
          "the message names the model");

    opts = savl_options_default();
    opts.threads = 1;
    opts.tile = 32;
    SavlStatus st = savl_upscaler_new(&opts, &up);
    CHECK(st == SAVL_STATUS_OK && up != NULL, "new(embedded model)");
    if (st != SAVL_STATUS_OK) return failures;

    uint32_t ow = 7, oh = 7;
    CHECK(savl_upscaler_output_size(up, 0, 0, &ow, &oh) == SAVL_STATUS_INVALID_ARGUMENT &&
              ow == 7 && oh == 7,
          "output_size(0, 0)");
    CHECK(savl_upscaler_output_size(up, W, H, &ow, &oh) == SAVL_STATUS_OK && ow == W * 4 &&
              oh == H * 4,
          "output_size(%d, %d) = %ux%u", W, H, ow, oh);

    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 37 % 251);
    uint8_t *dst = malloc(sizeof expected);

    /* Strides that overflow, a short source, a short destination, overlap, zero sizes. */
    CHECK(savl_upscaler_run(up, src, sizeof src, W, H, (size_t)1 << 63, dst, W * 12,
                            sizeof expected) == SAVL_STATUS_INVALID_ARGUMENT,
          "src_stride 2^63");
    CHECK(savl_upscaler_run(up, src, sizeof src, W, H, SIZE_MAX, dst, W * 12, sizeof expected) ==
              SAVL_STATUS_INVALID_ARGUMENT,
          "src_stride SIZE_MAX");
    CHECK(savl_upscaler_run(up, src, sizeof src - 1, W, H, W * 3, dst, W * 12, sizeof expected) ==
              SAVL_STATUS_INVALID_ARGUMENT,
          "src_len one byte short");
    CHECK(savl_upscaler_run(up, src, sizeof src, W, H, W * 3 + 1, dst, W * 12, sizeof expected) ==
              SAVL_STATUS_INVALID_ARGUMENT,
          "padded src_stride over the buffer");
    CHECK(savl_upscaler_run(up, src, sizeof src, W, H, W * 3, dst, W * 12, sizeof expected - 1) ==
              SAVL_STATUS_INVALID_ARGUMENT,
          "dst_len one byte short");
    CHECK(savl_upscaler_run(up, src, sizeof src, W, H, W * 3, dst, SIZE_MAX, sizeof expected) ==
              SAVL_STATUS_INVALID_ARGUMENT,
          "dst_stride SIZE_MAX");
    CHECK(savl_upscaler_run(up, dst, sizeof src, W, H, W * 3, dst + 10, W * 12,
                            sizeof expected - 10) == SAVL_STATUS_INVALID_ARGUMENT,
          "overlapping buffers");
    CHECK(savl_upscaler_run(up, src, sizeof src, 0, H, W * 3, dst, W * 12, sizeof expected) ==
              SAVL_STATUS_INVALID_ARGUMENT,
          "width 0");
    CHECK(savl_upscaler_run(NULL, src, sizeof src, W, H, W * 3, dst, W * 12, sizeof expected) ==
              SAVL_STATUS_INVALID_ARGUMENT,
          "NULL handle");

    st = savl_upscaler_run(up, src, sizeof src, W, H, W * 3, expected, W * 12, sizeof expected);
    CHECK(st == SAVL_STATUS_OK, "run");

    /* One handle, four threads at once: every result equals the single-thread one. */
    intptr_t bad = on_four_threads(up, worker);
    CHECK(bad == 0, "4 threads x 3 runs on one handle: %ld differ or fail", (long)bad);

    run_image_checks(up);

    free(dst);
    savl_upscaler_free(&up);
    CHECK(up == NULL, "free nulls the pointer");
    savl_upscaler_free(&up);
    savl_upscaler_free(NULL);
    CHECK(1, "free(NULL handle) and free(NULL) are no-ops");
    printf("%d failed\n", failures);
    return failures;
}
