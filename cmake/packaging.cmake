# `make deb`: a Debian package of the one binary (CPack's DEB generator), laid out like a
# Debian service: /usr/bin/zapd (stripped), /etc/zapd/zapd.toml (a conffile, data_dir =
# /var/lib/zapd), /lib/systemd/system/zapd.service (packaging/zapd.service, hardened), and the
# maintainer scripts in packaging/debian/ (the zapd user, /var/lib/zapd 0700, enable + start
# through deb-systemd-helper / deb-systemd-invoke, remove keeps the data, purge deletes it).
# Output: <build dir>/zapd_<version>_<arch>.deb. Needs dpkg-shlibdeps (dpkg-dev) for Depends.

install(TARGETS zapd RUNTIME DESTINATION bin)

# The packaged config is config/zapd.toml (every key documented) with the data in /var/lib/zapd.
file(READ ${PROJECT_SOURCE_DIR}/config/zapd.toml ZAPD_TOML)
string(FIND "${ZAPD_TOML}" "data_dir = \"./data\"" ZAPD_DATA_DIR_AT)
if(ZAPD_DATA_DIR_AT EQUAL -1)
  message(FATAL_ERROR "cmake/packaging.cmake: config/zapd.toml has no line 'data_dir = \"./data\"' to point at /var/lib/zapd")
endif()
string(REPLACE "data_dir = \"./data\"" "data_dir = \"/var/lib/zapd\"" ZAPD_TOML "${ZAPD_TOML}")
string(REPLACE "# zapd configuration." "# zapd configuration (installed by the zapd package; the service runs\n# /usr/bin/zapd --config /etc/zapd/zapd.toml serve as the zapd user)."
       ZAPD_TOML "${ZAPD_TOML}")
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/packaging/zapd.toml CONTENT "${ZAPD_TOML}" @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/zapd.toml DESTINATION /etc/zapd)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/zapd.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION share/doc/zapd)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME zapd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "self-hosted workflow automation server (webhooks to actions)")
set(CPACK_PACKAGE_DESCRIPTION "zapd is a self-hosted, Zapier-like workflow automation server in one binary:
build zaps (a webhook trigger, then HTTP and email actions), every request to a zap's
webhook becomes a durable run, with retries and a web UI. Data in SQLite under /var/lib/zapd.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "zapd developers <zapd@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A cross build (the `arm64` preset) is packaged for its target, not for the build machine
# (CPack otherwise asks dpkg --print-architecture).
if(CMAKE_CROSSCOMPILING AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
endif()
# The maintainer scripts call adduser and deb-systemd-helper; the rest comes from shlibdeps,
# except libcurl: zapd dlopen()s libcurl.so.4 on the first outbound transfer
# (src/outbound/curl_lazy.cpp), so shlibdeps cannot see it. 7.85: CURLOPT_PROTOCOLS_STR.
# librdkafka likewise when built in (src/kafka/rdkafka_lazy.cpp: librdkafka.so.1, loaded by the
# first Kafka client); 1.9: rd_kafka_consumer_close_queue.
# tzdata: schedules and the `date` template filter read the IANA zones from /usr/share/zoneinfo
# at run time (date-tz with USE_OS_TZDB); without it only UTC works.
set(ZAPD_DEB_RDKAFKA "")
if(ZAPD_WITH_KAFKA)
  set(ZAPD_DEB_RDKAFKA "librdkafka1 (>= 1.9.0), ")
endif()
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, init-system-helpers (>= 1.54~), libcurl4 (>= 7.85.0), ${ZAPD_DEB_RDKAFKA}tzdata")
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/packaging/conffiles CONTENT "/etc/zapd/zapd.toml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/packaging/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
