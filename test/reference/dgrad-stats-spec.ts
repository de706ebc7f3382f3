// The spec of the data gradients' statistics-epilogue tests (test/emu-conv-mma-dgrad-stats-*.test.ts): a 3×3 conv then
// 1×1 convs of 24 → 40 → 36 channels on an H×W plane, each with BN+ReLU, so both 1×1 data gradients rebuild dY' and
// write the input BN's partials; 40 and 36 channels leave n8 tiles past C.
export const dgradStatsSpec = (name: string, h: number, w: number, classes: number) => `model ${name} {
  input 5x${h}x${w}
  conv(5, 24, 3, 3, 1, 1, 1, 1)  bn(24)  relu
  conv(24, 40, 1, 1, 1, 1, 0, 0)  bn(40)  relu
  conv(40, 36, 1, 1, 1, 1, 0, 0)  bn(36)  relu
  avgpool(${w}, ${h})  view(-1)  linear(36, ${classes})  logsoftmax
}`;
