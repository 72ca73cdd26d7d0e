// SPDX-License-Identifier: MIT
// eigencnn/io/stb_image.hpp
//
// stb_image (libstb-dev) for the headers that decode image files
// (io/image.hpp, and through it backdoor/image_file.hpp and
// data/image_folder.hpp). Its implementation is compiled here once per
// translation unit with static linkage (STB_IMAGE_STATIC), and
// STB_IMAGE_IMPLEMENTATION is undefined again right after, so it does not leak
// into later includes. If the translation unit already compiled stb_image's
// implementation before including this header, that one is used. A
// translation unit that includes this header must not compile stb_image's
// implementation again AFTER it (the functions would be defined twice);
// include <stb_image.h> with STB_IMAGE_IMPLEMENTATION first, or simply call
// stbi_load, which is here. Not part of eigencnn.hpp.
#pragma once

#if !defined(STBI_INCLUDE_STB_IMAGE_H) || !defined(STBI_MALLOC)  // no implementation in this unit yet
#if defined(STBI_INCLUDE_STB_IMAGE_H)
#error "eigencnn: <stb_image.h> was included without STB_IMAGE_IMPLEMENTATION before eigencnn's image headers; include them first"
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
// Zeroed allocations: stb_image 2.27 mallocs its JPEG decoder state without clearing it, so a scan naming a Huffman
// table the file never defined decodes with whatever an earlier allocation left there (a failed assertion in
// stbi__jpeg_huff_decode and out-of-range reads; found by fuzz/fuzz_image.cpp; cleared by memset upstream later).
#if !defined(STBI_MALLOC) && !defined(STBI_REALLOC) && !defined(STBI_FREE)
#include <cstdlib>
#define STBI_MALLOC(size) std::calloc(1, size)
#define STBI_REALLOC(p, size) std::realloc(p, size)
#define STBI_FREE(p) std::free(p)
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
// Zero shifted too far: when a JPEG scan is cut short by a marker inside its entropy-coded data, stb_image 2.27
// lets its bit count go negative, and stbi__grow_buffer_unsafe then computes
// `b << (24 - code_bits)` with a shift of 32 or more, undefined behaviour that UBSan reports (found by
// fuzz/fuzz_image.cpp). The bit count goes negative only after that function has met a marker and set `nomore`,
// and from then on it reads b = 0 instead of a byte, so the shifted value is a zero: 0u << 33 is 0 on every machine
// (x86 masks the count), and the scan's missing bits decode as zeros, as stb_image 2.28 does explicitly. Checked with
// a copy of the header that traps if b != 0 at such a shift (docs/reliability.md). For a user's clang build, UBSan's
// shift-exponent check is left out of stb_image's functions (eigencnn's code keeps it); eigencnn's own sanitized
// builds (scripts/fuzz.sh, EIGENCNN_SANITIZE) leave it out of that one function instead, with
// scripts/ubsan-ignorelist.txt, and define EIGENCNN_STB_SHIFT_IGNORELIST. GCC has neither means: its UBSan reports
// the shift on the one regression input fuzz/regressions/image/jpeg_grow_buffer_shift_by_33.
#if defined(__clang__) && !defined(EIGENCNN_STB_SHIFT_IGNORELIST)
#pragma clang attribute push(__attribute__((no_sanitize("shift-exponent"))), apply_to = function)
#endif
#include <stb_image.h>
#if defined(__clang__) && !defined(EIGENCNN_STB_SHIFT_IGNORELIST)
#pragma clang attribute pop
#endif
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#undef STBI_FAILURE_USERMSG
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif
