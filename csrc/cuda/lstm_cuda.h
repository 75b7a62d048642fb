// CUDA cell passes of the LSTM op (csrc/lstm_pass.h), one launcher per data type: a kernel
// with one thread per (row, hidden unit), on `stream`.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "lstm_pass.h"

namespace seqrec::cuda {

void launch_lstm_pass(lstm::Pass pass, const lstm::PassArgs<float>& args, cudaStream_t stream);
void launch_lstm_pass(lstm::Pass pass, const lstm::PassArgs<double>& args, cudaStream_t stream);
void launch_lstm_pass(lstm::Pass pass, const lstm::PassArgs<__half>& args, cudaStream_t stream);
void launch_lstm_pass(lstm::Pass pass, const lstm::PassArgs<__nv_bfloat16>& args, cudaStream_t stream);

}  // namespace seqrec::cuda
