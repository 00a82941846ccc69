#version 450
#extension GL_GOOGLE_include_directive : require
// Loss / accuracy reduction of the fused softmax + categorical cross-entropy
// (runtime/ops/softmax_ce.c; probs were written by softmax.comp before).
// One workgroup; invocation t handles rows t, t+256, ... of this row chunk:
//   loss_row = -sum_k t_k (z_k - max - lse) = sum_k t_k (max - z_k) + (sum_k t_k) * lse
// with lse = log(sum_k exp(z_k - max)) = -log(probs[argmax z]) (that prob is >= 1/classes,
// so it never underflows).  sum_k t_k (max - z_k) is accumulated in one pass with a
// running max (every term >= 0: no cancellation).  correct_row = argmax z == argmax t
// (first maximum wins).  The workgroup then reduces over its invocations (no atomics);
// chunks accumulate in result[0] (loss sum) / result[1] (count) across dispatches:
// flags bit 0 = first chunk (overwrite), bit 1 = last chunk (divide by batch).
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer R { float res[]; };
layout(std430, binding = 1) readonly buffer Z { float z[]; };
layout(std430, binding = 2) readonly buffer T { float tg[]; };
layout(std430, binding = 3) readonly buffer Q { float pr[]; };
layout(push_constant) uniform P { uint rows; uint classes; uint base; uint batch; uint flags; } p;

shared float sl[256];
shared uint sc[256];

void main() {
    uint t = gl_LocalInvocationID.x;
    float loss = 0.0;
    uint cnt = 0u;
    for (uint r = t; r < p.rows; r += 256u) {
        uint off = p.base + r * p.classes;
        float m = z[off], tm = tg[off], st = tg[off], s = 0.0;
        uint am = 0u, at = 0u;
        for (uint k = 1u; k < p.classes; k++) {
            float zk = z[off + k], tk = tg[off + k];
            if (zk > m) {
                s += st * (zk - m);
                m = zk;
                am = k;
            }
            s += tk * (m - zk);
            st += tk;
            if (tk > tm) {
                tm = tk;
                at = k;
            }
        }
        loss += s - st * log(pr[off + am]);
        cnt += am == at ? 1u : 0u;
    }
    sl[t] = loss;
    sc[t] = cnt;
    barrier();
    for (uint h = 128u; h > 0u; h >>= 1) {
        if (t < h) {
            sl[t] += sl[t + h];
            sc[t] += sc[t + h];
        }
        barrier();
    }
    if (t == 0u) {
        float total = sl[0], c = float(sc[0]);
        if ((p.flags & 1u) == 0u) {
            total += res[0];
            c += res[1];
        }
        if ((p.flags & 2u) != 0u) total /= float(p.batch);
        res[0] = total;
        res[1] = c;
    }
}
