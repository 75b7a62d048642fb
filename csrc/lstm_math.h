// Per-element math of the LSTM op, shared by the CPU and CUDA kernels: torch.nn.LSTM's cell.
//
// Gate order in every 4H-wide tensor (input projection gi, hidden product gh, weight rows of
// w_hh, biases): i (input) in [0, H), f (forget) in [H, 2H), g (cell candidate) in [2H, 3H),
// o (output) in [3H, 4H), as torch.nn.LSTM's weight_ih_l0 / weight_hh_l0 / bias_ih_l0 /
// bias_hh_l0 lay them out. With a = gi + b_ih + h W^T + b_hh (gh = h W^T):
//   i = s(a_i), f = s(a_f), g = tanh(a_g), o = s(a_o), c' = f c + i g, h' = o tanh(c').
// The callers load values (adding the biases) and store results; these functions are the
// arithmetic only. acc_t is float for float/half/bfloat16 data, double for double. They are
// SEQREC_ELEMENT (always inlined), as common/fast_math.h's are: with five transcendentals a
// cell is past what GCC inlines by itself, and a call inside the CPU row loop stops its
// vectorisation.
#pragma once

#include "common/fast_math.h"
#include "common/host_device.h"

namespace seqrec::lstm {

// Workspace saved by the forward for the backward, per row and step, in blocks of H: the
// activated gates i, f, g, o, then the state before the step c_prev, h_prev (h_prev last: the
// weight gradient reads it for all steps at once). tanh(c') is recomputed by the backward.
constexpr int kGateI = 0, kGateF = 1, kGateG = 2, kGateO = 3, kCPrev = 4, kHPrev = 5;
constexpr int kBlocks = 6;
constexpr int kGates = 4;

template <typename acc_t>
struct Cell {
  acc_t i, f, g, o, c, h;
};

// The new cell state from the gates (one expression for the forward and the backward's
// recomputation).
template <typename acc_t>
SEQREC_ELEMENT acc_t cell_state(acc_t i, acc_t f, acc_t g, acc_t c_prev) {
  return f * c_prev + i * g;
}

// a_*: the full pre-activations of the four gates.
template <typename acc_t>
SEQREC_ELEMENT Cell<acc_t> cell_forward(acc_t a_i, acc_t a_f, acc_t a_g, acc_t a_o, acc_t c_prev) {
  Cell<acc_t> s;
  s.i = sigmoid(a_i);
  s.f = sigmoid(a_f);
  s.g = tanh_approx(a_g);
  s.o = sigmoid(a_o);
  s.c = cell_state(s.i, s.f, s.g, c_prev);
  s.h = s.o * tanh_approx(s.c);
  return s;
}

template <typename acc_t>
struct CellGrads {
  acc_t da_i, da_f, da_g, da_o;  // d of the pre-activations (= d gi = d gh = d of both biases)
  acc_t dc_prev;                 // d c_prev (h_prev's gradient is da W, a matrix product)
};

// dh, dc: the gradients arriving at h' and c'.
template <typename acc_t>
SEQREC_ELEMENT CellGrads<acc_t> cell_backward(acc_t dh, acc_t dc, acc_t i, acc_t f, acc_t g, acc_t o,
                                              acc_t c_prev) {
  const acc_t tc = tanh_approx(cell_state(i, f, g, c_prev));
  const acc_t dc_total = dc + dh * o * (acc_t(1) - tc * tc);
  CellGrads<acc_t> d;
  d.da_i = dc_total * g * i * (acc_t(1) - i);
  d.da_f = dc_total * c_prev * f * (acc_t(1) - f);
  d.da_g = dc_total * i * (acc_t(1) - g * g);
  d.da_o = dh * tc * o * (acc_t(1) - o);
  d.dc_prev = dc_total * f;
  return d;
}

}  // namespace seqrec::lstm
