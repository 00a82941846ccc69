// The element-wise activations of act_forward / act_backward (mode, a, b: vkr_act_params).
#ifndef VKRUN_ACT_GLSL
#define VKRUN_ACT_GLSL
#define ACT_CLIP 0u
#define ACT_SIGMOID 1u
#define ACT_HARD_SIGMOID 2u
#define ACT_HARD_SWISH 3u
#define ACT_SWISH 4u

float act_sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }

float act_value(uint mode, float a, float b, float x) {
    if (mode == ACT_CLIP) return x < a ? a : (x > b ? b : x);
    if (mode == ACT_SIGMOID) return act_sigmoid(x);
    if (mode == ACT_HARD_SIGMOID) return clamp(a * x + b, 0.0, 1.0);
    if (mode == ACT_HARD_SWISH) return x * clamp(x * (1.0 / 6.0) + 0.5, 0.0, 1.0);
    return x * act_sigmoid(x);
}

// f'(x); on a kink the outer slope (torch's convention)
float act_slope(uint mode, float a, float b, float x) {
    if (mode == ACT_CLIP) return (x > a && x < b) ? 1.0 : 0.0;
    if (mode == ACT_SIGMOID) {
        float s = act_sigmoid(x);
        return s * (1.0 - s);
    }
    if (mode == ACT_HARD_SIGMOID) {
        float t = a * x + b;
        return (t > 0.0 && t < 1.0) ? a : 0.0;
    }
    if (mode == ACT_HARD_SWISH) return x < -3.0 ? 0.0 : (x <= 3.0 ? x * (1.0 / 3.0) + 0.5 : 1.0);
    float s = act_sigmoid(x);
    return s + x * s * (1.0 - s);
}
#endif
