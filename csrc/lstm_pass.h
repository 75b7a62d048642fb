// The cell passes of the LSTM op: one element (row b, hidden unit j) of the forward and the
// backward pass of a step, written once for the CPU loops (cpu/lstm_cpu.cpp) and the CUDA
// kernels (cuda/lstm_cuda.cu). The matrix products between the passes are done by the caller
// (csrc/lstm.cpp) with BLAS / cuBLAS.
//
// A pass sees one time step t of a sequence of T steps over B rows, with the lengths and
// resets of common/sequence_pass.h: a padded step leaves the state (h and c) unchanged and
// outputs zeros; reset[t][b] zeroes row b's h and c before an active step t.
#pragma once

#include <cstdint>

#include "common/acc_type.h"
#include "common/host_device.h"
#include "common/sequence_pass.h"
#include "lstm_math.h"

namespace seqrec::lstm {

using seq::ld;

enum class Pass : int {
  kForward,   // gates, c', h' from gh = h_prev W^T
  kBackward,  // the gates' gradients, d c_prev; d h_prev's part that is not da W
};

inline constexpr int kPasses = static_cast<int>(Pass::kBackward) + 1;

// Raw pointers of one pass. The (B, 4H) and (B, H) matrices are contiguous (rows 4H and H
// apart), except the workspace (rows ws_stride apart) and the state after the step (rows
// next_stride apart: the next step's workspace, or h_last and c_last). Pointers a pass does not
// use may be null; every pointer a pass uses is valid (the caller passes zeros for absent
// gradients). The masks are null when absent.
template <typename scalar_t>
struct PassArgs {
  using acc_t = typename AccType<scalar_t>::type;
  int64_t B = 0, H = 0, t = 0, T = 1;
  const scalar_t* gi = nullptr;  // (B, 4H) input projections of step t
  const scalar_t* gh = nullptr;  // (B, 4H) h_prev W^T
  const acc_t* bias = nullptr;   // (4H) b_ih + b_hh, in the accumulation type
  scalar_t* ws = nullptr;        // workspace of step t: blocks of H (lstm_math.h)
  int64_t ws_stride = 0;
  scalar_t* out = nullptr;     // (B, H) output of step t
  scalar_t* h_next = nullptr;  // the state after step t (the next step's h_prev, c_prev)
  scalar_t* c_next = nullptr;
  int64_t next_stride = 0;
  // backward
  const scalar_t* grad_out = nullptr;  // (B, H) gradient of out[t]
  const scalar_t* dh_next = nullptr;   // (B, H) gradients of the state after step t
  const scalar_t* dc_next = nullptr;
  scalar_t* d_gates = nullptr;  // (B, 4H) d of the pre-activations: d gi = d gh
  scalar_t* dh = nullptr;       // (B, H) d h_prev but for da W (a padded step's carried gradient, else 0)
  scalar_t* dc = nullptr;       // (B, H) d c_prev
  const bool* reset = nullptr;  // (T, B)
  const int64_t* lengths = nullptr;  // (B)
};

template <typename scalar_t>
SEQREC_HOST_DEVICE seq::RowState row_state(const PassArgs<scalar_t>& a, int64_t b) {
  return seq::row_state(a.t, a.T, a.B, a.reset, a.lengths, b);
}

// Row b of every matrix a pass touches (null where the pass does not use it).
template <typename scalar_t>
struct Row {
  using acc_t = typename AccType<scalar_t>::type;
  const scalar_t* __restrict__ gi;
  const scalar_t* __restrict__ gh;
  const acc_t* __restrict__ bias;
  scalar_t* __restrict__ ws;
  scalar_t* __restrict__ out;
  scalar_t* __restrict__ h_next;
  scalar_t* __restrict__ c_next;
  const scalar_t* __restrict__ grad_out;
  const scalar_t* __restrict__ dh_next;
  const scalar_t* __restrict__ dc_next;
  scalar_t* __restrict__ d_gates;
  scalar_t* __restrict__ dh;
  scalar_t* __restrict__ dc;
};

template <typename scalar_t>
SEQREC_HOST_DEVICE Row<scalar_t> row_of(const PassArgs<scalar_t>& a, int64_t b) {
  using seq::row_of;
  const int64_t G = kGates * a.H;
  return Row<scalar_t>{row_of(a.gi, b, G),
                       row_of(a.gh, b, G),
                       a.bias,
                       row_of(a.ws, b, a.ws_stride),
                       row_of(a.out, b, a.H),
                       row_of(a.h_next, b, a.next_stride),
                       row_of(a.c_next, b, a.next_stride),
                       row_of(a.grad_out, b, a.H),
                       row_of(a.dh_next, b, a.H),
                       row_of(a.dc_next, b, a.H),
                       row_of(a.d_gates, b, G),
                       row_of(a.dh, b, a.H),
                       row_of(a.dc, b, a.H)};
}

// The pieces of element j of row R (below). kActive: whether step t of this row is real (a
// padded step carries the state and the gradient through); kResetNext: the state after the
// step is zeroed. (Template flags rather than arguments: a select on them inside the loop stops
// GCC's vectoriser.)

// Gate k's pre-activation: gi + gh + (b_ih + b_hh).
template <typename acc_t, typename scalar_t>
SEQREC_ELEMENT acc_t preactivation(const Row<scalar_t>& R, int64_t k) {
  return ld<acc_t>(R.gi, k) + ld<acc_t>(R.gh, k) + R.bias[k];
}

template <bool kActive, bool kResetNext, typename scalar_t>
SEQREC_ELEMENT void forward_element(const Row<scalar_t>& R, int64_t H, int64_t j) {
  using acc_t = typename AccType<scalar_t>::type;
  // a padded step carries the state before it
  acc_t h_new = ld<acc_t>(R.ws, kHPrev * H + j), c_new = ld<acc_t>(R.ws, kCPrev * H + j);
  Cell<acc_t> s{};
  if constexpr (kActive) {
    s = cell_forward(preactivation<acc_t>(R, kGateI * H + j), preactivation<acc_t>(R, kGateF * H + j),
                     preactivation<acc_t>(R, kGateG * H + j), preactivation<acc_t>(R, kGateO * H + j), c_new);
    h_new = s.h;
    c_new = s.c;
  }
  R.ws[kGateI * H + j] = static_cast<scalar_t>(s.i);
  R.ws[kGateF * H + j] = static_cast<scalar_t>(s.f);
  R.ws[kGateG * H + j] = static_cast<scalar_t>(s.g);
  R.ws[kGateO * H + j] = static_cast<scalar_t>(s.o);
  seq::store_output_and_state<kActive, kResetNext>(R.out, R.h_next, j, h_new);
  R.c_next[j] = static_cast<scalar_t>(kResetNext ? acc_t(0) : c_new);
}

template <bool kActive, bool kResetNext, typename scalar_t>
SEQREC_ELEMENT void backward_element(const Row<scalar_t>& R, int64_t H, int64_t j) {
  using acc_t = typename AccType<scalar_t>::type;
  const acc_t dh = seq::incoming_grad<kActive, kResetNext, acc_t>(R.dh_next, R.grad_out, j);
  const acc_t dc = kResetNext ? acc_t(0) : ld<acc_t>(R.dc_next, j);
  // a padded step passes both gradients through and has none of its own
  CellGrads<acc_t> d{acc_t(0), acc_t(0), acc_t(0), acc_t(0), dc};
  acc_t dh_carried = dh;
  if constexpr (kActive) {
    d = cell_backward(dh, dc, ld<acc_t>(R.ws, kGateI * H + j), ld<acc_t>(R.ws, kGateF * H + j),
                      ld<acc_t>(R.ws, kGateG * H + j), ld<acc_t>(R.ws, kGateO * H + j),
                      ld<acc_t>(R.ws, kCPrev * H + j));
    dh_carried = acc_t(0);
  }
  R.d_gates[kGateI * H + j] = static_cast<scalar_t>(d.da_i);
  R.d_gates[kGateF * H + j] = static_cast<scalar_t>(d.da_f);
  R.d_gates[kGateG * H + j] = static_cast<scalar_t>(d.da_g);
  R.d_gates[kGateO * H + j] = static_cast<scalar_t>(d.da_o);
  R.dh[j] = static_cast<scalar_t>(dh_carried);
  R.dc[j] = static_cast<scalar_t>(d.dc_prev);
}

// The element of pass kPass as the row loops (cpu/row_loop.h) and the CUDA kernels
// (common/sequence_pass.h: seq::run_element) take it.
template <Pass kPass>
struct PassElement {
  template <bool kActive, bool kResetNext, typename scalar_t>
  SEQREC_ELEMENT static void apply(const Row<scalar_t>& row, int64_t H, int64_t j) {
    if constexpr (kPass == Pass::kForward) {
      forward_element<kActive, kResetNext>(row, H, j);
    } else {
      backward_element<kActive, kResetNext>(row, H, j);
    }
  }
};

}  // namespace seqrec::lstm
