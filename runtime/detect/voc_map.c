/* voc_map.c — PASCAL VOC average precision (see lgen/detect.h).
 *
 * An lg_voc_eval collects each validation image's detections (from
 * lg_detections) and ground truth (from the VOC reader, with its difficult
 * flags); lg_voc_eval_compute then runs the VOC devkit's evaluation
 * (voc_eval.py, the py-faster-rcnn port of the MATLAB devkit) class by
 * class. tests/fixtures/voc_eval_ref.py is an independent Python writing of
 * the same algorithm; tests/check_detect.c compares the two.
 */
#include "lgen/detect.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

lg_status lg_voc_eval_init(lg_voc_eval *ev, int num_classes, lg_error *err) {
    if (!ev)
        return lg_error_set(err, LG_ERR_ARG, "voc_eval: no evaluator");
    memset(ev, 0, sizeof *ev);
    if (num_classes < 1 || num_classes > (1 << 20))
        return lg_error_set(err, LG_ERR_ARG, "voc_eval: %d classes", num_classes);
    ev->num_classes = num_classes;
    return LG_OK;
}

void lg_voc_eval_reset(lg_voc_eval *ev) {
    if (!ev)
        return;
    ev->num_images = 0;
    ev->num_dets = 0;
    ev->num_gts = 0;
}

