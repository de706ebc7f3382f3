// A batch stream gathered into copies of its images and labels, so two readers' streams can be compared.
import type { Batch } from '../../runtime/dataset.js';

export async function collect(it: AsyncIterable<Batch>): Promise<{ images: Float32Array[]; labels: number[][] }> {
  const images: Float32Array[] = [];
  const labels: number[][] = [];
  for await (const b of it) {
    images.push(b.images.slice());
    labels.push([...b.labels]);
  }
  return { images, labels };
}
