// SPDX-License-Identifier: MIT
// oneDNN's convolutions next to eigencnn's in conv_bench (bench only; built when libdnnl-dev is installed).
//
// For one shape [N, C, H, W] -> [N, OC, OH, OW] and one pass it builds oneDNN's primitive with every
// memory in format_tag::any, so oneDNN picks its own layout (blocked nChw16c and the like), as PyTorch's
// and OpenVINO's CPU paths let it. Inputs are written once in NCHW and reordered into that layout before
// timing: reorders are outside the timed region, only execute() is timed. The passes:
//   forward_inference  y = conv(x, W) + b       (oneDNN may use a kernel that stores no workspace)
//   forward_training   the same, as training runs it
//   backward_data      dx = conv^T(dy, W)
//   backward_weights   dW = sum_n dy_n * x_n^T, db = sum dy
// impl() names the implementation oneDNN chose (e.g. "brg:avx512_core", "jit:avx2", "gemm:jit").
// check_forward() compares oneDNN's forward with a reference output in NCHW: the two compute the same op.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace onednn_bench {

enum class Pass { ForwardInference, ForwardTraining, BackwardData, BackwardWeights };

struct ConvDims {
    long n, c, h, w, oc, k, stride, pad;
    long oh() const { return (h + 2 * pad - k) / stride + 1; }
    long ow() const { return (w + 2 * pad - k) / stride + 1; }
};

class OneDnnConv {
public:
    // x, weight, bias and dy in PyTorch's layouts: [N, C, H, W], [OC, C, K, K], [OC], [N, OC, OH, OW].
    OneDnnConv(const ConvDims& d, Pass pass, const float* x, const float* weight, const float* bias, const float* dy)
        : eng_(dnnl::engine::kind::cpu, 0), stream_(eng_), pass_(pass) {
        using dt = dnnl::memory::data_type;
        using tag = dnnl::memory::format_tag;
        const dnnl::memory::dims src{d.n, d.c, d.h, d.w}, wei{d.oc, d.c, d.k, d.k}, bia{d.oc}, dst{d.n, d.oc, d.oh(), d.ow()};
        const dnnl::memory::dims strides{d.stride, d.stride}, pad{d.pad, d.pad};
        const auto any = [](const dnnl::memory::dims& dims) { return dnnl::memory::desc(dims, dt::f32, tag::any); };
        const dnnl::prop_kind kind =
            pass == Pass::ForwardInference ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
        const dnnl::convolution_forward::desc fwd_desc(kind, dnnl::algorithm::convolution_direct, any(src), any(wei), any(bia),
                                                       any(dst), strides, pad, pad);
        const dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, eng_);
        user_x_ = user(src, tag::nchw, x);
        user_w_ = user(wei, tag::oihw, weight);
        user_b_ = user(bia, tag::x, bias);
        user_dy_ = user(dst, tag::nchw, dy);
        if (pass == Pass::ForwardInference || pass == Pass::ForwardTraining) {
            impl_ = fwd_pd.impl_info_str();
            args_ = {{DNNL_ARG_SRC, to(fwd_pd.src_desc(), user_x_)},
                     {DNNL_ARG_WEIGHTS, to(fwd_pd.weights_desc(), user_w_)},
                     {DNNL_ARG_BIAS, to(fwd_pd.bias_desc(), user_b_)},
                     {DNNL_ARG_DST, dnnl::memory(fwd_pd.dst_desc(), eng_)}};
            prim_ = dnnl::convolution_forward(fwd_pd);
            out_desc_ = fwd_pd.dst_desc();
        } else if (pass == Pass::BackwardData) {
            const dnnl::convolution_backward_data::desc bd(dnnl::algorithm::convolution_direct, any(src), any(wei), any(dst), strides, pad, pad);
            const dnnl::convolution_backward_data::primitive_desc pd(bd, eng_, fwd_pd);
            impl_ = pd.impl_info_str();
            args_ = {{DNNL_ARG_DIFF_DST, to(pd.diff_dst_desc(), user_dy_)},
                     {DNNL_ARG_WEIGHTS, to(pd.weights_desc(), user_w_)},
                     {DNNL_ARG_DIFF_SRC, dnnl::memory(pd.diff_src_desc(), eng_)}};
            prim_ = dnnl::convolution_backward_data(pd);
        } else {
            const dnnl::convolution_backward_weights::desc bw(dnnl::algorithm::convolution_direct, any(src), any(wei), any(bia), any(dst),
                                                              strides, pad, pad);
            const dnnl::convolution_backward_weights::primitive_desc pd(bw, eng_, fwd_pd);
            impl_ = pd.impl_info_str();
            args_ = {{DNNL_ARG_SRC, to(pd.src_desc(), user_x_)},
                     {DNNL_ARG_DIFF_DST, to(pd.diff_dst_desc(), user_dy_)},
                     {DNNL_ARG_DIFF_WEIGHTS, dnnl::memory(pd.diff_weights_desc(), eng_)},
                     {DNNL_ARG_DIFF_BIAS, dnnl::memory(pd.diff_bias_desc(), eng_)}};
            prim_ = dnnl::convolution_backward_weights(pd);
        }
        stream_.wait();
    }

    void run() {
        prim_.execute(stream_, args_);
        stream_.wait();
    }
    const std::string& impl() const { return impl_; }

    // Forward passes only: runs once and returns the largest |oneDNN - reference| / (1 + |reference|)
    // over the NCHW output `reference`.
    double check_forward(const std::vector<float>& reference) {
        if (pass_ != Pass::ForwardInference && pass_ != Pass::ForwardTraining)
            throw std::logic_error("check_forward: not a forward pass");
        run();
        const auto& dims = out_desc_.dims();
        dnnl::memory nchw(dnnl::memory::desc(dims, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nchw), eng_);
        dnnl::reorder(args_.at(DNNL_ARG_DST), nchw).execute(stream_, args_.at(DNNL_ARG_DST), nchw);
        stream_.wait();
        const float* y = static_cast<const float*>(nchw.get_data_handle());
        if (reference.size() != nchw.get_desc().get_size() / sizeof(float))
            throw std::invalid_argument("check_forward: reference has " + std::to_string(reference.size()) + " values");
        double worst = 0;
        for (std::size_t i = 0; i < reference.size(); ++i)
            worst = std::max(worst, std::abs(static_cast<double>(y[i]) - reference[i]) / (1.0 + std::abs(reference[i])));
        return worst;
    }

private:
    dnnl::memory user(const dnnl::memory::dims& dims, dnnl::memory::format_tag t, const float* values) {
        dnnl::memory m(dnnl::memory::desc(dims, dnnl::memory::data_type::f32, t), eng_);
        std::memcpy(m.get_data_handle(), values, m.get_desc().get_size());
        return m;
    }
    // `from` reordered into oneDNN's chosen layout `desc` (outside any timed region).
    dnnl::memory to(const dnnl::memory::desc& desc, const dnnl::memory& from) {
        if (desc == from.get_desc()) return from;
        dnnl::memory m(desc, eng_);
        dnnl::reorder(from, m).execute(stream_, const_cast<dnnl::memory&>(from), m);
        return m;
    }

    dnnl::engine eng_;
    dnnl::stream stream_;
    Pass pass_;
    dnnl::primitive prim_;
    std::unordered_map<int, dnnl::memory> args_;
    dnnl::memory user_x_, user_w_, user_b_, user_dy_;
    dnnl::memory::desc out_desc_;
    std::string impl_;
};

}  // namespace onednn_bench
