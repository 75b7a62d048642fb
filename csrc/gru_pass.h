// The gate passes of the GRU ops: one element (row b, hidden unit j) of each pass, written once
// for the CPU loops (cpu/gru_cpu.cpp) and the CUDA kernels (cuda/gru_cuda.cu). The matrix
// products between the passes are done by the caller (csrc/gru.cpp) with BLAS / cuBLAS.
//
// A pass sees one time step t of a sequence of T steps over B rows, with the lengths and
// resets of common/sequence_pass.h: a padded step leaves the state unchanged and outputs
// zeros; reset[t][b] zeroes row b's state before an active step t.
#pragma once

#include <cstdint>

#include "common/acc_type.h"
#include "common/host_device.h"
#include "common/sequence_pass.h"
#include "gru_math.h"

namespace seqrec::gru {

using seq::ld;
using seq::RowState;

enum class Pass : int {
  kForwardResetAfter,      // gates, h' from gh = h_prev W^T
  kForwardResetBeforeRZ,   // r, z from gh = h_prev W_rz^T; writes r h_prev
  kForwardResetBeforeN,    // n, h' from gh = (r h_prev) W_n^T
  kBackwardResetAfter,     // all gate gradients; d gh
  kBackwardResetBeforeZN,  // z, n gradients
  kBackwardResetBeforeR,   // r gradient from d(r h_prev) = da_n W_n
};

inline constexpr int kPasses = static_cast<int>(Pass::kBackwardResetBeforeR) + 1;

// Raw pointers of one pass. Row b of a matrix X is at X + b * X_stride; its columns are
// contiguous. Pointers a pass does not use may be null; every pointer a pass uses is valid
// (the caller passes zeros for absent biases and gradients). The masks are null when absent.
template <typename scalar_t>
struct PassArgs {
  int64_t B = 0, H = 0, t = 0, T = 1;
  const scalar_t* gi = nullptr;  // (B, 3H) input projections of step t
  int64_t gi_stride = 0;
  const scalar_t* gh = nullptr;  // hidden products of this pass (3H, 2H or H wide)
  int64_t gh_stride = 0;
  const scalar_t* b_ih = nullptr;  // (3H)
  const scalar_t* b_hh = nullptr;  // (3H)
  scalar_t* ws = nullptr;          // workspace of step t: blocks of H (see gru_math.h), h_prev last
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

template <typename scalar_t>
SEQREC_HOST_DEVICE RowState row_state(const PassArgs<scalar_t>& a, int64_t b) {
  return seq::row_state(a.t, a.T, a.B, a.reset, a.lengths, b);
}

// Row b of every matrix a pass touches (null where the pass does not use it). The caller
// guarantees that every pointer a pass uses is valid: absent biases and gradients are passed
// as zeros, so that the element code has no branch but on the row's state.
template <typename scalar_t>
struct Row {
  const scalar_t* __restrict__ gi;
  const scalar_t* __restrict__ gh;
  scalar_t* __restrict__ ws;
  scalar_t* __restrict__ out;
  scalar_t* __restrict__ h_next;
  scalar_t* __restrict__ rh;
  const scalar_t* __restrict__ grad_out;
  const scalar_t* __restrict__ dh_next;
  scalar_t* __restrict__ d_gi;
  scalar_t* __restrict__ d_gh;
  scalar_t* __restrict__ dh;
  const scalar_t* __restrict__ d_rh;
  const scalar_t* __restrict__ b_ih;
  const scalar_t* __restrict__ b_hh;
};

using seq::row_of;

template <typename scalar_t>
SEQREC_HOST_DEVICE Row<scalar_t> row_of(const PassArgs<scalar_t>& a, int64_t b) {
  return Row<scalar_t>{row_of(a.gi, b, a.gi_stride),
                       row_of(a.gh, b, a.gh_stride),
                       row_of(a.ws, b, a.ws_stride),
                       row_of(a.out, b, a.out_stride),
                       row_of(a.h_next, b, a.h_next_stride),
                       row_of(a.rh, b, a.rh_stride),
                       row_of(a.grad_out, b, a.grad_out_stride),
                       row_of(a.dh_next, b, a.dh_next_stride),
                       row_of(a.d_gi, b, a.d_gi_stride),
                       row_of(a.d_gh, b, a.d_gh_stride),
                       row_of(a.dh, b, a.dh_stride),
                       row_of(a.d_rh, b, a.d_rh_stride),
                       a.b_ih,
                       a.b_hh};
}

// The pieces of a pass's element j of row R (below). kActive: whether step t of this row is real
// (a padded step carries the state and the gradient through); kResetNext: the state after the
// step is zeroed. (Template flags rather than arguments: a select on them inside the loop stops
// GCC's vectoriser.) h_prev is the state before the step, as the workspace holds it.

// A gate's pre-activation from both projections and both biases: gi[k] + b_ih[k] + gh[k_gh] +
// b_hh[k] (k_gh differs from k for n before the reset, whose gh holds only the n block).
template <typename acc_t, typename scalar_t>
SEQREC_ELEMENT acc_t preactivation(const Row<scalar_t>& R, int64_t k, int64_t k_gh) {
  return ld<acc_t>(R.gi, k) + ld<acc_t>(R.b_ih, k) + ld<acc_t>(R.gh, k_gh) + ld<acc_t>(R.b_hh, k);
}

template <bool kActive, bool kResetNext, typename scalar_t, typename acc_t>
SEQREC_ELEMENT void forward_reset_after(const Row<scalar_t>& R, int64_t H, int64_t j, acc_t h_prev) {
  acc_t h_new = h_prev;
  if constexpr (kActive) {
    const acc_t gi_n = ld<acc_t>(R.gi, 2 * H + j) + ld<acc_t>(R.b_ih, 2 * H + j);
    const acc_t gh_n = ld<acc_t>(R.gh, 2 * H + j) + ld<acc_t>(R.b_hh, 2 * H + j);
    const Gates<acc_t> g = reset_after_forward(preactivation<acc_t>(R, j, j),
                                               preactivation<acc_t>(R, H + j, H + j), gi_n, gh_n, h_prev);
    R.ws[j] = static_cast<scalar_t>(g.r);
    R.ws[H + j] = static_cast<scalar_t>(g.z);
    R.ws[2 * H + j] = static_cast<scalar_t>(g.n);
    R.ws[3 * H + j] = static_cast<scalar_t>(gh_n);
    h_new = g.h_new;
  } else {
    R.ws[j] = R.ws[H + j] = R.ws[2 * H + j] = R.ws[3 * H + j] = static_cast<scalar_t>(acc_t(0));
  }
  seq::store_output_and_state<kActive, kResetNext>(R.out, R.h_next, j, h_new);
}

template <bool kActive, typename scalar_t, typename acc_t>
SEQREC_ELEMENT void forward_reset_before_rz(const Row<scalar_t>& R, int64_t H, int64_t j, acc_t h_prev) {
  acc_t r(0), z(0);
  if constexpr (kActive) {
    reset_before_forward_rz(preactivation<acc_t>(R, j, j), preactivation<acc_t>(R, H + j, H + j), r, z);
  }
  R.ws[j] = static_cast<scalar_t>(r);
  R.ws[H + j] = static_cast<scalar_t>(z);
  R.rh[j] = static_cast<scalar_t>(r * h_prev);
}

template <bool kActive, bool kResetNext, typename scalar_t, typename acc_t>
SEQREC_ELEMENT void forward_reset_before_n(const Row<scalar_t>& R, int64_t H, int64_t j, acc_t h_prev) {
  acc_t n(0), h_new = h_prev;
  if constexpr (kActive) {
    reset_before_forward_n(preactivation<acc_t>(R, 2 * H + j, j), ld<acc_t>(R.ws, H + j), h_prev, n, h_new);
  }
  R.ws[2 * H + j] = static_cast<scalar_t>(n);
  seq::store_output_and_state<kActive, kResetNext>(R.out, R.h_next, j, h_new);
}

// The backward passes that start a step's gradient return the part of d h_prev they give (a
// padded step passes dh through).
template <bool kActive, typename scalar_t, typename acc_t>
SEQREC_ELEMENT acc_t backward_reset_after(const Row<scalar_t>& R, int64_t H, int64_t j, acc_t h_prev,
                                          acc_t dh) {
  acc_t da_r(0), da_z(0), da_n(0), dgh_n(0), dh_prev = dh;
  if constexpr (kActive) {
    const acc_t r = ld<acc_t>(R.ws, j);
    const ResetAfterGrads<acc_t> g = reset_after_backward(
        dh, r, ld<acc_t>(R.ws, H + j), ld<acc_t>(R.ws, 2 * H + j), ld<acc_t>(R.ws, 3 * H + j), h_prev);
    da_r = g.da_r;
    da_z = g.da_z;
    da_n = g.da_n;
    dgh_n = g.da_n * r;
    dh_prev = g.dh_direct;
  }
  R.d_gi[j] = R.d_gh[j] = static_cast<scalar_t>(da_r);
  R.d_gi[H + j] = R.d_gh[H + j] = static_cast<scalar_t>(da_z);
  R.d_gi[2 * H + j] = static_cast<scalar_t>(da_n);
  R.d_gh[2 * H + j] = static_cast<scalar_t>(dgh_n);
  return dh_prev;
}

template <bool kActive, typename scalar_t, typename acc_t>
SEQREC_ELEMENT acc_t backward_reset_before_zn(const Row<scalar_t>& R, int64_t H, int64_t j, acc_t h_prev,
                                              acc_t dh) {
  acc_t da_z(0), da_n(0), dh_prev = dh;
  if constexpr (kActive) {
    const ResetBeforeGradsZN<acc_t> g =
        reset_before_backward_zn(dh, ld<acc_t>(R.ws, H + j), ld<acc_t>(R.ws, 2 * H + j), h_prev);
    da_z = g.da_z;
    da_n = g.da_n;
    dh_prev = g.dh_direct;
  }
  R.d_gi[H + j] = static_cast<scalar_t>(da_z);
  R.d_gi[2 * H + j] = static_cast<scalar_t>(da_n);
  return dh_prev;
}

template <bool kActive, typename scalar_t, typename acc_t>
SEQREC_ELEMENT void backward_reset_before_r(const Row<scalar_t>& R, int64_t j, acc_t h_prev) {
  acc_t da_r(0);
  if constexpr (kActive) {
    acc_t dh_via_rh;
    reset_before_backward_r(ld<acc_t>(R.d_rh, j), ld<acc_t>(R.ws, j), h_prev, da_r, dh_via_rh);
    R.dh[j] = static_cast<scalar_t>(ld<acc_t>(R.dh, j) + dh_via_rh);
  }
  R.d_gi[j] = static_cast<scalar_t>(da_r);
}

// Element j of row R in pass kPass.
template <Pass kPass, bool kActive, bool kResetNext, typename scalar_t>
SEQREC_ELEMENT void gate_pass_element(const Row<scalar_t>& R, int64_t H, int64_t j) {
  using acc_t = typename AccType<scalar_t>::type;
  constexpr bool kResetAfter = kPass == Pass::kForwardResetAfter || kPass == Pass::kBackwardResetAfter;
  constexpr int kBlocks = kResetAfter ? kBlocksResetAfter : kBlocksResetBefore;
  const acc_t h_prev = ld<acc_t>(R.ws, (kBlocks - 1) * H + j);
  if constexpr (kPass == Pass::kForwardResetAfter) {
    forward_reset_after<kActive, kResetNext>(R, H, j, h_prev);
  } else if constexpr (kPass == Pass::kForwardResetBeforeRZ) {
    forward_reset_before_rz<kActive>(R, H, j, h_prev);
  } else if constexpr (kPass == Pass::kForwardResetBeforeN) {
    forward_reset_before_n<kActive, kResetNext>(R, H, j, h_prev);
  } else if constexpr (kPass == Pass::kBackwardResetAfter) {
    const acc_t dh = seq::incoming_grad<kActive, kResetNext, acc_t>(R.dh_next, R.grad_out, j);
    R.dh[j] = static_cast<scalar_t>(backward_reset_after<kActive>(R, H, j, h_prev, dh));
  } else if constexpr (kPass == Pass::kBackwardResetBeforeZN) {
    const acc_t dh = seq::incoming_grad<kActive, kResetNext, acc_t>(R.dh_next, R.grad_out, j);
    R.dh[j] = static_cast<scalar_t>(backward_reset_before_zn<kActive>(R, H, j, h_prev, dh));
  } else {
    backward_reset_before_r<kActive>(R, j, h_prev);
  }
}

// The element of pass kPass as the row loops (cpu/row_loop.h) and the CUDA kernels
// (common/sequence_pass.h: seq::run_element) take it.
template <Pass kPass>
struct GatePassElement {
  template <bool kActive, bool kResetNext, typename scalar_t>
  SEQREC_ELEMENT static void apply(const Row<scalar_t>& row, int64_t H, int64_t j) {
    gate_pass_element<kPass, kActive, kResetNext>(row, H, j);
  }
};

}  // namespace seqrec::gru
