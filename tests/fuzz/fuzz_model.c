/* Fuzzes the model loader: a safetensors model file (8-byte length, header JSON with the graph
 * JSON as a string inside, tensor data; a checkpoint is such a file with a "vkrun_checkpoint"
 * entry), or, when the input starts with '{', an architecture .json (vkr_model_from_graph_file).
 * A model that loads is then shape-inferred at another size and planned for training (no
 * device); a checkpoint's readers run too: its recorded options (vkr_fit_checkpoint_options, as
 * `vkrun train --resume CKPT` alone) and its history (fit_history_from_json, as resuming).
 * Every failure must come with a message. */
#include "fuzz_util.h"
#include "train/fit_internal.h"
#include "vkrun_model.h"
#include "vkrun_train.h"

#include <cJSON.h>
#include <string.h>

static void checkpoint_readers(const char *path, const vkr_model *m) {
    const char *meta = vkr_model_get_meta(m, "vkrun_checkpoint");
    if (!meta) return;
    vkr_fit_opts o;
    char *strings = NULL;
    FUZZ_REQUIRE_MESSAGE(vkr_fit_checkpoint_options(path, &o, &strings));
    free(strings);
    static vkr_fit_history h;
    cJSON *ck = cJSON_Parse(meta);
    if (ck) fit_history_from_json(&h, cJSON_GetObjectItem(ck, "history"));
    cJSON_Delete(ck);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    size_t i = 0;
    while (i < size && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r')) i++;
    vkr_model *m = NULL;
    vkr_status s = i < size && data[i] == '{' ? vkr_model_from_graph_file(path, 1, &m) : vkr_model_load(path, &m);
    FUZZ_REQUIRE_MESSAGE(s);
    if (!s) checkpoint_readers(path, m); /* reads the file again: before it is closed */
    close(fd);
    if (s) return 0;
    s = vkr_model_infer_shapes(m, m->in_h + 3, m->in_w + 1);
    FUZZ_REQUIRE_MESSAGE(s);
    vkr_graph_opts o = {.batch = 2, .training = 1, .loss = VKR_LOSS_DOT};
    vkr_graph_memory mem;
    if (!s) FUZZ_REQUIRE_MESSAGE(vkr_graph_plan(m, &o, &mem));
    vkr_model_free(m);
    return 0;
}
