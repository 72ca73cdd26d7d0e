// SPDX-License-Identifier: MIT
// tests/gradcheck.hpp: central finite differences against a layer's backward,
// and the other helpers the test suites share.
//
// With a fixed random upstream gradient G, the scalar L(x, theta) = sum(forward(x) .* G)
// has dL/dx = backward(G) and dL/dtheta = the parameter gradients backward writes.
// Each analytic entry is compared with (L(v + h) - L(v - h)) / 2h.
#pragma once

#include <doctest/doctest.h>
#include <eigencnn/eigencnn.hpp>

#include <cmath>

namespace test {

using namespace eigencnn;

inline Tensor<double> random_tensor(const Shape& s, Rng& rng, double lo = -1, double hi = 1) {
    Tensor<double> t(s);
    for (Index i = 0; i < t.size(); ++i) t[i] = rng.uniform(lo, hi);
    return t;
}

inline double dot(const Tensor<double>& a, const Tensor<double>& b) { return a.vector().dot(b.vector()); }

/// Every weight of a model, concatenated: two models are equal iff these are.
inline std::vector<float> weights_of(Sequential<float>& net) {
    std::vector<float> w;
    for (auto& p : net.parameters()) w.insert(w.end(), p.value->data(), p.value->data() + p.value->size());
    return w;
}

/// Largest |analytic - numeric| / max(1, |numeric|) over all entries of `v`.
template <typename F>
double max_rel_error(Tensor<double>& v, const Tensor<double>& analytic, F loss, double h = 1e-6) {
    REQUIRE(analytic.shape() == v.shape());
    double worst = 0;
    for (Index i = 0; i < v.size(); ++i) {
        const double keep = v[i];
        v[i] = keep + h;
        const double up = loss();
        v[i] = keep - h;
        const double down = loss();
        v[i] = keep;
        const double numeric = (up - down) / (2 * h);
        worst = std::max(worst, std::abs(analytic[i] - numeric) / std::max(1.0, std::abs(numeric)));
    }
    return worst;
}

/// Check dL/dx and every dL/dparameter of `layer` at input x.
inline void check_layer_gradients(Layer<double>& layer, Tensor<double> x, std::uint64_t seed = 7, double tol = 1e-7) {
    Rng rng(seed);
    const Tensor<double> y = layer.forward(x);
    const Tensor<double> G = random_tensor(y.shape(), rng);
    const Tensor<double> dx = layer.backward(G);
    std::vector<Tensor<double>> dparams;
    for (auto& p : layer.parameters()) dparams.push_back(*p.grad);
    auto loss = [&] { return dot(layer.forward(x), G); };
    CAPTURE(layer.name());
    CHECK(max_rel_error(x, dx, loss) < tol);
    auto params = layer.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
        CAPTURE(params[i].name);
        CHECK(max_rel_error(*params[i].value, dparams[i], loss) < tol);
    }
}

}  // namespace test
