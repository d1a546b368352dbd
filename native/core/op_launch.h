// Internal helpers of the op layer: argument checks that throw ck::Error naming the op, and
// launch(), which enqueues a kernel on the default stream with its buffers kept alive.
#pragma once
#include <functional>
#include <initializer_list>
#include <string>

#include "errors.h"
#include "tensor.h"

namespace ck {

void require(bool ok, ErrorKind kind, const std::string& msg);
void require_rank(const char* op, const char* what, const Tensor& t, int rank);
void require_positive_dims(const char* op, const char* what, const Tensor& t);
void require_same_shape(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                        const Tensor& b);
void require_vector(const char* op, const char* what, const Tensor& t, int64_t n);

// Enqueues `kernel`, which reads `reads` and writes `writes` (null entries are skipped): the
// task holds every buffer until it has run, waits for inputs made on other streams, and marks
// the outputs failed (with the op's name) if anything goes wrong.
void launch(const char* op, std::initializer_list<const Tensor*> reads,
            std::initializer_list<const Tensor*> writes, std::function<void()> kernel);
// The same on a given stream; returns the task's sequence number.
uint64_t launch_on(const std::shared_ptr<Stream>& stream, const char* op,
                   std::initializer_list<const Tensor*> reads,
                   std::initializer_list<const Tensor*> writes, std::function<void()> kernel);

}  // namespace ck
