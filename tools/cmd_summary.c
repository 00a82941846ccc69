/* vkrun summary: the layers of a model file, like Keras model.summary(). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkrun_model.h"

const char usage_summary[] =
    "usage: vkrun summary MODEL [--height H --width W]\n"
    "       vkrun summary --supported\n\n"
    "Loads and validates a vkrun model file (docs/model-format.md) and prints its layers\n"
    "like Keras model.summary(): index, name, type, output shape (NCHW, batch N), parameter\n"
    "count, whether the layer is trainable, and the inputs of layers that do not simply take\n"
    "the previous layer.  Totals follow Keras: BatchNorm running mean/variance and every\n"
    "weight of a layer marked trainable=false count as non-trainable.\n\n"
    "  --height H, --width W   infer shapes at this input size (default: the model's)\n"
    "  --supported             list the layer types this vkrun runs, the architectures tools/convert.py\n"
    "                          converts and the ONNX ops it imports\n";

/* What tools/convert.py converts: the lines of `convert.py --list` (its ARCHITECTURES and the ONNX
 * importer's op handlers); ctest python_onnx checks that the two agree. */
static const char *const k_converted[] = {
    "torch state dicts: resnet18 resnet34 resnet50 resnet101 resnet152 vgg11 vgg13 vgg16 vgg19 mobilenet_v2 "
    "mobilenet_v3_small mobilenet_v3_large efficientnet_b0 densenet121 resnet20_cifar (any 6n+2)",
    "Keras h5: ResNet50 SqueezeNet-v1.1 VGG16 MobileNetV2 EfficientNetB0",
    "ONNX ops: Add AveragePool BatchNormalization Clip Concat Conv Dropout Flatten Gemm GlobalAveragePool "
    "HardSigmoid HardSwish Identity MatMul MaxPool Mul Pad Relu Reshape Sigmoid Slice Softmax",
    "ONNX ops folded on constants: Add Cast Concat Constant ConstantOfShape Div Dropout Equal Expand Gather "
    "Identity Mul Neg Range Reshape Shape Slice Squeeze Sub Transpose Unsqueeze Where",
};

static int print_supported(void) {
    printf("layer types (docs/model-format.md):");
    for (int t = 0; t < VKR_LAYER_TYPE_COUNT; t++) printf(" %s", vkr_layer_type_name((vkr_layer_type)t));
    printf("\nconverted by vkrun-convert SRC -o OUT.safetensors (in a source checkout: /usr/bin/python3 "
           "tools/convert.py):\n");
    for (size_t i = 0; i < sizeof k_converted / sizeof k_converted[0]; i++) printf("  %s\n", k_converted[i]);
    return 0;
}

static void commas(uint64_t v, char *buf, size_t n) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    size_t len = strlen(tmp), k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        buf[k++] = tmp[i];
        size_t left = len - i - 1;
        if (left && left % 3 == 0 && k + 1 < n) buf[k++] = ',';
    }
    buf[k] = 0;
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > (1 << 20)) return 0;
    *out = (int)v;
    return 1;
}

