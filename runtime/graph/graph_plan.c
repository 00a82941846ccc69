/* Graph runtime: liveness-based buffer planning (values, gradients, scratch). */
#include "graph/graph_internal.h"
#include "layers/layer.h"

#include <stdlib.h>
#include <string.h>

void vkr__plan_free(vkr__plan *P) {
    if (P->slot_buf)
        for (int i = 0; i < P->nslots; i++) vkr_buffer_destroy(P->slot_buf[i]);
    free(P->slot_buf);
    free(P->slot_floats);
    free(P->vbufs);
    free(P->live);
    free(P->run_backward);
    free(P->inplace);
    free(P->value);
    free(P->value_grad);
    free(P->argmax);
    free(P->logits);
    free(P->value_bw);
    free(P->argmax_bw);
    free(P->recompute_from);
    free(P->recomputed);
    free(P->grad_scratch);   /* one block holds the pointers and the ints */
    free(P->first);
    free(P->fold);
    free(P->fused);
    free(P->epi_relu);
    memset(P, 0, sizeof *P);
}

static int new_vb(vkr__plan *P, uint64_t floats, int start, int end) {
    if (P->nvbufs == P->cap_vbufs) {
        int cap = P->cap_vbufs ? 2 * P->cap_vbufs : 64;
        vkr__vbuf *v = realloc(P->vbufs, cap * sizeof *v);
        if (!v) return -1;
        P->vbufs = v;
        P->cap_vbufs = cap;
    }
    vkr__vbuf *b = &P->vbufs[P->nvbufs];
    b->floats = floats ? floats : 1;
    b->start = start;
    b->end = end;
    b->slot = -1;
    return P->nvbufs++;
}

static void extend(vkr__plan *P, int v, int step) {
    if (v >= 0 && P->vbufs[v].end < step) P->vbufs[v].end = step;
}

/* Assigns slots greedily in start order: a slot is free once its last vbuf ended
 * before the new one starts; best fit among free slots, else grow the largest
 * free one, else a new slot. */
static vkr_status assign_slots(vkr__plan *P) {
    int n = P->nvbufs;
    int *order = malloc((n + 1) * sizeof *order);
    int *slot_end = malloc((n + 1) * sizeof *slot_end);
    P->slot_floats = calloc(n + 1, sizeof *P->slot_floats);
    if (!order || !slot_end || !P->slot_floats) {
        free(order);
        free(slot_end);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int i = 0; i < n; i++) order[i] = i;
    /* insertion sort by start (stable; n is a few hundred to a few thousand) */
    for (int i = 1; i < n; i++) {
        int x = order[i], j = i - 1;
        while (j >= 0 && P->vbufs[order[j]].start > P->vbufs[x].start) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = x;
    }
    P->nslots = 0;
    P->naive_floats = 0;
    for (int k = 0; k < n; k++) {
        vkr__vbuf *b = &P->vbufs[order[k]];
        P->naive_floats += b->floats;
        int best = -1, largest = -1;
        for (int s = 0; s < P->nslots; s++) {
            if (slot_end[s] >= b->start) continue;
            if (P->slot_floats[s] >= b->floats && (best < 0 || P->slot_floats[s] < P->slot_floats[best])) best = s;
            if (largest < 0 || P->slot_floats[s] > P->slot_floats[largest]) largest = s;
        }
        if (best < 0 && largest >= 0) {
            best = largest;
            P->slot_floats[best] = b->floats;
        }
        if (best < 0) {
            best = P->nslots++;
            P->slot_floats[best] = b->floats;
        }
        slot_end[best] = b->end;
        b->slot = best;
    }
    P->planned_floats = 0;
    for (int s = 0; s < P->nslots; s++) P->planned_floats += P->slot_floats[s];
    free(order);
    free(slot_end);
    return VKR_OK;
}

#define out_floats vkr__layer_out_floats

static const vkr_layer_kind *kind(const vkr_layer *L) { return vkr__layer_kind(L->type); }

/* Activation recomputation.  A clean cut is a layer whose output is the only value that
 * crosses from the layers up to it to the layers after it (a ResNet block's output).
 * Segments between cuts (at least 3 layers, before the loss layer, without BatchNorm in
 * batch-statistics mode, whose forward has side effects, or a dense softmax) keep only the
 * cut's value from the forward pass: their inner layers run again, into buffers of their
 * own (vidb, argmaxb), at step 2(2L - c) - 1, just before the backward of the cut c. */
