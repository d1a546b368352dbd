# The node-gyp fallback build, for machines without CMake. It reads the same source list as
# CMakeLists.txt (native/sources.json), so the two builds cannot drift: the vector ISA units of
# the target architecture come from its "isa_units" (x64: avx2 + avx512, arm64: neon; any other
# architecture builds the scalar kernels only). GCC or Clang only (the kernels use their
# extensions); macOS through xcode_settings (unverified: no Mac has built convkit yet).
{
  "target_defaults": {
    "include_dirs": ["native/core"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fPIC"],
    "defines": ["NDEBUG"],
    "xcode_settings": {
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "GCC_ENABLE_CPP_RTTI": "YES",
      "GCC_OPTIMIZATION_LEVEL": "3",
      "MACOSX_DEPLOYMENT_TARGET": "11.0"
    }
  },
  "targets": [
    {
      "target_name": "ck_ref",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu_ref.join(' ')\")"],
      "cflags_cc": ["-ffp-contract=off"],
      "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off"]}
    },
    {
      "target_name": "convkit",
      "dependencies": ["ck_ref"],
      "sources": [
        "<!@(node -p \"require('./native/sources.json').kernels.join(' ')\")",
        "<!@(node -p \"require('./native/sources.json').core.join(' ')\")",
        "<!@(node -p \"require('./native/sources.json').device_none.join(' ')\")",
        "<!@(node -p \"require('./native/sources.json').addon.join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "conditions": [
        ["target_arch=='x64'", {"dependencies": ["ck_avx2", "ck_avx512"]}],
        ["target_arch=='arm64'", {"dependencies": ["ck_neon"]}],
        ["OS=='linux'", {"ldflags": ["-static-libstdc++", "-static-libgcc", "-pthread"]}]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "ck_avx2",
          "type": "static_library",
          "sources": ["<!@(node -p \"require('./native/sources.json').cpu_simd.join(' ')\")"],
          "defines": ["<!@(node -p \"require('./native/sources.json').isa_units.x64.avx2.define\")"],
          "cflags_cc": ["<!@(node -p \"require('./native/sources.json').isa_units.x64.avx2.flags.join(' ')\")"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<!@(node -p \"require('./native/sources.json').isa_units.x64.avx2.flags.join(' ')\")"]}
        },
        {
          "target_name": "ck_avx512",
          "type": "static_library",
          "sources": ["<!@(node -p \"require('./native/sources.json').cpu_simd.join(' ')\")"],
          "defines": ["<!@(node -p \"require('./native/sources.json').isa_units.x64.avx512.define\")"],
          "cflags_cc": ["<!@(node -p \"require('./native/sources.json').isa_units.x64.avx512.flags.join(' ')\")"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<!@(node -p \"require('./native/sources.json').isa_units.x64.avx512.flags.join(' ')\")"]}
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "ck_neon",
          "type": "static_library",
          "sources": ["<!@(node -p \"require('./native/sources.json').cpu_simd.join(' ')\")"],
          "defines": ["<!@(node -p \"require('./native/sources.json').isa_units.arm64.neon.define\")"],
          "cflags_cc": ["<!@(node -p \"require('./native/sources.json').isa_units.arm64.neon.flags.join(' ')\")"]
        }
      ]
    }]
  ]
}
