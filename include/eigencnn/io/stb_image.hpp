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
#include <stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#undef STBI_FAILURE_USERMSG
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif
