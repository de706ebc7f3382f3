// report.txt of a spec as `nincc build` writes it, made without compiling anything (the compile
// commands read '(not compiled)'): for tests of what the report says, at no g++/nvcc cost.
import { compileModel, compileSpec, type Compiled } from '../../compiler/pipeline.js';
import { buildReport } from '../../compiler/report/build-report.js';

export function reportOnly(name: string, source: string, target: 'cpu' | 'emu', maxBatch = 4): { report: string; compiled: Compiled } {
  const r = compileSpec(source, `${name}.model`, { device: target });
  if (!r.model) throw new Error(`${name}: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join('; ')}`);
  const compiled = compileModel(r.model, { target, maxBatch, sourceHash: name, libraries: {}, cpuFeatures: [] });
  return { report: buildReport(r.model, compiled, '(not compiled)'), compiled };
}
