import Foundation
import RecEngine
import RecEngineContract
import Testing

@Suite struct EASETests {
    /// The closed form against numpy: recengine trains EASE (three blocks of the Cholesky
    /// factorisation on two threads, a last block of the inverse narrower than eight rows), numpy
    /// computes `B = I - P diagMat(1 / diag(P))`, `P = (XᵀX + λI)⁻¹`, `diag(B) = 0` from the same
    /// interactions with `numpy.linalg.inv`; the weights agree to 1e-5, and so do the top-5 lists
    /// `evaluate --lists` writes.
    @Test func weightsEqualANumpyReference() async throws {
        try await withTemporaryDirectory { folder in
            let ratings = clusteredInteractions(users: 120, items: 150, perUser: 18, seed: 5)
            let split = try Split.holdout(count: ratings.count, testSize: 0.2, seed: 3)
            try RatingsFile.writeCSV(ratings.subset(split.train), to: folder + "/train.csv")
            try RatingsFile.writeCSV(ratings.subset(split.test), to: folder + "/test.csv")
            let train = try await runCommand(
                recengineBinary,
                [
                    "train", "--algorithm", "ease", "--reg", "4", "--threads", "2", "--ratings", "train.csv", "--out",
                    "m",
                ], in: folder)
            try #require(train.status == 0, "\(train.stderr)")
            let evaluate = try await runCommand(
                recengineBinary,
                [
                    "evaluate", "--model", "m", "--ratings", "test.csv", "--k", "5", "--lists", "lists.csv", "--output",
                    "json",
                ], in: folder)
            try #require(evaluate.status == 0, "\(evaluate.stderr)")
            try write(Self.reference, to: folder + "/reference.py")
            let python = try await runCommand(
                "/usr/bin/env", ["python3", "reference.py", "m", "train.csv", "lists.csv", "4", "5"], in: folder)
            try #require(
                python.status == 0,
                "python3 with safetensors and numpy failed (./scripts/test installs them): \(python.stderr)")
            let result = try #require(
                try JSONSerialization.jsonObject(with: Data(python.stdout.utf8)) as? [String: Double])
            let items = try #require(result["items"])
            #expect(items > 64, "more items than one Cholesky block of two threads")
            let largest = try #require(result["largest_weight"])
            #expect(largest > 0.01, "weights that are not all near zero")
            #expect(try #require(result["max_weight_difference"]) < 1e-5)
            #expect(try #require(result["max_diagonal"]) == 0)
            #expect(try #require(result["lists_differing"]) == 0)
            #expect(try #require(result["lists"]) > 50)
        }
    }

    static let reference = """
        import csv, json, sys
        import numpy as np
        from safetensors.numpy import load_file

        folder, train_path, lists_path, lam, k = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
        manifest = json.load(open(folder + "/manifest.json"))
        assert manifest["algorithm"] == "ease" and manifest["ease_parameters"]["reg"] == lam
        B = load_file(folder + "/model.safetensors")["item_weights"].astype(np.float64)
        users = {u: n for n, u in enumerate(manifest["user_ids"])}
        items = {i: n for n, i in enumerate(manifest["item_ids"])}
        X = np.zeros((len(users), len(items)))
        for row in csv.DictReader(open(train_path)):
            X[users[row["user_id"]], items[row["movie_id"]]] = 1
        P = np.linalg.inv(X.T @ X + lam * np.eye(len(items)))
        reference = -P / np.diag(P)[None, :]
        np.fill_diagonal(reference, 0)

        differing = count = 0
        lists = {}
        for row in csv.DictReader(open(lists_path)):
            lists.setdefault(row["user_id"], []).append(row["movie_id"])
        for user, listed in lists.items():
            u = users[user]
            scores = X[u] @ reference
            scores[X[u] > 0] = -np.inf
            top = [manifest["item_ids"][i] for i in np.lexsort((np.arange(len(items)), -scores))[:k]]
            differing += top != listed
            count += 1
        print(json.dumps({
            "items": len(items), "largest_weight": float(np.abs(reference).max()),
            "max_weight_difference": float(np.abs(B - reference).max()), "max_diagonal": float(np.abs(np.diag(B)).max()),
            "lists": count, "lists_differing": differing,
        }))
        """

    @Test func theMemoryEstimateAndTheLimitAreChecked() throws {
        #expect(EASEMemory.estimate(items: 1000) == 12_000_000)
        #expect(EASEMemory.estimate(items: Int.max / 2) == .max, "no overflow")
        try EASEMemory.requireFits(items: 9_000, limit: 1 << 30)
        let error = #expect(throws: RecEngineError.self) {
            try EASEMemory.requireFits(items: 10_000, limit: 1 << 30, location: "r.csv")
        }
        #expect(error?.code == .tooLarge)
        #expect(error?.message.contains("EASE on 10000 items needs about 1145 MiB") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("limit of 1024 MiB") == true, "\(error?.message ?? "")")
        #expect(error?.hint?.contains("at most 9459 items fit") == true, "\(error?.hint ?? "")")
        #expect(error?.location == "r.csv")
    }

    /// A catalogue one item larger than the machine's limit allows is refused after reading the
    /// ratings and before any work: exit 2, the estimate and the limit, no model directory.
    @Test func trainRefusesACatalogueTooLargeForTheMachine() async throws {
        try await withTemporaryDirectory { folder in
            let items = EASEMemory.largestCatalogue(limit: EASEMemory.limit) + 1
            var text = "user_id,movie_id,rating\n"
            text.reserveCapacity(items * 16)
            for item in 0..<items {
                text += "u\(item % 7),m\(item),4\n"
            }
            try write(text, to: folder + "/r.csv")
            let train = try await runCommand(
                recengineBinary, ["train", "--algorithm", "ease", "--ratings", "r.csv", "--out", "m"], in: folder)
            #expect(train.status == 2, "\(train.stderr)")
            #expect(train.stderr.contains("EASE on \(items) items needs about"), "\(train.stderr)")
            #expect(train.stderr.contains("above this machine's limit of"), "\(train.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder + "/m"))
        }
    }

    @Test func anEASEModelSavesLoadsServesAndCrossValidates() async throws {
        let ratings = clusteredInteractions(users: 80, items: 60, perUser: 12, seed: 9)
        let split = try Split.holdout(count: ratings.count, testSize: 0.2, seed: 4)
        let train = RatingsFile(path: "train.csv", ratings: ratings.subset(split.train), format: .csv, sha256: "")
        let one = try RecommenderModel.trainEASE(on: train, parameters: EASEParameters(regularization: 20), threads: 1)
        let two = try RecommenderModel.trainEASE(on: train, parameters: EASEParameters(regularization: 20), threads: 2)
        #expect(one.itemWeights == two.itemWeights, "one and two threads compute the same weights")
        try await withTemporaryDirectory { folder in
            try ModelDirectory.save(one, to: folder + "/m")
            let loaded = try ModelDirectory.load(from: folder + "/m")
            #expect(loaded.manifest.algorithm == "ease")
            #expect(loaded.manifest.easeParameters == EASEParameters(regularization: 20))
            #expect(loaded.manifest.isImplicit)
            #expect(loaded.itemWeights == one.itemWeights)
            let user = loaded.userIDs[0]
            let recommended = loaded.recommend(user: user, count: 5)
            #expect(recommended.personalised)
            #expect(recommended.items.count == 5)
            let seen = Set(loaded.ratedItems(of: 0))
            #expect(recommended.items.allSatisfy { !seen.contains($0) }, "what the user interacted with is left out")
            #expect(zip(recommended.scores, recommended.scores.dropFirst()).allSatisfy { $0 >= $1 })
        }
        let report = try Evaluation.evaluate(one, on: ratings.subset(split.test), k: 10)
        #expect(report.model == nil, "no rating errors for a ranking model")
        #expect(report.ranking.model.ndcg > 1.2 * report.ranking.popular.ndcg, "\(report.ranking)")
        let cv = try CrossValidation.run(
            ratings, folds: 3, seed: 1, parameters: SVDParameters(), ease: EASEParameters(regularization: 20))
        #expect(cv.algorithm == "ease")
        #expect(cv.easeParameters == EASEParameters(regularization: 20))
        #expect(cv.parameters == nil)
        #expect(cv.mean.ranking.ndcg > cv.mean.popular.ndcg)
    }

    /// An EASE manifest without its parameters, or tensors without the weights, is a corrupt model.
    @Test func aDamagedEASEModelIsRefused() async throws {
        let ratings = clusteredInteractions(users: 20, items: 12, perUser: 5, seed: 2)
        let model = try RecommenderModel.trainEASE(
            on: RatingsFile(path: "t.csv", ratings: ratings, format: .csv, sha256: ""),
            parameters: EASEParameters(regularization: 5))
        try await withTemporaryDirectory { folder in
            try ModelDirectory.save(model, to: folder + "/m")
            let manifestPath = folder + "/m/manifest.json"
            let text = try String(contentsOfFile: manifestPath, encoding: .utf8)
            try write(text.replacingOccurrences(of: "\"ease_parameters\"", with: "\"other\""), to: manifestPath)
            let error = #expect(throws: RecEngineError.self) { try ModelDirectory.load(from: folder + "/m") }
            #expect(error?.code == .corruptModel)
            #expect(error?.message.contains("ease_parameters is missing") == true, "\(error?.message ?? "")")
        }
    }
}
