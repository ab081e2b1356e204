/* fake_main.c — the fake model as a program (build/tests/trainer_fake), for
 * the script tests: `trainer_fake fit ...` is what a generated trainer is,
 * and `trainer_fake dump FILE` prints what the C reader sees in a
 * safetensors file (names, dtypes, shapes, values, metadata) as JSON, so
 * tests/trainer/interop.py can compare it with Python's safetensors.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "fake_model.h"
#include "lgen/checkpoint.h"

static int dump(const char *path) {
    lg_st_file f;
    lg_error err = {LG_OK, ""};
    if (lg_st_open(&f, path, &err) != LG_OK) {
        fprintf(stderr, "trainer_fake: error: %s\n", err.msg);
        return 1;
    }
    json_t *root = json_object(), *ts = json_object();
    for (int i = 0; i < f.n_tensors; i++) {
        const char *name = lg_st_name(&f, i);
        lg_dtype dt;
        int nd;
        int64_t shape[8];
        const void *data;
        lg_st_get(&f, name, &dt, &nd, shape, &data, &err);
        json_t *sh = json_array(), *vals = json_array();
        size_t n = 1;
        for (int d = 0; d < nd; d++) {
            json_array_append_new(sh, json_integer(shape[d]));
            n *= (size_t)shape[d];
        }
        for (size_t k = 0; k < n; k++) {
            const unsigned char *p = (const unsigned char *)data + k * lg_dtype_size(dt);
            if (dt == LG_DT_F32) {
                float v;
                memcpy(&v, p, 4);
                json_array_append_new(vals, json_real(v));
            } else if (dt == LG_DT_F64) {
                double v;
                memcpy(&v, p, 8);
                json_array_append_new(vals, json_real(v));
            } else if (dt == LG_DT_I64) {
                int64_t v;
                memcpy(&v, p, 8);
                json_array_append_new(vals, json_integer(v));
            } else if (dt == LG_DT_I32) {
                int32_t v;
                memcpy(&v, p, 4);
                json_array_append_new(vals, json_integer(v));
            } else {
                json_array_append_new(vals, json_integer(*p));
            }
        }
        json_object_set_new(ts, name, json_pack("{s:s, s:o, s:o}", "dtype", lg_dtype_name(dt),
                                                "shape", sh, "values", vals));
    }
    json_object_set_new(root, "tensors", ts);
    json_t *meta = json_object_get(f.header, "__metadata__");
    json_object_set(root, "metadata", meta ? meta : json_object());
    char *text = json_dumps(root, JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    puts(text);
    free(text);
    json_decref(root);
    lg_st_close(&f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "dump") == 0)
        return dump(argv[2]);
    return lg_main(argc, argv, &fake_def);
}
