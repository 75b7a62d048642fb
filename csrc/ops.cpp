// Every op's schema, in one place. Each op family registers its CPU and CUDA kernels in its
// csrc/<op>.cpp; the autograd kernels are in csrc/autograd.cpp; the fake (meta) kernels in
// seqrec_ext/ (Python).
#include <torch/library.h>

TORCH_LIBRARY(seqrec, m) {
  // ---- alias-table sampler (Walker / Vose); csrc/alias_sampler.cpp ----
  // weights (N,) floating, >= 0, finite, not all zero -> prob (N,) float32, alias (N,) int64
  m.def("alias_build(Tensor weights) -> (Tensor prob, Tensor alias)");
  // n draws from the table -> (n,) int64 item ids; honours torch seeding / an explicit generator
  m.def("alias_draw(Tensor prob, Tensor alias, SymInt n, Generator? generator=None) -> Tensor",
        {at::Tag::nondeterministic_seeded});
  // The counter-based core of alias_draw with its Philox key and counter offset given
  // explicitly: the same (key, offset) gives the same draws on every device.
  m.def("alias_draw_philox(Tensor prob, Tensor alias, SymInt n, int key, int offset) -> Tensor");

  // ---- GRU, one step or a sequence; gates ordered (r, z, n); shapes in csrc/gru.cpp ----
  // one step: gi (B, 3H), h (B, H), w_hh (3H, H) -> h_new (B, H), workspace for the backward
  m.def(
      "gru_step(Tensor gi, Tensor h, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, bool reset_after)"
      " -> (Tensor h_new, Tensor workspace)");
  m.def(
      "gru_step_backward(Tensor grad_h_new, Tensor w_hh, Tensor workspace, bool reset_after)"
      " -> (Tensor d_gi, Tensor d_h, Tensor d_w_hh, Tensor d_b_ih, Tensor d_b_hh)");
  // T steps: gi (T, B, 3H), h0 (B, H), reset (T, B) bool, lengths (B,) int64
  //   -> out (T, B, H), h_last (B, H), workspace
  m.def(
      "gru_sequence(Tensor gi, Tensor h0, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, "
      "Tensor? reset, Tensor? lengths, bool reset_after) -> (Tensor out, Tensor h_last, "
      "Tensor workspace)");
  m.def(
      "gru_sequence_backward(Tensor? grad_out, Tensor? grad_h_last, Tensor w_hh, "
      "Tensor workspace, Tensor? reset, Tensor? lengths, bool reset_after) -> (Tensor d_gi, "
      "Tensor d_h0, Tensor d_w_hh, Tensor d_b_ih, Tensor d_b_hh)");

  // ---- LSTM, T steps; gates ordered (i, f, g, o) as in torch.nn.LSTM; shapes in csrc/lstm.cpp ----
  // gi (T, B, 4H), h0, c0 (B, H), w_hh (4H, H), b_ih, b_hh (4H), reset (T, B) bool,
  // lengths (B,) int64 -> out (T, B, H), h_last (B, H), c_last (B, H), workspace (T, B, 6H)
  m.def(
      "lstm_sequence(Tensor gi, Tensor h0, Tensor c0, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, "
      "Tensor? reset, Tensor? lengths) -> (Tensor out, Tensor h_last, Tensor c_last, Tensor workspace)");
  m.def(
      "lstm_sequence_backward(Tensor? grad_out, Tensor? grad_h_last, Tensor? grad_c_last, Tensor w_hh, "
      "Tensor workspace, Tensor? reset, Tensor? lengths) -> (Tensor d_gi, Tensor d_h0, Tensor d_c0, "
      "Tensor d_w_hh, Tensor d_b_ih, Tensor d_b_hh)");

  // ---- sampled scoring + GRU4Rec ranking losses; shapes in csrc/sampled_loss.cpp ----
  // h (B, H), out_rows (M, H), M >= B, row i's target in column i -> loss (scalar, or (B,)
  // for reduction "none") and per-row statistics for the backward; reduction "mean" divides
  // the summed row losses by normalizer (default: B)
  m.def(
      "sampled_ranking_loss(Tensor h, Tensor out_rows, Tensor? out_bias, "
      "Tensor? logq_correction, Tensor? col_items, str loss, float bpreg, float elu_param, "
      "str reduction, float? normalizer=None) -> (Tensor loss, Tensor stats)");
  m.def(
      "sampled_ranking_loss_backward(Tensor grad_loss, Tensor h, Tensor out_rows, "
      "Tensor? out_bias, Tensor? logq_correction, Tensor? col_items, Tensor stats, str loss, "
      "float bpreg, float elu_param, str reduction, float? normalizer=None) -> (Tensor d_h, "
      "Tensor d_out_rows, Tensor d_out_bias)");

  // ---- the fused GRU4Rec training step; shapes in csrc/gru4rec_step.cpp ----
  // gru_step, then sampled_ranking_loss (reduction mean: the row sum divided by normalizer,
  // default B) on the (masked) new state, and the backward of both: the loss, the masked new
  // state (the state the next step starts from) and the gradients of gi, w_hh, b_h (the GRU's
  // input bias), b_hh (its hidden bias, whether or not one was given), out_rows and out_bias.
  // No gradient for h (truncated backprop).
  m.def(
      "gru4rec_step(Tensor gi, Tensor h, Tensor w_hh, Tensor b_h, Tensor? b_hh, Tensor out_rows, "
      "Tensor out_bias, Tensor? logq_correction, Tensor? hidden_mask, str loss, float bpreg, "
      "float elu_param, bool reset_after, float? normalizer=None) -> (Tensor loss, Tensor h_new, "
      "Tensor d_gi, Tensor d_w_hh, Tensor d_b_h, Tensor d_b_hh, Tensor d_out_rows, Tensor d_out_bias)");

  // the whole step, in place, for every embedding mode ("none", "separate", "constrained"):
  // the reset of new sessions' state rows, gathers, the input projection, gru4rec_step, and
  // Adagrad with momentum on the touched rows of the item tables and on the dense parameters;
  // params in the order of seqrec_ext.train_step_param_names; shapes in
  // csrc/gru4rec_train_step.cpp -> the loss (nothing updated if it is not finite), h_new
  m.def(
      "gru4rec_train_step_(Tensor(a!)[] params, Tensor(b!)[] accumulators, "
      "Tensor(c!)[] momentum_buffers, Tensor item_ids, Tensor target_ids, Tensor negative_ids, "
      "Tensor h, Tensor? reset, Tensor? logq_correction, Tensor? embed_mask, Tensor? hidden_mask, "
      "str embedding, str loss, float bpreg, float elu_param, bool reset_after, float? normalizer, "
      "float lr, float momentum, float eps) -> (Tensor loss, Tensor h_new)");

  // ---- Adagrad with momentum (GRU4Rec's optimizer), in place ----
  // touched rows of a table: param, accumulator, momentum_buffer (N, D); indices (K,) may
  // repeat (their gradients are summed first); grad_rows (K, D)
  m.def(
      "sparse_adagrad_momentum_(Tensor(a!) param, Tensor(b!) accumulator, "
      "Tensor(c!) momentum_buffer, Tensor indices, Tensor grad_rows, float lr, float momentum, "
      "float eps) -> ()");
  // the same rule for a dense parameter of any shape
  m.def(
      "adagrad_momentum_(Tensor(a!) param, Tensor(b!) accumulator, Tensor(c!) momentum_buffer, "
      "Tensor grad, float lr, float momentum, float eps) -> ()");

  // ---- full-catalogue ranking, no (B, N) matrix held; csrc/rank_items.cpp ----
  // h (B, H), table (N, H), bias (N,), targets (B,) int64, exclude (B, E) int64 (-1 pads)
  //   -> greater, equal (B,) int64 (empty without targets): other items scoring above / equal
  //      to the target; top_ids (B, k) int64, top_scores (B, k): best first, ties by lower id
  m.def(
      "rank_items(Tensor h, Tensor table, Tensor? bias, Tensor? targets, Tensor? exclude, int k, "
      "float elu_param) -> (Tensor greater, Tensor equal, Tensor top_ids, Tensor top_scores)");
}
