// SPDX-License-Identifier: MIT
// eigencnn/eigencnn.hpp: the whole library in one include.
//
// eigencnn is a header-only convolutional network library on Eigen:
// layers (Conv2d, MaxPool2d, AvgPool2d, BatchNorm, Dropout, activations,
// Flatten, Linear, Residual blocks) composed in a Sequential model,
// cross-entropy loss, Adam, AdamW and SGD, learning-rate schedules, IDX/MNIST data
// loading, training and evaluation helpers, and a backdoor-attack toolkit.
#pragma once

#include "version.hpp"

#include "core/init.hpp"
#include "core/layer.hpp"
#include "core/output_mask.hpp"
#include "core/random.hpp"
#include "core/registry.hpp"
#include "core/spec.hpp"
#include "core/tensor.hpp"
#include "core/threads.hpp"

#include "kernels/conv2d_winners.hpp"
#include "kernels/gemm.hpp"
#include "kernels/im2col.hpp"
#include "kernels/matmul.hpp"
#include "kernels/maxpool.hpp"

#include "layers/adaptive_avgpool2d.hpp"
#include "layers/avgpool2d.hpp"
#include "layers/batchnorm.hpp"
#include "layers/conv2d.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/leaky_relu.hpp"
#include "layers/linear.hpp"
#include "layers/maxpool2d.hpp"
#include "layers/relu.hpp"
#include "layers/residual.hpp"
#include "layers/sigmoid.hpp"
#include "layers/softmax.hpp"
#include "layers/tanh.hpp"

#include "loss/cross_entropy.hpp"

#include "optim/adam.hpp"
#include "optim/adamw.hpp"
#include "optim/clip.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "optim/sgd.hpp"

#include "fusion/conv_pool.hpp"
#include "fusion/plan.hpp"
#include "fusion/step.hpp"

#include "model/factory.hpp"
#include "model/masks.hpp"
#include "model/mnist_cnn.hpp"
#include "model/model_state.hpp"
#include "model/preact_resnet.hpp"
#include "model/sequential.hpp"

#include "data/cifar10.hpp"
#include "data/data_loader.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/transforms.hpp"

#include "train/callbacks.hpp"
#include "train/evaluate.hpp"
#include "train/fit.hpp"
#include "train/inference.hpp"
#include "train/trainer.hpp"

#include "backdoor/trigger.hpp"

#include "io/checkpoint.hpp"
#include "io/file.hpp"
#include "io/png.hpp"
// io/json.hpp (results as JSON) needs nlohmann-json and is not included here: include it yourself.
