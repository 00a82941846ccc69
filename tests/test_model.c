/* Tests of the model module without a device: the loader on hand-built (valid and broken)
 * files, architecture .json errors, shape overflow, save/load round trips, shape inference,
 * editing helpers, .npy files.  The graph runtime's numerics are in test_model_graph.c.
 * Prints PASS/FAIL lines and "N passed, N failed". */
#include <cJSON.h>
#include <math.h>

#include "test_model.h"
#include "vkrun_model.h"
#include "vkrun_npy.h"

/* ------------------------------------------------------------ hand-built files */

typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[4];
    long long begin, end; /* -1: automatic, back to back */
} tspec;

static const char *k_graph_ok =
    "{\"version\":1,\"name\":\"tiny\",\"source\":\"test\",\"input\":{\"name\":\"in\",\"channels\":1,\"height\":4,"
    "\"width\":4,\"preprocess\":\"none\"},\"classes\":[\"a\",\"b\",\"c\"],\"layers\":["
    "{\"name\":\"in\",\"type\":\"input\"},"
    "{\"name\":\"c1\",\"type\":\"conv2d\",\"inputs\":[\"in\"],\"filters\":2,\"kernel\":[3,3],\"strides\":[1,1],"
    "\"padding\":\"same\",\"use_bias\":true,\"activation\":\"relu\"},"
    "{\"name\":\"g\",\"type\":\"gap\",\"inputs\":[\"c1\"]},"
    "{\"name\":\"d\",\"type\":\"dense\",\"inputs\":[\"g\"],\"units\":3,\"use_bias\":true,\"activation\":\"softmax\"}]}";

static const tspec k_tensors_ok[] = {
    {"c1.weight", "F32", 4, {2, 1, 3, 3}, -1, -1},
    {"c1.bias", "F32", 1, {2}, -1, -1},
    {"d.weight", "F32", 2, {3, 2}, -1, -1},
    {"d.bias", "F32", 1, {3}, -1, -1},
};
#define NT_OK 4

/* Writes a safetensors file.  hlen_delta is added to the true header length
 * in the 8-byte prefix; data_bytes is the size of the data section written
 * (-1: what the offsets need); fill is the float stored everywhere. */
static void write_st(const char *path, const char *graph, const tspec *t, int nt, long long hlen_delta,
                     long long data_bytes, int with_meta, float fill, const char *extra_json) {
    cJSON *h = cJSON_CreateObject();
    if (with_meta) {
        cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
        cJSON_AddStringToObject(meta, "format", "vkrun");
        if (graph) cJSON_AddStringToObject(meta, "vkrun_graph", graph);
    }
    long long off = 0, maxend = 0;
    for (int i = 0; i < nt; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dtype", t[i].dtype);
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        unsigned long long cnt = 1; /* may wrap on purpose (shapes that lie): unsigned */
        for (int d = 0; d < t[i].ndim; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
            cnt *= (unsigned long long)t[i].shape[d];
        }
        long long b = t[i].begin >= 0 ? t[i].begin : off;
        long long e = t[i].end >= 0 ? t[i].end : b + 4 * (long long)cnt;
        off = e;
        if (e > maxend) maxend = e;
        cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)b));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)e));
        cJSON_AddItemToObject(h, t[i].name, o);
    }
    char *txt = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    char *full = txt;
    if (extra_json) { /* splice raw text before the final '}' */
        size_t l = strlen(txt);
        full = malloc(l + strlen(extra_json) + 2);
        memcpy(full, txt, l - 1);
        strcpy(full + l - 1, extra_json);
        strcat(full, "}");
        free(txt);
    }
    unsigned long long hl = strlen(full);
    unsigned long long pre = (unsigned long long)((long long)hl + hlen_delta);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)((pre >> (8 * i)) & 0xff), f);
    fwrite(full, 1, hl, f);
    long long nd = data_bytes >= 0 ? data_bytes : maxend;
    for (long long i = 0; i < nd / 4; i++) fwrite(&fill, 4, 1, f);
    for (long long i = 0; i < nd % 4; i++) fputc(0, f);
    fclose(f);
    free(full);
}

