// Model: loading an artifact onto a device, and the bounds-checked copies in and out of its arena.
#include "model.h"

#include "error.h"
#include "integrity.h"

namespace nincc {

namespace {

const BufferRef& findRef(const NamedRefs& refs, const Program& program, const std::string& name,
                         const char* kind) {
  std::string names;
  for (const auto& entry : refs) {
    if (entry.first == name) return entry.second;
    names += (names.empty() ? "" : ", ") + entry.first;
  }
  throw Error("program \"" + program.name + "\" has no " + kind + " \"" + name + "\" (its " + kind +
              "s: " + (names.empty() ? "none" : names) + ")");
}

}  // namespace

Model::Model(Plan plan, std::unique_ptr<Device> device)
    : plan_(std::move(plan)), device_(std::move(device)) {}

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& dir, const std::string& deviceName) {
  std::string artifactDir = dir.empty() ? "." : dir;
  std::unique_ptr<Device> device = createDevice(deviceName);
  Plan plan = loadPlan(artifactDir);
  auto library = plan.libraries.find(device->name());
  if (library == plan.libraries.end()) {
    std::string has;
    for (const auto& entry : plan.libraries) has += (has.empty() ? "" : ", ") + entry.first;
    throw Error(plan.file + ": libraries has no entry for device \"" + device->name() +
                "\" (it has: " + (has.empty() ? "none" : has) + "); build with --target " +
                device->name());
  }
  std::string libraryPath = joinPath(artifactDir, library->second);
  // Before dlopen: a damaged library could crash the process while it is being loaded.
  checkLibraryHash(libraryPath, device->name(), plan.libraryHashes.at(device->name()), plan.file);
  device->loadLibrary(libraryPath, plan.sourceHash);

  std::unique_ptr<Model> model(new Model(std::move(plan), std::move(device)));
  // Built after the move so that both hold references to the Model's own plan.
  model->arena_ = std::make_unique<Arena>(*model->device_, model->plan_);
  model->executor_ = std::make_unique<Executor>(model->plan_, *model->device_, *model->arena_);
  return model;
}

void Model::run(const std::string& program, int64_t n, const ScalarValues& scalars, uint64_t seed,
                const StepDone& stepDone) {
  {
    std::lock_guard<std::mutex> lock(stagedMutex_);
    if (!staged_.empty() && staged_.front().first == program) {
      if (staged_.front().second != n)
        throw Error("run(\"" + program + "\", " + std::to_string(n) + "): the batch staged for it holds " +
                    std::to_string(staged_.front().second) + " image(s)");
      device_->takeStagedInputs();
      staged_.pop_front();
    }
  }
  executor_->run(program, n, scalars, seed, stepDone);
}

// Two at most: the cuda device's two slots, one read by the running step, one being filled.
constexpr size_t kMaxStagedBatches = 2;

void Model::stageInputs(const std::string& program, int64_t n, const std::vector<NamedInput>& inputs) {
  std::vector<StagedInput> parts;
  for (const NamedInput& in : inputs) {
    const BufferRef& ref = inputRef(program, in.name);
    checkBytes("input", program, in.name, ref, n, in.bytes);
    parts.push_back({arena_->pointer(ref, n), in.data, in.bytes});
  }
  std::lock_guard<std::mutex> lock(stagedMutex_);
  if (staged_.size() >= kMaxStagedBatches)
    throw Error("stageInputs(\"" + program + "\"): " + std::to_string(kMaxStagedBatches) +
                " batches are staged and not yet run; run one first");
  device_->stageInputs(parts);
  staged_.emplace_back(program, n);
}

size_t Model::discardStaged() {
  std::lock_guard<std::mutex> lock(stagedMutex_);
  const size_t dropped = staged_.size();
  staged_.clear();  // first: should the device's wait fail, no later run expects a dropped batch
  if (dropped > 0) device_->discardStagedInputs();
  return dropped;
}

size_t Model::stagedBatches() const {
  std::lock_guard<std::mutex> lock(stagedMutex_);
  return staged_.size();
}

const BufferRef& Model::inputRef(const std::string& program, const std::string& name) const {
  const Program& p = executor_->program(program);
  return findRef(p.inputs, p, name, "input");
}

const BufferRef& Model::outputRef(const std::string& program, const std::string& name) const {
  const Program& p = executor_->program(program);
  return findRef(p.outputs, p, name, "output");
}

int64_t Model::elementsFor(const BufferRef& ref, int64_t n) const {
  executor_->checkBatch(n);
  return Arena::elements(ref, n);
}

void Model::checkBytes(const char* direction, const std::string& program, const std::string& name,
                       const BufferRef& ref, int64_t n, size_t bytes) const {
  size_t expected = static_cast<size_t>(elementsFor(ref, n)) * 4;
  // A u8 buffer holds up to 4·size bytes per image (its size counts 4-byte elements): any whole image
  // size that rounds up to it is the image's (runtime/model.ts checks the exact C·H·W).
  if (ref.dtype == DType::U8 && ref.space == Space::Act && n > 0 && bytes % static_cast<size_t>(n) == 0 &&
      bytes / static_cast<size_t>(n) + 4 > static_cast<size_t>(ref.size) * 4 && bytes <= expected)
    return;
  if (bytes != expected)
    throw Error(std::string(direction) + " \"" + name + "\" of program \"" + program + "\" for " +
                std::to_string(n) + " image(s) is " + std::to_string(expected) + " bytes (" +
                std::to_string(expected / 4) + " " + dtypeName(ref.dtype) + "), not " +
                std::to_string(bytes));
}

void Model::setInput(const std::string& program, const std::string& name, int64_t n,
                     const void* data, size_t bytes) {
  const BufferRef& ref = inputRef(program, name);
  checkBytes("input", program, name, ref, n, bytes);
  device_->copyToDevice(arena_->pointer(ref, n), data, bytes);
}

void Model::getOutput(const std::string& program, const std::string& name, int64_t n, void* data,
                      size_t bytes) {
  const BufferRef& ref = outputRef(program, name);
  checkBytes("output", program, name, ref, n, bytes);
  device_->copyToHost(data, arena_->pointer(ref, n), bytes);
}

void* Model::spaceRange(const std::string& spaceText, int64_t offset, int64_t count) const {
  Space space;
  if (!spaceFromName(spaceText, &space))
    throw Error("unknown space \"" + spaceText + "\" (expected one of " + spaceNameList() + ")");
  int64_t capacity = arena_->capacity(space);
  if (offset < 0 || count < 0 || offset > capacity || count > capacity - offset)
    throw Error("range [" + std::to_string(offset) + ", " + std::to_string(offset + count) +
                ") lies outside the " + spaceText + " space of " + std::to_string(capacity) +
                " elements");
  return static_cast<char*>(arena_->base(space)) + offset * 4;
}

void Model::readSpace(const std::string& space, int64_t offset, int64_t count, float* out) {
  void* source = spaceRange(space, offset, count);
  device_->copyToHost(out, source, static_cast<size_t>(count) * 4);
}

void Model::writeSpace(const std::string& space, int64_t offset, int64_t count, const float* in) {
  void* target = spaceRange(space, offset, count);
  device_->copyToDevice(target, in, static_cast<size_t>(count) * 4);
}

}  // namespace nincc
