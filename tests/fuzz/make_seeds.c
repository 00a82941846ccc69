/* make_seeds DIR: the seed corpora of the fuzz targets, made with the library's own writers so
 * that they follow the formats as vkrun writes them today:
 *   DIR/model: a small model using every layer type, the same with a checkpoint entry (as
 *              `vkrun train` writes on Ctrl-C), its graph JSON alone (an architecture file)
 *   DIR/npy:   .npy files of 1 to 4 dimensions
 *   DIR/image: PNG (RGB, gray+alpha), BMP, TGA, JPEG, PPM
 * (DIR/cli and the hand-written files come from tests/fuzz/corpus/.) */
#include "vkrun_model.h"
#include "vkrun_npy.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stb_image_write.h" /* declarations; implementation in libstb.so */

static int fail(const char *what) {
    fprintf(stderr, "make_seeds: %s: %s\n", what, vkr_last_error());
    return 1;
}

static char g_dir[4096];
/* DIR/sub/name (in a static buffer: one call per expression) */
static const char *at(const char *sub, const char *name) {
    static char p[8192];
    snprintf(p, sizeof p, "%s/%s/%s", g_dir, sub, name);
    return p;
}

/* The graph JSON stored in a model file's header (__metadata__.vkrun_graph). */
static int write_graph_json(const char *model_path, const char *out) {
    FILE *f = fopen(model_path, "rb");
    unsigned char lb[8];
    if (!f || fread(lb, 1, 8, f) != 8) return 1;
    unsigned long long n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lb[i];
    char *h = malloc(n + 1);
    int bad = !h || fread(h, 1, n, f) != n;
    fclose(f);
    if (bad) return free(h), 1;
    h[n] = 0;
    cJSON *root = cJSON_Parse(h);
    free(h);
    const cJSON *g = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "__metadata__"), "vkrun_graph");
    FILE *o = cJSON_IsString(g) ? fopen(out, "wb") : NULL;
    bad = !o || fputs(g->valuestring, o) < 0;
    if (o) bad |= fclose(o) != 0;
    cJSON_Delete(root);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
    const char *subs[] = {"", "/model", "/npy", "/image"};
    for (int i = 0; i < 4; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s%s", g_dir, subs[i]);
        mkdir(p, 0777);
    }
    /* model: every layer type, 6x6 RGB input */
    vkr_model *m;
    if (vkr_model_new("seed", "in", 3, 6, 6, "caffe", &m)) return fail("model");
    const char *layers[] = {
        "{\"name\":\"pad\",\"type\":\"zeropad\",\"padding\":[1,1,0,1]}",
        "{\"name\":\"c1\",\"type\":\"conv2d\",\"filters\":2,\"kernel\":[3,2],\"strides\":1,\"padding\":\"valid\"}",
        "{\"name\":\"bn\",\"type\":\"batchnorm\",\"epsilon\":0.001,\"momentum\":0.99}",
        "{\"name\":\"r\",\"type\":\"relu\"}",
        "{\"name\":\"c2\",\"type\":\"conv2d\",\"filters\":2,\"kernel\":1,\"use_bias\":false,\"activation\":\"relu\"}",
        "{\"name\":\"add\",\"type\":\"add\",\"inputs\":[\"r\",\"c2\"]}",
        "{\"name\":\"cat\",\"type\":\"concat\",\"inputs\":[\"add\",\"r\"]}",
        "{\"name\":\"mp\",\"type\":\"maxpool\",\"pool\":2,\"strides\":1,\"padding\":\"same\"}",
        "{\"name\":\"ap\",\"type\":\"avgpool\",\"pool\":[2,2],\"padding\":\"valid\",\"count_include_pad\":false}",
        "{\"name\":\"gap\",\"type\":\"gap\"}",
        "{\"name\":\"drop\",\"type\":\"dropout\",\"rate\":0.5}",
        "{\"name\":\"fc\",\"type\":\"dense\",\"units\":3}",
        "{\"name\":\"sm\",\"type\":\"softmax\"}",
    };
    vkr_status s = VKR_OK;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !s; i++) s = vkr_model_append_json(m, layers[i], i);
    const char *classes[] = {"cat", "dog", "bird"};
    if (!s) s = vkr_model_set_classes(m, 3, classes);
    if (!s) s = vkr_model_save(m, at("model", "all_layers.safetensors"));
    if (!s) s = vkr_model_set_meta(m, "vkrun_checkpoint",
                                   "{\"settings\":\"batch=2 lr=0.001\",\"optimizer_step\":3,\"stage\":0,\"epoch\":1,"
                                   "\"step\":1,\"loss_sum\":2.5,\"correct_sum\":1,\"seen\":2,\"base_layers\":10,"
                                   "\"history\":{\"epochs\":[{\"epoch\":1,\"stage\":\"head\",\"loss\":1.1,"
                                   "\"accuracy\":0.5,\"seconds\":0.1,\"images_per_s\":20}],"
                                   "\"feature_cache_seconds\":0}}");
    if (!s) s = vkr_model_save(m, at("model", "checkpoint.safetensors"));
    /* today's form: Keras-style history and the run's recorded options */
    if (!s) s = vkr_model_set_meta(m, "vkrun_checkpoint",
                                   "{\"settings\":\"batch=2 lr=0.001\",\"optimizer_step\":3,\"stage\":1,\"epoch\":1,"
                                   "\"step\":1,\"loss_sum\":2.5,\"correct_sum\":1,\"seen\":2,\"base_layers\":10,"
                                   "\"history\":{\"loss\":[1.1],\"accuracy\":[0.5],\"val_loss\":[null],"
                                   "\"val_accuracy\":[null],\"lr\":[0.001],\"stage\":[\"head\"],\"epoch_seconds\":[0.1],"
                                   "\"images_per_s\":[20],\"feature_cache_seconds\":0},"
                                   "\"options\":{\"model\":\"/m.safetensors\",\"data\":\"/d\",\"out\":\"/o.safetensors\","
                                   "\"batch\":2,\"lr\":0.001,\"epochs\":3,\"augment\":\"flip,rotate=5\",\"head\":\"8,4\","
                                   "\"optimizer\":\"adam\",\"interpolation\":\"bilinear\",\"seed\":\"1\","
                                   "\"class_weight\":\"auto\",\"lr_schedule\":1,\"dropout\":0.25}}");
    if (!s) s = vkr_model_save(m, at("model", "checkpoint_options.safetensors"));
    vkr_model_free(m);
    if (s) return fail("model");
    char src[8192];
    snprintf(src, sizeof src, "%s", at("model", "all_layers.safetensors"));
    if (write_graph_json(src, at("model", "all_layers.json"))) return fail("graph json");
    /* npy */
    float d[24];
    for (int i = 0; i < 24; i++) d[i] = (float)i * 0.5f - 3;
    const int64_t s1[] = {5}, s3[] = {2, 3, 4}, s4[] = {1, 2, 3, 4};
    if (vkr_npy_write(at("npy", "a1.npy"), d, 1, s1) || vkr_npy_write(at("npy", "a3.npy"), d, 3, s3) ||
        vkr_npy_write(at("npy", "a4.npy"), d, 4, s4))
        return fail("npy");
    /* images */
    unsigned char px[7 * 5 * 4];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 37 + 11);
    if (!stbi_write_png(at("image", "rgb.png"), 7, 5, 3, px, 7 * 3) ||
        !stbi_write_png(at("image", "gray_alpha.png"), 7, 5, 2, px, 7 * 2) ||
        !stbi_write_bmp(at("image", "rgb.bmp"), 7, 5, 3, px) || !stbi_write_tga(at("image", "rgba.tga"), 7, 5, 4, px) ||
        !stbi_write_jpg(at("image", "rgb.jpg"), 7, 5, 3, px, 90))
        return fail("image");
    FILE *f = fopen(at("image", "gray.pgm"), "wb");
    if (!f) return fail("pgm");
    fprintf(f, "P5\n7 5\n255\n");
    fwrite(px, 1, 35, f);
    fclose(f);
    return 0;
}
