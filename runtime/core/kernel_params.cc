#include "kernel_params.h"

#include "error.h"

namespace nincc {

KernelParams::KernelParams(const std::string& what, const std::string& signature, const Step& step,
                           const NinccArgs& args)
    : n_(args.n), seed_(args.seed) {
  const size_t buffers = step.args.size(), scalars = step.scalars.size();
  const size_t seed = step.launch.seed ? 1 : 0;
  std::string expected(buffers, 'p');
  expected += 'i';
  if (signature.size() != buffers + 1 + scalars + seed || signature.compare(0, buffers + 1, expected) != 0 ||
      (seed && signature.back() != 'L'))
    throw Error(what + ": the kernel's signature \"" + signature + "\" does not match the step's " +
                std::to_string(buffers) + " buffers, n and " + std::to_string(scalars) + " scalars" +
                (seed ? " and the seed" : "") + "; rebuild the artifact");
  floats_.resize(scalars);
  doubles_.resize(scalars);
  params_.reserve(buffers + 1 + scalars);
  for (size_t i = 0; i < buffers; ++i) params_.push_back(const_cast<void**>(&args.ptr[i]));
  params_.push_back(&n_);
  for (size_t i = 0; i < scalars; ++i) {
    const char type = signature[buffers + 1 + i];
    floats_[i] = static_cast<float>(args.scalar[i]);
    doubles_[i] = args.scalar[i];
    if (type == 'f') params_.push_back(&floats_[i]);
    else if (type == 'd') params_.push_back(&doubles_[i]);
    else throw Error(what + ": scalar parameter type '" + std::string(1, type) + "' is not supported");
  }
  if (seed) params_.push_back(&seed_);
}

void launchGeometry(const LaunchRule& rule, int64_t n, uint32_t grid[3], uint32_t block[3]) {
  for (int d = 0; d < 3; ++d) {
    uint64_t g = rule.grid[d];
    if (d == rule.batchAxis) g *= static_cast<uint64_t>(n);
    if (g > 0xffffffffu) throw Error("launch grid dimension " + std::to_string(d) + " overflows");
    grid[d] = static_cast<uint32_t>(g);
    block[d] = rule.block[d];
  }
}

}  // namespace nincc
