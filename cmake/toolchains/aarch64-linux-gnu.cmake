# Cross-building zapd for arm64 (a Raspberry Pi 3/4/5/Zero 2 on a 64-bit OS) on Debian with
# multiarch: `packaging/install-deps.sh --arm64` installs the cross compiler
# (crossbuild-essential-arm64), the :arm64 -dev packages into the usual multiarch paths
# (/usr/lib/aarch64-linux-gnu, /usr/include) and pkgconf:arm64. Used by the `arm64` preset.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# The cross wrapper reads only the arm64 .pc files (/usr/lib/aarch64-linux-gnu/pkgconfig).
set(PKG_CONFIG_EXECUTABLE /usr/bin/aarch64-linux-gnu-pkg-config CACHE FILEPATH "pkg-config for arm64")

# Debian's multiarch sysroot is "/": libraries under /usr/lib/aarch64-linux-gnu, headers in
# /usr/include (arch-independent) and /usr/include/aarch64-linux-gnu. CMAKE_LIBRARY_ARCHITECTURE
# makes find_* look in the arm64 directories first; programs (tools run at build time) are the host's.
set(CMAKE_FIND_ROOT_PATH /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/include/x86_64-linux-gnu)

# The arm64 programs (tests, catch_discover_tests' listing) run here under qemu-user (no binfmt
# needed). No -L: with libc6:arm64 installed the multiarch sysroot is "/" itself (the loader
# /lib/ld-linux-aarch64.so.1, the libraries in /usr/lib/aarch64-linux-gnu).
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 CACHE STRING "runs arm64 programs here")
endif()

