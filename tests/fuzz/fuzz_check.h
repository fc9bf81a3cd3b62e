// tests/fuzz/fuzz_check.h: FUZZ_CHECK(cond), the fuzz targets' assertion: a failed property is a
// crash libFuzzer saves and reports, like a sanitizer finding. Active in every build (no NDEBUG);
// variadic, so a condition may hold braced commas.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(...)                                                                    \
  do {                                                                                     \
    if (!(__VA_ARGS__)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #__VA_ARGS__); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)
