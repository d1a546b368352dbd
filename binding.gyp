# The node-gyp fallback build, for machines without CMake. It reads the same source list as
# CMakeLists.txt (native/sources.json), so the two builds cannot drift.
{
  "target_defaults": {
    "include_dirs": ["native/core"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fPIC"],
    "defines": ["NDEBUG"]
  },
  "targets": [
    {
      "target_name": "ck_ref",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu_ref.join(' ')\")"],
      "cflags_cc": ["-ffp-contract=off"]
    },
    {
      "target_name": "ck_avx2",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu_simd.join(' ')\")"],
      "defines": ["CK_ISA_AVX2"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "ck_avx512",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu_simd.join(' ')\")"],
      "defines": ["CK_ISA_AVX512"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl"]
    },
    {
      "target_name": "convkit",
      "dependencies": ["ck_ref", "ck_avx2", "ck_avx512"],
      "sources": [
        "<!@(node -p \"require('./native/sources.json').kernels.join(' ')\")",
        "<!@(node -p \"require('./native/sources.json').core.join(' ')\")",
        "<!@(node -p \"require('./native/sources.json').device_none.join(' ')\")",
        "<!@(node -p \"require('./native/sources.json').addon.join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "ldflags": ["-static-libstdc++", "-static-libgcc", "-pthread"]
    }
  ]
}
