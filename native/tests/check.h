// A minimal test harness for the core's ctest suite (no Node, no third-party code):
// TEST(name) { ... CHECK(...); CHECK_NEAR(a, b, tol); } and CK_TEST_MAIN() at the end.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace cktest {

struct Case {
  const char* name;
  std::function<void()> fn;
};
inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}
inline int& failures() {
  static int n = 0;
  return n;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, fn}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  if (failures()++ < 50) std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what.c_str());
}

// Largest |a-b| / (atol + rtol*|b|) over two arrays; <= 1 means close.
inline bool all_close(const float* a, const float* b, size_t n, float rtol, float atol,
                      std::string* why) {
  for (size_t i = 0; i < n; ++i) {
    float d = std::fabs(a[i] - b[i]);
    if (!(d <= atol + rtol * std::fabs(b[i]))) {
      if (why) {
        char text[96];
        std::snprintf(text, sizeof text, "%.9g vs reference %.9g", double(a[i]), double(b[i]));
        *why = "element " + std::to_string(i) + ": " + text;
      }
      return false;
    }
  }
  return true;
}

inline std::vector<float> random_vector(std::mt19937& rng, size_t n, float lo = -1.f,
                                        float hi = 1.f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline int run_all() {
  int failed_cases = 0;
  for (auto& c : registry()) {
    int before = failures();
    c.fn();
    bool ok = failures() == before;
    failed_cases += !ok;
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", c.name);
  }
  std::printf("%d passed, %d failed\n", int(registry().size()) - failed_cases, failed_cases);
  return failed_cases ? 1 : 0;
}

}  // namespace cktest

#define CK_CAT2(a, b) a##b
#define CK_CAT(a, b) CK_CAT2(a, b)
#define TEST(name)                                                               \
  static void name();                                                            \
  static cktest::Register CK_CAT(ck_register_, name)(#name, name);               \
  static void name()
#define CHECK(cond) \
  do { if (!(cond)) cktest::fail(__FILE__, __LINE__, #cond); } while (0)
#define CHECK_NEAR(a, b, tol)                                                              \
  do {                                                                                     \
    double ck_a = (a), ck_b = (b);                                                         \
    if (!(std::fabs(ck_a - ck_b) <= (tol)))                                                \
      cktest::fail(__FILE__, __LINE__, std::string(#a " = ") + std::to_string(ck_a) +     \
                                           " vs " + std::to_string(ck_b));                 \
  } while (0)
#define CHECK_ALL_CLOSE(a, b, n, rtol, atol)                                     \
  do {                                                                           \
    std::string ck_why;                                                          \
    if (!cktest::all_close((a), (b), (n), (rtol), (atol), &ck_why))              \
      cktest::fail(__FILE__, __LINE__, std::string(#a " vs " #b ": ") + ck_why); \
  } while (0)
#define CK_TEST_MAIN() \
  int main() { return cktest::run_all(); }
