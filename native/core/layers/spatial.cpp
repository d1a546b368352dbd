// The spatial layers: zero padding, up-sampling and cropping of images.
#include "layers/layer.h"

namespace ck {

namespace {

Pad2dParams pad_params(const LayerSpec& l, int batch, const Shape& in) {
  Pad2dParams p;
  p.N = batch, p.H = int(in[0]), p.W = int(in[1]), p.C = int(in[2]);
  p.top = l.pad_top, p.bottom = l.pad_bottom, p.left = l.pad_left, p.right = l.pad_right;
  return p;
}

// Bilinear samples at dst / size as tfjs's UpSampling2D does (tf.image.resizeBilinear's default),
// or with half_pixel at (dst + 0.5) / size - 0.5 as Keras 3, PyTorch and ONNX's half_pixel do.
UpsampleParams upsample_params(const LayerSpec& l, int batch, const Shape& in) {
  UpsampleParams p;
  p.N = batch, p.H = int(in[0]), p.W = int(in[1]), p.C = int(in[2]);
  p.size_h = l.size_h, p.size_w = l.size_w;
  p.interp = l.bilinear ? Interp::Bilinear : Interp::Nearest;
  p.half_pixel = l.half_pixel;
  return p;
}

// Cropping is zero padding run backwards: the cropped image is the window zero_pad2d_bwd reads
// out of its input, and its gradient the padding zero_pad2d_fwd puts around dy.
Pad2dParams crop_params(const LayerSpec& l, int batch, const Shape& out) {
  Pad2dParams p;
  p.N = batch, p.H = int(out[0]), p.W = int(out[1]), p.C = int(out[2]);
  p.top = l.crop_top, p.bottom = l.crop_bottom, p.left = l.crop_left, p.right = l.crop_right;
  return p;
}

struct ZeroPadding2d {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& l = b.spec();
    const Shape& in = b.in();
    require_image(l, in);
    require(l.pad_top >= 0 && l.pad_bottom >= 0 && l.pad_left >= 0 && l.pad_right >= 0, ErrorKind::Value,
            l.name + ": padding must be >= 0");
    return {in[0] + l.pad_top + l.pad_bottom, in[1] + l.pad_left + l.pad_right, in[2]};
  }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.zero_pad2d_fwd(c.y(), c.x(), pad_params(c.spec(), c.batch(), c.in_shape()));
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.zero_pad2d_bwd(dx, dy, pad_params(c.spec(), c.batch(), c.in_shape()));
    c.end_grad(0, dx, c.n_in());
  }
};

struct UpSampling2d {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& l = b.spec();
    const Shape& in = b.in();
    require_image(l, in);
    require(l.size_h >= 1 && l.size_w >= 1 && l.size_h < (1 << 16) && l.size_w < (1 << 16), ErrorKind::Value,
            l.name + ": size must be in [1, 65535]");
    return {in[0] * l.size_h, in[1] * l.size_w, in[2]};
  }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.upsample2d_fwd(c.y(), c.x(), upsample_params(c.spec(), c.batch(), c.in_shape()));
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.upsample2d_bwd(dx, dy, upsample_params(c.spec(), c.batch(), c.in_shape()));
    c.end_grad(0, dx, c.n_in());
  }
};

struct Cropping2d {
  static Shape infer(LayerBuild& b) {
    const LayerSpec& l = b.spec();
    const Shape& in = b.in();
    require_image(l, in);
    require(l.crop_top >= 0 && l.crop_bottom >= 0 && l.crop_left >= 0 && l.crop_right >= 0, ErrorKind::Value,
            l.name + ": cropping must be >= 0");
    require(int64_t(l.crop_top) + l.crop_bottom < in[0] && int64_t(l.crop_left) + l.crop_right < in[1],
            ErrorKind::Shape,
            l.name + ": cropping [[" + std::to_string(l.crop_top) + "," + std::to_string(l.crop_bottom) + "],[" +
                std::to_string(l.crop_left) + "," + std::to_string(l.crop_right) + "]] leaves nothing of the input " +
                batch_shape_str(in));
    return {in[0] - l.crop_top - l.crop_bottom, in[1] - l.crop_left - l.crop_right, in[2]};
  }
  template <class Ops>
  static void forward(const Ops& k, LayerPass& c) {
    k.zero_pad2d_bwd(c.y(), c.x(), crop_params(c.spec(), c.batch(), c.out_shape()));
  }
  template <class Ops>
  static void backward(const Ops& k, LayerPass& c, float* dy) {
    if (!c.needs_grad()) return;
    float* dx = c.begin_grad(0);
    k.zero_pad2d_fwd(dx, dy, crop_params(c.spec(), c.batch(), c.out_shape()));
    c.end_grad(0, dx, c.n_in());
  }
};

}  // namespace

extern const LayerDef ZeroPadding2dLayer = define_layer<ZeroPadding2d>();
extern const LayerDef UpSampling2dLayer = define_layer<UpSampling2d>();
extern const LayerDef Cropping2dLayer = define_layer<Cropping2d>();

}  // namespace ck
