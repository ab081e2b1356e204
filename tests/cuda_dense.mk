# tests/cuda_dense.mk: the dense ops' device calls as generated trainers make
# them, run on any machine: six specs' NAME_cuda.c linked with a device in
# host memory (tests/cuda/fake_device.c, tests/cuda/fake_layers.c) train a
# few batches in 32-true, 16-mixed and bf16-mixed against their CPU run.
# (The kernels' bodies: check_cuda_body and check_cuda_twins, in
# runtime/cuda/module.mk.)
CHECK_SCRIPTS += tests/cuda/check_steps_gen.sh
