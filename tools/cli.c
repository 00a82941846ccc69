#include "cli.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int cli_error(const char *what, vkr_status s) {
    fprintf(stderr, "vkrun: %s: %s (%s)\n", what, vkr_last_error(), vkr_status_name(s));
    return 1;
}

vkr_status cli_context(const char *device, vkr_context **ctx) {
    vkr_context_opts o = {.device = device, .validation = -1};
    return vkr_context_create(&o, ctx);
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
    fprintf(stderr, "vkrun %s: %s\n", cmd, vkr_last_error());
    return 1;
}

int cli_output_unwritable(const char *cmd, const char *out) {
    if (vkr_file_check_writable(out) == VKR_OK) return 0;
    fprintf(stderr, "vkrun %s: %s\n", cmd, vkr_last_error());
    return 1;
}
