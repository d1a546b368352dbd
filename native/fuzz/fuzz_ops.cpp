// libFuzzer target: the core's op layer (ops.h) and tensor shapes from raw bytes. The addon
// hands the core shapes and attributes that came from JS, so the core must check them on its
// own: every input either gets a ck::Error or runs its kernel within the buffers it allocated
// (AddressSanitizer and UBSan watch). Inputs hold an ISA, a thread count, an op, up to five
// tensors (rank, dims, values) and the op's integer and float attributes, all taken from the
// bytes as they come: negative, zero and huge values included.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "errors.h"
#include "kernels.h"
#include "ops.h"
#include "stream.h"
#include "thread_pool.h"

namespace {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | u8();
    return v;
  }
  int64_t i64() { return int64_t(uint64_t(u32()) << 32 | u32()); }
  // An attribute (stride, window, dilation, step): mostly small, sometimes any int at all.
  int attr() {
    uint8_t k = u8();
    if (k < 200) return k % 5;
    return int(u32());
  }
  float f32() {
    uint8_t k = u8();
    if (k < 230) return float(k) / 64.f - 1.f;
    float v;
    uint32_t bits = u32();
    std::memcpy(&v, &bits, 4);
    return v;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Tensors stay small: every op's output is then far below libFuzzer's malloc limit, and an
// allocation above it means a size was not checked.
constexpr size_t kMaxTotalElements = 4096;

struct Inputs {
  std::vector<ck::Tensor> t;
  bool ok = true;
};

Inputs read_tensors(Reader& r) {
  Inputs in;
  size_t total = 0;
  int count = 1 + r.u8() % 5;
  for (int i = 0; i < count; ++i) {
    int rank = r.u8() % 6;
    ck::Shape shape;
    for (int d = 0; d < rank; ++d) {
      uint8_t b = r.u8();
      shape.push_back(b < 250 ? b % 7 : int64_t(r.u32() % 70000));
    }
    size_t n = ck::shape_numel(shape);
    total += n;
    if (total > kMaxTotalElements) {
      in.ok = false;
      return in;
    }
    ck::Tensor t;
    try {
      t = ck::empty_tensor(shape, "fuzz");
    } catch (const ck::Error&) {
      in.ok = false;  // a shape the core refuses (its checks are fuzzed by check_shape_property)
      return in;
    }
    for (size_t k = 0; k < n; ++k) t.data()[k] = r.f32();
    in.t.push_back(std::move(t));
  }
  return in;
}

ck::Padding padding(Reader& r) { return r.u8() & 1 ? ck::Padding::Same : ck::Padding::Valid; }
ck::Act act(Reader& r) { return ck::Act(r.u8() % (int(ck::Act::Mish) + 1)); }

// check_shape against a 128-bit reference: it accepts exactly the shapes of at most 8
// non-negative dims whose element count fits kMaxElements, and never overflows doing so.
void check_shape_property(Reader& r) {
  ck::Shape shape;
  int rank = r.u8() % 11;
  for (int i = 0; i < rank; ++i) shape.push_back(r.u8() < 128 ? r.u8() : r.i64());
  bool want = rank <= 8;
  unsigned __int128 n = 1;
  for (int64_t d : shape) {
    if (d < 0) want = false;
    n = n * (unsigned __int128)(d < 0 ? 0 : d);
    if (n > (unsigned __int128)ck::kMaxElements) n = (unsigned __int128)ck::kMaxElements + 1;
  }
  bool zero = false;
  for (int64_t d : shape) zero |= d == 0;
  if (!zero && n > (unsigned __int128)ck::kMaxElements) want = false;
  bool got = true;
  try {
    ck::check_shape(shape, "fuzz");
  } catch (const ck::Error&) {
    got = false;
  }
  if (got != want) __builtin_trap();
}

void run_op(Reader& r, int op, const std::vector<ck::Tensor>& t) {
  auto at = [&](size_t i) -> const ck::Tensor& { return t[i % t.size()]; };
  auto opt = [&](size_t i) -> const ck::Tensor* { return r.u8() & 1 ? &at(i) : nullptr; };
  switch (op) {
    case 0: {
      ck::Conv2dAttrs a{r.attr(), r.attr(), r.attr(), r.attr(), padding(r), act(r)};
      ck::conv2d(at(0), at(1), opt(2), a);
      break;
    }
    case 1: {
      ck::Conv2dAttrs a{r.attr(), r.attr(), r.attr(), r.attr(), padding(r), ck::Act::None};
      ck::conv2d_grad(at(0), at(1), at(2), a, r.u8() & 1);
      break;
    }
    case 2: ck::dense(at(0), at(1), opt(2), act(r)); break;
    case 3: ck::dense_grad(at(0), at(1), at(2), r.u8() & 1); break;
    case 4:
    case 5:
    case 6:
    case 7: {
      ck::Pool2dAttrs a{r.attr(), r.attr(), r.attr(), r.attr(), padding(r)};
      if (op == 4) ck::max_pool2d(at(0), a);
      if (op == 5) ck::avg_pool2d(at(0), a);
      if (op == 6) ck::max_pool2d_grad(at(0), at(1), a);
      if (op == 7) ck::avg_pool2d_grad(at(0), at(1), a);
      break;
    }
    case 8: ck::global_avg_pool(at(0)); break;
    case 9: ck::global_max_pool(at(0)); break;
    case 10: ck::global_avg_pool_grad(at(0), at(1)); break;
    case 11: ck::global_max_pool_grad(at(0), at(1)); break;
    case 12: ck::activation(at(0), act(r), r.f32(), "activation"); break;
    case 13: {
      const ck::Act a = act(r);
      if (ck::act_grad_from_output(a)) ck::activation_grad(at(0), at(1), a, r.f32(), "activationGrad");
      else ck::activation_grad_from_x(at(0), at(1), a, r.f32(), "activationGrad");
      break;
    }
    case 14: ck::softmax(at(0)); break;
    case 15: ck::softmax_grad(at(0), at(1)); break;
    case 16: ck::dropout(at(0), r.f32(), r.u32()); break;
    case 17: ck::mul(at(0), at(1), "mul"); break;
    case 18: ck::batch_norm_train(at(0), opt(1), opt(2), opt(3), opt(4), r.f32(), r.f32()); break;
    case 19: ck::batch_norm_infer(at(0), opt(1), opt(2), at(3), at(4), r.f32()); break;
    case 20: ck::batch_norm_grad(at(0), at(1), at(2), at(3), opt(4)); break;
    case 21: ck::softmax_cross_entropy(at(0), at(1), r.u8() & 1); break;
    case 22: ck::binary_cross_entropy(at(0), at(1), r.u8() & 1); break;
    case 23: ck::mean_squared_error(at(0), at(1)); break;
    case 24: {
      ck::SgdParams p{r.f32(), r.f32(), bool(r.u8() & 1)};
      ck::sgd_update(at(0), at(1), opt(2), p);
      break;
    }
    case 25: {
      ck::AdamParams p;
      p.lr = r.f32(), p.beta1 = r.f32(), p.beta2 = r.f32(), p.eps = r.f32(), p.weight_decay = r.f32();
      p.step = r.attr();
      ck::adam_update(at(0), at(1), at(2), at(3), p);
      break;
    }
    case 26: {
      ck::RmspropParams p{r.f32(), r.f32(), r.f32(), r.f32(), bool(r.u8() & 1)};
      ck::rmsprop_update(at(0), at(1), at(2), opt(3), opt(4), p);
      break;
    }
    default: {
      ck::Shape shape;
      for (int i = r.u8() % 6; i > 0; --i) shape.push_back(r.u8() < 200 ? r.u8() % 9 : r.i64());
      ck::copy(at(0), shape);
      break;
    }
  }
}

// The kernel set a corpus byte selects among those this CPU runs (on x86-64: scalar, avx2,
// avx512 in that order, so a corpus keeps its meaning; on aarch64: scalar, neon).
ck::Isa pick_isa(uint8_t byte) {
  static const std::vector<ck::Isa> isas = [] {
    std::vector<ck::Isa> v{ck::Isa::Scalar};
    for (ck::Isa isa : {ck::Isa::Avx2, ck::Isa::Avx512, ck::Isa::Neon}) {
      try {
        ck::cpu_kernels(isa);
        v.push_back(isa);
      } catch (const ck::Error&) {
      }
    }
    return v;
  }();
  return isas[byte % isas.size()];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  ck::set_isa(pick_isa(r.u8()));
  int threads = 1 + r.u8() % 3;
  if (threads != ck::num_threads()) ck::set_num_threads(threads);
  int op = r.u8() % 29;
  if (op == 28) {
    check_shape_property(r);
    return 0;
  }
  Inputs in = read_tensors(r);
  if (!in.ok) return -1;  // too large to be interesting: keep it out of the corpus
  try {
    run_op(r, op, in.t);
  } catch (const ck::Error&) {
    // the typed error the addon turns into a ConvkitError
  }
  // The kernels run on the stream's thread: wait for them, so their faults belong to this input.
  ck::Stream::default_stream()->synchronize();
  return 0;
}
