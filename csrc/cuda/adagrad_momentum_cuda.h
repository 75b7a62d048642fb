// CUDA kernels of the Adagrad-with-momentum update (csrc/adagrad_momentum_math.h): one thread per
// (touched row, value); with `order` set, the sorted form (duplicate rows summed in the kernel).
#pragma once

#include <cuda_runtime_api.h>

#include "adagrad_momentum_math.h"

namespace seqrec::cuda {

void launch_adagrad_momentum_rows(const adagrad::RowsArgs<float>& args, cudaStream_t stream);
void launch_adagrad_momentum_rows(const adagrad::RowsArgs<double>& args, cudaStream_t stream);

}  // namespace seqrec::cuda
