// The network executor: a graph of layers (a plain stack for Sequential models; branches,
// merges, several inputs and outputs for functional ones) whose whole training step (gather the
// batch, forward, loss, backward, optimizer update) is ONE task on the net's own stream, so the
// JS cost per batch is constant.
//
// Values: ids 0..I-1 are the model's inputs; layer j's output is value I+j. Each layer reads
// values made before it (the layers are in topological order), so one pass forward and one
// backward visit the graph; a value read by several layers sums their gradients. Parameters live in one flat buffer (and gradients and
// optimizer state in matching ones) so the update is a single fused pass; activation and
// gradient buffers are planned once per batch size and reused, so fit allocates nothing in its
// steady state.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "device.h"
#include "kernels.h"
#include "ops.h"
#include "tensor.h"

namespace ck {

struct CudaOps;
class LayerBuild;
class LayerPass;

// The layer kinds, listed once with their names, attribute structs and attribute keys in
// layer_kinds.inc.
enum class LayerKind {
#define CK_LAYER(kind, name, Attrs, keys) kind,
#include "layer_kinds.inc"
};

// ---- each kind's attributes (its struct is named by its line in layer_kinds.inc) ----

struct NoAttrs {};

// conv2d (grouped when groups > 1), depthwise conv2d (depth_multiplier) and the transposed
// conv2d (out_pad_*: Keras's outputPadding, -1 its None); act / alpha: the fused epilogue.
struct ConvAttrs {
  int filters = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  Padding padding = Padding::Valid;
  int groups = 1, depth_multiplier = 1;
  int out_pad_h = -1, out_pad_w = -1;
  bool use_bias = true;
  Act act = Act::None;
  float alpha = 0.f;
};

struct DenseAttrs {
  int units = 0;
  bool use_bias = true;
  Act act = Act::None;  // the fused epilogue
  float alpha = 0.f;
};

// max, average and Lp pooling's window (power: Lp's p)
struct PoolAttrs {
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  Padding padding = Padding::Valid;
  float power = 2.f;
};

// zero padding: the zeros added on each side of the image
struct PaddingAttrs {
  int top = 0, bottom = 0, left = 0, right = 0;
};

// cropping: the rows and columns removed from each side of the image
struct CroppingAttrs {
  int top = 0, bottom = 0, left = 0, right = 0;
};

// up-sampling's factors; bilinear with half_pixel samples at (dst + 0.5) / size - 0.5
struct UpSamplingAttrs {
  int size_h = 1, size_w = 1;
  bool bilinear = false, half_pixel = false;
};

struct ReshapeAttrs {
  Shape target_shape;  // one example's new shape
};

struct DropoutAttrs {
  float rate = 0.f;
  // Keras's noise_shape, per axis (batch first): 1 where one mask value is broadcast over the
  // axis, 0 where each index draws its own; empty: every value its own.
  std::vector<int> noise_shape;
};

// batch norm (eps, momentum), layer norm and group norm (groups dividing the channels)
struct NormAttrs {
  float eps = 1e-3f, momentum = 0.99f;
  bool center = true, scale = true;
  int groups = 1;
};

struct ActivationAttrs {
  Act act = Act::None;
  float alpha = 0.f;
};

// rescaling: y = x * factor + offset
struct RescalingAttrs {
  float factor = 1.f, offset = 0.f;
};

// the random preprocessing layers (layers/augment.cpp): the draw (Keras's ranges and the layer's
// seed; its kind and image size are filled in from the spec's kind and input shape), how the
// geometric kinds resample, and the range contrast and brightness clip to
struct AugmentAttrs {
  AugmentDraw draw;
  ImageSampling sampling;
  float value_low = 0.f, value_high = 255.f;
};

// Every attribute struct once (the alternatives a LayerSpec can hold).
using LayerAttrs = std::variant<NoAttrs, ConvAttrs, DenseAttrs, PoolAttrs, PaddingAttrs, CroppingAttrs,
                                UpSamplingAttrs, ReshapeAttrs, DropoutAttrs, NormAttrs, ActivationAttrs,
                                RescalingAttrs, AugmentAttrs>;

// A kind's attribute struct (LayerAttrsOf<LayerKind::Conv2d>::type is ConvAttrs).
template <LayerKind K>
struct LayerAttrsOf;
#define CK_LAYER(kind, name, Attrs, keys) \
  template <>                             \
  struct LayerAttrsOf<LayerKind::kind> {  \
    using type = Attrs;                   \
  };
#include "layer_kinds.inc"

// The kind's attributes at their defaults.
LayerAttrs default_attrs(LayerKind kind);
// Whether T is the attribute struct of `kind`.
template <class T>
bool is_attrs_of(LayerKind kind) {
  switch (kind) {
#define CK_LAYER(kind, name, Attrs, keys) \
  case LayerKind::kind: return std::is_same_v<T, Attrs>;
#include "layer_kinds.inc"
  }
  return false;
}
// wanted: the index in LayerAttrs of the struct asked for.
[[noreturn]] void throw_wrong_attrs(const std::string& layer, LayerKind kind, size_t wanted);

struct LayerSpec {
  LayerKind kind = LayerKind::Flatten;
  std::string name;
  std::vector<int> inputs;  // value ids read; empty: the previous value
  // A Keras layer applied again (shared weights): the earlier layer, of the same kind, whose
  // weights this one reads and trains instead of declaring its own (-1: its own weights).
  int shares_params_with = -1;
  bool trainable = true;

