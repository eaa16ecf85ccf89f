# install.cmake - run by `cmake --install` (see deploy/CMakeLists.txt):
# writes the unit, sysusers.d and tmpfiles.d entries with this install's
# paths, and the example configuration and policy unless already there.
set(_prefix "${CMAKE_INSTALL_PREFIX}")
set(_dest "$ENV{DESTDIR}")
if(_prefix STREQUAL "/usr")
  set(ZTB_CONFDIR "/etc/ztb")
else()
  set(ZTB_CONFDIR "${_prefix}/etc/ztb")
endif()
set(ZTB_SBINDIR "${_prefix}/${ZTB_SBIN_REL}")

function(ztb_deploy_file src dst)
  message(STATUS "Installing: ${_dest}${dst}")
  configure_file("${ZTB_DEPLOY_SRC}/${src}" "${_dest}${dst}" @ONLY)
endfunction()

ztb_deploy_file(ztb-broker.service.in "${_prefix}/lib/systemd/system/ztb-broker.service")
ztb_deploy_file(sysusers-ztb.conf "${_prefix}/lib/sysusers.d/ztb.conf")
ztb_deploy_file(tmpfiles-ztb.conf.in "${_prefix}/lib/tmpfiles.d/ztb.conf")
foreach(pair "ztb-broker.conf.in;ztb-broker.conf" "policy.json;policy.json")
  list(GET pair 0 src)
  list(GET pair 1 name)
  if(EXISTS "${_dest}${ZTB_CONFDIR}/${name}")
    message(STATUS "Kept (exists): ${_dest}${ZTB_CONFDIR}/${name}")
  else()
    ztb_deploy_file("${src}" "${ZTB_CONFDIR}/${name}")
  endif()
endforeach()
