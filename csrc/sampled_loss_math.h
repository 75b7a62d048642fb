// Per-element math of the fused sampled scoring + ranking losses of GRU4Rec, shared by the CPU
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
#include <type_traits>

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
  // for every x, so that CPU loops vectorise (an inf for large x, in double or on the device,
  // is not selected)
  const acc_t e = exp_approx(x);
  return x > acc_t(0) ? x : alpha * (e - acc_t(1));
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
  // log(1 + t) for t in (0, 1]: 1 + t loses t's low bits only when t < eps, where the
  // absolute error (< eps) is below float rounding of the result anyway
  return (x < acc_t(0) ? -x : acc_t(0)) + log_approx(acc_t(1) + exp_approx(-ax));
}

constexpr bool uses_softmax(Loss loss) {
  return loss == Loss::kBprMax || loss == Loss::kTop1Max || loss == Loss::kCrossEntropy;
}

// The sigmoid of the pair (target i, negative j) that a loss's terms use: bpr-max and bpr
// sigmoid(r_i - r_j), top1-max and top1 sigmoid(r_j - r_i); cross-entropy none. A pass that
// keeps it for the gradient pass saves an exponential and a division per element there.
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE acc_t pair_sigmoid(acc_t r_i, acc_t r_j) {
  if constexpr (kLoss == Loss::kBprMax || kLoss == Loss::kBpr) {
    return sigmoid(r_i - r_j);
  } else if constexpr (kLoss == Loss::kTop1Max || kLoss == Loss::kTop1) {
    return sigmoid(r_j - r_i);
  } else {
    return acc_t(0);
  }
}

// The summands of one column j with weight e: exp(x_j - m) for a negative of a softmax loss,
// 1 for a negative of bpr / top1, 0 for a column that is not a negative. Adds to a, q, t.
// s is the pair's sigmoid, pair_sigmoid<kLoss>(r_i, r_j).
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE void negative_terms_s(acc_t r_i, acc_t r_j, acc_t e, acc_t s, acc_t& a, acc_t& q,
                                         acc_t& t) {
  if constexpr (kLoss == Loss::kBprMax) {
    a += e * s;
    q += e * r_j * r_j;
    t += e * s * (acc_t(1) - s);
  } else if constexpr (kLoss == Loss::kTop1Max || kLoss == Loss::kTop1) {
    a += e * (s + sigmoid(r_j * r_j));
    t += e * s * (acc_t(1) - s);
  } else if constexpr (kLoss == Loss::kBpr) {
    a += e * neg_log_sigmoid(r_i - r_j);
    t += e * (acc_t(1) - s);
  }
}

// The same, the sigmoid computed here.
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE void negative_terms(acc_t r_i, acc_t r_j, acc_t e, acc_t& a, acc_t& q, acc_t& t) {
  negative_terms_s<kLoss>(r_i, r_j, e, pair_sigmoid<kLoss>(r_i, r_j), a, q, t);
}

// The row's loss from its finished statistics. z = 0 means no negatives. z is a sum of
// exponentials: 0, positive, or NaN (a NaN score), which must reach the loss and the gradients:
// hence "z != 0", not "z > 0", here and below.
template <typename acc_t>
SEQREC_HOST_DEVICE acc_t row_loss(Loss loss, const acc_t* st, acc_t bpreg) {
  const acc_t eps = static_cast<acc_t>(kEps);
  const acc_t z = st[kZ];
  switch (loss) {
    case Loss::kBprMax: {
      const acc_t p = z != acc_t(0) ? st[kA] / z : acc_t(0);
      const acc_t reg = z != acc_t(0) ? bpreg * st[kQ] / z : acc_t(0);
      return -::log(p + eps) + reg;
    }
    case Loss::kTop1Max:
      return z != acc_t(0) ? st[kA] / z : acc_t(0);
    case Loss::kCrossEntropy:
      return -::log(exp_approx(st[kA] - st[kM]) / z + eps);
    case Loss::kBpr:
    case Loss::kTop1:
      return st[kN] > acc_t(0) ? st[kA] / st[kN] : acc_t(0);
  }
  return acc_t(0);
}

// What the gradient of every column of a row shares, computed once per row.
template <typename acc_t>
struct RowConsts {
  acc_t m, inv_z, r_i;
  acc_t p;         // bpr-max: sum_j s_j s(r_i - r_j)
  acc_t inv_p;     // bpr-max: 1 / (p + eps)
  acc_t mean_q;    // bpr-max: sum_j s_j r_j^2
  acc_t mean_a;    // top1-max: the loss
  acc_t ce_scale;  // cross-entropy: p_i / (p_i + eps) / z
  acc_t inv_n;     // bpr, top1: 1 / number of negatives
  acc_t bpreg;
};

