// nincc_jpeg.node: the packed reader's libjpeg-turbo crop decoder (jpeg_crop.h) for the decode worker threads,
// built only where libjpeg-turbo's headers are found (CMakeLists.txt). Synchronous on purpose: each decode
// worker is its own thread, so a call blocks only that worker, and no per-image JS object is made.
#include <napi.h>

#include <string>

#include <cstdio>
#include <jpeglib.h>

#include "jpeg_crop.h"

namespace {

#define NINCC_STRINGIFY_(x) #x
#define NINCC_STRINGIFY(x) NINCC_STRINGIFY_(x)

int intArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

Napi::Uint8Array bytesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Uint8Array");
  }
  return info[i].As<Napi::Uint8Array>();
}

// decodeCrop(jpeg, scaleNum, scaledWidth, scaledHeight, x, y, width, height, flip, out) -> boolean:
// true once `out` holds the crop (height × width × 3 RGB bytes), false for a JPEG left to sharp (CMYK).
// Throws an Error with libjpeg's message for damaged data.
Napi::Value decodeCrop(const Napi::CallbackInfo& info) {
  if (info.Length() != 10) throw Napi::TypeError::New(info.Env(), "decodeCrop takes 10 arguments");
  Napi::Uint8Array jpeg = bytesArg(info, 0, "jpeg");
  Napi::Uint8Array out = bytesArg(info, 9, "out");
  nincc_jpeg::CropRequest q{};
  q.jpeg = jpeg.Data();
  q.jpegBytes = jpeg.ByteLength();
  q.scaleNum = intArg(info, 1, "scaleNum");
  q.scaledWidth = intArg(info, 2, "scaledWidth");
  q.scaledHeight = intArg(info, 3, "scaledHeight");
  q.x = intArg(info, 4, "x");
  q.y = intArg(info, 5, "y");
  q.width = intArg(info, 6, "width");
  q.height = intArg(info, 7, "height");
  q.flip = info[8].ToBoolean().Value();
  q.out = out.Data();
  q.outBytes = out.ByteLength();
  try {
    return Napi::Boolean::New(info.Env(), nincc_jpeg::decodeCrop(q));
  } catch (const nincc_jpeg::JpegError& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeCrop", Napi::Function::New<decodeCrop>(env, "decodeCrop"));
  exports.Set("version", Napi::String::New(env, NINCC_STRINGIFY(LIBJPEG_TURBO_VERSION)));
  return exports;
}

}  // namespace

NODE_API_MODULE(nincc_jpeg, init)
