#include "cli.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

void cli_log(vkr_log_level level, const char *msg, void *ud) {
    (void)ud;
    fprintf(stderr, "vkrun: %s: %s\n", level == VKR_LOG_ERROR ? "error" : "warning", cli_esc_msg(msg));
}

int cli_error(const char *what, vkr_status s) {
    fprintf(stderr, "vkrun: %s: %s (%s)\n", what, cli_esc_msg(vkr_last_error()), vkr_status_name(s));
    return 1;
}

vkr_status cli_context(const char *device, vkr_context **ctx) {
    vkr_context_opts o = {.device = device, .validation = -1};
    return vkr_context_create(&o, ctx);
}

vkr_status cli_context_at(const char *device, const char *precision, vkr_context **ctx) {
    vkr_precision want = VKR_PRECISION_FP32;
    vkr_status s = precision ? vkr_precision_parse(precision, &want) : VKR_OK;
    if (s) return s;
    if ((s = cli_context(device, ctx))) return s;
    if (!precision) return VKR_OK;
    if ((s = vkr_context_set_precision(*ctx, want))) {
        vkr_context_destroy(*ctx);
        *ctx = NULL;
        return s;
    }
    vkr_precision got = vkr_context_precision(*ctx);
    if (want == VKR_PRECISION_AUTO)
        fprintf(stderr, "precision: auto -> %s (no faster kernel verified on this device)\n", vkr_precision_name(got));
    else fprintf(stderr, "precision: %s%s\n", vkr_precision_name(got),
                 got == VKR_PRECISION_FP16   ? " (GEMM inputs fp16, fp32 accumulation)"
                 : got == VKR_PRECISION_BF16 ? " (GEMM inputs bf16, fp32 accumulation)"
                                             : "");
    return VKR_OK;
}

int cli_check_validation(vkr_context *ctx) {
    if (vkr_validation_enabled(ctx) && (vkr_validation_errors(ctx) || vkr_validation_warnings(ctx))) {
        fprintf(stderr, "vkrun: the validation layer reported %u error(s) and %u warning(s)\n",
                vkr_validation_errors(ctx), vkr_validation_warnings(ctx));
        return 1;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 (RFC 3629: no overlongs, surrogates or
 * code points past U+10FFFF). */
static int utf8_len(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    int n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (!n || s[0] > 0xF4) return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return n;
}

const char *cli_escape(const char *text, int keep_lines) {
    static _Thread_local char ring[8][4096];
    static _Thread_local int next;
    char *out = ring[next++ % 8];
    const size_t cap = sizeof ring[0];
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p && o + 8 < cap) {
        int n = utf8_len(p);
        /* C0 controls and DEL (ESC starts a terminal sequence), C1 controls (U+0080..U+009F), non-UTF-8 */
        int bad = n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f) && !(keep_lines && (*p == '\n' || *p == '\t'))) ||
                  (n == 2 && p[0] == 0xC2 && p[1] < 0xA0);
        if (bad) {
            for (int k = 0; k < (n ? n : 1) && o + 5 < cap; k++) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[k]);
            p += n ? n : 1;
        } else {
            for (int k = 0; k < n; k++) out[o++] = (char)*p++;
        }
    }
    if (*p) o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = 0;
    return out;
}

void cli_json_add_bytes(cJSON *obj, const char *key, const char *text) {
    const unsigned char *t = (const unsigned char *)text;
    size_t n = strlen(text);
    char *out = malloc(3 * n + 1);
    if (!out) return;
    size_t o = 0;
    int valid = 1;
    for (size_t i = 0; i < n;) {
        int k = utf8_len(t + i);
        if (k) {
            memcpy(out + o, t + i, (size_t)k);
            o += (size_t)k, i += (size_t)k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3, i++;
            valid = 0;
        }
    }
    out[o] = 0;
    cJSON_AddStringToObject(obj, key, out);
    free(out);
    if (valid) return;
    char *hex = malloc(2 * n + 1), hk[64];
    if (!hex) return;
    for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", t[i]);
    snprintf(hk, sizeof hk, "%s_hex", key);
    cJSON_AddStringToObject(obj, hk, hex);
    free(hex);
}

void cli_print_plan(const vkr_graph *g, FILE *f) {
    char line[1024];
    vkr_graph_plan_line(g, line, sizeof line);
    if (!strstr(line, "in one pass")) fprintf(f, "vkrun: %s\n", line);
}

int cli_output_is_input(const char *cmd, const char *in, const char *out) {
    if (vkr_file_check_not_input(in, out) == VKR_OK) return 0;
    fprintf(stderr, "vkrun %s: %s\n", cmd, cli_esc_msg(vkr_last_error()));
    return 1;
}

int cli_output_unwritable(const char *cmd, const char *out) {
    if (vkr_file_check_writable(out) == VKR_OK) return 0;
    fprintf(stderr, "vkrun %s: %s\n", cmd, cli_esc_msg(vkr_last_error()));
    return 1;
}

/* ------------------------------------------------------------------ did you mean */

