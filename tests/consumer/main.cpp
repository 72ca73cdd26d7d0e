// SPDX-License-Identifier: MIT
// A project outside eigencnn that uses it through CMake: builds a model,
// takes one training step and checks the loss went down.
#include <eigencnn/eigencnn.hpp>

#include <cstdio>

int stb_before();
int stb_after();

int main() {
    if (stb_before() != 0 || stb_after() != 0) return 1;
    std::printf("consumer: eigencnn %s\n", eigencnn::version());
    using namespace eigencnn;
    Sequential<float> net(1);
    net.emplace<Conv2d>(1, 2, 3).emplace<ReLU>().emplace<Flatten>().emplace<Linear>(2 * 4 * 4, 3);
    Tensor<float> x(Shape{4, 1, 6, 6}, 0.5f);
    const std::vector<int> y{0, 1, 2, 1};
    Adam<float> opt(net.parameters(), AdamOptions{1e-2});
    Tensor<float> grad;
    const float before = cross_entropy(net.forward(x), y, grad);
    net.backward(grad);
    opt.step();
    const float after = cross_entropy(net.forward(x), y, grad);
    std::printf("consumer: loss %.4f -> %.4f\n", before, after);
    return after < before ? 0 : 1;
}
