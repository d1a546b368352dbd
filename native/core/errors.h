// The core's exceptions. The addon turns each kind into the matching JS class (ShapeError,
// DTypeError, DeviceError, FormatError, all ConvkitError); the message already names the op.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace ck {

enum class ErrorKind { Shape, DType, Device, Format, Value };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] void throw_error(ErrorKind kind, const std::string& msg);

// "[2,28,28,1]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace ck
