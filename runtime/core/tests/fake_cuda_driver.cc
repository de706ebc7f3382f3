// A stand-in for libcuda.so.1 (loaded through NINCC_CUDA_DRIVER) so the cuda device's driver calls,
// error reporting and module checks run where there is no GPU: memory is host memory, a "fatbin" is
// text lines `name=value` whose names are the module's globals and (with a `kernel:` prefix) its
// functions, and FAKE_CUDA_NO_DEVICE=1 makes cuInit fail as on a machine without a GPU. A kernel whose
// value is empty faults when launched; `scale_add` and `add_bias` run the fixture kernels' arithmetic
// on host memory (4 floats per image), `nop` does nothing. Graphs are lists of kernel nodes run in order,
// and fake_cuda_count(name) says how often an entry point was called, so tests see which path ran.
// FAKE_CUDA_DEVICES=N makes it see N GPUs (default 1); fake_cuda_ordinal() is the one last opened, and
// fake_cuda_current_ordinal() the one whose context is current on the calling thread.
// Streams: by default every call runs when it is made (a synchronous GPU). fake_cuda_set_schedule(1 or 2)
// (or FAKE_CUDA_SCHEDULE=comm-first|compute-first) queues work per stream instead, as a GPU does, and
// runs it only when the host waits (cuStreamSynchronize): then the head of a stream runs as soon as
// its event waits allow, the newest stream first (1: a communication stream races ahead of the compute
// stream) or the oldest first (2: the compute stream races ahead), so a missing event shows up as a
// wrong result. fake_cuda_enqueue puts another library's work (the fake NCCL) on a stream, and
// fake_cuda_executed(i) lists what ran, in order, with its stream's number.
// Staged input (cuda_input_stage.cc): fake_cuda_issued(i) lists the stream calls as the host made them
// ("htod s1", "dtod s0", "launch s0 <behaviour>", "record s1 e3", "wait s0 e3", "sync s0", "eventsync e3"),
// a copy from page-locked memory (cuMemAllocHost) reads its source when it runs, not at the call (so a
// host write before the copy ran shows up), fake_cuda_fail_host_alloc(1) makes cuMemAllocHost fail, and
// fake_cuda_pinned_blocks() counts the page-locked allocations not yet freed.
// Timing (nincc tune on a GPU): FAKE_CUDA_MICROS="KEY=µs,…" gives each kernel a duration, KEY the hash a
// module line `hash:<kernel>=<hex>` gives the kernel's text (test/fake-nvcc.mjs writes them), else its name,
// else `*` (0 µs without any); a device clock advances by it when the launch runs, an event recorded on a
// stream takes the clock's time when it is reached, and cuEventElapsedTime is the difference (events made
// with CU_EVENT_DISABLE_TIMING refuse it). cuDeviceGetName says FAKE_CUDA_NAME (default "Fake GPU").
// Dynamic shared memory: as the driver, a launch or kernel node asking a function for more than 48 KiB fails with
// CUDA_ERROR_INVALID_VALUE unless cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES) raised its limit (to 227 KiB at most).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {
using CUresult = int;
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kNoDevice = 100, kNotFound = 500, kLaunchFailed = 719;
// A CUfunction: what launching it does, and for how long the device clock says it ran.
struct Function {
  std::string behaviour;
  std::string hash;  // of the kernel's text, from a `hash:` line
  double micros = 0;
  unsigned maxDynamicShared = 48 * 1024;  // raised by cuFuncSetAttribute; a launch asking more is refused
};

