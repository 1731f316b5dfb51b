# Install rules: the libraries, the public headers, the `mvadapter` program, the BPE vocabulary
# and the CMake package, so that a consumer writes
#   find_package(mvadapter 0.2 REQUIRED)
#   target_link_libraries(app PRIVATE mvadapter::mvadapter)
# Included from the top CMakeLists.txt when MVA_INSTALL is on.
include(CMakePackageConfigHelpers)

set(MVA_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/mvadapter)

install(TARGETS ${_mva_export_targets} EXPORT mvadapterTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS mvadapter_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/mvadapter DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
# Where find_asset() looks beside an installed program (runtime.h) and where the package config
# points mvadapter_DATA_DIR.
install(FILES ${PROJECT_SOURCE_DIR}/assets/bpe_simple_vocab_16e6.txt.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/mvadapter)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/web DESTINATION ${CMAKE_INSTALL_DATADIR}/mvadapter)  # serve's page

install(EXPORT mvadapterTargets NAMESPACE mvadapter:: DESTINATION ${MVA_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mvadapterConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/mvadapterConfig.cmake
                              INSTALL_DESTINATION ${MVA_INSTALL_CMAKEDIR}
                              PATH_VARS CMAKE_INSTALL_DATADIR)
# 0.x: a minor release may change the API, so 0.2 accepts 0.2.* only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mvadapterConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mvadapterConfig.cmake
              ${PROJECT_BINARY_DIR}/mvadapterConfigVersion.cmake
        DESTINATION ${MVA_INSTALL_CMAKEDIR})
