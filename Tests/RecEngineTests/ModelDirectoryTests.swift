import Crypto
import Foundation
import RecEngine
import RecEngineContract
import Testing

@Suite struct ModelDirectoryTests {
    static func trainedModel(in folder: String) throws -> (RecommenderModel, RatingsFile) {
        let path = folder + "/ratings.csv"
        try write(csv(syntheticRatings(users: 40, items: 30, perUser: 10)), to: path)
        let file = try RatingsFile.load(path: path)
        return (try RecommenderModel.train(on: file, parameters: .init(factors: 5, epochs: 10)), file)
    }

    @Test func roundTripKeepsPredictionsAndRecommendations() async throws {
        try await withTemporaryDirectory { folder in
            let (model, file) = try Self.trainedModel(in: folder)
            let manifest = try ModelDirectory.save(model, to: folder + "/model")
            let loaded = try ModelDirectory.load(from: folder + "/model")
            #expect(loaded.manifest == manifest)
            #expect(loaded.manifest.trainingData.sha256 == file.sha256)
            #expect(loaded.manifest.displayVersion == String(manifest.modelSHA256.prefix(12)))
            let ratings = file.ratings
            #expect(
                loaded.model.predict(users: ratings.users, items: ratings.items, scale: loaded.scale)
                    == model.model.predict(users: ratings.users, items: ratings.items, scale: model.scale))
            #expect(loaded.recommend(user: "u3", count: 5) == model.recommend(user: "u3", count: 5))
            #expect(loaded.ratedItems == model.ratedItems)
        }
    }

    /// Saves a model, lets `damage` alter the directory, and returns the load error.
    func loadError(after damage: (String) throws -> Void) async throws -> RecEngineError? {
        try await withTemporaryDirectory { folder in
            let (model, _) = try Self.trainedModel(in: folder)
            try ModelDirectory.save(model, to: folder + "/model")
            try damage(folder + "/model")
            return #expect(throws: RecEngineError.self) { try ModelDirectory.load(from: folder + "/model") }
        }
    }

    @Test func truncatedTensorsFailWithADigestMismatch() async throws {
        let error = try await loadError { folder in
            let path = folder + "/model.safetensors"
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path))
        }
        #expect(error?.code == .corruptModel)
        #expect(error?.message.hasPrefix("digest mismatch") == true)
    }

    @Test func oneAlteredByteFailsWithADigestMismatch() async throws {
        let error = try await loadError { folder in
            let path = folder + "/model.safetensors"
            var data = try Data(contentsOf: URL(fileURLWithPath: path))
            data[data.count - 7] ^= 0x40
            try data.write(to: URL(fileURLWithPath: path))
        }
        #expect(error?.message.hasPrefix("digest mismatch") == true)
    }

    @Test func aManifestThatDisagreesWithTheTensorsFailsOnShapes() async throws {
        let error = try await loadError { folder in
            let path = folder + "/manifest.json"
            var manifest =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
                ?? [:]
            manifest["user_ids"] = (manifest["user_ids"] as? [String] ?? []).dropLast() as [String]
            try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: path))
        }
        #expect(error?.message.contains("expected F32") == true)
    }

    @Test func aMissingOrUnreadableManifestFails() async throws {
        let missing = try await loadError { folder in
            try FileManager.default.removeItem(atPath: folder + "/manifest.json")
        }
        #expect(missing?.message.hasPrefix("cannot read manifest.json") == true)
        let garbage = try await loadError { folder in
            try write("{\"format_version\": 1}", to: folder + "/manifest.json")
        }
        #expect(garbage?.message.hasPrefix("manifest.json does not parse") == true)
        #expect(garbage?.description.contains("hint:") == true)
    }

    @Test func tensorsWithABadHeaderFailEvenWhenTheDigestMatches() async throws {
        let error = try await loadError { folder in
            // Attacker-style damage: a file whose header points past its end, with the manifest's
            // digest updated to match, must still be refused.
            var header = "{\"global_mean\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4000]}}"
            while header.utf8.count % 8 != 0 { header += " " }
            var bytes = Data([UInt8(header.utf8.count), 0, 0, 0, 0, 0, 0, 0])
            bytes.append(contentsOf: header.utf8)
            try bytes.write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
            let digest = SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors")))
                .hexString
            let path = folder + "/manifest.json"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let updated = text.replacingOccurrences(
                of: #""model_sha256" : "[0-9a-f]+""#, with: "\"model_sha256\" : \"\(digest)\"",
                options: .regularExpression)
            try write(updated, to: path)
        }
        #expect(error?.message.contains("lies outside the file") == true, "\(String(describing: error))")
    }

    /// The model file is standard safetensors: Python's `safetensors` + numpy load it and
    /// reproduce our predictions.
    @Test func pythonSafetensorsLoadsTheModelAndNumpyReproducesPredictions() async throws {
        try await withTemporaryDirectory { folder in
            let (model, file) = try Self.trainedModel(in: folder)
            try ModelDirectory.save(model, to: folder + "/model")
            let ratings = file.ratings
            let predictions = model.model.predict(users: ratings.users, items: ratings.items, scale: model.scale)
            var pairs = ""
            for row in 0..<ratings.count {
                pairs += "\(ratings.users[row]) \(ratings.items[row]) \(predictions[row])\n"
            }
            try write(pairs, to: folder + "/pairs.txt")
            let script = """
                import json, sys
                import numpy as np
                from safetensors.numpy import load_file
                folder = sys.argv[1]
                t = load_file(folder + "/model/model.safetensors")
                manifest = json.load(open(folder + "/model/manifest.json"))
                assert t["user_factors"].dtype == np.float32
                assert t["user_factors"].shape == (len(manifest["user_ids"]), manifest["parameters"]["factors"])
                assert t["item_factors"].shape == (len(manifest["item_ids"]), manifest["parameters"]["factors"])
                worst = 0.0
                for line in open(folder + "/pairs.txt"):
                    u, i, expected = line.split()
                    u, i = int(u), int(i)
                    est = t["global_mean"] + t["user_bias"][u] + t["item_bias"][i] + t["user_factors"][u] @ t["item_factors"][i]
                    est = min(5.0, max(1.0, float(est)))
                    worst = max(worst, abs(est - float(expected)))
                print(worst)
                """
            try write(script, to: folder + "/check.py")
            let result = try await runCommand("/usr/bin/env", ["python3", folder + "/check.py", folder])
            try #require(
                result.status == 0,
                "python3 with safetensors and numpy failed (./scripts/test installs them): \(result.stderr)")
            let worst = Double(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(worst != nil && worst! < 1e-4)
        }
    }
}
