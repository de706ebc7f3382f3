// chevrotain's values, loaded from the single-file ESM bundle the package ships (lib/chevrotain.mjs). Its
// package entry (lib/src/api.js) imports its own modules and lodash-es's, one file each: importing
// it took 2.1–3.3 s of every `nincc` process on a loaded 2-core machine, the bundle 0.2 s (bench/RESULTS.md
// "ciT: CI time"). Every module of grammar/ takes chevrotain's values from here (one copy of its classes);
// types still come from 'chevrotain'. A chevrotain without the bundle falls back to its entry (test/chevrotain-bundle).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

type Chevrotain = typeof import('chevrotain');

/** The bundle beside the package's entry (require's condition of its exports, lib/src/api.js). */
export const chevrotainBundle = join(dirname(createRequire(import.meta.url).resolve('chevrotain')), '..', 'chevrotain.mjs');
const chevrotain = (await (existsSync(chevrotainBundle) ? import(pathToFileURL(chevrotainBundle).href) : import('chevrotain'))) as Chevrotain;

export const { CstParser, createToken, EOF, Lexer } = chevrotain;
