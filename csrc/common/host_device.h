// Qualifiers for per-element math shared by the CPU kernels (g++) and the CUDA kernels (nvcc).
#pragma once

#if defined(__CUDACC__)
#define SEQREC_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SEQREC_HOST_DEVICE inline
#endif

// The same for the pieces of a kernel pass's element that a vectorised CPU row loop calls: they
// must be inlined into the loop (an out-of-line call stops GCC's vectoriser).
#if defined(__CUDACC__)
#define SEQREC_ELEMENT __host__ __device__ __forceinline__
#else
#define SEQREC_ELEMENT inline __attribute__((always_inline))
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
