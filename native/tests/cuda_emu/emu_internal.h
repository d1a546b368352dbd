// Internal to convkit's CUDA emulator: what the runtime (emu_runtime.cpp) and the block
// scheduler (emu_fibers.cpp) share.
#pragma once
#include <string>

#include "cuda_runtime.h"

namespace ck_emu {

// Reports an emulator-detected fault (a deadlocked barrier, a kernel misuse) and aborts, as a
// device fault would end the CUDA context.
[[noreturn]] void fail(const std::string& what);

// Runs every block of the grid, one after another, on the calling thread (config already checked).
void run_grid(dim3 grid, dim3 block, void (*body)(void*), void* ctx);

}  // namespace ck_emu
