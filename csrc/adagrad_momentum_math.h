// Per-element math of the Adagrad-with-momentum update (GRU4Rec's optimizer), shared
// by the CPU loops and the CUDA kernels:
//   acc += g^2;  mom = mu * mom - lr * g / sqrt(acc + eps);  p += mom
// (mu = 0: plain Adagrad). The sparse-row op applies it to the touched rows of a table only,
// after summing the gradients of duplicate rows.
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
};

template <typename scalar_t>
SEQREC_HOST_DEVICE void update_element(const RowsArgs<scalar_t>& a, int64_t k, int64_t d) {
  const int64_t row = a.rows ? a.rows[k] : k;
  const int64_t i = row * a.D + d;
  using acc_t = scalar_t;
  acc_t p = a.param[i], acc = a.acc[i], mom = a.mom[i];
  update<acc_t>(p, acc, mom, a.grad[k * a.D + d], static_cast<acc_t>(a.lr), static_cast<acc_t>(a.mu),
                static_cast<acc_t>(a.eps));
  a.param[i] = p;
  a.acc[i] = acc;
  a.mom[i] = mom;
}

}  // namespace seqrec::adagrad
