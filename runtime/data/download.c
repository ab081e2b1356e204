/* download.c — the dataset cache: fetch, verify, keep, extract.
 *
 * lg_data_prepare makes every file of a dataset descriptor present and
 * verified under <data_dir>/<dataset>/. A file is fetched with libcurl (http,
 * https, file) from --mirror and then each spec mirror in turn, into
 * <file>.part, resumed with a range request after an interruption, retried
 * with backoff, checked against its sha256 and only then renamed into place;
 * a bad file is deleted. A verified file gets a <file>.sha256 stamp (hash,
 * size, mtime) so later runs trust it without hashing again, and work
 * offline. An flock on <dataset>/.lock lets one process download while others
 * wait. Archives are then extracted by extract.c.
 */
#include "internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

lg_status lg_sha256_file(const char *path, char hex[65], lg_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return lg_error_set(err, LG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        fclose(f);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot start sha256");
    }
    static const size_t bufsize = 1 << 16;
    unsigned char *buf = malloc(bufsize);
    if (!buf) {
        EVP_MD_CTX_free(ctx);
        fclose(f);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate a hash buffer");
    }
    size_t n;
    while ((n = fread(buf, 1, bufsize, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    int bad = ferror(f);
    free(buf);
    fclose(f);
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (bad)
        return lg_error_set(err, LG_ERR_IO, "cannot read '%s'", path);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return LG_OK;
}

lg_status lg_data_dir(const lg_data_config *cfg, char *buf, size_t size, lg_error *err) {
    const char *d = cfg ? cfg->data_dir : NULL;
    int n;
    if (d && *d)
        n = snprintf(buf, size, "%s", d);
    else if ((d = getenv("LGEN_DATA_DIR")) && *d)
        n = snprintf(buf, size, "%s", d);
    else if ((d = getenv("XDG_CACHE_HOME")) && *d)
        n = snprintf(buf, size, "%s/lgen", d);
    else if ((d = getenv("HOME")) && *d)
        n = snprintf(buf, size, "%s/.cache/lgen", d);
    else
        return lg_error_set(err, LG_ERR_ARG, "no data directory: set --data_dir or $HOME");
    if (n < 0 || (size_t)n >= size)
        return lg_error_set(err, LG_ERR_ARG, "data directory path too long");
    return LG_OK;
}

/* ---- libcurl -------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code;
static void curl_init(void) { curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct fetch {
    FILE *out;
    const char *name;
    int quiet;
    curl_off_t resumed;   /* bytes already in .part */
    double start, last;   /* seconds */
} fetch;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud) {
    fetch *f = ud;
    return fwrite(p, size, n, f->out);
}

static void human(double b, char *buf, size_t size) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, size, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* The progress line: bytes done / total, rate and ETA, at most 5 times a second. */
static int progress_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)ultotal;
    (void)ulnow;
    fetch *f = ud;
    double t = now_s();
    /* Quick downloads get only the final line; slow ones a line every 0.2 s. */
    if (f->quiet || t - f->start < 0.5 || t - f->last < 0.2)
        return 0;
    f->last = t;
    double rate = dlnow / (t - f->start > 1e-3 ? t - f->start : 1e-3);
    char done[32], total[32], r[32];
    human((double)(dlnow + f->resumed), done, sizeof done);
    human((double)(dltotal + f->resumed), total, sizeof total);
    human(rate, r, sizeof r);
    if (dltotal > 0 && rate > 0)
        printf("\r%s: %s / %s  %s/s  ETA %.0fs   ", f->name, done, total, r,
               (double)(dltotal - dlnow) / rate);
    else
        printf("\r%s: %s  %s/s   ", f->name, done, r);
    fflush(stdout);
    return 0;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* One attempt: appends to part (resuming at its size). *fatal is set when a
 * retry of the same URL cannot help (404, bad URL). */
