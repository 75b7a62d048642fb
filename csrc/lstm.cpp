// The LSTM op (lstm_sequence and its backward op) for every device: argument checks,
// allocation, the matrix products (at::mm, which is BLAS on the CPU and cuBLAS on CUDA) and the
// cell passes between them (csrc/lstm_pass.h, run by cpu/lstm_cpu.cpp or cuda/lstm_cuda.cu,
// picked by common/device_dispatch.h); the CPU and CUDA registrations.
//
// Shapes: T steps, B rows, H hidden units; gate blocks ordered (i, f, g, o) as in torch.nn.LSTM.
//   gi (T, B, 4H) input projections, h0, c0 (B, H), w_hh (4H, H), b_ih, b_hh (4H) optional,
//   reset (T, B) bool optional, lengths (B) int64 optional.
// Workspace (T, B, 6H): i, f, g, o, c_prev, h_prev per row and step (csrc/lstm_math.h), what
// the backward needs and nothing else (tanh(c') is recomputed).
//
// Per step, forward: one product h_prev W^T (B x H x 4H), one pass. Backward: one pass, one
// product d_gates W (B x 4H x H) into d h_prev. The weight gradient is one product over all
// T*B rows after the loop, the bias gradients one sum.
#include "lstm.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "common/acc_type.h"
#include "common/aten_helpers.h"
#include "common/device_dispatch.h"
#include "common/register_kernels.h"
#include "common/sequence_op.h"
#include "cpu/lstm_cpu.h"
#include "lstm_pass.h"
#ifdef SEQREC_WITH_CUDA
#include "cuda/lstm_cuda.h"
#endif

