/* TensorBoard event files (runtime/train/tensorboard.c). */
#ifndef VKRUN_TENSORBOARD_H
#define VKRUN_TENSORBOARD_H

#include <stdint.h>

#include "vkrun.h"

typedef struct tb_writer tb_writer;

/* Creates dir (one level) and dir/events.out.tfevents.<unix time>.<host name> with its
 * file_version event. */
vkr_status tb_open(const char *dir, tb_writer **out);
/* One event at `step` holding n simple_value scalars (stored as float, as TensorBoard does). */
vkr_status tb_scalars(tb_writer *w, int64_t step, int n, const char *const *tags, const double *values);
const char *tb_path(const tb_writer *w);
void tb_close(tb_writer *w);

#endif
