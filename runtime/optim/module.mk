# runtime/optim: optimizers, schedulers, gradient clipping.
RUNTIME_SRCS += runtime/optim/optim.c runtime/optim/sched.c runtime/optim/clip.c
