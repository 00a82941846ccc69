#include "cli.h"

#include <stdio.h>
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

void cli_print_plan(const vkr_graph *g, FILE *f) {
    char line[1024];
    vkr_graph_plan_line(g, line, sizeof line);
    if (!strstr(line, "in one pass")) fprintf(f, "vkrun: %s\n", line);
}
