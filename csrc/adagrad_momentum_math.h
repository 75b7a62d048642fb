// Per-element math of the Adagrad-with-momentum update (GRU4Rec's optimizer), shared
// by the CPU loops and the CUDA kernels:
//   acc += g^2;  mom = mu * mom - lr * g / sqrt(acc + eps);  p += mom
// (mu = 0: plain Adagrad). The sparse-row op applies it to the touched rows of a table only,
// after summing the gradients of duplicate rows (on CUDA in the kernel, from the sorted rows).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"

namespace seqrec::adagrad {

template <typename acc_t>
SEQREC_HOST_DEVICE void update(acc_t& p, acc_t& acc, acc_t& mom, acc_t g, acc_t lr, acc_t mu, acc_t eps) {
  acc += g * g;
  // std::sqrt, not ::sqrt: the latter is the C library's double sqrt, which made the float
  // update convert to double, divide and convert back (measured: half the CPU row update)
  mom = mu * mom - lr * g / std::sqrt(acc + eps);
  p += mom;
}

// Row r of the table (its D values at param + row * D etc.) gets the summed gradient row k.
template <typename scalar_t>
struct RowsArgs {
  scalar_t* param = nullptr;       // (N, D)
  scalar_t* acc = nullptr;         // (N, D)
  scalar_t* mom = nullptr;         // (N, D)
  const scalar_t* grad = nullptr;  // (U, D) summed gradients of the touched rows
  const int64_t* rows = nullptr;   // (U) distinct row indices; null: grad row k is table row k
  int64_t U = 0, D = 0;
  double lr = 0, mu = 0, eps = 0;
  // The sorted form (CUDA): `rows` are the U row indices of the U gradient rows, duplicates
  // included, sorted stably, and order[j] is the gradient row of rows[j] (update_run_element).
  const int64_t* order = nullptr;
  int64_t N = 0;  // the table's rows (the sorted form's device-side bounds check)
  // A flag in the kernels' memory: when set and true, nothing is updated (the fused training
  // step's non-finite loss, decided on the device without a copy to the host). Null: update.
  const bool* skip = nullptr;
};

template <typename scalar_t>
SEQREC_HOST_DEVICE void update_at(const RowsArgs<scalar_t>& a, int64_t i, scalar_t g) {
  using acc_t = scalar_t;
  acc_t p = a.param[i], acc = a.acc[i], mom = a.mom[i];
  update<acc_t>(p, acc, mom, g, static_cast<acc_t>(a.lr), static_cast<acc_t>(a.mu),
                static_cast<acc_t>(a.eps));
  a.param[i] = p;
  a.acc[i] = acc;
  a.mom[i] = mom;
}

template <typename scalar_t>
SEQREC_HOST_DEVICE void update_element(const RowsArgs<scalar_t>& a, int64_t k, int64_t d) {
  if (a.skip != nullptr && *a.skip) return;
  const int64_t row = a.rows ? a.rows[k] : k;
  update_at(a, row * a.D + d, a.grad[k * a.D + d]);
}

// Value d of sorted position k in the sorted form: the first position of each run of one row
// sums the run's gradients in their original order (the sort is stable) and updates the row;
// the other positions do nothing. No two calls write one element, so no atomics are needed and
// the sums do not depend on scheduling.
template <typename scalar_t>
SEQREC_HOST_DEVICE void update_run_element(const RowsArgs<scalar_t>& a, int64_t k, int64_t d) {
  if (a.skip != nullptr && *a.skip) return;
  const int64_t row = a.rows[k];
  if (k > 0 && a.rows[k - 1] == row) return;
  scalar_t g = a.grad[a.order[k] * a.D + d];
  for (int64_t j = k + 1; j < a.U && a.rows[j] == row; ++j) g += a.grad[a.order[j] * a.D + d];
  update_at(a, row * a.D + d, g);
}

}  // namespace seqrec::adagrad
