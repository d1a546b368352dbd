# Cross-compiles convkit for linux-arm64 with Debian's aarch64 toolchain
# (apt-get install g++-aarch64-linux-gnu qemu-user libc6-arm64-cross):
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCONVKIT_CUDA=OFF
# ctest then runs each test binary through qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(CONVKIT_QEMU_AARCH64 qemu-aarch64)
if(CONVKIT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CONVKIT_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu")
endif()
