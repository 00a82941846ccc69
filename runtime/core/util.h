/* Library-internal utilities without Vulkan (runtime/core/util.c); the RNG is public (vkrun.h). */
#ifndef VKRUN_CORE_UTIL_H
#define VKRUN_CORE_UTIL_H

#include <stdio.h>

#include "vkrun.h"

char *vkr__strdup(const char *s); /* NULL for NULL or out of memory */

/* Attaches item to object o under key (key NULL: appends to the array o); returns 1, or 0 after
 * deleting item when that fails (an allocation failed, or o or item is NULL).  Writers of JSON
 * check every adder, so that no file is written with a field missing. */
typedef struct cJSON cJSON;
int vkr__json_put(cJSON *o, const char *key, cJSON *item);

/* Writes `path` atomically: fn writes to a temporary file in the same
 * directory, which is flushed, fsync'ed and renamed over `path`. */
typedef vkr_status (*vkr__writer_fn)(FILE *f, void *ud);
vkr_status vkr__atomic_write(const char *path, vkr__writer_fn fn, void *ud);

#endif