  LayerSpec() = default;
  // A layer of that kind with its attributes at their defaults.
  explicit LayerSpec(LayerKind k, std::string layer_name = {})
      : kind(k), name(std::move(layer_name)), attrs_(default_attrs(k)) {}

  // The kind's attributes; asking for another kind's struct (or a spec whose kind was changed
  // after it was made) is an internal error.
  template <class T>
  T& attrs() {
    T* a = std::get_if<T>(&attrs_);
    if (!a || !is_attrs_of<T>(kind)) throw_wrong_attrs(name, kind, LayerAttrs(std::in_place_type<T>).index());
    return *a;
  }
  template <class T>
  const T& attrs() const {
    return const_cast<LayerSpec*>(this)->attrs<T>();
  }
  // The activation a conv2d, depthwise, transposed conv2d or dense layer fuses into its
  // epilogue, with its alpha; Act::None for the other kinds.
  Act fused_act() const;
  float fused_alpha() const;

 private:
  LayerAttrs attrs_;
};

// A layer's weights by the role its kind gives them (Keras's names: kernel or
// depthwise_kernel, bias, gamma, beta, moving_mean, moving_variance; Normalization's count).
enum class ParamRole { Kernel, Bias, Gamma, Beta, MovingMean, MovingVariance, Count };

enum class LossKind { CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
                      MeanSquaredError, Huber, KLDivergence };

// A loss with its Keras options: from_logits (the cross-entropies: the output holds logits),
// label_smoothing (the categorical cross-entropies: targets t * (1 - s) + s / classes) and
// delta (Huber). A bare LossKind is the loss with Keras's defaults.
struct LossSpec {
  LossKind kind = LossKind::CategoricalCrossentropy;
  bool from_logits = false;
  float label_smoothing = 0.f;
  float delta = 1.f;
  LossSpec() = default;
  LossSpec(LossKind k) : kind(k) {}  // NOLINT: a kind is the loss with its defaults
};

// A metric the step computes natively besides the loss and accuracy. Each adds its counts to
// Accumulators::metric_sums (per output, metric after metric), from which lib/ computes the
// value Keras logs: TopK adds one count (rows whose target is in the top k; the targets' layout
// is the loss's), Confusion adds tp, fp, tn, fn at each of its thresholds (ascending), for
// precision, recall and AUC; ConfusionMatrix adds the num_classes x num_classes matrix of
// tf.math.confusion_matrix (row: the label, column: the prediction).
enum class MetricKind { TopK, Confusion, ConfusionMatrix };
struct MetricSpec {
  MetricKind kind = MetricKind::TopK;
  int k = 5;
  std::vector<float> thresholds;
  int class_id = -1;    // Confusion: count only this column (Keras's class_id); -1 every column
  int top_k = 0;        // Confusion: only each row's top k predictions count (Keras's top_k); 0 all
  int num_classes = 0;  // ConfusionMatrix: the output's classes (2 for a single binary column)
  size_t slots() const {
    switch (kind) {
      case MetricKind::TopK: return 1;
      case MetricKind::Confusion: return 4 * thresholds.size();
      case MetricKind::ConfusionMatrix: return size_t(num_classes) * size_t(num_classes);
    }
    return 0;
  }
};
enum class OptimizerKind { Sgd, Adam, Rmsprop, Adagrad, Nadam };

// Keras's gradient clipping, applied before the update (at most one is > 0, as Keras allows):
// each gradient element clipped to [-value, value]; each weight's gradient scaled to an L2 norm
// of at most `norm`; or all of them together to a global norm of at most `global_norm`.
struct GradientClip {
  double value = 0, norm = 0, global_norm = 0;
  bool any() const { return value > 0 || norm > 0 || global_norm > 0; }
};

// A weight's L1/L2 penalty (Keras's kernel_regularizer ...): l1 * sum |w| + l2 * sum w^2 joins
// the training loss, l1 * sign(w) + 2 * l2 * w its gradient.
struct WeightPenalty {
  int param;  // index into params()
  double l1, l2;
};

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::Sgd;
  SgdParams sgd;
  AdamParams adam;  // weight_decay > 0: AdamW
  RmspropParams rmsprop;
  AdagradParams adagrad;
  NadamParams nadam;
  GradientClip clip;
  // Keras's gradient_accumulation_steps (0: off, else >= 2): the batches' gradients are summed
  // into a buffer, and every accumulation_steps-th batch the optimizer applies their mean
  // (clipped as one gradient) as one update. iterations() still counts every batch (Keras's
  // optimizer._iterations); the update's step (Adam's bias correction) counts updates.
  int accumulation_steps = 0;
};

