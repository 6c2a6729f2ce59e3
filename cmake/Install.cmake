# What `cmake --install` and the Debian package (`make deb`, CPack below) put where. Paths follow
# the install prefix: /usr/local by default (make install), /usr for the package.
include(GNUInstallDirs)

install(TARGETS hookrelay RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The systemd units name the installed binary and docs: written for this prefix from the
# sources in systemd/ (which name /usr/local, the default prefix; the tests verify those).
foreach(unit hookrelay.service hookrelay.socket)
  file(READ ${PROJECT_SOURCE_DIR}/systemd/${unit} text)
  string(REPLACE "/usr/local/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" text "${text}")
  string(REPLACE "/usr/local/share/doc/hookrelay/" "${CMAKE_INSTALL_FULL_DOCDIR}/" text "${text}")
  string(REPLACE "make install puts it in /usr/local/lib/systemd/system"
                 "installed in ${CMAKE_INSTALL_PREFIX}/lib/systemd/system" text "${text}")
  file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/systemd/${unit} CONTENT "${text}")
endforeach()
# Relative to the prefix: /usr/local/lib/systemd/system and /usr/lib/systemd/system are both on
# systemd's unit search path.
install(FILES ${PROJECT_BINARY_DIR}/systemd/hookrelay.service
              ${PROJECT_BINARY_DIR}/systemd/hookrelay.socket
        DESTINATION lib/systemd/system)

# /etc/hookrelay/hookrelay.yaml (prefix /usr) or /usr/local/etc/hookrelay/hookrelay.yaml: the
# system config for the unit. A conffile in the package: an edited one survives upgrades.
install(FILES config/system/hookrelay.yaml DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/hookrelay)

install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The README beside the docs it links to (docs/x.md there is x.md here), and a word for whoever
# reads it installed rather than in a clone.
file(READ ${PROJECT_SOURCE_DIR}/README.md text)
string(REPLACE "](docs/" "](" text "${text}")
string(FIND "${text}" "## Getting started (Debian 12)\n" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md has no heading '## Getting started (Debian 12)' for the "
                      "installed copy's note (cmake/Install.cmake)")
endif()
string(REPLACE "## Getting started (Debian 12)\n"
               "## Getting started (Debian 12)\n\n> Installed from the Debian package or with \
`cmake --install`: the docs are beside this file, and [deployment.md](deployment.md) says how to \
configure and start the installed daemon. What follows is for a clone of the repository.\n"
               text "${text}")
# Written as it is (file(GENERATE) would read `$<` in it as a generator expression); configured
# again when the README changes.
file(WRITE ${PROJECT_BINARY_DIR}/doc/README.md "${text}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/README.md)
install(FILES ${PROJECT_BINARY_DIR}/doc/README.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES packaging/deb/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES config/hookrelay.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        RENAME hookrelay-dev.yaml)
install(FILES config/container/hookrelay.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        RENAME hookrelay-container.yaml)
install(DIRECTORY contrib/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/contrib)

# The man page and the bash completion come from the binary's own command line definition.
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/man/hookrelay.1.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
  COMMAND $<TARGET_FILE:hookrelay> generate man > ${PROJECT_BINARY_DIR}/man/hookrelay.1
  COMMAND gzip -9nf ${PROJECT_BINARY_DIR}/man/hookrelay.1
  DEPENDS hookrelay
  COMMENT "Generating the hookrelay(1) man page")
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/completions/hookrelay
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/completions
  COMMAND $<TARGET_FILE:hookrelay> generate bash-completion > ${PROJECT_BINARY_DIR}/completions/hookrelay
  DEPENDS hookrelay
  COMMENT "Generating the bash completion")
add_custom_target(hookrelay_docs ALL
  DEPENDS ${PROJECT_BINARY_DIR}/man/hookrelay.1.gz ${PROJECT_BINARY_DIR}/completions/hookrelay)
install(FILES ${PROJECT_BINARY_DIR}/man/hookrelay.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_BINARY_DIR}/completions/hookrelay
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# --- The Debian package: `make deb` (cpack -G DEB in a tree configured with prefix /usr) --------
# CPack rather than a debian/ directory: the package is built from the same install rules as
# `make install` (one list of files, one place to change), needs no debhelper toolchain, and
# dpkg-shlibdeps still derives Depends: from the binary's shared libraries. A debian/ directory is
# the right tool for an upload to Debian itself, which this package is not.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME hookrelay)
set(CPACK_PACKAGE_VENDOR "hookrelay")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "webhook relay from Git forges to Jenkins")
set(CPACK_PACKAGE_DESCRIPTION
    "hookrelay receives the webhooks of GitHub, GitLab, Gitea, Forgejo, Bitbucket Cloud,\n\
Bitbucket Data Center and any sender that signs its JSON with an HMAC, verifies them, matches\n\
them against YAML rules, stores the resulting triggers durably (SQLite, or PostgreSQL shared by\n\
several instances) and delivers them to Jenkins, retrying and holding a Jenkins that is down;\n\
it follows each build to its result and posts commit statuses back to the forge. It ships a\n\
systemd unit (Type=notify, sandboxed) and socket, an admin API with Prometheus metrics, and a\n\
command-line client.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # hookrelay_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "hookrelay developers <hookrelay-developers@invalid>"
    CACHE STRING "The package's Maintainer: field")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
include(CPack)
