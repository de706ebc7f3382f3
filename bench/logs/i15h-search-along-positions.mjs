import { run, geoms, natural, rotated, rotated2, rotated3, words3 } from './i15h-sim.mjs';
import { paddedRows, paddedColumns } from '../../dist/compiler/backends/cuda/conv-mma-wgrad-halo.js';
const [gname, sname, allGaps] = process.argv.slice(2);
const g = geoms[gname], scheme = { natural, rotated, rotated2, rotated3, words3 }[sname];
const rows = paddedRows(g), columns = paddedColumns(g);
let best = null;
const gaps = allGaps ? Array.from({ length: 64 }, (_, i) => i) : [0];
for (const imageGap of gaps) for (let r = 16; r < 80; r += 2) {
  const layout = { rows, columns, imageGap, planeResidue: r % 64 };
  const res = run(g, layout, scheme);
  if (!best || res.extra < best.extra) { best = { ...res, imageGap, planeResidue: r % 64 }; console.log(JSON.stringify(best), (best.wf / best.n).toFixed(3)); }
  if (best.extra === 0) break;
}
