import Crypto
import DurableFiles
import Foundation
import RecEngineContract

/// A model directory: `model.safetensors` (the tensors) and `manifest.json` (ids, parameters,
/// provenance, metrics and the model file's SHA-256).
public enum ModelDirectory {

    /// The largest `model.safetensors` read: 2 GiB (a MovieLens 25M model with 100 factors is
    /// about 90 MB).
    public static let maximumTensorsSize = 2 << 30

    /// Writes the model: the tensors, then the manifest that names their digest, into a folder
    /// beside `directory`; that folder is loaded back and checked like any model, and only then
    /// swapped in. A save that fails, or is killed part way, leaves the model that was there whole.
    ///
    /// - Returns: the manifest as written, with the model digest filled in.
    /// - Throws: `RecEngineError` `.corruptModel` when the new model does not load back (e.g. a
    ///   parameter is not finite), `AtomicFileError` when a file cannot be written.
    @discardableResult
    public static func save(_ model: RecommenderModel, to directory: String) throws -> ModelManifest {
        let tensors = encodeTensors(model)
        var manifest = model.manifest
        manifest.modelSHA256 = SHA256.hash(data: tensors).hexString
        let target = URL(fileURLWithPath: directory).standardizedFileURL.path
        let partial = "\(target).partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: partial)
        do {
            try AtomicFile.write(tensors, to: path(partial, ModelFiles.tensors))
            try AtomicFile.write(try encodeManifest(manifest), to: path(partial, ModelFiles.manifest))
            _ = try load(from: partial)
            try AtomicFile.replaceFolder(at: target, with: partial)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            if var error = error as? RecEngineError, error.code == .corruptModel {
                error.message = "the new model was not saved (what was there is unchanged): \(error.message)"
                error.location = target
                error.hint = "train again with other parameters (a lower --lr, a higher --reg)"
                throw error
            }
            throw error
        }
        return manifest
    }