int cmd_summary(int argc, char **argv) {
    const char *path = NULL;
    int h = 0, w = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--supported")) {
            if (argc != 2) {
                fprintf(stderr, "vkrun summary: --supported takes no model or other option\n");
                return 2;
            }
            return print_supported();
        }
        if ((!strcmp(argv[i], "--height") || !strcmp(argv[i], "--width")) && i + 1 < argc) {
            if (!parse_int(argv[i + 1], argv[i][2] == 'h' ? &h : &w)) {
                fprintf(stderr, "vkrun summary: %s needs a positive integer\n", argv[i]);
                return 2;
            }
            i++;
        } else if (argv[i][0] == '-') {
            return cli_unknown_option("summary", argv[i], usage_summary);
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "vkrun summary: one model file expected\n");
            return 2;
        }
    }
    if (!path) {
        fputs(usage_summary, stderr);
        return 2;
    }
    vkr_model *m;
    vkr_status s = vkr_model_open(path, 0, &m);
    if (s) return cli_error("summary", s);
    if (h || w) {
        if ((s = vkr_model_infer_shapes(m, h ? h : m->in_h, w ? w : m->in_w))) {
            vkr_model_free(m);
            return cli_error("summary", s);
        }
    }
    /* every name from the file is printed escaped (cli_esc): it may hold terminal sequences */
    printf("Model: \"%s\"   source: %s\n", cli_esc(m->name), cli_esc(m->source));
    printf("Input: \"%s\" (N, %d, %d, %d)  preprocess: %s   (default size %dx%d)\n", cli_esc(m->input_name), m->in_c,
           m->shape_h, m->shape_w, cli_esc(m->preprocess), m->in_h, m->in_w);
    if (m->nclasses) { /* every name while the line stays short; else the first ones and a count */
        printf("Classes: %d (", m->nclasses);
        size_t len = 0;
        int shown = 0;
        for (int k = 0; k < m->nclasses; k++) {
            const char *c = cli_esc(m->classes[k]);
            size_t n = strlen(c) + 2;
            if (k && len + n > 80) break;
            printf("%s%s", k ? ", " : "", c);
            len += n;
            shown++;
        }
        if (shown < m->nclasses) printf(", ... %d more", m->nclasses - shown);
        printf(")\n");
    }
    int namew = 20;
    for (int i = 0; i < m->nlayers; i++) {
        int l = (int)strlen(cli_esc(m->layers[i].name)) + (int)strlen(vkr_layer_type_name(m->layers[i].type)) + 3;
        if (l > namew) namew = l;
    }
    if (namew > 60) namew = 60;
    char rule[256];
    int rw = namew + 70;
    if (rw > 255) rw = 255;
    memset(rule, '_', rw);
    rule[rw] = 0;
    printf("%s\n", rule);
    printf(" %-4s %-*s %-20s %12s  %-9s %s\n", "#", namew, "Layer (type)", "Output shape", "Param #", "Trainable",
           "Inputs");
    memset(rule, '=', rw);
    printf("%s\n", rule);
    double flops = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const vkr_layer *L = &m->layers[i];
        char nt[300], shape[64], pc[32], act[32] = "";
        if (L->activation == VKR_ACT_RELU) snprintf(act, sizeof act, "+relu");
        if (L->activation == VKR_ACT_SOFTMAX) snprintf(act, sizeof act, "+softmax");
        snprintf(nt, sizeof nt, "%s (%s%s)", cli_esc(L->name), vkr_layer_type_name(L->type), act);
        vkr_model_shape_str(m, i, shape, sizeof shape);
        uint64_t tr;
        uint64_t np = vkr_model_layer_params(m, i, &tr);
        commas(np, pc, sizeof pc);
        const char *trs = L->nparam == 0 ? "" : L->trainable ? "yes" : "no";
        char ins[512] = "";
        int simple = L->ninputs == 1 && L->input_idx[0] == i - 1;
        if (L->ninputs && !simple)
            for (int k = 0; k < L->ninputs; k++)
                snprintf(ins + strlen(ins), sizeof ins - strlen(ins), "%s%s", k ? ", " : "", cli_esc(L->inputs[k]));
        printf(" %-4d %-*s %-20s %12s  %-9s %s\n", i, namew, nt, shape, pc, trs, ins);
        flops += vkr_model_layer_flops(m, i);
    }
    printf("%s\n", rule);
    uint64_t tot, tr, ntr;
    vkr_model_param_totals(m, &tot, &tr, &ntr);
    char a[32], b[32], c[32];
    commas(tot, a, sizeof a);
    commas(tr, b, sizeof b);
    commas(ntr, c, sizeof c);
    printf("Total params: %s (%.2f MB)\n", a, tot * 4 / 1e6);
    printf("Trainable params: %s\n", b);
    printf("Non-trainable params: %s\n", c);
    printf("Forward FLOPs per image at %dx%d: %.3f G (conv2d/dense, 2 x MACs)\n", m->shape_h, m->shape_w, flops / 1e9);
    printf("%s\n", rule);
    vkr_model_free(m);
    return 0;
}