// FAKE_CUDA_MICROS's duration for a kernel: by its text's hash, else its name, else `*`, else 0.
double durationOf(const std::string& name, const std::string& hash) {
  const char* table = std::getenv("FAKE_CUDA_MICROS");
  std::map<std::string, double> byKey;
  for (const char* at = table ? table : ""; *at;) {
    const char* end = std::strchr(at, ',');
    const std::string entry(at, end ? size_t(end - at) : std::strlen(at));
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) byKey[entry.substr(0, eq)] = std::atof(entry.c_str() + eq + 1);
    at = end ? end + 1 : at + entry.size();
  }
  for (const std::string& key : {hash, name, std::string("*")})
    if (!key.empty() && byKey.count(key)) return byKey[key];
  return 0;
}
struct Module {
  std::map<std::string, std::string> globals;
  std::map<std::string, Function> kernels;  // by name
};
double deviceClock = 0;  // µs: the sum of the durations of the launches run so far
int contexts[16];  // the primary context of each fake GPU
thread_local int current = -1;  // the GPU whose context is current on this thread
std::map<std::string, int> calls;
int ordinal = -1;  // the device of the last primary context retained
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
  double micros = 0;
  std::vector<std::vector<char>> values;
  std::vector<void*> pointers;
  void set(const NodeParams* p) {
    behaviour = &static_cast<const Function*>(p->func)->behaviour;
    micros = static_cast<const Function*>(p->func)->micros;
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

// The queued model (schedule 1, 2). An event is reached once the work queued before its record has run.
struct Event {
  uint64_t recorded = 0, reached = 0;  // generations: records queued, records run
  double clock = 0;                    // deviceClock when the last record was reached
  bool timing = true;                  // made without CU_EVENT_DISABLE_TIMING
};
struct Op {
  std::function<CUresult()> run;
  std::string label;  // what fake_cuda_executed lists; empty: not listed
  Event* waits = nullptr;
  uint64_t generation = 0;  // runnable once waits->reached >= generation
};
struct Stream {
  int number;
  std::deque<Op> queue;
};
int schedule = [] {
  const char* s = std::getenv("FAKE_CUDA_SCHEDULE");
  return !s ? 0 : std::string(s) == "comm-first" ? 1 : std::string(s) == "compute-first" ? 2 : 0;
}();
std::vector<Stream*> streams;  // in creation order
int streamsMade = 0;
std::deque<Event> events;      // never freed: a destroyed event may still be waited on by queued work
CUresult sticky = kSuccess;    // the first failure of queued work, reported at the next synchronisation
std::vector<std::string> executed;
std::vector<std::string> issued;
std::map<const char*, size_t> pinned;  // page-locked allocations: start → bytes
bool failHostAlloc = false;

std::string streamName(void* stream) {
  return "s" + std::to_string(stream ? static_cast<const Stream*>(stream)->number : -1);
}
bool isPinned(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  auto it = pinned.upper_bound(c);
  if (it == pinned.begin()) return false;
  --it;
  return c >= it->first && c + n <= it->first + it->second;
}
// Every entry point that touches the queues holds it: a communication thread synchronises and copies
// while the executor's thread launches (recursive: a legacy-stream call drains the queues).
std::recursive_mutex bigLock;
using Hold = std::lock_guard<std::recursive_mutex>;

bool runnable(const Op& op) { return !op.waits || op.waits->reached >= op.generation; }

void runOp(Stream* s, Op op) {
  if (!op.label.empty()) executed.push_back("s" + std::to_string(s ? s->number : -1) + " " + op.label);
  CUresult r = op.run();
  if (r != kSuccess && sticky == kSuccess) sticky = r;
}

// Runs queued heads, by the schedule's preference, until `done`; false if stuck (a wait never met).
bool runUntil(const std::function<bool()>& done) {
  while (!done()) {
    Stream* pick = nullptr;
    for (size_t i = 0; i < streams.size() && !pick; ++i) {
      Stream* s = streams[schedule == 1 ? streams.size() - 1 - i : i];
      if (!s->queue.empty() && runnable(s->queue.front())) pick = s;
    }
    if (!pick) return false;
    Op op = std::move(pick->queue.front());
    pick->queue.pop_front();
    runOp(pick, std::move(op));
  }
  return true;
}
bool allIdle() {
  for (Stream* s : streams)
    if (!s->queue.empty()) return false;
  return true;
}

// Runs `op` now (synchronous model, or the legacy stream after everything queued) or queues it.
CUresult submit(void* stream, Op op) {
  Hold hold(bigLock);
  auto* s = static_cast<Stream*>(stream);
  if (schedule == 0 || !s) {
    if (schedule != 0 && !runUntil(allIdle)) return kInvalidValue;
    CUresult r = op.run();
    if (!op.label.empty()) executed.push_back("s" + std::to_string(s ? s->number : -1) + " " + op.label);
    return r;
  }
  s->queue.push_back(std::move(op));
  return kSuccess;
}
}  // namespace

