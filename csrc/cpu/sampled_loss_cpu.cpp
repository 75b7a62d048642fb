// CPU tile passes of the fused sampled ranking loss: rows in parallel; within a row, loops
// over the tile's columns that the compiler vectorises (the loss a template parameter, no
// branch in the loops, OpenMP simd reductions for the sums; cloned for AVX-512 / AVX2). The
// steps are those of csrc/sampled_loss_pass.h, with the same per-element math.
#include "cpu/sampled_loss_cpu.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "cpu/flush_denormals.h"

namespace seqrec::cpu {
namespace {

using sampled_loss::Loss;
using sampled_loss::TileArgs;

// about 16k scores per task: where a second thread starts to pay (bench/bench_grain.py: 1.13x
// at 17k, 1.4x at 67k)
int64_t row_grain(int64_t tc) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, tc)); }

// r (scores with bias and elu), x (softmax inputs) and w (1 for a negative, else 0) of row b's
// tile columns.
template <Loss kLoss, typename scalar_t, typename acc_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) void row_scores(const TileArgs<scalar_t>& a,
                                                                             int64_t b, acc_t* __restrict__ r,
                                                                             acc_t* __restrict__ x,
                                                                             acc_t* __restrict__ w) {
  const scalar_t* __restrict__ s = a.scores + b * a.scores_stride;
  const int64_t tc = a.tc, c0 = a.c0;
  const scalar_t* __restrict__ bias = a.bias;  // never null here (zeros when absent)
  for (int64_t k = 0; k < tc; ++k) r[k] = static_cast<acc_t>(s[k]) + static_cast<acc_t>(bias[c0 + k]);
  if (a.elu_alpha > acc_t(0)) {
    const acc_t alpha = a.elu_alpha;
    for (int64_t k = 0; k < tc; ++k) r[k] = sampled_loss::elu(r[k], alpha);
  }
  if (kLoss == Loss::kCrossEntropy && a.logq != nullptr) {
    const scalar_t* __restrict__ logq = a.logq;
    for (int64_t k = 0; k < tc; ++k) x[k] = r[k] - static_cast<acc_t>(logq[c0 + k]);
  } else {
    for (int64_t k = 0; k < tc; ++k) x[k] = r[k];
  }
  for (int64_t k = 0; k < tc; ++k) w[k] = acc_t(1);
  if (b >= c0 && b < c0 + tc) w[b - c0] = acc_t(0);  // the target column
  if (a.col_items != nullptr) {
    const int64_t* __restrict__ items = a.col_items + c0;
    const int64_t target = a.col_items[b];
    for (int64_t k = 0; k < tc; ++k) w[k] = items[k] == target ? acc_t(0) : w[k];
  }
}

template <Loss kLoss, typename acc_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) void row_sums(const acc_t* __restrict__ r,
                                                                           const acc_t* __restrict__ x,
                                                                           const acc_t* __restrict__ w,
                                                                           int64_t tc, acc_t r_i, acc_t m,
                                                                           acc_t* out) {
  acc_t z = 0, sa = 0, sq = 0, st = 0, n = 0;
#pragma omp simd reduction(+ : z, sa, sq, st, n)
  for (int64_t k = 0; k < tc; ++k) {
    // select, not multiply: exp(x - m) of a column that is no negative may be infinite;
    // computed for every column (no load under the condition, so the loop vectorises)
    const acc_t xk = x[k], wk = w[k];
    const acc_t ek = sampled_loss::uses_softmax(kLoss) ? exp_approx(xk - m) : acc_t(1);
    const acc_t e = wk > acc_t(0) ? ek : acc_t(0);
    z += e;
    n += w[k];
    sampled_loss::negative_terms<kLoss>(r_i, r[k], e, sa, sq, st);
  }
  out[0] = z;
  out[1] = sa;
  out[2] = sq;
  out[3] = st;
  out[4] = n;
}

// x[k] is loaded whatever w[k] says: a load under the condition would be a branch, and the
// loop would not vectorise (measured: this loop was a third of the forward's time).
template <typename acc_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) acc_t masked_max(const acc_t* __restrict__ x,
                                                                              const acc_t* __restrict__ w,
                                                                              int64_t tc, acc_t m) {
  const acc_t lowest = -std::numeric_limits<acc_t>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < tc; ++k) {
    const acc_t xk = x[k], wk = w[k];
    const acc_t v = wk > acc_t(0) ? xk : lowest;
    m = v > m ? v : m;
  }
  return m;
}

