// Qualifiers for per-element math shared by the CPU kernels (g++) and the CUDA kernels (nvcc).
#pragma once

#if defined(__CUDACC__)
#define SEQREC_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SEQREC_HOST_DEVICE inline
#endif

// Full unrolling of a short fixed-trip loop: in nvcc's device pass and in g++ (the host pass
// of an nvcc compile, which knows neither pragma spelling, gets none).
#if defined(__CUDA_ARCH__)
#define SEQREC_UNROLL _Pragma("unroll")
#elif defined(__CUDACC__)
#define SEQREC_UNROLL
#else
#define SEQREC_UNROLL _Pragma("GCC unroll 16")
#endif