static char *replace(const char *s, const char *a, const char *b) {
    const char *p = strstr(s, a);
    if (!p) {
        fprintf(stderr, "test bug: \"%s\" not in the string\n", a);
        exit(2);
    }
    char *r = malloc(strlen(s) + strlen(b) + 1);
    memcpy(r, s, p - s);
    strcpy(r + (p - s), b);
    strcat(r, p + strlen(a));
    return r;
}

/* Loads path and expects VKR_ERR_FORMAT with every needle in the message. */
static void expect_fail(const char *test, const char *path, const char *needle1, const char *needle2) {
    vkr_model *m = NULL;
    vkr_status s = vkr_model_load(path, &m);
    const char *msg = vkr_last_error();
    int ok = s == VKR_ERR_FORMAT && !m && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2)) && strstr(msg, path);
    result(ok, test, "%s [%s]", msg, vkr_status_name(s));
    vkr_model_free(m);
}

static void graph_case(const char *test, const char *from, const char *to, const char *n1, const char *n2) {
    char *gr = replace(k_graph_ok, from, to);
    const char *p = tmp_path("case.vkr");
    write_st(p, gr, k_tensors_ok, NT_OK, 0, -1, 1, 0.5f, NULL);
    expect_fail(test, p, n1, n2);
    free(gr);
}

/* An architecture .json that does not parse (truncated, empty) is a clear error naming the
 * file; under ASan this also proves the message is built before the text is freed. */
static void test_graph_file_errors(void) {
    static const char *texts[] = {"{\"version\": 1, \"input\": {\"channels\": 3, \"height\": 8, \"layers\": [{\"na", ""};
    for (int i = 0; i < 2; i++) {
        const char *path = tmp_path(i ? "empty.json" : "truncated.json");
        FILE *f = fopen(path, "wb");
        if (f) {
            fputs(texts[i], f);
            fclose(f);
        }
        vkr_model *m = NULL;
        vkr_status s = vkr_model_from_graph_file(path, 1, &m);
        const char *e = vkr_last_error();
        result(s == VKR_ERR_FORMAT && !m && strstr(e, path) && strstr(e, "not valid JSON"),
               i ? "empty graph .json refused" : "truncated graph .json refused", "%s", e);
        vkr_model_free(m);
    }
}

/* Shapes whose sizes overflow 32- or 64-bit arithmetic are refused with a message, never wrapped
 * (a parameter count of 0, a negative height, undefined behaviour under UBSan). */
static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void expect_graph_error(const char *name, const char *json, const char *needle) {
    const char *path = tmp_path("overflow.json");
    write_text(path, json);
    vkr_model *m = NULL;
    vkr_status s = vkr_model_from_graph_file(path, 1, &m);
    result(s == VKR_ERR_FORMAT && !m && strstr(vkr_last_error(), needle), name, "%s", s ? vkr_last_error() : "loaded");
    vkr_model_free(m);
}

