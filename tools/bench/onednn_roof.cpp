// The roof for OpsBenchmark's shapes: the best throughput oneDNN itself reaches for each, called
// directly from C++ with every layout left to the library (format_tag::any: packed weights,
// blocked activations for convolution), operands resident and warm, no allocation per call.
// Prints one JSON object in the form of OpsBenchmark's, plus each op's implementation name.
//
//   c++ -O2 -std=c++17 tools/bench/onednn_roof.cpp -I.deps/onednn/include -L.deps/onednn/lib \
//       -ldnnl -Wl,-rpath,.deps/onednn/lib -o .build/onednn-roof && .build/onednn-roof [REPS]
// (tools/bench/ops-vs-torch.sh builds and runs it.) OMP_NUM_THREADS sets the threads.
#include <dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Result { std::string key, shape, impl; double seconds, flops; };

// Median of `reps` timed calls after one warm-up.
static double timed(const std::function<void()> &call, int reps) {
    call();
    std::vector<double> times;
    for (int i = 0; i < reps; i++) {
        double start = now();
        call();
        times.push_back(now() - start);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

// A memory of `md` filled with small values (zeros would not change the timing, but keep it honest).
static memory filled(const memory::desc &md, const engine &eng) {
    memory m(md, eng);
    std::memset(m.get_data_handle(), 0x3c, md.get_size());
    return m;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
    engine eng(engine::kind::cpu, 0);
    stream s(eng);
    std::vector<Result> results;
    for (dt type : {dt::f32, dt::bf16}) {
        const char *name = type == dt::f32 ? "f32" : "bf16";
        {   // matmul [4096,4096] @ [4096,4096]
            const int n = 4096;
            memory::desc a({n, n}, type, tag::ab), b({n, n}, type, tag::any), c({n, n}, type, tag::ab);
            matmul::primitive_desc pd(eng, a, b, c);
            memory am = filled(a, eng), bm = filled(pd.weights_desc(), eng), cm(c, eng);
            matmul op(pd);
            double t = timed([&] { op.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}}); s.wait(); }, reps);
            results.push_back({std::string("matmul_") + name, "[4096,4096] @ [4096,4096]", pd.impl_info_str(), t, 2.0 * n * n * n});
        }
        {   // linear x [2*4096, 320], w [2560, 320] + bias
            const int m = 8192, k = 320, n = 2560;
            memory::desc a({m, k}, type, tag::ab), b({k, n}, type, tag::any), bias({1, n}, type, tag::ab), c({m, n}, type, tag::ab);
            matmul::primitive_desc pd(eng, a, b, bias, c);
            memory am = filled(a, eng), bm = filled(pd.weights_desc(), eng), biasm = filled(bias, eng), cm(c, eng);
            matmul op(pd);
            double t = timed([&] {
                op.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_BIAS, biasm}, {DNNL_ARG_DST, cm}});
                s.wait();
            }, reps);
            results.push_back({std::string("linear_") + name, "x [2,4096,320], w [2560,320] + bias", pd.impl_info_str(), t, 2.0 * m * k * n});
        }
        {   // conv2d x [2,320,64,64], w [320,320,3,3], pad 1, bias
            memory::dims src{2, 320, 64, 64}, wei{320, 320, 3, 3}, dst{2, 320, 64, 64};
            memory::desc sd(src, type, tag::any), wd(wei, type, tag::any), bd({320}, type, tag::a), dd(dst, type, tag::any);
            convolution_forward::primitive_desc pd(eng, prop_kind::forward_inference, algorithm::convolution_direct, sd, wd, bd, dd,
                                                   {1, 1}, {1, 1}, {1, 1});
            memory sm = filled(pd.src_desc(), eng), wm = filled(pd.weights_desc(), eng), bm = filled(bd, eng), dm(pd.dst_desc(), eng);
            convolution_forward op(pd);
            double t = timed([&] {
                op.execute(s, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, dm}});
                s.wait();
            }, reps);
            results.push_back({std::string("conv2d_") + name, "x [2,320,64,64], w [320,320,3,3], pad 1", pd.impl_info_str(), t,
                               2.0 * 2 * 320 * 64 * 64 * 320 * 9});
        }
    }
    std::printf("{\n  \"engine\": \"oneDNN %d.%d.%d\",\n  \"results\": {\n", dnnl_version()->major, dnnl_version()->minor,
                dnnl_version()->patch);
    for (size_t i = 0; i < results.size(); i++) {
        const Result &r = results[i];
        std::printf("    \"%s\": {\"seconds\": %.6f, \"gflops\": %.1f, \"flops\": %.0f, \"shape\": \"%s\", \"impl\": \"%s\"}%s\n",
                    r.key.c_str(), r.seconds, r.flops / r.seconds / 1e9, r.flops, r.shape.c_str(), r.impl.c_str(),
                    i + 1 < results.size() ? "," : "");
        std::fprintf(stderr, "%s: %.4f s  %.1f GFLOP/s  (%s)\n", r.key.c_str(), r.seconds, r.flops / r.seconds / 1e9, r.impl.c_str());
    }
    std::printf("  }\n}\n");
}
