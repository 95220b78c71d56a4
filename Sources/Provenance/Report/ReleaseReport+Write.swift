import DurableFiles
public import Foundation
import OrchestratorSupport

extension ReleaseReport {
    /// The files a report is written as.
    public static let files = ["report.html", "report.md", "report.json"]

    /// The report as JSON (what `report.json` holds and `--output json` prints), keys in
    /// snake_case as in the release record.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = NonFiniteNumbers.encoding
        return try encoder.encode(self)
    }

    /// Where `orchestrate run` writes a release's report: `reports/RELEASE_ID/` beside the history.
    ///
    /// - Throws: `.invalidInput` when the release id cannot name a folder (a hostile record).
    public static func folder(history: String, releaseID: String) throws -> String {
        let safe =
            !releaseID.isEmpty && !releaseID.hasPrefix(".") && releaseID.count <= 200
            && releaseID.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0))
            }
        guard safe else {
            throw OrchestratorError(
                .invalidInput, "the release id \(releaseID.debugDescription) cannot name a report folder",
                hint: "give the folder with --out")
        }
        let parent = (history as NSString).deletingLastPathComponent
        return (parent.isEmpty ? "." : parent) + "/reports/" + releaseID
    }

    /// Writes `report.html`, `report.md` and `report.json` into `folder` (created if missing),
    /// each atomically: a reader sees a whole file or none.
    ///
    /// - Returns: the paths written.
    /// - Throws: `.fileSystem` (exit 1) naming the folder and why.
    @discardableResult
    public func write(to folder: String) throws -> [String] {
        let contents = try [Data(html().utf8), Data(markdown().utf8), json()]
        var written: [String] = []
        do {
            try AtomicFile.createFolder(folder)
            for (name, data) in zip(Self.files, contents) {
                let path = folder + "/" + name
                try AtomicFile.write(data, to: path)
                written.append(path)
            }
        } catch let error as AtomicFileError {
            throw OrchestratorError(
                .fileSystem, "cannot write the report to \(folder): \(error)",
                hint: "choose a folder that can be written with --out", cause: error)
        }
        return written
    }
}