static void test_shape_overflow(void) {
    const char *head = "{\"version\": 1, \"name\": \"o\", \"input\": {\"name\": \"in\", \"channels\": 65536, "
                       "\"height\": 8, \"width\": 8, \"preprocess\": \"none\"}, \"layers\": [{\"name\": \"in\", \"type\": \"input\"}";
    char *j = malloc(1 << 20);
    snprintf(j, 1 << 20, "%s, {\"name\": \"c\", \"type\": \"conv2d\", \"inputs\": [\"in\"], \"filters\": 65536, "
             "\"kernel\": [65536, 65536], \"strides\": [1, 1], \"padding\": \"same\", \"use_bias\": true}]}", head);
    expect_graph_error("conv weight of 2^64 elements refused (not 0 parameters)", j, "2^34");
    /* 1100 zeropads of 2^21 rows each on a 1-channel, 1-column input: an int height wraps after
     * 1024 of them (only the per-tensor size was checked) */
    const char *thin = "{\"version\": 1, \"name\": \"o\", \"input\": {\"name\": \"in\", \"channels\": 1, "
                       "\"height\": 8, \"width\": 1, \"preprocess\": \"none\"}, \"layers\": [{\"name\": \"in\", \"type\": \"input\"}";
    size_t n = (size_t)snprintf(j, 1 << 20, "%s", thin);
    for (int i = 0; i < 1100; i++) {
        char prev[16];
        snprintf(prev, sizeof prev, i ? "p%d" : "in", i - 1);
        n += (size_t)snprintf(j + n, (1 << 20) - n, ", {\"name\": \"p%d\", \"type\": \"zeropad\", \"inputs\": [\"%s\"], "
                              "\"padding\": [1048576, 1048576, 0, 0]}", i, prev);
    }
    snprintf(j + n, (1 << 20) - n, "]}");
    expect_graph_error("chained zeropads past 2^30 rows refused", j, "too large");
    /* a concat of 2100 inputs of 2^20 channels each: an int channel sum wraps */
    n = (size_t)snprintf(j, 1 << 20, "%s, {\"name\": \"w\", \"type\": \"conv2d\", \"inputs\": [\"in\"], \"filters\": 1048576, "
                         "\"kernel\": [1, 1], \"strides\": [8, 8], \"padding\": \"valid\", \"use_bias\": false}, "
                         "{\"name\": \"cat\", \"type\": \"concat\", \"inputs\": [", thin);
    for (int i = 0; i < 2100; i++) n += (size_t)snprintf(j + n, (1 << 20) - n, "%s\"w\"", i ? ", " : "");
    snprintf(j + n, (1 << 20) - n, "]}]}");
    expect_graph_error("concat past 2^30 channels refused", j, "too large");
    /* numbers that must be whole are not truncated */
    snprintf(j, 1 << 20, "{\"version\": 1.9, \"name\": \"o\", \"input\": {\"name\": \"in\", \"channels\": 1, \"height\": 8, "
             "\"width\": 8}, \"layers\": [{\"name\": \"in\", \"type\": \"input\"}, {\"name\": \"g\", \"type\": \"gap\", "
             "\"inputs\": [\"in\"]}]}");
    expect_graph_error("graph version 1.9 refused", j, "version");
    snprintf(j, 1 << 20, "{\"version\": 1, \"name\": \"o\", \"input\": {\"name\": \"in\", \"channels\": 2.7, \"height\": 8, "
             "\"width\": 8}, \"layers\": [{\"name\": \"in\", \"type\": \"input\"}, {\"name\": \"g\", \"type\": \"gap\", "
             "\"inputs\": [\"in\"]}]}");
    expect_graph_error("2.7 input channels refused (not truncated to 2)", j, "whole");
    /* layer names: 255 bytes load (the tensor name adds ".weight"), 256 are refused by name */
    for (int len = 255; len <= 256; len++) {
        char nm[300];
        memset(nm, 'n', (size_t)len);
        nm[len] = 0;
        snprintf(j, 1 << 20, "%s, {\"name\": \"%s\", \"type\": \"conv2d\", \"inputs\": [\"in\"], \"filters\": 2, "
                 "\"kernel\": [3, 3], \"strides\": [1, 1], \"padding\": \"same\", \"use_bias\": true}]}", thin, nm);
        if (len == 256) {
            expect_graph_error("a 256-byte layer name is refused, saying the limit", j, "at most 255");
        } else {
            const char *path = tmp_path("longname.json");
            write_text(path, j);
            vkr_model *m = NULL;
            vkr_status s = vkr_model_from_graph_file(path, 1, &m);
            result(!s && m && m->ntensors == 2 && strlen(m->tensors[0].name) == 255 + strlen(".weight"),
                   "a 255-byte layer name loads, with its tensors", "%s", s ? vkr_last_error() : "");
            vkr_model_free(m);
        }
    }
    free(j);
    /* a safetensors tensor whose element count wraps to 0 with offsets [0, 0] */
    const char *p = tmp_path("wrap.vkr");
    tspec t[1] = {{"x", "F32", 3, {1048576, 1048576, 16777216, 0}, 0, 0}};
    write_st(p, k_graph_ok, t, 1, 0, -1, 1, 0.0f, NULL);
    vkr_model *m = NULL;
    vkr_status s = vkr_model_load(p, &m);
    result(s == VKR_ERR_FORMAT && strstr(vkr_last_error(), "2^40"), "tensor shape whose count wraps refused", "%s",
           s ? vkr_last_error() : "loaded");
    vkr_model_free(m);
}

