// The GRU ops (gru_step, gru_sequence and their backward ops) for every device: argument
// checks, allocation, the matrix products (at::mm, which is BLAS on the CPU and cuBLAS on
// CUDA) and the gate passes between them (csrc/gru_pass.h, run by cpu/gru_cpu.cpp or
// cuda/gru_cuda.cu, picked by common/device_dispatch.h); the CPU and CUDA registrations.
//
// Shapes: T steps, B rows, H hidden units; gate blocks ordered (r, z, n).
//   gi (T, B, 3H) input projections (gru_step: (B, 3H)), h0 (B, H), w_hh (3H, H),
//   b_ih, b_hh (3H) optional, reset (T, B) bool optional, lengths (B) int64 optional.
// Workspace (T, B, K*H), K = 4 (reset_before: r, z, n, h_prev) or 5 (reset_after: r, z, n,
// gh_n, h_prev): what the backward needs, nothing else.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "common/aten_helpers.h"
#include "common/device_dispatch.h"
#include "common/register_kernels.h"
#include "common/sequence_op.h"
#include "cpu/gru_cpu.h"
#include "gru.h"
#include "gru_pass.h"
#ifdef SEQREC_WITH_CUDA
#include "cuda/gru_cuda.h"
#endif

namespace seqrec {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using gru::Pass;

// ---- argument checks ----

using seq::Dims;

Dims check_gru_inputs(const char* op, const Tensor& gi, const Tensor& h0, const Tensor& w_hh,
                      const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& reset,
                      const OptTensor& lengths) {
  return seq::check_sequence_inputs(op, 3, gi, {{&h0, "h"}}, w_hh, b_ih, b_hh, reset, lengths);
}

// ---- where the gate passes run ----

// The gate passes on each device (common/device_dispatch.h: with_float_device).
template <typename T>
void run_pass(OnCpu<T>, Pass pass, const gru::PassArgs<T>& a) {
  cpu::run_gate_pass(pass, a);
}
#ifdef SEQREC_WITH_CUDA
template <typename T>
void run_pass(OnCuda<T> on, Pass pass, const gru::PassArgs<T>& a) {
  cuda::launch_gate_pass(pass, a, on.stream);
}
#endif

using seq::zero_rows_restarting_at_step0;

// The state before step t (B, H): the last block of the workspace's step t.
Tensor workspace_h_prev(const Tensor& ws, int64_t t, int64_t B, int64_t H, int K) {
  return seq::workspace_block(ws, t, B, H, K, K - 1);
}

template <typename scalar_t>
gru::PassArgs<scalar_t> sequence_args(int64_t T, int64_t B, int64_t H, int K, const Tensor& reset_c,
                                      const Tensor& lengths_c) {
  return seq::sequence_args<gru::PassArgs<scalar_t>>(T, B, H, K, reset_c, lengths_c);
}

// ---- forward ----

// Made once per call, used by every step: transposed views of w_hh and the hidden products.
struct ForwardScratch {
  Tensor w_t, w_rz_t, w_n_t;  // W^T; W_rz^T, W_n^T (reset_before)
  Tensor gh;                  // (B, 3H) h_prev W^T; reset_before: (B, 2H) h_prev W_rz^T
  Tensor gh_n, rh;            // reset_before: (B, H) (r h_prev) W_n^T and r h_prev
  ProductDtype product_dtype;
};

// out = a b; with a product dtype (the fused GRU4Rec step in low precision) the operands are
// rounded to it and the product (float32 accumulation) is widened into out.
void product_into(Tensor& out, const Tensor& a, const Tensor& b, ProductDtype dtype) {
  if (!dtype.has_value() || *dtype == out.scalar_type()) {
    at::mm_out(out, a, b);
  } else {
    out.copy_(at::mm(a.to(*dtype), b.to(*dtype)));
  }
}

ForwardScratch forward_scratch(const Tensor& w_hh, const Dims& d, bool reset_after,
                               const at::TensorOptions& opts, ProductDtype product_dtype) {
  const int64_t B = d.B, H = d.H;
  ForwardScratch s;
  s.product_dtype = product_dtype;
  s.w_t = block(w_hh, 0, 3 * H, 0, H, true);
  s.w_rz_t = block(w_hh, 0, 2 * H, 0, H, true);
  s.w_n_t = block(w_hh, 2 * H, H, 0, H, true);
  s.gh = at::empty({B, reset_after ? 3 * H : 2 * H}, opts);
  s.gh_n = reset_after ? Tensor() : at::empty({B, H}, opts);
  s.rh = reset_after ? Tensor() : at::empty({B, H}, opts);
  return s;
}

// Steps 0..T-1: per step the hidden product(s) and the gate passes between them. Each step
// writes its workspace, its output, and the next step's h_prev (the last step's: h_last).
template <typename Device>
void forward_steps(const Device& on, const Tensor& gi, const Tensor& b_ih, const Tensor& b_hh,
                   const Tensor& reset_c, const Tensor& lengths_c, bool reset_after, const Dims& d,
                   const ForwardScratch& s, const Tensor& out, const Tensor& h_last, const Tensor& ws) {
  using scalar_t = typename Device::scalar_t;
  const auto [T, B, H] = d;
  const int K = gru::workspace_blocks(reset_after);
  const int64_t ws_step = B * K * H;
  gru::PassArgs<scalar_t> a = sequence_args<scalar_t>(T, B, H, K, reset_c, lengths_c);
  a.gi_stride = 3 * H;
  a.b_ih = ptr<scalar_t>(b_ih);
  a.b_hh = ptr<scalar_t>(b_hh);
  a.out_stride = H;
  scalar_t* const ws0 = ptr<scalar_t>(ws);
  scalar_t* const gi0 = ptr<scalar_t>(gi);
  scalar_t* const out0 = ptr<scalar_t>(out);
  Tensor gh = s.gh, gh_n = s.gh_n;  // handles of the same buffers, written by mm_out
  for (int64_t t = 0; t < T; ++t) {
    a.t = t;
    a.gi = gi0 + t * B * 3 * H;
    a.ws = ws0 + t * ws_step;
    a.out = out0 + t * B * H;
    if (t + 1 < T) {
      a.h_next = ws0 + (t + 1) * ws_step + (K - 1) * H;
      a.h_next_stride = K * H;
    } else {
      a.h_next = ptr<scalar_t>(h_last);
      a.h_next_stride = H;
    }
    const Tensor h_prev = workspace_h_prev(ws, t, B, H, K);
    if (reset_after) {
      product_into(gh, h_prev, s.w_t, s.product_dtype);
      a.gh = ptr<scalar_t>(gh);
      a.gh_stride = 3 * H;
      run_pass(on, Pass::kForwardResetAfter, a);
    } else {
      product_into(gh, h_prev, s.w_rz_t, s.product_dtype);
      a.gh = ptr<scalar_t>(gh);
      a.gh_stride = 2 * H;
      a.rh = ptr<scalar_t>(s.rh);
      a.rh_stride = H;
      run_pass(on, Pass::kForwardResetBeforeRZ, a);
      product_into(gh_n, s.rh, s.w_n_t, s.product_dtype);
      a.gh = ptr<scalar_t>(gh_n);
      a.gh_stride = H;
      run_pass(on, Pass::kForwardResetBeforeN, a);
    }
  }
}

// Writes out (T, B, H), h_last (B, H) and ws. Absent biases must come as zeros.
void sequence_forward_impl(const Tensor& gi, const Tensor& h0, const Tensor& w_hh, const Tensor& b_ih,
                           const Tensor& b_hh, const OptTensor& reset, const OptTensor& lengths,
                           bool reset_after, const Dims& d, const Tensor& out, const Tensor& h_last,
                           const Tensor& ws, ProductDtype product_dtype = std::nullopt) {
  if (d.T == 0) {
    h_last.copy_(h0);
    return;
  }
  const int K = gru::workspace_blocks(reset_after);
  workspace_h_prev(ws, 0, d.B, d.H, K).copy_(zero_rows_restarting_at_step0(h0, reset, lengths));
  const ForwardScratch s = forward_scratch(w_hh, d, reset_after, gi.options(), product_dtype);
  const Tensor reset_c = seq::contiguous_or_undefined(reset);
  const Tensor lengths_c = seq::contiguous_or_undefined(lengths);
  with_float_device(gi, [&](const auto& on) {
    forward_steps(on, gi, b_ih, b_hh, reset_c, lengths_c, reset_after, d, s, out, h_last, ws);
  });
}

// ---- backward ----

// The gradients the backward steps write, and their scratch.
struct BackwardBuffers {
  Tensor d_gi;        // (T, B, 3H)
  Tensor d_gh;        // (T, B, 3H) reset_after: d of h_prev W^T + b_hh
  Tensor dh_bufs[2];  // (B, H) d h_prev of step t goes to dh_bufs[t % 2]: step 0's is d_h0
  Tensor d_rh;        // (B, H) reset_before: d of r h_prev
};

// Steps T-1..0: per step the gate passes and the product(s) that carry the gradient into
// h_prev. need_d_h0 = false skips the product of step 0 (its d h_prev is not wanted).
template <typename Device>
void backward_steps(const Device& on, const Tensor& grad_out_c, const Tensor& grad_h_last_c,
                    const Tensor& zeros_bh, const Tensor& w_hh, const Tensor& ws, const Tensor& reset_c,
                    const Tensor& lengths_c, bool reset_after, bool need_d_h0, BackwardBuffers& g) {
  using scalar_t = typename Device::scalar_t;
  const int K = gru::workspace_blocks(reset_after);
  const int64_t T = ws.size(0), B = ws.size(1), H = ws.size(2) / K;
  const Tensor w_rz = block(w_hh, 0, 2 * H, 0, H);
  const Tensor w_n = block(w_hh, 2 * H, H, 0, H);
  // step t of a (T, B, X) tensor, columns [c0, c0 + n)
  auto step_view = [&](const Tensor& x, int64_t t, int64_t c0, int64_t n) {
    return block(x, t * B, B, c0, n);
  };
  gru::PassArgs<scalar_t> a = sequence_args<scalar_t>(T, B, H, K, reset_c, lengths_c);
  a.grad_out_stride = H;
  a.dh_next_stride = H;
  a.d_gi_stride = 3 * H;
  a.d_gh_stride = 3 * H;
  a.dh_stride = H;
  a.d_rh = ptr<scalar_t>(g.d_rh);
  a.d_rh_stride = H;
  scalar_t* const ws0 = ptr<scalar_t>(ws);
  scalar_t* const d_gi0 = ptr<scalar_t>(g.d_gi);
  scalar_t* const d_gh0 = ptr<scalar_t>(g.d_gh);
  scalar_t* const grad_out0 = ptr<scalar_t>(grad_out_c);
  a.dh_next = ptr<scalar_t>(grad_h_last_c);
  for (int64_t t = T - 1; t >= 0; --t) {
    Tensor& dh = g.dh_bufs[t % 2];
    a.t = t;
    a.ws = ws0 + t * B * K * H;
    a.grad_out = grad_out0 ? grad_out0 + t * B * H : ptr<scalar_t>(zeros_bh);
    a.d_gi = d_gi0 + t * B * 3 * H;
    a.dh = ptr<scalar_t>(dh);
    const bool carry = t > 0 || need_d_h0;
    if (reset_after) {
      a.d_gh = d_gh0 + t * B * 3 * H;
      run_pass(on, Pass::kBackwardResetAfter, a);
      if (carry) dh.addmm_(step_view(g.d_gh, t, 0, 3 * H), w_hh);
    } else {
      run_pass(on, Pass::kBackwardResetBeforeZN, a);
      at::mm_out(g.d_rh, step_view(g.d_gi, t, 2 * H, H), w_n);
      run_pass(on, Pass::kBackwardResetBeforeR, a);
      if (carry) dh.addmm_(step_view(g.d_gi, t, 0, 2 * H), w_rz);
    }
    a.dh_next = a.dh;
  }
}

// The gradients of w_hh, b_ih and b_hh: one matrix product over all T steps.
std::tuple<Tensor, Tensor, Tensor> weight_and_bias_grads(const Tensor& w_hh, const Tensor& ws,
                                                         const BackwardBuffers& g, bool reset_after,
                                                         ProductDtype product_dtype) {
  const int K = gru::workspace_blocks(reset_after);
  const int64_t T = ws.size(0), B = ws.size(1), H = ws.size(2) / K;
  const Tensor h_prev = block(ws, 0, T * B, (K - 1) * H, H);
  const Tensor d_gi2 = g.d_gi.view({T * B, 3 * H});
  Tensor d_w = at::empty_like(w_hh);
  Tensor d_b_ih = d_gi2.sum(0);
  Tensor d_b_hh;
  if (reset_after) {
    product_into(d_w, block(g.d_gh, 0, T * B, 0, 3 * H, true), h_prev, product_dtype);
    d_b_hh = g.d_gh.view({T * B, 3 * H}).sum(0);
  } else {
    Tensor d_w_rz = block(d_w, 0, 2 * H, 0, H), d_w_n = block(d_w, 2 * H, H, 0, H);
    product_into(d_w_rz, block(g.d_gi, 0, T * B, 0, 2 * H, true), h_prev, product_dtype);
    const Tensor r = block(ws, 0, T * B, 0, H);
    product_into(d_w_n, block(g.d_gi, 0, T * B, 2 * H, H, true), r * h_prev, product_dtype);
    d_b_hh = d_b_ih.clone();  // the same gradient (outputs must not alias)
  }
  return {d_w, d_b_ih, d_b_hh};
}

// need_d_h0 = false (one-step truncated backpropagation): d_h0 comes back undefined, and the
// product that would carry step 0's gradient into h0 is skipped.
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> sequence_backward_impl(
    const OptTensor& grad_out, const OptTensor& grad_h_last, const Tensor& w_hh, const Tensor& ws,
    const OptTensor& reset, const OptTensor& lengths, bool reset_after, bool need_d_h0 = true,
    ProductDtype product_dtype = std::nullopt) {
  const int K = gru::workspace_blocks(reset_after);
  const int64_t T = ws.size(0), B = ws.size(1), H = ws.size(2) / K;
  const auto opts = ws.options();
  BackwardBuffers g;
  g.d_gi = at::empty({T, B, 3 * H}, opts);
  g.d_gh = reset_after ? at::empty({T, B, 3 * H}, opts) : Tensor();
  g.dh_bufs[0] = at::empty({B, H}, opts);
  g.dh_bufs[1] = at::empty({B, H}, opts);
  g.d_rh = reset_after ? Tensor() : at::empty({B, H}, opts);
  const Tensor grad_out_c = seq::contiguous_or_undefined(grad_out);
  // absent gradients are zeros: the gate passes then need no branch for them
  const Tensor zeros_bh =
      grad_out.has_value() && grad_h_last.has_value() ? Tensor() : at::zeros({B, H}, opts);
  const Tensor grad_h_last_c = grad_h_last.has_value() ? grad_h_last->contiguous() : zeros_bh;
  const Tensor reset_c = seq::contiguous_or_undefined(reset);
  const Tensor lengths_c = seq::contiguous_or_undefined(lengths);
  if (T == 0) {
    return {g.d_gi, grad_h_last_c.clone(), at::zeros_like(w_hh), at::zeros({3 * H}, opts),
            at::zeros({3 * H}, opts)};
  }
  with_float_device(ws, [&](const auto& on) {
    backward_steps(on, grad_out_c, grad_h_last_c, zeros_bh, w_hh, ws, reset_c, lengths_c, reset_after,
                   need_d_h0, g);
  });
  // the state before step 0 was h0 with restarting rows zeroed
  Tensor d_h0 = need_d_h0 ? zero_rows_restarting_at_step0(g.dh_bufs[0], reset, lengths) : Tensor();
  auto [d_w, d_b_ih, d_b_hh] = weight_and_bias_grads(w_hh, ws, g, reset_after, product_dtype);
  return {g.d_gi, d_h0, d_w, d_b_ih, d_b_hh};
}

// ---- the ops ----

// a bias, or zeros in its place
Tensor bias_or_zeros(const OptTensor& b, const Tensor& gi, int64_t H) {
  return seq::bias_or_zeros(b, gi, 3 * H);
}

std::tuple<Tensor, Tensor, Tensor> gru_sequence(const Tensor& gi_in, const Tensor& h0_in, const Tensor& w_in,
                                                const OptTensor& b_ih_in, const OptTensor& b_hh_in,
                                                const OptTensor& reset, const OptTensor& lengths,
                                                bool reset_after) {
  const Dims d = check_gru_inputs("gru_sequence", gi_in, h0_in, w_in, b_ih_in, b_hh_in, reset, lengths);
  const c10::DeviceGuard guard(gi_in.device());  // the op runs on its inputs' device
  const Tensor gi = gi_in.contiguous(), h0 = h0_in.contiguous(), w_hh = w_in.contiguous();
  const Tensor b_ih = bias_or_zeros(b_ih_in, gi, d.H), b_hh = bias_or_zeros(b_hh_in, gi, d.H);
  const int K = gru::workspace_blocks(reset_after);
  Tensor out = at::empty({d.T, d.B, d.H}, gi.options());
  Tensor h_last = at::empty({d.B, d.H}, gi.options());
  Tensor ws = at::empty({d.T, d.B, K * d.H}, gi.options());
  sequence_forward_impl(gi, h0, w_hh, b_ih, b_hh, reset, lengths, reset_after, d, out, h_last, ws);
  return {out, h_last, ws};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> gru_sequence_backward(
    const OptTensor& grad_out, const OptTensor& grad_h_last, const Tensor& w_hh_in, const Tensor& ws,
    const OptTensor& reset, const OptTensor& lengths, bool reset_after) {
  const int K = gru::workspace_blocks(reset_after);
  TORCH_CHECK(ws.dim() == 3 && ws.size(2) % K == 0,
              "gru_sequence_backward: workspace must be "
              "(T, B, ",
              K, "H), got shape ", ws.sizes());
  const int64_t T = ws.size(0), B = ws.size(1), H = ws.size(2) / K;
  TORCH_CHECK(w_hh_in.dim() == 2 && w_hh_in.size(0) == 3 * H && w_hh_in.size(1) == H,
              "gru_sequence_backward: w_hh must be (3H, H) with H = ", H);
  if (grad_out.has_value())
    TORCH_CHECK(grad_out->sizes() == at::IntArrayRef({T, B, H}),
                "gru_sequence_backward: grad_out must be (T, B, H)");
  if (grad_h_last.has_value())
    TORCH_CHECK(grad_h_last->sizes() == at::IntArrayRef({B, H}),
                "gru_sequence_backward: grad_h_last must be (B, H)");
  const c10::DeviceGuard guard(ws.device());  // the op runs on its inputs' device
  return sequence_backward_impl(grad_out, grad_h_last, w_hh_in.contiguous(), ws.contiguous(), reset, lengths,
                                reset_after);
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> gru_step_backward(const Tensor& grad_h_new,
                                                                     const Tensor& w_hh, const Tensor& ws,
                                                                     bool reset_after) {
  TORCH_CHECK(ws.dim() == 2 && grad_h_new.dim() == 2,
              "gru_step_backward: expected grad_h_new (B, H) and workspace (B, K*H)");
  auto [d_gi, d_h, d_w, d_b_ih, d_b_hh] = gru_sequence_backward(
      grad_h_new.unsqueeze(0), std::nullopt, w_hh, ws.unsqueeze(0), std::nullopt, std::nullopt, reset_after);
  return {d_gi.squeeze(0), d_h, d_w, d_b_ih, d_b_hh};
}

}  // namespace

std::tuple<Tensor, Tensor> gru_step(const Tensor& gi_in, const Tensor& h_in, const Tensor& w_in,
                                    const OptTensor& b_ih_in, const OptTensor& b_hh_in, bool reset_after,
                                    ProductDtype product_dtype) {
  TORCH_CHECK(gi_in.dim() == 2, "gru_step: gi must be (B, 3H), got shape ", gi_in.sizes());
  const Tensor gi = gi_in.contiguous().unsqueeze(0);
  const Dims d = check_gru_inputs("gru_step", gi, h_in, w_in, b_ih_in, b_hh_in, std::nullopt, std::nullopt);
  const c10::DeviceGuard guard(gi_in.device());  // the op runs on its inputs' device
  const int K = gru::workspace_blocks(reset_after);
  Tensor out = at::empty({1, d.B, d.H}, gi.options());
  Tensor h_next = at::empty({d.B, d.H}, gi.options());  // = out; written as the sequence's h_last
  Tensor ws = at::empty({1, d.B, K * d.H}, gi.options());
  sequence_forward_impl(gi, h_in.contiguous(), w_in.contiguous(), bias_or_zeros(b_ih_in, gi, d.H),
                        bias_or_zeros(b_hh_in, gi, d.H), std::nullopt, std::nullopt, reset_after, d, out,
                        h_next, ws, product_dtype);
  return {out.squeeze(0), ws.squeeze(0)};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> gru_step_backward_truncated(const Tensor& grad_h_new,
                                                                       const Tensor& w_hh, const Tensor& ws,
                                                                       bool reset_after,
                                                                       ProductDtype product_dtype) {
  TORCH_CHECK(ws.dim() == 2 && grad_h_new.dim() == 2,
              "gru4rec_step: expected grad_h_new (B, H) and workspace (B, K*H)");
  const int K = gru::workspace_blocks(reset_after);
  const int64_t B = ws.size(0), H = ws.size(1) / K;
  TORCH_CHECK(ws.size(1) == K * H && grad_h_new.size(0) == B && grad_h_new.size(1) == H && w_hh.dim() == 2 &&
                  w_hh.size(0) == 3 * H && w_hh.size(1) == H,
              "gru4rec_step: inconsistent GRU backward shapes");
  auto [d_gi, d_h, d_w, d_b_ih, d_b_hh] = sequence_backward_impl(
      grad_h_new.contiguous().unsqueeze(0), std::nullopt, w_hh.contiguous(), ws.contiguous().unsqueeze(0),
      std::nullopt, std::nullopt, reset_after, /*need_d_h0=*/false, product_dtype);
  return {d_gi.squeeze(0), d_w, d_b_ih, d_b_hh};
}

namespace {

std::tuple<Tensor, Tensor> gru_step_op(const Tensor& gi, const Tensor& h, const Tensor& w_hh,
                                       const OptTensor& b_ih, const OptTensor& b_hh, bool reset_after) {
  return gru_step(gi, h, w_hh, b_ih, b_hh, reset_after, std::nullopt);
}

}  // namespace

SEQREC_REGISTER_KERNELS(m) {
  m.impl("gru_step", &gru_step_op);
  m.impl("gru_step_backward", &gru_step_backward);
  m.impl("gru_sequence", &gru_sequence);
  m.impl("gru_sequence_backward", &gru_sequence_backward);
}

}  // namespace seqrec
