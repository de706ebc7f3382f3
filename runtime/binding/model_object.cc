// ModelObject's methods: argument checks, the busy flag, and conversions between typed arrays and
// the Model's copies. Model does the work and the bounds checks.
#include "model_object.h"

#include <cstring>
#include <limits>

#include "js_args.h"
#include "js_errors.h"
#include "run_worker.h"

namespace nincc_binding {

namespace {

constexpr int64_t kMaxJsInteger = (int64_t(1) << 53) - 1;

Napi::Array shapeArray(Napi::Env env, const std::vector<int64_t>& shape) {
  Napi::Array array = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) array.Set(uint32_t(i), Napi::Number::New(env, double(shape[i])));
  return array;
}

Napi::Object refObject(Napi::Env env, const nincc::BufferRef& ref) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("space", nincc::spaceName(ref.space));
  o.Set("offset", double(ref.offset));
  o.Set("size", double(ref.size));
  o.Set("dtype", nincc::dtypeName(ref.dtype));
  return o;
}

Napi::Object namedRefsObject(Napi::Env env, const nincc::NamedRefs& refs) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& entry : refs) o.Set(entry.first, refObject(env, entry.second));
  return o;
}

Napi::Array tensorArray(Napi::Env env, const std::vector<nincc::TensorEntry>& tensors) {
  Napi::Array array = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const nincc::TensorEntry& t = tensors[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("shape", shapeArray(env, t.shape));
    o.Set("offset", double(t.offset));
    o.Set("size", double(t.size));
    Napi::Object init = Napi::Object::New(env);
    init.Set("kind", t.init.kind);
    if (t.init.kind == "uniform") init.Set("bound", t.init.bound);
    o.Set("init", init);
    if (t.torchIndex >= 0) {
      Napi::Object torch = Napi::Object::New(env);
      torch.Set("index", double(t.torchIndex));
      torch.Set("field", t.torchField);
      o.Set("torch", torch);
    }
    o.Set("layer", double(t.layer));
    array.Set(uint32_t(i), o);
  }
  return array;
}

// The arena bytes a model holds once loaded and run on one image: every space but act in full, act
// for one image. The spaces are lazily mapped (host_device.cc), so the act space for maxBatch
// images costs memory only when a large batch touches it; counting it in full would make V8 run a
// major collection every few loads.
int64_t residentArenaBytes(const nincc::Plan& plan) {
  int64_t elements = 0;
  for (int i = 0; i < nincc::kSpaceCount; ++i) elements += plan.sizeOf(static_cast<nincc::Space>(i));
  return elements * 4;
}

// A typed array's first byte. Read through napi_get_typedarray_info, which also serves arrays
// over a SharedArrayBuffer (napi_get_arraybuffer_info refuses those with "Invalid argument").
const char* typedArrayBytes(const Napi::TypedArray& array) {
  void* data = nullptr;
  napi_status status = napi_get_typedarray_info(array.Env(), array, nullptr, nullptr, &data, nullptr, nullptr);
  NAPI_THROW_IF_FAILED(array.Env(), status, nullptr);
  return static_cast<const char*>(data);
}

// The typed array a buffer of this dtype is read into and written from.
napi_typedarray_type typedArrayFor(nincc::DType dtype) {
  // A bf16 buffer (never a program's input or output today) would travel as its 16-bit patterns.
  if (dtype == nincc::DType::BF16) return napi_uint16_array;
  return dtype == nincc::DType::I32 ? napi_int32_array : dtype == nincc::DType::U8 ? napi_uint8_array : napi_float32_array;
}

// Throws unless `array` is the typed array of the input's dtype.
void checkInputArray(const nincc::Model& model, const std::string& program, const std::string& name,
                     const Napi::TypedArray& array) {
  const nincc::BufferRef& ref = model.inputRef(program, name);
  if (array.TypedArrayType() != typedArrayFor(ref.dtype))
    throw ArgumentError("input \"" + name + "\" of program \"" + program + "\" is " + nincc::dtypeName(ref.dtype) +
                        ": pass a " + typedArrayName(typedArrayFor(ref.dtype)) + ", not a " +
                        typedArrayName(array.TypedArrayType()));
}

}  // namespace

