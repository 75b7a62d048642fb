// The passes of the fused sampled ranking loss over one tile of columns, written once for the
// CPU loops (cpu/sampled_loss_cpu.cpp) and the CUDA kernels (cuda/sampled_loss_cuda.cu). The
// tile's scores h W_tile^T come from a matrix product done by the caller (csrc/sampled_loss.cpp).
#pragma once

#include <cstdint>

#include "common/acc_type.h"
#include "common/host_device.h"
#include "sampled_loss_math.h"

namespace seqrec::sampled_loss {

// Raw pointers of one tile pass: columns [c0, c0 + tc) of rows [0, B).
template <typename scalar_t>
struct TileArgs {
  using acc_t = typename AccType<scalar_t>::type;
  int64_t B = 0, c0 = 0, tc = 0;
  const scalar_t* scores = nullptr;  // (B, tc) h W_tile^T, bias not added
  int64_t scores_stride = 0;
  const scalar_t* bias = nullptr;      // (M) or null
  const scalar_t* logq = nullptr;      // (M) or null (cross-entropy only)
  const int64_t* col_items = nullptr;  // (M) or null: mask accidental hits
  acc_t* stats = nullptr;              // (B, kStats)
  Loss loss = Loss::kBprMax;
  acc_t bpreg = 0, elu_alpha = 0;
  const acc_t* row_scale = nullptr;  // (B) upstream gradient of each row's loss (backward)
  scalar_t* d_scores = nullptr;      // (B, tc) dL / d(h W^T + b) (backward)
  int64_t d_scores_stride = 0;
};

// Multiplies the running sums by exp(m_old - m_new) when the running maximum grows
// (cross-entropy keeps the target's softmax input x_i in a: not a sum).
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE void rescale_stats(acc_t* st, acc_t scale) {
  st[kZ] *= scale;
  if constexpr (kLoss != Loss::kCrossEntropy) {
    st[kA] *= scale;
    st[kQ] *= scale;
    st[kT] *= scale;
  }
}

// Adds a tile's sums to the running statistics.
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE void add_stats(acc_t* st, acc_t z, acc_t a, acc_t q, acc_t t, acc_t n) {
  st[kZ] += z;
  st[kN] += n;
  if constexpr (kLoss != Loss::kCrossEntropy) {
    st[kA] += a;
    st[kQ] += q;
    st[kT] += t;
  }
}

enum ColumnKind : int { kNegative = 0, kTarget = 1, kExcluded = 2 };

template <typename scalar_t>
SEQREC_HOST_DEVICE int column_kind(const TileArgs<scalar_t>& a, int64_t b, int64_t c) {
  if (c == b) return kTarget;
  if (a.col_items != nullptr && b < a.B && a.col_items[c] == a.col_items[b]) return kExcluded;
  return kNegative;
}

// raw = h W^T + b, r = elu(raw), x = r - logq (the softmax input of cross-entropy)
template <typename scalar_t, typename acc_t>
SEQREC_HOST_DEVICE void column_scores(const TileArgs<scalar_t>& a, int64_t b, int64_t k, acc_t& raw, acc_t& r,
                                      acc_t& x) {
  const int64_t c = a.c0 + k;
  raw = static_cast<acc_t>(a.scores[b * a.scores_stride + k]);
  if (a.bias) raw += static_cast<acc_t>(a.bias[c]);
  r = a.elu_alpha > acc_t(0) ? elu(raw, a.elu_alpha) : raw;
  x = a.logq ? r - static_cast<acc_t>(a.logq[c]) : r;
}

// What the negatives of one row in a set of tile columns add to its statistics (trivial, so
// that CUDA shared memory can hold it: zero it with `TileSums<acc_t> s{}`).
template <typename acc_t>
struct TileSums {
  acc_t z, a, q, t, n;
  SEQREC_HOST_DEVICE TileSums& operator+=(const TileSums& o) {
    z += o.z;
    a += o.a;
    q += o.q;
    t += o.t;
    n += o.n;
    return *this;
  }
};

// Row b's tile columns k = lane, lane + lanes, ...: one CPU thread takes them all (lane 0 of 1),
// a CUDA block shares them out among its threads and combines the parts in a fixed order.

// The largest softmax input among the row's negatives in those columns, at least `m`.
template <Loss kLoss, typename scalar_t, typename acc_t = typename AccType<scalar_t>::type>
SEQREC_HOST_DEVICE acc_t tile_max_part(const TileArgs<scalar_t>& a, int64_t b, int64_t lane, int64_t lanes,
                                       acc_t m) {
  for (int64_t k = lane; k < a.tc; k += lanes) {
    if (column_kind(a, b, a.c0 + k) != kNegative) continue;
    acc_t raw, r, x;
    column_scores(a, b, k, raw, r, x);
    m = x > m ? x : m;
  }
  return m;
}

// The sums of the row's negatives in those columns, their weights taken against the running
// maximum m; r_i is the target's score.
template <Loss kLoss, typename scalar_t, typename acc_t = typename AccType<scalar_t>::type>
SEQREC_HOST_DEVICE TileSums<acc_t> tile_sums_part(const TileArgs<scalar_t>& a, int64_t b, int64_t lane,
                                                  int64_t lanes, acc_t m, acc_t r_i) {
  TileSums<acc_t> s{};
  for (int64_t k = lane; k < a.tc; k += lanes) {
    if (column_kind(a, b, a.c0 + k) != kNegative) continue;
    acc_t raw, r, x;
    column_scores(a, b, k, raw, r, x);
    const acc_t e = uses_softmax(kLoss) ? exp_approx(x - m) : acc_t(1);
    s.z += e;
    s.n += acc_t(1);
    negative_terms<kLoss>(r_i, r, e, s.a, s.q, s.t);
  }
  return s;
}

// Raises the row's running maximum to `tile_max` when it is larger, rescaling the running sums.
template <Loss kLoss, typename acc_t>
SEQREC_HOST_DEVICE void raise_max(acc_t* st, acc_t tile_max) {
  if (uses_softmax(kLoss) && tile_max > st[kM]) {
    rescale_stats<kLoss>(st, exp_approx(st[kM] - tile_max));
    st[kM] = tile_max;
  }
}

// Folds the tile's columns into row b's statistics: the tile's maximum first (rescaling the
// running sums once), then the sums. (The CUDA kernel runs these steps with one block per row;
// the CPU has its own vectorised version of them in cpu/sampled_loss_cpu.cpp.)
template <Loss kLoss, typename scalar_t>
SEQREC_HOST_DEVICE void update_row_stats(const TileArgs<scalar_t>& a, int64_t b) {
  using acc_t = typename AccType<scalar_t>::type;
  acc_t* st = a.stats + b * kStats;
  if constexpr (uses_softmax(kLoss)) raise_max<kLoss>(st, tile_max_part<kLoss>(a, b, 0, 1, st[kM]));
  const TileSums<acc_t> s = tile_sums_part<kLoss>(a, b, 0, 1, st[kM], st[kRi]);
  add_stats<kLoss>(st, s.z, s.a, s.q, s.t, s.n);
}

// dL/d(h W^T + b) of row b, tile column k, times the row's upstream gradient.
template <Loss kLoss, typename scalar_t>
SEQREC_HOST_DEVICE void column_grad_element(const TileArgs<scalar_t>& a, int64_t b, int64_t k) {
  using acc_t = typename AccType<scalar_t>::type;
  const int kind = column_kind(a, b, a.c0 + k);
  acc_t g = 0;
  if (kind != kExcluded) {
    acc_t raw, r, x;
    column_scores(a, b, k, raw, r, x);
    const acc_t* st = a.stats + b * kStats;
    g = (kind == kTarget ? target_grad<kLoss>(st, a.bpreg)
                         : negative_grad<kLoss>(row_consts(st, a.bpreg), r, x)) *
        a.row_scale[b];
    if (a.elu_alpha > acc_t(0)) g *= elu_grad(raw, r, a.elu_alpha);
  }
  a.d_scores[b * a.d_scores_stride + k] = static_cast<scalar_t>(g);
}

}  // namespace seqrec::sampled_loss
