/* Shared pieces of the vkrun command-line tool. */
#ifndef VKRUN_CLI_H
#define VKRUN_CLI_H

#include "vkrun.h"
#include "vkrun_model.h"

#include <stdio.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
    const char *usage;                 /* full help text */
} vkr_cli_command;

/* Returns 1 if argv has -h/--help. */
int cli_wants_help(int argc, char **argv);
/* The log sink of the CLI: the library's default one ("vkrun: warning: MSG"), with MSG escaped
 * (cli_esc_msg: a skipped file's name may hold terminal sequences). */
void cli_log(vkr_log_level level, const char *msg, void *ud);
/* Prints "vkrun: <what>: <vkr_last_error()>" (escaped) to stderr and returns 1. */
int cli_error(const char *what, vkr_status s);
/* Creates a context honoring --device and VKRUN_VALIDATION. */
vkr_status cli_context(const char *device, vkr_context **ctx);
/* The same with --precision WORD (NULL: fp32, silent): parsed, resolved on the device (auto) and
 * set on the context; prints what was chosen to stderr.  On failure no context is left open. */
vkr_status cli_context_at(const char *device, const char *precision, vkr_context **ctx);
/* The help line of --precision, shared by the commands that take it. */
#define CLI_PRECISION_HELP                                                                                   \
    "  --precision P     fp32 (default), fp16 (GEMM inputs rounded to fp16, fp32 accumulation; needs\n"   \
    "                    shaderFloat16), bf16 (the same with bfloat16; any device), auto (the fastest\n"  \
    "                    verified: fp32 on every device so far)\n"
/* Prints the graph's memory plan to f when it splits its batch into micro-batches. */
void cli_print_plan(const vkr_graph *g, FILE *f);
/* Fails (returns 1) when the context's validation layer counted errors. */
int cli_check_validation(vkr_context *ctx);

/* Output checks made before any work (vkr_file_check_not_input / vkr_file_check_writable with
 * the command's name): 1 (after a message naming both files) when `out` is the
 * existing file `in` (an output must never replace an input); 1 when the folder of `out` does
 * not exist or does not accept a new file (probed by creating and removing a temporary file). */
int cli_output_is_input(const char *cmd, const char *in, const char *out);
int cli_output_unwritable(const char *cmd, const char *out);

/* The flag of `usage` (a command's --help text: every "--name" in it) closest to `arg`: edit
 * distance <= 2 ('_' counts as '-'), else the longest flag that `arg` extends ("--batch-size" ->
 * "--batch", "--augmentation" -> "--augment"), else a Keras/PyTorch spelling of one ("--learning-rate" -> "--lr").  Writes it to
 * out and returns 1, or returns 0. */
int cli_suggest_flag(const char *arg, const char *usage, char *out, size_t n);
/* "vkrun CMD: unknown option ARG; did you mean --X? (see vkrun CMD --help)" -- or, when ARG is a flag
 * of usage, "option ARG needs a value" -- to stderr; returns 2 (the exit status of bad options). */
int cli_unknown_option(const char *cmd, const char *arg, const char *usage);
/* The index of the word of words[0..n) closest to arg (at most 2 edits, or one is the start of the
 * other), or -1: "did you mean" for commands and values. */
int cli_closest_word(const char *arg, const char *const *words, int n);

/* text with the bytes a terminal would act on written as \xNN: C0 controls (but newline and tab
 * with keep_lines), DEL, UTF-8 C1 controls and bytes that are not UTF-8 (a name from a model file
 * or a file name may hold any: "\x1b[2J" would clear the screen).  One of 8 per-thread buffers
 * (4 KiB, longer text cut with "..."), valid until the 8th next call.  cli_esc for names,
 * cli_esc_msg for messages (vkr_last_error(): lines kept). */
const char *cli_escape(const char *text, int keep_lines);
#define cli_esc(text) cli_escape(text, 0)
#define cli_esc_msg(text) cli_escape(text, 1)

typedef struct cJSON cJSON;
/* Adds `key`: `text` to a JSON object so that the output stays valid UTF-8 JSON: bytes that are
 * not UTF-8 (a file name on Linux may hold any) become U+FFFD in `key`, and `key`_hex then
 * holds the exact bytes in hex. */
void cli_json_add_bytes(cJSON *obj, const char *key, const char *text);

int cmd_devices(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_model(int argc, char **argv);
/* vkrun bench MODEL --pipelines: the table (or JSON) of ctx's pipelines and their statistics */
int bench_pipelines_report(vkr_context *ctx, const char *model, int captured, int json);
int cmd_bench_loader(int argc, char **argv);
int cmd_bench_allreduce(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_predict(int argc, char **argv);

extern const char usage_devices[], usage_selftest[], usage_bench[], usage_summary[], usage_forward[], usage_train[],
    usage_evaluate[], usage_predict[], usage_bench_model[], usage_tune[];

#endif
