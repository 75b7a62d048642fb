// CPU loop of the Adagrad-with-momentum update (csrc/adagrad_momentum.h).
#pragma once

#include "adagrad_momentum.h"

namespace seqrec::cpu {

void adagrad_momentum_rows(const adagrad::RowsArgs<float>& args);
void adagrad_momentum_rows(const adagrad::RowsArgs<double>& args);

}  // namespace seqrec::cpu
