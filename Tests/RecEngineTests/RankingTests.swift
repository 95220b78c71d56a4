import Foundation
import RecEngine
import RecEngineContract
import Testing

/// Interactions with a taste structure: users belong to one of `groups` groups and pick three
/// quarters of their items from their group's quarter of the catalogue, the rest at random; item
/// popularity is skewed within each part. Which items a user picks carries the signal, so an
/// implicit model must beat the most-popular list, and an SVD fit to the rating values need not.
func clusteredInteractions(
    users: Int = 240, items: Int = 160, perUser: Int = 24, groups: Int = 4, seed: UInt64 = 3
) -> Ratings {
    var generator = SeededGenerator(seed: seed)
    var ratings = Ratings()
    let block = items / groups
    // Zipf-like: low offsets in a block are picked more often.
    func skewed(_ count: Int) -> Int { min(count - 1, Int(Double(count) * pow(generator.nextUnit(), 2))) }
    for u in 0..<users {
        let group = u % groups
        var chosen = Set<Int>()
        while chosen.count < perUser {
            chosen.insert(generator.nextIndex(below: 4) < 3 ? group * block + skewed(block) : skewed(items))
        }
        for i in chosen.sorted() {
            ratings.append(user: "u\(u)", item: "m\(i)", rating: Float(1 + generator.nextIndex(below: 5)))
        }
    }
    return ratings
}

@Suite struct RankingTests {
    @Test func metricsMatchHandComputedValues() {
        // User 0: relevant {1, 3} (and one unknown item: 3 relevant); list [1, 2, 3].
        // User 1: relevant {0}; list [2, 0, 1].
        let metrics = RankingEvaluation.metrics(
            lists: [[1, 2, 3], [2, 0, 1]], relevant: [[1, 3], [0]], relevantCounts: [3, 1],
            popularity: [0.5, 0.25, 0.25, 0.1, 0.9], k: 3)
        let dcg0 = 1 + 1 / log2(4.0)
        let ideal0 = 1 + 1 / log2(3.0) + 1 / log2(4.0)
        let dcg1 = 1 / log2(3.0)
        #expect(abs(metrics.ndcg - (dcg0 / ideal0 + dcg1) / 2) < 1e-12)
        #expect(abs(metrics.recall - (2.0 / 3 + 1) / 2) < 1e-12)
        // AP: user 0 (1/1 + 2/3) / min(3, 3); user 1 (1/2) / 1.
        #expect(abs(metrics.map - ((1 + 2.0 / 3) / 3 + 0.5) / 2) < 1e-12)
        #expect(abs(metrics.coverage - 4.0 / 5) < 1e-12, "items 0, 1, 2, 3 of 5")
        #expect(abs(metrics.popularity - (0.25 + 0.25 + 0.1 + 0.25 + 0.5 + 0.25) / 6) < 1e-12)
    }

