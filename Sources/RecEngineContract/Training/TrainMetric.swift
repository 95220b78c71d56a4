/// The metrics `recengine train --output json` reports, which a pipeline's gates may bound (the
/// rating errors are an SVD model's only).
public enum TrainMetric: String, Sendable, CaseIterable {
    case trainRMSE = "train_rmse"
    case trainMAE = "train_mae"
    case baselineTrainRMSE = "baseline_train_rmse"
    case fitSeconds = "fit_seconds"
}
