# Configure-time checks of the LibTorch that find_package(Torch) found. Mismatches between a
# LibTorch and the Debian libraries otherwise show up minutes later as pages of undefined symbols
# at link time; here they stop the configure with one message that says what to take instead.
# Kept apart from CMakeLists.txt so tests/cmake/ can run each check on a small project with a fake
# LibTorch (tests/cmake/torch_checks_test.cmake).
#
#   mva_check_torch()   after find_package(Torch), find_package(fmt) and find_package(spdlog):
#                       all of the below.

# Prints "Torch <version>: CUDA <yes/no>, NCCL <yes/no>" and sets MVA_TORCH_HAS_CUDA and
# MVA_TORCH_HAS_NCCL in the caller's scope.
function(mva_describe_torch)
  # A CUDA LibTorch defines the torch_cuda target (Caffe2Targets.cmake); CAFFE2_USE_CUDA is what
  # its Caffe2Config sets once it found the CUDA toolkit.
  set(cuda OFF)
  if(TARGET torch_cuda OR CAFFE2_USE_CUDA)
    set(cuda ON)
  endif()
  # Every LibTorch installs ProcessGroupNCCL.hpp (Debian's CPU one too); the backend exists only
  # where torch_cuda was built with USE_C10D_NCCL, which it exports as a compile definition.
  set(nccl OFF)
  set(nccl_why "")
  set(defs "")
  foreach(t torch_cuda torch_cpu torch)
    if(TARGET ${t})
      get_target_property(d ${t} INTERFACE_COMPILE_DEFINITIONS)
      if(d)
        list(APPEND defs ${d})
      endif()
    endif()
  endforeach()
  set(header "")
  foreach(dir ${TORCH_INCLUDE_DIRS})
    if(NOT header AND EXISTS "${dir}/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")
      set(header "${dir}/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")
    endif()
  endforeach()
  if(cuda AND "USE_C10D_NCCL" IN_LIST defs AND header)
    set(nccl ON)
  elseif(NOT cuda)
    set(nccl_why " (no CUDA)")
  elseif(NOT header)
    set(nccl_why " (no ProcessGroupNCCL.hpp under the Torch include dirs)")
  else()
    set(nccl_why " (torch_cuda was built without USE_C10D_NCCL)")
  endif()
  set(cuda_version "")
  foreach(v CUDAToolkit_VERSION CUDA_VERSION)
    if(cuda AND NOT cuda_version AND ${v})
      set(cuda_version " ${${v}}")
    endif()
  endforeach()
  if(cuda)
    set(cuda_word "yes${cuda_version}")
  else()
    set(cuda_word "no")
  endif()
  if(nccl)
    set(nccl_word "yes")
  else()
    set(nccl_word "no${nccl_why}")
  endif()
  set(version "${Torch_VERSION}")
  if(NOT version)
    set(version "(version unknown)")
  endif()
  message(STATUS "Torch ${version} (${Torch_DIR}): CUDA ${cuda_word}, NCCL ${nccl_word}")
  set(MVA_TORCH_HAS_CUDA ${cuda} PARENT_SCOPE)
  set(MVA_TORCH_HAS_NCCL ${nccl} PARENT_SCOPE)
endfunction()

# Stops when the LibTorch uses the pre-C++11 std::string/std::list ABI: Debian's OpenCV,
# yaml-cpp, spdlog and fmt are built with the C++11 ABI, so their std::string arguments cannot
# link with code compiled for the old one.
function(mva_check_torch_abi)
  if(TORCH_CXX_FLAGS MATCHES "-D_GLIBCXX_USE_CXX11_ABI=0")
    message(FATAL_ERROR
      "Torch (${Torch_DIR}) is built with the pre-C++11 ABI (TORCH_CXX_FLAGS: "
      "${TORCH_CXX_FLAGS}), but the Debian libraries this build links (OpenCV, yaml-cpp, "
      "spdlog, fmt) use the C++11 ABI: linking would fail with undefined std::string symbols.\n"
      "Take a LibTorch built with the C++11 ABI: the \"cxx11 ABI\" LibTorch zip from pytorch.org "
      "(libtorch-cxx11-abi-shared-with-deps-*.zip), or the LibTorch inside a pip torch >= 2.x "
      "built with the new ABI (python3 -c 'import torch; print(torch.compiled_with_cxx11_abi(), "
      "torch.utils.cmake_prefix_path)' must print True), or Debian's libtorch-dev.")
  endif()
