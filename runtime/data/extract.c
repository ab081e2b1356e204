/* extract.c — unpacks a downloaded archive into the dataset's cache directory.
 *
 * libarchive reads tar (plain, gz, xz, bz2), zip, and a single .gz file (the
 * raw format, written without its .gz suffix). Each entry's name is checked
 * here first (no absolute path, no `..` component, links must stay inside)
 * and libarchive's secure-extraction flags check again while writing; any
 * refusal stops the extraction with an error naming the entry. Entry count
 * and total size are bounded. lg_data_prepare writes the marker that makes
 * this idempotent only after a full success, so a half-done extraction is
 * simply redone.
 */
#include "internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A relative path with no empty, `.`-only escape or `..` component. */
static int safe_relative(const char *p) {
    if (!p || !*p || p[0] == '/')
        return 0;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return 0;
        if (!e)
            break;
        s = e + 1;
    }
    return 1;
}

/* A symlink target must resolve inside the extraction root: walk its
 * components from the link's directory and never go above the root. */
static int safe_symlink(const char *entry, const char *target) {
    if (!target || target[0] == '/')
        return 0;
    int depth = 0;
    for (const char *p = entry; *p; p++)
        if (*p == '/')
            depth++;
    const char *s = target;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            if (--depth < 0)
                return 0;
        } else if (n > 0 && !(n == 1 && s[0] == '.')) {
            depth++;
        }
        if (!e)
            break;
        s = e + 1;
    }
    return 1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static lg_status copy_data(struct archive *in, struct archive *out, const char *archive,
                           const char *name, int64_t *total, int64_t max_bytes, lg_error *err) {
    const void *buf;
    size_t size;
    la_int64_t off;
    for (;;) {
        int r = archive_read_data_block(in, &buf, &size, &off);
        if (r == ARCHIVE_EOF)
            return LG_OK;
        if (r < ARCHIVE_WARN)
            return lg_error_set(err, LG_ERR_FORMAT, "'%s': entry '%s': %s", archive, name,
                                archive_error_string(in));
        *total += (int64_t)size;
        if (*total > max_bytes)
            return lg_error_set(err, LG_ERR_FORMAT,
                                "'%s': more than %lld bytes uncompressed; refusing to extract",
                                archive, (long long)max_bytes);
        if (archive_write_data_block(out, buf, size, off) < ARCHIVE_WARN)
            return lg_error_set(err, LG_ERR_IO, "'%s': writing '%s': %s", archive, name,
                                archive_error_string(out));
    }
}

lg_status lg_extract(const char *archive, const char *dir, const lg_extract_limits *lim,
                     lg_error *err) {
    int64_t max_entries = lim && lim->max_entries > 0 ? lim->max_entries : 1000000;
    int64_t max_bytes = lim && lim->max_bytes > 0 ? lim->max_bytes : (64ll << 30);
    lg_status st = lg_mkdirs(dir, err);
    if (st)
        return st;
    char root[PATH_MAX];
    if (!realpath(dir, root))
        return lg_error_set(err, LG_ERR_IO, "cannot resolve '%s': %s", dir, strerror(errno));

    /* A plain .gz (not .tar.gz / .tgz) is one compressed file: the raw format. */
    int raw = ends_with(archive, ".gz") && !ends_with(archive, ".tar.gz");
    struct archive *in = archive_read_new();
    struct archive *out = archive_write_disk_new();
    if (!in || !out) {
        archive_read_free(in);
        archive_write_free(out);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot start libarchive");
    }
    archive_read_support_filter_all(in);
    if (raw)
        archive_read_support_format_raw(in);
    else
        archive_read_support_format_all(in);
    /* Entries are written at <root>/<name>, an absolute path, so libarchive's
     * NOABSOLUTEPATHS cannot be used; safe_relative() refuses absolute names
     * before that, and root is canonical (realpath), so NODOTDOT holds. */
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    archive_write_disk_set_standard_lookup(out);
    if (archive_read_open_filename(in, archive, 1 << 16) != ARCHIVE_OK) {
        st = lg_error_set(err, LG_ERR_FORMAT, "cannot open archive '%s': %s", archive,
                          archive_error_string(in));
        goto done;
    }
    int64_t entries = 0, total = 0;
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            st = lg_error_set(err, LG_ERR_FORMAT, "'%s': %s", archive, archive_error_string(in));
            goto done;
        }
        if (++entries > max_entries) {
            st = lg_error_set(err, LG_ERR_FORMAT,
                              "'%s': more than %lld entries; refusing to extract", archive,
                              (long long)max_entries);
            goto done;
        }
        char name[LG_PATH_MAX], full[LG_PATH_MAX];
        if (raw) {
            const char *b = strrchr(archive, '/') ? strrchr(archive, '/') + 1 : archive;
            snprintf(name, sizeof name, "%.*s", (int)(strlen(b) - 3), b);
        } else {
            const char *p = archive_entry_pathname(e);
            snprintf(name, sizeof name, "%s", p ? p : "");
        }
        if (!safe_relative(name)) {
            st = lg_error_set(err, LG_ERR_FORMAT,
                              "'%s': entry '%s' would be written outside '%s'; refusing to "
                              "extract", archive, name, dir);
            goto done;
        }
        const char *hl = archive_entry_hardlink(e);
        const char *sl = archive_entry_symlink(e);
        if ((hl && !safe_relative(hl)) || (sl && !safe_symlink(name, sl))) {
            st = lg_error_set(err, LG_ERR_FORMAT,
                              "'%s': link '%s' -> '%s' points outside '%s'; refusing to extract",
                              archive, name, hl ? hl : sl, dir);
            goto done;
        }
        if ((st = lg_path_join(full, sizeof full, root, name, err)))
            goto done;
        archive_entry_set_pathname(e, full);
        if (hl) {
            char hfull[LG_PATH_MAX];
            if ((st = lg_path_join(hfull, sizeof hfull, root, hl, err)))
                goto done;
            archive_entry_set_hardlink(e, hfull);
        }
        if (raw) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
        }
        r = archive_write_header(out, e);
        if (r < ARCHIVE_WARN) {
            st = lg_error_set(err, LG_ERR_FORMAT, "'%s': entry '%s': %s", archive, name,
                              archive_error_string(out));
            goto done;
        }
        if (archive_entry_size(e) > 0 || raw) {
            if ((st = copy_data(in, out, archive, name, &total, max_bytes, err)))
                goto done;
        }
        if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
            st = lg_error_set(err, LG_ERR_IO, "'%s': entry '%s': %s", archive, name,
                              archive_error_string(out));
            goto done;
        }
    }
done:
    archive_read_free(in);
    archive_write_free(out);
    return st;
}
