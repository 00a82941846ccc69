/* The training driver behind `vkrun train` (tools/train.c). */
#ifndef VKRUN_TRAIN_H
#define VKRUN_TRAIN_H

#include <signal.h>
#include <stdint.h>

#define TRAIN_MAX_HEAD 16

typedef struct {
    const char *model, *data, *val, *out, *plots, *interp, *augment, *optimizer, *cache_dir, *resume, *device;
    double val_split, lr, momentum, ft_lr;
    int batch, micro_batch, epochs, height, width, nhead, head[TRAIN_MAX_HEAD], freeze, ft_epochs, ft_from;
    int no_cache, bn_train, recompute, keep_remainder, strict, quiet, val_every;
    uint64_t seed;
    volatile sig_atomic_t *stop_flag;
} train_args;

void train_args_defaults(train_args *a);
/* Runs the whole job; returns the process exit status (0 ok, 1 error, 130 interrupted). */
int train_run(const train_args *a);

#endif