static void test_loader(void) {
    const char *ok = tmp_path("ok.vkr");
    write_st(ok, k_graph_ok, k_tensors_ok, NT_OK, 0, -1, 1, 0.25f, NULL);
    vkr_model *m = NULL;
    vkr_status s = vkr_model_load(ok, &m);
    result(s == VKR_OK && m && m->nlayers == 4 && m->ntensors == 4 && m->nclasses == 3, "load valid model", "%s",
           s ? vkr_last_error() : "");
    if (m) {
        uint64_t tot, tr, ntr;
        vkr_model_param_totals(m, &tot, &tr, &ntr);
        const vkr_layer *c1 = &m->layers[1];
        result(tot == 18 + 2 + 6 + 3 && tr == tot && ntr == 0 && c1->out_c == 2 && c1->out_h == 4 && c1->out_w == 4 &&
                   m->layers[3].out_rank == 2 && m->layers[3].out_c == 3 && c1->rpad[0] == 1 && c1->rpad[1] == 1,
               "param counts and shapes", "total %llu", (unsigned long long)tot);
        /* round trip */
        const char *rt = tmp_path("roundtrip.vkr");
        s = vkr_model_save(m, rt);
        vkr_model *m2 = NULL;
        vkr_status s2 = s ? s : vkr_model_load(rt, &m2);
        int same = !s2 && m2->nlayers == m->nlayers && m2->ntensors == m->ntensors && m2->nclasses == 3 &&
                   !strcmp(m2->classes[2], "c");
        for (int t = 0; same && t < m->ntensors; t++) {
            int u = vkr_model_find_tensor(m2, m->tensors[t].name);
            same = u >= 0 && m2->tensors[u].count == m->tensors[t].count &&
                   !memcmp(m2->tensors[u].data, m->tensors[t].data, m->tensors[t].count * 4);
        }
        for (int i = 0; same && i < m->nlayers; i++) {
            const vkr_layer *a = &m->layers[i], *b = &m2->layers[i];
            same = !strcmp(a->name, b->name) && a->type == b->type && a->filters == b->filters &&
                   a->activation == b->activation && a->pad_mode == b->pad_mode && a->out_c == b->out_c;
        }
        result(same, "save + load round trip", "%s", s2 ? vkr_last_error() : "");
        vkr_model_free(m2);
        /* no temporary file left next to it */
        char cmd[700];
        snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", g_dir);
        result(system(cmd) != 0, "atomic save leaves no temporary file", NULL);
        /* save into a missing directory fails cleanly */
        s = vkr_model_save(m, "/nonexistent-dir/x.vkr");
        result(s == VKR_ERR_IO, "save to a missing directory fails with VKR_ERR_IO", "%s", vkr_last_error());
        vkr_model_free(m);
    }
    /* damaged containers */
    {
        FILE *f = fopen(ok, "rb");
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc(sz);
        if (fread(buf, 1, sz, f) != (size_t)sz) exit(2);
        fclose(f);
        const char *tr = tmp_path("trunc.vkr");
        f = fopen(tr, "wb");
        fwrite(buf, 1, sz - 10, f);
        fclose(f);
        expect_fail("truncated data section", tr, "d.bias", "past the end");
        f = fopen(tr, "wb");
        fwrite(buf, 1, 5, f);
        fclose(f);
        expect_fail("file shorter than 8 bytes", tr, "too short", NULL);
        f = fopen(tr, "wb");
        fwrite(buf, 1, 100, f);
        fclose(f);
        expect_fail("truncated inside the header", tr, "header length", NULL);
        free(buf);
    }
    const char *p = tmp_path("bad.vkr");
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, 1000000, -1, 1, 0.f, NULL);
    expect_fail("header length larger than the file", p, "header length", NULL);
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, -5, -1, 1, 0.f, NULL);
    expect_fail("header length too short (cut JSON)", p, "JSON", NULL);
    { /* a header that is JSON but an array: no "parse error at byte -1" */
        FILE *f = fopen(p, "wb");
        if (f) {
            const unsigned char len8[8] = {2, 0, 0, 0, 0, 0, 0, 0};
            fwrite(len8, 1, 8, f);
            fwrite("[]", 1, 2, f);
            fclose(f);
        }
        expect_fail("header [] is not an object", p, "not an object", NULL);
        result(!strstr(vkr_last_error(), "byte -1"), "header []: no byte -1 in the message", "%s", vkr_last_error());
    }
    {
        tspec t[NT_OK];
        memcpy(t, k_tensors_ok, sizeof t);
        t[1].begin = 8, t[1].end = 16; /* inside c1.weight */
        write_st(p, k_graph_ok, t, NT_OK, 0, 200, 1, 0.f, NULL);
        expect_fail("overlapping data_offsets", p, "overlap", "c1.bias");
        memcpy(t, k_tensors_ok, sizeof t);
        t[2].end = 72 + 4 + 20; /* d.weight needs 24 bytes */
        t[2].begin = 80;
        t[3].begin = 120;
        write_st(p, k_graph_ok, t, NT_OK, 0, 200, 1, 0.f, NULL);
        expect_fail("span differs from shape", p, "d.weight", "needs 24");
        memcpy(t, k_tensors_ok, sizeof t);
        t[0].dtype = "F16";
        write_st(p, k_graph_ok, t, NT_OK, 0, 200, 1, 0.f, NULL);
        expect_fail("wrong dtype", p, "c1.weight", "F16");
        memcpy(t, k_tensors_ok, sizeof t);
        t[0].shape[1] = 3;
        write_st(p, k_graph_ok, t, NT_OK, 0, -1, 1, 0.f, NULL);
        expect_fail("weight shape mismatch", p, "c1.weight", "needs [2, 1, 3, 3]");
        write_st(p, k_graph_ok, k_tensors_ok, NT_OK - 1, 0, -1, 1, 0.f, NULL);
        expect_fail("missing tensor", p, "d.bias", "missing");
        tspec t5[NT_OK + 1];
        memcpy(t5, k_tensors_ok, sizeof k_tensors_ok);
        t5[NT_OK] = (tspec){"extra.weight", "F32", 1, {4}, -1, -1};
        write_st(p, k_graph_ok, t5, NT_OK + 1, 0, -1, 1, 0.f, NULL);
        expect_fail("unused tensor", p, "extra.weight", "not used");
    }
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, 0, -1, 1, 0.f, ",\"d.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}");
    expect_fail("duplicate tensor key", p, "d.bias", "twice");
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, 0, -1, 0, 0.f, NULL);
    expect_fail("no __metadata__", p, "__metadata__", NULL);
    write_st(p, "{not json", k_tensors_ok, NT_OK, 0, -1, 1, 0.f, NULL);
    expect_fail("graph is not JSON", p, "vkrun_graph", "JSON");
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, 0, -1, 1, NAN, NULL);
    expect_fail("non-finite weight", p, "c1.weight", "non-finite");
    graph_case("unknown layer type", "\"type\":\"gap\"", "\"type\":\"reshape\"", "\"g\"", "unknown layer type \"reshape\"");
    graph_case("unknown input name", "\"inputs\":[\"c1\"]", "\"inputs\":[\"nope\"]", "\"g\"", "\"nope\"");
    graph_case("input defined later (cycle)", "\"inputs\":[\"in\"]", "\"inputs\":[\"g\"]", "\"c1\"", "later");
    graph_case("self-cycle", "\"inputs\":[\"c1\"]", "\"inputs\":[\"g\"]", "\"g\"", "cycle");
    graph_case("duplicate layer name", "{\"name\":\"g\",", "{\"name\":\"c1\",", "duplicate layer name \"c1\"", NULL);
    graph_case("bad version", "\"version\":1", "\"version\":2", "version 2", NULL);
    graph_case("bad padding", "\"padding\":\"same\"", "\"padding\":\"full\"", "\"c1\"", "full");
    graph_case("dense on a 4-D input", "\"inputs\":[\"g\"]", "\"inputs\":[\"c1\"]", "\"d\"", "[N, F]");
    graph_case("add with one input", "\"type\":\"gap\"", "\"type\":\"add\"", "\"g\"", "2 inputs");
    graph_case("input name mismatch", "\"input\":{\"name\":\"in\"", "\"input\":{\"name\":\"x\"", "input.name", NULL);
    {
        /* a kernel too large for the input: 5x5 valid on 4x4 */
        char *gr = replace(k_graph_ok, "\"kernel\":[3,3],\"strides\":[1,1],\"padding\":\"same\"",
                           "\"kernel\":[5,5],\"strides\":[1,1],\"padding\":\"valid\"");
        tspec t[NT_OK];
        memcpy(t, k_tensors_ok, sizeof t);
        t[0].shape[2] = t[0].shape[3] = 5;
        write_st(p, gr, t, NT_OK, 0, -1, 1, 0.f, NULL);
        expect_fail("window larger than the input", p, "\"c1\"", "larger than");
        free(gr);
    }
    {
        /* add of mismatched shapes */
        const char *g2 =
            "{\"version\":1,\"input\":{\"name\":\"in\",\"channels\":2,\"height\":4,\"width\":4},\"layers\":["
            "{\"name\":\"in\",\"type\":\"input\"},{\"name\":\"p\",\"type\":\"maxpool\",\"inputs\":[\"in\"],\"pool\":2},"
            "{\"name\":\"s\",\"type\":\"add\",\"inputs\":[\"in\",\"p\"]}]}";
        write_st(p, g2, NULL, 0, 0, 0, 1, 0.f, NULL);
        expect_fail("add of mismatched shapes", p, "\"s\"", "\"p\" is [N, 2, 2, 2]");
    }
    /* missing file */
    vkr_model *mm = NULL;
    s = vkr_model_load(tmp_path("does-not-exist.vkr"), &mm);
    result(s == VKR_ERR_IO && !mm, "missing file is VKR_ERR_IO", "%s", vkr_last_error());
}

