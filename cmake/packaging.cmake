# cmake/packaging.cmake: `cmake --install` and `cpack -G DEB`.
# qswitch and qswitch-bench go to bin/, the manual page to share/man/man1/ (the version filled
# in from project()), README.md and docs/ to share/doc/qswitch/.
include(GNUInstallDirs)
install(TARGETS qswitch qswitch-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
configure_file(${PROJECT_SOURCE_DIR}/docs/qswitch.1 ${PROJECT_BINARY_DIR}/generated/qswitch.1
               @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/generated/qswitch.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
        FILES_MATCHING PATTERN "*.md")

set(CPACK_PACKAGE_NAME qswitch)
set(CPACK_PACKAGE_VENDOR "qswitch")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "userspace virtual Ethernet switch for QEMU guests")
set(CPACK_PACKAGE_CONTACT "qswitch maintainers <qswitch@localhost>")
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Debian 12's runtime packages of the libraries the binaries link (ldd build/tools/qswitch).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libstdc++6, libuv1 (>= 1.44), libslirp0 (>= 4.7), libpcap0.8, libglib2.0-0, libvdeplug2, libldns3")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "qemu-system-x86")
include(CPack)
