/// The metrics `recengine split --output json` reports, which a pipeline's gates may bound.
public enum SplitMetric: String, Sendable, CaseIterable {
    case trainRatings = "train_ratings"
    case testRatings = "test_ratings"
    case futureRatings = "future_ratings"
}