template <typename acc_t>
SEQREC_HOST_DEVICE RowConsts<acc_t> row_consts(const acc_t* st, acc_t bpreg) {
  const acc_t eps = static_cast<acc_t>(kEps);
  RowConsts<acc_t> c;
  const acc_t z = st[kZ] != acc_t(0) ? st[kZ] : acc_t(1);  // z = 0: no negatives, no gradient
  c.m = st[kM];
  c.inv_z = acc_t(1) / z;
  c.r_i = st[kRi];
  c.p = st[kA] / z;
  c.inv_p = acc_t(1) / (c.p + eps);
  c.mean_q = st[kQ] / z;
  c.mean_a = st[kA] / z;
  const acc_t p_i = exp_approx(st[kA] - st[kM]) / z;  // cross-entropy: a holds x_i
  c.ce_scale = p_i / (p_i + eps) / z;
  c.inv_n = st[kN] > acc_t(0) ? acc_t(1) / st[kN] : acc_t(0);
  c.bpreg = bpreg;
  return c;
}

// dL/dr_j of a negative column j with score r_j, given e_j = exp(x_j - m) (its unnormalised
// softmax weight; 1 for bpr and top1, which have none) — for callers that kept e_j from the
// statistics pass. Not yet multiplied by the upstream gradient or the elu derivative.
// Branch-free, so that loops over it vectorise. sig is the pair's sigmoid,
// pair_sigmoid<kLoss>(r_i, r_j), kept by the statistics pass.
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE acc_t negative_grad_es(const RowConsts<acc_t>& c, acc_t r_j, acc_t e_j, acc_t sig) {
  if constexpr (kLoss == Loss::kBprMax) {
    const acc_t s_j = e_j * c.inv_z;
    const acc_t d_p = s_j * (sig - c.p) - s_j * sig * (acc_t(1) - sig);
    const acc_t d_q = s_j * (r_j * r_j - c.mean_q) + acc_t(2) * s_j * r_j;
    return -d_p * c.inv_p + c.bpreg * d_q;
  } else if constexpr (kLoss == Loss::kTop1Max) {
    const acc_t s_j = e_j * c.inv_z;
    const acc_t sig2 = sigmoid(r_j * r_j);
    return s_j * (sig + sig2 - c.mean_a) +
           s_j * (sig * (acc_t(1) - sig) + acc_t(2) * r_j * sig2 * (acc_t(1) - sig2));
  } else if constexpr (kLoss == Loss::kCrossEntropy) {
    return c.ce_scale * e_j;
  } else if constexpr (kLoss == Loss::kBpr) {
    return (acc_t(1) - sig) * c.inv_n;
  } else {
    const acc_t sig2 = sigmoid(r_j * r_j);
    return (sig * (acc_t(1) - sig) + acc_t(2) * r_j * sig2 * (acc_t(1) - sig2)) * c.inv_n;
  }
}

// The same, the sigmoid computed here.
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE acc_t negative_grad_e(const RowConsts<acc_t>& c, acc_t r_j, acc_t e_j) {
  return negative_grad_es<kLoss>(c, r_j, e_j, pair_sigmoid<kLoss>(c.r_i, r_j));
}

// The same from the softmax input x_j (the loss op's backward, which keeps no e_j).
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE acc_t negative_grad(const RowConsts<acc_t>& c, acc_t r_j, acc_t x_j) {
  return negative_grad_e<kLoss>(c, r_j, uses_softmax(kLoss) ? exp_approx(x_j - c.m) : acc_t(1));
}

// dL/dr_i of the target column.
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE acc_t target_grad(const acc_t* st, acc_t bpreg) {
  const acc_t eps = static_cast<acc_t>(kEps);
  const acc_t z = st[kZ];
  if constexpr (kLoss == Loss::kBprMax) {
    if (z == acc_t(0)) return acc_t(0);
    return -(st[kT] / z) / (st[kA] / z + eps);
  } else if constexpr (kLoss == Loss::kTop1Max) {
    return z != acc_t(0) ? -st[kT] / z : acc_t(0);
  } else if constexpr (kLoss == Loss::kCrossEntropy) {
    const acc_t p_i = exp_approx(st[kA] - st[kM]) / z;
    return p_i / (p_i + eps) * (p_i - acc_t(1));
  } else {
    return st[kN] > acc_t(0) ? -st[kT] / st[kN] : acc_t(0);
  }
}

// Calls f(std::integral_constant<Loss, loss>{}): the loss as a compile-time constant.
template <typename F>
void dispatch_loss(Loss loss, F&& f) {
  switch (loss) {
    case Loss::kBprMax:
      return f(std::integral_constant<Loss, Loss::kBprMax>{});
    case Loss::kTop1Max:
      return f(std::integral_constant<Loss, Loss::kTop1Max>{});
    case Loss::kCrossEntropy:
      return f(std::integral_constant<Loss, Loss::kCrossEntropy>{});
    case Loss::kBpr:
      return f(std::integral_constant<Loss, Loss::kBpr>{});
    case Loss::kTop1:
      return f(std::integral_constant<Loss, Loss::kTop1>{});
  }
}

}  // namespace seqrec::sampled_loss
