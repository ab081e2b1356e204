/* ckpt_get.c — prints a float32 tensor of an lgen checkpoint, one value a
 * line: ckpt_get CKPT NAME. Built and used by tests/ops/bn_cumulative.sh. */
#include "lgen/checkpoint.h"
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    lg_st_file f;
    lg_error err = {0};
    lg_dtype dt;
    int nd;
    int64_t shape[8];
    const void *data;
    if (argc != 3 || lg_st_open(&f, argv[1], &err) != LG_OK) {
        fprintf(stderr, "get: %s\n", argc == 3 ? err.msg : "usage: get CKPT NAME");
        return 2;
    }
    if (lg_st_get(&f, argv[2], &dt, &nd, shape, &data, &err) != LG_OK || dt != LG_DT_F32) {
        fprintf(stderr, "get: %s: %s\n", argv[2], err.msg[0] ? err.msg : "not a float32 tensor");
        lg_st_close(&f);
        return 2;
    }
    size_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= (size_t)shape[d];
    for (size_t k = 0; k < n; k++) {
        float v;
        memcpy(&v, (const char *)data + 4 * k, 4);
        printf("%.9g\n", (double)v);
    }
    lg_st_close(&f);
    return 0;
}
