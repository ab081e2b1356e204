/* voc.c — PASCAL VOC detection data (VOC2007 / VOC2012 layout).
 *
 * root/ImageSets/Main/<set>.txt lists image ids; root/Annotations/<id>.xml
 * holds each image's objects (name, difficult, truncated, bndbox); pixels are
 * root/JPEGImages/<id>.jpg. All annotations are parsed at open, in the
 * calling thread, with libxml2 under strict rules: no network
 * (XML_PARSE_NONET), no entity substitution and no DTD loading (neither
 * XML_PARSE_NOENT nor XML_PARSE_DTDLOAD), a 1 MiB size bound, and a document
 * with any DTD or entity declaration is refused outright, so external
 * entities and "billion laughs" expansions never happen. Only text nodes are
 * read. A missing bndbox or coordinate, or an unknown class name, is an error
 * naming the file, or (args.skip_bad) a skipped image that is counted.
 * Boxes become 0-based pixel edges: x1 = xmin - 1, y1 = ymin - 1, x2 = xmax,
 * y2 = ymax. Images are decoded on demand by get().
 */
#include "internal.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#define VOC_XML_MAX (1 << 20)

typedef struct voc_box {
    float b[4];
    int32_t label;
    uint8_t difficult, truncated;
} voc_box;

typedef struct voc_data {
    char **ids;      /* [n] */
    int64_t *first;  /* [n + 1] box ranges into boxes */
    voc_box *boxes;
    int64_t n, nbox, box_cap;
    char jpeg_dir[LG_PATH_MAX];
} voc_data;

static xmlNode *child(xmlNode *n, const char *name) {
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c;
    return NULL;
}

/* The element's own text (text and CDATA children only), trimmed, into buf. */
static int text_of(xmlNode *n, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    if (!n)
        return 0;
    for (xmlNode *c = n->children; c; c = c->next) {
        if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) || !c->content)
            continue;
        size_t k = strlen((const char *)c->content);
        if (len + k >= size)
            k = size - 1 - len;
        memcpy(buf + len, c->content, k);
        len += k;
    }
    buf[len] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    memmove(buf, s, strlen(s) + 1);
    len = strlen(buf);
    while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t' || buf[len - 1] == '\n' ||
                   buf[len - 1] == '\r'))
        buf[--len] = '\0';
    return 1;
}

static int number_of(xmlNode *n, const char *name, double *v) {
    char buf[64], *end;
    if (!text_of(child(n, name), buf, sizeof buf) || !buf[0])
        return 0;
    *v = strtod(buf, &end);
    return *end == '\0';
}

static lg_status add_box(voc_data *d, const voc_box *b, lg_error *err) {
    if (d->nbox == d->box_cap) {
        int64_t nc = d->box_cap ? d->box_cap * 2 : 1024;
        voc_box *nb = realloc(d->boxes, (size_t)nc * sizeof *nb);
        if (!nb)
            return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
        d->boxes = nb;
        d->box_cap = nc;
    }
    d->boxes[d->nbox++] = *b;
    return LG_OK;
}

/* Parses one annotation file, appending its boxes. */
static lg_status parse_annotation(lg_dataset *ds, voc_data *d, const char *path, lg_error *err) {
    uint8_t *buf;
    size_t size;
    lg_status st = lg_read_file(path, VOC_XML_MAX, &buf, &size, err);
    if (st)
        return st;
    xmlParserCtxtPtr ctx = xmlNewParserCtxt();
    if (!ctx) {
        free(buf);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot start libxml2");
    }
    xmlDocPtr doc = xmlCtxtReadMemory(ctx, (const char *)buf, (int)size, path, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(buf);
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctx);
        char msg[256];
        snprintf(msg, sizeof msg, "%s", e && e->message ? e->message : "parse error\n");
        msg[strcspn(msg, "\n")] = '\0';
        st = lg_error_set(err, LG_ERR_FORMAT, "%s:%d: bad XML: %s", path, e ? e->line : 0, msg);
        xmlFreeParserCtxt(ctx);
        return st;
    }
    xmlFreeParserCtxt(ctx);
    int64_t first_box = d->nbox;
    if (doc->intSubset || doc->extSubset) {
        st = lg_error_set(err, LG_ERR_FORMAT,
                          "%s: a DTD or entity declaration is not allowed in an annotation", path);
        goto done;
    }
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "annotation")) {
        st = lg_error_set(err, LG_ERR_FORMAT, "%s: root element is not <annotation>", path);
        goto done;
    }
    for (xmlNode *o = root->children; o && !st; o = o->next) {
        if (o->type != XML_ELEMENT_NODE || strcmp((const char *)o->name, "object"))
            continue;
        char name[256];
        if (!text_of(child(o, "name"), name, sizeof name) || !name[0]) {
            st = lg_error_set(err, LG_ERR_FORMAT, "%s:%d: <object> without <name>", path,
                              o->line);
            break;
        }
        voc_box b = {.label = -1};
        for (int c = 0; c < ds->desc->n_classes; c++)
            if (!strcmp(ds->desc->classes[c], name))
                b.label = c;
        if (b.label < 0) {
            st = lg_error_set(err, LG_ERR_FORMAT, "%s:%d: unknown class '%s'", path, o->line,
                              name);
            break;
        }
        double v;
        b.difficult = number_of(o, "difficult", &v) && v != 0;
        b.truncated = number_of(o, "truncated", &v) && v != 0;
        xmlNode *bb = child(o, "bndbox");
        if (!bb) {
            st = lg_error_set(err, LG_ERR_FORMAT, "%s:%d: object '%s' has no <bndbox>", path,
                              o->line, name);
            break;
        }
        static const char *const keys[4] = {"xmin", "ymin", "xmax", "ymax"};
        for (int k = 0; k < 4 && !st; k++) {
            if (!number_of(bb, keys[k], &v))
                st = lg_error_set(err, LG_ERR_FORMAT, "%s:%d: <bndbox> of '%s' lacks a numeric <%s>",
                                  path, bb->line, name, keys[k]);
            else
                b.b[k] = (float)(k < 2 ? v - 1 : v);
        }
        if (!st && (b.b[2] <= b.b[0] || b.b[3] <= b.b[1]))
            st = lg_error_set(err, LG_ERR_FORMAT, "%s:%d: empty <bndbox> for '%s'", path,
                              bb->line, name);
        if (!st && !(b.difficult && ds->desc->args.voc_skip_difficult))
            st = add_box(d, &b, err);
    }