// One named weight of a layer, as Keras lists them (kernel, bias, gamma, beta, moving_mean,
// moving_variance), located in the flat trainable buffer or in the state buffer.
struct ParamInfo {
  int layer;  // the (first) layer that declares it; layers sharing it come after
  std::string name;
  Shape shape;
  bool trainable;  // in the parameter buffer (updated by the optimizer) vs the state buffer
  size_t offset;
  size_t size;
};

// Running sums over the batches since the last reset (read once per progress update).
struct Accumulators {
  double loss_sum = 0;  // sum of per-example losses (over all outputs)
  double correct = 0;   // examples counted correct by the accuracy metric (first output)
  double count = 0;     // examples seen
  std::vector<double> output_loss, output_correct;  // per model output
  std::vector<double> metric_sums;  // per model output, each MetricSpec's counts in turn
  Failure error;        // set when the step failed (the sums are then not updated)
};

// Data-parallel training (ck.distributed): sums the flat gradient buffer over the job's
// processes, in place, in buckets that start while backward still runs (net_buckets.cpp). The
// buffer is cut at layer boundaries, from its end (the last layers, whose backward runs first),
// into buckets of at least bucket_floats floats (0: one bucket); every callback runs on the
// step's thread, in the same order on every process (a fixed schedule, no negotiation):
// - begin: as a data-parallel step starts;
// - bucket: each bucket [begin, end) of grads, from the buffer's end to its start, as soon as
//   backward has finished every layer whose gradients lie in it; every bucket once per step, also
//   when this process's part of the step failed (the values then unusable), so that every
//   process makes the same calls;
// - finish: after the last bucket, before the optimizer update; `failed`: this process's part of
//   the step failed, so every process must hear of it. Throws, skipping the update, when any
//   process's part failed.
// Assumes what net_pass.cpp's backward does: a layer's backward writes only its own weights'
// gradients, and each of them once per step; the layers sharing weights (LayerSpec::
// shares_params_with) add into them, the first of them (ParamInfo::layer) running backward last.
struct GradientReducer {
  size_t bucket_floats = 0;
  std::function<void()> begin;
  std::function<void(const StoragePtr& grads, size_t begin, size_t end)> bucket;
  std::function<void(const StoragePtr& grads, size_t n, const Failure& failed)> finish;
  // Sync batch norm (fit's syncBatchNorm; empty: each process's batch norms normalize with its
  // own rows, as PyTorch's DistributedDataParallel): sums `n` floats of a batch norm's statistics
  // over the processes, in place, before returning. Called on the step's thread between begin and
  // finish, in the order of Net::batch_norm_sync_sizes(); a process that makes fewer of those
  // calls in a step (it had no rows, or its part failed) is completed by the reducer at finish.
  std::function<void(float* data, size_t n)> batch_stats;
  explicit operator bool() const { return bool(finish); }
};

// Whether nets placed on a CUDA device from now on capture each step as a CUDA graph (default:
// yes, unless CONVKIT_CUDA_GRAPHS=0). Off, every step enqueues its kernels one by one.
void set_cuda_graphs(bool enabled);

class Net {
 public:
  // inputs: one example's shape per model input (e.g. {{28,28,1}}); outputs: the value ids the
  // loss reads. Throws ShapeError naming the layer when a layer cannot take its inputs.
  Net(std::vector<Shape> inputs, std::vector<LayerSpec> layers, std::vector<int> outputs);
  // A stack: one input, each layer reading the previous one, the last layer the output.
  Net(const Shape& input, std::vector<LayerSpec> layers);
  ~Net();  // finishes the queued steps first

  const std::vector<ParamInfo>& params() const { return params_; }
  int num_inputs() const { return int(inputs_.size()); }
  const Shape& input_shape(int i = 0) const { return inputs_[size_t(i)]; }
  const std::vector<int>& outputs() const { return outputs_; }
  const Shape& layer_output_shape(int i) const { return shapes_[value_of(i)]; }
  const std::shared_ptr<Stream>& stream() const { return stream_; }

  // Moves the weights (and optimizer state) to `device`; the steps after it run there. A CUDA
  // net runs its kernels on a CUDA stream of its own, enqueued by the tasks of stream(); the
  // inputs and targets stay host tensors, gathered per batch into page-locked staging and
  // uploaded on a second CUDA stream while the step before computes. Throws
  // DeviceError when CUDA is unavailable or a layer has no CUDA kernel yet (naming the layer).
  void set_device(DeviceType device);
  DeviceType device() const { return device_; }
  // Where a step's result (its Accumulators) is ready: task last_result_task() of
  // result_stream(). For a CPU net, the step's own task; for a CUDA net, a task of a second
  // stream that waits for the step's GPU work, so the next step is enqueued while one runs.
  const std::shared_ptr<Stream>& result_stream() const { return results_ ? results_ : stream_; }
  uint64_t last_result_task() const { return results_ ? last_result_ : last_task_; }
  // A task of result_stream() that runs after everything queued so far, GPU work included.
  uint64_t barrier();
  // How many step graphs this net has captured (CUDA), for tests and diagnostics.
  int64_t cuda_graph_captures() const { return cuda_captures_.load(); }

