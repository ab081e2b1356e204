/* dataset.c — opening a split of a prepared dataset: finds the split in the
 * descriptor, resolves the cache directory and hands over to the format's
 * reader (idx.c, cifar.c, folder.c, csv.c, voc.c).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

lg_status lg_dataset_open(lg_dataset **out, const lg_dataset_desc *d, const char *split,
                          const lg_data_config *cfg, lg_error *err) {
    *out = NULL;
    const lg_split_desc *sp = NULL;
    for (int i = 0; i < d->n_splits; i++)
        if (strcmp(d->splits[i].name, split) == 0)
            sp = &d->splits[i];
    if (!sp)
        return lg_error_set(err, LG_ERR_ARG, "dataset '%s' has no split '%s'", d->name, split);
    lg_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    ds->desc = d;
    ds->split = sp;
    char base[LG_PATH_MAX];
    lg_status st = lg_data_dir(cfg, base, sizeof base, err);
    if (st == LG_OK)
        st = lg_path_join(ds->root, sizeof ds->root, base, d->name, err);
    if (st == LG_OK) {
        switch (d->format) {
        case LG_FORMAT_IDX: st = lg_idx_open(ds, err); break;
        case LG_FORMAT_CIFAR10:
        case LG_FORMAT_CIFAR100: st = lg_cifar_open(ds, err); break;
        case LG_FORMAT_IMAGE_FOLDER: st = lg_folder_open(ds, err); break;
        case LG_FORMAT_CSV: st = lg_csv_open(ds, err); break;
        case LG_FORMAT_VOC: st = lg_voc_open(ds, err); break;
        default:
            st = lg_error_set(err, LG_ERR_ARG, "dataset '%s': unknown format %d", d->name,
                              (int)d->format);
        }
    }
    if (st) {
        lg_error_wrap(err, "dataset '%s' split '%s'", d->name, split);
        lg_dataset_close(ds);
        return st;
    }
    *out = ds;
    return LG_OK;
}

int64_t lg_dataset_size(const lg_dataset *ds) { return ds ? ds->n : 0; }

int64_t lg_dataset_skipped(const lg_dataset *ds) { return ds ? atomic_load(&ds->skipped) : 0; }

void lg_dataset_close(lg_dataset *ds) {
    if (!ds)
        return;
    if (ds->close)
        ds->close(ds);
    free(ds);
}
