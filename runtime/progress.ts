// A progress bar for long work on stderr: redrawn in place on a terminal, a line every 10% otherwise.

export interface ProgressBar {
  update(done: number, fields?: Record<string, string>): void;
  finish(summary: string): void;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x: number) => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

export function progressBar(label: string, total: number, stream: NodeJS.WriteStream = process.stderr, quiet = false): ProgressBar {
  const started = Date.now();
  const tty = stream.isTTY === true;
  let lastDraw = 0;
  let lastDecile = -1;
  const render = (done: number, fields: Record<string, string>) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const elapsed = (Date.now() - started) / 1000;
    const eta = done > 0 ? (elapsed / done) * (total - done) : NaN;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (frac < 1 ? '>' : '=') : ''}${' '.repeat(width - filled)}]`;
    const extra = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join('  ');
    return `${label} ${bar} ${done}/${total}  ${extra}  ${clock(elapsed)}<${clock(eta)}`;
  };
  return {
    update(done, fields = {}) {
      if (quiet) return;
      const now = Date.now();
      if (tty) {
        if (now - lastDraw < 100 && done < total) return;
        lastDraw = now;
        stream.write(`\r${render(done, fields)}\x1b[K`);
      } else {
        const decile = Math.floor((done / Math.max(1, total)) * 10);
        if (decile === lastDecile) return;
        lastDecile = decile;
        stream.write(`${render(done, fields)}\n`);
      }
    },
    finish(summary) {
      if (quiet) return;
      stream.write(`${tty ? '\r\x1b[K' : ''}${summary}\n`);
    },
  };
}