  void compile(const LossSpec& loss, const OptimizerSpec& opt, bool accuracy,
               std::vector<MetricSpec> metrics = {});
  void set_trainable(int layer, bool trainable);
  void set_learning_rate(double lr);
  void set_regularizers(std::vector<WeightPenalty> penalties);
  int64_t iterations() const { return iterations_; }
  // Stores the step count into *out in stream order: as it stands after the steps queued so far.
  void iterations_after(std::shared_ptr<int64_t> out);

  // From the steps queued after it, each training step hands its gradients to `reducer` before
  // the update (an empty reducer: the steps train alone); a CUDA net's through host memory.
  void set_gradient_reducer(GradientReducer reducer);
  // The floats of each GradientReducer::batch_stats call of a data-parallel step, in order: each
  // training batch norm's forward statistics (layer order), then its backward sums (reverse
  // order, those that backward reaches). The same on every process of a job.
  std::vector<size_t> batch_norm_sync_sizes() const;

  // Enqueued on the net's stream; results are ready when the returned tensors/accumulators are.
  // xs: per input [N, ...input]; ys: per output [N, ...] targets; idx: which rows form the
  // batch. `out` receives the running sums as they stand after the step. global_batch > 0: a
  // data-parallel step, whose loss averages over the job's global_batch rows; idx may then be
  // empty (this process has no rows in the batch: zero gradients, still reduced and applied).
  // weights: none, or one [N] tensor of per-example loss weights (fit's sampleWeight).
  // first_row: where idx's rows start in a data-parallel step's global batch, so that dropout
  // draws the masks one process on the global batch would.
  // slices > 1 (a test and debugging mode, CPU nets, not data-parallel): the step computes the
  // gradient of each of `slices` slices of idx alone, as a data-parallel step of that many
  // processes computes each process's share, and sums them in slice order, as the reducer of a
  // job with ordered sums (distributed.init's orderedSum) adds the processes' gradients: the two
  // give the same weights bit for bit (with as many threads per process).
  void train_step(std::vector<Tensor> xs, std::vector<Tensor> ys, std::vector<int32_t> idx,
                  uint64_t seed, std::shared_ptr<Accumulators> out, int global_batch = 0,
                  std::vector<Tensor> weights = {}, int first_row = 0, int slices = 1);
  void eval_step(std::vector<Tensor> xs, std::vector<Tensor> ys, std::vector<int32_t> idx,
                 std::shared_ptr<Accumulators> out, std::vector<Tensor> weights = {});
  // The outputs of `layers` for rows [start, start+count) in inference mode, computed in
  // chunks of at most batch_size rows (the buffers are planned for that size).
  std::vector<Tensor> layer_outputs(std::vector<Tensor> xs, int64_t start, int64_t count,
                                    const std::vector<int>& layers, int batch_size);

  // Copies (as stream tasks) between a weight and a tensor.
  Tensor get_param(int index);
  void set_param(int index, const Tensor& value);
  // Optimizer state, flat (m, v, ...), for saving and resuming training.
  std::vector<Tensor> get_optimizer_state();
  void set_optimizer_state(const std::vector<Tensor>& state, int64_t iterations);

  // Zeroes the running sums (in stream order, after the steps queued so far).
  void reset_metrics();
  // Zeroes only the evaluation sums, so an evaluation beside a fit leaves the fit's alone.
  void reset_eval_metrics();
  // The sequence number of the last task queued on the net's stream.
  uint64_t last_task() const { return last_task_; }
  // Dynamic batching (CPU nets): layer_outputs calls of at most `max_rows` rows that arrive while
  // an inference task for the same layers waits in the net's queue join it, so concurrent
  // predictOnBatch calls (a server's requests) run as one batch; each call's rows come out
  // bitwise as they would alone. 0 runs every call on its own.
  void set_dynamic_batching(int max_rows) { max_coalesced_rows_ = max_rows; }
  // layer_outputs calls so far, and the inference tasks that ran them (fewer when calls joined).
  std::pair<uint64_t, uint64_t> inference_counts() const { return {infer_calls_, infer_tasks_}; }