template <Loss kLoss, typename scalar_t>
void update_stats_rows(const TileArgs<scalar_t>& a, int64_t b0, int64_t b1) {
  using acc_t = typename AccType<scalar_t>::type;
  std::vector<acc_t> buf(3 * static_cast<size_t>(a.tc));
  acc_t *r = buf.data(), *x = r + a.tc, *w = x + a.tc;
  for (int64_t b = b0; b < b1; ++b) {
    acc_t* st = a.stats + b * sampled_loss::kStats;
    row_scores<kLoss>(a, b, r, x, w);
    if constexpr (sampled_loss::uses_softmax(kLoss)) {
      sampled_loss::raise_max<kLoss>(st, masked_max(x, w, a.tc, st[sampled_loss::kM]));
    }
    acc_t sums[5];
    row_sums<kLoss>(r, x, w, a.tc, st[sampled_loss::kRi], st[sampled_loss::kM], sums);
    sampled_loss::add_stats<kLoss>(st, sums[0], sums[1], sums[2], sums[3], sums[4]);
  }
}

template <Loss kLoss, typename acc_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) void row_grads(
    const sampled_loss::RowConsts<acc_t> consts, acc_t scale, const acc_t* __restrict__ r,
    const acc_t* __restrict__ x, const acc_t* __restrict__ w, int64_t tc, acc_t* __restrict__ g) {
  for (int64_t k = 0; k < tc; ++k) {
    // a select, not a product: a column that is no negative may overflow the formula
    const acc_t v = scale * sampled_loss::negative_grad<kLoss>(consts, r[k], x[k]);
    g[k] = w[k] > acc_t(0) ? v : acc_t(0);
  }
}

template <Loss kLoss, typename scalar_t>
void column_grads_rows(const TileArgs<scalar_t>& a, int64_t b0, int64_t b1) {
  using acc_t = typename AccType<scalar_t>::type;
  std::vector<acc_t> buf(4 * static_cast<size_t>(a.tc));
  acc_t *r = buf.data(), *x = r + a.tc, *w = x + a.tc, *g = w + a.tc;
  for (int64_t b = b0; b < b1; ++b) {
    acc_t st[sampled_loss::kStats];
    std::copy_n(a.stats + b * sampled_loss::kStats, sampled_loss::kStats, st);
    const acc_t scale = a.row_scale[b];
    row_scores<kLoss>(a, b, r, x, w);
    row_grads<kLoss>(sampled_loss::row_consts(st, a.bpreg), scale, r, x, w, a.tc, g);
    if (b >= a.c0 && b < a.c0 + a.tc) g[b - a.c0] = sampled_loss::target_grad<kLoss>(st, a.bpreg) * scale;
    scalar_t* out = a.d_scores + b * a.d_scores_stride;
    const scalar_t* s = a.scores + b * a.scores_stride;
    if (a.elu_alpha > acc_t(0)) {
      const acc_t alpha = a.elu_alpha;
      for (int64_t k = 0; k < a.tc; ++k) {
        const acc_t raw = static_cast<acc_t>(s[k]) + static_cast<acc_t>(a.bias[a.c0 + k]);
        g[k] *= sampled_loss::elu_grad(raw, r[k], alpha);
      }
    }
    for (int64_t k = 0; k < a.tc; ++k) out[k] = static_cast<scalar_t>(g[k]);
  }
}

// ---- the GRU4Rec step's loss: all M columns of a row at once, scores kept ----
// (csrc/sampled_loss.cpp, sampled_ranking_loss_with_grads). Row b's negatives are the columns
// k != b (no accidental-hit mask), so every loop below runs over the ranges [0, b) and
// (b, M) without a mask. Per row: the scores pass (r, x), the statistics pass (keeping
// e_j = exp(x_j - m)), the row's loss, and the gradient pass, which writes dL/d(scores) over
// the scores: three passes over a row that stays in cache, where the loss op's forward and
// backward make about twelve and recompute the exponentials.

// r = elu(s + bias), x = r - logq (cross-entropy with logq; otherwise x is r and not written)
template <bool kLogq, typename scalar_t, typename acc_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) void step_scores(
    const scalar_t* __restrict__ s, const scalar_t* __restrict__ bias, const scalar_t* __restrict__ logq,
    int64_t n, acc_t alpha, acc_t* __restrict__ r, acc_t* __restrict__ x) {
  if (alpha > acc_t(0)) {
    for (int64_t k = 0; k < n; ++k)
      r[k] = sampled_loss::elu(static_cast<acc_t>(s[k]) + static_cast<acc_t>(bias[k]), alpha);
  } else {
    for (int64_t k = 0; k < n; ++k) r[k] = static_cast<acc_t>(s[k]) + static_cast<acc_t>(bias[k]);
  }
  if constexpr (kLogq) {
    for (int64_t k = 0; k < n; ++k) x[k] = r[k] - static_cast<acc_t>(logq[k]);
  }
}

