// CPU cell passes of the LSTM op (csrc/lstm_pass.h), one overload per data type.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "lstm_pass.h"

namespace seqrec::cpu {

void run_lstm_pass(lstm::Pass pass, const lstm::PassArgs<float>& args);
void run_lstm_pass(lstm::Pass pass, const lstm::PassArgs<double>& args);
void run_lstm_pass(lstm::Pass pass, const lstm::PassArgs<c10::Half>& args);
void run_lstm_pass(lstm::Pass pass, const lstm::PassArgs<c10::BFloat16>& args);

}  // namespace seqrec::cpu
