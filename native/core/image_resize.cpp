#include "image_resize.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "errors.h"

namespace ck {
namespace {

// For each output index along one axis: the first input index it reads, how many it reads, and
// their normalised weights (`width` slots per output).
struct Taps {
  std::vector<int64_t> first;
  std::vector<int64_t> count;
  std::vector<float> weights;
  int64_t width = 0;
};

Taps make_taps(int64_t in, int64_t out, ResizeFilter filter) {
  Taps t;
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  t.first.resize(out);
  t.count.assign(out, 1);
  if (filter == ResizeFilter::Nearest) {
    t.width = 1;
    t.weights.assign(out, 1.0f);
    for (int64_t i = 0; i < out; i++) {
      t.first[i] = std::min(in - 1, static_cast<int64_t>(std::floor((i + 0.5) * scale)));
    }
    return t;
  }
  // The triangle's half-width in input pixels: 1 when enlarging, the reduction factor when
  // shrinking (so every input pixel contributes to some output).
  const double spread = std::max(scale, 1.0);
  t.width = static_cast<int64_t>(std::ceil(spread)) * 2 + 1;
  t.weights.assign(out * t.width, 0.0f);
  std::vector<double> w(t.width);
  for (int64_t i = 0; i < out; i++) {
    const double centre = (i + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(centre - spread + 0.5)));
    const int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(std::floor(centre + spread + 0.5)));
    double sum = 0;
    int64_t n = 0;
    int64_t first = lo;
    for (int64_t j = lo; j < hi && n < t.width; j++) {
      const double wj = std::max(0.0, 1.0 - std::abs((j + 0.5 - centre) / spread));
      if (wj == 0.0 && n == 0) {  // leading taps the triangle gives nothing
        first = j + 1;
        continue;
      }
      w[n++] = wj;
      sum += wj;
    }
    while (n > 1 && w[n - 1] == 0.0) n--;
    t.first[i] = first;
    t.count[i] = n;
    for (int64_t k = 0; k < n; k++) t.weights[i * t.width + k] = static_cast<float>(w[k] / sum);
  }
  return t;
}

// Horizontal pass: out [rows, out_w, C] from src [rows, in_w, C].
template <int C, class In>
void resize_rows(const In* src, int64_t rows, int64_t in_w, const Taps& tx, int64_t out_w,
                 float* out) {
  for (int64_t y = 0; y < rows; y++) {
    const In* row = src + y * in_w * C;
    float* o = out + y * out_w * C;
    for (int64_t x = 0; x < out_w; x++) {
      const In* p = row + tx.first[x] * C;
      const float* w = &tx.weights[x * tx.width];
      const int64_t n = tx.count[x];
      float acc[C] = {};
      for (int64_t k = 0; k < n; k++) {
        for (int c = 0; c < C; c++) acc[c] += w[k] * static_cast<float>(p[k * C + c]);
      }
      for (int c = 0; c < C; c++) o[x * C + c] = acc[c];
    }
  }
}

template <class In>
void resize_rows_any(int64_t channels, const In* src, int64_t rows, int64_t in_w, const Taps& tx,
                     int64_t out_w, float* out) {
  switch (channels) {
    case 1: return resize_rows<1>(src, rows, in_w, tx, out_w, out);
    case 2: return resize_rows<2>(src, rows, in_w, tx, out_w, out);
    case 3: return resize_rows<3>(src, rows, in_w, tx, out_w, out);
    default: return resize_rows<4>(src, rows, in_w, tx, out_w, out);
  }
}

// Vertical pass: out [out_h, row_len] from the rows of src [.., row_len] (src row r is row
// r - row_lo of `src`).
template <class In>
void resize_columns(const In* src, int64_t row_lo, int64_t row_len, const Taps& ty, int64_t out_h,
                    float* out) {
  for (int64_t y = 0; y < out_h; y++) {
    const int64_t first = ty.first[y];
    const int64_t n = ty.count[y];
    const float* w = &ty.weights[y * ty.width];
    float* o = out + y * row_len;
    std::fill(o, o + row_len, 0.0f);
    for (int64_t k = 0; k < n; k++) {
      const float wk = w[k];
      const In* r = src + (first + k - row_lo) * row_len;
      for (int64_t i = 0; i < row_len; i++) o[i] += wk * static_cast<float>(r[i]);
    }
  }
}

}  // namespace

void resize_image_u8(const uint8_t* src, int64_t src_h, int64_t src_w, int64_t channels,
                     uint8_t* dst, int64_t dst_h, int64_t dst_w, ResizeFilter filter) {
  constexpr int64_t kMaxSide = int64_t{1} << 24;
  const auto side_ok = [](int64_t v) { return v >= 1 && v <= kMaxSide; };
  if (!side_ok(src_h) || !side_ok(src_w) || !side_ok(dst_h) || !side_ok(dst_w) || channels < 1 ||
      channels > 4) {
    throw Error(ErrorKind::Value,
                "resizeImage: expected sides in [1, 16777216] and 1-4 channels, got " +
                    std::to_string(src_h) + "x" + std::to_string(src_w) + "x" +
                    std::to_string(channels) + " -> " + std::to_string(dst_h) + "x" +
                    std::to_string(dst_w));
  }
  const Taps tx = make_taps(src_w, dst_w, filter);
  const Taps ty = make_taps(src_h, dst_h, filter);
  const int64_t c = channels;
  std::vector<float> out(dst_h * dst_w * c);
  // Only the source rows some output row reads are filtered. The pass that leaves the smaller
  // intermediate goes first, which bounds memory for extreme aspect ratios (a 1-pixel-wide,
  // million-pixel-high image enlarged sideways).
  const int64_t row_lo = ty.first.front();
  const int64_t row_hi = ty.first.back() + ty.count.back();
  if ((row_hi - row_lo) * dst_w <= dst_h * src_w) {
    std::vector<float> rows((row_hi - row_lo) * dst_w * c);
    resize_rows_any(c, src + row_lo * src_w * c, row_hi - row_lo, src_w, tx, dst_w, rows.data());
    resize_columns(rows.data(), row_lo, dst_w * c, ty, dst_h, out.data());
  } else {
    std::vector<float> columns(dst_h * src_w * c);
    resize_columns(src, 0, src_w * c, ty, dst_h, columns.data());
    resize_rows_any(c, columns.data(), dst_h, src_w, tx, dst_w, out.data());
  }
  for (size_t i = 0; i < out.size(); i++) {
    dst[i] = static_cast<uint8_t>(std::clamp(std::floor(out[i] + 0.5f), 0.0f, 255.0f));
  }
}

}  // namespace ck
