// Data-parallel steps hand their gradients to the reducer (ck.distributed) in buckets of the flat
// gradient buffer, each as soon as backward has written its final values, so that summing the
// last layers' gradients over the processes overlaps the backward pass of the earlier ones (as
// PyTorch's DistributedDataParallel does). The schedule is fixed by the layout alone: weights lie
// in the buffer in layer order, backward visits the layers from the last, so the buckets go out
// from the buffer's end to its start, in the same order on every process, with nothing to agree
// on at run time. Each element is still summed by exactly one allreduce of the same floats.
//
// A CUDA net's gradients go through host memory (the reducer sums host buffers): after backward
// the whole buffer is downloaded, every bucket of the same schedule goes out from the host copy
// at once, and the sums are uploaded before the update. No overlap with backward, for now.
#include <algorithm>
#include <climits>

#include "net.h"
#include "net_plan.h"

namespace ck {

// Cuts [0, n_weights_) at layer boundaries, from the end, into buckets of at least
// reduce_gradients_.bucket_floats floats (a layer's gradients are all ready at once, so cutting
// inside one would gain nothing); the first layer's bucket may be smaller.
void Net::plan_gradient_buckets() {
  const size_t cap = reduce_gradients_.bucket_floats;
  std::vector<const ParamInfo*> flat;
  for (const ParamInfo& p : params_) {
    if (p.trainable && p.size > 0) flat.push_back(&p);
  }
  std::sort(flat.begin(), flat.end(), [](const ParamInfo* a, const ParamInfo* b) { return a->offset > b->offset; });
  buckets_.clear();
  size_t end = n_weights_;
  int first_layer = INT_MAX;
  for (size_t k = 0; k < flat.size(); ++k) {
    first_layer = std::min(first_layer, flat[k]->layer);
    const size_t begin = flat[k]->offset;
    const bool layer_ends = k + 1 == flat.size() || flat[k + 1]->layer != flat[k]->layer;
    if (k + 1 == flat.size()) {
      buckets_.push_back({0, end, first_layer});  // down to the buffer's start
    } else if (layer_ends && cap > 0 && end - begin >= cap) {
      buckets_.push_back({begin, end, first_layer});
      end = begin;
      first_layer = INT_MAX;
    }
  }
  buckets_cap_ = cap;
}

void Net::begin_gradient_buckets() {
  if (buckets_cap_ != reduce_gradients_.bucket_floats || buckets_.empty()) plan_gradient_buckets();
  buckets_sent_ = 0;
  buckets_open_ = true;
  reduce_gradients_.begin();
}

// Called by backward after layer `layer` (and so every layer after it) is done: every bucket
// that no earlier layer writes into goes out.
void Net::on_layer_grads_ready(int layer) {
  if (!buckets_open_ || device_ == DeviceType::Cuda) return;  // a CUDA net's go out after backward
  while (buckets_sent_ < buckets_.size() && layer <= buckets_[buckets_sent_].first_layer) {
    const GradientBucket& b = buckets_[buckets_sent_++];
    reduce_gradients_.bucket(grads_, b.begin, b.end);
  }
}

// The buckets backward did not hand over (this process had no rows, or its part failed) go out
// now, as on every other process, before the reducer's finish.
void Net::finish_gradient_buckets(const Failure& failed) {
  struct Close {
    bool& open;
    ~Close() { open = false; }
  } close{buckets_open_};
  StoragePtr grads = grads_;
  if (device_ == DeviceType::Cuda) {
    // Waits for backward's kernels. The copy is the reducer's to keep: after a timeout a blocked
    // MPI call may still write into it.
    grads = net_storage(std::max<size_t>(n_weights_, 1), DeviceType::Cpu);
    download_values(grads->data(), grads_->data(), n_weights_);
  }
  while (buckets_sent_ < buckets_.size()) {
    const GradientBucket& b = buckets_[buckets_sent_++];
    reduce_gradients_.bucket(grads, b.begin, b.end);
  }
  reduce_gradients_.finish(grads, n_weights_, failed);
  if (grads != grads_) upload_values(grads_->data(), grads->data(), n_weights_);
}

}  // namespace ck
