// SPDX-License-Identifier: MIT
// eigencnn/version.hpp: the library's version. CMake refuses to configure
// when these differ from project(VERSION) in CMakeLists.txt, so the two
// cannot drift apart.
#pragma once

#define EIGENCNN_VERSION_MAJOR 0
#define EIGENCNN_VERSION_MINOR 2
#define EIGENCNN_VERSION_PATCH 0
#define EIGENCNN_VERSION_STRING "0.2.0"

namespace eigencnn {

/// "major.minor.patch"
inline const char* version() { return EIGENCNN_VERSION_STRING; }

}  // namespace eigencnn