done:
    if (st)
        d->nbox = first_box;
    xmlFreeDoc(doc);
    return st;
}

static lg_status voc_get(lg_dataset *ds, int64_t i, lg_sample *s, lg_error *err) {
    voc_data *d = ds->impl;
    char name[LG_PATH_MAX], path[LG_PATH_MAX];
    snprintf(name, sizeof name, "%s.jpg", d->ids[i]);
    lg_status st = lg_path_join(path, sizeof path, d->jpeg_dir, name, err);
    int ch = ds->desc->args.decode_channels ? ds->desc->args.decode_channels : 3;
    if (st || (st = lg_image_load(path, ch, s, err)))
        return st;
    s->label = -1;
    s->nbox = 0;
    for (int64_t k = d->first[i]; k < d->first[i + 1]; k++)
        if ((st = lg_sample_add_box(s, d->boxes[k].b, d->boxes[k].label, d->boxes[k].difficult,
                                    err)))
            return st;
    return LG_OK;
}

static void voc_close(lg_dataset *ds) {
    voc_data *d = ds->impl;
    if (!d)
        return;
    for (int64_t i = 0; i < d->n; i++)
        free(d->ids[i]);
    free(d->ids);
    free(d->first);
    free(d->boxes);
    free(d);
}

lg_status lg_voc_open(lg_dataset *ds, lg_error *err) {
    const lg_split_desc *sp = ds->split;
    if (sp->n_paths != 1)
        return lg_error_set(err, LG_ERR_ARG, "voc needs one root directory, got %d paths",
                            sp->n_paths);
    if (ds->desc->n_classes < 1)
        return lg_error_set(err, LG_ERR_ARG, "voc needs the list of class names");
    voc_data *d = calloc(1, sizeof *d);
    if (!d)
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    ds->impl = d;
    ds->get = voc_get;
    ds->close = voc_close;
    char root[LG_PATH_MAX], list[LG_PATH_MAX], rel[512];
    lg_status st;
    snprintf(rel, sizeof rel, "ImageSets/Main/%s.txt", sp->set ? sp->set : sp->name);
    if ((st = lg_path_join(root, sizeof root, ds->root, sp->paths[0], err)) ||
        (st = lg_path_join(list, sizeof list, root, rel, err)) ||
        (st = lg_path_join(d->jpeg_dir, sizeof d->jpeg_dir, root, "JPEGImages", err)))
        return st;
    uint8_t *buf;
    size_t size;
    if ((st = lg_read_file(list, (size_t)256 << 20, &buf, &size, err)))
        return st;
    char *text = realloc(buf, size + 1);
    if (!text) {
        free(buf);
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    }
    text[size] = '\0';
    int64_t lines = 1;
    for (size_t k = 0; k < size; k++)
        lines += text[k] == '\n';
    d->ids = calloc((size_t)lines, sizeof *d->ids);
    d->first = calloc((size_t)lines + 1, sizeof *d->first);
    if (!d->ids || !d->first) {
        free(text);
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    }
    char *save = NULL;
    int64_t line = 0;
    for (char *ln = strtok_r(text, "\n", &save); ln && !st; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        char id[256];
        if (sscanf(ln, "%255s", id) != 1)
            continue;
        if (strchr(id, '/') || !strcmp(id, "..")) {
            st = lg_error_set(err, LG_ERR_FORMAT, "%s:%lld: bad image id '%s'", list,
                              (long long)line, id);
            break;
        }
        char xml[LG_PATH_MAX], xname[300];
        snprintf(xname, sizeof xname, "Annotations/%s.xml", id);
        if ((st = lg_path_join(xml, sizeof xml, root, xname, err)))
            break;
        d->first[d->n] = d->nbox;
        st = parse_annotation(ds, d, xml, err);
        if (st == LG_ERR_FORMAT && ds->desc->args.skip_bad) {
            fprintf(stderr, "warning: skipping image '%s': %s\n", id, err ? err->msg : "");
            atomic_fetch_add(&ds->skipped, 1);
            st = LG_OK;
            continue;
        }
        if (st)
            break;
        if (!(d->ids[d->n] = strdup(id))) {
            st = lg_error_set(err, LG_ERR_NOMEM, "out of memory");
            break;
        }
        d->n++;
        d->first[d->n] = d->nbox;
    }
    free(text);
    if (st)
        return st;
    if (d->n == 0)
        return lg_error_set(err, LG_ERR_FORMAT, "'%s' lists no usable images", list);
    ds->n = d->n;
    return LG_OK;
}
