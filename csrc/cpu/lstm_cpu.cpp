// CPU cell passes of the LSTM op: the row loop of cpu/row_loop.h over each pass's element.
#include "cpu/lstm_cpu.h"

#include <c10/util/Exception.h>

#include "cpu/row_loop.h"

namespace seqrec::cpu {
namespace {

template <typename scalar_t>
void dispatch(lstm::Pass pass, const lstm::PassArgs<scalar_t>& a) {
  const bool known = seq::dispatch_pass<lstm::kPasses>(
      pass, [&](auto p) { run_rows<lstm::PassElement<decltype(p)::value>>(a); });
  TORCH_CHECK(known, "unknown LSTM cell pass ", static_cast<int>(pass));
}

}  // namespace

void run_lstm_pass(lstm::Pass pass, const lstm::PassArgs<float>& a) { dispatch(pass, a); }
void run_lstm_pass(lstm::Pass pass, const lstm::PassArgs<double>& a) { dispatch(pass, a); }
void run_lstm_pass(lstm::Pass pass, const lstm::PassArgs<c10::Half>& a) { dispatch(pass, a); }
void run_lstm_pass(lstm::Pass pass, const lstm::PassArgs<c10::BFloat16>& a) { dispatch(pass, a); }

}  // namespace seqrec::cpu
