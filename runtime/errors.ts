// The errors the nincc API throws, each with a stable `code` to branch on (messages may change).
// Argument mistakes extend TypeError/RangeError as built-in APIs' do; everything else extends NinccError.

export const ErrorCodes = {
  /** an argument of the wrong type, or null where an object was expected */
  invalidArgument: 'ERR_NINCC_INVALID_ARGUMENT',
  /** a number, size or label outside what the model accepts */
  outOfRange: 'ERR_NINCC_OUT_OF_RANGE',
  /** a call on a model after dispose() */
  disposed: 'ERR_NINCC_DISPOSED',
  /** a synchronous call (getTensor, setTensor, …) while an asynchronous one is running */
  busy: 'ERR_NINCC_BUSY',
  /** trainStep on an artifact without training programs */
  notTrainable: 'ERR_NINCC_NOT_TRAINABLE',
  /** a checkpoint that is missing or does not fit the model */
  weights: 'ERR_NINCC_WEIGHTS',
  /** an artifact directory that cannot be loaded, or a failure inside the native runtime */
  runtime: 'ERR_NINCC_RUNTIME',
  /** the artifact's cpu kernels need CPU features this machine lacks (plan.json cpuFeatures) */
  cpu: 'ERR_NINCC_CPU',
  /** the native addon is not built or does not load */
  addon: 'ERR_NINCC_ADDON',
  /** a spec with errors given to build() */
  spec: 'ERR_NINCC_SPEC',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Every nincc error that is not an argument mistake. */
export class NinccError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NinccError';
    this.code = code;
  }
}

export class InvalidArgumentError extends TypeError {
  readonly code = ErrorCodes.invalidArgument;
  override name = 'InvalidArgumentError';
}

export class OutOfRangeError extends RangeError {
  readonly code = ErrorCodes.outOfRange;
  override name = 'OutOfRangeError';
}

/** True for any error nincc raised on purpose (all carry a code starting ERR_NINCC_). */
export function isNinccError(e: unknown): e is Error & { code: ErrorCode } {
  if (!(e instanceof Error) || !('code' in e)) return false;
  return typeof e.code === 'string' && e.code.startsWith('ERR_NINCC_');
}

/** An error from the native addon as a NinccError (its TypeErrors are argument mistakes). */
export function fromNative(e: unknown): Error {
  if (!(e instanceof Error)) return new NinccError(ErrorCodes.runtime, String(e));
  if (e instanceof NinccError || e instanceof InvalidArgumentError || e instanceof OutOfRangeError) return e;
  if (e instanceof TypeError) return new InvalidArgumentError(e.message, { cause: e });
  return new NinccError(ErrorCodes.runtime, e.message, { cause: e });
}