endfunction()

# Stops when TorchConfig.cmake came from one LibTorch and the Caffe2 config that defines its
# library targets from another. TorchConfig looks for Caffe2 next to itself only after CMake's
# default places, so with Debian's libtorch-dev installed a pip LibTorch would compile against its
# own headers and link Debian's CPU libraries.
function(mva_check_torch_caffe2)
  if(NOT Caffe2_DIR OR NOT Torch_DIR)
    return()
  endif()
  get_filename_component(expected "${Torch_DIR}/../Caffe2" REALPATH)
  get_filename_component(found "${Caffe2_DIR}" REALPATH)
  if(EXISTS "${expected}/Caffe2Config.cmake" AND NOT found STREQUAL expected)
    message(FATAL_ERROR
      "Torch's config is ${Torch_DIR}, but its libraries would come from the Caffe2 config in "
      "${Caffe2_DIR}, another LibTorch found first on CMake's search path. Configure with "
      "-DCaffe2_DIR=${expected} (scripts/bootstrap.sh with TORCH_DIR does).")
  endif()
endfunction()

# fmt's FMT_VERSION (e.g. 90100) as "9.1.0".
function(_mva_fmt_version_string number out)
  math(EXPR major "${number} / 10000")
  math(EXPR minor "${number} / 100 % 100")
  math(EXPR patch "${number} % 100")
  set(${out} "${major}.${minor}.${patch}" PARENT_SCOPE)
endfunction()