    /// Loads and verifies a model directory. Its files come from outside: each number, id and
    /// parameter is checked before use, so a damaged or hostile model is an error, never a crash.
    ///
    /// - Throws: `RecEngineError` `.corruptModel` naming the file and what is wrong: a file that is
    ///   missing, not a regular file or too large, a manifest that does not parse or repeats an id,
    ///   tensors whose digest differs from the manifest's, a tensor that is missing, has the wrong
    ///   dtype or shape or holds NaN or infinite values, or an index out of range. Nothing partially
    ///   loaded is ever returned.
    public static func load(from directory: String) throws -> RecommenderModel {
        let manifest = try readManifest(of: directory)
        // readManifest checked that the parameters are there.
        let factors = manifest.factors ?? 0
        let tensorsPath = path(directory, ModelFiles.tensors)
        let bytes = try contents(tensorsPath, ModelFiles.tensors, limit: maximumTensorsSize)
        let digest = SHA256.hash(data: bytes).hexString
        guard digest == manifest.modelSHA256 else {
            throw corrupt(
                "digest mismatch: model.safetensors has sha256 \(digest), the manifest records \(manifest.modelSHA256)",
                tensorsPath)
        }
        let tensors: [String: SafeTensors.Tensor]
        do {
            tensors = try SafeTensors.decode(bytes)
        } catch {
            throw corrupt(error.message, tensorsPath)
        }
        let users = manifest.userIDs.count
        let items = manifest.itemIDs.count
        /// The tensor's data, checked against the dtype and the shape the manifest implies.
        func tensor(_ name: String, _ dtype: SafeTensors.DType, _ shape: [Int], _ meaning: String = "") throws -> Data {
            guard let tensor = tensors[name] else { throw corrupt("tensor \(name) is missing", tensorsPath) }
            guard tensor.dtype == dtype else {
                throw corrupt(
                    "tensor \(name) has dtype \(tensor.dtype.rawValue), expected \(dtype.rawValue)", tensorsPath)
            }
            guard tensor.shape == shape else {
                throw corrupt(
                    "tensor \(name) is \(tensor.dtype.rawValue)\(tensor.shape), expected \(dtype.rawValue)\(shape)\(meaning)",
                    tensorsPath)
            }
            if dtype == .f32 {
                let nonFinite = SafeTensors.nonFiniteCount(tensor.data)
                guard nonFinite == 0 else {
                    throw corrupt(
                        "tensor \(name) holds \(nonFinite) non-finite values (NaN or infinite) of \(tensor.data.count / 4)",
                        tensorsPath)
                }
            }
            return tensor.data
        }
        let perUser = " (manifest.json lists \(users) user ids)"
        let perItem = " (manifest.json lists \(items) item ids)"
        let globalMean = SafeTensors.floats(from: try tensor("global_mean", .f32, []))[0]
        let model = FactorModel(
            globalMean: globalMean,
            userBias: SafeTensors.floats(from: try tensor("user_bias", .f32, [users], perUser)),
            itemBias: SafeTensors.floats(from: try tensor("item_bias", .f32, [items], perItem)),
            userFactors: SafeTensors.floats(from: try tensor("user_factors", .f32, [users, factors], perUser)),
            itemFactors: SafeTensors.floats(from: try tensor("item_factors", .f32, [items, factors], perItem)),
            factors: factors)
        let baseline = FactorModel(
            globalMean: globalMean,
            userBias: SafeTensors.floats(from: try tensor("baseline_user_bias", .f32, [users], perUser)),
            itemBias: SafeTensors.floats(from: try tensor("baseline_item_bias", .f32, [items], perItem)),
            userFactors: [], itemFactors: [], factors: 0)
        let itemWeights =
            manifest.algorithm == "ease"
            ? SafeTensors.floats(from: try tensor("item_weights", .f32, [items, items], perItem)) : []
        let offsets = SafeTensors.int32s(from: try tensor("rated_offsets", .i32, [users + 1], perUser))
        guard let ratedCount = tensors["rated_items"]?.shape.first else {
            throw corrupt("tensor rated_items is missing", tensorsPath)
        }
        let rated = SafeTensors.int32s(from: try tensor("rated_items", .i32, [ratedCount]))
        guard offsets.first == 0, offsets.last.map(Int.init) == rated.count,
            zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }),
            rated.allSatisfy({ $0 >= 0 && Int($0) < items })
        else { throw corrupt("the rated-items index is inconsistent", tensorsPath) }
        return RecommenderModel(
            manifest: manifest, model: model, baseline: baseline, ratedOffsets: offsets, ratedItems: rated,
            itemWeights: itemWeights)
    }

    /// The model's manifest alone, checked as `load` checks it (format, algorithm, parameters,
    /// rating scale, unique ids), without reading the tensors: what a caller needs for the model's
    /// version or algorithm.
    ///
    /// - Throws: `RecEngineError` `.corruptModel` naming the problem.
    public static func readManifest(of directory: String) throws -> ModelManifest {
        let manifestPath = path(directory, ModelFiles.manifest)
        let manifest: ModelManifest
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            manifest = try decoder.decode(
                ModelManifest.self,
                from: try contents(manifestPath, ModelFiles.manifest, limit: ModelFiles.maximumManifestSize))
        } catch let error as DecodingError {
            throw corrupt("manifest.json does not parse: \(describe(error))", manifestPath)
        }
        guard manifest.formatVersion == ModelManifest.currentFormatVersion else {
            throw corrupt(
                "format version \(manifest.formatVersion) is not supported (expected \(ModelManifest.currentFormatVersion))",
                manifestPath)
        }
        guard ModelManifest.algorithms.contains(manifest.algorithm) else {
            throw corrupt(
                "algorithm \"\(manifest.algorithm)\" is not one of \(ModelManifest.algorithms.joined(separator: ", "))",
                manifestPath)
        }
        guard let factors = manifest.factors else {
            throw corrupt(
                "\(manifest.parametersKey) is missing: an \(manifest.algorithm) model records its parameters",
                manifestPath)
        }
        guard SVDParameters.factorRange.contains(factors) else {
            throw corrupt(
                "parameters.factors is \(factors), outside \(SVDParameters.factorRange.lowerBound)...\(SVDParameters.factorRange.upperBound)",
                manifestPath)
        }
        let scale = manifest.ratingScale
        guard scale.low.isFinite, scale.high.isFinite, scale.low < scale.high else {
            throw corrupt("rating_scale \(scale.low)...\(scale.high) is not a range of finite numbers", manifestPath)
        }
        for (kind, ids) in [("user", manifest.userIDs), ("item", manifest.itemIDs)] {
            if let duplicate = firstDuplicate(ids) {
                throw corrupt(
                    "\(kind)_ids lists \"\(duplicate)\" more than once: each id must name one row", manifestPath)
            }
        }
        return manifest
    }

    private static func corrupt(_ message: String, _ location: String) -> RecEngineError {
        RecEngineError(
            .corruptModel, message, location: location,
            hint:
                "the model directory is damaged or incomplete: train it again (recengine train) or restore it from a release"
        )
    }

    private static func contents(_ path: String, _ name: String, limit: Int) throws -> Data {
        do {
            return try InputFile.read(path, limit: limit)
        } catch {
            throw corrupt("cannot read \(name): \(error.reason)", path)
        }
    }

    /// The first id that appears twice, if any.
    private static func firstDuplicate(_ ids: [String]) -> String? {
        var seen = Set<String>()
        return ids.first { !seen.insert($0).inserted }
    }

    static func encodeTensors(_ model: RecommenderModel) -> Data {
        let factorModel = model.model
        // EASE's item-to-item weights; the factor tensors of an EASE model are empty (0 factors).
        let itemWeights: [(name: String, tensor: SafeTensors.Tensor)] =
            model.manifest.algorithm == "ease"
            ? [
                (
                    "item_weights",
                    .init(
                        dtype: .f32, shape: [factorModel.itemCount, factorModel.itemCount],
                        data: SafeTensors.floats(model.itemWeights))
                )
            ]
            : []
        return SafeTensors.encode(
            [
                ("global_mean", .init(dtype: .f32, shape: [], data: SafeTensors.floats([factorModel.globalMean]))),
                (
                    "user_bias",
                    .init(dtype: .f32, shape: [factorModel.userCount], data: SafeTensors.floats(factorModel.userBias))
                ),
                (
                    "item_bias",
                    .init(dtype: .f32, shape: [factorModel.itemCount], data: SafeTensors.floats(factorModel.itemBias))
                ),
                (
                    "user_factors",
                    .init(
                        dtype: .f32, shape: [factorModel.userCount, factorModel.factors],
                        data: SafeTensors.floats(
                            factorModel.unpadded(factorModel.userFactors, rows: factorModel.userCount)))
                ),
                (
                    "item_factors",
                    .init(
                        dtype: .f32, shape: [factorModel.itemCount, factorModel.factors],
                        data: SafeTensors.floats(
                            factorModel.unpadded(factorModel.itemFactors, rows: factorModel.itemCount)))
                ),
                (
                    "baseline_user_bias",
                    .init(
                        dtype: .f32, shape: [model.baseline.userCount],
                        data: SafeTensors.floats(model.baseline.userBias))
                ),
                (
                    "baseline_item_bias",
                    .init(
                        dtype: .f32, shape: [model.baseline.itemCount],
                        data: SafeTensors.floats(model.baseline.itemBias))
                ),
                (
                    "rated_offsets",
                    .init(dtype: .i32, shape: [model.ratedOffsets.count], data: SafeTensors.int32s(model.ratedOffsets))
                ),
                (
                    "rated_items",
                    .init(dtype: .i32, shape: [model.ratedItems.count], data: SafeTensors.int32s(model.ratedItems))
                ),
            ] + itemWeights,
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
