/* Shared pieces of the vkrun command-line tool. */
#ifndef VKRUN_CLI_H
#define VKRUN_CLI_H

#include "vkrun.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
    const char *usage;                 /* full help text */
} vkr_cli_command;

/* Returns 1 if argv has -h/--help. */
int cli_wants_help(int argc, char **argv);
/* Prints "vkrun: <what>: <vkr_last_error()>" to stderr and returns 1. */
int cli_error(const char *what, vkr_status s);
/* Creates a context honoring --device and VKRUN_VALIDATION. */
vkr_status cli_context(const char *device, vkr_context **ctx);
/* Fails (returns 1) when the context's validation layer counted errors. */
int cli_check_validation(vkr_context *ctx);

int cmd_devices(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_model(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_predict(int argc, char **argv);

extern const char usage_devices[], usage_selftest[], usage_bench[], usage_summary[], usage_forward[], usage_train[],
    usage_evaluate[], usage_predict[], usage_bench_model[], usage_tune[];

#endif