#define FAKE extern "C" __attribute__((visibility("default"))) CUresult
#define COUNT() \
  Hold hold(bigLock); \
  ++calls[__func__]
using Ptr = unsigned long long;

extern "C" __attribute__((visibility("default"))) int fake_cuda_count(const char* name) { return calls[name]; }
extern "C" __attribute__((visibility("default"))) int fake_cuda_ordinal() { return ordinal; }
extern "C" __attribute__((visibility("default"))) void fake_cuda_set_schedule(int s) { schedule = s; }
// The GPU whose context is current on the calling thread, or -1 (what the CUDA runtime, and so NCCL, takes).
extern "C" __attribute__((visibility("default"))) int fake_cuda_current_ordinal() { return current; }
// The i-th thing run since the last clear ("s<stream> <label>"), or null past the end.
extern "C" __attribute__((visibility("default"))) const char* fake_cuda_executed(int i) {
  Hold hold(bigLock);
  return i >= 0 && size_t(i) < executed.size() ? executed[size_t(i)].c_str() : nullptr;
}
extern "C" __attribute__((visibility("default"))) void fake_cuda_clear_executed() {
  Hold hold(bigLock);
  executed.clear();
  issued.clear();
}
// The i-th stream call made since the last clear, or null past the end.
extern "C" __attribute__((visibility("default"))) const char* fake_cuda_issued(int i) {
  Hold hold(bigLock);
  return i >= 0 && size_t(i) < issued.size() ? issued[size_t(i)].c_str() : nullptr;
}
extern "C" __attribute__((visibility("default"))) void fake_cuda_fail_host_alloc(int fail) { failHostAlloc = fail != 0; }
// Page-locked allocations not yet freed (cuMemAllocHost without its cuMemFreeHost).
extern "C" __attribute__((visibility("default"))) int fake_cuda_pinned_blocks() {
  Hold hold(bigLock);
  return int(pinned.size());
}
// The number fake_cuda_issued gives an event.
long eventNumber(void* event) {
  for (size_t i = 0; i < events.size(); ++i)
    if (&events[i] == event) return long(i);
  return -1;
}
// Queues fn(context) on `stream` (runs it now when nothing is queued: the synchronous model).
extern "C" __attribute__((visibility("default"))) CUresult fake_cuda_enqueue(void* stream, CUresult (*fn)(void*), void* context,
                                                                             const char* label) {
  Op op;
  op.run = [fn, context] { return fn(context); };
  op.label = label;
  return submit(stream, std::move(op));
}

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
FAKE cuDeviceGetCount(int* n) {
  const char* devices = std::getenv("FAKE_CUDA_DEVICES");
  *n = devices ? std::atoi(devices) : 1;
  return kSuccess;
}
FAKE cuDeviceGet(int* d, int o) {
  int count = 0;
  cuDeviceGetCount(&count);
  *d = o;
  return o >= 0 && o < count ? kSuccess : kInvalidValue;
}
FAKE cuDeviceGetName(char* name, int length, int) {
  const char* chosen = std::getenv("FAKE_CUDA_NAME");
  std::snprintf(name, size_t(length), "%s", chosen ? chosen : "Fake GPU");
  return kSuccess;
}
FAKE cuDevicePrimaryCtxRetain(void** c, int d) {
  if (d < 0 || d >= 16) return kInvalidValue;
  ordinal = d;
  *c = &contexts[d];
  return kSuccess;
}
FAKE cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
FAKE cuCtxSetCurrent(void* c) {
  const long d = static_cast<int*>(c) - contexts;
  if (d < 0 || d >= 16) return kInvalidValue;
  current = int(d);
  return kSuccess;
}
FAKE cuStreamCreate(void** s, unsigned) {
  COUNT();
  streams.push_back(new Stream{streamsMade++, {}});
  *s = streams.back();
  return kSuccess;
}
FAKE cuStreamDestroy_v2(void* stream) {
  Hold hold(bigLock);
  auto* s = static_cast<Stream*>(stream);
  runUntil([s] { return s->queue.empty(); });
  for (size_t i = 0; i < streams.size(); ++i)
    if (streams[i] == s) streams.erase(streams.begin() + long(i));
  delete s;
  return kSuccess;
}
FAKE cuStreamSynchronize(void* stream) {
  Hold hold(bigLock);
  issued.push_back("sync " + streamName(stream));
  auto* s = static_cast<Stream*>(stream);
  if (!runUntil([s] { return s->queue.empty(); })) return kInvalidValue;  // a wait that can never be met
  return sticky;
}
FAKE cuEventCreate(void** e, unsigned flags) {
  COUNT();
  events.emplace_back();
  events.back().timing = (flags & 2) == 0;
  *e = &events.back();
  return kSuccess;
}
FAKE cuEventDestroy_v2(void*) { return kSuccess; }
FAKE cuEventSynchronize(void* event) {
  COUNT();
  auto* e = static_cast<Event*>(event);
  issued.push_back("eventsync e" + std::to_string(eventNumber(event)));
  const uint64_t generation = e->recorded;
  return runUntil([e, generation] { return e->reached >= generation; }) ? sticky : kInvalidValue;
}
FAKE cuEventElapsedTime(float* ms, void* start, void* end) {
  COUNT();
  auto *a = static_cast<Event*>(start), *b = static_cast<Event*>(end);
  // CUDA_ERROR_INVALID_HANDLE and CUDA_ERROR_NOT_READY on a GPU
  if (!a->timing || !b->timing || a->reached == 0 || b->reached == 0) return kInvalidValue;
  *ms = float((b->clock - a->clock) / 1000);
  return kSuccess;
}
FAKE cuMemAllocHost_v2(void** p, size_t bytes) {
  COUNT();
  *p = failHostAlloc ? nullptr : std::malloc(bytes ? bytes : 1);
  if (*p) pinned[static_cast<const char*>(*p)] = bytes;
  return *p ? kSuccess : kInvalidValue;
}
FAKE cuMemFreeHost(void* p) {
  Hold hold(bigLock);
  pinned.erase(static_cast<const char*>(p));
  std::free(p);
  return kSuccess;
}
FAKE cuEventRecord(void* event, void* stream) {
  COUNT();
  auto* e = static_cast<Event*>(event);
  issued.push_back("record " + streamName(stream) + " e" + std::to_string(eventNumber(event)));
  const uint64_t generation = ++e->recorded;
  Op op;
  op.run = [e, generation] {
    e->reached = generation;
    e->clock = deviceClock;
    return kSuccess;
  };
  return submit(stream, std::move(op));
}
FAKE cuStreamWaitEvent(void* stream, void* event, unsigned) {
  COUNT();
  Op op;
  op.waits = static_cast<Event*>(event);
  issued.push_back("wait " + streamName(stream) + " e" + std::to_string(eventNumber(event)));
  op.generation = op.waits->recorded;
  op.run = [] { return kSuccess; };
  return submit(stream, std::move(op));
}
FAKE cuModuleLoadData(void** m, const void* image) {
  auto* module = new Module;
  const char* text = static_cast<const char*>(image);
  for (const char* line = text; *line;) {
    const char* end = std::strchr(line, '\n');
    std::string l(line, end ? size_t(end - line) : std::strlen(line));
    size_t eq = l.find('=');
    if (eq == std::string::npos) { delete module; return kInvalidValue; }
    if (l.compare(0, 7, "kernel:") == 0) module->kernels[l.substr(7, eq - 7)].behaviour = l.substr(eq + 1);
    else if (l.compare(0, 5, "hash:") == 0) module->kernels[l.substr(5, eq - 5)].hash = l.substr(eq + 1);
    else module->globals[l.substr(0, eq)] = l.substr(eq + 1);
    line = end ? end + 1 : line + l.size();
  }
  for (auto& [name, function] : module->kernels) function.micros = durationOf(name, function.hash);
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
FAKE cuFuncSetAttribute(void* f, int attribute, int value) {
  COUNT();
  constexpr int kMaxDynamicSharedBytes = 8, kMostSharedBytes = 227 * 1024;
  if (attribute != kMaxDynamicSharedBytes || value < 0 || value > kMostSharedBytes) return kInvalidValue;
  static_cast<Function*>(f)->maxDynamicShared = unsigned(value);
  return kSuccess;
}
bool sharedAllowed(const void* f, unsigned shared) { return shared <= static_cast<const Function*>(f)->maxDynamicShared; }
FAKE cuModuleGetGlobal_v2(Ptr* p, size_t* bytes, void* m, const char* name) {
  auto& g = static_cast<Module*>(m)->globals;
  auto it = g.find(name);
  if (it == g.end()) return kNotFound;
  *p = reinterpret_cast<Ptr>(it->second.c_str());
  *bytes = it->second.size() + 1;
  return kSuccess;
}
// A kernel without a behaviour "faults": the device must name the kernel and its geometry.
FAKE cuLaunchKernel(void* f, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned shared, void* stream, void** params,
                    void**) {
  COUNT();
  if (!sharedAllowed(f, shared)) return kInvalidValue;
  // The parameter values are copied at the call, as the driver does.
  auto node = std::make_shared<Node>();
  NodeParams p{f, {}, {}, 0, params, nullptr, nullptr, nullptr};
  node->set(&p);
  Op op;
  op.run = [node] {
    deviceClock += node->micros;
    return run(*node->behaviour, node->pointers.data());
  };
  op.label = *node->behaviour;
  issued.push_back("launch " + streamName(stream) + " " + *node->behaviour);
  return submit(stream, std::move(op));
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
  if (!sharedAllowed(p->func, p->shared)) return kInvalidValue;
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
  if (!sharedAllowed(p->func, p->shared)) return kInvalidValue;
  static_cast<Node*>(node)->set(p);
  return kSuccess;
}
FAKE cuGraphLaunch(void* exec, void* stream) {
  COUNT();
  Op op;
  op.run = [exec] {
    for (Node* n : static_cast<Graph*>(exec)->nodes) {
      deviceClock += n->micros;
      if (CUresult r = run(*n->behaviour, n->pointers.data()); r != kSuccess) return r;
    }
    return kSuccess;
  };
  op.label = "graph";
  return submit(stream, std::move(op));
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
FAKE cuMemsetD8Async(Ptr p, unsigned char v, size_t n, void* stream) {
  Op op;
  op.run = [p, v, n] { std::memset(reinterpret_cast<void*>(p), v, n); return kSuccess; };
  return submit(stream, std::move(op));
}
// From pageable host memory the source is staged at the call; page-locked memory is read when the copy runs.
FAKE cuMemcpyHtoDAsync_v2(Ptr d, const void* s, size_t n, void* stream) {
  Hold hold(bigLock);
  issued.push_back("htod " + streamName(stream));
  Op op;
  if (isPinned(s, n)) {
    op.run = [d, s, n] { std::memcpy(reinterpret_cast<void*>(d), s, n); return kSuccess; };
  } else {
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(s), static_cast<const char*>(s) + n);
    op.run = [d, staged] { std::memcpy(reinterpret_cast<void*>(d), staged->data(), staged->size()); return kSuccess; };
  }
  char label[64];
  std::snprintf(label, sizeof label, "htod %p %zu", reinterpret_cast<void*>(d), n);
  op.label = label;
  return submit(stream, std::move(op));
}
FAKE cuMemcpyDtoDAsync_v2(Ptr d, Ptr s, size_t n, void* stream) {
  Hold hold(bigLock);
  issued.push_back("dtod " + streamName(stream));
  Op op;
  op.run = [d, s, n] { std::memcpy(reinterpret_cast<void*>(d), reinterpret_cast<const void*>(s), n); return kSuccess; };
  char label[64];
  std::snprintf(label, sizeof label, "dtod %p %zu", reinterpret_cast<void*>(d), n);
  op.label = label;
  return submit(stream, std::move(op));
}
FAKE cuMemcpyDtoHAsync_v2(void* d, Ptr s, size_t n, void* stream) {
  Op op;
  op.run = [d, s, n] { std::memcpy(d, reinterpret_cast<const void*>(s), n); return kSuccess; };
  char label[64];
  std::snprintf(label, sizeof label, "dtoh %p %zu", reinterpret_cast<void*>(s), n);
  op.label = label;
  return submit(stream, std::move(op));
}
