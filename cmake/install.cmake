# Install rules: forqd, forq, libforq (shared and static) with its headers,
# pkg-config and CMake package files, the systemd units with their sysusers.d
# and tmpfiles.d snippets, the example config and the man pages.
#
# Destinations are relative to the prefix (GNUInstallDirs), so both
#     cmake --install build --prefix DIR
#     DESTDIR=/tmp/stage cmake --install build
# put everything under DIR or the staging root.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# systemd searches /usr/local/lib/... as well as /usr/lib/..., so the default
# follows the prefix. Packagers may give an absolute directory instead.
set(FORQ_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Directory of forqd.service and forqd.socket (relative: under the prefix)")
set(FORQ_SYSUSERSDIR "lib/sysusers.d" CACHE STRING
    "Directory of the sysusers.d snippet (relative: under the prefix)")
set(FORQ_TMPFILESDIR "lib/tmpfiles.d" CACHE STRING
    "Directory of the tmpfiles.d snippet (relative: under the prefix)")

# ---------------------------------------------------------------- programs
install(TARGETS forqd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS forq_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# ---------------------------------------------------------------- libforq
install(TARGETS forq forq_static EXPORT forqTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/forq.h include/forq_task.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(FORQ_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/forq)
install(EXPORT forqTargets NAMESPACE forq:: DESTINATION ${FORQ_CMAKEDIR})
configure_package_config_file(cmake/forqConfig.cmake.in
    ${PROJECT_BINARY_DIR}/cmake/forqConfig.cmake
    INSTALL_DESTINATION ${FORQ_CMAKEDIR})
# One major version, one ABI: libforq.so.0 serves every 0.x.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/forqConfigVersion.cmake
    COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/forqConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/forqConfigVersion.cmake
        DESTINATION ${FORQ_CMAKEDIR})

# ---------------------------------------------------------------- configured at install time
# forq.pc and forqd.service name absolute paths. They are configured when
# the install runs, not when the build is configured, so that they name the
# prefix really installed to (`cmake --install --prefix DIR` changes it
# after the fact; DESTDIR does not, as it should not). The @VARS@ they use:
#   FORQ_PREFIX, FORQ_FULL_SBINDIR, FORQ_FULL_LIBDIR, FORQ_FULL_INCLUDEDIR,
#   PROJECT_VERSION
set(FORQ_INSTALL_TIME_VARS "set(FORQ_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")\n")
foreach(dir SBINDIR LIBDIR INCLUDEDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
        set(full "${CMAKE_INSTALL_${dir}}")
    else()
        set(full "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_${dir}}")
    endif()
    string(APPEND FORQ_INSTALL_TIME_VARS "set(FORQ_FULL_${dir} \"${full}\")\n")
endforeach()
string(APPEND FORQ_INSTALL_TIME_VARS "set(PROJECT_VERSION \"${PROJECT_VERSION}\")\n")

# forq_install_configured(SRC OUT DEST): configure SRC into OUT (in the build
# tree) at install time, then install OUT into DEST.
function(forq_install_configured src out dest)
    install(CODE "${FORQ_INSTALL_TIME_VARS}\
configure_file(\"${PROJECT_SOURCE_DIR}/${src}\" \"${out}\" @ONLY)")
    install(FILES ${out} DESTINATION ${dest})
endfunction()

forq_install_configured(cmake/forq.pc.in ${PROJECT_BINARY_DIR}/install/forq.pc
                        ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# ---------------------------------------------------------------- systemd
forq_install_configured(systemd/forqd.service.in ${PROJECT_BINARY_DIR}/install/forqd.service
                        ${FORQ_SYSTEMD_UNITDIR})
install(FILES systemd/forqd.socket DESTINATION ${FORQ_SYSTEMD_UNITDIR})
install(FILES systemd/forq.sysusers DESTINATION ${FORQ_SYSUSERSDIR} RENAME forq.conf)
install(FILES systemd/forq.tmpfiles DESTINATION ${FORQ_TMPFILESDIR} RENAME forq.conf)
# forqd reads /etc/forq/forqd.conf; installing into /etc is left to the
# operator (or the distribution package), who copies this example there.
install(FILES systemd/forqd.conf DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# ---------------------------------------------------------------- man pages
install(FILES man/forqd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES man/forq.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
