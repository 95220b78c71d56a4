/// Defaults of `recengine train` that a pipeline's built-in train stage shows and passes on.
public enum TrainDefaults {
    /// `--alpha` of implicit ALS: a pair with `n` events has confidence `1 + alpha * ln(1 + n)`.
    public static let alsAlpha = 10.0
}
