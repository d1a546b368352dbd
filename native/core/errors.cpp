#include "errors.h"

namespace ck {

void throw_error(ErrorKind kind, const std::string& msg) { throw Error(kind, msg); }

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace ck
