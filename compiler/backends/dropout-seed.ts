// The dropout seed of a layer, shared by the cpu and cuda renderers: a cross-device bit-exact contract
// (docs/design.md §5), so it is written once. The call's seed is salted by the layer's index so two
// dropout layers draw different masks from one call seed; the mask itself is nincc::dropout_keeps
// (runtime/include/nincc/cpu/dropout.h) over that seed and the batch-flat element index.
export const dropoutSeedCpp = (callSeed: string, layer: number): string => `${callSeed} ^ (0x9E3779B97F4A7C15ull * ${layer}ull)`;