 private:
  // The contexts through which each layer kind's definition (layers/layer.h) reaches the net.
  friend class LayerBuild;
  friend class LayerPass;
  struct Plan;  // per-batch-size buffers (net_plan.h)
  // Inference runs a batch in slices whose widest activation fits in about this much memory.
  static constexpr size_t kInferenceSliceBytes = size_t(8) << 20;
  // ... and, when each thread takes its own rows, slices whose widest activation fits in about
  // this much (a core's L2).
  static constexpr size_t kThreadSliceBytes = size_t(1) << 20;
  size_t value_of(int layer) const { return inputs_.size() + size_t(layer); }
  // Checks layer i's inputs, appends its output shape and declares its weights (through its
  // kind's definition).
  void infer_shape(int layer);
  // Which ReLU layers hand their backward to the max pool after them (relu_into_pool_).
  void plan_relu_folds();
  // Which ReLU / ReLU6 layers training runs inside the batch norm before them (bn_act_).
  void plan_training_fusions();
  // Whether batch norm `bn` runs its activation layer inside it in this pass: a trainable batch
  // norm in a training pass (a frozen one normalizes with its moving statistics, unfused).
  bool bn_act_fused(int bn, bool training) const {
    return bn_act_[size_t(bn)] >= 0 && training && layers_[size_t(bn)].trainable;
  }
  // Which batch norms inference folds into the conv2d / depthwise / dense layer before them
  // (and which ReLU after them into that layer's epilogue): folds_.
  void plan_inference_folds();
  // Whether an inference pass asked for `layers` may run folded: a CPU net with folds, none of
  // whose folded-away values is asked for.
  bool can_fold(const std::vector<int>& layers) const;
  // Recomputes the folded weights if the weights or batch-norm statistics changed since, and
  // packs the folded convolutions' weights for the active CPU kernel set.
  void refresh_folded_weights();
  void pack_folded_weights(const CpuKernels& k);
  // Which inverted-residual blocks folded inference runs by bands of rows (net_bands.cpp).
  void plan_band_blocks();
  int only_reader(size_t value) const;
  struct BandBlock;
  void forward_band_block(const CpuKernels& k, Plan& pl, const BandBlock& block, int batch);
  void forward_folded(const CpuKernels& k, Plan& pl, int layer, int batch);
  // Buffers for `batch` rows; `training` adds backward's (gradients, dropout masks, batch-norm
  // statistics).
  std::unique_ptr<Plan> make_plan(int batch, bool training) const;
  void plan_for(int batch, bool training);
  // folded (inference on the CPU, see can_fold): batch norms run folded into the layer before.
  void forward(Plan& pl, int batch, bool training, uint64_t seed, int stop_after, bool folded = false);
  // The passes are templates over the kernel set (CpuKernels, or CudaOps on a CUDA net); each
  // layer runs its kind's definition (layers/layer.h).
  template <class Ops>
  void forward_layer(const Ops& k, Plan& pl, int layer, int batch, bool training, uint64_t seed);
  void backward(int batch);
  template <class Ops>
  void backward_layers(const Ops& k, int batch);
  template <class Ops>
  void backward_layer(const Ops& k, int layer, int batch, float* dy);
  // Gradient routing for a layer input v: where to write its contribution, then fold it in.
  float* begin_grad(int v);
  void end_grad(int v, float* written, size_t n);
  void pass_grad(int v, float* dy, size_t n);  // the input's gradient equals dy
  void release_grad(float* g);
  void accumulate_values(float* y, const float* x, size_t n);  // on the net's device
  void copy_values(float* dst, const float* src, size_t n);
  // ---- steps and inference, written once over the device (net_device.h) ----
  struct StepRequest;
  struct SumSlots;
  struct CpuDevice;   // net_train.cpp, net_infer.cpp
  struct CudaDevice;  // net_cuda.cpp
  // The rows [r, r + n) of an inference chunk, run on plan pl.
  using InferRows = std::function<void(Plan& pl, int64_t r, int n)>;
  // Queues a step as one task of stream_: its result is that task on the CPU, a task of
  // results_ that waits for the GPU work on CUDA (cuda_enqueue_step).
  void enqueue_step(const char* op, StepRequest r, std::shared_ptr<Accumulators> out);
  // A step on the net's device: gather, then the body, then the host's bookkeeping (the row
  // count, the iteration); its sums are in the device's SumSlots for the phase.
  template <class Device>
  void step(Device& dev, const StepRequest& r);
  // The step's device work (a CUDA graph replays it: host state it changes is not replayed):
  // forward, loss and metrics, backward, the gradient reducer, penalties and clipping, update.
  // failed: this process's part of a data-parallel step failed already (gathering its rows).
  template <class Device>
  void step_body(Device& dev, const StepRequest& r, int batch, const SumSlots& sums, Failure failed);
  // A training step's forward and backward over r.slices slices of its rows, their gradients
  // summed in slice order into grads_ (see train_step).
  void train_slices(CpuDevice& dev, const StepRequest& r, const SumSlots& sums);
  // Each output's loss (and, with_grad, its gradient) and metrics added into `sums`.
  template <class Device>
  void loss_and_metrics(Device& dev, int batch, bool with_grad, const SumSlots& sums);
  // The weight penalties into the loss sum (training: their gradients too), then the gradient
  // clipping (training), after the gradient reducer: every process adds the same once.
  template <class Device>
  void penalties_and_clipping(Device& dev, int batch, bool training, const SumSlots& sums);
  // Gradient accumulation (OptimizerSpec::accumulation_steps), before the clipping: a batch that
  // does not complete the accumulation adds its gradients into the accumulator and is done (false);
  // the one that completes it turns its gradients into the mean of the accumulated ones and
  // clears the accumulator (true: clip and update).
  template <class Device>
  bool accumulate_gradients(Device& dev);
  // The optimizer's step for the update after `batches` training batches (Keras's
  // optimizer.iterations + 1: with accumulation, the updates so far).
  int64_t optimizer_step(int64_t batches) const {
    return opt_.accumulation_steps >= 2 ? batches / opt_.accumulation_steps : batches;
  }
  // The optimizer update of the trainable ranges as the step-th iteration.
  template <class Ops>
  void update(const Ops& k, int64_t step);
  // Output o's per-row loss into plan_->row_loss[o] and, when with_grad and backward needs it,
  // its gradient (to the softmax's logits when that softmax is folded into the loss).
  struct OutputRows {
    size_t rows, cols;
  };
  template <class Device>
  OutputRows output_loss(Device& dev, size_t o, int batch, const float* target, bool with_grad);
  // Rows [start, start+count) of xs into ys, in chunks of batch_size rows, each chunk run by the
  // device in pieces (inputs into a plan, forward, outputs out).
  template <class Device>
  void infer_batch(Device& dev, const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, int64_t start,
                   int64_t count, const std::vector<int>& layers, int last, int batch_size, size_t widest,
                   bool folded);
  // ---- CUDA nets (net_cuda.cpp) ----
  // One training or evaluation step enqueued on the CUDA stream; the sums are read back by a
  // task of results_ into `out`.
  void cuda_enqueue_step(const char* op, StepRequest r, std::shared_ptr<Accumulators> out);
  void check_weights(const char* op, const std::vector<Tensor>& xs, const std::vector<Tensor>& weights) const;
  // Doubles of the device sums per phase (training, evaluation): loss, correct, the loss and
  // correct count per output, then per output each metric's counts (metric_sums' layout).
  size_t cuda_sums_per_phase() const;
  // (Re)makes the device sums (zeroed, with the host accumulators) and the compiled metrics' thresholds.
  void cuda_alloc_sums();
  // The CUDA kernel set with the net's stream and step scalars bound.
  CudaOps cuda_ops() const;
  // Destroys the captured graphs (after the work using them); plan_changed: their buffers are
  // gone, so the next runs start over (one direct run before capturing).
  void drop_cuda_graphs(bool plan_changed);
  // Copies n floats between host memory and the net's device buffers (blocking this thread).
  // Waits for every queued task and, on CUDA, the GPU work they enqueued.
  void wait_idle();
  void download_values(float* host, const float* device, size_t n);
  void upload_values(float* device, const float* host, size_t n);
  StoragePtr storage_on(DeviceType device, const StoragePtr& from, size_t n);
  void gather(float* dst, const Tensor& src, const std::vector<int32_t>& idx, size_t row) const;
  size_t example_size(const Shape& s) const;
  float* param_ptr(int index) const;  // null for index -1
  float* grad_ptr(int index) const;
  bool has_weights(int layer) const;
  void compute_update_ranges();
  size_t loss_rows(int batch) const;
  // Enqueues fn on the net's stream, keeping `reads`/`writes` alive; outputs made on it.
  void enqueue(const char* what, std::vector<const Tensor*> reads,
               std::vector<const Tensor*> writes, std::function<void()> fn);
  void check_batch(const char* op, const std::vector<Tensor>& xs, const std::vector<Tensor>* ys,
                   const std::vector<int32_t>& idx) const;

