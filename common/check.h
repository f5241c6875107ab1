#pragma once
// WEFT_CHECK: crash loudly on a "cannot happen" state (Debian's Abseil has no absl/log).

#include <cstdio>
#include <cstdlib>

#define WEFT_CHECK(cond, msg)                                                        \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, #cond, \
                   msg);                                                             \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)
