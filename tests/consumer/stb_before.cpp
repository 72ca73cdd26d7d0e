// SPDX-License-Identifier: MIT
// <stb_image_write.h> with its implementation, then eigencnn (its PNG writer, which used to define stb_image_write itself): both must compile and link together.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <eigencnn/io/png.hpp>

int stb_before() {
    unsigned char px[4] = {0, 255, 0, 255};
    int bytes = 0;
    unsigned char* png = stbi_write_png_to_mem(px, 2, 2, 2, 1, &bytes);
    const std::string ours = eigencnn::encode_png(2, 2, 1, px);
    STBIW_FREE(png);
    return bytes > 0 && ours.size() > 8 ? 0 : 1;
}
