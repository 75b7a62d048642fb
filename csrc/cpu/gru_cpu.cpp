// CPU gate passes of the GRU ops: the row loop of cpu/row_loop.h over each pass's element.
#include "cpu/gru_cpu.h"

#include <c10/util/Exception.h>

#include "cpu/row_loop.h"

namespace seqrec::cpu {
namespace {

template <typename scalar_t>
void dispatch(gru::Pass pass, const gru::PassArgs<scalar_t>& a) {
  const bool known = seq::dispatch_pass<gru::kPasses>(
      pass, [&](auto p) { run_rows<gru::GatePassElement<decltype(p)::value>>(a); });
  TORCH_CHECK(known, "unknown GRU gate pass ", static_cast<int>(pass));
}

}  // namespace

void run_gate_pass(gru::Pass pass, const gru::PassArgs<float>& a) { dispatch(pass, a); }
void run_gate_pass(gru::Pass pass, const gru::PassArgs<double>& a) { dispatch(pass, a); }
void run_gate_pass(gru::Pass pass, const gru::PassArgs<c10::Half>& a) { dispatch(pass, a); }
void run_gate_pass(gru::Pass pass, const gru::PassArgs<c10::BFloat16>& a) { dispatch(pass, a); }

}  // namespace seqrec::cpu
