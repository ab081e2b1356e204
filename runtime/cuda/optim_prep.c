/* optim_prep.c — the device optimizer's per-group constants
 * (lgen/cuda_optim.h), computed on the host exactly as runtime/optim/optim.c
 * computes them for its own pass: in double, rounded to float once. Plain C
 * in liblgen.a, so the host tests check it with the bodies on any machine.
 * Neighbours: optim_body.h (the update), optim.cu (the launchers).
 */
#include "lgen/cuda_optim.h"

#include "lgen/optim.h"

#include <math.h>
#include <string.h>

void lg_cuda_optim_hyper_for(const lg_optim *o, int g, lg_cuda_optim_hyper *h) {
    const lg_optim_config *c = &o->cfg;
    const lg_optim_group *grp = &o->groups[g];
    memset(h, 0, sizeof *h);
    h->kind = (int)c->kind;
    h->sign = c->maximize ? -1.0f : 1.0f;
    h->lr = (float)grp->lr;
    h->wd = (float)grp->weight_decay;
    h->use_wd = h->wd != 0;
    h->mom = (float)c->momentum;
    h->eps = (float)c->eps;
    h->buf_slot = h->avg_slot = -1;
    switch (c->kind) {
    case LG_OPTIM_SGD:
        h->damp = (float)(1.0 - c->dampening);
        h->use_buf = c->momentum != 0;
        h->first = o->step == 1;
        h->nesterov = c->nesterov != 0;
        break;
    case LG_OPTIM_ADAM:
    case LG_OPTIM_ADAMW: {
        double bc1 = 1.0 - pow(c->beta1, (double)o->step);
        double bc2_sqrt = sqrt(1.0 - pow(c->beta2, (double)o->step));
        h->decoupled = c->kind == LG_OPTIM_ADAMW;
        h->amsgrad = c->amsgrad != 0;
        h->decay = (float)(1.0 - grp->lr * grp->weight_decay);
        h->w1 = (float)(1.0 - c->beta1);
        h->b2 = (float)c->beta2;
        h->w2 = (float)(1.0 - c->beta2);
        h->lerp_lo = h->w1 < 0.5f;
        h->step_size = (float)(grp->lr / bc1);
        h->bc2s = (float)bc2_sqrt;
        break;
    }
    case LG_OPTIM_RMSPROP: {
        int s = 1;
        h->alpha = (float)c->alpha;
        h->wa = (float)(1.0 - c->alpha);
        if (c->momentum > 0)
            h->buf_slot = s++;
        if (c->centered)
            h->avg_slot = s++;
        break;
    }
    }
}
