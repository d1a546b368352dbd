// The spatial layers: zero padding, up-sampling and cropping of images.
#include "layers/layer.h"

namespace ck {

namespace {

Pad2dParams pad_params(const PaddingAttrs& l, int batch, const Shape& in) {
  Pad2dParams p;
  p.N = batch, p.H = int(in[0]), p.W = int(in[1]), p.C = int(in[2]);
  p.top = l.top, p.bottom = l.bottom, p.left = l.left, p.right = l.right;
  return p;
}

// Bilinear samples at dst / size as tfjs's UpSampling2D does (tf.image.resizeBilinear's default),
// or with half_pixel at (dst + 0.5) / size - 0.5 as Keras 3, PyTorch and ONNX's half_pixel do.
UpsampleParams upsample_params(const UpSamplingAttrs& l, int batch, const Shape& in) {
  UpsampleParams p;
  p.N = batch, p.H = int(in[0]), p.W = int(in[1]), p.C = int(in[2]);
  p.size_h = l.size_h, p.size_w = l.size_w;
  p.interp = l.bilinear ? Interp::Bilinear : Interp::Nearest;
  p.half_pixel = l.half_pixel;
  return p;
}

// Cropping is zero padding run backwards: the cropped image is the window zero_pad2d_bwd reads
// out of its input, and its gradient the padding zero_pad2d_fwd puts around dy.
Pad2dParams crop_params(const CroppingAttrs& l, int batch, const Shape& out) {
  Pad2dParams p;
  p.N = batch, p.H = int(out[0]), p.W = int(out[1]), p.C = int(out[2]);
  p.top = l.top, p.bottom = l.bottom, p.left = l.left, p.right = l.right;
  return p;
}

struct ZeroPadding2d {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& spec = b.spec();
    const PaddingAttrs& l = spec.attrs<PaddingAttrs>();
    const Shape& in = b.in();
    require_image(spec, in);
    // ck.ops.zeroPadding2d's checks, so the layer and the op refuse the same paddings
    const Pad2dParams p =
        zero_padding2d_params(with_batch(1, in), ZeroPadding2dAttrs{l.top, l.bottom, l.left, l.right}, spec.name.c_str());
    return {p.P(), p.Q(), in[2]};
  }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.zero_pad2d_fwd(c.y(), c.x(), pad_params(c.spec().attrs<PaddingAttrs>(), c.batch(), c.in_shape()));
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.zero_pad2d_bwd(dx, dy, pad_params(c.spec().attrs<PaddingAttrs>(), c.batch(), c.in_shape()));
    c.end_grad(0, dx, c.n_in());
  }
};

struct UpSampling2d {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& spec = b.spec();
    const UpSamplingAttrs& l = spec.attrs<UpSamplingAttrs>();
    const Shape& in = b.in();
    require_image(spec, in);
    // ck.ops.upSampling2d's checks, so the layer and the op refuse the same sizes
    UpSampling2dAttrs op;
    op.size_h = l.size_h, op.size_w = l.size_w;
    const UpsampleParams p = up_sampling2d_params(with_batch(1, in), op, spec.name.c_str());
    return {p.P(), p.Q(), in[2]};
  }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.upsample2d_fwd(c.y(), c.x(), upsample_params(c.spec().attrs<UpSamplingAttrs>(), c.batch(), c.in_shape()));
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.upsample2d_bwd(dx, dy, upsample_params(c.spec().attrs<UpSamplingAttrs>(), c.batch(), c.in_shape()));
    c.end_grad(0, dx, c.n_in());
  }
};

struct Cropping2d {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& spec = b.spec();
    const CroppingAttrs& l = spec.attrs<CroppingAttrs>();
    const Shape& in = b.in();
    require_image(spec, in);
    require(l.top >= 0 && l.bottom >= 0 && l.left >= 0 && l.right >= 0, ErrorKind::Value,
            spec.name + ": cropping must be >= 0");
    require(int64_t(l.top) + l.bottom < in[0] && int64_t(l.left) + l.right < in[1], ErrorKind::Shape,
            spec.name + ": cropping [[" + std::to_string(l.top) + "," + std::to_string(l.bottom) + "],[" +
                std::to_string(l.left) + "," + std::to_string(l.right) + "]] leaves nothing of the input " +
                batch_shape_str(in));
    return {in[0] - l.top - l.bottom, in[1] - l.left - l.right, in[2]};
  }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.zero_pad2d_bwd(c.y(), c.x(), crop_params(c.spec().attrs<CroppingAttrs>(), c.batch(), c.out_shape()));
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.zero_pad2d_fwd(dx, dy, crop_params(c.spec().attrs<CroppingAttrs>(), c.batch(), c.out_shape()));
    c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

extern const LayerDef ZeroPadding2dLayer = define_layer<ZeroPadding2d>();
extern const LayerDef UpSampling2dLayer = define_layer<UpSampling2d>();
extern const LayerDef Cropping2dLayer = define_layer<Cropping2d>();

}  // namespace ck
