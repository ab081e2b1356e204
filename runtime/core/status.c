/* status.c — error records for the runtime (see lgen/status.h). */
#include "lgen/status.h"
#include "lgen/op.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

lg_status lg_error_set(lg_error *err, lg_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

lg_status lg_error_wrap(lg_error *err, const char *fmt, ...) {
    if (!err)
        return LG_ERR_ARG;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is fine here: a long message keeps its beginning. */
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t m = strnlen(old, room);
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return err->code;
}

const char *lg_status_name(lg_status code) {
    switch (code) {
    case LG_OK: return "ok";
    case LG_ERR_ARG: return "bad argument";
    case LG_ERR_IO: return "i/o error";
    case LG_ERR_FORMAT: return "bad format";
    case LG_ERR_NOMEM: return "out of memory";
    case LG_ERR_NET: return "network error";
    case LG_ERR_CHECKSUM: return "checksum mismatch";
    case LG_ERR_NUMERIC: return "non-finite value";
    case LG_ERR_INTERRUPTED: return "interrupted";
    case LG_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown error";
}

static const char *const op_names[] = {
#define OP(ID, name, kind, min_in, max_in, grad, doc) name,
#include "lgen/ops.def"
};

const char *lg_op_name(lg_op_id id) {
    return (unsigned)id < LG_OP_COUNT ? op_names[id] : "?";
}