void lg_voc_eval_free(lg_voc_eval *ev) {
    if (!ev)
        return;
    free(ev->dets);
    free(ev->gts);
    memset(ev, 0, sizeof *ev);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

lg_status lg_voc_eval_add(lg_voc_eval *ev, const float *det_boxes, const float *det_scores,
                          const int *det_labels, int num_det, const float *gt_boxes,
                          const int *gt_labels, const uint8_t *gt_difficult, int num_gt,
                          lg_error *err) {
    if (!ev || num_det < 0 || num_gt < 0 ||
        (num_det && (!det_boxes || !det_scores || !det_labels)) ||
        (num_gt && (!gt_boxes || !gt_labels)))
        return lg_error_set(err, LG_ERR_ARG, "voc_eval: bad arguments");
    for (int i = 0; i < num_det; i++)
        if (det_labels[i] < 0 || det_labels[i] >= ev->num_classes)
            return lg_error_set(err, LG_ERR_ARG, "voc_eval: detection label %d of %d classes",
                                det_labels[i], ev->num_classes);
    for (int i = 0; i < num_gt; i++)
        if (gt_labels[i] < 0 || gt_labels[i] >= ev->num_classes)
            return lg_error_set(err, LG_ERR_ARG, "voc_eval: ground truth label %d of %d classes",
                                gt_labels[i], ev->num_classes);
    if (grow((void **)&ev->dets, &ev->cap_dets, ev->num_dets + (size_t)num_det, sizeof *ev->dets) ||
        grow((void **)&ev->gts, &ev->cap_gts, ev->num_gts + (size_t)num_gt, sizeof *ev->gts))
        return lg_error_set(err, LG_ERR_NOMEM, "voc_eval: cannot grow to %zu detections",
                            ev->num_dets + (size_t)num_det);
    int image = ev->num_images++;
    for (int i = 0; i < num_det; i++) {
        lg_voc_det *d = &ev->dets[ev->num_dets];
        d->seq = ev->num_dets++;
        d->image = image;
        d->label = det_labels[i];
        d->score = det_scores[i];
        memcpy(d->box, det_boxes + 4 * (size_t)i, sizeof d->box);
    }
    for (int i = 0; i < num_gt; i++) {
        lg_voc_gt *g = &ev->gts[ev->num_gts];
        g->seq = ev->num_gts++;
        g->image = image;
        g->label = gt_labels[i];
        g->difficult = gt_difficult ? gt_difficult[i] != 0 : 0;
        memcpy(g->box, gt_boxes + 4 * (size_t)i, sizeof g->box);
    }
    return LG_OK;
}

/* Detections by class, then decreasing score, then the order they came in
 * (the devkit's stable order for equal scores). */
static int cmp_det(const void *pa, const void *pb) {
    const lg_voc_det *a = pa, *b = pb;
    if (a->label != b->label)
        return (a->label > b->label) - (a->label < b->label);
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static int cmp_gt(const void *pa, const void *pb) {
    const lg_voc_gt *a = pa, *b = pb;
    if (a->label != b->label)
        return (a->label > b->label) - (a->label < b->label);
    if (a->image != b->image)
        return (a->image > b->image) - (a->image < b->image);
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* voc_ap(): 11-point or area under the monotone precision envelope. */
static double voc_ap(const double *rec, double *prec, size_t n, int use_07) {
    if (use_07) {
        double ap = 0;
        for (int t = 0; t <= 10; t++) {
            double thr = t * 0.1, p = 0; /* as numpy.arange(0, 1.1, 0.1) */
            for (size_t i = 0; i < n; i++)
                if (rec[i] >= thr && prec[i] > p)
                    p = prec[i];
            ap += p / 11.0;
        }
        return ap;
    }
    /* mpre = [0, prec, 0] made non-increasing from the right. */
    for (size_t i = n; i-- > 1;)
        if (prec[i] > prec[i - 1])
            prec[i - 1] = prec[i];
    double ap = 0, prev_rec = 0;
    for (size_t i = 0; i < n; i++) {
        if (rec[i] != prev_rec)
            ap += (rec[i] - prev_rec) * prec[i];
        prev_rec = rec[i];
    }
    return ap;
}

lg_status lg_voc_eval_compute(lg_voc_eval *ev, const lg_voc_map_config *cfg, float *ap, float *map,
                              lg_error *err) {
    if (!ev || !cfg || !ap || !map)
        return lg_error_set(err, LG_ERR_ARG, "voc_eval: bad arguments");
    qsort(ev->dets, ev->num_dets, sizeof *ev->dets, cmp_det);
    qsort(ev->gts, ev->num_gts, sizeof *ev->gts, cmp_gt);
    size_t nd = ev->num_dets, ng = ev->num_gts;
    unsigned char *taken = calloc(ng ? ng : 1, 1);
    double *rec = malloc(sizeof(double) * (nd ? nd : 1));
    double *prec = malloc(sizeof(double) * (nd ? nd : 1));
    if (!taken || !rec || !prec) {
        free(taken);
        free(rec);
        free(prec);
        return lg_error_set(err, LG_ERR_NOMEM, "voc_eval: cannot allocate for %zu detections", nd);
    }
    double off = cfg->pixel_offset ? 1.0 : 0.0, sum = 0;
    int classes_with_gt = 0;
    size_t d0 = 0, g0 = 0;
    for (int c = 0; c < ev->num_classes; c++) {
        size_t d1 = d0, g1 = g0;
        while (d1 < nd && ev->dets[d1].label == c)
            d1++;
        while (g1 < ng && ev->gts[g1].label == c)
            g1++;
        long npos = 0;
        for (size_t g = g0; g < g1; g++)
            npos += !ev->gts[g].difficult;
        if (npos == 0) {
            ap[c] = NAN;
            d0 = d1;
            g0 = g1;
            continue;
        }
        size_t tp = 0, fp = 0, n = 0;
        for (size_t d = d0; d < d1; d++) {
            const lg_voc_det *det = &ev->dets[d];
            const float *bb = det->box;
            /* This image's boxes of class c: a binary search in [g0, g1). */
            size_t lo = g0, hi = g1;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (ev->gts[mid].image < det->image)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            double ovmax = -INFINITY;
            size_t jmax = 0;
            for (size_t g = lo; g < g1 && ev->gts[g].image == det->image; g++) {
                const float *gb = ev->gts[g].box;
                double iw = fmax(fmin(gb[2], bb[2]) - fmax(gb[0], bb[0]) + off, 0.0);
                double ih = fmax(fmin(gb[3], bb[3]) - fmax(gb[1], bb[1]) + off, 0.0);
                double inter = iw * ih;
                double uni = ((double)bb[2] - bb[0] + off) * ((double)bb[3] - bb[1] + off) +
                             ((double)gb[2] - gb[0] + off) * ((double)gb[3] - gb[1] + off) - inter;
                double ov = inter / uni;
                if (ov > ovmax) {
                    ovmax = ov;
                    jmax = g;
                }
            }
            if (ovmax > cfg->iou_thresh) {
                if (ev->gts[jmax].difficult)
                    goto record; /* neither true nor false positive */
                if (!taken[jmax]) {
                    taken[jmax] = 1;
                    tp++;
                } else {
                    fp++;
                }
            } else {
                fp++;
            }
        record:
            rec[n] = (double)tp / (double)npos;
            prec[n] = (double)tp / fmax((double)(tp + fp), 2.220446049250313e-16);
            n++;
        }
        ap[c] = (float)voc_ap(rec, prec, n, cfg->use_07_metric);
        sum += ap[c];
        classes_with_gt++;
        d0 = d1;
        g0 = g1;
    }
    *map = classes_with_gt ? (float)(sum / classes_with_gt) : NAN;
    free(taken);
    free(rec);
    free(prec);
    return LG_OK;
}

lg_status lg_voc_eval_add_batch(lg_voc_eval *ev, const float *boxes, const float *scores,
                                const int *labels, const int *count, int N, int D,
                                const lg_det_targets *targets, lg_error *err) {
    if (!ev || N < 0 || D < 0 || !count || !targets || (N && !targets->count) ||
        targets->max_boxes < 0)
        return lg_error_set(err, LG_ERR_ARG, "voc_eval: bad arguments");
    int B = targets->max_boxes;
    for (int n = 0; n < N; n++) {
        int nd = count[n], ng = targets->count[n];
        if (nd < 0 || nd > D || ng < 0 || ng > B)
            return lg_error_set(err, LG_ERR_ARG,
                                "voc_eval: image %d has %d detections of %d, %d boxes of %d", n, nd,
                                D, ng, B);
        size_t g0 = ev->num_gts;
        /* The ground truth first, with no labels (added shifted below). */
        lg_status st = lg_voc_eval_add(ev, boxes + (size_t)n * D * 4, scores + (size_t)n * D,
                                       labels + (size_t)n * D, nd, NULL, NULL, NULL, 0, err);
        if (st)
            return st;
        int image = ev->num_images - 1;
        if (grow((void **)&ev->gts, &ev->cap_gts, ev->num_gts + (size_t)ng, sizeof *ev->gts))
            return lg_error_set(err, LG_ERR_NOMEM, "voc_eval: cannot grow to %zu boxes",
                                ev->num_gts + (size_t)ng);
        for (int i = 0; i < ng; i++) {
            size_t k = (size_t)n * B + i;
            int label = targets->labels[k] + targets->label_offset;
            if (label < 0 || label >= ev->num_classes) {
                ev->num_gts = g0;
                return lg_error_set(err, LG_ERR_ARG,
                                    "voc_eval: ground truth label %d of %d classes", label,
                                    ev->num_classes);
            }
            lg_voc_gt *g = &ev->gts[ev->num_gts];
            g->seq = ev->num_gts++;
            g->image = image;
            g->label = label;
            g->difficult = targets->difficult ? targets->difficult[k] != 0 : 0;
            memcpy(g->box, targets->boxes + 4 * k, sizeof g->box);
        }
    }
    return LG_OK;
}
