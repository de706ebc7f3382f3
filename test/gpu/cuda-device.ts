// Whether this machine can run the cuda device tests, and if not, why (printed by each GPU test file).
import { findNvcc } from '../../compiler/backends/cuda/toolchain.js';
import { loadNative } from '../../runtime/native.js';

/**
 * Why the GPU tests would skip here, or undefined when they can run. With NINCC_REQUIRE_GPU=1 (a GPU
 * machine's CI, bench/gpu/run.sh) a reason to skip is an error instead: a skipped suite must not pass there.
 */
export function cudaSkipReason(device: 'cuda' | 'emu' = 'cuda'): string | undefined {
  const reason = whyNoDevice(device);
  if (reason !== undefined && process.env.NINCC_REQUIRE_GPU === '1') throw new Error(`NINCC_REQUIRE_GPU=1, but the ${device} tests cannot run: ${reason}`);
  return reason;
}

function whyNoDevice(device: 'cuda' | 'emu'): string | undefined {
  const nvcc = findNvcc();
  if (!nvcc.nvcc) return `no nvcc to build --target cuda (${nvcc.reason})`;
  let native;
  try {
    native = loadNative();
  } catch (e) {
    return (e as Error).message;
  }
  if (native.devices().includes(device)) return undefined;
  // Creating the device says why it is missing (no driver, no GPU) and what is available.
  try {
    native.load('/nonexistent', 'cuda');
  } catch (e) {
    return (e as Error).message;
  }
  return 'the runtime lists no cuda device';
}
