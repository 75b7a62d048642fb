// The gate passes of the GRU ops: one element (row b, hidden unit j) of each pass, written once
// for the CPU loops (cpu/gru_cpu.cpp) and the CUDA kernels (cuda/gru_cuda.cu). The matrix
// products between the passes are done by the caller (csrc/gru.cpp) with BLAS / cuBLAS.
//
// A pass sees one time step t of a sequence of T steps over B rows. Row b's step is "active"
// when t < lengths[b] (all steps are active without lengths); a padded step leaves the state
// unchanged and outputs zeros. reset[t][b] zeroes row b's state before an active step t.
#pragma once

#include <cstdint>

#include "common/host_device.h"
#include "gru.h"

namespace seqrec::gru {

enum class Pass : int {
  kForwardResetAfter,     // gates, h' from gh = h_prev W^T
  kForwardResetBeforeRZ,  // r, z from gh = h_prev W_rz^T; writes r h_prev
  kForwardResetBeforeN,   // n, h' from gh = (r h_prev) W_n^T
  kBackwardResetAfter,    // all gate gradients; d gh
  kBackwardResetBeforeZN, // z, n gradients
  kBackwardResetBeforeR,  // r gradient from d(r h_prev) = da_n W_n
};

template <typename T>
struct AccType {
  using type = float;  // half and bfloat16 compute in float
};
template <>
struct AccType<double> {
  using type = double;
};

// Raw pointers of one pass. Row b of a matrix X is at X + b * X_stride; its columns are
// contiguous. Pointers a pass does not use may be null; optional inputs (biases, masks,
// gradients of unused outputs) are null when absent.
template <typename scalar_t>
struct PassArgs {
  int64_t B = 0, H = 0, t = 0, T = 1;
  const scalar_t* gi = nullptr;  // (B, 3H) input projections of step t
  int64_t gi_stride = 0;
  const scalar_t* gh = nullptr;  // hidden products of this pass (3H, 2H or H wide)
  int64_t gh_stride = 0;
  const scalar_t* b_ih = nullptr;  // (3H)
  const scalar_t* b_hh = nullptr;  // (3H)
  scalar_t* ws = nullptr;  // workspace of step t: blocks of H (see gru.h), h_prev last
  int64_t ws_stride = 0;
  scalar_t* out = nullptr;  // (B, H) output of step t
  int64_t out_stride = 0;
  scalar_t* h_next = nullptr;  // (B, H) state after step t (next step's h_prev, or h_last)
  int64_t h_next_stride = 0;
  scalar_t* rh = nullptr;  // (B, H) r * h_prev (reset_before)
  int64_t rh_stride = 0;
  // backward
  const scalar_t* grad_out = nullptr;  // (B, H) gradient of out[t]
  int64_t grad_out_stride = 0;
  const scalar_t* dh_next = nullptr;  // (B, H) gradient of the state after step t
  int64_t dh_next_stride = 0;
  scalar_t* d_gi = nullptr;  // (B, 3H)
  int64_t d_gi_stride = 0;
  scalar_t* d_gh = nullptr;  // (B, 3H) reset_after
  int64_t d_gh_stride = 0;
  scalar_t* dh = nullptr;  // (B, H) gradient of h_prev (the part computed by the pass)
  int64_t dh_stride = 0;
  const scalar_t* d_rh = nullptr;  // (B, H) reset_before: da_n W_n
  int64_t d_rh_stride = 0;
  const bool* reset = nullptr;       // (T, B)
  const int64_t* lengths = nullptr;  // (B)
};

struct RowState {
  bool active;      // step t of this row is a real step
  bool reset_next;  // the state after step t is zeroed before step t + 1
};

template <typename scalar_t>
SEQREC_HOST_DEVICE RowState row_state(const PassArgs<scalar_t>& a, int64_t b) {
  const int64_t len = a.lengths ? a.lengths[b] : a.T;
  RowState s;
  s.active = a.t < len;
  s.reset_next = a.reset != nullptr && a.t + 1 < a.T && a.t + 1 < len && a.reset[(a.t + 1) * a.B + b];
  return s;
}

template <typename acc_t, typename scalar_t>
SEQREC_HOST_DEVICE acc_t bias(const scalar_t* b, int64_t k) {
  return b ? static_cast<acc_t>(b[k]) : acc_t(0);
}

template <Pass kPass, typename scalar_t>
SEQREC_HOST_DEVICE void gate_pass_element(const PassArgs<scalar_t>& a, RowState s, int64_t b,
                                          int64_t j) {
  using acc_t = typename AccType<scalar_t>::type;
  const int64_t H = a.H;
  const acc_t zero(0);
  const int blocks = (kPass == Pass::kForwardResetAfter || kPass == Pass::kBackwardResetAfter)
                         ? kBlocksResetAfter
                         : kBlocksResetBefore;
  scalar_t* ws = a.ws + b * a.ws_stride;
  const acc_t h_prev = static_cast<acc_t>(ws[(blocks - 1) * H + j]);

  if constexpr (kPass == Pass::kForwardResetAfter) {
    const scalar_t* gi = a.gi + b * a.gi_stride;
    const scalar_t* gh = a.gh + b * a.gh_stride;
    acc_t h_new = h_prev;
    if (s.active) {
      const acc_t a_r = static_cast<acc_t>(gi[j]) + bias<acc_t>(a.b_ih, j) +
                        static_cast<acc_t>(gh[j]) + bias<acc_t>(a.b_hh, j);
      const acc_t a_z = static_cast<acc_t>(gi[H + j]) + bias<acc_t>(a.b_ih, H + j) +
                        static_cast<acc_t>(gh[H + j]) + bias<acc_t>(a.b_hh, H + j);
      const acc_t gi_n = static_cast<acc_t>(gi[2 * H + j]) + bias<acc_t>(a.b_ih, 2 * H + j);
      const acc_t gh_n = static_cast<acc_t>(gh[2 * H + j]) + bias<acc_t>(a.b_hh, 2 * H + j);
      const Gates<acc_t> g = reset_after_forward(a_r, a_z, gi_n, gh_n, h_prev);
      ws[j] = static_cast<scalar_t>(g.r);
      ws[H + j] = static_cast<scalar_t>(g.z);
      ws[2 * H + j] = static_cast<scalar_t>(g.n);
      ws[3 * H + j] = static_cast<scalar_t>(gh_n);
      h_new = g.h_new;
    } else {
      ws[j] = ws[H + j] = ws[2 * H + j] = ws[3 * H + j] = static_cast<scalar_t>(zero);
    }
    if (a.out) a.out[b * a.out_stride + j] = static_cast<scalar_t>(s.active ? h_new : zero);
    if (a.h_next) a.h_next[b * a.h_next_stride + j] = static_cast<scalar_t>(s.reset_next ? zero : h_new);
  } else if constexpr (kPass == Pass::kForwardResetBeforeRZ) {
    const scalar_t* gi = a.gi + b * a.gi_stride;
    const scalar_t* gh = a.gh + b * a.gh_stride;
    acc_t r = zero, z = zero;
    if (s.active) {
      const acc_t a_r = static_cast<acc_t>(gi[j]) + bias<acc_t>(a.b_ih, j) +
                        static_cast<acc_t>(gh[j]) + bias<acc_t>(a.b_hh, j);
      const acc_t a_z = static_cast<acc_t>(gi[H + j]) + bias<acc_t>(a.b_ih, H + j) +
                        static_cast<acc_t>(gh[H + j]) + bias<acc_t>(a.b_hh, H + j);
      reset_before_forward_rz(a_r, a_z, r, z);
    }
    ws[j] = static_cast<scalar_t>(r);
    ws[H + j] = static_cast<scalar_t>(z);
    a.rh[b * a.rh_stride + j] = static_cast<scalar_t>(r * h_prev);
  } else if constexpr (kPass == Pass::kForwardResetBeforeN) {
    acc_t n = zero, h_new = h_prev;
    if (s.active) {
      const scalar_t* gi = a.gi + b * a.gi_stride;
      const acc_t a_n = static_cast<acc_t>(gi[2 * H + j]) + bias<acc_t>(a.b_ih, 2 * H + j) +
                        static_cast<acc_t>(a.gh[b * a.gh_stride + j]) +
                        bias<acc_t>(a.b_hh, 2 * H + j);
      reset_before_forward_n(a_n, static_cast<acc_t>(ws[H + j]), h_prev, n, h_new);
    }
    ws[2 * H + j] = static_cast<scalar_t>(n);
    if (a.out) a.out[b * a.out_stride + j] = static_cast<scalar_t>(s.active ? h_new : zero);
    if (a.h_next) a.h_next[b * a.h_next_stride + j] = static_cast<scalar_t>(s.reset_next ? zero : h_new);
  } else if constexpr (kPass == Pass::kBackwardResetAfter || kPass == Pass::kBackwardResetBeforeZN) {
    // gradient arriving at h' of step t: from the next state (unless it was reset) and out[t]
    acc_t dh = zero;
    if (a.dh_next && !s.reset_next) dh = static_cast<acc_t>(a.dh_next[b * a.dh_next_stride + j]);
    if (a.grad_out && s.active) dh += static_cast<acc_t>(a.grad_out[b * a.grad_out_stride + j]);
    scalar_t* d_gi = a.d_gi + b * a.d_gi_stride;
    acc_t dh_prev = dh;  // a padded step passes the gradient through
    if constexpr (kPass == Pass::kBackwardResetAfter) {
      scalar_t* d_gh = a.d_gh + b * a.d_gh_stride;
      acc_t da_r = zero, da_z = zero, da_n = zero, dgh_n = zero;
      if (s.active) {
        const acc_t r = static_cast<acc_t>(ws[j]);
        const ResetAfterGrads<acc_t> g =
            reset_after_backward(dh, r, static_cast<acc_t>(ws[H + j]),
                                 static_cast<acc_t>(ws[2 * H + j]),
                                 static_cast<acc_t>(ws[3 * H + j]), h_prev);
        da_r = g.da_r;
        da_z = g.da_z;
        da_n = g.da_n;
        dgh_n = g.da_n * r;
        dh_prev = g.dh_direct;
      }
      d_gi[j] = d_gh[j] = static_cast<scalar_t>(da_r);
      d_gi[H + j] = d_gh[H + j] = static_cast<scalar_t>(da_z);
      d_gi[2 * H + j] = static_cast<scalar_t>(da_n);
      d_gh[2 * H + j] = static_cast<scalar_t>(dgh_n);
    } else {
      acc_t da_z = zero, da_n = zero;
      if (s.active) {
        const ResetBeforeGradsZN<acc_t> g = reset_before_backward_zn(
            dh, static_cast<acc_t>(ws[H + j]), static_cast<acc_t>(ws[2 * H + j]), h_prev);
        da_z = g.da_z;
        da_n = g.da_n;
        dh_prev = g.dh_direct;
      }
      d_gi[H + j] = static_cast<scalar_t>(da_z);
      d_gi[2 * H + j] = static_cast<scalar_t>(da_n);
    }
    a.dh[b * a.dh_stride + j] = static_cast<scalar_t>(dh_prev);
  } else if constexpr (kPass == Pass::kBackwardResetBeforeR) {
    acc_t da_r = zero;
    if (s.active) {
      acc_t dh_via_rh;
      reset_before_backward_r(static_cast<acc_t>(a.d_rh[b * a.d_rh_stride + j]),
                              static_cast<acc_t>(ws[j]), h_prev, da_r, dh_via_rh);
      scalar_t* dh = a.dh + b * a.dh_stride + j;
      *dh = static_cast<scalar_t>(static_cast<acc_t>(*dh) + dh_via_rh);
    }
    a.d_gi[b * a.d_gi_stride + j] = static_cast<scalar_t>(da_r);
  }
}

}  // namespace seqrec::gru
