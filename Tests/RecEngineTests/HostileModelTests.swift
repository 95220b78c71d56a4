import Crypto
import Foundation
import RecEngineContract
import Testing

@testable import RecEngine

/// Model directories written by someone else: every malformed number, id or file is refused at
/// load with a message naming the file and what is wrong, never a crash (issue 13).
@Suite struct HostileModelTests {
    /// Saves a small trained model in `folder/model`, lets `damage` alter it, and returns the load error.
    func loadError(after damage: (String) throws -> Void) async throws -> RecEngineError? {
        try await withTemporaryDirectory { folder in
            let (model, _) = try ModelDirectoryTests.trainedModel(in: folder)
            try ModelDirectory.save(model, to: folder + "/model")
            try damage(folder + "/model")
            return #expect(throws: RecEngineError.self) { try ModelDirectory.load(from: folder + "/model") }
        }
    }

    /// Writes `bytes` as the model's tensors and records their digest in the manifest, as an
    /// attacker (or a buggy writer) would, so that the load gets past the digest check.
    static func replaceTensors(in folder: String, with bytes: Data) throws {
        try bytes.write(to: URL(fileURLWithPath: folder + "/" + ModelFiles.tensors))
        try editManifestText(in: folder) {
            $0.replacingOccurrences(
                of: #""model_sha256" : "[0-9a-f]+""#,
                with: "\"model_sha256\" : \"\(SHA256.hash(data: bytes).hexString)\"",
                options: .regularExpression)
        }
    }

    static func editManifestText(in folder: String, _ edit: (String) -> String) throws {
        let path = folder + "/" + ModelFiles.manifest
        try write(edit(try String(contentsOfFile: path, encoding: .utf8)), to: path)
    }

