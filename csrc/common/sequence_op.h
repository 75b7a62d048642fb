// The device-independent pieces the recurrent ops share (csrc/gru.cpp, csrc/lstm.cpp): their
// argument checks, the masking of the first step's state, the pass arguments no step changes,
// absent biases as zeros.
//
// Shapes: T steps, B rows, H hidden units, G gate blocks (GRU 3, LSTM 4):
//   gi (T, B, G*H), each state (B, H), w_hh (G*H, H), b_ih, b_hh (G*H) optional,
//   reset (T, B) bool optional, lengths (B) int64 in [0, T] optional.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <optional>
#include <utility>

namespace seqrec::seq {

struct Dims {
  int64_t T, B, H;
};

inline void check_same(const at::Tensor& x, const at::Tensor& ref, const char* name, const char* op) {
  TORCH_CHECK(x.device() == ref.device(), op, ": ", name, " is on ", x.device(),
              " but the input projections are on ", ref.device());
  TORCH_CHECK(x.scalar_type() == ref.scalar_type(), op, ": ", name, " has dtype ", x.scalar_type(),
              " but the input projections have ", ref.scalar_type());
}

inline void check_masks(const char* op, const std::optional<at::Tensor>& reset,
                        const std::optional<at::Tensor>& lengths, const at::Tensor& gi, int64_t T,
                        int64_t B) {
  if (reset.has_value()) {
    TORCH_CHECK(reset->scalar_type() == at::kBool, op, ": reset must be a bool tensor, got ",
                reset->scalar_type());
    TORCH_CHECK(reset->dim() == 2 && reset->size(0) == T && reset->size(1) == B, op,
                ": reset must be (T, B) = (", T, ", ", B, "), got shape ", reset->sizes());
    TORCH_CHECK(reset->device() == gi.device(), op, ": reset is on ", reset->device(), " but gi is on ",
                gi.device());
  }
  if (lengths.has_value()) {
    TORCH_CHECK(lengths->scalar_type() == at::kLong, op, ": lengths must be int64, got ",
                lengths->scalar_type());
    TORCH_CHECK(lengths->dim() == 1 && lengths->size(0) == B, op, ": lengths must be (B,) = (", B,
                ",), got shape ", lengths->sizes());
    TORCH_CHECK(lengths->device() == gi.device(), op, ": lengths is on ", lengths->device(), " but gi is on ",
                gi.device());
    if (B > 0) {
      const auto [lo, hi] = at::aminmax(*lengths);
      const int64_t lo_v = lo.item<int64_t>(), hi_v = hi.item<int64_t>();
      TORCH_CHECK_VALUE(lo_v >= 0 && hi_v <= T, op, ": lengths must lie in [0, T] = [0, ", T,
                        "], got values in [", lo_v, ", ", hi_v, "]");
    }
  }
}

// The inputs of a recurrent op with G gate blocks; states: each (B, H) state with its name.
inline Dims check_sequence_inputs(const char* op, int64_t G, const at::Tensor& gi,
                                  std::initializer_list<std::pair<const at::Tensor*, const char*>> states,
                                  const at::Tensor& w_hh, const std::optional<at::Tensor>& b_ih,
                                  const std::optional<at::Tensor>& b_hh,
                                  const std::optional<at::Tensor>& reset,
                                  const std::optional<at::Tensor>& lengths) {
  TORCH_CHECK(gi.dim() == 3, op, ": gi must be (T, B, ", G, "H), got shape ", gi.sizes());
  const auto dt = gi.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kDouble || dt == at::kHalf || dt == at::kBFloat16, op,
              ": expected float32, float64, float16 or bfloat16 tensors, got ", dt);
  TORCH_CHECK(gi.is_cpu() || gi.is_cuda(), op, ": unsupported device ", gi.device());
  const int64_t T = gi.size(0), B = gi.size(1);
  TORCH_CHECK(gi.size(2) % G == 0, op, ": the last dimension of gi must be ", G, "H, got ", gi.size(2));
  const int64_t H = gi.size(2) / G;
  for (const auto& [state, name] : states) {
    TORCH_CHECK(state->dim() == 2 && state->size(0) == B && state->size(1) == H, op, ": ", name,
                " must be (B, H) = (", B, ", ", H, "), got shape ", state->sizes());
    check_same(*state, gi, name, op);
  }
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == G * H && w_hh.size(1) == H, op, ": w_hh must be (", G,
              "H, H) = (", G * H, ", ", H, "), got shape ", w_hh.sizes());
  check_same(w_hh, gi, "w_hh", op);
  for (const auto& [bias, name] : {std::pair{&b_ih, "b_ih"}, std::pair{&b_hh, "b_hh"}}) {
    if (!bias->has_value()) continue;
    TORCH_CHECK((*bias)->dim() == 1 && (*bias)->size(0) == G * H, op, ": ", name, " must be (", G, "H,) = (",
                G * H, ",), got shape ", (*bias)->sizes());
    check_same(**bias, gi, name, op);
  }
  check_masks(op, reset, lengths, gi, T, B);
  return {T, B, H};
}

// x (B, H) with the rows that restart at step 0 zeroed: reset[0] of the rows that have a step
// 0 (the state before step 0 is the initial state so masked; its gradient is masked the same
// way).
inline at::Tensor zero_rows_restarting_at_step0(const at::Tensor& x, const std::optional<at::Tensor>& reset,
                                                const std::optional<at::Tensor>& lengths) {
  if (!reset.has_value()) return x;
  at::Tensor restart = (*reset)[0];
  if (lengths.has_value()) restart = restart & (*lengths > 0);
  return x.masked_fill(restart.unsqueeze(1), 0);
}

// A contiguous copy of an optional tensor, or an undefined tensor.
inline at::Tensor contiguous_or_undefined(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

// A bias of n elements, or zeros in its place.
inline at::Tensor bias_or_zeros(const std::optional<at::Tensor>& b, const at::Tensor& like, int64_t n) {
  return b.has_value() ? b->contiguous() : at::zeros({n}, like.options());
}

// The fields of a kernel pass's arguments that no step of a sequence changes: sizes, the
// workspace's row stride (K blocks of H), the masks (contiguous, or undefined when absent).
template <typename Args>
Args sequence_args(int64_t T, int64_t B, int64_t H, int K, const at::Tensor& reset_c,
                   const at::Tensor& lengths_c) {
  Args a;
  a.B = B;
  a.H = H;
  a.T = T;
  a.ws_stride = K * H;
  a.reset = reset_c.defined() ? reset_c.data_ptr<bool>() : nullptr;
  a.lengths = lengths_c.defined() ? lengths_c.data_ptr<int64_t>() : nullptr;
  return a;
}

// Block k (of K blocks of H) of step t of a (T, B, K*H) workspace: a (B, H) view.
inline at::Tensor workspace_block(const at::Tensor& ws, int64_t t, int64_t B, int64_t H, int K, int k) {
  return ws.as_strided({B, H}, {K * H, 1}, ws.storage_offset() + t * B * K * H + k * H);
}

}  // namespace seqrec::seq
