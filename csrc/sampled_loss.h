// Per-element math of the fused sampled scoring + ranking losses (SPEC 2.2), shared by the CPU
// and CUDA kernels.
//
// Row i of B scores M columns: column i holds its target (score r_i), every other column not
// masked as an accidental hit is a negative. Scores r = elu(h W^T + b) (elu when elu_param > 0).
// The forward streams over column tiles keeping per-row statistics only (online softmax with
// a running maximum); the backward recomputes each tile's scores and turns them, with the
// statistics, into dL/dr without any B x M tensor.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/fast_math.h"
#include "common/host_device.h"

namespace seqrec::sampled_loss {

enum class Loss : int { kBprMax = 0, kTop1Max = 1, kCrossEntropy = 2, kBpr = 3, kTop1 = 4 };

constexpr double kEps = 1e-24;  // GRU4Rec's epsilon inside the logarithms

// Per-row statistics, kStats values per row in this order.
//   m: running maximum of the softmax inputs (cross-entropy: x = r - logq over the target and
//      the negatives; *-max: r over the negatives); -inf before the first column
//   z: sum of exp(x - m)
//   a: bpr-max: sum e_j s(r_i - r_j); top1-max: sum e_j g_j; cross-entropy: x_i (the target's
//      softmax input); bpr: sum -log s(r_i - r_j); top1: sum g_j
//      (e_j = exp(r_j - m), g_j = s(r_j - r_i) + s(r_j^2))
//   q: bpr-max: sum e_j r_j^2
//   t: the target's gradient sum: bpr-max: sum e_j s_ij (1 - s_ij); top1-max and top1:
//      sum [e_j] s'(r_j - r_i); bpr: sum (1 - s_ij)       (s_ij = s(r_i - r_j), s' = s (1 - s))
//   n: number of negatives
//   r_i: the target's score
constexpr int kStats = 7;
enum Stat : int { kM = 0, kZ, kA, kQ, kT, kN, kRi };

template <typename acc_t>
SEQREC_HOST_DEVICE acc_t elu(acc_t x, acc_t alpha) {
  return x > acc_t(0) ? x : alpha * (exp_approx(x) - acc_t(1));
}
// d elu / d x from the output y = elu(x)
template <typename acc_t>
SEQREC_HOST_DEVICE acc_t elu_grad(acc_t x, acc_t y, acc_t alpha) {
  return x > acc_t(0) ? acc_t(1) : y + alpha;
}

// -log s(x) = softplus(-x), stable for any x
template <typename acc_t>
SEQREC_HOST_DEVICE acc_t neg_log_sigmoid(acc_t x) {
  const acc_t ax = x < acc_t(0) ? -x : x;
  return (x < acc_t(0) ? -x : acc_t(0)) + ::log1p(exp_approx(-ax));
}

template <typename acc_t>
SEQREC_HOST_DEVICE bool uses_softmax(Loss loss) {
  return loss == Loss::kBprMax || loss == Loss::kTop1Max || loss == Loss::kCrossEntropy;
}

// The summands of one negative column j with weight e (= exp(x_j - m), or 1 for bpr/top1):
// adds to a, q, t.
template <typename acc_t>
SEQREC_HOST_DEVICE void negative_terms(Loss loss, acc_t r_i, acc_t r_j, acc_t e, acc_t& a, acc_t& q,
                                       acc_t& t) {
  switch (loss) {
    case Loss::kBprMax: {
      const acc_t s = sigmoid(r_i - r_j);
      a += e * s;
      q += e * r_j * r_j;
      t += e * s * (acc_t(1) - s);
      break;
    }
    case Loss::kTop1Max:
    case Loss::kTop1: {
      const acc_t s = sigmoid(r_j - r_i);
      a += e * (s + sigmoid(r_j * r_j));
      t += e * s * (acc_t(1) - s);
      break;
    }
    case Loss::kBpr: {
      a += neg_log_sigmoid(r_i - r_j);
      t += acc_t(1) - sigmoid(r_i - r_j);
      break;
    }
    case Loss::kCrossEntropy:
      break;
  }
}

// The row's loss from its finished statistics.
template <typename acc_t>
SEQREC_HOST_DEVICE acc_t row_loss(Loss loss, const acc_t* st, acc_t bpreg) {
  const acc_t eps = static_cast<acc_t>(kEps);
  const acc_t z = st[kZ];
  switch (loss) {
    case Loss::kBprMax: {
      const acc_t p = z > acc_t(0) ? st[kA] / z : acc_t(0);
      const acc_t reg = z > acc_t(0) ? bpreg * st[kQ] / z : acc_t(0);
      return -::log(p + eps) + reg;
    }
    case Loss::kTop1Max:
      return z > acc_t(0) ? st[kA] / z : acc_t(0);
    case Loss::kCrossEntropy:
      return -::log(exp_approx(st[kA] - st[kM]) / z + eps);
    case Loss::kBpr:
    case Loss::kTop1:
      return st[kN] > acc_t(0) ? st[kA] / st[kN] : acc_t(0);
  }
  return acc_t(0);
}

// dL/dr for one column of row i: a negative (is_target false) with score r_j and softmax
// input x_j, or the target column (is_target true). Accidental hits get no gradient (callers
// skip them). Not yet multiplied by the upstream gradient or the elu derivative.
template <typename acc_t>
SEQREC_HOST_DEVICE acc_t column_grad(Loss loss, const acc_t* st, acc_t bpreg, bool is_target,
                                     acc_t r_j, acc_t x_j) {
  const acc_t eps = static_cast<acc_t>(kEps);
  const acc_t z = st[kZ], m = st[kM], r_i = st[kRi];
  switch (loss) {
    case Loss::kBprMax: {
      if (z <= acc_t(0)) return acc_t(0);
      const acc_t p = st[kA] / z;
      if (is_target) return -(st[kT] / z) / (p + eps);
      const acc_t s_j = exp_approx(r_j - m) / z;
      const acc_t sig = sigmoid(r_i - r_j);
      const acc_t d_p = s_j * (sig - p) - s_j * sig * (acc_t(1) - sig);
      const acc_t d_q = s_j * (r_j * r_j - st[kQ] / z) + acc_t(2) * s_j * r_j;
      return -d_p / (p + eps) + bpreg * d_q;
    }
    case Loss::kTop1Max: {
      if (z <= acc_t(0)) return acc_t(0);
      if (is_target) return -st[kT] / z;
      const acc_t s_j = exp_approx(r_j - m) / z;
      const acc_t sig = sigmoid(r_j - r_i);
      const acc_t sig2 = sigmoid(r_j * r_j);
      const acc_t g = sig + sig2;
      return s_j * (g - st[kA] / z) +
             s_j * (sig * (acc_t(1) - sig) + acc_t(2) * r_j * sig2 * (acc_t(1) - sig2));
    }
    case Loss::kCrossEntropy: {
      const acc_t p_i = exp_approx(st[kA] - m) / z;
      const acc_t c = p_i / (p_i + eps);
      const acc_t p_j = is_target ? p_i : exp_approx(x_j - m) / z;
      return c * (p_j - (is_target ? acc_t(1) : acc_t(0)));
    }
    case Loss::kBpr: {
      if (st[kN] <= acc_t(0)) return acc_t(0);
      if (is_target) return -st[kT] / st[kN];
      return (acc_t(1) - sigmoid(r_i - r_j)) / st[kN];
    }
    case Loss::kTop1: {
      if (st[kN] <= acc_t(0)) return acc_t(0);
      if (is_target) return -st[kT] / st[kN];
      const acc_t sig = sigmoid(r_j - r_i);
      const acc_t sig2 = sigmoid(r_j * r_j);
      return (sig * (acc_t(1) - sig) + acc_t(2) * r_j * sig2 * (acc_t(1) - sig2)) / st[kN];
    }
  }
  return acc_t(0);
}

}  // namespace seqrec::sampled_loss
