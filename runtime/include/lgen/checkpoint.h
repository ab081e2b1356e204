/* lgen/checkpoint.h — safetensors files: the checkpoint format.
 *
 * A file is an 8-byte little-endian header size, a JSON header (written with
 * Jansson, padded with spaces to a multiple of 8 bytes) mapping each tensor
 * name to {"dtype", "shape", "data_offsets": [begin, end]} plus a
 * "__metadata__" map of strings, then the raw little-endian tensor bytes,
 * packed in header order. Python's `safetensors` package reads it as is.
 *
 * Writing goes to "<path>.tmp-<pid>", is flushed and fsync'd, then renamed:
 * a crash never leaves a half-written file under the final name.
 * Reading validates everything before anything is trusted: header size
 * against the file size, the JSON, names, dtypes, shapes, and that the
 * offsets tile the data exactly.
 */
#ifndef LGEN_CHECKPOINT_H
#define LGEN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "lgen/status.h"

typedef enum { LG_DT_F32, LG_DT_F64, LG_DT_I64, LG_DT_I32, LG_DT_U8 } lg_dtype;

/* One tensor to write: data holds numel elements of dtype. */
typedef struct lg_st_tensor {
    const char *name;
    lg_dtype dtype;
    int ndim;
    int64_t shape[8];
    const void *data;
} lg_st_tensor;

/* metadata: n_meta key/value string pairs (keys[i], values[i]). */
lg_status lg_st_write(const char *path, const lg_st_tensor *t, int n, const char *const *keys,
                      const char *const *values, int n_meta, lg_error *err);

/* An opened file: the whole file in memory, validated. */
typedef struct lg_st_file {
    char *path;
    unsigned char *buf;
    size_t size;
    size_t data_start;  /* 8 + header size */
    void *header;       /* json_t * (object) */
    int n_tensors;
    const char **names; /* tensor names in file order */
} lg_st_file;

lg_status lg_st_open(lg_st_file *f, const char *path, lg_error *err);
void lg_st_close(lg_st_file *f);

/* A metadata value, or NULL. */
const char *lg_st_meta(const lg_st_file *f, const char *key);

/* Tensor `name`: on success *data points into the file's buffer (maybe
 * unaligned: memcpy from it) and dtype/ndim/shape are filled. LG_ERR_FORMAT
 * with a message naming the tensor when it is missing. */
lg_status lg_st_get(const lg_st_file *f, const char *name, lg_dtype *dtype, int *ndim,
                    int64_t shape[8], const void **data, lg_error *err);

/* The i-th tensor name in file order (0 <= i < n_tensors), or NULL. */
const char *lg_st_name(const lg_st_file *f, int i);

size_t lg_dtype_size(lg_dtype t);
const char *lg_dtype_name(lg_dtype t);

#endif