static lg_status fetch_once(const char *url, const char *part, const char *name,
                            const lg_data_config *cfg, int *fatal, lg_error *err) {
    *fatal = 0;
    long have = file_size(part);
    if (have < 0)
        have = 0;
    fetch f = {.name = name, .quiet = cfg ? cfg->quiet : 0, .resumed = have};
    f.out = fopen(part, have ? "ab" : "wb");
    if (!f.out)
        return lg_error_set(err, LG_ERR_IO, "cannot write '%s': %s", part, strerror(errno));
    CURL *c = curl_easy_init();
    if (!c) {
        fclose(f.out);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot start libcurl");
    }
    char cerr[CURL_ERROR_SIZE] = "";
    long connect_s = cfg && cfg->connect_timeout_s > 0 ? cfg->connect_timeout_s : 30;
    long stall_s = cfg && cfg->stall_timeout_s > 0 ? cfg->stall_timeout_s : 60;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "lgen-data/1");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (have)
        curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)have);
    f.start = now_s();
    f.last = f.start;
    CURLcode rc = curl_easy_perform(c);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_cleanup(c);
    int wbad = fclose(f.out) != 0;
    if (!f.quiet) {
        /* The last word on this attempt: total bytes and the mean rate. */
        curl_off_t got = 0;
        double t = now_s() - f.start;
        long size = file_size(part);
        char done[32], r[32];
        if (size > 0)
            got = (curl_off_t)size - f.resumed;
        human((double)(size > 0 ? size : 0), done, sizeof done);
        human(got / (t > 1e-3 ? t : 1e-3), r, sizeof r);
        printf("\r%s: %s  %s/s  %s\n", name, done, r, rc == CURLE_OK ? "done" : "interrupted");
        fflush(stdout);
    }
    if (rc == CURLE_OK && wbad)
        return lg_error_set(err, LG_ERR_IO, "cannot write '%s': %s", part, strerror(errno));
    if (rc == CURLE_OK)
        return LG_OK;
    if (rc == CURLE_RANGE_ERROR || http == 416) {
        /* The server cannot resume (or the part is already too long): start over. */
        unlink(part);
        return lg_error_set(err, LG_ERR_NET, "'%s': cannot resume, restarting", url);
    }
    if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
        rc == CURLE_FILE_COULDNT_READ_FILE || rc == CURLE_REMOTE_FILE_NOT_FOUND ||
        (rc == CURLE_HTTP_RETURNED_ERROR && http >= 400 && http < 500 && http != 408 &&
         http != 429) ||
        rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
        *fatal = 1;
    return lg_error_set(err, LG_ERR_NET, "'%s': %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
}

lg_status lg_download(const char *url, const char *dest, const char *sha256,
                      const lg_data_config *cfg, lg_error *err) {
    pthread_once(&curl_once, curl_init);
    if (curl_init_code != CURLE_OK)
        return lg_error_set(err, LG_ERR_NET, "cannot initialise libcurl: %s",
                            curl_easy_strerror(curl_init_code));
    char part[LG_PATH_MAX];
    if (snprintf(part, sizeof part, "%s.part", dest) >= (int)sizeof part)
        return lg_error_set(err, LG_ERR_ARG, "path too long: '%s'", dest);
    const char *name = strrchr(dest, '/') ? strrchr(dest, '/') + 1 : dest;
    int tries = cfg && cfg->retries > 0 ? cfg->retries : 3;
    lg_status st = LG_ERR_NET;
    /* A run killed between the last byte and the rename leaves a complete
     * .part; a range request for it would only get 416. */
    char have[65];
    if (sha256 && file_size(part) > 0 && lg_sha256_file(part, have, NULL) == LG_OK &&
        strcasecmp(have, sha256) == 0) {
        tries = 0;
        st = LG_OK;
    }
    for (int t = 0; t < tries; t++) {
        if (t > 0) {
            /* 0.25 s, 0.5 s, 1 s, ... capped at 8 s */
            double wait = 0.25 * (double)(1u << (t - 1 < 5 ? t - 1 : 5));
            struct timespec ts = {(time_t)wait, (long)((wait - (long)wait) * 1e9)};
            nanosleep(&ts, NULL);
        }
        int fatal;
        st = fetch_once(url, part, name, cfg, &fatal, err);
        if (st == LG_OK)
            break;
        if (fatal)
            break;
    }
    if (st != LG_OK)
        return st;
    if (sha256) {
        char got[65];
        if ((st = lg_sha256_file(part, got, err)))
            return st;
        if (strcasecmp(got, sha256) != 0) {
            unlink(part);
            return lg_error_set(err, LG_ERR_CHECKSUM,
                                "sha256 mismatch for '%s' from '%s': expected %s, got %s "
                                "(the file was deleted)",
                                name, url, sha256, got);
        }
    }
    if (rename(part, dest) != 0) {
        lg_error_set(err, LG_ERR_IO, "cannot rename '%s' to '%s': %s", part, dest,
                     strerror(errno));
        unlink(part);
        return LG_ERR_IO;
    }
    return LG_OK;
}

