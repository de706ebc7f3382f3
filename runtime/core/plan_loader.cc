// loadPlan: reads DIR/plan.json, checks its format and version first (so an artifact from another
// nincc fails with a clear "rebuild" message), then validates every field the runtime relies on.
#include <fstream>
#include <set>
#include <sstream>

#include "error.h"
#include "integrity.h"
#include "json.h"
#include "json_field.h"
#include "plan.h"

namespace nincc {

namespace {

constexpr const char* kPlanFormat = "nincc-plan";
// Element counts above this are certainly a broken plan (2^40 elements is 4 TiB).
constexpr int64_t kMaxElements = int64_t(1) << 40;
constexpr int64_t kMaxBatchLimit = 1 << 20;

// Every object the loader reads lists the fields it knows, and refuses any other: a field this runtime
// would skip may be one a newer compiler relies on (docs/artifact.md: such a field raises the version,
// and this check catches one that did not). Fields only the TypeScript runtime reads (runtime/model.ts
// PlanExtras) or only tools read (macsPerImage, precision, train) are known here too.
const std::string kUnknownField = "this runtime (plan format version " + std::to_string(kPlanFormatVersion) +
                                  ") does not read it; rebuild whichever is older, the artifact with this nincc "
                                  "or the runtime (npm run build:native)";

bool isCIdentifier(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

std::vector<int64_t> readShape(const JsonField& f) {
  std::vector<int64_t> shape;
  size_t rank = f.arraySize();
  for (size_t i = 0; i < rank; ++i) shape.push_back(f.item(i).integer(1, kMaxElements));
  return shape;
}

void readSpaces(const JsonField& f, Plan& plan) {
  for (int i = 0; i < kSpaceCount; ++i) {
    Space space = static_cast<Space>(i);
    plan.spaceSize[i] = f.at(spaceName(space)).integer(0, kMaxElements);
  }
  f.refuseUnknown({"param", "grad", "momentum", "state", "fixed", "act"}, kUnknownField);
  if (plan.sizeOf(Space::Act) * plan.maxBatch > kMaxElements)
    f.at("act").fail("act * maxBatch = " + std::to_string(plan.sizeOf(Space::Act) * plan.maxBatch) +
                     " elements is more than this runtime allows");
}

BufferRef readRef(const JsonField& f, const Plan& plan) {
  BufferRef ref;
  const std::string& space = f.at("space").string();
  if (!spaceFromName(space, &ref.space))
    f.at("space").fail("unknown space \"" + space + "\" (expected one of " + spaceNameList() + ")");
  ref.offset = f.at("offset").integer(0, kMaxElements);
  ref.size = f.at("size").integer(0, kMaxElements);
  if (f.has("dtype")) {
    const std::string& dtype = f.at("dtype").string();
    if (dtype == "f32") ref.dtype = DType::F32;
    else if (dtype == "i32") ref.dtype = DType::I32;
    else if (dtype == "u8") ref.dtype = DType::U8;
    else if (dtype == "bf16") ref.dtype = DType::BF16;
    else f.at("dtype").fail("unknown dtype \"" + dtype + "\" (expected f32, i32, u8 or bf16)");
  }
  f.refuseUnknown({"space", "offset", "size", "dtype"}, kUnknownField);
  int64_t limit = plan.sizeOf(ref.space);
  if (ref.offset + ref.size > limit)
    f.fail("buffer [" + std::to_string(ref.offset) + ", " + std::to_string(ref.offset + ref.size) +
           ") lies outside the " + spaceName(ref.space) + " space of " + std::to_string(limit) +
           " elements" + (ref.space == Space::Act ? " per image" : ""));
  return ref;
}

NamedRefs readNamedRefs(const JsonField& f, const Plan& plan) {
  NamedRefs refs;
  size_t count = f.objectSize();
  for (size_t i = 0; i < count; ++i) refs.emplace_back(f.key(i), readRef(f.member(i), plan));
  return refs;
}

TensorEntry readTensor(const JsonField& f, Space space, const Plan& plan) {
  TensorEntry t;
  t.name = f.at("name").nonEmptyString();
  t.shape = readShape(f.at("shape"));
  t.offset = f.at("offset").integer(0, kMaxElements);
  t.size = f.at("size").integer(0, kMaxElements);
  int64_t product = 1;
  for (int64_t d : t.shape) {
    product *= d;
    if (product > kMaxElements) f.at("shape").fail("has too many elements");
  }
  if (product != t.size)
    f.at("size").fail(std::to_string(t.size) + " does not match the shape's " +
                      std::to_string(product) + " elements");
  if (t.offset + t.size > plan.sizeOf(space))
    f.fail("tensor [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.size) +
           ") lies outside the " + spaceName(space) + " space of " +
           std::to_string(plan.sizeOf(space)) + " elements");

  JsonField init = f.at("init");
  t.init.kind = init.at("kind").string();
  if (t.init.kind == "uniform") {
    t.init.bound = init.at("bound").number();
    if (!(t.init.bound >= 0)) init.at("bound").fail("must be a non-negative number");
  } else if (t.init.kind != "uniform01" && t.init.kind != "zeros" && t.init.kind != "ones") {
    init.at("kind").fail("unknown init kind \"" + t.init.kind +
                         "\" (expected uniform, uniform01, zeros or ones)");
  }
  init.refuseUnknown({"kind", "bound"}, kUnknownField);
  if (f.has("torch")) {
    JsonField torch = f.at("torch");
    t.torchIndex = torch.at("index").integer(0, kMaxElements);
    t.torchField = torch.at("field").nonEmptyString();
    torch.refuseUnknown({"index", "field"}, kUnknownField);
  }
  if (f.has("layer")) t.layer = f.at("layer").integer(0, kMaxElements);
  f.refuseUnknown({"name", "shape", "offset", "size", "init", "torch", "layer"}, kUnknownField);
  return t;
}

std::vector<TensorEntry> readTensors(const JsonField& f, Space space, const Plan& plan,
                                     std::set<std::string>& seenNames) {
  std::vector<TensorEntry> tensors;
  size_t count = f.arraySize();
  for (size_t i = 0; i < count; ++i) {
    tensors.push_back(readTensor(f.item(i), space, plan));
    if (!seenNames.insert(tensors.back().name).second)
      f.item(i).at("name").fail("duplicate tensor name \"" + tensors.back().name + "\"");
  }
  return tensors;
}

Step readStep(const JsonField& f, const Plan& plan) {
  Step step;
  step.kernel = f.at("kernel").string();
  if (!isCIdentifier(step.kernel))
    f.at("kernel").fail("\"" + step.kernel + "\" is not a valid C symbol name");
  step.layer = f.at("layer").integer(-1, kMaxElements);
  step.source = f.at("source").string();
  JsonField args = f.at("args");
  size_t argCount = args.arraySize();
  for (size_t i = 0; i < argCount; ++i) step.args.push_back(readRef(args.item(i), plan));
  JsonField scalars = f.at("scalars");
  size_t scalarCount = scalars.arraySize();
  for (size_t i = 0; i < scalarCount; ++i) {
    step.scalars.push_back(scalars.item(i).nonEmptyString());
  }
  if (f.has("launch")) {
    JsonField launch = f.at("launch");
    JsonField grid = launch.at("grid"), block = launch.at("block");
    if (grid.arraySize() != 3) grid.fail("must have 3 dimensions");
    if (block.arraySize() != 3) block.fail("must have 3 dimensions");
    for (size_t d = 0; d < 3; ++d) {
      step.launch.grid[d] = static_cast<uint32_t>(grid.item(d).integer(1, 2147483647));
      step.launch.block[d] = static_cast<uint32_t>(block.item(d).integer(1, 1024));
    }
    if (launch.has("batchAxis")) step.launch.batchAxis = static_cast<int>(launch.at("batchAxis").integer(0, 2));
    step.launch.sharedBytes = static_cast<uint32_t>(launch.at("shared").integer(0, 1 << 30));
    if (launch.has("seed")) step.launch.seed = launch.at("seed").boolean();
    launch.refuseUnknown({"grid", "batchAxis", "block", "shared", "seed"}, kUnknownField);
    step.hasLaunch = true;
  }
  f.refuseUnknown({"kernel", "layer", "source", "args", "scalars", "launch"}, kUnknownField);
  return step;
}

Program readProgram(const std::string& name, const JsonField& f, const Plan& plan) {
  Program program;
  program.name = name;
  program.inputs = readNamedRefs(f.at("inputs"), plan);
  program.outputs = readNamedRefs(f.at("outputs"), plan);
  JsonField steps = f.at("steps");
  size_t count = steps.arraySize();
  for (size_t i = 0; i < count; ++i) program.steps.push_back(readStep(steps.item(i), plan));
  if (f.has("devices")) {
    JsonField devices = f.at("devices");
    for (size_t i = 0; i < devices.arraySize(); ++i) program.devices.push_back(devices.item(i).string());
  }
  if (f.has("splitBatch")) program.splitBatch = f.at("splitBatch").boolean();
  if (f.has("splitLocal")) {
    JsonField local = f.at("splitLocal");
    program.splitLocalFrom = local.at("from").integer(0, plan.sizeOf(Space::Act));
    program.splitLocalStride = local.at("stride").integer(0, plan.sizeOf(Space::Act) - program.splitLocalFrom);
    local.refuseUnknown({"from", "stride"}, kUnknownField);
  }
  if (f.has("oneShot")) program.oneShot = f.at("oneShot").boolean();
  // inlineMaxBatch: read by runtime/model.ts (the cpu device's calls run on the JS thread up to it).
  f.refuseUnknown({"inputs", "outputs", "steps", "devices", "inlineMaxBatch", "splitBatch", "splitLocal", "oneShot"},
                  kUnknownField);
  return program;
}

}  // namespace

Plan parsePlan(const std::string& text, const std::string& file, const std::string& dir) {
  Json doc = parseJson(text, file);
  JsonField root(doc, "", file);
  if (!doc.isObject()) root.fail(std::string("expected an object, found ") + kindName(doc.kind()));
  const Json* format = doc.find("format");
  if (!format || !format->isString() || format->asString() != kPlanFormat)
    throw Error(file + ": not a nincc plan (\"format\" must be \"" + kPlanFormat + "\")");
  double version = root.at("version").number();
  if (version != kPlanFormatVersion)
    throw Error(file + ": plan format version " + formatNumber(version) +
                " is not supported by this runtime (expects " + std::to_string(kPlanFormatVersion) +
                "); rebuild whichever is older, the artifact with this nincc or the runtime (npm run build:native)");

  // Then the plan's own hash: after it, every field below is what the build wrote.
  JsonField integrity = root.at("integrity");
  checkPlanHash(text, file, integrity.at("plan").string());

  Plan plan;  // format and version are checked first: another version may differ in every field
  plan.file = file;
  plan.dir = dir;
  if (root.has("nincc")) plan.ninccVersion = root.at("nincc").string();
  plan.model = root.at("model").nonEmptyString();
  plan.sourceHash = root.at("sourceHash").nonEmptyString();
  plan.input = readShape(root.at("input"));
  plan.output = readShape(root.at("output"));
  plan.classes = root.at("classes").integer(0, kMaxElements);
  plan.maxBatch = root.at("maxBatch").integer(1, kMaxBatchLimit);

  JsonField libraries = root.at("libraries");
  size_t libraryCount = libraries.objectSize();
  JsonField libraryHashes = integrity.at("libraries");
  for (size_t i = 0; i < libraryCount; ++i) {
    const std::string& device = libraries.key(i);
    plan.libraries[device] = libraries.member(i).nonEmptyString();
    if (!libraryHashes.has(device)) libraryHashes.fail("has no hash for the " + device + " library");
    const std::string& hash = libraryHashes.at(device).string();
    if (!isSha256Hex(hash)) libraryHashes.at(device).fail("must be 64 lowercase hex digits (a SHA-256)");
    plan.libraryHashes[device] = hash;
  }
  if (libraryHashes.objectSize() != libraryCount) libraryHashes.fail("has a hash for a library that libraries does not list");

  readSpaces(root.at("spaces"), plan);
  std::set<std::string> tensorNames;
  plan.params = readTensors(root.at("params"), Space::Param, plan, tensorNames);
  plan.state = readTensors(root.at("state"), Space::State, plan, tensorNames);

  JsonField programs = root.at("programs");
  size_t programCount = programs.objectSize();
  for (size_t i = 0; i < programCount; ++i)
    plan.programs.push_back(readProgram(programs.key(i), programs.member(i), plan));
  if (root.has("tickets")) {
    JsonField tickets = root.at("tickets");
    for (size_t i = 0; i < tickets.arraySize(); ++i) {
      plan.tickets.push_back(readRef(tickets.item(i), plan));
      if (plan.tickets.back().space != Space::Fixed) tickets.item(i).at("space").fail("must be \"fixed\": tickets live in the fixed space");
    }
  }
  root.refuseUnknown({"format", "version", "nincc", "model", "sourceHash", "input", "output", "classes", "maxBatch",
                      "macsPerImage", "imageSize", "transform", "train", "libraries", "cpuFeatures", "precision",
                      "imageInput", "spaces", "params", "state", "programs", "untrainable", "tickets", "integrity"},
                     kUnknownField);
  integrity.refuseUnknown({"plan", "libraries"}, kUnknownField);
  return plan;
}

Plan loadPlan(const std::string& dir) {
  std::string file = joinPath(dir, "plan.json");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file + ": cannot open the plan (is this a directory written by `nincc build`?)");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(file + ": cannot read the plan");
  return parsePlan(text.str(), file, dir);
}

}  // namespace nincc
