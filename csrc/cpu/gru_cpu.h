// CPU gate passes of the GRU ops (csrc/gru_pass.h), one overload per data type.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "gru_pass.h"

namespace seqrec::cpu {

void run_gate_pass(gru::Pass pass, const gru::PassArgs<float>& args);
void run_gate_pass(gru::Pass pass, const gru::PassArgs<double>& args);
void run_gate_pass(gru::Pass pass, const gru::PassArgs<c10::Half>& args);
void run_gate_pass(gru::Pass pass, const gru::PassArgs<c10::BFloat16>& args);

}  // namespace seqrec::cpu
