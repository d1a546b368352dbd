// Keras's random preprocessing layers: RandomFlip, RandomRotation, RandomZoom,
// RandomTranslation (an affine resampling of each image), RandomContrast and RandomBrightness.
// Outside training they are the identity. In a training step each example draws its own
// parameters (augment_draw, into the layer's training buffer) from the step's seed for the layer
// mixed with the layer's own seed, as Dropout draws its mask: the same seeds repeat a run, and
// the draw depends on no device, ISA or thread count. The backward is each transform's adjoint:
// the resampling's weights spread back over the pixels they read, the clip's mask, contrast's
// mean.
#include "cpu/dropout_hash.h"
#include "layers/layer.h"

namespace ck {

namespace {

// What each kind draws (AugmentDraw's kind) and how it resamples: a flip reads whole pixels,
// copied as they are (nearest), never blended.
AugmentAttrs attrs_of(const LayerSpec& l) {
  AugmentAttrs a = l.attrs<AugmentAttrs>();
  switch (l.kind) {
    case LayerKind::RandomFlip: a.draw.kind = AugmentKind::Flip, a.sampling.interp = Interp::Nearest; break;
    case LayerKind::RandomRotation: a.draw.kind = AugmentKind::Rotation; break;
    case LayerKind::RandomZoom: a.draw.kind = AugmentKind::Zoom; break;
    case LayerKind::RandomTranslation: a.draw.kind = AugmentKind::Translation, a.draw.same_draw = false; break;
    case LayerKind::RandomContrast: a.draw.kind = AugmentKind::Contrast; break;
    default: a.draw.kind = AugmentKind::Brightness; break;
  }
  return a;
}

struct RandomAugment {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& l = b.spec();
    require_image(l, b.in());
    const AugmentAttrs a = attrs_of(l);
    const AugmentDraw& d = a.draw;
    auto range = [&](double lo, double hi, const char* what) {
      require(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, ErrorKind::Value,
              l.name + ": " + what + " must be finite with lower <= upper, got [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
    };
    range(d.lo0, d.hi0, d.kind == AugmentKind::Zoom || d.kind == AugmentKind::Translation ? "the height factor" : "factor");
    range(d.lo1, d.hi1, "the width factor");
    if (d.kind == AugmentKind::Contrast || d.kind == AugmentKind::Brightness) {
      require(a.value_low < a.value_high, ErrorKind::Value,
              l.name + ": valueRange must be [low, high] with low < high, got [" + std::to_string(a.value_low) + ", " +
                  std::to_string(a.value_high) + "]");
    }
    return b.in();
  }

  // The drawn parameters: up to kImageTransformFloats per example.
  static void training_buffers(const LayerSpec&, const Shape&, int batch, size_t* mask, size_t*) {
    *mask = size_t(batch) * kImageTransformFloats;
  }

  static bool geometric(AugmentKind kind) {
    return kind != AugmentKind::Contrast && kind != AugmentKind::Brightness;
  }

  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    if (!c.training()) return c.copy(c.y(), c.x(), c.n_in());
    const AugmentAttrs a = attrs_of(c.spec());
    const Shape& in = c.in_shape();
    const int h = int(in[0]), w = int(in[1]), ch = int(in[2]);
    AugmentDraw d = a.draw;
    d.height = h, d.width = w;
    float* params = c.mask();
    // A CUDA step reads its seed from the device (a captured graph replays each step's); both
    // draw a data-parallel share's examples at their rows in the global batch.
    if constexpr (on_host<Ops>) {
      k.augment_draw(params, size_t(c.batch()), d, dropout_layer_seed(c.seed(), uint64_t(c.layer())), c.first_row());
    } else {
      k.augment_draw_at(params, size_t(c.batch()), d, uint64_t(c.layer()), c.first_row());
    }
    if (geometric(d.kind)) k.image_transform(c.y(), c.x(), params, c.batch(), h, w, ch, a.sampling);
    else if (d.kind == AugmentKind::Contrast) k.image_contrast(c.y(), c.x(), params, c.batch(), h * w, ch, a.value_low, a.value_high);
    else k.image_brightness(c.y(), c.x(), params, c.batch(), size_t(h) * size_t(w) * size_t(ch), a.value_low, a.value_high);
  }

  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;  // at a model's input, as these layers usually are
    const AugmentAttrs a = attrs_of(c.spec());
    const Shape& in = c.in_shape();
    const int h = int(in[0]), w = int(in[1]), ch = int(in[2]);
    const float* params = c.mask();
    float* dx = c.begin_grad(0);
    const AugmentKind kind = a.draw.kind;
    if (geometric(kind)) k.image_transform_bwd(dx, dy, params, c.batch(), h, w, ch, a.sampling);
    else if (kind == AugmentKind::Contrast) k.image_contrast_bwd(dx, dy, c.x(), params, c.batch(), h * w, ch, a.value_low, a.value_high);
    else k.image_brightness_bwd(dx, dy, c.x(), params, c.batch(), size_t(h) * size_t(w) * size_t(ch), a.value_low, a.value_high);
    c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

extern const LayerDef RandomFlipLayer = define_layer<RandomAugment>();
extern const LayerDef RandomRotationLayer = define_layer<RandomAugment>();
extern const LayerDef RandomZoomLayer = define_layer<RandomAugment>();
extern const LayerDef RandomTranslationLayer = define_layer<RandomAugment>();
extern const LayerDef RandomContrastLayer = define_layer<RandomAugment>();
extern const LayerDef RandomBrightnessLayer = define_layer<RandomAugment>();

}  // namespace ck
