// CPU tile passes of the fused sampled ranking loss: rows in parallel.
#include "cpu/sampled_loss_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace seqrec::cpu {
namespace {

int64_t row_grain(int64_t tc) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, tc)); }

template <typename scalar_t>
void update_stats_impl(const sampled_loss::TileArgs<scalar_t>& a) {
  at::parallel_for(0, a.B, row_grain(a.tc), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) sampled_loss::update_row_stats(a, b);
  });
}

template <typename scalar_t>
void column_grads_impl(const sampled_loss::TileArgs<scalar_t>& a) {
  at::parallel_for(0, a.B, row_grain(a.tc), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t k = 0; k < a.tc; ++k) sampled_loss::column_grad_element(a, b, k);
    }
  });
}

template <typename acc_t>
void row_losses_impl(const acc_t* stats, int64_t B, sampled_loss::Loss loss, acc_t bpreg, acc_t* out) {
  for (int64_t b = 0; b < B; ++b) out[b] = sampled_loss::row_loss(loss, stats + b * sampled_loss::kStats, bpreg);
}

}  // namespace

void row_losses(const float* st, int64_t B, sampled_loss::Loss loss, float bpreg, float* out) {
  row_losses_impl(st, B, loss, bpreg, out);
}
void row_losses(const double* st, int64_t B, sampled_loss::Loss loss, double bpreg, double* out) {
  row_losses_impl(st, B, loss, bpreg, out);
}

void update_stats(const sampled_loss::TileArgs<float>& a) { update_stats_impl(a); }
void update_stats(const sampled_loss::TileArgs<double>& a) { update_stats_impl(a); }
void column_grads(const sampled_loss::TileArgs<float>& a) { column_grads_impl(a); }
void column_grads(const sampled_loss::TileArgs<double>& a) { column_grads_impl(a); }

}  // namespace seqrec::cpu
