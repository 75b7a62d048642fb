// Per-element math of the GRU ops (both cells below), shared by the CPU and CUDA kernels.
//
// Gate order in every 3H-wide tensor (input projection gi, hidden product gh, weight rows of
// w_hh, biases): r (reset) in [0, H), z (update) in [H, 2H), n (candidate) in [2H, 3H), as in
// torch.nn.GRU. The callers load values (adding the biases) and store results; these
// functions are the arithmetic only. acc_t is float for float/half/bfloat16 data, double for
// double.
//
// reset_after (cuDNN, torch.nn.GRUCell):
//   r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r * gh_n), h' = (1 - z) n + z h
//   where gh = h W^T + b_hh.
// reset_before (GRU4Rec's own cell):
//   r = s(gi_r + (h W_r^T)), z = s(gi_z + (h W_z^T)), n = tanh(gi_n + (r h) W_n^T),
//   h' = (1 - z) h + z n.
#pragma once

#include "common/fast_math.h"
#include "common/host_device.h"

namespace seqrec::gru {

// Workspace saved by the forward for the backward, per row, in blocks of H:
//   reset_before: r, z, n, h_prev                (kBlocksResetBefore = 4)
//   reset_after:  r, z, n, gh_n (incl. b_hh), h_prev   (kBlocksResetAfter = 5)
constexpr int kBlocksResetBefore = 4;
constexpr int kBlocksResetAfter = 5;
SEQREC_HOST_DEVICE int workspace_blocks(bool reset_after) {
  return reset_after ? kBlocksResetAfter : kBlocksResetBefore;
}

template <typename acc_t>
struct Gates {
  acc_t r, z, n, h_new;
};

// a_r, a_z: full pre-activations of r and z; gi_n: input part of n's pre-activation (with
// b_ih); gh_n: hidden part (with b_hh).
template <typename acc_t>
SEQREC_HOST_DEVICE Gates<acc_t> reset_after_forward(acc_t a_r, acc_t a_z, acc_t gi_n, acc_t gh_n,
                                                    acc_t h_prev) {
  Gates<acc_t> g;
  g.r = sigmoid(a_r);
  g.z = sigmoid(a_z);
  g.n = tanh_approx(gi_n + g.r * gh_n);
  g.h_new = (acc_t(1) - g.z) * g.n + g.z * h_prev;
  return g;
}

// Phase 1 of reset_before: r and z from their full pre-activations.
template <typename acc_t>
SEQREC_HOST_DEVICE void reset_before_forward_rz(acc_t a_r, acc_t a_z, acc_t& r, acc_t& z) {
  r = sigmoid(a_r);
  z = sigmoid(a_z);
}

// Phase 2 of reset_before: n from its full pre-activation gi_n + (r h) W_n^T, and h'.
template <typename acc_t>
SEQREC_HOST_DEVICE void reset_before_forward_n(acc_t a_n, acc_t z, acc_t h_prev, acc_t& n, acc_t& h_new) {
  n = tanh_approx(a_n);
  h_new = (acc_t(1) - z) * h_prev + z * n;
}

template <typename acc_t>
struct ResetAfterGrads {
  acc_t da_r, da_z, da_n;  // d gi (= d of the pre-activations); d gh = (da_r, da_z, da_n * r)
  acc_t dh_direct;         // d h_prev through h' = ... + z h (the rest comes through gh)
};

template <typename acc_t>
SEQREC_HOST_DEVICE ResetAfterGrads<acc_t> reset_after_backward(acc_t dh, acc_t r, acc_t z, acc_t n,
                                                               acc_t gh_n, acc_t h_prev) {
  ResetAfterGrads<acc_t> g;
  const acc_t dn = dh * (acc_t(1) - z);
  const acc_t dz = dh * (h_prev - n);
  g.da_n = dn * (acc_t(1) - n * n);
  g.da_r = g.da_n * gh_n * r * (acc_t(1) - r);
  g.da_z = dz * z * (acc_t(1) - z);
  g.dh_direct = dh * z;
  return g;
}

template <typename acc_t>
struct ResetBeforeGradsZN {
  acc_t da_z, da_n;  // d of z's and n's pre-activations
  acc_t dh_direct;   // d h_prev through h' = (1 - z) h + ...
};

// Phase 1 of the reset_before backward: everything that does not need d(r h).
template <typename acc_t>
SEQREC_HOST_DEVICE ResetBeforeGradsZN<acc_t> reset_before_backward_zn(acc_t dh, acc_t z, acc_t n,
                                                                      acc_t h_prev) {
  ResetBeforeGradsZN<acc_t> g;
  const acc_t dz = dh * (n - h_prev);
  const acc_t dn = dh * z;
  g.da_n = dn * (acc_t(1) - n * n);
  g.da_z = dz * z * (acc_t(1) - z);
  g.dh_direct = dh * (acc_t(1) - z);
  return g;
}

// Phase 2: with d_rh = da_n W_n (the gradient of r h), r's pre-activation gradient and the
// part of d h_prev through r h.
template <typename acc_t>
SEQREC_HOST_DEVICE void reset_before_backward_r(acc_t d_rh, acc_t r, acc_t h_prev, acc_t& da_r,
                                                acc_t& dh_via_rh) {
  da_r = d_rh * h_prev * r * (acc_t(1) - r);
  dh_via_rh = d_rh * r;
}

}  // namespace seqrec::gru
