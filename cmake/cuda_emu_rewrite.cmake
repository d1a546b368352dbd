# Rewrites one CUDA source for convkit's CUDA emulator (native/tests/cuda_emu): each launch
# `kernel<<<grid, block, shared, stream>>>(args)` becomes
# `::ck_emu::launch(kernel, grid, block, shared, stream)(args)`, which a host C++ compiler takes.
# Usage: cmake -DIN=<file.cu> -DOUT=<file.cpp> -P cuda_emu_rewrite.cmake
file(READ "${IN}" src)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_:]*(<[^;<>]*>)?)<<<([^>]*)>>>"
       "::ck_emu::launch(\\1, \\3)" out "${src}")
string(FIND "${out}" "<<<" left)
if(NOT left EQUAL -1)
  message(FATAL_ERROR "cuda_emu_rewrite: a launch in ${IN} was not rewritten")
endif()
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/cuda_emu_rewrite.cmake\n#line 1 \"${IN}\"\n${out}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
