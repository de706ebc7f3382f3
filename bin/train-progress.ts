// How `nincc train` shows a run: the trainer's events drawn as a progress bar and summary lines on stderr.
import type { SkipReport } from '../runtime/dataset.js';
import { progressBar, type ProgressBar } from '../runtime/progress.js';
import type { TrainEvent } from '../runtime/trainer.js';

function describeSkips(what: string, r: SkipReport): string {
  const names = [...r.files].slice(0, 5).map(([f, why]) => `${f} (${why})`);
  const more = r.files.size > names.length ? `, and ${r.files.size - names.length} more` : '';
  return `${r.count} unreadable ${what} file${r.count === 1 ? '' : 's'}: ${names.join('; ')}${more}`;
}

const percent = (x: number | undefined) => (x === undefined ? '' : `${(100 * x).toFixed(2)}%`);

/** An onEvent handler; with `quiet` only what must always be said (resume points, skipped files, removed files) is written. */
export function trainProgress(stream: NodeJS.WriteStream, quiet: boolean): (e: TrainEvent) => void {
  let bar: ProgressBar | undefined;
  let epochs = 0;
  return (e) => {
    switch (e.kind) {
      case 'removed-stale':
        stream.write(`removed ${e.files.length} temporary checkpoint file${e.files.length === 1 ? '' : 's'} a killed run left behind: ${e.files.join(', ')}\n`);
        break;
      case 'resumed':
        stream.write(e.afterStep !== undefined ? `resuming from ${e.checkpoint} in epoch ${e.epoch} after step ${e.afterStep}\n` : `resuming from ${e.checkpoint} after epoch ${e.epoch - 1}\n`);
        break;
      case 'no-checkpoint':
        if (!quiet) stream.write(`no checkpoint in ${e.runDir} yet: starting from epoch 1\n`);
        break;
      case 'epoch-start':
        epochs = e.epochs;
        bar = progressBar(`epoch ${e.epoch}/${e.epochs}`, e.steps, stream, quiet);
        break;
      case 'step':
        bar?.update(e.step, { loss: e.loss.toFixed(4), lr: String(e.lr), 'img/s': e.imagesPerSecond.toFixed(0) });
        break;
      case 'stopped':
        bar?.finish(`stopped in epoch ${e.epoch} after step ${e.step} of ${e.steps}; checkpoint ${e.checkpoint} (continue with --resume)`);
        break;
      case 'epoch-end': {
        const r = e.record;
        const test = r.evaluated > 0 ? `test top-1 ${percent(r.top1)} top-5 ${percent(r.top5)} on ${r.evaluated} images` : 'no test pass';
        bar?.finish(`epoch ${r.epoch}/${epochs}: loss ${r.loss.toFixed(4)}, train top-1 ${percent(r.trainTop1)}, ${test}, ${r.imagesPerSecond.toFixed(0)} img/s, ${r.seconds.toFixed(1)} s`);
        break;
      }
      case 'skipped':
        // Always said, even with --quiet: a skipped file is data the run did not see.
        stream.write(`epoch ${e.epoch}: skipped ${describeSkips(e.what, e.report)} ${e.what === 'training' ? '(each replaced by another image)' : '(not scored)'}\n`);
        break;
    }
  };
}