/* ------------------------------------------------------------ shapes and editing */

static void test_shapes_and_edit(void) {
    vkr_model *m;
    vkr_status s = vkr_model_new("edit", "in", 3, 7, 8, "none", &m);
    if (s) {
        result(0, "model_new", "%s", vkr_last_error());
        return;
    }
    s = vkr_model_append_json(m, "{\"name\":\"c\",\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"strides\":2,"
                                 "\"padding\":\"same\"}", 7);
    if (!s) s = vkr_model_append_json(m, "{\"name\":\"p\",\"type\":\"maxpool\",\"pool\":[3,3],\"strides\":[2,2],"
                                         "\"padding\":\"same\"}", 0);
    const vkr_layer *c = &m->layers[1], *pl = &m->layers[2];
    /* in 7x8, k3 s2: out 4x4; total h = 3*2+3-7 = 2 -> (1,1); w = 3*2+3-8 = 1 -> (0,1) */
    result(!s && c->out_h == 4 && c->out_w == 4 && c->rpad[0] == 1 && c->rpad[1] == 1 && c->rpad[2] == 0 &&
               c->rpad[3] == 1 && pl->out_h == 2 && pl->out_w == 2,
           "Keras same padding rule", "conv pads %d %d %d %d, out %dx%d, pool out %dx%d", c->rpad[0], c->rpad[1],
           c->rpad[2], c->rpad[3], c->out_h, c->out_w, pl->out_h, pl->out_w);
    s = vkr_model_infer_shapes(m, 224, 224);
    result(!s && m->layers[1].out_h == 112 && m->layers[1].rpad[0] == 0 && m->layers[1].rpad[1] == 1 &&
               m->layers[2].out_h == 56,
           "infer_shapes at 224x224", "conv out %d pads %d,%d", m->layers[1].out_h, m->layers[1].rpad[0],
           m->layers[1].rpad[1]);
    if (!s) s = vkr_model_append_gap(m, "gap");
    if (!s) s = vkr_model_append_dense(m, "head", 10, VKR_ACT_SOFTMAX, 42);
    const vkr_tensor *W = s ? NULL : vkr_model_param(m, 4, VKR_PARAM_WEIGHT);
    const vkr_tensor *B = s ? NULL : vkr_model_param(m, 4, VKR_PARAM_BIAS);
    double lim = sqrt(6.0 / (4 + 10)), mx = 0;
    int zero_bias = B != NULL;
    for (uint64_t i = 0; W && i < W->count; i++) mx = fmax(mx, fabs(W->data[i]));
    for (uint64_t i = 0; B && i < B->count; i++) zero_bias &= B->data[i] == 0;
    result(W && W->shape[0] == 10 && W->shape[1] == 4 && mx <= lim && mx > 0.5 * lim && zero_bias,
           "append gap + dense: Glorot-uniform weight, zero bias", "max |w| %.3f, limit %.3f", mx, lim);
    s = vkr_model_append_json(m, "{\"name\":\"head\",\"type\":\"relu\"}", 0);
    result(s == VKR_ERR_FORMAT && m->nlayers == 5, "append rejects a duplicate name", "%s", vkr_last_error());
    const char *cls[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    vkr_model_set_classes(m, 10, cls);
    vkr_model_set_trainable(m, 0, 2, 0);
    uint64_t tot, tr, ntr;
    vkr_model_param_totals(m, &tot, &tr, &ntr);
    result(tot == 4 * 3 * 9 + 4 + 40 + 10 && ntr == 4 * 3 * 9 + 4, "trainable flags in totals", "total %llu non-trainable %llu",
           (unsigned long long)tot, (unsigned long long)ntr);
    const char *ep = tmp_path("edit.vkr");
    s = vkr_model_save(m, ep);
    vkr_model *m2 = NULL;
    if (!s) s = vkr_model_load(ep, &m2);
    result(!s && m2->nlayers == 5 && m2->nclasses == 10 && !m2->layers[1].trainable && m2->layers[4].trainable &&
               m2->layers[2].pad_mode == VKR_PAD_SAME,
           "edited model saves and reloads", "%s", s ? vkr_last_error() : "");
    if (m2) {
        s = vkr_model_truncate_after(m2, "c");
        result(!s && m2->nlayers == 2 && m2->ntensors == 2, "truncate_after drops later layers and tensors", "%d layers",
               m2->nlayers);
        vkr_model_free(m2);
    }
    vkr_model_free(m);
}

/* ------------------------------------------------------------ npy */

static void test_npy(void) {
    float d[24];
    for (int i = 0; i < 24; i++) d[i] = (float)i - 3.5f;
    int64_t sh[3] = {2, 3, 4};
    const char *p = tmp_path("a.npy");
    vkr_status s = vkr_npy_write(p, d, 3, sh);
    vkr_npy a;
    if (!s) s = vkr_npy_read(p, &a);
    result(!s && a.ndim == 3 && a.shape[2] == 4 && a.count == 24 && !memcmp(a.data, d, sizeof d), "npy round trip", "%s",
           s ? vkr_last_error() : "");
    if (!s) vkr_npy_free(&a);
    int64_t sh1[1] = {5};
    s = vkr_npy_write(p, d, 1, sh1);
    if (!s) s = vkr_npy_read(p, &a);
    result(!s && a.ndim == 1 && a.shape[0] == 5, "npy 1-D round trip", NULL);
    if (!s) vkr_npy_free(&a);
    struct {
        const char *name, *hdr, *needle;
        int extra;
    } bad[] = {
        {"npy float64 rejected", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", "<f8", 0},
        {"npy Fortran order rejected", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", "Fortran", 0},
        {"npy truncated data rejected", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "truncated", 0},
        {"npy trailing bytes rejected", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "trailing", 0},
        {"npy garbage header rejected", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", "malformed", 0},
        /* 2^24 * 2^40 wraps a 64-bit count to 0 when multiplied unchecked */
        {"npy shape whose count wraps rejected",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 16777216, 1099511627776), }", "2^38", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(p, "wb");
        char hdr[256];
        snprintf(hdr, sizeof hdr, "%s", bad[i].hdr);
        size_t l = strlen(hdr);
        size_t tot = (10 + l + 1 + 63) / 64 * 64;
        fwrite("\x93NUMPY\x01\x00", 1, 8, f);
        fputc((int)((tot - 10) & 0xff), f);
        fputc((int)((tot - 10) >> 8), f);
        fwrite(hdr, 1, l, f);
        for (size_t k = 10 + l; k < tot - 1; k++) fputc(' ', f);
        fputc('\n', f);
        fwrite(d, 4, 2, f); /* 8 bytes of data */
        fclose(f);
        s = vkr_npy_read(p, &a);
        result(s == VKR_ERR_FORMAT && strstr(vkr_last_error(), bad[i].needle), bad[i].name, "%s", vkr_last_error());
        if (!s) vkr_npy_free(&a);
    }
}

/* Fields and shapes of the issue-14 layer types: each bad layer appended to a small model is a
 * VKR_ERR_FORMAT naming the layer and the fault. */
static void test_new_layer_errors(void) {
    static const struct {
        const char *name, *json, *needle;
    } bad[] = {
        {"clip without max", "{\"name\":\"q\",\"type\":\"clip\",\"min\":0}", "\"min\" and \"max\""},
        {"clip min above max", "{\"name\":\"q\",\"type\":\"clip\",\"min\":2,\"max\":1}", "above \"max\""},
        {"clip max not a number", "{\"name\":\"q\",\"type\":\"clip\",\"min\":0,\"max\":\"6\"}", "\"max\""},
        {"multiply: the image broadcast onto a vector", "|{\"name\":\"q\",\"type\":\"multiply\",\"inputs\":[\"se\",\"in\"]}",
         "neither the shape"},
        {"multiply with one input", "{\"name\":\"q\",\"type\":\"multiply\",\"inputs\":[\"in\"]}", "input"},
        {"conv2d groups not dividing the channels",
         "{\"name\":\"q\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"groups\":4}", "groups 4 must divide"},
        {"conv2d groups 0", "{\"name\":\"q\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":3,\"groups\":0}",
         "\"groups\""},
        {"conv2d dilation 0", "{\"name\":\"q\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":3,\"dilation\":[1,0]}",
         "\"dilation\""},
        {"conv2d dilated window larger than the input",
         "{\"name\":\"q\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":3,\"dilation\":4}", "larger than"},
        {"maxpool ceil_mode not a bool",
         "{\"name\":\"q\",\"type\":\"maxpool\",\"pool\":2,\"ceil_mode\":1}", "\"ceil_mode\""},
        {"hard_sigmoid alpha 0", "{\"name\":\"q\",\"type\":\"hard_sigmoid\",\"alpha\":0}", "must not be 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vkr_model *m = NULL;
        vkr_status s = vkr_model_new("t", "in", 6, 9, 7, "none", &m);
        if (!s && bad[i].json[0] != '{') /* "prefix|layer": a layer appended first */
            s = vkr_model_append_json(m, "{\"name\":\"se\",\"type\":\"gap\"}", 1);
        const char *js = bad[i].json[0] == '{' ? bad[i].json : strchr(bad[i].json, '|') + 1;
        if (!s) s = vkr_model_append_json(m, js, 1);
        const char *e = vkr_last_error();
        result(s == VKR_ERR_FORMAT && strstr(e, bad[i].needle) && strstr(e, "\"q\""), bad[i].name, "%s [%s]", e,
               vkr_status_name(s));
        vkr_model_free(m);
    }
}

int main(void) {
    test_dir_create("model");
    test_loader();
    test_graph_file_errors();
    test_shape_overflow();
    test_shapes_and_edit();
    test_npy();
    test_new_layer_errors();
    test_dir_remove();
    return test_finish();
}
