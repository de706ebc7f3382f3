// Small Plan helpers: space and dtype names, program lookup, path joining.
#include "plan.h"

namespace nincc {

namespace {
const char* const kSpaceNames[kSpaceCount] = {"param", "grad", "momentum", "state", "fixed", "act"};
}

const char* spaceName(Space space) { return kSpaceNames[static_cast<int>(space)]; }

bool spaceFromName(const std::string& name, Space* out) {
  for (int i = 0; i < kSpaceCount; ++i)
    if (name == kSpaceNames[i]) {
      *out = static_cast<Space>(i);
      return true;
    }
  return false;
}

std::string spaceNameList() {
  std::string list;
  for (int i = 0; i < kSpaceCount; ++i) list += (i ? ", " : "") + std::string(kSpaceNames[i]);
  return list;
}

const char* dtypeName(DType dtype) {
  return dtype == DType::I32 ? "i32" : dtype == DType::U8 ? "u8" : dtype == DType::BF16 ? "bf16" : "f32";
}

const Program* Plan::findProgram(const std::string& name) const {
  for (const Program& p : programs)
    if (p.name == name) return &p;
  return nullptr;
}

std::string Plan::programNameList() const {
  std::string list;
  for (const Program& p : programs) list += (list.empty() ? "" : ", ") + p.name;
  return list.empty() ? "(none)" : list;
}

std::string joinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (!name.empty() && name[0] == '/') return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool Program::runsOn(const std::string& device) const {
  if (devices.empty()) return true;
  for (const std::string& d : devices)
    if (d == device) return true;
  return false;
}

}  // namespace nincc
