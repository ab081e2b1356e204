/* fake_model.h — a hand-written model against lgen/trainer.h for the trainer
 * tests: a linear classifier (4 features, 3 classes) with softmax cross
 * entropy, two buffers and an in-memory data source, so the Trainer can be
 * tested without the compiler or the data pipeline.
 */
#ifndef LG_TESTS_FAKE_MODEL_H
#define LG_TESTS_FAKE_MODEL_H

#include "lgen/trainer.h"

extern const lg_model_def fake_def;       /* "fake", spec hash "f00d..." */
extern const lg_model_def fake_other_def; /* the same model, another spec hash */
extern const lg_model_def fake_csv_def;   /* fed by the data pipeline from fake.csv */

#endif
