// Flush-to-zero and denormals-are-zero on the calling thread: denormal floats (common in
// decaying gradients) are ~100x slower on x86; the pool's threads and stream workers set this.
#pragma once

namespace ck {
void enable_flush_denormals();
}
