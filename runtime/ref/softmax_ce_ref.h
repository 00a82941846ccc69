#ifndef VKRUN_SOFTMAX_CE_REF_H
#define VKRUN_SOFTMAX_CE_REF_H
/* Plain-C references of vkr_softmax_ce_forward / _backward (runtime/ops/softmax_ce.c).
 * forward: probs = softmax(logits) row-wise; result[0] = mean over rows of
 *   -sum_k t_k (z_k - max - log(sum_j exp(z_j - max)));
 *   result[1] = rows with argmax(logits) == argmax(targets) (first maximum wins).
 * backward: dlogits = (probs * sum_k targets[row, k] - targets) / batch: the gradient of the mean loss for any
 * non-negative targets ((probs - targets) / batch when each row sums to 1; a row scaled by a class weight w
 * gives w times its gradient). */
void vkr_ref_softmax_ce_forward(int batch, int classes, double *result, double *probs, const double *logits,
                                const double *targets);
void vkr_ref_softmax_ce_backward(int batch, int classes, double *dlogits, const double *probs, const double *targets);
#endif
