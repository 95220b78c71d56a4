import Foundation

/// The memory an EASE training needs, which grows with the square of the catalogue: arithmetic on
/// the item count, so that `recengine` refuses a catalogue before any work and a pipeline's
/// `validate` before any stage runs, with the same numbers and message.
public enum EASEMemory {
    /// Bytes the training needs at its peak for `items` items: the Gram matrix, its factor and the
    /// inverse share one `items²` matrix of doubles, and the weights are `items²` floats.
    public static func estimate(items: Int) -> Int {
        let square = items.multipliedReportingOverflow(by: items)
        guard !square.overflow, square.partialValue <= Int.max / 16 else { return .max }
        return square.partialValue * 12
    }

    /// The most memory an EASE training may take: half of the machine's physical memory (the rest
    /// for the process's other data, and for everything else the machine runs).
    public static var limit: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return 4 << 30 }
        return pages.multipliedReportingOverflow(by: pageSize).overflow ? .max / 2 : pages * pageSize / 2
    }

    /// - Throws: `RecEngineError` `.tooLarge` with the estimate and the limit when `items` items
    ///   would need more than `limit` bytes.
    public static func requireFits(items: Int, limit: Int = Self.limit, location: String? = nil) throws {
        let estimate = Self.estimate(items: items)
        guard estimate > limit else { return }
        throw RecEngineError(
            .tooLarge,
            "EASE on \(items) items needs about \(mebibytes(estimate)) MiB (12 bytes per item pair), above this machine's limit of \(mebibytes(limit)) MiB (half its physical memory)",
            location: location,
            hint:
                "keep the items with the most interactions (at most \(largestCatalogue(limit: limit)) items fit), or train --algorithm als, whose memory grows with the data rather than the catalogue's square; nothing was trained"
        )
    }

    /// The most items whose estimate fits `limit`.
    public static func largestCatalogue(limit: Int) -> Int {
        Int((Double(limit) / 12).squareRoot())
    }

    private static func mebibytes(_ bytes: Int) -> Int {
        bytes == .max ? .max : (bytes + (1 << 20) - 1) >> 20
    }
}
