// The GPUs the time model knows (runtime/profile/time-model.ts): each constant with where it comes
// from. "assumed" marks a constant no public source gives; bench/gpu/ncu.sh's measurements are how
// it gets fitted.

export interface GpuSpec {
  readonly name: string;
  /** The ptxas target whose registers and shared memory (report.txt) give its occupancy. */
  readonly arch: 'sm_80' | 'sm_90';
  readonly sms: number;
  /** Boost clock, GHz: the clock the datasheet's peak rates are quoted at. */
  readonly clockGHz: number;
  /** fp32 FMA lanes per SM (one FFMA per lane per clock). */
  readonly fp32LanesPerSm: number;
  /** Dense tensor-core peaks, TFLOP/s (an FMA is 2 FLOPs). */
  readonly bf16TensorTflops: number;
  readonly tf32TensorTflops: number;
  /** HBM bandwidth, GB/s (10^9 bytes). */
  readonly hbmGBps: number;
  /** L2 read bandwidth, bytes per clock for the whole chip. */
  readonly l2BytesPerClock: number;
  /** L2 capacity, bytes: how much a launch's blocks can reuse before it is evicted (l2-reuse-hbm.ts). */
  readonly l2Bytes: number;
  /** Shared memory serves one 128-byte wavefront per SM per clock (32 banks × 4 bytes). */
  readonly sharedWavefrontsPerSmPerClock: number;
  /** What one kernel costs beyond its work: launch and the first wave's memory round trip, µs. */
  readonly launchMicros: number;
  /** The latency a wave of blocks cannot hide when each thread has little work in flight, µs. */
  readonly waveLatencyMicros: number;
  /** Shared memory one SM can give its resident blocks, bytes (the opt-in maximum). */
  readonly sharedBytesPerSm: number;
  readonly sources: Readonly<Record<string, string>>;
}

const A100_WHITEPAPER = 'NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020)';
const A100_DATASHEET = 'NVIDIA A100 datasheet (80GB SXM)';
const H100_WHITEPAPER = 'NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022)';
const H100_DATASHEET = 'NVIDIA H100 datasheet (SXM5)';
const H200_DATASHEET = 'NVIDIA H200 datasheet (SXM)';
const LAUNCH = 'assumed: back-to-back launches on one stream cost a few µs; to fit with ncu.sh (gpu__time_duration)';
const LATENCY = 'assumed: about one DRAM round trip (~1 µs with queueing) per wave; to fit with ncu.sh';
const SM80 = 'CUDA C++ Programming Guide, compute capability 8.0: 164 KB shared memory per SM';
const SM90 = 'CUDA C++ Programming Guide, compute capability 9.0: 228 KB shared memory per SM';
const BANKS = 'CUDA C++ Programming Guide, shared memory: 32 banks of 4 bytes, one access per bank per clock';

