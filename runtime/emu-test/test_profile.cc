// The profile's counters on micro-kernels against counts worked out by hand (the comment above each
// case derives them): sectors per warp instruction for coalesced, strided and misaligned copies and
// the bytes each asked for (coalescing), shared-memory
// wavefronts and bank conflicts of a transpose without and with padding, a tiled sgemm, and the
// ldmatrix + mma loop of bf16_ops.cu. Buffers are 64-byte aligned, so 32-byte sectors start where
// the derivations say. `emu_test --counts` prints the same launches' counters as JSON lines for
// bench/gpu/ncu.sh, whose GPU driver (bench/gpu/micro_kernels.cu) launches the same shapes.
#include <functional>
#include <string>
#include <vector>

#include "check.h"
#include "kernels.h"

namespace emu_test {
namespace {

using nincc::emu::Counters;

using nincc::emu::CounterField;
using nincc::emu::kCounterFields;

struct Want {
  uint64_t Counters::*member;
  uint64_t value;
};

// One micro-kernel launch: `run` profiles it; every counter not in `wants` must be zero.
struct MicroCase {
  std::string name;
  std::function<Counters()> run;
  std::vector<Want> wants;
};

template <class... P, class... A>
Counters profile(const char* name, dim3 grid, dim3 block, void (*kernel)(P...), A... args) {
  nincc::emu::Profile p;
  nincc::emu::LaunchOptions options;
  options.profile = &p;
  options.workers = 4;  // ignored: a profiled launch runs on one worker
  nincc::emu::launch(name, grid, block, 0, options, kernel, args...);
  return p.counters;
}

std::vector<MicroCase> micro_cases() {
  std::vector<MicroCase> cases;
  // copy_coalesced, 4096 floats, 16 blocks of 256: 128 warps, each one load and one store of 32
  // consecutive floats = 128 bytes = 4 sectors. Unique: 2 × 4096 × 4 / 32 = 1024 sectors.
  cases.push_back({"copy_coalesced",
                   [] {
                     Buffer<float> in(4096, 0), out(4096);
                     return profile("copy_coalesced", dim3(16), dim3(256), &copy_coalesced, in.data(), out.data());
                   },
                   {{&Counters::blocks, 16},
                    {&Counters::global_load_instructions, 128},
                    {&Counters::global_load_sectors, 512},
                    {&Counters::global_store_instructions, 128},
                    {&Counters::global_store_sectors, 512},
                    {&Counters::global_store_block_sectors, 512},
                    // Fully coalesced: 128 requested bytes, the 4 sectors they need, per instruction.
                    {&Counters::global_load_requested_bytes, 16384},
                    {&Counters::global_load_ideal_sectors, 512},
                    {&Counters::global_store_requested_bytes, 16384},
                    {&Counters::global_store_ideal_sectors, 512},
                    {&Counters::unique_global_sectors, 1024},
                    // Block 0 and its probe (block 7) read and write disjoint halves: nothing shared.
                    {&Counters::block_sectors_private, 1024}}});
  // copy_strided, 1024 outputs (4 blocks of 256, 32 warps). Stride 8 floats = 32 bytes: each lane's
  // load is its own sector, 32 per instruction; stride 2: a warp spans 256 bytes, 8 sectors. Stores
  // stay 4 sectors. Unique: stride 8 touches 1024 load sectors, stride 2 all 256 sectors of its
  // 2048 floats; plus 128 store sectors. Each instruction asks for 128 bytes, 4 sectors' worth: the
  // loads' efficiency is 4/8 (stride 2) and 4/32 (stride 8), the stores' full.
  for (int stride : {2, 8})
    cases.push_back({"copy_strided_" + std::to_string(stride),
                     [stride] {
                       Buffer<float> in(size_t(1024) * stride, 0), out(1024);
                       return profile("copy_strided", dim3(4), dim3(256), &copy_strided, in.data(), out.data(), stride);
                     },
                     {{&Counters::blocks, 4},
                      {&Counters::global_load_instructions, 32},
                      {&Counters::global_load_sectors, stride == 8 ? 1024u : 256u},
                      {&Counters::global_store_instructions, 32},
                      {&Counters::global_store_sectors, 128},
                    {&Counters::global_store_block_sectors, 128},
                      {&Counters::global_load_requested_bytes, 4096},
                      {&Counters::global_load_ideal_sectors, 128},
                      {&Counters::global_store_requested_bytes, 4096},
                      {&Counters::global_store_ideal_sectors, 128},
                      {&Counters::unique_global_sectors, stride == 8 ? 1152u : 384u},
                      {&Counters::block_sectors_private, stride == 8 ? 1152u : 384u}}});
  // copy_offset by one float, 1024 outputs (4 blocks of 256, 32 warps): each load's 128 bytes start 4
  // bytes into a sector and straddle 5 (160 in all, 128 needed: efficiency 0.8); the stores are
  // aligned (128). Unique: in-bytes 4..4099 are sectors 0..128 (129), plus 128 store sectors = 257.
  // Block b loads sectors 32b..32b+32 (33) and stores 32: 65 each, 260 in all. The base, block 1,
  // shares its load sector 32 with block 0 (its predecessor) and none with the far probe (block 3):
  // halo 260 · 1/65 = 4, private 256.
  cases.push_back({"copy_offset_1",
                   [] {
                     Buffer<float> in(1024 + 32, 0), out(1024);
                     return profile("copy_offset", dim3(4), dim3(256), &copy_offset, in.data(), out.data(), 1);
                   },
                   {{&Counters::blocks, 4},
                    {&Counters::global_load_instructions, 32},
                    {&Counters::global_load_sectors, 160},
                    {&Counters::global_load_requested_bytes, 4096},
                    {&Counters::global_load_ideal_sectors, 128},
                    {&Counters::global_store_instructions, 32},
                    {&Counters::global_store_sectors, 128},
                    {&Counters::global_store_block_sectors, 128},
                    {&Counters::global_store_requested_bytes, 4096},
                    {&Counters::global_store_ideal_sectors, 128},
                    {&Counters::unique_global_sectors, 257},
                    {&Counters::block_sectors_private, 256},
                    {&Counters::block_sectors_halo_x, 4}}});
  // transpose of 64×64: 2×2 blocks of 32×8 threads = 32 warps, each 4 rows: 128 instructions of
  // each kind. Global rows are 128 bytes (4 sectors). Shared stores write a tile row: 32 banks, one
  // wavefront. Shared loads read a tile column: with 32 columns all 32 words are in one bank (32
  // wavefronts, 31 conflicts each: 4096 and 3968); with 33 they are on 32 banks (128, 0). One
  // barrier per block.
  for (bool padded : {false, true})
    cases.push_back({padded ? "transpose_padded" : "transpose_unpadded",
                     [padded] {
                       Buffer<float> in(64 * 64, 0), out(64 * 64);
                       return padded ? profile("transpose_padded", dim3(2, 2), dim3(32, 8), &transpose_padded,
                                               in.data(), out.data(), 64)
                                     : profile("transpose_unpadded", dim3(2, 2), dim3(32, 8), &transpose_unpadded,
                                               in.data(), out.data(), 64);
                     },
                     {{&Counters::blocks, 4},
                      {&Counters::barriers, 4},
                      {&Counters::global_load_instructions, 128},
                      {&Counters::global_load_sectors, 512},
                      {&Counters::global_store_instructions, 128},
                      {&Counters::global_store_sectors, 512},
                    {&Counters::global_store_block_sectors, 512},
                      {&Counters::global_load_requested_bytes, 16384},
                      {&Counters::global_load_ideal_sectors, 512},
                      {&Counters::global_store_requested_bytes, 16384},
                      {&Counters::global_store_ideal_sectors, 512},
                      {&Counters::shared_store_instructions, 128},
                      {&Counters::shared_store_wavefronts, 128},
                      {&Counters::shared_load_instructions, 128},
                      {&Counters::shared_load_wavefronts, padded ? 128u : 4096u},
                      {&Counters::shared_bank_conflicts, padded ? 0u : 3968u},
                      {&Counters::unique_global_sectors, 1024},
                      {&Counters::block_sectors_private, 1024}}});
  // sgemm_tiled16, m = n = k = 32: 2×2 blocks of 16×16 threads (8 warps of two 16-thread rows), two
  // k-tiles. Per warp and tile: one load each of A and B, two 64-byte row pieces = 4 sectors; one
  // shared store each (32 consecutive words: 1 wavefront); 16 steps of two shared loads (as[ty][kk]:
  // two words on banks kk and kk+16; bs[kk][tx]: 16 consecutive words — 1 wavefront each). So 32
  // warps × 2 tiles × 2 = 128 loads (512 sectors) and stores, 2048 shared loads, 1024 threads × 32
  // FMAs, 32 global stores of 4 sectors, 2 barriers per tile per block; unique 3 × 128 sectors.
  // Sharing: a block reads 16 rows of A (64 sectors) that block (1, 0) reads too (shared along x), 16
  // columns of B (32 rows × 2 sectors) that block (0, 1) reads too (along y), and writes 32 sectors of
  // C alone: 160 per block, 640 in all, split 64 : 64 : 32.
  cases.push_back({"sgemm_tiled16",
                   [] {
                     const int s = 32;
                     Buffer<float> a(s * s, 0), b(s * s, 0), c(s * s);
                     return profile("sgemm_tiled16", dim3(2, 2), dim3(16, 16), &sgemm_tiled16, a.data(), b.data(),
                                    c.data(), s, s, s);
                   },
                   {{&Counters::blocks, 4},
                    {&Counters::barriers, 16},
                    {&Counters::ffma, 32768},
                    {&Counters::global_load_instructions, 128},
                    {&Counters::global_load_sectors, 512},
                    // A warp's two 64-byte row pieces: 128 bytes, 4 sectors (coalesced).
                    {&Counters::global_load_requested_bytes, 16384},
                    {&Counters::global_load_ideal_sectors, 512},
                    {&Counters::global_store_requested_bytes, 4096},
                    {&Counters::global_store_ideal_sectors, 128},
                    {&Counters::shared_store_instructions, 128},
                    {&Counters::shared_store_wavefronts, 128},
                    {&Counters::shared_load_instructions, 2048},
                    {&Counters::shared_load_wavefronts, 2048},
                    {&Counters::global_store_instructions, 32},
                    {&Counters::global_store_sectors, 128},
                    {&Counters::global_store_block_sectors, 128},
                    {&Counters::unique_global_sectors, 384},
                    {&Counters::block_sectors_private, 128},
                    {&Counters::block_sectors_shared_x, 256},
                    {&Counters::block_sectors_shared_y, 256}}});
  // ldmatrix_mma_loop, k = 64: 4 steps. Each step: cp.async of A (32 lanes × 16 bytes, 16 rows of
  // 32 bytes: 16 sectors) and of B (16 lanes, 256 contiguous bytes: 8 sectors); ldmatrix.x4 of A
  // (rows 48 bytes apart: each matrix's 8 rows on distinct banks, 4 wavefronts) and .x2.trans of B
  // (16-byte rows, 2 wavefronts); one mma; two barriers. Then two float2 stores of 8 rows × 32 bytes
  // (8 sectors each). Unique: A 2048 bytes, B 1024, C 512 = 112 sectors. The copies' shared side counts as
  // stores: A's lanes write 16 bytes at (lane/2)·48 + (lane%2)·16, so each 8-lane phase puts two lanes' words on
  // one bank (lanes 1 and 6: words 4..7 and 36..39): 2 wavefronts a phase, 8 an instruction; B's 16 lanes write
  // 256 contiguous bytes, 2 wavefronts. 4 steps: 8 store instructions, 40 wavefronts, 16 bank conflicts.
  cases.push_back({"ldmatrix_mma_loop",
                   [] {
                     Buffer<unsigned short> a(16 * 64, 0), b(64 * 8, 0);
                     Buffer<float> c(16 * 8);
                     return profile("ldmatrix_mma_loop", dim3(1), dim3(32), &ldmatrix_mma_loop, a.data(), b.data(),
                                    c.data(), 64);
                   },
                   {{&Counters::blocks, 1},
                    {&Counters::barriers, 8},
                    {&Counters::mma_bf16_m16n8k16, 4},
                    {&Counters::async_copy_instructions, 8},
                    {&Counters::async_copy_sectors, 96},
                    // 4 × (512 + 256) distinct bytes, exactly their sectors; C: 2 × 256 bytes.
                    {&Counters::async_copy_requested_bytes, 3072},
                    {&Counters::async_copy_ideal_sectors, 96},
                    {&Counters::shared_store_instructions, 8},
                    {&Counters::shared_store_wavefronts, 40},
                    {&Counters::shared_bank_conflicts, 16},
                    {&Counters::global_store_requested_bytes, 512},
                    {&Counters::global_store_ideal_sectors, 16},
                    {&Counters::shared_load_instructions, 8},
                    {&Counters::shared_load_wavefronts, 24},
                    {&Counters::global_store_instructions, 2},
                    {&Counters::global_store_sectors, 16},
                    {&Counters::global_store_block_sectors, 16},
                    {&Counters::unique_global_sectors, 112},
                    {&Counters::block_sectors_private, 112}}});
  // store_even_then_odd, 2 blocks of one warp: 4 store instructions, each 32 lanes 8 bytes apart (128 requested bytes
  // over 256: 8 sectors, 4 needed). A block's two instructions store the same 8 sectors: 16 stored, 8 distinct, so
  // global_store_block_sectors is 16 against global_store_sectors' 32 (every case above stores each sector once
  // a block, where the two are equal). Unique: 2 × 256 bytes = 16 sectors, each block's own.
  cases.push_back({"store_even_then_odd",
                   [] {
                     Buffer<float> out(128);
                     return profile("store_even_then_odd", dim3(2), dim3(32), &store_even_then_odd, out.data());
                   },
                   {{&Counters::blocks, 2},
                    {&Counters::global_store_instructions, 4},
                    {&Counters::global_store_sectors, 32},
                    {&Counters::global_store_block_sectors, 16},
                    {&Counters::global_store_requested_bytes, 512},
                    {&Counters::global_store_ideal_sectors, 16},
                    {&Counters::unique_global_sectors, 16},
                    {&Counters::block_sectors_private, 16}}});
  return cases;
}

}  // namespace

void test_sampled_profile();
void test_sharing_halo();

// Requested bytes count each byte once however many lanes ask for it: a broadcast (32 lanes, one
// float) asks for 4 bytes; 32 lanes reading 8 bytes 4 apart (each overlaps the next) ask for 132.
void test_distinct_bytes() {
  using nincc::emu::LaneAccess;
  LaneAccess broadcast[32], overlapping[32];
  for (unsigned lane = 0; lane < 32; ++lane) {
    broadcast[lane] = LaneAccess{lane, 4096, 4};
    overlapping[lane] = LaneAccess{31 - lane, 4096 + 4 * uintptr_t(31 - lane), 8};  // lanes out of address order
  }
  const unsigned one = nincc::emu::distinct_bytes(broadcast, broadcast + 32);
  const unsigned spread = nincc::emu::distinct_bytes(overlapping, overlapping + 32);
  CHECK_MSG(one == 4, "broadcast: " + std::to_string(one) + " distinct bytes, by hand 4");
  CHECK_MSG(spread == 132, "overlapping 8-byte lanes: " + std::to_string(spread) + " distinct bytes, by hand 132");
}

void test_profile() {
  test_distinct_bytes();
  test_sampled_profile();
  test_sharing_halo();
  for (const MicroCase& c : micro_cases()) {
    const Counters got = c.run();
    for (const CounterField& f : kCounterFields) {
      uint64_t want = 0;
      for (const Want& w : c.wants)
        if (w.member == f.member || (f.member == &Counters::blocks_run && w.member == &Counters::blocks)) want = w.value;
      const uint64_t value = got.*(f.member);
      CHECK_MSG(value == want, c.name + " " + f.name + ": counted " + std::to_string(value) + ", by hand " +
                                   std::to_string(want));
    }
  }
}

// A sampled launch: sgemm_tiled16 on 48×48×48 is a 3×3 grid of 4 interior and 5 edge blocks that
// all do the same work, so one block per class, scaled by 4 and 5, must give the full launch's
// counts (all but unique_global_sectors, which a sample overestimates by design), the sharing split
// included: 9 blocks × (96 A + 96 B + 32 C sectors) = 2016, split 864 : 864 : 288.
void test_sampled_profile() {
  const int s = 48;
  Buffer<float> a(s * s, 0), b(s * s, 0), c(s * s);
  const Counters full = profile("sgemm_tiled16", dim3(3, 3), dim3(16, 16), &sgemm_tiled16, a.data(), b.data(), c.data(),
                                s, s, s);
  nincc::emu::Profile p;
  nincc::emu::LaunchOptions options;
  options.profile = &p;
  options.sample_per_class = 1;
  nincc::emu::launch("sgemm_tiled16", dim3(3, 3), dim3(16, 16), 0, options, &sgemm_tiled16, a.data(), b.data(),
                     c.data(), s, s, s);
  CHECK_MSG(p.counters.blocks_run == 2, "a sample of one block per class ran " + std::to_string(p.counters.blocks_run));
  CHECK(full.blocks_run == 9);
  CHECK_MSG(full.block_sectors_shared_x == 864 && full.block_sectors_shared_y == 864 && full.block_sectors_private == 288,
            "full 3x3 sgemm split " + std::to_string(full.block_sectors_shared_x) + " / " +
                std::to_string(full.block_sectors_shared_y) + " / " + std::to_string(full.block_sectors_private));
  for (const CounterField& f : kCounterFields) {
    if (f.member == &Counters::unique_global_sectors || f.member == &Counters::blocks_run) continue;
    CHECK_MSG(p.counters.*(f.member) == full.*(f.member),
              std::string("sampled ") + f.name + ": " + std::to_string(p.counters.*(f.member)) + ", full launch " +
                  std::to_string(full.*(f.member)));
  }
}

// The halo split on stencil3 over 256 floats in 8 blocks of 32 (64-byte aligned: 4 sectors a block).
// Block b reads in-sectors 4b-1 (lane 0's left neighbour) to 4b+4 (lane 31's right one) and writes 4
// out-sectors: 10 sectors, 9 for blocks 0 and 7: 78 in all, 64 distinct. The base, block 1, reads
// in-sectors 3..8; block 0 (its predecessor) reads 0..4 and the far probe (block 3) 11..16, so 3 and 4
// are halo: 2 of its 10 sectors, 78 · 2/10 → 16; the other 8 private, 78 · 8/10 → 62. The model then
// charges 62 sectors (the halo to the block before), against 64 distinct: blocks 0 and 7 read less.
// Sampled 2 per class: interior blocks 0 and 3 (9 + 10 sectors, × 7/2) and edge block 7 (9): 75.5 in
// all, split 15 (75.5 · 2/10 = 15.1) and 60 (60.4): the sample's usual error where block 0 differs.
void test_sharing_halo() {
  const int n = 256;
  Buffer<float> in(n, 0), out(n);
  for (unsigned sample : {0u, 2u}) {
    nincc::emu::Profile p;
    nincc::emu::LaunchOptions options;
    options.profile = &p;
    options.sample_per_class = sample;
    nincc::emu::launch("stencil3", dim3(8), dim3(32), 0, options, &stencil3, in.data(), out.data(), n);
    const std::string run = sample ? "sampled" : "full";
    const uint64_t halo = sample ? 15 : 16, own = sample ? 60 : 62;
    CHECK_MSG(p.counters.block_sectors_halo_x == halo && p.counters.block_sectors_private == own,
              "stencil3 " + run + ": halo_x " + std::to_string(p.counters.block_sectors_halo_x) + ", private " +
                  std::to_string(p.counters.block_sectors_private));
  }
}

void print_micro_kernel_counts() {
  for (const MicroCase& c : micro_cases()) {
    const Counters got = c.run();
    const unsigned none[3] = {0, 0, 0};  // the shapes are micro_cases()'s; the table needs only the name
    nincc::emu::write_counters_json(stdout, c.name.c_str(), none, none, got);
  }
}

}  // namespace emu_test