    /// A safetensors file with the given header text (padded to 8 bytes) and data section.
    static func safetensors(header: String, data: Data = Data(), length: UInt64? = nil) -> Data {
        var header = header
        while header.utf8.count % 8 != 0 { header += " " }
        var bytes = Data()
        var encodedLength = (length ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &encodedLength) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: header.utf8)
        bytes.append(data)
        return bytes
    }

    /// Each hostile safetensors header, and the part of the message that names the problem.
    @Test(arguments: [
        (
            "{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}",
            "has shape [4611686018427387904, 4]"
        ),
        (
            "{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}",
            "has shape [2305843009213693952] but 4 bytes"
        ),
        ("{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[-1,-4],\"data_offsets\":[0,4]}}", "has shape [-1, -4]"),
        (
            "{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[-8,4]}}",
            "lies outside the file (bytes -8..<4"
        ),
        (
            "{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,9223372036854775807]}}",
            "lies outside the file"
        ),
        (
            "{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[9223372036854775800,9223372036854775807]}}",
            "lies outside the file"
        ),
        ("{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[1e30],\"data_offsets\":[0,4]}}", "malformed header entry"),
        ("{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "malformed header entry"),
        ("{\"global_mean\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]}}", "has dtype F64"),
        ("[1, 2]", "not a JSON object"),
        ("{\"global_mean\":", "not valid JSON"),
    ])
    func hostileHeadersAreRefused(header: String, expected: String) async throws {
        let error = try await loadError { folder in
            try Self.replaceTensors(in: folder, with: Self.safetensors(header: header, data: Data(count: 4)))
        }
        #expect(error?.code == .corruptModel)
        #expect(error?.location?.hasSuffix("model.safetensors") == true)
        #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
    }

    @Test(arguments: [UInt64.max, UInt64(Int64.max), 1 << 40, 200_000_000])
    func aHeaderLengthBeyondTheFileIsRefused(length: UInt64) async throws {
        let error = try await loadError { folder in
            try Self.replaceTensors(in: folder, with: Self.safetensors(header: "{}", length: length))
        }
        #expect(error?.message.contains("the header claims \(length) bytes") == true, "\(String(describing: error))")
    }

    /// The model's own tensors with one header entry changed: the bytes are all there, the meaning is wrong.
    func rewrittenHeaderError(_ edit: (inout [String: [String: Any]]) -> Void) async throws -> RecEngineError? {
        try await loadError { folder in
            let bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + ModelFiles.tensors))
            let headerLength = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let object = try JSONSerialization.jsonObject(with: bytes[8..<(8 + headerLength)]) as? [String: Any] ?? [:]
            var entries = object.compactMapValues { $0 as? [String: Any] }
            edit(&entries)
            let header = String(decoding: try JSONSerialization.data(withJSONObject: entries), as: UTF8.self)
            try Self.replaceTensors(
                in: folder, with: Self.safetensors(header: header, data: bytes[(8 + headerLength)...]))
        }
    }

    @Test func aTensorWithTheWrongDtypeIsRefused() async throws {
        let error = try await rewrittenHeaderError { $0["rated_items"]?["dtype"] = "F32" }
        #expect(error?.message == "tensor rated_items has dtype F32, expected I32", "\(String(describing: error))")
    }

    @Test func aShapeThatDisagreesWithTheManifestsIdsNamesTheCount() async throws {
        let error = try await rewrittenHeaderError { entries in
            // 30 items by 5 factors read as 15 by 10: the same bytes, another shape.
            entries["item_factors"]?["shape"] = [15, 10]
        }
        #expect(
            error?.message
                == "tensor item_factors is F32[15, 10], expected F32[30, 5] (manifest.json lists 30 item ids)",
            "\(String(describing: error))")
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteParametersAreRefusedNamingTheTensorAndTheCount(value: Float) async throws {
        let error = try await loadError { folder in
            var bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + ModelFiles.tensors))
            let headerLength = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let header = try JSONSerialization.jsonObject(with: bytes[8..<(8 + headerLength)]) as? [String: Any]
            let offsets = try #require((header?["user_factors"] as? [String: Any])?["data_offsets"] as? [Int])
            for index in [0, 3, 7] {
                let position = 8 + headerLength + offsets[0] + index * 4
                bytes.replaceSubrange(position..<(position + 4), with: SafeTensors.floats([value]))
            }
            try Self.replaceTensors(in: folder, with: bytes)
        }
        #expect(
            error?.message == "tensor user_factors holds 3 non-finite values (NaN or infinite) of 200",
            "\(String(describing: error))")
    }

    @Test func aManifestThatRepeatsAnIdIsRefused() async throws {
        let error = try await loadError { folder in
            try Self.editManifestText(in: folder) { $0.replacingOccurrences(of: "\"u1\"", with: "\"u0\"") }
        }
        #expect(
            error?.message == "user_ids lists \"u0\" more than once: each id must name one row",
            "\(String(describing: error))")
        #expect(error?.location?.hasSuffix("manifest.json") == true)
    }

    @Test(arguments: ["this is not JSON", "", "[]", "{\"format_version\": \"1\"}"])
    func aManifestThatIsNotTheManifestIsRefused(text: String) async throws {
        let error = try await loadError { folder in try write(text, to: folder + "/manifest.json") }
        #expect(error?.message.hasPrefix("manifest.json does not parse") == true, "\(String(describing: error))")
    }

    @Test(arguments: [Int.max, -1, 4097])
    func factorsOutsideTheirRangeAreRefused(factors: Int) async throws {
        let error = try await loadError { folder in
            try Self.editManifestText(in: folder) {
                $0.replacingOccurrences(of: #""factors" : 5"#, with: "\"factors\" : \(factors)")
            }
        }
        #expect(error?.message == "parameters.factors is \(factors), outside 0...4096", "\(String(describing: error))")
    }

    @Test func filesThatAreNotRegularAreRefusedWithoutReading() async throws {
        let fifo = try await loadError { folder in
            try FileManager.default.removeItem(atPath: folder + "/model.safetensors")
            #expect(mkfifo(folder + "/model.safetensors", 0o644) == 0)
        }
        #expect(
            fifo?.message.contains(
                "cannot read model.safetensors: it is not a regular file (a FIFO, a device or a folder)") == true,
            "\(String(describing: fifo))")
        let device = try await loadError { folder in
            try FileManager.default.removeItem(atPath: folder + "/manifest.json")
            try FileManager.default.createSymbolicLink(
                atPath: folder + "/manifest.json", withDestinationPath: "/dev/zero")
        }
        #expect(
            device?.message.contains(
                "cannot read manifest.json: it is not a regular file (a FIFO, a device or a folder)") == true,
            "\(String(describing: device))")
        let huge = try await loadError { folder in
            // A sparse file: its size, not its bytes, is what is refused.
            #expect(truncate(folder + "/model.safetensors", off_t(ModelDirectory.maximumTensorsSize) + 1) == 0)
        }
        #expect(
            huge?.message == "cannot read model.safetensors: it is larger than 2048 MiB, the most read",
            "\(String(describing: huge))")
    }

    @Test func evaluatingAModelWhosePredictionsAreNotNumbersFails() async throws {
        try await withTemporaryDirectory { folder in
            let (trained, file) = try ModelDirectoryTests.trainedModel(in: folder)
            var model = trained
            model.model.globalMean = .nan
            let error = #expect(throws: RecEngineError.self) { try Evaluation.evaluate(model, on: file.ratings) }
            #expect(error?.code == .nonFiniteMetric)
            #expect(
                error?.message.hasPrefix(
                    "the evaluation computed mae = nan, rmse = nan, rmse_improvement = nan: not a finite number")
                    == true, "\(String(describing: error))")
        }
    }

    @Test func anyRecommendationCountIsBoundedToTheItems() async throws {
        try await withTemporaryDirectory { folder in
            let (model, _) = try ModelDirectoryTests.trainedModel(in: folder)
            let known = model.recommend(user: "u3", count: .max)
            #expect(
                known.items.count == model.itemIDs.count
                    - model.ratedItems(of: try #require(model.userIndex(of: "u3"))).count)
            #expect(model.recommend(user: "nobody", count: .max).items.count == model.itemIDs.count)
            #expect(model.recommend(user: "u3", count: -1).items.isEmpty)
            #expect(model.recommend(user: "nobody", count: .min).items.isEmpty)
        }
    }

    @Test func savingAModelWithNonFiniteParametersLeavesTheOldOneWhole() async throws {
        try await withTemporaryDirectory { folder in
            let (model, _) = try ModelDirectoryTests.trainedModel(in: folder)
            try ModelDirectory.save(model, to: folder + "/model")
            let before = try RecEngineCommandLineTests.snapshot(folder)
            var broken = model
            broken.model.itemBias[2] = .infinity
            let error = #expect(throws: RecEngineError.self) { try ModelDirectory.save(broken, to: folder + "/model") }
            #expect(
                error?.message
                    == "the new model was not saved (what was there is unchanged): tensor item_bias holds 1 non-finite values (NaN or infinite) of 30"
            )
            #expect(
                try RecEngineCommandLineTests.snapshot(folder) == before,
                "the old files byte for byte, no partial folder left")
        }
    }
}
