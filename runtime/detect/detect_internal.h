/* detect_internal.h — helpers shared by the files of runtime/detect/ and not
 * part of the public interface (lgen/detect.h). */
#ifndef LGEN_DETECT_INTERNAL_H
#define LGEN_DETECT_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "lgen/detect.h"

/* Where a function leaves its message: the context's error record. */
#define LG_DET_ERR(ctx) ((ctx) ? (ctx)->err : NULL)

/* A score with the row it belongs to and a group (level or class). */
typedef struct lg_det_scored {
    float score;
    int index;
    int group;
} lg_det_scored;

/* splitmix64: the samplers' generator, a pure function of its state. */
static inline uint64_t lg_det_splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Decodes one box (torchvision BoxCoder.decode_single, float32). */
void lg_det_decode_one(const lg_box_coder *c, const float *d, const float *b, float *o);
/* lg_detections with RoIs every roi_stride floats (5 for [K, 5] rows,
 * pointing at x1). */
lg_status lg_det_detections_strided(lg_ctx *ctx, const lg_detect_config *cfg,
                                    const float *class_logits, const float *box_regression,
                                    const float *rois, int roi_stride, int R, int K, int image_h,
                                    int image_w, void *workspace, float *boxes, float *scores,
                                    int *labels, int *count);
/* Moves the k highest scores of v[n] (ties: lower index first) to v[0..k),
 * in no particular order. */
void lg_det_select_top(lg_det_scored *v, size_t n, size_t k);
/* Sorts by decreasing score, ties by increasing index. */
void lg_det_sort_scored(lg_det_scored *v, size_t n);

/* std::max and std::min, as torchvision's kernels use them; fmaxf and
 * fminf are library calls at -O2 (NaN rules), too slow in the inner loops. */
static inline float lg_det_maxf(float a, float b) {
    return a < b ? b : a;
}

static inline float lg_det_minf(float a, float b) {
    return b < a ? b : a;
}

/* Smooth L1 of one difference (torch's formula) and its derivative. */
static inline double lg_det_smooth_l1(float diff, float beta) {
    double n = fabs((double)diff);
    return n < beta ? 0.5 * n * n / beta : n - 0.5 * beta;
}

static inline float lg_det_smooth_l1_grad(float diff, float beta) {
    if (fabsf(diff) < beta)
        return diff / beta;
    return diff > 0 ? 1.0f : diff < 0 ? -1.0f : 0.0f;
}

/* Rounds a workspace offset up to 16 bytes. */
static inline size_t lg_det_align(size_t n) {
    return (n + 15) & ~(size_t)15;
}

#endif
