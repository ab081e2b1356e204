/* rng.c — the runtime's generator (xoshiro256**) and PyTorch-style default
 * parameter initialisation (lgen/trainer.h).
 *
 * The trainer seeds one lg_prng from --seed and hands it to the model's init
 * (or to lg_init_params); its state is saved in every checkpoint so a resumed
 * run continues the same stream. Data order and augmentation do not use it:
 * the loader derives them from (seed, epoch, index) itself.
 */
#include "lgen/trainer.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void lg_prng_seed(lg_prng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t lg_prng_next(lg_prng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float lg_prng_uniform(lg_prng *r, float lo, float hi) {
    float u = (float)(lg_prng_next(r) >> 40) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * u;
}

void lg_init_uniform(float *p, size_t n, float bound, lg_prng *rng) {
    for (size_t i = 0; i < n; i++)
        p[i] = lg_prng_uniform(rng, -bound, bound);
}

void lg_init_params(const lg_model_def *def, float *params, lg_prng *rng) {
    for (int k = 0; k < def->n_params; k++) {
        const lg_param *q = &def->params[k];
        float *p = params + q->offset;
        /* kaiming_uniform(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound
         * gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in); the bias rule is the same. */
        float bound = q->fan_in > 0 ? (float)(1.0 / sqrt((double)q->fan_in)) : 0.0f;
        switch (q->init) {
        case LG_INIT_NONE:
        case LG_INIT_ZEROS:
            for (size_t i = 0; i < q->numel; i++)
                p[i] = 0.0f;
            break;
        case LG_INIT_ONES:
            for (size_t i = 0; i < q->numel; i++)
                p[i] = 1.0f;
            break;
        case LG_INIT_KAIMING_UNIFORM:
        case LG_INIT_FAN_IN_UNIFORM:
            lg_init_uniform(p, q->numel, bound, rng);
            break;
        }
    }
}
