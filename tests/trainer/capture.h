/* capture.h — the trainer tests' harness around lg_main: a scratch
 * directory removed after each test, and one run of a model's main with
 * its stdout and stderr captured into buffers (check_trainer,
 * check_init_from, check_cuda_steps and check_cuda_resident share it). */
#ifndef LG_TESTS_CAPTURE_H
#define LG_TESTS_CAPTURE_H

#include <stddef.h>

#include "lgen/trainer.h"

/* Removes dir and everything below it (nothing when dir is ""). */
void capture_remove_tree(const char *dir);

/* Reads at most n - 1 bytes of path into buf, NUL-terminated ("" if unreadable). */
void capture_slurp(const char *path, char *buf, size_t n);

/* lg_main(argc, argv, def) with stdout and stderr written to files in
 * scratch and read back into out and err; returns lg_main's status. */
int capture_main(const lg_model_def *def, int argc, char **argv, const char *scratch, char *out, size_t nout,
                 char *err, size_t nerr);

#endif