void ModelObject::defineClass(Napi::Env env) {
  Napi::Function constructor = DefineClass(env, "NativeModel",
      {InstanceMethod<&ModelObject::info>("info"),
       InstanceMethod<&ModelObject::run>("run"),
       InstanceMethod<&ModelObject::runInline>("runInline"),
       InstanceMethod<&ModelObject::setInput>("setInput"),
       InstanceMethod<&ModelObject::stageInputs>("stageInputs"),
       InstanceMethod<&ModelObject::discardStaged>("discardStaged"),
       InstanceMethod<&ModelObject::getOutput>("getOutput"),
       InstanceMethod<&ModelObject::read>("read"),
       InstanceMethod<&ModelObject::write>("write"),
       InstanceMethod<&ModelObject::dispose>("dispose"),
       InstanceMethod<&ModelObject::timeLaunches>("timeLaunches"),
       InstanceMethod<&ModelObject::launchTimes>("launchTimes")});
  // Per-env storage: the addon may be loaded by several worker threads, each with its own env.
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(constructor)));
}

Napi::Object ModelObject::wrap(Napi::Env env, std::unique_ptr<nincc::Model> model) {
  Napi::FunctionReference* constructor = env.GetInstanceData<Napi::FunctionReference>();
  // The constructor takes ownership from the External as its first act.
  return constructor->New({Napi::External<nincc::Model>::New(env, model.release())});
}

ModelObject::ModelObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelObject>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "NativeModel cannot be constructed directly; use load()");
  model_.reset(info[0].As<Napi::External<nincc::Model>>().Data());
  externalBytes_ = residentArenaBytes(model_->plan());
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), externalBytes_);
}

ModelObject::~ModelObject() { releaseModel(); }

void ModelObject::releaseModel() {
  if (!model_) return;
  model_.reset();
  Napi::MemoryManagement::AdjustExternalMemory(Env(), -externalBytes_);
  externalBytes_ = 0;
}

nincc::Model& ModelObject::usableModel(const char* call) {
  if (!model_) throw nincc::Error(std::string(call) + "(): this model was disposed");
  if (busy_)
    throw nincc::Error(std::string(call) + "(): the model is busy with a run(); await its promise first");
  return *model_;
}

Napi::Value ModelObject::info(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    nincc::Model& model = usableModel("info");
    const nincc::Plan& plan = model.plan();
    Napi::Object o = Napi::Object::New(env);
    o.Set("model", plan.model);
    o.Set("sourceHash", plan.sourceHash);
    o.Set("nincc", plan.ninccVersion);
    o.Set("device", model.deviceName());
    o.Set("hardware", model.device().hardwareName());
    o.Set("maxBatch", double(model.maxBatch()));
    o.Set("input", shapeArray(env, model.inputShape()));
    o.Set("output", shapeArray(env, model.outputShape()));
    o.Set("classes", double(model.classes()));
    Napi::Object spaces = Napi::Object::New(env);
    for (int i = 0; i < nincc::kSpaceCount; ++i) {
      nincc::Space space = static_cast<nincc::Space>(i);
      spaces.Set(nincc::spaceName(space), double(plan.sizeOf(space)));
    }
    o.Set("spaces", spaces);
    o.Set("params", tensorArray(env, model.params()));
    o.Set("state", tensorArray(env, model.state()));
    Napi::Object programs = Napi::Object::New(env);
    for (const nincc::Program& program : plan.programs) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("inputs", namedRefsObject(env, program.inputs));
      p.Set("outputs", namedRefsObject(env, program.outputs));
      p.Set("steps", double(program.steps.size()));
      programs.Set(program.name, p);
    }
    o.Set("programs", programs);
    return o;
  });
}