static vkr_status plan_recompute(vkr_graph *g, vkr__plan *P, int Lsteps) {
    const int nl = g->nlayers;
    const vkr_layer *Ls = g->layers;
    int *cross = calloc(nl + 1, sizeof(int));
    if (!cross) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int q = 0; q < nl; q++)
        if (P->live[q])
            for (int k = 0; k < Ls[q].ninputs; k++) {
                int p = Ls[q].input_idx[k];
                if (q - p >= 2) cross[p + 1]++, cross[q]--;
            }
    for (int j = 1; j < nl; j++) cross[j] += cross[j - 1];
    for (int c = 1, c0 = 0; c < P->loss_layer; c++) {
        if (cross[c] || !P->live[c] || c - c0 < 3) continue;
        int ok = 1, bw = 0;
        for (int j = c0 + 1; j < c; j++) {
            if (g->batch_stats[j] || P->logits[j] >= 0 || Ls[j].activation == VKR_ACT_SOFTMAX)
                ok = 0;
            bw |= P->run_backward[j];
        }
        if (ok && bw) {
            P->recompute_from[c] = c0 + 1;
            int rs = 2 * (Lsteps - c) - 1;
            for (int j = c0 + 1; j < c; j++) {
                if (!P->live[j]) continue;
                P->recomputed[j] = 1;
                const vkr_layer *L = &Ls[j];
                int p = L->ninputs ? L->input_idx[0] : -1;
                if (vkr__aliases(g, P, j) || P->inplace[j]) {
                    P->value_bw[j] = P->value_bw[p];
                } else {
                    uint64_t f = (uint64_t)g->batch * out_floats(L);
                    if ((P->value_bw[j] = new_vb(P, f, rs, rs)) < 0 ||
                        (kind(L)->argmax && (P->argmax_bw[j] = new_vb(P, f, rs, rs)) < 0)) {
                        free(cross);
                        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
                    }
                }
                for (int k = 0; k < L->ninputs; k++) extend(P, P->value_bw[L->input_idx[k]], rs);
            }
        }
        c0 = c;
    }
    free(cross);
    return VKR_OK;
}

/* The layer computing the logits fed to the loss for target T. */
static int find_loss_layer(const vkr_graph *g, int T) {
    const vkr_layer *L = &g->layers[T];
    if (g->loss == VKR_LOSS_SOFTMAX_CE && kind(L)->softmax) return L->input_idx[0];
    return T;
}

/* The plan's per-layer arrays; nonzero when out of host memory. */
static int plan_arrays(const vkr_graph *g, vkr__plan *P) {
    const int nl = g->nlayers;
    const vkr_layer *Ls = g->layers;
    P->live = calloc(nl, 1);
    P->run_backward = calloc(nl, 1);
    P->inplace = calloc(nl, 1);
    P->recomputed = calloc(nl, 1);
    P->fold = calloc(nl, 1);
    P->fused = calloc(nl, 1);
    P->epi_relu = calloc(nl, 1);
    int **ia[] = {&P->value, &P->value_grad, &P->argmax, &P->logits, &P->value_bw, &P->argmax_bw, &P->recompute_from};
    int bad = !P->live || !P->run_backward || !P->inplace || !P->recomputed || !P->fold || !P->fused || !P->epi_relu;
    for (size_t i = 0; i < sizeof ia / sizeof ia[0]; i++) bad |= !(*ia[i] = malloc(nl * sizeof(int)));
    int tot_in = 0;
    for (int j = 0; j < nl; j++) tot_in += Ls[j].ninputs;
    /* one block each: nl pointers followed by the per-input entries */
    P->grad_scratch = malloc(nl * sizeof(int *) + (tot_in + 1) * sizeof(int));
    P->first = malloc(nl * sizeof(char *) + tot_in + 1);
    if (bad || !P->grad_scratch || !P->first) return 1;
    int *ip = (int *)(P->grad_scratch + nl);
    char *cp = (char *)(P->first + nl);
    for (int j = 0; j < nl; j++) {
        P->grad_scratch[j] = ip;
        P->first[j] = cp;
        for (int k = 0; k < Ls[j].ninputs; k++) ip[k] = -1, cp[k] = 0;
        ip += Ls[j].ninputs;
        cp += Ls[j].ninputs;
    }
    return 0;
}

