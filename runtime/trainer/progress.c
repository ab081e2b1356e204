/* progress.c — Lightning's progress bar, and plain lines when stdout is not
 * a terminal.
 *
 * On a terminal the bar is redrawn in place at most ten times a second:
 *     Epoch 0:  45%|████▌     | 380/844 [00:05<00:06, 72.31it/s, v_num=0, train_loss=0.512]
 * Elsewhere (logs, CI, pipes) the same text is printed as a line at every
 * tenth of a training epoch and at the end of each loop, so a log file
 * stays readable. loop.c
 * calls begin / update / end around each loop; nothing here touches stderr.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double lg_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void lg_progress_begin(lg_progress *p, const char *desc, int64_t total) {
    p->desc = desc;
    p->total = total;
    p->done = 0;
    p->t0 = lg_now();
    p->last_draw = 0;
    p->extra[0] = '\0';
}

static void clock_text(char *buf, size_t n, double s) {
    if (s < 0 || s > 359999)
        s = 0;
    long t = (long)s;
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void draw(lg_progress *p, int final) {
    double el = lg_now() - p->t0, rate = el > 0 ? p->done / el : 0;
    char e[32], r[32];
    clock_text(e, sizeof e, el);
    clock_text(r, sizeof r, rate > 0 ? (p->total - p->done) / rate : 0);
    int pct = p->total > 0 ? (int)(100 * p->done / p->total) : 100;
    if (p->tty) {
        static const char *const parts[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
        char bar[128] = "";
        int width = 10, eighths = p->total > 0 ? (int)(width * 8 * p->done / p->total) : width * 8;
        for (int i = 0; i < width; i++) {
            int cell = eighths - i * 8;
            strcat(bar, cell >= 8 ? "█" : cell > 0 ? parts[cell] : " ");
        }
        printf("\r%s: %3d%%|%s| %lld/%lld [%s<%s, %.2fit/s, v_num=%lld%s%s]\033[K", p->desc, pct,
               bar, (long long)p->done, (long long)p->total, e, r, rate, (long long)p->v_num,
               p->extra[0] ? ", " : "", p->extra);
        if (final)
            printf("\n");
    } else {
        printf("%s: %3d%% %lld/%lld [%s<%s, %.2fit/s%s%s]\n", p->desc, pct, (long long)p->done,
               (long long)p->total, e, r, rate, p->extra[0] ? ", " : "", p->extra);
    }
    fflush(stdout);
}

void lg_progress_update(lg_progress *p, int64_t done, const char *extra, int force) {
    int64_t before = p->done;
    p->done = done;
    if (extra)
        snprintf(p->extra, sizeof p->extra, "%s", extra);
    if (!p->enabled)
        return;
    if (p->tty) {
        double t = lg_now();
        if (force || t - p->last_draw >= 0.1) {
            p->last_draw = t;
            draw(p, 0);
        }
    } else if (p->total > 0 && strncmp(p->desc, "Epoch", 5) == 0) {
        int64_t step = p->total >= 10 ? p->total / 10 : 1;
        if (force || before / step != done / step)
            if (done < p->total)
                draw(p, 0);
    }
}

void lg_progress_end(lg_progress *p) {
    if (p->enabled)
        draw(p, 1);
}
