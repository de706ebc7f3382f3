// How far two runs of the tiny image spec on the same images may differ in loss when their crops differ only by
// re-encoding (a packed set against its folder) or by rounding (uint8 crops normalised in the first conv against float crops).
/** Relative loss differences: training runs drift apart step by step; one evaluation of the same weights does not. */
export const TRAIN_LOSS_GAP = 0.05;
export const EVAL_LOSS_GAP = 0.005;
