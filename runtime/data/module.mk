# runtime/data: download/cache, extraction, format readers, transforms, loader (issue 5).
RUNTIME_SRCS += runtime/data/util.c runtime/data/download.c runtime/data/extract.c \
                runtime/data/dataset.c runtime/data/idx.c runtime/data/transform.c \
                runtime/data/loader.c
# sha256 from OpenSSL's libcrypto; zlib reads .gz directly.
RUNTIME_LIBS += -lcrypto -lz
