// The task every JS pool runs: the same trivial add as knit's `math.add`.
export default ([a, b]) => a + b;
