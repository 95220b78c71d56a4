/// The metrics `recengine ingest --format ratings --output json` reports (a ratings file checked
/// and copied), which a pipeline's gates may bound.
public enum RatingsImportMetric: String, Sendable, CaseIterable {
    case ratings, users, items
    case skippedRows = "skipped_rows"
    case skippedShare = "skipped_share"
}