  std::vector<Shape> inputs_;
  std::vector<LayerSpec> layers_;
  std::vector<int> outputs_;
  std::vector<Shape> shapes_;            // per-example shape of every value
  std::vector<int> consumers_;           // per value: how many layer inputs read it
  std::vector<char> needs_grad_;         // per value: depends on a trainable weight
  std::vector<int> fused_output_;        // per output: softmax layer folded into the loss, or -1
  std::vector<char> relu_into_pool_;     // per layer: its ReLU's backward runs in the max pool after it
  // Training fusions: per batch norm, the ReLU / ReLU6 activation layer that is its only reader
  // (or -1), run inside it: the batch norm writes the activated values into the activation's
  // value, and its backward takes the activation's gradient through the derivative from them.
  std::vector<int> bn_act_, act_bn_;     // batch norm -> activation layer, and back
  std::vector<Act> bn_act_kind_;         // per batch norm: Relu or Relu6
  // Inference folds, per conv2d / depthwise / dense layer (bn < 0: none). y = bn(conv(x)) is
  // conv(x) with each output channel's weights scaled by gamma / sqrt(var + eps) and bias
  // (b - mean) * that + beta; a ReLU or ReLU6 layer read only from the batch norm joins the
  // epilogue. The layer writes straight into out_layer's value (the batch norm's, or the ReLU's).
  // A zero padding read only by a conv2d or depthwise layer is folded into that layer's
  // geometry instead (pad >= 0): the layer reads the padding's input with the padding added to
  // its own, out-of-image taps being zeros either way.
  struct InferenceFold {
    int bn = -1, relu = -1, out_layer = -1;
    Act act = Act::None;  // the epilogue: Relu or Relu6 when relu >= 0
    size_t kernel_at = 0, bias_at = 0, channels = 0;  // in folded_weights_
    int pad = -1;         // the zero padding folded into the input
    bool any() const { return bn >= 0 || relu >= 0 || pad >= 0; }
  };
  std::vector<InferenceFold> folds_;
  std::vector<char> folded_away_;        // per layer: computed by the layer it is folded into
  std::vector<char> unwritten_;          // per layer: its value is never written when folded
  StoragePtr folded_weights_;            // host: every fold's kernel and bias
  // The folded convolutions' weights as the GEMM of packed_for_ reads them (its tiles differ by
  // ISA, and ck.setIsa may switch it): packed once per weight version, not on every call.
  static constexpr size_t kNotPacked = ~size_t(0);
  std::vector<size_t> packed_at_;        // per layer: offset in packed_weights_, or kNotPacked
  StoragePtr packed_weights_;
  const CpuKernels* packed_for_ = nullptr;
  // An inverted-residual block: expand (optional), depthwise and project layers with their batch
  // norms (and ReLUs) folded, and the residual add (optional); the values it reads and writes.
  struct BandBlock {
    int expand = -1, depthwise = -1, project = -1, add = -1;
    int input = -1, output = -1;
  };
  std::vector<BandBlock> bands_;
  std::vector<int> band_at_;   // per layer: the block it heads in bands_, or -1
  std::vector<char> in_band_;  // per layer: run by the block it belongs to
  bool has_folds_ = false;
  // Bumped by every task that writes weights or batch-norm statistics; the folded weights are
  // recomputed by the first folded pass that sees them stale.
  uint64_t weights_version_ = 1, folded_version_ = 0;
  // Per layer: the window geometry of convolutions and poolings, worked out (and checked) once
  // when the layer is added, for one example; a pass sets N to its batch.
  std::vector<ConvParams> conv_geo_;
  std::vector<PoolParams> pool_geo_;
  // Per layer: for a multiply of an image by a gate broadcast over its space (squeeze-and-
  // excitation), which of its two inputs is the gate (one value per channel); -1 otherwise.
  std::vector<int> mul_gate_;
  ConvParams conv_geometry(int layer, int batch) const {
    ConvParams p = conv_geo_[size_t(layer)];
    p.N = batch;
    return p;
  }
  // The same with a zero padding folded into it: the window over the padding's input.
  ConvParams folded_geometry(int layer, int batch) const {
    ConvParams p = conv_geometry(layer, batch);
    const int z = folds_[size_t(layer)].pad;
    if (z < 0) return p;
    const LayerSpec& pad = layers_[size_t(z)];
    const Shape& in = shapes_[size_t(pad.inputs[0])];
    p.H = int(in[0]), p.W = int(in[1]);
    const PaddingAttrs& zeros = pad.attrs<PaddingAttrs>();
    p.pad_h += zeros.top, p.pad_w += zeros.left;
    return p;
  }
  PoolParams pool_geometry(int layer, int batch) const {
    PoolParams p = pool_geo_[size_t(layer)];
    p.N = batch;
    return p;
  }
  std::vector<ParamInfo> params_;
  std::vector<int> kernel_param_, bias_param_, gamma_param_, beta_param_, mean_param_, var_param_, count_param_;
  // Per layer: the index in params() of its weight of that role, or -1.
  std::vector<int>& param_slots(ParamRole role);
  // Shared weights (LayerSpec::shares_params_with): per layer, the layer whose weights it holds
  // (itself, or the one it shares with); per such owner, whether others read its weights too,
  // where its trainable weights lie in the flat buffer, and whether this backward pass has
  // written their gradients yet (a later application's backward then adds into them, through
  // the plan's shared_grad).
  std::vector<int> param_owner_;
  std::vector<char> shared_owner_;
  std::vector<std::pair<size_t, size_t>> trainable_span_;  // [offset, size)
  std::vector<char> grads_written_;
  size_t shared_grad_floats_ = 0;  // the widest shared trainable span
  void plan_shared_params();
  StoragePtr weights_, grads_, state_;  // grads_: made by compile
  size_t n_weights_ = 0, n_state_ = 0;
  std::vector<StoragePtr> opt_state_;
  std::vector<std::pair<size_t, size_t>> update_ranges_;  // [offset, size) of trainable layers
  std::vector<std::pair<size_t, size_t>> update_params_;  // the same, one per weight (clipnorm)
  std::vector<WeightPenalty> penalties_;
  bool weighted_ = false;  // the running step weighs its rows (plan_->row_weights)
  // The running training step updates the weights (false: it only adds its gradients into the
  // accumulator, see OptimizerSpec::accumulation_steps).
  bool applying_ = true;
  size_t update_buffers_ = 0;  // opt_state_'s buffers the update reads; the accumulator follows

