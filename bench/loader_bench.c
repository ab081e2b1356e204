/* loader_bench.c — images per second of lgen's data loader on 64x64 PNGs.
 *
 * Usage: loader_bench DIR [N_PER_CLASS] [WORKERS] [EPOCHS]
 * Writes DIR/train/<class>/<i>.png (10 classes of smooth random RGB images,
 * so PNG compression is realistic) unless DIR/.made exists, then loads them
 * through lg_loader with decode + random_crop(64, padding 4) + horizontal
 * flip + normalize + batches of 64, and prints "lgen: N images/s". The
 * torchvision side (bench/loader_torch.py) reads the same files.
 */
#include "../runtime/data/internal.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int make_images(const char *dir, int per_class) {
    char p[4096];
    snprintf(p, sizeof p, "%s/.made", dir);
    if (access(p, F_OK) == 0)
        return 0;
    uint8_t px[64 * 64 * 3];
    lg_rng rng = {42};
    for (int c = 0; c < 10; c++) {
        snprintf(p, sizeof p, "%s/train/class%d", dir, c);
        if (lg_mkdirs(p, NULL) != LG_OK)
            return -1;
        for (int i = 0; i < per_class; i++) {
            double fx = 0.05 + 0.3 * lg_rng_uniform(&rng), fy = 0.05 + 0.3 * lg_rng_uniform(&rng);
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 64; x++)
                    for (int k = 0; k < 3; k++) {
                        double v = 128 + 60 * __builtin_sin(fx * x * (k + 1) + fy * y) +
                                   20 * (lg_rng_uniform(&rng) - 0.5) + c * 3;
                        px[(y * 64 + x) * 3 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                    }
            snprintf(p, sizeof p, "%s/train/class%d/%05d.png", dir, c, i);
            png_image im;
            memset(&im, 0, sizeof im);
            im.version = PNG_IMAGE_VERSION;
            im.width = 64;
            im.height = 64;
            im.format = PNG_FORMAT_RGB;
            if (!png_image_write_to_file(&im, p, 0, px, 0, NULL))
                return -1;
        }
    }
    snprintf(p, sizeof p, "%s/.made", dir);
    FILE *f = fopen(p, "w");
    if (f)
        fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [N_PER_CLASS] [WORKERS] [EPOCHS]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int per_class = argc > 2 ? atoi(argv[2]) : 1000;
    int workers = argc > 3 ? atoi(argv[3]) : 2;
    int epochs = argc > 4 ? atoi(argv[4]) : 3;
    if (make_images(dir, per_class) != 0) {
        fprintf(stderr, "loader_bench: error: cannot write images under %s\n", dir);
        return 1;
    }
    static const char *const paths[] = {"train"};
    lg_split_desc splits[] = {{"train", paths, 1, NULL}};
    lg_dataset_desc d = {.name = "", .format = LG_FORMAT_IMAGE_FOLDER, .splits = splits,
                         .n_splits = 1};
    static const lg_transform_desc tf[] = {
        {.kind = LG_TF_RANDOM_CROP, .i = {64, 64, 4}},
        {.kind = LG_TF_RANDOM_HFLIP, .f = {0.5f}},
        {.kind = LG_TF_TO_TENSOR},
        {.kind = LG_TF_NORMALIZE, .f = {0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.25f}, .i = {3}},
    };
    lg_split_spec sp = {.name = "train", .dataset = &d, .source = "train", .transforms = tf,
                        .n_transforms = 4, .channels = 3, .height = 64, .width = 64};
    lg_data_config cfg = {.data_dir = dir, .quiet = 1};
    lg_error err = {0};
    lg_dataset *ds;
    if (lg_dataset_open(&ds, &d, "train", &cfg, &err)) {
        fprintf(stderr, "loader_bench: error: %s\n", err.msg);
        return 1;
    }
    lg_loader_options opt = {.batch_size = 64, .num_workers = workers, .shuffle = 1};
    lg_loader l;
    if (lg_loader_init(&l, &sp, ds, &opt, 0, &err)) {
        fprintf(stderr, "loader_bench: error: %s\n", err.msg);
        return 1;
    }
    double best = 0, sum = 0;
    long images = 0;
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    for (int e = 0; e <= epochs; e++) {
        double t0 = now();
        long n = 0;
        const lg_batch *b;
        lg_loader_start(&l, e, 0, &err);
        while (lg_loader_next(&l, &b, &err) == LG_OK && b) {
            n += b->n;
            sum += b->image[0];
        }
        if (err.code) {
            fprintf(stderr, "loader_bench: error: %s\n", err.msg);
            return 1;
        }
        double rate = n / (now() - t0);
        if (e > 0) { /* epoch 0 warms the page cache */
            images += n;
            if (rate > best)
                best = rate;
        }
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) * 1e-9;
    printf("lgen: %.0f images/s (best of %d epochs of %lld images, %d workers, checksum %.3f)\n",
           best, epochs, (long long)l.n_samples, workers, sum);
    /* Load from other processes slows the wall clock, not the CPU time. */
    printf("lgen cpu: %.0f images per CPU-second\n", (double)(epochs + 1) * l.n_samples / cpu);
    lg_loader_free(&l);
    lg_dataset_close(ds);
    return 0;
}
