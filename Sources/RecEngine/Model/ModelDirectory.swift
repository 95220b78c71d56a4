import Crypto
import Foundation
import DurableFiles

/// A model directory: `model.safetensors` (the tensors) and `manifest.json` (ids, parameters,
/// provenance, metrics and the model file's SHA-256).
public enum ModelDirectory {
    public static let tensorsFile = "model.safetensors"
    public static let manifestFile = "manifest.json"

    /// Writes the model; the tensors first, then the manifest that names their digest, each
    /// atomically, so a reader never pairs a manifest with tensors it does not describe.
    ///
    /// - Returns: the manifest as written, with the model digest filled in.
    @discardableResult
    ///
    /// The files are written into a folder beside `directory` and swapped in at the end, so that a
    /// save that fails or is killed part way leaves the model that was there whole.
    public static func save(_ model: RecommenderModel, to directory: String) throws -> ModelManifest {
        let tensors = encodeTensors(model)
        var manifest = model.manifest
        manifest.modelSHA256 = SHA256.hash(data: tensors).hexString
        let target = URL(fileURLWithPath: directory).standardizedFileURL.path
        let partial = "\(target).partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: partial)
        try AtomicFile.write(tensors, to: path(partial, tensorsFile))
        try AtomicFile.write(try encodeManifest(manifest), to: path(partial, manifestFile))
        try AtomicFile.replaceFolder(at: target, with: partial)
        return manifest
    }

    /// Loads and verifies a model directory.
    ///
    /// - Throws: `RecEngineError` `.corruptModel` when a file is missing, the tensors' digest
    ///   differs from the manifest's, a tensor is missing or has the wrong shape, or an index is
    ///   out of range. Nothing partially loaded is ever returned.
    public static func load(from directory: String) throws -> RecommenderModel {
        let manifestPath = path(directory, manifestFile)
        let tensorsPath = path(directory, tensorsFile)
        func corrupt(_ message: String, _ location: String) -> RecEngineError {
            RecEngineError(
                .corruptModel, message, location: location,
                hint: "the model directory is damaged or incomplete: train it again (recengine train) or restore it from a release")
        }
        let manifest: ModelManifest
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: manifestPath))
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            manifest = try decoder.decode(ModelManifest.self, from: data)
        } catch let error as DecodingError {
            throw corrupt("manifest.json does not parse: \(describe(error))", manifestPath)
        } catch {
            throw corrupt("cannot read manifest.json: \(error.localizedDescription)", manifestPath)
        }
        guard manifest.formatVersion == ModelManifest.currentFormatVersion else {
            throw corrupt("format version \(manifest.formatVersion) is not supported (expected \(ModelManifest.currentFormatVersion))", manifestPath)
        }
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: tensorsPath))
        } catch {
            throw corrupt("cannot read model.safetensors: \(error.localizedDescription)", tensorsPath)
        }
        let digest = SHA256.hash(data: bytes).hexString
        guard digest == manifest.modelSHA256 else {
            throw corrupt("digest mismatch: model.safetensors has sha256 \(digest), the manifest records \(manifest.modelSHA256)", tensorsPath)
        }
        let tensors: [String: SafeTensors.Tensor]
        do {
            tensors = try SafeTensors.decode(bytes)
        } catch {
            throw corrupt(error.message, tensorsPath)
        }
        let users = manifest.userIDs.count
        let items = manifest.itemIDs.count
        let factors = manifest.parameters.factors
        func tensor(_ name: String, _ dtype: SafeTensors.DType, _ shape: [Int]) throws -> Data {
            guard let tensor = tensors[name] else { throw corrupt("tensor \(name) is missing", tensorsPath) }
            guard tensor.dtype == dtype, tensor.shape == shape else {
                throw corrupt("tensor \(name) is \(tensor.dtype.rawValue)\(tensor.shape), expected \(dtype.rawValue)\(shape)", tensorsPath)
            }
            return tensor.data
        }
        let globalMean = SafeTensors.floats(from: try tensor("global_mean", .f32, []))[0]
        let model = FactorModel(
            globalMean: globalMean,
            userBias: SafeTensors.floats(from: try tensor("user_bias", .f32, [users])),
            itemBias: SafeTensors.floats(from: try tensor("item_bias", .f32, [items])),
            userFactors: SafeTensors.floats(from: try tensor("user_factors", .f32, [users, factors])),
            itemFactors: SafeTensors.floats(from: try tensor("item_factors", .f32, [items, factors])),
            factors: factors)
        let baseline = FactorModel(
            globalMean: globalMean,
            userBias: SafeTensors.floats(from: try tensor("baseline_user_bias", .f32, [users])),
            itemBias: SafeTensors.floats(from: try tensor("baseline_item_bias", .f32, [items])),
            userFactors: [], itemFactors: [], factors: 0)
        let offsets = SafeTensors.int32s(from: try tensor("rated_offsets", .i32, [users + 1]))
        guard let ratedCount = tensors["rated_items"]?.shape.first else { throw corrupt("tensor rated_items is missing", tensorsPath) }
        let rated = SafeTensors.int32s(from: try tensor("rated_items", .i32, [ratedCount]))
        guard offsets.first == 0, offsets.last == Int32(rated.count), zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }),
            rated.allSatisfy({ $0 >= 0 && Int($0) < items })
        else { throw corrupt("the rated-items index is inconsistent", tensorsPath) }
        return RecommenderModel(manifest: manifest, model: model, baseline: baseline, ratedOffsets: offsets, ratedItems: rated)
    }

    static func encodeTensors(_ model: RecommenderModel) -> Data {
        let factorModel = model.model
        return SafeTensors.encode(
            [
                ("global_mean", .init(dtype: .f32, shape: [], data: SafeTensors.floats([factorModel.globalMean]))),
                ("user_bias", .init(dtype: .f32, shape: [factorModel.userCount], data: SafeTensors.floats(factorModel.userBias))),
                ("item_bias", .init(dtype: .f32, shape: [factorModel.itemCount], data: SafeTensors.floats(factorModel.itemBias))),
                (
                    "user_factors",
                    .init(
                        dtype: .f32, shape: [factorModel.userCount, factorModel.factors],
                        data: SafeTensors.floats(factorModel.unpadded(factorModel.userFactors, rows: factorModel.userCount)))
                ),
                (
                    "item_factors",
                    .init(
                        dtype: .f32, shape: [factorModel.itemCount, factorModel.factors],
                        data: SafeTensors.floats(factorModel.unpadded(factorModel.itemFactors, rows: factorModel.itemCount)))
                ),
                ("baseline_user_bias", .init(dtype: .f32, shape: [model.baseline.userCount], data: SafeTensors.floats(model.baseline.userBias))),
                ("baseline_item_bias", .init(dtype: .f32, shape: [model.baseline.itemCount], data: SafeTensors.floats(model.baseline.itemBias))),
                ("rated_offsets", .init(dtype: .i32, shape: [model.ratedOffsets.count], data: SafeTensors.int32s(model.ratedOffsets))),
                ("rated_items", .init(dtype: .i32, shape: [model.ratedItems.count], data: SafeTensors.int32s(model.ratedItems))),
            ],
            metadata: ["format": "recengine-svd"])
    }

    static func encodeManifest(_ manifest: ModelManifest) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(manifest) + Data("\n".utf8)
    }

    private static func path(_ directory: String, _ file: String) -> String {
        URL(fileURLWithPath: directory).appendingPathComponent(file).path
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing key \(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            context.codingPath.map(\.stringValue).joined(separator: ".") + ": " + context.debugDescription
        @unknown default: "\(error)"
        }
    }
}
