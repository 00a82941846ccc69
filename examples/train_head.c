/* train_head: a new classifier head on a pretrained base, trained on a folder of images with
 * vkr_fit (include/vkrun_train.h, docs/training.md).  Public headers only.
 *
 *   train_head BASE.safetensors TRAIN_DIR VAL_DIR OUT.safetensors
 *
 * vkr_fit loads BASE, cuts it after its last feature map, adds global average pooling,
 * Dense(64, relu) and Dense(classes, softmax), and trains the head on the frozen base (features
 * cached) for 8 epochs.  One line per epoch comes from the on_epoch callback; the history that
 * vkr_fit returns is printed afterwards, in the same format. */
#include "vkrun_train.h"

#include <stdio.h>
#include <stdlib.h>

static void print_epoch(const char *tag, int i, const vkr_fit_epoch *e) {
    printf("%s %d (%s): loss %.6f accuracy %.6f val_loss %.6f val_accuracy %.6f\n", tag, i + 1,
           vkr_fit_stage_name(e->stage), e->loss, e->accuracy, e->val_loss, e->val_accuracy);
}

static int on_epoch(void *user, const vkr_fit_epoch_end *e) {
    ++*(int *)user;
    print_epoch("epoch", e->index, e->epoch);
    return 0; /* nonzero: stop after this step, write OUT.checkpoint, return VKR_ERR_INTERRUPTED */
}

static void on_message(void *user, const char *line) {
    (void)user;
    printf("  %s\n", line);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: train_head BASE.safetensors TRAIN_DIR VAL_DIR OUT.safetensors\n");
        return 2;
    }
    vkr_fit_opts o;
    vkr_fit_defaults(&o);
    o.model = argv[1];
    o.data = argv[2];
    o.val = argv[3];
    o.out = argv[4];
    o.nhead = 1;
    o.head[0] = 64;
    o.epochs = 8;
    o.batch = 10;
    int epochs_seen = 0;
    vkr_fit_callbacks cb = {.user = &epochs_seen, .on_epoch = on_epoch, .on_message = on_message};
    vkr_fit_result *res = malloc(sizeof *res); /* holds the whole history: keep it off the stack */
    vkr_status s = res ? vkr_fit(&o, &cb, res) : VKR_ERR_OUT_OF_MEMORY;
    if (s) fprintf(stderr, "train_head: %s (%s)\n", vkr_last_error(), vkr_status_name(s));
    for (int i = 0; !s && i < res->history.n; i++) print_epoch("history", i, &res->history.epochs[i]);
    if (!s) printf("%d epochs reported, %d in the history\n", epochs_seen, res->history.n);
    free(res);
    return s ? 1 : 0;
}
