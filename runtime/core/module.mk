# runtime/core: status and error records, op names, the thread pool.
RUNTIME_SRCS += runtime/core/status.c runtime/core/parallel.c
