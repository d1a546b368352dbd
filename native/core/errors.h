// The core's exceptions. The addon turns each kind into the matching JS class (ShapeError,
// DTypeError, DeviceError, FormatError, all ConvkitError); the message already names the op.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ck {

// Distributed: another process of a distributed job failed, so this one stops with it.
enum class ErrorKind { Shape, DType, Device, Format, Value, Distributed };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] void throw_error(ErrorKind kind, const std::string& msg);

// An error raised by work on another thread (a stream task, a step, a device copy), kept with
// its kind until whoever waits for that work rethrows it: a ShapeError inside a step reaches JS
// as a ShapeError. Null means no error.
using Failure = std::shared_ptr<const Error>;
// The exception being handled, as a Failure (call inside a catch block): a ck::Error keeps its
// kind; running out of memory and any other C++ exception are Device errors.
Failure current_failure();
// The same failure with `prefix` before its message ("conv2d: " + ...).
Failure with_prefix(const Failure& failure, const std::string& prefix);

// "[2,28,28,1]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace ck
