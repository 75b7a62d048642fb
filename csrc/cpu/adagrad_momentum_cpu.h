// CPU loops of the Adagrad-with-momentum update (csrc/adagrad_momentum_math.h).
#pragma once

#include "adagrad_momentum_math.h"

namespace seqrec::cpu {

void adagrad_momentum_rows(const adagrad::RowsArgs<float>& args);
void adagrad_momentum_rows(const adagrad::RowsArgs<double>& args);

// The sparse-row update straight from (indices (K,), grad_rows (K, D)): duplicates are found by
// sorting the K indices (not the table), each distinct row's gradients are summed in the order
// they come (as index_add_ would), then the row is updated once. args.rows holds the K indices,
// args.grad the K gradient rows, args.U = K; the caller has checked the indices' range.
void sparse_adagrad_momentum_rows(const adagrad::RowsArgs<float>& args);
void sparse_adagrad_momentum_rows(const adagrad::RowsArgs<double>& args);

}  // namespace seqrec::cpu
