import Foundation
import RecEngine
import RecEngineContract
import Testing

@Suite struct RatingsFileTests {
    @Test func readsTheSeedCSVWithStringIDs() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/ratings.csv"
            try write(
                "user_id,movie_id,rating,timestamp\n162591,the+matrix+1999,4,2022-03-18T05:53:29\n7,up+2009,5,2022-03-18T05:54:00\n162591,up+2009,3.5,2022-03-18T06:00:00\n",
                to: path)
            let file = try RatingsFile.load(path: path)
            #expect(file.format == .csv)
            #expect(file.ratings.count == 3)
            #expect(file.ratings.userIDs == ["162591", "7"])
            #expect(file.ratings.itemIDs == ["the+matrix+1999", "up+2009"])
            #expect(file.ratings.users == [0, 1, 0])
            #expect(file.ratings.items == [0, 1, 1])
            #expect(file.ratings.values == [4, 5, 3.5])
            #expect(file.ratings.timestamps == ["2022-03-18T05:53:29", "2022-03-18T05:54:00", "2022-03-18T06:00:00"])
            #expect(file.sha256.count == 64)
        }
    }

    @Test func detectsMovieLensTSV() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/u.data"
            try write("196\t242\t3\t881250949\r\n186\t302\t3\t891717742\r\n\n22\t377\t1\t878887116\r\n", to: path)
            let file = try RatingsFile.load(path: path)
            #expect(file.format == .movieLensTSV)
            #expect(file.ratings.count == 3)
            #expect(file.ratings.itemIDs == ["242", "302", "377"])
            #expect(file.ratings.timestamps?.last == "878887116")
        }
    }

    @Test(arguments: [
        ("user_id,movie_id,rating\n1,a,4\n2,b\n", 3, "expected 3 fields, found 2"),
        ("user_id,movie_id,rating\n1,a,4\n2,b,great\n", 3, "rating \"great\" is not a number"),
        ("user_id,movie_id,rating\n1,a,4\n2,b,7\n", 3, "rating 7 outside 1...5"),
        ("user_id,movie_id,rating\n1,a,0\n", 2, "rating 0 outside 1...5"),
        ("user_id,movie_id,rating\n,a,4\n", 2, "empty user id"),
        ("user_id,movie_id,rating\n1,,4\n", 2, "empty movie id"),
        ("user_id,movie_id,rating\n1,a,nan\n", 2, "rating \"nan\" is not a number"),
        ("user_id,movie_id,rating\n1,a,4,extra\n", 2, "expected 3 fields, found 4"),
        ("1\t2\t3\t4\n1\t2\n", 2, "expected 4 fields, found 2"),
    ])
    func malformedRowsNameFileLineAndProblem(text: String, line: Int, problem: String) async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/bad.csv"
            try write(text, to: path)
            let error = #expect(throws: RecEngineError.self) { try RatingsFile.load(path: path) }
            #expect(error?.code == .invalidRatings)
            #expect(error?.location == "\(path):\(line)")
            #expect(error?.message == problem)
            #expect(error?.description.contains("--on-bad-row skip") == true)
        }
    }

    /// A tab-separated first line fixes the column count: other than 3 or 4 columns is refused
    /// at once, also when bad rows are skipped (2 columns crashed the reader: index out of range).
    @Test(arguments: ["u\ta\nv\tb\n", "1\t2\t3\t4\t5\n1\t2\t3\t4\t5\n"])
    func aTabSeparatedFileOfAnotherColumnCountIsRefusedAtItsFirstLine(text: String) async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/x.tsv"
            try write(text, to: path)
            for policy in [BadRowPolicy.fail, .skip] {
                let error = #expect(throws: RecEngineError.self) { try RatingsFile.load(path: path, onBadRow: policy) }
                #expect(error?.code == .invalidRatings)
                #expect(error?.location == "\(path):1")
                #expect(
                    error?.message.hasPrefix("expected 3 or 4 tab-separated columns, found ") == true,
                    "\(error?.message ?? "")")
            }
        }
    }

    @Test func skipPolicyCountsMalformedRows() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/mixed.csv"
            try write("user_id,movie_id,rating\n1,a,4\n2,b,x\n3,c\n4,d,5\n", to: path)
            let file = try RatingsFile.load(path: path, onBadRow: .skip)
            #expect(file.ratings.count == 2)
            #expect(file.skippedRowCount == 2)
            #expect(
                file.skippedRows == [
                    SkippedRow(line: 3, problem: "rating \"x\" is not a number"),
                    SkippedRow(line: 4, problem: "expected 3 fields, found 2"),
                ])
        }
    }

    @Test func rejectsAnUnexpectedHeaderAndEmptyFiles() async throws {
        try await withTemporaryDirectory { folder in
            let header = folder + "/header.csv"
            try write("user,item,score\n1,a,4\n", to: header)
            #expect(throws: RecEngineError.self) { try RatingsFile.load(path: header) }
            let empty = folder + "/empty.csv"
            try write("user_id,movie_id,rating\n", to: empty)
            let error = #expect(throws: RecEngineError.self) { try RatingsFile.load(path: empty) }
            #expect(error?.message == "the file holds no ratings")
            let missing = #expect(throws: RecEngineError.self) { try RatingsFile.load(path: folder + "/missing.csv") }
            #expect(missing?.code == .fileSystem)
        }
    }

    @Test func csvRoundTripKeepsEveryRating() async throws {
        try await withTemporaryDirectory { folder in
            let ratings = syntheticRatings(users: 20, items: 30, perUser: 5)
            try RatingsFile.writeCSV(ratings, to: folder + "/out.csv")
            let back = try RatingsFile.load(path: folder + "/out.csv").ratings
            #expect(back.count == ratings.count)
            #expect(back.userIDs == ratings.userIDs)
            #expect(back.itemIDs == ratings.itemIDs)
            #expect(back.values == ratings.values)
        }
    }
}
