/* Fuzzes the argument parser of `vkrun train` (tools/cmd_train.c): the input is split at '\n'
 * into argv.  The job itself is not run: the binary is linked with --wrap=vkr_fit, and the
 * stand-in checks what the parser promises to hand over (required paths set, values in range). */
#include "fuzz_util.h"
#include "vkrun_train.h"

#include <string.h>

int cmd_train(int argc, char **argv);

vkr_status __wrap_vkr_fit(const vkr_fit_opts *a, const vkr_fit_callbacks *cb, vkr_fit_result *res) {
    (void)cb;
    if (!a->model || !a->data || !a->out || a->batch <= 0 || a->epochs < 0 || !(a->lr > 0) || !(a->ft_lr > 0) ||
        a->nhead < 0 || a->nhead > VKR_FIT_MAX_HEAD || a->height < 0 || a->width < 0 ||
        (a->height == 0) != (a->width == 0) || a->val_split < 0 || a->val_split >= 1 || a->freeze < -1 ||
        a->micro_batch < 0 || a->val_every <= 0)
        abort();
    for (int i = 0; i < a->nhead; i++)
        if (a->head[i] <= 0) abort();
    if (res) memset(res, 0, sizeof *res);
    return VKR_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[65] = {"train"};
    int argc = 1;
    for (char *p = buf; argc < 64;) {
        argv[argc++] = p;
        char *nl = memchr(p, '\n', (size_t)(buf + size - p));
        if (!nl) break;
        *nl = 0;
        p = nl + 1;
    }
    argv[argc] = NULL;
    int rc = cmd_train(argc, argv);
    /* the stand-in returns 0; a rejected argument list is 2, a bad named value (interpolation, augment, optimizer) 1 */
    if (rc < 0 || rc > 2) abort();
    free(buf);
    return 0;
}
