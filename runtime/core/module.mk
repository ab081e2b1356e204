# runtime/core: status and error records, op names.
RUNTIME_SRCS += runtime/core/status.c