/* ---- the cache ------------------------------------------------------------ */

/* The stamp says "<sha256> <size> <mtime>"; it is trusted only while the file
 * keeps that size and mtime. */
static int stamp_ok(const char *path, const char *sha256) {
    char sp[LG_PATH_MAX];
    if (snprintf(sp, sizeof sp, "%s.sha256", path) >= (int)sizeof sp)
        return 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    FILE *f = fopen(sp, "r");
    if (!f)
        return 0;
    char hex[80] = "";
    long long size = -1, mtime = -1;
    int n = fscanf(f, "%70s %lld %lld", hex, &size, &mtime);
    fclose(f);
    return n == 3 && strcasecmp(hex, sha256) == 0 && size == (long long)st.st_size &&
           mtime == (long long)st.st_mtime;
}

static void stamp_write(const char *path, const char *sha256) {
    char sp[LG_PATH_MAX], tmp[LG_PATH_MAX];
    struct stat st;
    if (snprintf(sp, sizeof sp, "%s.sha256", path) >= (int)sizeof sp ||
        snprintf(tmp, sizeof tmp, "%s.sha256.tmp", path) >= (int)sizeof tmp ||
        stat(path, &st) != 0)
        return;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return; /* only a cache of work; hashing again next time is correct */
    fprintf(f, "%s %lld %lld\n", sha256, (long long)st.st_size, (long long)st.st_mtime);
    if (fclose(f) == 0)
        rename(tmp, sp);
    else
        unlink(tmp);
}

/* Is dest there and right? A present file with a wrong hash is deleted. */
static int verified(const char *dest, const char *sha256) {
    if (access(dest, R_OK) != 0)
        return 0;
    if (!sha256)
        return 1;
    if (stamp_ok(dest, sha256))
        return 1;
    char got[65];
    if (lg_sha256_file(dest, got, NULL) == LG_OK && strcasecmp(got, sha256) == 0) {
        stamp_write(dest, sha256);
        return 1;
    }
    unlink(dest);
    return 0;
}

