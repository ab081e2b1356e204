/* fmt.c — placeholder replaced below */
#include "front.h"
char *fmt_source(Ctx *ctx, int file) { (void)ctx; (void)file; return NULL; }
