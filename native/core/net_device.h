// What a net's step and inference need from its device (internal to the net*.cpp files). The
// executor writes the step (gather, forward, loss and metrics, backward, the gradient reducer,
// penalties and clipping, update), evaluation and inference once, as templates over a device
// policy: CpuDevice (the host: plain memory, the CPU kernel table, the running sums in the
// host Accumulators, rows split over the threads) or CudaDevice (page-locked staging and the copy
// stream, the CUDA kernels bound to the net's stream, sums that stay on the GPU, a CUDA graph per
// step). Everything that differs between the devices is a member here; the arithmetic is not.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cuda_ops.h"
#include "kernels.h"
#include "net.h"

namespace ck {

// One training or evaluation step as train_step / eval_step queued it.
struct Net::StepRequest {
  std::vector<Tensor> xs, ys, weights;  // weights: none, or one [N] tensor of row weights
  std::vector<int32_t> idx;             // the batch's rows (empty: a data-parallel share of none)
  bool training = false;
  uint64_t seed = 0;
  int global_batch = 0, first_row = 0;  // data-parallel steps (see train_step)
  int slices = 1;                       // > 1: fit's gradientSlices (see train_step)
  bool folded = false;                  // evaluation with the inference folds (CPU)
};

// Where a phase's running sums live on the device, laid out as Accumulators holds them.
struct Net::SumSlots {
  double* loss;
  double* correct;
  double* output_loss;     // per output
  double* output_correct;  // per output
  double* metric_sums;     // per output, each MetricSpec's counts in turn
};

struct Net::CpuDevice {
  explicit CpuDevice(Net& n) : net(n) {}
  Net& net;

  const CpuKernels& kernels() const { return cpu_kernels(); }
  // The batch's rows of every input, target and row weight into the plan.
  void gather(const StepRequest& r, int64_t step);
  SumSlots sums(bool training);
  void run_body(int, bool, const std::function<void()>& body) { body(); }
  void zero(float* p, size_t n) const;
  // The totals, in double, in a fixed order (the CUDA twins of kernel_list.inc's sum_into ...).
  using Count = size_t;
  void sum_into(double* acc, const float* x, size_t n) const;
  Count accuracy_count(const float* pred, const float* target, size_t rows, size_t cols, LabelMode mode,
                       float threshold) const {
    return kernels().accuracy_count(pred, target, rows, cols, mode, threshold);
  }
  Count top_k_count(const float* pred, const float* target, size_t rows, size_t cols, LabelMode mode, int k) const {
    return kernels().top_k_count(pred, target, rows, cols, mode, k);
  }
  void add_count(double* acc, Count count, double divisor) const { *acc += double(count) / divisor; }
  // Metric m's thresholds, the `at`-th onwards of the compiled metrics' (a host list here).
  const float* thresholds(const MetricSpec& m, size_t) const { return m.thresholds.data(); }
  void threshold_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols, int class_id,
                        int top_k, const float* thresholds, size_t count) const {
    kernels().threshold_counts(counts, pred, target, rows, cols, class_id, top_k, thresholds, count);
  }
  void penalty_into(double* acc, float* g, const float* w, size_t n, double l1, double l2, double scale) const;
  double* norms(size_t n);  // n zeroed doubles for the clipping's squared norms
  void sum_squares_into(double* acc, const float* x, size_t n) const;
  void clip_to_norm(float* g, size_t n, const double* sum_sq, float clip) const;
  void clip_values(float* g, size_t n, float limit) const;
  // Cross-entropy from probabilities (an output that is not a softmax's logits).
  void probability_xent(float* loss, float* grad, const float* p, const float* t, size_t rows, size_t cols,
                        bool sparse, float smoothing, float scale) const;

  // Inference: a chunk of `rows` rows split over the threads (each its own plan, in slices
  // whose widest value fits a core's L2) or, fewer rows than threads, in slices on the net's plan.
  void begin_inference(const std::vector<Tensor>&) {}
  void run_rows(int64_t rows, size_t widest, const InferRows& run);
  void load_rows(Plan& pl, const std::vector<Tensor>& xs, int64_t x_row, int n) const;
  void store_rows(Plan& pl, const std::vector<Tensor>& ys, const std::vector<int>& layers, int64_t y_row, int n) const;
  void end_inference() {}

 private:
  std::vector<double> norms_;
};

struct Net::CudaDevice {
  explicit CudaDevice(Net& n);
  ~CudaDevice();  // waits for the GPU before an inference's staging goes (an error's path)
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;
  Net& net;

  CudaOps kernels() const { return net.cuda_ops(); }
  // Gathers the batch and the step's scalars into page-locked staging, uploads it on the copy
  // stream into the landing buffer, and copies it into the plan on the net's stream (see
  // CudaCopyStream); CUDA inputs are gathered on the device.
  void gather(const StepRequest& r, int64_t step);
  SumSlots sums(bool training);
  // Replays the step's graph for (batch, training), captures one on the second run with the same
  // plan (the first warms the gradient pool), or runs the body directly.
  void run_body(int batch, bool training, const std::function<void()>& body);
  void zero(float* p, size_t n) const;
  using Count = const uint64_t*;  // a device scalar
  void sum_into(double* acc, const float* x, size_t n) const;
  Count accuracy_count(const float* pred, const float* target, size_t rows, size_t cols, LabelMode mode,
                       float threshold) const;
  Count top_k_count(const float* pred, const float* target, size_t rows, size_t cols, LabelMode mode, int k) const;
  void add_count(double* acc, Count count, double divisor) const;
  const float* thresholds(const MetricSpec&, size_t at) const;
  void threshold_counts(double* counts, const float* pred, const float* target, size_t rows, size_t cols, int class_id,
                        int top_k, const float* thresholds, size_t count) const;
  void penalty_into(double* acc, float* g, const float* w, size_t n, double l1, double l2, double scale) const;
  double* norms(size_t n);
  void sum_squares_into(double* acc, const float* x, size_t n) const;
  void clip_to_norm(float* g, size_t n, const double* sum_sq, float clip) const;
  void clip_values(float* g, size_t n, float limit) const;
  [[noreturn]] void probability_xent(float*, float*, const float*, const float*, size_t, size_t, bool, float,
                                     float) const;
  // The phase's device sums into page-locked `host`, on the net's stream.
  void download_sums(double* host, bool training) const;

  // Inference: chunks in two page-locked slots, so chunk k+1 is uploaded and run before chunk
  // k's results are copied out of its slot and the GPU does not wait for the host.
  void begin_inference(const std::vector<Tensor>& xs);
  void run_rows(int64_t rows, size_t widest, const InferRows& run);
  void load_rows(Plan& pl, const std::vector<Tensor>& xs, int64_t x_row, int n);
  void store_rows(Plan& pl, const std::vector<Tensor>& ys, const std::vector<int>& layers, int64_t y_row, int n);
  void end_inference();  // copies the last two chunks' results out

 private:
  struct Slots;
  std::unique_ptr<Slots> slots_;
};

}  // namespace ck
