// The Python extension module: loading it registers the ops (schemas in ops.cpp, each
// family's CPU and CUDA kernels in its csrc/<op>.cpp, autograd in autograd.cpp); it also
// exposes the facts of the build, and small hooks the tests use to check shared math.
#include <Python.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <c10/util/Exception.h>

#include <cstdint>
#include <string>

#include "common/philox.h"
#include "gru4rec_train_step.h"
#include "gru_math.h"
#include "lstm_math.h"
#include "sampled_loss.h"
#include "sampled_loss_math.h"

namespace py = pybind11;

namespace {

py::dict build_info() {
  py::dict info;
  info["version"] = SEQREC_VERSION;
  info["torch_version"] = SEQREC_BUILT_TORCH_VERSION;
#ifdef SEQREC_WITH_CUDA
  info["with_cuda"] = true;
  py::list archs;
  const std::string all = SEQREC_CUDA_ARCHS;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find(' ', start);
    if (end == std::string::npos) end = all.size();
    if (end > start) archs.append(all.substr(start, end - start));
    start = end + 1;
  }
  info["cuda_archs"] = archs;
  info["nvcc_version"] = SEQREC_CUDA_COMPILER_VERSION;
#else
  info["with_cuda"] = false;
  info["cuda_archs"] = py::list();
  info["nvcc_version"] = "";
#endif
#if defined(__clang__)
  info["cxx_compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  info["cxx_compiler"] = std::string("gcc ") + __VERSION__;
#else
  info["cxx_compiler"] = "unknown";
#endif
  info["cxx11_abi"] = static_cast<bool>(_GLIBCXX_USE_CXX11_ABI);
  return info;
}

py::tuple philox4x32_10(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t key) {
  const seqrec::Philox4x32 out = seqrec::philox4x32_10(ctr_lo, ctr_hi, key);
  return py::make_tuple(out.v[0], out.v[1], out.v[2], out.v[3]);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "seqrec_ext compiled ops (registered as torch.ops.seqrec.*) and build facts";
  m.def("build_info", &build_info, "Facts of the build: versions, CUDA architectures, compiler.");
  m.def("_philox4x32_10", &philox4x32_10, py::arg("ctr_lo"), py::arg("ctr_hi"), py::arg("key"),
        "Philox4x32-10 block for a 128-bit counter and 64-bit key (test hook for the shared RNG).");
  // constants the Python side needs (fake kernels' shapes), from the one place they are defined
  m.attr("GRU_WORKSPACE_BLOCKS") =
      py::make_tuple(seqrec::gru::kBlocksResetBefore, seqrec::gru::kBlocksResetAfter);
  m.attr("LSTM_WORKSPACE_BLOCKS") = seqrec::lstm::kBlocks;
  m.attr("SAMPLED_LOSS_STATS") = seqrec::sampled_loss::kStats;
  m.attr("LOSSES") = py::tuple(py::cast(seqrec::loss_names()));
  m.attr("EMBEDDING_MODES") = py::tuple(py::cast(seqrec::embedding_modes()));
  m.def(
      "train_step_param_names",
      [](const std::string& embedding, bool with_b_hh) {
        try {
          return py::tuple(py::cast(seqrec::train_step_param_names(embedding, with_b_hh)));
        } catch (const c10::ValueError& err) {
          throw py::value_error(err.what_without_backtrace());
        }
      },
      py::arg("embedding"), py::arg("with_b_hh"),
      "The parameters gru4rec_train_step_ updates for an embedding mode, in the order of its lists.");
}