// run()'s and runInline()'s scalars argument: an object of numbers.
static nincc::ScalarValues scalarsArg(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsObject()) throw ArgumentError("scalars must be an object of numbers");
  nincc::ScalarValues scalars;
  Napi::Object given = info[index].As<Napi::Object>();
  Napi::Array names = given.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = names.Get(i).ToString().Utf8Value();
    Napi::Value value = given.Get(name);
    if (!value.IsNumber()) throw ArgumentError("scalar \"" + name + "\" must be a number");
    scalars[name] = value.As<Napi::Number>().DoubleValue();
  }
  return scalars;
}

// run(program, n, scalars, seed, reduce?) -> Promise<void>; reduce: mpi_binding.h reduceJobArg. Every failure, synchronous or on the worker,
// rejects the promise, so callers handle one path.
Napi::Value ModelObject::run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    nincc::Model& model = usableModel("run");
    std::string program = stringArg(info, 0, "program");
    int64_t n = integerArg(info, 1, "n", std::numeric_limits<int32_t>::min(),
                           std::numeric_limits<int32_t>::max());
    nincc::ScalarValues scalars = scalarsArg(info, 2);
    uint64_t seed = info.Length() > 3 && !info[3].IsUndefined() ? seedArg(info, 3) : 0;
    std::optional<ReduceJob> reduce;
    if (info.Length() > 4 && !info[4].IsUndefined()) reduce = reduceJobArg(info[4]);

    auto* worker = new RunWorker(env, info.This().As<Napi::Object>(), *this, model,
                                 std::move(program), n, std::move(scalars), seed, std::move(reduce));
    Napi::Promise promise = worker->promise();
    busy_ = true;
    worker->Queue();  // the worker deletes itself after OnOK
    return promise;
  } catch (...) {
    Napi::Promise::Deferred refused = Napi::Promise::Deferred::New(env);
    refused.Reject(toJsError(env, std::current_exception()).Value());
    return refused.Promise();
  }
}

// runInline(program, n, scalars, seed?) -> undefined: the program run on the calling (JS) thread, no
// worker thread and no promise. For a program so short (a small model at a small batch) that the hop
// to the worker thread and back is a tenth of the call (issue #19; model.ts decides when, from plan.json
// `inlineMaxBatch`). It blocks the event loop for the run's length.
Napi::Value ModelObject::runInline(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    nincc::Model& model = usableModel("runInline");
    std::string program = stringArg(info, 0, "program");
    int64_t n = integerArg(info, 1, "n", std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
    nincc::ScalarValues scalars = scalarsArg(info, 2);
    uint64_t seed = info.Length() > 3 && !info[3].IsUndefined() ? seedArg(info, 3) : 0;
    model.run(program, n, scalars, seed);
    return info.Env().Undefined();
  });
}

// setInput(program, name, typedArray, n): the array holds exactly the buffer for n images.
Napi::Value ModelObject::setInput(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    nincc::Model& model = usableModel("setInput");
    std::string program = stringArg(info, 0, "program");
    std::string name = stringArg(info, 1, "name");
    Napi::TypedArray array = typedArrayArg(info, 2, "data");
    int64_t n = integerArg(info, 3, "n", 0, kMaxJsInteger);
    checkInputArray(model, program, name, array);
    model.setInput(program, name, n, typedArrayBytes(array), array.ByteLength());
    return info.Env().Undefined();
  });
}

// stageInputs(program, n, { name: typedArray, … }): the inputs of the next run of `program` on n
// images (model.h stageInputs). Allowed while a run is in flight: that is what it is for.
Napi::Value ModelObject::stageInputs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!model_) throw nincc::Error("stageInputs(): this model was disposed");
    std::string program = stringArg(info, 0, "program");
    int64_t n = integerArg(info, 1, "n", 0, kMaxJsInteger);
    if (!info[2].IsObject()) throw ArgumentError("inputs must be an object of typed arrays");
    Napi::Object given = info[2].As<Napi::Object>();
    Napi::Array names = given.GetPropertyNames();
    std::vector<nincc::Model::NamedInput> inputs;
    for (uint32_t i = 0; i < names.Length(); ++i) {
      std::string name = names.Get(i).ToString().Utf8Value();
      Napi::Value value = given.Get(name);
      if (!value.IsTypedArray()) throw ArgumentError("input \"" + name + "\" must be a typed array");
      Napi::TypedArray array = value.As<Napi::TypedArray>();
      checkInputArray(*model_, program, name, array);
      inputs.push_back({name, typedArrayBytes(array), array.ByteLength()});
    }
    model_->stageInputs(program, n, inputs);
    return info.Env().Undefined();
  });
}

