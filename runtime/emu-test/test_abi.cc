// The path the runtime's emu device takes: dlopen a library built from the same .cu files with
// g++ -shared -DNINCC_EMU, check its identity, resolve `nincc_emu_<kernel>` descriptors and launch
// them with cuLaunchKernel-style parameter arrays (emu_abi.h); faults come back as text, and only
// the descriptors and the identity functions are exported.
#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <string>

#include "check.h"
#include "kernels.h"
#include "nincc/device/emu_abi.h"

namespace emu_test {
namespace {

NinccEmuLaunch launch_shape(dim3 grid, dim3 block, uint32_t params) {
  NinccEmuLaunch l{};
  l.grid[0] = grid.x, l.grid[1] = grid.y, l.grid[2] = grid.z;
  l.block[0] = block.x, l.block[1] = block.y, l.block[2] = block.z;
  l.param_count = params;
  return l;
}

}  // namespace

void test_abi(const char* library_path) {
  void* library = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
  CHECK_MSG(library != nullptr, std::string("dlopen: ") + dlerror());
  if (!library) return;

  using TextFn = const char* (*)();
  auto abi = reinterpret_cast<TextFn>(dlsym(library, "nincc_abi"));
  auto hash = reinterpret_cast<TextFn>(dlsym(library, "nincc_source_hash"));
  CHECK(abi && std::string(abi()) == NINCC_EMU_ABI);
  CHECK(hash && std::string(hash()) == "emu-test");
  // The kernels themselves and the emulator's internals stay inside the library.
  CHECK(dlsym(library, "matmul_tiled16") == nullptr);
  CHECK(dlsym(library, "_ZN5nincc3emu8t_runnerE") == nullptr);

  auto* matmul = static_cast<const NinccEmuKernel*>(dlsym(library, "nincc_emu_matmul_tiled16"));
  CHECK(matmul != nullptr);
  if (matmul) {
    CHECK(std::string(matmul->name) == "matmul_tiled16");
    CHECK(std::string(matmul->signature) == "pppiii");
    const int m = 20, n = 18, k = 7;
    Buffer<float> a(size_t(m) * k), b(size_t(k) * n), c(size_t(m) * n), direct(size_t(m) * n);
    Rng rng(11);
    for (size_t i = 0; i < a.size(); ++i) a[i] = rng.uniform();
    for (size_t i = 0; i < b.size(); ++i) b[i] = rng.uniform();
    const float* pa = a.data();
    const float* pb = b.data();
    float* pc = c.data();
    void* params[] = {&pa, &pb, &pc, const_cast<int*>(&m), const_cast<int*>(&n), const_cast<int*>(&k)};
    NinccEmuLaunch l = launch_shape(dim3(2, 2), dim3(16, 16), 6);
    l.block_order = NINCC_EMU_SHUFFLED;
    l.shuffle_seed = 3;
    l.workers = 2;
    CHECK_MSG(matmul->launch(&l, params) == 0, l.error);
    // The same kernel linked into this program, launched directly: bitwise the same result.
    nincc::emu::launch("matmul_tiled16", dim3(2, 2), dim3(16, 16), 0, &matmul_tiled16, a.data(), b.data(),
                       direct.data(), m, n, k);
    CHECK(c.bitwise_equal(direct));

    NinccEmuLaunch wrong = launch_shape(dim3(2, 2), dim3(16, 16), 5);
    CHECK(matmul->launch(&wrong, params) != 0);
    CHECK_MSG(std::string(wrong.error).find("takes 6 parameters (signature \"pppiii\") but the launch passes 5") !=
                  std::string::npos,
              wrong.error);
    NinccEmuLaunch too_big = launch_shape(dim3(1), dim3(64, 32), 6);
    CHECK(matmul->launch(&too_big, params) != 0 && std::string(too_big.error).find("at most 1024") != std::string::npos);
  }

  auto* divergent = static_cast<const NinccEmuKernel*>(dlsym(library, "nincc_emu_early_exit_then_sync"));
  CHECK(divergent != nullptr);
  if (divergent) {
    Buffer<float> out(64);
    float* po = out.data();
    void* params[] = {&po};
    NinccEmuLaunch l = launch_shape(dim3(1), dim3(64), 1);
    CHECK(divergent->launch(&l, params) != 0);
    const std::string error = l.error;
    CHECK_MSG(error.find("kernel `early_exit_then_sync`") != std::string::npos &&
                  error.find("thread (5,0,0)") != std::string::npos &&
                  error.find("barrier divergence") != std::string::npos,
              error);
  }
  // NINCC_EMU_PROFILE: a descriptor launch appends its counters as a JSON line (sampled: 16 blocks
  // of one row are 15 interior and 1 edge; one of each, scaled, gives the full copy's 512 sectors).
  auto* copy = static_cast<const NinccEmuKernel*>(dlsym(library, "nincc_emu_copy_coalesced"));
  CHECK(copy != nullptr);
  if (copy) {
    char path[] = "/tmp/nincc-emu-profile-XXXXXX";
    const int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    Buffer<float> in(4096, 0), out(4096);
    const float* pi = in.data();
    float* po = out.data();
    void* params[] = {&pi, &po};
    setenv("NINCC_EMU_PROFILE", path, 1);
    setenv("NINCC_EMU_PROFILE_SAMPLE", "1", 1);
    NinccEmuLaunch l = launch_shape(dim3(16), dim3(256), 2);
    CHECK_MSG(copy->launch(&l, params) == 0, l.error);
    unsetenv("NINCC_EMU_PROFILE");
    unsetenv("NINCC_EMU_PROFILE_SAMPLE");
    char line[2048] = "";
    if (std::FILE* f = std::fopen(path, "r")) {
      if (!std::fgets(line, sizeof line, f)) line[0] = '\0';
      std::fclose(f);
    }
    std::remove(path);
    const std::string json = line;
    for (const char* want : {"\"kernel\": \"copy_coalesced\"", "\"grid\": [16, 1, 1]", "\"blocks\": 16,",
                             "\"blocks_run\": 2,", "\"global_load_sectors\": 512,", "\"global_store_sectors\": 512,"})
      CHECK_MSG(json.find(want) != std::string::npos, std::string("NINCC_EMU_PROFILE line lacks ") + want + ": " + json);
  }
  dlclose(library);
}

}  // namespace emu_test
