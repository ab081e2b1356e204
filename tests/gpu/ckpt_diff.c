/* tests/gpu/ckpt_diff.c — compares the tensors of two lgen checkpoints.
 *
 *     ckpt_diff A.ckpt B.ckpt TOL [PREFIX]
 *
 * Both files must hold the same tensors (names, dtypes, shapes); for each
 * tensor whose name starts with PREFIX (default: all) it prints the largest
 * absolute difference and fails when an element differs by more than
 * TOL * (1 + |a|). Used by tests/gpu/resident.sh to compare a GPU run's
 * weights and optimizer state with the CPU's. Exit status: 0 equal within
 * TOL, 1 not, 2 unreadable files or bad usage.
 */
#include "lgen/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: ckpt_diff A.ckpt B.ckpt TOL [PREFIX]\n");
        return 2;
    }
    double tol = atof(argv[3]);
    const char *prefix = argc > 4 ? argv[4] : "";
    lg_st_file a, b;
    lg_error err = {0};
    if (lg_st_open(&a, argv[1], &err) != LG_OK || lg_st_open(&b, argv[2], &err) != LG_OK) {
        fprintf(stderr, "ckpt_diff: error: %s\n", err.msg);
        return 2;
    }
    int bad = 0, compared = 0;
    if (a.n_tensors != b.n_tensors) {
        printf("ckpt_diff: %s has %d tensors, %s %d\n", argv[1], a.n_tensors, argv[2], b.n_tensors);
        bad = 1;
    }
    for (int i = 0; i < a.n_tensors; i++) {
        const char *name = lg_st_name(&a, i);
        lg_dtype da, db;
        int na, nb;
        int64_t sa[8], sb[8];
        const void *xa, *xb;
        if (lg_st_get(&a, name, &da, &na, sa, &xa, &err) != LG_OK ||
            lg_st_get(&b, name, &db, &nb, sb, &xb, &err) != LG_OK || da != db || na != nb ||
            memcmp(sa, sb, (size_t)na * sizeof *sa) != 0) {
            printf("ckpt_diff: tensor '%s' is missing or shaped differently in %s\n", name, argv[2]);
            bad = 1;
            continue;
        }
        if (strncmp(name, prefix, strlen(prefix)) != 0 || da != LG_DT_F32)
            continue;
        size_t n = 1;
        for (int d = 0; d < na; d++)
            n *= (size_t)sa[d];
        double worst = 0, worst_rel = 0;
        for (size_t k = 0; k < n; k++) {
            float u, v;
            memcpy(&u, (const char *)xa + 4 * k, 4);
            memcpy(&v, (const char *)xb + 4 * k, 4);
            double d = fabs((double)u - v), rel = d / (1 + fabs((double)u));
            if (!(d <= worst))
                worst = d;
            if (!(rel <= worst_rel))
                worst_rel = rel;
        }
        compared++;
        int over = !(worst_rel <= tol);
        printf("%s %s: %zu values, largest difference %.3g\n", over ? "FAIL" : "ok  ", name, n, worst);
        bad |= over;
    }
    printf("ckpt_diff: %d tensors compared, %s\n", compared, bad ? "DIFFERENT" : "equal within the tolerance");
    lg_st_close(&a);
    lg_st_close(&b);
    return bad;
}