    @Test func alsLearnsTastesThatThePopularListAndSVDMiss() throws {
        let ratings = clusteredInteractions()
        let split = try Split.holdout(count: ratings.count, testSize: 0.2, seed: 1)
        let train = RatingsFile(path: "train.csv", ratings: ratings.subset(split.train), format: .csv, sha256: "")
        let test = ratings.subset(split.test)
        let als = try RecommenderModel.trainALS(
            on: train, parameters: ALSParameters(factors: 8, iterations: 10), threads: 2)
        let svd = try RecommenderModel.train(on: train, parameters: SVDParameters(factors: 8, epochs: 20))
        let alsReport = try Evaluation.evaluate(als, on: test, k: 10)
        let svdReport = try Evaluation.evaluate(svd, on: test, k: 10)
        #expect(alsReport.model == nil, "an implicit model's scores are not ratings: no RMSE")
        #expect(svdReport.model != nil)
        #expect(svdReport.metrics["recall_at_k"] == svdReport.model?.recallAtK, "SVD's recall@k keeps its meaning")
        #expect(svdReport.metrics["ranking_recall_at_k"] == svdReport.ranking.model.recall)
        #expect(
            alsReport.ranking.popular == svdReport.ranking.popular,
            "the same training interactions, the same popular list")
        #expect(alsReport.ranking.model.ndcg > 1.3 * alsReport.ranking.popular.ndcg, "\(alsReport.ranking)")
        #expect(
            alsReport.ranking.model.ndcg > 2 * svdReport.ranking.model.ndcg,
            "\(alsReport.ranking.model) vs \(svdReport.ranking.model)")
        #expect(alsReport.ranking.model.coverage > alsReport.ranking.popular.coverage)
        #expect(alsReport.ranking.protocol.users == 240)
        for name in RankingReport.metricNames {
            #expect(alsReport.metrics[name] != nil, "\(name)")
        }
    }

    @Test func oneAndTwoThreadsTrainTheSameModel() throws {
        let train = RatingsFile(
            path: "t.csv", ratings: clusteredInteractions(users: 60, items: 40, perUser: 10), format: .csv, sha256: "")
        let one = try RecommenderModel.trainALS(
            on: train, parameters: ALSParameters(factors: 8, iterations: 3), threads: 1)
        let two = try RecommenderModel.trainALS(
            on: train, parameters: ALSParameters(factors: 8, iterations: 3), threads: 2)
        #expect(one.model.userFactors == two.model.userFactors)
        #expect(one.model.itemFactors == two.model.itemFactors)
    }

    @Test func anALSModelSavesLoadsAndLeavesOutWhatTheUserWatched() async throws {
        try await withTemporaryDirectory { folder in
            try write("user_id,movie_id,rating\na,x,5\na,y,4\nb,y,3\nb,z,2\nc,x,1\n", to: folder + "/r.csv")
            // Watches add an item (w) and a user (d) the ratings do not have; each line is one event.
            try write("timestamp,user_id,movie_id,minute\nt,a,w,0\nt,a,w,1\nt,d,x,0\n", to: folder + "/w.csv")
            let watches = try WatchEvents.load(path: folder + "/w.csv")
            let model = try RecommenderModel.trainALS(
                on: try RatingsFile.load(path: folder + "/r.csv"), watches: watches,
                parameters: ALSParameters(factors: 4, iterations: 4))
            try ModelDirectory.save(model, to: folder + "/m")
            let loaded = try ModelDirectory.load(from: folder + "/m")
            #expect(loaded.manifest.algorithm == "als")
            #expect(loaded.manifest.alsParameters?.factors == 4)
            #expect(loaded.manifest.parameters == nil)
            #expect(loaded.manifest.watches?.events == 3)
            #expect(loaded.manifest.metrics.events == 8, "5 ratings and 3 watched minutes")
            #expect(loaded.manifest.metrics.interactions == 7, "a watched w twice: one pair")
            #expect(loaded.itemIDs == ["x", "y", "z", "w"])
            #expect(loaded.userIDs == ["a", "b", "c", "d"])
            let recommended = loaded.recommend(user: "a", count: 10)
            #expect(recommended.personalised)
            #expect(Set(recommended.items.map { loaded.itemIDs[Int($0)] }) == ["z"], "a rated x and y and watched w")
            #expect(recommended.scores.allSatisfy { $0.isFinite })
        }
    }

    @Test func aMalformedWatchesFileNamesTheLine() async throws {
        try await withTemporaryDirectory { folder in
            try write("timestamp,user_id,movie_id,minute\nt,a,w,0\nt,,w\n", to: folder + "/w.csv")
            let error = #expect(throws: RecEngineError.self) { try WatchEvents.load(path: folder + "/w.csv") }
            #expect(error?.code == .invalidRatings)
            #expect(error?.message == "line 3 is not timestamp,user_id,movie_id,minute")
        }
    }

    /// The reference check: numpy reads the saved model (safetensors), ranks every unseen item for
    /// each test user, and computes the metrics from scratch; they equal recengine's to 1e-6.
    @Test func metricsEqualANumpyReference() async throws {
        try await withTemporaryDirectory { folder in
            let ratings = clusteredInteractions(users: 90, items: 70, perUser: 14, seed: 11)
            let split = try Split.holdout(count: ratings.count, testSize: 0.25, seed: 2)
            try RatingsFile.writeCSV(ratings.subset(split.train), to: folder + "/train.csv")
            try RatingsFile.writeCSV(ratings.subset(split.test), to: folder + "/test.csv")
            let train = try await runCommand(
                recengineBinary,
                [
                    "train", "--algorithm", "als", "--ratings", "train.csv", "--out", "m", "--factors", "6", "--epochs",
                    "6",
                ], in: folder)
            try #require(train.status == 0, "\(train.stderr)")
            let evaluate = try await runCommand(
                recengineBinary, ["evaluate", "--model", "m", "--ratings", "test.csv", "--k", "5", "--output", "json"],
                in: folder)
            try #require(evaluate.status == 0, "\(evaluate.stderr)")
            let swift = try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as? [String: Any]
            let swiftMetrics = try #require(swift?["metrics"] as? [String: Double])
            try write(Self.reference, to: folder + "/reference.py")
            let python = try await runCommand(
                "/usr/bin/env", ["python3", "reference.py", "m", "test.csv", "5"], in: folder)
            try #require(
                python.status == 0,
                "python3 with safetensors and numpy failed (./scripts/test installs them): \(python.stderr)")
            let reference = try #require(
                try JSONSerialization.jsonObject(with: Data(python.stdout.utf8)) as? [String: Double])
            #expect(reference.count == 10)
            let ratio = try #require(swiftMetrics["ndcg_vs_popular"])
            #expect(abs(ratio - (reference["ndcg_at_k"] ?? 0) / (reference["popular_ndcg_at_k"] ?? 1)) < 1e-6)
            for (name, value) in reference {
                let mine = try #require(swiftMetrics[name], "\(name) missing from recengine's metrics")
                #expect(abs(mine - value) < 1e-6, "\(name): recengine \(mine), numpy \(value)")
            }
            #expect((reference["ndcg_at_k"] ?? 0) > 0)
        }
    }

    static let reference = """
        import csv, json, sys
        import numpy as np
        from safetensors.numpy import load_file

        folder, test_path, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
        manifest = json.load(open(folder + "/manifest.json"))
        tensors = load_file(folder + "/model.safetensors")
        users = {u: n for n, u in enumerate(manifest["user_ids"])}
        items = {i: n for n, i in enumerate(manifest["item_ids"])}
        P = tensors["user_factors"].astype(np.float64)
        Q = tensors["item_factors"].astype(np.float64)
        offsets, rated = tensors["rated_offsets"], tensors["rated_items"]
        n_users, n_items = len(users), len(items)
        counts = np.bincount(rated, minlength=n_items).astype(np.float64)
        popularity = counts / n_users
        popular_order = np.lexsort((np.arange(n_items), -counts))

        held = {}
        for row in csv.DictReader(open(test_path)):
            if row["user_id"] in users:
                held.setdefault(users[row["user_id"]], set()).add(row["movie_id"])

        def metrics(lists):
            ndcg = recall = ap = pop = 0.0
            listed, covered = 0, set()
            for u, top in lists:
                relevant = {items[i] for i in held[u] if i in items}
                n_rel = len(held[u])
                hit_ranks = [r for r, i in enumerate(top) if i in relevant]
                dcg = sum(1 / np.log2(r + 2) for r in hit_ranks)
                ideal = sum(1 / np.log2(r + 2) for r in range(min(k, n_rel)))
                ndcg += dcg / ideal
                recall += len(hit_ranks) / n_rel
                ap += sum((h + 1) / (r + 1) for h, r in enumerate(hit_ranks)) / min(k, n_rel)
                pop += popularity[top].sum()
                listed += len(top)
                covered.update(int(i) for i in top)
            n = len(lists)
            return {"ndcg_at_k": ndcg / n, "ranking_recall_at_k": recall / n, "map_at_k": ap / n,
                    "catalog_coverage": len(covered) / n_items, "popularity_bias": pop / listed}

        model_lists, popular_lists = [], []
        for u in sorted(held):
            seen = set(rated[offsets[u]:offsets[u + 1]].tolist())
            scores = Q @ P[u]
            order = [i for i in np.lexsort((np.arange(n_items), -scores)) if i not in seen]
            model_lists.append((u, np.array(order[:k], dtype=int)))
            order = [i for i in popular_order if i not in seen]
            popular_lists.append((u, np.array(order[:k], dtype=int)))
        result = metrics(model_lists)
        result.update({"popular_" + name: value for name, value in metrics(popular_lists).items()})
        print(json.dumps(result))
        """
}