// discardStaged() -> number: drops the staged batches no run has taken (model.h discardStaged); refused
// while a run is in flight, which may be taking one.
Napi::Value ModelObject::discardStaged(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), double(usableModel("discardStaged").discardStaged()));
  });
}

// getOutput(program, name, n) -> Float32Array or Int32Array (by the buffer's dtype).
Napi::Value ModelObject::getOutput(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    nincc::Model& model = usableModel("getOutput");
    std::string program = stringArg(info, 0, "program");
    std::string name = stringArg(info, 1, "name");
    int64_t n = integerArg(info, 2, "n", 0, kMaxJsInteger);
    const nincc::BufferRef& ref = model.outputRef(program, name);
    size_t count = static_cast<size_t>(model.elementsFor(ref, n));
    if (ref.dtype == nincc::DType::I32) {
      Napi::Int32Array out = Napi::Int32Array::New(env, count);
      model.getOutput(program, name, n, out.Data(), count * 4);
      return out;
    }
    Napi::Float32Array out = Napi::Float32Array::New(env, count);
    model.getOutput(program, name, n, out.Data(), count * 4);
    return out;
  });
}

// read(space, offset, count) -> Float32Array (i32 buffers come back as their bits; the TS
// layer may view them through an Int32Array).
Napi::Value ModelObject::read(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    nincc::Model& model = usableModel("read");
    std::string space = stringArg(info, 0, "space");
    int64_t offset = integerArg(info, 1, "offset", 0, kMaxJsInteger);
    int64_t count = integerArg(info, 2, "count", 0, kMaxJsInteger);
    model.checkSpaceRange(space, offset, count);  // before allocating count elements
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(count));
    model.readSpace(space, offset, count, out.Data());
    return out;
  });
}

// write(space, offset, Float32Array)
Napi::Value ModelObject::write(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    nincc::Model& model = usableModel("write");
    std::string space = stringArg(info, 0, "space");
    int64_t offset = integerArg(info, 1, "offset", 0, kMaxJsInteger);
    Napi::TypedArray array = typedArrayArg(info, 2, "data");
    if (array.TypedArrayType() != napi_float32_array)
      throw ArgumentError("write(): data must be a Float32Array, not a " +
                          std::string(typedArrayName(array.TypedArrayType())));
    model.writeSpace(space, offset, static_cast<int64_t>(array.ElementLength()),
                     reinterpret_cast<const float*>(typedArrayBytes(array)));
    return info.Env().Undefined();
  });
}

// dispose(): frees the arena and unloads the library now rather than at garbage collection.
Napi::Value ModelObject::dispose(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (model_) {
      usableModel("dispose");  // refuses while a run is in flight
      releaseModel();
    }
    return info.Env().Undefined();
  });
}

// timeLaunches(on) -> whether the device times its launches (cuda only): nincc tune on a GPU.
Napi::Value ModelObject::timeLaunches(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (info.Length() != 1 || !info[0].IsBoolean()) throw ArgumentError("timeLaunches(on): on must be a boolean");
    return Napi::Boolean::New(info.Env(), usableModel("timeLaunches").device().timeLaunches(info[0].As<Napi::Boolean>()));
  });
}

// launchTimes() -> [{ kernel, micros }]: the launches timed since the last call, in launch order.
Napi::Value ModelObject::launchTimes(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const std::vector<nincc::LaunchTime> times = usableModel("launchTimes").device().takeLaunchTimes();
    Napi::Array array = Napi::Array::New(env, times.size());
    for (size_t i = 0; i < times.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("kernel", times[i].kernel);
      o.Set("micros", times[i].micros);
      array.Set(uint32_t(i), o);
    }
    return array;
  });
}

}  // namespace nincc_binding
