# runtime/trainer: flags, config, the fit/validate/test/predict loops,
# callbacks, loggers, checkpoints (safetensors), progress bar.
RUNTIME_SRCS += runtime/trainer/callbacks.c runtime/trainer/checkpoint.c runtime/trainer/flags.c \
                runtime/trainer/init_from.c \
                runtime/trainer/loop.c runtime/trainer/state.c \
                runtime/trainer/main.c runtime/trainer/progress.c runtime/trainer/rng.c \
                runtime/trainer/tensorboard.c
