#include "errors.h"

#include <new>

namespace ck {

void throw_error(ErrorKind kind, const std::string& msg) { throw Error(kind, msg); }

Failure current_failure() {
  try {
    throw;
  } catch (const Error& e) {
    return std::make_shared<const Error>(e);
  } catch (const std::bad_alloc&) {
    return std::make_shared<const Error>(ErrorKind::Device, "out of memory");
  } catch (const std::exception& e) {
    return std::make_shared<const Error>(ErrorKind::Device, e.what());
  } catch (...) {
    return std::make_shared<const Error>(ErrorKind::Device, "unknown error");
  }
}

Failure with_prefix(const Failure& failure, const std::string& prefix) {
  return std::make_shared<const Error>(failure->kind(), prefix + failure->what());
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace ck
