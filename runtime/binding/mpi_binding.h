// The addon's `mpi` object (mpi_binding.cc).
#pragma once
#include <napi.h>

namespace nincc_binding {

Napi::Object mpiObject(Napi::Env env);

}  // namespace nincc_binding