  LossKind loss_ = LossKind::CategoricalCrossentropy;
  LossSpec loss_spec_;
  std::vector<MetricSpec> metrics_;
  size_t metric_slots_ = 0;  // the sum of metrics_' slots(), per output
  OptimizerSpec opt_;
  bool accuracy_ = false;
  bool compiled_ = false;
  int64_t iterations_ = 0;
  GradientReducer reduce_gradients_;  // set_gradient_reducer's, in stream order
  // Data-parallel gradient buckets (net_buckets.cpp): where the buffer is cut for
  // reduce_gradients_, each bucket's [begin, end) and the lowest layer writing into it, from the
  // buffer's end to its start; how many of them this step handed over, and whether a step is open.
  struct GradientBucket {
    size_t begin, end;
    int first_layer;
  };
  std::vector<GradientBucket> buckets_;
  size_t buckets_cap_ = 0;  // the bucket_floats buckets_ was cut for
  size_t buckets_sent_ = 0;
  bool buckets_open_ = false;
  void plan_gradient_buckets();
  void begin_gradient_buckets();
  void on_layer_grads_ready(int layer);
  void finish_gradient_buckets(const Failure& failed);
  uint64_t step_first_row_ = 0;      // the training step's first row in its global batch
  int loss_batch_ = 0;                // > 0: the rows this step's loss averages over (global_batch)

