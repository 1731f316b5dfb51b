# Runs one case of the configure-time Torch checks (cmake/mva_torch_checks.cmake):
#   cmake -DMVA_SOURCE_DIR=... -DWORK_DIR=... -DFMT_VERSION=9.1.0 -DCASE=<case> -P this file
# Each case writes a fake LibTorch (a TorchConfig.cmake, and an include dir that may hold an
# fmt/core.h), configures tests/cmake/torch_checks against it, and checks the outcome and the
# message. The "real_torch" case uses the real LibTorch the build found.
foreach(v MVA_SOURCE_DIR WORK_DIR FMT_VERSION CASE)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "torch_checks_test: -D${v}=... is required")
  endif()
endforeach()

set(root "${WORK_DIR}/${CASE}")
file(REMOVE_RECURSE "${root}")
set(torch "${root}/libtorch")

# fake_torch(VERSION v FLAGS f [CUDA] [NCCL] [FMT_VERSION n])
function(fake_torch)
  cmake_parse_arguments(A "CUDA;NCCL;CAFFE2" "VERSION;FLAGS;FMT_VERSION" "" ${ARGN})
  set(cfg "${torch}/share/cmake/Torch")
  file(MAKE_DIRECTORY "${torch}/include/torch/csrc/distributed/c10d")
  # Every LibTorch installs this header, with or without NCCL.
  file(WRITE "${torch}/include/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp" "#pragma once\n")
  if(A_FMT_VERSION)
    file(WRITE "${torch}/include/fmt/core.h" "#pragma once\n#define FMT_VERSION ${A_FMT_VERSION}\n")
  endif()
  set(body "")
  if(A_CAFFE2)
    # As the real TorchConfig.cmake: the Caffe2 config next to it, after CMake's default places.
    file(WRITE "${torch}/share/cmake/Caffe2/Caffe2Config.cmake" "set(CAFFE2_FOUND TRUE)\n")
    string(APPEND body "find_package(Caffe2 REQUIRED PATHS \${CMAKE_CURRENT_LIST_DIR}/../Caffe2)\n")
  endif()
  string(APPEND body "set(TORCH_INCLUDE_DIRS \"${torch}/include\" \"${torch}/include/torch/csrc/api/include\")\n")
  string(APPEND body "set(TORCH_CXX_FLAGS \"${A_FLAGS}\")\n")
  string(APPEND body "add_library(torch INTERFACE IMPORTED)\n")
  string(APPEND body "add_library(torch_cpu INTERFACE IMPORTED)\n")
  string(APPEND body "set_target_properties(torch_cpu PROPERTIES INTERFACE_COMPILE_DEFINITIONS \"USE_DISTRIBUTED;USE_C10D_GLOO\")\n")
  if(A_CUDA)
    string(APPEND body "add_library(torch_cuda INTERFACE IMPORTED)\nset(CUDA_VERSION 12.1)\n")
    if(A_NCCL)
      string(APPEND body "set_target_properties(torch_cuda PROPERTIES INTERFACE_COMPILE_DEFINITIONS USE_C10D_NCCL)\n")
    endif()
  endif()
  string(APPEND body "set(TORCH_LIBRARIES torch)\nset(TORCH_FOUND TRUE)\n")
  file(WRITE "${cfg}/TorchConfig.cmake" "${body}")
  file(WRITE "${cfg}/TorchConfigVersion.cmake"
       "set(PACKAGE_VERSION ${A_VERSION})\nset(PACKAGE_VERSION_COMPATIBLE TRUE)\n")
endfunction()

# FMT_VERSION as fmt/core.h writes it (9.1.0 -> 90100), for a Torch that bundles the same fmt.
string(REPLACE "." ";" parts "${FMT_VERSION}")
list(GET parts 0 major)
list(GET parts 1 minor)
list(GET parts 2 patch)
math(EXPR same_fmt "${major} * 10000 + ${minor} * 100 + ${patch}")
math(EXPR next_major "${major} + 1")
math(EXPR other_fmt "${next_major} * 10000 + 201")

