// The in-memory form of plan.json (docs/artifact.md): spaces, tensors, programs of kernel steps.
// loadPlan reads and validates it; everything downstream may trust what it returns.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace nincc {

// 2: a program's splitLocal (docs/artifact.md). A runtime from before a field that moves buffers would read such a
// plan without error and compute on overlapping memory, so every such field raises the version on both sides.
constexpr int kPlanFormatVersion = 2;

// The arena's spaces. Act is per image: the runtime holds act*maxBatch elements of it.
enum class Space { Param, Grad, Momentum, State, Fixed, Act };
constexpr int kSpaceCount = 6;
const char* spaceName(Space space);
bool spaceFromName(const std::string& name, Space* out);
// "param, grad, momentum, state, fixed, act" for error messages.
std::string spaceNameList();

// U8: bytes (a model's uint8 images, plan.json imageInput); its size still counts 4-byte elements, ceil(bytes / 4).
// BF16: 2-byte elements, two a 4-byte element of its size (a gradient stored rounded: compiler/lower/ops.ts Dtype).
enum class DType { F32, I32, U8, BF16 };
const char* dtypeName(DType dtype);

// A buffer in one space, in 4-byte elements. For Space::Act offset and size are per image.
struct BufferRef {
  Space space = Space::Fixed;
  int64_t offset = 0;
  int64_t size = 0;
  DType dtype = DType::F32;
};

struct TensorInit {
  std::string kind;  // uniform | uniform01 | zeros | ones
  double bound = 0;  // for uniform: U(-bound, bound)
};

// A learnable parameter (param space; its gradient and momentum share the offset) or a state entry.
struct TensorEntry {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;
  int64_t size = 0;
  TensorInit init;
  int64_t torchIndex = -1;  // -1 when the plan names no Torch module
  std::string torchField;
  int64_t layer = -1;
};

// A step's launch rule on the cuda/emu devices (plan.json `launch`, docs/artifact.md): grid
// dimension `batchAxis` (0..2; -1 none) is multiplied by the call's batch size N.
struct LaunchRule {
  uint32_t grid[3] = {1, 1, 1};
  int batchAxis = -1;
  uint32_t block[3] = {1, 1, 1};
  uint32_t sharedBytes = 0;
  bool seed = false;  // the kernel's last parameter is the call's 64-bit seed (dropout masks)
};

struct Step {
  std::string kernel;  // exported symbol of the device library
  int64_t layer = -1;
  std::string source;  // "file:line:col" of the spec layer, for error messages
  std::vector<BufferRef> args;
  std::vector<std::string> scalars;
  bool hasLaunch = false;  // only steps the cuda/emu kernels cover have one
  LaunchRule launch;
};

using NamedRefs = std::vector<std::pair<std::string, BufferRef>>;

struct Program {
  std::string name;
  NamedRefs inputs;
  NamedRefs outputs;
  std::vector<Step> steps;
  // The devices whose kernels implement this program; empty: every device of the artifact. A cuda
  // build's fused training program runs on cuda and emu, not on its (inference-only) cpu library.
  std::vector<std::string> devices;
  // Every step computes each image from that image alone, in batch-major buffers (plan.json
  // `splitBatch`): a device with threads of its own may run the program on slices of the batch at once.
  bool splitBatch = false;
  // Where a split call's slices keep their own act buffers (plan.json `splitLocal`; -1: none): an act buffer at
  // per-image offset o >= splitLocalFrom is, for the slice of `count` images from image `first` of a call of n,
  // at act_base + splitLocalFrom*n + first*splitLocalStride + (o - splitLocalFrom)*count elements. The planner
  // lets such buffers share memory by liveness within a slice (a slice's layers run in order on one thread),
  // so a layer writes where an earlier layer of its slice just worked, in cache; buffers below splitLocalFrom
  // (the program's inputs and outputs, which the caller reads and writes batch-major) stay batch-major.
  int64_t splitLocalFrom = -1;
  int64_t splitLocalStride = 0;
  // Runs once after the weights change, not call after call (plan.json `oneShot`: prepare_infer): its
  // steps are launched one by one, so no device keeps anything warm for it (the cpu pool's workers
  // held spinning through its serial folds, a CUDA graph recorded for one replay).
  bool oneShot = false;
  bool runsOn(const std::string& device) const;
};

struct Plan {
  std::string file;  // the plan.json path as given, for error messages
  std::string dir;   // the artifact directory; libraries are relative to it
  std::string ninccVersion;
  std::string model;
  std::string sourceHash;
  std::vector<int64_t> input;   // C, H, W of one image
  std::vector<int64_t> output;  // per-image output shape of infer
  int64_t classes = 0;
  int64_t maxBatch = 1;
  std::map<std::string, std::string> libraries;  // device name -> file relative to dir
  std::map<std::string, std::string> libraryHashes;  // device name -> the library's SHA-256 (hex)
  int64_t spaceSize[kSpaceCount] = {};         // elements; act per image
  std::vector<TensorEntry> params;
  std::vector<TensorEntry> state;
  std::vector<Program> programs;
  // Fixed buffers of last-block tickets (plan.json `tickets`): a kernel cut short can leave one nonzero,
  // so the executor zeroes them before the run after a failed one.
  std::vector<BufferRef> tickets;

  int64_t sizeOf(Space space) const { return spaceSize[static_cast<int>(space)]; }
  const Program* findProgram(const std::string& name) const;
  std::string programNameList() const;
};

// Reads DIR/plan.json. Throws nincc::Error naming the file and the JSON path of a bad field.
Plan loadPlan(const std::string& dir);

// The same from text already in memory (tests); `file` is used only in messages.
Plan parsePlan(const std::string& text, const std::string& file, const std::string& dir);

// DIR joined with a relative name, without doubling the slash.
std::string joinPath(const std::string& dir, const std::string& name);

}  // namespace nincc