export const GPUS: Readonly<Record<string, GpuSpec>> = {
  a100: {
    name: 'A100 SXM4 80GB',
    arch: 'sm_80',
    sms: 108,
    clockGHz: 1.41,
    fp32LanesPerSm: 64,
    bf16TensorTflops: 312,
    tf32TensorTflops: 156,
    hbmGBps: 2039,
    l2BytesPerClock: 5120,
    l2Bytes: 40 * 1024 * 1024,
    sharedWavefrontsPerSmPerClock: 1,
    launchMicros: 3,
    waveLatencyMicros: 1,
    sharedBytesPerSm: 164 * 1024,
    sources: {
      sms: A100_WHITEPAPER,
      clockGHz: `${A100_DATASHEET}: 19.5 TFLOP/s fp32 = 108 SMs × 64 lanes × 2 × 1.41 GHz`,
      fp32LanesPerSm: A100_WHITEPAPER,
      bf16TensorTflops: `${A100_DATASHEET}: 312 TFLOP/s dense`,
      tf32TensorTflops: `${A100_DATASHEET}: 156 TFLOP/s dense`,
      hbmGBps: `${A100_DATASHEET}: 2,039 GB/s`,
      l2BytesPerClock: `${A100_WHITEPAPER}: 5120 bytes/clk L2 read bandwidth (2.3× V100's at the clocks)`,
      l2Bytes: `${A100_WHITEPAPER}: 40 MB L2`,
      sharedWavefrontsPerSmPerClock: BANKS,
      launchMicros: LAUNCH,
      waveLatencyMicros: LATENCY,
      sharedBytesPerSm: SM80,
    },
  },
  h100: {
    name: 'H100 SXM5 80GB',
    arch: 'sm_90',
    sms: 132,
    clockGHz: 1.98,
    fp32LanesPerSm: 128,
    bf16TensorTflops: 989.4,
    tf32TensorTflops: 494.7,
    hbmGBps: 3350,
    l2BytesPerClock: 5120,
    l2Bytes: 50 * 1024 * 1024,
    sharedWavefrontsPerSmPerClock: 1,
    launchMicros: 3,
    waveLatencyMicros: 1,
    sharedBytesPerSm: 228 * 1024,
    sources: {
      sms: H100_WHITEPAPER,
      clockGHz: `${H100_DATASHEET}: 67 TFLOP/s fp32 = 132 SMs × 128 lanes × 2 × 1.98 GHz`,
      fp32LanesPerSm: H100_WHITEPAPER,
      bf16TensorTflops: `${H100_DATASHEET}: 1,979 TFLOP/s with sparsity, half of it dense; = 132 SMs × 4096 FLOP/clk (${H100_WHITEPAPER}: twice ${A100_WHITEPAPER}'s 1024 dense FMA/clk per SM) × 1.83 GHz, a lower clock than clockGHz, which the fp32, shared and L2 pipes use`,
      tf32TensorTflops: `${H100_DATASHEET}: 989 TFLOP/s with sparsity, half of it dense`,
      hbmGBps: `${H100_DATASHEET}: 3.35 TB/s`,
      l2BytesPerClock: 'assumed: the A100 figure (the H100 whitepaper gives none); to fit with ncu.sh',
      l2Bytes: `${H100_WHITEPAPER}: 50 MB L2`,
      sharedWavefrontsPerSmPerClock: BANKS,
      launchMicros: LAUNCH,
      waveLatencyMicros: LATENCY,
      sharedBytesPerSm: SM90,
    },
  },
  h200: {
    name: 'H200 SXM 141GB',
    arch: 'sm_90',
    sms: 132,
    clockGHz: 1.98,
    fp32LanesPerSm: 128,
    bf16TensorTflops: 989.4,
    tf32TensorTflops: 494.7,
    hbmGBps: 4800,
    l2BytesPerClock: 5120,
    l2Bytes: 50 * 1024 * 1024,
    sharedWavefrontsPerSmPerClock: 1,
    launchMicros: 3,
    waveLatencyMicros: 1,
    sharedBytesPerSm: 228 * 1024,
    sources: {
      sms: `${H200_DATASHEET}: the H100's GH100 chip (same compute figures)`,
      clockGHz: `${H200_DATASHEET}: 67 TFLOP/s fp32, as H100 SXM`,
      fp32LanesPerSm: H100_WHITEPAPER,
      bf16TensorTflops: `${H200_DATASHEET}: 1,979 TFLOP/s with sparsity, half of it dense`,
      tf32TensorTflops: `${H200_DATASHEET}: 989 TFLOP/s with sparsity, half of it dense`,
      hbmGBps: `${H200_DATASHEET}: 4.8 TB/s HBM3e`,
      l2BytesPerClock: 'assumed: the A100 figure; to fit with ncu.sh',
      l2Bytes: `${H200_DATASHEET}: the H100's GH100 chip, 50 MB L2 (${H100_WHITEPAPER})`,
      sharedWavefrontsPerSmPerClock: BANKS,
      launchMicros: LAUNCH,
      waveLatencyMicros: LATENCY,
      sharedBytesPerSm: SM90,
    },
  },
};

export function gpuNamed(name: string): GpuSpec {
  const gpu = GPUS[name.toLowerCase()];
  if (!gpu) throw new Error(`unknown GPU '${name}': one of ${Object.keys(GPUS).join(', ')}`);
  return gpu;
}
