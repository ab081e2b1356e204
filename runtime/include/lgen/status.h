/* lgen/status.h — how runtime functions report failure.
 *
 * Library code never exits or aborts on anything a user can cause. A function
 * that can fail returns an lg_status and, when it fails, leaves a message in
 * the lg_error its caller passed (one per thread or object; never global).
 * Only the generated main() prints "prog: error: <msg>" and exits nonzero.
 */
#ifndef LGEN_STATUS_H
#define LGEN_STATUS_H

#include <stddef.h>

typedef enum {
    LG_OK = 0,
    LG_ERR_ARG,         /* a bad argument, flag value, shape or range */
    LG_ERR_IO,          /* a file or directory operation failed */
    LG_ERR_FORMAT,      /* a file's contents are corrupt or unexpected */
    LG_ERR_NOMEM,       /* an allocation failed */
    LG_ERR_NET,         /* a download failed */
    LG_ERR_CHECKSUM,    /* a sha256 did not match */
    LG_ERR_NUMERIC,     /* NaN or infinity where a finite value was needed */
    LG_ERR_INTERRUPTED, /* stopped by a signal */
    LG_ERR_UNSUPPORTED, /* asked for something this build does not have */
} lg_status;

typedef struct lg_error {
    lg_status code;
    char msg[2048];
} lg_error;

/* Records code and a printf-style message in err (which may be NULL) and
 * returns code, so that `return lg_error_set(err, LG_ERR_IO, ...)` reads well. */
lg_status lg_error_set(lg_error *err, lg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with context: "loading 'x.ckpt': <old msg>". */
lg_status lg_error_wrap(lg_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A short name of a status code ("io error"). */
const char *lg_status_name(lg_status code);

#endif