template <typename acc_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) acc_t range_max(const acc_t* __restrict__ x,
                                                                             int64_t n, acc_t m) {
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < n; ++k) m = x[k] > m ? x[k] : m;
  return m;
}

// e_k = exp(x_k - m) (1 without a softmax) kept in e, and the pair's sigmoid in sg (losses
// that have one); the sums of the negatives' terms added to out[0..3] = z, a, q, t
template <Loss kLoss, typename acc_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) void range_sums(
    const acc_t* __restrict__ r, const acc_t* __restrict__ x, int64_t n, acc_t r_i, acc_t m,
    acc_t* __restrict__ e, acc_t* __restrict__ sg, acc_t* out) {
  acc_t z = 0, sa = 0, sq = 0, st = 0;
#pragma omp simd reduction(+ : z, sa, sq, st)
  for (int64_t k = 0; k < n; ++k) {
    const acc_t ek = sampled_loss::uses_softmax(kLoss) ? exp_approx(x[k] - m) : acc_t(1);
    const acc_t sk = sampled_loss::pair_sigmoid<kLoss>(r_i, r[k]);
    e[k] = ek;
    if constexpr (kLoss != Loss::kCrossEntropy) sg[k] = sk;
    z += ek;
    sampled_loss::negative_terms_s<kLoss>(r_i, r[k], ek, sk, sa, sq, st);
  }
  out[0] += z;
  out[1] += sa;
  out[2] += sq;
  out[3] += st;
}

// g_k = scale * dL/dr_k * elu'(raw_k), written over s (s_k is read first)
template <Loss kLoss, typename scalar_t, typename acc_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) void step_grads(
    const sampled_loss::RowConsts<acc_t> consts, acc_t scale, acc_t alpha, scalar_t* s,
    const scalar_t* __restrict__ bias, const acc_t* __restrict__ r, const acc_t* __restrict__ e,
    const acc_t* __restrict__ sg, int64_t n) {
  const auto grad = [&](int64_t k) {
    const acc_t sk = kLoss == Loss::kCrossEntropy ? acc_t(0) : sg[k];
    return scale * sampled_loss::negative_grad_es<kLoss>(consts, r[k], e[k], sk);
  };
  if (alpha > acc_t(0)) {
    for (int64_t k = 0; k < n; ++k) {
      const acc_t raw = static_cast<acc_t>(s[k]) + static_cast<acc_t>(bias[k]);
      s[k] = static_cast<scalar_t>(grad(k) * sampled_loss::elu_grad(raw, r[k], alpha));
    }
  } else {
    for (int64_t k = 0; k < n; ++k) s[k] = static_cast<scalar_t>(grad(k));
  }
}

template <Loss kLoss, typename scalar_t>
void step_rows(const TileArgs<scalar_t>& a, int64_t b0, int64_t b1,
               typename TileArgs<scalar_t>::acc_t* losses) {
  using acc_t = typename TileArgs<scalar_t>::acc_t;
  const int64_t M = a.tc;
  const bool logq = kLoss == Loss::kCrossEntropy && a.logq != nullptr;
  std::vector<acc_t> buf((logq ? 4 : 3) * static_cast<size_t>(M));
  acc_t *r = buf.data(), *e = r + M, *sg = e + M, *x = logq ? sg + M : r;
  const acc_t alpha = a.elu_alpha;
  for (int64_t b = b0; b < b1; ++b) {
    scalar_t* s = a.d_scores + b * a.d_scores_stride;  // = a.scores: read, then overwritten
    logq ? step_scores<true>(s, a.bias, a.logq, M, alpha, r, x)
         : step_scores<false>(s, a.bias, a.logq, M, alpha, r, x);
    const acc_t r_i = r[b], x_i = x[b];
    acc_t m = -std::numeric_limits<acc_t>::infinity();
    if constexpr (sampled_loss::uses_softmax(kLoss)) {
      m = range_max(x + b + 1, M - b - 1, range_max(x, b, m));
      if (kLoss == Loss::kCrossEntropy) m = x_i > m ? x_i : m;  // the target is in its softmax
    }
    acc_t sums[4] = {0, 0, 0, 0};
    range_sums<kLoss>(r, x, b, r_i, m, e, sg, sums);
    range_sums<kLoss>(r + b + 1, x + b + 1, M - b - 1, r_i, m, e + b + 1, sg + b + 1, sums);
    e[b] = 0;
    sg[b] = 0;
    acc_t* st = a.stats + b * sampled_loss::kStats;
    st[sampled_loss::kM] = m;
    st[sampled_loss::kZ] = sums[0] + (kLoss == Loss::kCrossEntropy ? exp_approx(x_i - m) : acc_t(0));
    st[sampled_loss::kA] = kLoss == Loss::kCrossEntropy ? x_i : sums[1];
    st[sampled_loss::kQ] = sums[2];
    st[sampled_loss::kT] = sums[3];
    st[sampled_loss::kN] = static_cast<acc_t>(M - 1);
    st[sampled_loss::kRi] = r_i;
    losses[b] = sampled_loss::row_loss(kLoss, st, a.bpreg);
    const acc_t scale = a.row_scale[b];
    const acc_t raw_i = static_cast<acc_t>(s[b]) + static_cast<acc_t>(a.bias[b]);
    step_grads<kLoss>(sampled_loss::row_consts(st, a.bpreg), scale, alpha, s, a.bias, r, e, sg, M);
    acc_t g_i = scale * sampled_loss::target_grad<kLoss>(st, a.bpreg);
    if (alpha > acc_t(0)) g_i *= sampled_loss::elu_grad(raw_i, r_i, alpha);
    s[b] = static_cast<scalar_t>(g_i);
  }
}

