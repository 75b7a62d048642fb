// Every op's schema, in one place. Kernels are registered per device in csrc/cpu and
// csrc/cuda; fake (meta) kernels and autograd in seqrec_ext/ (Python).
#include <torch/library.h>

TORCH_LIBRARY(seqrec, m) {
  // ---- alias-table sampler (SPEC 2.4) ----
  // weights (N,) floating, >= 0, finite, not all zero -> prob (N,) float32, alias (N,) int64
  m.def("alias_build(Tensor weights) -> (Tensor prob, Tensor alias)");
  // n draws from the table -> (n,) int64 item ids; honours torch seeding / an explicit generator
  m.def("alias_draw(Tensor prob, Tensor alias, SymInt n, Generator? generator=None) -> Tensor",
        {at::Tag::nondeterministic_seeded});
  // The counter-based core of alias_draw with its Philox key and counter offset given
  // explicitly: the same (key, offset) gives the same draws on every device.
  m.def("alias_draw_philox(Tensor prob, Tensor alias, SymInt n, int key, int offset) -> Tensor");
}
