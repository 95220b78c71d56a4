import CRecKernels

/// Recommended items for one user, best first.
public struct Recommendations: Sendable, Equatable {
    public var items: [Int32]
    /// Predicted ratings (clipped to the scale), or an implicit model's unbounded scores; empty for an unknown user's popular items.
    public var scores: [Float]
    /// False when the user is unknown and the items are the most popular ones.
    public var personalised: Bool
}

extension RecommenderModel {
    /// The `count` best items for a user, leaving out what the user rated in training. Unknown
    /// users get the most rated items. Ties go to the lower item index, so answers are stable.
    ///
    /// Scores every item with one SIMD kernel call into one buffer, then selects with a bounded
    /// heap of `count` entries: no allocation per item.
    public func recommend(user id: String, count: Int) -> Recommendations {
        // More than there are items (or below zero) is asked by no one who means it: bounded here
        // so that no count can trap or allocate without end.
        let count = min(max(count, 0), itemIDs.count)
        guard let user = userIndex(of: id) else {
            return Recommendations(items: Array(popularItems.prefix(count)), scores: [], personalised: false)
        }
        let itemCount = itemIDs.count
        var scores = [Float](unsafeUninitializedCapacity: itemCount) { buffer, initialized in
            if manifest.algorithm == "ease" {
                // The sum of the weight rows of what the user interacted with.
                let rated = ratedItems(of: user)
                itemWeights.withUnsafeBufferPointer { weights in
                    rated.withUnsafeBufferPointer { rated in
                        rec_ease_scores(
                            weights.baseAddress, itemCount, rated.baseAddress, rated.count, buffer.baseAddress)
                    }
                }
                initialized = itemCount
                return
            }
            model.itemFactors.withUnsafeBufferPointer { itemFactors in
                model.itemBias.withUnsafeBufferPointer { itemBias in
                    model.userFactors.withUnsafeBufferPointer { userFactors in
                        rec_score_items(
                            itemFactors.baseAddress, itemBias.baseAddress, itemCount, model.stride,
                            userFactors.baseAddress.map { $0 + Int(user) * model.stride },
                            model.globalMean + model.userBias[Int(user)],
                            manifest.isImplicit ? -.greatestFiniteMagnitude : scale.low,
                            manifest.isImplicit ? .greatestFiniteMagnitude : scale.high,
                            buffer.baseAddress)
                    }
                }
            }
            initialized = itemCount
        }
        for item in ratedItems(of: user) {
            scores[Int(item)] = -.infinity
        }
        let selected = TopK.select(count, from: scores)
        return Recommendations(items: selected, scores: selected.map { scores[Int($0)] }, personalised: true)
    }
}

/// Partial selection of the best scores with a bounded min-heap.
enum TopK {
    /// Indices of the `k` highest finite scores, best first; equal scores rank the lower index first.
    static func select(_ k: Int, from scores: [Float]) -> [Int32] {
        guard k > 0 else { return [] }
        var heap = [Int32]()
        heap.reserveCapacity(k)
        scores.withUnsafeBufferPointer { scores in
            // `a` ranks below `b`: lower score, or the same score and a higher index.
            func below(_ a: Int32, _ b: Int32) -> Bool {
                let (sa, sb) = (scores[Int(a)], scores[Int(b)])
                return sa < sb || (sa == sb && a > b)
            }
            func siftDown(_ start: Int) {
                var parent = start
                while true {
                    let left = 2 * parent + 1
                    guard left < heap.count else { return }
                    var lowest = left
                    if left + 1 < heap.count && below(heap[left + 1], heap[left]) {
                        lowest = left + 1
                    }
                    guard below(heap[lowest], heap[parent]) else { return }
                    heap.swapAt(parent, lowest)
                    parent = lowest
                }
            }
            for index in 0..<scores.count where scores[index] > -.infinity {
                let item = Int32(index)
                if heap.count < k {
                    heap.append(item)
                    var child = heap.count - 1
                    while child > 0 {
                        let parent = (child - 1) / 2
                        guard below(heap[child], heap[parent]) else { break }
                        heap.swapAt(child, parent)
                        child = parent
                    }
                } else if below(heap[0], item) {
                    heap[0] = item
                    siftDown(0)
                }
            }
            heap.sort { below($1, $0) }
        }
        return heap
    }
}
