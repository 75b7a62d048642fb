// CUDA kernel of the Adagrad-with-momentum update (csrc/adagrad_momentum_math.h): one thread per
// (touched row, value).
#pragma once

#include <cuda_runtime_api.h>

#include "adagrad_momentum_math.h"

namespace seqrec::cuda {

void launch_adagrad_momentum_rows(const adagrad::RowsArgs<float>& args, cudaStream_t stream);
void launch_adagrad_momentum_rows(const adagrad::RowsArgs<double>& args, cudaStream_t stream);

}  // namespace seqrec::cuda
