/* fuzz_frontend.c — libFuzzer target for lgen's front end.
 *
 * Each input is a .lmod file: it is lexed, parsed, checked (sema), its
 * networks and steps elaborated (shapes), and formatted (fmt, twice, which
 * must give the same text). Any crash, sanitizer report, hang or memory
 * blow-up is a bug. Imports are not followed (no file system access).
 * Built with clang -fsanitize=fuzzer,address,undefined by `make fuzz`
 * (tests/frontend.mk); tests/fuzz/run.sh runs it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "front.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20)
        return 0;
    static FILE *devnull;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    Ctx ctx;
    ctx_init(&ctx);
    ctx.err = devnull;
    int file = diag_add_file(&ctx, "fuzz.lmod", (const char *)data, size);
    Module *mod = parse_file(&ctx, file);
    if (!mod->has_errors) {
        if (sema_check(&ctx, mod) == 0)
            shape_check(&ctx, mod);
        char *once = fmt_source(&ctx, file);
        if (once) {
            int again = diag_add_file(&ctx, "fuzz2.lmod", once, strlen(once));
            char *twice = fmt_source(&ctx, again);
            if (!twice || strcmp(once, twice) != 0) {
                fprintf(stderr, "fmt is not idempotent on this input\n");
                abort();
            }
        }
    }
    ctx_free(&ctx);
    return 0;
}