int vkr__drops(const vkr_graph *g, const vkr__plan *P, int j) {
    const vkr_layer *L = &g->layers[j];
    return P->with_backward && g->o.training && g->o.dropout && j >= g->o.dropout_from && kind(L)->train_drops &&
           L->rate > 0;
}

int vkr__aliases(const vkr_graph *g, const vkr__plan *P, int j) {
    return kind(&g->layers[j])->alias_input && !vkr__drops(g, P, j);
}

vkr_status vkr__plan_build(vkr_graph *g, vkr__plan *P, int target, int with_loss, int with_backward) {
    vkr__plan_free(P);
    const int nl = g->nlayers, Lsteps = 2 * nl; /* steps: forward j at 2j, loss at 2L, backward j at 2(2L - j) */
    const vkr_layer *Ls = g->layers;
    const char *lab = vkr__model_label(g->m);
    P->target = target;
    P->with_loss = with_loss;
    P->with_backward = with_backward;
    P->loss_layer = with_loss ? find_loss_layer(g, target) : target;
    int *ncons = calloc(nl, sizeof(int));
    char *init = calloc(nl, 1);
    if (!ncons || !init || plan_arrays(g, P)) {
        free(ncons);
        free(init);
        vkr__plan_free(P);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int j = 0; j < nl; j++) P->value[j] = P->value_grad[j] = P->argmax[j] = P->logits[j] = -1;
    /* live layers: ancestors of lg */
    P->live[P->loss_layer] = 1;
    for (int j = P->loss_layer; j >= 0; j--)
        if (P->live[j])
            for (int k = 0; k < Ls[j].ninputs; k++) P->live[Ls[j].input_idx[k]] = 1;
    for (int j = 0; j < nl; j++)
        if (P->live[j])
            for (int k = 0; k < Ls[j].ninputs; k++) ncons[Ls[j].input_idx[k]]++;
    if (with_backward)
        for (int j = 0; j < nl; j++) P->run_backward[j] = P->live[j] && g->needs_grad[j];
    /* BatchNorm folding and ReLU epilogues (graph_fold.c); not with recomputation, whose second
     * forward of a segment reads values through its own map (vidb) */
    if (!g->recompute) vkr__plan_fold(g, P);
    vkr_status s = VKR_OK;
    /* checks of what cannot be trained */
    for (int j = 0; j < nl && !s; j++) {
        if (!P->run_backward[j]) continue;
        const vkr_layer *L = &Ls[j];
        if (vkr__layer_is_softmax(L) && !(j == P->loss_layer && g->loss == VKR_LOSS_SOFTMAX_CE))
            s = vkr_fail(VKR_ERR_UNSUPPORTED,
                         "%s: layer %d \"%s\": a softmax can only be trained as the last layer with the softmax_ce loss", lab,
                         j, L->name);
    }
    /* forward values */
    for (int j = 0; j < nl && !s; j++) {
        if (!P->live[j]) continue;
        const vkr_layer *L = &Ls[j];
        int p = L->ninputs ? L->input_idx[0] : -1;
        if (kind(L)->graph_input) {
            P->value[j] = -1;
            continue;
        }
        if (vkr__aliases(g, P, j) || P->fold[j]) { /* a folded BN's value is its conv's */
            P->value[j] = P->value[p];
            continue;
        }
        if (kind(L)->in_place && p > 0 && P->value[p] >= 0 && ncons[p] == 1 && p != P->loss_layer &&
            !vkr__aliases(g, P, p) && !P->inplace[p]) {
            /* in place unless the producer's backward needs its own output */
            const vkr_layer *X = &Ls[p];
            int needs_out = P->run_backward[p] && (kind(X)->bwd_reads_output || X->activation != VKR_ACT_LINEAR);
            if (!needs_out) {
                P->value[j] = P->value[p];
                P->inplace[j] = 1;
                if (!g->recompute) vkr__plan_fuse_relu(g, P, j, p);
                continue;
            }
        }
        int v = new_vb(P, (uint64_t)g->batch * out_floats(L), 2 * j, 2 * j);
        if (v < 0) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        P->value[j] = v;
        if (kind(L)->argmax) {
            if ((P->argmax[j] = new_vb(P, (uint64_t)g->batch * out_floats(L), 2 * j, 2 * j)) < 0)
                s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        }
        if (L->activation == VKR_ACT_SOFTMAX && /* a fused softmax (dense): logits, then the softmax */
            !(with_loss && j == P->loss_layer && g->loss == VKR_LOSS_SOFTMAX_CE)) {
            if ((P->logits[j] = new_vb(P, (uint64_t)g->batch * out_floats(L), 2 * j, 2 * j)) < 0)
                s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        }
    }
    /* forward uses */
    for (int j = 0; j < nl && !s; j++) {
        if (!P->live[j]) continue;
        for (int k = 0; k < Ls[j].ninputs; k++) extend(P, P->value[Ls[j].input_idx[k]], 2 * j);
    }
    if (!s) extend(P, P->value[P->loss_layer], Lsteps);
    for (int j = 0; j < nl; j++) {
        P->value_bw[j] = P->value[j];
        P->argmax_bw[j] = P->argmax[j];
        P->recompute_from[j] = -1;
    }
    if (!s && with_backward && g->recompute) s = plan_recompute(g, P, Lsteps);
    /* backward uses of forward values (recomputed ones where they are) */
    for (int j = 0; j < nl && !s; j++) {
        if (!P->run_backward[j]) continue;
        const vkr_layer *L = &Ls[j];
        int bstep = 2 * (Lsteps - j);
        int in0 = L->ninputs ? L->input_idx[0] : -1;
        const vkr_layer_kind *K = kind(L);
        if (K->bwd_reads_input == VKR_READS_ALWAYS || (K->bwd_reads_input == VKR_READS_WHEN_TRAINED && g->trained[j]))
            extend(P, P->value_bw[in0], bstep);
        if (K->bwd_reads_input1 && L->ninputs > 1) extend(P, P->value_bw[L->input_idx[1]], bstep);
        if (K->bwd_reads_output || L->activation == VKR_ACT_RELU) extend(P, P->value_bw[j], bstep);
        if (K->argmax) extend(P, P->argmax_bw[j], bstep);
    }
    /* gradients, first writers and accumulation scratch, in backward order */
    for (int j = nl - 1; j >= 0 && !s; j--) {
        if (!P->run_backward[j]) continue;
        const vkr_layer *L = &Ls[j];
        int bstep = 2 * (Lsteps - j);
        if (j == P->loss_layer) {
            if ((P->value_grad[j] = new_vb(P, (uint64_t)g->batch * out_floats(L), Lsteps, bstep)) < 0)
                s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        } else if (P->value_grad[j] < 0) {
            s = vkr_fail(VKR_ERR_INVALID, "%s: internal: layer \"%s\" has no gradient producer", lab, L->name);
            break;
        } else {
            extend(P, P->value_grad[j], bstep);
        }
        for (int k = 0; k < L->ninputs && !s; k++) {
            int p = L->input_idx[k];
            if (!P->run_backward[p]) continue;
            if (!init[p]) {
                init[p] = 1;
                P->first[j][k] = 1;
                if ((P->value_grad[p] = new_vb(P, (uint64_t)g->batch * out_floats(&Ls[p]), bstep, bstep)) < 0)
                    s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            } else {
                extend(P, P->value_grad[p], bstep);
                if (!kind(L)->pass_grad &&
                    (P->grad_scratch[j][k] = new_vb(P, (uint64_t)g->batch * out_floats(&Ls[p]), bstep, bstep)) < 0)
                    s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            }
        }
    }
    free(ncons);
    free(init);
    if (!s) s = assign_slots(P);
    if (s) {
        vkr__plan_free(P);
        return s;
    }
    P->built = 1;
    return VKR_OK;
}

vkr_status vkr__plan_alloc(vkr_graph *g, vkr__plan *P) {
    P->slot_buf = calloc(P->nslots + 1, sizeof *P->slot_buf);
    if (!P->slot_buf) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < P->nslots; i++) {
        vkr_status s = vkr_buffer_create(g->ctx, P->slot_floats[i] * 4, &P->slot_buf[i]);
        if (s) {
            uint64_t need = P->planned_floats * 4;
            return vkr_fail(s, "%s: allocating activation buffers (%.1f MiB planned at batch %d, %dx%d) failed: %s",
                            vkr__model_label(g->m), need / 1048576.0, g->batch, g->h, g->w, vkr_last_error());
        }
    }
    return VKR_OK;
}
