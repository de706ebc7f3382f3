// Whether this machine can run the cuda device tests, and if not, why (printed by each GPU test file).
import { findNvcc } from '../../compiler/backends/cuda/toolchain.js';
import { loadNative } from '../../runtime/native.js';

export function cudaSkipReason(device: 'cuda' | 'emu' = 'cuda'): string | undefined {
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
