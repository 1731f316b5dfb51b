# Helpers for the per-layer libraries and the shared precompiled header.

set(MVA_LAYER_TARGETS "")

# One precompiled <torch/torch.h>, built once and reused by every target: parsing torch's headers
# dominates compile time, and this keeps a clean build within the CI budget.
# Every dependency that adds compile definitions is linked here, so that all targets compile with
# the same macros and the precompiled header stays valid for them.
set(_mva_pch_headers <torch/torch.h> <fmt/format.h> <spdlog/spdlog.h> <nlohmann/json.hpp>
    <vector> <string> <map> <unordered_map> <memory>)
add_library(mva_pch STATIC ${CMAKE_CURRENT_LIST_DIR}/pch_stub.cpp)
target_link_libraries(mva_pch PUBLIC ${TORCH_LIBRARIES} Threads::Threads fmt::fmt spdlog::spdlog
                      nlohmann_json::nlohmann_json)
target_include_directories(mva_pch PUBLIC ${TORCH_INCLUDE_DIRS})
target_precompile_headers(mva_pch PRIVATE ${_mva_pch_headers})

# The tests get their own copy: GoogleTest adds GTEST_HAS_PTHREAD, which the library must not see.
function(mva_add_test_pch)
  find_package(GTest REQUIRED)
  add_library(mva_test_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/pch_stub.cpp)
  target_link_libraries(mva_test_pch PUBLIC mva_pch GTest::gtest)
  target_precompile_headers(mva_test_pch PRIVATE ${_mva_pch_headers} <gtest/gtest.h>)
endfunction()

function(mva_use_pch target)
  target_precompile_headers(${target} REUSE_FROM mva_pch)
  # Loading the precompiled header costs ~20 s per translation unit here, more than most of our
  # files take to compile; unity batches pay it once per batch (bench/RESULTS.md, "build").
  # Off for day-to-day work, where one edited file should recompile alone.
  if(MVA_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
  endif()
endfunction()

function(mva_use_test_pch target)
  target_precompile_headers(${target} REUSE_FROM mva_test_pch)
endfunction()

# mva_add_layer(name DEPS ...): library mva_<name> from src/<name>/*.cpp, public headers in
# include/. A layer whose folder has no sources yet becomes an interface target.
function(mva_add_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  if(_srcs)
    add_library(mva_${name} STATIC ${_srcs})
    target_include_directories(mva_${name} PUBLIC ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(mva_${name} PUBLIC mva_pch ${ARG_DEPS})
    mva_use_pch(mva_${name})
  else()
    add_library(mva_${name} INTERFACE)
    target_include_directories(mva_${name} INTERFACE ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(mva_${name} INTERFACE mva_pch ${ARG_DEPS})
  endif()
  set(MVA_LAYER_TARGETS ${MVA_LAYER_TARGETS} mva_${name} PARENT_SCOPE)
endfunction()
