// Resizing decoded images to a model's input size (the image pipeline: imageFolder,
// imageFolderDataset, loadImage, decodeImage). Separable filters with half-pixel centres; when
// shrinking, the bilinear (triangle) filter widens by the reduction factor, so a 2x reduction
// averages 2x2 neighbourhoods instead of aliasing (as PIL and torchvision's antialiased Resize
// do). Pixels are [height, width, channels] row-major, uint8.
#pragma once
#include <cstdint>

namespace ck {

enum class ResizeFilter { Bilinear, Nearest };

// dst [dst_h, dst_w, channels] from src [src_h, src_w, channels]; each value is rounded to the
// nearest integer. Throws ValueError for sizes outside what it accepts (every side 1..2^24,
// channels 1..4).
void resize_image_u8(const uint8_t* src, int64_t src_h, int64_t src_w, int64_t channels,
                     uint8_t* dst, int64_t dst_h, int64_t dst_w, ResizeFilter filter);

}  // namespace ck
