# runtime/data: download/cache, extraction, format readers, transforms, loader (issue 5).
RUNTIME_SRCS += runtime/data/util.c runtime/data/download.c runtime/data/extract.c \
                runtime/data/dataset.c runtime/data/idx.c runtime/data/transform.c \
                runtime/data/loader.c runtime/data/image.c \
                runtime/data/cifar.c runtime/data/folder.c runtime/data/csv.c \
                runtime/data/voc.c
# sha256 from OpenSSL's libcrypto; zlib reads .gz directly.
RUNTIME_LIBS += -lcrypto -lz