namespace seqrec {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using lstm::Pass;
using seq::Dims;

constexpr int K = lstm::kBlocks;
constexpr int G = lstm::kGates;

// The cell passes on each device (common/device_dispatch.h: with_float_device).
template <typename T>
void run_pass(OnCpu<T>, Pass pass, const lstm::PassArgs<T>& a) {
  cpu::run_lstm_pass(pass, a);
}
#ifdef SEQREC_WITH_CUDA
template <typename T>
void run_pass(OnCuda<T> on, Pass pass, const lstm::PassArgs<T>& a) {
  cuda::launch_lstm_pass(pass, a, on.stream);
}
#endif

// b_ih + b_hh (absent ones as zeros) in the type the passes accumulate in: float32 for
// float32 / half / bfloat16 inputs, float64 for float64.
Tensor summed_bias(const OptTensor& b_ih, const OptTensor& b_hh, const Tensor& gi, int64_t n) {
  const auto acc = gi.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  Tensor bias = at::zeros({n}, gi.options().dtype(acc));
  for (const OptTensor* b : {&b_ih, &b_hh}) {
    if (b->has_value()) bias.add_(**b);
  }
  return bias;
}

// ---- forward ----

// Steps 0..T-1: per step the hidden product and the cell pass. Each step writes its workspace,
// its output, and the next step's h_prev and c_prev (the last step's: h_last, c_last).
template <typename Device>
void forward_steps(const Device& on, const Tensor& gi, const Tensor& bias, const Tensor& w_hh,
                   const Tensor& reset_c, const Tensor& lengths_c, const Dims& d, const Tensor& out,
                   const Tensor& h_last, const Tensor& c_last, const Tensor& ws) {
  using scalar_t = typename Device::scalar_t;
  using acc_t = typename AccType<scalar_t>::type;
  const auto [T, B, H] = d;
  const int64_t ws_step = B * K * H;
  auto a = seq::sequence_args<lstm::PassArgs<scalar_t>>(T, B, H, K, reset_c, lengths_c);
  Tensor gh = at::empty({B, G * H}, gi.options());  // h_prev W^T of the current step
  const Tensor w_t = block(w_hh, 0, G * H, 0, H, true);
  a.gh = ptr<scalar_t>(gh);
  a.bias = ptr<acc_t>(bias);
  scalar_t* const ws0 = ptr<scalar_t>(ws);
  scalar_t* const gi0 = ptr<scalar_t>(gi);
  scalar_t* const out0 = ptr<scalar_t>(out);
  for (int64_t t = 0; t < T; ++t) {
    a.t = t;
    a.gi = gi0 + t * B * G * H;
    a.ws = ws0 + t * ws_step;
    a.out = out0 + t * B * H;
    if (t + 1 < T) {
      a.h_next = ws0 + (t + 1) * ws_step + lstm::kHPrev * H;
      a.c_next = ws0 + (t + 1) * ws_step + lstm::kCPrev * H;
      a.next_stride = K * H;
    } else {
      a.h_next = ptr<scalar_t>(h_last);
      a.c_next = ptr<scalar_t>(c_last);
      a.next_stride = H;
    }
    at::mm_out(gh, seq::workspace_block(ws, t, B, H, K, lstm::kHPrev), w_t);
    run_pass(on, Pass::kForward, a);
  }
}

// Writes out (T, B, H), h_last, c_last (B, H) and ws.
void sequence_forward_impl(const Tensor& gi, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                           const Tensor& bias, const OptTensor& reset, const OptTensor& lengths,
                           const Dims& d, const Tensor& out, const Tensor& h_last, const Tensor& c_last,
                           const Tensor& ws) {
  if (d.T == 0) {
    h_last.copy_(h0);
    c_last.copy_(c0);
    return;
  }
  // the state before step 0: the initial state with the rows that restart there zeroed
  seq::workspace_block(ws, 0, d.B, d.H, K, lstm::kHPrev)
      .copy_(seq::zero_rows_restarting_at_step0(h0, reset, lengths));
  seq::workspace_block(ws, 0, d.B, d.H, K, lstm::kCPrev)
      .copy_(seq::zero_rows_restarting_at_step0(c0, reset, lengths));
  const Tensor reset_c = seq::contiguous_or_undefined(reset);
  const Tensor lengths_c = seq::contiguous_or_undefined(lengths);
  with_float_device(gi, [&](const auto& on) {
    forward_steps(on, gi, bias, w_hh, reset_c, lengths_c, d, out, h_last, c_last, ws);
  });
}

// ---- backward ----

// The gradients the backward steps write.
struct BackwardBuffers {
  Tensor d_gates;     // (T, B, 4H): d gi, which is also d gh and d of both biases
  Tensor dh_bufs[2];  // (B, H) d h_prev of step t goes to dh_bufs[t % 2]: step 0's is d_h0
  Tensor dc_bufs[2];  // (B, H) d c_prev, likewise
};

// Steps T-1..0: per step the cell pass and the product that carries the gradient into h_prev.
template <typename Device>
void backward_steps(const Device& on, const Tensor& grad_out_c, const Tensor& grad_h_last_c,
                    const Tensor& grad_c_last_c, const Tensor& zeros_bh, const Tensor& w_hh, const Tensor& ws,
                    const Tensor& reset_c, const Tensor& lengths_c, BackwardBuffers& g) {
  using scalar_t = typename Device::scalar_t;
  const int64_t T = ws.size(0), B = ws.size(1), H = ws.size(2) / K;
  auto a = seq::sequence_args<lstm::PassArgs<scalar_t>>(T, B, H, K, reset_c, lengths_c);
  scalar_t* const ws0 = ptr<scalar_t>(ws);
  scalar_t* const d_gates0 = ptr<scalar_t>(g.d_gates);
  scalar_t* const grad_out0 = ptr<scalar_t>(grad_out_c);
  a.dh_next = ptr<scalar_t>(grad_h_last_c);
  a.dc_next = ptr<scalar_t>(grad_c_last_c);
  for (int64_t t = T - 1; t >= 0; --t) {
    Tensor& dh = g.dh_bufs[t % 2];
    a.t = t;
    a.ws = ws0 + t * B * K * H;
    a.grad_out = grad_out0 ? grad_out0 + t * B * H : ptr<scalar_t>(zeros_bh);
    a.d_gates = d_gates0 + t * B * G * H;
    a.dh = ptr<scalar_t>(dh);
    a.dc = ptr<scalar_t>(g.dc_bufs[t % 2]);
    run_pass(on, Pass::kBackward, a);
    dh.addmm_(block(g.d_gates, t * B, B, 0, G * H), w_hh);
    a.dh_next = a.dh;
    a.dc_next = a.dc;
  }
}

// A gradient the caller gave, contiguous, or zeros in its place.
Tensor grad_or_zeros(const OptTensor& grad, const Tensor& zeros) {
  return grad.has_value() ? grad->contiguous() : zeros;
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> sequence_backward_impl(
    const OptTensor& grad_out, const OptTensor& grad_h_last, const OptTensor& grad_c_last, const Tensor& w_hh,
    const Tensor& ws, const OptTensor& reset, const OptTensor& lengths) {
  const int64_t T = ws.size(0), B = ws.size(1), H = ws.size(2) / K;
  const auto opts = ws.options();
  BackwardBuffers g;
  g.d_gates = at::empty({T, B, G * H}, opts);
  for (int k = 0; k < 2; ++k) {
    g.dh_bufs[k] = at::empty({B, H}, opts);
    g.dc_bufs[k] = at::empty({B, H}, opts);
  }
  // absent gradients are zeros: the cell passes then need no branch for them
  const bool all_given = grad_out.has_value() && grad_h_last.has_value() && grad_c_last.has_value();
  const Tensor zeros_bh = all_given ? Tensor() : at::zeros({B, H}, opts);
  const Tensor grad_out_c = seq::contiguous_or_undefined(grad_out);
  const Tensor grad_h_last_c = grad_or_zeros(grad_h_last, zeros_bh);
  const Tensor grad_c_last_c = grad_or_zeros(grad_c_last, zeros_bh);
  if (T == 0) {
    return {g.d_gates,
            grad_h_last_c.clone(),
            grad_c_last_c.clone(),
            at::zeros_like(w_hh),
            at::zeros({G * H}, opts),
            at::zeros({G * H}, opts)};
  }
  const Tensor reset_c = seq::contiguous_or_undefined(reset);
  const Tensor lengths_c = seq::contiguous_or_undefined(lengths);
  with_float_device(ws, [&](const auto& on) {
    backward_steps(on, grad_out_c, grad_h_last_c, grad_c_last_c, zeros_bh, w_hh, ws, reset_c, lengths_c, g);
  });
  // the state before step 0 was (h0, c0) with restarting rows zeroed
  Tensor d_h0 = seq::zero_rows_restarting_at_step0(g.dh_bufs[0], reset, lengths);
  Tensor d_c0 = seq::zero_rows_restarting_at_step0(g.dc_bufs[0], reset, lengths);
  // the weight gradient: one product over all T*B rows, d_gates^T h_prev
  Tensor d_w = at::mm(block(g.d_gates, 0, T * B, 0, G * H, true), block(ws, 0, T * B, lstm::kHPrev * H, H));
  Tensor d_b_ih = g.d_gates.view({T * B, G * H}).sum(0);
  Tensor d_b_hh = d_b_ih.clone();  // the same gradient (outputs must not alias)
  return {g.d_gates, d_h0, d_c0, d_w, d_b_ih, d_b_hh};
}

}  // namespace

// ---- the ops ----

std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_sequence(const Tensor& gi_in, const Tensor& h0_in,
                                                         const Tensor& c0_in, const Tensor& w_in,
                                                         const OptTensor& b_ih, const OptTensor& b_hh,
                                                         const OptTensor& reset, const OptTensor& lengths) {
  const Dims d = seq::check_sequence_inputs("lstm_sequence", G, gi_in, {{&h0_in, "h0"}, {&c0_in, "c0"}}, w_in,
                                            b_ih, b_hh, reset, lengths);
  const c10::DeviceGuard guard(gi_in.device());  // the op runs on its inputs' device
  const Tensor gi = gi_in.contiguous(), h0 = h0_in.contiguous(), c0 = c0_in.contiguous();
  const Tensor w_hh = w_in.contiguous();
  Tensor out = at::empty({d.T, d.B, d.H}, gi.options());
  Tensor h_last = at::empty({d.B, d.H}, gi.options());
  Tensor c_last = at::empty({d.B, d.H}, gi.options());
  Tensor ws = at::empty({d.T, d.B, K * d.H}, gi.options());
  sequence_forward_impl(gi, h0, c0, w_hh, summed_bias(b_ih, b_hh, gi, G * d.H), reset, lengths, d, out,
                        h_last, c_last, ws);
  return {out, h_last, c_last, ws};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_sequence_backward(
    const OptTensor& grad_out, const OptTensor& grad_h_last, const OptTensor& grad_c_last, const Tensor& w_hh,
    const Tensor& ws, const OptTensor& reset, const OptTensor& lengths) {
  TORCH_CHECK(ws.dim() == 3 && ws.size(2) % K == 0, "lstm_sequence_backward: workspace must be (T, B, ", K,
              "H), got shape ", ws.sizes());
  const int64_t T = ws.size(0), B = ws.size(1), H = ws.size(2) / K;
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == G * H && w_hh.size(1) == H,
              "lstm_sequence_backward: w_hh must be (4H, H) with H = ", H);
  if (grad_out.has_value())
    TORCH_CHECK(grad_out->sizes() == at::IntArrayRef({T, B, H}),
                "lstm_sequence_backward: grad_out must be (T, B, H)");
  for (const auto& [grad, name] :
       {std::pair{&grad_h_last, "grad_h_last"}, std::pair{&grad_c_last, "grad_c_last"}})
    if (grad->has_value())
      TORCH_CHECK((*grad)->sizes() == at::IntArrayRef({B, H}), "lstm_sequence_backward: ", name,
                  " must be (B, H)");
  const c10::DeviceGuard guard(ws.device());  // the op runs on its inputs' device
  return sequence_backward_impl(grad_out, grad_h_last, grad_c_last, w_hh.contiguous(), ws.contiguous(), reset,
                                lengths);
}

SEQREC_REGISTER_KERNELS(m) {
  m.impl("lstm_sequence", &lstm_sequence);
  m.impl("lstm_sequence_backward", &lstm_sequence_backward);
}

}  // namespace seqrec