// Runs rows(loss, b0, b1) over the tile's rows in parallel ranges, with the loss as a
// compile-time constant (std::integral_constant) and denormals flushed.
template <typename scalar_t, typename RowsFn>
void for_row_ranges(const TileArgs<scalar_t>& a, RowsFn&& rows) {
  sampled_loss::dispatch_loss(a.loss, [&](auto loss) {
    at::parallel_for(0, a.B, row_grain(a.tc), [&](int64_t b0, int64_t b1) {
      const FlushDenormals flush;
      rows(loss, b0, b1);
    });
  });
}

template <typename scalar_t>
typename TileArgs<scalar_t>::acc_t step_loss_and_grads_impl(const TileArgs<scalar_t>& a) {
  using acc_t = typename TileArgs<scalar_t>::acc_t;
  TORCH_CHECK(a.c0 == 0 && a.col_items == nullptr && a.scores == a.d_scores,
              "step_loss_and_grads: one tile of all columns, no mask, gradients in place");
  std::vector<acc_t> losses(a.B);
  for_row_ranges(a, [&](auto loss, int64_t b0, int64_t b1) {
    step_rows<decltype(loss)::value>(a, b0, b1, losses.data());
  });
  acc_t total = 0;
  for (const acc_t l : losses) total += l;  // in row order: deterministic
  return total;
}

template <typename scalar_t>
void update_stats_impl(const TileArgs<scalar_t>& a) {
  for_row_ranges(
      a, [&](auto loss, int64_t b0, int64_t b1) { update_stats_rows<decltype(loss)::value>(a, b0, b1); });
}

template <typename scalar_t>
void column_grads_impl(const TileArgs<scalar_t>& a) {
  for_row_ranges(
      a, [&](auto loss, int64_t b0, int64_t b1) { column_grads_rows<decltype(loss)::value>(a, b0, b1); });
}

template <typename acc_t>
void row_losses_impl(const acc_t* stats, int64_t B, Loss loss, acc_t bpreg, acc_t* out) {
  for (int64_t b = 0; b < B; ++b)
    out[b] = sampled_loss::row_loss(loss, stats + b * sampled_loss::kStats, bpreg);
}

}  // namespace

void row_losses(const float* st, int64_t B, Loss loss, float bpreg, float* out) {
  row_losses_impl(st, B, loss, bpreg, out);
}
void row_losses(const double* st, int64_t B, Loss loss, double bpreg, double* out) {
  row_losses_impl(st, B, loss, bpreg, out);
}

float step_loss_and_grads(const TileArgs<float>& a) { return step_loss_and_grads_impl(a); }
double step_loss_and_grads(const TileArgs<double>& a) { return step_loss_and_grads_impl(a); }
void update_stats(const TileArgs<float>& a) { update_stats_impl(a); }
void update_stats(const TileArgs<double>& a) { update_stats_impl(a); }
void column_grads(const TileArgs<float>& a) { column_grads_impl(a); }
void column_grads(const TileArgs<double>& a) { column_grads_impl(a); }

}  // namespace seqrec::cpu
