// A stand-in for libcuda.so.1 (loaded through NINCC_CUDA_DRIVER) so the cuda device's driver calls,
// error reporting and module checks run where there is no GPU: memory is host memory, a "fatbin" is
// text lines `name=value` whose names are the module's globals and (with a `kernel:` prefix) its
// functions, and FAKE_CUDA_NO_DEVICE=1 makes cuInit fail as on a machine without a GPU. A kernel whose
// value is empty faults when launched; `scale_add` and `add_bias` run the fixture kernels' arithmetic
// on host memory (4 floats per image), `nop` does nothing. Graphs are lists of kernel nodes run in order,
// and fake_cuda_count(name) says how often an entry point was called, so tests see which path ran.
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {
using CUresult = int;
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kNoDevice = 100, kNotFound = 500, kLaunchFailed = 719;
struct Module {
  std::map<std::string, std::string> globals;
  std::map<std::string, std::string> kernels;  // name → behaviour
};
int token;  // the addresses of the fake context and stream
std::map<std::string, int> calls;
constexpr int kPerImage = 4;  // runtime/core/tests/fixture_kernels.cc

// The fixture's kernel arithmetic by behaviour name; `params` as cuLaunchKernel's kernelParams.
CUresult run(const std::string& behaviour, void** params) {
  if (behaviour == "nop") return kSuccess;
  if (behaviour == "scale_add") {  // x, y, n, float scale, float shift
    const float* x = *static_cast<float**>(params[0]);
    float* y = *static_cast<float**>(params[1]);
    const int n = *static_cast<int*>(params[2]);
    const float scale = *static_cast<float*>(params[3]), shift = *static_cast<float*>(params[4]);
    for (int i = 0; i < n * kPerImage; ++i) y[i] = scale * x[i] + shift;
    return kSuccess;
  }
  if (behaviour == "add_bias") {  // y, bias, n
    float* y = *static_cast<float**>(params[0]);
    const float* bias = *static_cast<float**>(params[1]);
    const int n = *static_cast<int*>(params[2]);
    for (int i = 0; i < n * kPerImage; ++i) y[i] += bias[i % kPerImage];
    return kSuccess;
  }
  return kLaunchFailed;
}

// CUDA_KERNEL_NODE_PARAMS_v2's layout (cuda.h).
struct NodeParams {
  void* func;
  unsigned grid[3], block[3], shared;
  void** kernelParams;
  void** extra;
  void* kern;
  void* ctx;
};
// The bytes of each parameter a behaviour reads: x, y, n, scale, shift; y, bias, n; nothing for nop.
std::vector<size_t> paramSizes(const std::string& b) {
  if (b == "scale_add") return {8, 8, 4, 4, 4};
  if (b == "add_bias") return {8, 8, 4};
  return {};
}
// A node keeps copies of its parameter values, as the driver does.
struct Node {
  const std::string* behaviour;
  std::vector<std::vector<char>> values;
  std::vector<void*> pointers;
  void set(const NodeParams* p) {
    behaviour = static_cast<const std::string*>(p->func);
    values.clear();
    pointers.clear();
    const std::vector<size_t> sizes = paramSizes(*behaviour);
    for (size_t i = 0; i < sizes.size(); ++i) {
      const char* v = static_cast<const char*>(p->kernelParams[i]);
      values.emplace_back(v, v + sizes[i]);
    }
    for (auto& v : values) pointers.push_back(v.data());
  }
};
struct Graph {
  std::vector<Node*> nodes;
};
}  // namespace

#define FAKE extern "C" __attribute__((visibility("default"))) CUresult
#define COUNT() ++calls[__func__]
using Ptr = unsigned long long;

extern "C" __attribute__((visibility("default"))) int fake_cuda_count(const char* name) { return calls[name]; }