set(torch_dir "${torch}/share/cmake/Torch")
set(extra_args "")
set(expect_ok TRUE)
set(expect "")
if(CASE STREQUAL "real_torch")
  # The LibTorch this build uses, with what the build's own configure found (Debian's CPU one in
  # CI: no CUDA, and NCCL's header present but no backend).
  set(torch_dir "${REAL_TORCH_DIR}")
  set(expect "probe: MVA_TORCH_HAS_CUDA=${REAL_HAS_CUDA} MVA_TORCH_HAS_NCCL=${REAL_HAS_NCCL}")
  if(NOT REAL_HAS_CUDA)
    list(APPEND expect "CUDA no" "NCCL no (no CUDA)")
  endif()
elseif(CASE STREQUAL "cuda_nccl")
  fake_torch(VERSION 2.3.1 FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1" CUDA NCCL)
  set(expect "Torch 2.3.1" "CUDA yes 12.1, NCCL yes" "MVA_TORCH_HAS_CUDA=ON MVA_TORCH_HAS_NCCL=ON")
elseif(CASE STREQUAL "cuda_without_nccl")
  fake_torch(VERSION 2.3.1 FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1" CUDA)
  set(expect "CUDA yes 12.1, NCCL no (torch_cuda was built without USE_C10D_NCCL)"
             "MVA_TORCH_HAS_NCCL=OFF")
elseif(CASE STREQUAL "pre_cxx11_abi")
  fake_torch(VERSION 2.1.0 FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")
  set(expect_ok FALSE)
  set(expect "pre-C++11 ABI" "-D_GLIBCXX_USE_CXX11_ABI=0" "cxx11 ABI\" LibTorch zip"
             "pip torch >= 2.x")
elseif(CASE STREQUAL "bundled_fmt_same")
  fake_torch(VERSION 2.2.0 FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1" FMT_VERSION ${same_fmt})
  set(expect "the same fmt as the compiler sees")
elseif(CASE STREQUAL "bundled_fmt_other")
  fake_torch(VERSION 2.2.0 FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1" FMT_VERSION ${other_fmt})
  set(expect_ok FALSE)
  set(expect "fmt mismatch" "fmt ${next_major}.2.1 (${torch}/include/fmt/core.h"
             "fmt ${FMT_VERSION} package" "undefined fmt::v${next_major}" "SPDLOG_FMT_EXTERNAL")
elseif(CASE STREQUAL "caffe2_elsewhere")
  # Another LibTorch's Caffe2 config found first (Debian's, when libtorch-dev is installed).
  fake_torch(VERSION 2.3.1 FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1" CAFFE2)
  file(WRITE "${root}/other/Caffe2/Caffe2Config.cmake" "set(CAFFE2_FOUND TRUE)\n")
  set(extra_args "-DCaffe2_DIR=${root}/other/Caffe2")
  set(expect_ok FALSE)
  set(expect "its libraries would come from the Caffe2 config in ${root}/other/Caffe2"
             "-DCaffe2_DIR=${torch}/share/cmake/Caffe2")
elseif(CASE STREQUAL "caffe2_beside")
  fake_torch(VERSION 2.3.1 FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1" CAFFE2)
  set(extra_args "-DCaffe2_DIR=${torch}/share/cmake/Caffe2")
  set(expect "Torch 2.3.1")
else()
  message(FATAL_ERROR "torch_checks_test: unknown CASE ${CASE}")
endif()

execute_process(
  COMMAND ${CMAKE_COMMAND} -S "${MVA_SOURCE_DIR}/tests/cmake/torch_checks" -B "${root}/build"
          -DMVA_SOURCE_DIR=${MVA_SOURCE_DIR} -DTorch_DIR=${torch_dir} ${extra_args}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
# CMake wraps long messages; join the lines so an expected phrase can span two.
string(REGEX REPLACE "\n *" " " flat "${all}")
if(expect_ok AND NOT rc EQUAL 0)
  message(FATAL_ERROR "${CASE}: configure failed (rc ${rc}), expected it to pass:\n${all}")
endif()
if(NOT expect_ok AND rc EQUAL 0)
  message(FATAL_ERROR "${CASE}: configure passed, expected it to stop:\n${all}")
endif()
foreach(e ${expect})
  string(FIND "${flat}" "${e}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${CASE}: expected \"${e}\" in the configure output:\n${all}")
  endif()
endforeach()
message(STATUS "${CASE}: ok")
