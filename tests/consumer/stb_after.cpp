// SPDX-License-Identifier: MIT
// eigencnn (its PNG writer), then <stb_image_write.h> (declarations only: the implementation is in stb_before.cpp).
#include <eigencnn/io/png.hpp>

#include <stb_image_write.h>

int stb_after() { return stbi_write_png_compression_level > 0 ? 0 : 1; }