# Stops when <fmt/core.h>, as seen with Torch's include directories first (as every target here
# sees it), is another fmt than the fmt package the build links. LibTorch from pip or the zip
# (2.2 and later) installs its own fmt headers in its include dir; they shadow Debian's, and code
# compiled against fmt 10 headers then needs fmt::v10 symbols that Debian's libfmt 9 and libspdlog
# do not have.
function(mva_check_torch_fmt)
  if(NOT TARGET fmt::fmt)
    message(FATAL_ERROR "mva_check_torch_fmt: call find_package(fmt) first")
  endif()
  set(fmt_dirs "")
  foreach(t fmt::fmt fmt::fmt-header-only)
    if(TARGET ${t})
      get_target_property(d ${t} INTERFACE_INCLUDE_DIRECTORIES)
      if(d)
        list(APPEND fmt_dirs ${d})
      endif()
    endif()
  endforeach()
  set(dirs ${TORCH_INCLUDE_DIRS} ${fmt_dirs})
  set(key "${dirs}|${CMAKE_CXX_COMPILER}")
  if(NOT DEFINED MVA_SEEN_FMT_VERSION OR NOT "${_MVA_SEEN_FMT_KEY}" STREQUAL "${key}")
    set(probe_dir "${CMAKE_BINARY_DIR}/CMakeFiles/mva_fmt_probe")
    # The number is read back out of the object file, as CMake reads compiler versions, so the
    # answer is what the compiler saw, whatever the include order rules of the day.
    file(WRITE "${probe_dir}/fmt_version.cpp"
      "#include <fmt/core.h>\n"
      "#define MVA_STR2(x) #x\n"
      "#define MVA_STR(x) MVA_STR2(x)\n"
      "extern const char mva_fmt_version[];\n"
      "const char mva_fmt_version[] = \"MVA_FMT_VERSION[\" MVA_STR(FMT_VERSION) \"]\";\n")
    set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
    try_compile(ok "${probe_dir}/build" SOURCES "${probe_dir}/fmt_version.cpp"
                CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${dirs}"
                OUTPUT_VARIABLE log
                COPY_FILE "${probe_dir}/fmt_version.a")
    set(seen "")
    if(ok)
      file(STRINGS "${probe_dir}/fmt_version.a" line REGEX "MVA_FMT_VERSION\\[[0-9]+\\]" LIMIT_COUNT 1)
      string(REGEX REPLACE ".*MVA_FMT_VERSION\\[([0-9]+)\\].*" "\\1" seen "${line}")
    endif()
    if(NOT seen)
      message(FATAL_ERROR
        "Cannot read FMT_VERSION from <fmt/core.h> with the include directories ${dirs} "
        "(Torch's, then fmt's). Compiler output:\n${log}")
    endif()
    set(MVA_SEEN_FMT_VERSION "${seen}" CACHE INTERNAL "FMT_VERSION seen with Torch's includes first")
    set(_MVA_SEEN_FMT_KEY "${key}" CACHE INTERNAL "")
  endif()
  _mva_fmt_version_string(${MVA_SEEN_FMT_VERSION} seen)
  if(NOT fmt_VERSION)
    message(WARNING "fmt package has no version; cannot compare it with fmt ${seen} that the "
                    "compiler sees")
    return()
  endif()
  # Only the major version matters for linking: fmt's inline namespace is fmt::v<major>.
  string(REGEX MATCH "^[0-9]+" seen_major "${seen}")
  string(REGEX MATCH "^[0-9]+" linked_major "${fmt_VERSION}")
  if(NOT seen_major STREQUAL linked_major)
    # Name the header that wins, for the message.
    set(where "")
    foreach(dir ${dirs})
      if(NOT where AND EXISTS "${dir}/fmt/core.h")
        set(where "${dir}/fmt/core.h")
      endif()
    endforeach()
    message(FATAL_ERROR
      "fmt mismatch: the compiler sees fmt ${seen} (${where}, shipped with Torch at "
      "${Torch_DIR}) before the fmt ${fmt_VERSION} package (${fmt_DIR}) that this build links, "
      "with spdlog (${spdlog_DIR}) built against it. Code compiled with fmt ${seen_major}'s "
      "headers needs fmt::v${seen_major} symbols that libfmt ${fmt_VERSION} does not have: the "
      "link would fail with undefined fmt::v${seen_major} references.\n"
      "Fix, either:\n"
      "  - build against fmt ${seen} and a spdlog built with it as an external fmt: install both "
      "(from source, spdlog with -DSPDLOG_FMT_EXTERNAL=ON) into one prefix and configure with "
      "-DCMAKE_PREFIX_PATH=<that prefix> (or -Dfmt_DIR=... -Dspdlog_DIR=...);\n"
      "  - or take a LibTorch whose headers do not carry another fmt: Debian's libtorch-dev "
      "(unset TORCH_DIR for scripts/bootstrap.sh), or a LibTorch older than 2.2.")
  endif()
  if(NOT seen VERSION_EQUAL fmt_VERSION)
    message(WARNING "The compiler sees fmt ${seen} headers but links fmt ${fmt_VERSION} "
                    "(${fmt_DIR}): the same fmt::v${seen_major} ABI, so it links, but mixing "
                    "releases is not what fmt tests.")
  else()
    message(STATUS "fmt ${fmt_VERSION} (${fmt_DIR}): the same fmt as the compiler sees with "
                   "Torch's include dirs first")
  endif()
endfunction()

function(mva_check_torch)
  mva_describe_torch()
  set(MVA_TORCH_HAS_CUDA ${MVA_TORCH_HAS_CUDA} PARENT_SCOPE)
  set(MVA_TORCH_HAS_NCCL ${MVA_TORCH_HAS_NCCL} PARENT_SCOPE)
  mva_check_torch_caffe2()
  mva_check_torch_abi()
  mva_check_torch_fmt()
endfunction()
