/* capture.c — see capture.h. */
#define _XOPEN_SOURCE 700
#include "capture.h"

#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

static int remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

void capture_remove_tree(const char *dir) {
    if (dir[0])
        nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

void capture_slurp(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(buf, 1, n - 1, f) : 0;
    buf[got] = '\0';
    if (f)
        fclose(f);
}

int capture_main(const lg_model_def *def, int argc, char **argv, const char *scratch, char *out, size_t nout,
                 char *err, size_t nerr) {
    char po[512], pe[512];
    snprintf(po, sizeof po, "%s/.stdout", scratch);
    snprintf(pe, sizeof pe, "%s/.stderr", scratch);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    FILE *fo = fopen(po, "w"), *fe = fopen(pe, "w");
    if (!fo || !fe) {
        fprintf(stderr, "capture: cannot write %s/.stdout or .stderr\n", scratch);
        if (fo)
            fclose(fo);
        if (fe)
            fclose(fe);
        close(so);
        close(se);
        return -1;
    }
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int rc = lg_main(argc, argv, def);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    fclose(fo);
    fclose(fe);
    capture_slurp(po, out, nout);
    capture_slurp(pe, err, nerr);
    return rc;
}
