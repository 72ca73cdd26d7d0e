// SPDX-License-Identifier: MIT
// eigencnn/core/omp.hpp
//
// EIGENCNN_OMP(directive) is `#pragma omp directive` when the compiler builds with OpenMP (-fopenmp,
// _OPENMP defined) and nothing otherwise, so that a build without OpenMP gets no unknown-pragma
// warnings from the library's headers under -Wall (issue 14). Use it as a statement prefix:
//
//   EIGENCNN_OMP(parallel for schedule(static))
//   for (Index n = 0; n < N; ++n) ...
#pragma once

#define EIGENCNN_PRAGMA_(text) _Pragma(#text)
#ifdef _OPENMP
#define EIGENCNN_OMP(...) EIGENCNN_PRAGMA_(omp __VA_ARGS__)
#else
#define EIGENCNN_OMP(...)
#endif