/* Damerau-Levenshtein (optimal string alignment) distance of a and b, '_' read as '-'; capped at 99. */
static int edit_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 62 || m > 62) return 99;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            char x = a[i - 1] == '_' ? '-' : a[i - 1], y = b[j - 1] == '_' ? '-' : b[j - 1];
            int v = d[i - 1][j - 1] + (x != y);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && x == (b[j - 2] == '_' ? '-' : b[j - 2]) && (a[i - 2] == '_' ? '-' : a[i - 2]) == y &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/* Calls fn for every distinct "--name" of usage (letters, digits, '-'). */
static void each_flag(const char *usage, void (*fn)(void *, const char *), void *ud) {
    for (const char *p = usage; (p = strstr(p, "--"));) {
        if (p > usage && (isalnum((unsigned char)p[-1]) || p[-1] == '-')) {
            p += 2;
            continue;
        }
        size_t k = 2;
        while (isalnum((unsigned char)p[k]) || (p[k] == '-' && isalnum((unsigned char)p[k + 1]))) k++;
        if (k > 2 && k < 64) {
            char f[64];
            memcpy(f, p, k);
            f[k] = 0;
            fn(ud, f);
        }
        p += k;
    }
}

typedef struct {
    const char *arg;
    char best[64], prefix[64];
    int dist, exact;
} suggest_state;

static void consider(void *ud, const char *flag) {
    suggest_state *st = ud;
    if (!strcmp(flag, st->arg)) st->exact = 1;
    int d = edit_distance(st->arg, flag);
    if (d < st->dist) {
        st->dist = d;
        snprintf(st->best, sizeof st->best, "%s", flag);
    }
    /* a flag the argument starts with: --augmentation -> --augment, --out-dir -> --out */
    size_t k = strlen(flag);
    if (!strncmp(st->arg, flag, k) && st->arg[k] && k > strlen(st->prefix))
        snprintf(st->prefix, sizeof st->prefix, "%s", flag);
}

static void has_flag(void *ud, const char *flag) {
    suggest_state *st = ud;
    if (!strcmp(flag, st->arg)) st->exact = 1;
}

int cli_suggest_flag(const char *arg, const char *usage, char *out, size_t n) {
    static const char *const alias[][2] = {
        {"--learning-rate", "--lr"}, {"--batch-size", "--batch"}, {"--bs", "--batch"},
        {"--num-epochs", "--epochs"}, {"--n-epochs", "--epochs"}, {"--validation-split", "--val-split"},
        {"--validation-data", "--val"}, {"--validation", "--val"}, {"--output", "--out"}, {"-o", "--out"},
        {"--weights", "--model"}, {"--image-size", "--size"}, {"--img-size", "--size"},
        {"--logdir", "--tensorboard"}, {"--log-dir", "--tensorboard"}, {"--fine-tune", "--fine-tune-epochs"},
        {"--val", "--data"}, {"--validation-data", "--data"}, {"--images", "--data"}};
    if (!arg || !usage || !n) return 0;
    suggest_state st = {.arg = arg, .dist = 99};
    each_flag(usage, consider, &st);
    const char *pick = st.dist <= 2 ? st.best : *st.prefix ? st.prefix : NULL;
    if (!pick) {
        char norm[64];
        snprintf(norm, sizeof norm, "%s", arg);
        for (char *c = norm; *c; c++)
            if (*c == '_') *c = '-';
        for (size_t i = 0; i < sizeof alias / sizeof alias[0] && !pick; i++) {
            if (strcmp(norm, alias[i][0])) continue;
            suggest_state t = {.arg = alias[i][1]};
            each_flag(usage, has_flag, &t);
            if (t.exact) pick = alias[i][1];
        }
    }
    if (!pick) return 0;
    snprintf(out, n, "%s", pick);
    return 1;
}

int cli_closest_word(const char *arg, const char *const *words, int n) {
    int best = -1, dist = 3; /* at most 2 edits, or a word the argument starts with or is the start of */
    for (int i = 0; i < n; i++) {
        int d = edit_distance(arg, words[i]);
        size_t a = strlen(arg), w = strlen(words[i]);
        if (d >= dist && a >= 3 && !strncmp(arg, words[i], a < w ? a : w)) d = 2;
        if (d < dist) dist = d, best = i;
    }
    return best;
}

int cli_unknown_option(const char *cmd, const char *arg, const char *usage) {
    suggest_state st = {.arg = arg};
    each_flag(usage, has_flag, &st);
    char s[64];
    if (st.exact) fprintf(stderr, "vkrun %s: option %s needs a value (see vkrun %s --help)\n", cmd, arg, cmd);
    else if (cli_suggest_flag(arg, usage, s, sizeof s))
        fprintf(stderr, "vkrun %s: unknown option %s; did you mean %s? (see vkrun %s --help)\n", cmd, arg, s, cmd);
    else fprintf(stderr, "vkrun %s: unknown option %s (see vkrun %s --help)\n", cmd, arg, cmd);
    return 2;
}