  DeviceType device_ = DeviceType::Cpu;
  void* cuda_stream_ = nullptr;           // CUDA nets: the net's own CUDA stream
  // CUDA nets: the copy stream that uploads a step's batch (and scalars) from page-locked staging
  // into `landing` while cuda_stream_ still runs the step before; cuda_stream_ waits for the
  // upload and copies it into the plan's buffers, and the next upload waits for that copy-out
  // (`consumed`). A struct of its own so that it is released after both streams are done with
  // `landing` however the net goes (set_device, ~Net).
  struct CudaCopyStream {
    CudaCopyStream();   // creates the stream
    ~CudaCopyStream();  // waits for the last copy-out and the stream, then releases them
    CudaCopyStream(const CudaCopyStream&) = delete;
    CudaCopyStream& operator=(const CudaCopyStream&) = delete;
    void* stream = nullptr;
    void* consumed = nullptr;  // event on cuda_stream_ after the last step's copies out of landing
    StoragePtr landing;        // one step's inputs, targets and scalars, as laid out in staging
  };
  std::unique_ptr<CudaCopyStream> cuda_copy_;
  std::shared_ptr<Stream> results_;       // CUDA nets: publishes each step's sums
  uint64_t last_result_ = 0;
  // CUDA nets: the running sums on the device, [loss, correct, loss per output..., correct per
  // output...] for training and the same for evaluation; the counts are kept on the host.
  StoragePtr cuda_sums_;
  StoragePtr cuda_correct_;               // accuracy_count's and top_k_count's device scalar (uint64)
  StoragePtr cuda_thresholds_;            // the Confusion metrics' thresholds, metric after metric
  StoragePtr cuda_norms_;                 // clipping's squared norms (doubles), one per weight + 1
  StoragePtr cuda_scalars_;               // the step's dropout seed (uint64) and Adam alpha (float)
  // (batch, training, 4 * precision + 2 * weighted + applying) -> step graph
  std::map<std::tuple<int, bool, int>, void*> cuda_graphs_;
  std::set<std::pair<int, bool>> cuda_warm_;           // run once with the current plan
  bool cuda_graphs_off_ = false;          // CONVKIT_CUDA_GRAPHS=0, or a capture failed
  std::atomic<int64_t> cuda_captures_{0};

  std::unique_ptr<Plan> plan_;
  std::vector<std::unique_ptr<Plan>> thread_plans_;  // CpuDevice::run_rows's, one per thread
  // Dynamic batching: the queued inference task that calls may still join (guarded by group_mu_;
  // the task seals it when it starts).
  struct InferGroup;
  std::mutex group_mu_;
  std::shared_ptr<InferGroup> open_group_;
  int max_coalesced_rows_ = 32;
  uint64_t infer_calls_ = 0, infer_tasks_ = 0;  // JS thread only
  void infer_group(InferGroup& g, int last, size_t widest);
  Accumulators train_acc_, eval_acc_;
  uint64_t last_task_ = 0;
  std::shared_ptr<Stream> stream_;
};

}  // namespace ck
