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
    shared = up;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
    intptr_t bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (intptr_t)r;
    }
    CHECK(bad == 0, "4 threads x 3 runs on one handle: %ld differ or fail", (long)bad);

    free(dst);
    savl_upscaler_free(&up);
    CHECK(up == NULL, "free nulls the pointer");
    savl_upscaler_free(&up);
    savl_upscaler_free(NULL);
    CHECK(1, "free(NULL handle) and free(NULL) are no-ops");
    printf("%d failed\n", failures);
    return failures;
}