static lg_status fetch_file(const lg_dataset_desc *d, const lg_file_desc *fd, const char *dest,
                            const lg_data_config *cfg, lg_error *err) {
    const char *mirrors[65];
    int n = 0;
    if (cfg && cfg->mirror && *cfg->mirror)
        mirrors[n++] = cfg->mirror;
    for (int i = 0; i < d->n_mirrors && n < 64; i++)
        mirrors[n++] = d->mirrors[i];
    if (n == 0)
        return lg_error_set(err, LG_ERR_NET, "dataset '%s': '%s' is not in the cache and no "
                            "mirror is given (use --mirror URL)", d->name, fd->name);
    /* Warnings go to stderr whatever cfg->quiet says (that is the progress line). */
    if (!fd->sha256)
        fprintf(stderr, "warning: dataset '%s': no sha256 for '%s'; not verified\n", d->name,
                fd->name);
    char msgs[1536] = "";
    size_t used = 0;
    lg_status last = LG_ERR_NET;
    for (int i = 0; i < n; i++) {
        char url[LG_PATH_MAX];
        lg_status st = lg_path_join(url, sizeof url, mirrors[i], fd->name, err);
        if (st == LG_OK)
            st = lg_download(url, dest, fd->sha256, cfg, err);
        if (st == LG_OK) {
            if (fd->sha256)
                stamp_write(dest, fd->sha256);
            return LG_OK;
        }
        last = st;
        if (i + 1 < n)
            fprintf(stderr, "warning: %s; trying the next mirror\n",
                    err ? err->msg : "download failed");
        if (err) {
            int k = snprintf(msgs + used, sizeof msgs - used, "\n  %s", err->msg);
            if (k > 0 && used + (size_t)k < sizeof msgs)
                used += (size_t)k;
        }
    }
    /* Keep the checksum status when any mirror served a wrong file. */
    lg_error_set(err, last, "dataset '%s': cannot fetch '%s' from %d mirror%s:%s", d->name,
                 fd->name, n, n == 1 ? "" : "s", msgs);
    return last;
}

lg_status lg_data_prepare(const lg_dataset_desc *d, const lg_data_config *cfg, lg_error *err) {
    char base[LG_PATH_MAX], root[LG_PATH_MAX], lockp[LG_PATH_MAX];
    lg_status st;
    if ((st = lg_data_dir(cfg, base, sizeof base, err)) ||
        (st = lg_path_join(root, sizeof root, base, d->name, err)) ||
        (st = lg_path_join(lockp, sizeof lockp, root, ".lock", err)) ||
        (st = lg_mkdirs(root, err)))
        return st;
    int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock < 0)
        return lg_error_set(err, LG_ERR_IO, "cannot open lock file '%s': %s", lockp,
                            strerror(errno));
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        if (!(cfg && cfg->quiet)) {
            printf("dataset '%s': another process is preparing it; waiting\n", d->name);
            fflush(stdout);
        }
        while (flock(lock, LOCK_EX) != 0) {
            if (errno != EINTR) {
                close(lock);
                return lg_error_set(err, LG_ERR_IO, "cannot lock '%s': %s", lockp,
                                    strerror(errno));
            }
        }
    }
    for (int i = 0; i < d->n_files && st == LG_OK; i++) {
        const lg_file_desc *fd = &d->files[i];
        char dest[LG_PATH_MAX];
        if (!fd->name || strchr(fd->name, '/') || !strcmp(fd->name, "..") ||
            !strcmp(fd->name, ".")) {
            st = lg_error_set(err, LG_ERR_ARG, "dataset '%s': bad file name '%s'", d->name,
                              fd->name ? fd->name : "(null)");
            break;
        }
        if ((st = lg_path_join(dest, sizeof dest, root, fd->name, err)))
            break;
        if (!verified(dest, fd->sha256)) {
            if ((st = fetch_file(d, fd, dest, cfg, err)))
                break;
        }
        if (fd->extract) {
            char marker[LG_PATH_MAX], mname[512];
            snprintf(mname, sizeof mname, ".%s.extracted", fd->name);
            if ((st = lg_path_join(marker, sizeof marker, root, mname, err)))
                break;
            if (access(marker, F_OK) == 0)
                continue;
            if (!(cfg && cfg->quiet)) {
                printf("dataset '%s': extracting '%s'\n", d->name, fd->name);
                fflush(stdout);
            }
            if ((st = lg_extract(dest, root, NULL, err)))
                break;
            int m = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
            if (m < 0) {
                st = lg_error_set(err, LG_ERR_IO, "cannot write '%s': %s", marker,
                                  strerror(errno));
                break;
            }
            close(m);
        }
    }
    flock(lock, LOCK_UN);
    close(lock);
    return st;
}
