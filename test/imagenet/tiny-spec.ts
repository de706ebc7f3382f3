// The tiny 3x32x32 classifier the ImageNet-folder and packed-dataset CLI tests build (one spec, so the
// kernel cache compiles it once for both files).
export const TINY_IMAGE_SPEC = `# A tiny classifier for the ImageNet-folder and packed-dataset tests: 3x32x32 crops of images scaled to 40.
model tiny {
  input 3x32x32
  imageSize 40
  transform { mean 0.5 0.45 0.4  std 0.25 0.25 0.25 }
  conv(3, 8, 3, 3, 2, 2, 1, 1)  bn(8, 1e-3)  relu
  maxpool(2, 2, 2, 2)
  conv(8, 16, 3, 3, 1, 1, 1, 1)  bn(16, 1e-3)  relu
  avgpool(8, 8, 1, 1)  view(-1)  linear(16, 3)  logsoftmax
}
train {
  batch 4  epochs 3  epochSize 2  criterion nll
  optimizer sgd { momentum 0.9 }
  regime {
    epochs 1..1  lr 1e-1  wd 5e-4
    epochs 2..3  lr 1e-2  wd 0
  }
}
`;
