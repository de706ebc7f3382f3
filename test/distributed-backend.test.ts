// The reduction backend's host side, in process (docs/distributed.md#nccl): which library a device's
// gradients go to, the refusal of NCCL for host memory, and the error naming what to install where
// libnccl.so.2 is absent. The unique-id exchange runs under mpirun in test/distributed-train.test.ts
// (test/distributed/gradient-rank.mjs, MPI standing in for NCCL); NCCL itself in test/gpu/distributed-nccl.test.ts.
import { describe, expect, it } from 'vitest';
import { backendFor, openBackend } from '../runtime/distributed/backend.js';
import type { Communicator } from '../runtime/distributed/communicator.js';
import { loadNative } from '../runtime/native.js';
import { trainCommand } from '../bin/commands/train.js';
import { nincc } from './cli-run.js';

/** One rank alone: its allgather gives back its own bytes. */
const alone: Communicator = {
  rank: 0,
  size: 1,
  allreduceSum: () => {},
  allgather: (bytes) => [Uint8Array.from(bytes)],
  barrier: () => {},
  finalize: () => {},
  abort: (code) => {
    throw new Error(`abort(${code})`);
  },
};

describe('reduction backend', () => {
  it('NCCL for a cuda arena, MPI for host memory; --reduce-with mpi stages a cuda arena through the host; NCCL on host memory is refused', () => {
    expect(backendFor('cuda')).toBe('nccl');
    expect(backendFor('cpu')).toBe('mpi');
    expect(backendFor('emu')).toBe('mpi');
    expect(backendFor('cuda', 'mpi')).toBe('mpi');
    expect(() => backendFor('cpu', 'nccl')).toThrow(/NCCL reduces GPU memory, and a cpu model's gradients are in host memory/);
  });

  it('opens NCCL with the id rank 0 made, and MPI without touching NCCL', () => {
    const calls: string[] = [];
    const id = new Uint8Array(128).map((_, i) => i + 1);
    const nccl = {
      uniqueId: () => (calls.push('uniqueId'), id),
      init: (rank: number, size: number, got: Uint8Array) => void calls.push(`init ${rank} ${size} ${Buffer.from(got).equals(Buffer.from(id))}`),
    };
    expect(openBackend(alone, 'cpu', nccl)).toBe('mpi');
    expect(calls).toEqual([]);
    expect(openBackend(alone, 'cuda', nccl)).toBe('nccl');
    expect(calls).toEqual(['uniqueId', 'init 0 1 true']);
    const short = { ...nccl, uniqueId: () => new Uint8Array(16) };
    expect(() => openBackend(alone, 'cuda', short)).toThrow('rank 0 made 16 bytes to share, not 128');
  });

  it('without libnccl.so.2 the runtime names what to install', () => {
    const before = process.env.NINCC_NCCL_LIBRARY;
    process.env.NINCC_NCCL_LIBRARY = 'libnccl-absent.so.2';
    try {
      expect(() => loadNative().nccl.uniqueId()).toThrow(/a distributed run on cuda reduces with NCCL, and libnccl-absent\.so\.2 could not be loaded .*install NCCL 2\.11 or later: apt-get install libnccl2/);
      expect(() => loadNative().nccl.init(0, 1, new Uint8Array(128))).toThrow(/install NCCL/);
    } finally {
      if (before === undefined) delete process.env.NINCC_NCCL_LIBRARY;
      else process.env.NINCC_NCCL_LIBRARY = before;
    }
  });
});

describe('nincc train --gpu-per-rank', () => {
  it('is listed by --help and refuses a list that is not GPU ordinals (the runtime checks them against the GPUs: ctest nincc_cuda_ranks)', () => {
    // What --help prints, without a process of its own.
    expect(trainCommand.usage).toContain('[--gpu-per-rank LIST]');
    expect(trainCommand.options['gpu-per-rank']?.help).toMatch(/^on cuda: the GPU of each rank on a machine by local rank/);
    expect(nincc(['train', 'models/nin-fashion.model', '--data', 'fashion-mnist', '--gpu-per-rank', '0,a'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--gpu-per-rank must list a GPU ordinal per local rank, e.g. 0,1, got '0,a'"),
    });
  });
});
