// The CUDA kernel table, in CudaKernels's member order.
#include "internal.h"

namespace ck {

const CudaKernels& cuda_kernels() {
  using namespace cuda;
  static const CudaKernels table = {
      conv2d_fwd,         conv2d_bwd_data,     conv2d_bwd_filter,  dense_fwd,
      dense_bwd_data,     dense_bwd_filter,    maxpool2d_fwd,      maxpool2d_bwd,
      avgpool2d_fwd,      avgpool2d_bwd,       global_avgpool_fwd, global_avgpool_bwd,
      global_maxpool_fwd, global_maxpool_bwd,  activation_fwd,     activation_bwd,
      softmax_fwd,        softmax_bwd,         dropout_fwd,        mul,
      batchnorm_fwd_train, batchnorm_fwd_infer, batchnorm_bwd,     softmax_xent,
      binary_xent,        mse,                 accuracy_count,     sgd_update,
      adam_update,        rmsprop_update,      add,                accumulate,
      scale,              sum_into,            count_into,         dropout_fwd_at,
      adam_update_at,     depthwise_conv2d_fwd, depthwise_conv2d_bwd_data,
      depthwise_conv2d_bwd_filter, grouped_conv2d_fwd, grouped_conv2d_bwd_data,
      grouped_conv2d_bwd_filter,   zero_pad2d_fwd,     zero_pad2d_bwd,
      upsample2d_fwd,     upsample2d_bwd,      lppool2d_fwd,       lppool2d_bwd,
      concat_last,        split_last,          gather_rows,
  };
  return table;
}

}  // namespace ck
