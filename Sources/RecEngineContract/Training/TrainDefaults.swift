/// Defaults of `recengine train` that a pipeline's built-in stages show and pass on.
public enum TrainDefaults {
    /// `--alpha` of implicit ALS: a pair with `n` events has confidence `1 + alpha * ln(1 + n)`.
    public static let alsAlpha = 10.0
    /// SVD's epochs and implicit ALS's iterations: what successive halving's last round trains
    /// for when a tune stage's space names no epochs.
    public static let svdEpochs = 20
    public static let alsIterations = 15
}