FAKE cuGetErrorName(CUresult r, const char** s) {
  *s = r == kNoDevice ? "CUDA_ERROR_NO_DEVICE" : r == kNotFound ? "CUDA_ERROR_NOT_FOUND"
     : r == kLaunchFailed ? "CUDA_ERROR_LAUNCH_FAILED" : "CUDA_ERROR_INVALID_VALUE";
  return kSuccess;
}
FAKE cuGetErrorString(CUresult r, const char** s) {
  *s = r == kNoDevice ? "no CUDA-capable device is detected" : r == kNotFound ? "named symbol not found"
     : r == kLaunchFailed ? "unspecified launch failure" : "invalid argument";
  return kSuccess;
}
FAKE cuInit(unsigned) {
  const char* none = std::getenv("FAKE_CUDA_NO_DEVICE");
  return none && none[0] == '1' ? kNoDevice : kSuccess;
}
FAKE cuDeviceGetCount(int* n) { *n = 1; return kSuccess; }
FAKE cuDeviceGet(int* d, int ordinal) { *d = ordinal; return ordinal == 0 ? kSuccess : kInvalidValue; }
FAKE cuDevicePrimaryCtxRetain(void** c, int) { *c = &token; return kSuccess; }
FAKE cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
FAKE cuCtxSetCurrent(void* c) { return c == &token ? kSuccess : kInvalidValue; }
FAKE cuStreamCreate(void** s, unsigned) { *s = &token; return kSuccess; }
FAKE cuStreamDestroy_v2(void*) { return kSuccess; }
FAKE cuStreamSynchronize(void*) { return kSuccess; }
FAKE cuModuleLoadData(void** m, const void* image) {
  auto* module = new Module;
  const char* text = static_cast<const char*>(image);
  for (const char* line = text; *line;) {
    const char* end = std::strchr(line, '\n');
    std::string l(line, end ? size_t(end - line) : std::strlen(line));
    size_t eq = l.find('=');
    if (eq == std::string::npos) { delete module; return kInvalidValue; }
    if (l.compare(0, 7, "kernel:") == 0) module->kernels[l.substr(7, eq - 7)] = l.substr(eq + 1);
    else module->globals[l.substr(0, eq)] = l.substr(eq + 1);
    line = end ? end + 1 : line + l.size();
  }
  *m = module;
  return kSuccess;
}
FAKE cuModuleUnload(void* m) { delete static_cast<Module*>(m); return kSuccess; }
FAKE cuModuleGetFunction(void** f, void* m, const char* name) {
  auto& k = static_cast<Module*>(m)->kernels;
  auto it = k.find(name);
  if (it == k.end()) return kNotFound;
  *f = &it->second;
  return kSuccess;
}
FAKE cuModuleGetGlobal_v2(Ptr* p, size_t* bytes, void* m, const char* name) {
  auto& g = static_cast<Module*>(m)->globals;
  auto it = g.find(name);
  if (it == g.end()) return kNotFound;
  *p = reinterpret_cast<Ptr>(it->second.c_str());
  *bytes = it->second.size() + 1;
  return kSuccess;
}
// A kernel without a behaviour "faults": the device must name the kernel and its geometry.
FAKE cuLaunchKernel(void* f, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void** params, void**) {
  COUNT();
  return run(*static_cast<const std::string*>(f), params);
}
FAKE cuGraphCreate(void** g, unsigned) {
  COUNT();
  *g = new Graph;
  return kSuccess;
}
FAKE cuGraphAddKernelNode_v2(void** node, void* g, void* const* after, size_t count, const NodeParams* p) {
  COUNT();
  auto* graph = static_cast<Graph*>(g);
  // The device chains its nodes: each after the one before, the first after none.
  if (count != (graph->nodes.empty() ? 0u : 1u) || (count && after[0] != graph->nodes.back())) return kInvalidValue;
  auto* n = new Node;
  n->set(p);
  graph->nodes.push_back(n);
  *node = n;
  return kSuccess;
}
// The executable shares the graph's nodes here: SetParams on it changes what later launches run.
FAKE cuGraphInstantiateWithFlags(void** exec, void* g, unsigned long long) {
  COUNT();
  *exec = g;
  return kSuccess;
}
FAKE cuGraphExecKernelNodeSetParams_v2(void*, void* node, const NodeParams* p) {
  COUNT();
  static_cast<Node*>(node)->set(p);
  return kSuccess;
}
FAKE cuGraphLaunch(void* exec, void*) {
  COUNT();
  for (Node* n : static_cast<Graph*>(exec)->nodes)
    if (CUresult r = run(*n->behaviour, n->pointers.data()); r != kSuccess) return r;
  return kSuccess;
}
FAKE cuGraphExecDestroy(void*) { COUNT(); return kSuccess; }
FAKE cuGraphDestroy(void* g) {
  COUNT();
  for (Node* n : static_cast<Graph*>(g)->nodes) delete n;
  delete static_cast<Graph*>(g);
  return kSuccess;
}
FAKE cuMemAlloc_v2(Ptr* p, size_t bytes) {
  void* m = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  *p = reinterpret_cast<Ptr>(m);
  return m ? kSuccess : kInvalidValue;
}
FAKE cuMemFree_v2(Ptr p) { std::free(reinterpret_cast<void*>(p)); return kSuccess; }
FAKE cuMemsetD8Async(Ptr p, unsigned char v, size_t n, void*) { std::memset(reinterpret_cast<void*>(p), v, n); return kSuccess; }
FAKE cuMemcpyHtoDAsync_v2(Ptr d, const void* s, size_t n, void*) { std::memcpy(reinterpret_cast<void*>(d), s, n); return kSuccess; }
FAKE cuMemcpyDtoHAsync_v2(void* d, Ptr s, size_t n, void*) { std::memcpy(d, reinterpret_cast<const void*>(s), n); return kSuccess; }
