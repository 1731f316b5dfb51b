# Helpers for the per-layer libraries and the shared precompiled header.

set(MVA_LAYER_TARGETS "")

# What every layer needs from its dependencies (Torch with its ABI flag, fmt, spdlog, JSON,
# threads): an interface target of its own, exported with the layers, so an installed layer
# carries these requirements without the precompiled-header helper below.
add_library(mva_deps INTERFACE)
target_link_libraries(mva_deps INTERFACE ${TORCH_LIBRARIES} Threads::Threads fmt::fmt
                      spdlog::spdlog nlohmann_json::nlohmann_json)
# Installed, the torch target brings its own include directories (TorchConfig.cmake).
target_include_directories(mva_deps INTERFACE "$<BUILD_INTERFACE:${TORCH_INCLUDE_DIRS}>")

# One precompiled <torch/torch.h>, built once and reused by every target: parsing torch's headers
# dominates compile time, and this keeps a clean build within the CI budget.
# Every dependency that adds compile definitions is linked here, so that all targets compile with
# the same macros and the precompiled header stays valid for them. Build-only: targets take its
# header with REUSE_FROM and never link it, so it is not part of the installed package.
set(_mva_pch_headers <torch/torch.h> <fmt/format.h> <spdlog/spdlog.h> <nlohmann/json.hpp>
    <vector> <string> <map> <unordered_map> <memory>)
add_library(mva_pch STATIC ${CMAKE_CURRENT_LIST_DIR}/pch_stub.cpp)
target_link_libraries(mva_pch PUBLIC mva_deps)
target_precompile_headers(mva_pch PRIVATE ${_mva_pch_headers})

# The tests get their own copy: GoogleTest adds GTEST_HAS_PTHREAD, which the library must not see.
function(mva_add_test_pch)
  find_package(GTest REQUIRED)
  add_library(mva_test_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/pch_stub.cpp)
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
# include/. A layer whose folder has no sources yet becomes an interface target. Every layer is
# exported (install(EXPORT mvadapterTargets)); with MVA_BUILD_SHARED the layers are still built
# one by one (position-independent) and go into the one shared libmvadapter.so.
function(mva_add_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  set(_includes $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  if(_srcs)
    add_library(mva_${name} STATIC ${_srcs})
    target_include_directories(mva_${name} PUBLIC ${_includes})
    target_link_libraries(mva_${name} PUBLIC mva_deps ${ARG_DEPS})
    mva_use_pch(mva_${name})
  else()
    add_library(mva_${name} INTERFACE)
    target_include_directories(mva_${name} INTERFACE ${_includes})
    target_link_libraries(mva_${name} INTERFACE mva_deps ${ARG_DEPS})
  endif()
  set(MVA_LAYER_TARGETS ${MVA_LAYER_TARGETS} mva_${name} PARENT_SCOPE)
endfunction()
